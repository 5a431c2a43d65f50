// Helpers for tests that run inside the sandbox (test/run-in-sandbox.sh):
// "pod" namespaces made with `ip netns add`, and iproute2 as an independent witness.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";

export function assertSandbox(): void {
  if (process.env.WORKLOADNET_SANDBOX !== "1") {
    throw new Error("kernel tests must run inside the sandbox: use `npm test` (test/run-in-sandbox.sh)");
  }
}

export const uniqueName = (prefix: string): string => `${prefix}${randomBytes(4).toString("hex")}`;

/** Runs `ip ARGS` (in namespace ns when given) and returns stdout. */
export function ip(args: string[], ns?: string): string {
  const full = ns ? ["-n", ns, ...args] : args;
  return execFileSync("ip", full, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** `ip -json ARGS`, parsed. */
export function ipJson<T = unknown>(args: string[], ns?: string): T {
  const out = ip(["-json", ...args], ns).trim();
  return (out ? JSON.parse(out) : []) as T;
}

export interface PodNamespace {
  name: string;
  path: string;
  remove(): void;
}

/** The handle of a named namespace at /run/netns/NAME (made or not). */
function namespaceNamed(name: string): PodNamespace {
  return { name, path: `/run/netns/${name}`, remove: () => removeNamespaces([name]) };
}

/** A fresh named network namespace, like a pod's, at /run/netns/NAME. */
export function createNamespace(prefix = "pod"): PodNamespace {
  assertSandbox();
  const name = uniqueName(prefix);
  ip(["netns", "add", name]);
  return namespaceNamed(name);
}

/** Many fresh namespaces with one `ip -batch` (much faster than one `ip` per namespace). */
export function createNamespaces(count: number, prefix = "pod"): PodNamespace[] {
  assertSandbox();
  const names = Array.from({ length: count }, () => uniqueName(prefix));
  if (count > 0) execFileSync("ip", ["-batch", "-"], { input: names.map((n) => `netns add ${n}\n`).join(""), stdio: ["pipe", "ignore", "pipe"] });
  return names.map(namespaceNamed);
}

/** Removes namespaces by name with one `ip -force -batch`; missing ones are fine. */
export function removeNamespaces(names: string[]): void {
  if (names.length === 0) return;
  try {
    execFileSync("ip", ["-force", "-batch", "-"], { input: names.map((n) => `netns del ${n}\n`).join(""), stdio: ["pipe", "ignore", "ignore"] });
  } catch {
    // -force goes on past errors; a failure status only means some were gone already
  }
}

/** Runs a command inside a named namespace; resolves with its exit code and output. */
export function execIn(ns: string, cmd: string[], timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child: ChildProcess = spawn("ip", ["netns", "exec", ns, ...cmd], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** One ping (-c 1, 2 s deadline) from a namespace; true when it was answered. */
export async function ping(fromNs: string, address: string, iface?: string): Promise<boolean> {
  const target = iface && address.startsWith("fe80:") ? `${address}%${iface}` : address;
  const r = await execIn(fromNs, ["ping", "-n", "-c", "1", "-W", "2", target]);
  return r.code === 0;
}

// The shapes of `ip -json` output the tests read (iproute2 6.1).

/** `ip -json -d link` entries. */
export interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  operstate: string;
  group: string;
  address: string;
  ifalias?: string;
  /** Alternative names (`ip link property add ... altname`). */
  altnames?: string[];
  /** The peer's index when it lives in another namespace... */
  link_index?: number;
  /** ...or its name when it is in this one. */
  link?: string;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string };
  /** With -d. */
  num_tx_queues?: number;
  num_rx_queues?: number;
  /** With -d: how the kernel makes the IPv6 link-local address ("eui64", "none", ...). */
  inet6_addr_gen_mode?: string;
}

/** One `addr_info` entry of `ip -json addr`. */
export interface IpAddrInfo {
  family: string;
  local: string;
  prefixlen: number;
  scope: string;
  nodad?: boolean;
  tentative?: boolean;
  label?: string;
}

/** `ip -json route` entries. */
export interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  type?: string;
  flags?: string[];
}

/** `ip -json neigh` entries. */
export interface IpNeigh {
  dst: string;
  dev?: string;
  lladdr?: string;
  state: string[];
}
