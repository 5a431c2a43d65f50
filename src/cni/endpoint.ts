// The daemon's side of the CNI plugin, ready to plug into the gRPC server as
// its side protocol (same unix socket, sniffed by the magic line).
import { basename, dirname, join } from "node:path";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import type { AccessDecision } from "../server/peer-auth.js";
import type { WorkloadService } from "../service/types.js";
import { CniAttachmentStore } from "./attachments.js";
import { serveCniConnection } from "./connection.js";
import { CniCode, CniError } from "./errors.js";
import { CniPlugin } from "./plugin.js";
import { MAGIC } from "./wire.js";

export interface CniEndpointOptions {
  service: WorkloadService;
  log: Logger;
  /** Where the CNI attachment records are kept; undefined: memory only. */
  stateFile: string | undefined;
}

export interface CniEndpoint {
  magic: Buffer;
  onConnection(socket: Socket, access: AccessDecision): void;
}

/** The default records file: beside the socket, named after it (…/workloadnet.sock → …/workloadnet.cni-attachments.json). */
export function defaultCniStateFile(socketPath: string): string {
  return join(dirname(socketPath), `${basename(socketPath, ".sock")}.cni-attachments.json`);
}

/** Loads the records (after the service has recovered its state from the kernel) and returns the endpoint. */
export async function createCniEndpoint(opts: CniEndpointOptions): Promise<CniEndpoint> {
  const log = opts.log.child({ component: "cni" });
  const attached = new Set((await opts.service.list()).map((a) => a.workloadId));
  const store = await CniAttachmentStore.open(opts.stateFile, attached, log);
  const plugin = new CniPlugin({ service: opts.service, store, log: opts.log });
  return {
    magic: MAGIC,
    onConnection: (socket, access) =>
      serveCniConnection(socket, plugin, log, {
        authorize: () => {
          if (access.allowed) return;
          log.warn({ uid: access.peer?.uid, gid: access.peer?.gid, pid: access.peer?.pid, reason: access.reason }, "CNI call refused: caller not allowed");
          throw new CniError(CniCode.PermissionDenied, access.reason);
        },
      }),
  };
}
