// A daemon just started, against the reference's Go daemon, both driven by the
// reference's own Go client (refcli, its go-cni-shaped adapter as a command),
// in one run and in alternation: reference, ours, reference, ours… Part "ref"
// of `npm run bench`, and on its own for comparing builds of the daemon:
//
//   node dist/bench/cold-start.js [--rounds 3] [--n 60] [--idle SECONDS]
//        [--variant LABEL=ENTRY[,NODE_FLAG|env:NAME=VALUE|ipv4-only...]]... [--no-reference]
//
// An ENTRY ending in .blob is a startup snapshot (scripts/build-snapshot.mjs):
// the daemon is started as `node NODE_FLAGS... --snapshot-blob ENTRY -- ARGS`.
//
// Per round and daemon, a fresh host namespace and a fresh process:
//   1. spawn → Status OK (polled every 2 ms over one connection);
//   2. `refcli bench 1`: the first Attach of the process (and its Detach), as
//      the reference's Go client times it, its connection's set-up included
//      (without refcli: through the bench's own client);
//   3. then another fresh process, 3 × `refcli status`, `refcli bench N`: N
//      sequential dual-stack Attaches then N Detaches (the reference: IPv4
//      only, all it can do), p50 and p99 as refcli prints them;
//   4. with --idle S: the same daemon sits idle S seconds, then `refcli bench N`
//      again (fresh ids, same namespaces).
// The daemon's CPU from spawn to ready, and per Attach (its threads' schedstat time).
//
// refcli dials the reference's fixed socket /ephemeral/workloadnet.sock, so
// every daemon here listens there; inside the sandbox a private tmpfs is
// mounted on /ephemeral (the empty directory is made on the root file system
// if missing). The reference is taken from WORKLOADNET_REFERENCE_BIN (a
// directory with refd and refcli), or built into /tmp/workloadnet-refgo/bin
// with the build script in WORKLOADNET_REFERENCE_BUILD (which installs Debian's
// Go if missing); without either, or when the build fails, it is skipped with
// a line saying why, and only our daemon is measured.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DAEMON_ENV, DAEMON_NODE_FLAGS } from "../src/cli/node-flags.js";
import { assertSandbox, ip, removeNamespaces, uniqueName } from "../test/sandbox.js";
import { fmtMs, nowMs, printTable, quantile, runChild, threadsCpuMs } from "./bench-util.js";
import { leanClient, type LeanClient } from "./lean-grpc-client.js";

const DAEMON_JS = fileURLToPath(new URL("../src/cli/workloadnetd.cjs", import.meta.url));
const REF_SOCKET_DIR = "/ephemeral";
const REF_SOCKET = `${REF_SOCKET_DIR}/workloadnet.sock`;
const V4 = "10.94.0.0/16";
const V6 = "fd00:94::/64";
const REF_BUILD_OUT = "/tmp/workloadnet-refgo/bin";

export interface ColdOptions {
  rounds: number;
  n: number;
  /** Seconds idle before a second `refcli bench` on the same daemon; 0: none. */
  idleSeconds: number;
  variants: Variant[];
  reference: boolean;
}

export interface Variant {
  label: string;
  /** The daemon's entry file. */
  entry: string;
  nodeFlags: string[];
  /** Extra environment of the daemon. */
  env?: Record<string, string>;
  /** Without --ipv6-prefix: the reference's own work (it cannot do both families). */
  ipv4Only?: boolean;
}

export const ourDaemon = (): Variant => ({ label: "workloadnetd, both families", entry: DAEMON_JS, nodeFlags: [...DAEMON_NODE_FLAGS], env: { ...DAEMON_ENV } });
/** Ours doing what the reference does: IPv4 only. */
export const ourDaemonIpv4 = (): Variant => ({ ...ourDaemon(), label: "workloadnetd, IPv4 only", ipv4Only: true });

interface Round {
  readyMs: number;
  readyCpuMs: number;
  firstAttachMs: number;
  /** The daemon's own figure for that first Attach (its log's durationMs). */
  firstAttachInMs: number;
  attachP50: number;
  attachP99: number;
  detachP50: number;
  cpuPerAttachMs: number;
  /** p50 of the daemon's own durationMs of the N Attaches (ours only). */
  attachInP50?: number;
  idleAttachP50?: number;
  idleDetachP50?: number;
}

interface Row {
  label: string;
  rounds: Round[];
  error?: string;
}

const progress = (s: string): void => void process.stderr.write(`[cold] ${s}\n`);

/** refd and refcli, or why not. */
export async function findReference(): Promise<{ bin: string } | { skipped: string }> {
  const have = (dir: string): boolean => existsSync(path.join(dir, "refd")) && existsSync(path.join(dir, "refcli"));
  const given = process.env.WORKLOADNET_REFERENCE_BIN;
  if (given) return have(given) ? { bin: given } : { skipped: `reference skipped: no refd and refcli in WORKLOADNET_REFERENCE_BIN=${given}` };
  if (have(REF_BUILD_OUT)) return { bin: REF_BUILD_OUT };
  const script = process.env.WORKLOADNET_REFERENCE_BUILD;
  if (!script) return { skipped: "reference skipped: set WORKLOADNET_REFERENCE_BUILD to the reference's build.sh (or WORKLOADNET_REFERENCE_BIN to a directory with refd and refcli)" };
  progress(`building the reference with ${script}`);
  const res = await runChild("bash", [script], { env: { ...process.env, OUT: REF_BUILD_OUT, W: path.dirname(REF_BUILD_OUT) }, timeoutMs: 600_000 });
  if (res.code !== 0 || !have(REF_BUILD_OUT)) {
    return { skipped: `reference skipped: its build failed (exit ${res.code ?? res.signal}; Go not installable here?): ${(res.stderr || res.stdout).trim().split("\n").slice(-2).join(" | ")}` };
  }
  return { bin: REF_BUILD_OUT };
}

/** A private tmpfs at /ephemeral, in this (the sandbox's own) mount namespace. */
function privateSocketDir(): void {
  assertSandbox();
  mkdirSync(REF_SOCKET_DIR, { recursive: true });
  const mounted = readFileSync("/proc/self/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === REF_SOCKET_DIR);
  if (!mounted) execFileSync("mount", ["-t", "tmpfs", "-o", "mode=0755", "workloadnet-bench", REF_SOCKET_DIR]);
}

interface Started {
  child: ChildProcess;
  hostNs: string;
  spawnedAt: number;
  exited: Promise<void>;
  logPath: string;
  out(): string;
}

function spawnIn(hostNs: string, cmd: string, args: string[], logPath: string, env?: Record<string, string>): Started {
  const logFd = openSync(logPath, "a");
  let child: ChildProcess;
  const spawnedAt = nowMs();
  try {
    child = spawn("ip", ["netns", "exec", hostNs, cmd, ...args], { stdio: ["ignore", logFd, logFd], env: { ...process.env, ...env } });
  } finally {
    closeSync(logFd);
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return { child, hostNs, spawnedAt, exited, logPath, out: () => readFileSync(logPath, "utf8").slice(-2000) };
}

async function stop(s: Started): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGTERM");
  const t = setTimeout(() => s.child.kill("SIGKILL"), 10_000);
  await s.exited;
  clearTimeout(t);
  rmSync(REF_SOCKET, { force: true });
}

function freshHostNs(): string {
  const ns = uniqueName("cold");
  ip(["netns", "add", ns]);
  ip(["link", "set", "lo", "up"], ns);
  return ns;
}

/** Polls Status over one connection, every 2 ms, until it answers OK; resolves with the client. */
async function untilReady(s: Started, timeoutMs = 20_000): Promise<LeanClient> {
  const deadline = nowMs() + timeoutMs;
  for (;;) {
    if (s.child.exitCode !== null || s.child.signalCode !== null) throw new Error(`daemon exited during start-up: ${s.out()}`);
    if (nowMs() > deadline) throw new Error(`daemon not ready after ${timeoutMs} ms: ${s.out()}`);
    if (existsSync(REF_SOCKET)) {
      const c = leanClient(REF_SOCKET);
      try {
        await c.status();
        return c;
      } catch {
        c.close();
      }
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function refcli(bin: string, args: string[]): Promise<string> {
  const res = await runChild(path.join(bin, "refcli"), args, { timeoutMs: 120_000 });
  if (res.code !== 0) throw new Error(`refcli ${args.join(" ")}: exit ${res.code ?? res.signal}: ${(res.stderr + res.stdout).trim().slice(0, 400)}`);
  return res.stdout;
}

/** "setup p50 1.23 ms p99 2.34 ms | remove p50 … (n=60)" */
function parseBench(out: string): { attachP50: number; attachP99: number; detachP50: number } {
  const m = /setup p50 ([\d.]+) ms p99 ([\d.]+) ms \| remove p50 ([\d.]+) ms/.exec(out);
  if (!m) throw new Error(`unexpected refcli bench output: ${out.trim()}`);
  return { attachP50: Number(m[1]), attachP99: Number(m[2]), detachP50: Number(m[3]) };
}

/** The daemon's own durationMs of each logged attach, in order. */
function attachesInDaemon(logPath: string): number[] {
  const out: number[] = [];
  for (const line of readFileSync(logPath, "utf8").split("\n")) {
    if (!line.includes('"op":"attach"')) continue;
    try {
      const rec = JSON.parse(line) as { durationMs?: number };
      if (typeof rec.durationMs === "number") out.push(rec.durationMs);
    } catch {
      // not ours
    }
  }
  return out;
}

async function benchOnce(bin: string, n: number, podPrefix: string): Promise<{ attachP50: number; attachP99: number; detachP50: number }> {
  for (let i = 0; i < 3; i++) await refcli(bin, ["status"]);
  return parseBench(await refcli(bin, ["bench", String(n), `/run/netns/${podPrefix}`]));
}

async function roundOurs(v: Variant, bin: string | undefined, opts: ColdOptions, podPrefix: string, tmp: string): Promise<Round> {
  const entry = v.entry.endsWith(".blob") ? ["--snapshot-blob", v.entry, "--"] : [v.entry];
  const prefixes = v.ipv4Only ? ["--ipv4-prefix", V4] : ["--ipv4-prefix", V4, "--ipv6-prefix", V6];
  const args = (): [string, string[]] => [process.execPath, [...v.nodeFlags, ...entry, "--socket", REF_SOCKET, ...prefixes]];
  // 1, 2: spawn to ready, the first Attach.
  let ns = freshHostNs();
  let log = path.join(tmp, `${ns}.log`);
  let s = spawnIn(ns, ...args(), log, v.env);
  const r: Round = { readyMs: NaN, readyCpuMs: NaN, firstAttachMs: NaN, firstAttachInMs: NaN, attachP50: NaN, attachP99: NaN, detachP50: NaN, cpuPerAttachMs: NaN };
  try {
    const c = await untilReady(s);
    r.readyMs = nowMs() - s.spawnedAt;
    r.readyCpuMs = threadsCpuMs(s.child.pid!);
    if (bin !== undefined) {
      c.close();
      r.firstAttachMs = await firstAttachByRefcli(bin, podPrefix);
    } else {
      // Without refcli: by the bench's own client (its calls less warm than the daemon's).
      const req = { workloadId: "cold-first-attach-0", netns: { netnsPath: `/run/netns/${podPrefix}0`, ifName: "eth0" } };
      const t0 = nowMs();
      const res = await c.attach(req);
      r.firstAttachMs = nowMs() - t0;
      const expected = v.ipv4Only ? 1 : 2;
      if (res.ip.length !== expected) throw new Error(`first attach: ${res.ip.length} addresses, expected ${expected}`);
      await c.detach(req);
      c.close();
    }
    await new Promise((res2) => setTimeout(res2, 20)); // its log line written
    r.firstAttachInMs = attachesInDaemon(log)[0] ?? NaN;
  } finally {
    await stop(s);
    removeNamespaces([ns]);
  }
  if (bin === undefined) return r;
  // 3, 4: refcli bench on another fresh process.
  ns = freshHostNs();
  log = path.join(tmp, `${ns}.log`);
  s = spawnIn(ns, ...args(), log, v.env);
  try {
    (await untilReady(s)).close();
    const cpu0 = threadsCpuMs(s.child.pid!);
    Object.assign(r, await benchOnce(bin, opts.n, podPrefix));
    r.cpuPerAttachMs = (threadsCpuMs(s.child.pid!) - cpu0) / opts.n; // attach and detach: per pair
    await new Promise((res2) => setTimeout(res2, 20)); // the last log line written
    r.attachInP50 = quantile(attachesInDaemon(log).slice(0, opts.n), 0.5);
    if (opts.idleSeconds > 0) {
      progress(`  idle ${opts.idleSeconds} s`);
      await benchAfterIdle(bin, opts, podPrefix, r);
    }
  } finally {
    await stop(s);
    removeNamespaces([ns]);
  }
  return r;
}

/**
 * The first Attach of a daemon that has answered Status: `refcli bench 1`, the
 * reference's Go client timing one Attach (its connection's set-up included),
 * then its Detach.
 */
async function firstAttachByRefcli(bin: string, podPrefix: string): Promise<number> {
  return parseBench(await refcli(bin, ["bench", "1", `/run/netns/${podPrefix}`])).attachP50;
}

/** Node.js itself, started the way the daemons are, doing nothing: spawn to exit. */
async function nodeAloneMs(v: Variant): Promise<number> {
  const ns = freshHostNs();
  try {
    const t0 = nowMs();
    const res = await runChild("ip", ["netns", "exec", ns, process.execPath, ...v.nodeFlags, "-e", "0"], { env: { ...process.env, ...v.env }, timeoutMs: 30_000 });
    if (res.code !== 0) throw new Error(`node -e 0: exit ${res.code ?? res.signal}`);
    return nowMs() - t0;
  } finally {
    removeNamespaces([ns]);
  }
}

/** Sits idle for opts.idleSeconds, then runs refcli's bench again into r's idle figures. */
async function benchAfterIdle(bin: string, opts: ColdOptions, podPrefix: string, r: Round): Promise<void> {
  await new Promise((res) => setTimeout(res, opts.idleSeconds * 1000));
  const again = parseBench(await refcli(bin, ["bench", String(opts.n), `/run/netns/${podPrefix}`]));
  r.idleAttachP50 = again.attachP50;
  r.idleDetachP50 = again.detachP50;
}

async function roundReference(bin: string, opts: ColdOptions, podPrefix: string, tmp: string): Promise<Round> {
  const r: Round = { readyMs: NaN, readyCpuMs: NaN, firstAttachMs: NaN, firstAttachInMs: NaN, attachP50: NaN, attachP99: NaN, detachP50: NaN, cpuPerAttachMs: NaN };
  // Its first Attach, on a fresh process of its own, as for ours.
  let ns = freshHostNs();
  let s = spawnIn(ns, path.join(bin, "refd"), ["--ipv4-prefix", V4], path.join(tmp, `${ns}-ref.log`));
  try {
    (await untilReady(s)).close();
    r.firstAttachMs = await firstAttachByRefcli(bin, podPrefix);
  } finally {
    await stop(s);
    removeNamespaces([ns]);
  }
  ns = freshHostNs();
  s = spawnIn(ns, path.join(bin, "refd"), ["--ipv4-prefix", V4], path.join(tmp, `${ns}-ref.log`));
  try {
    (await untilReady(s)).close();
    r.readyMs = nowMs() - s.spawnedAt;
    r.readyCpuMs = threadsCpuMs(s.child.pid!);
    const cpu0 = threadsCpuMs(s.child.pid!);
    Object.assign(r, await benchOnce(bin, opts.n, podPrefix));
    r.cpuPerAttachMs = (threadsCpuMs(s.child.pid!) - cpu0) / opts.n;
    if (opts.idleSeconds > 0) await benchAfterIdle(bin, opts, podPrefix, r);
  } finally {
    await stop(s);
    removeNamespaces([ns]);
  }
  return r;
}

/** Runs the rounds and prints the table; returns false when something failed. */
export async function runColdStart(opts: ColdOptions): Promise<boolean> {
  assertSandbox();
  privateSocketDir();
  const ref = await findReference();
  // refcli drives every daemon; --no-reference only leaves the reference daemon's row out.
  const bin = "bin" in ref ? ref.bin : undefined;
  const withRef = opts.reference && bin !== undefined;
  const tmp = mkdtempSync(path.join(tmpdir(), "wln-cold-"));
  const podPrefix = uniqueName("cp");
  execFileSync("ip", ["-batch", "-"], { input: Array.from({ length: opts.n }, (_, i) => `netns add ${podPrefix}${i}\n`).join("") });
  const rows: Row[] = [...(withRef ? [{ label: "reference (Go), IPv4 only", rounds: [] }] : []), ...opts.variants.map((v) => ({ label: v.label, rounds: [] as Round[] }))];
  let ok = true;
  const nodeAlone: number[] = [];
  try {
    // A throwaway round first: the bench's own client and the page cache warm, for everyone alike.
    progress("warm-up round (not counted)");
    await roundOurs(opts.variants[0]!, undefined, opts, podPrefix, tmp).catch(() => undefined);
    for (let k = 0; k < opts.rounds; k++) {
      let row = 0;
      if (withRef && bin) {
        progress(`round ${k + 1}/${opts.rounds}: reference`);
        await roundReference(bin, opts, podPrefix, tmp).then(
          (r) => rows[row]!.rounds.push(r),
          (err: unknown) => (rows[row]!.error = (err as Error).message),
        );
        row++;
      }
      for (const v of opts.variants) {
        progress(`round ${k + 1}/${opts.rounds}: ${v.label}`);
        const target = rows[row++]!;
        await roundOurs(v, bin, opts, podPrefix, tmp).then(
          (r) => target.rounds.push(r),
          (err: unknown) => (target.error = (err as Error).message),
        );
      }
      await nodeAloneMs(opts.variants[0]!).then(
        (ms) => nodeAlone.push(ms),
        (err: unknown) => progress(`node alone: ${(err as Error).message}`),
      );
    }
  } finally {
    removeNamespaces(Array.from({ length: opts.n }, (_, i) => `${podPrefix}${i}`));
    rmSync(tmp, { recursive: true, force: true });
  }

  console.log("");
  console.log(`A daemon just started: ${opts.rounds} round(s), daemons in alternation, each a fresh process in a fresh namespace; N=${opts.n} sequential Attaches then Detaches by refcli (the reference's Go client) after 3 × refcli status`);
  if (!bin) console.log(`  ${"skipped" in ref ? ref.skipped : ""}`);
  const spread = (rs: Round[], f: (r: Round) => number | undefined, fmt = fmtMs): string => {
    const xs = rs.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
    if (xs.length === 0) return "—";
    if (xs.length === 1) return fmt(xs[0]!);
    return `${fmt(quantile(xs, 0.5))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
  };
  const header = ["daemon", "attach p50", "(in daemon)", "attach p99", "detach p50", "first attach", "(in daemon)", "spawn→ready", "cpu to ready", "cpu/attach+detach"];
  if (opts.idleSeconds > 0) header.push(`attach p50 after ${opts.idleSeconds} s idle`);
  const table = rows.map((row) => {
    if (row.error && row.rounds.length === 0) return [row.label, `failed: ${row.error}`.slice(0, 80)];
    const cells = [
      row.label,
      spread(row.rounds, (r) => r.attachP50),
      spread(row.rounds, (r) => r.attachInP50),
      spread(row.rounds, (r) => r.attachP99),
      spread(row.rounds, (r) => r.detachP50),
      spread(row.rounds, (r) => r.firstAttachMs),
      spread(row.rounds, (r) => r.firstAttachInMs),
      spread(row.rounds, (r) => r.readyMs),
      spread(row.rounds, (r) => r.readyCpuMs),
      spread(row.rounds, (r) => r.cpuPerAttachMs),
    ];
    if (opts.idleSeconds > 0) cells.push(spread(row.rounds, (r) => r.idleAttachP50));
    return cells;
  });
  printTable(header, table);
  console.log("  medians over the rounds, (lowest–highest); cpu: the daemon's threads' time on a CPU (schedstat), to ready and per Attach+Detach pair");
  console.log(`  first attach: the first Attach of a fresh process (after Status OK), ${bin ? "by refcli (bench 1: its connection's set-up included)" : "by the bench's own client"}; (in daemon): its log's durationMs (handler to answer)`);
  if (nodeAlone.length > 0) {
    const floor = `${fmtMs(quantile(nodeAlone, 0.5))} (${fmtMs(Math.min(...nodeAlone))}–${fmtMs(Math.max(...nodeAlone))})`;
    console.log(`  Node.js alone, started the same way (node -e 0, spawn to exit): ${floor}, the floor under our spawn→ready`);
  }
  for (const row of rows) {
    if (row.error) {
      console.log(`  ${row.label}: failed: ${row.error}`);
      ok = false;
    }
  }
  const refRow = withRef ? rows[0] : undefined;
  if (refRow && refRow.rounds.length > 0) {
    for (const row of rows.slice(1)) {
      const pairs = row.rounds.map((r, i) => [r.attachP50, refRow.rounds[i]?.attachP50 ?? NaN] as const).filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
      if (pairs.length === 0) continue;
      console.log(`  ${row.label} / reference, attach p50, round by round: ${pairs.map(([a, b]) => `${(a / b).toFixed(2)}x`).join(", ")}`);
    }
  }
  console.log("");
  return ok;
}

function parseArgs(argv: string[]): ColdOptions {
  const o: ColdOptions = { rounds: 3, n: 60, idleSeconds: 0, variants: [], reference: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--rounds") o.rounds = Number(next());
    else if (a === "--n") o.n = Number(next());
    else if (a === "--idle") o.idleSeconds = Number(next());
    else if (a === "--no-reference") o.reference = false;
    else if (a === "--variant") {
      const spec = next();
      const eq = spec.indexOf("=");
      const label = spec.slice(0, eq);
      const rest = eq > 0 ? spec.slice(eq + 1) : "";
      if (!rest) throw new Error("--variant LABEL=ENTRY[,NODE_FLAG...]");
      const [entry, ...flags] = rest.split(",");
      // env:NAME=VALUE items set the daemon's environment, ipv4-only leaves
      // out its IPv6 prefix; the rest are node flags.
      const env = Object.fromEntries(flags.filter((f) => f.startsWith("env:")).map((f) => [f.slice(4, f.indexOf("=")), f.slice(f.indexOf("=") + 1)]));
      const nodeFlags = flags.filter((f) => !f.startsWith("env:") && f !== "ipv4-only");
      o.variants.push({ label, entry: path.resolve(entry!), nodeFlags, env, ipv4Only: flags.includes("ipv4-only") });
    } else throw new Error(`unknown argument ${a}`);
  }
  if (o.variants.length === 0) o.variants.push(ourDaemon(), ourDaemonIpv4());
  return o;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  runColdStart(parseArgs(process.argv.slice(2))).then(
    (ok) => {
      if (!ok) process.exitCode = 1;
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
