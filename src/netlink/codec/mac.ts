// MAC addresses: 6 bytes on the wire, "aa:bb:cc:dd:ee:ff" for people.
import { hexDigit } from "./hex.js";

/** Exactly six colon-separated pairs of hex digits (either case). */
export function parseMac(text: string): Buffer {
  const out = Buffer.allocUnsafe(6);
  if (text.length === 17) {
    let i = 0;
    for (; i < 6; i++) {
      const hi = hexDigit(text.charCodeAt(i * 3));
      const lo = hexDigit(text.charCodeAt(i * 3 + 1));
      if (hi < 0 || lo < 0 || (i < 5 && text.charCodeAt(i * 3 + 2) !== 58)) break;
      out[i] = hi * 16 + lo;
    }
    if (i === 6) return out;
  }
  throw new Error(`invalid MAC address "${text}"`);
}

export function formatMac(bytes: Buffer): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(":");
}
