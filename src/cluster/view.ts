// The daemon's picture of the cluster: this node's pod prefixes and addresses,
// and every other node with its addresses and pod prefixes. Sources (static
// config, the watched prefix file, the Kubernetes API) hand raw records to
// buildView, the one place that validates them; the IPAM, the routes to other
// nodes and the nftables sets all consume the result.
//
// Bad data never takes the whole view down: a node with a malformed prefix or
// address is skipped, and another node's prefix that overlaps ours (or an
// earlier node's) is refused, each with a problem saying why. Routing only
// ever sees what survived.

import { type Family, type Prefix, type Prefixes, addressFamily, canonicalAddress, parsePrefix } from "../ipam/prefix.js";
import { PrefixIndex } from "./prefix-index.js";

/** Another node, as a source reports it, before validation. */
export interface RawNode {
  name: string;
  /** Internal addresses in text form, any family, in the source's order. */
  addresses: readonly string[];
  /** Pod prefixes in text form (≤1 per family is expected). */
  prefixes: readonly string[];
}

/** What a source knows, before validation. */
export interface RawView {
  /** This node's name, when the source has one (Kubernetes, file "name"). */
  nodeName?: string;
  /** This node's pod prefixes in text form; empty until the source has them. */
  prefixes: readonly string[];
  /** This node's own internal addresses in text form. */
  addresses: readonly string[];
  /** Every other node. */
  nodes: readonly RawNode[];
  /** Why this node has no prefixes yet, when the source can tell ("node n1 has no spec.podCIDRs yet"). */
  pendingReason?: string;
}

/** Another node, validated: canonical addresses, at most one address and one prefix per family used. */
export interface ClusterNode {
  name: string;
  /** Canonical internal addresses, IPv4 first then IPv6, each family in the source's order. */
  addresses: string[];
  /** The first internal address of each family: the one routes go via. */
  address: { v4?: string; v6?: string };
  /** Pod prefixes, ≤1 per family. */
  prefixes: Prefixes;
}

export interface ClusterView {
  nodeName?: string;
  /** This node's pod prefixes; undefined until the source has any. */
  prefixes: Prefixes | undefined;
  /** This node's canonical internal addresses (may be empty: then routing picks the address of the default route). */
  addresses: string[];
  /** Every other node that passed validation, sorted by name. */
  nodes: ClusterNode[];
  /** What was skipped or refused, one sentence each, for Status and logs. */
  problems: string[];
  /** Why this node has no prefixes yet (only while prefixes is undefined). */
  pendingReason?: string;
}

/** An empty view: no prefixes, no other nodes. */
export function emptyView(pendingReason?: string): ClusterView {
  return { prefixes: undefined, addresses: [], nodes: [], problems: [], ...(pendingReason ? { pendingReason } : {}) };
}

/** Every pod prefix in the view: ours first, then the other nodes' (for masquerade exemptions). */
export function allPodPrefixes(view: ClusterView): Prefix[] {
  const out: Prefix[] = [];
  if (view.prefixes?.v4) out.push(view.prefixes.v4);
  if (view.prefixes?.v6) out.push(view.prefixes.v6);
  for (const n of view.nodes) {
    if (n.prefixes.v4) out.push(n.prefixes.v4);
    if (n.prefixes.v6) out.push(n.prefixes.v6);
  }
  return out;
}

/** Parses ≤1 prefix per family; throws an Error saying what is wrong. */
function parseNodePrefixes(texts: readonly string[], what: string): Prefixes {
  const out: Prefixes = {};
  for (const t of texts) {
    if (typeof t !== "string") throw new Error(`${what}: prefix ${JSON.stringify(t)} is not a string`);
    let p: Prefix;
    try {
      p = parsePrefix(t);
    } catch (err) {
      throw new Error(`${what}: ${(err as Error).message}`);
    }
    const key = p.family === 4 ? "v4" : "v6";
    if (out[key] !== undefined) throw new Error(`${what}: more than one IPv${p.family} prefix (${out[key]!.text}, ${p.text})`);
    out[key] = p;
  }
  return out;
}

/** Canonical addresses, IPv4 first; throws an Error naming the bad one. */
function parseAddresses(texts: readonly string[], what: string): string[] {
  const byFamily: Record<Family, string[]> = { 4: [], 6: [] };
  for (const t of texts) {
    const family = typeof t === "string" ? addressFamily(t) : undefined;
    if (family === undefined) throw new Error(`${what}: ${JSON.stringify(t)} is not an IP address`);
    const c = canonicalAddress(t);
    if (!byFamily[family].includes(c)) byFamily[family].push(c);
  }
  return [...byFamily[4], ...byFamily[6]];
}

/**
 * Validates a raw view. Never throws: what is wrong with this node's own
 * prefixes leaves prefixes undefined with a pendingReason; what is wrong with
 * another node skips that node. Each is recorded in problems.
 */
export function buildView(raw: RawView): ClusterView {
  const problems: string[] = [];
  const self = raw.nodeName ? `node ${raw.nodeName}` : "this node";
  let prefixes: Prefixes | undefined;
  let pendingReason = raw.pendingReason;
  try {
    const p = parseNodePrefixes(raw.prefixes, `${self}'s pod prefixes`);
    if (p.v4 !== undefined || p.v6 !== undefined) prefixes = p;
    else pendingReason ??= `${self} has no pod prefixes yet`;
  } catch (err) {
    const msg = (err as Error).message;
    problems.push(msg);
    pendingReason = msg;
  }
  let addresses: string[] = [];
  try {
    addresses = parseAddresses(raw.addresses, `${self}'s addresses`);
  } catch (err) {
    problems.push((err as Error).message);
  }

  const nodes: ClusterNode[] = [];
  const taken = new PrefixIndex<string>();
  if (prefixes?.v4) taken.add(prefixes.v4, self);
  if (prefixes?.v6) taken.add(prefixes.v6, self);
  const seen = new Set<string>();
  // Sorted by name, so which of two overlapping nodes is refused does not depend on event order.
  const sorted = [...raw.nodes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const n of sorted) {
    if (typeof n.name !== "string" || n.name === "") {
      problems.push(`a node without a name was skipped`);
      continue;
    }
    if (n.name === raw.nodeName) continue;
    if (seen.has(n.name)) {
      problems.push(`node ${n.name} is listed twice; the second was skipped`);
      continue;
    }
    seen.add(n.name);
    let node: ClusterNode;
    try {
      const p = parseNodePrefixes(n.prefixes ?? [], `node ${n.name} skipped`);
      const addrs = parseAddresses(n.addresses ?? [], `node ${n.name} skipped`);
      const v4 = addrs.find((a) => addressFamily(a) === 4);
      const v6 = addrs.find((a) => addressFamily(a) === 6);
      node = { name: n.name, addresses: addrs, address: { ...(v4 ? { v4 } : {}), ...(v6 ? { v6 } : {}) }, prefixes: p };
    } catch (err) {
      problems.push((err as Error).message);
      continue;
    }
    const clash = [node.prefixes.v4, node.prefixes.v6]
      .filter((p): p is Prefix => p !== undefined)
      .map((p) => ({ p, t: taken.findOverlap(p) }))
      .find((x) => x.t !== undefined);
    if (clash) {
      problems.push(`node ${n.name} refused: its pod prefix ${clash.p.text} overlaps ${clash.t!.prefix.text} of ${clash.t!.owner}; not routed`);
      continue;
    }
    if (node.prefixes.v4) taken.add(node.prefixes.v4, `node ${n.name}`);
    if (node.prefixes.v6) taken.add(node.prefixes.v6, `node ${n.name}`);
    nodes.push(node);
  }
  return {
    ...(raw.nodeName ? { nodeName: raw.nodeName } : {}),
    prefixes,
    addresses,
    nodes,
    problems,
    ...(prefixes === undefined && pendingReason ? { pendingReason } : {}),
  };
}

/** Whether two views would install the same state (for "changed?" checks; problems included). */
export function viewsEqual(a: ClusterView, b: ClusterView): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
