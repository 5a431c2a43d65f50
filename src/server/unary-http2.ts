// Unary gRPC calls served straight on node:http2: what a unary call needs and
// nothing else. A call is one HTTP/2 stream: a POST with content-type
// application/grpc, one length-prefixed message (a flag byte, a 4-byte
// length, the protobuf), answered with the headers, one length-prefixed
// message and the trailers (grpc-status 0), or, for an error, with headers
// that end the stream and carry grpc-status and grpc-message ("trailers
// only"). Why not @grpc/grpc-js's server: per call it runs several layers of
// interceptors, metadata objects and stream machinery that a unary call does
// not use, and on a daemon that has only served tens of calls that code is
// still interpreted by V8: a fresh daemon took 0.9 ms for an empty call
// through it (docs/performance-cold.md).
//
// What it honours from the protocol: the path picks the method (unknown:
// UNIMPLEMENTED); grpc-timeout (the call's signal aborts and the caller gets
// DEADLINE_EXCEEDED); a message larger than the limit is RESOURCE_EXHAUSTED,
// answered from its length prefix before the body is read; compressed
// messages are refused (we never advertise an encoding); the client
// resetting the stream or dropping the connection aborts the call's signal.
// Metadata is not read. Connections are injected (inject()), never accepted
// here: the listening socket, peer checks and protocol sniffing are the
// caller's (grpc-server.ts).

import * as http2 from "node:http2";
import type { Socket } from "node:net";

/** gRPC status codes used here (the numbers are the wire's). */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
} as const;

export interface GrpcStatus {
  code: number;
  message: string;
}

/** One unary method, found by its path ("/package.Service/Method"). */
export interface UnaryRoute {
  /** For logs and messages: "Attach". */
  readonly name: string;
  /** The request message from its bytes; throws on a malformed one. */
  decode(bytes: Uint8Array): unknown;
  /** The response's bytes. */
  encode(response: unknown): Uint8Array;
  /** Runs the call; `signal` aborts when the caller goes away or its deadline passes. */
  handle(request: unknown, signal: AbortSignal): Promise<unknown>;
}

export interface UnaryServerOptions {
  routes: ReadonlyMap<string, UnaryRoute>;
  /** Larger request messages are refused with RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /**
   * Decides, per call, from the tag its connection was injected with, whether
   * it may run: undefined to go on, or the status to answer it with, unread.
   */
  admit(tag: unknown, path: string): GrpcStatus | undefined;
  /** The status for whatever a handler threw (or encode did). */
  toStatus(route: UnaryRoute, err: unknown, signal: AbortSignal): GrpcStatus;
  /** Told about session-level errors (a broken connection, a protocol error): nothing to answer. */
  onSessionError?(err: Error): void;
}

export interface UnaryServer {
  /** Serves a connection that is already open (its first bytes may have been put back with unshift). */
  inject(socket: Socket, tag: unknown): void;
  /** Calls still running. */
  readonly running: number;
  /** GOAWAY on every connection: running calls finish, no new ones start. */
  close(): void;
  /** Ends every connection now; running calls see their signal abort. */
  destroy(): void;
}

const RESPONSE_HEADERS = { ":status": 200, "content-type": "application/grpc" } as const;
const OK_TRAILERS = { "grpc-status": "0" } as const;
/** The frame header: a compression flag and a 32-bit big-endian length. */
const PREFIX = 5;

export function createUnaryServer(options: UnaryServerOptions): UnaryServer {
  const { routes, maxMessageBytes } = options;
  // No timeout, Node's default session memory (10 MiB per connection); no TLS.
  const h2 = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  const tags = new WeakMap<http2.Http2Session, unknown>();
  const running = new Set<AbortController>();
  let injecting: { tag: unknown } | undefined;

  h2.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    // 'session' is emitted while inject() emits 'connection', synchronously.
    if (injecting !== undefined) tags.set(session, injecting.tag);
  });
  h2.on("sessionError", (err: Error) => options.onSessionError?.(err));
  h2.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    // A stream error (e.g. the client reset it) ends the call through 'close'.
    stream.on("error", noop);
    if (headers[":method"] !== "POST") return httpError(stream, 405);
    const contentType = headers["content-type"];
    if (typeof contentType !== "string" || !contentType.startsWith("application/grpc")) return httpError(stream, 415);
    const path = headers[":path"] ?? "";
    // A session without a tag was not injected by us: refused like an unknown caller.
    const refusal = options.admit(tags.has(stream.session!) ? tags.get(stream.session!) : undefined, path);
    if (refusal !== undefined) return answerEarly(stream, refusal);
    const route = routes.get(path);
    if (route === undefined) return answerEarly(stream, { code: GrpcCode.UNIMPLEMENTED, message: `unknown method ${path}` });
    serveCall(stream, headers, route);
  });

  function serveCall(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, route: UnaryRoute): void {
    let chunks: Buffer[] = [];
    let have = 0;
    let length = -1; // the message's length, once its prefix is in
    let controller: AbortController | undefined;
    let timer: NodeJS.Timeout | undefined;
    let answered = false;

    const answer = (status: GrpcStatus | undefined, body?: Uint8Array): void => {
      if (answered) return;
      answered = true;
      if (timer !== undefined) clearTimeout(timer);
      if (controller !== undefined) running.delete(controller);
      if (stream.destroyed || stream.closed) return;
      if (status === undefined) sendMessage(stream, body!);
      else answerEarly(stream, status);
    };

    const onData = (chunk: Buffer): void => {
      if (answered) return;
      chunks.push(chunk);
      have += chunk.length;
      if (length < 0 && have >= PREFIX) {
        const head = chunks.length === 1 ? chunk : Buffer.concat(chunks, have);
        const refusal = checkPrefix(head, headers, maxMessageBytes);
        if (refusal !== undefined) return answer(refusal);
        length = head.readUInt32BE(1);
      }
      if (length >= 0 && have > PREFIX + length) {
        answer({ code: GrpcCode.INVALID_ARGUMENT, message: "more than one request message in a unary call" });
      }
    };
    const onEnd = (): void => {
      if (answered) return;
      if (length < 0 || have < PREFIX + length) {
        const message = have === 0 ? "no request message" : `request message cut short: ${Math.max(0, have - PREFIX)} of ${length < 0 ? "?" : length} bytes`;
        return answer({ code: GrpcCode.INVALID_ARGUMENT, message });
      }
      const frame = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, have);
      chunks = [];
      let request: unknown;
      try {
        request = route.decode(frame.subarray(PREFIX));
      } catch (err) {
        return answer({ code: GrpcCode.INVALID_ARGUMENT, message: `malformed request message: ${errorText(err)}` });
      }
      const c = new AbortController();
      controller = c;
      running.add(c);
      const timeout = headers["grpc-timeout"];
      if (typeof timeout === "string") {
        const ms = parseTimeout(timeout);
        if (ms === undefined) return answer({ code: GrpcCode.INVALID_ARGUMENT, message: `malformed grpc-timeout ${JSON.stringify(timeout.slice(0, 20))}` });
        timer = setTimeout(() => {
          c.abort();
          answer({ code: GrpcCode.DEADLINE_EXCEEDED, message: "deadline exceeded" });
        }, Math.min(ms, 2 ** 31 - 1));
      }
      let result: Promise<unknown>;
      try {
        result = route.handle(request, c.signal);
      } catch (err) {
        result = Promise.reject(err);
      }
      result.then(
        (response) => {
          if (answered) return;
          let body: Uint8Array;
          try {
            body = route.encode(response);
          } catch (err) {
            return answer(options.toStatus(route, err, c.signal));
          }
          answer(undefined, body);
        },
        (err: unknown) => answer(options.toStatus(route, err, c.signal)),
      );
    };
    stream.on("data", onData);
    stream.once("end", onEnd);
    // Closed before it was answered: the client reset the stream or the connection went.
    stream.once("close", () => {
      if (answered) return;
      answered = true;
      if (timer !== undefined) clearTimeout(timer);
      if (controller !== undefined) {
        running.delete(controller);
        controller.abort();
      }
    });
  }

  return {
    inject(socket, tag) {
      injecting = { tag };
      try {
        h2.emit("connection", socket);
      } finally {
        injecting = undefined;
      }
    },
    get running() {
      return running.size;
    },
    close() {
      for (const s of sessions) s.close();
    },
    destroy() {
      for (const s of sessions) s.destroy();
      for (const c of running) c.abort();
      running.clear();
    },
  };
}

const noop = (): void => undefined;

/** The status for a message prefix that cannot be served, or undefined. */
function checkPrefix(head: Buffer, headers: http2.IncomingHttpHeaders, max: number): GrpcStatus | undefined {
  if (head[0] !== 0) {
    const encoding = headers["grpc-encoding"];
    if (typeof encoding === "string" && encoding !== "identity") {
      return { code: GrpcCode.UNIMPLEMENTED, message: `message encoding ${JSON.stringify(encoding.slice(0, 40))} is not supported; send messages uncompressed` };
    }
    return { code: GrpcCode.INVALID_ARGUMENT, message: "malformed request: the message is flagged compressed, with no grpc-encoding" };
  }
  const length = head.readUInt32BE(1);
  if (length > max) return { code: GrpcCode.RESOURCE_EXHAUSTED, message: `request message larger than max (${length} vs. ${max} bytes)` };
  return undefined;
}

function sendMessage(stream: http2.ServerHttp2Stream, body: Uint8Array): void {
  const frame = Buffer.allocUnsafe(PREFIX + body.length);
  frame[0] = 0;
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, PREFIX);
  stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
  stream.once("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
  stream.end(frame);
}

/**
 * Answers with a status and nothing else (trailers only), before or without
 * reading the request; a client still sending is told to stop (RST_STREAM
 * NO_ERROR, which HTTP/2 provides for answers that come before the request's end).
 */
function answerEarly(stream: http2.ServerHttp2Stream, status: GrpcStatus): void {
  if (stream.destroyed || stream.closed) return;
  try {
    stream.respond(
      { ":status": 200, "content-type": "application/grpc", "grpc-status": String(status.code), "grpc-message": percentEncode(status.message) },
      { endStream: true },
    );
  } catch {
    return; // the stream went meanwhile
  }
  if (!stream.readableEnded) {
    stream.resume();
    stream.close(http2.constants.NGHTTP2_NO_ERROR);
  }
}

function httpError(stream: http2.ServerHttp2Stream, status: number): void {
  try {
    stream.respond({ ":status": status }, { endStream: true });
  } catch {
    return;
  }
  if (!stream.readableEnded) stream.close(http2.constants.NGHTTP2_NO_ERROR);
}

/**
 * grpc-message: UTF-8, with every byte outside printable ASCII, and "%",
 * percent-encoded (the gRPC spec). A lone surrogate becomes U+FFFD.
 */
export function percentEncode(text: string): string {
  let plain = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return text;
  let out = "";
  for (const b of Buffer.from(text, "utf8")) {
    out += b < 0x20 || b > 0x7e || b === 0x25 ? `%${b.toString(16).toUpperCase().padStart(2, "0")}` : String.fromCharCode(b);
  }
  return out;
}

const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** grpc-timeout ("100m", "5S", at most 8 digits and a unit) in ms, or undefined when malformed. */
export function parseTimeout(value: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (m === null) return undefined;
  return Number(m[1]) * TIMEOUT_UNITS[m[2]!]!;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
