// IP addresses as numbers. Allocation is arithmetic over a range, and IPv6
// needs 128 bits, so addresses are bigints here; text and bytes exist only at
// the edges (config, netlink, the gRPC reply). Text is parsed and formatted
// by the netlink codec's functions, the one implementation of that syntax.

import { bytesToIp, parseIp } from "../netlink/codec/ip.js";

export type Family = 4 | 6;

/** Width of an address in bits, per family. */
export const ADDRESS_BITS: Readonly<Record<Family, number>> = { 4: 32, 6: 128 };

/** An address as a number, tagged with its family (a bigint alone is ambiguous). */
export interface Address {
  readonly family: Family;
  readonly value: bigint;
}

/** 4 or 6 for a valid address in text form, undefined otherwise. */
export function addressFamily(text: string): Family | undefined {
  const bytes = addressBytes(text);
  return bytes === undefined ? undefined : bytes.length === 4 ? 4 : 6;
}

/** Parses an address; throws an Error saying what is wrong. */
export function parseAddress(text: string): Address {
  const bytes = requireAddressBytes(text);
  return { family: bytes.length === 4 ? 4 : 6, value: bytesToBigint(bytes) };
}

/**
 * An address in text form as its network-order bytes (4 or 16), or undefined
 * if it is not one. The codec accepts an IPv6 zone ("fe80::1%eth0"); a zone
 * has no place in a pod address.
 */
export function addressBytes(text: string): Buffer | undefined {
  return text.includes("%") ? undefined : parseIp(text);
}

/** addressBytes, or an Error saying what is wrong. */
function requireAddressBytes(text: string): Buffer {
  const bytes = addressBytes(text);
  if (bytes !== undefined) return bytes;
  const guess = text.includes(":") ? "IPv6" : "IPv4";
  throw new Error(`${JSON.stringify(text)} is not a valid ${guess} address`);
}

function bytesToBigint(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

/** The number for an address in text form. */
export function addressToBigint(text: string): bigint {
  return parseAddress(text).value;
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run as "::"). */
export function bigintToAddress(value: bigint, family: Family): string {
  const bits = ADDRESS_BITS[family];
  if (value < 0n || value >> BigInt(bits) !== 0n) {
    throw new RangeError(`${value} does not fit in an IPv${family} address`);
  }
  return bytesToIp(addressToBuffer({ family, value }));
}

/** Re-renders an address in canonical text form ("FD00:0088::0002" → "fd00:88::2"). */
export function canonicalAddress(text: string): string {
  const { family, value } = parseAddress(text);
  return bigintToAddress(value, family);
}

/** Network byte order, 4 or 16 bytes: what netlink and the gRPC reply carry. */
export function addressToBuffer(addr: string | Address): Buffer {
  if (typeof addr === "string") return requireAddressBytes(addr);
  const { family, value } = addr;
  const buf = Buffer.alloc(family === 4 ? 4 : 16);
  let v = value;
  for (let i = buf.length - 1; i >= 0; i--) {
    buf[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return buf;
}

/** The inverse of addressToBuffer. */
export function bufferToAddress(buf: Uint8Array): string {
  if (buf.length !== 4 && buf.length !== 16) {
    throw new Error(`an IP address has 4 or 16 bytes, got ${buf.length}`);
  }
  return bytesToIp(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
}
