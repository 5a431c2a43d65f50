// Routes to other nodes at scale: reconcile time and this process's memory
// with N other nodes (default 1000) in the view, in direct and in VXLAN mode:
// the first apply, a no-op re-apply, one node changed, a restart (a new
// instance adopting the kernel's state). Baseline in the same run: iproute2's
// `ip -batch` installing the same routes (and, for VXLAN, the same FDB and
// neighbour entries) into a fresh namespace. Runs inside the sandbox
// (npm run bench:routes); prints figures, asserts nothing.
//
//   node dist/bench/cluster-routes-bench.js [--n 1000]     (or N=1000)
import { execFileSync } from "node:child_process";
import { Handle } from "../src/netlink/handle.js";
import { NetnsFd } from "../src/netns/namespace.js";
import { buildView, type ClusterView, type RawNode } from "../src/cluster/view.js";
import { NodeRoutes, type ReconcileResult } from "../src/cluster/routes/node-routes.js";
import { vtepMac } from "../src/cluster/routes/vtep.js";
import type { RoutingMode } from "../src/cluster/routes/wanted.js";
import { assertSandbox, createNamespace, type PodNamespace } from "../test/sandbox.js";
import { ipBatch } from "../test/cluster-topology.js";

function parseN(): number {
  const argv = process.argv.slice(2);
  let raw: string | undefined = process.env.N;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--n") raw = argv[++i];
    else if (argv[i]!.startsWith("--n=")) raw = argv[i]!.slice(4);
  }
  const n = raw === undefined ? 1000 : Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 60_000) throw new Error(`--n must be an integer from 1 to 60000, not ${raw}`);
  return n;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const mib = (b: number): string => (b / 1048576).toFixed(1);

/** Node i (0-based): on the shared LAN 10.200.0.0/16 (direct) or behind the router (198.18.0.0/15, VXLAN). */
function nodes(n: number, mode: RoutingMode, prefixShift = 0): RawNode[] {
  return Array.from({ length: n }, (_, i) => {
    const j = i + 2;
    // Direct: both families on the LAN. VXLAN: IPv4 only (one IPv4 underlay carries both families).
    const addresses = mode === "direct" ? [`10.200.${j >> 8}.${j & 255}`, `2001:db8:200::${j.toString(16)}`] : [`198.18.${j >> 8}.${j & 255}`];
    const k = i + prefixShift;
    return { name: `node-${i}`, addresses, prefixes: [`10.${64 + (k >> 8)}.${k & 255}.0/24`, `fd00:70:${k.toString(16)}::/64`] };
  });
}

function view(raw: RawNode[]): ClusterView {
  return buildView({ nodeName: "self", prefixes: ["10.63.255.0/24", "fd00:70:ffff::/64"], addresses: ["10.200.0.1"], nodes: raw });
}

/** A namespace with a LAN link (10.200.0.1/16, a default route via 10.200.0.254). */
function hostNamespace(): { ns: PodNamespace; fd: NetnsFd; h: Handle } {
  const ns = createNamespace("rb");
  ipBatch(ns.name, [
    "link set lo up",
    "link add eth0 type veth peer name eth0p",
    "link set eth0p up",
    "link set eth0 up",
    "addr add 10.200.0.1/16 dev eth0",
    "addr add 2001:db8:200::1/64 dev eth0 nodad",
    "route add default via 10.200.0.254",
  ]);
  const fd = NetnsFd.open(ns.path);
  return { ns, fd, h: Handle.inNamespace(fd.fd, ns.path) };
}

function memory(): { rss: number; heap: number } {
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

async function timed(what: string, f: () => Promise<ReconcileResult>): Promise<ReconcileResult> {
  const t0 = now();
  const r = await f();
  const ms = now() - t0;
  const m = memory();
  const c = r.changes;
  const errors = r.nodes.filter((s) => s.state === "error").length;
  console.log(
    `  ${what.padEnd(34)} ${ms.toFixed(1).padStart(8)} ms   changes +${c.added} ~${c.updated} -${c.removed}` +
      `   rss ${mib(m.rss)} MiB heap ${mib(m.heap)} MiB${errors ? `   ${errors} node errors: ${r.nodes.find((s) => s.error)?.error}` : ""}`,
  );
  return r;
}

/** The same kernel work by `ip -batch` / `bridge -batch`, into a fresh namespace. */
function baseline(raw: RawNode[], mode: "direct" | "vxlan"): number {
  const { ns, fd, h } = hostNamespace();
  try {
    const ipLines: string[] = [];
    const bridgeLines: string[] = [];
    if (mode === "vxlan") ipLines.push("link add wnvx0 type vxlan id 1 local 10.200.0.1 dstport 4789 nolearning", "link set wnvx0 up");
    for (const n of raw) {
      const addr = n.addresses[0]!;
      const [p4, p6] = [n.prefixes[0]!, n.prefixes[1]!];
      if (mode === "direct") {
        ipLines.push(`route replace ${p4} via ${addr} proto 87`, `route replace ${p6} via ${n.addresses[1]!} proto 87`);
      } else {
        const mac = vtepMac(addr);
        const [h4, h6] = [p4.split("/")[0]!, p6.split("/")[0]!];
        bridgeLines.push(`fdb replace ${mac} dev wnvx0 dst ${addr} self permanent`);
        ipLines.push(`neigh replace ${h4} lladdr ${mac} dev wnvx0 nud permanent`, `neigh replace ${h6} lladdr ${mac} dev wnvx0 nud permanent`);
        ipLines.push(`route replace ${p4} via ${h4} dev wnvx0 onlink proto 87`, `route replace ${p6} via ${h6} dev wnvx0 onlink proto 87`);
      }
    }
    const t0 = now();
    if (mode === "vxlan") ipBatch(ns.name, ipLines.slice(0, 2));
    if (bridgeLines.length) execFileSync("ip", ["netns", "exec", ns.name, "bridge", "-batch", "-"], { input: bridgeLines.join("\n") + "\n" });
    ipBatch(ns.name, mode === "vxlan" ? ipLines.slice(2) : ipLines);
    return now() - t0;
  } finally {
    void h.close();
    fd.close();
    ns.remove();
  }
}

async function run(n: number, mode: "direct" | "vxlan"): Promise<void> {
  const raw = nodes(n, mode);
  console.log(`\n${mode}: ${n} other nodes (${mode === "direct" ? "two routes each" : "an FDB entry, two neighbours and two routes each"})`);
  const tv = now();
  view(raw);
  console.log(`  ${"(building the view: buildView)".padEnd(34)} ${(now() - tv).toFixed(1).padStart(8)} ms`);
  const base = baseline(raw, mode);
  console.log(`  ${"baseline: ip -batch, same entries".padEnd(34)} ${base.toFixed(1).padStart(8)} ms`);
  const { ns, fd, h } = hostNamespace();
  try {
    const before = memory();
    console.log(`  ${"memory before".padEnd(34)} ${"".padStart(8)}      rss ${mib(before.rss)} MiB heap ${mib(before.heap)} MiB`);
    const v = view(raw);
    const r = new NodeRoutes({ handle: h, mode });
    await timed("first apply", () => r.apply(v));
    await timed("re-apply, nothing changed", () => r.apply(v));
    const changed = view(raw.map((x, i) => (i === 0 ? { ...x, prefixes: ["10.63.0.0/24", "fd00:70:fffe::/64"] } : x)));
    await timed("one node's prefixes changed", () => r.apply(changed));
    await timed("restart: a new instance adopts", () => new NodeRoutes({ handle: h, mode }).apply(changed));
    const t0 = now();
    const fewer = view(raw.slice(1));
    console.log(`  ${"(building that view: buildView)".padEnd(34)} ${(now() - t0).toFixed(1).padStart(8)} ms`);
    await timed("one node removed", () => r.apply(fewer));
    await timed("mode none: all removed", () => new NodeRoutes({ handle: h, mode: "none" }).apply(changed));
  } finally {
    await h.close();
    fd.close();
    ns.remove();
  }
}

async function main(): Promise<void> {
  assertSandbox();
  const n = parseN();
  console.log(`cluster routes bench: Node ${process.version}, ${n} nodes`);
  await run(n, "direct");
  await run(n, "vxlan");
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
