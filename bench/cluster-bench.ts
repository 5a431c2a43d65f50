// Cluster mode figures, in one run on the three-node test topology:
//   1. Attach latency of a daemon in Kubernetes mode (view from the API
//      stand-in, routes reconciled) against one in static mode, side by side,
//      rounds alternated, each call timed at the client.
//   2. Time from a Node change at the API (added, deleted) to the route in
//      the kernel of the node that follows it, read through our own netlink
//      dump in a tight loop.
// Usage: npm run bench:cluster [-- --pods N --rounds R --changes C]
import { performance } from "node:perf_hooks";
import { createNamespaces, removeNamespaces, assertSandbox } from "../test/sandbox.js";
import { ClusterHarness } from "../test/cluster-harness.js";
import { startKubeApiServer, type KubeApiStandIn } from "../test/kube-apiserver/server.js";
import { listRoutes } from "../src/netlink/route.js";
import type { Handle } from "../src/netlink/handle.js";
import { quantile } from "./bench-util.js";

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const fmt = (ms: number): string => ms.toFixed(3);

async function routePresent(h: Handle, dst: string, len: number): Promise<boolean> {
  return (await listRoutes(h)).some((r) => r.dst === dst && r.dstLen === len && r.protocol === 87);
}

/** Milliseconds from now until routePresent(...) === want, polling as fast as the dump allows. */
async function timeUntil(h: Handle, dst: string, len: number, want: boolean, t0: number): Promise<number> {
  for (;;) {
    if ((await routePresent(h, dst, len)) === want) return performance.now() - t0;
    if (performance.now() - t0 > 10_000) throw new Error(`route ${dst}/${len} not ${want ? "added" : "removed"} within 10 s`);
  }
}

async function main(): Promise<void> {
  assertSandbox();
  const pods = option("pods", 50);
  const rounds = option("rounds", 6);
  const changes = option("changes", 20);
  let api: KubeApiStandIn | undefined;
  const c = await ClusterHarness.startWith(
    (_h, n) =>
      n.name === "n1"
        ? ["--kubeconfig", api!.kubeconfigFile(), "--node-name", "n1", "--routing", "auto", "--mtu", "1450", "--log-level", "warn"]
        : ["--ipv4-prefix", n.prefixes.v4, "--ipv6-prefix", n.prefixes.v6, "--mtu", "1450", "--log-level", "warn"],
    0,
    async (h) => {
      const lan = h.joinLan();
      api = await startKubeApiServer({ host: lan.v4 });
      for (const n of h.topo.nodes) api.nodes.add({ name: n.name, internalIPs: [n.address.v4, n.address.v6], podCIDRs: [n.prefixes.v4, n.prefixes.v6] });
    },
  );
  const namespaces = createNamespaces(pods * 2, "cb");
  try {
    const modes = [
      { name: "kubernetes", daemon: c.daemon("n1"), ms: [] as number[] },
      { name: "static", daemon: c.daemon("n2"), ms: [] as number[] },
    ];
    // One untimed round each, as a long-running daemon is warm.
    for (let round = -1; round < rounds; round++) {
      const order = round % 2 === 0 ? modes : [...modes].reverse();
      for (const [m, mode] of order.entries()) {
        const client = mode.daemon.client;
        const ids: string[] = [];
        for (let i = 0; i < pods; i++) {
          const id = `cb-${round}-${i}`;
          const ns = namespaces[m * pods + i]!;
          const t0 = performance.now();
          await client.attach({ workloadId: id, netns: { netnsPath: ns.path, ifName: "eth0" } });
          if (round >= 0) mode.ms.push(performance.now() - t0);
          ids.push(id);
        }
        for (const id of ids) await client.detach({ workloadId: id });
      }
    }
    console.log(`Attach, ${pods} pods x ${rounds} rounds per mode, sequential, rounds alternated (client-side ms):`);
    for (const m of modes) console.log(`  ${m.name.padEnd(10)} p50 ${fmt(quantile(m.ms, 0.5))}  p90 ${fmt(quantile(m.ms, 0.9))}  p99 ${fmt(quantile(m.ms, 0.99))}`);

    const h = c.topo.handle("n1");
    const added: number[] = [];
    const removed: number[] = [];
    for (let i = 0; i < changes; i++) {
      const name = `bench-${i}`;
      const dst = `10.80.${i}.0`;
      let t0 = performance.now();
      api!.nodes.add({ name, internalIPs: [`192.0.2.${100 + i}`], podCIDRs: [`${dst}/24`] });
      added.push(await timeUntil(h, dst, 24, true, t0));
      t0 = performance.now();
      api!.nodes.delete(name);
      removed.push(await timeUntil(h, dst, 24, false, t0));
    }
    console.log(`Node change at the API to the route in the kernel, ${changes} nodes (ms):`);
    console.log(`  added      p50 ${fmt(quantile(added, 0.5))}  max ${fmt(Math.max(...added))}`);
    console.log(`  deleted    p50 ${fmt(quantile(removed, 0.5))}  max ${fmt(Math.max(...removed))}`);
  } finally {
    removeNamespaces(namespaces.map((n) => n.name));
    await c.close();
    await api?.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
