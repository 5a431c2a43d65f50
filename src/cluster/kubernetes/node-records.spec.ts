import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nodeRecord, rawViewFromRecords, recordsEqual } from "./node-records.js";

describe("node records", () => {
  it("keeps the name, spec.podCIDRs and the InternalIP addresses only", () => {
    const r = nodeRecord({
      metadata: { name: "n2", labels: { a: "b" } },
      spec: { podCIDR: "10.70.2.0/24", podCIDRs: ["10.70.2.0/24", "fd70:2::/64"], taints: [] },
      status: { addresses: [{ type: "Hostname", address: "n2" }, { type: "InternalIP", address: "192.0.2.12" }, { type: "ExternalIP", address: "203.0.113.2" }, { type: "InternalIP", address: "2001:db8::12" }] },
    });
    assert.deepEqual(r, { name: "n2", prefixes: ["10.70.2.0/24", "fd70:2::/64"], addresses: ["192.0.2.12", "2001:db8::12"] });
  });

  it("falls back to spec.podCIDR, and tolerates missing parts", () => {
    assert.deepEqual(nodeRecord({ metadata: { name: "old" }, spec: { podCIDR: "10.70.3.0/24" } }), { name: "old", prefixes: ["10.70.3.0/24"], addresses: [] });
    assert.deepEqual(nodeRecord({ metadata: { name: "bare" } }), { name: "bare", prefixes: [], addresses: [] });
    assert.equal(nodeRecord({ metadata: {} }), undefined);
    assert.equal(nodeRecord(null), undefined);
    // Wrong types reach buildView as text, so its problem names them.
    assert.deepEqual(nodeRecord({ metadata: { name: "odd" }, spec: { podCIDRs: [42] }, status: { addresses: [{ type: "InternalIP", address: 7 }] } }), { name: "odd", prefixes: ["42"], addresses: ["7"] });
  });

  it("compares records by what the view uses", () => {
    const a = { name: "n", prefixes: ["10.0.0.0/24"], addresses: ["192.0.2.1"] };
    assert.ok(recordsEqual(a, { ...a }));
    assert.ok(!recordsEqual(a, { ...a, addresses: ["192.0.2.2"] }));
    assert.ok(!recordsEqual(a, undefined));
  });

  it("takes our prefixes and addresses from this node and says why they are missing", () => {
    const n1 = { name: "n1", prefixes: ["10.70.1.0/24"], addresses: ["192.0.2.11"] };
    const n2 = { name: "n2", prefixes: ["10.70.2.0/24"], addresses: ["192.0.2.12"] };
    assert.deepEqual(rawViewFromRecords("n1", new Map([["n1", n1], ["n2", n2]])), { nodeName: "n1", prefixes: n1.prefixes, addresses: n1.addresses, nodes: [n2] });
    assert.equal(rawViewFromRecords("n1", new Map([["n2", n2]])).pendingReason, "node n1 not found in the API");
    assert.equal(rawViewFromRecords("n1", new Map([["n1", { ...n1, prefixes: [] }]])).pendingReason, "node n1 has no spec.podCIDRs yet");
  });
});
