// rtattr/nlattr: a 4-byte header (len, type) followed by the payload, padded
// to 4 bytes. Nested attributes are just attributes whose payload is more
// attributes.
import { NLA_TYPE_MASK } from "./constants.js";

export const align4 = (n: number): number => (n + 3) & ~3;

export interface Attr {
  type: number;
  value: Buffer;
}

/** Encodes one attribute; `value` is the raw payload. */
export function attr(type: number, value: Buffer): Buffer {
  const len = 4 + value.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  value.copy(out, 4);
  return out;
}

export const attrU8 = (type: number, v: number): Buffer => attr(type, Buffer.from([v & 0xff]));

export function attrU32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return attr(type, b);
}

export function attrS32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v, 0);
  return attr(type, b);
}

/** A NUL-terminated string, as the kernel expects for names and kinds. */
export const attrString = (type: number, s: string): Buffer => attr(type, Buffer.from(`${s}\0`, "utf8"));

export const attrNested = (type: number, children: Buffer[]): Buffer => attr(type, Buffer.concat(children));

/** Parses a run of attributes; stops quietly at a truncated tail. */
export function parseAttrs(buf: Buffer, offset = 0, end = buf.length): Attr[] {
  const out: Attr[] = [];
  let off = offset;
  while (off + 4 <= end) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    if (len < 4 || off + len > end) break;
    out.push({ type, value: buf.subarray(off + 4, off + len) });
    off += align4(len);
  }
  return out;
}

/** Attributes keyed by type; the last one wins, as in the kernel's own parser. */
export function attrMap(attrs: Attr[]): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (const a of attrs) m.set(a.type, a.value);
  return m;
}

/** A string attribute without its trailing NUL. */
export function readString(value: Buffer | undefined): string | undefined {
  if (value === undefined) return undefined;
  const nul = value.indexOf(0);
  return value.toString("utf8", 0, nul < 0 ? value.length : nul);
}

export const readU32 = (value: Buffer | undefined): number | undefined =>
  value !== undefined && value.length >= 4 ? value.readUInt32LE(0) : undefined;

export const readS32 = (value: Buffer | undefined): number | undefined =>
  value !== undefined && value.length >= 4 ? value.readInt32LE(0) : undefined;
