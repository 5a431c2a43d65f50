// What the transport (gRPC server, CNI bridge) needs from the service. Plain
// data in, plain data out; failures are ServiceError.

export interface NetnsAttachment {
  netnsPath: string;
  ifName: string;
}

export interface AttachInput {
  workloadId: string;
  netns: NetnsAttachment | undefined;
}

export interface AttachOutput {
  /** The workload's addresses, at most one IPv4 and one IPv6, in text form. */
  addresses: string[];
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
}
