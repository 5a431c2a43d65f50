// Unary gRPC calls served on our own HTTP/2 connection code (src/http2/):
// what a unary call needs and nothing else. A call is one HTTP/2 stream: a
// POST with content-type application/grpc, one length-prefixed message (a
// flag byte, a 4-byte length, the protobuf), answered with the headers, one
// length-prefixed message and the trailers (grpc-status 0) in one write, or,
// for an error, with headers that end the stream and carry grpc-status and
// grpc-message ("trailers only"). Why not @grpc/grpc-js's server, nor
// node:http2 under this file as before: per call they run layers of stream
// machinery a unary call does not use, which on a daemon that has served
// only tens of calls V8 still interprets, and node:http2 sends the trailers
// in a write of their own, an event-loop turn after the data
// (docs/performance-cold.md).
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

import type { Socket } from "node:net";
import { HpackEncoder } from "../http2/hpack.js";
import { ServerConnection, type ServerStream } from "../http2/server-connection.js";

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

/** Response header blocks: literals never indexed, so the peer's table is never touched. */
const plain = new HpackEncoder({ index: false, huffman: false });
const RESPONSE_HEADERS = plain.encode([
  [":status", "200"],
  ["content-type", "application/grpc"],
]);
const OK_TRAILERS = plain.encode([["grpc-status", "0"]]);
/** The frame header: a compression flag and a 32-bit big-endian length. */
const PREFIX = 5;
/** grpc-message is cut to this many characters (before percent-encoding). */
const MAX_STATUS_MESSAGE = 4096;

export function createUnaryServer(options: UnaryServerOptions): UnaryServer {
  const { routes, maxMessageBytes } = options;
  const connections = new Set<ServerConnection>();
  const running = new Set<AbortController>();

  function serveStream(stream: ServerStream, tag: unknown): void {
    const headers = stream.headers;
    if (headers[":method"] !== "POST") return httpError(stream, 405);
    const contentType = headers["content-type"];
    if (contentType === undefined || !contentType.startsWith("application/grpc")) return httpError(stream, 415);
    const path = headers[":path"] ?? "";
    const refusal = options.admit(tag, path);
    if (refusal !== undefined) return answerEarly(stream, refusal);
    const route = routes.get(path);
    if (route === undefined) return answerEarly(stream, { code: GrpcCode.UNIMPLEMENTED, message: `unknown method ${path}` });
    serveCall(stream, route);
  }

  function serveCall(stream: ServerStream, route: UnaryRoute): void {
    const headers = stream.headers;
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
      if (stream.closed) return;
      if (status === undefined) sendMessage(stream, body!);
      else answerEarly(stream, status);
    };

    stream.onData = (chunk: Buffer): void => {
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
    stream.onEnd = (): void => {
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
      if (timeout !== undefined) {
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
    // Gone before it was answered: the client reset the stream or the connection went.
    stream.onAbort = (): void => {
      if (answered) return;
      answered = true;
      if (timer !== undefined) clearTimeout(timer);
      if (controller !== undefined) {
        running.delete(controller);
        controller.abort();
      }
    };
  }

  return {
    inject(socket, tag) {
      const conn = new ServerConnection(socket, {
        onStream: (stream) => serveStream(stream, tag),
        ...(options.onSessionError ? { onError: options.onSessionError } : {}),
      });
      connections.add(conn);
      socket.once("close", () => connections.delete(conn));
    },
    get running() {
      return running.size;
    },
    close() {
      for (const c of connections) c.close();
    },
    destroy() {
      for (const c of connections) c.destroy();
      connections.clear();
      for (const c of running) c.abort();
      running.clear();
    },
  };
}

/** The status for a message prefix that cannot be served, or undefined. */
function checkPrefix(head: Buffer, headers: Readonly<Record<string, string>>, max: number): GrpcStatus | undefined {
  if (head[0] !== 0) {
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") {
      return { code: GrpcCode.UNIMPLEMENTED, message: `message encoding ${JSON.stringify(encoding.slice(0, 40))} is not supported; send messages uncompressed` };
    }
    return { code: GrpcCode.INVALID_ARGUMENT, message: "malformed request: the message is flagged compressed, with no grpc-encoding" };
  }
  const length = head.readUInt32BE(1);
  if (length > max) return { code: GrpcCode.RESOURCE_EXHAUSTED, message: `request message larger than max (${length} vs. ${max} bytes)` };
  return undefined;
}

/** A gRPC message as it goes on the wire: not compressed, its 4-byte length, the bytes. */
export function lengthPrefixed(body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(PREFIX + body.length);
  frame[0] = 0;
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, PREFIX);
  return frame;
}

function sendMessage(stream: ServerStream, body: Uint8Array): void {
  stream.respond(RESPONSE_HEADERS, lengthPrefixed(body), OK_TRAILERS);
}

/**
 * Answers with a status and nothing else (trailers only), before or without
 * reading the request; a client still sending is told to stop (RST_STREAM
 * NO_ERROR, which HTTP/2 provides for answers that come before the request's end).
 */
function answerEarly(stream: ServerStream, status: GrpcStatus): void {
  stream.respond(
    plain.encode([
      [":status", "200"],
      ["content-type", "application/grpc"],
      ["grpc-status", String(status.code)],
      ["grpc-message", percentEncode(status.message.slice(0, MAX_STATUS_MESSAGE))],
    ]),
  );
}

function httpError(stream: ServerStream, status: number): void {
  stream.respond(plain.encode([[":status", String(status)]]));
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
