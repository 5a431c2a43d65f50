// Forwarding database entries of a device (`bridge fdb ... self`): a
// struct ndmsg of family AF_BRIDGE whose NDA_LLADDR is a MAC and NDA_DST the
// remote address frames to that MAC are tunnelled to.
import { attr, attrMap, parseAttrs, zeroed } from "./attributes.js";
import { AF_BRIDGE, NDA_DST, NDA_LLADDR, NTF_SELF, NUD_PERMANENT } from "./constants.js";
import { bytesToIp, ipToBytes } from "./ip.js";
import { formatMac, parseMac } from "./mac.js";

export interface FdbEntry {
  /** The device's ifindex. */
  index: number;
  mac: string;
  /** The remote (VTEP) address; absent on plain bridge entries. */
  dst?: string;
  /** NUD_* state bits. */
  state: number;
  /** NTF_* flags. */
  flags: number;
}

/** ndmsg + NDA_LLADDR [+ NDA_DST]; by default a permanent entry of the device itself. */
export function encodeFdb(e: { index: number; mac: string; dst?: string; state?: number; flags?: number }): Buffer[] {
  const hdr = zeroed(12);
  hdr.writeUInt8(AF_BRIDGE, 0);
  hdr.writeInt32LE(e.index, 4);
  hdr.writeUInt16LE(e.state ?? NUD_PERMANENT, 8);
  hdr.writeUInt8(e.flags ?? NTF_SELF, 10);
  const parts = [hdr, attr(NDA_LLADDR, parseMac(e.mac))];
  if (e.dst !== undefined) parts.push(attr(NDA_DST, ipToBytes(e.dst)));
  return parts;
}

/**
 * A dump request for one device's entries. The kernel reads a 16-byte
 * ifinfomsg here (not an ndmsg) and takes its index as the device filter.
 */
export function encodeFdbFilter(index: number): Buffer {
  const hdr = zeroed(16);
  hdr.writeUInt8(AF_BRIDGE, 0);
  hdr.writeInt32LE(index, 4);
  return hdr;
}

export function decodeFdb(p: Buffer): FdbEntry {
  if (p.length < 12) throw new Error("truncated ndmsg");
  const a = attrMap(parseAttrs(p, 12));
  const ll = a.get(NDA_LLADDR);
  const e: FdbEntry = {
    index: p.readInt32LE(4),
    mac: ll && ll.length === 6 ? formatMac(ll) : "",
    state: p.readUInt16LE(8),
    flags: p.readUInt8(10),
  };
  const dst = a.get(NDA_DST);
  if (dst && (dst.length === 4 || dst.length === 16)) e.dst = bytesToIp(dst);
  return e;
}
