// Byte vectors captured once from a real kernel (6.18, iproute2-made veth
// "vcap0" mtu 1400 group 7 alias cap-alias address 02:11:22:33:44:55 with its
// peer in another namespace, 10.88.0.1/32, fd00:88::1/128 nodad, a static
// host route and a permanent neighbour), decoded by our codec.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { align4, parseAttrs } from "./attributes.js";
import { decodeAddress } from "./addr-message.js";
import { AF_INET, IFA_F_NODAD, IFA_F_PERMANENT, IFF_LOWER_UP, IFF_RUNNING, IFF_UP, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_MULTI, NLMSG_ERROR, NUD_PERMANENT, RT_SCOPE_LINK, RT_TABLE_MAIN, RTM_NEWADDR, RTM_NEWLINK, RTN_UNICAST, RTPROT_STATIC } from "./constants.js";
import { decodeLink } from "./link-message.js";
import { parseAck, parseMessages } from "./message.js";
import { decodeNeighbour } from "./neigh-message.js";
import { decodeRoute } from "./route-message.js";
import { NetlinkError } from "../errors.js";

// RTM_GETLINK vcap0 (ACK requested): the RTM_NEWLINK reply followed by the success ack.
const LINK_REPLY =
  "800400001000000034120000a9200000000001000200000043100100000000000a000300766361703000000008000d00e803" +
  "00000500100006000000050011000000000005004300000000000800040078050000080032004400000008003300ffff0000" +
  "08001b000700000008001e000000000008003d000000000008001f000200000008002800ffff000008002900000001000800" +
  "3a000000010008003f0000000100080040000000010008003b00f8ff070008003c00ffff0000080042000000000008002000" +
  "0200000005002100010000000e0014006361702d616c696173000000080023000200000008002f0001000000080030000100" +
  "00000600440000000000060045000000000005002700000000000a00010002112233445500000a000200ffffffffffff0000" +
  "cc0017000000000000000000010000000000000000000000000000006e000000000000000000000000000000000000000000" +
  "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
  "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
  "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
  "00000000640007000000000001000000000000006e0000000000000000000000000000000000000000000000000000000000" +
  "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
  "000000000c002b00050002000000000010001200090001007665746800000000080025000000000008000500020000000c00" +
  "06006e6f717565756500c0011a008c0002008800010000000000000000000000000001000000010000000100000001000000" +
  "0000000001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
  "000000000000000000000000000000000000000000000000000010270000e803000000000000000000000000000000000000" +
  "0100000030010a00080001000000008014000500ffff00007cc80000cc560000e8030000f400020000000000400000007805" +
  "000001000000010000000100000001000000ffffffffa00f0000e803000000000000803a0900805101000300000058020000" +
  "100000000000000001000000010000000100000060ea00000000000000000000000000000000000000000000000000000100" +
  "0000000000000000000010270000e80300000100000000000000000000000100000000000000000000000100000000000000" +
  "00000000000000000000000080ee360000000000000000000100000000000000000000000000000000000000000000000004" +
  "000000000000ffff0000ffffffff010000000000000000000000000000001400070000000000000000000000000000000000" +
  "050008000000000024000e00000000000000000000000000000000000000000000000000000000000000000004003e800400" +
  "4180240000000200000134120000a92000000000000034000000120005003412000000000000";

// RTM_NEWADDR from a dump: 10.88.0.1/32 on vcap0 (index 2), label vcap0, permanent.
const ADDR4_MSG =
  "500000001400020034120000000000000220800002000000080001000a580001080002000a5800010a000300766361703000" +
  "0000080008008000000014000600ffffffffffffffff7cc800007cc80000";

// RTM_NEWADDR from a dump: fd00:88::1/128 nodad on vcap0.
const ADDR6_MSG =
  "480000001400020034120000000000000a8082000200000014000100fd00008800000000000000000000000114000600ffff" +
  "ffffffffffff7dc800007dc800000800080082000000";

// rtmsg payload from a dump: 10.88.0.2/32 dev vcap0 proto static scope link.
const ROUTE_PAYLOAD =
  "02200000fe04fd010000000008000f00fe000000080001000a5800020800040002000000";

// ndmsg payload from a dump: 10.88.0.2 lladdr 02:aa:bb:cc:dd:ee dev vcap0 PERMANENT.
const NEIGH_PAYLOAD =
  "020000000200000080000001080001000a5800020a00020002aabbccddee00000800040000000000140003001f0000001f00" +
  "00001f00000000000000";

// A refused RTM_NEWLINK (IFLA_LINKINFO given as a string): ERANGE, capped, with extack TLVs.
const EXTACK_REPLY =
  "600000000200000334120000a9200000deffffff340000001000050634120000000000002700010041747472696275746520" +
  "6661696c656420706f6c6963792076616c69646174696f6e0000080002002c0000000c000480080001000d000000";

const buf = (h: string): Buffer => Buffer.from(h, "hex");

/** Every attribute, padded, accounts for the bytes after the fixed header: nothing skipped, nothing overrun. */
function assertAttrsFill(payload: Buffer, offset: number): void {
  const attrs = parseAttrs(payload, offset);
  const used = attrs.reduce((n, a) => n + align4(4 + a.value.length), 0);
  assert.equal(offset + used, align4(payload.length));
}

describe("kernel byte vectors", () => {
  it("RTM_NEWLINK reply + ack for a veth", () => {
    const msgs = parseMessages(buf(LINK_REPLY));
    assert.deepEqual(msgs.map((m) => m.type), [RTM_NEWLINK, NLMSG_ERROR]);
    assert.deepEqual(msgs.map((m) => m.seq), [0x1234, 0x1234]);
    assertAttrsFill(msgs[0]!.payload, 16);
    const link = decodeLink(msgs[0]!.payload);
    assert.deepEqual(link, {
      index: 2,
      name: "vcap0",
      flags: IFF_UP | 0x2 /* BROADCAST */ | IFF_RUNNING | 0x1000 /* MULTICAST */ | IFF_LOWER_UP,
      mtu: 1400,
      group: 7,
      alias: "cap-alias",
      mac: "02:11:22:33:44:55",
      kind: "veth",
      parentIndex: 2,
      linkNetnsId: 0,
      operstate: 6, // IF_OPER_UP
      txQueues: 2, // one per CPU of the machine it was captured on
      rxQueues: 2,
    });
    assert.deepEqual(parseAck(msgs[1]!), { errno: 0 });
  });

  it("RTM_NEWADDR for an IPv4 /32", () => {
    const [m, ...rest] = parseMessages(buf(ADDR4_MSG));
    assert.equal(rest.length, 0);
    assert.equal(m!.type, RTM_NEWADDR);
    assert.equal(m!.flags, NLM_F_MULTI);
    assertAttrsFill(m!.payload, 8);
    assert.deepEqual(decodeAddress(m!.payload), { index: 2, address: "10.88.0.1", prefixLen: 32, scope: 0, flags: IFA_F_PERMANENT, label: "vcap0" });
  });

  it("RTM_NEWADDR for an IPv6 /128 nodad (IFA_ADDRESS only)", () => {
    const [m] = parseMessages(buf(ADDR6_MSG));
    assertAttrsFill(m!.payload, 8);
    assert.deepEqual(decodeAddress(m!.payload), { index: 2, address: "fd00:88::1", prefixLen: 128, scope: 0, flags: IFA_F_PERMANENT | IFA_F_NODAD });
  });

  it("a static host route, scope link", () => {
    const p = buf(ROUTE_PAYLOAD);
    assertAttrsFill(p, 12);
    assert.deepEqual(decodeRoute(p), { family: AF_INET, dstLen: 32, dst: "10.88.0.2", oif: 2, table: RT_TABLE_MAIN, protocol: RTPROT_STATIC, scope: RT_SCOPE_LINK, type: RTN_UNICAST });
  });

  it("a permanent neighbour", () => {
    const p = buf(NEIGH_PAYLOAD);
    assertAttrsFill(p, 12);
    assert.deepEqual(decodeNeighbour(p), { index: 2, address: "10.88.0.2", mac: "02:aa:bb:cc:dd:ee", state: NUD_PERMANENT, flags: 0 });
  });

  it("a capped error with the kernel's extended-ack text", () => {
    const [m, ...rest] = parseMessages(buf(EXTACK_REPLY));
    assert.equal(rest.length, 0);
    assert.equal(m!.type, NLMSG_ERROR);
    assert.equal(m!.flags, NLM_F_CAPPED | NLM_F_ACK_TLVS);
    const ack = parseAck(m!);
    assert.deepEqual(ack, { errno: 34, extack: "Attribute failed policy validation" });
    const err = new NetlinkError("create link vcap0", ack.errno, ack.extack);
    assert.equal(err.code, "ERANGE");
    assert.equal(err.message, "create link vcap0: ERANGE (Attribute failed policy validation)");
  });
});
