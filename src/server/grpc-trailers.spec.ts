import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeGrpcMessage, fixGrpcStatusHeaders } from "./grpc-trailers.js";

test("only bytes outside printable ASCII and '%' are escaped", () => {
  assert.equal(encodeGrpcMessage("netns /run/netns/x: a,b=c?#&+@"), "netns /run/netns/x: a,b=c?#&+@");
  assert.equal(encodeGrpcMessage("100%"), "100%25");
  assert.equal(encodeGrpcMessage("a\nb\tc"), "a%0Ab%09c");
  assert.equal(encodeGrpcMessage("ü"), "%C3%BC");
  for (const s of ["x/y %41 ü ✓\n", ""]) assert.equal(decodeURIComponent(encodeGrpcMessage(s)), s);
});

test("Connect's message encoding is replaced by the minimal one", () => {
  const h: Record<string, unknown> = { "grpc-status": "5", "grpc-message": encodeURIComponent("no /run/netns/x, 100%") };
  fixGrpcStatusHeaders(h);
  assert.deepEqual(h, { "grpc-status": "5", "grpc-message": "no /run/netns/x, 100%25" });
});

test("a request parse failure becomes INVALID_ARGUMENT", () => {
  const h: Record<string, unknown> = { "grpc-status": "13", "grpc-message": encodeURIComponent("parse binary: premature EOF") };
  fixGrpcStatusHeaders(h);
  assert.deepEqual(h, { "grpc-status": "3", "grpc-message": "malformed request message: premature EOF" });
  const other: Record<string, unknown> = { "grpc-status": "13", "grpc-message": "internal%20error" };
  fixGrpcStatusHeaders(other);
  assert.deepEqual(other, { "grpc-status": "13", "grpc-message": "internal error" });
  const none: Record<string, unknown> = { "content-type": "application/grpc" };
  fixGrpcStatusHeaders(none);
  assert.deepEqual(none, { "content-type": "application/grpc" });
});
