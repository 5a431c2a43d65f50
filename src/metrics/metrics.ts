// Prometheus metrics of the daemon: calls by method and outcome, their
// latency, what is attached, how many addresses are left, and Node's own
// process figures (RSS, fds, event-loop lag); the cluster source (last
// successful sync, errors, nodes known) and the reconciles of the routes.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Ipam } from "../ipam/allocator.js";
import type { AttachmentRegistry } from "../service/registry.js";
import type { ClusterSource } from "../cluster/source.js";

export interface DaemonMetrics {
  registry: Registry;
  /** Records one finished call: method ("attach", …), outcome ("ok" or a status code name), seconds. */
  observeCall(method: string, outcome: string, seconds: number): void;
  /** One more error reported by the cluster source. */
  sourceError(): void;
  /** One finished reconcile of the routes to other nodes: its error (undefined: ok), seconds. */
  reconciled(err: unknown, seconds: number): void;
}

export function createMetrics(deps: { ipam: Ipam; registry: AttachmentRegistry; source?: ClusterSource }): DaemonMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "workloadnet_" });

  const calls = new Counter({
    name: "workloadnet_calls_total",
    help: "API calls by method and outcome (ok or the gRPC status code name).",
    labelNames: ["method", "outcome"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "workloadnet_call_duration_seconds",
    help: "Time the daemon spent on a call, by method.",
    labelNames: ["method"] as const,
    // Attach takes ~1-3 ms; Detach waits for the kernel's veth delete (~20-40 ms).
    buckets: [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 1],
    registers: [registry],
  });
  new Gauge({
    name: "workloadnet_attachments",
    help: "Workloads attached now.",
    registers: [registry],
    collect() {
      this.set(deps.registry.size);
    },
  });
  new Gauge({
    name: "workloadnet_prefix_free_addresses",
    help: "Addresses left to hand out in each current pod prefix.",
    labelNames: ["prefix", "family"] as const,
    registers: [registry],
    collect() {
      this.reset();
      // Capped: an IPv6 /64 has more than a float can count exactly.
      for (const p of deps.ipam.free()) this.set({ prefix: p.prefix, family: `ipv${p.family}` }, Number(p.free > 2n ** 52n ? 2n ** 52n : p.free));
    },
  });

  new Gauge({
    name: "workloadnet_cluster_source_last_sync_timestamp_seconds",
    help: "When the cluster source (static, file, kubernetes) last read its backend successfully, in seconds since the epoch; 0 before the first time.",
    labelNames: ["source"] as const,
    registers: [registry],
    collect() {
      if (deps.source === undefined) return;
      this.set({ source: deps.source.kind }, (deps.source.lastSync()?.getTime() ?? 0) / 1000);
    },
  });
  const sourceErrors = new Counter({
    name: "workloadnet_cluster_source_errors_total",
    help: "Errors the cluster source reported (file unreadable or invalid, API server unreachable, ...); the last view stays in force.",
    registers: [registry],
  });
  new Gauge({
    name: "workloadnet_cluster_nodes",
    help: "Other nodes in the cluster view.",
    registers: [registry],
    collect() {
      this.set(deps.source?.current().nodes.length ?? 0);
    },
  });
  const reconciles = new Counter({
    name: "workloadnet_route_reconciles_total",
    help: "Reconciles of the routes to other nodes, by outcome (ok, error).",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const reconcileDuration = new Histogram({
    name: "workloadnet_route_reconcile_duration_seconds",
    help: "Time one reconcile of the routes to other nodes took.",
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  // Both outcomes exist from the start, so a rate over "error" is 0, not absent.
  reconciles.inc({ outcome: "ok" }, 0);
  reconciles.inc({ outcome: "error" }, 0);

  return {
    registry,
    observeCall(method, outcome, seconds) {
      calls.inc({ method, outcome });
      duration.observe({ method }, seconds);
    },
    sourceError() {
      sourceErrors.inc();
    },
    reconciled(err, seconds) {
      reconciles.inc({ outcome: err === undefined ? "ok" : "error" });
      reconcileDuration.observe(seconds);
    },
  };
}
