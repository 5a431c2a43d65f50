// Serves a WorkloadService as the gRPC service WorkloadNetworking on a unix
// socket, with @grpc/grpc-js. The listening socket is our own net.Server (it
// may share the socket with the CNI forwarder's protocol, see
// protocol-sniff.ts); each gRPC connection is judged once, as it is accepted,
// from the peer's credentials (peer-auth.ts), and handed to one of two grpc-js
// servers through a connection injector: the real one, or one that answers
// every call with PERMISSION_DENIED without reading the request.

import * as net from "node:net";
import { chmod, chown, lstat, mkdir, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import * as grpc from "@grpc/grpc-js";
import type { NetNSAttachment } from "../gen/workload_pb.js";
import { ServiceError, StatusCode } from "../service/errors.js";
import type { NetnsAttachment, WorkloadService } from "../service/types.js";
import { PeerAuthorizer, secureSocketDirectory, type AccessDecision, type HandleLike } from "./peer-auth.js";
import { createSniffingServer } from "./protocol-sniff.js";
import { ipToBytes } from "./ip-bytes.js";
import { MalformedRequest, workloadNetworkingDefinition, type WorkloadNetworkingHandlers } from "./service-definition.js";

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

const SERVER_OPTIONS: grpc.ServerOptions = {
  "grpc.max_receive_message_length": READ_MAX_BYTES,
  // No channelz: nobody queries it, and it costs on every call.
  "grpc.enable_channelz": 0,
  // Node's own default (grpc-js would lift the limit): what one connection may buffer.
  "grpc-node.max_session_memory": 10,
};

/** A refused connection, found again from its calls by the token set as its remoteAddress. */
interface RefusedConnection {
  handle: HandleLike;
  decision: AccessDecision;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServer> {
  const { socketPath, service, logger } = options;
  const log = logger.child({ component: "grpc-server" });
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;

  await prepareSocketPath(socketPath, options.socketGroup, log);
  const auth = new PeerAuthorizer({ log, ...(options.socketGroup !== undefined ? { socketGroup: options.socketGroup } : {}) });

  const server = new grpc.Server(SERVER_OPTIONS);
  // Calls in progress, so a forced shutdown can abort their signals at once.
  const running = new Set<AbortController>();
  server.addService(workloadNetworkingDefinition, serviceHandlers(service, { log, running }));
  const insecure = grpc.ServerCredentials.createInsecure();
  const allowedConnections = server.createConnectionInjector(insecure);

  // Callers that are not allowed: every call is answered by the interceptor,
  // before its request is read; the handlers are a second lock that is never reached.
  const refused = new Map<string, RefusedConnection>();
  let refusedCount = 0;
  const refuseAll: grpc.ServerInterceptor = (method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: () => {
        const conn = refused.get(call.getConnectionInfo().remoteAddress ?? "");
        const decision: AccessDecision = conn?.decision ?? { allowed: false, peer: undefined, reason: "permission denied" };
        auth.logRefusal(conn?.handle, decision, method.path);
        call.sendStatus({ code: grpc.status.PERMISSION_DENIED, details: decision.allowed ? "permission denied" : decision.reason });
      },
    });
  const deniedServer = new grpc.Server({ ...SERVER_OPTIONS, interceptors: [refuseAll] });
  deniedServer.addService(workloadNetworkingDefinition, deniedHandlers());
  const deniedConnections = deniedServer.createConnectionInjector(insecure);

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
    const decision = auth.decide(handle);
    if (decision.allowed) {
      allowedConnections.injectConnection(socket);
      return;
    }
    // The refusal is made known to the denied server's calls through the
    // connection's remoteAddress (a unix socket has none of its own).
    const token = `refused-connection-${++refusedCount}`;
    Object.defineProperty(socket, "remoteAddress", { value: token, configurable: true });
    refused.set(token, { handle, decision });
    socket.once("close", () => refused.delete(token));
    deniedConnections.injectConnection(socket);
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
    server.forceShutdown();
    deniedServer.forceShutdown();
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
      server.tryShutdown(() => undefined);
      deniedServer.tryShutdown(() => undefined);
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
        server.forceShutdown();
        deniedServer.forceShutdown();
        for (const controller of running) controller.abort();
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

interface CallContext {
  log: Logger;
  running: Set<AbortController>;
}

function serviceHandlers(service: WorkloadService, ctx: CallContext): WorkloadNetworkingHandlers {
  return {
    attach: unary("Attach", ctx, async (req, signal) => {
      const portMappings = req.portMappings.map((m) => ({ hostPort: m.hostPort, containerPort: m.containerPort, protocol: m.protocol, hostIp: m.hostIp }));
      const out = await service.attach({ workloadId: req.workloadId, netns: toNetns(req.netns), ...(portMappings.length > 0 ? { portMappings } : {}) }, signal);
      return { ip: out.addresses.map(ipToBytes), hostIfName: out.hostIfName, hostMac: out.hostMac, mac: out.podMac };
    }),
    detach: unary("Detach", ctx, async (req, signal) => {
      await service.detach({ workloadId: req.workloadId, netns: toNetns(req.netns) }, signal);
      return {};
    }),
    status: unary("Status", ctx, async () => {
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
    }),
    check: unary("Check", ctx, async (req) => {
      await service.check({ workloadId: req.workloadId, netns: toNetns(req.netns) });
      return {};
    }),
    list: unary("List", ctx, async () => {
      const all = await service.list();
      return {
        attachments: all.map((a) => ({
          workloadId: a.workloadId,
          ip: a.addresses.map(ipToBytes),
          hostIfName: a.hostIfName,
          portMappings: (a.portMappings ?? []).map((m) => ({ hostPort: m.hostPort, containerPort: m.containerPort, protocol: m.protocol, hostIp: m.hostIp ?? "" })),
        })),
      };
    }),
    gc: unary("GC", ctx, async (req) => ({ removedWorkloadIds: await service.gc(req.keepWorkloadIds) })),
    nodes: unary("Nodes", ctx, async () => {
      if (service.nodes === undefined) throw new ServiceError(StatusCode.Unimplemented, "this daemon has no cluster view");
      const out = await service.nodes();
      return { nodes: out.nodes.map((n) => ({ ...n, message: n.message ?? "" })), problems: out.problems };
    }),
  };
}

/** For the denied server: never reached (its interceptor answers first), and refusing if it were. */
function deniedHandlers(): grpc.UntypedServiceImplementation {
  const refuse: grpc.handleUnaryCall<unknown, never> = (_call, callback) =>
    callback({ code: grpc.status.PERMISSION_DENIED, details: "permission denied" });
  return Object.fromEntries(Object.keys(workloadNetworkingDefinition).map((name) => [name, refuse]));
}

function toNetns(netns: NetNSAttachment | undefined): NetnsAttachment | undefined {
  return netns === undefined ? undefined : { netnsPath: netns.netnsPath, ifName: netns.ifName };
}

/**
 * A unary handler: a malformed request is INVALID_ARGUMENT; otherwise `run`
 * gets the request and a signal that aborts when the client cancels (or its
 * deadline passes), and whatever it throws becomes a gRPC status.
 */
function unary<Req, Res>(
  method: string,
  { log, running }: CallContext,
  run: (req: Req, signal: AbortSignal) => Promise<Res>,
): grpc.handleUnaryCall<Req | MalformedRequest, Res> {
  return (call, callback) => {
    const req = call.request;
    if (req instanceof MalformedRequest) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: wellFormed(req.message) });
      return;
    }
    const controller = new AbortController();
    running.add(controller);
    let finished = false;
    // grpc-js also says "cancelled" once a call has been answered; only a call still running is aborted.
    call.on("cancelled", () => {
      if (!finished) controller.abort();
    });
    let result: Promise<Res>;
    try {
      result = run(req, controller.signal);
    } catch (err) {
      result = Promise.reject(err);
    }
    result
      .then(
        (res) => {
          finished = true;
          running.delete(controller);
          callback(null, res);
        },
        (err: unknown) => {
          finished = true;
          running.delete(controller);
          callback(toStatus(method, err, controller.signal, log));
        },
      )
      .catch((err: unknown) => log.error({ method, err }, "cannot send the answer of a call"));
  };
}

/** Turns whatever a call threw into a gRPC status for the client. */
function toStatus(method: string, err: unknown, signal: AbortSignal, log: Logger): Partial<grpc.StatusObject> {
  if (err instanceof ServiceError) {
    // Our StatusCode numbers are the gRPC ones.
    return { code: err.code as number as grpc.status, details: wellFormed(err.message) };
  }
  if (signal.aborted) {
    log.debug({ method, err }, "call failed after the client went away");
    return { code: grpc.status.CANCELLED, details: "call cancelled" };
  }
  log.error({ method, err }, "unexpected error in call");
  return { code: grpc.status.INTERNAL, details: `internal error in ${method}; see the daemon's log` };
}

/** grpc-js percent-encodes messages with encodeURI, which throws on a lone surrogate. */
function wellFormed(text: string): string {
  return text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
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
