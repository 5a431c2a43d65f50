// Soak: many attach/detach cycles from 16 concurrent clients against the real
// daemon in a fresh host namespace, then a leak check: links, routes and
// addresses left in the host namespace (iproute2), allocations (the prefix must
// still fill exactly), the daemon's descriptors and its memory.
//
//   npm run soak                      # 20 000 cycles
//   npm run soak -- --cycles 2000     # or CYCLES=2000 npm run soak
//
// Only inside the sandbox (test/run-in-sandbox.sh). Exits 1 on a leak or error.
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectClient, type ConnectTestClient } from "../test/grpc-clients.js";
import { DaemonHarness, mapLimit } from "../test/daemon-harness.js";
import { createPods, DAEMON_HOST_NETLINK_MAX, dirtyPods, fdCensus, removePods, rssKiB, waitFdsBack, waitHostClean } from "../test/host-state.js";

export interface SoakOptions {
  cycles: number;
  clients?: number;
  /** Progress lines go here (default: none). */
  progress?: (line: string) => void;
}

export interface SoakReport {
  cycles: number;
  clients: number;
  errors: number;
  /** A few error messages, for the eye. */
  errorSamples: string[];
  seconds: number;
  attachP50Ms: number;
  attachP99Ms: number;
  detachP50Ms: number;
  detachP99Ms: number;
  /** Whatever is left in the host namespace after the last Detach. */
  leakedLinks: number;
  leakedRoutes: number;
  leakedAddresses: number;
  /** Addresses of the prefix that could not be handed out any more. */
  leakedAllocations: number;
  dirtyPods: number;
  /** Descriptors other than host netlink sockets. */
  fdsAfterWarmup: number;
  fdsAtEnd: number;
  fdKindsAtEnd: Record<string, number>;
  hostNetlinkAtEnd: number;
  rssAfterWarmupKiB: number;
  rssAtEndKiB: number;
  /** The highest of the samples taken every 1000 cycles after the warm-up. */
  rssMaxKiB: number;
  rssWithin10Percent: boolean;
  leaked: boolean;
}

const V4_PREFIX = "10.68.0.0/26"; // 61 addresses: .2 .. .62
const V4_CAPACITY = 61;
// Descriptors besides the daemon's host netlink sockets (a bounded pool, counted
// apart) that may come and go without being a leak. A leak grows with the
// cycles, thousands here.
const FD_SLACK = 2;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function errorText(err: unknown): string {
  return err instanceof ConnectError ? `${Code[err.code]}: ${err.rawMessage}` : String(err);
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const clientCount = options.clients ?? 16;
  const progress = options.progress ?? (() => undefined);
  const h = await DaemonHarness.start({ args: ["--ipv4-prefix", V4_PREFIX, "--ipv6-prefix", "fd00:68::/64"] });
  const pid = h.pid!;
  const pods = createPods(clientCount, "sk");
  const clients: ConnectTestClient[] = Array.from({ length: clientCount }, () => connectClient(h.socketPath));
  try {
    let next = 0;
    let done = 0;
    let errors = 0;
    const errorSamples: string[] = [];
    const attachMs: number[] = [];
    const detachMs: number[] = [];
    const rssSamples: number[] = [];
    const started = performance.now();

    // Each client runs whole cycles (attach, then detach) on its own pod until `limit` cycles have started.
    const runUntil = async (limit: number): Promise<void> => {
      await Promise.all(
        clients.map(async (c, k) => {
          const netns = { netnsPath: pods[k]!.path, ifName: "eth0" };
          while (next < limit) {
            const n = next++;
            const workloadId = `soak-${k}-${n}`;
            let t = performance.now();
            try {
              await c.client.attach({ workloadId, netns });
              attachMs.push(performance.now() - t);
              t = performance.now();
              await c.client.detach({ workloadId, netns });
              detachMs.push(performance.now() - t);
            } catch (err) {
              errors++;
              if (errorSamples.length < 5) errorSamples.push(`${workloadId}: ${errorText(err)}`);
              // Leave nothing behind on the way: a failed cycle is cleaned up before going on.
              await c.client.detach({ workloadId }).catch(() => undefined);
            }
            done++;
            if (done % 1000 === 0) {
              const rss = rssKiB(pid);
              rssSamples.push(rss);
              progress(`${done} cycles, ${((performance.now() - started) / 1000).toFixed(1)} s, ${errors} errors, daemon RSS ${(rss / 1024).toFixed(1)} MiB`);
            }
          }
        }),
      );
    };

    // V8's heap grows for the first few thousand cycles before it levels off: measure after that.
    const warmup = Math.min(options.cycles, Math.max(clientCount * 4, Math.round(options.cycles * 0.15)));
    await runUntil(warmup);
    const fdsAfterWarmup = fdCensus(pid).other;
    const rssAfterWarmupKiB = rssKiB(pid);
    const samplesBefore = rssSamples.length;
    await runUntil(options.cycles);
    const measured = rssSamples.slice(samplesBefore);
    const seconds = (performance.now() - started) / 1000;
    const fdsAtEnd = fdCensus(pid);
    const rssAtEndKiB = rssKiB(pid);

    // Leaks in the kernel: nothing of ours may be left after the last Detach.
    const left = await waitHostClean(h.hostNs);
    const leakedLinks = left.filter((l) => l.startsWith("link ")).length;
    const leakedRoutes = left.filter((l) => l.startsWith("route ")).length;
    const leakedAddresses = left.filter((l) => l.startsWith("address ")).length;
    const dirty = dirtyPods(pods).length;

    // Leaks in the allocator: every address of the prefix can still be handed out, and no more.
    const fill = createPods(V4_CAPACITY + 1, "sf");
    let filled = 0;
    let exhausted = 0;
    try {
      const outcomes = await mapLimit(fill, clientCount, async (p, i) => {
        try {
          await clients[i % clientCount]!.client.attach({ workloadId: `fill-${i}`, netns: { netnsPath: p.path, ifName: "eth0" } });
          return "ok";
        } catch (err) {
          return err instanceof ConnectError && err.code === Code.ResourceExhausted ? "exhausted" : errorText(err);
        }
      });
      filled = outcomes.filter((o) => o === "ok").length;
      exhausted = outcomes.filter((o) => o === "exhausted").length;
      await mapLimit(fill, clientCount, (_, i) => clients[i % clientCount]!.client.detach({ workloadId: `fill-${i}` }).catch(() => undefined));
    } finally {
      removePods(fill.map((p) => p.name));
    }
    const leakedAllocations = V4_CAPACITY - filled + (exhausted === 1 ? 0 : 1);

    // Descriptors: with the same clients connected as after the warm-up, the count must be back.
    const fdsSettled = await waitFdsBack(pid, fdsAfterWarmup + FD_SLACK);
    const sortedA = attachMs.sort((a, b) => a - b);
    const sortedD = detachMs.sort((a, b) => a - b);
    const report: SoakReport = {
      cycles: done,
      clients: clientCount,
      errors,
      errorSamples,
      seconds: Math.round(seconds * 10) / 10,
      attachP50Ms: round(percentile(sortedA, 50)),
      attachP99Ms: round(percentile(sortedA, 99)),
      detachP50Ms: round(percentile(sortedD, 50)),
      detachP99Ms: round(percentile(sortedD, 99)),
      leakedLinks,
      leakedRoutes,
      leakedAddresses,
      leakedAllocations,
      dirtyPods: dirty,
      fdsAfterWarmup,
      fdsAtEnd: Math.min(fdsAtEnd.other, fdsSettled.other),
      fdKindsAtEnd: fdsAtEnd.kinds,
      hostNetlinkAtEnd: fdsSettled.hostNetlink,
      rssAfterWarmupKiB,
      rssAtEndKiB,
      rssMaxKiB: Math.max(rssAtEndKiB, ...measured),
      rssWithin10Percent: rssAtEndKiB <= rssAfterWarmupKiB * 1.1,
      leaked: false,
    };
    report.leaked =
      leakedLinks + leakedRoutes + leakedAddresses + leakedAllocations + dirty > 0 || report.fdsAtEnd > fdsAfterWarmup + FD_SLACK ||
      report.hostNetlinkAtEnd > DAEMON_HOST_NETLINK_MAX;
    return report;
  } finally {
    for (const c of clients) c.close();
    removePods(pods.map((p) => p.name));
    await h.cleanup();
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;
const mib = (kib: number): string => `${(kib / 1024).toFixed(1)} MiB`;

export function formatReport(r: SoakReport): string {
  const pct = ((r.rssAtEndKiB / r.rssAfterWarmupKiB - 1) * 100).toFixed(1);
  return [
    `soak: ${r.cycles} attach/detach cycles from ${r.clients} concurrent clients in ${r.seconds} s (${Math.round(r.cycles / r.seconds)} cycles/s)`,
    `  errors:             ${r.errors}${r.errorSamples.length ? ` (${r.errorSamples.join("; ")})` : ""}`,
    `  attach p50/p99:     ${r.attachP50Ms} / ${r.attachP99Ms} ms`,
    `  detach p50/p99:     ${r.detachP50Ms} / ${r.detachP99Ms} ms`,
    `  leaked links:       ${r.leakedLinks}`,
    `  leaked routes:      ${r.leakedRoutes}`,
    `  leaked addresses:   ${r.leakedAddresses}`,
    `  leaked allocations: ${r.leakedAllocations} (the prefix ${V4_PREFIX} filled ${V4_CAPACITY - r.leakedAllocations}/${V4_CAPACITY})`,
    `  dirty pods:         ${r.dirtyPods}`,
    `  daemon fds:         ${r.fdsAfterWarmup} after warm-up, ${r.fdsAtEnd} at the end, besides ${r.hostNetlinkAtEnd} host netlink sockets (at most ${DAEMON_HOST_NETLINK_MAX}) ${JSON.stringify(r.fdKindsAtEnd)}`,
    `  daemon RSS:         ${mib(r.rssAfterWarmupKiB)} after warm-up, ${mib(r.rssAtEndKiB)} at the end (${pct}%, highest ${mib(r.rssMaxKiB)}): ${r.rssWithin10Percent ? "within" : "NOT within"} 10 %`,
    `  verdict:            ${r.leaked ? "LEAK" : "no leak"}${r.errors ? `, ${r.errors} errors` : ""}`,
  ].join("\n");
}

function cyclesFromArgs(argv: string[]): number {
  const i = argv.indexOf("--cycles");
  const raw = i >= 0 ? argv[i + 1] : (argv.find((a) => a.startsWith("--cycles="))?.slice("--cycles=".length) ?? process.env.CYCLES);
  if (raw === undefined || raw === "") return 20_000;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) {
    process.stderr.write(`soak: --cycles must be a positive integer, got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  const cycles = cyclesFromArgs(process.argv.slice(2));
  const report = await runSoak({ cycles, progress: (line) => process.stderr.write(`soak: ${line}\n`) });
  process.stdout.write(formatReport(report) + "\n");
  process.exitCode = report.leaked || report.errors > 0 ? 1 : 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
