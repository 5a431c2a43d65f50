// Wire codecs written out by hand for the messages every Attach and Detach
// carries. protobuf-es reads and writes any message by walking its
// descriptor, which on a daemon V8 has not optimised yet cost ~0.06 ms of
// each Attach's ~1 ms (docs/performance-cold.md); these take ~0.02 ms.
//
// They are a fast path, never a second definition of the protocol: a decoder
// takes only the plain case (each known field at most once, with its proper
// wire type, strings in ASCII, nothing unknown) and answers undefined for
// anything else, which protobuf-es then decodes, so odd but valid input gets
// the same result and bad input the same error. An encoder writes the bytes
// protobuf-es writes for the same value (hot-codecs.spec.ts compares them).

import { isAscii } from "node:buffer";
import type { MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { AttachRequestSchema, AttachResponseSchema, DetachRequestSchema, DetachResponseSchema, NetNSAttachmentSchema } from "../gen/workload_pb.js";

/** Decodes the plain case of a message, else undefined (the caller falls back to protobuf-es). */
export type HotDecoder = (bytes: Uint8Array) => unknown;
/** Encodes a message's value as protobuf-es would, or undefined when the value is not the plain case. */
export type HotEncoder = (value: object) => Uint8Array | undefined;

const WIRE_LEN = 2;

/** Reads varints and length-delimited fields off a buffer; -1 for anything cut short. */
class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  /** A varint up to 2^32 - 1 (tags, lengths), or -1 when cut short or longer. */
  uint32(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= this.end) return -1;
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value <= 0xffffffff ? value : -1;
    }
    return -1;
  }

  /** The next field's payload bounds if it is length-delimited and whole; else undefined. */
  lengthDelimited(): { from: number; to: number } | undefined {
    const len = this.uint32();
    if (len < 0 || len > this.end - this.pos) return undefined;
    const from = this.pos;
    this.pos += len;
    return { from, to: this.pos };
  }

  /** An ASCII string field, or undefined (other bytes: protobuf-es's UTF-8 rules apply). */
  asciiString(): string | undefined {
    const at = this.lengthDelimited();
    if (at === undefined) return undefined;
    const view = this.buf.subarray(at.from, at.to);
    return isAscii(view) ? view.toString("latin1") : undefined;
  }
}

const asBuffer = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

type NetNS = MessageShape<typeof NetNSAttachmentSchema>;

/** NetNSAttachment { string netns_path = 1; string if_name = 2; } */
function readNetns(r: Reader): NetNS | undefined {
  const at = r.lengthDelimited();
  if (at === undefined) return undefined;
  const inner = new Reader(r.buf, at.from, at.to);
  let netnsPath: string | undefined;
  let ifName: string | undefined;
  while (inner.pos < inner.end) {
    const tag = inner.uint32();
    if (tag === ((1 << 3) | WIRE_LEN) && netnsPath === undefined) {
      netnsPath = inner.asciiString();
      if (netnsPath === undefined) return undefined;
    } else if (tag === ((2 << 3) | WIRE_LEN) && ifName === undefined) {
      ifName = inner.asciiString();
      if (ifName === undefined) return undefined;
    } else {
      return undefined;
    }
  }
  return { $typeName: NetNSAttachmentSchema.typeName, netnsPath: netnsPath ?? "", ifName: ifName ?? "" };
}

/**
 * AttachRequest { string workload_id = 1; NetNSAttachment netns = 2; repeated PortMapping port_mappings = 10; }
 * and DetachRequest (the same first two fields): port mappings are left to protobuf-es.
 */
function readWorkloadRequest(bytes: Uint8Array): { workloadId: string; netns?: NetNS } | undefined {
  const r = new Reader(asBuffer(bytes), 0, bytes.length);
  let workloadId: string | undefined;
  let netns: NetNS | undefined;
  let sawNetns = false;
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WIRE_LEN) && workloadId === undefined) {
      workloadId = r.asciiString();
      if (workloadId === undefined) return undefined;
    } else if (tag === ((2 << 3) | WIRE_LEN) && !sawNetns) {
      sawNetns = true;
      netns = readNetns(r);
      if (netns === undefined) return undefined;
    } else {
      return undefined;
    }
  }
  // As protobuf-es leaves it: no netns key at all when the field was absent.
  return netns === undefined ? { workloadId: workloadId ?? "" } : { workloadId: workloadId ?? "", netns };
}

const decodeAttachRequest: HotDecoder = (bytes) => {
  const fields = readWorkloadRequest(bytes);
  if (fields === undefined) return undefined;
  const out: MessageShape<typeof AttachRequestSchema> = { $typeName: AttachRequestSchema.typeName, ...fields, portMappings: [] };
  return out;
};

const decodeDetachRequest: HotDecoder = (bytes) => {
  const fields = readWorkloadRequest(bytes);
  if (fields === undefined) return undefined;
  const out: MessageShape<typeof DetachRequestSchema> = { $typeName: DetachRequestSchema.typeName, ...fields };
  return out;
};

/** Bytes a varint takes. */
const varintSize = (v: number): number => (v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5);

function writeVarint(out: Buffer, pos: number, v: number): number {
  while (v >= 0x80) {
    out[pos++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  out[pos++] = v;
  return pos;
}

/** AttachResponse { repeated bytes ip = 1; string host_if_name = 2; string host_mac = 3; string mac = 4; } */
const encodeAttachResponse: HotEncoder = (value) => {
  const v = value as MessageInitShape<typeof AttachResponseSchema> & { $unknown?: unknown };
  if (v.$unknown !== undefined) return undefined;
  const ips = v.ip ?? [];
  const strings: [number, string][] = [];
  if (v.hostIfName) strings.push([2, v.hostIfName]);
  if (v.hostMac) strings.push([3, v.hostMac]);
  if (v.mac) strings.push([4, v.mac]);
  let size = 0;
  for (const ip of ips) size += 1 + varintSize(ip.length) + ip.length;
  const lengths = strings.map(([, s]) => Buffer.byteLength(s, "utf8"));
  for (const n of lengths) size += 1 + varintSize(n) + n;
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const ip of ips) {
    out[pos++] = (1 << 3) | WIRE_LEN;
    pos = writeVarint(out, pos, ip.length);
    out.set(ip, pos);
    pos += ip.length;
  }
  strings.forEach(([field, s], i) => {
    out[pos++] = (field << 3) | WIRE_LEN;
    pos = writeVarint(out, pos, lengths[i]!);
    pos += out.write(s, pos, "utf8");
  });
  return out;
};

const EMPTY = new Uint8Array(0);

/** DetachResponse {} */
const encodeEmpty: HotEncoder = (value) => ((value as { $unknown?: unknown }).$unknown === undefined ? EMPTY : undefined);

/** By message type name. */
export const HOT_DECODERS: ReadonlyMap<string, HotDecoder> = new Map([
  [AttachRequestSchema.typeName, decodeAttachRequest],
  [DetachRequestSchema.typeName, decodeDetachRequest],
]);

export const HOT_ENCODERS: ReadonlyMap<string, HotEncoder> = new Map([
  [AttachResponseSchema.typeName, encodeAttachResponse],
  [DetachResponseSchema.typeName, encodeEmpty],
]);
