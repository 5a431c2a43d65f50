// Link operations, each the equivalent of one `ip link` command.
import type { Handle } from "./handle.js";
import { encodeIfInfo, decodeLink, encodeLinkSettings, encodeVethInfo, type Link, type LinkSettings, type VethPeer } from "./codec/link-message.js";
import { attrNested, attrString, attrU32 } from "./codec/attributes.js";
import {
  IFF_UP,
  IFLA_ALT_IFNAME,
  IFLA_EXT_MASK,
  IFLA_GROUP,
  IFLA_IFNAME,
  IFLA_PROP_LIST,
  NLA_F_NESTED,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_ECHO,
  NLM_F_EXCL,
  RTEXT_FILTER_SKIP_STATS,
  RTM_DELLINK,
  RTM_GETLINK,
  RTM_NEWLINK,
  RTM_NEWLINKPROP,
  RTM_SETLINK,
} from "./codec/constants.js";
import { isErrno } from "./errors.js";
import type { Request } from "./socket.js";

export type { Link, VethPeer } from "./codec/link-message.js";

export interface VethSpec extends LinkSettings {
  name: string;
  up?: boolean;
  peer: VethPeer;
}

/**
 * `ip link add NAME [address MAC] [mtu N] [group G] [numtxqueues N numrxqueues N] type veth peer name PEER … netns NS`,
 * the host end optionally up at creation. `peerWhere` names the peer's namespace in errors.
 */
export function createVethRequest(spec: VethSpec, peerWhere = "same namespace"): Request {
  return {
    type: RTM_NEWLINK,
    // ECHO: the kernel answers with the new link (index, peer index), saving a lookup.
    flags: NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
    parts: [
      encodeIfInfo(spec.up ? { flags: IFF_UP, change: IFF_UP } : {}),
      ...encodeLinkSettings({ ...spec, alias: undefined }),
      encodeVethInfo(spec.peer),
    ],
    context: `create veth ${spec.name} -> ${spec.peer.name} in ${peerWhere}`,
  };
}

/**
 * Creates the pair and returns the host end as the kernel describes it; its
 * parentIndex is the peer's ifindex in the peer's namespace.
 */
export async function createVeth(h: Handle, spec: VethSpec, peerWhere?: string): Promise<Link> {
  const replies = await h.request(createVethRequest(spec, peerWhere));
  const echoed = replies.find((m) => m.type === RTM_NEWLINK);
  if (echoed) return decodeLink(echoed.payload);
  // Kernels before 6.1 do not echo new links: look it up instead.
  const link = await getLinkByName(h, spec.name);
  if (link === undefined) throw new Error(`veth ${spec.name} vanished right after creation`);
  return link;
}

/** `ip link set dev INDEX up|down`. */
export function setLinkUpRequest(index: number, up: boolean, label = `index ${index}`): Request {
  return {
    type: RTM_NEWLINK,
    flags: 0,
    parts: [encodeIfInfo({ index, flags: up ? IFF_UP : 0, change: IFF_UP })],
    context: `set link ${label} ${up ? "up" : "down"}`,
  };
}

export async function setLinkUp(h: Handle, index: number, up = true): Promise<void> {
  await h.request(setLinkUpRequest(index, up));
}

/** `ip link set dev INDEX [up|down] group G mtu N ...` — by index. */
export function setLinkByIndexRequest(index: number, settings: Omit<LinkSettings, "name">, up?: boolean, label = `index ${index}`): Request {
  return changeLinkRequest(index, [], settings, up, label);
}

/** `ip link set dev ALTNAME [up|down] group G ...`: the link that carries this name; ENODEV if none does. */
export function setLinkByAltNameRequest(altName: string, settings: Omit<LinkSettings, "name">, up?: boolean): Request {
  return changeLinkRequest(0, [attrString(IFLA_ALT_IFNAME, altName)], settings, up, altName);
}

/** RTM_NEWLINK on an existing link, named by its index or (index 0) by the attributes in `names`. */
function changeLinkRequest(index: number, names: Buffer[], settings: Omit<LinkSettings, "name">, up: boolean | undefined, label: string): Request {
  const flags = up === undefined ? {} : { flags: up ? IFF_UP : 0, change: IFF_UP };
  return {
    type: RTM_NEWLINK,
    flags: 0,
    parts: [encodeIfInfo({ index, ...flags }), ...names, ...encodeLinkSettings(settings)],
    context: `set link ${label}${up === undefined ? "" : up ? " up" : " down"} ${Object.keys(settings).join(",")}`.trimEnd(),
  };
}

/** `ip link set dev NAME alias A mtu N group G address MAC` — any subset, by name. */
export function setLinkByNameRequest(name: string, settings: Omit<LinkSettings, "name">): Request {
  return {
    type: RTM_SETLINK,
    flags: 0,
    parts: [encodeIfInfo({}), attrString(IFLA_IFNAME, name), ...encodeLinkSettings(settings)],
    context: `set link ${name} ${Object.keys(settings).join(",")}`,
  };
}

export async function setLink(h: Handle, name: string, settings: Omit<LinkSettings, "name">): Promise<void> {
  await h.request(setLinkByNameRequest(name, settings));
}

/** `ip link show NAME`; undefined when there is none. */
export async function getLinkByName(h: Handle, name: string): Promise<Link | undefined> {
  return getLink(h, [encodeIfInfo({}), attrString(IFLA_IFNAME, name), attrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)], `get link ${name}`);
}

/** `ip link show` by index; undefined when there is none. */
export async function getLinkByIndex(h: Handle, index: number): Promise<Link | undefined> {
  return getLink(h, [encodeIfInfo({ index }), attrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)], `get link index ${index}`);
}

async function getLink(h: Handle, parts: Buffer[], context: string): Promise<Link | undefined> {
  try {
    const replies = await h.request({ type: RTM_GETLINK, flags: 0, parts, context });
    const m = replies.find((r) => r.type === RTM_NEWLINK);
    return m ? decodeLink(m.payload) : undefined;
  } catch (err) {
    if (isErrno(err, "ENODEV")) return undefined;
    throw err;
  }
}

/** `ip link show [group G]`: every link, or only those in one group (filtered by the kernel). */
export async function listLinks(h: Handle, group?: number): Promise<Link[]> {
  const parts = [encodeIfInfo({}), attrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)];
  if (group !== undefined) parts.push(attrU32(IFLA_GROUP, group));
  const replies = await h.request({ type: RTM_GETLINK, flags: NLM_F_DUMP, parts, context: group === undefined ? "list links" : `list links in group ${group}` });
  const links = replies.filter((m) => m.type === RTM_NEWLINK).map((m) => decodeLink(m.payload));
  // Older kernels ignore the group filter on dumps; filter again to be sure.
  return group === undefined ? links : links.filter((l) => l.group === group);
}

/** `ip link del dev INDEX` (a veth takes its peer with it). */
export function deleteLinkRequest(index: number, label = `index ${index}`): Request {
  return { type: RTM_DELLINK, flags: 0, parts: [encodeIfInfo({ index })], context: `delete link ${label}` };
}

export async function deleteLink(h: Handle, index: number, label?: string): Promise<void> {
  await h.request(deleteLinkRequest(index, label));
}

/**
 * `ip link property add dev INDEX altname NAME`: a second name the link can be
 * found by (up to 127 bytes), unique among all names in its namespace.
 */
export function addAltNameRequest(index: number, altName: string, label = `index ${index}`): Request {
  return {
    type: RTM_NEWLINKPROP,
    flags: 0,
    // The kernel parses the list strictly: it must be flagged as nested.
    parts: [encodeIfInfo({ index }), attrNested(IFLA_PROP_LIST | NLA_F_NESTED, [attrString(IFLA_ALT_IFNAME, altName)])],
    context: `add altname ${altName} to link ${label}`,
  };
}

/** `ip link del dev ALTNAME`: the link that carries this name; ENODEV if none does. */
export function deleteLinkByAltNameRequest(altName: string): Request {
  return { type: RTM_DELLINK, flags: 0, parts: [encodeIfInfo({}), attrString(IFLA_ALT_IFNAME, altName)], context: `delete link ${altName}` };
}

/** `ip link del group G`: every link in the group, in one request (the kernel batches the RCU wait). */
export async function deleteLinksInGroup(h: Handle, group: number): Promise<void> {
  await h.request({ type: RTM_DELLINK, flags: 0, parts: [encodeIfInfo({}), attrU32(IFLA_GROUP, group)], context: `delete links in group ${group}` });
}
