// Our nftables table, as nft commands: its sets, maps and chains, and the
// elements that Attach, Detach and the cluster view change. Pure text
// builders; nft.ts runs them. Everything is in the one table `inet
// workloadnet`: no command here names anything outside it.
import { PROTOCOL_NUMBERS, PROTOCOLS, type Family, type PortEntry, type Protocol } from "./port-mappings.js";

export const TABLE = "workloadnet";
const T = `inet ${TABLE}`;

/**
 * The sets and maps (name → declaration). pod-vN: this node's pod prefixes
 * (masquerade sources). cluster-vN: every pod prefix in the cluster plus the
 * extra exemptions (destinations never masqueraded). any-vN: published ports
 * on every node address (protocol . host port → pod address . container
 * port); hostip-vN the same for one node address. hairpin-vN: pod . pod, for
 * the pods with published ports (a pod reaching itself through the node).
 */
const SETS: Record<string, string> = {
  "pod-v4": "type ipv4_addr; flags interval;",
  "pod-v6": "type ipv6_addr; flags interval;",
  "cluster-v4": "type ipv4_addr; flags interval;",
  "cluster-v6": "type ipv6_addr; flags interval;",
  "any-v4": "type inet_proto . inet_service : ipv4_addr . inet_service;",
  "any-v6": "type inet_proto . inet_service : ipv6_addr . inet_service;",
  "hostip-v4": "type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service;",
  "hostip-v6": "type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service;",
  "hairpin-v4": "type ipv4_addr . ipv4_addr;",
  "hairpin-v6": "type ipv6_addr . ipv6_addr;",
};

export const PORT_MAPS = ["any-v4", "any-v6", "hostip-v4", "hostip-v6"] as const;
export const HAIRPIN_SETS = ["hairpin-v4", "hairpin-v6"] as const;

/** Base chains: name → hook declaration. The masquerade chain exists only while masquerade is on. */
const CHAINS: Record<string, string | undefined> = {
  ports: undefined,
  prerouting: "type nat hook prerouting priority dstnat; policy accept;",
  // dstnat is not a keyword for the output hook in older nft: -100 is its value.
  output: "type nat hook output priority -100; policy accept;",
  postrouting: "type nat hook postrouting priority srcnat; policy accept;",
};
const MASQUERADE_CHAIN = "egress";
const MASQUERADE_HOOK = "type nat hook postrouting priority srcnat; policy accept;";

const RULES: Record<string, string[]> = {
  // A specific node address first, then every node address. A lookup that
  // misses ends the rule, so traffic to ports nobody published passes untouched.
  ports: [
    "dnat ip to ip daddr . meta l4proto . th dport map @hostip-v4",
    "meta nfproto ipv4 dnat ip to meta l4proto . th dport map @any-v4",
    "dnat ip6 to ip6 daddr . meta l4proto . th dport map @hostip-v6",
    "meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @any-v6",
  ],
  // Only traffic to one of the node's own addresses (as portmap's "dst-type LOCAL").
  prerouting: ["fib daddr type local jump ports"],
  output: [
    // ::1 cannot be translated to a pod: the kernel drops the pod's answer,
    // addressed back to ::1, on arrival (IPv6 has no route_localnet). Left
    // alone, the client gets an answer from whatever listens on the host
    // rather than a connection that hangs (docs/nftables.md).
    "ip6 daddr ::1 return",
    "fib daddr type local jump ports",
  ],
  postrouting: [
    // Hairpin: a pod that reached its own published port sees the node as the peer, so the answer comes back through it.
    "ct status dnat ip saddr . ip daddr @hairpin-v4 masquerade",
    "ct status dnat ip6 saddr . ip6 daddr @hairpin-v6 masquerade",
    // From 127.0.0.1 on the node: the pod cannot answer a loopback source.
    "ct status dnat ip saddr 127.0.0.0/8 masquerade",
  ],
};

const MASQUERADE_RULES = [
  "ip saddr @pod-v4 ip daddr != @cluster-v4 masquerade",
  "ip6 saddr @pod-v6 ip6 daddr != @cluster-v6 masquerade",
];

/**
 * The table's structure, made or brought up to date in one transaction:
 * `add` leaves what exists (and its elements) alone, then each chain is
 * flushed and its rules written again, so a restart of a newer daemon
 * replaces older rules. With masquerade off, its chain is removed.
 */
export function structureCommands(opts: { masquerade: boolean }): string[] {
  const cmds = [`add table ${T}`];
  for (const [name, decl] of Object.entries(SETS)) cmds.push(`add ${decl.includes(" : ") ? "map" : "set"} ${T} ${name} { ${decl} }`);
  for (const [name, hook] of Object.entries(CHAINS)) cmds.push(hook === undefined ? `add chain ${T} ${name}` : `add chain ${T} ${name} { ${hook} }`);
  for (const name of Object.keys(CHAINS)) cmds.push(`flush chain ${T} ${name}`);
  for (const [name, rules] of Object.entries(RULES)) for (const r of rules) cmds.push(`add rule ${T} ${name} ${r}`);
  // Made first in either case: nft has no "delete if it exists" (destroy came in 1.0.8).
  cmds.push(`add chain ${T} ${MASQUERADE_CHAIN} { ${MASQUERADE_HOOK} }`, `flush chain ${T} ${MASQUERADE_CHAIN}`);
  if (opts.masquerade) for (const r of MASQUERADE_RULES) cmds.push(`add rule ${T} ${MASQUERADE_CHAIN} ${r}`);
  else cmds.push(`delete chain ${T} ${MASQUERADE_CHAIN}`);
  return cmds;
}

/** Replaces the elements of an interval set with these prefixes (text, one family). */
export function replacePrefixSet(set: string, prefixes: readonly string[]): string[] {
  const cmds = [`flush set ${T} ${set}`];
  if (prefixes.length > 0) cmds.push(`add element ${T} ${set} { ${prefixes.join(", ")} }`);
  return cmds;
}

export function portMapName(e: Pick<PortEntry, "family" | "hostIp">): string {
  return `${e.hostIp === undefined ? "any" : "hostip"}-v${e.family}`;
}

function keyOf(e: PortEntry): string {
  const k = `${PROTOCOL_NUMBERS[e.protocol]} . ${e.hostPort}`;
  return e.hostIp === undefined ? k : `${e.hostIp} . ${k}`;
}

/** `create`: a key already in the kernel fails the transaction rather than being overwritten. */
export function addEntryCommands(entries: readonly PortEntry[]): string[] {
  const cmds = entries.map((e) => `create element ${T} ${portMapName(e)} { ${keyOf(e)} : ${e.podAddress} . ${e.containerPort} }`);
  for (const a of hairpinAddresses(entries)) cmds.push(`add element ${T} hairpin-v${a.family} { ${a.address} . ${a.address} }`);
  return cmds;
}

export function deleteEntryCommands(entries: readonly PortEntry[]): string[] {
  const cmds = entries.map((e) => `delete element ${T} ${portMapName(e)} { ${keyOf(e)} }`);
  for (const a of hairpinAddresses(entries)) cmds.push(`delete element ${T} hairpin-v${a.family} { ${a.address} . ${a.address} }`);
  return cmds;
}

export function deleteHairpinCommand(family: Family, address: string): string {
  return `delete element ${T} hairpin-v${family} { ${address} . ${address} }`;
}

function hairpinAddresses(entries: readonly PortEntry[]): { family: Family; address: string }[] {
  const seen = new Map<string, Family>();
  for (const e of entries) seen.set(e.podAddress, e.family);
  return [...seen].map(([address, family]) => ({ address, family }));
}

// ---------------------------------------------------------------------------
// Reading elements back (nft's JSON output)

type Json = unknown;

/** The elements of the set or map `name` in a listing (of it alone, or of the whole table). */
function elementsOf(listing: Json, kind: "map" | "set", name: string): Json[] {
  const items = (listing as { nftables?: Json[] }).nftables ?? [];
  for (const item of items) {
    const obj = (item as Record<string, Json>)[kind] as { name?: string; elem?: Json[] } | undefined;
    if (obj !== undefined && obj.name === name) return obj.elem ?? [];
  }
  return [];
}

export const LIST_TABLE = `list table ${T}`;

function concat(v: Json): Json[] {
  const c = (v as { concat?: Json[] })?.concat;
  if (!Array.isArray(c)) throw new Error(`unexpected element ${JSON.stringify(v)}`);
  return c;
}

function protocolFromJson(v: Json): Protocol {
  if (typeof v === "string") {
    const p = PROTOCOLS.find((x) => x === v);
    if (p !== undefined) return p;
  }
  if (typeof v === "number") {
    const p = PROTOCOLS.find((x) => PROTOCOL_NUMBERS[x] === v);
    if (p !== undefined) return p;
  }
  throw new Error(`unexpected protocol ${JSON.stringify(v)}`);
}

/** The entries of one port map, from `list map` in JSON. */
export function parsePortMap(name: (typeof PORT_MAPS)[number], listing: Json): PortEntry[] {
  const family: Family = name.endsWith("v6") ? 6 : 4;
  const specific = name.startsWith("hostip");
  return elementsOf(listing, "map", name).map((el) => {
    const [key, value] = el as [Json, Json];
    const k = concat(key);
    const v = concat(value);
    const [hostIp, proto, port] = specific ? k : [undefined, ...k];
    return {
      family,
      protocol: protocolFromJson(proto),
      hostPort: Number(port),
      ...(hostIp !== undefined ? { hostIp: String(hostIp) } : {}),
      podAddress: String(v[0]),
      containerPort: Number(v[1]),
    };
  });
}

/** The pod addresses in a hairpin set. */
export function parseHairpinSet(name: (typeof HAIRPIN_SETS)[number], listing: Json): string[] {
  return elementsOf(listing, "set", name).map((el) => String(concat(el)[0]));
}
