// End-to-end tests of the real daemon: started as a process in its own host
// namespace, called through its unix socket, checked with iproute2 and ping.
// Runs only inside the sandbox (test/run-in-sandbox.sh).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  DAEMON_JS,
  DaemonHarness,
  DEFAULT_ARGS,
  ipFromBytes,
  linkNames,
  mapLimit,
  sleep,
  writeFileAtomic,
  type IpAddrInfo,
  type IpLink,
  type IpRoute,
  type StartOptions,
} from "./daemon-harness.js";
import { assertSandbox, execIn, ip, ipJson, ping, type PodNamespace } from "./sandbox.js";
import { hostAltName } from "../src/service/host-names.js";
import { POOL_THREADS } from "../src/daemon/kernel-waits.cjs";

assertSandbox();

const HOST_MAC = "02:9c:52:fe:6d:0a";

// ---- helpers ---------------------------------------------------------------

async function daemon(t: TestContext, options?: StartOptions): Promise<DaemonHarness> {
  const d = await DaemonHarness.start(options);
  t.after(() => d.cleanup());
  return d;
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "workloadnet-e2e-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Attached {
  id: string;
  pod: PodNamespace;
  v4: string;
  v6: string;
}

async function attach(d: DaemonHarness, id: string, pod: PodNamespace, ifName = "eth0"): Promise<Attached> {
  const res = await d.client.attach({ workloadId: id, netns: { netnsPath: pod.path, ifName } });
  const ips = res.ip.map(ipFromBytes);
  assert.equal(res.ip.length, 2, `one address per family, got ${ips.join(", ")}`);
  assert.equal(res.ip[0]!.length, 4);
  assert.equal(res.ip[1]!.length, 16);
  return { id, pod, v4: ips[0]!, v6: ips[1]! };
}

async function rejectsWith(p: Promise<unknown>, code: Code, message?: RegExp): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    const e = ConnectError.from(err);
    assert.equal(Code[e.code], Code[code], `expected ${Code[code]}, got ${Code[e.code]}: ${e.rawMessage}`);
    if (message) assert.match(e.rawMessage, message);
    return e;
  }
  assert.fail(`expected ${Code[code]}, but the call succeeded`);
}

const v4Last = (a: string): number => Number(a.split(".")[3]);

function assertInV4Prefix(a: string, prefix24: string): void {
  assert.ok(a.startsWith(prefix24), `${a} is in ${prefix24}0/24`);
  const last = v4Last(a);
  assert.ok(last >= 2 && last <= 254, `${a}: not the network address, not .1 (reserved), not broadcast`);
}

function assertInV6Prefix(a: string, prefix64: string): void {
  assert.ok(a.startsWith(prefix64), `${a} is in ${prefix64}/64`);
  assert.notEqual(a, prefix64, `${a} is not the subnet-router address`);
  assert.notEqual(a, `${prefix64}1`, `${a} is not the reserved first address`);
}

/** In the pod: the addresses as /32 and /128 (nodad) on ifName, on-link routes to the first hops, default routes via them with src. */
function assertPodConfigured(a: Attached, ifName = "eth0", mtu = 1400): void {
  const links = ipJson<(IpLink & { addr_info: IpAddrInfo[] })[]>(["addr", "show"], a.pod.name);
  assert.deepEqual(links.map((l) => l.ifname).sort(), [ifName, "lo"].sort());
  const lo = links.find((l) => l.ifname === "lo")!;
  assert.ok(lo.flags.includes("UP"), "pod loopback is up");
  const peer = links.find((l) => l.ifname === ifName)!;
  assert.ok(peer.flags.includes("UP"), `${ifName} is up`);
  assert.equal(peer.mtu, mtu);
  const [detail] = ipJson<IpLink[]>(["-d", "link", "show", "dev", ifName], a.pod.name);
  assert.deepEqual([detail?.num_tx_queues, detail?.num_rx_queues], [1, 1], "one queue each way, not one per CPU");
  const global = peer.addr_info.filter((x) => x.scope === "global");
  const v4 = global.find((x) => x.family === "inet");
  const v6 = global.find((x) => x.family === "inet6");
  assert.deepEqual([v4?.local, v4?.prefixlen], [a.v4, 32]);
  assert.deepEqual([v6?.local, v6?.prefixlen, v6?.nodad], [a.v6, 128, true]);
  assert.equal(global.length, 2, "exactly the two pod addresses");

  const r4 = ipJson<IpRoute[]>(["-4", "route", "show"], a.pod.name);
  const onLink4 = r4.find((r) => r.dst === "169.254.77.1");
  assert.deepEqual([onLink4?.dev, onLink4?.scope], [ifName, "link"], JSON.stringify(r4));
  const def4 = r4.find((r) => r.dst === "default");
  assert.deepEqual([def4?.gateway, def4?.dev, def4?.prefsrc], ["169.254.77.1", ifName, a.v4], JSON.stringify(r4));

  const r6 = ipJson<IpRoute[]>(["-6", "route", "show"], a.pod.name);
  const onLink6 = r6.find((r) => r.dst === "fe80::1");
  assert.equal(onLink6?.dev, ifName, JSON.stringify(r6));
  const def6 = r6.find((r) => r.dst === "default");
  assert.deepEqual([def6?.gateway, def6?.dev, def6?.prefsrc], ["fe80::1", ifName, a.v6], JSON.stringify(r6));
}

/** On the host: the veth with our group, alias, MAC and MTU, up, fe80::1/64 its only IPv6 address, and a static /32 and /128 via it. */
async function assertHostConfigured(d: DaemonHarness, a: Attached, mtu = 1400): Promise<IpLink> {
  const links = d.hostLinks(8).filter((l) => l.ifalias === `wk${a.id}`);
  assert.equal(links.length, 1, `one host link with alias wk${a.id}`);
  let link = links[0]!;
  assert.equal(link.ifname, `wk${a.id.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 8)}`);
  assert.equal(link.group, "8");
  assert.deepEqual(link.altnames, [hostAltName(a.id)], "the alternative name Detach deletes it by");
  assert.equal(link.address, HOST_MAC);
  assert.equal(link.mtu, mtu);
  assert.equal(link.linkinfo?.info_kind, "veth");
  assert.deepEqual([link.num_tx_queues, link.num_rx_queues], [1, 1], "one queue each way, not one per CPU");
  assert.ok(link.flags.includes("UP") && link.flags.includes("LOWER_UP"), `flags ${link.flags.join(",")}`);
  // operstate follows the carrier through the kernel's linkwatch, which may lag a moment.
  for (let i = 0; i < 100 && link.operstate !== "UP"; i++) {
    await sleep(20);
    link = d.hostIpJson<IpLink[]>(["link", "show", "dev", link.ifname])[0]!;
  }
  assert.equal(link.operstate, "UP");
  // The first hop is the host end's only IPv6 address: no automatic link-local one (see configureHost).
  const [v6] = d.hostIpJson<{ addr_info: IpAddrInfo[] }[]>(["-6", "addr", "show", "dev", link.ifname]);
  assert.deepEqual(v6?.addr_info.map((x) => `${x.local}/${x.prefixlen}`), ["fe80::1/64"]);

  const routes = d.hostStaticRoutes().filter((r) => r.dev === link.ifname);
  assert.deepEqual(routes.map((r) => r.dst).sort(), [a.v4, a.v6].sort(), JSON.stringify(routes));
  for (const r of routes) assert.equal(r.protocol, "static");
  return link;
}

function assertHostClean(d: DaemonHarness): void {
  assert.deepEqual(d.hostLinks(8).map((l) => l.ifname), [], "no pod links left on the host");
  assert.deepEqual(d.hostStaticRoutes(), [], "no pod routes left on the host");
}

async function waitStatus(d: DaemonHarness, want: "ok" | Code, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let got = "";
  while (Date.now() < deadline) {
    try {
      await d.client.status({});
      if (want === "ok") return;
      got = "OK";
    } catch (err) {
      const e = ConnectError.from(err);
      if (e.code === want) return;
      got = `${Code[e.code]}: ${e.rawMessage}`;
    }
    await sleep(25);
  }
  assert.fail(`Status did not become ${want === "ok" ? "OK" : Code[want]} within ${timeoutMs} ms (last: ${got})`);
}

// ---- tests -------------------------------------------------------------------

describe("workloadnetd end to end", () => {
  it("two pods reach each other and the host over IPv4 and IPv6 right after Attach", async (t) => {
    const d = await daemon(t);
    const a = await attach(d, "ping-a", d.pod());
    const b = await attach(d, "ping-b", d.pod());
    // No sleep: both families must work the moment Attach has returned.
    const checks: [string, PodNamespace, string, string?][] = [
      ["a -> b v4", a.pod, b.v4],
      ["a -> b v6", a.pod, b.v6],
      ["b -> a v4", b.pod, a.v4],
      ["b -> a v6", b.pod, a.v6],
      ["a -> host 169.254.77.1", a.pod, "169.254.77.1"],
      ["a -> host fe80::1%eth0", a.pod, "fe80::1", "eth0"],
      ["b -> host 169.254.77.1", b.pod, "169.254.77.1"],
      ["b -> host fe80::1%eth0", b.pod, "fe80::1", "eth0"],
    ];
    const failed: string[] = [];
    for (const [what, from, to, iface] of checks) if (!(await ping(from.name, to, iface))) failed.push(what);
    assert.deepEqual(failed, [], "unanswered pings");
  });

  it("a pod reaches the host's fe80::1 from its own link-local address too", async (t) => {
    const d = await daemon(t);
    const pod = d.pod();
    // Without DAD the pod's link-local address is usable at once, as it is after a
    // pod's first second or so; the host must route its answer back to it.
    const dadOff = await execIn(pod.name, ["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
    assert.equal(dadOff.code, 0, dadOff.stderr);
    await attach(d, "link-local", pod);
    const [eth0] = ipJson<{ addr_info: IpAddrInfo[] }[]>(["-6", "addr", "show", "dev", "eth0", "scope", "link"], pod.name);
    const ll = eth0?.addr_info.find((x) => x.local?.startsWith("fe80:"))?.local;
    if (ll === undefined) assert.fail(`no link-local address on the pod's eth0: ${JSON.stringify(eth0)}`);
    // A link-local destination takes a link-local source (RFC 6724, rule 2).
    const [route] = ipJson<{ prefsrc?: string }[]>(["-6", "route", "get", "fe80::1", "oif", "eth0"], pod.name);
    assert.equal(route?.prefsrc, ll, "the source a packet to fe80::1 takes");
    const r = await execIn(pod.name, ["ping", "-n", "-c", "1", "-W", "2", "-I", "eth0", "fe80::1"]);
    assert.equal(r.code, 0, `ping fe80::1 from ${ll}: ${r.stdout}${r.stderr}`);
  });

  it("gives two pods distinct addresses in the prefixes and configures pod and host as specified", async (t) => {
    const d = await daemon(t);
    const a = await attach(d, "0123456789abcdef-long-workload-id", d.pod());
    const b = await attach(d, "b", d.pod(), "net1");
    assert.notEqual(a.v4, b.v4);
    assert.notEqual(a.v6, b.v6);
    for (const x of [a, b]) {
      assertInV4Prefix(x.v4, "10.88.0.");
      assertInV6Prefix(x.v6, "fd00:88::");
    }
    assertPodConfigured(a);
    assertPodConfigured(b, "net1");
    const la = await assertHostConfigured(d, a);
    const lb = await assertHostConfigured(d, b);
    assert.equal(la.ifname, "wk01234567");
    assert.equal(lb.ifname, "wkb");
    assert.equal(d.hostLinks(8).length, 2);
    // The node-wide first hop on the host's loopback.
    const lo = ipJson<{ addr_info: IpAddrInfo[] }[]>(["addr", "show", "dev", "lo"], d.hostNs)[0]!;
    const fh = lo.addr_info.find((x) => x.local === "169.254.77.1");
    assert.deepEqual([fh?.prefixlen, fh?.scope], [32, "link"]);
    // The log names each call with its addresses.
    const line = await d.waitForLog((l) => l.msg === "attach ok" && l.workloadId === "b");
    assert.deepEqual(line.addresses, [b.v4, b.v6]);
  });

  it("--veth-queues sets the queues of both veth ends; the pod still reaches the host", async (t) => {
    const d = await daemon(t, { args: [...DEFAULT_ARGS, "--veth-queues", "2"] });
    const a = await attach(d, "queues", d.pod());
    const host = d.hostLinks(8).find((l) => l.ifalias === `wk${a.id}`);
    const [peer] = ipJson<IpLink[]>(["-d", "link", "show", "dev", "eth0"], a.pod.name);
    assert.deepEqual([host?.num_tx_queues, host?.num_rx_queues, peer?.num_tx_queues, peer?.num_rx_queues], [2, 2, 2, 2]);
    assert.ok(await ping(a.pod.name, "169.254.77.1"), "the pod reaches the host");
  });

  it("Detach removes link and routes, is idempotent, and works after the pod namespace was deleted", async (t) => {
    const d = await daemon(t, { args: ["--ipv4-prefix", "10.66.0.0/30", "--ipv6-prefix", "fd00:66::/126", "--mtu", "1400"] });
    const a = await attach(d, "det-a", d.pod());
    assert.equal(a.v4, "10.66.0.2", "a /30 has exactly one usable address");
    await d.client.detach({ workloadId: a.id, netns: { netnsPath: a.pod.path, ifName: "eth0" } });
    assertHostClean(d);
    assert.deepEqual(linkNames(a.pod.name), ["lo"], "the pod's peer went with the host veth");
    await d.client.detach({ workloadId: a.id, netns: { netnsPath: a.pod.path, ifName: "eth0" } });
    await d.client.detach({ workloadId: "never-attached" });

    // The pod namespace goes first (as when a runtime tears down a sandbox), then Detach.
    const b = await attach(d, "det-b", d.pod());
    assert.equal(b.v4, "10.66.0.2", "freed by the first Detach");
    b.pod.remove();
    await d.client.detach({ workloadId: b.id, netns: { netnsPath: b.pod.path, ifName: "eth0" } });
    assertHostClean(d);
    await d.waitForLog((l) => l.msg === "detach ok" && l.workloadId === b.id);
    // The only IPv4 address is free again: a later Attach gets it.
    const c = await attach(d, "det-c", d.pod());
    assert.equal(c.v4, "10.66.0.2");
    await assertHostConfigured(d, c);
  });

  it("Detach finds a link without its alternative name (made by an older daemon) by its name, and deletes it", async (t) => {
    const d = await daemon(t);
    const a = await attach(d, "no-altname", d.pod());
    const link = await assertHostConfigured(d, a);
    ip(["link", "property", "del", "dev", link.ifname, "altname", hostAltName(a.id)], d.hostNs);
    assert.deepEqual(d.hostIpJson<IpLink[]>(["link", "show", "dev", link.ifname])[0]?.altnames ?? [], []);
    await d.client.detach({ workloadId: a.id });
    assertHostClean(d);
    assert.deepEqual((await d.client.list({})).attachments, [], "and its records are gone");
  });

  it("right after each Detach the same workload attaches again: same namespace, host name, pod interface and address", async (t) => {
    // Detach answers when the kernel announces the link gone, before the
    // kernel's delete has finished waiting: the name, the pod interface and
    // the only IPv4 address of the /30 must all be free by then.
    const d = await daemon(t, { args: ["--ipv4-prefix", "10.69.0.0/30", "--ipv6-prefix", "fd00:69::/64", "--mtu", "1400"] });
    const pod = d.pod();
    for (let i = 0; i < 20; i++) {
      const a = await attach(d, "again", pod);
      assert.equal(a.v4, "10.69.0.2", `round ${i}`);
      assert.deepEqual(linkNames(pod.name).sort(), ["eth0", "lo"], `round ${i}`);
      await d.client.detach({ workloadId: a.id, netns: { netnsPath: pod.path, ifName: "eth0" } });
      // Gone when Detach returns: nothing of it on the host or in the pod.
      assertHostClean(d);
      assert.deepEqual(linkNames(pod.name), ["lo"], `round ${i}: the pod's interface is gone`);
    }
    const last = await attach(d, "again", pod);
    assertPodConfigured(last);
    await assertHostConfigured(d, last);
    assert.ok(await ping(pod.name, "169.254.77.1"), "the pod reaches the host after 20 re-attaches");
  });

  it("refuses a duplicate Attach; an exhausted /30 fails with RESOURCE_EXHAUSTED and leaves nothing", async (t) => {
    const d = await daemon(t, { args: ["--ipv4-prefix", "10.67.0.0/30", "--ipv6-prefix", "fd00:67::/64"] });
    const a = await attach(d, "dup", d.pod());
    await rejectsWith(d.client.attach({ workloadId: "dup", netns: { netnsPath: d.pod().path, ifName: "eth0" } }), Code.AlreadyExists, /already attached/);
    await rejectsWith(d.client.attach({ workloadId: "dup", netns: { netnsPath: a.pod.path, ifName: "eth0" } }), Code.AlreadyExists);
    assertPodConfigured(a, "eth0", 1500);

    const full = d.pod();
    await rejectsWith(d.client.attach({ workloadId: "one-too-many", netns: { netnsPath: full.path, ifName: "eth0" } }), Code.ResourceExhausted, /10\.67\.0\.0\/30/);
    assert.deepEqual(linkNames(full.name), ["lo"], "the failing pod's namespace holds only lo");
    assert.deepEqual(d.hostLinks(8).map((l) => l.ifalias), ["wkdup"], "no extra link on the host");
    assert.equal(d.hostStaticRoutes().length, 2, "only dup's two routes");
    // The IPv6 address tried for the failing pod was given back too: detaching dup frees everything.
    await d.client.detach({ workloadId: "dup" });
    const again = await attach(d, "one-too-many", full);
    assert.equal(again.v4, "10.67.0.2");
  });

  it("follows the prefix file: UNAVAILABLE until written, new prefixes without restart, garbage keeps the last good", async (t) => {
    const dir = tempDir(t);
    const file = join(dir, "prefixes.json");
    const d = await daemon(t, { args: ["--prefix-file", file] });
    await rejectsWith(d.client.status({}), Code.Unavailable, /no pod prefixes/);
    await rejectsWith(d.client.attach({ workloadId: "early", netns: { netnsPath: d.pod().path, ifName: "eth0" } }), Code.Unavailable);

    writeFileSync(file, JSON.stringify({ ipv4: "10.89.0.0/24", ipv6: "fd00:89::/64" }));
    await waitStatus(d, "ok");
    const a = await attach(d, "first", d.pod());
    assertInV4Prefix(a.v4, "10.89.0.");
    assertInV6Prefix(a.v6, "fd00:89::");

    writeFileAtomic(file, JSON.stringify({ ipv4: "10.90.0.0/24", ipv6: "fd00:90::/64" }));
    await d.waitForLog((l) => l.msg === "pod prefixes in use" && l.prefixes === "10.90.0.0/24, fd00:90::/64");
    const b = await attach(d, "second", d.pod());
    assertInV4Prefix(b.v4, "10.90.0.");
    assertInV6Prefix(b.v6, "fd00:90::");
    // The first pod keeps its addresses, routes and reachability. Its MTU: a
    // file may list other nodes, and --routing auto may reach them over VXLAN,
    // so without --mtu pods leave room for its 50 bytes (1500 when no link is found).
    assertPodConfigured(a, "eth0", 1450);
    await assertHostConfigured(d, a, 1450);
    assert.ok(await ping(b.pod.name, a.v4), "new pod reaches the old one over IPv4");
    assert.ok(await ping(b.pod.name, a.v6), "new pod reaches the old one over IPv6");

    writeFileAtomic(file, "{ this is not json");
    await d.waitForLog((l) => l.msg === "cluster source error; keeping the last view");
    await d.client.status({});
    const c = await attach(d, "third", d.pod());
    assertInV4Prefix(c.v4, "10.90.0.");
    assertInV6Prefix(c.v6, "fd00:90::");
  });

  it("64 concurrent Attaches get distinct, reachable addresses; 64 concurrent Detaches leave nothing", async (t) => {
    const d = await daemon(t);
    const n = 64;
    const pods = Array.from({ length: n }, () => d.pod());
    const all = await Promise.all(pods.map((p, i) => attach(d, `many-${i}`, p)));
    assert.equal(new Set(all.map((a) => a.v4)).size, n, "distinct IPv4 addresses");
    assert.equal(new Set(all.map((a) => a.v6)).size, n, "distinct IPv6 addresses");
    for (const a of all) {
      assertInV4Prefix(a.v4, "10.88.0.");
      assertInV6Prefix(a.v6, "fd00:88::");
    }
    assert.equal(d.hostLinks(8).length, n);
    assert.equal(d.hostStaticRoutes().length, 2 * n);

    const first = all[0]!;
    const targets = all.slice(1).flatMap((a) => [a.v4, a.v6]);
    const answered = await mapLimit(targets, 16, (to) => ping(first.pod.name, to));
    assert.deepEqual(targets.filter((_, i) => !answered[i]), [], "every pod answers the first one");

    await Promise.all(all.map((a) => d.client.detach({ workloadId: a.id, netns: { netnsPath: a.pod.path, ifName: "eth0" } })));
    assertHostClean(d);
    for (const a of all.slice(0, 4)) assert.deepEqual(linkNames(a.pod.name), ["lo"]);
  });

  it(`runs with ${POOL_THREADS} threads in libuv's pool, so kernel waits of deletes do not queue other requests`, async (t) => {
    const d = await daemon(t);
    await attach(d, "pool", d.pod()); // the pool has started by now
    const pid = d.pid!;
    // The pid is node itself (Node 24 names its main thread "MainThread", so comm does not tell).
    assert.equal(readlinkSync(`/proc/${pid}/exe`), realpathSync(process.execPath));
    const threads = readdirSync(`/proc/${pid}/task`).length;
    // The main thread, V8's and Node's own few, and the pool's (4 without the bin's setting).
    assert.ok(threads >= POOL_THREADS + 1, `only ${threads} threads in the daemon`);
  });

  it("exits 0 on SIGTERM and removes its socket", async (t) => {
    const d = await daemon(t);
    await attach(d, "term", d.pod());
    assert.ok(existsSync(d.socketPath));
    assert.equal(await d.stop({ expectCleanExit: true }), 0);
    assert.equal(existsSync(d.socketPath), false, "socket removed");
    assert.ok(d.logs.some((l) => l.msg === "stopped"), "logs that it stopped");
  });

  it("rejects a bad flag with one line on stderr naming the key and value", async () => {
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [DAEMON_JS, "--mtu", "abc", "--socket", "/run/workloadnet/never.sock"], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      child.on("close", (code) => resolve({ code, stderr }));
    });
    assert.notEqual(code, 0);
    assert.notEqual(code, null);
    const lines = stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, `one line: ${JSON.stringify(stderr)}`);
    assert.match(lines[0]!, /--mtu/);
    assert.match(lines[0]!, /abc/);
    assert.equal(existsSync("/run/workloadnet/never.sock"), false);
  });

  it("after SIGKILL and restart: knows the old workloads, reuses none of their addresses, detaches them", async (t) => {
    const d = await daemon(t);
    const old = [await attach(d, "keep-1", d.pod()), await attach(d, "keep-2", d.pod()), await attach(d, "keep-3", d.pod())];
    await d.kill();
    assert.equal(d.exit?.signal, "SIGKILL");
    await d.restart();
    const rec = await d.waitForLog((l) => l.msg === "state recovered from the kernel");
    assert.equal(rec.recovered, 3);

    await rejectsWith(d.client.attach({ workloadId: "keep-2", netns: { netnsPath: old[1]!.pod.path, ifName: "eth0" } }), Code.AlreadyExists);
    const fresh = await attach(d, "fresh", d.pod());
    assert.ok(!old.some((o) => o.v4 === fresh.v4 || o.v6 === fresh.v6), `${fresh.v4}/${fresh.v6} is not one of the old addresses`);
    assert.ok(await ping(fresh.pod.name, old[0]!.v4), "old pods still reachable after the restart");

    for (const o of old) {
      await d.client.detach({ workloadId: o.id, netns: { netnsPath: o.pod.path, ifName: "eth0" } });
      assert.deepEqual(linkNames(o.pod.name), ["lo"]);
    }
    await d.client.detach({ workloadId: "fresh" });
    assertHostClean(d);
    assert.equal(await d.stop(), 0);
  });
});
