// The warm-up before serving (src/daemon/warm-up.ts): real Attaches (and a
// Detach) in throwaway namespaces, held until the daemon is first idle, then
// nothing of them left anywhere: not in the daemon's namespace, not in its
// file descriptors, not on disk; and the daemon serves its first real
// workload as usual. Runs in the sandbox.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DaemonHarness, DEFAULT_ARGS, ipFromBytes, linkNames, sleep } from "./daemon-harness.js";
import { assertSandbox } from "./sandbox.js";

assertSandbox();

/** Network namespaces the process holds open as file descriptors, besides its own. */
function otherNetnsFds(pid: number): string[] {
  const own = readlinkSync(`/proc/${pid}/ns/net`);
  return readdirSync(`/proc/${pid}/fd`)
    .map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return "";
      }
    })
    .filter((target) => target.startsWith("net:[") && target !== own);
}

// The daemon's TMPDIR is one of the test's own, so that other daemons on the
// machine (other test runs) cannot be mistaken for this one.
const privateTmp = mkdtempSync(join(tmpdir(), "wln-warm-up-test-"));
const warmDirs = (): string[] => readdirSync(privateTmp).filter((f) => f.startsWith("workloadnetd-warm-up-"));

describe("warm-up before serving", () => {
  const daemons: DaemonHarness[] = [];
  after(async () => {
    for (const d of daemons) await d.cleanup();
    rmSync(privateTmp, { recursive: true, force: true });
  });

  it("attaches in throwaway namespaces, lets them go once idle, leaves nothing, and then serves", async () => {
    const dirsBefore = warmDirs();
    const d = await DaemonHarness.start({ args: [...DEFAULT_ARGS, "--warm-up", "6", "--log-level", "debug"], wrapper: ["env", `TMPDIR=${privateTmp}`] });
    daemons.push(d);
    const line = await d.waitForLog((l) => l.msg.startsWith("warmed up"));
    const report = line.warmUp as { rounds: number; ms: number; cpuMs: number };
    assert.equal(report.rounds, 6);
    assert.ok(report.ms > 0 && report.cpuMs >= 0);
    // It ran before the daemon said it was ready.
    const order = d.logs.map((l) => l.msg);
    assert.ok(order.indexOf(line.msg) < order.indexOf("workloadnetd ready"), order.join(" | "));
    // The warm-up's own calls do not appear as the daemon's calls.
    assert.deepEqual(d.logs.filter((l) => typeof l.workloadId === "string" && l.workloadId.startsWith("warm-up-")), []);

    // Nothing of it in the daemon's namespace; its namespaces (and the links
    // in them) and temp directory are let go once the daemon is first idle,
    // which is after ready.
    assert.deepEqual(linkNames(d.hostNs), ["lo"]);
    assert.deepEqual(d.hostStaticRoutes(), []);
    const released = await d.waitForLog((l) => l.msg === "warm-up namespaces released");
    assert.equal(released.workloads, 5, "the first of the six was detached; the others went with their namespaces");
    const after = d.logs.map((l) => l.msg);
    assert.ok(after.indexOf("workloadnetd ready") < after.indexOf(released.msg), after.join(" | "));
    for (let i = 0; i < 100 && (otherNetnsFds(d.pid!).length > 0 || warmDirs().length > dirsBefore.length); i++) await sleep(50);
    assert.deepEqual(otherNetnsFds(d.pid!), []);
    assert.deepEqual(warmDirs(), dirsBefore);

    // The first real workload gets the first address, as without a warm-up.
    const pod = d.pod();
    const res = await d.client.attach({ workloadId: "first", netns: { netnsPath: pod.path, ifName: "eth0" } });
    assert.deepEqual(res.ip.map(ipFromBytes), ["10.88.0.2", "fd00:88::2"]);
    assert.deepEqual(linkNames(pod.name).sort(), ["eth0", "lo"]);
    await d.client.detach({ workloadId: "first" });
    assert.deepEqual(d.hostLinks(8), []);
  });

  it("killed while it holds the warm-up's namespaces, the daemon leaves nothing of them, and starts again", async () => {
    const dirsBefore = warmDirs();
    const d = await DaemonHarness.start({ args: [...DEFAULT_ARGS, "--warm-up", "6", "--log-level", "debug"], wrapper: ["env", `TMPDIR=${privateTmp}`] });
    daemons.push(d);
    // Ready, not yet idle: the namespaces and their links are still held.
    assert.ok(otherNetnsFds(d.pid!).length > 0, "the warm-up's namespaces are held");
    assert.equal(d.logs.some((l) => l.msg === "warm-up namespaces released"), false);
    await d.kill();
    assert.deepEqual(linkNames(d.hostNs), ["lo"]);
    assert.deepEqual(d.hostStaticRoutes(), []);
    assert.deepEqual(warmDirs(), dirsBefore, "no socket directory left on disk");
    await d.restart(10_000, [...DEFAULT_ARGS, "--warm-up", "0"]);
    const pod = d.pod();
    const res = await d.client.attach({ workloadId: "after-kill", netns: { netnsPath: pod.path, ifName: "eth0" } });
    assert.deepEqual(res.ip.map(ipFromBytes), ["10.88.0.2", "fd00:88::2"]);
    await d.client.detach({ workloadId: "after-kill" });
    assert.deepEqual(d.hostLinks(8), []);
  });

  it("--warm-up 0 skips it", async () => {
    const d = await DaemonHarness.start({ args: [...DEFAULT_ARGS, "--warm-up", "0"] });
    daemons.push(d);
    await d.client.status({});
    assert.equal(d.logs.some((l) => l.msg.startsWith("warmed up")), false);
  });
});
