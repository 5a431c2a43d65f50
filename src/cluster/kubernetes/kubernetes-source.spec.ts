// The Kubernetes source against the API stand-in (HTTPS, bearer token, the
// real list/watch protocol): what the view says after each thing a cluster
// or its API server can do.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type KubeApiStandIn, startKubeApiServer } from "../../../test/kube-apiserver/server.js";
import type { ClusterView } from "../view.js";
import { createKubernetesSource, type KubernetesSource } from "./index.js";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

async function waitFor<T>(what: string, ms: number, get: () => T | undefined | false): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** What a user reads off a view: this node's prefixes and every other node. */
function summary(v: ClusterView) {
  return {
    prefixes: [v.prefixes?.v4?.text, v.prefixes?.v6?.text].filter(Boolean),
    addresses: v.addresses,
    nodes: Object.fromEntries(v.nodes.map((n) => [n.name, { addresses: n.addresses, prefixes: [n.prefixes.v4?.text, n.prefixes.v6?.text].filter(Boolean) }])),
    pendingReason: v.pendingReason,
  };
}

const fast = { watchIdleMs: 1000, listTimeoutMs: 1000, backoffInitialMs: 50, backoffMaxMs: 300 };

describe("kubernetes source against the API stand-in", () => {
  let api: KubeApiStandIn;
  const sources: KubernetesSource[] = [];

  before(async () => {
    api = await startKubeApiServer();
  });
  after(async () => {
    for (const s of sources) s.close();
    await api.close();
  });

  async function source(nodeName: string, extra: { kubeconfig?: string } = {}) {
    const s = await createKubernetesSource({ nodeName, kubeconfig: extra.kubeconfig ?? api.kubeconfigFile(), log: quiet, ...fast });
    sources.push(s);
    await s.start();
    return s;
  }

  function reset() {
    for (const n of api.nodes.list()) api.nodes.delete(n.metadata.name);
  }

  it("gives this node's prefixes and addresses and the other nodes from the first list", async () => {
    reset();
    api.nodes.add({ name: "n1", podCIDRs: ["10.70.1.0/24", "fd70:1::/64"], internalIPs: ["192.0.2.11", "2001:db8::11"], otherAddresses: [{ type: "ExternalIP", address: "203.0.113.1" }] });
    api.nodes.add({ name: "n2", podCIDRs: ["10.70.2.0/24", "fd70:2::/64"], internalIPs: ["192.0.2.12"] });
    // An old-style node with spec.podCIDR only.
    api.nodes.add({ name: "n3", podCIDR: "10.70.3.0/24", internalIPs: ["192.0.2.13"] });
    const s = await source("n1");
    assert.equal(s.lastError(), undefined);
    assert.ok(s.lastSync() !== undefined);
    assert.deepEqual(summary(s.current()), {
      prefixes: ["10.70.1.0/24", "fd70:1::/64"],
      addresses: ["192.0.2.11", "2001:db8::11"],
      nodes: {
        n2: { addresses: ["192.0.2.12"], prefixes: ["10.70.2.0/24", "fd70:2::/64"] },
        n3: { addresses: ["192.0.2.13"], prefixes: ["10.70.3.0/24"] },
      },
      pendingReason: undefined,
    });
    assert.equal(s.stats().nodesKnown, 3);
    // Read-only: nothing but GETs of nodes.
    assert.deepEqual([...new Set(api.requests.map((r) => `${r.method} ${r.path}`))], ["GET /api/v1/nodes"]);
    s.close();
  });

  it("says why this node has no prefixes yet, and takes them when the control plane sets them", async () => {
    reset();
    api.nodes.add({ name: "n2", podCIDRs: ["10.70.2.0/24"], internalIPs: ["192.0.2.12"] });
    const s = await source("n1");
    assert.equal(s.current().prefixes, undefined);
    assert.equal(s.current().pendingReason, "node n1 not found in the API");
    api.nodes.add({ name: "n1", internalIPs: ["192.0.2.11"] });
    await waitFor("pending: no podCIDRs", 1000, () => s.current().pendingReason === "node n1 has no spec.podCIDRs yet");
    api.nodes.update({ name: "n1", podCIDRs: ["10.70.1.0/24"], internalIPs: ["192.0.2.11"] });
    const v = await waitFor("prefixes set", 1000, () => s.current().prefixes && s.current());
    assert.equal(v.prefixes?.v4?.text, "10.70.1.0/24");
    assert.equal(v.pendingReason, undefined);
    s.close();
  });

  it("follows nodes added, readdressed and deleted within a second, one change per burst", async () => {
    reset();
    api.nodes.add({ name: "n1", podCIDRs: ["10.70.1.0/24"], internalIPs: ["192.0.2.11"] });
    const s = await source("n1");
    const seen: ClusterView[] = [];
    s.onChange((v) => seen.push(v));
    api.nodes.add({ name: "n4", podCIDRs: ["10.70.4.0/24"], internalIPs: ["192.0.2.14"] });
    await waitFor("n4 added", 1000, () => s.current().nodes.some((n) => n.name === "n4"));
    api.nodes.update({ name: "n4", podCIDRs: ["10.70.44.0/24"], internalIPs: ["192.0.2.44"] });
    await waitFor("n4 readdressed", 1000, () => s.current().nodes.find((n) => n.name === "n4")?.address.v4 === "192.0.2.44");
    assert.equal(s.current().nodes[0]!.prefixes.v4?.text, "10.70.44.0/24");
    api.nodes.delete("n4");
    await waitFor("n4 deleted", 1000, () => s.current().nodes.length === 0);
    assert.equal(seen.length, 3);
    // A burst of 50 changes is one rebuild, and a change that changes nothing routed is none.
    seen.length = 0;
    for (let i = 0; i < 50; i++) api.nodes.add({ name: `b${i}`, podCIDRs: [`10.71.${i}.0/24`], internalIPs: [`192.0.2.${100 + i}`] });
    await waitFor("burst applied", 1000, () => s.current().nodes.length === 50);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(seen.length, 1);
    api.nodes.update({ name: "b0", podCIDRs: ["10.71.0.0/24"], internalIPs: ["192.0.2.100"], otherAddresses: [{ type: "ExternalIP", address: "203.0.113.9" }] });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(seen.length, 1);
    s.close();
  });

  it("accepts bookmarks and resumes from their resourceVersion", async () => {
    reset();
    api.nodes.add({ name: "n1", podCIDRs: ["10.70.1.0/24"], internalIPs: ["192.0.2.11"] });
    const s = await source("n1");
    await waitFor("watch open", 1000, () => api.openWatches() === 1);
    // Other objects were written: the resourceVersion moved on without a node event.
    const bookmarkRv = api.bumpResourceVersion(10);
    assert.equal(api.bookmark(), 1, "the watch asked for bookmarks");
    await waitFor("bookmark received", 1000, () => s.stats().eventsReceived === 1);
    // History up to the bookmark is compacted: resuming from anything older would be 410.
    api.compact();
    const lists = s.stats().lists;
    const mark = api.requests.length;
    api.closeWatches();
    await waitFor("watch resumed", 1000, () => api.requests.slice(mark).find((r) => r.query.watch));
    const resumed = api.requests.slice(mark).find((r) => r.query.watch)!;
    assert.equal(resumed.query.resourceVersion, String(bookmarkRv));
    assert.equal(resumed.query.allowWatchBookmarks, "true");
    assert.equal(resumed.status, 200);
    assert.equal(s.stats().lists, lists, "no relist");
    assert.equal(s.lastError(), undefined);
    s.close();
  });

  for (const how of ["an ERROR event in the open stream", "an ERROR event on the new watch", "an HTTP 410 on the new watch"] as const) {
    it(`relists on 410 Gone (${how}) and loses no change`, async () => {
      reset();
      api.tooOldAs = how === "an HTTP 410 on the new watch" ? "http" : "event";
      api.nodes.add({ name: "n1", podCIDRs: ["10.70.1.0/24"], internalIPs: ["192.0.2.11"] });
      api.nodes.add({ name: "n2", podCIDRs: ["10.70.2.0/24"], internalIPs: ["192.0.2.12"] });
      api.nodes.add({ name: "n3", podCIDRs: ["10.70.3.0/24"], internalIPs: ["192.0.2.13"] });
      const s = await source("n1");
      await waitFor("watch open", 1000, () => api.openWatches() === 1);
      const lists = s.stats().lists;
      // The watcher falls behind: these changes never reach it as events.
      api.holdEvents(true);
      api.nodes.delete("n2");
      api.nodes.update({ name: "n3", podCIDRs: ["10.70.33.0/24"], internalIPs: ["192.0.2.33"] });
      api.nodes.add({ name: "n5", podCIDRs: ["10.70.5.0/24"], internalIPs: ["192.0.2.15"] });
      const mark = api.requests.length;
      if (how === "an ERROR event in the open stream") api.compact({ expireWatches: true });
      else {
        api.compact();
        api.closeWatches();
      }
      api.holdEvents(false);
      await waitFor("relisted", 2000, () => s.stats().lists === lists + 1);
      await waitFor("view follows", 1000, () => s.current().nodes.length === 2 && s.current());
      assert.deepEqual(summary(s.current()).nodes, {
        n3: { addresses: ["192.0.2.33"], prefixes: ["10.70.33.0/24"] },
        n5: { addresses: ["192.0.2.15"], prefixes: ["10.70.5.0/24"] },
      });
      if (how === "an HTTP 410 on the new watch") assert.ok(api.requests.slice(mark).some((r) => r.status === 410), "the stand-in answered 410");
      assert.equal(s.lastError(), undefined, "410 is not an error");
      api.tooOldAs = "event";
      s.close();
    });
  }

  it("keeps the last view while the API server is down, says why, and resyncs when it is back", async () => {
    reset();
    api.nodes.add({ name: "n1", podCIDRs: ["10.70.1.0/24"], internalIPs: ["192.0.2.11"] });
    api.nodes.add({ name: "n2", podCIDRs: ["10.70.2.0/24"], internalIPs: ["192.0.2.12"] });
    const s = await source("n1");
    const before = summary(s.current());
    const errors: string[] = [];
    s.onError((m) => errors.push(m));
    const changes: ClusterView[] = [];
    s.onChange((v) => changes.push(v));
    const syncedBefore = s.lastSync()!;
    await api.stop();
    await waitFor("connection refused reported", 2000, () => /ECONNREFUSED/.test(s.lastError() ?? ""));
    assert.match(s.lastError()!, new RegExp(`^kubernetes API ${api.url.replace(/[.[\]]/g, "\\$&")}: connect ECONNREFUSED`));
    assert.ok(errors.length >= 1);
    // The outage lasts a while; nothing is withdrawn.
    await new Promise((r) => setTimeout(r, 800));
    assert.deepEqual(summary(s.current()), before);
    assert.equal(changes.length, 0);
    assert.ok(s.lastSync()!.getTime() <= Date.now() - 700, "lastSync is the last success");
    // Changes made while it was down show once it is back.
    api.nodes.delete("n2");
    api.nodes.add({ name: "n6", podCIDRs: ["10.70.6.0/24"], internalIPs: ["192.0.2.16"] });
    await api.restart();
    await waitFor("error cleared", 2000, () => s.lastError() === undefined);
    assert.deepEqual(Object.keys(summary(s.current()).nodes), ["n6"]);
    assert.ok(s.lastSync()! > syncedBefore);
    s.close();
  });

  it("detects a server that stops answering within its bound, keeps the view, and recovers", async () => {
    reset();
    api.nodes.add({ name: "n1", podCIDRs: ["10.70.1.0/24"], internalIPs: ["192.0.2.11"] });
    api.nodes.add({ name: "n2", podCIDRs: ["10.70.2.0/24"], internalIPs: ["192.0.2.12"] });
    const s = await source("n1");
    await waitFor("watch open", 1000, () => api.openWatches() === 1);
    const before = summary(s.current());
    api.blackhole();
    const t0 = Date.now();
    // The open watch goes silent (idle bound, 1 s), the reconnect is not answered (1 s more).
    await waitFor("silence detected", 3500, () => /no answer within 1 s/.test(s.lastError() ?? ""));
    const detectedMs = Date.now() - t0;
    assert.ok(detectedMs >= 900, `detected after ${detectedMs} ms, not before the bound`);
    assert.deepEqual(summary(s.current()), before);
    api.nodes.add({ name: "n7", podCIDRs: ["10.70.7.0/24"], internalIPs: ["192.0.2.17"] });
    api.unblackhole();
    await waitFor("error cleared", 2000, () => s.lastError() === undefined);
    await waitFor("n7 seen", 1000, () => s.current().nodes.some((n) => n.name === "n7"));
    s.close();
  });

  it("skips a node with a malformed podCIDR or address and keeps the others", async () => {
    reset();
    api.nodes.add({ name: "n1", podCIDRs: ["10.70.1.0/24"], internalIPs: ["192.0.2.11"] });
    api.nodes.add({ name: "n2", podCIDRs: ["10.70.2.0/24"], internalIPs: ["192.0.2.12"] });
    api.nodes.add({ name: "bad", podCIDRs: ["10.70.300.0/24"], internalIPs: ["192.0.2.66"] });
    const s = await source("n1");
    assert.deepEqual(Object.keys(summary(s.current()).nodes), ["n2"]);
    assert.match(s.current().problems.join("\n"), /node bad skipped.*10\.70\.300\.0\/24/);
    api.nodes.add({ name: "bad-address", podCIDRs: ["10.70.8.0/24"], internalIPs: ["192.0.2.x"] });
    api.nodes.add({ name: "overlap", podCIDRs: ["10.70.1.128/25"], internalIPs: ["192.0.2.68"] });
    api.nodes.add({ name: "n9", podCIDRs: ["10.70.9.0/24"], internalIPs: ["192.0.2.19"] });
    await waitFor("n9 seen", 1000, () => s.current().nodes.some((n) => n.name === "n9"));
    assert.deepEqual(Object.keys(summary(s.current()).nodes), ["n2", "n9"]);
    assert.match(s.current().problems.join("\n"), /node bad-address skipped.*192\.0\.2\.x/);
    assert.match(s.current().problems.join("\n"), /node overlap refused: .*overlaps 10\.70\.1\.0\/24 of node n1/);
    assert.equal(s.lastError(), undefined);
    s.close();
  });

  it("says clearly when the token is refused, and works once the kubeconfig has the right one", async () => {
    reset();
    api.nodes.add({ name: "n1", podCIDRs: ["10.70.1.0/24"], internalIPs: ["192.0.2.11"] });
    const path = api.kubeconfigFile({ token: "not-the-token" });
    const s = await source("n1", { kubeconfig: path });
    assert.equal(s.lastError(), `kubernetes API ${api.url}: HTTP 401 Unauthorized (the token or client certificate was refused)`);
    assert.equal(s.current().prefixes, undefined);
    // The kubeconfig is read again after a 401: a fixed file is used without a restart.
    api.kubeconfigFile({ path });
    await waitFor("error cleared", 2000, () => s.lastError() === undefined);
    assert.equal(s.current().prefixes?.v4?.text, "10.70.1.0/24");
    s.close();
  });

  it("refuses to start without credentials, saying what is missing", async () => {
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    delete process.env.KUBERNETES_SERVICE_HOST;
    delete process.env.KUBERNETES_SERVICE_PORT;
    try {
      await assert.rejects(createKubernetesSource({ nodeName: "n1", log: quiet }), /not in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set/);
      await assert.rejects(createKubernetesSource({ nodeName: "n1", kubeconfig: "/nonexistent/kubeconfig", log: quiet }), /kubeconfig \/nonexistent\/kubeconfig: .*ENOENT/);
    } finally {
      if (saved.host !== undefined) process.env.KUBERNETES_SERVICE_HOST = saved.host;
      if (saved.port !== undefined) process.env.KUBERNETES_SERVICE_PORT = saved.port;
    }
  });
});
