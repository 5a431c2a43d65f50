// Attribute (rtattr/nlattr) encoding and parsing: headers, padding, nesting.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { align4, attr, attrMap, attrNested, attrS32, attrString, attrU32, attrU8, parseAttrs, readS32, readString, readU32 } from "./attributes.js";
import { NLA_F_NESTED } from "./constants.js";

describe("attributes", () => {
  it("aligns to 4 bytes", () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 8, 9].map(align4), [0, 4, 4, 4, 4, 8, 8, 12]);
  });

  it("encodes the header (len without padding, type) and zero-pads the payload", () => {
    const a = attr(3, Buffer.from("abcde"));
    // len = 4 + 5 = 9, padded to 12
    assert.equal(a.toString("hex"), "0900" + "0300" + "6162636465" + "000000");
    assert.equal(attrU8(16, 0x106).toString("hex"), "05001000" + "06000000");
    assert.equal(attrU32(4, 1500).toString("hex"), "08000400" + "dc050000");
    assert.equal(attrU32(4, 0xffffffff).toString("hex"), "08000400" + "ffffffff");
    assert.equal(attrS32(28, -1).toString("hex"), "08001c00" + "ffffffff");
    // Strings carry their NUL: "eth0\0" is 5 bytes -> len 9, padded to 12.
    assert.equal(attrString(3, "eth0").toString("hex"), "09000300" + "6574683000" + "000000");
    // An empty payload is a bare header.
    assert.equal(attr(7, Buffer.alloc(0)).toString("hex"), "04000700");
  });

  it("round-trips a run of attributes with mixed padding", () => {
    const run = Buffer.concat([attrString(3, "veth-host"), attrU32(4, 9000), attr(1, Buffer.from([2, 0, 0, 0, 0, 1])), attrU8(16, 6), attrS32(28, -5)]);
    const attrs = parseAttrs(run);
    assert.deepEqual(attrs.map((a) => a.type), [3, 4, 1, 16, 28]);
    assert.deepEqual(attrs.map((a) => a.value.length), [10, 4, 6, 1, 4]);
    assert.equal(readString(attrs[0]!.value), "veth-host");
    assert.equal(readU32(attrs[1]!.value), 9000);
    assert.deepEqual([...attrs[2]!.value], [2, 0, 0, 0, 0, 1]);
    assert.equal(attrs[3]!.value.readUInt8(0), 6);
    assert.equal(readS32(attrs[4]!.value), -5);
    // Re-encoding the parsed attributes gives the same bytes.
    assert.deepEqual(Buffer.concat(attrs.map((a) => attr(a.type, a.value))), run);
  });

  it("parses from an offset and up to an end", () => {
    const hdr = Buffer.from([9, 9, 9, 9, 9, 9, 9, 9]);
    const buf = Buffer.concat([hdr, attrU32(1, 1), attrU32(2, 2), attrU32(3, 3)]);
    assert.deepEqual(parseAttrs(buf, 8).map((a) => a.type), [1, 2, 3]);
    assert.deepEqual(parseAttrs(buf, 8, 8 + 16).map((a) => a.type), [1, 2]);
  });

  it("round-trips nested attributes, two levels deep", () => {
    const nested = attrNested(18, [attrString(1, "veth"), attrNested(2, [attr(1, Buffer.concat([Buffer.alloc(16), attrString(3, "eth0"), attrU32(4, 1400)]))])]);
    const outer = parseAttrs(nested);
    assert.equal(outer.length, 1);
    assert.equal(outer[0]!.type, 18);
    assert.equal(outer[0]!.value.length, nested.readUInt16LE(0) - 4);
    const level1 = attrMap(parseAttrs(outer[0]!.value));
    assert.equal(readString(level1.get(1)), "veth");
    const level2 = attrMap(parseAttrs(level1.get(2)!));
    const peer = level2.get(1)!;
    assert.equal(peer.length, 16 + 12 + 8);
    const peerAttrs = attrMap(parseAttrs(peer, 16));
    assert.equal(readString(peerAttrs.get(3)), "eth0");
    assert.equal(readU32(peerAttrs.get(4)), 1400);
  });

  it("masks NLA_F_NESTED / byte-order flags out of the type", () => {
    const a = attr(2 | NLA_F_NESTED, attrU32(1, 7));
    const [p] = parseAttrs(a);
    assert.equal(p!.type, 2);
    assert.equal(readU32(attrMap(parseAttrs(p!.value)).get(1)), 7);
    assert.equal(parseAttrs(attr(5 | 0x4000, Buffer.alloc(4)))[0]!.type, 5);
  });

  it("stops quietly at a truncated or bogus tail", () => {
    const good = attrU32(1, 42);
    // length says 12 but only 8 bytes remain
    const truncated = Buffer.from("0c000200aabbccdd", "hex");
    assert.deepEqual(parseAttrs(Buffer.concat([good, truncated])).map((a) => a.type), [1]);
    // length < 4 can't be an attribute
    assert.deepEqual(parseAttrs(Buffer.concat([good, Buffer.from("02000300", "hex"), attrU32(4, 1)])).map((a) => a.type), [1]);
    // fewer than 4 bytes left
    assert.deepEqual(parseAttrs(Buffer.concat([good, Buffer.from([1, 2])])).map((a) => a.type), [1]);
    assert.deepEqual(parseAttrs(Buffer.alloc(0)), []);
  });

  it("the last duplicate wins in attrMap", () => {
    const m = attrMap(parseAttrs(Buffer.concat([attrU32(4, 1), attrU32(4, 2)])));
    assert.equal(readU32(m.get(4)), 2);
  });

  it("reads strings with or without NUL, and short integers as undefined", () => {
    assert.equal(readString(Buffer.from("abc\0\0")), "abc");
    assert.equal(readString(Buffer.from("abc")), "abc");
    assert.equal(readString(undefined), undefined);
    assert.equal(readU32(Buffer.from([1, 2, 3])), undefined);
    assert.equal(readU32(undefined), undefined);
    assert.equal(readS32(Buffer.from([0xfe, 0xff, 0xff, 0xff])), -2);
  });
});
