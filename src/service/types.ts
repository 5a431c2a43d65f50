// What the transport (gRPC server, CNI bridge) needs from the service. Plain
// data in, plain data out; failures are ServiceError.
import type { PortMapping, RawPortMapping } from "../nftables/port-mappings.js";

export type { PortMapping, RawPortMapping } from "../nftables/port-mappings.js";

export interface NetnsAttachment {
  netnsPath: string;
  ifName: string;
}

export interface AttachInput {
  workloadId: string;
  netns: NetnsAttachment | undefined;
  /** Published ports (unvalidated: the service checks them). */
  portMappings?: readonly RawPortMapping[];
}

export interface AttachOutput {
  /** The workload's addresses, at most one IPv4 and one IPv6, in text form. */
  addresses: string[];
  /** Host side of the veth pair. */
  hostIfName: string;
  hostMac: string;
  /** MAC of the interface inside the workload's namespace. */
  podMac: string;
}

export interface StatusDetails {
  prefixes: string[];
  attached: number;
  prefixError?: string;
}

export interface AttachmentInfo {
  workloadId: string;
  addresses: string[];
  hostIfName: string;
  /** Published ports (none: empty or absent). */
  portMappings?: PortMapping[];
}

export interface DetachInput {
  workloadId: string;
  netns: NetnsAttachment | undefined;
}

export interface WorkloadService {
  attach(input: AttachInput, signal?: AbortSignal): Promise<AttachOutput>;
  detach(input: DetachInput, signal?: AbortSignal): Promise<void>;
  /** Resolves when ready to attach; throws ServiceError(Unavailable) otherwise. */
  status(): Promise<void>;
  /** Details for a successful Status: prefixes in use, attachments, prefix source trouble. */
  describe?(): StatusDetails;
  /** Verifies the attachment exists as made; FailedPrecondition/NotFound say what is missing. */
  check(input: DetachInput): Promise<void>;
  list(): Promise<AttachmentInfo[]>;
  /** Detaches every attachment not in `keep`; returns the ids removed. */
  gc(keep: string[]): Promise<string[]>;
}
