// The client side of one HTTP/2 connection, for the daemon's warm-up: it
// makes requests whose body is sent whole and whose response is read whole
// (gRPC unary calls). It writes its header blocks as grpc-go does (indexed,
// Huffman-coded), so that the server code it exercises is the code real
// clients reach, and it gives back the connection window as data arrives,
// as they do. Bodies must fit the peer's windows (a warm-up request is a few
// hundred bytes); larger ones are refused, not queued.

import type { Socket } from "node:net";
import { HpackDecoder, HpackEncoder } from "./hpack.js";
import {
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  Flag,
  FRAME_HEADER,
  FrameReader,
  FrameType,
  frame,
  headerBlockRoom,
  PREFACE,
  Setting,
  settingsFrame,
  windowUpdateFrame,
  writeFrameHeader,
  writeHeaderBlock,
  type Frame,
} from "./frames.js";

export interface Response {
  headers: Record<string, string>;
  body: Buffer;
  /** Empty when the response was headers only. */
  trailers: Record<string, string>;
}

interface Pending {
  resolve(r: Response): void;
  reject(err: Error): void;
  headers: Record<string, string> | undefined;
  trailers: Record<string, string>;
  chunks: Buffer[];
}

export class ClientConnection {
  private readonly reader = new FrameReader((f) => this.onFrame(f));
  private readonly decoder = new HpackDecoder();
  private readonly encoder = new HpackEncoder({ index: true, huffman: true });
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private sendWindow = DEFAULT_WINDOW;
  private streamWindow = DEFAULT_WINDOW;
  private maxFrame = DEFAULT_MAX_FRAME;
  private failure: Error | undefined;

  constructor(private readonly socket: Socket) {
    socket.write(Buffer.concat([PREFACE, settingsFrame([[Setting.ENABLE_PUSH, 0]])]));
    socket.on("data", (chunk: Buffer) => {
      try {
        this.reader.push(chunk);
      } catch (err) {
        this.fail(err as Error);
      }
    });
    socket.on("error", (err) => this.fail(err));
    socket.on("close", () => this.fail(new Error("connection closed")));
  }

  /** One request: the header fields (pseudo-headers first), then the body; resolves with the whole response. */
  request(fields: readonly (readonly [string, string])[], body: Uint8Array): Promise<Response> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (body.length > Math.min(this.sendWindow, this.streamWindow, this.maxFrame)) {
      return Promise.reject(new Error(`request body of ${body.length} bytes is larger than this client sends`));
    }
    const id = this.nextId;
    this.nextId += 2;
    const block = this.encoder.encode(fields);
    const out = Buffer.allocUnsafe(headerBlockRoom(block, this.maxFrame) + FRAME_HEADER + body.length);
    let at = writeHeaderBlock(out, 0, id, block, false, this.maxFrame);
    at = writeFrameHeader(out, at, body.length, FrameType.DATA, Flag.END_STREAM, id);
    out.set(body, at);
    this.sendWindow -= body.length;
    return new Promise<Response>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, headers: undefined, trailers: {}, chunks: [] });
      this.socket.write(out);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onFrame(f: Frame): void {
    switch (f.type) {
      case FrameType.SETTINGS:
        if (f.flags & Flag.ACK) return;
        for (let at = 0; at + 6 <= f.payload.length; at += 6) {
          const id = f.payload.readUInt16BE(at);
          const value = f.payload.readUInt32BE(at + 2);
          if (id === Setting.INITIAL_WINDOW_SIZE) this.streamWindow = value;
          if (id === Setting.MAX_FRAME_SIZE) this.maxFrame = value;
        }
        this.socket.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
        return;
      case FrameType.WINDOW_UPDATE:
        if (f.streamId === 0) this.sendWindow += f.payload.readUInt32BE(0) & 0x7fffffff;
        return;
      case FrameType.PING:
        if ((f.flags & Flag.ACK) === 0) this.socket.write(frame(FrameType.PING, Flag.ACK, 0, f.payload));
        return;
      case FrameType.HEADERS: {
        // Our header blocks are small: the server's answers come whole in HEADERS.
        if ((f.flags & Flag.END_HEADERS) === 0) throw new Error("a header block in CONTINUATION frames: not expected from our server");
        const fields = this.decoder.decode(f.payload).fields;
        const p = this.pending.get(f.streamId);
        if (p === undefined) return;
        const into: Record<string, string> = p.headers === undefined ? {} : p.trailers;
        for (const [n, v] of fields) into[n] = v;
        if (p.headers === undefined) p.headers = into;
        if (f.flags & Flag.END_STREAM) this.complete(f.streamId, p);
        return;
      }
      case FrameType.DATA: {
        const p = this.pending.get(f.streamId);
        if (f.payload.length > 0) this.socket.write(windowUpdateFrame(0, f.payload.length));
        if (p === undefined) return;
        p.chunks.push(Buffer.from(f.payload));
        if (f.flags & Flag.END_STREAM) this.complete(f.streamId, p);
        return;
      }
      case FrameType.RST_STREAM: {
        const p = this.pending.get(f.streamId);
        // NO_ERROR after a complete answer only tells us to stop sending.
        const code = f.payload.readUInt32BE(0);
        if (p === undefined || code === 0) return;
        this.pending.delete(f.streamId);
        p.reject(new Error(`stream ${f.streamId} reset by the server (code ${code})`));
        return;
      }
      case FrameType.GOAWAY:
        this.fail(new Error("the server sent GOAWAY"));
        return;
      default:
        return;
    }
  }

  private complete(id: number, p: Pending): void {
    this.pending.delete(id);
    p.resolve({ headers: p.headers ?? {}, body: Buffer.concat(p.chunks), trailers: p.trailers });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
