// gRPC clients for tests, both talking to the daemon over a unix socket:
// - connectClient: @connectrpc/connect with the generated descriptors;
// - grpcJsClient: @grpc/grpc-js with proto/workload.proto loaded at run time,
//   an independent gRPC implementation for interop checks.

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { connectDaemon, type DaemonClient } from "../src/client/daemon-client.js";

export const SERVICE_NAME = "metropolis.node.core.network.workloads.WorkloadNetworking";

export type ConnectTestClient = DaemonClient;

/** A Connect gRPC client over a unix socket (the same one workloadnetctl uses). */
export const connectClient = (socketPath: string): ConnectTestClient => connectDaemon(socketPath);

export interface NetNSAttachmentJs {
  netnsPath?: string;
  ifName?: string;
}
export interface AttachRequestJs {
  workloadId?: string;
  netns?: NetNSAttachmentJs | null;
}
export type DetachRequestJs = AttachRequestJs;
export interface AttachResponseJs {
  ip: Buffer[];
}

export interface GrpcJsTestClient {
  /** The raw grpc-js client, e.g. for makeUnaryCall with custom serialisers. */
  raw: grpc.Client;
  attach(req: AttachRequestJs, options?: grpc.CallOptions): Promise<AttachResponseJs>;
  detach(req: DetachRequestJs, options?: grpc.CallOptions): Promise<Record<string, never>>;
  status(options?: grpc.CallOptions): Promise<Record<string, never>>;
  close(): void;
}

/** Finds proto/workload.proto from dist/test/ (compiled) or test/ (source). */
export function protoPath(): string {
  const candidates = ["../../proto/workload.proto", "../proto/workload.proto"].map((rel) =>
    fileURLToPath(new URL(rel, import.meta.url)),
  );
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) throw new Error(`workload.proto not found; looked at ${candidates.join(", ")}`);
  return found;
}

type UnaryMethod = (
  req: unknown,
  meta: grpc.Metadata,
  options: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: unknown) => void,
) => grpc.ClientUnaryCall;

/**
 * A grpc-js client for the daemon's socket. Calls resolve with the response
 * object or reject with grpc-js's ServiceError (`.code`, `.details`).
 * Calls get a 10 s deadline unless options say otherwise.
 */
export function grpcJsClient(socketPath: string): GrpcJsTestClient {
  const def = protoLoader.loadSync(protoPath(), {
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def);
  const ctor = SERVICE_NAME.split(".").reduce<unknown>(
    (obj, key) => (obj as Record<string, unknown>)[key],
    pkg,
  ) as grpc.ServiceClientConstructor;
  const raw = new ctor(`unix:${socketPath}`, grpc.credentials.createInsecure());

  const call = <T>(name: string, req: unknown, options?: grpc.CallOptions): Promise<T> =>
    new Promise((resolve, reject) => {
      const method = (raw as unknown as Record<string, UnaryMethod>)[name]!.bind(raw);
      method(req, new grpc.Metadata(), { deadline: Date.now() + 10_000, ...options }, (err, res) => {
        if (err) reject(err);
        else resolve(res as T);
      });
    });

  return {
    raw,
    attach: (req, options) => call("attach", req, options),
    detach: (req, options) => call("detach", req, options),
    status: (options) => call("status", {}, options),
    close: () => raw.close(),
  };
}
