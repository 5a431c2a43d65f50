// HPACK and its Huffman code against the examples of RFC 7541 (Appendix C),
// and what a hostile peer could send.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { codeLengths, codes, huffmanDecode, huffmanEncode, huffmanLength } from "./huffman.js";
import { HpackDecoder, HpackEncoder, HpackError } from "./hpack.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

describe("Huffman code", () => {
  test("the lengths make a complete prefix code, and the derived codes are the RFC's", () => {
    assert.equal(codeLengths.length, 257);
    assert.equal(
      codeLengths.reduce((sum, len) => sum + 2 ** -len, 0),
      1,
    );
    // A few rows of Appendix B: (symbol, code, bits).
    for (const [sym, code, bits] of [
      [0, 0x1ff8, 13],
      [32, 0x14, 6],
      [48, 0x0, 5],
      [97, 0x3, 5],
      [10, 0x3ffffffc, 30],
      [128, 0xfffe6, 20],
      [255, 0x3ffffee, 26],
      [256, 0x3fffffff, 30],
    ] as const) {
      assert.equal(codes[sym], code, `code of ${sym}`);
      assert.equal(codeLengths[sym], bits, `length of ${sym}`);
    }
  });

  test("encodes the RFC's example and decodes every byte value back", () => {
    const text = "www.example.com";
    const out = Buffer.alloc(huffmanLength(text));
    assert.equal(huffmanEncode(text, out, 0), out.length);
    assert.deepEqual(out, hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"));
    const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join("");
    const buf = Buffer.alloc(huffmanLength(all));
    huffmanEncode(all, buf, 0);
    assert.equal(huffmanDecode(buf, 0, buf.length), all);
  });

  test("bad padding and EOS are refused", () => {
    // "0" is 00000; padded with zeros instead of ones.
    assert.throws(() => huffmanDecode(Buffer.from([0x00]), 0, 1), /padding/);
    // A whole byte of ones is padding longer than 7 bits.
    assert.throws(() => huffmanDecode(Buffer.from([0x07, 0xff]), 0, 2), /padding/);
    // EOS itself (30 ones), padded.
    assert.throws(() => huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4), /EOS/);
  });
});

describe("HPACK", () => {
  test("RFC 7541 C.3: requests without Huffman coding, one table across them", () => {
    const d = new HpackDecoder();
    assert.deepEqual(d.decode(hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d")).fields, [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
    ]);
    assert.deepEqual(d.decode(hex("8286 84be 5808 6e6f 2d63 6163 6865")).fields.slice(3), [
      [":authority", "www.example.com"],
      ["cache-control", "no-cache"],
    ]);
    assert.deepEqual(d.decode(hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65")).fields, [
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ]);
  });

  test("RFC 7541 C.4: the same requests Huffman-coded", () => {
    const d = new HpackDecoder();
    assert.deepEqual(d.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")).fields[3], [":authority", "www.example.com"]);
    assert.deepEqual(d.decode(hex("8286 84be 5886 a8eb 1064 9cbf")).fields[4], ["cache-control", "no-cache"]);
    assert.deepEqual(d.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")).fields[4], ["custom-key", "custom-value"]);
  });

  test("an encoder that indexes and Huffman-codes round-trips through the decoder, and repeats shrink", () => {
    const e = new HpackEncoder({ index: true, huffman: true });
    const d = new HpackDecoder();
    const fields: [string, string][] = [
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/metropolis.node.core.network.workloads.WorkloadNetworking/Attach"],
      [":authority", "localhost"],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
      ["grpc-timeout", "9999m"],
    ];
    const first = e.encode(fields);
    const second = e.encode(fields);
    assert.deepEqual(d.decode(first).fields, fields);
    assert.deepEqual(d.decode(second).fields, fields);
    assert.equal(second.length, fields.length, "every field of the repeat is one indexed byte");
    const plain = new HpackEncoder({ index: false, huffman: false });
    assert.deepEqual(new HpackDecoder().decode(plain.encode(fields)).fields, fields);
  });

  test("a table size update shrinks the table; one above our limit or after a field is refused", () => {
    const d = new HpackDecoder(4096);
    d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65")); // custom-key → index 62
    assert.deepEqual(d.decode(hex("be")).fields, [["custom-key", "custom-value"]]);
    assert.throws(() => d.decode(hex("20 be")), /not in the table/, "size 0 evicts it");
    assert.throws(() => d.decode(hex("3fe21f")), /above the 4096 allowed/); // 4097
    assert.throws(() => d.decode(hex("82 20")), /after a header field/);
  });

  test("malformed blocks are HpackErrors, never crashes", () => {
    const d = new HpackDecoder();
    for (const bad of ["80", "ff", "bf", "41", "4105", "0085ffffffff", "ffffffffffff7f"]) {
      assert.throws(() => d.decode(hex(bad)), HpackError, bad);
    }
  });

  test("a block that expands beyond the header list limit is refused before it is built", () => {
    const d = new HpackDecoder(4096, 16 * 1024);
    // One 4000-byte entry, then indexed 100 times: 400 kB from a 104-byte block.
    const value = "x".repeat(4000);
    const add = Buffer.concat([hex("40 01 61 7f a1 1e"), Buffer.from(value)]); // name "a", value length 4000
    const block = Buffer.concat([add, Buffer.alloc(100, 0xbe)]);
    assert.throws(() => d.decode(block), /header list larger than 16384/);
  });
});
