// rtattr/nlattr: a 4-byte header (len, type) followed by the payload, padded
// to 4 bytes. Nested attributes are just attributes whose payload is more
// attributes.
import { NLA_TYPE_MASK } from "./constants.js";

export const align4 = (n: number): number => (n + 3) & ~3;

export interface Attr {
  type: number;
  value: Buffer;
}

/**
 * A zero-filled buffer cut from Node's shared slab. Requests are built from
 * many small pieces; a fresh ArrayBuffer for each (Buffer.alloc) costs more
 * than the rest of the encoding.
 */
export function zeroed(size: number): Buffer {
  return Buffer.allocUnsafe(size).fill(0);
}

/** An attribute's header and room for a payload of `payloadLen` bytes, padding zeroed. */
function attrShell(type: number, payloadLen: number): Buffer {
  const len = 4 + payloadLen;
  const out = Buffer.allocUnsafe(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  if (out.length > len) out.fill(0, len);
  return out;
}

/** Encodes one attribute; `value` is the raw payload. */
export function attr(type: number, value: Buffer): Buffer {
  const out = attrShell(type, value.length);
  value.copy(out, 4);
  return out;
}

export function attrU8(type: number, v: number): Buffer {
  const out = attrShell(type, 1);
  out.writeUInt8(v & 0xff, 4);
  return out;
}

export function attrU32(type: number, v: number): Buffer {
  const out = attrShell(type, 4);
  out.writeUInt32LE(v >>> 0, 4);
  return out;
}

export function attrS32(type: number, v: number): Buffer {
  const out = attrShell(type, 4);
  out.writeInt32LE(v, 4);
  return out;
}

/** A NUL-terminated string, as the kernel expects for names and kinds. */
export function attrString(type: number, s: string): Buffer {
  const n = Buffer.byteLength(s, "utf8");
  const out = attrShell(type, n + 1);
  out.write(s, 4, "utf8");
  out[4 + n] = 0;
  return out;
}

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
