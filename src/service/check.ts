// CHECK: is the attachment still exactly as Attach made it? Reads the kernel
// on both sides and reports the first thing that is missing.
import { isIPv4 } from "node:net";
import { listAddresses } from "../netlink/addr.js";
import { AF_INET, AF_INET6 } from "../netlink/codec/constants.js";
import { Handle } from "../netlink/handle.js";
import { getLinkByIndex, getLinkByName } from "../netlink/link.js";
import { listRoutes, lookupRoute, type Route } from "../netlink/route.js";
import { NamespaceError, NetnsFd } from "../netns/namespace.js";
import { FIRST_HOP_V4, FIRST_HOP_V6 } from "./constants.js";
import { isOwnedBy } from "./detach.js";
import { ServiceError, StatusCode } from "./errors.js";
import type { Attachment } from "./registry.js";
import type { NetnsAttachment } from "./types.js";

export interface CheckDeps {
  host: Handle;
  linkGroup: number;
}

const missing = (what: string): ServiceError => new ServiceError(StatusCode.FailedPrecondition, what);

export async function checkAttachment(deps: CheckDeps, a: Attachment, netns: NetnsAttachment): Promise<void> {
  const id = a.workloadId;
  const hostLink = await getLinkByIndex(deps.host, a.hostIfIndex);
  if (hostLink === undefined || hostLink.name !== a.hostIfName) throw missing(`check ${id}: host interface ${a.hostIfName} is gone`);
  if (!isOwnedBy(hostLink, deps.linkGroup, id)) throw missing(`check ${id}: host interface ${a.hostIfName} is no longer marked as this workload's`);
  if (!(hostLink.flags & 1)) throw missing(`check ${id}: host interface ${a.hostIfName} is down`);
  for (const address of a.addresses) {
    // The route traffic to the pod takes, looked up: a dump would read every pod's routes.
    const r = await lookupRoute(deps.host, address);
    if (r?.dst !== address || r.dstLen !== (isIPv4(address) ? 32 : 128) || r.oif !== hostLink.index) {
      throw missing(`check ${id}: host route to ${address} via ${a.hostIfName} is missing`);
    }
  }

  let ns: NetnsFd;
  try {
    ns = NetnsFd.open(netns.netnsPath);
  } catch (err) {
    if (err instanceof NamespaceError && err.code === "ENOENT") throw new ServiceError(StatusCode.NotFound, `check ${id}: ${err.message}`);
    throw new ServiceError(StatusCode.InvalidArgument, `check ${id}: ${(err as Error).message}`);
  }
  const pod = await Handle.openInNamespace(ns.fd, ns.path);
  try {
    const peer = await getLinkByName(pod, netns.ifName);
    if (peer === undefined) throw missing(`check ${id}: interface ${netns.ifName} is missing in ${netns.netnsPath}`);
    if (!(peer.flags & 1)) throw missing(`check ${id}: interface ${netns.ifName} in ${netns.netnsPath} is down`);
    const addrs = await listAddresses(pod, { index: peer.index });
    const routes = await listRoutes(pod);
    for (const address of a.addresses) {
      const v4 = isIPv4(address);
      if (!addrs.some((x) => x.address === address && x.prefixLen === (v4 ? 32 : 128))) {
        throw missing(`check ${id}: address ${address} is missing on ${netns.ifName} in ${netns.netnsPath}`);
      }
      const firstHop = v4 ? FIRST_HOP_V4 : FIRST_HOP_V6;
      if (!routes.some((r) => isDefaultVia(r, v4 ? AF_INET : AF_INET6, firstHop, peer.index))) {
        throw missing(`check ${id}: default route via ${firstHop} is missing in ${netns.netnsPath}`);
      }
    }
  } finally {
    await pod.close();
    ns.close();
  }
}

const isDefaultVia = (r: Route, family: number, gateway: string, oif: number): boolean =>
  r.family === family && r.dstLen === 0 && r.gateway === gateway && r.oif === oif;
