// Prometheus metrics of the real daemon, scraped over HTTP from inside its
// host namespace (loopback). Runs only inside the sandbox.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { DaemonHarness, DEFAULT_ARGS, writeFileAtomic } from "./daemon-harness.js";
import { assertSandbox, execIn } from "./sandbox.js";

assertSandbox();

let d: DaemonHarness;

before(async () => {
  d = await DaemonHarness.start({ args: [...DEFAULT_ARGS, "--metrics-address", "127.0.0.1:9650"] });
});
after(() => d?.cleanup());

/** GET a path of the metrics endpoint from inside the daemon's namespace: [status, body]. */
async function scrape(path = "/metrics", daemon = d): Promise<[number, string]> {
  const script = `fetch("http://127.0.0.1:9650${path}").then(async (r) => process.stdout.write(r.status + "\\n" + (await r.text())))`;
  const r = await execIn(daemon.hostNs, [process.execPath, "-e", script]);
  assert.equal(r.code, 0, r.stderr);
  const nl = r.stdout.indexOf("\n");
  return [Number(r.stdout.slice(0, nl)), r.stdout.slice(nl + 1)];
}

/** The value of one sample, e.g. value(body, 'workloadnet_attachments'). */
function value(body: string, sample: string): number | undefined {
  const line = body.split("\n").find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

describe("metrics", () => {
  it("counts calls by outcome, shows attachments and free addresses, and Node's process figures", async () => {
    const p1 = d.pod("mt");
    const p2 = d.pod("mt");
    for (const [id, p] of [["mt-1", p1], ["mt-2", p2]] as const) {
      await d.client.attach({ workloadId: id, netns: { netnsPath: p.path, ifName: "eth0" } });
    }
    await assert.rejects(d.client.attach({ workloadId: "mt-3", netns: { netnsPath: "/run/netns/not-there", ifName: "eth0" } }));
    await d.client.detach({ workloadId: "mt-1" });

    const [status, body] = await scrape();
    assert.equal(status, 200);
    assert.equal(value(body, 'workloadnet_calls_total{method="attach",outcome="ok"}'), 2);
    assert.equal(value(body, 'workloadnet_calls_total{method="attach",outcome="NotFound"}'), 1);
    assert.equal(value(body, 'workloadnet_calls_total{method="detach",outcome="ok"}'), 1);
    assert.equal(value(body, 'workloadnet_call_duration_seconds_count{method="attach"}'), 3);
    assert.equal(value(body, "workloadnet_attachments"), 1);
    // A /24 has 253 addresses for pods (not .0, .1 or .255); one is held.
    assert.equal(value(body, 'workloadnet_prefix_free_addresses{prefix="10.88.0.0/24",family="ipv4"}'), 252);
    assert.ok((value(body, "workloadnet_process_resident_memory_bytes") ?? 0) > 10e6, "process RSS is reported");

    const [missing] = await scrape("/other");
    assert.equal(missing, 404);
    await d.client.detach({ workloadId: "mt-2" });
  });

  it("shows the cluster source (last sync, errors, nodes known) and the reconciles of the routes", async (t) => {
    const file = "/run/workloadnet/metrics-view.json";
    const view = (nodes: { name: string; addresses: string[]; prefixes: string[] }[]) => JSON.stringify({ name: "m1", ipv4: "10.72.1.0/24", nodes });
    writeFileAtomic(file, view([{ name: "m2", addresses: ["192.0.2.12"], prefixes: ["10.72.2.0/24"] }]));
    const before = Date.now() / 1000;
    const m = await DaemonHarness.start({ args: ["--prefix-file", file, "--routing", "none", "--metrics-address", "127.0.0.1:9650"] });
    t.after(async () => {
      await m.cleanup();
      rmSync(file, { force: true });
    });
    let [, body] = await scrape("/metrics", m);
    assert.equal(value(body, "workloadnet_cluster_nodes"), 1);
    const synced = value(body, 'workloadnet_cluster_source_last_sync_timestamp_seconds{source="file"}') ?? 0;
    assert.ok(synced >= before - 1 && synced <= Date.now() / 1000 + 1, `last sync ${synced} is the daemon's first read`);
    assert.equal(value(body, "workloadnet_cluster_source_errors_total"), 0);
    assert.ok((value(body, 'workloadnet_route_reconciles_total{outcome="ok"}') ?? 0) >= 1, "the start's reconcile is counted");
    assert.equal(value(body, 'workloadnet_route_reconciles_total{outcome="error"}'), 0);
    assert.ok((value(body, "workloadnet_route_reconcile_duration_seconds_count") ?? 0) >= 1);

    writeFileAtomic(file, view([{ name: "m2", addresses: ["192.0.2.12"], prefixes: ["10.72.2.0/24"] }, { name: "m3", addresses: ["192.0.2.13"], prefixes: ["10.72.3.0/24"] }]));
    await m.waitForLog((l) => l.msg === "cluster view applied" && l.nodes === 2);
    writeFileAtomic(file, "{ broken");
    await m.waitForLog((l) => l.msg === "cluster source error; keeping the last view");
    [, body] = await scrape("/metrics", m);
    assert.equal(value(body, "workloadnet_cluster_nodes"), 2, "the last good view stays");
    assert.equal(value(body, "workloadnet_cluster_source_errors_total"), 1);
    assert.ok((value(body, 'workloadnet_route_reconciles_total{outcome="ok"}') ?? 0) >= 2, "the change was reconciled");
  });
});
