// `npm run demo`: the daemon's main job end to end, inside the sandbox.
// Starts workloadnetd in a private host namespace with the default prefixes,
// attaches three workloads in three pod namespaces, shows their addresses,
// pings between them and to the first hop over IPv4 and IPv6, detaches them,
// shows that nothing is left, and stops the daemon. Then a cluster of three
// nodes (cluster-demo.ts). Exits 1 if any step failed.
import { DaemonHarness, ipFromBytes } from "../test/daemon-harness.js";
import { ping, type PodNamespace } from "../test/sandbox.js";
import { clusterDemo } from "./cluster-demo.js";

const PREFIXES = { ipv4: "10.88.0.0/24", ipv6: "fd00:88::/64" };
const IF_NAME = "eth0";

let failures = 0;
const check = (ok: boolean): string => {
  if (!ok) failures++;
  return ok ? "ok" : "FAILED";
};

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => "  " + r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

interface Workload {
  id: string;
  pod: PodNamespace;
  v4: string;
  v6: string;
  hostIf: string;
  ms: number;
}

async function main(): Promise<void> {
  if (process.env.WORKLOADNET_SANDBOX !== "1") {
    console.error("demo: run it with `npm run demo` (it needs the sandbox: test/run-in-sandbox.sh)");
    process.exit(1);
  }
  console.log(`workloadnet demo: pod prefixes ${PREFIXES.ipv4} and ${PREFIXES.ipv6}\n`);
  const d = await DaemonHarness.start({ args: ["--ipv4-prefix", PREFIXES.ipv4, "--ipv6-prefix", PREFIXES.ipv6] });
  try {
    console.log(`daemon ready: pid ${d.pid}, host namespace ${d.hostNs}, socket ${d.socketPath}\n`);

    const workloads: Workload[] = [];
    for (const id of ["pod1", "pod2", "pod3"]) {
      const pod = d.pod(`${id}-`);
      const t0 = performance.now();
      const res = await d.client.attach({ workloadId: id, netns: { netnsPath: pod.path, ifName: IF_NAME } });
      const ms = performance.now() - t0;
      const ips = res.ip.map(ipFromBytes);
      const hostIf = d.hostLinks(8).find((l) => l.ifalias === `wk${id}`)?.ifname ?? "?";
      workloads.push({ id, pod, v4: ips.find((a) => a.includes(".")) ?? "-", v6: ips.find((a) => a.includes(":")) ?? "-", hostIf, ms });
    }
    console.log("Attach:");
    console.log(
      table([
        ["workload", "namespace", "IPv4", "IPv6", "host link", "attach"],
        ...workloads.map((w) => [w.id, w.pod.path, w.v4, w.v6, w.hostIf, `${w.ms.toFixed(1)} ms`]),
      ]),
    );

    const [p1, p2, p3] = workloads as [Workload, Workload, Workload];
    const pings: [string, string, string, string?][] = [
      ["pod1 -> pod2", p2.v4, p2.v6],
      ["pod1 -> pod3", p3.v4, p3.v6],
      ["pod1 -> first hop", "169.254.77.1", "fe80::1", IF_NAME],
    ];
    const rows = [["ping", "IPv4", "", "IPv6", ""]];
    for (const [what, v4, v6, iface] of pings) {
      const ok4 = await ping(p1.pod.name, v4);
      const ok6 = await ping(p1.pod.name, v6, iface);
      rows.push([what, v4, check(ok4), iface ? `${v6}%${iface}` : v6, check(ok6)]);
    }
    console.log("\nPing from pod1:");
    console.log(table(rows));

    for (const w of workloads) await d.client.detach({ workloadId: w.id, netns: { netnsPath: w.pod.path, ifName: IF_NAME } });
    const left = d.hostLinks(8).length;
    const routes = d.hostStaticRoutes().length;
    console.log(`\nDetach: 3 workloads detached; host links in group 8: ${left}, pod routes: ${routes} -> ${check(left === 0 && routes === 0)}`);

    const code = await d.stop();
    console.log(`Stop: daemon exited with code ${code} -> ${check(code === 0)}`);
  } catch (err) {
    failures++;
    console.error(`\ndemo step failed: ${(err as Error).message}`);
  } finally {
    await d.cleanup();
  }
  try {
    failures += await clusterDemo(table);
  } catch (err) {
    failures++;
    console.error(`\ncluster demo step failed: ${(err as Error).message}`);
  }
  console.log(failures === 0 ? "\ndemo OK" : `\ndemo FAILED (${failures} step(s))`);
  process.exitCode = failures === 0 ? 0 : 1;
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
});
