// The family headers and their attributes: ifinfomsg (links), ifaddrmsg,
// rtmsg, ndmsg. Encode -> decode round trips and exact layouts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { attr, attrMap, attrNested, attrS32, attrString, attrU32, attrU8, parseAttrs, readString, readU32 } from "./attributes.js";
import { decodeAddress, encodeAddrFilter, encodeAddress } from "./addr-message.js";
import {
  AF_INET,
  AF_INET6,
  IFA_ADDRESS,
  IFA_F_NODAD,
  IFA_F_PERMANENT,
  IFA_FLAGS,
  IFA_LABEL,
  IFA_LOCAL,
  IFF_LOWER_UP,
  IFF_RUNNING,
  IFF_UP,
  IFLA_ADDRESS,
  IFLA_GROUP,
  IFLA_IFALIAS,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINK,
  IFLA_LINK_NETNSID,
  IFLA_LINKINFO,
  IFLA_MTU,
  IFLA_NET_NS_FD,
  IFLA_OPERSTATE,
  NDA_DST,
  NDA_LLADDR,
  NUD_PERMANENT,
  RT_SCOPE_HOST,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RTA_DST,
  RTA_GATEWAY,
  RTA_OIF,
  RTA_PREFSRC,
  RTA_PRIORITY,
  RTA_TABLE,
  RTN_UNICAST,
  RTPROT_BOOT,
  RTPROT_STATIC,
  IFLA_NUM_RX_QUEUES,
  IFLA_NUM_TX_QUEUES,
  VETH_INFO_PEER,
} from "./constants.js";
import { decodeIfInfo, decodeLink, encodeIfInfo, encodeLinkSettings, encodeVethInfo } from "./link-message.js";
import { parseMac } from "./mac.js";
import { decodeNeighbour, encodeNeighFilter, encodeNeighbour } from "./neigh-message.js";
import { decodeRoute, encodeRoute, encodeRouteFilter, encodeRouteLookup, routeDestination, type Route } from "./route-message.js";
import { createVethRequest, deleteLinkRequest, setLinkByNameRequest, setLinkUpRequest } from "../link.js";

describe("ifinfomsg / links", () => {
  it("round-trips the 16-byte header exactly", () => {
    const i = { family: AF_INET6, type: 772, index: 0x7fffffff, flags: 0x80011043, change: 0xffffffff };
    const b = encodeIfInfo(i);
    assert.equal(b.length, 16);
    assert.equal(b.toString("hex"), "0a00" + "0403" + "ffffff7f" + "43100180" + "ffffffff");
    assert.deepEqual(decodeIfInfo(b), i);
    assert.deepEqual(decodeIfInfo(encodeIfInfo({})), { family: 0, type: 0, index: 0, flags: 0, change: 0 });
    assert.throws(() => decodeIfInfo(Buffer.alloc(15)), /truncated ifinfomsg/);
  });

  it("decodes a link with every attribute we read", () => {
    const payload = Buffer.concat([
      encodeIfInfo({ index: 42, flags: IFF_UP | IFF_RUNNING | IFF_LOWER_UP }),
      attrString(IFLA_IFNAME, "wk0123"),
      attrU32(IFLA_MTU, 1450),
      attrU32(IFLA_GROUP, 0x5757),
      attr(IFLA_IFALIAS, Buffer.from("pod/default/web-0")),
      attr(IFLA_ADDRESS, parseMac("ee:ee:ee:ee:ee:ee")),
      attrU32(IFLA_LINK, 3),
      attrS32(IFLA_LINK_NETNSID, 1),
      attrU8(IFLA_OPERSTATE, 6),
      attrNested(IFLA_LINKINFO, [attrString(IFLA_INFO_KIND, "veth"), attrNested(IFLA_INFO_DATA, [])]),
    ]);
    assert.deepEqual(decodeLink(payload), {
      index: 42,
      name: "wk0123",
      flags: IFF_UP | IFF_RUNNING | IFF_LOWER_UP,
      mtu: 1450,
      group: 0x5757,
      alias: "pod/default/web-0",
      mac: "ee:ee:ee:ee:ee:ee",
      parentIndex: 3,
      linkNetnsId: 1,
      operstate: 6,
      kind: "veth",
    });
  });

  it("leaves out what the kernel did not send; ignores non-Ethernet addresses", () => {
    const payload = Buffer.concat([encodeIfInfo({ index: 1, flags: 0x49 }), attrString(IFLA_IFNAME, "lo"), attr(IFLA_ADDRESS, Buffer.alloc(4))]);
    assert.deepEqual(decodeLink(payload), { index: 1, name: "lo", flags: 0x49 });
  });

  it("decodes a link in one pass: unknown attributes skipped, the last of a repeated one wins, a cut-off tail ignored", () => {
    const payload = Buffer.concat([
      encodeIfInfo({ index: 9 }),
      attrU32(IFLA_MTU, 1500),
      attr(3000, Buffer.alloc(40, 0xff)), // not one we read
      attrString(IFLA_IFNAME, "first"),
      attrU32(IFLA_MTU, 1400),
      attrString(IFLA_IFNAME, "second"),
      attrNested(IFLA_LINKINFO, [attrString(IFLA_INFO_KIND, "dummy")]),
      attrNested(IFLA_LINKINFO, [attrString(IFLA_INFO_KIND, "veth")]),
    ]);
    // An attribute whose length runs past the message: the rest is not read.
    const cut = Buffer.concat([payload, Buffer.from([0x08, 0x00, IFLA_GROUP, 0x00, 0x07])]);
    assert.deepEqual(decodeLink(cut), { index: 9, name: "second", flags: 0, mtu: 1400, kind: "veth" });
  });

  it("encodes settings and round-trips them through decodeLink", () => {
    const settings = { name: "veth-a", mtu: 9000, group: 7, mac: parseMac("02:00:00:00:00:01"), alias: "hello", txQueues: 4, rxQueues: 1 };
    const parts = encodeLinkSettings(settings);
    const m = attrMap(parseAttrs(Buffer.concat(parts)));
    // The alias goes without a NUL; the name with one.
    assert.equal(m.get(IFLA_IFALIAS)!.toString(), "hello");
    assert.equal(m.get(IFLA_IFNAME)!.toString(), "veth-a\0");
    const link = decodeLink(Buffer.concat([encodeIfInfo({ index: 5 }), ...parts]));
    assert.equal(readU32(m.get(IFLA_NUM_TX_QUEUES)), 4);
    assert.equal(readU32(m.get(IFLA_NUM_RX_QUEUES)), 1);
    assert.deepEqual(link, { index: 5, name: "veth-a", flags: 0, mtu: 9000, group: 7, mac: "02:00:00:00:00:01", alias: "hello", txQueues: 4, rxQueues: 1 });
    assert.deepEqual(encodeLinkSettings({}), []);
  });

  it("encodes a veth's peer as a nested ifinfomsg with its own attributes and netns fd", () => {
    const info = encodeVethInfo({ name: "eth0", mtu: 1400, mac: parseMac("02:aa:bb:cc:dd:ee"), netnsFd: 23 });
    const [linkinfo] = parseAttrs(info);
    assert.equal(linkinfo!.type, IFLA_LINKINFO);
    const li = attrMap(parseAttrs(linkinfo!.value));
    assert.equal(readString(li.get(IFLA_INFO_KIND)), "veth");
    const data = attrMap(parseAttrs(li.get(IFLA_INFO_DATA)!));
    const peer = data.get(VETH_INFO_PEER)!;
    assert.deepEqual(decodeIfInfo(peer), { family: 0, type: 0, index: 0, flags: 0, change: 0 });
    const pa = attrMap(parseAttrs(peer, 16));
    assert.equal(readString(pa.get(IFLA_IFNAME)), "eth0");
    assert.equal(readU32(pa.get(IFLA_MTU)), 1400);
    assert.deepEqual([...pa.get(IFLA_ADDRESS)!], [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
    assert.equal(pa.get(IFLA_NET_NS_FD)!.readInt32LE(0), 23);
    // without a namespace fd there is no IFLA_NET_NS_FD
    const plain = attrMap(parseAttrs(attrMap(parseAttrs(attrMap(parseAttrs(parseAttrs(encodeVethInfo({ name: "p" }))[0]!.value)).get(IFLA_INFO_DATA)!)).get(VETH_INFO_PEER)!, 16));
    assert.equal(plain.has(IFLA_NET_NS_FD), false);
  });

  it("builds link requests: veth up at creation without an alias; up/down; set by name; delete", () => {
    const req = createVethRequest({ name: "h0", up: true, group: 9, alias: "ignored at creation", peer: { name: "eth0" } }, "/run/netns/x");
    const hdr = decodeIfInfo(req.parts[0]!);
    assert.equal(hdr.flags & IFF_UP, IFF_UP);
    assert.equal(hdr.change & IFF_UP, IFF_UP);
    const top = attrMap(parseAttrs(Buffer.concat(req.parts.slice(1))));
    assert.equal(readString(top.get(IFLA_IFNAME)), "h0");
    assert.equal(readU32(top.get(IFLA_GROUP)), 9);
    assert.equal(top.has(IFLA_IFALIAS), false);
    assert.ok(top.has(IFLA_LINKINFO));
    assert.match(req.context, /create veth h0 -> eth0 in \/run\/netns\/x/);

    const down = setLinkUpRequest(4, false);
    assert.deepEqual(decodeIfInfo(down.parts[0]!), { family: 0, type: 0, index: 4, flags: 0, change: IFF_UP });
    assert.equal(decodeIfInfo(setLinkUpRequest(4, true).parts[0]!).flags, IFF_UP);

    const set = setLinkByNameRequest("h0", { alias: "a", mtu: 1300 });
    const sa = attrMap(parseAttrs(Buffer.concat(set.parts.slice(1))));
    assert.equal(readString(sa.get(IFLA_IFNAME)), "h0");
    assert.equal(sa.get(IFLA_IFALIAS)!.toString(), "a");
    assert.equal(readU32(sa.get(IFLA_MTU)), 1300);

    const del = deleteLinkRequest(77, "h0");
    assert.equal(decodeIfInfo(del.parts[0]!).index, 77);
    assert.equal(del.context, "delete link h0");
  });
});

describe("ifaddrmsg / addresses", () => {
  it("encodes the header and both IFA_LOCAL and IFA_ADDRESS", () => {
    const parts = encodeAddress({ index: 3, address: "10.88.0.2", prefixLen: 32, scope: RT_SCOPE_HOST, flags: 0 });
    assert.equal(parts[0]!.toString("hex"), "02" + "20" + "00" + "fe" + "03000000");
    const m = attrMap(parseAttrs(Buffer.concat(parts.slice(1))));
    assert.deepEqual([...m.get(IFA_LOCAL)!], [10, 88, 0, 2]);
    assert.deepEqual([...m.get(IFA_ADDRESS)!], [10, 88, 0, 2]);
    assert.equal(m.has(IFA_FLAGS), false);
    assert.equal(m.has(IFA_LABEL), false);
  });

  it("round-trips v4 and v6, flags above 8 bits in IFA_FLAGS, and a label", () => {
    const v6 = { index: 9, address: "fd00:88::2", prefixLen: 128, scope: RT_SCOPE_UNIVERSE, flags: IFA_F_NODAD | 0x200 };
    const p6 = Buffer.concat(encodeAddress(v6));
    assert.equal(p6.readUInt8(0), AF_INET6);
    assert.equal(p6.readUInt8(2), IFA_F_NODAD); // the header keeps only the low 8 bits
    assert.deepEqual(decodeAddress(p6), v6);
    const v4 = { index: 1, address: "169.254.77.1", prefixLen: 32, scope: RT_SCOPE_LINK, flags: IFA_F_PERMANENT, label: "lo:wk" };
    assert.deepEqual(decodeAddress(Buffer.concat(encodeAddress(v4))), v4);
  });

  it("decodes IFA_ADDRESS when IFA_LOCAL is absent (IPv6), header flags without IFA_FLAGS", () => {
    const hdr = Buffer.from([AF_INET6, 64, IFA_F_PERMANENT, RT_SCOPE_LINK, 2, 0, 0, 0]);
    const a = decodeAddress(Buffer.concat([hdr, attr(IFA_ADDRESS, Buffer.from("fe800000000000000000000000000001", "hex"))]));
    assert.deepEqual(a, { index: 2, address: "fe80::1", prefixLen: 64, scope: RT_SCOPE_LINK, flags: IFA_F_PERMANENT });
    assert.throws(() => decodeAddress(Buffer.alloc(7)), /truncated ifaddrmsg/);
    assert.equal(encodeAddrFilter(AF_INET, 5).toString("hex"), "0200000005000000");
  });
});

describe("rtmsg / routes", () => {
  it("encodes a host route via a device exactly", () => {
    const parts = encodeRoute({ family: AF_INET, dst: "10.88.0.2", dstLen: 32, oif: 7 });
    // family, dst_len, src_len, tos, table main, proto static, scope universe, unicast
    assert.equal(parts[0]!.toString("hex"), "02200000fe040001" + "00000000"); // + rtm_flags
    assert.equal(Buffer.concat(parts.slice(1)).toString("hex"), "08000100" + "0a580002" + "08000400" + "07000000");
  });

  it("encodes a lookup of the route to one address (ip route get fibmatch)", () => {
    const v4 = encodeRouteLookup("10.88.0.2");
    // family, dst_len 32, nothing else in the header but rtm_flags = RTM_F_FIB_MATCH (0x2000, little-endian)
    assert.equal(v4[0]!.toString("hex"), "0220000000000000" + "00200000");
    assert.equal(Buffer.concat(v4.slice(1)).toString("hex"), "08000100" + "0a580002");
    const v6 = encodeRouteLookup("fd00::7");
    assert.equal(v6[0]!.toString("hex"), "0a80000000000000" + "00200000");
    assert.equal(Buffer.concat(v6.slice(1)).toString("hex"), "14000100" + "fd000000000000000000000000000007");
  });

  it("round-trips a default route via a link-local gateway with src", () => {
    const r = { family: AF_INET, dstLen: 0, gateway: "169.254.77.1", src: "10.88.0.2", oif: 2, table: RT_TABLE_MAIN, protocol: RTPROT_STATIC, scope: RT_SCOPE_UNIVERSE, type: RTN_UNICAST, priority: 100 };
    const decoded: Route = decodeRoute(Buffer.concat(encodeRoute(r)));
    assert.equal("dst" in decoded, false);
    assert.equal(routeDestination(decoded), "default");
    assert.deepEqual(decoded, r);
    const r6 = { family: AF_INET6, dst: "fe80::1", dstLen: 128, oif: 2, table: RT_TABLE_MAIN, protocol: RTPROT_BOOT, scope: RT_SCOPE_LINK, type: RTN_UNICAST };
    assert.deepEqual(decodeRoute(Buffer.concat(encodeRoute(r6))), r6);
    assert.equal(routeDestination(r6), "fe80::1/128");
  });

  it("puts tables >= 256 in RTA_TABLE (header table 0), and reads RTA_TABLE first", () => {
    const parts = encodeRoute({ family: AF_INET6, dst: "fd00::", dstLen: 64, table: 1000 });
    assert.equal(parts[0]!.readUInt8(4), 0);
    const m = attrMap(parseAttrs(Buffer.concat(parts.slice(1))));
    assert.equal(readU32(m.get(RTA_TABLE)), 1000);
    assert.equal(decodeRoute(Buffer.concat(parts)).table, 1000);
    // table < 256: header only
    const main = attrMap(parseAttrs(Buffer.concat(encodeRoute({ family: AF_INET, dstLen: 0 }).slice(1))));
    assert.equal(main.has(RTA_TABLE), false);
    assert.equal(main.has(RTA_DST), false);
  });

  it("decodes only what is present", () => {
    const hdr = Buffer.from([AF_INET6, 0, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, 0, RTN_UNICAST]);
    const p = Buffer.concat([hdr, Buffer.alloc(4), attr(RTA_GATEWAY, Buffer.from("fe800000000000000000000000000001", "hex")), attrU32(RTA_OIF, 3)]);
    assert.deepEqual(decodeRoute(p), { family: AF_INET6, dstLen: 0, gateway: "fe80::1", oif: 3, table: RT_TABLE_MAIN, protocol: RTPROT_STATIC, scope: 0, type: RTN_UNICAST });
    assert.throws(() => decodeRoute(Buffer.alloc(11)), /truncated rtmsg/);
    assert.equal(encodeRouteFilter(AF_INET6).toString("hex"), "0a0000000000000000000000");
    assert.equal(routeDestination({ family: AF_INET, dstLen: 8, table: 0, protocol: 0, scope: 0, type: 0 }), "0.0.0.0/8");
    const prefsrc = attrMap(parseAttrs(Buffer.concat(encodeRoute({ family: AF_INET, dstLen: 0, src: "10.0.0.1", priority: 5 }).slice(1))));
    assert.deepEqual([...prefsrc.get(RTA_PREFSRC)!], [10, 0, 0, 1]);
    assert.equal(readU32(prefsrc.get(RTA_PRIORITY)), 5);
  });
});

describe("ndmsg / neighbours", () => {
  it("encodes exactly and round-trips", () => {
    const n = { index: 4, address: "169.254.77.1", mac: "ee:ee:ee:ee:ee:ee", state: NUD_PERMANENT, flags: 0 };
    const parts = encodeNeighbour(n);
    assert.equal(parts[0]!.toString("hex"), "02000000" + "04000000" + "8000" + "00" + "00");
    const m = attrMap(parseAttrs(Buffer.concat(parts.slice(1))));
    assert.deepEqual([...m.get(NDA_DST)!], [169, 254, 77, 1]);
    assert.equal(m.get(NDA_LLADDR)!.toString("hex"), "eeeeeeeeeeee");
    assert.deepEqual(decodeNeighbour(Buffer.concat(parts)), n);
    const v6 = { index: 2, address: "fe80::1", mac: "02:00:00:00:00:01", state: NUD_PERMANENT, flags: 0x08 };
    assert.deepEqual(decodeNeighbour(Buffer.concat(encodeNeighbour(v6))), v6);
  });

  it("a neighbour without lladdr has no mac; bad MACs are refused on encode", () => {
    const n = decodeNeighbour(Buffer.concat(encodeNeighbour({ index: 1, address: "10.0.0.1", state: 0x20, flags: 0 })));
    assert.deepEqual(n, { index: 1, address: "10.0.0.1", state: 0x20, flags: 0 });
    assert.throws(() => encodeNeighbour({ index: 1, address: "10.0.0.1", mac: "zz:00:00:00:00:00", state: 0, flags: 0 }), /invalid MAC/);
    assert.throws(() => decodeNeighbour(Buffer.alloc(11)), /truncated ndmsg/);
    assert.equal(encodeNeighFilter(AF_INET6, 3).toString("hex"), "0a000000" + "03000000" + "00000000");
  });
});
