// IP text <-> bytes, with IPv6 written the RFC 5952 way.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AF_INET, AF_INET6 } from "./constants.js";
import { isIPv4, isIPv6 } from "node:net";
import { bytesToIp, familyOfBytes, ipToBytes, parseIp } from "./ip.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/[: ]/g, ""), "hex");

describe("IPv4", () => {
  it("round-trips", () => {
    for (const a of ["0.0.0.0", "10.88.0.2", "169.254.77.1", "255.255.255.255", "127.0.0.1"]) {
      const b = ipToBytes(a);
      assert.equal(b.length, 4);
      assert.equal(bytesToIp(b), a);
    }
    assert.deepEqual([...ipToBytes("169.254.77.1")], [169, 254, 77, 1]);
  });

  it("refuses bad text", () => {
    for (const bad of ["1.2.3", "10.0.0.256", "1.2.3.4.5", "", "a.b.c.d", "10.0.0.1/32"]) {
      assert.throws(() => ipToBytes(bad), /invalid IP address/, bad);
    }
  });
});

describe("IPv6 formatting (RFC 5952)", () => {
  const cases: [string, string][] = [
    ["0000:0000:0000:0000:0000:0000:0000:0000", "::"],
    ["0000:0000:0000:0000:0000:0000:0000:0001", "::1"],
    ["fe80:0000:0000:0000:0000:0000:0000:0001", "fe80::1"],
    // two equal runs of zeros: the first is compressed
    ["2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"],
    ["fd00:0088:0000:0000:0000:0000:0000:0002", "fd00:88::2"],
    // a single zero group is never compressed
    ["2001:0db8:0000:0001:0001:0001:0001:0001", "2001:db8:0:1:1:1:1:1"],
    ["0001:0002:0003:0004:0005:0006:0007:0000", "1:2:3:4:5:6:7:0"],
    ["0000:0001:0002:0003:0004:0005:0006:0007", "0:1:2:3:4:5:6:7"],
    // the longest run wins, wherever it is
    ["0001:0000:0000:0002:0000:0000:0000:0003", "1:0:0:2::3"],
    ["2001:0db8:0000:0000:0000:0001:0000:0000", "2001:db8::1:0:0"],
    // trailing and leading runs
    ["fd00:0000:0000:0000:0000:0000:0000:0000", "fd00::"],
    ["0000:0000:0000:0000:0000:0000:0a00:0001", "::a00:1"],
    // lower case, no leading zeros
    ["2001:0DB8:ABCD:0012:0000:0000:0000:00ff", "2001:db8:abcd:12::ff"],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ];
  for (const [full, text] of cases) {
    it(`${full} -> ${text}`, () => {
      assert.equal(bytesToIp(hex(full)), text);
      assert.deepEqual(ipToBytes(text), hex(full));
    });
  }

  it("parses non-canonical input to the same bytes", () => {
    assert.deepEqual(ipToBytes("2001:DB8:0:0:1::1"), hex("2001:0db8:0000:0000:0001:0000:0000:0001"));
    assert.deepEqual(ipToBytes("fd00:0088:0:0:0:0:0:0002"), hex("fd00:0088:0000:0000:0000:0000:0000:0002"));
    assert.deepEqual(ipToBytes("::ffff:10.0.0.1"), hex("0000:0000:0000:0000:0000:ffff:0a00:0001"));
    assert.deepEqual(ipToBytes("fe80::1%eth0"), hex("fe80:0000:0000:0000:0000:0000:0000:0001"));
    assert.deepEqual(ipToBytes("1::"), hex("0001:0000:0000:0000:0000:0000:0000:0000"));
  });

  it("agrees with the WHATWG URL serializer on random addresses with zero runs", () => {
    // URL's IPv6 serializer implements the same RFC 5952 compression rules: an independent witness.
    let seed = 12345;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let n = 0; n < 2000; n++) {
      const b = Buffer.alloc(16);
      for (let g = 0; g < 8; g++) if (rnd() % 3 !== 0) b.writeUInt16BE(rnd() % 4 === 0 ? rnd() & 0xffff : rnd() % 3 === 0 ? 1 : 0, g * 2);
      const text = bytesToIp(b);
      // URL writes ::ffff:a.b.c.d-style addresses in hex too, so it compares directly
      assert.equal(`[${text}]`, new URL(`http://[${text}]/`).hostname, b.toString("hex"));
      assert.deepEqual(ipToBytes(text), b);
    }
  });

  it("refuses bad text and bad lengths", () => {
    for (const bad of ["gg::1", "1:2:3:4:5:6:7:8:9", "1::2::3", ":::", "fe80::1/64"]) {
      assert.throws(() => ipToBytes(bad), /invalid IP address/, bad);
    }
    assert.throws(() => bytesToIp(Buffer.alloc(5)), /4 or 16 bytes, not 5/);
    assert.throws(() => bytesToIp(Buffer.alloc(0)), /not 0/);
  });

  it("knows the family of address bytes", () => {
    assert.equal(familyOfBytes(Buffer.alloc(4)), AF_INET);
    assert.equal(familyOfBytes(Buffer.alloc(16)), AF_INET6);
  });
});

describe("the hand-written parser accepts exactly what node:net accepts", () => {
  const pieces = ["", "0", "1", "00", "01", "255", "256", "ff", "FFFF", "fffff", "abcd", "g", ":", "::", ":::", ".", "1.2.3.4", "10.0.0.1", "1.2.3", "1.2.3.04", "%", "%eth0", "%a%b", "%a.b-c:d", "% ", " "];
  it("on 200 000 seeded random compositions, with the same bytes as node's URL parser", () => {
    let seed = 777;
    const rnd = (k: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >>> 8) % k;
    let valid4 = 0;
    let valid6 = 0;
    for (let n = 0; n < 200_000; n++) {
      let text = "";
      const len = 1 + rnd(9);
      for (let k = 0; k < len; k++) text += rnd(3) === 0 ? pieces[rnd(pieces.length)] : rnd(2) === 0 ? ":" : String(rnd(3) === 0 ? rnd(70000).toString(16) : rnd(300));
      const ours = parseIp(text);
      const v4 = isIPv4(text);
      const v6 = isIPv6(text);
      assert.equal(ours?.length, v4 ? 4 : v6 ? 16 : undefined, JSON.stringify(text));
      if (v4) {
        valid4++;
        assert.deepEqual([...ours!], text.split(".").map(Number), text);
      } else if (v6) {
        valid6++;
        const bare = text.split("%")[0]!;
        const canonical = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
        assert.equal(bytesToIp(ours!), canonical, JSON.stringify(text));
      }
    }
    // The generator must reach both kinds often enough for the test to mean something.
    assert.ok(valid4 > 100 && valid6 > 1000, `only ${valid4} IPv4 and ${valid6} IPv6 addresses generated`);
  });

  it("on the edge cases", () => {
    for (const text of ["01.1.1.1", "1.1.1.01", "0.0.0.0", "1.1.1.1 ", "fe80::1%eth0", "fe80::1%", "::ffff:1.2.3.4", "1:2:3:4:5:6:7::", "::1:2:3:4:5:6:7",
      "1::2:3:4:5:6:7:8", ":1::", "1:2:3:4:5:6:1.2.3.4", "::", "0:0:0:0:0:0:0:0", "00000::1", "::FFFF", "1:2:3:4:5:6:7:8:9", "fe80::1%eth0%x", "::1.2.3.04",
      "1::2::3", "::%1", "1.2.3.4::", "::1.2.3.4:1", "1:2:3:4:5:6:7:1.2.3.4", "1::1.2.3.4", "1:", ":1", "1::1:", "fe80::1%a::b"]) {
      assert.equal(parseIp(text)?.length, isIPv4(text) ? 4 : isIPv6(text) ? 16 : undefined, JSON.stringify(text));
    }
  });
});
