import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  addressToBigint,
  addressToBuffer,
  bigintToAddress,
  bufferToAddress,
  canonicalAddress,
  contains,
  parseAddress,
  parsePrefix,
  prefixesEqual,
} from "./prefix.js";

describe("addresses", () => {
  it("converts IPv4 text ↔ bigint ↔ bytes", () => {
    assert.equal(addressToBigint("10.88.0.2"), 0x0a580002n);
    assert.equal(bigintToAddress(0x0a580002n, 4), "10.88.0.2");
    assert.deepEqual([...addressToBuffer("10.88.0.2")], [10, 88, 0, 2]);
    assert.equal(bufferToAddress(Buffer.from([255, 255, 255, 255])), "255.255.255.255");
  });

  it("writes IPv6 in compressed canonical form", () => {
    assert.equal(canonicalAddress("FD00:0088:0000:0000:0000:0000:0000:0002"), "fd00:88::2");
    assert.equal(canonicalAddress("::"), "::");
    assert.equal(canonicalAddress("::1"), "::1");
    assert.equal(canonicalAddress("fd00::"), "fd00::");
    // A single zero group is not compressed; the longest (then leftmost) run is.
    assert.equal(canonicalAddress("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
    assert.equal(canonicalAddress("1:0:0:2:0:0:0:3"), "1:0:0:2::3");
    assert.equal(canonicalAddress("1:0:0:2:3:0:0:4"), "1::2:3:0:0:4");
    assert.equal(canonicalAddress("::ffff:10.0.0.1"), "::ffff:a00:1");
    assert.equal(canonicalAddress("1:2:3:4:5:6:7::"), "1:2:3:4:5:6:7:0");
  });

  it("round-trips IPv6 through bytes", () => {
    const buf = addressToBuffer("fd00:88::2");
    assert.equal(buf.length, 16);
    assert.equal(buf[0], 0xfd);
    assert.equal(buf[15], 2);
    assert.equal(bufferToAddress(buf), "fd00:88::2");
  });

  it("rejects bad addresses", () => {
    for (const bad of ["10.0.0.300", "010.0.0.1", "1.2.3", "fe80::1%eth0", "1::2::3", "", "x"]) {
      assert.throws(() => parseAddress(bad), /is not a valid IPv[46] address/, bad);
    }
    assert.throws(() => bigintToAddress(1n << 32n, 4), RangeError);
    assert.throws(() => bufferToAddress(Buffer.alloc(5)), /4 or 16 bytes/);
  });
});

describe("parsePrefix", () => {
  it("parses IPv4 and IPv6", () => {
    const p4 = parsePrefix("10.88.0.0/24");
    assert.equal(p4.family, 4);
    assert.equal(p4.bits, 24);
    assert.equal(p4.network, 0x0a580000n);
    assert.equal(p4.size, 256n);
    assert.equal(bigintToAddress(p4.last, 4), "10.88.0.255");
    assert.equal(p4.text, "10.88.0.0/24");
    assert.equal(String(p4), "10.88.0.0/24");

    const p6 = parsePrefix("FD00:88:0::/64");
    assert.equal(p6.family, 6);
    assert.equal(p6.text, "fd00:88::/64");
    assert.equal(p6.size, 1n << 64n);
  });

  it("explains what is wrong", () => {
    const cases: Array<[string, RegExp]> = [
      ["10.0.0.300/24", /invalid IPv4 prefix "10\.0\.0\.300\/24": "10\.0\.0\.300" is not a valid IPv4 address$/],
      ["10.0.0.0", /invalid IPv4 prefix "10\.0\.0\.0": missing "\/length"/],
      ["10.0.0.0/33", /prefix length must be a number from 0 to 32, got "33"/],
      ["10.0.0.0/", /prefix length must be/],
      ["10.0.0.0/0x18", /prefix length must be/],
      ["10.0.0.0/024", /prefix length must be/],
      ["fd00::/129", /invalid IPv6 prefix .*from 0 to 128/],
      ["fd00::zz/64", /invalid IPv6 prefix "fd00::zz\/64": "fd00::zz" is not a valid IPv6 address$/],
      ["10.88.0.5/24", /invalid IPv4 prefix "10\.88\.0\.5\/24": host bits set in 10\.88\.0\.5\/24 \(did you mean 10\.88\.0\.0\/24\?\)$/],
      ["fd00:88::1/64", /host bits set .*did you mean fd00:88::\/64/],
    ];
    for (const [input, re] of cases) assert.throws(() => parsePrefix(input), re, input);
  });

  it("answers contains() by family and range", () => {
    const p = parsePrefix("10.88.0.0/30");
    assert.equal(contains(p, "10.88.0.0"), true);
    assert.equal(contains(p, "10.88.0.3"), true);
    assert.equal(contains(p, "10.88.0.4"), false);
    assert.equal(contains(p, "10.87.255.255"), false);
    assert.equal(contains(p, "::a58:1"), false, "other family");
    assert.equal(p.contains(0x0a580002n), true);
    assert.equal(contains(parsePrefix("0.0.0.0/0"), "255.255.255.255"), true);
    assert.equal(contains(parsePrefix("fd00:88::/64"), "fd00:88::ffff:ffff:ffff:ffff"), true);
    assert.equal(contains(parsePrefix("fd00:88::/64"), "fd00:89::"), false);
  });

  it("compares prefix sets", () => {
    assert.equal(prefixesEqual({ v4: parsePrefix("10.0.0.0/8") }, { v4: parsePrefix("10.0.0.0/8") }), true);
    assert.equal(prefixesEqual({ v4: parsePrefix("10.0.0.0/8") }, { v4: parsePrefix("10.0.0.0/9") }), false);
    assert.equal(prefixesEqual(undefined, {}), true);
    assert.equal(prefixesEqual({ v6: parsePrefix("fd00::/64") }, {}), false);
  });
});
