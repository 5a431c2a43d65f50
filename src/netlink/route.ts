// Route operations, each the equivalent of one `ip route` command.
import type { Handle } from "./handle.js";
import { decodeRoute, encodeRoute, encodeRouteFilter, encodeRouteLookup, routeDestination, type Route, type RouteSpec } from "./codec/route-message.js";
import { isErrno } from "./errors.js";
import { AF_UNSPEC, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, RT_TABLE_MAIN, RTM_DELROUTE, RTM_GETROUTE, RTM_NEWROUTE, RTNH_F_ONLINK } from "./codec/constants.js";
import type { Request } from "./socket.js";

export type { Route, RouteSpec } from "./codec/route-message.js";

function describe(r: RouteSpec): string {
  const dst = routeDestination({ table: 0, protocol: 0, scope: 0, type: 0, ...r });
  const onlink = r.flags !== undefined && (r.flags & RTNH_F_ONLINK) !== 0;
  return `${dst}${r.gateway ? ` via ${r.gateway}` : ""}${r.oif ? ` dev index ${r.oif}` : ""}${r.src ? ` src ${r.src}` : ""}${r.protocol !== undefined ? ` proto ${r.protocol}` : ""}${onlink ? " onlink" : ""}`;
}

/** An RTM_NEWROUTE request: add (fails if it exists) or replace. */
function newRouteRequest(verb: "add" | "replace", r: RouteSpec, where: string | undefined): Request {
  return {
    type: RTM_NEWROUTE,
    flags: NLM_F_CREATE | (verb === "add" ? NLM_F_EXCL : NLM_F_REPLACE),
    parts: encodeRoute(r),
    context: `${verb} route ${describe(r)}${where ? ` in ${where}` : ""}`,
  };
}

/** `ip route add DST/LEN [via GW] [dev INDEX] [src SRC] [scope S] [proto P]`. */
export function addRouteRequest(r: RouteSpec, where?: string): Request {
  return newRouteRequest("add", r, where);
}

export async function addRoute(h: Handle, r: RouteSpec): Promise<void> {
  await h.request(addRouteRequest(r, h.where));
}

/**
 * `ip route replace DST/LEN [via GW] [dev INDEX] [proto P] [onlink]`: adds the
 * route or overwrites the one with the same destination and metric in its
 * table, in one step (traffic never sees it missing). flags: RTNH_F_ONLINK
 * for a gateway no connected route covers.
 */
export function replaceRouteRequest(r: RouteSpec, where?: string): Request {
  return newRouteRequest("replace", r, where);
}

export async function replaceRoute(h: Handle, r: RouteSpec): Promise<void> {
  await h.request(replaceRouteRequest(r, h.where));
}

/** `ip route del DST/LEN ...`. */
export function deleteRouteRequest(r: RouteSpec, where?: string): Request {
  return { type: RTM_DELROUTE, flags: 0, parts: encodeRoute(r), context: `delete route ${describe(r)}${where ? ` in ${where}` : ""}` };
}

export async function deleteRoute(h: Handle, r: RouteSpec): Promise<void> {
  await h.request(deleteRouteRequest(r, h.where));
}

/** `ip route show table all` for one family (or both): every table, including local. */
export async function listRoutes(h: Handle, family = AF_UNSPEC): Promise<Route[]> {
  const replies = await h.request({ type: RTM_GETROUTE, flags: NLM_F_DUMP, parts: [encodeRouteFilter(family)], context: `list routes in ${h.where}` });
  return replies.filter((m) => m.type === RTM_NEWROUTE).map((m) => decodeRoute(m.payload));
}

/**
 * `ip route show table TABLE proto P` for one family (or both): the routes a
 * program marked with its protocol number (the kernel dumps them all; we keep
 * those).
 */
export async function listRoutesByProtocol(h: Handle, protocol: number, opts: { family?: number; table?: number } = {}): Promise<Route[]> {
  const table = opts.table ?? RT_TABLE_MAIN;
  return (await listRoutes(h, opts.family ?? AF_UNSPEC)).filter((r) => r.protocol === protocol && r.table === table);
}

/** The request behind lookupRoute, for batches of lookups (one system call for many). */
export function lookupRouteRequest(address: string, where?: string): Request {
  return { type: RTM_GETROUTE, flags: 0, parts: encodeRouteLookup(address), context: `look up the route to ${address}${where ? ` in ${where}` : ""}` };
}

/**
 * `ip route get ADDRESS`: the route the kernel resolves for traffic to
 * ADDRESS, with the source address it would pick; undefined when there is none.
 */
export async function getRoute(h: Handle, address: string): Promise<Route | undefined> {
  try {
    const replies = await h.request({ type: RTM_GETROUTE, flags: 0, parts: encodeRouteLookup(address, false), context: `get the route to ${address} in ${h.where}` });
    const found = replies.find((m) => m.type === RTM_NEWROUTE);
    return found && decodeRoute(found.payload);
  } catch (err) {
    if (isErrno(err, "ENETUNREACH") || isErrno(err, "EHOSTUNREACH")) return undefined;
    throw err;
  }
}

/**
 * `ip route get fibmatch ADDRESS`: the route in the tables that traffic to
 * ADDRESS takes (the most specific one), or undefined when none does. One
 * lookup, however many routes there are, where a dump reads them all.
 */
export async function lookupRoute(h: Handle, address: string): Promise<Route | undefined> {
  try {
    const replies = await h.request(lookupRouteRequest(address, h.where));
    const found = replies.find((m) => m.type === RTM_NEWROUTE);
    return found && decodeRoute(found.payload);
  } catch (err) {
    // No route at all: IPv4 says ENETUNREACH, IPv6 the unreachable entry's error.
    if (isErrno(err, "ENETUNREACH") || isErrno(err, "EHOSTUNREACH")) return undefined;
    throw err;
  }
}
