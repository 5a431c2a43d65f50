// The demo's second part: three nodes, each a network namespace running its
// own workloadnetd with a pod, the cluster view from each node's prefix file
// (the cluster form). n1 and n2 share a subnet, n3 sits behind a router, so
// --routing auto routes n2 directly and n3 over VXLAN. Shows what
// `workloadnetctl nodes` says on n1, pings every pod on every other node on
// both families, and opens a TCP connection whose far end reports the source
// address it sees (the pod's own: no NAT between pods).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ClusterHarness, tcpPeerSeenBy } from "../test/cluster-harness.js";
import { ping } from "../test/sandbox.js";

const CTL = fileURLToPath(new URL("../src/cli/workloadnetctl.js", import.meta.url));

/** Runs the cluster part; returns the number of failed checks. */
export async function clusterDemo(table: (rows: string[][]) => string): Promise<number> {
  let failures = 0;
  const check = (ok: boolean): string => {
    if (!ok) failures++;
    return ok ? "ok" : "FAILED";
  };
  console.log("\n--- A cluster: three nodes, each with its own daemon and a pod (n3 behind a router) ---\n");
  const c = await ClusterHarness.start(["--routing", "auto"]);
  try {
    const nodes = spawnSync(process.execPath, [CTL, "--socket", c.daemon("n1").socketPath, "nodes"], { encoding: "utf8" });
    console.log("workloadnetctl nodes (on n1):");
    console.log(nodes.stdout.replace(/^/gm, "  ").trimEnd());
    if (nodes.status !== 0) check(false);

    const rows = [["ping", "IPv4", "", "IPv6", ""]];
    for (const a of c.pods) {
      for (const b of c.pods) {
        if (a.node === b.node) continue;
        const [ok4, ok6] = await Promise.all([ping(a.ns.name, b.v4), ping(a.ns.name, b.v6)]);
        rows.push([`${a.node} pod -> ${b.node} pod`, b.v4, check(ok4), b.v6, check(ok6)]);
      }
    }
    console.log("\nPings between nodes:");
    console.log(table(rows));

    const from = c.pods.find((p) => p.node === "n1")!;
    const to = c.pods.find((p) => p.node === "n3")!;
    const seen = await tcpPeerSeenBy(from.ns, to.ns, to.v6, 7080).catch((err: Error) => `error: ${err.message}`);
    console.log(`\nTCP n1 pod -> n3 pod [${to.v6}]:7080 over VXLAN: the far end sees ${seen} -> ${check(seen === from.v6)}`);
  } finally {
    await c.close();
  }
  return failures;
}
