// The VXLAN underlay's fixed facts: each node's tunnel endpoint (VTEP) MAC is
// derived from its underlay address, so every node computes every other
// node's MAC from the cluster view alone and nothing has to be published.
import { createHash } from "node:crypto";
import { ipToBytes } from "../../netlink/codec/ip.js";
import { formatMac } from "../../netlink/codec/mac.js";
import type { Family } from "../../ipam/prefix.js";

/** Bytes VXLAN adds to each packet: outer IP (20 or 40) + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD: Readonly<Record<Family, number>> = { 4: 50, 6: 70 };

export const DEFAULT_VXLAN_PORT = 4789;
/** VNI 1 is the common default (flannel's); configurable. */
export const DEFAULT_VXLAN_VNI = 1;
export const DEFAULT_VXLAN_NAME = "wnvx0";
/** The alias that marks the VXLAN device as ours (with its name and kind). */
export const VXLAN_ALIAS = "workloadnet:vxlan";

/**
 * The VTEP MAC of the node with this underlay address: locally administered
 * unicast (first octet 0x02). IPv4: 02:57 and the four address bytes, so it
 * can be read back (192.0.2.12 -> 02:57:c0:00:02:0c). IPv6: 02 and five bytes
 * of the address's SHA-256 (too long to embed; a clash needs ~10^6 nodes).
 */
export function vtepMac(address: string): string {
  const b = ipToBytes(address);
  if (b.length === 4) return formatMac(Buffer.from([0x02, 0x57, b[0]!, b[1]!, b[2]!, b[3]!]));
  const h = createHash("sha256").update(b).digest();
  return formatMac(Buffer.from([0x02, h[0]!, h[1]!, h[2]!, h[3]!, h[4]!]));
}
