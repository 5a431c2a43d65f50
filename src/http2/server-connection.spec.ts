// The server side of HTTP/2 over a real unix socket, driven frame by frame:
// what clients do (one write per response, flow control both ways,
// CONTINUATION, padding, PING) and what broken ones do (bad preface, bad
// HPACK, resets, too many streams), as the bytes on the wire show it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode, Flag, FrameReader, FrameType, PREFACE, Setting, frame, goawayFrame, rstStreamFrame, settingsFrame, windowUpdateFrame, type Frame } from "./frames.js";
import { HpackDecoder, HpackEncoder } from "./hpack.js";
import { ClientConnection } from "./client-connection.js";
import { ServerConnection, type ServerStream } from "./server-connection.js";

interface Seen {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** A raw client: writes frames, records every frame it gets and how many reads carried them. */
class RawClient {
  readonly frames: Seen[] = [];
  reads = 0;
  closed = false;
  private readonly reader = new FrameReader((f: Frame) => this.frames.push({ type: f.type, flags: f.flags, streamId: f.streamId, payload: Buffer.from(f.payload) }));
  readonly encoder = new HpackEncoder({ index: true, huffman: true });
  readonly decoder = new HpackDecoder();
  private waiters: (() => void)[] = [];

  constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.reads++;
      this.reader.push(chunk);
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once `until` holds (checked on each read), or rejects after 3 s. */
  async wait(until: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 3000;
    while (!until()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; frames: ${this.frames.map((f) => `${f.type}/${f.flags}/${f.streamId}`).join(" ")}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  request(id: number, path: string, flags: number = Flag.END_HEADERS): Buffer {
    const block = this.encoder.encode([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", path],
      ["content-type", "application/grpc"],
    ]);
    return frame(FrameType.HEADERS, flags, id, block);
  }

  of(id: number, type?: number): Seen[] {
    return this.frames.filter((f) => f.streamId === id && (type === undefined || f.type === type));
  }
}

describe("HTTP/2 server connection", () => {
  let dir: string;
  let listener: net.Server;
  let socketPath: string;
  const conns: ServerConnection[] = [];
  const aborted: number[] = [];
  const errors: string[] = [];
  /** What the server does with a request, by path. */
  const behaviour = new Map<string, (s: ServerStream, body: Buffer) => void>();
  const held = new Map<number, ServerStream>();
  const plain = new HpackEncoder({ index: false, huffman: false });
  const OK = plain.encode([[":status", "200"]]);
  const TRAILERS = plain.encode([["grpc-status", "0"]]);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "wln-h2-"));
    socketPath = join(dir, "s.sock");
    behaviour.set("/echo", (s, body) => s.respond(OK, body, TRAILERS));
    behaviour.set("/big", (s, body) => s.respond(OK, Buffer.alloc(Number(body.toString()), 0x61), TRAILERS));
    behaviour.set("/hold", () => undefined); // held from its headers on, answered by the test
    listener = net.createServer((socket) => {
      const c = new ServerConnection(socket, {
        maxConcurrentStreams: 2,
        onStream: (s) => {
          if (s.headers[":path"] === "/hold") held.set(s.id, s);
          const chunks: Buffer[] = [];
          s.onData = (d) => chunks.push(Buffer.from(d));
          s.onEnd = () => behaviour.get(s.headers[":path"]!)!(s, Buffer.concat(chunks));
          s.onAbort = () => aborted.push(s.id);
        },
        onError: (err) => errors.push(err.message),
      });
      conns.push(c);
    });
    await new Promise<void>((resolve) => listener.listen(socketPath, resolve));
  });
  after(async () => {
    for (const c of conns) c.destroy();
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  const connect = async (settings: [number, number][] = []): Promise<RawClient> => {
    const socket = net.connect(socketPath);
    await new Promise<void>((resolve) => socket.once("connect", resolve));
    const c = new RawClient(socket);
    socket.write(Buffer.concat([PREFACE, settingsFrame(settings)]));
    await c.wait(() => c.frames.some((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) !== 0), "SETTINGS ACK");
    return c;
  };

  test("sends its settings and window first, and a whole response leaves in one write", async () => {
    const c = await connect();
    const settings = c.frames.find((f) => f.type === FrameType.SETTINGS && f.flags === 0)!;
    const values = new Map<number, number>();
    for (let at = 0; at < settings.payload.length; at += 6) values.set(settings.payload.readUInt16BE(at), settings.payload.readUInt32BE(at + 2));
    assert.equal(values.get(Setting.MAX_CONCURRENT_STREAMS), 2);
    assert.ok(values.get(Setting.INITIAL_WINDOW_SIZE)! > 1 << 20, "a stream window that takes a 1 MiB request");
    assert.ok(c.frames.some((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0));

    const readsBefore = c.reads;
    c.socket.write(Buffer.concat([c.request(1, "/echo"), frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from("hello"))]));
    await c.wait(() => c.of(1, FrameType.HEADERS).length === 2, "headers and trailers");
    assert.deepEqual(
      c.of(1).map((f) => [f.type, f.flags]),
      [
        [FrameType.HEADERS, Flag.END_HEADERS],
        [FrameType.DATA, 0],
        [FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM],
      ],
    );
    assert.equal(c.of(1, FrameType.DATA)[0]!.payload.toString(), "hello");
    assert.equal(c.reads - readsBefore, 1, "headers, data and trailers in one read");
    assert.deepEqual(c.decoder.decode(c.of(1, FrameType.HEADERS)[1]!.payload).fields, [["grpc-status", "0"]]);
    c.socket.destroy();
  });

  test("a response larger than the client's windows and frame size waits for WINDOW_UPDATE, trailers last", async () => {
    const c = await connect([[Setting.INITIAL_WINDOW_SIZE, 1000]]);
    c.socket.write(Buffer.concat([c.request(1, "/big"), frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from("40000"))]));
    await c.wait(() => c.of(1, FrameType.DATA).length > 0, "the first data");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(c.of(1, FrameType.DATA).reduce((n, f) => n + f.payload.length, 0), 1000, "no more than the stream window");
    assert.equal(c.of(1, FrameType.HEADERS).length, 1, "no trailers yet");
    c.socket.write(windowUpdateFrame(1, 60_000));
    await c.wait(() => c.of(1, FrameType.HEADERS).length === 2, "the trailers");
    const data = c.of(1, FrameType.DATA);
    assert.equal(data.reduce((n, f) => n + f.payload.length, 0), 40_000);
    assert.ok(data.every((f) => f.payload.length <= 16_384), "frames within the default frame size");
    assert.ok(c.frames.indexOf(c.of(1, FrameType.HEADERS)[1]!) > c.frames.indexOf(data[data.length - 1]!));
    c.socket.destroy();
  });

  test("with no stream window at all, the response's headers go alone and its data waits", async () => {
    const c = await connect([[Setting.INITIAL_WINDOW_SIZE, 0]]);
    c.socket.write(Buffer.concat([c.request(1, "/echo"), frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from("hello"))]));
    await c.wait(() => c.of(1, FrameType.HEADERS).length === 1, "the headers");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(c.of(1, FrameType.DATA).length, 0, "no data without a window");
    c.socket.write(windowUpdateFrame(1, 100));
    await c.wait(() => c.of(1, FrameType.HEADERS).length === 2, "data and trailers");
    assert.equal(c.of(1, FrameType.DATA)[0]!.payload.toString(), "hello");
    c.socket.destroy();
  });

  test("headers across CONTINUATION frames, padding, PING and a client's trailers are understood", async () => {
    const c = await connect();
    const block = c.encoder.encode([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/echo"],
      ["content-type", "application/grpc"],
      ["x-long", "y".repeat(3000)],
    ]);
    const padded = Buffer.concat([Buffer.from([4]), block.subarray(0, 10), Buffer.alloc(4)]);
    c.socket.write(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.PADDED, 3, padded),
        frame(FrameType.CONTINUATION, 0, 3, block.subarray(10, 2000)),
        frame(FrameType.CONTINUATION, Flag.END_HEADERS, 3, block.subarray(2000)),
        frame(FrameType.DATA, Flag.PADDED, 3, Buffer.concat([Buffer.from([2]), Buffer.from("ab"), Buffer.alloc(2)])),
        frame(FrameType.PING, 0, 0, Buffer.from("12345678")),
        frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, c.encoder.encode([["x-trailer", "1"]])),
      ]),
    );
    await c.wait(() => c.of(3, FrameType.HEADERS).length === 2, "the answer");
    assert.equal(c.of(3, FrameType.DATA)[0]!.payload.toString(), "ab");
    const pong = c.frames.find((f) => f.type === FrameType.PING);
    assert.equal(pong?.flags, Flag.ACK);
    assert.equal(pong?.payload.toString(), "12345678");
    c.socket.destroy();
  });

  test("a stream reset by the client is aborted; too many streams are refused; malformed headers reset only their stream", async () => {
    const c = await connect();
    c.socket.write(Buffer.concat([c.request(1, "/hold"), c.request(3, "/hold"), c.request(5, "/hold")]));
    await c.wait(() => c.of(5, FrameType.RST_STREAM).length === 1, "stream 5 refused");
    assert.equal(c.of(5, FrameType.RST_STREAM)[0]!.payload.readUInt32BE(0), ErrorCode.REFUSED_STREAM);
    c.socket.write(rstStreamFrame(1, ErrorCode.CANCEL));
    await c.wait(() => aborted.length > 0, "the abort");
    assert.deepEqual(aborted, [1]);
    const bad = c.encoder.encode([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/echo"],
      ["Content-Type", "application/grpc"],
    ]);
    c.socket.write(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 7, bad));
    await c.wait(() => c.of(7, FrameType.RST_STREAM).length === 1, "stream 7 reset");
    assert.equal(c.of(7, FrameType.RST_STREAM)[0]!.payload.readUInt32BE(0), ErrorCode.PROTOCOL_ERROR);
    // The connection still serves.
    c.socket.write(Buffer.concat([c.request(9, "/echo"), frame(FrameType.DATA, Flag.END_STREAM, 9, Buffer.from("x"))]));
    await c.wait(() => c.of(9, FrameType.HEADERS).length === 2, "stream 9 answered");
    held.get(3)!.respond(OK, Buffer.from("late"), TRAILERS);
    await c.wait(() => c.of(3, FrameType.HEADERS).length === 2, "stream 3 answered");
    // Stream 3's request never ended: after its answer the server stops it.
    assert.equal(c.of(3, FrameType.RST_STREAM)[0]?.payload.readUInt32BE(0), ErrorCode.NO_ERROR);
    c.socket.destroy();
  });

  test("close() sends GOAWAY, lets a running stream finish, then ends the connection", async () => {
    const c = await connect();
    c.socket.write(Buffer.concat([c.request(1, "/hold"), frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from("x"))]));
    await new Promise((r) => setTimeout(r, 50));
    conns[conns.length - 1]!.close();
    await c.wait(() => c.frames.some((f) => f.type === FrameType.GOAWAY), "GOAWAY");
    assert.equal(c.frames.find((f) => f.type === FrameType.GOAWAY)!.payload.readUInt32BE(0), 1, "last stream id 1");
    c.socket.write(Buffer.concat([c.request(3, "/echo"), frame(FrameType.DATA, Flag.END_STREAM, 3, Buffer.from("x"))]));
    await c.wait(() => c.of(3).length > 0, "stream 3 refused");
    assert.equal(c.of(3, FrameType.RST_STREAM)[0]?.payload.readUInt32BE(0), ErrorCode.REFUSED_STREAM);
    assert.equal(c.closed, false);
    held.get(1)!.respond(OK, Buffer.from("done"), TRAILERS);
    await c.wait(() => c.closed, "the connection to end");
    assert.equal(c.of(1, FrameType.DATA)[0]?.payload.toString(), "done");
  });

  test("protocol errors end the connection with GOAWAY and the reason", async () => {
    const cases: [string, (c: RawClient) => Buffer, number][] = [
      ["bad HPACK", () => frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0xbf])), ErrorCode.COMPRESSION_ERROR],
      ["DATA on an idle stream", () => frame(FrameType.DATA, 0, 5, Buffer.from("x")), ErrorCode.PROTOCOL_ERROR],
      ["an oversized frame", () => frame(FrameType.DATA, 0, 1, Buffer.alloc(20_000)), ErrorCode.FRAME_SIZE_ERROR],
      ["PUSH_PROMISE", () => frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, Buffer.alloc(4)), ErrorCode.PROTOCOL_ERROR],
      ["an interrupted header block", (c) => Buffer.concat([c.request(1, "/echo", 0), frame(FrameType.PING, 0, 0, Buffer.alloc(8))]), ErrorCode.PROTOCOL_ERROR],
      ["a zero window update", () => windowUpdateFrame(0, 0), ErrorCode.PROTOCOL_ERROR],
    ];
    for (const [name, bytes, code] of cases) {
      const c = await connect();
      c.socket.write(bytes(c));
      await c.wait(() => c.frames.some((f) => f.type === FrameType.GOAWAY) && c.closed, `${name}: GOAWAY and close`);
      const goaway = c.frames.find((f) => f.type === FrameType.GOAWAY)!;
      assert.equal(goaway.payload.readUInt32BE(4), code, name);
    }
    // Not HTTP/2 at all: GOAWAY, then closed.
    const socket = net.connect(socketPath);
    const raw = new RawClient(socket);
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await raw.wait(() => raw.closed, "close after a bad preface");
    assert.equal(raw.frames.find((f) => f.type === FrameType.GOAWAY)?.payload.readUInt32BE(4), ErrorCode.PROTOCOL_ERROR);
    assert.ok(errors.some((e) => /preface/.test(e)));
  });

  test("random frames after a good start never take the server down", async () => {
    // A fixed seed: the same 300 connections each run.
    let seed = 0x2545f491;
    const rand = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const before = errors.length;
    for (let round = 0; round < 300; round++) {
      const c = await connect();
      const frames: Buffer[] = [];
      for (let k = 0; k < 1 + rand(6); k++) {
        const payload = Buffer.from(Array.from({ length: rand(40) }, () => rand(256)));
        // Mostly frame types and streams a client uses, with garbage inside.
        frames.push(frame(rand(12), rand(256), rand(4) === 0 ? rand(2 ** 31) : 1 + 2 * rand(4), payload));
      }
      c.socket.write(Buffer.concat(frames));
      await new Promise((r) => setImmediate(r));
      c.socket.destroy();
    }
    assert.ok(errors.length > before, "the broken connections were reported");
    // And the server still serves.
    const c = await connect();
    c.socket.write(Buffer.concat([c.request(1, "/echo"), frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from("alive"))]));
    await c.wait(() => c.of(1, FrameType.HEADERS).length === 2, "an answer after the fuzzing");
    assert.equal(c.of(1, FrameType.DATA)[0]!.payload.toString(), "alive");
    c.socket.destroy();
  });

  test("the client connection: requests interleave on one connection, and hundreds in a row keep the windows right", async () => {
    const socket = net.connect(socketPath);
    const client = new ClientConnection(socket);
    const fields = (path: string): [string, string][] => [
      [":method", "POST"],
      [":scheme", "http"],
      [":path", path],
      ["content-type", "application/grpc"],
    ];
    const [a, b] = await Promise.all([client.request(fields("/echo"), Buffer.from("one")), client.request(fields("/echo"), Buffer.from("two"))]);
    assert.equal(a.body.toString(), "one");
    assert.equal(b.body.toString(), "two");
    assert.equal(a.trailers["grpc-status"], "0");
    assert.equal(a.headers[":status"], "200");
    // Many in a row keep the windows right (the server's grows back as it is used).
    for (let i = 0; i < 300; i++) assert.equal((await client.request(fields("/echo"), Buffer.alloc(1000, 0x62))).body.length, 1000);
    client.close();
  });

  test("a client's GOAWAY: the server ends the connection once it has nothing running", async () => {
    const c = await connect();
    c.socket.write(Buffer.concat([c.request(1, "/hold"), frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from("x")), goawayFrame(1, ErrorCode.NO_ERROR)]));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(c.closed, false, "stream 1 still running");
    held.get(1)!.respond(OK, Buffer.from("bye"), TRAILERS);
    await c.wait(() => c.closed, "the connection to end");
    assert.equal(c.of(1, FrameType.DATA)[0]?.payload.toString(), "bye");
  });
});
