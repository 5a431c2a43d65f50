// The same three-node cluster with its view from a Kubernetes API (the
// stand-in: the one part here that is not the real thing; no kube-apiserver
// can run in this sandbox), each daemon with a kubeconfig and --node-name:
// prefixes from spec.podCIDRs, routes from the InternalIPs; a node waiting for
// its podCIDRs is UNAVAILABLE with the reason; node changes at the API reach
// the kernel; the API server gone for 10 s changes nothing for the pods and
// shows in Status; back, the view resyncs with what changed meanwhile.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { ClusterHarness, tcpPeerSeenBy, waitUntil, type ClusterPod } from "./cluster-harness.js";
import type { TopologyNode } from "./cluster-topology.js";
import { startKubeApiServer, type KubeApiStandIn, type NodeSpec } from "./kube-apiserver/server.js";
import { assertSandbox, ping } from "./sandbox.js";
import { runCni } from "./cni-exec.js";

assertSandbox();

const CTL = fileURLToPath(new URL("../src/cli/workloadnetctl.js", import.meta.url));
let c: ClusterHarness;
let api: KubeApiStandIn;

const specOf = (n: TopologyNode, withPrefixes = true): NodeSpec => ({
  name: n.name,
  internalIPs: [n.address.v4, n.address.v6],
  ...(withPrefixes ? { podCIDRs: [n.prefixes.v4, n.prefixes.v6] } : {}),
});

before(async () => {
  c = await ClusterHarness.startWith(
    (_h, n) => ["--kubeconfig", api.kubeconfigFile(), "--node-name", n.name, "--routing", "auto"],
    0,
    async (h) => {
      const lan = h.joinLan();
      api = await startKubeApiServer({ host: lan.v4 });
      // n3 has no podCIDRs yet: its daemon starts and waits.
      for (const n of h.topo.nodes) api.nodes.add(specOf(n, n.name !== "n3"));
    },
  );
});
after(async () => {
  await c?.close();
  await api?.close();
});

const podOn = (node: string): ClusterPod => c.pods.find((p) => p.node === node)!;
const routeTo = (node: string, dst: string) => c.ourRoutes(node).find((r) => r.dst === dst);

function ctlJson(node: string, ...args: string[]): Record<string, unknown>[] {
  const r = spawnSync(process.execPath, [CTL, "--socket", c.daemon(node).socketPath, "--json", ...args], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function pingAll(): Promise<string[]> {
  const pairs = c.pods.flatMap((a) => c.pods.filter((b) => b.node !== a.node).map((b) => [a, b] as const));
  const results = await Promise.all(pairs.flatMap(([a, b]) => [b.v4, b.v6].map(async (dst) => ({ what: `${a.node} -> ${b.node} ${dst}`, ok: await ping(a.ns.name, dst) }))));
  return results.filter((r) => !r.ok).map((r) => r.what);
}

describe("a cluster of three daemons from the Kubernetes API", () => {
  it("a node without spec.podCIDRs is UNAVAILABLE with the reason until the API gives it one", async () => {
    const n3 = c.daemon("n3");
    const e = await n3.client.status({}).then(
      () => assert.fail("Status succeeded without podCIDRs"),
      (err: unknown) => ConnectError.from(err),
    );
    assert.equal(e.code, Code.Unavailable);
    assert.equal(e.rawMessage, "no pod prefixes yet: node n3 has no spec.podCIDRs yet");
    // The CNI plugin's STATUS (what kubelet asks) says not ready, with the reason.
    const conf = JSON.stringify({ cniVersion: "1.1.0", name: "wl", type: "workloadnet-cni", socket: n3.socketPath });
    const cni = await runCni({ CNI_COMMAND: "STATUS" }, conf, { hostNs: n3.hostNs });
    assert.notEqual(cni.code, 0);
    assert.equal(cni.json?.code, 50);
    assert.match(String(cni.json?.msg), /^plugin not available: no pod prefixes yet: node n3 has no spec\.podCIDRs yet/);
    api.nodes.update(specOf(c.node("n3")));
    await waitUntil("n3 ready", async () => n3.client.status({}).then(() => true, () => false));
    for (const n of c.topo.nodes) await c.attach(n.name, `${n.name}-k8s-pod`);
  });

  it("prefixes and routes from the API: direct to n2, VXLAN to n3, every pod reaches every other on both families", async () => {
    const s = (await c.daemon("n1").client.status({}));
    assert.equal(s.source, "kubernetes");
    assert.equal(s.nodeName, "n1");
    assert.equal(s.nodesKnown, 2);
    assert.equal(s.sourceError, "");
    assert.deepEqual(s.prefixes, [c.node("n1").prefixes.v4, c.node("n1").prefixes.v6]);
    const byName = new Map(ctlJson("n1", "nodes").map((r) => [r.node, r]));
    assert.equal(byName.get("n2")?.route, "direct");
    assert.equal(byName.get("n3")?.route, "vxlan");
    assert.deepEqual(await pingAll(), []);
    const seen = await tcpPeerSeenBy(podOn("n3").ns, podOn("n1").ns, podOn("n1").v6, 7300);
    assert.equal(seen, podOn("n3").v6, "n1's pod sees n3's pod's own IPv6 address over VXLAN");
  });

  it("a Node deleted and added back at the API: its routes follow", async () => {
    const n2 = c.node("n2");
    let t0 = performance.now();
    api.nodes.delete("n2");
    const gone = await waitUntil("n2's routes gone from n1", () => !routeTo("n1", n2.prefixes.v4) && !routeTo("n1", n2.prefixes.v6), 1000, t0);
    t0 = performance.now();
    api.nodes.add(specOf(n2));
    const back = await waitUntil("n2's routes back on n1", () => routeTo("n1", n2.prefixes.v4)?.gateway === n2.address.v4, 1000, t0);
    console.log(`# Node change at the API to the kernel: deleted in ${gone.toFixed(0)} ms, added in ${back.toFixed(0)} ms`);
    assert.ok(await ping(podOn("n1").ns.name, podOn("n2").v4));
  });

  it("the API server stopped for 10 s: pods still attach, detach and talk, Status shows the error; back, a change made meanwhile appears", async () => {
    const d1 = c.daemon("n1");
    await api.stop();
    const stoppedAt = performance.now();
    await waitUntil("n1's Status shows the source error", async () => (await d1.client.status({})).sourceError !== "", 15_000);
    const s = await d1.client.status({});
    assert.match(s.sourceError, /192\.0\.2\.200|ECONNREFUSED|connect/i, s.sourceError);
    assert.equal(s.nodesKnown, 2, "the last view stays in force");

    const during = await c.attach("n1", "n1-during-outage");
    assert.ok(await ping(during.ns.name, podOn("n3").v4), "a pod attached during the outage reaches n3's pod");
    assert.ok(await ping(podOn("n2").ns.name, during.v6), "and n2's pod reaches it");
    await d1.client.detach({ workloadId: "n1-during-outage" });
    c.pods.splice(c.pods.indexOf(during), 1);
    assert.equal(routeTo("n1", c.node("n3").prefixes.v4) !== undefined, true, "no route withdrawn");
    assert.deepEqual(await pingAll(), []);

    // Changed while the API server is away: n2's IPv4 pod prefix moves.
    api.nodes.update({ ...specOf(c.node("n2")), podCIDRs: ["10.70.22.0/24", c.node("n2").prefixes.v6] });
    const left = 10_000 - (performance.now() - stoppedAt);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
    await api.restart();
    const resynced = await waitUntil("the change made during the outage on n1", () => routeTo("n1", "10.70.22.0/24") !== undefined && routeTo("n1", c.node("n2").prefixes.v4) === undefined, 15_000);
    await waitUntil("the source error cleared", async () => (await d1.client.status({})).sourceError === "", 15_000);
    console.log(`# API server back after 10 s: the view resynced in ${resynced.toFixed(0)} ms`);
    api.nodes.update(specOf(c.node("n2")));
    await waitUntil("n2 as it was", () => routeTo("n1", c.node("n2").prefixes.v4) !== undefined);
  });
});
