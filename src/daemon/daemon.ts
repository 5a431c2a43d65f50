// The composition root: builds the parts, restores state from the kernel,
// then serves. Nothing here knows about flags or files (see cli/).
import type { Logger } from "pino";
import { createCniEndpoint, defaultCniStateFile } from "../cni/endpoint.js";
import { CniInstaller, ConflistWriter } from "../cni/install.js";
import { Ipam } from "../ipam/allocator.js";
import { parsePrefix, type Prefix, type Prefixes } from "../ipam/prefix.js";
import { FileClusterSource } from "../cluster/file-source.js";
import type { ClusterSource } from "../cluster/source.js";
import { StaticClusterSource } from "../cluster/static-source.js";
import { NodeRoutes, podMtu, type RoutingMode } from "../cluster/routes/index.js";
import { allPodPrefixes, type ClusterView } from "../cluster/view.js";
import { ClusterWiring, type RouteAgent } from "./cluster-wiring.js";
import { Handle } from "../netlink/handle.js";
import { deleteLinksInGroup, getLinkByIndex } from "../netlink/link.js";
import { LinkDeletions } from "../netlink/link-deletions.js";
import { LinkReaper, retiringGroup } from "../service/reaper.js";
import { startGrpcServer } from "../server/grpc-server.js";
import { LOOPBACK_INDEX } from "../service/constants.js";
import { setupNode } from "../service/node-setup.js";
import { recoverFromKernel } from "../service/recover.js";
import { AttachmentRegistry } from "../service/registry.js";
import { WorkloadNetworkingService } from "../service/workload-service.js";
import { ActiveCalls } from "../service/active-calls.js";
import { DELETE_ROUNDS, HOST_SOCKETS } from "./kernel-waits.cjs";
import { warmUp } from "./warm-up.js";
import { releaseMemoryWhenIdle } from "./release-memory.js";
import { native } from "../netlink/native.js";
import { NftablesLayer } from "../nftables/layer.js";
import { flushConntrackEntries } from "../nftables/conntrack.js";

export interface DaemonOptions {
  socketPath: string;
  /** Fixed prefixes (ignored when prefixFile is set). */
  prefixes: Prefixes;
  /** The cluster view from this watched file (see cluster/file-form.ts). */
  prefixFile?: string;
  /** The cluster view from the Kubernetes API (instead of prefixes or prefixFile). */
  kubernetes?: { nodeName: string; kubeconfig?: string };
  /** Routes to other nodes (file and Kubernetes sources only: a static view has no other nodes). Default mode "auto". */
  routing?: { mode: RoutingMode; vxlanVni?: number; vxlanPort?: number };
  /** Undefined: the routing's podMtu (the node link's MTU, less VXLAN's overhead when VXLAN may be used). */
  mtu?: number;
  /** Periodic resync of the routes to other nodes. Default 30 s. */
  routeResyncMs?: number;
  /** This node's name (--node-name), shown when the source gives none. */
  nodeName?: string;
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
  /** Our nftables table: masquerade (default on) and the prefixes that keep pod addresses. */
  egress?: EgressOptions;
  /** Install the CNI plugin and, once the prefixes are known, its conflist (see cni/install.ts). */
  cniInstall?: { binDir: string; confDir: string };
  log: Logger;
}

export interface EgressOptions {
  masquerade: boolean;
  /** The cluster's pod prefixes, besides those the cluster view gives (--cluster-cidr). */
  clusterCidrs: readonly string[];
  noMasqueradeCidrs: readonly string[];
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
    // The warm-up first: the start's own netlink paths then run warm, and its
    // one real Detach leaves the kernel deleting a link (~50 ms, waiting in
    // the kernel) while the rest of the start runs. What it still holds goes
    // once the daemon is first idle (below), or at close. It never fails the start.
    const warm = (opts.warmUp ?? 0) > 0 ? await warmUp({ rounds: opts.warmUp ?? 0, mtu: opts.mtu ?? 1500, linkGroup: opts.linkGroup, vethQueues: opts.vethQueues, log }) : undefined;
    if (warm !== undefined) cleanups.push(() => warm.release());
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
    const egress = opts.egress ?? { masquerade: true, clusterCidrs: [], noMasqueradeCidrs: [] };
    const nftables = await NftablesLayer.start({ masquerade: egress.masquerade, podLinkGroup: opts.linkGroup, noMasqueradeCidrs: egress.noMasqueradeCidrs, log, flushConntrack: flushConntrackEntries });
    cleanups.push(() => nftables.drain());
    await adoptPublishedPorts(nftables, registry, log);

    const installer = opts.cniInstall && new CniInstaller({ ...opts.cniInstall, socketPath: opts.socketPath, log });
    await installer?.installPlugin();

    const source = await openClusterSource(opts, log);
    cleanups.push(() => source.close());
    // Only when served: the default process metrics watch every garbage collection,
    // and prom-client is loaded only then (it is a large part of the start-up otherwise).
    const metrics = opts.metricsAddress !== undefined ? (await import("../metrics/metrics.js")).createMetrics({ ipam, registry, source }) : undefined;
    const mode = opts.routing?.mode ?? "auto";
    // Read by every Attach; settled by the routing below unless --mtu is given.
    const settings = { mtu: opts.mtu ?? 1500 };
    const routes = source.kind === "static" ? undefined : routeAgent(host, source, mode, opts, settings, log);
    const cluster = new ClusterWiring({
      source,
      ipam,
      log,
      routing: mode,
      ...(opts.nodeName !== undefined ? { nodeName: opts.nodeName } : {}),
      ...(routes ? { routes } : {}),
      ...(opts.routeResyncMs !== undefined ? { resyncMs: opts.routeResyncMs } : {}),
      ...(metrics ? { metrics } : {}),
    });
    // Stops following the view; the routes stay in the kernel.
    cleanups.push(() => cluster.close());
    // Settled before serving, so that the first pods get the same MTU as the
    // later ones (the reconciles update it only if the underlay changes).
    // A single host's pods never leave over VXLAN: the link's MTU as it is.
    if (opts.mtu === undefined) settings.mtu = await podMtu(host, source.current(), routes === undefined ? "direct" : mode);
    await cluster.start();
    log.info({ mtu: settings.mtu, fromFlag: opts.mtu !== undefined }, "pod MTU");
    // The masquerade sets follow the view, as the wiring applies it (after the IPAM's prefixes).
    const followView = (view: ClusterView): Promise<void> => followViewInNftables(nftables, view, ipam, registry, egress, log);
    await followView(source.current());
    cleanups.push(cluster.onApplied((view) => void followView(view)));

    const service = new WorkloadNetworkingService({
      host,
      ipam,
      registry,
      cluster,
      get mtu() {
        return settings.mtu;
      },
      linkGroup: opts.linkGroup,
      vethQueues: opts.vethQueues,
      log,
      reaper,
      deferred: opts.detachMode === "deferred",
      ...(metrics ? { metrics } : {}),
      activeCalls,
      nftables,
    });
    let metricsAddress: string | undefined;
    if (metrics !== undefined && opts.metricsAddress !== undefined) {
      const { startMetricsServer } = await import("../metrics/metrics-server.js");
      const m = await startMetricsServer(metrics.registry, opts.metricsAddress, log, {
        prefixes: () => service.status(),
        kernel: () => getLinkByIndex(host, LOOPBACK_INDEX),
        socketPath: opts.socketPath,
      });
      cleanups.push(() => m.close());
      metricsAddress = m.address;
    }
    const cni = await createCniEndpoint({ service, log, stateFile: opts.cniStateFile ?? defaultCniStateFile(opts.socketPath) });
    const server = await startGrpcServer({
      sideProtocol: cni,
      socketPath: opts.socketPath,
      service,
      logger: log,
      ...(opts.socketGroup !== undefined ? { socketGroup: opts.socketGroup } : {}),
    });
    cleanups.push(() => server.close());
    if (installer) {
      const conflist = new ConflistWriter(installer, log);
      cleanups.push(() => conflist.close());
      if (ipam.ready()) conflist.write();
      cleanups.push(cluster.onApplied(() => (ipam.ready() ? conflist.write() : undefined)));
    }
    log.info({ socket: opts.socketPath, readyMs: Math.round(performance.now() - started), attached: registry.size }, "workloadnetd ready");
    // The bin's hook (cli/load-bundle.cts): V8's code cache, made now that the warm-up compiled the hot path.
    (globalThis as Record<symbol, (() => void) | undefined>)[Symbol.for("workloadnet.ready")]?.();
    // Once calls stop, the C heap's free pages go back to the kernel (daemon/release-memory.ts);
    // the first time, after the warm-up's namespaces: their teardown then meets no real Attach.
    // A failure there (no memory for the job) only means the pages stay: it must not leave a timer as an exception.
    const trim = (): void => {
      try {
        native.releaseFreeMemory().catch(() => undefined);
      } catch (err) {
        log.debug({ err: (err as Error).message }, "could not hand free memory back");
      }
    };
    const release = (): void => void (warm?.release() ?? Promise.resolve()).then(trim);
    cleanups.push(releaseMemoryWhenIdle(activeCalls, release));

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

/**
 * Published ports found in our table: kept for the workloads recovered from
 * the kernel (their pod address names them), removed for the others.
 */
async function adoptPublishedPorts(nftables: NftablesLayer, registry: AttachmentRegistry, log: Logger): Promise<void> {
  const owners = new Map<string, string>();
  for (const a of registry.list()) for (const address of a.addresses) owners.set(address, a.workloadId);
  const adopted = await nftables.adopt(owners);
  for (const [id, mappings] of adopted.mappings) {
    const a = registry.get(id);
    if (a !== undefined) a.portMappings = mappings;
  }
  log.info({ workloads: adopted.mappings.size, removed: adopted.removed }, "published ports adopted from the nftables table");
}

/**
 * The masquerade sets for a view: sources are this node's prefixes (those the
 * IPAM uses; a view without any keeps them) and the addresses workloads kept
 * from earlier prefixes; every pod prefix of the cluster, those sources and
 * --cluster-cidr keep the pod's address. A failure is logged; the next view
 * writes the whole state again.
 */
function followViewInNftables(nftables: NftablesLayer, view: ClusterView, ipam: Ipam, registry: AttachmentRegistry, egress: EgressOptions, log: Logger): Promise<void> {
  const p = ipam.prefixes();
  const kept = registry
    .list()
    .flatMap((a) => a.addresses)
    .filter((a) => !(p.v4?.contains(a) || p.v6?.contains(a)))
    .map((a) => parsePrefix(a.includes(":") ? `${a}/128` : `${a}/32`));
  const own: Prefix[] = [p.v4, p.v6].filter((x) => x !== undefined).concat(kept);
  return nftables.setPrefixes(own, [...own, ...allPodPrefixes(view), ...egress.clusterCidrs]).then(
    () => undefined,
    (err: unknown) => log.error({ err: (err as Error).message }, "could not update the masquerade prefix sets"),
  );
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

/**
 * The routes to other nodes for the wiring: the routing's reconcile, with the
 * pod MTU settled first (it follows the underlay, which the view may change).
 */
function routeAgent(host: Handle, source: ClusterSource, mode: RoutingMode, opts: DaemonOptions, settings: { mtu: number }, log: Logger): RouteAgent {
  const routes = new NodeRoutes({
    handle: host,
    mode,
    vxlan: { ...(opts.routing?.vxlanVni !== undefined ? { vni: opts.routing.vxlanVni } : {}), ...(opts.routing?.vxlanPort !== undefined ? { port: opts.routing.vxlanPort } : {}) },
  });
  let lastProblems = "";
  return {
    async reconcile(view: ClusterView) {
      // Before the source has ever delivered, its view is empty: reconciling
      // it would remove every route of ours that a previous run left, while
      // the kernel's copy is the best there is. Mode none removes regardless.
      if (opts.mtu === undefined) {
        const mtu = await podMtu(host, view, mode);
        if (mtu !== settings.mtu) log.info({ mtu, mode }, "pod MTU from the underlay");
        settings.mtu = mtu;
      }
      if (source.lastSync() === undefined && mode !== "none") return [];
      const result = await routes.apply(view);
      const { added, updated, removed } = result.changes;
      if (added + updated + removed > 0) log.info({ mode, added, updated, removed, nodes: view.nodes.length }, "routes to other nodes changed");
      const problems = result.problems.join("; ");
      if (problems !== lastProblems && problems !== "") log.warn({ problems: result.problems }, "routes to other nodes: problems");
      lastProblems = problems;
      for (const n of result.nodes) if (n.state === "error") log.warn({ node: n.name, kind: n.kind, err: n.error }, "route to node not installed");
      return result.nodes.map((n) => ({ name: n.name, kind: n.kind, state: n.state === "installed" ? "ok" : "error", ...(n.error ? { message: n.error } : {}) }));
    },
  };
}

async function openClusterSource(opts: DaemonOptions, log: Logger): Promise<ClusterSource> {
  let source: ClusterSource;
  if (opts.kubernetes !== undefined) {
    // Loaded only here: the other modes never pay for the client library.
    const { createKubernetesSource } = await import("../cluster/kubernetes/index.js");
    source = await createKubernetesSource({
      nodeName: opts.kubernetes.nodeName,
      ...(opts.kubernetes.kubeconfig !== undefined ? { kubeconfig: opts.kubernetes.kubeconfig } : {}),
      log: log.child({ component: "kubernetes-source" }),
    });
  } else if (opts.prefixFile !== undefined) {
    source = new FileClusterSource(opts.prefixFile);
  } else {
    source = new StaticClusterSource(opts.prefixes);
  }
  await source.start();
  const err = source.lastError();
  if (err) log.warn({ err, source: source.kind }, "cluster source not usable yet; Status is UNAVAILABLE until it is");
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
