// ADD's result in the format of the requested spec version, and reading the
// addresses back out of a prevResult (CHECK).
import { parseIp } from "../netlink/codec/ip.js";
import { FIRST_HOP_V4, FIRST_HOP_V6 } from "../service/constants.js";
import { CniCode, CniError } from "./errors.js";
import { ipsCarryVersion, type CniVersion } from "./versions.js";

export interface AttachResultInput {
  addresses: string[];
  hostIfName: string;
  hostMac: string;
  podIfName: string;
  podMac: string;
  netns: string;
}

/**
 * interfaces: [0] host veth, [1] the pod's interface (with its sandbox);
 * ips: each /32 or /128 on interface 1 with the first hop as gateway;
 * routes: a default route per family via the first hop.
 */
// By the codec's parser rather than node:net's isIPv6, whose large regular
// expression costs ~10 ms to compile on a daemon's first CNI Add.
const isIPv4 = (a: string): boolean => parseIp(a)?.length === 4;
const isIPv6 = (a: string): boolean => parseIp(a)?.length === 16;

export function formatResult(version: CniVersion, r: AttachResultInput): Record<string, unknown> {
  const withVersion = ipsCarryVersion(version);
  const v4 = r.addresses.filter((a) => isIPv4(a));
  const v6 = r.addresses.filter((a) => isIPv6(a));
  const ips = [...v4, ...v6].map((a) => {
    const four = isIPv4(a);
    return {
      ...(withVersion ? { version: four ? "4" : "6" } : {}),
      address: `${a}/${four ? 32 : 128}`,
      gateway: four ? FIRST_HOP_V4 : FIRST_HOP_V6,
      interface: 1,
    };
  });
  const routes = [...(v4.length ? [{ dst: "0.0.0.0/0", gw: FIRST_HOP_V4 }] : []), ...(v6.length ? [{ dst: "::/0", gw: FIRST_HOP_V6 }] : [])];
  return {
    cniVersion: version,
    interfaces: [
      { name: r.hostIfName, mac: r.hostMac },
      { name: r.podIfName, mac: r.podMac, sandbox: r.netns },
    ],
    ips,
    routes,
    dns: {},
  };
}

/** The bare addresses (no prefix length) in a prevResult's "ips", for any version's format. */
export function prevResultAddresses(prevResult: unknown): string[] {
  const bad = (why: string): CniError => new CniError(CniCode.InvalidNetworkConfig, `prevResult ${why}`);
  if (prevResult === undefined || prevResult === null) throw new CniError(CniCode.InvalidNetworkConfig, "CHECK needs prevResult in the network configuration (the result of the ADD)");
  if (typeof prevResult !== "object" || Array.isArray(prevResult)) throw bad("must be an object");
  const ips = (prevResult as Record<string, unknown>).ips ?? [];
  if (!Array.isArray(ips)) throw bad('"ips" must be a list');
  return ips.map((ip, i) => {
    const address = (ip as Record<string, unknown> | null)?.address;
    if (typeof address !== "string") throw bad(`"ips"[${i}] has no "address"`);
    const slash = address.indexOf("/");
    const bare = slash < 0 ? address : address.slice(0, slash);
    if (!isIPv4(bare) && !isIPv6(bare)) throw bad(`"ips"[${i}].address ${JSON.stringify(address)} is not an IP address`);
    return bare;
  });
}
