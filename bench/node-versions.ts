// The daemon on the project's Node.js against an older one, in one run:
// bench.ts's (b) workload and RSS phase, the two Node.js binaries in
// alternation (new, old, new, old, …), since the shared machine's speed
// drifts within minutes; each figure printed as the range over the rounds.
//
//   node dist/bench/node-versions.js [--old-node PATH] [--rounds K] [--n N] [--rss-count M]
//
// --old-node defaults to the first `node` on the machine's own PATH
// (/usr/local/bin, /usr/bin) when it is older than the one running this.
// Inside the sandbox (npm run bench:node).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { assertSandbox } from "../test/sandbox.js";
import { printTable } from "./bench-util.js";

interface Row {
  label: string;
  attachP50: number;
  attachP99: number;
  detachP50: number;
  attachRate: number;
  detachRate: number;
  cpuAttach: number;
  cpuDetach: number;
}
interface RunFigures {
  daemonNodeVersion: string;
  rows: Row[];
  rss: { startKiB: number; withKiB: number; afterKiB: number; count: number } | null;
}

const BENCH = fileURLToPath(new URL("./bench.js", import.meta.url));

function options(argv: string[]): { oldNode: string | undefined; rounds: number; n: number; rssCount: number } {
  const o = { oldNode: undefined as string | undefined, rounds: 3, n: 100, rssCount: 1000 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split("=", 2) as [string, string | undefined];
    const value = (): string => inline ?? argv[++i] ?? "";
    if (flag === "--old-node") o.oldNode = value();
    else if (flag === "--rounds") o.rounds = Number(value());
    else if (flag === "--n") o.n = Number(value());
    else if (flag === "--rss-count") o.rssCount = Number(value());
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new Error("--rounds must be a positive integer");
  return o;
}

const major = (v: string): number => Number(/^v([0-9]+)\./.exec(v)?.[1] ?? NaN);

function versionOf(node: string): string {
  return spawnSync(node, ["-p", "process.version"], { encoding: "utf8" }).stdout.trim();
}

function findOldNode(): string | undefined {
  for (const p of ["/usr/local/bin/node", "/usr/bin/node"]) {
    if (existsSync(p) && major(versionOf(p)) < major(process.version)) return p;
  }
  return undefined;
}

function runBench(node: string, tmp: string, round: number, o: { n: number; rssCount: number }): RunFigures {
  const json = path.join(tmp, `round-${round}-${path.basename(path.dirname(path.dirname(node)))}.json`);
  const args = [BENCH, "--only", "b,rss", "--pairs", "1", "--n", String(o.n), "--rss-count", String(o.rssCount), "--daemon-node", node, "--json", json];
  const r = spawnSync(process.execPath, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 << 20 });
  if (r.status !== 0 || !existsSync(json)) throw new Error(`bench on ${node} failed (exit ${r.status}):\n${r.stdout.slice(-3000)}`);
  return JSON.parse(readFileSync(json, "utf8")) as RunFigures;
}

const range = (xs: number[], fmt: (x: number) => string): string => {
  const ok = xs.filter((x) => Number.isFinite(x));
  if (ok.length === 0) return "—";
  const lo = Math.min(...ok);
  const hi = Math.max(...ok);
  return lo === hi ? fmt(lo) : `${fmt(lo)}–${fmt(hi)}`;
};
const ms = (x: number): string => `${x.toFixed(2)} ms`;
const rate = (x: number): string => `${Math.round(x)}/s`;
const mib = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`;

function main(): void {
  assertSandbox();
  const o = options(process.argv.slice(2));
  const newNode = process.execPath;
  const oldNode = o.oldNode ?? findOldNode();
  if (oldNode === undefined) {
    console.log(`no Node.js older than ${process.version} found (/usr/local/bin/node, /usr/bin/node); pass --old-node PATH`);
    return;
  }
  const nodes = [newNode, oldNode];
  const versions = nodes.map(versionOf);
  const load = loadavg()[0]!;
  const tmp = mkdtempSync(path.join(tmpdir(), "workloadnet-node-versions-"));
  const runs: RunFigures[][] = [[], []];
  try {
    for (let round = 0; round < o.rounds; round++) {
      // Alternate, and swap who goes first each round.
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const i of order) {
        process.stderr.write(`[node-versions] round ${round + 1} of ${o.rounds}: daemon on ${versions[i]}\n`);
        runs[i]!.push(runBench(nodes[i]!, tmp, round, o));
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }

  console.log("");
  console.log(`workloadnetd on two Node.js versions, ${o.rounds} rounds in alternation (bench.ts --only b,rss, N=${o.n}); ranges over the rounds`);
  console.log(`  load average ${load.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end; the machine is shared, so compare ranges, not single figures`);
  const label = "(b) workloadnetd, gRPC";
  const pick = (i: number, f: (r: Row) => number): number[] => runs[i]!.map((run) => run.rows.find((r) => r.label === label)).filter((r): r is Row => r !== undefined).map(f);
  const rss = (i: number, f: (r: NonNullable<RunFigures["rss"]>) => number): number[] => runs[i]!.map((run) => (run.rss ? f(run.rss) : NaN));
  const rows = [0, 1].map((i) => [
    `${versions[i]}${i === 0 ? " (the project's)" : ""}`,
    range(pick(i, (r) => r.attachP50), ms),
    range(pick(i, (r) => r.attachP99), ms),
    range(pick(i, (r) => r.detachP50), ms),
    range(pick(i, (r) => r.attachRate), rate),
    range(pick(i, (r) => r.detachRate), rate),
    range(pick(i, (r) => r.cpuAttach), ms),
    range(rss(i, (r) => r.startKiB), mib),
    range(rss(i, (r) => r.withKiB), mib),
  ]);
  printTable(["daemon on", "attach p50", "attach p99", "detach p50", "attach/s @16", "detach/s @16", "cpu/attach", "RSS at start", `RSS, ${o.rssCount} attached`], rows);
}

main();
