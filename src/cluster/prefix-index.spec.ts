// The sorted prefix index against the obvious scan, on prefixes that nest,
// touch and miss, in both families.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePrefix, type Prefix } from "../ipam/prefix.js";
import { PrefixIndex } from "./prefix-index.js";

const overlaps = (a: Prefix, b: Prefix): boolean => a.family === b.family && a.network <= b.last && b.network <= a.last;

describe("PrefixIndex", () => {
  it("finds an overlap exactly when a scan would, whatever the order of insertion", () => {
    const taken = ["10.70.0.0/16", "10.72.4.0/24", "10.0.0.0/24", "fd70:1::/64", "fd00::/48", "192.0.2.128/25"].map(parsePrefix);
    const probes = [
      "10.70.9.0/24", "10.71.0.0/16", "10.0.0.0/8", "10.72.4.128/25", "10.72.5.0/24", "10.0.1.0/24", "9.255.255.0/24",
      "192.0.2.0/25", "192.0.2.0/24", "192.0.2.255/32", "0.0.0.0/0", "fd70:1::/64", "fd70::/16", "fd70:2::/64", "fd00:0:0:1::/64", "::/0", "2001:db8::/32",
    ].map(parsePrefix);
    for (const order of [taken, [...taken].reverse()]) {
      const index = new PrefixIndex<string>();
      for (const p of order) index.add(p, p.text);
      for (const q of probes) {
        const expected = taken.some((t) => overlaps(t, q));
        const found = index.findOverlap(q);
        assert.equal(found !== undefined, expected, q.text);
        if (found) assert.ok(overlaps(found.prefix, q), `${q.text} vs ${found.prefix.text}`);
      }
    }
  });
});
