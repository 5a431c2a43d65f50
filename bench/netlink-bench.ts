// Pod plumbing with our netlink module vs iproute2's `ip -batch`, and three
// ways of deleting links. Runs inside the sandbox (npm run bench:netlink). Prints
// figures; asserts nothing. Everything it makes lives in namespaces it
// creates, and those are removed at the end.
//
//   node dist/bench/netlink-bench.js [--n 50]      (or N=50 in the environment)
// With libuv's pool sized as the daemon's (ensureDaemonPoolSize).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { addAddressRequest } from "../src/netlink/addr.js";
import { AF_INET, RT_SCOPE_LINK } from "../src/netlink/codec/constants.js";
import { Handle } from "../src/netlink/handle.js";
import { createVeth, deleteLink, deleteLinksInGroup, getLinkByName, listLinks, setLinkUpRequest } from "../src/netlink/link.js";
import { addRoute, addRouteRequest } from "../src/netlink/route.js";
import { NetnsFd } from "../src/netns/namespace.js";
import { assertSandbox, createNamespace, type PodNamespace } from "../test/sandbox.js";
import { ensureDaemonPoolSize } from "./bench-util.js";

const GROUP = 4242;
const GATEWAY = "169.254.77.1";

function parseN(): number {
  const argv = process.argv.slice(2);
  let raw: string | undefined = process.env.N;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--n") raw = argv[++i];
    else if (a.startsWith("--n=")) raw = a.slice(4);
  }
  const n = raw === undefined ? 50 : Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new Error(`--n must be an integer from 1 to 10000, not ${raw}`);
  return n;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const podAddress = (i: number): string => `10.88.${(i + 2) >> 8}.${(i + 2) & 0xff}`;
const hostName = (i: number): string => `bh${i}`;

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx]!;
}
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const fmt = (ms: number): string => (Number.isFinite(ms) ? `${ms.toFixed(3)} ms` : "n/a");

interface Pod {
  ns: PodNamespace;
  fd: NetnsFd;
}

/** (A) one pod with our module: veth into the pod, host side up + /32 route; pod side lo, eth0, address, routes. */
async function plumbWithModule(host: Handle, pod: Pod, i: number): Promise<void> {
  const addr = podAddress(i);
  const h = Handle.inNamespace(pod.fd.fd, pod.ns.path);
  try {
    await createVeth(host, { name: hostName(i), group: GROUP, up: true, peer: { name: "eth0", netnsFd: pod.fd.fd } }, pod.ns.path);
    const [hostLink, peer] = await Promise.all([getLinkByName(host, hostName(i)), getLinkByName(h, "eth0")]);
    if (!hostLink || !peer) throw new Error(`veth ${hostName(i)} incomplete`);
    const outcomes = await h.batch([
      setLinkUpRequest(1, true, "lo"),
      setLinkUpRequest(peer.index, true, "eth0"),
      addAddressRequest({ index: peer.index, address: addr, prefixLen: 32 }, pod.ns.path),
      addRouteRequest({ family: AF_INET, dst: GATEWAY, dstLen: 32, oif: peer.index, scope: RT_SCOPE_LINK }, pod.ns.path),
      addRouteRequest({ family: AF_INET, dstLen: 0, gateway: GATEWAY, oif: peer.index, src: addr }, pod.ns.path),
    ]);
    for (const o of outcomes) if (!o.ok) throw o.error;
    await addRoute(host, { family: AF_INET, dst: addr, dstLen: 32, oif: hostLink.index });
  } finally {
    await h.close();
  }
}

function ipBatch(file: string, ns?: string): void {
  execFileSync("ip", [...(ns ? ["-n", ns] : []), "-batch", file], { stdio: ["ignore", "ignore", "inherit"] });
}

async function hostLinks(host: Handle): Promise<number[]> {
  return (await listLinks(host, GROUP)).map((l) => l.index);
}

async function main(): Promise<void> {
  if (!ensureDaemonPoolSize()) return;
  assertSandbox();
  const n = parseN();
  const tmp = mkdtempSync(path.join(tmpdir(), "netlink-bench-"));
  const namespaces: PodNamespace[] = [];
  const fds: NetnsFd[] = [];
  const handles: Handle[] = [];
  try {
    // ---- setup (not timed): a "host" namespace and N pods ------------------
    const hostNs = createNamespace("bhost");
    namespaces.push(hostNs);
    const hostFd = NetnsFd.open(hostNs.path);
    fds.push(hostFd);
    const host = Handle.inNamespace(hostFd.fd, hostNs.path);
    handles.push(host);
    execFileSync("ip", ["-n", hostNs.name, "link", "set", "lo", "up"]);
    const pods: Pod[] = [];
    for (let i = 0; i < n; i++) {
      const ns = createNamespace("bpod");
      namespaces.push(ns);
      const fd = NetnsFd.open(ns.path);
      fds.push(fd);
      pods.push({ ns, fd });
    }

    // ---- (A) our module, one pod after another -----------------------------
    const perPodA: number[] = [];
    for (const [i, pod] of pods.entries()) {
      const t0 = now();
      await plumbWithModule(host, pod, i);
      perPodA.push(now() - t0);
    }
    const totalA = perPodA.reduce((a, b) => a + b, 0);

    // delete (A)'s links one by one
    let links = await hostLinks(host);
    if (links.length !== n) throw new Error(`expected ${n} host links after (A), found ${links.length}`);
    let t0 = now();
    for (const idx of links) await deleteLink(host, idx);
    const seqDelete = (now() - t0) / links.length;

    // ---- (B) the same with ip -batch ----------------------------------------
    const startupRuns = 20;
    const startups: number[] = [];
    for (let k = 0; k < startupRuns; k++) {
      const s = now();
      ipBatch("/dev/null");
      startups.push(now() - s);
    }
    const startup = mean(startups);

    const hostFile = path.join(tmp, "host.batch");
    const hostLines: string[] = [];
    for (const [i, pod] of pods.entries()) {
      hostLines.push(`link add ${hostName(i)} group ${GROUP} type veth peer name eth0 netns ${pod.ns.name}`);
      hostLines.push(`link set ${hostName(i)} up`);
      hostLines.push(`route add ${podAddress(i)}/32 dev ${hostName(i)} proto static`);
    }
    writeFileSync(hostFile, `${hostLines.join("\n")}\n`);
    const podFiles = pods.map((_, i) => {
      const f = path.join(tmp, `pod${i}.batch`);
      const a = podAddress(i);
      writeFileSync(
        f,
        [
          "link set lo up",
          "link set eth0 up",
          `addr add ${a}/32 dev eth0`,
          `route add ${GATEWAY}/32 dev eth0 scope link proto static`,
          `route add default via ${GATEWAY} dev eth0 src ${a} proto static`,
          "",
        ].join("\n"),
      );
      return f;
    });
    t0 = now();
    ipBatch(hostFile, hostNs.name);
    for (const [i, pod] of pods.entries()) ipBatch(podFiles[i]!, pod.ns.name);
    const totalB = now() - t0;
    const invocationsB = n + 1;
    const perPodB = totalB / n;
    const perPodBNet = (totalB - invocationsB * startup) / n;

    // delete (B)'s links concurrently, maxSockets 16
    links = await hostLinks(host);
    if (links.length !== n) throw new Error(`expected ${n} host links after (B), found ${links.length}`);
    const wide = Handle.inNamespace(hostFd.fd, hostNs.path, { maxSockets: 16 });
    handles.push(wide);
    t0 = now();
    await Promise.all(links.map((idx) => deleteLink(wide, idx)));
    const concDelete = (now() - t0) / links.length;

    // ---- one more set, removed with a single group delete --------------------
    for (const [i, pod] of pods.entries()) {
      await createVeth(host, { name: hostName(i), group: GROUP, peer: { name: "eth0", netnsFd: pod.fd.fd } });
    }
    links = await hostLinks(host);
    t0 = now();
    await deleteLinksInGroup(host, GROUP);
    const groupDelete = (now() - t0) / links.length;
    const left = (await hostLinks(host)).length;

    // ---- report ---------------------------------------------------------------
    const sorted = [...perPodA].sort((a, b) => a - b);
    const rows: [string, string][] = [
      ["pods", String(n)],
      ["(A) module, per pod: mean", fmt(totalA / n)],
      ["(A) module, per pod: p50", fmt(quantile(sorted, 0.5))],
      ["(A) module, per pod: p99", fmt(quantile(sorted, 0.99))],
      ["(B) ip -batch, per pod: raw", fmt(perPodB)],
      [`(B) ip startup (ip -batch /dev/null, mean of ${startupRuns})`, fmt(startup)],
      [`(B) ip -batch, per pod: minus ${invocationsB} startups`, fmt(perPodBNet)],
      ["ratio (B raw) / (A mean)", `${(perPodB / (totalA / n)).toFixed(2)}x`],
      ["ratio (B minus startup) / (A mean)", `${(perPodBNet / (totalA / n)).toFixed(2)}x`],
      ["delete, per link: sequential deleteLink", fmt(seqDelete)],
      ["delete, per link: concurrent (maxSockets 16)", fmt(concDelete)],
      ["delete, per link: deleteLinksInGroup", fmt(groupDelete)],
      ["libuv threadpool size", process.env.UV_THREADPOOL_SIZE ?? "4 (default)"],
      ["host links left", String(left)],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    console.log("netlink bench: per pod = veth into a fresh namespace, host side up + /32 route;");
    console.log("  pod side lo up, eth0 up, /32 address, on-link route to the gateway, default route via it with src.");
    console.log("  (A) includes opening the pod's namespace handle, not creating the namespace; (B) times the whole ip runs.");
    for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
  } finally {
    for (const h of handles.reverse()) await h.close().catch(() => undefined);
    for (const fd of fds) {
      try {
        fd.close();
      } catch {
        // already closed
      }
    }
    for (const ns of namespaces.reverse()) ns.remove();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
