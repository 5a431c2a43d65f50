// What the Kubernetes source keeps of each Node object, and how the cache of
// them becomes a RawView. Only the name, the pod prefixes and the internal
// addresses are kept: a Node object is several kilobytes (images,
// conditions), a record a few dozen bytes.

import type { RawNode, RawView } from "../view.js";

export interface NodeRecord {
  name: string;
  /** spec.podCIDRs, or [spec.podCIDR] on a node that has only the old field. */
  prefixes: string[];
  /** The InternalIP entries of status.addresses, in order. */
  addresses: string[];
}

type Loose = Record<string, unknown> | undefined;

/** Text for buildView to judge: strings as they are, anything else as JSON (so the problem names it). */
function texts(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  return v.map((x) => (typeof x === "string" ? x : JSON.stringify(x)));
}

/**
 * A record from a Node, as the list (typed objects) or a watch event (plain
 * JSON) gives it; both use the same field names. Undefined when it has no name.
 */
export function nodeRecord(node: unknown): NodeRecord | undefined {
  const n = node as Loose;
  const name = (n?.metadata as Loose)?.name;
  if (typeof name !== "string" || name === "") return undefined;
  const spec = n?.spec as Loose;
  let prefixes = texts(spec?.podCIDRs);
  if (prefixes.length === 0 && typeof spec?.podCIDR === "string" && spec.podCIDR !== "") prefixes = [spec.podCIDR];
  const addresses: string[] = [];
  const list = (n?.status as Loose)?.addresses;
  if (Array.isArray(list)) {
    for (const a of list as Loose[]) {
      if (a?.type !== "InternalIP") continue;
      addresses.push(typeof a.address === "string" ? a.address : JSON.stringify(a.address));
    }
  }
  return { name, prefixes, addresses };
}

export function recordsEqual(a: NodeRecord | undefined, b: NodeRecord | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const same = (x: string[], y: string[]) => x.length === y.length && x.every((v, i) => v === y[i]);
  return a.name === b.name && same(a.prefixes, b.prefixes) && same(a.addresses, b.addresses);
}

/** The raw view from the cache: this node gives our prefixes and addresses, every other node a RawNode. */
export function rawViewFromRecords(nodeName: string, records: ReadonlyMap<string, NodeRecord>): RawView {
  const self = records.get(nodeName);
  const nodes: RawNode[] = [];
  for (const r of records.values()) if (r.name !== nodeName) nodes.push(r);
  let pendingReason: string | undefined;
  if (self === undefined) pendingReason = `node ${nodeName} not found in the API`;
  else if (self.prefixes.length === 0) pendingReason = `node ${nodeName} has no spec.podCIDRs yet`;
  return {
    nodeName,
    prefixes: self?.prefixes ?? [],
    addresses: self?.addresses ?? [],
    nodes,
    ...(pendingReason !== undefined ? { pendingReason } : {}),
  };
}
