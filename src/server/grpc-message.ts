// The gRPC status message (header/trailer `grpc-message`) is percent-encoded:
// per the gRPC HTTP/2 protocol only bytes outside 0x20..0x7E and '%' itself are
// escaped. Connect escapes with encodeURIComponent, which also escapes '/', ':',
// ',' and friends; decoders that follow the protocol to the letter (grpc-js
// uses decodeURI) then show "%2Frun%2Fnetns" to the user. Our messages carry
// paths and CIDRs, so the server re-encodes the message the minimal way, which
// every decoder reads back unchanged.

import type { Http2ServerResponse } from "node:http2";

const HEADER = "grpc-message";

/** Percent-encodes a status message the way the gRPC protocol specifies. */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    if (byte >= 0x20 && byte <= 0x7e && byte !== 0x25) out += String.fromCharCode(byte);
    else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

function reencode(headers: unknown): void {
  if (headers === null || typeof headers !== "object" || Array.isArray(headers)) return;
  const h = headers as Record<string, unknown>;
  const value = h[HEADER];
  if (typeof value !== "string") return;
  try {
    h[HEADER] = encodeGrpcMessage(decodeURIComponent(value));
  } catch {
    // Not percent-encoded as expected; send it as it is.
  }
}

/**
 * Wraps a response's writeHead/addTrailers so a `grpc-message` written by
 * Connect (in headers for trailers-only responses, else in trailers) is
 * re-encoded minimally.
 */
export function useMinimalGrpcMessageEncoding(res: Http2ServerResponse): void {
  const writeHead = res.writeHead as (...args: unknown[]) => Http2ServerResponse;
  const addTrailers = res.addTrailers as (trailers: unknown) => void;
  res.writeHead = function (this: Http2ServerResponse, ...args: unknown[]) {
    for (const arg of args) reencode(arg);
    return writeHead.apply(this, args);
  } as Http2ServerResponse["writeHead"];
  res.addTrailers = function (this: Http2ServerResponse, trailers: unknown) {
    reencode(trailers);
    addTrailers.call(this, trailers);
  } as Http2ServerResponse["addTrailers"];
}
