// struct ifaddrmsg (8 bytes) and address attributes.
import { attr, attrMap, attrU32, parseAttrs, readString, readU32, zeroed } from "./attributes.js";
import { IFA_ADDRESS, IFA_FLAGS, IFA_LABEL, IFA_LOCAL } from "./constants.js";
import { bytesToIp, familyOfBytes, ipToBytes } from "./ip.js";

export interface Address {
  index: number;
  address: string;
  prefixLen: number;
  scope: number;
  /** IFA_F_* flags (the 32-bit IFA_FLAGS attribute when present). */
  flags: number;
  label?: string;
}

export function encodeAddress(a: Omit<Address, "label"> & { label?: string }): Buffer[] {
  const ip = ipToBytes(a.address);
  const hdr = zeroed(8);
  hdr.writeUInt8(familyOfBytes(ip), 0);
  hdr.writeUInt8(a.prefixLen, 1);
  hdr.writeUInt8(a.flags & 0xff, 2);
  hdr.writeUInt8(a.scope, 3);
  hdr.writeUInt32LE(a.index, 4);
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS the peer (same on non-p2p links).
  const parts = [hdr, attr(IFA_LOCAL, ip), attr(IFA_ADDRESS, ip)];
  if (a.flags !== 0) parts.push(attrU32(IFA_FLAGS, a.flags));
  if (a.label !== undefined) parts.push(attr(IFA_LABEL, Buffer.from(`${a.label}\0`)));
  return parts;
}

/** The header alone, for dumps filtered by family. */
export function encodeAddrFilter(family: number, index = 0): Buffer {
  const hdr = zeroed(8);
  hdr.writeUInt8(family, 0);
  hdr.writeUInt32LE(index, 4);
  return hdr;
}

export function decodeAddress(p: Buffer): Address {
  if (p.length < 8) throw new Error("truncated ifaddrmsg");
  const attrs = attrMap(parseAttrs(p, 8));
  const raw = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
  const a: Address = {
    index: p.readUInt32LE(4),
    address: raw ? bytesToIp(raw) : "",
    prefixLen: p.readUInt8(1),
    scope: p.readUInt8(3),
    flags: readU32(attrs.get(IFA_FLAGS)) ?? p.readUInt8(2),
  };
  const label = readString(attrs.get(IFA_LABEL));
  if (label !== undefined) a.label = label;
  return a;
}
