// Flushes the conntrack entries of removed port mappings, over ctnetlink with
// our netlink module (no conntrack process). A connection the kernel has
// translated keeps its translation until its entry expires, so without this
// a UDP client that keeps sending would reach the old pod's address forever,
// even once the port is published for another workload.
//
// An entry belongs to a mapping when its original direction went to the host
// port (with the mapping's protocol) and its reply direction comes from the
// pod's address and container port. The kernel is asked for every entry of
// the family (a dump), the matching ones are deleted by their tuple. Like
// `conntrack -D -p udp --orig-port-dst PORT --reply-src POD`.
import { isIPv4 } from "node:net";
import { addressToBuffer } from "../ipam/address.js";
import { attr, parseAttrs, attrMap } from "../netlink/codec/attributes.js";
import { NLM_F_DUMP } from "../netlink/codec/constants.js";
import { NetlinkSocket, type Request } from "../netlink/socket.js";
import { PROTOCOL_NUMBERS, type PortEntry } from "./port-mappings.js";

const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG_CT_GET = 1;
const IPCTNL_MSG_CT_DELETE = 2;
const CTA_TUPLE_ORIG = 1;
const CTA_TUPLE_REPLY = 2;
const CTA_ZONE = 18;
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V6_SRC = 3;
const CTA_PROTO_NUM = 1;
const CTA_PROTO_SRC_PORT = 2;
const CTA_PROTO_DST_PORT = 3;
const AF_INET = 2;
const AF_INET6 = 10;
const NLA_F_NESTED = 0x8000;

/** struct nfgenmsg: family, version 0, resource id 0. */
function nfgenmsg(family: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt8(family, 0);
  return b;
}

interface Tuple {
  src: Buffer | undefined;
  proto: number | undefined;
  srcPort: number | undefined;
  dstPort: number | undefined;
}

function parseTuple(value: Buffer | undefined, family: number): Tuple {
  const t = attrMap(parseAttrs(value ?? Buffer.alloc(0)));
  const ipAttrs = attrMap(parseAttrs(t.get(CTA_TUPLE_IP) ?? Buffer.alloc(0)));
  const proto = attrMap(parseAttrs(t.get(CTA_TUPLE_PROTO) ?? Buffer.alloc(0)));
  return {
    src: ipAttrs.get(family === AF_INET ? CTA_IP_V4_SRC : CTA_IP_V6_SRC),
    proto: proto.get(CTA_PROTO_NUM)?.readUInt8(0),
    srcPort: proto.get(CTA_PROTO_SRC_PORT)?.readUInt16BE(0),
    dstPort: proto.get(CTA_PROTO_DST_PORT)?.readUInt16BE(0),
  };
}

let socket: NetlinkSocket | undefined;

/** Deletes the entries of connections the removed entries translated; returns how many. */
export async function flushConntrackEntries(entries: readonly PortEntry[]): Promise<number> {
  if (entries.length === 0) return 0;
  socket ??= NetlinkSocket.openNetfilter("the daemon's namespace (conntrack)");
  let deleted = 0;
  for (const [family, mine] of [
    [AF_INET, entries.filter((e) => isIPv4(e.podAddress))],
    [AF_INET6, entries.filter((e) => !isIPv4(e.podAddress))],
  ] as const) {
    if (mine.length === 0) continue;
    const wanted = mine.map((e) => ({ proto: PROTOCOL_NUMBERS[e.protocol], hostPort: e.hostPort, pod: addressToBuffer(e.podAddress), containerPort: e.containerPort }));
    const dump: Request = {
      type: (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
      flags: NLM_F_DUMP,
      parts: [nfgenmsg(family)],
      context: "list conntrack entries",
      dataReplies: true,
    };
    const deletes: Request[] = [];
    for (const m of await socket.request(dump)) {
      const raw = parseAttrs(m.payload, 4);
      const attrs = attrMap(raw);
      const orig = parseTuple(attrs.get(CTA_TUPLE_ORIG), family);
      const reply = parseTuple(attrs.get(CTA_TUPLE_REPLY), family);
      const match = wanted.some(
        (w) => orig.proto === w.proto && orig.dstPort === w.hostPort && reply.srcPort === w.containerPort && reply.src !== undefined && reply.src.equals(w.pod),
      );
      if (!match) continue;
      const origTuple = attrs.get(CTA_TUPLE_ORIG)!;
      const zone = attrs.get(CTA_ZONE);
      deletes.push({
        type: (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE,
        flags: 0,
        parts: [nfgenmsg(family), attr(CTA_TUPLE_ORIG | NLA_F_NESTED, origTuple), ...(zone ? [attr(CTA_ZONE, zone)] : [])],
        context: "delete a conntrack entry",
        dataReplies: true,
      });
    }
    if (deletes.length === 0) continue;
    // An entry that expired meanwhile is ENOENT: gone is what we wanted.
    const outcomes = await socket.batch(deletes);
    for (const o of outcomes) {
      if (o.ok) deleted++;
      else if (o.error.code !== "ENOENT") throw o.error;
    }
  }
  return deleted;
}
