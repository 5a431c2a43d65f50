// Two corrections to the gRPC status that Connect writes (in the headers of a
// trailers-only response, else in the trailers), applied at the HTTP/2 layer:
//
// 1. `grpc-message` encoding. The gRPC HTTP/2 protocol percent-encodes only
//    bytes outside 0x20..0x7E and '%'. Connect uses encodeURIComponent, which
//    also escapes '/', ':', ',' …; strict decoders (grpc-js uses decodeURI)
//    then show "%2Frun%2Fnetns" to the user. Our messages carry paths and
//    CIDRs, so the message is re-encoded the minimal way, which every decoder
//    reads back unchanged.
// 2. A request body that is not a valid protobuf message is the client's
//    fault, yet Connect reports it as INTERNAL ("parse binary: …") before any
//    handler or interceptor runs. It becomes INVALID_ARGUMENT here.

import type { Http2ServerResponse } from "node:http2";

const STATUS = "grpc-status";
const MESSAGE = "grpc-message";
const GRPC_INTERNAL = "13";
const GRPC_INVALID_ARGUMENT = "3";
/** Prefix of the message Connect uses when it cannot parse a request message. */
const PARSE_ERROR_PREFIX = "parse binary: ";

/** Percent-encodes a status message the way the gRPC protocol specifies. */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    if (byte >= 0x20 && byte <= 0x7e && byte !== 0x25) out += String.fromCharCode(byte);
    else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** Rewrites the grpc-status/grpc-message entries of a plain header object in place. */
export function fixGrpcStatusHeaders(headers: Record<string, unknown>): void {
  const raw = headers[MESSAGE];
  if (typeof raw !== "string") return;
  let message: string;
  try {
    message = decodeURIComponent(raw);
  } catch {
    return; // not encoded the way we expect; leave it alone
  }
  if (headers[STATUS] === GRPC_INTERNAL && message.startsWith(PARSE_ERROR_PREFIX)) {
    headers[STATUS] = GRPC_INVALID_ARGUMENT;
    message = `malformed request message: ${message.slice(PARSE_ERROR_PREFIX.length)}`;
  }
  headers[MESSAGE] = encodeGrpcMessage(message);
}

function fixArg(arg: unknown): void {
  if (arg !== null && typeof arg === "object" && !Array.isArray(arg)) {
    fixGrpcStatusHeaders(arg as Record<string, unknown>);
  }
}

/** Applies fixGrpcStatusHeaders to whatever is passed to res.writeHead and res.addTrailers. */
export function fixGrpcStatusOf(res: Http2ServerResponse): void {
  const writeHead = res.writeHead as (...args: unknown[]) => Http2ServerResponse;
  const addTrailers = res.addTrailers as (trailers: unknown) => void;
  res.writeHead = function (this: Http2ServerResponse, ...args: unknown[]) {
    for (const arg of args) fixArg(arg);
    return writeHead.apply(this, args);
  } as Http2ServerResponse["writeHead"];
  res.addTrailers = function (this: Http2ServerResponse, trailers: unknown) {
    fixArg(trailers);
    addTrailers.call(this, trailers);
  } as Http2ServerResponse["addTrailers"];
}
