// Port mappings (published ports) as requested by a runtime: validation, and
// the entries they become in our table, one per family they apply to.
// Pure: no kernel, no addon.
import { isIP } from "node:net";
import { canonicalAddress } from "../ipam/address.js";

export const PROTOCOLS = ["tcp", "udp", "sctp"] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** IP protocol numbers, as our maps store them (inet_proto). */
export const PROTOCOL_NUMBERS: Record<Protocol, number> = { tcp: 6, udp: 17, sctp: 132 };

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
  /** Only traffic to this node address; unset (or 0.0.0.0 / ::): every node address of the family. */
  hostIp?: string;
}

/** A request's mappings failed validation; the message says which and why. */
export class PortMappingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PortMappingError";
  }
}

/** What a caller may send: the gRPC message or CNI's runtimeConfig entry, before validation. */
export interface RawPortMapping {
  hostPort?: unknown;
  containerPort?: unknown;
  protocol?: unknown;
  hostIp?: unknown;
}

/** At most this many per workload: each one is a few map elements, and a runtime never needs more. */
export const MAX_MAPPINGS = 1024;

/**
 * Checks and normalises a request's mappings: ports 1..65535, protocol
 * tcp/udp/sctp (any case; empty means tcp, as in CNI and CRI), hostIp an
 * address or empty. Duplicates (same host port, protocol and host address)
 * are refused. Throws PortMappingError naming the entry.
 */
export function validatePortMappings(raw: readonly RawPortMapping[]): PortMapping[] {
  if (raw.length > MAX_MAPPINGS) throw new PortMappingError(`${raw.length} port mappings: at most ${MAX_MAPPINGS} per workload`);
  const out: PortMapping[] = [];
  const seen = new Set<string>();
  raw.forEach((m, i) => {
    const where = `port mapping ${i + 1}`;
    const hostPort = port(m.hostPort, `${where}: hostPort`);
    const containerPort = port(m.containerPort, `${where}: containerPort`);
    const protocol = protocolOf(m.protocol, where);
    const hostIp = hostIpOf(m.hostIp, where);
    const mapping: PortMapping = { hostPort, containerPort, protocol, ...(hostIp !== undefined ? { hostIp } : {}) };
    const key = `${protocol}/${hostPort}/${hostIp ?? "*"}`;
    if (seen.has(key)) throw new PortMappingError(`${where}: ${describeMapping(mapping)} is listed twice`);
    seen.add(key);
    out.push(mapping);
  });
  return out;
}

function port(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) {
    throw new PortMappingError(`${what} ${JSON.stringify(v) ?? String(v)} is not a port: must be an integer between 1 and 65535`);
  }
  return v;
}

function protocolOf(v: unknown, where: string): Protocol {
  if (v === undefined || v === "") return "tcp";
  const p = typeof v === "string" ? PROTOCOLS.find((x) => x === v.toLowerCase()) : undefined;
  if (p === undefined) throw new PortMappingError(`${where}: protocol ${JSON.stringify(v)} is not one of ${PROTOCOLS.join(", ")}`);
  return p;
}

function hostIpOf(v: unknown, where: string): string | undefined {
  if (v === undefined || v === "") return undefined;
  if (typeof v !== "string" || isIP(v) === 0 || v.includes("%")) throw new PortMappingError(`${where}: hostIP ${JSON.stringify(v)} is not an IP address`);
  return canonicalAddress(v);
}

/** "tcp 8080 -> 80" or "udp 10.0.0.1:53 -> 53", for messages and the CLI. */
export function describeMapping(m: PortMapping): string {
  const host = m.hostIp === undefined ? `${m.hostPort}` : m.hostIp.includes(":") ? `[${m.hostIp}]:${m.hostPort}` : `${m.hostIp}:${m.hostPort}`;
  return `${m.protocol} ${host} -> ${m.containerPort}`;
}

export type Family = 4 | 6;

/**
 * One element of our port maps: a mapping for one family. `hostIp` undefined
 * means every node address of that family (the any-vN maps); else the
 * hostip-vN maps, keyed by it.
 */
export interface PortEntry {
  family: Family;
  protocol: Protocol;
  hostPort: number;
  hostIp?: string;
  podAddress: string;
  containerPort: number;
}

/**
 * The entries of a workload's mappings, given its addresses. A mapping with
 * no host address goes to each of the workload's families; 0.0.0.0 and ::
 * mean every address of that family only; a specific host address, only its
 * family, which the workload must have.
 */
export function entriesFor(mappings: readonly PortMapping[], addresses: readonly string[]): PortEntry[] {
  const byFamily = new Map<Family, string>();
  for (const a of addresses) byFamily.set(isIP(a) === 6 ? 6 : 4, a);
  const out: PortEntry[] = [];
  for (const m of mappings) {
    const hostFamily = m.hostIp === undefined ? undefined : (isIP(m.hostIp) as Family);
    const unspecified = m.hostIp === "0.0.0.0" || m.hostIp === "::";
    for (const family of [4, 6] as const) {
      if (hostFamily !== undefined && hostFamily !== family) continue;
      const podAddress = byFamily.get(family);
      if (podAddress === undefined) {
        if (hostFamily !== undefined) {
          throw new PortMappingError(`${describeMapping(m)}: host address ${m.hostIp} is IPv${family} but the workload has no IPv${family} address`);
        }
        continue;
      }
      const entry: PortEntry = { family, protocol: m.protocol, hostPort: m.hostPort, podAddress, containerPort: m.containerPort };
      if (m.hostIp !== undefined && !unspecified) entry.hostIp = m.hostIp;
      out.push(entry);
    }
  }
  return out;
}

/** Two entries want the same packets: same family, protocol and host port, and host addresses that overlap. */
export function entriesOverlap(a: PortEntry, b: PortEntry): boolean {
  return a.family === b.family && a.protocol === b.protocol && a.hostPort === b.hostPort && (a.hostIp === undefined || b.hostIp === undefined || a.hostIp === b.hostIp);
}

/** The mapping an entry came from (for List after a restart, when only the table remembers). */
export function mappingOf(e: PortEntry): PortMapping {
  return { hostPort: e.hostPort, containerPort: e.containerPort, protocol: e.protocol, ...(e.hostIp !== undefined ? { hostIp: e.hostIp } : {}) };
}

/** Mappings recovered from entries: the families of one mapping merged back into one. */
export function mappingsOf(entries: readonly PortEntry[]): PortMapping[] {
  const out = new Map<string, PortMapping>();
  for (const e of entries) {
    const m = mappingOf(e);
    out.set(`${m.protocol}/${m.hostPort}/${m.hostIp ?? "*"}/${m.containerPort}`, m);
  }
  return [...out.values()];
}
