// Runs the Kubernetes source in this process with whatever credentials the
// environment gives (in-cluster when no KUBECONFIG_PATH), printing each view
// and error as a JSON line. Commands on stdin:
//   rotate TOKEN   writes TOKEN into the service-account token file (as the kubelet does)
//   quit           closes the source and exits
// The in-cluster test runs it in a private mount namespace with the
// service-account files mounted where a pod has them.

import { writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { createKubernetesSource } from "../src/cluster/kubernetes/index.js";
import { SERVICE_ACCOUNT_DIR } from "../src/cluster/kubernetes/kubernetes-source.js";
import type { ClusterView } from "../src/cluster/view.js";

const out = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

const source = await createKubernetesSource({
  nodeName: process.env.NODE_NAME ?? "",
  ...(process.env.KUBECONFIG_PATH ? { kubeconfig: process.env.KUBECONFIG_PATH } : {}),
  log: quiet,
  watchIdleMs: 1000,
  listTimeoutMs: 1000,
  backoffInitialMs: 50,
  backoffMaxMs: 300,
});
const report = (view: ClusterView) => out({ view, error: source.lastError() ?? null });
source.onChange(report);
source.onError(() => report(source.current()));
await source.start();
report(source.current());
let lastError = source.lastError();
const poll = setInterval(() => {
  // An error cleared without a view change is worth a line too.
  if (source.lastError() !== lastError) {
    lastError = source.lastError();
    report(source.current());
  }
}, 20);
for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, arg] = line.split(" ");
  if (cmd === "rotate") {
    writeFileSync(`${SERVICE_ACCOUNT_DIR}/token`, arg ?? "");
    out({ rotated: true });
  } else if (cmd === "quit") break;
}
clearInterval(poll);
source.close();
// Nothing of the source's may keep the process alive: exiting by itself is part of the test.
process.stdin.destroy();
