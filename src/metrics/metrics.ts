// Prometheus metrics of the daemon: calls by method and outcome, their
// latency, what is attached, how many addresses are left, and Node's own
// process figures (RSS, fds, event-loop lag).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Ipam } from "../ipam/allocator.js";
import type { AttachmentRegistry } from "../service/registry.js";

export interface DaemonMetrics {
  registry: Registry;
  /** Records one finished call: method ("attach", …), outcome ("ok" or a status code name), seconds. */
  observeCall(method: string, outcome: string, seconds: number): void;
}

export function createMetrics(deps: { ipam: Ipam; registry: AttachmentRegistry }): DaemonMetrics {
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

  return {
    registry,
    observeCall(method, outcome, seconds) {
      calls.inc({ method, outcome });
      duration.observe({ method }, seconds);
    },
  };
}
