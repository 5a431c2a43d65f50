// A gRPC client of the daemon over its unix socket (Connect's client with the
// generated descriptors). Shared by workloadnetctl, the go-cni-shaped client
// and the tests.
import * as net from "node:net";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { WorkloadNetworking } from "../gen/workload_pb.js";

export interface DaemonClient {
  client: Client<typeof WorkloadNetworking>;
  /** Closes the HTTP/2 connection. */
  close(): void;
}

export function connectDaemon(socketPath: string): DaemonClient {
  // The URL only names the :authority; the connection is the unix socket.
  const baseUrl = "http://localhost";
  const sessionManager = new Http2SessionManager(baseUrl, undefined, { createConnection: () => net.connect(socketPath) });
  return {
    client: createClient(WorkloadNetworking, createGrpcTransport({ baseUrl, sessionManager })),
    close: () => sessionManager.abort(),
  };
}
