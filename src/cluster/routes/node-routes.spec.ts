// Kernel tests of the routes to other nodes: a three-node cluster in
// namespaces (test/cluster-topology.ts), one reconciler per node, run in this
// process with a handle in each node's namespace. What a user checks: pods
// reach pods on every other node (ping, both families; TCP, seeing the pod's
// own address), which kind each node got, what ip and bridge show, that a
// second apply or a new instance changes nothing while pings keep answering,
// and that nothing of anyone else is touched.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { assertSandbox, execIn, ip, ipJson, type IpRoute } from "../../../test/sandbox.js";
import { buildClusterTopology, ipBatch, pingFrom, tcpSourceSeen, type ClusterTopology, type TopologyNode } from "../../../test/cluster-topology.js";
import { NodeRoutes, type ReconcileResult } from "./node-routes.js";
import { podMtu } from "./underlay.js";
import { vtepMac } from "./vtep.js";
import type { RoutingMode } from "./wanted.js";
import { execFileSync } from "node:child_process";

assertSandbox();

interface IpFdb {
  mac: string;
  dst?: string;
  flags?: string[];
  state?: string;
}
interface IpNeighDev {
  dst: string;
  lladdr?: string;
  state: string[];
}

const ourRoutes = (n: TopologyNode): IpRoute[] => [
  ...ipJson<IpRoute[]>(["route", "show", "proto", "87"], n.ns.name),
  ...ipJson<IpRoute[]>(["-6", "route", "show", "proto", "87"], n.ns.name),
];
const routeTable = (n: TopologyNode): string[] =>
  ourRoutes(n)
    .map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}${r.flags?.includes("onlink") ? " onlink" : ""}`)
    .sort();
const fdb = (n: TopologyNode, dev = "wnvx0"): IpFdb[] =>
  JSON.parse(execFileSync("bridge", ["-n", n.ns.name, "-json", "fdb", "show", "dev", dev], { encoding: "utf8" }) || "[]") as IpFdb[];
const neighbours = (n: TopologyNode, dev = "wnvx0"): string[] =>
  ipJson<IpNeighDev[]>(["neigh", "show", "dev", dev], n.ns.name)
    .map((e) => `${e.dst} ${e.lladdr} ${e.state.join(",")}`)
    .sort();
const hasLink = (n: TopologyNode, name: string): boolean => ipJson<{ ifname?: string }[]>(["link", "show"], n.ns.name).some((l) => l.ifname === name);

const kindsOf = (r: ReconcileResult): Record<string, string> => Object.fromEntries(r.nodes.map((s) => [s.name, `${s.kind}/${s.state}`]));

/** Pings from every pod to every pod on other nodes, both families; returns the failures. */
async function unreachable(topo: ClusterTopology, nodes = topo.nodes): Promise<string[]> {
  const failed: string[] = [];
  const tries: Promise<void>[] = [];
  for (const a of nodes) for (const pa of a.pods) for (const b of nodes) for (const pb of b.pods) {
    if (a === b) continue;
    for (const addr of [pb.v4, pb.v6]) {
      tries.push(pingFrom(pa.ns, addr).then((ok) => void (ok || failed.push(`${pa.name} -> ${pb.name} ${addr}`))));
    }
  }
  await Promise.all(tries);
  return failed.sort();
}

describe("routes between nodes", () => {
  let topo: ClusterTopology;
  const routers = new Map<string, NodeRoutes>();
  before(() => {
    topo = buildClusterTopology();
  });
  after(async () => {
    await topo?.close();
  });

  /** One reconciler per node in the given mode (a new one when the mode changes), applied to the full view. */
  const applyAll = async (mode: RoutingMode, only?: string[]): Promise<Map<string, ReconcileResult>> => {
    const out = new Map<string, ReconcileResult>();
    for (const n of topo.nodes) {
      if (only && !only.includes(n.name)) continue;
      let r = routers.get(n.name);
      if (r === undefined || r.mode !== mode) {
        r = new NodeRoutes({ handle: topo.handle(n.name), mode });
        routers.set(n.name, r);
      }
      out.set(n.name, await r.apply(topo.viewFor(n.name)));
    }
    return out;
  };

  it("auto: direct inside the subnet, VXLAN across the router; every pod reaches every other on both families", async () => {
    const results = await applyAll("auto");
    assert.deepEqual(Object.fromEntries([...results].map(([n, r]) => [n, kindsOf(r)])), {
      n1: { n2: "direct/installed", n3: "vxlan/installed" },
      n2: { n1: "direct/installed", n3: "vxlan/installed" },
      n3: { n1: "vxlan/installed", n2: "vxlan/installed" },
    });
    for (const r of results.values()) assert.deepEqual(r.problems, []);
    assert.deepEqual(await unreachable(topo), []);
  });

  it("what ip and bridge show on a node: our routes (proto 87), the VXLAN device, its FDB and neighbour entries", () => {
    const [n1, n2, n3] = [topo.node("n1"), topo.node("n2"), topo.node("n3")];
    assert.deepEqual(routeTable(n1), [
      "10.70.2.0/24 via 192.0.2.12 dev eth0",
      "10.70.3.0/24 via 10.70.3.0 dev wnvx0 onlink",
      "fd70:2::/64 via 2001:db8:a::12 dev eth0",
      "fd70:3::/64 via fd70:3:: dev wnvx0 onlink",
    ]);
    const [link] = ipJson<{ address: string; mtu: number; ifalias?: string; linkinfo: { info_kind: string; info_data: { id: number; local: string; port: number; learning: boolean } } }[]>(
      ["-d", "link", "show", "dev", "wnvx0"],
      n1.ns.name,
    );
    assert.ok(link);
    assert.equal(link.linkinfo.info_kind, "vxlan");
    assert.deepEqual([link.linkinfo.info_data.id, link.linkinfo.info_data.local, link.linkinfo.info_data.port, link.linkinfo.info_data.learning], [1, "192.0.2.11", 4789, false]);
    assert.equal(link.address, vtepMac("192.0.2.11"));
    assert.equal(link.address, "02:57:c0:00:02:0b");
    assert.equal(link.mtu, 1450, "the underlay's 1500 less 50 for VXLAN over IPv4");
    assert.equal(link.ifalias, "workloadnet:vxlan");
    // n1 tunnels only to n3.
    assert.deepEqual(
      fdb(n1).map((e) => `${e.mac} ${e.dst} ${e.flags?.join(",")} ${e.state}`),
      [`${vtepMac("198.51.100.13")} 198.51.100.13 self permanent`],
    );
    assert.deepEqual(neighbours(n1), [`10.70.3.0 ${vtepMac("198.51.100.13")} PERMANENT`, `fd70:3:: ${vtepMac("198.51.100.13")} PERMANENT`]);
    // n3 tunnels to both.
    assert.deepEqual(fdb(n3).map((e) => `${e.mac} ${e.dst}`).sort(), [`${vtepMac("192.0.2.11")} 192.0.2.11`, `${vtepMac("192.0.2.12")} 192.0.2.12`].sort());
    assert.equal(routeTable(n2).length, 4);
  });

  it("TCP between pods keeps the pod's own address, direct and over VXLAN, both families", async () => {
    const [p1, p2, p3] = ["n1", "n2", "n3"].map((n) => topo.node(n).pods[0]!);
    assert.equal(await tcpSourceSeen(p1!.ns, p2!.ns, p2!.v4), p1!.v4, "direct, IPv4");
    assert.equal(await tcpSourceSeen(p1!.ns, p3!.ns, p3!.v4), p1!.v4, "VXLAN, IPv4");
    assert.equal(await tcpSourceSeen(p3!.ns, p2!.ns, p2!.v6), p3!.v6, "VXLAN, IPv6 over an IPv4 underlay");
    assert.equal(await tcpSourceSeen(p2!.ns, p1!.ns, p1!.v6), p2!.v6, "direct, IPv6");
  });

  it("the node itself reaches remote pods; over VXLAN from the first address of its own pod prefix", async () => {
    const [n1, n3] = [topo.node("n1"), topo.node("n3")];
    assert.ok(await pingFrom(n1.ns, n3.pods[0]!.v4));
    assert.ok(await pingFrom(n1.ns, n3.pods[0]!.v6));
    assert.ok(await pingFrom(n3.ns, n1.pods[0]!.v6));
    assert.equal(await tcpSourceSeen(n1.ns, n3.pods[0]!.ns, n3.pods[0]!.v4, 7071), "10.70.1.1");
    assert.equal(await tcpSourceSeen(n3.ns, n1.pods[0]!.ns, n1.pods[0]!.v6, 7071), "fd70:3::1");
  });

  it("a second apply and a new instance (a restart) change nothing, and pings keep answering meanwhile", async () => {
    const n1 = topo.node("n1");
    const before = { routes: routeTable(n1), fdb: fdb(n1), neigh: neighbours(n1) };
    const again = await applyAll("auto");
    for (const [name, r] of again) assert.deepEqual(r.changes, { added: 0, updated: 0, removed: 0 }, `${name}: second apply`);
    // Pings from a pod on n3 to pods on n1 and n2, every 20 ms, while new instances adopt the kernel's state.
    const p3 = topo.node("n3").pods[0]!;
    const pinger = (addr: string) =>
      new Promise<string>((resolve) => {
        const c = spawn("ip", ["netns", "exec", p3.ns.name, "ping", "-n", "-i", "0.02", "-c", "60", "-W", "1", addr], { stdio: ["ignore", "pipe", "ignore"] });
        let out = "";
        c.stdout.on("data", (d: Buffer) => (out += d.toString()));
        c.on("close", () => resolve(out));
      });
    const pings = [pinger(n1.pods[0]!.v4), pinger(topo.node("n2").pods[0]!.v6)];
    await new Promise((r) => setTimeout(r, 200));
    routers.clear();
    const restarted = await applyAll("auto");
    for (const [name, r] of restarted) {
      assert.deepEqual(r.changes, { added: 0, updated: 0, removed: 0 }, `${name}: a new instance`);
      assert.ok(r.nodes.every((s) => s.state === "installed"), `${name}: ${JSON.stringify(r.nodes)}`);
    }
    for (const out of await Promise.all(pings)) assert.match(out, / 60 received, 0% packet loss/, out);
    assert.deepEqual({ routes: routeTable(n1), fdb: fdb(n1), neigh: neighbours(n1) }, before);
  });

  it("routes, FDB entries and links of others are never touched; a prefix someone else routes is refused", async () => {
    const n1 = topo.node("n1");
    ipBatch(n1.ns.name, [
      "route add 10.99.0.0/24 via 192.0.2.1 proto static",
      "route add 10.98.0.0/24 via 192.0.2.1 proto 86",
      "link add vxother type vxlan id 77 local 192.0.2.11 dstport 4790 nolearning",
    ]);
    execFileSync("bridge", ["-n", n1.ns.name, "fdb", "append", "02:00:00:00:00:99", "dev", "vxother", "dst", "192.0.2.99", "self", "permanent"]);
    // n2's IPv4 prefix now has someone else's route.
    ip(["route", "replace", "10.70.2.0/24", "via", "192.0.2.1", "proto", "static"], n1.ns.name);
    const r = (await applyAll("auto", ["n1"])).get("n1")!;
    const n2 = r.nodes.find((s) => s.name === "n2")!;
    assert.equal(n2.state, "error");
    assert.match(n2.error ?? "", /10\.70\.2\.0\/24 is already routed by someone else \(proto 4 via 192\.0\.2\.1/);
    assert.equal(r.nodes.find((s) => s.name === "n3")!.state, "installed");
    const all = ipJson<IpRoute[]>(["route", "show"], n1.ns.name).map((x) => `${x.dst} ${x.gateway ?? ""} ${x.protocol ?? ""}`);
    assert.ok(all.includes("10.99.0.0/24 192.0.2.1 static"), all.join("\n"));
    assert.ok(all.includes("10.98.0.0/24 192.0.2.1 86"), all.join("\n"));
    assert.ok(all.includes("10.70.2.0/24 192.0.2.1 static"), "the other route to n2's prefix stays as it was");
    assert.deepEqual(fdb(n1, "vxother").filter((e) => e.mac === "02:00:00:00:00:99").map((e) => e.dst), ["192.0.2.99"]);
    // Gone again: ours comes back.
    ip(["route", "del", "10.70.2.0/24", "proto", "static"], n1.ns.name);
    ipBatch(n1.ns.name, ["route del 10.99.0.0/24", "route del 10.98.0.0/24", "link del vxother"]);
    const fixed = (await applyAll("auto", ["n1"])).get("n1")!;
    assert.deepEqual(kindsOf(fixed), { n2: "direct/installed", n3: "vxlan/installed" });
    assert.ok(routeTable(n1).includes("10.70.2.0/24 via 192.0.2.12 dev eth0"));
  });

  it("drift is repaired: a deleted route, FDB entry or neighbour comes back on the next apply", async () => {
    const n1 = topo.node("n1");
    const want = { routes: routeTable(n1), fdb: fdb(n1), neigh: neighbours(n1) };
    ip(["route", "del", "10.70.3.0/24", "proto", "87"], n1.ns.name);
    ip(["neigh", "del", "fd70:3::", "dev", "wnvx0"], n1.ns.name);
    execFileSync("bridge", ["-n", n1.ns.name, "fdb", "del", vtepMac("198.51.100.13"), "dev", "wnvx0", "dst", "198.51.100.13", "self"]);
    const r = (await applyAll("auto", ["n1"])).get("n1")!;
    assert.deepEqual(r.changes, { added: 3, updated: 0, removed: 0 });
    assert.deepEqual({ routes: routeTable(n1), fdb: fdb(n1), neigh: neighbours(n1) }, want);
  });

  it("the device drifted (MTU and MAC changed, set down, which flushes its routes and neighbours): fixed in place and refilled", async () => {
    const n1 = topo.node("n1");
    const want = { routes: routeTable(n1), fdb: fdb(n1), neigh: neighbours(n1) };
    ipBatch(n1.ns.name, ["link set wnvx0 mtu 1400 address 02:11:11:11:11:11", "link set wnvx0 down"]);
    assert.notDeepEqual(routeTable(n1), want.routes, "the kernel dropped the routes via the downed device");
    const r = (await applyAll("auto", ["n1"])).get("n1")!;
    assert.equal(r.changes.updated, 1, "the device fixed, not recreated");
    assert.ok(r.changes.added >= 2, JSON.stringify(r.changes));
    const [link] = ipJson<{ mtu: number; flags: string[]; address: string }[]>(["link", "show", "dev", "wnvx0"], n1.ns.name);
    assert.equal(link?.mtu, 1450);
    assert.equal(link?.address, vtepMac("192.0.2.11"), "the VTEP MAC the other nodes derive for n1");
    assert.ok(link?.flags.includes("UP"));
    assert.deepEqual({ routes: routeTable(n1), fdb: fdb(n1), neigh: neighbours(n1) }, want);
    assert.deepEqual(await unreachable(topo), []);
  });

  it("the MTU: pods at the VXLAN device's MTU get full-size packets across with DF set; 1500-byte ones do not fit", async () => {
    const [a, b] = [topo.node("n1"), topo.node("n3")];
    const [pa, pb] = [a.pods[0]!, b.pods[0]!];
    const df = async (size: number, addr: string) => (await execIn(pa.ns.name, ["ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", String(size), addr])).code === 0;
    // Pods left at 1500: a full-size IPv4 packet cannot enter the tunnel (1450).
    assert.equal(await df(1472, pb.v4), false);
    for (const [n, pod] of [[a, pa], [b, pb]] as const) {
      ip(["link", "set", "pod0", "mtu", "1450"], n.ns.name);
      ip(["link", "set", "eth0", "mtu", "1450"], pod.ns.name);
    }
    assert.ok(await df(1450 - 28, pb.v4), "IPv4: 1450 bytes with DF");
    assert.ok(await df(1450 - 48, pb.v6), "IPv6: 1450 bytes");
  });

  it("applies called at once run one after another; the last view wins", async () => {
    const n1 = topo.node("n1");
    const r1 = routers.get("n1")!;
    const want = routeTable(n1);
    const [first, second] = await Promise.all([r1.apply(topo.viewFor("n1", (o) => o.filter((x) => x.name !== "n3"))), r1.apply(topo.viewFor("n1"))]);
    assert.deepEqual(kindsOf(first), { n2: "direct/installed" });
    assert.deepEqual(kindsOf(second), { n2: "direct/installed", n3: "vxlan/installed" });
    assert.deepEqual(routeTable(n1), want);
  });

  it("a node readdressed or given a new prefix: its entries follow; removed: they go", async () => {
    const n1 = topo.node("n1");
    const r1 = routers.get("n1")!;
    // n3 readdressed (as n1's source now says) and its IPv4 prefix changed.
    const moved = await r1.apply(
      topo.viewFor("n1", (others) => others.map((o) => (o.name === "n3" ? { ...o, addresses: ["198.51.100.23", "2001:db8:b::23"], prefixes: ["10.70.33.0/24", "fd70:3::/64"] } : o))),
    );
    assert.deepEqual(kindsOf(moved), { n2: "direct/installed", n3: "vxlan/installed" });
    assert.deepEqual(routeTable(n1), [
      "10.70.2.0/24 via 192.0.2.12 dev eth0",
      "10.70.33.0/24 via 10.70.33.0 dev wnvx0 onlink",
      "fd70:2::/64 via 2001:db8:a::12 dev eth0",
      "fd70:3::/64 via fd70:3:: dev wnvx0 onlink",
    ]);
    const mac23 = vtepMac("198.51.100.23");
    assert.deepEqual(fdb(n1).map((e) => `${e.mac} ${e.dst}`), [`${mac23} 198.51.100.23`]);
    assert.deepEqual(neighbours(n1), [`10.70.33.0 ${mac23} PERMANENT`, `fd70:3:: ${mac23} PERMANENT`]);

    // n3 removed from the view: everything for it goes; n2's routes stay.
    const removed = await r1.apply(topo.viewFor("n1", (others) => others.filter((o) => o.name !== "n3")));
    assert.deepEqual(kindsOf(removed), { n2: "direct/installed" });
    assert.deepEqual(routeTable(n1), ["10.70.2.0/24 via 192.0.2.12 dev eth0", "fd70:2::/64 via 2001:db8:a::12 dev eth0"]);
    assert.deepEqual(fdb(n1), []);
    assert.deepEqual(neighbours(n1), []);
    assert.equal(await pingFrom(topo.node("n1").pods[0]!.ns, topo.node("n3").pods[0]!.v4), false, "no route to n3's pods any more");

    // Back as it was: reachable again.
    await r1.apply(topo.viewFor("n1"));
    assert.deepEqual(await unreachable(topo), []);
  });

  it("direct: a node that is not on-link is reported, not routed; vxlan: all over the tunnel; none: nothing of ours left", async () => {
    const n1 = topo.node("n1");
    const direct = (await applyAll("direct", ["n1"])).get("n1")!;
    assert.deepEqual(kindsOf(direct), { n2: "direct/installed", n3: "direct/error" });
    assert.match(direct.nodes.find((s) => s.name === "n3")!.error!, /198\.51\.100\.13 is not on-link from here; 10\.70\.3\.0\/24 not routed/);
    assert.equal(hasLink(n1, "wnvx0"), false, "direct mode has no VXLAN device");
    assert.deepEqual(routeTable(n1), ["10.70.2.0/24 via 192.0.2.12 dev eth0", "fd70:2::/64 via 2001:db8:a::12 dev eth0"]);

    const vx = await applyAll("vxlan");
    for (const [name, r] of vx) assert.ok(r.nodes.every((s) => s.kind === "vxlan" && s.state === "installed"), `${name}: ${JSON.stringify(r.nodes)}`);
    assert.deepEqual(routeTable(n1), [
      "10.70.2.0/24 via 10.70.2.0 dev wnvx0 onlink",
      "10.70.3.0/24 via 10.70.3.0 dev wnvx0 onlink",
      "fd70:2::/64 via fd70:2:: dev wnvx0 onlink",
      "fd70:3::/64 via fd70:3:: dev wnvx0 onlink",
    ]);
    assert.deepEqual(await unreachable(topo), []);

    const none = await applyAll("none");
    for (const [name, r] of none) {
      assert.ok(r.nodes.every((s) => s.kind === "none"), name);
      assert.deepEqual(routeTable(topo.node(name)), [], `${name}: no route of ours`);
      assert.equal(hasLink(topo.node(name), "wnvx0"), false, `${name}: no VXLAN device`);
    }
    assert.equal(await pingFrom(topo.node("n1").pods[0]!.ns, topo.node("n2").pods[0]!.v4), false);

    // A link of our device's name that is not ours: left alone, and the reason shown.
    ip(["link", "add", "wnvx0", "type", "veth", "peer", "name", "wnvx0p"], n1.ns.name);
    const blocked = (await applyAll("vxlan", ["n1"])).get("n1")!;
    assert.match(blocked.problems.join("\n"), /VXLAN device wnvx0: a link named wnvx0 exists and is not ours \(kind veth/);
    assert.deepEqual(kindsOf(blocked), { n2: "vxlan/error", n3: "vxlan/error" });
    assert.match(blocked.nodes[0]!.error!, /no VXLAN device: a link named wnvx0 exists and is not ours/);
    assert.equal(ipJson<{ linkinfo?: { info_kind?: string } }[]>(["-d", "link", "show", "dev", "wnvx0"], n1.ns.name)[0]?.linkinfo?.info_kind, "veth");
    assert.deepEqual(routeTable(n1), []);
    await new NodeRoutes({ handle: topo.handle("n1"), mode: "none" }).cleanup();
    assert.ok(hasLink(n1, "wnvx0"), "cleanup leaves a link that is not ours");
    ip(["link", "del", "wnvx0"], n1.ns.name);
  });

  it("podMtu: the underlay's MTU, less the VXLAN overhead when VXLAN may be used", async () => {
    const h = topo.handle("n1");
    const view = topo.viewFor("n1");
    assert.equal(await podMtu(h, view, "direct"), 1500);
    assert.equal(await podMtu(h, view, "none"), 1500);
    assert.equal(await podMtu(h, view, "auto"), 1450);
    assert.equal(await podMtu(h, view, "vxlan"), 1450);
    const v6only = { ...view, addresses: view.addresses.filter((a) => a.includes(":")) };
    assert.equal(await podMtu(h, v6only, "vxlan"), 1430, "70 bytes over an IPv6 underlay");
    ip(["link", "set", "eth0", "mtu", "9000"], "" + topo.node("n1").ns.name);
    try {
      assert.equal(await podMtu(h, view, "auto"), 8950);
    } finally {
      ip(["link", "set", "eth0", "mtu", "1500"], topo.node("n1").ns.name);
    }
  });
});

describe("an IPv6-only underlay", () => {
  it("nodes with only IPv6 addresses tunnel over IPv6; pods of both families reach each other", async (t) => {
    const topo = buildClusterTopology({ nodesOnA: 1, nodesOnB: 1, prefix: "c6" });
    t.after(() => topo.close());
    const v6view = (name: string) =>
      topo.viewFor(name, (others) => others.map((o) => ({ ...o, addresses: o.addresses.filter((a) => a.includes(":")) })));
    for (const n of topo.nodes) {
      const view = v6view(n.name);
      const r = await new NodeRoutes({ handle: topo.handle(n.name), mode: "auto" }).apply({ ...view, addresses: view.addresses.filter((a) => a.includes(":")) });
      assert.ok(r.nodes.every((s) => s.kind === "vxlan" && s.state === "installed"), JSON.stringify(r));
      assert.equal(r.device?.mtu, 1430);
      assert.match(r.device?.local ?? "", /^2001:db8:/);
    }
    const [link] = ipJson<{ linkinfo: { info_data: { local?: string; local6?: string } } }[]>(["-d", "link", "show", "dev", "wnvx0"], topo.node("n1").ns.name);
    assert.equal(link?.linkinfo.info_data.local ?? link?.linkinfo.info_data.local6, "2001:db8:a::11");
    assert.deepEqual(fdb(topo.node("n1")).map((e) => `${e.mac} ${e.dst}`), [`${vtepMac("2001:db8:b::12")} 2001:db8:b::12`]);
    assert.deepEqual(await unreachable(topo), []);
  });
});
