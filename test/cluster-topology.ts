// A small cluster inside the sandbox, for routing tests: "node" namespaces
// with "pod" namespaces behind them, made with iproute2.
//
//        lan (a bridge)                        subnet A: 192.0.2.0/24, 2001:db8:a::/64
//     /      |       \
//   n1 .11  n2 .12   router .1 ---- n3 .13     subnet B: 198.51.100.0/24, 2001:db8:b::/64
//
// n1 and n2 share subnet A (on-link to each other); n3 sits behind the router
// on subnet B, reached from A only through it (the default route of each node
// points at the router). Node k's pod prefixes are 10.70.k.0/24 and
// fd70:k::/64; each pod is wired as workloadnetd wires one (a /32 and /128 on
// eth0, a default route via 169.254.77.1 / fe80::1, permanent neighbours both
// ways, a host route per address on the node), so the tests exercise routing
// between nodes alone. Routes between nodes are the caller's business.
import { spawn } from "node:child_process";
import { execFileSync } from "node:child_process";
import { NetnsFd } from "../src/netns/namespace.js";
import { Handle } from "../src/netlink/handle.js";
import { buildView, type ClusterView, type RawNode } from "../src/cluster/view.js";
import { createNamespaces, execIn, ip, ipJson, removeNamespaces, type PodNamespace } from "./sandbox.js";

export interface TopologyPod {
  /** "n1-p0". */
  name: string;
  ns: PodNamespace;
  v4: string;
  v6: string;
}

export interface TopologyNode {
  /** "n1", "n2", "n3". */
  name: string;
  ns: PodNamespace;
  /** The node's underlay addresses. */
  address: { v4: string; v6: string };
  /** Its pod prefixes. */
  prefixes: { v4: string; v6: string };
  pods: TopologyPod[];
  /** The subnet it sits on ("A" shares the router's LAN; "B" is behind the router). */
  subnet: "A" | "B";
}

export interface ClusterTopology {
  nodes: TopologyNode[];
  router: PodNamespace;
  lan: PodNamespace;
  node(name: string): TopologyNode;
  /** The view node `name` would get from a source listing every node (addresses and prefixes as built). */
  viewFor(name: string, edit?: (others: RawNode[]) => RawNode[]): ClusterView;
  /** A netlink handle in the node's namespace (opened once, closed by close()). */
  handle(name: string): Handle;
  /** Removes every namespace (and with them every link). */
  close(): Promise<void>;
}

export interface TopologyOptions {
  /** Pods per node (default 1). */
  podsPerNode?: number;
  /** Node namespaces on subnet A (default 2; the router's LAN). */
  nodesOnA?: number;
  /** Node namespaces on subnet B, behind the router (default 1). */
  nodesOnB?: number;
  /** MTU of the underlay links (default 1500). */
  mtu?: number;
  /** Namespace name prefix (default "ct"). */
  prefix?: string;
}

/** Runs `ip -batch` lines in a namespace, one process for many commands. */
export function ipBatch(ns: string, lines: string[]): void {
  if (lines.length === 0) return;
  execFileSync("ip", ["-n", ns, "-batch", "-"], { input: lines.join("\n") + "\n", stdio: ["pipe", "ignore", "pipe"] });
}

function sysctl(ns: string, settings: string[]): void {
  execFileSync("ip", ["netns", "exec", ns, "sysctl", "-q", "-w", ...settings], { stdio: ["ignore", "ignore", "pipe"] });
}

export function buildClusterTopology(opts: TopologyOptions = {}): ClusterTopology {
  const podsPerNode = opts.podsPerNode ?? 1;
  const onA = opts.nodesOnA ?? 2;
  const onB = opts.nodesOnB ?? 1;
  const mtu = opts.mtu ?? 1500;
  const p = opts.prefix ?? "ct";
  const total = onA + onB;
  const made = createNamespaces(2 + total * (1 + podsPerNode), p);
  const names = made.map((n) => n.name);
  try {
    const [lan, router] = [made[0]!, made[1]!];
    const nodes: TopologyNode[] = [];
    for (let k = 1; k <= total; k++) {
      const subnet = k <= onA ? "A" : "B";
      const host = subnet === "A" ? `192.0.2.${10 + k}` : `198.51.100.${10 + k}`;
      const host6 = subnet === "A" ? `2001:db8:a::${10 + k}` : `2001:db8:b::${10 + k}`;
      const base = 2 + (k - 1) * (1 + podsPerNode);
      const pods: TopologyPod[] = [];
      for (let i = 0; i < podsPerNode; i++) {
        pods.push({ name: `n${k}-p${i}`, ns: made[base + 1 + i]!, v4: `10.70.${k}.${10 + i}`, v6: `fd70:${k}::${(10 + i).toString(16)}` });
      }
      nodes.push({ name: `n${k}`, ns: made[base]!, address: { v4: host, v6: host6 }, prefixes: { v4: `10.70.${k}.0/24`, v6: `fd70:${k}::/64` }, pods, subnet });
    }

    // The LAN: a bridge in its own namespace; the router's and subnet A's nodes' eth0 are its ports.
    ipBatch(lan.name, ["link set lo up", "link add br0 type bridge", "link set br0 up"]);
    // Nothing here waits for DAD or router advertisements.
    const quiet = ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.default.accept_ra=0"];
    sysctl(router.name, [...quiet, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
    ipBatch(lan.name, [`link add rt type veth peer name eth0 netns ${router.name}`, `link set rt mtu ${mtu} master br0 up`]);
    ipBatch(router.name, [
      "link set lo up",
      `link set eth0 mtu ${mtu} up`,
      "addr add 192.0.2.1/24 dev eth0",
      "addr add 2001:db8:a::1/64 dev eth0 nodad",
    ]);
    for (const n of nodes) {
      sysctl(n.ns.name, [...quiet, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
      if (n.subnet === "A") {
        ipBatch(lan.name, [`link add ${n.name} type veth peer name eth0 netns ${n.ns.name}`, `link set ${n.name} mtu ${mtu} master br0 up`]);
      } else {
        ipBatch(router.name, [`link add ${n.name} type veth peer name eth0 netns ${n.ns.name}`, `link set ${n.name} mtu ${mtu} up`]);
      }
      const gw = n.subnet === "A" ? { v4: "192.0.2.1", v6: "2001:db8:a::1" } : { v4: "198.51.100.1", v6: "2001:db8:b::1" };
      // Subnet B's nodes each have a point-to-point link to the router (/32, /128): never on-link to each other.
      const len = n.subnet === "A" ? { v4: 24, v6: 64 } : { v4: 32, v6: 128 };
      ipBatch(n.ns.name, [
        "link set lo up",
        "addr add 169.254.77.1/32 dev lo scope link",
        `link set eth0 mtu ${mtu} up`,
        `addr add ${n.address.v4}/${len.v4} dev eth0`,
        `addr add ${n.address.v6}/${len.v6} dev eth0 nodad`,
        ...(n.subnet === "B" ? [`route add ${gw.v4}/32 dev eth0 scope link`, `route add ${gw.v6}/128 dev eth0`] : []),
        `route add default via ${gw.v4}`,
        `route add default via ${gw.v6}`,
      ]);
      for (const [i, pod] of n.pods.entries()) wirePod(n, pod, i);
    }
    // Subnet B on the router: one address pair on each of its nodes' links, each node reached by a host route.
    const onBNodes = nodes.filter((n) => n.subnet === "B");
    if (onBNodes.length > 0) {
      const lines: string[] = [];
      for (const n of onBNodes) {
        lines.push(`addr add 198.51.100.1/32 dev ${n.name}`, `addr add 2001:db8:b::1/128 dev ${n.name} nodad`);
        lines.push(`route add ${n.address.v4}/32 dev ${n.name}`, `route add ${n.address.v6}/128 dev ${n.name}`);
      }
      ipBatchTolerant(router.name, lines);
    }

    const handles = new Map<string, { fd: NetnsFd; h: Handle }>();
    const topo: ClusterTopology = {
      nodes,
      router,
      lan,
      node(name) {
        const n = nodes.find((x) => x.name === name);
        if (n === undefined) throw new Error(`no node ${name} in the topology`);
        return n;
      },
      viewFor(name, edit) {
        const self = topo.node(name);
        const others: RawNode[] = nodes
          .filter((n) => n.name !== name)
          .map((n) => ({ name: n.name, addresses: [n.address.v4, n.address.v6], prefixes: [n.prefixes.v4, n.prefixes.v6] }));
        return buildView({ nodeName: name, prefixes: [self.prefixes.v4, self.prefixes.v6], addresses: [self.address.v4, self.address.v6], nodes: edit ? edit(others) : others });
      },
      handle(name) {
        let e = handles.get(name);
        if (e === undefined) {
          const fd = NetnsFd.open(topo.node(name).ns.path);
          e = { fd, h: Handle.inNamespace(fd.fd, topo.node(name).ns.path) };
          handles.set(name, e);
        }
        return e.h;
      },
      async close() {
        for (const { fd, h } of handles.values()) {
          await h.close();
          fd.close();
        }
        handles.clear();
        removeNamespaces(names);
      },
    };
    return topo;
  } catch (err) {
    removeNamespaces(names);
    throw err;
  }
}

/** Subnet B's router side: the same address on several links; later ones may report EEXIST for the shared local route. */
function ipBatchTolerant(ns: string, lines: string[]): void {
  for (const line of lines) {
    try {
      ip(line.split(" "), ns);
    } catch (err) {
      if (!/File exists/.test(String((err as { stderr?: unknown }).stderr ?? err))) throw err;
    }
  }
}

/** A pod as workloadnetd wires one, with `ip`. */
function wirePod(n: TopologyNode, pod: TopologyPod, i: number): void {
  const host = `pod${i}`;
  ipBatch(n.ns.name, [`link add ${host} type veth peer name eth0 netns ${pod.ns.name}`, `link set ${host} addrgenmode none`, `link set ${host} up`, `addr add fe80::1/64 dev ${host} nodad`]);
  ipBatch(pod.ns.name, [
    "link set lo up",
    "link set eth0 up",
    `addr add ${pod.v4}/32 dev eth0`,
    `addr add ${pod.v6}/128 dev eth0 nodad`,
    "route add 169.254.77.1/32 dev eth0 scope link",
    `route add default via 169.254.77.1 dev eth0 src ${pod.v4}`,
    `route add default via fe80::1 dev eth0 src ${pod.v6}`,
  ]);
  const hostMac = ipJson<{ address: string }[]>(["link", "show", "dev", host], n.ns.name)[0]!.address;
  const podMac = ipJson<{ address: string }[]>(["link", "show", "dev", "eth0"], pod.ns.name)[0]!.address;
  ipBatch(pod.ns.name, [`neigh replace 169.254.77.1 lladdr ${hostMac} dev eth0 nud permanent`, `neigh replace fe80::1 lladdr ${hostMac} dev eth0 nud permanent`]);
  ipBatch(n.ns.name, [
    `route add ${pod.v4}/32 dev ${host}`,
    `route add ${pod.v6}/128 dev ${host}`,
    `neigh replace ${pod.v4} lladdr ${podMac} dev ${host} nud permanent`,
    `neigh replace ${pod.v6} lladdr ${podMac} dev ${host} nud permanent`,
  ]);
}

/** One ping from a namespace (-c 1, 2 s deadline); true when answered. */
export async function pingFrom(ns: PodNamespace, address: string): Promise<boolean> {
  const r = await execIn(ns.name, ["ping", "-n", "-c", "1", "-W", "2", address]);
  return r.code === 0;
}

/**
 * Opens a TCP connection from one namespace to a listener in another and
 * returns the source address the listener saw (IPv4-mapped forms unwrapped).
 */
export async function tcpSourceSeen(from: PodNamespace, to: PodNamespace, address: string, port = 7070): Promise<string> {
  const server = spawn("ip", ["netns", "exec", to.name, process.execPath, "-e", SERVER_JS, address, String(port)], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    await new Promise<void>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`listener on ${address}:${port} in ${to.name} did not start`)), 5000);
      server.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("listening")) {
          clearTimeout(timer);
          resolve();
        }
      });
      server.on("exit", (code) => reject(new Error(`listener exited with ${code}`)));
    });
    const r = await execIn(from.name, [process.execPath, "-e", CLIENT_JS, address, String(port)], 8000);
    if (r.code !== 0) throw new Error(`TCP connection from ${from.name} to ${address}:${port} failed: ${r.stderr.trim()}`);
    return r.stdout.trim().replace(/^::ffff:/, "");
  } finally {
    server.kill("SIGKILL");
  }
}

const SERVER_JS = `
const [addr, port] = process.argv.slice(1);
require("net").createServer((s) => s.end(s.remoteAddress)).listen(Number(port), addr, () => console.log("listening"));`;

const CLIENT_JS = `
const [addr, port] = process.argv.slice(1);
let seen = "";
const s = require("net").connect({ host: addr, port: Number(port), timeout: 5000 });
s.on("data", (d) => (seen += d));
s.on("end", () => { console.log(seen); process.exit(0); });
s.on("timeout", () => { console.error("timeout"); process.exit(1); });
s.on("error", (e) => { console.error(e.message); process.exit(1); });`;
