// The network configuration the runtime passes on stdin: one plugin's entry of
// a conflist, with "name" and "cniVersion" filled in by the runtime, plus
// runtime-supplied keys (prevResult for CHECK, cni.dev/valid-attachments for GC).
//
// Our own keys:
//   "socket"  the daemon's unix socket (the C forwarder reads it too); default
//             /run/workloadnet/workloadnet.sock
// Capabilities: "portMappings" is honoured (runtimeConfig.portMappings, as
// containerd's CRI and podman send it, become the workload's published ports).
// Keys we refuse because we cannot honour them (error 2): "ipam" (the daemon
// allocates), and other capabilities declared true (bandwidth, dns, …: chain
// the plugins that do after ours instead).
import { PortMappingError, validatePortMappings, type PortMapping } from "../nftables/port-mappings.js";
import { CniCode, CniError } from "./errors.js";
import { isSupportedVersion, SUPPORTED_VERSIONS, type CniVersion } from "./versions.js";

export const DEFAULT_SOCKET = "/run/workloadnet/workloadnet.sock";

export interface ValidAttachment {
  containerId: string;
  ifName: string;
}

export interface NetworkConfig {
  cniVersion: CniVersion;
  name: string;
  socket: string;
  /** As given, for CHECK. */
  prevResult: unknown;
  /** GC only: the attachments the runtime still has on this network. */
  validAttachments: ValidAttachment[] | undefined;
  /** runtimeConfig.portMappings, validated (ADD only; empty otherwise). */
  portMappings: PortMapping[];
}

/** The capabilities we honour (runtimeConfig keys of the same name). */
export const CAPABILITIES = ["portMappings"] as const;

/** The spec's network name rule. */
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Decodes the JSON and checks the version first, so errors can be reported in it. */
export function decodeConfig(stdin: Buffer): Record<string, unknown> {
  if (stdin.length === 0) throw new CniError(CniCode.DecodingFailure, "no network configuration on stdin");
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin.toString("utf8"));
  } catch (err) {
    throw new CniError(CniCode.DecodingFailure, `network configuration on stdin is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new CniError(CniCode.DecodingFailure, "network configuration on stdin is not a JSON object");
  }
  return parsed as Record<string, unknown>;
}

/** The requested version, or error 1 naming what we support. */
export function configVersion(raw: Record<string, unknown>): CniVersion {
  const v = raw.cniVersion;
  if (isSupportedVersion(v)) return v;
  const shown = v === undefined ? "none (that means 0.1.0)" : JSON.stringify(v);
  throw new CniError(CniCode.IncompatibleVersion, "incompatible CNI versions", `config is ${shown}, plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`);
}

/** forAdd: read runtimeConfig.portMappings (DEL and the rest ignore it, so a bad one never blocks a DEL). */
export function parseConfig(raw: Record<string, unknown>, cniVersion: CniVersion, forGc: boolean, forAdd = false): NetworkConfig {
  const name = raw.name;
  if (typeof name !== "string" || name === "") throw new CniError(CniCode.InvalidNetworkConfig, 'network configuration has no "name"');
  if (!NETWORK_NAME.test(name)) {
    throw new CniError(CniCode.InvalidNetworkConfig, `network name ${JSON.stringify(name.slice(0, 80))} must start with a letter or digit and contain only letters, digits, '_', '.' and '-'`);
  }
  const socket = raw.socket ?? DEFAULT_SOCKET;
  if (typeof socket !== "string" || !socket.startsWith("/")) {
    throw new CniError(CniCode.InvalidNetworkConfig, `"socket" must be an absolute path (got ${JSON.stringify(socket)})`);
  }
  if (raw.ipam !== undefined) {
    throw new CniError(CniCode.UnsupportedField, `unsupported field "ipam": ${JSON.stringify(raw.ipam).slice(0, 200)}`, "workloadnetd allocates the addresses itself from the node's pod prefixes; remove the ipam section");
  }
  const caps = raw.capabilities;
  if (caps !== undefined && caps !== null) {
    if (typeof caps !== "object" || Array.isArray(caps)) throw new CniError(CniCode.InvalidNetworkConfig, '"capabilities" must be an object');
    const declared = Object.entries(caps as Record<string, unknown>).filter(([k, on]) => on === true && !(CAPABILITIES as readonly string[]).includes(k));
    if (declared.length > 0) {
      const names = declared.map(([k]) => k).join(", ");
      throw new CniError(
        CniCode.UnsupportedField,
        `unsupported field "capabilities": ${names}: true`,
        `workloadnet-cni honours only ${CAPABILITIES.join(", ")}; chain the plugins that do (bandwidth, …) after it in the conflist`,
      );
    }
  }
  return { cniVersion, name, socket, prevResult: raw.prevResult, validAttachments: forGc ? validAttachmentsOf(raw) : undefined, portMappings: forAdd ? portMappingsOf(raw) : [] };
}

/**
 * runtimeConfig.portMappings: [{hostPort, containerPort, protocol, hostIP}]
 * (libcni passes it only to plugins that declare the capability). A bad entry
 * is error 7, naming it.
 */
function portMappingsOf(raw: Record<string, unknown>): PortMapping[] {
  const rc = raw.runtimeConfig;
  if (rc === undefined || rc === null) return [];
  if (typeof rc !== "object" || Array.isArray(rc)) throw new CniError(CniCode.InvalidNetworkConfig, '"runtimeConfig" must be an object');
  const list = (rc as Record<string, unknown>).portMappings;
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new CniError(CniCode.InvalidNetworkConfig, '"runtimeConfig.portMappings" must be a list');
  const entries = list.map((item, i) => {
    if (item === null || typeof item !== "object" || Array.isArray(item)) {
      throw new CniError(CniCode.InvalidNetworkConfig, `"runtimeConfig.portMappings"[${i}] must be an object {hostPort, containerPort, protocol, hostIP}`);
    }
    const o = item as Record<string, unknown>;
    return { hostPort: o.hostPort, containerPort: o.containerPort, protocol: o.protocol, hostIp: o.hostIP };
  });
  try {
    return validatePortMappings(entries);
  } catch (err) {
    if (err instanceof PortMappingError) throw new CniError(CniCode.InvalidNetworkConfig, `invalid "runtimeConfig.portMappings": ${err.message}`);
    throw err;
  }
}

function validAttachmentsOf(raw: Record<string, unknown>): ValidAttachment[] {
  const list = raw["cni.dev/valid-attachments"];
  if (!Array.isArray(list)) {
    throw new CniError(CniCode.InvalidNetworkConfig, 'GC needs "cni.dev/valid-attachments" (a list, possibly empty); without it nothing is removed');
  }
  return list.map((item, i) => {
    const o = item as Record<string, unknown> | null;
    if (o === null || typeof o !== "object" || typeof o.containerID !== "string" || typeof o.ifname !== "string") {
      throw new CniError(CniCode.InvalidNetworkConfig, `"cni.dev/valid-attachments"[${i}] must be {"containerID": string, "ifname": string}`);
    }
    return { containerId: o.containerID, ifName: o.ifname };
  });
}
