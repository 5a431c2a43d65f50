// Warm-up before serving: a freshly started Node.js runs every function in
// V8's interpreter until it has been called enough to be compiled, so the
// first calls of a new daemon cost several times what later ones do
// (docs/performance-cold.md). Before the daemon listens, it makes `rounds`
// real Attaches and a Status through the same code as a client's calls: a
// gRPC connection over a unix socket of its own (in a fresh 0700 directory),
// the protocol sniffing, the HTTP/2 server, protobuf, the handlers, the
// service with its validation, locks, IPAM and log lines, the netlink codec
// and the kernel: in network namespaces made for it (a "host" one and one per
// workload), so nothing of the machine's is touched. Its cost counts in the
// time to ready; it is logged. Failures only cost the warm-up (logged), never
// the start.
//
// Detach runs once for real (the first workload, so that the kernel's delete
// is over long before ready) and otherwise for workloads it does not know,
// which runs its gRPC and service path without the kernel. The other links
// are not deleted one by one: they go with their namespaces, when the caller
// lets the warm-up's leftovers go (release; the daemon does once it is first
// idle). A veth delete keeps the kernel busy for tens of milliseconds after
// it answers: the first real Attach, right after ready, ran ~1 ms slower
// beside the warm-up's deletes. Without the one real Detach, ready came
// ~20 ms sooner but the first real Attach took ~0.4 ms longer
// (docs/performance-cold.md).

import * as net from "node:net";
import { closeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { pino, type Logger } from "pino";
import { AttachRequestSchema, AttachResponseSchema, DetachRequestSchema, DetachResponseSchema, StatusRequestSchema, StatusResponseSchema, WorkloadNetworking } from "../gen/workload_pb.js";
import { Ipam } from "../ipam/allocator.js";
import { parsePrefix } from "../ipam/prefix.js";
import { StaticClusterSource } from "../cluster/static-source.js";
import { ClusterWiring } from "./cluster-wiring.js";
import { ClientConnection } from "../http2/client-connection.js";
import { Handle } from "../netlink/handle.js";
import { native } from "../netlink/native.js";
import { ActiveCalls } from "../service/active-calls.js";
import { LinkReaper, retiringGroup } from "../service/reaper.js";
import { AttachmentRegistry } from "../service/registry.js";
import { WorkloadNetworkingService } from "../service/workload-service.js";
import { serviceHandlers, toStatus } from "../server/grpc-server.js";
import { createSniffingServer } from "../server/protocol-sniff.js";
import { unaryRoutes } from "../server/service-definition.js";
import { createUnaryServer, GrpcCode, lengthPrefixed } from "../server/unary-http2.js";

export interface WarmUpOptions {
  /** Attaches, each into a namespace of its own, and as many Detaches (one real). */
  rounds: number;
  mtu: number;
  linkGroup: number;
  vethQueues: number;
  /** The daemon's logger: the warm-up's own calls log at its level, to nowhere. */
  log: Logger;
}

export interface WarmUpReport {
  rounds: number;
  ms: number;
  cpuMs: number;
  /** Of ms: making the namespaces (the kernel's work, on this thread). */
  namespacesMs: number;
}

export interface WarmUp {
  report: WarmUpReport;
  /**
   * Lets go of what the warm-up holds: its namespaces (the kernel deletes the
   * links in them with them), its server, connection and directory. Never
   * rejects; idempotent.
   */
  release(): Promise<void>;
}

/** Addresses inside the throwaway namespaces only. */
const WARM_PREFIXES = { v4: parsePrefix("10.255.0.0/24"), v6: parsePrefix("fd00:ffff::/64") };
const MAX_ROUNDS = 250;

export async function warmUp(opts: WarmUpOptions): Promise<WarmUp | undefined> {
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const rounds = Math.min(opts.rounds, MAX_ROUNDS);
  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    let namespacesMs = 0;
    const newNetns = (): number => {
      const t = performance.now();
      const fd = native.newNetns();
      namespacesMs += performance.now() - t;
      return fd;
    };
    const hostFd = newNetns();
    cleanups.push(() => closeSync(hostFd));
    const active = new ActiveCalls();
    const host = Handle.inNamespace(hostFd, "warm-up namespace", { maxSockets: 8, inline: () => active.count <= 1 });
    cleanups.push(() => host.close());
    // The same level as the daemon's log, so the same logging code runs.
    const sink = pino({ level: opts.log.level, base: { service: "workloadnetd" } }, pino.destination({ dest: "/dev/null", sync: true }));
    const ipam = new Ipam();
    // The daemon's own wiring of a static source: it gives the IPAM its prefixes.
    const source = new StaticClusterSource(WARM_PREFIXES);
    await source.start();
    const cluster = new ClusterWiring({ source, ipam, log: sink, routing: "none" });
    await cluster.start();
    cleanups.push(() => cluster.close());
    const reaper = new LinkReaper(host, retiringGroup(opts.linkGroup), sink, { maxRounds: 4 });
    cleanups.push(() => reaper.flush());
    const service = new WorkloadNetworkingService({
      host,
      ipam,
      registry: new AttachmentRegistry(),
      cluster,
      mtu: opts.mtu,
      linkGroup: opts.linkGroup,
      vethQueues: opts.vethQueues,
      log: sink,
      reaper,
      deferred: false,
      activeCalls: active,
    });

    // A server like the daemon's, on a socket only this process can reach.
    const dir = await mkdtemp(join(tmpdir(), "workloadnetd-warm-up-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const token = {};
    const grpc = createUnaryServer({
      routes: unaryRoutes(WorkloadNetworking, serviceHandlers(service) as Parameters<typeof unaryRoutes>[1]),
      maxMessageBytes: 1 << 20,
      admit: (tag) => (tag === token ? undefined : { code: GrpcCode.PERMISSION_DENIED, message: "permission denied" }),
      toStatus: (route, err, signal) => toStatus(route, err, signal, sink),
    });
    cleanups.push(() => grpc.destroy());
    let accepted = 0;
    const listener = createSniffingServer({
      magic: Buffer.from("\0never\0"),
      onMagic: (socket) => socket.destroy(),
      // Only the one connection this process makes.
      onOther: (socket) => (accepted++ === 0 ? grpc.inject(socket, token) : socket.destroy()),
    });
    const socketPath = join(dir, "warm-up.sock");
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      listener.listen(socketPath, () => resolve());
    });
    cleanups.push(() => new Promise<void>((resolve) => listener.close(() => resolve())));
    const connection = new ClientConnection(net.connect(socketPath));
    cleanups.push(() => connection.close());
    const call = unaryCaller(connection);

    await call("Status", StatusRequestSchema, StatusResponseSchema, {});
    // Its one connection is made: the socket's file and directory go now (the
    // listener, unreachable, stays until release), so that a daemon killed
    // while it holds the rest leaves nothing on disk.
    await rm(dir, { recursive: true, force: true });
    const pods: number[] = [];
    cleanups.push(() => pods.forEach((fd) => closeSync(fd)));
    for (let i = 0; i < rounds; i++) {
      pods.push(newNetns());
      const req = { workloadId: `warm-up-${i}`, netns: { netnsPath: `/proc/self/fd/${pods[i]}`, ifName: "eth0" } };
      await call("Attach", AttachRequestSchema, AttachResponseSchema, req);
      if (i === 0) await call("Detach", DetachRequestSchema, DetachResponseSchema, { workloadId: req.workloadId });
      else await call("Detach", DetachRequestSchema, DetachResponseSchema, { workloadId: `warm-up-not-attached-${i}` });
    }
    const cpu = process.cpuUsage(cpu0);
    const report = {
      rounds,
      ms: Math.round(performance.now() - started),
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      namespacesMs: Math.round(namespacesMs),
    };
    opts.log.info({ warmUp: report }, "warmed up: attached in throwaway namespaces");
    const leftovers = cleanups.splice(0);
    let released: Promise<void> | undefined;
    const release = (): Promise<void> =>
      (released ??= runAll(leftovers).then(() => opts.log.debug({ workloads: Math.max(0, rounds - 1) }, "warm-up namespaces released")));
    return { report, release };
  } catch (err) {
    opts.log.warn({ err: (err as Error).message }, "warm-up failed; serving anyway, the first calls will be slower");
    return undefined;
  } finally {
    await runAll(cleanups);
  }
}

/** Runs cleanups newest first, each whatever the others did. */
async function runAll(cleanups: (() => Promise<void> | void)[]): Promise<void> {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch {
      // best effort
    }
  }
}

type Call = <I extends DescMessage, O extends DescMessage>(method: string, input: I, output: O, req: MessageInitShape<I>) => Promise<unknown>;

/**
 * A unary gRPC caller on one HTTP/2 connection, with the headers grpc-go
 * sends; rejects on any status but OK.
 */
function unaryCaller(connection: ClientConnection): Call {
  const prefix = `/${WorkloadNetworking.typeName}/`;
  return async (method, input, output, req) => {
    const frame = lengthPrefixed(toBinary(input, create(input, req)));
    const res = await connection.request(
      [
        [":method", "POST"],
        [":scheme", "http"],
        [":path", prefix + method],
        [":authority", "localhost"],
        ["content-type", "application/grpc"],
        ["user-agent", "workloadnetd-warm-up"],
        ["te", "trailers"],
      ],
      frame,
    );
    const status = res.trailers["grpc-status"] ?? res.headers["grpc-status"];
    if (status !== "0") {
      const message = res.trailers["grpc-message"] ?? res.headers["grpc-message"] ?? "";
      throw new Error(`warm-up ${method}: status ${status ?? "none"}: ${decodeURIComponent(message)}`);
    }
    return fromBinary(output, res.body.subarray(5));
  };
}
