// Our one VXLAN device: created, adopted after a restart, or fixed in place.
// Ours means: the configured name, kind "vxlan", and our alias (or no alias
// at all: the alias is set right after creation, so a crash in between leaves
// a device without one). A link of that name that is anything else is never
// touched.
import type { Handle } from "../../netlink/handle.js";
import { deleteLink, getLinkByName, setLinkByIndexRequest, type Link } from "../../netlink/link.js";
import { createVxlan } from "../../netlink/vxlan.js";
import { IFF_UP, IN6_ADDR_GEN_MODE_NONE } from "../../netlink/codec/constants.js";
import { parseMac } from "../../netlink/codec/mac.js";
import { VXLAN_ALIAS } from "./vtep.js";

export interface DeviceSpec {
  name: string;
  vni: number;
  port: number;
  /** The underlay source address (this node's); its family is the device's. */
  local: string;
  /** Our VTEP MAC, derived from local. */
  mac: string;
  mtu: number;
}

export function isOurDevice(link: Link): boolean {
  return link.kind === "vxlan" && (link.alias === VXLAN_ALIAS || link.alias === undefined || link.alias === "");
}

/** What about an existing device of ours can only be changed by making it anew. */
function fixedMismatch(link: Link, want: DeviceSpec): string | undefined {
  const v = link.vxlan;
  if (v === undefined) return "no VXLAN settings reported";
  if (v.vni !== want.vni) return `id ${v.vni}, want ${want.vni}`;
  if (v.port !== want.port) return `dstport ${v.port}, want ${want.port}`;
  if (v.local !== want.local) return `local ${v.local ?? "any"}, want ${want.local}`;
  if (v.learning) return "learning on";
  if (v.group !== undefined) return `remote/group ${v.group} set`;
  return undefined;
}

export interface EnsureResult {
  link: Link;
  /** What was done: "created", "recreated (why)", "fixed (what)", or undefined for nothing. */
  action?: string;
}

/** Makes the device match `want`; throws with context when it cannot (a foreign link of that name, the kernel refusing). */
export async function ensureDevice(h: Handle, want: DeviceSpec): Promise<EnsureResult> {
  let link = await getLinkByName(h, want.name);
  let action: string | undefined;
  if (link !== undefined) {
    if (!isOurDevice(link)) {
      throw new Error(`a link named ${want.name} exists and is not ours (kind ${link.kind ?? "none"}, alias ${JSON.stringify(link.alias ?? "")}); left alone`);
    }
    const why = fixedMismatch(link, want);
    if (why !== undefined) {
      // Deleting takes its forwarding entries, neighbours and routes with it; the caller reads the kernel afterwards.
      await deleteLink(h, link.index, want.name);
      link = undefined;
      action = `recreated (${why})`;
    }
  }
  if (link === undefined) {
    const created = await createVxlan(h, {
      name: want.name,
      mtu: want.mtu,
      mac: parseMac(want.mac),
      vxlan: { vni: want.vni, port: want.port, local: want.local, learning: false },
    });
    try {
      // The alias marks it ours; no automatic IPv6 link-local address (nothing uses one).
      await h.request(setLinkByIndexRequest(created.index, { alias: VXLAN_ALIAS, ipv6AddrGenMode: IN6_ADDR_GEN_MODE_NONE }, undefined, want.name));
      await h.request(setLinkByIndexRequest(created.index, {}, true, want.name));
    } catch (err) {
      await deleteLink(h, created.index, want.name).catch(() => undefined);
      throw err;
    }
    return { link: { ...created, alias: VXLAN_ALIAS, flags: created.flags | IFF_UP }, action: action ?? "created" };
  }
  const fixes: string[] = [];
  const settings: { mtu?: number; mac?: Buffer; alias?: string } = {};
  if (link.mtu !== want.mtu) (settings.mtu = want.mtu), fixes.push(`mtu ${link.mtu} -> ${want.mtu}`);
  if (link.mac !== want.mac) (settings.mac = parseMac(want.mac)), fixes.push(`address ${link.mac} -> ${want.mac}`);
  if (link.alias !== VXLAN_ALIAS) (settings.alias = VXLAN_ALIAS), fixes.push("alias");
  const down = (link.flags & IFF_UP) === 0;
  if (down) fixes.push("up");
  if (fixes.length === 0) return { link };
  await h.request(setLinkByIndexRequest(link.index, settings, down ? true : undefined, want.name));
  return { link: { ...link, mtu: want.mtu, mac: want.mac, alias: VXLAN_ALIAS, flags: link.flags | IFF_UP }, action: `fixed (${fixes.join(", ")})` };
}

/** Deletes our device if there is one (its entries and routes go with it); a foreign link of that name stays. */
export async function removeDevice(h: Handle, name: string): Promise<boolean> {
  const link = await getLinkByName(h, name);
  if (link === undefined || !isOurDevice(link)) return false;
  await deleteLink(h, link.index, name);
  return true;
}
