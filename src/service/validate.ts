// Request validation: every bad input gets a message a person understands and
// INVALID_ARGUMENT, before anything is allocated or touched.
import { PortMappingError, validatePortMappings as checkPortMappings, type PortMapping, type RawPortMapping } from "../nftables/port-mappings.js";
import { ServiceError, StatusCode } from "./errors.js";
import type { NetnsAttachment } from "./types.js";

/** The alias "wk" + id must fit the kernel's 256-byte IFALIASZ (with its NUL). */
export const MAX_WORKLOAD_ID_BYTES = 253;
const WORKLOAD_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;
const IFNAMSIZ = 16;

const invalid = (message: string): ServiceError => new ServiceError(StatusCode.InvalidArgument, message);

/** Shortens untrusted input for error messages and logs. */
export function preview(s: string, max = 64): string {
  const shown = s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s;
  return JSON.stringify(shown);
}

export function validateWorkloadId(id: string): void {
  if (id.length === 0) throw invalid("workload_id is empty");
  if (Buffer.byteLength(id, "utf8") > MAX_WORKLOAD_ID_BYTES) {
    throw invalid(`workload_id ${preview(id)} is longer than ${MAX_WORKLOAD_ID_BYTES} bytes`);
  }
  if (!WORKLOAD_ID.test(id)) {
    throw invalid(`workload_id ${preview(id)} may only contain letters, digits, '_', '.', ':' and '-', and must start with a letter or digit`);
  }
}

/** Linux's own rules for interface names (dev_valid_name). */
export function validateIfName(name: string): void {
  if (name.length === 0) throw invalid("netns.if_name is empty");
  if (Buffer.byteLength(name, "utf8") >= IFNAMSIZ) throw invalid(`netns.if_name ${preview(name)} is longer than 15 bytes`);
  if (name === "." || name === "..") throw invalid(`netns.if_name ${preview(name)} is not a valid interface name`);
  // The kernel's isspace() also counts byte 0xA0, which is part of many UTF-8 characters (U+00A0, 'à', …).
  if (/[/:\s]/.test(name) || /[\x00-\x1f\x7f]/.test(name) || Buffer.from(name, "utf8").includes(0xa0)) {
    throw invalid(`netns.if_name ${preview(name)} must not contain '/', ':', whitespace or control characters`);
  }
  // Taken by /proc/sys/net/*/conf/{all,default}: the kernel refuses them.
  if (name === "all" || name === "default") throw invalid(`netns.if_name ${preview(name)} is reserved by the kernel`);
}

export function validateNetns(netns: NetnsAttachment | undefined): NetnsAttachment {
  if (netns === undefined) throw invalid("netns is missing: give netns_path and if_name");
  if (netns.netnsPath.length === 0) throw invalid("netns.netns_path is empty");
  if (!netns.netnsPath.startsWith("/")) throw invalid(`netns.netns_path ${preview(netns.netnsPath)} must be an absolute path`);
  if (netns.netnsPath.length > 4096 || netns.netnsPath.includes("\0")) throw invalid(`netns.netns_path ${preview(netns.netnsPath)} is not a valid path`);
  validateIfName(netns.ifName);
  return netns;
}

/** Ports 1..65535, protocol tcp/udp/sctp, hostIP an address (nftables/port-mappings.ts). */
export function validatePortMappings(raw: readonly RawPortMapping[] | undefined): PortMapping[] {
  if (raw === undefined || raw.length === 0) return [];
  try {
    return checkPortMappings(raw);
  } catch (err) {
    if (err instanceof PortMappingError) throw invalid(err.message);
    throw err;
  }
}
