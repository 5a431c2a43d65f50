// Figures for the Kubernetes source of the cluster view, against the API
// stand-in running in a process of its own:
//  - time from a Node change at the API to the changed view (p50/p99), with
//    3 and with 1 000 nodes, next to the same with coalescing off (1 ms)
//  - list + build time and memory with 1 000 nodes of realistic size, next
//    to buildView alone and the client's import.
// Run: npm run bench:kube

import { fork } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createKubernetesSource } from "../src/cluster/kubernetes/index.js";
import { nodeRecord, rawViewFromRecords, type NodeRecord } from "../src/cluster/kubernetes/node-records.js";
import { buildView, type ClusterView } from "../src/cluster/view.js";
import type { KubeNode } from "../test/kube-apiserver/server.js";
import { nowMs, quantile } from "./bench-util.js";

const here = dirname(fileURLToPath(import.meta.url));
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const CHANGES = Number(process.env.KUBE_BENCH_CHANGES ?? 300);
const BIG = 1000;

const server = fork(join(here, "kube-apiserver-process.js"), [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
let nextId = 0;
const pending = new Map<number, (r: { t: number; result?: unknown; error?: string }) => void>();
server.on("message", (m: { id: number; t: number; result?: unknown; error?: string }) => pending.get(m.id)?.(m));
function call(op: string, arg?: unknown): Promise<{ t: number; result?: unknown }> {
  const id = ++nextId;
  return new Promise((resolve, reject) => {
    pending.set(id, (r) => {
      pending.delete(id);
      if (r.error) reject(new Error(r.error));
      else resolve(r);
    });
    server.send({ id, op, arg });
  });
}

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const heapMb = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

/** A Node of the size a real one has (images, conditions, labels: about 4 KB of JSON). */
function fatNode(i: number): KubeNode {
  const name = `node-${String(i).padStart(4, "0")}`;
  const node = {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      uid: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
      resourceVersion: "0",
      creationTimestamp: "2026-01-01T00:00:00Z",
      labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "m5.large", "topology.kubernetes.io/zone": `zone-${i % 3}` },
      annotations: { "node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true" },
    },
    spec: { podCIDR: `10.${64 + (i >> 8)}.${i & 255}.0/24`, podCIDRs: [`10.${64 + (i >> 8)}.${i & 255}.0/24`, `fd70:${i.toString(16)}::/64`], providerID: `aws:///zone/i-${i.toString(16).padStart(17, "0")}` },
    status: {
      addresses: [
        { type: "InternalIP", address: `172.${16 + (i >> 8)}.${i & 255}.10` },
        { type: "InternalIP", address: `2001:db8:${i.toString(16)}::10` },
        { type: "Hostname", address: name },
      ],
      capacity: { cpu: "2", memory: "8012560Ki", pods: "110", "ephemeral-storage": "81106868Ki" },
      allocatable: { cpu: "2", memory: "7910160Ki", pods: "110", "ephemeral-storage": "74748941627" },
      conditions: ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"].map((type) => ({
        type,
        status: type === "Ready" ? "True" : "False",
        lastHeartbeatTime: "2026-01-01T00:00:00Z",
        lastTransitionTime: "2026-01-01T00:00:00Z",
        reason: `Kubelet${type}`,
        message: `kubelet reports ${type}`,
      })),
      nodeInfo: { machineID: "0".repeat(32), systemUUID: "0".repeat(36), bootID: "0".repeat(36), kernelVersion: "6.1.0", osImage: "Debian GNU/Linux 12", containerRuntimeVersion: "containerd://1.7.0", kubeletVersion: "v1.33.0", kubeProxyVersion: "v1.33.0", operatingSystem: "linux", architecture: "amd64" },
      images: Array.from({ length: 12 }, (_, k) => ({ names: [`registry.example/app-${k}@sha256:${"ab".repeat(32)}`, `registry.example/app-${k}:v1.${k}`], sizeBytes: 10_000_000 + k })),
    },
  };
  return node as unknown as KubeNode;
}

/** Milliseconds from each change at the API to the first view that shows it. */
async function changeLatencies(kubeconfig: string, coalesceMs: number, name: string, count: number): Promise<number[]> {
  const source = await createKubernetesSource({ nodeName: "self", kubeconfig, log: quiet, coalesceMs });
  await source.start();
  let want = "";
  let resolveSeen: ((t: number) => void) | undefined;
  source.onChange((v: ClusterView) => {
    if (want && v.nodes.find((n) => n.name === name)?.address.v4 === want) resolveSeen?.(nowMs());
  });
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    want = `192.0.2.${(i % 200) + 20}`;
    const seen = new Promise<number>((r) => (resolveSeen = r));
    const { t } = await call("update", { name, podCIDRs: ["10.70.2.0/24"], internalIPs: [want] });
    out.push((await seen) - t);
  }
  source.close();
  return out;
}

const fmt = (xs: number[]) => `p50 ${quantile(xs, 0.5).toFixed(2)} ms  p99 ${quantile(xs, 0.99).toFixed(2)} ms  max ${Math.max(...xs).toFixed(2)} ms`;

async function main() {
  const { result } = await call("start");
  const kubeconfig = (result as { kubeconfig: string }).kubeconfig;
  await call("add", { name: "self", podCIDRs: ["10.70.1.0/24"], internalIPs: ["192.0.2.11"] });
  await call("add", { name: "n2", podCIDRs: ["10.70.2.0/24"], internalIPs: ["192.0.2.12"] });
  await call("add", { name: "n3", podCIDRs: ["10.70.3.0/24"], internalIPs: ["192.0.2.13"] });

  const heap0 = heapMb();
  const ti = nowMs();
  await import("@kubernetes/client-node");
  const importMs = nowMs() - ti;
  const heapClient = heapMb();

  console.log(`Kubernetes source: ${CHANGES} Node changes, one at a time (time from the change at the API to the changed view)`);
  // Warm-up (JIT, TLS session) before measuring.
  await changeLatencies(kubeconfig, 15, "n2", 30);
  console.log(`  3 nodes,     coalescing 15 ms (default): ${fmt(await changeLatencies(kubeconfig, 15, "n2", CHANGES))}`);
  console.log(`  3 nodes,     coalescing  1 ms (baseline): ${fmt(await changeLatencies(kubeconfig, 1, "n2", CHANGES))}`);

  // 1 000 nodes of realistic size.
  const fat = Array.from({ length: BIG }, (_, i) => fatNode(i));
  for (let i = 0; i < BIG; i += 100) await call("put", fat.slice(i, i + 100));
  const bytes = JSON.stringify(fat).length;
  console.log(`  ${BIG} nodes,  coalescing 15 ms (default): ${fmt(await changeLatencies(kubeconfig, 15, "n2", CHANGES))}`);
  console.log(`  ${BIG} nodes,  coalescing  1 ms (baseline): ${fmt(await changeLatencies(kubeconfig, 1, "n2", CHANGES))}`);

  console.log(`\n${BIG + 3} nodes in the API (${(bytes / 2 ** 20).toFixed(1)} MiB of Node JSON, ${(bytes / BIG / 1024).toFixed(1)} KiB each)`);
  const runs: number[] = [];
  let heapSource = 0;
  for (let r = 0; r < 5; r++) {
    const before = heapMb();
    const t0 = nowMs();
    const source = await createKubernetesSource({ nodeName: "self", kubeconfig, log: quiet });
    await source.start();
    runs.push(nowMs() - t0);
    if (source.current().nodes.length !== BIG + 2) throw new Error(`view has ${source.current().nodes.length} nodes`);
    // The first run, conservatively: it also holds what the first TLS connection and request leave behind.
    if (r === 0) heapSource = heapMb() - before;
    source.close();
  }
  console.log(`  first list + build (start() until the view is whole): median ${quantile(runs, 0.5).toFixed(1)} ms  (runs ${runs.map((x) => x.toFixed(0)).join(", ")})`);

  const records = new Map<string, NodeRecord>();
  for (const n of fat) {
    const r = nodeRecord(JSON.parse(JSON.stringify(n)));
    records.set(r!.name, r!);
  }
  const builds: number[] = [];
  for (let r = 0; r < 20; r++) {
    const t0 = nowMs();
    buildView(rawViewFromRecords("self", records));
    builds.push(nowMs() - t0);
  }
  console.log(`  of which buildView alone (baseline, ${BIG} nodes):       median ${quantile(builds, 0.5).toFixed(1)} ms`);
  console.log(`  heap held by a started source (cache + view):             ${heapSource.toFixed(1)} MiB`);
  console.log(`  the client library: import ${importMs.toFixed(0)} ms, heap ${(heapClient - heap0).toFixed(1)} MiB (paid only in Kubernetes mode)`);
  console.log(`  process RSS now: ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
  await call("close");
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    server.kill();
    process.exit(1);
  },
);
