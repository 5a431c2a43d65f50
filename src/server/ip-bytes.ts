// Text IP addresses <-> the raw network-order bytes used on the wire
// (AttachResponse.ip: 4 bytes per IPv4 address, 16 per IPv6 address).

import { isIPv4, isIPv6 } from "node:net";

/** Converts "10.88.0.2" to 4 bytes and "fd00:88::2" to 16 bytes. Throws on anything else. */
export function ipToBytes(text: string): Uint8Array {
  if (isIPv4(text)) {
    return Uint8Array.from(text.split(".").map((part) => Number(part)));
  }
  if (isIPv6(text) && !text.includes("%")) {
    return ipv6ToBytes(text);
  }
  throw new TypeError(`not an IP address: ${JSON.stringify(text)}`);
}

/** Converts 4 or 16 bytes back to the usual text form (IPv6 compressed, lower case). */
export function bytesToIp(bytes: Uint8Array): string {
  if (bytes.length === 4) {
    return Array.from(bytes).join(".");
  }
  if (bytes.length !== 16) {
    throw new TypeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  }
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) {
    groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  }
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(":");
  const head = hex.slice(0, bestStart).join(":");
  const tail = hex.slice(bestStart + bestLen).join(":");
  return `${head}::${tail}`;
}

function ipv6ToBytes(text: string): Uint8Array {
  // isIPv6 has already validated the syntax; only the layout is handled here.
  let groupsText = text;
  const out = new Uint8Array(16);
  let embedded: number[] = [];
  const lastColon = groupsText.lastIndexOf(":");
  const lastPart = groupsText.slice(lastColon + 1);
  if (lastPart.includes(".")) {
    // Trailing dotted quad, e.g. ::ffff:10.0.0.1 — it fills the last two groups.
    embedded = lastPart.split(".").map((p) => Number(p));
    groupsText = groupsText.slice(0, lastColon + 1) + "0:0";
  }
  const [headText, tailText] = groupsText.split("::") as [string, string | undefined];
  const parse = (s: string): number[] => (s === "" ? [] : s.split(":").map((g) => parseInt(g, 16)));
  const head = parse(headText);
  const tail = tailText === undefined ? [] : parse(tailText);
  const groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  if (embedded.length === 4) out.set(embedded, 12);
  return out;
}
