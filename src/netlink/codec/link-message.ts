// struct ifinfomsg (16 bytes) and the link attributes we read and write.
import { attr, attrMap, attrNested, attrS32, attrString, attrU32, attrU8, parseAttrs, readString, readU32, zeroed } from "./attributes.js";
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  IFLA_ADDRESS,
  IFLA_AF_SPEC,
  IFLA_GROUP,
  IFLA_IFALIAS,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INET6_ADDR_GEN_MODE,
  IFLA_INET_CONF,
  IFLA_INFO_KIND,
  IFLA_LINK,
  IFLA_LINK_NETNSID,
  IFLA_LINKINFO,
  IFLA_MTU,
  IFLA_NET_NS_FD,
  IFLA_NUM_RX_QUEUES,
  IFLA_NUM_TX_QUEUES,
  IFLA_OPERSTATE,
  IPV4_DEVCONF_ROUTE_LOCALNET,
  VETH_INFO_PEER,
} from "./constants.js";
import { formatMac } from "./mac.js";
import { decodeVxlanInfo, type VxlanInfo } from "./vxlan-info.js";

export interface IfInfo {
  family: number;
  type: number;
  index: number;
  flags: number;
  change: number;
}

export function encodeIfInfo(i: Partial<IfInfo>): Buffer {
  const b = zeroed(16);
  b.writeUInt8(i.family ?? AF_UNSPEC, 0);
  b.writeUInt16LE(i.type ?? 0, 2);
  b.writeInt32LE(i.index ?? 0, 4);
  b.writeUInt32LE((i.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((i.change ?? 0) >>> 0, 12);
  return b;
}

export function decodeIfInfo(p: Buffer): IfInfo {
  if (p.length < 16) throw new Error("truncated ifinfomsg");
  return {
    family: p.readUInt8(0),
    type: p.readUInt16LE(2),
    index: p.readInt32LE(4),
    flags: p.readUInt32LE(8),
    change: p.readUInt32LE(12),
  };
}

/** A link as the kernel describes it in RTM_NEWLINK replies. */
export interface Link {
  index: number;
  name: string;
  flags: number;
  mtu?: number;
  group?: number;
  alias?: string;
  mac?: string;
  kind?: string;
  /** ifindex of the peer (veth) or lower device, possibly in another namespace. */
  parentIndex?: number;
  /** Set when parentIndex lives in another namespace. */
  linkNetnsId?: number;
  operstate?: number;
  txQueues?: number;
  rxQueues?: number;
  /** The tunnel's settings, for kind "vxlan". */
  vxlan?: VxlanInfo;
}

export function decodeLink(payload: Buffer): Link {
  const info = decodeIfInfo(payload);
  const attrs = attrMap(parseAttrs(payload, 16));
  const link: Link = { index: info.index, name: readString(attrs.get(IFLA_IFNAME)) ?? "", flags: info.flags };
  const mtu = readU32(attrs.get(IFLA_MTU));
  if (mtu !== undefined) link.mtu = mtu;
  const group = readU32(attrs.get(IFLA_GROUP));
  if (group !== undefined) link.group = group;
  const alias = readString(attrs.get(IFLA_IFALIAS));
  if (alias !== undefined) link.alias = alias;
  const mac = attrs.get(IFLA_ADDRESS);
  if (mac !== undefined && mac.length === 6) link.mac = formatMac(mac);
  const parent = readU32(attrs.get(IFLA_LINK));
  if (parent !== undefined) link.parentIndex = parent;
  const nsid = attrs.get(IFLA_LINK_NETNSID);
  if (nsid !== undefined && nsid.length >= 4) link.linkNetnsId = nsid.readInt32LE(0);
  const oper = attrs.get(IFLA_OPERSTATE);
  if (oper !== undefined && oper.length >= 1) link.operstate = oper.readUInt8(0);
  const txQueues = readU32(attrs.get(IFLA_NUM_TX_QUEUES));
  if (txQueues !== undefined) link.txQueues = txQueues;
  const rxQueues = readU32(attrs.get(IFLA_NUM_RX_QUEUES));
  if (rxQueues !== undefined) link.rxQueues = rxQueues;
  const linkinfo = attrs.get(IFLA_LINKINFO);
  if (linkinfo !== undefined) {
    const info = attrMap(parseAttrs(linkinfo));
    const kind = readString(info.get(IFLA_INFO_KIND));
    if (kind !== undefined) link.kind = kind;
    const data = info.get(IFLA_INFO_DATA);
    if (kind === "vxlan" && data !== undefined) link.vxlan = decodeVxlanInfo(data);
  }
  return link;
}

export interface LinkSettings {
  name?: string;
  mtu?: number;
  group?: number;
  mac?: Buffer;
  alias?: string;
  /** Transmit and receive queues, fixed at creation (IFLA_NUM_TX/RX_QUEUES). */
  txQueues?: number;
  rxQueues?: number;
  /**
   * How the kernel makes the link's IPv6 link-local address when it comes up
   * (IFLA_INET6_ADDR_GEN_MODE; IN6_ADDR_GEN_MODE_NONE: none at all). The
   * kernel takes it only for an existing link, and it counts only at the next up.
   */
  ipv6AddrGenMode?: number;
  /** The link's IPv4 route_localnet setting (net.ipv4.conf.LINK.route_localnet). */
  routeLocalnet?: boolean;
}

/** Attributes shared by link creation and modification. */
export function encodeLinkSettings(s: LinkSettings): Buffer[] {
  const out: Buffer[] = [];
  if (s.name !== undefined) out.push(attrString(IFLA_IFNAME, s.name));
  if (s.mac !== undefined) out.push(attr(IFLA_ADDRESS, s.mac));
  if (s.mtu !== undefined) out.push(attrU32(IFLA_MTU, s.mtu));
  if (s.group !== undefined) out.push(attrU32(IFLA_GROUP, s.group));
  // The alias is not NUL-terminated on the wire; the kernel stores the bytes given.
  if (s.alias !== undefined) out.push(attr(IFLA_IFALIAS, Buffer.from(s.alias, "utf8")));
  if (s.txQueues !== undefined) out.push(attrU32(IFLA_NUM_TX_QUEUES, s.txQueues));
  if (s.rxQueues !== undefined) out.push(attrU32(IFLA_NUM_RX_QUEUES, s.rxQueues));
  if (s.ipv6AddrGenMode !== undefined) {
    out.push(attrNested(IFLA_AF_SPEC, [attrNested(AF_INET6, [attrU8(IFLA_INET6_ADDR_GEN_MODE, s.ipv6AddrGenMode)])]));
  }
  if (s.routeLocalnet !== undefined) {
    const conf = attrNested(IFLA_INET_CONF, [attrU32(IPV4_DEVCONF_ROUTE_LOCALNET, s.routeLocalnet ? 1 : 0)]);
    out.push(attrNested(IFLA_AF_SPEC, [attrNested(AF_INET, [conf])]));
  }
  return out;
}

export interface VethPeer extends LinkSettings {
  name: string;
  /** An open fd of the namespace the peer is created in. */
  netnsFd?: number;
}

/**
 * IFLA_LINKINFO for a veth, its peer described by a nested ifinfomsg + attributes.
 * The peer cannot be brought up here: the kernel opens it before the pair is
 * joined and refuses with ENOTCONN.
 */
export function encodeVethInfo(peer: VethPeer): Buffer {
  const peerParts = [encodeIfInfo({}), ...encodeLinkSettings(peer)];
  if (peer.netnsFd !== undefined) peerParts.push(attrS32(IFLA_NET_NS_FD, peer.netnsFd));
  return attrNested(IFLA_LINKINFO, [
    attrString(IFLA_INFO_KIND, "veth"),
    attrNested(IFLA_INFO_DATA, [attr(VETH_INFO_PEER, Buffer.concat(peerParts))]),
  ]);
}
