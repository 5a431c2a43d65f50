// The daemon's service in this process, without gRPC, client or log: what an
// Attach and a Detach cost the daemon itself, with less noise than the
// end-to-end bench (npm run bench), so that a change inside the daemon can be
// compared run against run. Runs inside the sandbox (npm run bench:service).
// Prints figures; asserts nothing. Everything it makes lives in namespaces it
// creates, removed at the end.
//
//   node dist/bench/service-bench.js [--n 100] [--concurrency 16] [--rounds 3] [--veth-queues 1] [--ports 0]
//
// --ports P: each round also attaches and detaches the N pods one by one with
// P published ports each (one nftables transaction per Attach and Detach),
// right after the plain ones, so the added cost shows next to its baseline.
//
// Per round: N sequential attaches (latency of each), N sequential detaches,
// then N attaches and N detaches with C concurrent callers (pods/s). CPU is
// this process's (all threads, kernel time included), per operation.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { startDaemon } from "../src/daemon/daemon.js";
import { DEFAULT_VETH_QUEUES } from "../src/cli/config.js";
import { parsePrefix } from "../src/ipam/prefix.js";
import { assertSandbox, createNamespaces, removeNamespaces } from "../test/sandbox.js";
import { ensureDaemonPoolSize, fmtMs, fmtRate, nowMs, pool, printTable, quantile } from "./bench-util.js";

interface Options {
  n: number;
  concurrency: number;
  rounds: number;
  /** Queues of each veth end; e.g. the CPU count to see what the kernel's default costs. */
  vethQueues: number;
  /** Published ports per pod in the extra sequential pass (0: no such pass). */
  ports: number;
}

function parseOptions(argv: string[]): Options {
  const o: Options = { n: 100, concurrency: 16, rounds: 3, vethQueues: DEFAULT_VETH_QUEUES, ports: 0 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split("=", 2) as [string, string | undefined];
    const value = Number(inline ?? argv[++i]);
    const key = ({ "--n": "n", "--concurrency": "concurrency", "--rounds": "rounds", "--veth-queues": "vethQueues", "--ports": "ports" } as const)[flag as "--n"];
    if (key === undefined) throw new Error(`unknown argument ${argv[i]} (--n, --concurrency, --rounds, --veth-queues, --ports)`);
    if (!Number.isInteger(value) || value < ((key as string) === "ports" ? 0 : 1) || value > 5000) throw new Error(`${flag} must be an integer from 1 to 5000`);
    o[key] = value;
  }
  return o;
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function main(): Promise<void> {
  if (!ensureDaemonPoolSize()) return;
  assertSandbox();
  const opts = parseOptions(process.argv.slice(2));
  const { n, concurrency: C } = opts;
  const pods = createNamespaces(n, "sb");
  const dir = mkdtempSync(path.join(tmpdir(), "service-bench-"));
  const daemon = await startDaemon({
    socketPath: path.join(dir, "wl.sock"),
    prefixes: { v4: parsePrefix("10.93.0.0/16"), v6: parsePrefix("fd00:93::/64") },
    mtu: 1500,
    linkGroup: 0x5b,
    vethQueues: opts.vethQueues,
    log: pino({ level: "warn" }),
  });
  const svc = daemon.service;
  const ids = (round: number, kind: string): string[] => pods.map((_, i) => `sb-${round}-${kind}-${i}`);
  const attach = (id: string, i: number, ports = 0): Promise<unknown> => {
    const portMappings = Array.from({ length: ports }, (_, k) => ({ hostPort: 10000 + i * ports + k, containerPort: 80 + k, protocol: "tcp" }));
    return svc.attach({ workloadId: id, netns: { netnsPath: pods[i]!.path, ifName: "eth0" }, ...(ports > 0 ? { portMappings } : {}) });
  };
  const detach = (id: string): Promise<void> => svc.detach({ workloadId: id, netns: undefined });
  const seqAttach: number[] = [];
  const seqDetach: number[] = [];
  const portAttach: number[] = [];
  const portDetach: number[] = [];
  const cpu = { attach: 0, detach: 0 };
  const rates = { attach: [] as number[], detach: [] as number[] };
  try {
    // Warm: one untimed round, as a long-running daemon is.
    const warm = ids(-1, "w");
    await pool(n, C, (i) => attach(warm[i]!, i).then(() => undefined));
    await pool(n, C, (i) => detach(warm[i]!));
    for (let round = 0; round < opts.rounds; round++) {
      const seq = ids(round, "s");
      let c0 = cpuMs();
      for (let i = 0; i < n; i++) {
        const t0 = nowMs();
        await attach(seq[i]!, i);
        seqAttach.push(nowMs() - t0);
      }
      cpu.attach += cpuMs() - c0;
      c0 = cpuMs();
      for (let i = 0; i < n; i++) {
        const t0 = nowMs();
        await detach(seq[i]!);
        seqDetach.push(nowMs() - t0);
      }
      cpu.detach += cpuMs() - c0;
      if (opts.ports > 0) {
        const withPorts = ids(round, "p");
        for (let i = 0; i < n; i++) {
          const t0 = nowMs();
          await attach(withPorts[i]!, i, opts.ports);
          portAttach.push(nowMs() - t0);
        }
        for (let i = 0; i < n; i++) {
          const t0 = nowMs();
          await detach(withPorts[i]!);
          portDetach.push(nowMs() - t0);
        }
      }
      const conc = ids(round, "c");
      rates.attach.push(n / ((await pool(n, C, (i) => attach(conc[i]!, i).then(() => undefined))) / 1000));
      rates.detach.push(n / ((await pool(n, C, (i) => detach(conc[i]!))) / 1000));
    }
  } finally {
    await daemon.close();
    removeNamespaces(pods.map((p) => p.name));
    rmSync(dir, { recursive: true, force: true });
  }
  const ops = n * opts.rounds;
  console.log(`service bench: the daemon's service in one process, no gRPC; ${n} pods, ${opts.rounds} rounds, ${C} concurrent callers, libuv pool ${process.env.UV_THREADPOOL_SIZE}`);
  printTable(
    ["", "p50", "p90", "p99", "cpu/op", `@${C} (median)`],
    [
      ["attach", fmtMs(quantile(seqAttach, 0.5)), fmtMs(quantile(seqAttach, 0.9)), fmtMs(quantile(seqAttach, 0.99)), fmtMs(cpu.attach / ops), fmtRate(quantile(rates.attach, 0.5))],
      ["detach", fmtMs(quantile(seqDetach, 0.5)), fmtMs(quantile(seqDetach, 0.9)), fmtMs(quantile(seqDetach, 0.99)), fmtMs(cpu.detach / ops), fmtRate(quantile(rates.detach, 0.5))],
      ...(opts.ports > 0
        ? [
            [`attach, ${opts.ports} ports`, fmtMs(quantile(portAttach, 0.5)), fmtMs(quantile(portAttach, 0.9)), fmtMs(quantile(portAttach, 0.99)), "", ""],
            [`detach, ${opts.ports} ports`, fmtMs(quantile(portDetach, 0.5)), fmtMs(quantile(portDetach, 0.9)), fmtMs(quantile(portDetach, 0.99)), "", ""],
          ]
        : []),
    ],
  );
  if (opts.ports > 0) {
    const added = (a: number[], b: number[]): string => fmtMs(quantile(a, 0.5) - quantile(b, 0.5));
    console.log(`  ${opts.ports} published ports add to the p50: attach ${added(portAttach, seqAttach)}, detach ${added(portDetach, seqDetach)} (one nftables transaction each, plus the conntrack flush on detach)`);
  }
  console.log(`  @${C} per round: attach ${rates.attach.map(fmtRate).join(", ")}; detach ${rates.detach.map(fmtRate).join(", ")}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
