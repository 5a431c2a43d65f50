// This node's side of the underlay: the address VXLAN packets leave from, the
// link that carries it, and the MTU pods can use over it.
import type { Handle } from "../../netlink/handle.js";
import { listAddresses } from "../../netlink/addr.js";
import { getLinkByIndex } from "../../netlink/link.js";
import { getRoute, listRoutes } from "../../netlink/route.js";
import { AF_INET, AF_INET6, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN } from "../../netlink/codec/constants.js";
import { addressFamily, type Family } from "../../ipam/prefix.js";
import type { ClusterView } from "../view.js";
import type { RoutingMode } from "./wanted.js";
import { VXLAN_OVERHEAD } from "./vtep.js";

export interface Underlay {
  family: Family;
  /** This node's underlay address. */
  address: string;
  /** Where it came from, for messages. */
  from: "view" | "kernel";
}

/**
 * The address this node sends VXLAN packets from: its first internal address
 * in the view (IPv4 preferred, so pods of both families ride one IPv4
 * underlay; IPv6 where the node has only IPv6). Without addresses in the view,
 * the source the kernel picks towards another node, else the first global
 * address of the default route's link. Undefined when there is none.
 */
export async function findUnderlay(h: Handle, view: ClusterView): Promise<Underlay | undefined> {
  const own = view.addresses.find((a) => addressFamily(a) === 4) ?? view.addresses.find((a) => addressFamily(a) === 6);
  if (own !== undefined) return { family: addressFamily(own)!, address: own, from: "view" };
  for (const f of [4, 6] as const) {
    const peer = view.nodes.map((n) => (f === 4 ? n.address.v4 : n.address.v6)).find((a) => a !== undefined);
    if (peer === undefined) continue;
    const r = await getRoute(h, peer);
    if (r?.src !== undefined) return { family: f, address: r.src, from: "kernel" };
  }
  const link = await defaultRouteLink(h);
  if (link === undefined) return undefined;
  const addrs = await listAddresses(h, { index: link.index });
  const a = addrs.find((x) => x.scope === RT_SCOPE_UNIVERSE && addressFamily(x.address) === 4) ?? addrs.find((x) => x.scope === RT_SCOPE_UNIVERSE);
  return a === undefined ? undefined : { family: addressFamily(a.address)!, address: a.address, from: "kernel" };
}

/** The link of the default route in the main table (IPv4 first); undefined when there is none. */
async function defaultRouteLink(h: Handle): Promise<{ index: number; family: Family } | undefined> {
  for (const [family, af] of [[4, AF_INET], [6, AF_INET6]] as const) {
    const routes = await listRoutes(h, af);
    const d = routes.find((r) => r.table === RT_TABLE_MAIN && r.dstLen === 0 && r.oif !== undefined);
    if (d?.oif !== undefined) return { index: d.oif, family };
  }
  return undefined;
}

/**
 * The MTU of the link that carries `address` (a local address), else of the
 * default route's link; undefined when neither is found.
 */
export async function underlayLinkMtu(h: Handle, address: string | undefined): Promise<number | undefined> {
  let index: number | undefined;
  if (address !== undefined) index = (await listAddresses(h)).find((a) => a.address === address)?.index;
  index ??= (await defaultRouteLink(h))?.index;
  if (index === undefined) return undefined;
  return (await getLinkByIndex(h, index))?.mtu;
}

/** Whether the mode may carry pods' traffic over VXLAN (and so must leave room for its headers). */
export const mayUseVxlan = (mode: RoutingMode): boolean => mode === "vxlan" || mode === "auto";

/**
 * The MTU for pod links: the MTU of the link that carries this node's
 * address (or the default route's link), less the VXLAN overhead (50 bytes
 * over IPv4, 70 over IPv6) whenever VXLAN may be used (vxlan, auto).
 * `fallback` (default 1500) stands in for the link when none is found.
 */
export async function podMtu(h: Handle, view: ClusterView, mode: RoutingMode, fallback = 1500): Promise<number> {
  const underlay = await findUnderlay(h, view);
  const mtu = (await underlayLinkMtu(h, underlay?.address)) ?? fallback;
  return mayUseVxlan(mode) ? mtu - VXLAN_OVERHEAD[underlay?.family ?? 4] : mtu;
}
