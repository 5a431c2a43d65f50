// The unary gRPC server's protocol edges, over a real unix socket with
// node:http2 as the client: what grpc-js and Connect clients would send, and
// what misbehaving ones do.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import * as net from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createUnaryServer, GrpcCode, parseTimeout, percentEncode, type UnaryRoute, type UnaryServer } from "./unary-http2.js";

const PATH = "/test.Echo/Echo";

interface Reply {
  httpStatus: number;
  grpcStatus: string | undefined;
  message: string;
  body: Buffer;
}

const frame = (body: Buffer, flag = 0, claimed = body.length): Buffer => {
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(claimed, 1);
  return Buffer.concat([head, body]);
};

describe("unary gRPC server, node:http2 as the client", () => {
  let dir: string;
  let server: UnaryServer;
  let listener: net.Server;
  let socketPath: string;
  const seen: { signal: AbortSignal; request: string }[] = [];
  let release: (() => void) | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "wln-unary-"));
    socketPath = join(dir, "s.sock");
    const route: UnaryRoute = {
      name: "Echo",
      decode: (bytes) => {
        const text = Buffer.from(bytes).toString("utf8");
        if (text.startsWith("bad")) throw new Error("not a message");
        return text;
      },
      encode: (res) => Buffer.from(String(res)),
      handle: async (req, signal) => {
        seen.push({ signal, request: String(req) });
        if (req === "hold") await new Promise<void>((r) => (release = r));
        if (req === "fail") throw new Error("boom");
        return `echo ${String(req)}`;
      },
    };
    server = createUnaryServer({
      routes: new Map([[PATH, route]]),
      maxMessageBytes: 64,
      admit: (tag, path) => (tag === "allowed" ? undefined : { code: GrpcCode.PERMISSION_DENIED, message: `no ${path}` }),
      toStatus: (_route, err) => ({ code: GrpcCode.INTERNAL, message: `failed: ${(err as Error).message}` }),
    });
    let n = 0;
    listener = net.createServer((socket) => server.inject(socket, n++ === 0 ? "refused" : "allowed"));
    await new Promise<void>((resolve) => listener.listen(socketPath, resolve));
  });
  after(async () => {
    server.destroy();
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  let session: http2.ClientHttp2Session | undefined;
  const connect = (): http2.ClientHttp2Session => {
    const s = http2.connect("http://localhost", { createConnection: () => net.connect(socketPath) });
    s.on("error", () => undefined);
    return s;
  };
  const call = (data: Buffer | undefined, headers: http2.OutgoingHttpHeaders = {}, s = session!): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const stream = s.request({ ":method": "POST", ":path": PATH, "content-type": "application/grpc", te: "trailers", ...headers });
      const reply: Reply = { httpStatus: 0, grpcStatus: undefined, message: "", body: Buffer.alloc(0) };
      const take = (h: http2.IncomingHttpHeaders): void => {
        if (h[":status"] !== undefined) reply.httpStatus = Number(h[":status"]);
        if (h["grpc-status"] !== undefined) reply.grpcStatus = String(h["grpc-status"]);
        if (h["grpc-message"] !== undefined) reply.message = decodeURIComponent(String(h["grpc-message"]));
      };
      stream.on("response", take);
      stream.on("trailers", take);
      stream.on("data", (d: Buffer) => (reply.body = Buffer.concat([reply.body, d])));
      stream.on("error", reject);
      stream.on("close", () => resolve(reply));
      if (data === undefined) stream.end();
      else stream.end(data);
    });

  test("a connection injected as refused gets PERMISSION_DENIED for every call, unread", async () => {
    const s = connect();
    try {
      const r = await call(frame(Buffer.from("hi")), {}, s);
      assert.equal(r.grpcStatus, String(GrpcCode.PERMISSION_DENIED));
      assert.equal(r.message, `no ${PATH}`);
      assert.equal(seen.length, 0);
    } finally {
      s.close();
    }
    session = connect();
  });

  test("a call is answered with one length-prefixed message and grpc-status 0 in the trailers", async () => {
    const r = await call(frame(Buffer.from("hi")));
    assert.equal(r.httpStatus, 200);
    assert.equal(r.grpcStatus, "0");
    assert.deepEqual(r.body, frame(Buffer.from("echo hi")));
  });

  test("unknown method: UNIMPLEMENTED; not POST: 405; not gRPC: 415", async () => {
    const r = await call(frame(Buffer.from("hi")), { ":path": "/test.Echo/Nope" });
    assert.equal(r.grpcStatus, String(GrpcCode.UNIMPLEMENTED));
    assert.match(r.message, /unknown method \/test\.Echo\/Nope/);
    assert.equal((await call(undefined, { ":method": "GET" })).httpStatus, 405);
    assert.equal((await call(frame(Buffer.from("hi")), { "content-type": "application/json" })).httpStatus, 415);
  });

  test("malformed bodies: INVALID_ARGUMENT with a reason", async () => {
    const cases: [Buffer | undefined, RegExp][] = [
      [undefined, /no request message/],
      [Buffer.from([0, 0, 0]), /cut short/],
      [frame(Buffer.from("hi"), 0, 10), /cut short: 2 of 10 bytes/],
      [Buffer.concat([frame(Buffer.from("a")), frame(Buffer.from("b"))]), /more than one request message/],
      [frame(Buffer.from("bad")), /^malformed request message: not a message$/],
      [frame(Buffer.from("hi"), 1), /flagged compressed/],
    ];
    for (const [body, why] of cases) {
      const r = await call(body);
      assert.equal(r.grpcStatus, String(GrpcCode.INVALID_ARGUMENT), `${why}: ${r.message}`);
      assert.match(r.message, why);
    }
    const gz = await call(frame(Buffer.from("hi"), 1), { "grpc-encoding": "gzip" });
    assert.equal(gz.grpcStatus, String(GrpcCode.UNIMPLEMENTED));
  });

  test("a message over the limit is RESOURCE_EXHAUSTED from its prefix alone", async () => {
    const r = await call(frame(Buffer.from("x"), 0, 0xffffffff));
    assert.equal(r.grpcStatus, String(GrpcCode.RESOURCE_EXHAUSTED));
    assert.match(r.message, /larger than max \(4294967295 vs\. 64 bytes\)/);
    // And the connection still serves.
    assert.equal((await call(frame(Buffer.from("ok")))).grpcStatus, "0");
  });

  test("a handler's error becomes the status toStatus gives, its message percent-encoded on the wire", async () => {
    const r = await call(frame(Buffer.from("fail")));
    assert.equal(r.grpcStatus, String(GrpcCode.INTERNAL));
    assert.equal(r.message, "failed: boom");
    assert.equal(percentEncode("100% ü ✓\n"), "100%25 %C3%BC %E2%9C%93%0A");
    assert.equal(percentEncode("plain text"), "plain text");
    assert.equal(decodeURIComponent(percentEncode("lone \uD800 surrogate")), "lone \uFFFD surrogate");
  });

  test("grpc-timeout: the signal aborts and the caller gets DEADLINE_EXCEEDED", async () => {
    const pending = call(frame(Buffer.from("hold")), { "grpc-timeout": "50m" });
    const r = await pending;
    assert.equal(r.grpcStatus, String(GrpcCode.DEADLINE_EXCEEDED));
    assert.equal(seen.at(-1)!.signal.aborted, true);
    release?.();
    assert.equal((await call(frame(Buffer.from("x")), { "grpc-timeout": "bogus" })).grpcStatus, String(GrpcCode.INVALID_ARGUMENT));
    assert.equal(parseTimeout("5S"), 5000);
    assert.equal(parseTimeout("250u"), 0.25);
    assert.equal(parseTimeout("123456789S"), undefined);
  });

  test("a stream reset by the client aborts the call's signal", async () => {
    const stream = session!.request({ ":method": "POST", ":path": PATH, "content-type": "application/grpc" });
    stream.on("error", () => undefined);
    stream.end(frame(Buffer.from("hold")));
    while (seen.at(-1)?.request !== "hold" || seen.at(-1)!.signal.aborted) await new Promise((r) => setTimeout(r, 5));
    const { signal } = seen.at(-1)!;
    assert.equal(server.running, 1);
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve())));
    release?.();
    assert.equal(server.running, 0);
    session!.close();
  });
});
