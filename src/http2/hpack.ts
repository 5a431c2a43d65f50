// HPACK (RFC 7541): header blocks to (name, value) pairs and back. The
// decoder is complete (indexed fields, literals with and without indexing,
// dynamic table size updates, Huffman strings), because clients use all of
// it: grpc-go and nghttp2 index every request header and Huffman-code their
// values. The encoder writes what it is told to, with or without indexing
// and Huffman coding; the server answers with literals that are never
// indexed, so its peer's table is never touched.

import { huffmanDecode, huffmanEncode, huffmanLength, HuffmanError } from "./huffman.js";

/** The static table (RFC 7541, Appendix A); index 1 is the first entry. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/** The size HPACK charges an entry: its octets plus 32. */
const entrySize = (name: string, value: string): number => name.length + value.length + 32;

export class HpackError extends Error {}

/**
 * The dynamic table: newest entry first in HPACK's numbering, kept here
 * newest-last so that adding is a push.
 */
class DynamicTable {
  private entries: [string, string][] = [];
  private first = 0; // entries before this index were evicted
  size = 0;

  constructor(public maxSize: number) {}

  get length(): number {
    return this.entries.length - this.first;
  }

  /** 1 = the newest. */
  get(i: number): readonly [string, string] | undefined {
    const at = this.entries.length - i;
    return at >= this.first && i >= 1 ? this.entries[at] : undefined;
  }

  add(name: string, value: string): void {
    const size = entrySize(name, value);
    if (size > this.maxSize) {
      // Larger than the table: the table empties and the entry is not kept.
      this.entries = [];
      this.first = 0;
      this.size = 0;
      return;
    }
    this.evictTo(this.maxSize - size);
    this.entries.push([name, value]);
    this.size += size;
  }

  resize(maxSize: number): void {
    this.maxSize = maxSize;
    this.evictTo(maxSize);
  }

  private evictTo(limit: number): void {
    while (this.size > limit && this.first < this.entries.length) {
      const [n, v] = this.entries[this.first]!;
      this.size -= entrySize(n, v);
      this.first++;
    }
    // Drop evicted slots now and then, not on every eviction.
    if (this.first > 64 && this.first * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.first);
      this.first = 0;
    }
  }

  /** The HPACK index (62…) of an exact entry, or 0. */
  find(name: string, value: string): number {
    for (let i = 1; i <= this.length; i++) {
      const e = this.get(i)!;
      if (e[0] === name && e[1] === value) return STATIC_TABLE.length + i;
    }
    return 0;
  }
}

export interface DecodedHeaders {
  /** In the order they came; names are as sent (HPACK does not change case). */
  fields: [string, string][];
  /** The header list size as RFC 9113 counts it (octets + 32 per field). */
  listSize: number;
}

/**
 * Decodes header blocks of one connection (one direction), keeping the
 * dynamic table across blocks. `maxTableSize` is the limit this side
 * announced (SETTINGS_HEADER_TABLE_SIZE); `maxListSize` bounds what one block
 * may expand to (an HPACK "bomb" of repeated indexed fields is refused
 * without building it).
 */
export class HpackDecoder {
  private readonly table: DynamicTable;

  constructor(
    private readonly maxTableSize = 4096,
    private readonly maxListSize = 64 * 1024,
  ) {
    this.table = new DynamicTable(maxTableSize);
  }

  decode(block: Uint8Array): DecodedHeaders {
    const fields: [string, string][] = [];
    let listSize = 0;
    let i = 0;
    let fieldSeen = false;
    const end = block.length;
    const int = (prefixBits: number): number => {
      if (i >= end) throw new HpackError("header block cut short");
      const mask = (1 << prefixBits) - 1;
      let value = block[i++]! & mask;
      if (value < mask) return value;
      let shift = 0;
      for (;;) {
        if (i >= end) throw new HpackError("header block cut short in an integer");
        const b = block[i++]!;
        value += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if ((b & 0x80) === 0) break;
        if (shift > 28) throw new HpackError("integer too large in header block");
      }
      return value;
    };
    const str = (): string => {
      if (i >= end) throw new HpackError("header block cut short");
      const huffman = (block[i]! & 0x80) !== 0;
      const len = int(7);
      if (len > end - i) throw new HpackError("string longer than the header block");
      const from = i;
      i += len;
      if (!huffman) return latin1(block, from, i);
      try {
        return huffmanDecode(block, from, i);
      } catch (err) {
        if (err instanceof HuffmanError) throw new HpackError(err.message);
        throw err;
      }
    };
    const entry = (index: number): readonly [string, string] => {
      if (index === 0) throw new HpackError("header index 0");
      if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
      const e = this.table.get(index - STATIC_TABLE.length);
      if (e === undefined) throw new HpackError(`header index ${index} is not in the table`);
      return e;
    };
    const emit = (name: string, value: string): void => {
      fieldSeen = true;
      listSize += entrySize(name, value);
      if (listSize > this.maxListSize) throw new HpackError(`header list larger than ${this.maxListSize} bytes`);
      fields.push([name, value]);
    };

    while (i < end) {
      const b = block[i]!;
      if (b & 0x80) {
        // Indexed field.
        const [n, v] = entry(int(7));
        emit(n, v);
      } else if (b & 0x40) {
        // Literal with incremental indexing.
        const index = int(6);
        const name = index === 0 ? str() : entry(index)[0];
        const value = str();
        this.table.add(name, value);
        emit(name, value);
      } else if (b & 0x20) {
        // Dynamic table size update: only before the first field.
        if (fieldSeen) throw new HpackError("table size update after a header field");
        const size = int(5);
        if (size > this.maxTableSize) throw new HpackError(`table size update to ${size}, above the ${this.maxTableSize} allowed`);
        this.table.resize(size);
      } else {
        // Literal without indexing (0000) or never indexed (0001).
        const index = int(4);
        const name = index === 0 ? str() : entry(index)[0];
        emit(name, str());
      }
    }
    return { fields, listSize };
  }
}

/** How the encoder writes a field. */
export interface EncodeOptions {
  /** Add fields to the peer's dynamic table (and use it for repeats). */
  index: boolean;
  /** Huffman-code strings where that is shorter. */
  huffman: boolean;
}

/**
 * Encodes header blocks. With `index`, it mirrors the table its peer's
 * decoder keeps (4096 octets, the default; it never asks for a change).
 */
export class HpackEncoder {
  private readonly table = new DynamicTable(4096);

  constructor(private readonly options: EncodeOptions) {}

  encode(fields: readonly (readonly [string, string])[]): Buffer {
    // An upper bound: every string raw, with 5-byte lengths, and its index.
    let bound = 0;
    for (const [n, v] of fields) bound += n.length + v.length + 12;
    const out = Buffer.allocUnsafe(bound);
    let at = 0;
    for (const [name, value] of fields) {
      const exact = staticIndex(name, value) || (this.options.index ? this.table.find(name, value) : 0);
      if (exact !== 0) {
        at = writeInt(out, at, 7, 0x80, exact);
        continue;
      }
      const nameIndex = staticNameIndex(name);
      if (this.options.index) {
        at = writeInt(out, at, 6, 0x40, nameIndex);
        this.table.add(name, value);
      } else {
        at = writeInt(out, at, 4, 0x00, nameIndex);
      }
      if (nameIndex === 0) at = this.writeString(out, at, name);
      at = this.writeString(out, at, value);
    }
    return out.subarray(0, at);
  }

  private writeString(out: Buffer, at: number, text: string): number {
    if (this.options.huffman) {
      const len = huffmanLength(text);
      if (len < text.length) {
        at = writeInt(out, at, 7, 0x80, len);
        return huffmanEncode(text, out, at);
      }
    }
    at = writeInt(out, at, 7, 0x00, text.length);
    return at + out.write(text, at, "latin1");
  }
}

/** Writes an HPACK integer with an N-bit prefix under `flags`. */
function writeInt(out: Uint8Array, at: number, prefixBits: number, flags: number, value: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[at++] = flags | value;
    return at;
  }
  out[at++] = flags | max;
  value -= max;
  while (value >= 0x80) {
    out[at++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  out[at++] = value;
  return at;
}

const staticExact = new Map<string, number>();
const staticNames = new Map<string, number>();
STATIC_TABLE.forEach(([n, v], i) => {
  staticExact.set(`${n}\0${v}`, i + 1);
  if (!staticNames.has(n)) staticNames.set(n, i + 1);
});
const staticIndex = (name: string, value: string): number => staticExact.get(`${name}\0${value}`) ?? 0;
const staticNameIndex = (name: string): number => staticNames.get(name) ?? 0;

function latin1(b: Uint8Array, from: number, to: number): string {
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return buf.toString("latin1", from, to);
}
