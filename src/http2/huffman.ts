// HPACK's static Huffman code (RFC 7541, Appendix B). The code is canonical:
// codes of one length are consecutive in symbol order and shorter codes come
// first, so the bit lengths alone define it. They are kept here, one letter
// per symbol ("A" = 5 bits … "Z" = 30 bits), for bytes 0–255 and EOS (256);
// the codes are derived from them once, at load (huffman.spec.ts checks known
// codes from the RFC and that the lengths make a complete code).

const LENGTHS =
  "ISXXXXXXXTZXXZXXXXXXXXZXXXXXXXXXBFFHIBDGFFDGDBBBAAABBBBBBBCDKBHFIBCCCCCCCCCCCCCCCCCCCCCCDCDIOIJBKABABABBBACCBBBABCBAABCCCCCKGJIXPRPPRRRSRSSSSSTSTTRSTSSSSQRSRSSTRQPRRSSQSRRTQRSSQQRQSRSSPRRRSRRSVVPORSRUVVVWWVTUOQVWWVWTQQVVXWWWPTPQRQQSRRUUTTVSVWVVWWWWWXWWWWWVZ";

const EOS = 256;
const MIN_BITS = 5;
const MAX_BITS = 30;

/** Bit length of each symbol's code. */
export const codeLengths: readonly number[] = Array.from(LENGTHS, (c) => c.charCodeAt(0) - 65 + MIN_BITS);

/** Each symbol's code, right-aligned. */
export const codes: readonly number[] = (() => {
  const out = new Array<number>(codeLengths.length).fill(0);
  let code = 0;
  for (let bits = MIN_BITS; bits <= MAX_BITS; bits++) {
    for (let sym = 0; sym < codeLengths.length; sym++) {
      if (codeLengths[sym] === bits) out[sym] = code++;
    }
    code <<= 1;
  }
  return out;
})();

// Canonical decoding: for each length, the first code of that length, how
// many codes have it, and where its symbols start in `sorted`.
const firstCode = new Int32Array(MAX_BITS + 1);
const countOf = new Int32Array(MAX_BITS + 1);
const startOf = new Int32Array(MAX_BITS + 1);
const sorted = new Uint16Array(codeLengths.length);
{
  let at = 0;
  for (let bits = MIN_BITS; bits <= MAX_BITS; bits++) {
    startOf[bits] = at;
    for (let sym = 0; sym < codeLengths.length; sym++) {
      if (codeLengths[sym] !== bits) continue;
      if (countOf[bits] === 0) firstCode[bits] = codes[sym]!;
      countOf[bits]!++;
      sorted[at++] = sym;
    }
  }
}

export class HuffmanError extends Error {}

/** Decodes a Huffman-coded string literal (src[start…end]) into latin1 text. */
export function huffmanDecode(src: Uint8Array, start: number, end: number): string {
  let out = "";
  // The code read so far, bit by bit, and its length: canonical decoding
  // checks at each length whether it is a code of that length.
  let code = 0;
  let bits = 0;
  for (let i = start; i < end; i++) {
    const byte = src[i]!;
    for (let b = 7; b >= 0; b--) {
      code = (code << 1) | ((byte >> b) & 1);
      bits++;
      if (bits < MIN_BITS) continue;
      const offset = code - firstCode[bits]!;
      if (offset >= 0 && offset < countOf[bits]!) {
        const sym = sorted[startOf[bits]! + offset]!;
        if (sym === EOS) throw new HuffmanError("Huffman string contains EOS");
        out += String.fromCharCode(sym);
        code = 0;
        bits = 0;
      } else if (bits >= MAX_BITS) {
        throw new HuffmanError("Huffman string is not a sequence of codes");
      }
    }
  }
  // What is left must be fewer than 8 bits, all ones (a prefix of EOS).
  if (bits > 7 || code !== (1 << bits) - 1) throw new HuffmanError("Huffman string has bad padding");
  return out;
}

/** The Huffman-coded length of a latin1 string, in bytes. */
export function huffmanLength(text: string): number {
  let bits = 0;
  for (let i = 0; i < text.length; i++) bits += codeLengths[text.charCodeAt(i) & 0xff]!;
  return (bits + 7) >> 3;
}

/** Writes text Huffman-coded at dst[at…]; returns the end. */
export function huffmanEncode(text: string, dst: Uint8Array, at: number): number {
  let acc = 0;
  let have = 0;
  for (let i = 0; i < text.length; i++) {
    const sym = text.charCodeAt(i) & 0xff;
    const len = codeLengths[sym]!;
    let code = codes[sym]!;
    let left = len;
    // Codes are up to 30 bits: feed them in pieces of at most 16.
    while (left > 0) {
      const take = left > 16 ? left - 16 : left;
      const piece = (code >>> (left - take)) & ((1 << take) - 1);
      acc = (acc << take) | piece;
      have += take;
      left -= take;
      code &= left === 0 ? 0 : (1 << left) - 1;
      while (have >= 8) {
        dst[at++] = (acc >>> (have - 8)) & 0xff;
        have -= 8;
        acc &= (1 << have) - 1;
      }
    }
  }
  if (have > 0) dst[at++] = ((acc << (8 - have)) | ((1 << (8 - have)) - 1)) & 0xff;
  return at;
}
