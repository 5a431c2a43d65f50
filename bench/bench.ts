// End-to-end bench: what it costs to give a pod its network, four ways, in one
// run, inside the sandbox (npm run bench). Prints a table; asserts nothing.
//
//   (a) containernetworking-plugins ptp + host-local (Debian's
//       containernetworking-plugins, /usr/lib/cni), exec'd per pod the way a
//       runtime does it: CNI_* environment + network config on stdin.
//       Dual-stack. (a4) is the same, IPv4 only: an extra row showing what
//       the IPv6 part costs ptp (it waits for the pod address's DAD).
//   (b) our daemon (bin/workloadnetd, started in a fresh host namespace via
//       `ip netns exec`), Attach/Detach over gRPC on its unix
//       socket, one HTTP/2 connection (bench/lean-grpc-client.ts), both
//       families, warm; (b-in) the same calls as the daemon's log timed them;
//       (b2) the same calls through @grpc/grpc-js's client; (b0) the same
//       phases right after the daemon started, before V8 has optimised the
//       code on the hot paths (the daemon's and the client's).
//   (c) our CNI plugin workloadnet-cni (searched for under build/), exec'd like
//       (a), talking to the daemon of (b). Skipped while it is not built.
//   (d) the kernel floor: the same kernel objects an Attach makes, made by
//       iproute2 with one `ip -batch` for every pod's host-side steps and one
//       `ip -n POD -batch` per pod; ip's own start-up is subtracted (each real
//       run is paired with an `ip -n NS -batch /dev/null` run just before it;
//       the concurrent schedule is run with empty batches too, in each round).
//
// (ref): first, our daemon just started beside the reference's Go daemon,
// both driven by the reference's Go client, in alternation; its own table
// (bench/cold-start.ts, which also says how the reference is found or built).
//
// Run order: (ref), (a), (a4), the daemon started and (b0) measured, --warmup untimed
// rounds (default 20 × N attaches and detaches), (d), (b), (b2), then (d) and
// (b) again in alternation (--pairs, default 5 in all; their ratios are
// printed as a spread), (c) on the same daemon, then the RSS phase with its own 1 000 namespaces (made just
// before it, removed right after: many namespaces slow `ip -n` and veth
// deletion for everyone). The table is printed in the order a, a4, b, c, d.
//
// Per workload: N sequential attaches (latency of each) then N sequential
// detaches, then N attaches and N detaches with C concurrent callers (wall
// time → pods/s; three rounds, the median). CPU per operation over the
// sequential phases (see notes printed with the table). The daemon's RSS
// with 1 000 attachments.
// Pod namespaces are made before any timing and reused by every workload;
// everything is removed at the end and what is left is counted.
//
//   node dist/bench/bench.js [--n 100] [--concurrency 16] [--rss-count 1000]
//        [--profile] [--only ref,a,a4,b,rss,c,d] [--cni PATH] [--detach-mode sync|deferred]
//        [--warmup ROUNDS] [--pairs K] [--daemon-node PATH] [--json FILE]
//
// The daemon is started by its launcher (bin/workloadnetd), as users start
// it, with the Node.js, V8 flags and environment that gives; --daemon-node
// starts it on another Node.js binary instead, with the same flags and
// environment (src/cli/node-flags.ts); --json also writes the figures to FILE, for
// bench/node-versions.ts, which compares Node.js versions.
//
// --profile runs the daemon under `node --cpu-prof` and prints its top
// self-time functions during (b)'s sequential attaches and detaches (the
// profiler slows the daemon, so the run's figures for (b)/(c) are inflated).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, closeSync, constants, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DAEMON_ENV, DAEMON_NODE_FLAGS } from "../src/cli/node-flags.js";
import { connectClient, grpcJsClient, type ConnectTestClient, type GrpcJsTestClient } from "../test/grpc-clients.js";
import { leanClient, type LeanClient } from "./lean-grpc-client.js";
import { assertSandbox, createNamespace, createNamespaces, ip, removeNamespaces, type PodNamespace } from "../test/sandbox.js";
import {
  childrenCpuMs,
  countLinks,
  fmtMs,
  fmtRate,
  fmtRatio,
  mean,
  namedNamespaces,
  nowMs,
  pool,
  printTable,
  processCpuMs,
  quantile,
  runChild,
  tickMs,
} from "./bench-util.js";
import { describeMemoryMap, memoryMap, type MemoryMap } from "./memory-map.js";
import { summarizeProfile } from "./cpuprofile.js";
import { ourDaemon, ourDaemonIpv4, runColdStart } from "./cold-start.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const DAEMON_JS = fileURLToPath(new URL("../src/cli/workloadnetd.cjs", import.meta.url));
/** How users start the daemon: the unit file, the image and npm's bin link all run it. */
const LAUNCHER = path.join(REPO, "bin", "workloadnetd");
const CNI_DIR = "/usr/lib/cni";
const DAEMON_V4 = "10.90.0.0/16";
const DAEMON_V6 = "fd00:90::/64";
const HOST_VETH_MAC = "02:9c:52:fe:6d:0a";
const FIRST_HOP_V4 = "169.254.77.1";
const FIRST_HOP_V6 = "fe80::1";
const ALL_PARTS = ["ref", "a", "a4", "b", "rss", "c", "d"] as const;
/** The concurrent phases run this many times; the median rate is reported. */
const CONCURRENT_ROUNDS = 3;
/**
 * The floor's concurrent rate is the difference of two wall times (~250 ms
 * each, with and without the work) that differ by only 40-80 ms: with 3
 * rounds it swung from 1 250 to 2 850 attaches/s within one run.
 */
const FLOOR_CONCURRENT_ROUNDS = 9;

// ---------------------------------------------------------------------------
// Options

interface Options {
  n: number;
  concurrency: number;
  rssCount: number;
  profile: boolean;
  only: Set<string>;
  cni: string | undefined;
  /** The daemon's --detach-mode. */
  detachMode: "sync" | "deferred";
  /** Untimed rounds (an attach and a detach per pod, C callers) before (b) is timed. */
  warmup: number;
  /** (d) then (b), this many times in alternation (the first pair is the table's). */
  pairs: number;
  /**
   * The Node.js binary the daemon runs on, with the bin's flags and
   * environment; undefined: started by the bin (bin/workloadnetd), as users do.
   */
  daemonNode: string | undefined;
  /** Where to write the figures as JSON, if anywhere. */
  json: string | undefined;
}

const daemonLabel = (o: Options): string => `(b) workloadnetd, gRPC${o.detachMode === "deferred" ? ", deferred detach" : ""}`;

function parseOptions(argv: string[]): Options {
  const o: Options = { n: 100, concurrency: 16, rssCount: 1000, profile: false, only: new Set(ALL_PARTS), cni: undefined, detachMode: "sync", warmup: 20, pairs: 5, daemonNode: undefined, json: undefined };
  const int = (flag: string, raw: string | undefined, min: number, max: number): number => {
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${flag} must be an integer from ${min} to ${max}, not ${raw}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split("=", 2) as [string, string | undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case "--n":
        o.n = int(flag, value(), 1, 5000);
        break;
      case "--concurrency":
        o.concurrency = int(flag, value(), 1, 256);
        break;
      case "--rss-count":
        o.rssCount = int(flag, value(), 1, 20000);
        break;
      case "--profile":
        o.profile = true;
        break;
      case "--warmup":
        o.warmup = int(flag, value(), 0, 1000);
        break;
      case "--pairs":
        o.pairs = int(flag, value(), 1, 50);
        break;
      case "--only": {
        const parts = (value() ?? "").split(",").filter(Boolean);
        for (const p of parts) if (!(ALL_PARTS as readonly string[]).includes(p)) throw new Error(`--only: unknown part "${p}" (parts: ${ALL_PARTS.join(",")})`);
        o.only = new Set(parts);
        break;
      }
      case "--cni":
        o.cni = value();
        break;
      case "--daemon-node":
        o.daemonNode = value();
        if (!o.daemonNode) throw new Error("--daemon-node needs the path of a node binary");
        break;
      case "--json":
        o.json = value();
        break;
      case "--detach-mode": {
        const mode = value();
        if (mode !== "sync" && mode !== "deferred") throw new Error(`--detach-mode must be sync or deferred, not ${mode}`);
        o.detachMode = mode;
        break;
      }
      default:
        throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (o.only.has("rss") || o.only.has("c")) o.only.add("b"); // they need (b)'s daemon
  return o;
}

// ---------------------------------------------------------------------------
// Results

interface Result {
  label: string;
  attach: number[]; // ms per sequential attach
  detach: number[]; // ms per sequential detach
  /** Set when only a mean exists (the kernel floor's detach). */
  detachMeanOnly?: number;
  attachRate: number; // pods/s with C callers
  detachRate: number;
  cpuAttach: number; // ms per attach, the work itself (plugin processes / daemon / ip)
  cpuDetach: number;
  callerCpuAttach: number; // ms per attach in the calling process (spawn, gRPC client)
  /** hrtime ms windows of the sequential phases (for the daemon's profile). */
  windows: { seqAttach?: [number, number]; seqDetach?: [number, number]; concAttach?: [number, number] };
  /** Detaches/s one caller at a time (the sequential phase's wall time). */
  seqDetachRate?: number;
  notes: string[];
  error?: string;
}

const byLabelPrefix = (results: Result[], prefix: string): Result | undefined => results.find((x) => x.label.startsWith(prefix) && !x.error);

const emptyResult = (label: string, error: string): Result => ({
  label,
  attach: [],
  detach: [],
  attachRate: NaN,
  detachRate: NaN,
  cpuAttach: NaN,
  cpuDetach: NaN,
  callerCpuAttach: NaN,
  windows: {},
  notes: [],
  error,
});

const callerCpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** 64 characters like a container id; the first 8 differ between pods (the daemon's host names use them). */
const workloadId = (tag: string, phase: string, i: number): string =>
  `${tag}${phase}${String(i).padStart(8 - tag.length - phase.length, "0")}${randomBytes(28).toString("hex")}`;

// ---------------------------------------------------------------------------
// Generic driver: sequential then concurrent attach/detach

interface Driver {
  attach(id: string, pod: PodNamespace, ifName: string): Promise<void>;
  detach(id: string, pod: PodNamespace, ifName: string): Promise<void>;
  /** Cumulative CPU ms of whatever does the work; parts are reported separately. */
  cpu(): Record<string, number>;
}

async function runWorkload(label: string, tag: string, driver: Driver, pods: PodNamespace[], opts: Options): Promise<Result> {
  const n = pods.length;
  const seqIds = pods.map((_, i) => workloadId(tag, "s", i));
  const concIds = pods.map((_, i) => workloadId(tag, "c", i));
  const attached = new Set<number>(); // indexes into seqIds (>= 0) or concIds (~i)
  const r: Result = { ...emptyResult(label, ""), notes: [] };
  delete r.error;
  try {
    // sequential attach
    let cpu0 = driver.cpu();
    let caller0 = callerCpuMs();
    let w0 = nowMs();
    for (let i = 0; i < n; i++) {
      const t0 = nowMs();
      await driver.attach(seqIds[i]!, pods[i]!, "eth0");
      r.attach.push(nowMs() - t0);
      attached.add(i);
    }
    r.windows.seqAttach = [w0, nowMs()];
    let cpu1 = driver.cpu();
    r.callerCpuAttach = (callerCpuMs() - caller0) / n;
    r.cpuAttach = (sum(cpu1) - sum(cpu0)) / n;
    const parts = Object.keys(cpu1);
    if (parts.length > 1) r.notes.push(`cpu/attach = ${parts.map((k) => `${k} ${fmtMs((cpu1[k]! - cpu0[k]!) / n)}`).join(" + ")}`);

    // sequential detach
    cpu0 = driver.cpu();
    w0 = nowMs();
    for (let i = 0; i < n; i++) {
      const t0 = nowMs();
      await driver.detach(seqIds[i]!, pods[i]!, "eth0");
      r.detach.push(nowMs() - t0);
      attached.delete(i);
    }
    r.windows.seqDetach = [w0, nowMs()];
    const seqRate = (w: [number, number] | undefined): number => (w ? n / ((w[1] - w[0]) / 1000) : NaN);
    cpu1 = driver.cpu();
    r.cpuDetach = (sum(cpu1) - sum(cpu0)) / n;

    // concurrent, CONCURRENT_ROUNDS times: the median rate (one round is short and noisy)
    const attachRates: number[] = [];
    const detachRates: number[] = [];
    for (let round = 0; round < CONCURRENT_ROUNDS; round++) {
      const w0 = nowMs();
      let wall = await pool(n, opts.concurrency, async (i) => {
        await driver.attach(concIds[i]!, pods[i]!, "eth0");
        attached.add(~i);
      });
      if (round === 0) r.windows.concAttach = [w0, nowMs()];
      attachRates.push(n / (wall / 1000));
      wall = await pool(n, opts.concurrency, async (i) => {
        await driver.detach(concIds[i]!, pods[i]!, "eth0");
        attached.delete(~i);
      });
      detachRates.push(n / (wall / 1000));
    }
    r.attachRate = quantile(attachRates, 0.5);
    r.detachRate = quantile(detachRates, 0.5);
    const sa = seqRate(r.windows.seqAttach);
    const sd = seqRate(r.windows.seqDetach);
    r.seqDetachRate = sd;
    r.notes.push(
      `one caller at a time: ${fmtRate(sa)} attaches, ${fmtRate(sd)} detaches; ${opts.concurrency} callers: ` +
        `${fmtRatio(r.attachRate / sa)} and ${fmtRatio(r.detachRate / sd)} that`,
    );
  } catch (err) {
    r.error = (err as Error).message.split("\n").slice(0, 4).join(" | ");
    for (const k of attached) {
      const i = k >= 0 ? k : ~k;
      await driver.detach(k >= 0 ? seqIds[i]! : concIds[i]!, pods[i]!, "eth0").catch(() => undefined);
    }
  }
  return r;
}

const sum = (parts: Record<string, number>): number => Object.values(parts).reduce((a, b) => a + b, 0);

// ---------------------------------------------------------------------------
// (a), (c): a CNI plugin exec'd per operation

function cniDriver(plugin: string, cniPath: string, config: object, extraCpu?: () => Record<string, number>): Driver {
  const stdin = JSON.stringify(config);
  const run = async (command: "ADD" | "DEL", id: string, pod: PodNamespace, ifName: string): Promise<void> => {
    const res = await runChild(plugin, [], {
      env: {
        PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
        CNI_COMMAND: command,
        CNI_CONTAINERID: id,
        CNI_NETNS: pod.path,
        CNI_IFNAME: ifName,
        CNI_PATH: cniPath,
      },
      input: stdin,
    });
    if (res.code !== 0) {
      throw new Error(`${path.basename(plugin)} ${command} ${id.slice(0, 12)} in ${pod.name}: exit ${res.code ?? res.signal}: ${(res.stdout + res.stderr).trim().slice(0, 500)}`);
    }
  };
  return {
    attach: (id, pod, ifName) => run("ADD", id, pod, ifName),
    detach: (id, pod, ifName) => run("DEL", id, pod, ifName),
    cpu: () => ({ plugin: childrenCpuMs(), ...(extraCpu ? extraCpu() : {}) }),
  };
}

async function runPtp(label: string, tag: string, dualStack: boolean, pods: PodNamespace[], opts: Options, tmp: string): Promise<Result> {
  const plugin = path.join(CNI_DIR, "ptp");
  if (!existsSync(plugin) || !existsSync(path.join(CNI_DIR, "host-local"))) {
    return emptyResult(label, `not installed: apt-get install -y containernetworking-plugins (looked in ${CNI_DIR})`);
  }
  const dataDir = mkdtempSync(path.join(tmp, `host-local-${tag}-`));
  const ranges = dualStack ? [[{ subnet: "10.91.0.0/16" }], [{ subnet: "fd00:91::/64" }]] : [[{ subnet: "10.93.0.0/16" }]];
  const routes = dualStack ? [{ dst: "0.0.0.0/0" }, { dst: "::/0" }] : [{ dst: "0.0.0.0/0" }];
  const config = {
    cniVersion: "1.0.0",
    name: `bench-ptp-${tag}`,
    type: "ptp",
    mtu: 1500,
    ipam: { type: "host-local", ranges, routes, dataDir },
  };
  const r = await runWorkload(label, tag, cniDriver(plugin, CNI_DIR, config), pods, opts);
  r.notes.push(`cpu = the plugin processes' own CPU (ptp + the host-local it execs), from this process's cutime+cstime`);
  return r;
}

// ---------------------------------------------------------------------------
// (b): the daemon over gRPC

interface Daemon {
  pid: number;
  hostNs: string;
  socket: string;
  client: ConnectTestClient;
  /** The official Node gRPC client, for the (b2) row. */
  rpc: GrpcJsTestClient;
  /** A minimal unary client (bench/lean-grpc-client.ts), for the (b) row. */
  lean: LeanClient;
  child: ChildProcess;
  /** Every call the daemon has logged so far, in order: its own time per call (durationMs). */
  calls(): { op: string; ms: number }[];
  exited: Promise<void>;
  output(): string;
  profileDir: string | undefined;
}

/** The Node.js binary the launcher runs (its rule: the project's, else the PATH's). */
function launcherNode(): string {
  const local = path.join(REPO, "node_modules", ".bin", "node");
  return existsSync(local) ? local : "node";
}

/**
 * By the launcher, so that the daemon runs with the Node.js, V8 flags and
 * environment users get (its RSS depends on them); with --daemon-node, that
 * binary with the same flags and environment (src/cli/node-flags.ts, kept in
 * step with the launcher by a test).
 */
function daemonCommand(node: string | undefined, profileDir: string | undefined): { argv: string[]; env: NodeJS.ProcessEnv } {
  const profileArgs = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  if (node === undefined) {
    const env = { ...process.env };
    if (profileDir) env.NODE_OPTIONS = [env.NODE_OPTIONS, ...profileArgs].filter(Boolean).join(" ");
    return { argv: [LAUNCHER], env };
  }
  return { argv: [node, ...DAEMON_NODE_FLAGS, ...profileArgs, DAEMON_JS], env: { ...DAEMON_ENV, ...process.env } };
}

async function startDaemon(hostNs: string, tmp: string, profile: boolean, detachMode: "sync" | "deferred", node: string | undefined): Promise<Daemon> {
  const socket = `/run/workloadnet/${hostNs}.sock`;
  const profileDir = profile ? path.join(tmp, "cpu-prof") : undefined;
  const command = daemonCommand(node, profileDir);
  // The daemon logs one JSON line per call (pino) to a file, read after each
  // phase: a pipe to this process would wake the caller for every log line,
  // just before the answer it is timing.
  const logPath = path.join(tmp, `${hostNs}-daemon.log`);
  const logFd = openSync(logPath, "a");
  let child: ChildProcess;
  try {
    child = spawn("ip", ["netns", "exec", hostNs, ...command.argv, "--socket", socket, "--ipv4-prefix", DAEMON_V4, "--ipv6-prefix", DAEMON_V6, "--detach-mode", detachMode], {
      stdio: ["ignore", logFd, "pipe"],
      env: command.env,
    });
  } finally {
    closeSync(logFd);
  }
  let stderr = "";
  const keep = (d: Buffer): void => {
    stderr = (stderr + d.toString()).slice(-8000);
  };
  const logTail = (): string => {
    try {
      return readFileSync(logPath, "utf8").slice(-4000);
    } catch {
      return "";
    }
  };
  const out = (): string => `${logTail()}${stderr}`;
  /** Every call the daemon has logged so far, in order: its own time per call (durationMs). */
  const calls = (): { op: string; ms: number }[] => {
    const found: { op: string; ms: number }[] = [];
    for (const line of readFileSync(logPath, "utf8").split("\n")) {
      if (!line.includes('"durationMs"')) continue;
      try {
        const rec = JSON.parse(line) as { op?: unknown; durationMs?: unknown };
        if (typeof rec.op === "string" && typeof rec.durationMs === "number") found.push({ op: rec.op, ms: rec.durationMs });
      } catch {
        // not a call record
      }
    }
    return found;
  };
  child.stderr!.on("data", keep);
  let hasExited = false;
  const exited = new Promise<void>((resolve) =>
    child.on("exit", () => {
      hasExited = true;
      resolve();
    }),
  );
  const deadline = nowMs() + 20_000;
  let client: ConnectTestClient | undefined;
  for (;;) {
    if (hasExited) throw new Error(`daemon exited during start-up: ${out().trim().slice(-1000)}`);
    if (nowMs() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`daemon not ready after 20 s: ${out().trim().slice(-1000)}`);
    }
    if (existsSync(socket)) {
      client ??= connectClient(socket);
      try {
        await client.client.status({});
        break;
      } catch {
        client.close();
        client = undefined;
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // `ip netns exec` execs the command, and the launcher execs node, so the
  // child is node itself; if an ip version forks instead, the daemon is its
  // only child.
  let pid = child.pid!;
  if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(path.basename(DAEMON_JS))) {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    if (kids.length === 1) pid = Number(kids[0]);
  }
  const rpc = grpcJsClient(socket);
  const lean = leanClient(socket);
  // Connect now, not in the first timed call.
  await rpc.status();
  await lean.status();
  return { pid, hostNs, socket, client, rpc, lean, child, calls, exited, output: out, profileDir };
}

async function stopDaemon(d: Daemon): Promise<void> {
  d.client.close();
  d.rpc.close();
  d.lean.close();
  d.child.kill("SIGTERM");
  const timer = setTimeout(() => d.child.kill("SIGKILL"), 20_000);
  await d.exited;
  clearTimeout(timer);
}

function daemonDriver(d: Daemon, client: "lean" | "grpc-js"): Driver {
  const rpc = client === "lean" ? d.lean : d.rpc;
  return {
    attach: async (id, pod, ifName) => {
      const res = await rpc.attach({ workloadId: id, netns: { netnsPath: pod.path, ifName } });
      if (res.ip.length !== 2) throw new Error(`attach ${id.slice(0, 12)}: expected 2 addresses, got ${res.ip.length}`);
    },
    detach: async (id, pod, ifName) => {
      await rpc.detach({ workloadId: id, netns: { netnsPath: pod.path, ifName } });
    },
    cpu: () => ({ daemon: processCpuMs(d.pid) }),
  };
}

/**
 * How long the RSS phase leaves the daemon idle with its attachments before
 * the "idle" figure: past its two releases of freed memory (1-2 s and ~10 s
 * after the last call, src/daemon/release-memory.ts) and V8's memory reducer
 * (8 s after its last full collection).
 */
const RSS_IDLE_S = 12;

interface RssFigures {
  startKiB: number;
  beforeKiB: number;
  /** 200 ms after the last attach. */
  withKiB: number;
  /** RSS_IDLE_S later, still with them. */
  idleKiB: number;
  afterKiB: number;
  /** The daemon's CPU (all threads) from its start to the RSS phase: everything before it, for comparing runs. */
  cpuMsBefore: number;
  /** Where the RSS is (bench/memory-map.ts), at the same moments. */
  maps: { start?: MemoryMap; before?: MemoryMap; with?: MemoryMap; idle?: MemoryMap };
  count: number;
  attachWallMs: number;
  detachWallMs: number;
  error?: string;
}

async function measureRss(d: Daemon, pods: PodNamespace[], opts: Options, start: MemoryMap): Promise<RssFigures> {
  const count = pods.length;
  const ids = Array.from({ length: count }, (_, i) => workloadId("r", "", i));
  // One namespace per attachment: a second attachment in the same namespace is refused
  // (its first-hop route already exists there), as it would be for a real pod.
  const where = (i: number): [PodNamespace, string] => [pods[i]!, "eth0"];
  const drv = daemonDriver(d, "lean");
  const attached = new Set<number>();
  const before = memoryMap(d.pid);
  const f: RssFigures = { startKiB: start.rssKiB, beforeKiB: before.rssKiB, withKiB: NaN, idleKiB: NaN, afterKiB: NaN, cpuMsBefore: processCpuMs(d.pid), maps: { start, before }, count, attachWallMs: NaN, detachWallMs: NaN };
  try {
    f.attachWallMs = await pool(count, opts.concurrency, async (i) => {
      const [pod, ifName] = where(i);
      await drv.attach(ids[i]!, pod, ifName);
      attached.add(i);
    });
    const attachedAt = nowMs();
    await new Promise((r) => setTimeout(r, 200));
    f.maps.with = memoryMap(d.pid);
    f.withKiB = f.maps.with.rssKiB;
    await new Promise((r) => setTimeout(r, RSS_IDLE_S * 1000 - (nowMs() - attachedAt)));
    f.maps.idle = memoryMap(d.pid);
    f.idleKiB = f.maps.idle.rssKiB;
  } catch (err) {
    f.error = (err as Error).message;
  }
  const t0 = nowMs();
  await pool(count, opts.concurrency, async (i) => {
    if (!attached.has(i)) return;
    const [pod, ifName] = where(i);
    await drv.detach(ids[i]!, pod, ifName).catch((err: unknown) => {
      f.error ??= `detach: ${(err as Error).message}`;
    });
  });
  f.detachWallMs = nowMs() - t0;
  await new Promise((r) => setTimeout(r, 200));
  f.afterKiB = memoryMap(d.pid).rssKiB;
  return f;
}

// ---------------------------------------------------------------------------
// (c): our CNI plugin, if built

function findCniPlugin(explicit: string | undefined): string | undefined {
  const candidates: string[] = [];
  if (explicit) candidates.push(path.resolve(explicit));
  if (process.env.WORKLOADNET_CNI) candidates.push(process.env.WORKLOADNET_CNI);
  const walk = (dir: string, depth: number): void => {
    if (depth > 5) return;
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e);
      let st;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p, depth + 1);
      else if (e === "workloadnet-cni" && st.isFile()) candidates.push(p);
    }
  };
  walk(path.join(REPO, "build"), 0);
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      if (statSync(c).isFile()) return c;
    } catch {
      // not executable
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// (d): the kernel floor with iproute2

interface FloorExtras {
  startupHostMs: number;
  startupPodMs: number;
  startupPodP99Ms: number;
  startupCpuMs: number;
  meanAttachPerPod: number;
  rawAttachPerPod: number;
  rawAttachRate: number;
}

const floorV4 = (i: number): string => `10.92.${(i + 2) >> 8}.${(i + 2) & 0xff}`;
const floorV6 = (i: number): string => `fd00:92::${(i + 2).toString(16)}`;
const podMac = (): string => {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
};

/** Host-side lines for pod i: veth (group, MACs, MTU, one queue each way as the daemon's) with its peer in the pod; alias and no IPv6 link-local; up; routes, neighbours, fe80::1. */
function floorHostLines(name: string, id: string, pod: PodNamespace, i: number, mac: string): string[] {
  const v4 = floorV4(i);
  const v6 = floorV6(i);
  return [
    `link add ${name} group 8 mtu 1500 address ${HOST_VETH_MAC} numtxqueues 1 numrxqueues 1 type veth peer name eth0 netns ${pod.name} mtu 1500 address ${mac} numtxqueues 1 numrxqueues 1`,
    `link set dev ${name} alias wk${id}`,
    `link set dev ${name} addrgenmode none`,
    `link set dev ${name} up`,
    `route add ${v4}/32 dev ${name} proto static`,
    `neigh add ${v4} lladdr ${mac} dev ${name} nud permanent`,
    `route add ${v6}/128 dev ${name} proto static`,
    `neigh add ${v6} lladdr ${mac} dev ${name} nud permanent`,
    `addr add ${FIRST_HOP_V6}/64 dev ${name} scope link nodad`,
  ];
}

/** Pod-side lines: lo and eth0 up, addresses (IPv6 nodad), on-link + default routes with src, first-hop neighbours. */
function floorPodLines(i: number): string[] {
  const v4 = floorV4(i);
  const v6 = floorV6(i);
  return [
    "link set lo up",
    "link set eth0 up",
    `addr add ${v4}/32 dev eth0`,
    `route add ${FIRST_HOP_V4}/32 dev eth0 scope link proto static`,
    `route add default via ${FIRST_HOP_V4} dev eth0 src ${v4} proto static`,
    `neigh add ${FIRST_HOP_V4} lladdr ${HOST_VETH_MAC} dev eth0 nud permanent`,
    `addr add ${v6}/128 dev eth0 nodad`,
    `route add ${FIRST_HOP_V6}/128 dev eth0 scope link proto static`,
    `route add ::/0 via ${FIRST_HOP_V6} dev eth0 src ${v6} proto static`,
    `neigh add ${FIRST_HOP_V6} lladdr ${HOST_VETH_MAC} dev eth0 nud permanent`,
  ];
}

async function ipBatch(ns: string, file: string): Promise<number> {
  const res = await runChild("ip", ["-n", ns, "-batch", file]);
  if (res.code !== 0) throw new Error(`ip -n ${ns} -batch ${path.basename(file)}: exit ${res.code ?? res.signal}: ${res.stderr.trim().slice(0, 500)}`);
  return res.ms;
}

async function runFloor(label: string, floorNs: string, pods: PodNamespace[], opts: Options, tmp: string): Promise<[Result, FloorExtras | undefined]> {
  const n = pods.length;
  const C = Math.min(opts.concurrency, n);
  const dir = mkdtempSync(path.join(tmp, "floor-"));
  const write = (name: string, lines: string[]): string => {
    const f = path.join(dir, name);
    writeFileSync(f, `${lines.join("\n")}\n`);
    return f;
  };
  const r: Result = { ...emptyResult(label, ""), notes: [] };
  delete r.error;
  const made = new Set<string>(); // host link names that may exist
  try {
    // ip's own start-up, in both kinds of namespace (-n switches namespace and remounts /sys)
    const K = 50;
    const hostStart: number[] = [];
    const podStart: number[] = [];
    const cpuS0 = childrenCpuMs();
    for (let k = 0; k < K; k++) {
      hostStart.push(await ipBatch(floorNs, "/dev/null"));
      podStart.push(await ipBatch(pods[k % n]!.name, "/dev/null"));
    }
    const startupCpu = (childrenCpuMs() - cpuS0) / (2 * K);
    const sHostMed = quantile(hostStart, 0.5);

    const plan = (phase: string): { hostFile: (idx: number[]) => string; podFiles: string[]; names: string[] } => {
      const names = pods.map((_, i) => `fl${phase}${i}`);
      const ids = pods.map((_, i) => workloadId("d", phase, i));
      const macs = pods.map(() => podMac());
      const podFiles = pods.map((_, i) => write(`pod-${phase}-${i}.batch`, floorPodLines(i)));
      const hostFile = (idx: number[]): string =>
        write(`host-${phase}-${idx[0]}.batch`, idx.flatMap((i) => floorHostLines(names[i]!, ids[i]!, pods[i]!, i, macs[i]!)));
      return { hostFile, podFiles, names };
    };
    const all = pods.map((_, i) => i);

    // sequential: one host batch for all pods, then one batch per pod. Each real
    // run is paired with an empty run (ip -n NS -batch /dev/null) just before it,
    // in the same namespace; the pair's difference is the work without ip's start-up.
    const s = plan("s");
    const hostFile = s.hostFile(all);
    let cpu0 = childrenCpuMs();
    let caller0 = callerCpuMs();
    s.names.forEach((x) => made.add(x));
    const hostEmpty = await ipBatch(floorNs, "/dev/null");
    const hostMs = await ipBatch(floorNs, hostFile);
    const podMs: number[] = [];
    const podEmpty: number[] = [];
    for (let i = 0; i < n; i++) {
      podEmpty.push(await ipBatch(pods[i]!.name, "/dev/null"));
      podMs.push(await ipBatch(pods[i]!.name, s.podFiles[i]!));
    }
    // 2(n+1) ip runs, each with its start-up CPU; the rest is the real batches' work.
    r.cpuAttach = (childrenCpuMs() - cpu0 - 2 * (n + 1) * startupCpu) / n;
    r.callerCpuAttach = (callerCpuMs() - caller0) / 2 / n; // half: the real runs' share
    const hostShare = (hostMs - hostEmpty) / n;
    r.attach = podMs.map((ms, i) => ms - podEmpty[i]! + hostShare);
    const rawAttachPerPod = (hostMs + podMs.reduce((a, b) => a + b, 0)) / n;
    const meanAttachPerPod = (hostMs + podMs.reduce((a, b) => a + b, 0) - (n + 1) * mean([...hostStart, ...podStart])) / n;

    // sequential detach: one batch deleting every host veth (paired with an empty run too)
    const delFile = write("del-s.batch", s.names.map((x) => `link del ${x}`));
    const delEmpty = await ipBatch(floorNs, "/dev/null");
    cpu0 = childrenCpuMs();
    const delMs = await ipBatch(floorNs, delFile);
    s.names.forEach((x) => made.delete(x));
    r.cpuDetach = (childrenCpuMs() - cpu0 - startupCpu) / n;
    r.detachMeanOnly = (delMs - delEmpty) / n;

    // concurrent: C groups, each one host batch for its pods then their pod batches;
    // groups in parallel. The same schedule with empty batches (/dev/null) gives
    // the start-ups' share of the wall time, subtracted.
    const c = plan("c");
    const groups = Array.from({ length: C }, (_, g) => all.filter((i) => i % C === g));
    const groupFiles = groups.map((idx) => c.hostFile(idx));
    const schedule = async (real: boolean): Promise<number> => {
      const t0 = nowMs();
      await Promise.all(
        groups.map(async (idx, g) => {
          await ipBatch(floorNs, real ? groupFiles[g]! : "/dev/null");
          for (const i of idx) await ipBatch(pods[i]!.name, real ? c.podFiles[i]! : "/dev/null");
        }),
      );
      return nowMs() - t0;
    };
    // Each round pairs an empty and a real run; the medians of FLOOR_CONCURRENT_ROUNDS
    // rounds are used (a difference of two short wall times is noisy).
    const delFiles = groups.map((idx, g) => write(`del-c-${g}.batch`, idx.map((i) => `link del ${c.names[i]}`)));
    const walls = { emptyAttach: [] as number[], attach: [] as number[], emptyDetach: [] as number[], detach: [] as number[] };
    for (let round = 0; round < FLOOR_CONCURRENT_ROUNDS; round++) {
      walls.emptyAttach.push(await schedule(false));
      c.names.forEach((x) => made.add(x));
      walls.attach.push(await schedule(true));
      let t0 = nowMs();
      await Promise.all(delFiles.map(() => ipBatch(floorNs, "/dev/null")));
      walls.emptyDetach.push(nowMs() - t0);
      t0 = nowMs();
      await Promise.all(delFiles.map((f) => ipBatch(floorNs, f)));
      walls.detach.push(nowMs() - t0);
      c.names.forEach((x) => made.delete(x));
    }
    const med = (xs: number[]): number => quantile(xs, 0.5);
    const rawAttachRate = n / (med(walls.attach) / 1000);
    r.attachRate = n / ((med(walls.attach) - med(walls.emptyAttach)) / 1000);
    r.detachRate = n / ((med(walls.detach) - med(walls.emptyDetach)) / 1000);
    return [
      r,
      {
        startupHostMs: sHostMed,
        startupPodMs: quantile(podStart, 0.5),
        startupPodP99Ms: quantile(podStart, 0.99),
        startupCpuMs: startupCpu,
        rawAttachPerPod,
        rawAttachRate,
        meanAttachPerPod,
      },
    ];
  } catch (err) {
    r.error = (err as Error).message;
    for (const name of made) {
      try {
        ip(["link", "del", name], floorNs);
      } catch {
        // not there
      }
    }
    return [r, undefined];
  }
}

// ---------------------------------------------------------------------------
// Many namespaces at once (the RSS phase needs one per attachment)

/**
 * Round trips of an empty call, sequential, after 100 untimed ones; then the
 * same with both processes idle for 2 ms before each call, as the caller is
 * while the daemon works on an Attach (an idle virtual CPU can take a while
 * to wake).
 */
async function timeStatusCalls(client: LeanClient, n: number): Promise<{ p50: number; callerCpu: number; afterIdleP50: number }> {
  for (let i = 0; i < 100; i++) await client.status();
  const times: number[] = [];
  const cpu0 = callerCpuMs();
  for (let i = 0; i < n; i++) {
    const t0 = nowMs();
    await client.status();
    times.push(nowMs() - t0);
  }
  const callerCpu = (callerCpuMs() - cpu0) / n;
  const afterIdle: number[] = [];
  for (let i = 0; i < n; i++) {
    await new Promise((r) => setTimeout(r, 2));
    const t0 = nowMs();
    await client.status();
    afterIdle.push(nowMs() - t0);
  }
  return { p50: quantile(times, 0.5), callerCpu, afterIdleP50: quantile(afterIdle, 0.5) };
}

/**
 * (b)'s sequential calls as the daemon timed them (its log's durationMs, from
 * the request in its handler to the answer): (b) without the transport and
 * the client.
 */
function insideDaemon(calls: { op: string; ms: number }[], n: number, opts: Options): Result {
  const r = emptyResult(`${daemonLabel(opts).replace("(b)", "(b-in)")}, inside the daemon`, "");
  delete r.error;
  r.attach = calls.filter((c) => c.op === "attach").slice(0, n).map((c) => c.ms);
  r.detach = calls.filter((c) => c.op === "detach").slice(0, n).map((c) => c.ms);
  if (r.attach.length < n || r.detach.length < n) r.error = `the daemon logged ${r.attach.length} attaches and ${r.detach.length} detaches, not ${n} each`;
  return r;
}

// ---------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  assertSandbox();
  const opts = parseOptions(process.argv.slice(2));
  const n = opts.n;
  const C = opts.concurrency;
  const runStarted = nowMs();
  const loadAtStart = loadavg()[0]!;
  const tmp = mkdtempSync(path.join(tmpdir(), "workloadnet-bench-"));
  const namespaces: PodNamespace[] = [];
  const results: Result[] = [];
  const pairs: { d: Result; b: Result }[] = [];
  let rss: RssFigures | undefined;
  let daemon: Daemon | undefined;
  const profileWindows: { label: string; w: [number, number] }[] = [];
  let cniPlugin: string | undefined;
  let cniSkipped: string | undefined;
  let floorExtras: FloorExtras | undefined;
  let leftLinks = 0;
  let startMap: MemoryMap | undefined;
  let hostLinksBeforeRssRemoval = 0;
  let leftNs = 0;
  const progress = (msg: string): void => {
    process.stderr.write(`[bench ${((nowMs() - runStarted) / 1000).toFixed(1)}s] ${msg}\n`);
  };

  try {
    // Pod namespaces, before any timing.
    const pods: PodNamespace[] = [];
    for (let i = 0; i < n; i++) {
      const ns = createNamespace("wbp");
      namespaces.push(ns);
      pods.push(ns);
    }
    progress(`${n} pod namespaces ready`);

    // A just-started daemon beside the reference's, both driven by the
    // reference's client (bench/cold-start.ts): printed at once, above the table.
    if (opts.only.has("ref")) {
      progress("(ref) just-started daemons, ours and the reference's, in alternation");
      const ok = await runColdStart({ rounds: 3, n: 60, idleSeconds: 0, variants: [ourDaemon(), ourDaemonIpv4()], reference: true });
      if (!ok) process.exitCode = 1;
    }

    if (opts.only.has("a")) {
      progress("(a) ptp + host-local, dual-stack");
      results.push(await runPtp("(a) ptp + host-local", "a", true, pods, opts, tmp));
    }
    if (opts.only.has("a4")) {
      progress("(a4) ptp + host-local, IPv4 only");
      results.push(await runPtp("(a4) ptp + host-local, IPv4 only", "v", false, pods, opts, tmp));
    }

    // Order: the daemon starts and is measured just started (b0), then warmed
    // up; the kernel floor runs right before the warm daemon is measured, so
    // that (b)/(d) compares runs seconds apart, not minutes, on a machine whose
    // load drifts; the 1 000-attachment RSS phase last (its namespaces exist
    // only around it: many namespaces slow `ip -n` and veth deletes for
    // everyone); the table in the usual order.
    let drv: Driver | undefined;
    if (opts.only.has("b")) {
      const hostNs = createNamespace("wbhost");
      namespaces.push(hostNs);
      ip(["link", "set", "lo", "up"], hostNs.name);
      progress(`(b) starting the daemon in ${hostNs.name}${opts.profile ? " under --cpu-prof" : ""}`);
      try {
        daemon = await startDaemon(hostNs.name, tmp, opts.profile, opts.detachMode, opts.daemonNode);
      } catch (err) {
        results.push(emptyResult(daemonLabel(opts), (err as Error).message));
      }
      if (daemon) {
        startMap = memoryMap(daemon.pid);
        drv = daemonDriver(daemon, "lean");
        // The first calls run before V8 has compiled the hot paths (the
        // daemon's and this client's): what a runtime sees right after a start.
        progress("(b0) the daemon just started: the same phases as (b)");
        results.push(await runWorkload(`${daemonLabel(opts).replace("(b)", "(b0)")}, just started`, "z", drv, pods, opts));
        // A long-running daemon is warm: untimed rounds over every pod (C callers), see --warmup.
        progress(`(b) warm-up: ${opts.warmup} untimed round(s) of an attach + detach per pod`);
        for (let round = 0; round < opts.warmup; round++) {
          const warmIds = pods.map((_, i) => workloadId(`w${round}`, "", i));
          try {
            await pool(n, C, (i) => drv!.attach(warmIds[i]!, pods[i]!, "eth0"));
          } finally {
            await pool(n, C, (i) => drv!.detach(warmIds[i]!, pods[i]!, "eth0").catch(() => undefined));
          }
        }
      }
    }

    let floorNsName: string | undefined;
    if (opts.only.has("d")) {
      const floorNs = createNamespace("wbfloor");
      floorNsName = floorNs.name;
      namespaces.push(floorNs);
      ip(["link", "set", "lo", "up"], floorNs.name);
      progress("(d) kernel floor with ip -batch");
      const [r, extras] = await runFloor("(d) kernel floor (ip -batch)", floorNs.name, pods, opts, tmp);
      results.push(r);
      floorExtras = extras;
    }

    if (daemon && drv) {
      progress("(b) attach/detach over gRPC");
      const emptyCall = await timeStatusCalls(daemon.lean, 300);
      const logged = daemon.calls().length;
      const r = await runWorkload(daemonLabel(opts), "b", drv, pods, opts);
      r.notes.push(
        `an empty call (Status) through the same client and connection: p50 ${fmtMs(emptyCall.p50)}, ${fmtMs(emptyCall.callerCpu)} of this process's CPU per call; ` +
          `p50 ${fmtMs(emptyCall.afterIdleP50)} when both sides were idle for 2 ms before it`,
      );
      results.push(r);
      if (!r.error) results.push(insideDaemon(daemon.calls().slice(logged), n, opts));
      if (r.windows.seqAttach) profileWindows.push({ label: "(b) sequential attaches", w: r.windows.seqAttach });
      if (r.windows.seqDetach) profileWindows.push({ label: "(b) sequential detaches", w: r.windows.seqDetach });
      if (r.windows.concAttach) profileWindows.push({ label: `(b) attaches with ${C} callers (first round)`, w: r.windows.concAttach });
      progress("(b2) the same calls through @grpc/grpc-js's client");
      results.push(await runWorkload(`${daemonLabel(opts).replace("(b)", "(b2)")}, grpc-js client`, "j", daemonDriver(daemon, "grpc-js"), pods, opts));

      // The machine's speed drifts by up to 2x within minutes: (d) then (b)
      // again, in alternation, so the ratios can be read as a spread.
      const d0 = byLabelPrefix(results, "(d)");
      if (floorNsName !== undefined && d0 && !r.error) {
        pairs.push({ d: d0, b: r });
        for (let k = 1; k < opts.pairs; k++) {
          progress(`(d) then (b) again: pair ${k + 1} of ${opts.pairs}`);
          const [dk] = await runFloor(`(d) pair ${k + 1}`, floorNsName, pods, opts, tmp);
          const bk = await runWorkload(`(b) pair ${k + 1}`, "y", drv, pods, opts);
          if (dk.error || bk.error) break;
          pairs.push({ d: dk, b: bk });
        }
      }
    }

    if (opts.only.has("c")) {
      cniPlugin = findCniPlugin(opts.cni);
      if (cniPlugin === undefined) cniSkipped = "(c) not built yet (no executable workloadnet-cni under build/)";
      else if (daemon === undefined) cniSkipped = "(c) skipped: the daemon of (b) did not start";
      else {
        progress(`(c) ${path.relative(REPO, cniPlugin)}`);
        const d = daemon;
        const config = { cniVersion: "1.0.0", name: "wl", type: "workloadnet-cni", socket: d.socket };
        const r = await runWorkload("(c) workloadnet-cni → daemon", "c", cniDriver(cniPlugin, path.dirname(cniPlugin), config, () => ({ daemon: processCpuMs(d.pid) })), pods, opts);
        r.notes.push(`plugin: ${path.relative(REPO, cniPlugin)}`);
        results.push(r);
      }
    }

    if (daemon && opts.only.has("rss")) {
      const rssPods = createNamespaces(opts.rssCount, "wbr");
      progress(`(b) RSS with ${opts.rssCount} attachments (${rssPods.length} more namespaces)`);
      try {
        rss = await measureRss(daemon, rssPods, opts, startMap!);
      } finally {
        // A veth pair left behind would show in the daemon's namespace now, and vanish
        // with its pod namespace below; so count there before removing them.
        try {
          hostLinksBeforeRssRemoval = countLinks(daemon.hostNs);
        } catch {
          // counted at the end
        }
        removeNamespaces(rssPods.map((p) => p.name));
      }
    }

    if (daemon) {
      progress("stopping the daemon");
      await stopDaemon(daemon);
    }

    // ---- the report ---------------------------------------------------------
    console.log("");
    console.log(`workloadnet bench: N=${n} sequential, C=${C} concurrent callers; pod namespaces made beforehand; dual-stack unless said`);
    console.log(`  machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), kernel ${readFileSync("/proc/sys/kernel/osrelease", "utf8").trim()}, node ${process.version}; ` +
      `load average ${loadAtStart.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end (other work on the machine shows in every figure)`);
    console.log("");
    const byTag = (prefix: string): Result | undefined => results.find((x) => x.label.startsWith(prefix) && !x.error);
    const rowOf = (x: Result): string[] => {
      if (x.error) return [x.label, `failed: ${x.error}`.slice(0, 60), "", "", "", "", "", "", "", ""];
      const dm = x.detachMeanOnly;
      return [
        x.label,
        fmtMs(quantile(x.attach, 0.5)),
        fmtMs(quantile(x.attach, 0.99)),
        dm !== undefined ? `${fmtMs(dm)} (mean)` : fmtMs(quantile(x.detach, 0.5)),
        dm !== undefined ? "—" : fmtMs(quantile(x.detach, 0.99)),
        fmtRate(x.attachRate),
        fmtRate(x.detachRate),
        fmtMs(x.cpuAttach),
        fmtMs(x.cpuDetach),
        fmtMs(x.callerCpuAttach),
      ];
    };
    const order = ["(a) ", "(a4)", "(b)", "(b-in)", "(b2)", "(b0)", "(c)", "(d)"];
    results.sort((x, y) => order.findIndex((p) => x.label.startsWith(p)) - order.findIndex((p) => y.label.startsWith(p)));
    const rows = results.map(rowOf);
    if (cniSkipped) {
      const floorRow = results.findIndex((x) => x.label.startsWith("(d)"));
      rows.splice(floorRow >= 0 ? floorRow : rows.length, 0, [cniSkipped, "", "", "", "", "", "", "", "", ""]);
    }
    rows.push(["reference (Go, measured once, IPv4 only)*", "≈1.5 ms", "≈2.2 ms", "≈20 ms", "—", "—", "≈385/s", "—", "—", "—"]);
    printTable(
      ["workload", "attach p50", "attach p99", "detach p50", "detach p99", `attach/s @${C}`, `detach/s @${C}`, "cpu/attach", "cpu/detach", "caller cpu/att"],
      rows,
    );
    console.log("  * not measured in this run: SPEC §9's figures for the reference implementation, for orientation only");
    console.log("    (detach/s from its \"16 concurrent Detaches ≈2.6 ms per pod\").");
    console.log("");

    // ratios: > 1 means the first is slower / costlier
    const ratio = (label: string, x: Result | undefined, y: Result | undefined): string[] | undefined => {
      if (!x || !y) return undefined;
      const det = (r: Result, q: number): number => r.detachMeanOnly ?? quantile(r.detach, q);
      return [
        label,
        fmtRatio(quantile(x.attach, 0.5) / quantile(y.attach, 0.5)),
        fmtRatio(quantile(x.attach, 0.99) / quantile(y.attach, 0.99)),
        fmtRatio(det(x, 0.5) / det(y, 0.5)),
        fmtRatio(y.attachRate / x.attachRate),
        fmtRatio(y.detachRate / x.detachRate),
        fmtRatio(x.cpuAttach / y.cpuAttach),
      ];
    };
    const ratioRows = [
      ratio("(a)/(b)", byTag("(a) "), byTag("(b)")),
      ratio("(a4)/(b)", byTag("(a4)"), byTag("(b)")),
      ratio("(a)/(c)", byTag("(a) "), byTag("(c)")),
      ratio("(c)/(b)", byTag("(c)"), byTag("(b)")),
      ratio("(b)/(d)", byTag("(b)"), byTag("(d)")),
      ratio("(b-in)/(d)", byTag("(b-in)"), byTag("(d)")),
      ratio("(b0)/(d)", byTag("(b0)"), byTag("(d)")),
    ].filter((x): x is string[] => x !== undefined);
    if (ratioRows.length > 0) {
      console.log("ratios (x/y > 1: x is slower or costs more; throughput columns are y's pods/s over x's):");
      printTable(["ratio", "attach p50", "attach p99", "detach p50", `attach/s @${C}`, `detach/s @${C}`, "cpu/attach"], ratioRows);
      if (!byTag("(c)")) console.log("  (a)/(c): (c) not measured in this run");
      console.log("");
    }

    if (pairs.length > 1) {
      const spread = (xs: number[], f: (x: number) => string): string =>
        `median ${f(quantile(xs, 0.5))} (${xs.map(f).join(", ")})`;
      const pct = (x: number): string => `${(100 * x).toFixed(0)} %`;
      console.log(`(d) then (b) in alternation, ${pairs.length} pairs (the first is the table's):`);
      console.log(`  (b)/(d) attach p50:                 ${spread(pairs.map((p) => quantile(p.b.attach, 0.5) / quantile(p.d.attach, 0.5)), fmtRatio)}`);
      console.log(`  (b)'s attach/s @${C} as part of (d)'s: ${spread(pairs.map((p) => p.b.attachRate / p.d.attachRate), pct)}`);
      console.log(`  (b)'s detach/s @${C} over one caller's: ${spread(pairs.map((p) => p.b.detachRate / (p.b.seqDetachRate ?? NaN)), fmtRatio)}`);
      // The figures behind the ratios, pair by pair: which side moved.
      const each = (f: (p: { d: Result; b: Result }) => string): string => pairs.map(f).join(", ");
      const ms = (x: number): string => x.toFixed(2);
      console.log(`  attach p50, ms, (b) / (d):          ${each((p) => `${ms(quantile(p.b.attach, 0.5))}/${ms(quantile(p.d.attach, 0.5))}`)}`);
      console.log(`  attach/s @${C}, (b) / (d):           ${each((p) => `${p.b.attachRate.toFixed(0)}/${p.d.attachRate.toFixed(0)}`)}`);
      console.log("");
    }

    if (rss) {
      const mib = (k: number): string => `${(k / 1024).toFixed(1)} MiB`;
      console.log(
        `daemon RSS (VmRSS): at start ${mib(rss.startKiB)}; before ${rss.count} attachments ${mib(rss.beforeKiB)}; ` +
          `with ${rss.count} ${mib(rss.withKiB)} (+${((rss.withKiB - rss.beforeKiB) / rss.count).toFixed(1)} KiB each), ${mib(rss.idleKiB)} once idle (${RSS_IDLE_S} s later); ` +
          `after detaching all ${mib(rss.afterKiB)}`,
      );
      console.log(
        `  ${rss.count} attaches with ${C} callers: ${(rss.attachWallMs / 1000).toFixed(2)} s (${fmtRate(rss.count / (rss.attachWallMs / 1000))}); ` +
          `${rss.count} detaches: ${(rss.detachWallMs / 1000).toFixed(2)} s (${fmtRate(rss.count / (rss.detachWallMs / 1000))})` +
          (rss.error ? `; error: ${rss.error}` : ""),
      );
      for (const [label, m] of [["at start", rss.maps.start], [`with ${rss.count}`, rss.maps.with], [`with ${rss.count}, idle`, rss.maps.idle]] as const) {
        if (m) console.log(`  ${`${label}:`.padEnd(18)} ${describeMemoryMap(m)}`);
      }
      console.log("  (from /proc/PID/smaps, by the mappings' shape: bench/memory-map.ts. The file-backed part is the pages of Node.js's executable");
      console.log("  and libraries the daemon has touched, shared with other processes that map them. The rest grows with load and shrinks after");
      console.log("  it, not with attachments: V8's heap until its memory reducer runs (8 s after its last full collection), the malloc heaps");
      console.log("  until the daemon hands their free pages back once idle. Read the per-attachment figure as an upper bound.)");
      console.log("");
    }

    console.log("notes:");
    console.log("  latency: wall time per call, from the caller (spawn to exit + closed pipes for plugins; RPC round trip for gRPC).");
    console.log(`  cpu/attach, cpu/detach: CPU of whoever does the work, over the sequential phase, per op; /proc tick = ${tickMs()} ms, so ±${(tickMs() / n).toFixed(2)} ms.`);
    console.log("    plugins (a), (c): the plugin processes, from this process's cutime+cstime in /proc/self/stat (children it waited for,");
    console.log("      including their own waited-for children, e.g. host-local under ptp); (c) adds the daemon's share.");
    console.log("    daemon (b): utime+stime of the daemon in /proc/<pid>/stat, all threads (netlink runs on libuv's pool).");
    console.log("    floor (d): the ip processes' cutime+cstime minus (invocations × ip's start-up CPU).");
    console.log("  caller cpu/att: this bench process's own CPU per sequential attach (fork/exec + pipes for plugins, the gRPC client for (b)).");
    for (const x of results) for (const note of x.notes) console.log(`  ${x.label}: ${note}`);
    if (floorExtras) {
      const f = floorExtras;
      console.log(
        `  (d): ip start-up (ip -n NS -batch /dev/null) p50 ${fmtMs(f.startupHostMs)} in the host ns, ${fmtMs(f.startupPodMs)} in a pod ns (p99 ${fmtMs(f.startupPodP99Ms)}), ` +
          `${fmtMs(f.startupCpuMs)} CPU. Per-pod attach = (its pod batch − an empty run just before it) + 1/N (host batch − empty run): ` +
          `the p99 carries ip's start-up jitter. Mean per pod, all start-ups subtracted at their mean: ${fmtMs(f.meanAttachPerPod)}. Detach = one batch of N "link del" − an empty run, per link.`,
      );
      console.log(
        `  (d): raw, start-ups included: ${fmtMs(f.rawAttachPerPod)} per pod sequential, ${fmtRate(f.rawAttachRate)} with ${C} groups; ` +
          `concurrent figures subtract the wall time of the same schedule run with empty batches.`,
      );
    }
    const a = byTag("(a) ");
    const a4 = byTag("(a4)");
    if (a && a4) {
      console.log(
        `  (a) vs (a4): dual-stack ptp adds ${fmtMs(quantile(a.attach, 0.5) - quantile(a4.attach, 0.5))} at p50: ptp waits for the pod's IPv6 address to pass DAD ` +
          "(no IFA_F_NODAD) before it returns; the daemon sets NODAD and permanent neighbours instead.",
      );
    }
    console.log(`  (b0): the daemon just started, its first calls (and this client's): the same phases as (b), before V8 has compiled the hot paths.`);
    console.log(`  (b): warm, as a long-running daemon is: after (b0) and ${opts.warmup} untimed round(s) of N attaches and detaches with ${C} callers; one HTTP/2 connection for all callers, as a runtime would hold; the daemon logs one line per call at info (to a file).`);
    console.log("    The calls go through a minimal unary gRPC client on node:http2 (bench/lean-grpc-client.ts): runtimes call us through grpc-go,");
    console.log("    whose per-call CPU is small, while @grpc/grpc-js's client takes about 1 ms per call from the same two cores as the daemon.");
    console.log("  (b-in): (b)'s sequential calls as the daemon timed them (durationMs in its log: handler to answer), i.e. without gRPC transport and client.");
    console.log("  (b2): the same daemon and calls through @grpc/grpc-js's client, one channel.");
    console.log("  (c): the same daemon as (b), warm; each ADD/DEL is a fresh plugin process with its own connection.");

    if (daemon?.profileDir) {
      console.log("");
      printProfile(daemon.profileDir, profileWindows);
    }

    if (opts.json !== undefined) writeJson(opts.json, opts, results, rss);
    for (const x of results) if (x.error) process.exitCode = 1;
  } finally {
    if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) await stopDaemon(daemon).catch(() => undefined);
    // What is left: links in this (the sandbox's) namespace and in each of ours, then the namespaces themselves.
    try {
      leftLinks += countLinks();
    } catch {
      // counted as none
    }
    for (const ns of namespaces) {
      try {
        const c = countLinks(ns.name);
        leftLinks += daemon && ns.name === daemon.hostNs ? Math.max(c, hostLinksBeforeRssRemoval) : c;
      } catch {
        // gone already
      }
    }
    removeNamespaces(namespaces.reverse().map((p) => p.name));
    leftNs = namedNamespaces().length;
    rmSync(tmp, { recursive: true, force: true });
    console.log("");
    console.log(`left over: links ${leftLinks}, namespaces ${leftNs}`);
    process.stderr.write(`[bench] total ${((nowMs() - runStarted) / 1000).toFixed(1)} s\n`);
  }
}

/** The figures of the table and the RSS phase, for comparing runs (bench/node-versions.ts). */
function writeJson(file: string, opts: Options, results: Result[], rss: RssFigures | undefined): void {
  const daemonNodeVersion = spawnSync(opts.daemonNode ?? launcherNode(), ["-p", "process.version"], { encoding: "utf8" }).stdout.trim();
  const rows = results
    .filter((x) => !x.error)
    .map((x) => ({
      label: x.label,
      attachP50: quantile(x.attach, 0.5),
      attachP99: quantile(x.attach, 0.99),
      detachP50: x.detachMeanOnly ?? quantile(x.detach, 0.5),
      attachRate: x.attachRate,
      detachRate: x.detachRate,
      cpuAttach: x.cpuAttach,
      cpuDetach: x.cpuDetach,
    }));
  writeFileSync(file, JSON.stringify({ daemonNode: opts.daemonNode ?? launcherNode(), daemonNodeVersion, n: opts.n, concurrency: opts.concurrency, rows, rss: rss ?? null }, null, 2));
}

function printProfile(dir: string, windows: { label: string; w: [number, number] }[]): void {
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  } catch {
    // none written
  }
  if (files.length === 0) {
    console.log(`daemon CPU profile: none written to ${dir}`);
    return;
  }
  const file = path.join(dir, files[0]!);
  console.log("daemon CPU profile (node --cpu-prof; main JS thread only, netlink syscalls on libuv's pool appear as idle; figures above are slowed by it):");
  const sections: { label: string; w: [number, number][] | undefined }[] = [
    ...windows.map((x) => ({ label: x.label, w: [x.w] })),
    { label: "whole run", w: undefined },
  ];
  for (const s of sections) {
    const sum = summarizeProfile(file, s.w, 12);
    const busy = sum.totalMs - sum.idleMs;
    console.log(`  ${s.label}: sampled ${sum.totalMs.toFixed(0)} ms, main thread busy ${busy.toFixed(0)} ms (${((100 * busy) / Math.max(sum.totalMs, 1e-9)).toFixed(0)}%)`);
    if (busy <= 0) continue;
    const pct = (ms: number): string => `${((100 * ms) / busy).toFixed(1)}%`;
    console.log(`    by where the code lives: ${sum.groups.slice(0, 10).map((g) => `${g.name} ${pct(g.ms)}`).join(", ")}`);
    console.log("    top self time:");
    for (const t of sum.top) console.log(`    ${t.ms.toFixed(1).padStart(8)} ms  ${pct(t.ms).padStart(5)}  ${t.name}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
