// The cluster view, followed: every view the source reports goes to the IPAM
// (this node's prefixes; existing workloads keep their addresses) and to the
// routes to other nodes (one reconcile loop: at start, on every change, and
// periodically to repair drift). What Status and `workloadnetctl nodes` show
// about the cluster comes from here.
//
// Nothing is withdrawn when the source fails: its last view stays in force.
// Nothing is withdrawn when the daemon stops either: the kernel keeps the
// routes, so traffic between nodes never depends on the daemon being up.

import type { Logger } from "pino";
import type { Ipam } from "../ipam/allocator.js";
import { formatPrefixes, prefixesEqual, type Prefixes } from "../ipam/prefix.js";
import { Listeners } from "../cluster/listeners.js";
import { ReconcileLoop } from "../cluster/reconcile-loop.js";
import type { ClusterSource } from "../cluster/source.js";
import type { ClusterView } from "../cluster/view.js";
import type { ClusterFacts } from "../service/workload-service.js";
import type { NodeInfo, NodesOutput } from "../service/types.js";

/** How one other node's pods are reached, as the routing last left it. */
export interface NodeRouteState {
  name: string;
  /** "direct", "vxlan" or "none". */
  kind: string;
  /** "ok", "pending" or "error". */
  state: string;
  message?: string;
}

/** The routes to other nodes: level-triggered, one call installs what the view wants and removes the rest of ours. */
export interface RouteAgent {
  reconcile(view: ClusterView): Promise<NodeRouteState[]>;
}

/** What the wiring records for metrics. */
export interface ClusterMetricsHooks {
  sourceError(): void;
  reconciled(err: unknown, seconds: number): void;
}

export interface ClusterWiringOptions {
  source: ClusterSource;
  ipam: Ipam;
  log: Logger;
  /** --routing, for Status. */
  routing: string;
  /** This node's name when the source gives none (static, a file without "name"). */
  nodeName?: string;
  /** Undefined: no routes to other nodes are managed (e.g. --routing none after its cleanup). */
  routes?: RouteAgent;
  /** Periodic resync of the routes. Default 30 s. */
  resyncMs?: number;
  metrics?: ClusterMetricsHooks;
}

export class ClusterWiring implements ClusterFacts {
  readonly kind: string;
  readonly routing: string;
  private readonly loop: ReconcileLoop | undefined;
  private routeStates = new Map<string, NodeRouteState>();
  private applied: Prefixes | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly appliedListeners = new Listeners<ClusterView>();

  constructor(private readonly opts: ClusterWiringOptions) {
    this.kind = opts.source.kind;
    this.routing = opts.routing;
    const routes = opts.routes;
    if (routes !== undefined) {
      this.loop = new ReconcileLoop({
        what: "routes to other nodes",
        log: opts.log,
        ...(opts.resyncMs !== undefined ? { resyncMs: opts.resyncMs } : {}),
        run: async () => {
          const states = await routes.reconcile(opts.source.current());
          this.routeStates = new Map(states.map((s) => [s.name, s]));
        },
        onDone: (err, seconds) => opts.metrics?.reconciled(err, seconds),
      });
    }
  }

  /**
   * Applies the source's current view and follows its changes; resolves after
   * the first reconcile of the routes (whether it succeeded or not).
   */
  async start(): Promise<void> {
    const { source, log } = this.opts;
    this.apply(source.current());
    this.unsubscribe.push(
      source.onChange((view) => {
        this.apply(view);
        void this.loop?.trigger();
      }),
      source.onError((message) => {
        this.opts.metrics?.sourceError();
        log.error({ err: message, source: source.kind }, "cluster source error; keeping the last view");
      }),
    );
    this.loop?.start();
    await this.loop?.trigger();
  }

  /**
   * Called with each view the source reports, after the IPAM has taken its
   * prefixes (so a listener reads the IPAM as the view left it: the
   * masquerade sets, the CNI conflist). Returns an unsubscribe.
   */
  onApplied(listener: (view: ClusterView) => void): () => void {
    return this.appliedListeners.add(listener);
  }

  /** Stops following; leaves every route in place. */
  async close(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    this.appliedListeners.clear();
    await this.loop?.close();
  }

  /** Runs the routes' reconcile now (tests, and after a mode change); resolves when done. */
  resync(): Promise<void> {
    return this.loop?.trigger() ?? Promise.resolve();
  }

  view(): ClusterView {
    const view = this.opts.source.current();
    return view.nodeName === undefined && this.opts.nodeName !== undefined ? { ...view, nodeName: this.opts.nodeName } : view;
  }

  lastError(): string | undefined {
    return this.opts.source.lastError();
  }

  lastSync(): Date | undefined {
    return this.opts.source.lastSync();
  }

  nodes(): NodesOutput {
    const view = this.view();
    const own = this.opts.ipam.prefixes();
    const self: NodeInfo = {
      name: view.nodeName ?? "-",
      self: true,
      addresses: [...view.addresses],
      prefixes: [own.v4?.text, own.v6?.text].filter((p): p is string => p !== undefined),
      route: "local",
      state: this.opts.ipam.ready() ? "ok" : "pending",
      ...(this.opts.ipam.ready() ? {} : view.pendingReason ? { message: view.pendingReason } : {}),
    };
    const others = view.nodes.map((n): NodeInfo => {
      const r = this.routeStates.get(n.name);
      const unmanaged = this.opts.routes === undefined;
      return {
        name: n.name,
        self: false,
        addresses: [...n.addresses],
        prefixes: [n.prefixes.v4?.text, n.prefixes.v6?.text].filter((p): p is string => p !== undefined),
        route: r?.kind ?? (unmanaged ? "none" : ""),
        state: r?.state ?? (unmanaged ? "ok" : "pending"),
        ...(r?.message ? { message: r.message } : {}),
      };
    });
    return { nodes: [self, ...others], problems: [...view.problems] };
  }

  private apply(view: ClusterView): void {
    this.applyToIpam(view);
    this.appliedListeners.emit(view, (err) => this.opts.log.error({ err: err.message }, "cluster view follower failed"));
  }

  private applyToIpam(view: ClusterView): void {
    const { ipam, log } = this.opts;
    for (const p of view.problems) log.warn({ problem: p }, "cluster view: skipped");
    // No prefixes (yet, or no longer): keep what the IPAM has; nothing is withdrawn.
    if (view.prefixes === undefined) {
      if (!ipam.ready()) log.warn({ reason: view.pendingReason }, "no pod prefixes yet; Status is UNAVAILABLE");
      return;
    }
    if (!prefixesEqual(this.applied, view.prefixes)) {
      ipam.setPrefixes(view.prefixes);
      this.applied = view.prefixes;
      log.info({ prefixes: formatPrefixes(view.prefixes) }, "pod prefixes in use");
    }
    log.info({ nodes: view.nodes.length, problems: view.problems.length, source: this.opts.source.kind }, "cluster view applied");
  }
}
