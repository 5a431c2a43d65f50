// Serves a WorkloadService as the gRPC service WorkloadNetworking on a unix
// socket. The listening socket is our own net.Server (it may share the socket
// with the CNI forwarder's protocol, see protocol-sniff.ts); each gRPC
// connection is judged once, as it is accepted, from the peer's credentials
// (peer-auth.ts), and handed to the unary gRPC server on our HTTP/2 code
// (unary-http2.ts, src/http2/) with that decision: a refused caller's every call is
// answered PERMISSION_DENIED without its request being read.

import * as net from "node:net";
import { chmod, chown, lstat, mkdir, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import { WorkloadNetworking, type NetNSAttachment } from "../gen/workload_pb.js";
import { ServiceError, StatusCode } from "../service/errors.js";
import type { NetnsAttachment, WorkloadService } from "../service/types.js";
import { PeerAuthorizer, secureSocketDirectory, type AccessDecision, type HandleLike } from "./peer-auth.js";
import { createSniffingServer } from "./protocol-sniff.js";
import { ipToBytes } from "./ip-bytes.js";
import { unaryRoutes, type WorkloadNetworkingHandlers } from "./service-definition.js";
import { createUnaryServer, GrpcCode, type GrpcStatus, type UnaryRoute } from "./unary-http2.js";

export interface GrpcServerOptions {
  /** Path of the unix socket to listen on. */
  socketPath: string;
  service: WorkloadService;
  logger: Logger;
  /** When given, the socket's group is set to this gid (mode stays 0660), and its members may call. */
  socketGroup?: number;
  /** How long close() lets in-flight calls run before cutting connections. Default 10 s. */
  shutdownTimeoutMs?: number;
  /**
   * A second protocol on the same socket (the CNI forwarder's): connections
   * that start with `magic` go to onConnection, with the peer's access
   * decision; all others are gRPC. See protocol-sniff.ts.
   */
  sideProtocol?: { magic: Buffer; onConnection: (socket: Socket, access: AccessDecision) => void };
}

export interface GrpcServer {
  /** The socket path the server listens on. */
  readonly address: string;
  /**
   * Stops accepting connections, lets in-flight calls finish (bounded by
   * shutdownTimeoutMs, then connections are destroyed) and removes the socket.
   * Safe to call more than once.
   */
  close(): Promise<void>;
}

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
/** Requests are a few hundred bytes; refuse anything absurd early. */
const READ_MAX_BYTES = 1 << 20;

/** What a gRPC connection is injected with: its kernel handle and the access decision. */
interface ConnectionTag {
  handle: HandleLike;
  decision: AccessDecision;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServer> {
  const { socketPath, service, logger } = options;
  const log = logger.child({ component: "grpc-server" });
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;

  await prepareSocketPath(socketPath, options.socketGroup, log);
  const auth = new PeerAuthorizer({ log, ...(options.socketGroup !== undefined ? { socketGroup: options.socketGroup } : {}) });

  const grpc = createUnaryServer({
    routes: unaryRoutes(WorkloadNetworking, serviceHandlers(service) as Parameters<typeof unaryRoutes>[1]),
    maxMessageBytes: READ_MAX_BYTES,
    admit: (tag, path) => {
      const conn = tag as ConnectionTag | undefined;
      if (conn?.decision.allowed === true) return undefined;
      const decision: AccessDecision = conn?.decision ?? { allowed: false, peer: undefined, reason: "permission denied" };
      auth.logRefusal(conn?.handle, decision, path);
      return { code: GrpcCode.PERMISSION_DENIED, message: decision.allowed ? "permission denied" : decision.reason };
    },
    toStatus: (route, err, signal) => toStatus(route, err, signal, log),
    onSessionError: (err) => log.debug({ err: err.message }, "gRPC connection error"),
  });

  let closing: Promise<void> | undefined;
  const grpcSockets = new Set<Socket>();
  const toGrpc = (socket: Socket): void => {
    const handle = socketHandle(socket);
    if (closing !== undefined || handle === undefined) {
      socket.destroy();
      return;
    }
    grpcSockets.add(socket);
    socket.once("close", () => grpcSockets.delete(socket));
    const tag: ConnectionTag = { handle, decision: auth.decide(handle) };
    grpc.inject(socket, tag);
  };

  // With a side protocol the listening socket is shared: each connection is
  // sniffed, then handed to gRPC or to the side protocol.
  const side = options.sideProtocol;
  const sideSockets = new Set<Socket>();
  const listener = side
    ? createSniffingServer({
        magic: side.magic,
        onMagic: (socket) => {
          sideSockets.add(socket);
          socket.once("close", () => sideSockets.delete(socket));
          side.onConnection(socket, auth.decide(socketHandle(socket)));
        },
        onOther: toGrpc,
        onDropped: (reason) => log.debug({ reason }, "connection dropped before its protocol was known"),
      })
    : net.createServer(toGrpc);

  await listen(listener, socketPath);
  try {
    await chmod(socketPath, 0o660);
    if (options.socketGroup !== undefined) {
      // uid -1 keeps the owner: the daemon's user (root in production).
      await chown(socketPath, -1, options.socketGroup);
    }
  } catch (err) {
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    await unlink(socketPath).catch(() => undefined);
    grpc.destroy();
    throw new Error(`cannot set permissions of socket ${socketPath}: ${errorText(err)}`, {
      cause: err,
    });
  }
  log.info({ socket: socketPath, socketGroup: options.socketGroup }, "gRPC server listening");

  const close = (): Promise<void> => {
    closing ??= (async () => {
      log.info({ socket: socketPath, openConnections: grpcSockets.size + sideSockets.size }, "gRPC server stopping");
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      // GOAWAY to every client: no new calls, running calls continue.
      grpc.close();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        closed.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), shutdownTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        log.warn(
          { connections: grpcSockets.size, timeoutMs: shutdownTimeoutMs },
          "calls still running at shutdown deadline; closing their connections",
        );
        grpc.destroy();
        for (const socket of grpcSockets) socket.destroy();
        for (const socket of sideSockets) socket.destroy();
        await closed;
      }
      await unlink(socketPath).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") log.warn({ err, socket: socketPath }, "cannot remove socket");
      });
      log.info({ socket: socketPath }, "gRPC server stopped");
    })();
    return closing;
  };

  return { address: socketPath, close };
}

/** The connection's kernel handle (fd), while it is open. */
function socketHandle(socket: Socket): HandleLike | undefined {
  return (socket as unknown as { _handle?: HandleLike | null })._handle ?? undefined;
}

/** The service's calls as gRPC handlers, by method (localName). */
export function serviceHandlers(service: WorkloadService): WorkloadNetworkingHandlers {
  return {
    attach: async (req, signal) => {
      const portMappings = req.portMappings.map((m) => ({ hostPort: m.hostPort, containerPort: m.containerPort, protocol: m.protocol, hostIp: m.hostIp }));
      const out = await service.attach({ workloadId: req.workloadId, netns: toNetns(req.netns), ...(portMappings.length > 0 ? { portMappings } : {}) }, signal);
      return { ip: out.addresses.map(ipToBytes), hostIfName: out.hostIfName, hostMac: out.hostMac, mac: out.podMac };
    },
    detach: async (req, signal) => {
      await service.detach({ workloadId: req.workloadId, netns: toNetns(req.netns) }, signal);
      return {};
    },
    status: async () => {
      await service.status();
      const d = service.describe?.();
      if (d === undefined) return {};
      return {
        prefixes: d.prefixes,
        attached: d.attached,
        prefixError: d.prefixError ?? "",
        source: d.source ?? "",
        lastSync: d.lastSync?.toISOString() ?? "",
        sourceError: d.sourceError ?? "",
        problems: d.problems ?? [],
        nodesKnown: d.nodesKnown ?? 0,
        nodeName: d.nodeName ?? "",
        routing: d.routing ?? "",
      };
    },
    check: async (req) => {
      await service.check({ workloadId: req.workloadId, netns: toNetns(req.netns) });
      return {};
    },
    list: async () => {
      const all = await service.list();
      return {
        attachments: all.map((a) => ({
          workloadId: a.workloadId,
          ip: a.addresses.map(ipToBytes),
          hostIfName: a.hostIfName,
          portMappings: (a.portMappings ?? []).map((m) => ({ hostPort: m.hostPort, containerPort: m.containerPort, protocol: m.protocol, hostIp: m.hostIp ?? "" })),
        })),
      };
    },
    gC: async (req) => ({ removedWorkloadIds: await service.gc(req.keepWorkloadIds) }),
    nodes: async () => {
      if (service.nodes === undefined) throw new ServiceError(StatusCode.Unimplemented, "this daemon has no cluster view");
      const out = await service.nodes();
      return { nodes: out.nodes.map((n) => ({ ...n, message: n.message ?? "" })), problems: out.problems };
    },
  };
}

function toNetns(netns: NetNSAttachment | undefined): NetnsAttachment | undefined {
  return netns === undefined ? undefined : { netnsPath: netns.netnsPath, ifName: netns.ifName };
}

/** Turns whatever a call threw into a gRPC status for the client. */
export function toStatus(route: UnaryRoute, err: unknown, signal: AbortSignal, log: Logger): GrpcStatus {
  if (err instanceof ServiceError) {
    // Our StatusCode numbers are the gRPC ones.
    return { code: err.code as number, message: err.message };
  }
  if (signal.aborted) {
    log.debug({ method: route.name, err }, "call failed after the client went away");
    return { code: GrpcCode.CANCELLED, message: "call cancelled" };
  }
  log.error({ method: route.name, err }, "unexpected error in call");
  return { code: GrpcCode.INTERNAL, message: `internal error in ${route.name}; see the daemon's log` };
}

/**
 * Makes sure the socket can be created: its directory exists (0750, in the
 * socket group, when it is the daemon's own: see secureSocketDirectory) and a
 * leftover socket from an earlier run is removed. Anything else at the
 * path (a file, a directory, a live server) is left alone and reported.
 */
async function prepareSocketPath(socketPath: string, socketGroup: number | undefined, log: Logger): Promise<void> {
  const dir = dirname(socketPath);
  const created = await mkdir(dir, { recursive: true, mode: 0o750 });
  await secureSocketDirectory(socketPath, created, socketGroup, log).catch((err: unknown) => {
    throw new Error(`cannot set permissions of socket directory ${dir}: ${errorText(err)}`, { cause: err });
  });

  let st;
  try {
    st = await lstat(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new Error(`cannot inspect socket path ${socketPath}: ${errorText(err)}`, { cause: err });
  }
  if (!st.isSocket()) {
    const kind = st.isDirectory() ? "a directory" : st.isFile() ? "a regular file" : "not a socket";
    throw new Error(`socket path ${socketPath} exists and is ${kind}; refusing to replace it`);
  }
  if (await isListening(socketPath)) {
    throw new Error(`another server is already listening on ${socketPath}`);
  }
  await unlink(socketPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") {
      throw new Error(`cannot remove stale socket ${socketPath}: ${errorText(err)}`, { cause: err });
    }
  });
}

/** True when something accepts connections on the socket; false for a stale one. */
function isListening(socketPath: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    sock.setTimeout(2000);
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("timeout", () => {
      // A socket that accepts but never completes is still in use by someone.
      sock.destroy();
      resolve(true);
    });
    sock.once("error", (err: NodeJS.ErrnoException) => {
      sock.destroy();
      if (err.code === "ECONNREFUSED" || err.code === "ENOENT") resolve(false);
      else reject(new Error(`cannot probe socket ${socketPath}: ${errorText(err)}`, { cause: err }));
    });
  });
}

function listen(server: net.Server, socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      reject(new Error(`cannot listen on ${socketPath}: ${errorText(err)}`, { cause: err }));
    };
    server.once("error", onError);
    // The socket is created with a tight umask and opened up by chmod after,
    // so that it is never reachable by more than owner and group.
    let oldUmask: number | undefined;
    try {
      oldUmask = process.umask(0o177);
    } catch {
      // process.umask() cannot be changed in worker threads; chmod still follows.
    }
    try {
      server.listen(socketPath, () => {
        server.off("error", onError);
        resolve();
      });
    } finally {
      if (oldUmask !== undefined) process.umask(oldUmask);
    }
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
