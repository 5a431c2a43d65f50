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
  /** "static", "file" or "kubernetes". */
  source?: string;
  /** When the source last read its backend successfully. */
  lastSync?: Date;
  /** The source's trouble while the last view stays in force (same as prefixError). */
  sourceError?: string;
  /** Nodes or entries skipped or refused by validation. */
  problems?: string[];
  /** Other nodes in the view. */
  nodesKnown?: number;
  nodeName?: string;
  routing?: string;
}

/** One node of the cluster view as `workloadnetctl nodes` shows it. */
export interface NodeInfo {
  name: string;
  self: boolean;
  addresses: string[];
  prefixes: string[];
  /** "local", "direct", "vxlan", "none" or "" (not routed yet). */
  route: string;
  /** "ok", "pending" or "error". */
  state: string;
  message?: string;
}

export interface NodesOutput {
  nodes: NodeInfo[];
  problems: string[];
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
  /** The cluster view with each node's routing state. */
  nodes?(): Promise<NodesOutput>;
}
