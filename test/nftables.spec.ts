// Egress masquerade and published ports, end to end: the real daemon, its
// nftables table in the kernel, and traffic between namespaces that play the
// node, an outside host, a second node with its own pods, and pods. What the
// far end sees (the source address of a request) is the witness; nft,
// iptables and conntrack are read as the user would. Only inside the sandbox.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DaemonHarness, DEFAULT_ARGS, ipFromBytes, writeFileAtomic } from "./daemon-harness.js";
import { ask, serve, tryAsk, type Server } from "./net-probe.js";
import { assertSandbox, createNamespace, ip, type PodNamespace } from "./sandbox.js";

assertSandbox();

const CLUSTER_ARGS = [...DEFAULT_ARGS, "--cluster-cidr", "10.88.0.0/16", "--cluster-cidr", "fd00:88::/48"];
const NODE_V4 = "192.0.2.1";
const NODE_V6 = "2001:db8::1";
const OUTSIDE_V4 = "192.0.2.2";
const OUTSIDE_V6 = "2001:db8::2";
/** A pod on the second node (its address sits on that node's loopback). */
const REMOTE_POD_V4 = "10.88.1.2";
const REMOTE_POD_V6 = "fd00:88:0:1::2";

/** `nft` in a namespace. */
function nft(ns: string, args: string[]): string {
  return execFileSync("ip", ["netns", "exec", ns, "nft", ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** The ruleset without our table: what must never change. */
function rulesetOutsideOurs(ns: string): string {
  const text = nft(ns, ["list", "ruleset"]);
  return text.replace(/^table inet workloadnet \{\n[\s\S]*?^\}\n/m, "");
}

/** A veth between two namespaces, addresses on both ends (no DAD: usable at once). */
function wire(a: string, aIf: string, aAddrs: string[], b: string, bIf: string, bAddrs: string[]): void {
  ip(["link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b], a);
  for (const [ns, dev, addrs] of [[a, aIf, aAddrs], [b, bIf, bAddrs]] as const) {
    for (const addr of addrs) ip(["addr", "add", addr, "dev", dev, ...(addr.includes(":") ? ["nodad"] : [])], ns);
    ip(["link", "set", dev, "up"], ns);
    ip(["link", "set", "lo", "up"], ns);
  }
}

interface World {
  outside: PodNamespace;
  node2: PodNamespace;
}

/** An outside host on the node's link, and a second node whose pods (10.88.1.0/24, fd00:88:0:1::/64) are routed via it. */
function buildWorld(d: DaemonHarness): World {
  const outside = createNamespace("out");
  const node2 = createNamespace("node2");
  wire(d.hostNs, "wkt-out", [`${NODE_V4}/24`, `${NODE_V6}/64`], outside.name, "eth0", [`${OUTSIDE_V4}/24`, `${OUTSIDE_V6}/64`]);
  wire(d.hostNs, "wkt-n2", ["198.51.100.1/24", "2001:db8:1::1/64"], node2.name, "eth0", ["198.51.100.2/24", "2001:db8:1::2/64"]);
  ip(["addr", "add", `${REMOTE_POD_V4}/32`, "dev", "lo"], node2.name);
  ip(["addr", "add", `${REMOTE_POD_V6}/128`, "dev", "lo"], node2.name);
  ip(["route", "add", "default", "via", "198.51.100.1"], node2.name);
  ip(["-6", "route", "add", "default", "via", "2001:db8:1::1"], node2.name);
  d.hostIp(["route", "add", "10.88.1.0/24", "via", "198.51.100.2"]);
  d.hostIp(["-6", "route", "add", "fd00:88:0:1::/64", "via", "2001:db8:1::2"]);
  return { outside, node2 };
}

interface Mapping {
  hostPort: number;
  containerPort: number;
  protocol: string;
  hostIp?: string;
}

async function attach(d: DaemonHarness, id: string, pod: PodNamespace, portMappings: Mapping[] = []): Promise<string[]> {
  const res = await d.client.attach({ workloadId: id, netns: { netnsPath: pod.path, ifName: "eth0" }, portMappings });
  return res.ip.map(ipFromBytes);
}

async function attachError(d: DaemonHarness, id: string, pod: PodNamespace, portMappings: Mapping[]): Promise<ConnectError> {
  try {
    await attach(d, id, pod, portMappings);
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error(`attach ${id} succeeded; expected an error`);
}

describe("published ports and masquerade (one daemon, a small network around it)", { concurrency: false }, () => {
  let d: DaemonHarness;
  let world: World;
  const servers: Server[] = [];
  let pod1: PodNamespace;
  let pod1Addrs: string[];
  let iptablesBefore: string;

  before(async () => {
    d = await DaemonHarness.start({ args: CLUSTER_ARGS });
    world = buildWorld(d);
    // Someone else's rules on the same node (iptables-nft), present before and after everything we do.
    d.hostIp(["link", "set", "lo", "up"]);
    execFileSync("ip", ["netns", "exec", d.hostNs, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "203.0.113.0/24", "-j", "MASQUERADE"]);
    execFileSync("ip", ["netns", "exec", d.hostNs, "iptables", "-A", "FORWARD", "-s", "203.0.113.7", "-j", "DROP"]);
    execFileSync("ip", ["netns", "exec", d.hostNs, "ip6tables", "-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "REJECT"]);
    iptablesBefore = rulesetOutsideOurs(d.hostNs);
    assert.match(iptablesBefore, /203\.0\.113\.0\/24/, "the iptables-nft rules are in place");

    pod1 = d.pod();
    pod1Addrs = await attach(d, "web1", pod1, [
      { hostPort: 8080, containerPort: 80, protocol: "tcp" },
      { hostPort: 5353, containerPort: 53, protocol: "udp" },
    ]);
    servers.push(await serve(pod1.name, "tcp", 80, "web1"));
    servers.push(await serve(pod1.name, "udp", 53, "web1"));
  });

  after(async () => {
    for (const s of servers) s.stop();
    world?.outside.remove();
    world?.node2.remove();
    await d?.cleanup();
  });

  it("the table holds our sets, maps and chains, the port maps the mapping", () => {
    const table = nft(d.hostNs, ["list", "table", "inet", "workloadnet"]);
    for (const chain of ["ports", "prerouting", "output", "postrouting", "egress"]) assert.match(table, new RegExp(`chain ${chain} \\{`));
    const [v4, v6] = pod1Addrs as [string, string];
    assert.match(nft(d.hostNs, ["list", "map", "inet", "workloadnet", "any-v4"]), new RegExp(`tcp \\. 8080 : ${v4.replace(/\./g, "\\.")} \\. 80`));
    assert.match(nft(d.hostNs, ["list", "map", "inet", "workloadnet", "any-v6"]), new RegExp(`udp \\. 5353 : ${v6} \\. 53`));
    assert.match(nft(d.hostNs, ["list", "set", "inet", "workloadnet", "cluster-v4"]), /10\.88\.0\.0\/16/);
  });

  it("a published TCP port answers another host on both families, the node on its own address, and 127.0.0.1", async () => {
    assert.equal(await ask(world.outside.name, "tcp", NODE_V4, 8080), `web1 saw ${OUTSIDE_V4}`);
    assert.equal(await ask(world.outside.name, "tcp", NODE_V6, 8080), `web1 saw ${OUTSIDE_V6}`);
    assert.equal(await ask(d.hostNs, "tcp", NODE_V4, 8080), `web1 saw ${NODE_V4}`);
    assert.equal(await ask(d.hostNs, "tcp", NODE_V6, 8080), `web1 saw ${NODE_V6}`);
    // From loopback: the pod cannot answer 127.0.0.1, so the node's address stands in for it.
    const fromLoopback = await ask(d.hostNs, "tcp", "127.0.0.1", 8080);
    assert.match(fromLoopback, /^web1 saw \d+\.\d+\.\d+\.\d+$/);
    assert.doesNotMatch(fromLoopback, /127\.0\.0\.1/);
  });

  it("::1 is not translated (the kernel cannot route a pod's answer back to ::1): refused at once, never hung", async () => {
    const answer = await tryAsk(d.hostNs, "tcp", "::1", 8080);
    assert.match(answer, /failed: .*ECONNREFUSED/);
  });

  it("a published UDP port answers another host", async () => {
    assert.equal(await ask(world.outside.name, "udp", NODE_V4, 5353), `web1 saw ${OUTSIDE_V4}`);
    assert.equal(await ask(world.outside.name, "udp", NODE_V6, 5353), `web1 saw ${OUTSIDE_V6}`);
  });

  it("hairpin: the pod reaches its own published port through the node; another pod reaches it with its own address", async () => {
    const own = await ask(pod1.name, "tcp", NODE_V4, 8080);
    assert.match(own, /^web1 saw /);
    assert.notEqual(own, `web1 saw ${pod1Addrs[0]}`, "masqueraded: the pod would answer itself directly otherwise");
    assert.match(await ask(pod1.name, "tcp", NODE_V6, 8080), /^web1 saw /);
    const other = d.pod();
    const [otherV4] = await attach(d, "client1", other);
    assert.equal(await ask(other.name, "tcp", NODE_V4, 8080), `web1 saw ${otherV4}`);
    await d.client.detach({ workloadId: "client1" });
  });

  it("masquerade: an outside host sees the node's address, a pod on another node sees the pod's own (both families)", async () => {
    const pod = d.pod();
    const [v4, v6] = await attach(d, "egress1", pod);
    const outsideServer = await serve(world.outside.name, "tcp", 9000, "outside");
    const remoteServer = await serve(world.node2.name, "tcp", 9000, "remote-pod");
    servers.push(outsideServer, remoteServer);
    assert.equal(await ask(pod.name, "tcp", OUTSIDE_V4, 9000), `outside saw ${NODE_V4}`);
    assert.equal(await ask(pod.name, "tcp", OUTSIDE_V6, 9000), `outside saw ${NODE_V6}`);
    assert.equal(await ask(pod.name, "tcp", REMOTE_POD_V4, 9000), `remote-pod saw ${v4}`);
    assert.equal(await ask(pod.name, "tcp", REMOTE_POD_V6, 9000), `remote-pod saw ${v6}`);
    // Pod to pod on this node keeps the source too.
    assert.equal(await ask(pod.name, "tcp", pod1Addrs[0]!, 80), `web1 saw ${v4}`);
    await d.client.detach({ workloadId: "egress1" });
  });

  it("a host port held by another workload: FAILED_PRECONDITION naming port and holder, and nothing of the new workload left", async () => {
    const linksBefore = d.hostLinks().length;
    const mapsBefore = nft(d.hostNs, ["list", "map", "inet", "workloadnet", "any-v4"]);
    const pod = d.pod();
    const err = await attachError(d, "web2", pod, [
      { hostPort: 8081, containerPort: 80, protocol: "tcp" },
      { hostPort: 8080, containerPort: 80, protocol: "TCP" },
    ]);
    assert.equal(err.code, Code.FailedPrecondition);
    assert.match(err.rawMessage, /host port tcp 8080 .*already published by workload web1/);
    assert.equal(d.hostLinks().length, linksBefore, "no link of web2");
    assert.deepEqual((await d.client.list({})).attachments.map((a) => a.workloadId), ["web1"]);
    assert.equal(nft(d.hostNs, ["list", "map", "inet", "workloadnet", "any-v4"]), mapsBefore, "no element of web2");
    // The same port on UDP, or on one specific other address, is free.
    const ok = await attach(d, "web2", pod, [{ hostPort: 8080, containerPort: 80, protocol: "udp" }]);
    assert.equal(ok.length, 2);
    await d.client.detach({ workloadId: "web2" });
  });

  it("bad mappings are INVALID_ARGUMENT with the reason, before anything is made", async () => {
    const pod = d.pod();
    const cases: [Mapping, RegExp][] = [
      [{ hostPort: 0, containerPort: 80, protocol: "tcp" }, /hostPort 0 is not a port/],
      [{ hostPort: 70000, containerPort: 80, protocol: "tcp" }, /hostPort 70000 is not a port/],
      [{ hostPort: 8090, containerPort: 0, protocol: "tcp" }, /containerPort 0 is not a port/],
      [{ hostPort: 8090, containerPort: 80, protocol: "icmp" }, /protocol "icmp" is not one of tcp, udp, sctp/],
      [{ hostPort: 8090, containerPort: 80, protocol: "tcp", hostIp: "node-1" }, /hostIP "node-1" is not an IP address/],
    ];
    for (const [mapping, message] of cases) {
      const err = await attachError(d, "bad1", pod, [mapping]);
      assert.equal(err.code, Code.InvalidArgument, JSON.stringify(mapping));
      assert.match(err.rawMessage, message);
    }
    assert.equal((await d.client.list({})).attachments.length, 1);
  });

  it("a mapping to one node address only answers on that address", async () => {
    const pod = d.pod();
    await attach(d, "web3", pod, [{ hostPort: 8082, containerPort: 80, protocol: "tcp", hostIp: "198.51.100.1" }]);
    const server = await serve(pod.name, "tcp", 80, "web3");
    servers.push(server);
    assert.equal(await ask(world.node2.name, "tcp", "198.51.100.1", 8082), "web3 saw 198.51.100.2");
    assert.match(await tryAsk(world.outside.name, "tcp", NODE_V4, 8082), /failed: .*ECONNREFUSED/);
    const listed = (await d.client.list({})).attachments.find((a) => a.workloadId === "web3");
    assert.deepEqual(listed?.portMappings.map((m) => [m.protocol, m.hostIp, m.hostPort, m.containerPort]), [["tcp", "198.51.100.1", 8082, 80]]);
    server.stop();
    await d.client.detach({ workloadId: "web3" });
  });

  it("Detach removes the mappings and the conntrack entries of their connections", async () => {
    const pod = d.pod();
    const [v4] = await attach(d, "udp1", pod, [{ hostPort: 6000, containerPort: 53, protocol: "udp" }]);
    const server = await serve(pod.name, "udp", 53, "udp1");
    assert.equal(await ask(world.outside.name, "udp", NODE_V4, 6000), `udp1 saw ${OUTSIDE_V4}`);
    const tracked = (): string => execFileSync("ip", ["netns", "exec", d.hostNs, "conntrack", "-L", "-p", "udp", "--orig-port-dst", "6000"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    assert.match(tracked(), new RegExp(`src=${v4!.replace(/\./g, "\\.")} `), "the translated flow is tracked");
    server.stop();
    await d.client.detach({ workloadId: "udp1" });
    // The flush follows the answer (it walks the kernel's whole table): give it a moment.
    for (let i = 0; i < 50 && tracked().trim() !== ""; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(tracked().trim(), "", "no conntrack entry of the removed mapping");
    assert.doesNotMatch(nft(d.hostNs, ["list", "map", "inet", "workloadnet", "any-v4"]), /6000/);
    assert.doesNotMatch(nft(d.hostNs, ["list", "set", "inet", "workloadnet", "hairpin-v4"]), new RegExp(v4!.replace(/\./g, "\\.")));
  });

  it("List and workloadnetctl show the mappings", async () => {
    const web1 = (await d.client.list({})).attachments.find((a) => a.workloadId === "web1");
    assert.deepEqual(
      web1?.portMappings.map((m) => [m.protocol, m.hostPort, m.containerPort]).sort(),
      [["tcp", 8080, 80], ["udp", 5353, 53]],
    );
    const ctl = execFileSync(process.execPath, [new URL("../src/cli/workloadnetctl.js", import.meta.url).pathname, "--socket", d.socketPath, "list"], { encoding: "utf8" });
    assert.match(ctl, /^web1\t\S+\t\S+ \S+\t(tcp 8080 -> 80, udp 5353 -> 53|udp 5353 -> 53, tcp 8080 -> 80)$/m);
    // workloadnetctl attach -p, as podman's -p.
    const pod = d.pod();
    const ctlJs = new URL("../src/cli/workloadnetctl.js", import.meta.url).pathname;
    execFileSync(process.execPath, [ctlJs, "--socket", d.socketPath, "attach", "ctl1", pod.path, "-p", "198.51.100.1:8095:80/udp", "-p", "8096:81"], { encoding: "utf8" });
    const listed = execFileSync(process.execPath, [ctlJs, "--socket", d.socketPath, "--json", "list"], { encoding: "utf8" });
    const ctl1 = listed.trim().split("\n").map((l) => JSON.parse(l) as { workloadId: string; portMappings: Mapping[] }).find((a) => a.workloadId === "ctl1");
    assert.deepEqual(ctl1?.portMappings.map((m) => `${m.protocol} ${m.hostIp || "*"}:${m.hostPort} -> ${m.containerPort}`).sort(), ["tcp *:8096 -> 81", "udp 198.51.100.1:8095 -> 80"]);
    await d.client.detach({ workloadId: "ctl1" });
  });

  it("SIGKILL and restart: mappings keep working, those of a workload removed meanwhile are gone, iptables-nft rules untouched", async () => {
    const gone = d.pod();
    const [goneV4] = await attach(d, "gone1", gone, [{ hostPort: 7070, containerPort: 80, protocol: "tcp" }]);
    await d.kill();
    // While the daemon is down the kernel keeps forwarding.
    assert.equal(await ask(world.outside.name, "tcp", NODE_V4, 8080), `web1 saw ${OUTSIDE_V4}`);
    gone.remove(); // the pod's namespace goes, and its veth with it
    await d.restart();
    await d.waitForLog((l) => l.msg === "published ports adopted from the nftables table");
    assert.match(nft(d.hostNs, ["list", "map", "inet", "workloadnet", "any-v4"]), /8080/);
    assert.doesNotMatch(nft(d.hostNs, ["list", "map", "inet", "workloadnet", "any-v4"]), /7070/, "the removed workload's port is gone");
    assert.doesNotMatch(nft(d.hostNs, ["list", "set", "inet", "workloadnet", "hairpin-v4"]), new RegExp(`${goneV4!.replace(/\./g, "\\.")} `));
    assert.equal(await ask(world.outside.name, "tcp", NODE_V4, 8080), `web1 saw ${OUTSIDE_V4}`);
    const web1 = (await d.client.list({})).attachments.find((a) => a.workloadId === "web1");
    assert.equal(web1?.portMappings.length, 2, "List shows the adopted mappings");
    // The adopted port is still held: a newcomer is refused; the freed one can be taken.
    const pod = d.pod();
    assert.equal((await attachError(d, "web4", pod, [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }])).code, Code.FailedPrecondition);
    await attach(d, "web4", pod, [{ hostPort: 7070, containerPort: 80, protocol: "tcp" }]);
    // A clean stop and start changes nothing either.
    await d.stop({ expectCleanExit: true });
    await d.restart();
    assert.equal(await ask(world.outside.name, "tcp", NODE_V4, 8080), `web1 saw ${OUTSIDE_V4}`);
    await d.client.detach({ workloadId: "web4" });
    assert.equal(rulesetOutsideOurs(d.hostNs), iptablesBefore, "nothing outside our table changed");
  });

  it("--masquerade=false removes the masquerade rules; pods then leave with their own address", async () => {
    await d.stop({ expectCleanExit: true });
    await d.restart(10_000, [...CLUSTER_ARGS, "--masquerade=false"]);
    assert.doesNotMatch(nft(d.hostNs, ["list", "table", "inet", "workloadnet"]), /chain egress|masquerade\b.*@pod-v4/);
    // Published ports still work.
    assert.equal(await ask(world.outside.name, "tcp", NODE_V4, 8080), `web1 saw ${OUTSIDE_V4}`);
    const pod = d.pod();
    const [v4] = await attach(d, "egress2", pod);
    ip(["route", "add", "10.88.0.0/24", "via", NODE_V4], world.outside.name);
    assert.equal(await ask(pod.name, "tcp", OUTSIDE_V4, 9000), `outside saw ${v4}`);
    await d.client.detach({ workloadId: "egress2" });
    assert.equal(rulesetOutsideOurs(d.hostNs), iptablesBefore, "nothing outside our table changed");
  });
});

describe("the masquerade sets follow the cluster view", () => {
  it("a change of the view rewrites set elements only (the rules keep their handles); other nodes' prefixes are exempt; workloads keeping old addresses stay sources", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "workloadnet-nft-"));
    const file = join(dir, "prefixes.json");
    const n2 = { name: "n2", addresses: ["198.51.100.12"], prefixes: ["172.20.2.0/24", "fd00:20:2::/64"] };
    const n3 = { name: "n3", addresses: ["198.51.100.13"], prefixes: ["172.20.3.0/24"] };
    writeFileAtomic(file, JSON.stringify({ name: "n1", ipv4: "10.89.0.0/24", ipv6: "fd00:89::/64", nodes: [n2] }));
    const d = await DaemonHarness.start({ args: ["--prefix-file", file, "--routing", "none", "--no-masquerade-cidr", "192.168.0.0/16", "--cluster-cidr", "10.0.0.0/8"] });
    t.after(async () => {
      await d.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });
    const set = (name: string): string => nft(d.hostNs, ["list", "set", "inet", "workloadnet", name]);
    const handles = (): string => nft(d.hostNs, ["-a", "list", "chain", "inet", "workloadnet", "egress"]);
    assert.match(set("pod-v4"), /elements = \{ 10\.89\.0\.0\/24 \}/);
    // 10.89.0.0/24 lies inside 10.0.0.0/8: one interval.
    assert.match(set("cluster-v4"), /elements = \{ 10\.0\.0\.0\/8, 172\.20\.2\.0\/24,\s+192\.168\.0\.0\/16 \}/);
    assert.match(set("cluster-v6"), /elements = \{ fd00:20:2::\/64,\s+fd00:89::\/64 \}/);
    const rulesBefore = handles();
    const pod = d.pod();
    const [oldV4] = (await d.client.attach({ workloadId: "keeper", netns: { netnsPath: pod.path, ifName: "eth0" } })).ip.map(ipFromBytes);

    writeFileAtomic(file, JSON.stringify({ name: "n1", ipv4: "172.30.0.0/24", ipv6: "fd00:90::/64", nodes: [n3] }));
    await d.waitForLog((l) => l.msg === "masquerade prefix sets updated" && JSON.stringify(l.masqueradeSources).includes("172.30.0.0/24"));
    assert.match(set("pod-v4"), new RegExp(`elements = \\{ (172\\.30\\.0\\.0/24, ${oldV4!.replace(/\./g, "\\.")}|${oldV4!.replace(/\./g, "\\.")}, 172\\.30\\.0\\.0/24) \\}`));
    assert.match(set("cluster-v6"), /fd00:90::\/64/);
    assert.doesNotMatch(set("cluster-v6"), /fd00:89::\/64|fd00:20:2::/);
    assert.match(set("cluster-v4"), /172\.20\.3\.0\/24/);
    assert.doesNotMatch(set("cluster-v4"), /172\.20\.2\.0/);
    assert.equal(handles(), rulesBefore, "the rules are the same rules");
  });
});
