// nlmsghdr framing, acks (with extended-ack TLVs) and NLMSG_DONE.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { attr, attrString, attrU32 } from "./attributes.js";
import {
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
  RTM_NEWLINK,
  RTM_NEWROUTE,
} from "./constants.js";
import { encodeMessage, NLMSG_HDRLEN, parseAck, parseDone, parseMessages, setSeq } from "./message.js";

/** A raw nlmsghdr + payload as the kernel would send it (len = 16 + payload, padded). */
function rawMessage(type: number, flags: number, seq: number, pid: number, payload: Buffer): Buffer {
  const len = NLMSG_HDRLEN + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt32LE(len, 0);
  out.writeUInt16LE(type, 4);
  out.writeUInt16LE(flags, 6);
  out.writeUInt32LE(seq, 8);
  out.writeUInt32LE(pid, 12);
  payload.copy(out, 16);
  return out;
}

function int32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v, 0);
  return b;
}

describe("nlmsghdr framing", () => {
  it("encodes the header exactly", () => {
    const m = encodeMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, 0x01020304, [Buffer.alloc(16), attrString(3, "eth0")]);
    assert.equal(m.length, 16 + 16 + 12);
    assert.equal(m.subarray(0, 16).toString("hex"), "2c000000" + "1000" + "0506" + "04030201" + "00000000");
    assert.equal(m.subarray(16, 32).toString("hex"), "00".repeat(16));
    assert.equal(m.subarray(32).toString("hex"), "09000300" + "6574683000" + "000000");
  });

  it("pads the message but keeps nlmsg_len unpadded", () => {
    const m = encodeMessage(RTM_NEWLINK, NLM_F_REQUEST, 1, [Buffer.from([1, 2, 3, 4, 5])]);
    assert.equal(m.readUInt32LE(0), 21);
    assert.equal(m.length, 24);
    assert.deepEqual([...m.subarray(21)], [0, 0, 0]);
  });

  it("round-trips: encode -> parse gives the same fields and payload", () => {
    const parts = [Buffer.alloc(12, 7), attrU32(4, 2)];
    const m = encodeMessage(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK, 0xfffffffe, parts);
    const [p, ...rest] = parseMessages(m);
    assert.equal(rest.length, 0);
    assert.deepEqual({ type: p!.type, flags: p!.flags, seq: p!.seq, pid: p!.pid }, { type: RTM_NEWROUTE, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 0xfffffffe, pid: 0 });
    assert.deepEqual(p!.payload, Buffer.concat(parts));
  });

  it("rewrites the sequence number in place", () => {
    const m = encodeMessage(RTM_NEWLINK, NLM_F_REQUEST, 1, [Buffer.alloc(16)]);
    setSeq(m, 0xdeadbeef);
    assert.equal(parseMessages(m)[0]!.seq, 0xdeadbeef);
  });

  it("splits concatenated messages, including unaligned lengths", () => {
    const a = rawMessage(RTM_NEWLINK, NLM_F_MULTI, 10, 99, Buffer.from([1, 2, 3])); // len 19, padded 20
    const b = rawMessage(RTM_NEWLINK, NLM_F_MULTI, 10, 99, Buffer.alloc(16, 0xaa));
    const c = rawMessage(NLMSG_DONE, NLM_F_MULTI, 10, 99, int32(0));
    const msgs = parseMessages(Buffer.concat([a, b, c]));
    assert.deepEqual(msgs.map((m) => m.type), [RTM_NEWLINK, RTM_NEWLINK, NLMSG_DONE]);
    assert.deepEqual([...msgs[0]!.payload], [1, 2, 3]);
    assert.equal(msgs[1]!.payload.length, 16);
    assert.ok(msgs[1]!.payload.every((x) => x === 0xaa));
    assert.deepEqual(msgs.map((m) => [m.seq, m.pid, m.flags]), [[10, 99, NLM_F_MULTI], [10, 99, NLM_F_MULTI], [10, 99, NLM_F_MULTI]]);
    assert.deepEqual(parseMessages(Buffer.alloc(0)), []);
  });

  it("throws on a malformed length", () => {
    const good = rawMessage(RTM_NEWLINK, 0, 1, 0, Buffer.alloc(16));
    const tooLong = Buffer.from(good);
    tooLong.writeUInt32LE(200, 0);
    assert.throws(() => parseMessages(tooLong), /malformed netlink message at offset 0: length 200/);
    const tooShort = Buffer.from(good);
    tooShort.writeUInt32LE(8, 0);
    assert.throws(() => parseMessages(tooShort), /length 8/);
    // the second message is the broken one
    const second = Buffer.from(good);
    second.writeUInt32LE(0, 0);
    assert.throws(() => parseMessages(Buffer.concat([good, second])), /at offset 32: length 0/);
  });
});

describe("acks", () => {
  const request = encodeMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, 77, [Buffer.alloc(16), attrString(3, "veth0")]);

  it("parses a plain success ack", () => {
    const ack = parseMessages(rawMessage(NLMSG_ERROR, NLM_F_CAPPED, 77, 0, Buffer.concat([int32(0), request.subarray(0, 16)])))[0]!;
    const info = parseAck(ack);
    assert.equal(info.errno, 0);
    assert.ok(Object.is(info.errno, 0));
    assert.equal(info.extack, undefined);
  });

  it("parses a capped error with extended-ack TLVs", () => {
    const text = "Device with that name already exists"; // odd length exercises padding
    const payload = Buffer.concat([int32(-17), request.subarray(0, 16), attrString(NLMSGERR_ATTR_MSG, text), attrU32(NLMSGERR_ATTR_OFFS, 0x20)]);
    const [ack] = parseMessages(rawMessage(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 77, 0, payload));
    assert.deepEqual(parseAck(ack!), { errno: 17, extack: text });
  });

  it("parses an uncapped error (whole request echoed) with TLVs after it", () => {
    const payload = Buffer.concat([int32(-22), request, attrString(NLMSGERR_ATTR_MSG, "Invalid MTU")]);
    const [ack] = parseMessages(rawMessage(NLMSG_ERROR, NLM_F_ACK_TLVS, 77, 0, payload));
    assert.deepEqual(parseAck(ack!), { errno: 22, extack: "Invalid MTU" });
  });

  it("ignores TLV-looking bytes when NLM_F_ACK_TLVS is not set", () => {
    const payload = Buffer.concat([int32(-1), request.subarray(0, 16), attrString(NLMSGERR_ATTR_MSG, "not a TLV")]);
    const [ack] = parseMessages(rawMessage(NLMSG_ERROR, NLM_F_CAPPED, 77, 0, payload));
    assert.deepEqual(parseAck(ack!), { errno: 1 });
  });

  it("an ack with TLVs but no message has no extack", () => {
    const payload = Buffer.concat([int32(-34), request.subarray(0, 16), attrU32(NLMSGERR_ATTR_OFFS, 0x2c)]);
    const [ack] = parseMessages(rawMessage(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 77, 0, payload));
    assert.deepEqual(parseAck(ack!), { errno: 34 });
  });

  it("rejects non-acks and truncated acks", () => {
    const [notAck] = parseMessages(rawMessage(RTM_NEWLINK, 0, 1, 0, Buffer.alloc(16)));
    assert.throws(() => parseAck(notAck!), /not an ack: type 16/);
    const [short] = parseMessages(rawMessage(NLMSG_ERROR, 0, 1, 0, Buffer.from([1, 2])));
    assert.throws(() => parseAck(short!), /truncated netlink ack/);
  });
});

describe("NLMSG_DONE", () => {
  it("is 0 for a finished dump", () => {
    const [done] = parseMessages(rawMessage(NLMSG_DONE, NLM_F_MULTI, 5, 0, int32(0)));
    assert.equal(parseDone(done!), 0);
  });

  it("carries a dump's errno", () => {
    const [done] = parseMessages(rawMessage(NLMSG_DONE, NLM_F_MULTI, 5, 0, int32(-16)));
    assert.equal(parseDone(done!), 16);
  });

  it("an empty DONE (old kernels) is success; other types are refused", () => {
    const [done] = parseMessages(rawMessage(NLMSG_DONE, NLM_F_MULTI, 5, 0, Buffer.alloc(0)));
    assert.equal(parseDone(done!), 0);
    const [err] = parseMessages(rawMessage(NLMSG_ERROR, 0, 5, 0, int32(0)));
    assert.throws(() => parseDone(err!), /not a done message: type 2/);
  });

  it("sorts out a mixed stream: data, error ack, DONE with error", () => {
    const stream = Buffer.concat([
      rawMessage(RTM_NEWLINK, NLM_F_MULTI, 1, 0, Buffer.alloc(16)),
      rawMessage(NLMSG_DONE, NLM_F_MULTI, 1, 0, int32(-4)),
      rawMessage(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 2, 0, Buffer.concat([int32(-19), request16(), attr(NLMSGERR_ATTR_MSG, Buffer.from("no such device\0"))])),
    ]);
    const msgs = parseMessages(stream);
    assert.deepEqual(msgs.map((m) => [m.type, m.seq]), [[RTM_NEWLINK, 1], [NLMSG_DONE, 1], [NLMSG_ERROR, 2]]);
    assert.equal(parseDone(msgs[1]!), 4);
    assert.deepEqual(parseAck(msgs[2]!), { errno: 19, extack: "no such device" });
  });
});

function request16(): Buffer {
  return encodeMessage(17, NLM_F_REQUEST | NLM_F_ACK, 2, [Buffer.alloc(16)]).subarray(0, 16);
}
