// struct rtmsg (12 bytes) and route attributes.
import { attr, attrMap, attrU32, parseAttrs, readU32, zeroed } from "./attributes.js";
import {
  AF_INET,
  AF_INET6,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RTA_DST,
  RTA_GATEWAY,
  RTA_OIF,
  RTA_PREFSRC,
  RTA_PRIORITY,
  RTA_TABLE,
  RTM_F_FIB_MATCH,
  RTN_UNICAST,
  RTPROT_STATIC,
} from "./constants.js";
import { bytesToIp, ipToBytes } from "./ip.js";

export interface Route {
  family: number;
  /** Destination address; undefined with dstLen 0 is the default route. */
  dst?: string;
  dstLen: number;
  gateway?: string;
  /** Preferred source address (`ip route ... src`). */
  src?: string;
  oif?: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  priority?: number;
  /** rtm_flags (RTNH_F_ONLINK...); absent when none are set. */
  flags?: number;
}

export type RouteSpec = Partial<Route> & { family: number; dstLen: number };

export function encodeRoute(r: RouteSpec): Buffer[] {
  const hdr = zeroed(12);
  const table = r.table ?? RT_TABLE_MAIN;
  hdr.writeUInt8(r.family, 0);
  hdr.writeUInt8(r.dstLen, 1);
  hdr.writeUInt8(table < 256 ? table : 0, 4);
  hdr.writeUInt8(r.protocol ?? RTPROT_STATIC, 5);
  hdr.writeUInt8(r.scope ?? RT_SCOPE_UNIVERSE, 6);
  hdr.writeUInt8(r.type ?? RTN_UNICAST, 7);
  hdr.writeUInt32LE((r.flags ?? 0) >>> 0, 8);
  const parts: Buffer[] = [hdr];
  if (r.dst !== undefined) parts.push(attr(RTA_DST, ipToBytes(r.dst)));
  if (r.gateway !== undefined) parts.push(attr(RTA_GATEWAY, ipToBytes(r.gateway)));
  if (r.src !== undefined) parts.push(attr(RTA_PREFSRC, ipToBytes(r.src)));
  if (r.oif !== undefined) parts.push(attrU32(RTA_OIF, r.oif));
  if (r.priority !== undefined) parts.push(attrU32(RTA_PRIORITY, r.priority));
  if (table >= 256) parts.push(attrU32(RTA_TABLE, table));
  return parts;
}

/**
 * A lookup of the route to one address: the table entry that matches
 * (`ip route get fibmatch ADDRESS`), or with fibMatch false the route the
 * kernel resolves for it, source address included (`ip route get ADDRESS`).
 */
export function encodeRouteLookup(address: string, fibMatch = true): Buffer[] {
  const dst = ipToBytes(address);
  const hdr = zeroed(12);
  hdr.writeUInt8(dst.length === 4 ? AF_INET : AF_INET6, 0);
  hdr.writeUInt8(dst.length * 8, 1);
  hdr.writeUInt32LE(fibMatch ? RTM_F_FIB_MATCH : 0, 8);
  return [hdr, attr(RTA_DST, dst)];
}

export function encodeRouteFilter(family: number): Buffer {
  const hdr = zeroed(12);
  hdr.writeUInt8(family, 0);
  return hdr;
}

export function decodeRoute(p: Buffer): Route {
  if (p.length < 12) throw new Error("truncated rtmsg");
  const attrs = attrMap(parseAttrs(p, 12));
  const r: Route = {
    family: p.readUInt8(0),
    dstLen: p.readUInt8(1),
    table: readU32(attrs.get(RTA_TABLE)) ?? p.readUInt8(4),
    protocol: p.readUInt8(5),
    scope: p.readUInt8(6),
    type: p.readUInt8(7),
  };
  const dst = attrs.get(RTA_DST);
  if (dst) r.dst = bytesToIp(dst);
  const gw = attrs.get(RTA_GATEWAY);
  if (gw) r.gateway = bytesToIp(gw);
  const src = attrs.get(RTA_PREFSRC);
  if (src) r.src = bytesToIp(src);
  const oif = readU32(attrs.get(RTA_OIF));
  if (oif !== undefined) r.oif = oif;
  const prio = readU32(attrs.get(RTA_PRIORITY));
  if (prio !== undefined) r.priority = prio;
  const flags = p.readUInt32LE(8);
  if (flags !== 0) r.flags = flags;
  return r;
}

/** "10.0.0.0/24", "default" — how `ip route` would name it. */
export function routeDestination(r: Route): string {
  if (r.dst === undefined && r.dstLen === 0) return "default";
  return `${r.dst ?? (r.family === AF_INET ? "0.0.0.0" : "::")}/${r.dstLen}`;
}
