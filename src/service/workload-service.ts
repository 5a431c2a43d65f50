// The service behind the API: validation, per-workload serialisation, the
// attach/detach steps, and one log line per call.
import type { Logger } from "pino";
import { setImmediate as nextLoopTurn } from "node:timers/promises";
import type { Ipam } from "../ipam/allocator.js";
import type { Handle } from "../netlink/handle.js";
import { attachWorkload } from "./attach.js";
import { detachWorkload } from "./detach.js";
import { ServiceError, StatusCode } from "./errors.js";
import { KeyedMutex } from "./keyed-mutex.js";
import type { DaemonMetrics } from "../metrics/metrics.js";
import type { LinkReaper } from "./reaper.js";
import type { AttachmentRegistry } from "./registry.js";
import type { AttachInput, AttachmentInfo, AttachOutput, DetachInput, NodesOutput, StatusDetails, WorkloadService } from "./types.js";
import type { ClusterView } from "../cluster/view.js";
import { checkAttachment } from "./check.js";
import { ActiveCalls } from "./active-calls.js";
import { HOST_VETH_MAC } from "./constants.js";
import { preview, validateNetns, validatePortMappings, validateWorkloadId } from "./validate.js";
import type { NftablesLayer } from "../nftables/layer.js";

export interface ServiceDeps {
  host: Handle;
  ipam: Ipam;
  registry: AttachmentRegistry;
  cluster: ClusterFacts;
  /** Read on every Attach: the daemon may settle it after start (see daemon.ts). */
  mtu: number;
  linkGroup: number;
  /** Transmit and receive queues of each veth end (see cli/config.ts). */
  vethQueues: number;
  log: Logger;
  reaper: LinkReaper;
  /** Detach answers before the kernel has deleted the link (see reaper.ts). */
  deferred: boolean;
  metrics?: DaemonMetrics;
  /** Counts the running Attach and Detach calls (shared with the netlink handles' inline policy). */
  activeCalls?: ActiveCalls;
  /** Our nftables table (published ports); port mappings are refused without it. */
  nftables?: NftablesLayer;
}

/** What the service reports about the cluster view (the daemon's cluster wiring provides it). */
export interface ClusterFacts {
  /** The source's kind: "static", "file" or "kubernetes". */
  readonly kind: string;
  /** --routing. */
  readonly routing: string;
  view(): ClusterView;
  lastError(): string | undefined;
  lastSync(): Date | undefined;
  /** Every node of the view with its routing state. */
  nodes(): NodesOutput;
}

export class WorkloadNetworkingService implements WorkloadService {
  private readonly locks = new KeyedMutex();
  private readonly active: ActiveCalls;

  constructor(private readonly deps: ServiceDeps) {
    this.active = deps.activeCalls ?? new ActiveCalls();
  }

  attach(input: AttachInput): Promise<AttachOutput> {
    return this.active.run(() => this.attachCall(input));
  }

  detach(input: DetachInput): Promise<void> {
    return this.active.run(() => this.detachCall(input));
  }

  private async attachCall(input: AttachInput): Promise<AttachOutput> {
    const started = performance.now();
    try {
      // A lone call runs its kernel requests on this thread, and nothing else
      // is read until it is done. So first let the event loop take in the
      // requests already waiting: they start together, count as running, and
      // their kernel work goes to the pool while this thread serves gRPC.
      // It costs a lone call 10-80 µs here; with 16 callers it gave 15-28 % more
      // attaches per second (two daemons side by side, rounds alternated).
      await nextLoopTurn();
      validateWorkloadId(input.workloadId);
      const netns = validateNetns(input.netns);
      const mappings = validatePortMappings(input.portMappings);
      const attachment = await this.locks.run(input.workloadId, async () => {
        if (this.deps.registry.has(input.workloadId)) {
          const existing = this.deps.registry.get(input.workloadId);
          throw new ServiceError(StatusCode.AlreadyExists, `workload ${input.workloadId} is already attached (host interface ${existing?.hostIfName}); detach it first`);
        }
        const a = await attachWorkload(this.deps, input.workloadId, netns, mappings);
        this.deps.registry.add(a);
        return a;
      });
      const ports = attachment.portMappings?.length ? { portMappings: attachment.portMappings } : {};
      this.logCall("attach", input.workloadId, started, { addresses: attachment.addresses, hostIf: attachment.hostIfName, netns: netns.netnsPath, ...ports });
      return { addresses: attachment.addresses, hostIfName: attachment.hostIfName, hostMac: HOST_VETH_MAC, podMac: attachment.podMac ?? "" };
    } catch (err) {
      this.logCall("attach", input.workloadId, started, {}, err);
      throw err;
    }
  }

  private async detachCall(input: DetachInput): Promise<void> {
    const started = performance.now();
    try {
      validateWorkloadId(input.workloadId);
      // netns is optional for Detach: the host side alone identifies what to remove.
      const addresses = this.deps.registry.get(input.workloadId)?.addresses ?? [];
      await this.locks.run(input.workloadId, () => detachWorkload(this.deps, input.workloadId));
      this.logCall("detach", input.workloadId, started, { addresses });
    } catch (err) {
      this.logCall("detach", input.workloadId, started, {}, err);
      throw err;
    }
  }

  async status(): Promise<void> {
    if (!this.deps.ipam.ready()) {
      // The source's trouble first (it is why nothing arrived); else what the source says is missing.
      const why = this.deps.cluster.lastError() ?? this.deps.cluster.view().pendingReason;
      throw new ServiceError(StatusCode.Unavailable, `no pod prefixes yet${why ? `: ${why}` : ""}`);
    }
  }

  async check(input: DetachInput): Promise<void> {
    validateWorkloadId(input.workloadId);
    const netns = validateNetns(input.netns);
    await this.locks.run(input.workloadId, async () => {
      const a = this.deps.registry.get(input.workloadId);
      if (a === undefined) throw new ServiceError(StatusCode.NotFound, `workload ${input.workloadId} is not attached`);
      await checkAttachment(this.deps, a, netns);
    });
  }

  async list(): Promise<AttachmentInfo[]> {
    return this.deps.registry.list().map((a) => ({ workloadId: a.workloadId, addresses: [...a.addresses], hostIfName: a.hostIfName, portMappings: [...(a.portMappings ?? [])] }));
  }

  async gc(keep: string[]): Promise<string[]> {
    const keepSet = new Set(keep);
    const stale = this.deps.registry.list().filter((a) => !keepSet.has(a.workloadId));
    // Detach runs concurrently across ids; each takes its own lock.
    const results = await Promise.allSettled(stale.map((a) => this.detach({ workloadId: a.workloadId, netns: undefined }).then(() => a.workloadId)));
    const removed = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const failed = results.filter((r) => r.status === "rejected").length;
    this.deps.log.info({ op: "gc", kept: keepSet.size, removed: removed.length, failed }, "gc done");
    if (failed > 0) throw new ServiceError(StatusCode.Unavailable, `gc: ${failed} of ${stale.length} stale attachments could not be removed; retry`);
    return removed;
  }

  /** What Status reports in detail: prefixes, counts, and the cluster source's state. */
  describe(): StatusDetails {
    const p = this.deps.ipam.prefixes();
    const c = this.deps.cluster;
    const sourceError = c.lastError();
    const view = c.view();
    const lastSync = c.lastSync();
    return {
      prefixes: [p.v4?.text, p.v6?.text].filter((x): x is string => x !== undefined),
      attached: this.deps.registry.size,
      ...(sourceError ? { prefixError: sourceError, sourceError } : {}),
      source: c.kind,
      ...(lastSync ? { lastSync } : {}),
      problems: [...view.problems],
      nodesKnown: view.nodes.length,
      ...(view.nodeName ? { nodeName: view.nodeName } : {}),
      routing: c.routing,
    };
  }

  async nodes(): Promise<NodesOutput> {
    return this.deps.cluster.nodes();
  }

  private logCall(op: string, workloadId: string, started: number, fields: Record<string, unknown>, err?: unknown): void {
    const elapsed = performance.now() - started;
    const durationMs = Math.round(elapsed * 1000) / 1000;
    const outcome = err === undefined ? "ok" : err instanceof ServiceError ? StatusCode[err.code] ?? "Unknown" : "Internal";
    this.deps.metrics?.observeCall(op, outcome, elapsed / 1000);
    const id = workloadId.length > 80 ? preview(workloadId, 80) : workloadId;
    // Written once the answer has gone out (the caller's promise settles in
    // this turn; the gRPC answer is written in it): serialising the line and
    // its synchronous write took ~0.1 ms of each call's latency, on a fresh
    // daemon more (docs/performance-cold.md). Lines keep their order.
    if (err === undefined) {
      setImmediate(() => this.deps.log.info({ op, workloadId: id, ...fields, durationMs, outcome: "ok" }, `${op} ok`));
      return;
    }
    const code = err instanceof ServiceError ? StatusCode[err.code] : "Internal";
    const level = err instanceof ServiceError && err.code !== StatusCode.Internal ? "warn" : "error";
    const message = (err as Error).message;
    setImmediate(() => this.deps.log[level]({ op, workloadId: id, durationMs, outcome: code, err: message }, `${op} failed`));
  }
}
