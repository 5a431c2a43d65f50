// The CNI plugin end to end: the real C forwarder (build/Release/workloadnet-cni)
// driven as a runtime drives it (CNI_* variables, config on stdin), run inside
// the daemon's host namespace, against the real daemon. Kernel state is
// checked with iproute2. Runs only inside the sandbox (test/run-in-sandbox.sh).
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";
import { DaemonHarness, DEFAULT_ARGS, linkNames, type IpLink, type IpRoute, type StartOptions } from "./daemon-harness.js";
import { CNI_PLUGIN, cniError, cniOk, runCni, type CniEnvVars, type CniRun } from "./cni-exec.js";
import { assertSandbox, ip, ipJson, ping, type PodNamespace } from "./sandbox.js";
import { ask, serve, tryAsk } from "./net-probe.js";
import { decodeReply, encodeRequest, MAGIC } from "../src/cni/wire.js";
import { readRecordsFile } from "../src/cni/attachments.js";

assertSandbox();

const VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
const NETWORK = "wknet";
const HOST_MAC = "02:9c:52:fe:6d:0a";

// ---- helpers ---------------------------------------------------------------

async function daemon(t: TestContext, options?: StartOptions): Promise<DaemonHarness> {
  const d = await DaemonHarness.start(options);
  t.after(() => d.cleanup());
  return d;
}

function conf(d: DaemonHarness | string, cniVersion: string, extra: Record<string, unknown> = {}): string {
  const socket = typeof d === "string" ? d : d.socketPath;
  return JSON.stringify({ cniVersion, name: NETWORK, type: "workloadnet-cni", socket, ...extra });
}

let seq = 0;
const containerId = (): string => `c${process.pid}x${++seq}${"0".repeat(20)}`.slice(0, 32);

interface Pod {
  ns: PodNamespace;
  env: CniEnvVars;
}

function podFor(d: DaemonHarness, extraArgs = ""): Pod {
  const ns = d.pod();
  return {
    ns,
    env: { CNI_CONTAINERID: containerId(), CNI_NETNS: ns.path, CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin", ...(extraArgs ? { CNI_ARGS: extraArgs } : {}) },
  };
}

const cni = (d: DaemonHarness, command: string, env: CniEnvVars, stdin: string | undefined): Promise<CniRun> =>
  runCni({ ...env, CNI_COMMAND: command }, stdin, { hostNs: d.hostNs });

interface PodAddr {
  family: string;
  local: string;
  prefixlen: number;
}

function podAddresses(ns: string, ifName = "eth0"): string[] {
  const links = ipJson<{ ifname: string; addr_info: (PodAddr & { scope: string })[] }[]>(["addr", "show", "dev", ifName], ns);
  return (links[0]?.addr_info ?? []).filter((a) => a.scope === "global").map((a) => `${a.local}/${a.prefixlen}`);
}

function hostLinksOf(d: DaemonHarness, workloadId: string): IpLink[] {
  return d.hostLinks().filter((l) => l.ifalias === `wk${workloadId}`);
}

function routesVia(d: DaemonHarness, dev: string): IpRoute[] {
  return d.hostStaticRoutes().filter((r) => r.dev === dev);
}

async function attachedIds(d: DaemonHarness): Promise<string[]> {
  const res = await d.client.list({});
  return res.attachments.map((a) => a.workloadId).sort();
}

/** ADD, checked against the kernel; returns the parsed result. */
async function add(d: DaemonHarness, pod: Pod, version = "1.1.0"): Promise<Record<string, unknown>> {
  const r = cniOk(await cni(d, "ADD", pod.env, conf(d, version)));
  assert.ok(r, "ADD printed a result");
  return r;
}

// ---- tests -----------------------------------------------------------------

describe("workloadnet-cni (C forwarder + daemon)", { concurrency: false }, () => {
  it("is a static executable: no program interpreter, so nothing but the kernel is needed", () => {
    const elf = readFileSync(CNI_PLUGIN);
    assert.equal(elf.toString("latin1", 0, 4), "\x7fELF");
    assert.equal(elf[4], 2, "64-bit ELF");
    const phoff = Number(elf.readBigUInt64LE(0x20));
    const phentsize = elf.readUInt16LE(0x36);
    const phnum = elf.readUInt16LE(0x38);
    const PT_INTERP = 3;
    const types = Array.from({ length: phnum }, (_, i) => elf.readUInt32LE(phoff + i * phentsize));
    assert.ok(!types.includes(PT_INTERP), "no PT_INTERP: not dynamically linked");
  });

  for (const version of VERSIONS) {
    it(`ADD, CHECK, DEL in cniVersion ${version}: result format and kernel state`, async (t) => {
      const d = await daemon(t);
      const pod = podFor(d);
      const result = await add(d, pod, version);

      // The result, in this version's format.
      assert.equal(result.cniVersion, version);
      const interfaces = result.interfaces as { name: string; mac: string; sandbox?: string }[];
      assert.equal(interfaces.length, 2);
      const workloadId = pod.env.CNI_CONTAINERID!;
      const [hostLink] = hostLinksOf(d, workloadId);
      assert.ok(hostLink, "the host veth exists, marked with the workload id");
      assert.deepEqual(interfaces[0], { name: hostLink.ifname, mac: HOST_MAC });
      assert.equal(interfaces[1]!.name, "eth0");
      assert.equal(interfaces[1]!.sandbox, pod.ns.path);
      const podLink = ipJson<IpLink[]>(["link", "show", "eth0"], pod.ns.name)[0]!;
      assert.equal(interfaces[1]!.mac, podLink.address, "the pod interface's real MAC");

      const ips = result.ips as Record<string, unknown>[];
      assert.equal(ips.length, 2);
      const old = version.startsWith("0.");
      assert.deepEqual(Object.keys(ips[0]!).sort(), (old ? ["address", "gateway", "interface", "version"] : ["address", "gateway", "interface"]).sort());
      if (old) assert.deepEqual(ips.map((i) => i.version), ["4", "6"]);
      assert.match(ips[0]!.address as string, /^10\.88\.0\.\d+\/32$/);
      assert.match(ips[1]!.address as string, /^fd00:88::[0-9a-f]+\/128$/);
      assert.deepEqual(ips.map((i) => [i.gateway, i.interface]), [["169.254.77.1", 1], ["fe80::1", 1]]);
      assert.deepEqual(result.routes, [{ dst: "0.0.0.0/0", gw: "169.254.77.1" }, { dst: "::/0", gw: "fe80::1" }]);
      assert.deepEqual(result.dns, {});

      // The kernel agrees: the addresses in the pod, host routes to them.
      assert.deepEqual(podAddresses(pod.ns.name).sort(), ips.map((i) => i.address as string).sort());
      assert.deepEqual(routesVia(d, hostLink.ifname).map((r) => r.dst).sort(), ips.map((i) => (i.address as string).split("/")[0]).sort());
      assert.ok(await ping(pod.ns.name, "169.254.77.1"), "the pod reaches its IPv4 first hop");

      // CHECK exists from 0.4.0 on.
      const check = await cni(d, "CHECK", pod.env, conf(d, version, { prevResult: result }));
      if (version === "0.3.0" || version === "0.3.1") {
        const e = cniError(check);
        assert.equal(e.code, 1);
        assert.match(e.msg, /CHECK needs cniVersion 0\.4\.0/);
      } else {
        cniOk(check);
        assert.equal(check.stdout, "");
      }

      // DEL: everything gone; a second DEL succeeds too.
      cniOk(await cni(d, "DEL", pod.env, conf(d, version)));
      assert.deepEqual(hostLinksOf(d, workloadId), []);
      assert.deepEqual(routesVia(d, hostLink.ifname), []);
      assert.deepEqual(linkNames(pod.ns.name), ["lo"]);
      assert.deepEqual(await attachedIds(d), []);
      cniOk(await cni(d, "DEL", pod.env, conf(d, version)));
    });
  }

  it("VERSION: the daemon's answer, and the same answer from the forwarder alone when the daemon is down", async (t) => {
    const d = await daemon(t);
    for (const version of [...VERSIONS, undefined]) {
      const stdin = version ? JSON.stringify({ cniVersion: version }) : "";
      const up = cniOk(await cni(d, "VERSION", {}, version ? stdin : ""));
      assert.deepEqual(up, { cniVersion: version ?? "1.1.0", supportedVersions: [...VERSIONS] });
      const down = await runCni({ CNI_COMMAND: "VERSION" }, version ? JSON.stringify({ cniVersion: version, socket: "/run/workloadnet/nobody-here.sock" }) : "");
      assert.equal(down.code, 0);
      assert.deepEqual(down.json, up, "the forwarder's local VERSION answer equals the daemon's");
    }
    // A version we do not speak: answered in the latest.
    const r = cniOk(await cni(d, "VERSION", {}, JSON.stringify({ cniVersion: "0.2.0" })));
    assert.equal(r?.cniVersion, "1.1.0");
  });

  it("STATUS: success when serving, error 50 while the node has no pod prefixes, error 1 before 1.1.0", async (t) => {
    const d = await daemon(t);
    const ok = await cni(d, "STATUS", {}, conf(d, "1.1.0"));
    cniOk(ok);
    assert.equal(ok.stdout, "");
    const old = cniError(await cni(d, "STATUS", {}, conf(d, "1.0.0")));
    assert.equal(old.code, 1);

    const dir = mkdtempSync(join(tmpdir(), "workloadnet-cni-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const noPrefixes = await daemon(t, { args: ["--prefix-file", join(dir, "prefixes.json")] });
    const e = cniError(await cni(noPrefixes, "STATUS", {}, conf(noPrefixes, "1.1.0")));
    assert.equal(e.code, 50);
    assert.match(e.msg, /plugin not available: no pod prefixes/);
    // ADD meanwhile: try again later.
    const pod = podFor(noPrefixes);
    const addErr = cniError(await cni(noPrefixes, "ADD", pod.env, conf(noPrefixes, "1.1.0")));
    assert.equal(addErr.code, 11);
  });

  it("the daemon down: error 11 naming the socket, in the requested version", async () => {
    const socket = "/run/workloadnet/not-running.sock";
    for (const command of ["ADD", "DEL", "CHECK", "STATUS", "GC"]) {
      const r = await runCni({ CNI_COMMAND: command, CNI_CONTAINERID: "abc", CNI_NETNS: "/run/netns/x", CNI_IFNAME: "eth0" }, conf(socket, "0.4.0"));
      const e = cniError(r);
      assert.equal(e.code, 11);
      assert.equal(e.cniVersion, "0.4.0");
      assert.equal(e.msg, `try again later: cannot reach workloadnetd at ${socket}: No such file or directory`);
      assert.match(e.details ?? "", /is it running/);
    }
    // Without "socket" the default path is named.
    const e = cniError(await runCni({ CNI_COMMAND: "ADD" }, JSON.stringify({ cniVersion: "1.0.0", name: "n" })));
    assert.match(e.msg, /cannot reach workloadnetd at \/run\/workloadnet\/workloadnet\.sock: /);
    // A bad "socket" is a config error, found without the daemon.
    const bad = cniError(await runCni({ CNI_COMMAND: "ADD" }, JSON.stringify({ cniVersion: "1.0.0", name: "n", socket: "relative.sock" })));
    assert.equal(bad.code, 7);
  });

  it("bad input: each error with the spec's code and a clear message, nothing attached", async (t) => {
    const d = await daemon(t);
    const pod = podFor(d);
    const good = conf(d, "1.0.0");
    const cases: { name: string; command?: string; env?: CniEnvVars; stdin: string; code: number; msg: RegExp }[] = [
      // (These two are answered by the forwarder itself: without a config it cannot know the socket.)
      { name: "bad JSON", stdin: `{"cniVersion":"1.0.0","socket":"${d.socketPath}",`, code: 6, msg: /not valid JSON/ },
      { name: "empty config", stdin: "", code: 6, msg: /no network configuration/ },
      { name: "JSON that is not an object", stdin: "[1,2]", code: 6, msg: /not a JSON object/ },
      { name: "unsupported version", stdin: conf(d, "0.2.0"), code: 1, msg: /incompatible CNI versions/ },
      { name: "no cniVersion", stdin: JSON.stringify({ name: NETWORK, socket: d.socketPath }), code: 1, msg: /incompatible CNI versions/ },
      { name: "no network name", stdin: JSON.stringify({ cniVersion: "1.0.0", socket: d.socketPath }), code: 7, msg: /no "name"/ },
      { name: "ipam section", stdin: conf(d, "1.0.0", { ipam: { type: "host-local" } }), code: 2, msg: /unsupported field "ipam"/ },
      { name: "declared capability we do not honour", stdin: conf(d, "1.0.0", { capabilities: { portMappings: true, bandwidth: true } }), code: 2, msg: /capabilities.*bandwidth/ },
      { name: "port mapping with port 0", stdin: conf(d, "1.0.0", { runtimeConfig: { portMappings: [{ hostPort: 0, containerPort: 80, protocol: "tcp" }] } }), code: 7, msg: /portMappings.*hostPort 0 is not a port/ },
      { name: "port mapping with port 70000", stdin: conf(d, "1.0.0", { runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 70000, protocol: "tcp" }] } }), code: 7, msg: /containerPort 70000 is not a port/ },
      { name: "port mapping with an unknown protocol", stdin: conf(d, "1.0.0", { runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "icmp" }] } }), code: 7, msg: /protocol "icmp" is not one of tcp, udp, sctp/ },
      { name: "port mapping with a hostIP that is not an address", stdin: conf(d, "1.0.0", { runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "example.com" }] } }), code: 7, msg: /hostIP "example.com" is not an IP address/ },
      { name: "no CNI_COMMAND", command: "", stdin: good, code: 4, msg: /CNI_COMMAND is missing/ },
      { name: "unknown CNI_COMMAND", command: "FROB", stdin: good, code: 4, msg: /CNI_COMMAND "FROB"/ },
      { name: "no CNI_NETNS", env: { ...pod.env, CNI_NETNS: undefined }, stdin: good, code: 4, msg: /CNI_NETNS missing/ },
      { name: "no CNI_CONTAINERID and CNI_IFNAME", env: { CNI_NETNS: pod.ns.path }, stdin: good, code: 4, msg: /CNI_CONTAINERID, CNI_IFNAME missing/ },
      { name: "bad CNI_IFNAME", env: { ...pod.env, CNI_IFNAME: "eth 0" }, stdin: good, code: 4, msg: /CNI_IFNAME: .*whitespace/ },
      { name: "too long CNI_IFNAME", env: { ...pod.env, CNI_IFNAME: "x".repeat(16) }, stdin: good, code: 4, msg: /CNI_IFNAME: .*15 bytes/ },
      { name: "bad CNI_CONTAINERID", env: { ...pod.env, CNI_CONTAINERID: "-abc/def" }, stdin: good, code: 4, msg: /CNI_CONTAINERID/ },
      { name: "relative CNI_NETNS", env: { ...pod.env, CNI_NETNS: "netns/x" }, stdin: good, code: 4, msg: /CNI_NETNS .* absolute/ },
      { name: "bad CNI_ARGS", env: { ...pod.env, CNI_ARGS: "K8S_POD_UID" }, stdin: good, code: 4, msg: /CNI_ARGS/ },
      { name: "bad K8S_POD_UID", env: { ...pod.env, CNI_ARGS: "K8S_POD_UID=a b" }, stdin: good, code: 4, msg: /K8S_POD_UID/ },
      { name: "netns that does not exist", env: { ...pod.env, CNI_NETNS: "/run/netns/nope" }, stdin: good, code: 3, msg: /does not exist/ },
      { name: "netns that is a regular file", env: { ...pod.env, CNI_NETNS: "/etc/passwd" }, stdin: good, code: 4, msg: /not a namespace/ },
    ];
    for (const c of cases) {
      const env = { ...(c.env ?? pod.env), CNI_COMMAND: c.command ?? "ADD" };
      const r = await runCni(env, c.stdin, { hostNs: d.hostNs });
      const e = cniError(r);
      assert.equal(e.code, c.code, `${c.name}: code ${e.code} (${e.msg})`);
      assert.match(e.msg, c.msg, c.name);
      assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at /, `${c.name}: no stack trace`);
    }
    // CHECK without prevResult; GC without the valid list.
    const add1 = await add(d, pod);
    const noPrev = cniError(await cni(d, "CHECK", pod.env, conf(d, "1.1.0")));
    assert.equal(noPrev.code, 7);
    assert.match(noPrev.msg, /prevResult/);
    const noList = cniError(await cni(d, "GC", {}, conf(d, "1.1.0")));
    assert.equal(noList.code, 7);
    assert.match(noList.msg, /valid-attachments/);
    const gcOld = cniError(await cni(d, "GC", {}, conf(d, "1.0.0", { "cni.dev/valid-attachments": [] })));
    assert.equal(gcOld.code, 1);
    assert.ok(add1);
    assert.deepEqual(await attachedIds(d), [pod.env.CNI_CONTAINERID], "only the one good ADD is attached");
  });

  it("runtimeConfig.portMappings as containerd's CRI sends it: ADD publishes the ports, DEL removes them", async (t) => {
    const d = await daemon(t);
    d.hostIp(["addr", "add", "192.0.2.1/32", "dev", "lo"]); // the node's address
    const pod = podFor(d);
    // containerd's CRI: the capability declared in the conflist, the pod's hostPorts in runtimeConfig.
    const stdin = conf(d, "1.0.0", {
      capabilities: { portMappings: true },
      runtimeConfig: {
        portMappings: [
          { hostPort: 8085, containerPort: 80, protocol: "tcp", hostIP: "" },
          { hostPort: 8086, containerPort: 81, protocol: "udp", hostIP: "0.0.0.0" },
        ],
      },
    });
    cniOk(await cni(d, "ADD", pod.env, stdin));
    const server = await serve(pod.ns.name, "tcp", 80, "pod");
    t.after(() => server.stop());
    assert.equal(await ask(d.hostNs, "tcp", "192.0.2.1", 8085), "pod saw 192.0.2.1");
    assert.match(await ask(d.hostNs, "tcp", "127.0.0.1", 8085), /^pod saw /);
    const [attached] = (await d.client.list({})).attachments;
    assert.deepEqual(attached?.portMappings.map((m) => `${m.protocol} ${m.hostIp || "*"}:${m.hostPort} -> ${m.containerPort}`).sort(), ["tcp *:8085 -> 80", "udp *:8086 -> 81"]);
    cniOk(await cni(d, "DEL", pod.env, stdin));
    assert.doesNotMatch(d.hostNft(["list", "map", "inet", "workloadnet", "any-v4"]), /8085|8086/);
    assert.match(await tryAsk(d.hostNs, "tcp", "192.0.2.1", 8085), /^failed: .*ECONNREFUSED/);
  });

  it("ADD twice for the same container: error 11 naming the attachment; the first stays intact", async (t) => {
    const d = await daemon(t);
    const pod = podFor(d);
    const first = await add(d, pod);
    const e = cniError(await cni(d, "ADD", pod.env, conf(d, "1.1.0")));
    assert.equal(e.code, 11);
    assert.match(e.msg, /already has eth0 on network wknet/);
    cniOk(await cni(d, "CHECK", pod.env, conf(d, "1.1.0", { prevResult: first })));
  });

  it("DEL after the pod's namespace was deleted, and DEL with no CNI_NETNS: success, nothing left", async (t) => {
    const d = await daemon(t);
    const a = podFor(d);
    const b = podFor(d);
    await add(d, a);
    await add(d, b);
    a.ns.remove();
    cniOk(await cni(d, "DEL", a.env, conf(d, "1.1.0")));
    assert.deepEqual(hostLinksOf(d, a.env.CNI_CONTAINERID!), []);
    cniOk(await cni(d, "DEL", { ...b.env, CNI_NETNS: undefined }, conf(d, "0.3.1")));
    assert.deepEqual(hostLinksOf(d, b.env.CNI_CONTAINERID!), []);
    assert.deepEqual(d.hostStaticRoutes(), []);
    assert.deepEqual(await attachedIds(d), []);
    // DEL of something never added.
    const never = podFor(d);
    cniOk(await cni(d, "DEL", never.env, conf(d, "1.1.0")));
  });

  it("CHECK finds a removed address, a missing interface, and a prevResult that does not match", async (t) => {
    const d = await daemon(t);
    const pod = podFor(d);
    const result = await add(d, pod, "1.0.0");
    const ips = (result.ips as { address: string }[]).map((i) => i.address);
    cniOk(await cni(d, "CHECK", pod.env, conf(d, "1.0.0", { prevResult: result })));

    // prevResult naming another address.
    const wrong = { ...result, ips: [{ address: "10.88.0.200/32", gateway: "169.254.77.1", interface: 1 }, (result.ips as unknown[])[1]] };
    const mismatch = cniError(await cni(d, "CHECK", pod.env, conf(d, "1.0.0", { prevResult: wrong })));
    assert.equal(mismatch.code, 102);
    assert.match(mismatch.msg, /prevResult has 10\.88\.0\.200/);

    // The host's route to the pod's IPv4 address removed, then put back.
    const [hostSide] = hostLinksOf(d, pod.env.CNI_CONTAINERID!);
    const v4 = ips[0]!.split("/")[0]!;
    d.hostIp(["route", "del", `${v4}/32`, "dev", hostSide!.ifname]);
    const noRoute = cniError(await cni(d, "CHECK", pod.env, conf(d, "1.0.0", { prevResult: result })));
    assert.equal(noRoute.code, 102);
    assert.match(noRoute.msg, new RegExp(`host route to ${v4.replace(/\./g, "\\.")} via ${hostSide!.ifname} is missing`));
    d.hostIp(["route", "add", `${v4}/32`, "dev", hostSide!.ifname, "proto", "static"]);
    cniOk(await cni(d, "CHECK", pod.env, conf(d, "1.0.0", { prevResult: result })));

    // The pod's IPv6 address removed behind our back.
    ip(["addr", "del", ips[1]!, "dev", "eth0"], pod.ns.name);
    const gone = cniError(await cni(d, "CHECK", pod.env, conf(d, "1.0.0", { prevResult: result })));
    assert.equal(gone.code, 102);
    assert.match(gone.msg, new RegExp(`address ${ips[1]!.split("/")[0]} is missing on eth0`));

    // The host side deleted.
    const [hostLink] = hostLinksOf(d, pod.env.CNI_CONTAINERID!);
    d.hostIp(["link", "del", hostLink!.ifname]);
    const noLink = cniError(await cni(d, "CHECK", pod.env, conf(d, "1.0.0", { prevResult: result })));
    assert.equal(noLink.code, 102);
    assert.match(noLink.msg, /host interface .* is gone/);

    // After DEL, CHECK says the container is unknown.
    cniOk(await cni(d, "DEL", pod.env, conf(d, "1.0.0")));
    const unknown = cniError(await cni(d, "CHECK", pod.env, conf(d, "1.0.0", { prevResult: result })));
    assert.equal(unknown.code, 3);
  });

  it("GC removes this network's attachments that are not listed, and nothing else", async (t) => {
    const d = await daemon(t);
    const keep = podFor(d);
    const stale1 = podFor(d);
    const stale2 = podFor(d);
    const otherNet = podFor(d);
    for (const p of [keep, stale1, stale2]) await add(d, p);
    cniOk(await cni(d, "ADD", otherNet.env, JSON.stringify({ cniVersion: "1.1.0", name: "othernet", type: "workloadnet-cni", socket: d.socketPath })));
    // A workload attached over gRPC, not by the plugin.
    const direct = d.pod();
    await d.client.attach({ workloadId: "direct-grpc", netns: { netnsPath: direct.path, ifName: "eth0" } });

    const valid = [{ containerID: keep.env.CNI_CONTAINERID, ifname: "eth0" }, { containerID: "gone-long-ago", ifname: "eth0" }];
    cniOk(await cni(d, "GC", {}, conf(d, "1.1.0", { "cni.dev/valid-attachments": valid })));
    assert.deepEqual(await attachedIds(d), [keep.env.CNI_CONTAINERID, otherNet.env.CNI_CONTAINERID, "direct-grpc"].sort());
    for (const p of [stale1, stale2]) {
      assert.deepEqual(hostLinksOf(d, p.env.CNI_CONTAINERID!), []);
      assert.deepEqual(linkNames(p.ns.name), ["lo"]);
    }
    assert.equal(podAddresses(keep.ns.name).length, 2, "the listed pod keeps its addresses");
    // Their addresses are free again: a new pod can be attached, and GC with everything listed removes nothing.
    const again = podFor(d);
    await add(d, again);
    cniOk(await cni(d, "GC", {}, conf(d, "1.1.0", { "cni.dev/valid-attachments": [...valid, { containerID: again.env.CNI_CONTAINERID, ifname: "eth0" }] })));
    assert.equal((await attachedIds(d)).length, 4);
  });

  it("--cni-state-file: the records are kept where it says, and DEL finds them after a restart", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "wl-cni-state-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const stateFile = join(dir, "records.json");
    const d = await daemon(t, { args: [...DEFAULT_ARGS, "--cni-state-file", stateFile] });
    const pod = podFor(d, "K8S_POD_UID=0b6c1a4e-8d2b-4c3a-9e1f-0a1b2c3d4e01");
    await add(d, pod);
    const records = readRecordsFile(readFileSync(stateFile, "utf8"));
    assert.deepEqual(records.map((r) => r.containerId), [pod.env.CNI_CONTAINERID!], "the record names the container");
    assert.equal(existsSync(d.socketPath.replace(/\.sock$/, ".cni-attachments.json")), false, "nothing at the default place");

    await d.stop({ expectCleanExit: true });
    await d.restart();
    // DEL by container id only works through the record: the workload is named by the pod UID.
    cniOk(await cni(d, "DEL", pod.env, conf(d, "1.1.0")));
    assert.deepEqual(await attachedIds(d), []);
  });

  it("K8S_POD_UID names the workload; GC and DEL still find it by container id, also after a daemon restart", async (t) => {
    const d = await daemon(t);
    const uid = "2f6c1a4e-8d2b-4c3a-9e1f-0a1b2c3d4e5f";
    const uid2 = "7a1b2c3d-0000-4000-8000-000000000002";
    const pod = podFor(d, `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_UID=${uid}`);
    const pod2 = podFor(d, `K8S_POD_UID=${uid2}`);
    await add(d, pod);
    await add(d, pod2);
    assert.equal(hostLinksOf(d, uid).length, 1, "the host veth's alias names the pod UID");
    assert.deepEqual(await attachedIds(d), [uid, uid2].sort());

    await d.stop({ expectCleanExit: true });
    await d.restart();
    // GC lists only pod's container: pod2's attachment (made by UID) is found by its container id.
    cniOk(await cni(d, "GC", {}, conf(d, "1.1.0", { "cni.dev/valid-attachments": [{ containerID: pod.env.CNI_CONTAINERID, ifname: "eth0" }] })));
    assert.deepEqual(await attachedIds(d), [uid]);

    // A DEL for an older sandbox of the same pod (another container id) leaves the current one alone.
    const oldSandbox = { ...pod.env, CNI_CONTAINERID: containerId() };
    const r = await cni(d, "DEL", oldSandbox, conf(d, "1.1.0"));
    cniOk(r);
    assert.match(r.stderr, /nothing to do; workload .* belongs to container/);
    assert.deepEqual(await attachedIds(d), [uid]);
    // An ADD for a second sandbox of the same pod while the first is attached: try again later.
    const second = cniError(await cni(d, "ADD", { ...pod.env, CNI_CONTAINERID: containerId(), CNI_NETNS: d.pod().path }, conf(d, "1.1.0")));
    assert.equal(second.code, 11);
    assert.match(second.msg, new RegExp(`already attached by container ${pod.env.CNI_CONTAINERID}`));
    // The real DEL (CNI_ARGS as on ADD, or not) removes it.
    cniOk(await cni(d, "DEL", { ...pod.env, CNI_ARGS: undefined }, conf(d, "1.1.0")));
    assert.deepEqual(await attachedIds(d), []);
  });

  it("two pods reach each other over IPv4 and IPv6", async (t) => {
    const d = await daemon(t);
    const a = podFor(d);
    const b = podFor(d);
    const ra = await add(d, a);
    const rb = await add(d, b, "0.4.0");
    const [bv4, bv6] = (rb.ips as { address: string }[]).map((i) => i.address.split("/")[0]!);
    const [av4, av6] = (ra.ips as { address: string }[]).map((i) => i.address.split("/")[0]!);
    assert.ok(await ping(b.ns.name, "169.254.77.1"), "IPv4 first hop");
    assert.ok(await ping(b.ns.name, "fe80::1", "eth0"), "IPv6 first hop");
    assert.ok(await ping(a.ns.name, bv4!), "IPv4 pod to pod");
    assert.ok(await ping(a.ns.name, bv6!), "IPv6 pod to pod");
    assert.ok(await ping(b.ns.name, av4!), "IPv4 back");
    assert.ok(await ping(b.ns.name, av6!), "IPv6 back");
  });

  it("the peer-credential check applies to CNI calls: a caller that is not allowed gets error 103", async (t) => {
    const d = await daemon(t);
    chmodSync(d.socketPath, 0o666); // past the file-system layer, so the credential check is what refuses
    chmodSync("/run/workloadnet", 0o755);
    const pod = podFor(d);
    const r = await runCni({ ...pod.env, CNI_COMMAND: "ADD" }, conf(d, "1.0.0"), { hostNs: d.hostNs, wrapper: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] });
    const e = cniError(r);
    assert.equal(e.code, 103);
    assert.match(e.msg, /permission denied: uid 65534/);
    assert.deepEqual(await attachedIds(d), []);
  });

  it("the forwarding protocol: gRPC and CNI share the socket; a malformed or oversized frame gets an I/O error", async (t) => {
    const d = await daemon(t);
    const exchange = (bytes: Buffer): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const s = net.connect(d.socketPath);
        const chunks: Buffer[] = [];
        s.on("data", (c) => chunks.push(c));
        s.on("error", reject);
        s.on("close", () => resolve(Buffer.concat(chunks)));
        s.write(bytes);
      });
    // A well-formed request built by the TypeScript encoder (same framing as the C side).
    const ok = decodeReply(await exchange(encodeRequest({ env: new Map([["CNI_COMMAND", "VERSION"]]), stdin: Buffer.from('{"cniVersion":"0.4.0"}') })));
    assert.equal(ok.exitCode, 0);
    assert.equal(JSON.parse(ok.stdout.toString()).cniVersion, "0.4.0");
    // Oversized announcement: refused before anything is buffered.
    const huge = Buffer.alloc(8);
    huge.writeUInt32BE(0, 0);
    huge.writeUInt32BE(64 * 1024 * 1024, 4);
    const big = decodeReply(await exchange(Buffer.concat([MAGIC, huge])));
    assert.equal(big.exitCode, 1);
    assert.equal(JSON.parse(big.stdout.toString()).code, 5);
    // Environment block without its NUL terminator.
    const header = Buffer.alloc(8);
    header.writeUInt32BE(3, 0);
    const bad = decodeReply(await exchange(Buffer.concat([MAGIC, header, Buffer.from("A=B")])));
    assert.equal(JSON.parse(bad.stdout.toString()).code, 5);
    // And gRPC on the same socket still answers.
    await d.client.status({});
  });

  it("an oversized config on stdin is refused by the forwarder with an I/O error", async (t) => {
    const d = await daemon(t);
    const big = conf(d, "1.0.0", { padding: "x".repeat(1024 * 1024) });
    const e = cniError(await runCni({ CNI_COMMAND: "ADD" }, big, { hostNs: d.hostNs }));
    assert.equal(e.code, 5);
  });

  it("the forwarder's JSON reader accepts exactly what JSON.parse accepts", async () => {
    // Where the config is an object, the forwarder goes on to the (absent) daemon: error 11.
    // Anything else it answers itself with error 6, as the daemon would.
    const socket = "/run/workloadnet/absent.sock";
    const docs = [
      `{"socket":"${socket}"}`,
      ` \n\t{ "socket" : "${socket}" , "a" : [ 1 , -0.5e+3 , true , false , null , { } , [ ] ] } \r\n`,
      `{"socket":"${socket}","s":"\\\"\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\ud800"}`,
      `{"socket":"${socket}","n":[0,1.5,-2,3e7,4E-2,1.0e+10]}`,
      `{"socket":"${socket}","deep":${"[".repeat(100)}${"]".repeat(100)}}`,
      `{"socket":"${socket}","é":"ü✓"}`,
      `{"socket":"${socket}",}`,
      `{"socket":"${socket}"`,
      `{"socket":"${socket}"}}`,
      `{"socket":"${socket}","n":01}`,
      `{"socket":"${socket}","n":1.}`,
      `{"socket":"${socket}","n":.5}`,
      `{"socket":"${socket}","n":+1}`,
      `{"socket":"${socket}","n":-}`,
      `{"socket":"${socket}","n":1e}`,
      `{"socket":"${socket}","s":"\\x"}`,
      `{"socket":"${socket}","s":"\\u12"}`,
      `{"socket":"${socket}","s":"tab\there"}`,
      `{"socket":"${socket}","t":tru}`,
      `{"socket":"${socket}","t":True}`,
      `{"socket":"${socket}" "a":1}`,
      `{"socket":"${socket}",'a':1}`,
      `{"socket":"${socket}","a":[1,]}`,
      `{"socket":"${socket}","a":[,1]}`,
      `{"socket":"${socket}","a":NaN}`,
      `{socket:"${socket}"}`,
      `"just a string"`,
      `[{"socket":"${socket}"}]`,
      `null`,
      `{"socket":"${socket}"} // comment`,
      `\ufeff{"socket":"${socket}"}`,
    ];
    for (const doc of docs) {
      let jsAccepts: boolean;
      try {
        const v: unknown = JSON.parse(doc);
        jsAccepts = v !== null && typeof v === "object" && !Array.isArray(v);
      } catch {
        jsAccepts = false;
      }
      const e = cniError(await runCni({ CNI_COMMAND: "ADD" }, doc));
      assert.equal(e.code, jsAccepts ? 11 : 6, `${JSON.stringify(doc)}: JSON.parse ${jsAccepts ? "accepts" : "refuses"} it, the forwarder said ${e.code} ${e.msg}`);
      if (jsAccepts) assert.match(e.msg, /absent\.sock/);
    }
  });

  it("the forwarder reads only top-level \"socket\" and decodes JSON escapes in it", async (t) => {
    const d = await daemon(t);
    const pod = podFor(d);
    const escaped = d.socketPath.replace(/\//g, "\\/").replace("work", "\\u0077ork");
    const stdin = `{"cniVersion":"1.0.0","nested":{"socket":"/nowhere"},"list":[{"socket":1}],"name":"${NETWORK}","socket":"/first/wins/not","socket":"${escaped}"}`;
    const r = cniOk(await cni(d, "ADD", pod.env, stdin));
    assert.equal((r?.ips as unknown[]).length, 2);
    cniOk(await cni(d, "DEL", pod.env, stdin));
  });
});
