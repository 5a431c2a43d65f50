// The messages behind routes to other nodes: a VXLAN link's IFLA_INFO_DATA,
// FDB entries (AF_BRIDGE ndmsg), the neighbour dump's device filter and
// rtm_flags (onlink). Exact bytes and round trips; no privileges needed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { attrMap, parseAttrs, readString } from "./attributes.js";
import {
  AF_BRIDGE,
  AF_INET6,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_VXLAN_ID,
  IFLA_VXLAN_LEARNING,
  IFLA_VXLAN_LOCAL,
  IFLA_VXLAN_LOCAL6,
  IFLA_VXLAN_PORT,
  NDA_DST,
  NDA_IFINDEX,
  NDA_LLADDR,
  NLM_F_APPEND,
  NLM_F_CREATE,
  NLM_F_REPLACE,
  NTF_SELF,
  NUD_PERMANENT,
  RTM_DELNEIGH,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RTNH_F_ONLINK,
  RTPROT_WORKLOADNET,
  AF_INET,
} from "./constants.js";
import { decodeVxlanInfo, encodeVxlanLinkInfo } from "./vxlan-info.js";
import { decodeFdb, encodeFdb, encodeFdbFilter } from "./fdb-message.js";
import { encodeNeighDeviceFilter } from "./neigh-message.js";
import { decodeRoute, encodeRoute } from "./route-message.js";
import { decodeLink, encodeIfInfo } from "./link-message.js";
import { appendFdbRequest, deleteFdbRequest, replaceFdbRequest } from "../fdb.js";
import { createVxlanRequest } from "../vxlan.js";
import { replaceRouteRequest } from "../route.js";
import { parseMac } from "./mac.js";

describe("VXLAN link info", () => {
  it("encodes kind, id, local, the port in network order and learning off, byte for byte", () => {
    const b = encodeVxlanLinkInfo({ vni: 0x123456, local: "192.0.2.11", port: 4789, learning: false });
    assert.equal(
      b.toString("hex"),
      // IFLA_LINKINFO (len 0x34) { KIND "vxlan\0" padded, DATA (len 0x24) { ID, LOCAL, PORT 0x12b5 big-endian, LEARNING 0 } }
      "34001200" + "0a000100" + "76786c616e000000" + "24000200" + "08000100" + "56341200" + "08000400" + "c000020b" + "06000f00" + "12b50000" + "05000700" + "00000000",
    );
    const outer = attrMap(parseAttrs(b));
    const info = attrMap(parseAttrs(outer.get(IFLA_LINKINFO)!));
    assert.equal(readString(info.get(IFLA_INFO_KIND)), "vxlan");
    const data = attrMap(parseAttrs(info.get(IFLA_INFO_DATA)!));
    assert.equal(data.get(IFLA_VXLAN_PORT)!.readUInt16BE(0), 4789);
    assert.equal(data.get(IFLA_VXLAN_ID)!.readUInt32LE(0), 0x123456);
    assert.equal(data.get(IFLA_VXLAN_LEARNING)![0], 0);
    assert.deepEqual(decodeVxlanInfo(info.get(IFLA_INFO_DATA)!), { vni: 0x123456, local: "192.0.2.11", port: 4789, learning: false });
  });

  it("an IPv6 local goes in LOCAL6; decode reads it back", () => {
    const b = encodeVxlanLinkInfo({ vni: 1, local: "2001:db8::11", port: 8472, learning: true });
    const data = attrMap(parseAttrs(attrMap(parseAttrs(attrMap(parseAttrs(b)).get(IFLA_LINKINFO)!)).get(IFLA_INFO_DATA)!));
    assert.equal(data.get(IFLA_VXLAN_LOCAL), undefined);
    assert.equal(data.get(IFLA_VXLAN_LOCAL6)!.length, 16);
    assert.deepEqual(decodeVxlanInfo(attrMap(parseAttrs(attrMap(parseAttrs(b)).get(IFLA_LINKINFO)!)).get(IFLA_INFO_DATA)!), {
      vni: 1,
      local: "2001:db8::11",
      port: 8472,
      learning: true,
    });
  });

  it("refuses a VNI or port out of range", () => {
    assert.throws(() => encodeVxlanLinkInfo({ vni: 0x1000000, port: 4789, learning: false }), /VXLAN id must be 0\.\.16777215/);
    assert.throws(() => encodeVxlanLinkInfo({ vni: 1, port: 0, learning: false }), /VXLAN port must be 1\.\.65535/);
  });

  it("a decoded link of kind vxlan carries its settings", () => {
    const payload = Buffer.concat([encodeIfInfo({ index: 9 }), encodeVxlanLinkInfo({ vni: 7, local: "198.51.100.13", port: 4789, learning: false })]);
    assert.deepEqual(decodeLink(payload).vxlan, { vni: 7, local: "198.51.100.13", port: 4789, learning: false });
    assert.equal(decodeLink(payload).kind, "vxlan");
  });

  it("the create request: NEWLINK, create+excl+echo, name, MTU, MAC and the link info", () => {
    const req = createVxlanRequest({ name: "wnvx0", mtu: 1450, mac: parseMac("02:57:c0:00:02:0b"), vxlan: { vni: 1, local: "192.0.2.11", port: 4789, learning: false } });
    assert.equal(req.flags & (NLM_F_CREATE | NLM_F_REPLACE), NLM_F_CREATE);
    assert.match(req.context, /^create vxlan wnvx0 id 1 local 192\.0\.2\.11 dstport 4789$/);
    const attrs = attrMap(parseAttrs(Buffer.concat(req.parts), 16));
    assert.ok(attrs.get(IFLA_LINKINFO));
  });
});

describe("FDB entries (bridge fdb ... self)", () => {
  it("encodes an AF_BRIDGE ndmsg, permanent, NTF_SELF, with the MAC and the remote", () => {
    const parts = encodeFdb({ index: 5, mac: "02:57:c6:33:64:0d", dst: "198.51.100.13" });
    assert.equal(Buffer.concat(parts).toString("hex"), "07000000" + "05000000" + "8000" + "02" + "00" + "0a000200" + "0257c633640d0000" + "08000100" + "c633640d");
    assert.deepEqual(decodeFdb(Buffer.concat(parts)), { index: 5, mac: "02:57:c6:33:64:0d", dst: "198.51.100.13", state: NUD_PERMANENT, flags: NTF_SELF });
    const a = attrMap(parseAttrs(Buffer.concat(parts), 12));
    assert.equal(a.get(NDA_LLADDR)!.length, 6);
    assert.equal(a.get(NDA_DST)!.length, 4);
  });

  it("append, replace and delete differ only in type and flags", () => {
    const e = { index: 5, mac: "02:00:00:00:00:01", dst: "2001:db8::12" };
    const app = appendFdbRequest(e);
    const rep = replaceFdbRequest(e);
    const del = deleteFdbRequest(e);
    assert.deepEqual([app.type, app.flags], [RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND]);
    assert.deepEqual([rep.type, rep.flags], [RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE]);
    assert.deepEqual([del.type, del.flags], [RTM_DELNEIGH, 0]);
    assert.deepEqual(Buffer.concat(app.parts), Buffer.concat(rep.parts));
    assert.equal(decodeFdb(Buffer.concat(del.parts)).dst, "2001:db8::12");
    assert.match(app.context, /^append fdb 02:00:00:00:00:01 dst 2001:db8::12 dev index 5$/);
  });

  it("the dump filter is an ifinfomsg naming the device", () => {
    assert.equal(encodeFdbFilter(5).toString("hex"), "07000000" + "05000000" + "00000000" + "00000000");
    assert.equal(AF_BRIDGE, 7);
  });
});

describe("neighbour dump filtered by device, routes with flags", () => {
  it("the neighbour filter carries NDA_IFINDEX", () => {
    const b = Buffer.concat(encodeNeighDeviceFilter(AF_INET6, 42));
    assert.equal(b.toString("hex"), "0a000000" + "2a000000" + "00000000" + "08000800" + "2a000000");
    assert.equal(attrMap(parseAttrs(b, 12)).get(NDA_IFINDEX)!.readUInt32LE(0), 42);
  });

  it("rtm_flags carry onlink both ways; a route without flags decodes without them", () => {
    const r = { family: AF_INET, dst: "10.70.3.0", dstLen: 24, gateway: "10.70.3.0", oif: 4, protocol: RTPROT_WORKLOADNET, table: 254, scope: 0, type: 1, flags: RTNH_F_ONLINK };
    const hdr = encodeRoute(r)[0]!;
    assert.equal(hdr.toString("hex"), "02180000" + "fe570001" + "04000000");
    assert.deepEqual(decodeRoute(Buffer.concat(encodeRoute(r))), r);
    const { flags: _f, ...plain } = r;
    assert.deepEqual(decodeRoute(Buffer.concat(encodeRoute(plain))), plain);
  });

  it("replace: NEWROUTE with create+replace, and says what it does", () => {
    const req = replaceRouteRequest({ family: AF_INET6, dst: "fd70:3::", dstLen: 64, gateway: "fd70:3::", oif: 4, protocol: RTPROT_WORKLOADNET, flags: RTNH_F_ONLINK }, "host");
    assert.deepEqual([req.type, req.flags], [RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE]);
    assert.equal(req.context, "replace route fd70:3::/64 via fd70:3:: dev index 4 proto 87 onlink in host");
  });
});
