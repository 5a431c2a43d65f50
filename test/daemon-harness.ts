// Runs the real daemon (dist/src/cli/workloadnetd.cjs) as a child process in a
// fresh "host" network namespace of its own, for end-to-end tests and the demo.
// Each daemon gets its own host namespace (`ip netns add hostXXXX`) and socket
// under /run/workloadnet/, so tests do not see each other's links or routes.
// iproute2 is the independent witness: `ip -n <hostNs>` shows the daemon's side.
// Only inside the sandbox (test/run-in-sandbox.sh).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync, renameSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DAEMON_NODE_FLAGS } from "../src/cli/node-flags.js";
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectClient, grpcJsClient, type ConnectTestClient, type GrpcJsTestClient } from "./grpc-clients.js";
import { assertSandbox, createNamespace, ip, ipJson, uniqueName, type IpLink, type IpRoute, type PodNamespace } from "./sandbox.js";

/** The compiled daemon entry point, next to this file's compiled copy (dist/test -> dist/src). */
export const DAEMON_JS = fileURLToPath(new URL("../src/cli/workloadnetd.cjs", import.meta.url));

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface StartOptions {
  /** Daemon flags besides --socket (default: 10.88.0.0/24 + fd00:88::/64, --mtu 1400). */
  args?: string[];
  /** How long to wait for the socket to serve. Default 10 s. */
  readyTimeoutMs?: number;
  /** Run in this existing namespace (e.g. a node of a test cluster) instead of a fresh one; cleanup() leaves it. */
  hostNs?: string;
}

export const DEFAULT_ARGS = ["--ipv4-prefix", "10.88.0.0/24", "--ipv6-prefix", "fd00:88::/64", "--mtu", "1400"];

export type { IpAddrInfo, IpLink, IpRoute } from "./sandbox.js";

export class DaemonHarness {
  readonly hostNs: string;
  readonly socketPath: string;
  /** Parsed JSON log lines (stdout) of the current process. */
  logs: LogLine[] = [];
  /** Raw output of the current process. */
  stdout = "";
  stderr = "";
  /** Exit code/signal of the current process once it has exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly pods: PodNamespace[] = [];
  private readonly tempDirs: string[] = [];
  private connectC: ConnectTestClient | undefined;
  private grpcJsC: GrpcJsTestClient | undefined;
  private logWaiters: (() => void)[] = [];
  private args: string[];
  private readonly ownsHostNs: boolean;

  private constructor(args: string[], hostNs?: string) {
    assertSandbox();
    this.args = args;
    this.ownsHostNs = hostNs === undefined;
    this.hostNs = hostNs ?? uniqueName("host");
    this.socketPath = `/run/workloadnet/${this.hostNs}.sock`;
    if (this.ownsHostNs) ip(["netns", "add", this.hostNs]);
    // A real host has its loopback up (the first hop 169.254.77.1 lives there).
    ip(["link", "set", "lo", "up"], this.hostNs);
  }

  /** Creates a fresh host namespace and starts the daemon in it; resolves once it serves. */
  static async start(options: StartOptions = {}): Promise<DaemonHarness> {
    const h = new DaemonHarness(options.args ?? DEFAULT_ARGS, options.hostNs);
    try {
      await h.spawnAndWait(options.readyTimeoutMs ?? 10_000);
    } catch (err) {
      await h.cleanup();
      throw err;
    }
    return h;
  }

  /** Starts the daemon again in the same host namespace on the same socket (after stop/kill), with other flags when given. */
  async restart(readyTimeoutMs = 10_000, args?: string[]): Promise<void> {
    if (this.running) throw new Error("restart: the daemon is still running");
    if (args !== undefined) this.args = args;
    await this.spawnAndWait(readyTimeoutMs);
  }

  get running(): boolean {
    return this.child !== undefined && this.exit === undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  // ---- process ---------------------------------------------------------------

  private async spawnAndWait(timeoutMs: number): Promise<void> {
    this.logs = [];
    this.stdout = "";
    this.stderr = "";
    this.exit = undefined;
    this.closeClients();
    // `ip netns exec` execs node in place (no fork), so signals reach the daemon itself.
    const child = spawn("ip", ["netns", "exec", this.hostNs, process.execPath, ...DAEMON_NODE_FLAGS, DAEMON_JS, "--socket", this.socketPath, ...this.args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    let partial = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      this.stdout += chunk;
      partial += chunk;
      let nl: number;
      while ((nl = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        if (line.trim() === "") continue;
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.logs.push({ level: 0, msg: line, unparsed: true });
        }
      }
      const waiters = this.logWaiters;
      this.logWaiters = [];
      for (const w of waiters) w();
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => {
      child.on("close", (code, signal) => {
        this.exit = { code, signal };
        const waiters = this.logWaiters;
        this.logWaiters = [];
        for (const w of waiters) w();
        resolve();
      });
    });
    await this.waitReady(timeoutMs);
  }

  /** Ready = the socket answers Status with OK, or with the daemon's own UNAVAILABLE (no prefixes yet). */
  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "socket not there yet";
    while (Date.now() < deadline) {
      if (this.exit !== undefined) {
        throw new Error(`daemon exited before it was ready (code ${this.exit.code}, signal ${this.exit.signal})${this.outputText()}`);
      }
      if (existsSync(this.socketPath) && (await canConnect(this.socketPath))) {
        const c = connectClient(this.socketPath);
        try {
          await c.client.status({}, { timeoutMs: 2000 });
          return;
        } catch (err) {
          const e = ConnectError.from(err);
          if (e.code === Code.Unavailable && e.rawMessage.startsWith("no pod prefixes")) return;
          last = `Status: ${e.message}`;
        } finally {
          c.close();
        }
      }
      await sleep(20);
    }
    throw new Error(`daemon not ready after ${timeoutMs} ms (${last})${this.outputText()}`);
  }

  private outputText(): string {
    return `\n--- daemon stderr ---\n${this.stderr}\n--- daemon stdout ---\n${this.stdout}`;
  }

  /** SIGTERM, then waits for the exit; returns the exit code. With expectCleanExit, throws unless it is 0. */
  async stop(options: { expectCleanExit?: boolean; timeoutMs?: number } = {}): Promise<number | null> {
    this.closeClients();
    if (this.running) {
      this.child!.kill("SIGTERM");
      const timeoutMs = options.timeoutMs ?? 15_000;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        this.exited.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        this.child!.kill("SIGKILL");
        await this.exited;
        throw new Error(`daemon did not exit within ${timeoutMs} ms of SIGTERM${this.outputText()}`);
      }
    }
    const code = this.exit?.code ?? null;
    if (options.expectCleanExit && code !== 0) {
      throw new Error(`daemon exited with code ${code} (signal ${this.exit?.signal})${this.outputText()}`);
    }
    return code;
  }

  /** SIGKILL, as a crash: nothing is cleaned up by the daemon. */
  async kill(): Promise<void> {
    this.closeClients();
    if (this.running) {
      this.child!.kill("SIGKILL");
      await this.exited;
    }
  }

  /** Kills the daemon if still running and removes every namespace, file and directory it made. */
  async cleanup(): Promise<void> {
    await this.kill().catch(() => undefined);
    for (const p of this.pods.splice(0)) p.remove();
    try {
      if (this.ownsHostNs) ip(["netns", "del", this.hostNs]);
    } catch {
      // already gone
    }
    try {
      unlinkSync(this.socketPath);
    } catch {
      // removed by the daemon
    }
    for (const d of this.tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }

  // ---- logs ------------------------------------------------------------------

  /** Resolves with the first log line (from the current process) matching pred; rejects after timeoutMs. */
  async waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 5000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logs.find(pred);
      if (found) return found;
      if (this.exit !== undefined) throw new Error(`daemon exited while waiting for a log line${this.outputText()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`log line not seen within ${timeoutMs} ms${this.outputText()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.logWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  // ---- clients ---------------------------------------------------------------

  /** The connect-es client (one connection, reused; closed on stop/kill). */
  get client(): ConnectTestClient["client"] {
    this.connectC ??= connectClient(this.socketPath);
    return this.connectC.client;
  }

  /** The @grpc/grpc-js client (one channel, reused; closed on stop/kill). */
  get grpcJs(): GrpcJsTestClient {
    this.grpcJsC ??= grpcJsClient(this.socketPath);
    return this.grpcJsC;
  }

  private closeClients(): void {
    this.connectC?.close();
    this.connectC = undefined;
    this.grpcJsC?.close();
    this.grpcJsC = undefined;
  }

  // ---- namespaces and files --------------------------------------------------

  /** A fresh pod namespace (`ip netns add`), removed by cleanup(). */
  pod(prefix = "pod"): PodNamespace {
    const p = createNamespace(prefix);
    this.pods.push(p);
    return p;
  }

  /** A temporary directory, removed by cleanup(). */
  tempDir(): string {
    const d = mkdtempSync(join(tmpdir(), "workloadnet-"));
    this.tempDirs.push(d);
    return d;
  }

  /** `ip ARGS` in the daemon's host namespace. */
  hostIp(args: string[]): string {
    return ip(args, this.hostNs);
  }

  /** `nft ARGS` in the daemon's host namespace. */
  hostNft(args: string[]): string {
    return execFileSync("ip", ["netns", "exec", this.hostNs, "nft", ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  }

  hostIpJson<T = unknown>(args: string[]): T {
    return ipJson<T>(args, this.hostNs);
  }

  /** The host's links in a link group (default 8, the pod links). */
  hostLinks(group = 8): IpLink[] {
    return this.hostIpJson<IpLink[]>(["-d", "link", "show"]).filter((l) => l.group === String(group));
  }

  /** Host routes with proto static (the per-pod /32 and /128 routes), both families. */
  hostStaticRoutes(): IpRoute[] {
    return [...this.hostIpJson<IpRoute[]>(["-4", "route", "show"]), ...this.hostIpJson<IpRoute[]>(["-6", "route", "show"])].filter(
      (r) => r.protocol === "static",
    );
  }
}

/** Names of the links in a namespace. */
export function linkNames(ns: string): string[] {
  return ipJson<IpLink[]>(["link", "show"], ns).map((l) => l.ifname);
}

/** Writes a file atomically (temp file + rename), as prefix writers should. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** Text form of an IP from its 4- or 16-byte wire form. */
export function ipFromBytes(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join(".");
  if (b.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
    // Canonical form via the URL parser's IPv6 serialiser.
    return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
  }
  throw new Error(`an IP is 4 or 16 bytes, got ${b.length}`);
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => {
      s.destroy();
      resolve(false);
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs fn over items with at most `limit` at a time; results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
