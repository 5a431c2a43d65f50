// VXLAN links, like `ip link add NAME type vxlan ...`. Looking one up, setting
// its MTU or bringing it up and deleting it are link.ts's (getLinkByName,
// setLinkByIndexRequest, deleteLink); the decoded Link carries `vxlan`.
import type { Handle } from "./handle.js";
import { decodeLink, encodeIfInfo, encodeLinkSettings, type Link, type LinkSettings } from "./codec/link-message.js";
import { encodeVxlanLinkInfo, type VxlanInfo } from "./codec/vxlan-info.js";
import { NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL, RTM_NEWLINK } from "./codec/constants.js";
import { getLinkByName } from "./link.js";
import type { Request } from "./socket.js";

export type { VxlanInfo } from "./codec/vxlan-info.js";

export interface VxlanSpec extends Omit<LinkSettings, "alias" | "txQueues" | "rxQueues"> {
  name: string;
  vxlan: VxlanInfo;
}

/**
 * `ip link add NAME [address MAC] [mtu N] [group G] type vxlan id VNI local ADDR dstport PORT [no]learning`.
 * (The kernel takes no alias and no IPv6 address mode at creation: set them after.)
 */
export function createVxlanRequest(spec: VxlanSpec): Request {
  return {
    type: RTM_NEWLINK,
    flags: NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
    parts: [encodeIfInfo({}), ...encodeLinkSettings({ ...spec, ipv6AddrGenMode: undefined }), encodeVxlanLinkInfo(spec.vxlan)],
    context: `create vxlan ${spec.name} id ${spec.vxlan.vni}${spec.vxlan.local ? ` local ${spec.vxlan.local}` : ""} dstport ${spec.vxlan.port}`,
  };
}

/** Creates the link and returns it as the kernel describes it. */
export async function createVxlan(h: Handle, spec: VxlanSpec): Promise<Link> {
  const replies = await h.request({ ...createVxlanRequest(spec), context: `${createVxlanRequest(spec).context} in ${h.where}` });
  const echoed = replies.find((m) => m.type === RTM_NEWLINK);
  if (echoed) return decodeLink(echoed.payload);
  const link = await getLinkByName(h, spec.name);
  if (link === undefined) throw new Error(`vxlan ${spec.name} vanished right after creation`);
  return link;
}
