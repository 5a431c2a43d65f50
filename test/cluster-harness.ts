// A cluster of real daemons for end-to-end tests: the routing tests'
// topology (cluster-topology.ts: n1 and n2 on one subnet, n3 behind a router),
// with a real workloadnetd in each node namespace and pods attached by it.
// Each node's cluster view comes from its own prefix file (the cluster form),
// which tests rewrite to add, remove or readdress nodes, or from a Kubernetes
// API (the stand-in, reached over the LAN from this process's namespace).
import { rmSync } from "node:fs";
import { spawn } from "node:child_process";
import { buildClusterTopology, type ClusterTopology, type TopologyNode } from "./cluster-topology.js";
import { DaemonHarness, ipFromBytes, writeFileAtomic } from "./daemon-harness.js";
import { execIn, ip, ipJson, type IpRoute, type PodNamespace } from "./sandbox.js";

export interface ClusterPod {
  node: string;
  ns: PodNamespace;
  v4: string;
  v6: string;
}

/** One node's entry in another node's file (as the cluster form writes it). */
export interface FileNode {
  name: string;
  addresses: string[];
  prefixes: string[];
}

export class ClusterHarness {
  readonly daemons = new Map<string, DaemonHarness>();
  readonly pods: ClusterPod[] = [];
  private readonly files = new Map<string, string>();

  private constructor(readonly topo: ClusterTopology) {}

  /** Builds the topology and starts one daemon per node with `args` (besides --prefix-file). */
  static async start(args: string[] = [], podsPerNode = 1): Promise<ClusterHarness> {
    return ClusterHarness.startWith((c, n) => {
      const file = `/run/workloadnet/${n.ns.name}-view.json`;
      c.files.set(n.name, file);
      c.writeView(n.name);
      return ["--prefix-file", file, ...args];
    }, podsPerNode);
  }

  /** Builds the topology and starts one daemon per node with the flags argsFor gives (called in node order). */
  static async startWith(argsFor: (c: ClusterHarness, n: TopologyNode) => string[], podsPerNode = 1, beforeDaemons?: (c: ClusterHarness) => Promise<void>): Promise<ClusterHarness> {
    const topo = buildClusterTopology({ podsPerNode: 0, prefix: "cl" });
    const c = new ClusterHarness(topo);
    try {
      await beforeDaemons?.(c);
      for (const n of topo.nodes) {
        c.daemons.set(n.name, await DaemonHarness.start({ hostNs: n.ns.name, args: argsFor(c, n) }));
      }
      for (const n of topo.nodes) {
        for (let i = 0; i < podsPerNode; i++) await c.attach(n.name, `${n.name}-pod${i}`);
      }
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  node(name: string): TopologyNode {
    return this.topo.node(name);
  }

  daemon(name: string): DaemonHarness {
    const d = this.daemons.get(name);
    if (d === undefined) throw new Error(`no daemon on ${name}`);
    return d;
  }

  file(name: string): string {
    return this.files.get(name)!;
  }

  /** Every other node as the file lists it by default. */
  othersOf(name: string): FileNode[] {
    return this.topo.nodes
      .filter((n) => n.name !== name)
      .map((n) => ({ name: n.name, addresses: [n.address.v4, n.address.v6], prefixes: [n.prefixes.v4, n.prefixes.v6] }));
  }

  /** Writes node `name`'s view file (atomically); `edit` changes the list of other nodes. */
  writeView(name: string, edit?: (others: FileNode[]) => FileNode[]): void {
    const n = this.node(name);
    const others = this.othersOf(name);
    writeFileAtomic(
      this.file(name),
      JSON.stringify({ name, ipv4: n.prefixes.v4, ipv6: n.prefixes.v6, addresses: [n.address.v4, n.address.v6], nodes: edit ? edit(others) : others }, null, 1),
    );
  }

  /** Attaches a fresh pod on a node through its daemon. */
  async attach(node: string, id: string): Promise<ClusterPod> {
    const d = this.daemon(node);
    const ns = d.pod("clp");
    const res = await d.client.attach({ workloadId: id, netns: { netnsPath: ns.path, ifName: "eth0" } });
    const ips = res.ip.map(ipFromBytes);
    const pod = { node, ns, v4: ips.find((a) => a.includes("."))!, v6: ips.find((a) => a.includes(":"))! };
    this.pods.push(pod);
    return pod;
  }

  /** Routes of ours (proto 87, the routing's protocol) in a node's main table, both families. */
  ourRoutes(node: string): IpRoute[] {
    const ns = this.node(node).ns.name;
    return [...ipJson<IpRoute[]>(["-4", "route", "show", "proto", "87"], ns), ...ipJson<IpRoute[]>(["-6", "route", "show", "proto", "87"], ns)];
  }

  /**
   * Puts this process's namespace on the LAN (subnet A) at 192.0.2.200 and
   * 2001:db8:a::200, with routes to subnet B through the router, so a server
   * here (the API stand-in) is reachable from every node. Undone by close().
   */
  joinLan(): { v4: string; v6: string } {
    const link = `cl-${this.topo.lan.name.slice(-8)}`;
    ip(["link", "add", link, "type", "veth", "peer", "name", "up0", "netns", this.topo.lan.name]);
    this.cleanups.push(() => {
      try {
        ip(["link", "del", link]);
      } catch {
        // gone with the LAN namespace
      }
    });
    ip(["link", "set", "up0", "master", "br0", "up"], this.topo.lan.name);
    ip(["addr", "add", "192.0.2.200/24", "dev", link]);
    ip(["addr", "add", "2001:db8:a::200/64", "dev", link, "nodad"]);
    ip(["link", "set", link, "up"]);
    ip(["route", "add", "198.51.100.0/24", "via", "192.0.2.1"]);
    ip(["-6", "route", "add", "2001:db8:b::/64", "via", "2001:db8:a::1"]);
    return { v4: "192.0.2.200", v6: "2001:db8:a::200" };
  }

  private readonly cleanups: (() => void | Promise<void>)[] = [];

  async close(): Promise<void> {
    for (const d of this.daemons.values()) await d.cleanup().catch(() => undefined);
    for (const f of this.files.values()) rmSync(f, { force: true });
    for (const c of this.cleanups.splice(0).reverse()) await c();
    await this.topo.close();
  }
}

/** Polls until check() holds; returns the milliseconds it took, or throws after timeoutMs. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000, startedAt = performance.now()): Promise<number> {
  const deadline = startedAt + timeoutMs;
  for (;;) {
    if (await check()) return performance.now() - startedAt;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A TCP connection from one pod to another: the far end (a listener in the
 * target pod) answers with the peer address it sees. Resolves with that address.
 */
export async function tcpPeerSeenBy(from: PodNamespace, to: PodNamespace, address: string, port: number): Promise<string> {
  const server = `const s=require("net").createServer(c=>{c.end(c.remoteAddress+"\\n");s.close()});s.listen(${port},"${address}",()=>console.log("listening"));setTimeout(()=>process.exit(3),8000).unref()`;
  const child = spawn("ip", ["netns", "exec", to.name, process.execPath, "-e", server], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    await new Promise<void>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("listening")) resolve();
      });
      child.on("close", (code) => reject(new Error(`listener in ${to.name} exited (${code}) before listening`)));
    });
    const client = `const c=require("net").connect(${port},"${address}");let d="";c.on("data",x=>d+=x);c.on("end",()=>{process.stdout.write(d)});c.on("error",e=>{console.error(e.message);process.exit(1)});setTimeout(()=>process.exit(4),5000).unref()`;
    const r = await execIn(from.name, [process.execPath, "-e", client]);
    if (r.code !== 0) throw new Error(`TCP ${from.name} -> [${address}]:${port} failed (${r.code}): ${r.stderr}`);
    return r.stdout.trim();
  } finally {
    child.kill();
  }
}

/** Pings at an interval for a while; resolves with packets sent and answered. */
export async function pingRun(from: PodNamespace, address: string, count: number, intervalS: number): Promise<{ sent: number; received: number }> {
  const r = await execIn(from.name, ["ping", "-n", "-q", "-i", String(intervalS), "-c", String(count), "-W", "1", address], (count * intervalS + 10) * 1000);
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(r.stdout);
  if (!m) throw new Error(`ping output not understood: ${r.stdout} ${r.stderr}`);
  return { sent: Number(m[1]), received: Number(m[2]) };
}
