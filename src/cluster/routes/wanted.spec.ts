// The wanted state from a view, without a kernel: which kind each node gets
// in each mode, what is refused and why, and the VTEP MACs.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildView, type ClusterView } from "../view.js";
import { computeWanted, vxlanNextHop, type HostFacts } from "./wanted.js";
import { vtepMac } from "./vtep.js";
import { parsePrefix } from "../../ipam/prefix.js";

const view: ClusterView = buildView({
  nodeName: "n1",
  prefixes: ["10.70.1.0/24", "fd70:1::/64"],
  addresses: ["192.0.2.11"],
  nodes: [
    { name: "n2", addresses: ["192.0.2.12", "2001:db8:a::12"], prefixes: ["10.70.2.0/24", "fd70:2::/64"] },
    { name: "n3", addresses: ["198.51.100.13"], prefixes: ["10.70.3.0/24", "fd70:3::/64"] },
    { name: "n4", addresses: ["2001:db8:c::14"], prefixes: ["10.70.4.0/24"] },
  ],
});

// n2 is on-link (both families) on eth0 (index 2); the VXLAN device is index 9, over IPv4.
const facts: HostFacts = {
  onLink: new Map([["192.0.2.12", 2], ["2001:db8:a::12", 2]]),
  vxlan: { index: 9, family: 4 },
  foreign: new Map(),
};

const summary = (w: ReturnType<typeof computeWanted>) => ({
  nodes: Object.fromEntries(w.nodes.map((n) => [n.name, `${n.kind}${n.errors.length ? `: ${n.errors.join("; ")}` : ""}`])),
  routes: [...w.routes.values()].map((r) => `${r.prefix.text} via ${r.gateway} dev ${r.oif}${r.onlink ? " onlink" : ""}`),
  fdb: [...w.fdb.values()].map((e) => `${e.mac} ${e.dst}`),
  neighbours: [...w.neighbours.values()].map((n) => `${n.address} ${n.mac}`),
});

describe("the wanted state", () => {
  it("auto: direct for on-link nodes, VXLAN for the rest; a node with no address of the underlay's family is refused", () => {
    const s = summary(computeWanted(view, "auto", facts));
    assert.deepEqual(s.nodes, { n2: "direct", n3: "vxlan", n4: "vxlan: no IPv4 address for the VXLAN underlay; not routed" });
    assert.deepEqual(s.routes, [
      "10.70.2.0/24 via 192.0.2.12 dev 2",
      "fd70:2::/64 via 2001:db8:a::12 dev 2",
      "10.70.3.0/24 via 10.70.3.0 dev 9 onlink",
      "fd70:3::/64 via fd70:3:: dev 9 onlink",
    ]);
    assert.deepEqual(s.fdb, ["02:57:c6:33:64:0d 198.51.100.13"]);
    assert.deepEqual(s.neighbours, ["10.70.3.0 02:57:c6:33:64:0d", "fd70:3:: 02:57:c6:33:64:0d"]);
  });

  it("direct: nodes off-link are errors, never routed", () => {
    const s = summary(computeWanted(view, "direct", facts));
    assert.equal(s.nodes.n2, "direct");
    assert.match(s.nodes.n3!, /^direct: 198\.51\.100\.13 is not on-link from here; 10\.70\.3\.0\/24 not routed.*no IPv6 address to route fd70:3::\/64 via/);
    assert.deepEqual(s.fdb, []);
    assert.equal(s.routes.length, 2);
  });

  it("vxlan: every node over the tunnel, even on-link ones", () => {
    const s = summary(computeWanted(view, "vxlan", facts));
    assert.deepEqual(s.nodes, { n2: "vxlan", n3: "vxlan", n4: "vxlan: no IPv4 address for the VXLAN underlay; not routed" });
    assert.equal(s.fdb.length, 2);
    assert.equal(s.routes.length, 4);
  });

  it("none: nothing", () => {
    const s = summary(computeWanted(view, "none", facts));
    assert.deepEqual(s, { nodes: { n2: "none", n3: "none", n4: "none" }, routes: [], fdb: [], neighbours: [] });
  });

  it("a prefix someone else routes is refused; no VXLAN device is reported on the nodes that need one", () => {
    const s = summary(computeWanted(view, "auto", { ...facts, vxlan: undefined, vxlanProblem: "a link named wnvx0 exists and is not ours", foreign: new Map([["10.70.2.0/24", "proto 4 dev index 3"]]) }));
    assert.equal(s.nodes.n2, "direct: 10.70.2.0/24 is already routed by someone else (proto 4 dev index 3); not routed");
    assert.equal(s.nodes.n3, "vxlan: no VXLAN device: a link named wnvx0 exists and is not ours");
    assert.deepEqual(s.routes, ["fd70:2::/64 via 2001:db8:a::12 dev 2"]);
  });

  it("two nodes with one underlay address: the second is refused (one FDB entry per VTEP)", () => {
    const v = buildView({
      prefixes: ["10.70.1.0/24"],
      addresses: ["192.0.2.11"],
      nodes: [
        { name: "a", addresses: ["198.51.100.13"], prefixes: ["10.70.5.0/24"] },
        { name: "b", addresses: ["198.51.100.13"], prefixes: ["10.70.6.0/24"] },
      ],
    });
    const s = summary(computeWanted(v, "vxlan", facts));
    assert.deepEqual(s.nodes, { a: "vxlan", b: "vxlan: its address 198.51.100.13 is also node a's; not routed" });
  });
});

describe("VTEP MACs and next hops", () => {
  it("IPv4: 02:57 and the address; IPv6: 02 and a hash; always locally administered unicast", () => {
    assert.equal(vtepMac("192.0.2.12"), "02:57:c0:00:02:0c");
    assert.equal(vtepMac("10.0.0.1"), "02:57:0a:00:00:01");
    const m6 = vtepMac("2001:db8::12");
    assert.match(m6, /^02(:[0-9a-f]{2}){5}$/);
    assert.equal(vtepMac("2001:db8:0::12"), m6, "the same address in another spelling");
    assert.notEqual(vtepMac("2001:db8::13"), m6);
  });

  it("the next hop of a VXLAN route is the prefix's network address", () => {
    assert.equal(vxlanNextHop(parsePrefix("10.70.3.0/24")), "10.70.3.0");
    assert.equal(vxlanNextHop(parsePrefix("fd70:3::/64")), "fd70:3::");
  });
});
