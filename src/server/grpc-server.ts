// Serves a WorkloadService as the gRPC service WorkloadNetworking on a unix
// socket: HTTP/2 cleartext from node:http2, gRPC framing from connect-node
// (only the gRPC protocol is enabled, so any gRPC client works unchanged).

import * as http2 from "node:http2";
import * as net from "node:net";
import { chmod, chown, lstat, mkdir, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import {
  Code,
  ConnectError,
  createContextKey,
  createContextValues,
  type ConnectRouter,
  type HandlerContext,
} from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { WorkloadNetworking, type NetNSAttachment } from "../gen/workload_pb.js";
import { ServiceError } from "../service/errors.js";
import type { NetnsAttachment, WorkloadService } from "../service/types.js";
import { fixGrpcStatusOf } from "./grpc-trailers.js";
import { PeerAuthorizer, secureSocketDirectory, type AccessDecision } from "./peer-auth.js";
import { createSniffingServer } from "./protocol-sniff.js";
import { ipToBytes } from "./ip-bytes.js";

/**
 * The socket of the calling peer, available to handlers as
 * `ctx.values.get(peerSocketKey)`. The peer's credentials (SO_PEERCRED) are
 * checked before any handler runs (see peer-auth.ts).
 */
export const peerSocketKey = createContextKey<Socket | undefined>(undefined, {
  description: "socket of the calling peer",
});

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

export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServer> {
  const { socketPath, service, logger } = options;
  const log = logger.child({ component: "grpc-server" });
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;

  await prepareSocketPath(socketPath, options.socketGroup, log);
  const auth = new PeerAuthorizer({ log, ...(options.socketGroup !== undefined ? { socketGroup: options.socketGroup } : {}) });

  const handler = connectNodeAdapter({
    grpc: true,
    grpcWeb: false,
    connect: false,
    readMaxBytes: READ_MAX_BYTES,
    routes: (router) => registerRoutes(router, service, log),
    contextValues: (req) => createContextValues().set(peerSocketKey, req.socket as Socket),
  });

  const server = http2.createServer({}, (req, res) => {
    if (!auth.admit(req, res)) return;
    fixGrpcStatusOf(res);
    handler(req, res);
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  // A broken client connection must never take the daemon down.
  server.on("sessionError", (err) => log.debug({ err }, "client session error"));

  // With a side protocol the listening socket is shared: each connection is
  // sniffed, then handed to the HTTP/2 server or to the side protocol.
  const side = options.sideProtocol;
  const sideSockets = new Set<Socket>();
  const toHttp2 = (socket: Socket): boolean => server.emit("connection", socket);
  const listener = side
    ? createSniffingServer({
        magic: side.magic,
        onMagic: (socket) => {
          sideSockets.add(socket);
          socket.once("close", () => sideSockets.delete(socket));
          const handle = (socket as unknown as { _handle?: { fd?: number } | null })._handle ?? undefined;
          side.onConnection(socket, auth.decide(handle));
        },
        onOther: toHttp2,
        onDropped: (reason) => log.debug({ reason }, "connection dropped before its protocol was known"),
      })
    : net.createServer(toHttp2);

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
    throw new Error(`cannot set permissions of socket ${socketPath}: ${errorText(err)}`, {
      cause: err,
    });
  }
  log.info({ socket: socketPath, socketGroup: options.socketGroup }, "gRPC server listening");

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      log.info({ socket: socketPath, openConnections: sessions.size }, "gRPC server stopping");
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      // GOAWAY to every client: no new calls, running calls continue.
      for (const session of sessions) session.close();
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
          { sessions: sessions.size, timeoutMs: shutdownTimeoutMs },
          "calls still running at shutdown deadline; closing their connections",
        );
        for (const session of sessions) session.destroy();
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

function registerRoutes(router: ConnectRouter, service: WorkloadService, log: Logger): void {
  router.service(WorkloadNetworking, {
    attach: (req, ctx) =>
      handle("Attach", ctx, log, async () => {
        const out = await service.attach(
          { workloadId: req.workloadId, netns: toNetns(req.netns) },
          ctx.signal,
        );
        return { ip: out.addresses.map(ipToBytes), hostIfName: out.hostIfName, hostMac: out.hostMac, mac: out.podMac };
      }),
    detach: (req, ctx) =>
      handle("Detach", ctx, log, async () => {
        await service.detach({ workloadId: req.workloadId, netns: toNetns(req.netns) }, ctx.signal);
        return {};
      }),
    status: (_req, ctx) =>
      handle("Status", ctx, log, async () => {
        await service.status();
        const d = service.describe?.();
        return d === undefined ? {} : { prefixes: d.prefixes, attached: d.attached, prefixError: d.prefixError ?? "" };
      }),
    check: (req, ctx) =>
      handle("Check", ctx, log, async () => {
        await service.check({ workloadId: req.workloadId, netns: toNetns(req.netns) });
        return {};
      }),
    list: (_req, ctx) =>
      handle("List", ctx, log, async () => {
        const all = await service.list();
        return { attachments: all.map((a) => ({ workloadId: a.workloadId, ip: a.addresses.map(ipToBytes), hostIfName: a.hostIfName })) };
      }),
    gC: (req, ctx) =>
      handle("GC", ctx, log, async () => ({ removedWorkloadIds: await service.gc(req.keepWorkloadIds) })),
  });
}

function toNetns(netns: NetNSAttachment | undefined): NetnsAttachment | undefined {
  return netns === undefined ? undefined : { netnsPath: netns.netnsPath, ifName: netns.ifName };
}

/** Runs a call and turns whatever it throws into a gRPC status for the client. */
async function handle<T>(
  method: string,
  ctx: HandlerContext,
  log: Logger,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ServiceError) {
      // Our StatusCode numbers are the gRPC ones, and so are Connect's.
      throw new ConnectError(err.message, err.code as number as Code);
    }
    if (err instanceof ConnectError) throw err;
    if (ctx.signal.aborted) {
      log.debug({ method, err }, "call failed after the client went away");
      throw new ConnectError("call cancelled", Code.Canceled);
    }
    log.error({ method, err }, "unexpected error in call");
    throw new ConnectError(`internal error in ${method}; see the daemon's log`, Code.Internal);
  }
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
