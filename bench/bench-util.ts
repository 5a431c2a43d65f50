// Small helpers for bench/bench.ts: timing, statistics, child processes,
// per-process CPU and memory from /proc, and iproute2 look-ups.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { POOL_THREADS } from "../src/daemon/kernel-waits.cjs";

/**
 * libuv reads its pool size once, at first use, so a bench that measures the
 * daemon's code in its own process needs the daemon's size from the start:
 * without it, the process runs itself again with it (as the daemon's bin sets
 * it) and returns false; the caller then stops.
 */
export function ensureDaemonPoolSize(): boolean {
  if (process.env.UV_THREADPOOL_SIZE === String(POOL_THREADS)) return true;
  const res = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, UV_THREADPOOL_SIZE: String(POOL_THREADS) },
  });
  process.exitCode = res.status ?? 1;
  return false;
}

/** Monotonic milliseconds (CLOCK_MONOTONIC, as libuv's hrtime). */
export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx]!;
}

export const mean = (xs: number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to the child's exit and closed pipes. */
  ms: number;
}

/**
 * Runs a program the way a container runtime runs a CNI plugin: fresh
 * process, environment given, optional stdin, stdout/stderr collected.
 */
export function runChild(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: nowMs() - t0 });
    });
    if (opts.input !== undefined) {
      child.stdin!.on("error", () => undefined); // a plugin may exit without reading
      child.stdin!.end(opts.input);
    }
  });
}

/**
 * Runs fn(0..count-1) with `concurrency` callers, each taking the next index;
 * returns the wall time. After a failure no new index is started, the calls
 * under way finish, then the first error is thrown.
 */
export async function pool(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  let failed = false;
  const t0 = nowMs();
  const worker = async (): Promise<void> => {
    while (next < count && !failed) {
      const i = next++;
      try {
        await fn(i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.min(concurrency, count) }, worker));
  const firstError = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (firstError) throw firstError.reason;
  return nowMs() - t0;
}

const TICK_MS = 1000 / Number(safeExec("getconf", ["CLK_TCK"]).trim() || "100");

function safeExec(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8" });
  } catch {
    return "";
  }
}

/** Fields of /proc/PID/stat after "(comm)", so that field k (1-based, man proc) is at [k - 3]. */
function statFields(pid: number | "self"): string[] {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  return s.slice(s.lastIndexOf(")") + 2).trim().split(/\s+/);
}

/** utime + stime of a process (all its threads, live and exited), in ms; clock-tick resolution. */
export function processCpuMs(pid: number): number {
  const f = statFields(pid);
  return (Number(f[14 - 3]) + Number(f[15 - 3])) * TICK_MS;
}

/**
 * CPU time of a process's live threads, in ms, from the scheduler's own
 * accounting (/proc/PID/task/TID/schedstat, nanoseconds): much finer than
 * the 10 ms ticks of processCpuMs; threads that have exited are not counted
 * (Node's threads live as long as the process).
 */
export function threadsCpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e6;
}

/**
 * cutime + cstime of this process, in ms: the CPU of every child it has
 * waited for, and of their waited-for children (a plugin's IPAM plugin).
 * Clock-tick resolution (10 ms), so only differences over many runs mean much.
 */
export function childrenCpuMs(): number {
  const f = statFields("self");
  return (Number(f[16 - 3]) + Number(f[17 - 3])) * TICK_MS;
}

export const tickMs = (): number => TICK_MS;

/** Non-loopback links in a namespace (the current one when ns is undefined). */
export function countLinks(ns?: string): number {
  const out = execFileSync("ip", [...(ns ? ["-n", ns] : []), "-json", "link", "show"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  const links = (out ? JSON.parse(out) : []) as { ifname: string }[];
  return links.filter((l) => l.ifname !== "lo").length;
}

/** Names under /run/netns (the sandbox's private tmpfs). */
export function namedNamespaces(): string[] {
  try {
    return readdirSync("/run/netns");
  } catch {
    return [];
  }
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return "—";
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

export function fmtRate(perSec: number): string {
  if (!Number.isFinite(perSec)) return "—";
  return perSec >= 100 ? `${perSec.toFixed(0)}/s` : `${perSec.toFixed(1)}/s`;
}

export function fmtRatio(x: number): string {
  if (!Number.isFinite(x)) return "—";
  return x >= 10 ? `${x.toFixed(0)}x` : `${x.toFixed(2)}x`;
}

/** Prints rows as a table with a header rule; columns padded to their widest cell. */
export function printTable(header: string[], rows: string[][], indent = "  "): void {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: string[]): string =>
    indent + cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ").trimEnd();
  console.log(line(header));
  console.log(indent + widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));
}
