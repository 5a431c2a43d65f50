import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { allPodPrefixes, buildView } from "./view.js";

describe("cluster view", () => {
  it("takes this node's prefixes and addresses and the other nodes, canonical and sorted", () => {
    const v = buildView({
      nodeName: "n1",
      prefixes: ["10.70.1.0/24", "fd70:1::/64"],
      addresses: ["2001:db8:0::11", "192.0.2.11"],
      nodes: [
        { name: "n3", addresses: ["192.0.2.13"], prefixes: ["10.70.3.0/24"] },
        { name: "n2", addresses: ["2001:db8::12", "192.0.2.12", "192.0.2.99"], prefixes: ["10.70.2.0/24", "fd70:2::/64"] },
      ],
    });
    assert.equal(v.prefixes?.v4?.text, "10.70.1.0/24");
    assert.equal(v.prefixes?.v6?.text, "fd70:1::/64");
    assert.deepEqual(v.addresses, ["192.0.2.11", "2001:db8::11"]);
    assert.deepEqual(v.nodes.map((n) => n.name), ["n2", "n3"]);
    assert.deepEqual(v.nodes[0]!.address, { v4: "192.0.2.12", v6: "2001:db8::12" });
    assert.deepEqual(v.problems, []);
    assert.deepEqual(allPodPrefixes(v).map((p) => p.text), ["10.70.1.0/24", "fd70:1::/64", "10.70.2.0/24", "fd70:2::/64", "10.70.3.0/24"]);
  });

  it("skips a node with a malformed prefix or address and keeps the others", () => {
    const v = buildView({
      prefixes: ["10.70.1.0/24"],
      addresses: [],
      nodes: [
        { name: "bad-prefix", addresses: ["192.0.2.12"], prefixes: ["10.70.2.1/24"] },
        { name: "bad-address", addresses: ["192.0.2.300"], prefixes: ["10.70.3.0/24"] },
        { name: "good", addresses: ["192.0.2.14"], prefixes: ["10.70.4.0/24"] },
      ],
    });
    assert.deepEqual(v.nodes.map((n) => n.name), ["good"]);
    assert.equal(v.problems.length, 2);
    assert.match(v.problems.join("\n"), /node bad-prefix skipped.*host bits set/);
    assert.match(v.problems.join("\n"), /node bad-address skipped.*192\.0\.2\.300/);
  });

  it("refuses another node's prefix that overlaps ours or an earlier node's", () => {
    const v = buildView({
      nodeName: "n1",
      prefixes: ["10.70.0.0/16"],
      addresses: [],
      nodes: [
        { name: "a", addresses: ["192.0.2.12"], prefixes: ["10.70.9.0/24"] },
        { name: "b", addresses: ["192.0.2.13"], prefixes: ["10.71.0.0/24"] },
        { name: "c", addresses: ["192.0.2.14"], prefixes: ["10.71.0.128/25"] },
      ],
    });
    assert.deepEqual(v.nodes.map((n) => n.name), ["b"]);
    assert.match(v.problems[0]!, /node a refused: its pod prefix 10\.70\.9\.0\/24 overlaps 10\.70\.0\.0\/16 of node n1; not routed/);
    assert.match(v.problems[1]!, /node c refused: .* overlaps 10\.71\.0\.0\/24 of node b/);
  });

  it("says why there are no prefixes yet, and leaves ours out of the other nodes", () => {
    const v = buildView({ nodeName: "n1", prefixes: [], addresses: [], nodes: [{ name: "n1", addresses: [], prefixes: ["10.0.0.0/24"] }], pendingReason: "node n1 has no spec.podCIDRs yet" });
    assert.equal(v.prefixes, undefined);
    assert.equal(v.pendingReason, "node n1 has no spec.podCIDRs yet");
    assert.deepEqual(v.nodes, []);
    const bad = buildView({ prefixes: ["10.0.0.0/24", "10.1.0.0/24"], addresses: [], nodes: [] });
    assert.equal(bad.prefixes, undefined);
    assert.match(bad.pendingReason!, /more than one IPv4 prefix/);
  });
});
