// IP addresses as numbers. Allocation is arithmetic over a range, and IPv6
// needs 128 bits, so addresses are bigints here; text and bytes exist only at
// the edges (config, netlink, the gRPC reply).

import { isIPv4, isIPv6 } from "node:net";

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
  if (isIPv4(text)) return 4;
  // node accepts a zone ("fe80::1%eth0"); a zone has no place in a pod address.
  if (isIPv6(text) && !text.includes("%")) return 6;
  return undefined;
}

/** Parses an address; throws an Error saying what is wrong. */
export function parseAddress(text: string): Address {
  const family = addressFamily(text);
  if (family === 4) return { family, value: BigInt(ipv4ToNumber(text)) };
  if (family === 6) return { family, value: ipv6ToBigint(text) };
  const guess = text.includes(":") ? "IPv6" : "IPv4";
  throw new Error(`${JSON.stringify(text)} is not a valid ${guess} address`);
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
  if (family === 4) {
    const n = Number(value);
    return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join(".");
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  return formatIpv6Groups(groups);
}

/** Re-renders an address in canonical text form ("FD00:0088::0002" → "fd00:88::2"). */
export function canonicalAddress(text: string): string {
  const { family, value } = parseAddress(text);
  return bigintToAddress(value, family);
}

/** Network byte order, 4 or 16 bytes: what netlink and the gRPC reply carry. */
export function addressToBuffer(addr: string | Address): Buffer {
  const { family, value } = typeof addr === "string" ? parseAddress(addr) : addr;
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
  let value = 0n;
  for (const byte of buf) value = (value << 8n) | BigInt(byte);
  return bigintToAddress(value, buf.length === 4 ? 4 : 6);
}

// Input already passed isIPv4, so it is four decimal octets.
function ipv4ToNumber(text: string): number {
  return text.split(".").reduce((acc, part) => acc * 256 + Number(part), 0);
}

// Input already passed isIPv6 (no zone). Handles "::" and a trailing dotted quad.
function ipv6ToBigint(text: string): bigint {
  let body = text;
  const tail: number[] = [];
  if (text.includes(".")) {
    const cut = text.lastIndexOf(":");
    const v4 = ipv4ToNumber(text.slice(cut + 1));
    tail.push(v4 >>> 16, v4 & 0xffff);
    // Keep a "::" that ends right before the quad; drop a lone separator.
    body = text.slice(0, cut + 1);
    if (!body.endsWith("::")) body = body.slice(0, -1);
  }
  const halves = body.split("::");
  const hex = (s: string | undefined): number[] =>
    s ? s.split(":").map((g) => parseInt(g, 16)) : [];
  const left = hex(halves[0]);
  const right = [...hex(halves[1]), ...tail];
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) {
    throw new Error(`${JSON.stringify(text)} is not a valid IPv6 address`);
  }
  const groups = [...left, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...right];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

function formatIpv6Groups(groups: number[]): string {
  // Longest run of zero groups (leftmost on a tie); RFC 5952 compresses only runs of 2+.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}
