// struct ndmsg (12 bytes) and neighbour attributes.
import { attr, attrMap, attrU32, parseAttrs, zeroed } from "./attributes.js";
import { NDA_DST, NDA_IFINDEX, NDA_LLADDR } from "./constants.js";
import { bytesToIp, familyOfBytes, ipToBytes } from "./ip.js";
import { formatMac, parseMac } from "./mac.js";

export interface Neighbour {
  index: number;
  address: string;
  mac?: string;
  /** NUD_* state bits. */
  state: number;
  flags: number;
}

export function encodeNeighbour(n: Neighbour): Buffer[] {
  const ip = ipToBytes(n.address);
  const hdr = zeroed(12);
  hdr.writeUInt8(familyOfBytes(ip), 0);
  hdr.writeInt32LE(n.index, 4);
  hdr.writeUInt16LE(n.state, 8);
  hdr.writeUInt8(n.flags, 10);
  const parts = [hdr, attr(NDA_DST, ip)];
  if (n.mac !== undefined) parts.push(attr(NDA_LLADDR, parseMac(n.mac)));
  return parts;
}

export function encodeNeighFilter(family: number, index = 0): Buffer {
  const hdr = zeroed(12);
  hdr.writeUInt8(family, 0);
  hdr.writeInt32LE(index, 4);
  return hdr;
}

/**
 * A dump request the kernel filters to one device: it reads the device from
 * NDA_IFINDEX (the header's index counts only on strictly checked sockets).
 */
export function encodeNeighDeviceFilter(family: number, index: number): Buffer[] {
  return [encodeNeighFilter(family, index), attrU32(NDA_IFINDEX, index)];
}

export function decodeNeighbour(p: Buffer): Neighbour {
  if (p.length < 12) throw new Error("truncated ndmsg");
  const attrs = attrMap(parseAttrs(p, 12));
  const n: Neighbour = {
    index: p.readInt32LE(4),
    address: bytesToIp(attrs.get(NDA_DST) ?? Buffer.alloc(4)),
    state: p.readUInt16LE(8),
    flags: p.readUInt8(10),
  };
  const ll = attrs.get(NDA_LLADDR);
  if (ll && ll.length === 6) n.mac = formatMac(ll);
  return n;
}
