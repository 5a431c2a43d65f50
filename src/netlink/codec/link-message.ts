// struct ifinfomsg (16 bytes) and the link attributes we read and write.
import { align4, attr, attrMap, attrNested, attrS32, attrString, attrU32, attrU8, parseAttrs, readString, zeroed } from "./attributes.js";
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
  NLA_TYPE_MASK,
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
  const link: Link = { index: info.index, name: "", flags: info.flags };
  // One pass, reading in place only the attributes a Link keeps: a link's
  // description carries ~50 (statistics, every per-family setting), and a
  // Buffer cut for each cost an Attach more than the rest of its decoding.
  // A repeated attribute overwrites, as in the kernel's own parser.
  const end = payload.length;
  let linkinfo: Buffer | undefined;
  for (let off = 16; off + 4 <= end; ) {
    const len = payload.readUInt16LE(off);
    if (len < 4 || off + len > end) break;
    const at = off + 4;
    const size = len - 4;
    switch (payload.readUInt16LE(off + 2) & NLA_TYPE_MASK) {
      case IFLA_IFNAME:
        link.name = cString(payload, at, off + len);
        break;
      case IFLA_MTU:
        if (size >= 4) link.mtu = payload.readUInt32LE(at);
        break;
      case IFLA_GROUP:
        if (size >= 4) link.group = payload.readUInt32LE(at);
        break;
      case IFLA_IFALIAS:
        link.alias = cString(payload, at, off + len);
        break;
      case IFLA_ADDRESS:
        if (size === 6) link.mac = formatMac(payload.subarray(at, at + 6));
        break;
      case IFLA_LINK:
        if (size >= 4) link.parentIndex = payload.readUInt32LE(at);
        break;
      case IFLA_LINK_NETNSID:
        if (size >= 4) link.linkNetnsId = payload.readInt32LE(at);
        break;
      case IFLA_OPERSTATE:
        if (size >= 1) link.operstate = payload.readUInt8(at);
        break;
      case IFLA_NUM_TX_QUEUES:
        if (size >= 4) link.txQueues = payload.readUInt32LE(at);
        break;
      case IFLA_NUM_RX_QUEUES:
        if (size >= 4) link.rxQueues = payload.readUInt32LE(at);
        break;
      case IFLA_LINKINFO:
        linkinfo = payload.subarray(at, off + len);
        break;
    }
    off += align4(len);
  }
  if (linkinfo !== undefined) {
    const info = attrMap(parseAttrs(linkinfo));
    const kind = readString(info.get(IFLA_INFO_KIND));
    if (kind !== undefined) link.kind = kind;
    const data = info.get(IFLA_INFO_DATA);
    if (kind === "vxlan" && data !== undefined) link.vxlan = decodeVxlanInfo(data);
  }
  return link;
}

/** A string attribute's payload, up to its first NUL. */
function cString(buf: Buffer, from: number, to: number): string {
  const nul = buf.indexOf(0, from);
  return buf.toString("utf8", from, nul < 0 || nul > to ? to : nul);
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
