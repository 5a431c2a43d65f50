// Flushes the conntrack entries of removed port mappings, over ctnetlink with
// our netlink module (no conntrack process). A connection the kernel has
// translated keeps its translation until its entry expires, so without this
// a UDP client that keeps sending would reach the old pod's address forever,
// even once the port is published for another workload.
//
// An entry belongs to a mapping when its original direction went to the host
// port (with the mapping's protocol) and its reply direction comes from the
// pod's address and container port. The kernel is asked for every entry (one
// dump, both families), the matching ones are deleted by their tuple. Like
// `conntrack -D -p udp --orig-port-dst PORT --reply-src POD`.
//
// Only UDP: a TCP or SCTP client that connects again gets a new tuple, and so
// a fresh translation to whichever pod holds the port then; a UDP client
// keeps its tuple, and its old entry, for as long as it keeps sending (CNI's
// portmap flushes UDP only too).
//
// The dump walks the kernel's whole conntrack hash table (every namespace's
// buckets: 262144 of them on the machine measured, ~30 ms per walk). So it
// runs once for both families, flushes asked for while one walk runs share
// the next walk, and the layer runs it after Detach has answered (layer.ts).
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
const AF_UNSPEC = 0;
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

/** The flush waiting for the walk under way to finish; requests join it. */
let next: { entries: PortEntry[]; done: Promise<number> } | undefined;
let walking: Promise<unknown> = Promise.resolve();

/** Deletes the entries of UDP connections the removed entries translated; resolves with how many. */
export function flushConntrackEntries(entries: readonly PortEntry[]): Promise<number> {
  const udp = entries.filter((e) => e.protocol === "udp");
  if (udp.length === 0) return Promise.resolve(0);
  if (next === undefined) {
    const batch: { entries: PortEntry[]; done: Promise<number> } = { entries: [], done: Promise.resolve(0) };
    batch.done = walking.then(() => {
      if (next === batch) next = undefined;
      return flushNow(batch.entries);
    });
    walking = batch.done.catch(() => undefined);
    next = batch;
  }
  next.entries.push(...udp);
  return next.done;
}

async function flushNow(entries: readonly PortEntry[]): Promise<number> {
  socket ??= NetlinkSocket.openNetfilter("the daemon's namespace (conntrack)");
  const wanted = entries.map((e) => ({ proto: PROTOCOL_NUMBERS[e.protocol], hostPort: e.hostPort, pod: addressToBuffer(e.podAddress), family: isIPv4(e.podAddress) ? AF_INET : AF_INET6, containerPort: e.containerPort }));
  const dump: Request = {
    type: (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
    flags: NLM_F_DUMP,
    // AF_UNSPEC: every family in one walk of the table.
    parts: [nfgenmsg(AF_UNSPEC)],
    context: "list conntrack entries",
    dataReplies: true,
  };
  const deletes: Request[] = [];
  for (const m of await socket.request(dump)) {
    const family = m.payload.readUInt8(0);
    const attrs = attrMap(parseAttrs(m.payload, 4));
    const orig = parseTuple(attrs.get(CTA_TUPLE_ORIG), family);
    const reply = parseTuple(attrs.get(CTA_TUPLE_REPLY), family);
    const match = wanted.some(
      (w) =>
        w.family === family && orig.proto === w.proto && orig.dstPort === w.hostPort && reply.srcPort === w.containerPort && reply.src !== undefined && reply.src.equals(w.pod),
    );
    if (!match) continue;
    const zone = attrs.get(CTA_ZONE);
    deletes.push({
      type: (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE,
      flags: 0,
      parts: [nfgenmsg(family), attr(CTA_TUPLE_ORIG | NLA_F_NESTED, attrs.get(CTA_TUPLE_ORIG)!), ...(zone ? [attr(CTA_ZONE, zone)] : [])],
      context: "delete a conntrack entry",
      dataReplies: true,
    });
  }
  if (deletes.length === 0) return 0;
  let deleted = 0;
  // An entry that expired meanwhile is ENOENT: gone is what we wanted.
  for (const o of await socket.batch(deletes)) {
    if (o.ok) deleted++;
    else if (o.error.code !== "ENOENT") throw o.error;
  }
  return deleted;
}
