// IFLA_INFO_DATA of a VXLAN link (IFLA_VXLAN_*): what `ip link add ... type
// vxlan id VNI local ADDR dstport PORT nolearning` sends, and what a dump
// reports back.
import { attr, attrMap, attrNested, attrString, attrU32, attrU8, parseAttrs, readU32 } from "./attributes.js";
import {
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_VXLAN_GROUP,
  IFLA_VXLAN_GROUP6,
  IFLA_VXLAN_ID,
  IFLA_VXLAN_LEARNING,
  IFLA_VXLAN_LINK,
  IFLA_VXLAN_LOCAL,
  IFLA_VXLAN_LOCAL6,
  IFLA_VXLAN_PORT,
  IFLA_VXLAN_TTL,
} from "./constants.js";
import { bytesToIp, ipToBytes } from "./ip.js";

export interface VxlanInfo {
  /** VXLAN network identifier, 0..16777215. */
  vni: number;
  /** Source address of the encapsulated packets; its family is the underlay's (LOCAL or LOCAL6). */
  local?: string;
  /** Destination UDP port. */
  port: number;
  /** Whether the device learns remote MACs from packets it receives (we want it off). */
  learning: boolean;
  /** Multicast group or default remote (we never set one). */
  group?: string;
  /** The lower device the tunnel is bound to. */
  link?: number;
  /** 0: inherit/default. */
  ttl?: number;
}

export const VXLAN_VNI_MAX = 0xffffff;

/** IFLA_LINKINFO { KIND "vxlan", DATA { ID, LOCAL|LOCAL6, PORT, LEARNING, [LINK], [TTL] } }. */
export function encodeVxlanLinkInfo(v: VxlanInfo): Buffer {
  if (!Number.isInteger(v.vni) || v.vni < 0 || v.vni > VXLAN_VNI_MAX) throw new Error(`VXLAN id must be 0..${VXLAN_VNI_MAX}, got ${v.vni}`);
  if (!Number.isInteger(v.port) || v.port < 1 || v.port > 65535) throw new Error(`VXLAN port must be 1..65535, got ${v.port}`);
  const data: Buffer[] = [attrU32(IFLA_VXLAN_ID, v.vni)];
  if (v.local !== undefined) {
    const local = ipToBytes(v.local);
    data.push(attr(local.length === 4 ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, local));
  }
  // The port is the one attribute in network byte order.
  const port = Buffer.alloc(2);
  port.writeUInt16BE(v.port, 0);
  data.push(attr(IFLA_VXLAN_PORT, port));
  data.push(attrU8(IFLA_VXLAN_LEARNING, v.learning ? 1 : 0));
  if (v.link !== undefined) data.push(attrU32(IFLA_VXLAN_LINK, v.link));
  if (v.ttl !== undefined) data.push(attrU8(IFLA_VXLAN_TTL, v.ttl));
  if (v.group !== undefined) {
    const group = ipToBytes(v.group);
    data.push(attr(group.length === 4 ? IFLA_VXLAN_GROUP : IFLA_VXLAN_GROUP6, group));
  }
  return attrNested(IFLA_LINKINFO, [attrString(IFLA_INFO_KIND, "vxlan"), attrNested(IFLA_INFO_DATA, data)]);
}

/** The payload of IFLA_INFO_DATA of a "vxlan" link. */
export function decodeVxlanInfo(data: Buffer): VxlanInfo {
  const a = attrMap(parseAttrs(data));
  const port = a.get(IFLA_VXLAN_PORT);
  const learning = a.get(IFLA_VXLAN_LEARNING);
  const info: VxlanInfo = {
    vni: readU32(a.get(IFLA_VXLAN_ID)) ?? 0,
    port: port !== undefined && port.length >= 2 ? port.readUInt16BE(0) : 0,
    learning: learning !== undefined && learning.length >= 1 ? learning[0] !== 0 : true,
  };
  const local = a.get(IFLA_VXLAN_LOCAL6) ?? a.get(IFLA_VXLAN_LOCAL);
  if (local !== undefined && (local.length === 4 || local.length === 16) && local.some((b) => b !== 0)) info.local = bytesToIp(local);
  const group = a.get(IFLA_VXLAN_GROUP6) ?? a.get(IFLA_VXLAN_GROUP);
  if (group !== undefined && (group.length === 4 || group.length === 16) && group.some((b) => b !== 0)) info.group = bytesToIp(group);
  const link = readU32(a.get(IFLA_VXLAN_LINK));
  if (link !== undefined && link !== 0) info.link = link;
  const ttl = a.get(IFLA_VXLAN_TTL);
  if (ttl !== undefined && ttl.length >= 1 && ttl[0] !== 0) info.ttl = ttl[0];
  return info;
}
