// nlmsghdr framing: encoding requests and splitting a reply stream into
// messages, including NLMSG_ERROR acks with the kernel's extended-ack text.
import { align4, attrMap, parseAttrs, readString } from "./attributes.js";
import {
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSGERR_ATTR_MSG,
} from "./constants.js";

export const NLMSG_HDRLEN = 16;

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Everything after the 16-byte header. */
  payload: Buffer;
}

/** One request message: header + fixed family header + attributes. */
export function encodeMessage(type: number, flags: number, seq: number, parts: Buffer[]): Buffer {
  let len = NLMSG_HDRLEN;
  for (const p of parts) len += p.length;
  // Cut from Node's shared slab (see zeroed()); every byte is written below.
  const out = Buffer.allocUnsafe(align4(len));
  out.writeUInt32LE(len, 0);
  out.writeUInt16LE(type, 4);
  out.writeUInt16LE(flags, 6);
  out.writeUInt32LE(seq >>> 0, 8);
  out.writeUInt32LE(0, 12);
  let off = NLMSG_HDRLEN;
  for (const p of parts) off += p.copy(out, off);
  if (out.length > len) out.fill(0, len);
  return out;
}

/** Rewrites the sequence number of an encoded message in place. */
export function setSeq(message: Buffer, seq: number): void {
  message.writeUInt32LE(seq >>> 0, 8);
}

/** Splits a buffer of concatenated messages. A malformed length ends parsing with an error. */
export function parseMessages(buf: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) {
      throw new Error(`malformed netlink message at offset ${off}: length ${len}, ${buf.length - off} bytes left`);
    }
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

export interface AckInfo {
  /** 0 for success, else a positive errno. */
  errno: number;
  /** The kernel's own explanation (extended ack), when it gave one. */
  extack?: string;
}

/** Decodes an NLMSG_ERROR payload (struct nlmsgerr + optional ack TLVs). */
export function parseAck(message: NetlinkMessage): AckInfo {
  if (message.type !== NLMSG_ERROR) throw new Error(`not an ack: type ${message.type}`);
  const p = message.payload;
  if (p.length < 4) throw new Error("truncated netlink ack");
  const errno = -p.readInt32LE(0) || 0;
  const info: AckInfo = { errno };
  if (message.flags & NLM_F_ACK_TLVS) {
    // The echoed request header follows; with NLM_F_CAPPED its body is left out.
    let tlvStart = 4 + NLMSG_HDRLEN;
    if (!(message.flags & NLM_F_CAPPED) && p.length >= 4 + NLMSG_HDRLEN) {
      tlvStart = 4 + align4(p.readUInt32LE(4));
    }
    const text = readString(attrMap(parseAttrs(p, tlvStart)).get(NLMSGERR_ATTR_MSG));
    if (text) info.extack = text;
  }
  return info;
}

/** NLMSG_DONE may carry a negative errno when a dump fails part-way. */
export function parseDone(message: NetlinkMessage): number {
  if (message.type !== NLMSG_DONE) throw new Error(`not a done message: type ${message.type}`);
  // `|| 0`: a zero error must read as 0, not -0 (as parseAck does).
  return message.payload.length >= 4 ? -message.payload.readInt32LE(0) || 0 : 0;
}
