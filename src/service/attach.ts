// Attach, as a short sequence of named steps. Each step that changes state
// pushes its undo; any failure runs the undos in reverse, so a failed attach
// leaves no interface, route, address or allocation behind.
//
// Kernel round trips on the hot path: create the pair (the kernel echoes the
// new link, which names the peer's ifindex too), then configure the pod side
// and the host side, each as one batch. A workload with published ports adds
// one nftables transaction at the end; one without pays nothing for them.
import { randomFillSync } from "node:crypto";
import { isIPv4 } from "node:net";
import type { Ipam } from "../ipam/allocator.js";
import { IpamExhaustedError, IpamNotReadyError } from "../ipam/errors.js";
import { addAddressRequest } from "../netlink/addr.js";
import { AF_INET, AF_INET6, IFA_F_NODAD, IN6_ADDR_GEN_MODE_NONE, RT_SCOPE_LINK } from "../netlink/codec/constants.js";
import { formatMac, parseMac } from "../netlink/codec/mac.js";
import { NetlinkError } from "../netlink/errors.js";
import { Handle } from "../netlink/handle.js";
import { addAltNameRequest, createVeth, deleteLink, getLinkByName, setLinkByIndexRequest, setLinkByNameRequest, setLinkUpRequest, type Link } from "../netlink/link.js";
import { addPermanentNeighbourRequest } from "../netlink/neigh.js";
import { addRouteRequest } from "../netlink/route.js";
import type { Outcome, Request } from "../netlink/socket.js";
import { NamespaceError, NetnsFd } from "../netns/namespace.js";
import { ALIAS_PREFIX, FIRST_HOP_V4, FIRST_HOP_V6, HOST_VETH_MAC, LOOPBACK_INDEX } from "./constants.js";
import { ServiceError, StatusCode } from "./errors.js";
import { hostAltName, hostNameCandidates } from "./host-names.js";
import type { Attachment, AttachmentRegistry } from "./registry.js";
import type { NetnsAttachment } from "./types.js";
import { entriesFor, PortMappingError, type PortEntry, type PortMapping } from "../nftables/port-mappings.js";
import { PortConflictError, type NftablesLayer } from "../nftables/layer.js";

export interface AttachDeps {
  host: Handle;
  ipam: Ipam;
  registry: AttachmentRegistry;
  mtu: number;
  linkGroup: number;
  /** Transmit and receive queues of each veth end. */
  vethQueues: number;
  /** Our nftables table; without it, port mappings are refused. */
  nftables?: NftablesLayer;
}

const hostMac = parseMac(HOST_VETH_MAC);

type Undo = () => Promise<void> | void;

export async function attachWorkload(deps: AttachDeps, workloadId: string, netns: NetnsAttachment, mappings: readonly PortMapping[] = []): Promise<Attachment> {
  const undos: Undo[] = [];
  try {
    const addresses = allocateAddresses(deps, workloadId);
    undos.push(() => void deps.ipam.release(workloadId));
    const ports = reservePorts(deps, workloadId, addresses, mappings);
    if (ports.length > 0) undos.push(() => deps.nftables?.release(workloadId));

    const ns = NetnsFd.open(netns.netnsPath);
    let pod: Handle | undefined;
    try {
      if (ns.isOwnNamespace()) {
        // It would get the pod's default route and addresses: refuse, however the path names it.
        throw new NamespaceError(`${netns.netnsPath} is the daemon's own network namespace (the host's); a workload needs one of its own`, "EINVAL");
      }
      // Opened on this thread: the namespace switch takes microseconds, less
      // than any handoff to another thread (native/netlink_socket.c).
      pod = Handle.inNamespace(ns.fd, ns.path, { inline: deps.host.inline });
      const podMac = randomPodMac();
      const hostLink = await createPair(deps, workloadId, netns, ns, podMac);
      undos.push(() => deps.registry.releaseName(hostLink.name));
      undos.push(() => deleteLink(deps.host, hostLink.index, hostLink.name).catch(ignoreGone));

      const peerIndex = hostLink.parentIndex;
      if (peerIndex === undefined) throw new Error(`the kernel did not report the peer of ${hostLink.name}`);
      const [podDone, hostDone] = await Promise.allSettled([
        configurePod(pod, ns.path, netns, peerIndex, addresses),
        configureHost(deps, workloadId, hostLink, addresses, formatMac(podMac), ports.some((e) => e.family === 4)),
      ]);
      if (podDone.status === "rejected") throw podFailure(podDone.reason, netns);
      if (hostDone.status === "rejected") throw hostDone.reason;
      if (ports.length > 0) await publishPorts(deps, workloadId);
      const published = ports.length > 0 ? { portMappings: deps.nftables?.mappingsOf(workloadId) ?? [] } : {};
      return { workloadId, hostIfName: hostLink.name, hostIfIndex: hostLink.index, addresses, podMac: formatMac(podMac), ...published };
    } finally {
      await pod?.close();
      ns.close();
    }
  } catch (err) {
    for (const undo of undos.reverse()) {
      try {
        await undo();
      } catch {
        // Keep undoing the rest; the original error is what the caller needs.
      }
    }
    throw toServiceError(err);
  }
}

/**
 * The map elements of the workload's published ports, held for it: a port
 * another workload holds fails the Attach here, before any kernel work.
 */
function reservePorts(deps: AttachDeps, workloadId: string, addresses: string[], mappings: readonly PortMapping[]): PortEntry[] {
  if (mappings.length === 0) return [];
  if (deps.nftables === undefined) throw new ServiceError(StatusCode.FailedPrecondition, `attach ${workloadId}: port mappings need the daemon's nftables table, which is not available`);
  let entries: PortEntry[];
  try {
    entries = entriesFor(mappings, addresses);
  } catch (err) {
    if (err instanceof PortMappingError) throw new ServiceError(StatusCode.InvalidArgument, `attach ${workloadId}: ${err.message}`);
    throw err;
  }
  try {
    deps.nftables.reserve(workloadId, entries);
  } catch (err) {
    // Not ALREADY_EXISTS: that says the workload itself is attached (CNI answers it with "try again").
    if (err instanceof PortConflictError) throw new ServiceError(StatusCode.FailedPrecondition, `attach ${workloadId}: ${err.message}`, { cause: err });
    throw err;
  }
  return entries;
}

/** One transaction; the last step, so nothing of ours undoes it. */
async function publishPorts(deps: AttachDeps, workloadId: string): Promise<void> {
  try {
    await deps.nftables?.publish(workloadId);
  } catch (err) {
    throw new ServiceError(StatusCode.Unavailable, `attach ${workloadId}: publish ports: ${(err as Error).message}`, { cause: err });
  }
}

function allocateAddresses(deps: AttachDeps, workloadId: string): string[] {
  const a = deps.ipam.allocate(workloadId);
  return [a.v4, a.v6].filter((x): x is string => x !== undefined);
}

/** Random bytes for pod MACs, drawn from the kernel a few hundred MACs at a time (one call instead of one per Attach). */
const macEntropy = Buffer.alloc(6 * 256);
let macEntropyUsed = macEntropy.length;

/** Locally administered, unicast, random: each pod interface gets its own. */
function randomPodMac(): Buffer {
  if (macEntropyUsed + 6 > macEntropy.length) {
    randomFillSync(macEntropy);
    macEntropyUsed = 0;
  }
  const mac = Buffer.from(macEntropy.subarray(macEntropyUsed, macEntropyUsed + 6));
  macEntropyUsed += 6;
  mac[0] = ((mac[0] ?? 0) & 0xfe) | 0x02;
  return mac;
}

/**
 * The veth pair: host end in our group, with our MAC (down: see configureHost); the peer created
 * directly in the pod's namespace. The host name is the first candidate not
 * ours already; if the kernel has an interface by that name that is not ours,
 * it is left alone and the next candidate is tried.
 */
async function createPair(deps: AttachDeps, workloadId: string, netns: NetnsAttachment, ns: NetnsFd, podMac: Buffer): Promise<Link> {
  for (const name of hostNameCandidates(workloadId)) {
    if (deps.registry.nameTaken(name)) continue;
    deps.registry.reserveName(name);
    try {
      const queues = { txQueues: deps.vethQueues, rxQueues: deps.vethQueues };
      return await createVeth(
        deps.host,
        { name, mtu: deps.mtu, group: deps.linkGroup, mac: hostMac, ...queues, peer: { name: netns.ifName, netnsFd: ns.fd, mtu: deps.mtu, mac: podMac, ...queues } },
        netns.netnsPath,
      );
    } catch (err) {
      deps.registry.releaseName(name);
      if (!(err instanceof NetlinkError && err.code === "EEXIST")) throw err;
      // Which end clashed? A host interface by this name means: try the next name.
      if ((await getLinkByName(deps.host, name)) !== undefined) continue;
      throw new ServiceError(StatusCode.FailedPrecondition, `${err.message}: ${netns.netnsPath} already has an interface named ${netns.ifName}`, { cause: err });
    }
  }
  throw new ServiceError(StatusCode.ResourceExhausted, `no free host interface name for workload ${workloadId}`);
}

/** Inside the pod: lo and the peer up, the addresses, on-link routes to the first hops, default routes, first-hop neighbours. */
async function configurePod(pod: Handle, where: string, netns: NetnsAttachment, peerIndex: number, addresses: string[]): Promise<void> {
  const reqs: Request[] = [setLinkUpRequest(LOOPBACK_INDEX, true, "lo"), setLinkUpRequest(peerIndex, true, netns.ifName)];
  for (const address of addresses) {
    const v4 = isIPv4(address);
    const family = v4 ? AF_INET : AF_INET6;
    const firstHop = v4 ? FIRST_HOP_V4 : FIRST_HOP_V6;
    const hostLen = v4 ? 32 : 128;
    // NODAD: the address is usable (and a valid route source) at once.
    reqs.push(addAddressRequest({ index: peerIndex, address, prefixLen: hostLen, flags: IFA_F_NODAD }, where));
    // A dedicated on-link route rather than RTNH_F_ONLINK, which some sandboxes (gVisor) lack.
    reqs.push(addRouteRequest({ family, dst: firstHop, dstLen: hostLen, oif: peerIndex, scope: RT_SCOPE_LINK }, where));
    reqs.push(addRouteRequest({ family, dstLen: 0, gateway: firstHop, oif: peerIndex, src: address }, where));
    // A permanent entry: no ARP/ND before the first packet.
    reqs.push(addPermanentNeighbourRequest({ index: peerIndex, address: firstHop, mac: HOST_VETH_MAC }, where));
  }
  throwFirstFailure(await pod.batch(reqs));
}

/**
 * On the host: the alias that marks the link as this workload's (the kernel
 * cannot set it at creation; until then group and MAC mark it, and recovery
 * removes such half-made links), the alternative name Detach deletes it by
 * (host-names.ts), the link up, a route and a permanent
 * neighbour for each pod address, and the IPv6 first hop.
 *
 * fe80::1/64 is the host end's only link-local address: its prefix route
 * carries answers to the pod's own link-local address. The kernel's automatic
 * one would cost each attach a DAD run (taking the rtnl lock) and two routes,
 * and each detach their removal (bulk deletes took ~30 % less kernel CPU
 * without it). The kernel takes that setting only for an existing link and
 * applies it at the next up, after any IFF_UP change in the same message:
 * hence the pair is created down, and the setting goes alone before the up.
 */
async function configureHost(deps: AttachDeps, workloadId: string, hostLink: Link, addresses: string[], podMac: string, routeLocalnet: boolean): Promise<void> {
  const where = `host (${hostLink.name})`;
  const noLinkLocal = setLinkByIndexRequest(hostLink.index, { ipv6AddrGenMode: IN6_ADDR_GEN_MODE_NONE }, undefined, hostLink.name);
  const altName = addAltNameRequest(hostLink.index, hostAltName(workloadId), hostLink.name);
  const reqs: Request[] = [
    setLinkByNameRequest(hostLink.name, { alias: ALIAS_PREFIX + workloadId }),
    altName,
    noLinkLocal,
    setLinkUpRequest(hostLink.index, true, hostLink.name),
  ];
  // Published IPv4 ports answer 127.0.0.1 on the node: the kernel routes a
  // loopback source out of this link only with route_localnet on it.
  if (routeLocalnet) reqs.push(setLinkByIndexRequest(hostLink.index, { routeLocalnet: true }, undefined, hostLink.name));
  for (const address of addresses) {
    const v4 = isIPv4(address);
    reqs.push(addRouteRequest({ family: v4 ? AF_INET : AF_INET6, dst: address, dstLen: v4 ? 32 : 128, oif: hostLink.index }, where));
    reqs.push(addPermanentNeighbourRequest({ index: hostLink.index, address, mac: podMac }, where));
    if (!v4) {
      // The host itself answers as fe80::1 on this link, so pods reach it over IPv6.
      reqs.push(addAddressRequest({ index: hostLink.index, address: FIRST_HOP_V6, prefixLen: 64, scope: RT_SCOPE_LINK, flags: IFA_F_NODAD }, where));
    }
  }
  const outcomes = await deps.host.batch(reqs);
  // A kernel without IPv6 (booted with ipv6.disable=1) refuses the setting: it has no link-local address to skip.
  // A kernel before 5.5 has no alternative names; Detach then looks the link up by its name.
  const optional = (o: Outcome, i: number): boolean =>
    !o.ok && ((reqs[i] === noLinkLocal && o.error.code === "EAFNOSUPPORT") || (reqs[i] === altName && o.error.code === "EOPNOTSUPP"));
  throwFirstFailure(outcomes.filter((o, i) => !optional(o, i)));
}

/** The pod already holds what Attach adds (a first-hop or default route, an address): the caller's doing, e.g. a second workload in one namespace. */
function podFailure(err: unknown, netns: NetnsAttachment): unknown {
  if (!(err instanceof NetlinkError && err.code === "EEXIST")) return err;
  return new ServiceError(StatusCode.FailedPrecondition, `${err.message}: ${netns.netnsPath} already has it (is another workload attached to that namespace?)`, { cause: err });
}

function throwFirstFailure(outcomes: Outcome[]): void {
  for (const o of outcomes) if (!o.ok) throw o.error;
}

const ignoreGone = (err: unknown): void => {
  if (err instanceof NetlinkError && (err.code === "ENODEV" || err.code === "ENOENT")) return;
  throw err;
};

/** Maps what went wrong to a status a caller can act on; keeps the context in the message. */
function toServiceError(err: unknown): ServiceError {
  if (err instanceof ServiceError) return err;
  if (err instanceof IpamNotReadyError) return new ServiceError(StatusCode.Unavailable, `no pod prefixes yet: ${err.message}`, { cause: err });
  if (err instanceof IpamExhaustedError) return new ServiceError(StatusCode.ResourceExhausted, err.message, { cause: err });
  if (err instanceof NamespaceError) {
    const code = err.code === "ENOENT" ? StatusCode.NotFound : err.code === "EACCES" ? StatusCode.PermissionDenied : StatusCode.InvalidArgument;
    return new ServiceError(code, err.message, { cause: err });
  }
  const message = (err as Error)?.message ?? String(err);
  return new ServiceError(StatusCode.Internal, message, { cause: err });
}
