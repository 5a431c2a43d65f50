// What the robustness tests and the soak check after each round: the kernel
// state of a daemon's host namespace and of pod namespaces (through iproute2,
// an independent witness), and the daemon process's descriptors and memory.
// Only inside the sandbox (test/run-in-sandbox.sh).
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { HOST_SOCKETS } from "../src/daemon/kernel-waits.cjs";
import type { IpLink, IpRoute } from "./daemon-harness.js";
import { ipJson, type PodNamespace } from "./sandbox.js";

export interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

/** Pod namespaces for the tests: see createNamespaces/removeNamespaces in sandbox.ts. */
export { createNamespaces as createPods, removeNamespaces as removePods } from "./sandbox.js";

/** The host namespace's links, other than lo and the given names (e.g. a test's own dummies). */
export function hostLinks(hostNs: string, except: string[] = []): IpLink[] {
  return ipJson<IpLink[]>(["-d", "link", "show"], hostNs).filter((l) => l.ifname !== "lo" && !except.includes(l.ifname));
}

/** Host routes the daemon makes (proto static), both families. */
export function hostStaticRoutes(hostNs: string): IpRoute[] {
  return [...ipJson<IpRoute[]>(["-4", "route", "show", "proto", "static"], hostNs), ...ipJson<IpRoute[]>(["-6", "route", "show", "proto", "static"], hostNs)];
}

/** Addresses in the host namespace on anything but lo. */
export function hostAddressesOffLoopback(hostNs: string): IpAddr[] {
  return ipJson<IpAddr[]>(["addr", "show"], hostNs).filter((a) => a.ifname !== "lo" && a.addr_info.length > 0);
}

/** Permanent neighbour entries in the host namespace (the daemon adds one per pod address). */
export function hostPermanentNeighbours(hostNs: string): unknown[] {
  return [...ipJson<unknown[]>(["-4", "neigh", "show", "nud", "permanent"], hostNs), ...ipJson<unknown[]>(["-6", "neigh", "show", "nud", "permanent"], hostNs)];
}

/** The names of the links in a pod namespace. */
export function podLinks(ns: string): string[] {
  return ipJson<IpLink[]>(["link", "show"], ns).map((l) => l.ifname);
}

/** What is left of the daemon's work in the host namespace, as text lines (empty: nothing). */
export function hostLeftovers(hostNs: string, exceptLinks: string[] = []): string[] {
  return [
    ...hostLinks(hostNs, exceptLinks).map((l) => `link ${l.ifname} (group ${l.group}, alias ${l.ifalias ?? "-"})`),
    ...hostStaticRoutes(hostNs).map((r) => `route ${r.dst} dev ${r.dev}`),
    ...hostAddressesOffLoopback(hostNs).flatMap((a) => a.addr_info.map((i) => `address ${i.local}/${i.prefixlen} on ${a.ifname}`)),
  ];
}

/** Polls until the host namespace holds nothing of ours (links are deleted asynchronously by the kernel); returns what is left. */
export async function waitHostClean(hostNs: string, exceptLinks: string[] = [], timeoutMs = 5000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = hostLeftovers(hostNs, exceptLinks);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Pods holding anything but lo, as "pod: links" lines. */
export function dirtyPods(pods: readonly PodNamespace[]): string[] {
  const out: string[] = [];
  for (const p of pods) {
    let links: string[];
    try {
      links = podLinks(p.name);
    } catch {
      continue; // removed by the test
    }
    if (links.length !== 1 || links[0] !== "lo") out.push(`${p.name}: ${links.join(",")}`);
  }
  return out;
}

/** At most this many host netlink sockets in the daemon: its host handle's pool and the link monitor. */
export const DAEMON_HOST_NETLINK_MAX = HOST_SOCKETS + 1;

/**
 * A process's descriptors, split in two: netlink sockets of the process's own
 * network namespace (the daemon's host handle keeps a bounded pool of them,
 * plus its link monitor), and everything else, which must come back to its
 * baseline after a burst. A pod's netlink socket belongs to the pod's
 * namespace, so a leaked one counts as "other".
 */
export interface FdCensus {
  total: number;
  hostNetlink: number;
  other: number;
  /** By kind ("socket", "anon_inode:[eventfd]", "/dev/null", …), for messages. */
  kinds: Record<string, number>;
}

export function fdCensus(pid: number): FdCensus {
  const netlinkInodes = new Set<string>();
  // Columns: sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
  for (const line of readFileSync(`/proc/${pid}/net/netlink`, "utf8").split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 10) netlinkInodes.add(cols[9]!);
  }
  const census: FdCensus = { total: 0, hostNetlink: 0, other: 0, kinds: {} };
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    census.total++;
    const socket = /^socket:\[(\d+)\]$/.exec(target);
    if (socket && netlinkInodes.has(socket[1]!)) census.hostNetlink++;
    else census.other++;
    const kind = target.replace(/:\[\d+\]$/, "");
    census.kinds[kind] = (census.kinds[kind] ?? 0) + 1;
  }
  return census;
}

/** Polls until at most `otherLimit` descriptors other than host netlink sockets are open (closed client connections take a moment to close on the server). */
export async function waitFdsBack(pid: number, otherLimit: number, timeoutMs = 3000): Promise<FdCensus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const census = fdCensus(pid);
    if (census.other <= otherLimit || Date.now() > deadline) return census;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resident memory of a process in KiB (VmRSS). */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

/** The gRPC code of a failed call (connect-es or grpc-js errors), 0 for success. */
export async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (err) {
    if (err instanceof ConnectError) return err.code;
    const code = (err as { code?: unknown }).code;
    return typeof code === "number" ? code : Code.Unknown;
  }
}

/** IPv4 text to number and back, for walking a prefix. */
export function v4ToInt(a: string): number {
  return a.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}
export function intToV4(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join(".");
}
