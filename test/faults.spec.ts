// Faults and ownership: namespaces that vanish under an Attach, interfaces
// that look like ours but are not, a prefix file turned to garbage, and a
// kernel refusal part-way through an Attach (full rollback). Runs in the sandbox.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectClient, type ConnectTestClient } from "./grpc-clients.js";
import { DaemonHarness, ipFromBytes, mapLimit, sleep, writeFileAtomic, type IpLink } from "./daemon-harness.js";
import { codeOf, createPods, dirtyPods, hostLinks, hostStaticRoutes, intToV4, podLinks, removePods, v4ToInt, waitHostClean } from "./host-state.js";
import { assertSandbox, ip, ipJson, type PodNamespace } from "./sandbox.js";

/** 10.93.0.2 .. 10.93.0.14: 13 addresses. */
const V4_PREFIX = "10.93.0.0/28";
const V4_FIRST = v4ToInt("10.93.0.2");
const V4_LAST = v4ToInt("10.93.0.14");
const V4_CAPACITY = 13;
const V6_PREFIX = "fd00:93::/64";
const OTHER_V4_PREFIX = "10.94.0.0/28";

function prefixFileText(v4: string, v6: string): string {
  return JSON.stringify({ ipv4: v4, ipv6: v6 }) + "\n";
}

describe("faults", () => {
  let h: DaemonHarness;
  let c: ConnectTestClient;
  let prefixDir: string;
  let prefixFile: string;
  const pods: PodNamespace[] = [];
  /** Links the tests make themselves (not the daemon's), left out of the leak checks. */
  const foreign: string[] = [];

  const pod = (): PodNamespace => {
    const [p] = createPods(1, "fl");
    pods.push(p!);
    return p!;
  };

  async function attach(id: string, p: PodNamespace, ifName = "eth0"): Promise<{ v4: string; v6: string }> {
    const res = await c.client.attach({ workloadId: id, netns: { netnsPath: p.path, ifName } });
    const [v4, v6] = res.ip.map(ipFromBytes);
    return { v4: v4!, v6: v6! };
  }

  const detach = (id: string): Promise<unknown> => c.client.detach({ workloadId: id });

  async function rejects(p: Promise<unknown>, code: Code, message?: RegExp): Promise<ConnectError> {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof ConnectError, String(err));
      assert.equal(err.code, code, `${Code[err.code]}: ${err.rawMessage}`);
      if (message) assert.match(err.rawMessage, message);
      return err;
    }
    assert.fail(`expected ${Code[code]}`);
  }

  const ourLinks = (): IpLink[] => hostLinks(h.hostNs, foreign);
  const linkOf = (id: string): IpLink | undefined => ourLinks().find((l) => l.ifalias === `wk${id}`);

  async function assertClean(): Promise<void> {
    assert.deepEqual(await waitHostClean(h.hostNs, foreign), []);
    assert.deepEqual(dirtyPods(pods), []);
    await c.client.status({});
  }

  before(async () => {
    assertSandbox();
    prefixDir = mkdtempSync(join(tmpdir(), "workloadnet-faults-"));
    prefixFile = join(prefixDir, "prefixes.json");
    writeFileAtomic(prefixFile, prefixFileText(V4_PREFIX, V6_PREFIX));
    h = await DaemonHarness.start({ args: ["--prefix-file", prefixFile] });
    c = connectClient(h.socketPath);
  });
  after(async () => {
    c?.close();
    removePods(pods.map((p) => p.name));
    await h?.cleanup();
    if (prefixDir) rmSync(prefixDir, { recursive: true, force: true });
  });

  test("a pod namespace removed right before the call: NOT_FOUND, nothing left", async () => {
    const p = pod();
    p.remove();
    await rejects(attach("gone-before", p), Code.NotFound, /does not exist/);
    await assertClean();
  });

  test("attaches racing with `ip netns del`: each succeeds or fails cleanly, and Detach clears all", async () => {
    const racers = createPods(10, "fr");
    pods.push(...racers);
    const ids = racers.map((_, i) => `netns-race-${i}`);
    const attaches = mapLimit(racers, 10, (p, i) => codeOf(attach(ids[i]!, p)));
    // Delete the namespaces while the attaches run, at staggered moments.
    const deletions = mapLimit(racers, 10, async (p, i) => {
      await sleep(i % 5);
      p.remove();
    });
    const [codes] = await Promise.all([attaches, deletions]);
    const allowed = new Set([0, Code.NotFound, Code.InvalidArgument, Code.FailedPrecondition, Code.Internal]);
    assert.deepEqual(codes.filter((x) => !allowed.has(x)), [], `outcomes: ${codes.join(",")}`);
    // An attach that won the race lost its veth when the namespace went away; Detach still works.
    for (const id of ids) assert.equal(await codeOf(detach(id)), 0, id);
    await assertClean();
    process.stdout.write(`# attach vs netns del: outcomes ${codes.join(",")}\n`);
  });

  test("an interface with the name we would pick, not ours, is left alone: another name is used", async () => {
    h.hostIp(["link", "add", "wkownr0001", "type", "bridge"]);
    foreign.push("wkownr0001");
    const before = ipJson<IpLink[]>(["-d", "link", "show", "wkownr0001"], h.hostNs)[0]!;
    const p = pod();
    await attach("ownr0001x", p);
    const mine = linkOf("ownr0001x");
    assert.ok(mine !== undefined);
    assert.notEqual(mine.ifname, "wkownr0001");
    assert.match(mine.ifname, /^wkownr0001-[0-9a-f]{4}$/);
    await detach("ownr0001x");
    const afterwards = ipJson<IpLink[]>(["-d", "link", "show", "wkownr0001"], h.hostNs)[0]!;
    assert.equal(afterwards.ifindex, before.ifindex, "the bridge is the same interface");
    assert.equal(afterwards.linkinfo?.info_kind, "bridge");
    assert.equal(afterwards.group, "default");
    await assertClean();
  });

  test("a link that became foreign (ours deleted by hand, another made with its name) is not deleted by Detach", async () => {
    const p = pod();
    await attach("foreign1", p);
    const name = linkOf("foreign1")!.ifname;
    h.hostIp(["link", "del", name]);
    h.hostIp(["link", "add", name, "type", "bridge"]);
    foreign.push(name);
    const impostor = ipJson<IpLink[]>(["link", "show", name], h.hostNs)[0]!;
    await rejects(detach("foreign1"), Code.FailedPrecondition, /refusing to delete/);
    const still = ipJson<IpLink[]>(["link", "show", name], h.hostNs)[0];
    assert.equal(still?.ifindex, impostor.ifindex, "the foreign link is untouched");
    // The workload is forgotten: a second Detach is a no-op, and its id can attach again.
    assert.equal(await codeOf(detach("foreign1")), 0);
    await attach("foreign1", p);
    assert.notEqual(linkOf("foreign1")!.ifname, name, "a fresh name: the foreign one is left alone");
    await detach("foreign1");
    await assertClean();
  });

  test("a pod that already has the interface name: FAILED_PRECONDITION, the pod's own link untouched", async () => {
    const p = pod();
    ip(["link", "add", "eth0", "type", "bridge"], p.name);
    await rejects(attach("dup-if", p), Code.FailedPrecondition, /already has an interface named eth0/);
    assert.deepEqual(podLinks(p.name).sort(), ["eth0", "lo"]);
    assert.deepEqual(ourLinks(), []);
    ip(["link", "del", "eth0"], p.name);
    await assertClean();
  });

  test("a kernel error part-way through Attach rolls everything back", async () => {
    // Whatever address the next Attach gets, its host route already exists: the kernel says EEXIST.
    const blocker = pod();
    const first = await attach("rollback-a", blocker);
    const taken = v4ToInt(first.v4);
    const blocked: string[] = [];
    for (let a = V4_FIRST; a <= V4_LAST; a++) {
      if (a === taken) continue;
      h.hostIp(["route", "add", `${intToV4(a)}/32`, "dev", "lo"]);
      blocked.push(intToV4(a));
    }
    const p = pod();
    const err = await rejects(attach("rollback-b", p), Code.Internal);
    assert.match(err.rawMessage, /add route 10\.93\.0\.\d+\/32 .*EEXIST/, "the message says what failed, on what");
    assert.equal(linkOf("rollback-b"), undefined, "no veth is left");
    assert.equal(ourLinks().length, 1, "only rollback-a's link");
    assert.deepEqual(podLinks(p.name), ["lo"], "the pod has only lo");
    assert.deepEqual(hostStaticRoutes(h.hostNs).map((r) => r.dst).sort(), [first.v4, first.v6].sort(), "only rollback-a's routes");
    // Again, with the blockers gone: it works, and so does a full cycle after.
    for (const a of blocked) h.hostIp(["route", "del", `${a}/32`, "dev", "lo"]);
    const b = await attach("rollback-b", p);
    assert.notEqual(b.v4, first.v4);
    await detach("rollback-b");
    await detach("rollback-a");
    await attach("rollback-b", p);
    await detach("rollback-b");
    await assertClean();
  });

  test("the prefix file turned to garbage: the last good prefixes stay, the error is logged, Status is OK", async () => {
    const p1 = pod();
    const before = await attach("pf-1", p1);
    writeFileAtomic(prefixFile, "{ this is not json ]]]\n");
    const logged = await h.waitForLog((l) => l.msg === "cluster source error; keeping the last view");
    assert.match(String(logged.err), /./);
    const degraded = await c.client.status({});
    assert.deepEqual(degraded.prefixes, [V4_PREFIX, V6_PREFIX], "Status still reports the last good prefixes");
    assert.ok(degraded.prefixError.includes(prefixFile), `Status names the broken prefix file: ${degraded.prefixError}`);
    const p2 = pod();
    const during = await attach("pf-2", p2);
    const inV4 = (a: string): boolean => v4ToInt(a) >= V4_FIRST && v4ToInt(a) <= V4_LAST;
    assert.ok(inV4(during.v4), `${during.v4} from the last good prefix`);
    // A good file again, with another prefix: new workloads get it, old ones keep theirs.
    writeFileAtomic(prefixFile, prefixFileText(OTHER_V4_PREFIX, V6_PREFIX));
    await h.waitForLog((l) => l.msg === "pod prefixes in use" && String(l.prefixes).includes("10.94.0.0/28"));
    const p3 = pod();
    const afterwards = await attach("pf-3", p3);
    assert.match(afterwards.v4, /^10\.94\.0\./);
    const healed = await c.client.status({});
    assert.equal(healed.prefixError, "");
    assert.deepEqual(healed.prefixes, [OTHER_V4_PREFIX, V6_PREFIX]);
    await rejects(attach("pf-1", p1, "eth1"), Code.AlreadyExists);
    for (const id of ["pf-1", "pf-2", "pf-3"]) await detach(id);
    writeFileAtomic(prefixFile, prefixFileText(V4_PREFIX, V6_PREFIX));
    await h.waitForLog((l) => l.msg === "pod prefixes in use" && String(l.prefixes).includes("10.93.0.0/28") && h.logs.indexOf(l) > h.logs.indexOf(logged));
    assert.ok(inV4(before.v4));
    await assertClean();
  });

  test("after all of that, no address is lost: the prefix fills exactly", async () => {
    const fill = createPods(V4_CAPACITY + 1, "ff");
    pods.push(...fill);
    const codes = await mapLimit(fill, 16, (p, i) => codeOf(attach(`fill-${i}`, p)));
    assert.equal(codes.filter((x) => x === 0).length, V4_CAPACITY, `codes ${codes.join(",")}`);
    assert.equal(codes.filter((x) => x === Code.ResourceExhausted).length, 1);
    for (let i = 0; i < fill.length; i++) assert.equal(await codeOf(detach(`fill-${i}`)), 0);
    await assertClean();
  });
});
