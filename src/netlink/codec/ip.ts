// IP addresses as the kernel wants them: 4 or 16 raw bytes. Parsed by hand:
// an Attach converts a dozen addresses, and node:net's isIPv6 (a large
// regular expression) cost more than the rest of building the messages. The
// accepted syntax is node:net's (its tests compare the two).
import { AF_INET, AF_INET6 } from "./constants.js";
import { hexDigit } from "./hex.js";

export function ipToBytes(text: string): Buffer {
  const b = parseIp(text);
  if (b === undefined) throw new Error(`invalid IP address "${text}"`);
  return b;
}

/**
 * 4 bytes for dotted-quad IPv4, 16 for IPv6 (with "::", an embedded IPv4
 * tail, or a "%zone", which is dropped); undefined for anything else.
 */
export function parseIp(text: string): Buffer | undefined {
  return text.includes(":") ? parseV6(text) : parseV4(text, 0, text.length, Buffer.allocUnsafe(4), 0);
}

/** text[start, end) as four decimal octets (no leading zeros) into out at off. */
function parseV4(text: string, start: number, end: number, out: Buffer, off: number): Buffer | undefined {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = start; i <= end; i++) {
    const c = i < end ? text.charCodeAt(i) : 46; // a final "." closes the last octet
    if (c === 46) {
      if (digits === 0 || part > 3) return undefined;
      out[off + part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return undefined; // leading zero
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return undefined;
    } else {
      return undefined;
    }
  }
  return part === 4 ? out : undefined;
}

function parseV6(text: string): Buffer | undefined {
  let end = text.length;
  const zone = text.indexOf("%");
  if (zone >= 0) {
    if (zone === end - 1) return undefined;
    for (let i = zone + 1; i < end; i++) if (!isZoneChar(text.charCodeAt(i))) return undefined;
    end = zone;
  }
  const out = Buffer.alloc(16);
  const gap = text.indexOf("::");
  if (gap >= end) return parseGroups(text, 0, end, out, 0, 8, true) === 8 ? out : undefined;
  if (gap >= 0 && text.indexOf("::", gap + 1) >= 0 && text.indexOf("::", gap + 1) < end) return undefined;
  if (gap < 0) return parseGroups(text, 0, end, out, 0, 8, true) === 8 ? out : undefined;
  // head :: tail, the gap standing for at least one zero group
  const head = gap === 0 ? 0 : parseGroups(text, 0, gap, out, 0, 7, false);
  if (head < 0) return undefined;
  if (gap + 2 === end) return out;
  const tail = Buffer.alloc(16);
  const n = parseGroups(text, gap + 2, end, tail, 0, 7 - head, true);
  if (n < 0) return undefined;
  tail.copy(out, 16 - n * 2, 0, n * 2);
  return out;
}

/**
 * Colon-separated hex groups in text[start, end) into out (from group `at`),
 * at most `max`; the last may be a dotted quad (two groups) when `v4Tail`.
 * Returns how many groups were written, or -1.
 */
function parseGroups(text: string, start: number, end: number, out: Buffer, at: number, max: number, v4Tail: boolean): number {
  let n = 0;
  let i = start;
  for (;;) {
    let j = i;
    let value = 0;
    while (j < end && j - i < 5) {
      const h = hexDigit(text.charCodeAt(j));
      if (h < 0) break;
      value = value * 16 + h;
      j++;
    }
    const c = j < end ? text.charCodeAt(j) : -1;
    if (c === 46 && v4Tail) {
      // a dotted quad: the rest of the text, worth two groups
      if (n + 2 > max || parseV4(text, i, end, out, (at + n) * 2) === undefined) return -1;
      return n + 2;
    }
    if (j === i || j - i > 4 || n + 1 > max) return -1;
    out.writeUInt16BE(value, (at + n) * 2);
    n++;
    if (j === end) return n;
    if (c !== 58) return -1;
    i = j + 1;
    if (i === end) return -1; // a trailing single colon
  }
}

/** What node:net accepts in an IPv6 zone: letters, digits, "-", "." and ":". */
function isZoneChar(c: number): boolean {
  return (c >= 48 && c <= 58) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46;
}

export function bytesToIp(b: Buffer): string {
  if (b.length === 4) return [...b].join(".");
  if (b.length !== 16) throw new Error(`an IP address has 4 or 16 bytes, not ${b.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

export const familyOfBytes = (b: Buffer): number => (b.length === 4 ? AF_INET : AF_INET6);

