// The Kubernetes API stand-in in a process of its own, driven over IPC, so a
// benchmark of the source does not share its event loop with the server.
// Each reply carries the monotonic time at which the change was made.

import { type KubeApiStandIn, startKubeApiServer } from "../test/kube-apiserver/server.js";
import { nowMs } from "./bench-util.js";

interface Request {
  id: number;
  op: "start" | "add" | "update" | "put" | "delete" | "close";
  arg?: unknown;
}

let api: KubeApiStandIn | undefined;

process.on("message", async (msg: Request) => {
  try {
    let result: unknown;
    switch (msg.op) {
      case "start":
        api = await startKubeApiServer();
        result = { kubeconfig: api.kubeconfigFile() };
        break;
      case "add":
        result = api!.nodes.add(msg.arg as Parameters<KubeApiStandIn["nodes"]["add"]>[0]).metadata.resourceVersion;
        break;
      case "update":
        result = api!.nodes.update(msg.arg as Parameters<KubeApiStandIn["nodes"]["update"]>[0]).metadata.resourceVersion;
        break;
      case "put":
        for (const n of msg.arg as Parameters<KubeApiStandIn["nodes"]["put"]>[0][]) api!.nodes.put(n);
        break;
      case "delete":
        api!.nodes.delete(msg.arg as string);
        break;
      case "close":
        await api?.close();
        process.send!({ id: msg.id, t: nowMs() }, () => process.exit(0));
        return;
    }
    process.send!({ id: msg.id, t: nowMs(), result });
  } catch (err) {
    process.send!({ id: msg.id, t: nowMs(), error: (err as Error).message });
  }
});
