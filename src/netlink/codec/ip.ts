// IP addresses as the kernel wants them: 4 or 16 raw bytes.
import { isIPv4, isIPv6 } from "node:net";
import { AF_INET, AF_INET6 } from "./constants.js";

export function ipToBytes(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split(".").map((o) => Number(o)));
  if (isIPv6(text)) return ipv6ToBytes(text);
  throw new Error(`invalid IP address "${text}"`);
}

function ipv6ToBytes(text: string): Buffer {
  let s = text.split("%")[0] ?? text;
  // A trailing dotted quad (::ffff:1.2.3.4) becomes two hextets.
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (quad?.[1]) {
    const b = ipToBytes(quad[1]);
    s = s.slice(0, -quad[1].length) + `${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = s.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  const groups = [...h, ...Array<string>(fill).fill("0"), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
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

export const familyOf = (text: string): number => (isIPv4(text) ? AF_INET : isIPv6(text) ? AF_INET6 : 0);

export const familyOfBytes = (b: Buffer): number => (b.length === 4 ? AF_INET : AF_INET6);

export const maxPrefixLen = (family: number): number => (family === AF_INET ? 32 : 128);
