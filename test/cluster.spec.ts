// Three nodes, each its own real workloadnetd with a pod, the cluster view from
// each node's prefix file, --routing auto: n1 and n2 share a subnet (direct
// routes), n3 sits behind a router (VXLAN). Checked as a user would: pings and
// TCP between every pair of pods on both families with the pods' own source
// addresses, routes in the kernel following the file, a SIGKILLed daemon's
// traffic going on, and --routing none taking ours away.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { ClusterHarness, pingRun, tcpPeerSeenBy, waitUntil, type ClusterPod } from "./cluster-harness.js";
import { assertSandbox, ip, ping } from "./sandbox.js";

assertSandbox();

const CTL = fileURLToPath(new URL("../src/cli/workloadnetctl.js", import.meta.url));
let c: ClusterHarness;

before(async () => {
  c = await ClusterHarness.start(["--routing", "auto", "--resync-interval", "1"]);
});
after(() => c?.close());

const podOn = (node: string): ClusterPod => c.pods.find((p) => p.node === node)!;
const pairs = (): [ClusterPod, ClusterPod][] => c.pods.flatMap((a) => c.pods.filter((b) => b.node !== a.node).map((b): [ClusterPod, ClusterPod] => [a, b]));
const routeTo = (node: string, dst: string) => c.ourRoutes(node).find((r) => r.dst === dst);

function nodesJson(node: string): Record<string, unknown>[] {
  const r = spawnSync(process.execPath, [CTL, "--socket", c.daemon(node).socketPath, "--json", "nodes"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("a cluster of three daemons from prefix files, --routing auto", () => {
  it("auto routes n2 directly and n3 over VXLAN; workloadnetctl nodes says so", () => {
    const n1 = c.node("n1");
    const direct = routeTo("n1", c.node("n2").prefixes.v4);
    assert.ok(direct, `a route of ours to n2's pods on n1: ${JSON.stringify(c.ourRoutes("n1"))}`);
    assert.equal(direct.gateway, c.node("n2").address.v4, "direct: via n2's address");
    assert.equal(direct.dev, "eth0");
    const tunnelled = routeTo("n1", c.node("n3").prefixes.v4);
    assert.ok(tunnelled, "a route of ours to n3's pods on n1");
    assert.notEqual(tunnelled.dev, "eth0", "n3's pods are not reached over the underlay link directly");
    const vx = ip(["-d", "link", "show", "dev", tunnelled.dev!], n1.ns.name);
    assert.match(vx, /vxlan id \d+/, "through our VXLAN device");
    assert.match(vx, /nolearning/);
    assert.ok(routeTo("n1", c.node("n3").prefixes.v6), "and for IPv6");

    const rows = nodesJson("n1");
    const byName = new Map(rows.map((r) => [r.node, r]));
    assert.equal(byName.get("n1")?.route, "local");
    assert.equal(byName.get("n2")?.route, "direct");
    assert.equal(byName.get("n3")?.route, "vxlan");
    for (const n of ["n1", "n2", "n3"]) assert.equal(byName.get(n)?.state, "ok", JSON.stringify(byName.get(n)));
    // Unless --mtu is given, pods leave room for VXLAN's headers (the underlay's 1500 less 50 over IPv4).
    const podLink = JSON.parse(ip(["-json", "link", "show", "eth0"], podOn("n1").ns.name)) as { mtu: number }[];
    assert.equal(podLink[0]!.mtu, 1450);
  });

  it("every pod reaches every pod on the other nodes, IPv4 and IPv6", async () => {
    const results = await Promise.all(
      pairs().flatMap(([a, b]) => [b.v4, b.v6].map(async (dst) => ({ what: `${a.node} pod -> ${b.node} pod ${dst}`, ok: await ping(a.ns.name, dst) }))),
    );
    assert.deepEqual(results.filter((r) => !r.ok).map((r) => r.what), []);
    assert.equal(results.length, 12);
  });

  it("a TCP connection between pods on different nodes: the far end sees the pod's own address", async () => {
    let port = 7100;
    for (const [a, b] of pairs()) {
      for (const family of ["v4", "v6"] as const) {
        const seen = await tcpPeerSeenBy(a.ns, b.ns, b[family], port++);
        // IPv4 peers may be shown IPv4-mapped by a dual-stack listener; ours listens on the address itself.
        assert.equal(seen, a[family], `${a.node} -> ${b.node} over IPv${family === "v4" ? 4 : 6}`);
      }
    }
  });

  it("a node removed, re-added and readdressed in the file: the routes follow within a second", async () => {
    const n3 = c.node("n3");
    const n2 = c.node("n2");
    const vxDev = routeTo("n1", n3.prefixes.v4)!.dev!;
    // The device goes with the last node that needs it; then no entry is left either.
    const fdb = (): string => execFileSync("bridge", ["-n", c.node("n1").ns.name, "fdb", "show"], { encoding: "utf8" }).split("\n").filter((l) => l.includes(`dev ${vxDev} `)).join("\n");
    assert.match(fdb(), new RegExp(`dst ${n3.address.v4.replace(/\./g, "\\.")} `), "a forwarding entry to n3's VTEP");
    let t0 = performance.now();
    c.writeView("n1", (others) => others.filter((o) => o.name !== "n3"));
    const removed = await waitUntil("n3's routes gone from n1", () => !routeTo("n1", n3.prefixes.v4) && !routeTo("n1", n3.prefixes.v6), 1000, t0);
    assert.equal(await ping(podOn("n1").ns.name, podOn("n3").v4), false, "n3's pods are no longer routed from n1");
    assert.doesNotMatch(fdb(), new RegExp(`dst ${n3.address.v4.replace(/\./g, "\\.")} `), "n3's forwarding entry is gone too");

    t0 = performance.now();
    c.writeView("n1");
    const added = await waitUntil("n3's routes back on n1", () => routeTo("n1", n3.prefixes.v4) !== undefined && routeTo("n1", n3.prefixes.v6) !== undefined, 1000, t0);
    assert.ok(await ping(podOn("n1").ns.name, podOn("n3").v4), "n1's pod reaches n3's again");

    // n2's prefix moved and its address changed (to one that does not answer): both follow.
    t0 = performance.now();
    c.writeView("n1", (others) => others.map((o) => (o.name === "n2" ? { ...o, addresses: ["192.0.2.99", n2.address.v6], prefixes: ["10.70.22.0/24", n2.prefixes.v6] } : o)));
    const readdressed = await waitUntil(
      "n2's new prefix via its new address",
      () => routeTo("n1", "10.70.22.0/24")?.gateway === "192.0.2.99" && routeTo("n1", n2.prefixes.v4) === undefined,
      1000,
      t0,
    );
    c.writeView("n1");
    await waitUntil("n2 back as it was", () => routeTo("n1", n2.prefixes.v4)?.gateway === n2.address.v4 && routeTo("n1", "10.70.22.0/24") === undefined);
    assert.ok(await ping(podOn("n1").ns.name, podOn("n2").v4));
    console.log(`# routes followed the file: removed in ${removed.toFixed(0)} ms, added in ${added.toFixed(0)} ms, readdressed in ${readdressed.toFixed(0)} ms`);
  });

  it("a route of ours deleted by hand comes back at the next resync; a route not ours is left alone", async () => {
    const n1 = c.node("n1").ns.name;
    const dst = c.node("n2").prefixes.v4;
    ip(["route", "del", dst, "proto", "87"], n1);
    assert.equal(routeTo("n1", dst), undefined);
    // Someone else's route on n1, for a prefix no node has.
    ip(["route", "add", "10.99.0.0/24", "via", c.node("n2").address.v4, "proto", "static"], n1);
    const back = await waitUntil("the deleted route back", () => routeTo("n1", dst)?.gateway === c.node("n2").address.v4, 5000);
    console.log(`# drift repaired in ${back.toFixed(0)} ms (--resync-interval 1)`);
    assert.match(ip(["route", "show", "10.99.0.0/24"], n1), /via 192\.0\.2\.12 .*proto static/, "the foreign route is untouched");
    ip(["route", "del", "10.99.0.0/24"], n1);
    assert.ok(await ping(podOn("n1").ns.name, podOn("n2").v4));
  });

  it("a daemon SIGKILLed and restarted: pings across nodes keep answering", async () => {
    const from = podOn("n1");
    const count = 100;
    const interval = 0.03;
    const runs = Promise.all([pingRun(from.ns, podOn("n2").v4, count, interval), pingRun(from.ns, podOn("n3").v6, count, interval)]);
    await new Promise((r) => setTimeout(r, 600));
    const d = c.daemon("n1");
    await d.kill();
    const routesWhileDown = c.ourRoutes("n1").length;
    await d.restart();
    const [direct, tunnelled] = await runs;
    const lost = direct.sent - direct.received + (tunnelled.sent - tunnelled.received);
    console.log(`# SIGKILL and restart of n1's daemon: ${lost} of ${direct.sent + tunnelled.sent} pings lost (direct ${direct.sent - direct.received}, vxlan ${tunnelled.sent - tunnelled.received})`);
    assert.equal(routesWhileDown, 4, "the kernel kept the routes to n2 and n3 (both families) while no daemon ran");
    assert.ok(lost <= 2, `at most 2 of ${direct.sent + tunnelled.sent} pings lost, got ${lost}`);
    // The new daemon adopted the routes and still attaches.
    await d.waitForLog((l) => l.msg === "cluster view applied");
    assert.equal(c.ourRoutes("n1").length, 4);
    const again = await c.attach("n1", "n1-after-restart");
    assert.ok(await ping(again.ns.name, podOn("n3").v4), "a pod attached after the restart reaches n3's pod");
  });

  it("a node removed while the daemon was SIGKILLed: the restarted daemon removes its routes and the VXLAN device it no longer needs", async () => {
    const d = c.daemon("n1");
    const n3 = c.node("n3");
    const vxDev = routeTo("n1", n3.prefixes.v4)!.dev!;
    await d.kill();
    c.writeView("n1", (others) => others.filter((o) => o.name !== "n3"));
    assert.ok(routeTo("n1", n3.prefixes.v4), "while no daemon runs, the kernel keeps the route to n3");
    await d.restart();
    await waitUntil("n3's routes gone from n1 after the restart", () => !routeTo("n1", n3.prefixes.v4) && !routeTo("n1", n3.prefixes.v6));
    assert.ok(routeTo("n1", c.node("n2").prefixes.v4), "n2's direct route was adopted, not removed");
    const vx = JSON.parse(ip(["-json", "-d", "link", "show", "type", "vxlan"], c.node("n1").ns.name)) as { ifname: string }[];
    assert.deepEqual(vx.map((l) => l.ifname).filter((n) => n === vxDev), [], "no node needs the tunnel: the device went, with its entries");
    assert.ok(await ping(podOn("n1").ns.name, podOn("n2").v4), "n2 still reachable");
    c.writeView("n1");
    await waitUntil("n3's routes back on n1", () => routeTo("n1", n3.prefixes.v4) !== undefined);
    assert.ok(await ping(podOn("n1").ns.name, podOn("n3").v4), "n3 reachable again");
  });

  it("--routing none takes our routes and VXLAN device away; auto brings them back", async () => {
    const d = c.daemon("n1");
    await d.stop({ expectCleanExit: true });
    assert.equal(c.ourRoutes("n1").length, 4, "stopping the daemon leaves the routes in place");
    const args = (mode: string) => ["--prefix-file", c.file("n1"), "--routing", mode];
    await d.restart(10_000, args("none"));
    await waitUntil("no routes of ours on n1", () => c.ourRoutes("n1").length === 0);
    const vx = JSON.parse(ip(["-json", "-d", "link", "show", "type", "vxlan"], c.node("n1").ns.name)) as unknown[];
    assert.deepEqual(vx, [], "no VXLAN device left");
    assert.equal(await ping(podOn("n1").ns.name, podOn("n2").v4), false, "n1's pods are not routed to n2's by us");
    await d.stop({ expectCleanExit: true });
    await d.restart(10_000, args("auto"));
    await waitUntil("routes of ours back on n1", () => c.ourRoutes("n1").length === 4);
    assert.ok(await ping(podOn("n1").ns.name, podOn("n2").v4));
  });
});
