// The composition root: builds the parts, restores state from the kernel,
// then serves. Nothing here knows about flags or files (see cli/).
import type { Logger } from "pino";
import { createCniEndpoint, defaultCniStateFile } from "../cni/endpoint.js";
import { Ipam } from "../ipam/allocator.js";
import { FilePrefixSource } from "../ipam/file-source.js";
import { formatPrefixes, type Prefixes } from "../ipam/prefix.js";
import type { PrefixSource } from "../ipam/prefix-source.js";
import { StaticPrefixSource } from "../ipam/static-source.js";
import { Handle } from "../netlink/handle.js";
import { deleteLinksInGroup } from "../netlink/link.js";
import { LinkDeletions } from "../netlink/link-deletions.js";
import { LinkReaper, retiringGroup } from "../service/reaper.js";
import { startGrpcServer } from "../server/grpc-server.js";
import { setupNode } from "../service/node-setup.js";
import { recoverFromKernel } from "../service/recover.js";
import { AttachmentRegistry } from "../service/registry.js";
import { WorkloadNetworkingService } from "../service/workload-service.js";
import { ActiveCalls } from "../service/active-calls.js";
import { DELETE_ROUNDS, HOST_SOCKETS } from "./kernel-waits.cjs";
import { warmUp } from "./warm-up.js";

export interface DaemonOptions {
  socketPath: string;
  /** Fixed prefixes (ignored when prefixFile is set). */
  prefixes: Prefixes;
  prefixFile?: string;
  mtu: number;
  linkGroup: number;
  /** Transmit and receive queues of each veth end (see cli/config.ts). */
  vethQueues: number;
  /** Attaches in throwaway namespaces before serving (daemon/warm-up.ts); default none. */
  warmUp?: number;
  /** See DETACH_MODES in cli/config.ts. Default "sync". */
  detachMode?: "sync" | "deferred";
  socketGroup?: number;
  /** Serve Prometheus metrics here (GET /metrics); off when undefined. */
  metricsAddress?: { host: string; port: number };
  /** Records of the CNI plugin's attachments (for GC and DEL); default: beside the socket. */
  cniStateFile?: string;
  log: Logger;
}

export interface RunningDaemon {
  service: WorkloadNetworkingService;
  /** "host:port" of the metrics endpoint, when enabled. */
  metricsAddress: string | undefined;
  close(): Promise<void>;
}


export async function startDaemon(opts: DaemonOptions): Promise<RunningDaemon> {
  const { log } = opts;
  const started = performance.now();
  // Attach's requests take the kernel microseconds, less than a handoff to the
  // thread pool and back; but while other calls run, the pool lets their work
  // overlap the kernel's. So inline only while at most one call is running.
  const activeCalls = new ActiveCalls();
  const host = Handle.current({ maxSockets: HOST_SOCKETS, inline: () => activeCalls.count <= 1 });
  const cleanups: (() => Promise<void> | void)[] = [() => host.close()];
  try {
    await setupNode(host, log);
    // Links retired by a deferred Detach before a crash or stop: delete them now.
    await deleteLinksInGroup(host, retiringGroup(opts.linkGroup)).catch(() => undefined);
    const deletions = openLinkDeletions(log);
    if (deletions) cleanups.push(() => deletions.close());
    const reaper = new LinkReaper(host, retiringGroup(opts.linkGroup), log, { maxRounds: DELETE_ROUNDS, ...(deletions ? { deletions } : {}) });
    cleanups.push(() => reaper.flush());

    const ipam = new Ipam();
    const registry = new AttachmentRegistry();
    const report = await recoverFromKernel({ host, ipam, registry, linkGroup: opts.linkGroup, log });
    log.info({ ...report }, "state recovered from the kernel");

    const prefixSource = await openPrefixSource(opts, log);
    cleanups.push(() => prefixSource.close());
    const apply = (p: Prefixes | undefined): void => {
      if (p === undefined) return;
      ipam.setPrefixes(p);
      log.info({ prefixes: formatPrefixes(p) }, "pod prefixes in use");
    };
    apply(prefixSource.current());
    prefixSource.onChange(apply);
    prefixSource.onError((message) => log.error({ err: message }, "prefix source error; keeping the last good prefixes"));

    // Only when served: the default process metrics watch every garbage collection,
    // and prom-client is loaded only then (it is a large part of the start-up otherwise).
    const metrics = opts.metricsAddress !== undefined ? (await import("../metrics/metrics.js")).createMetrics({ ipam, registry }) : undefined;
    const service = new WorkloadNetworkingService({
      host,
      ipam,
      registry,
      prefixSource,
      mtu: opts.mtu,
      linkGroup: opts.linkGroup,
      vethQueues: opts.vethQueues,
      log,
      reaper,
      deferred: opts.detachMode === "deferred",
      ...(metrics ? { metrics } : {}),
      activeCalls,
    });
    let metricsAddress: string | undefined;
    if (metrics !== undefined && opts.metricsAddress !== undefined) {
      const { startMetricsServer } = await import("../metrics/metrics-server.js");
      const m = await startMetricsServer(metrics.registry, opts.metricsAddress, log);
      cleanups.push(() => m.close());
      metricsAddress = m.address;
    }
    if ((opts.warmUp ?? 0) > 0) await warmUp({ rounds: opts.warmUp ?? 0, mtu: opts.mtu, linkGroup: opts.linkGroup, vethQueues: opts.vethQueues, log });
    const cni = await createCniEndpoint({ service, log, stateFile: opts.cniStateFile ?? defaultCniStateFile(opts.socketPath) });
    const server = await startGrpcServer({
      sideProtocol: cni,
      socketPath: opts.socketPath,
      service,
      logger: log,
      ...(opts.socketGroup !== undefined ? { socketGroup: opts.socketGroup } : {}),
    });
    cleanups.push(() => server.close());
    log.info({ socket: opts.socketPath, readyMs: Math.round(performance.now() - started), attached: registry.size }, "workloadnetd ready");

    let closing: Promise<void> | undefined;
    return {
      service,
      metricsAddress,
      close: () => (closing ??= runCleanups(cleanups)),
    };
  } catch (err) {
    await runCleanups(cleanups);
    throw err;
  }
}

/** Without it Detach still works, answering only once the kernel's delete has. */
function openLinkDeletions(log: Logger): LinkDeletions | undefined {
  try {
    return LinkDeletions.open();
  } catch (err) {
    log.warn({ err: (err as Error).message }, "cannot listen for link deletions; Detach waits for the kernel's full delete");
    return undefined;
  }
}

async function openPrefixSource(opts: DaemonOptions, log: Logger): Promise<PrefixSource> {
  if (opts.prefixFile === undefined) return new StaticPrefixSource(opts.prefixes);
  const source = new FilePrefixSource(opts.prefixFile);
  await source.start();
  const err = source.lastError();
  if (err) log.warn({ err }, "prefix file not usable yet; Status is UNAVAILABLE until it is");
  return source;
}

/** Runs cleanups newest first (the server stops before the parts it uses). */
async function runCleanups(cleanups: (() => Promise<void> | void)[]): Promise<void> {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch {
      // best effort on the way out
    }
  }
}
