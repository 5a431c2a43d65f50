// The wanted state: from the cluster view, the routing mode and a few facts
// about this host (which node addresses are on-link, the VXLAN device, routes
// of others), every route, forwarding entry and neighbour entry we should
// have, and per node what we chose and why not, when we could not. Pure: no
// kernel access, so it is tested byte for byte without privileges.
import type { ClusterNode, ClusterView } from "../view.js";
import { bigintToAddress, type Family, type Prefix } from "../../ipam/prefix.js";
import { vtepMac } from "./vtep.js";

export type RoutingMode = "auto" | "direct" | "vxlan" | "none";
export const ROUTING_MODES: readonly RoutingMode[] = ["auto", "direct", "vxlan", "none"];
export type RouteKind = "direct" | "vxlan" | "none";

export interface WantedRoute {
  family: Family;
  /** The node's pod prefix. */
  prefix: Prefix;
  gateway: string;
  oif: number;
  onlink: boolean;
  node: string;
}

export interface WantedFdb {
  mac: string;
  dst: string;
  node: string;
}

export interface WantedNeighbour {
  family: Family;
  address: string;
  mac: string;
  node: string;
}

export interface NodePlan {
  name: string;
  kind: RouteKind;
  /** The underlay address its pods' traffic goes to (next hop or VTEP). */
  via?: string;
  /** Why (part of) it is not routed; empty when all is wanted. */
  errors: string[];
}

export interface Wanted {
  /** Keyed by routeKey. */
  routes: Map<string, WantedRoute>;
  /** Keyed by MAC. */
  fdb: Map<string, WantedFdb>;
  /** Keyed by address. */
  neighbours: Map<string, WantedNeighbour>;
  nodes: NodePlan[];
}

export interface HostFacts {
  /** Node address -> ifindex of the connected route it falls in; absent: not on-link. */
  onLink: ReadonlyMap<string, number>;
  /** The VXLAN device, when it exists: its index and underlay family. */
  vxlan?: { index: number; family: Family };
  /** Why there is no VXLAN device (shown on every node that would need it). */
  vxlanProblem?: string;
  /** Routes of others in the main table, by routeKey: a description ("proto static dev eth1"). */
  foreign: ReadonlyMap<string, string>;
}

/** How routes are keyed: "10.70.2.0/24" (canonical, as Prefix.text and a decoded route agree). */
export const routeKey = (dst: string, dstLen: number): string => `${dst}/${dstLen}`;
const prefixKey = (p: Prefix): string => p.text;

/** The network address of a prefix: the next hop (and neighbour) its VXLAN route goes via, as flannel does. */
export const vxlanNextHop = (p: Prefix): string => bigintToAddress(p.network, p.family);

const familyKey = (f: Family): "v4" | "v6" => (f === 4 ? "v4" : "v6");

function nodePrefixes(n: ClusterNode): Prefix[] {
  return [n.prefixes.v4, n.prefixes.v6].filter((p): p is Prefix => p !== undefined);
}

/** Whether every pod prefix of the node has an on-link node address of its family. */
function allOnLink(n: ClusterNode, facts: HostFacts): boolean {
  return nodePrefixes(n).every((p) => {
    const a = n.address[familyKey(p.family)];
    return a !== undefined && facts.onLink.has(a);
  });
}

export function computeWanted(view: ClusterView, mode: RoutingMode, facts: HostFacts): Wanted {
  const wanted: Wanted = { routes: new Map(), fdb: new Map(), neighbours: new Map(), nodes: [] };
  const vtepOwner = new Map<string, string>();
  for (const n of view.nodes) {
    const plan: NodePlan = { name: n.name, kind: "none", errors: [] };
    wanted.nodes.push(plan);
    if (mode === "none") continue;
    const kind: RouteKind = mode === "direct" ? "direct" : mode === "vxlan" ? "vxlan" : allOnLink(n, facts) ? "direct" : "vxlan";
    plan.kind = kind;
    const prefixes = nodePrefixes(n);
    // A route that would replace someone else's is refused.
    const free = prefixes.filter((p) => {
      const other = facts.foreign.get(prefixKey(p));
      if (other !== undefined) plan.errors.push(`${p.text} is already routed by someone else (${other}); not routed`);
      return other === undefined;
    });
    if (kind === "direct") {
      for (const p of free) {
        const gw = n.address[familyKey(p.family)];
        if (gw === undefined) {
          plan.errors.push(`no IPv${p.family} address to route ${p.text} via`);
          continue;
        }
        const oif = facts.onLink.get(gw);
        if (oif === undefined) {
          plan.errors.push(`${gw} is not on-link from here; ${p.text} not routed (direct needs a shared subnet)`);
          continue;
        }
        plan.via ??= gw;
        wanted.routes.set(prefixKey(p), { family: p.family, prefix: p, gateway: gw, oif, onlink: false, node: n.name });
      }
      continue;
    }
    // vxlan
    if (facts.vxlan === undefined) {
      if (free.length > 0) plan.errors.push(`no VXLAN device: ${facts.vxlanProblem ?? "not set up"}`);
      continue;
    }
    const vtep = n.address[familyKey(facts.vxlan.family)];
    if (vtep === undefined) {
      if (free.length > 0) plan.errors.push(`no IPv${facts.vxlan.family} address for the VXLAN underlay; not routed`);
      continue;
    }
    const mac = vtepMac(vtep);
    const owner = vtepOwner.get(mac);
    if (owner !== undefined) {
      plan.errors.push(`its address ${vtep} is also node ${owner}'s; not routed`);
      continue;
    }
    if (free.length === 0) continue;
    vtepOwner.set(mac, n.name);
    plan.via = vtep;
    wanted.fdb.set(mac, { mac, dst: vtep, node: n.name });
    for (const p of free) {
      const hop = vxlanNextHop(p);
      wanted.neighbours.set(hop, { family: p.family, address: hop, mac, node: n.name });
      wanted.routes.set(prefixKey(p), { family: p.family, prefix: p, gateway: hop, oif: facts.vxlan.index, onlink: true, node: n.name });
    }
  }
  return wanted;
}
