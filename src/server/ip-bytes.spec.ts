import { test } from "node:test";
import assert from "node:assert/strict";
import { bytesToIp, ipToBytes } from "./ip-bytes.js";

test("IPv4 text becomes 4 bytes", () => {
  assert.deepEqual(Array.from(ipToBytes("10.88.0.2")), [10, 88, 0, 2]);
  assert.deepEqual(Array.from(ipToBytes("255.255.255.255")), [255, 255, 255, 255]);
});

test("IPv6 text becomes 16 bytes", () => {
  assert.deepEqual(
    Array.from(ipToBytes("fd00:88::2")),
    [0xfd, 0, 0, 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
  );
  assert.deepEqual(Array.from(ipToBytes("::")), new Array(16).fill(0));
  assert.deepEqual(Array.from(ipToBytes("::1")), [...new Array(15).fill(0), 1]);
  assert.deepEqual(
    Array.from(ipToBytes("1:2:3:4:5:6:7:8")),
    [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8],
  );
  assert.deepEqual(
    Array.from(ipToBytes("::ffff:10.0.0.1")),
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1],
  );
  assert.deepEqual(Array.from(ipToBytes("FE80::ABCD")).slice(14), [0xab, 0xcd]);
});

test("round trip back to text", () => {
  for (const ip of ["10.88.0.2", "fd00:88::2", "::", "::1", "1:2:3:4:5:6:7:8", "fe80::1", "1::", "1:0:0:2::3"]) {
    assert.equal(bytesToIp(ipToBytes(ip)), ip);
  }
  assert.equal(bytesToIp(ipToBytes("1:0:2:3:4:5:6:7")), "1:0:2:3:4:5:6:7");
});

test("anything else is refused", () => {
  for (const bad of ["", "10.88.0", "10.88.0.256", "fe80::1%eth0", "10.88.0.0/24", "hello", ":::"]) {
    assert.throws(() => ipToBytes(bad), TypeError, bad);
  }
  assert.throws(() => bytesToIp(new Uint8Array(5)), TypeError);
});
