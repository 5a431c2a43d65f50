// Configuration of the daemon workloadnetd: command-line flags, environment
// variables WORKLOADNETD_<KEY> and an optional JSON file (--config), in that
// order of precedence, over built-in defaults.
//
// The JSON file uses the flags' names as keys, without the dashes in front:
//   {"ipv4-prefix": "10.88.0.0/24", "mtu": 1400, "socket-group": "containerd"}
// Unknown keys are errors. Every error is a ConfigError with a one-line
// message naming the setting and the offending value.

import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { isAbsolute } from "node:path";
import { hostname } from "node:os";
import { isIPv4, isIPv6 } from "node:net";
import { parseIp } from "../netlink/codec/ip.js";
import { Command, CommanderError, Option } from "commander";
import { parsePrefix } from "../ipam/prefix.js";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface DaemonConfig {
  /** Unix socket of the gRPC API (absolute path). */
  socketPath: string;
  /** Static IPv4 pod prefix, e.g. "10.88.0.0/24" (syntax checked only). */
  ipv4Prefix: string | undefined;
  /** Static IPv6 pod prefix, e.g. "fd00:88::/64" (syntax checked only). */
  ipv6Prefix: string | undefined;
  /** File to watch for the pod prefixes (absolute path; need not exist yet). */
  prefixFile: string | undefined;
  /** MTU of the workload links; undefined: the routing's podMtu (the node link's, less VXLAN's overhead when VXLAN may be used). */
  mtu: number | undefined;
  /** Link group that marks the daemon's host-side interfaces. */
  linkGroup: number;
  /** Transmit and receive queues of each veth end. */
  vethQueues: number;
  /** Attaches run in throwaway namespaces before serving, so the first real ones run warm (0: none). */
  warmUp: number;
  logLevel: LogLevel;
  /** "sync": Detach returns once the veth is deleted; "deferred": see DETACH_MODES. */
  detachMode: DetachMode;
  /** Where to serve Prometheus metrics (GET /metrics); off when undefined. */
  metricsAddress: { host: string; port: number } | undefined;
  /** Group (resolved to a gid) that gets read/write access to the socket. */
  socketGroup: number | undefined;
  /** The CNI plugin's records of its attachments (absolute path); default: beside the socket. */
  cniStateFile: string | undefined;
  /** Where to install the CNI plugin (with cniConfDir). */
  cniBinDir: string | undefined;
  /** Where to write the CNI network configuration once the pod prefixes are known (with cniBinDir). */
  cniConfDir: string | undefined;
  /** The cluster view from the Kubernetes API (Node objects) instead of the flags or the prefix file. */
  kubernetes: boolean;
  /** A kubeconfig for the Kubernetes API (absolute path); implies kubernetes. Undefined: in-cluster credentials. */
  kubeconfig: string | undefined;
  /** This node's name (--node-name, else $NODE_NAME, else the host name in lower case). */
  nodeName: string;
  /** How pod traffic reaches other nodes. */
  routing: RoutingMode;
  /** VXLAN network identifier of our VXLAN device. */
  vxlanVni: number;
  /** UDP port of our VXLAN device. */
  vxlanPort: number;
  /** Seconds between full reconciles of the routes to other nodes (drift repair). */
  resyncInterval: number;
  /** Masquerade pod traffic to destinations outside the cluster's pod prefixes. */
  masquerade: boolean;
  /** The cluster's pod prefixes (every node's), besides those the cluster view gives: never masqueraded. */
  clusterCidrs: string[];
  /** More destinations that keep the pod's address. */
  noMasqueradeCidrs: string[];
  /** The config file that was read, if any. */
  configFile: string | undefined;
}

export const DEFAULT_SOCKET_PATH = "/run/workloadnet/workloadnet.sock";
/**
 * auto: direct routes to nodes on a shared link, VXLAN to the others;
 * direct/vxlan: only that kind; none: routes to other nodes are someone else's.
 */
export const ROUTING_MODES = ["auto", "direct", "vxlan", "none"] as const;
export type RoutingMode = (typeof ROUTING_MODES)[number];
export const DEFAULT_ROUTING: RoutingMode = "auto";
/** Not flannel's (1) nor Calico's (4096), so either can run beside us while migrating. */
export const DEFAULT_VXLAN_VNI = 7701;
/** The IANA VXLAN port. */
export const DEFAULT_VXLAN_PORT = 4789;
export const DEFAULT_RESYNC_INTERVAL = 30;
export const DEFAULT_LINK_GROUP = 8;
/**
 * One queue each way per veth end, said explicitly. Left unsaid, the kernel
 * sizes each end for one queue per possible CPU and then trims the active ones
 * back to one, with the networking lock held: measured on 2 CPUs, that made the
 * veth's creation 0.15-0.25 ms slower, and the queues grow with the CPUs.
 * More than one queue only matters to XDP programs on the veth.
 */
export const DEFAULT_VETH_QUEUES = 1;
/** See docs/performance-cold.md. */
export const DEFAULT_WARM_UP = 8;
export const DEFAULT_LOG_LEVEL: LogLevel = "info";
/**
 * sync: Detach answers once the kernel has deleted the veth (as soon as it
 * announces the deletion, a millisecond or so after asking).
 * deferred: Detach takes the link down and out of service, answers at once,
 * and the kernel deletes such links in bulk right after; the name and the
 * addresses are freed only when the deletion is done.
 */
export const DETACH_MODES = ["sync", "deferred"] as const;
export type DetachMode = (typeof DETACH_MODES)[number];
export const DEFAULT_DETACH_MODE: DetachMode = "sync";
export const ENV_PREFIX = "WORKLOADNETD_";

/** Bad configuration; the message is one line naming the setting and value. */
export class ConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConfigError";
  }
}

/** Thrown by parseConfig for --help; `text` is the help to print (exit status 0). */
export class HelpRequested extends Error {
  constructor(readonly text: string) {
    super("help requested");
    this.name = "HelpRequested";
  }
}

export interface ParseConfigOptions {
  /** The machine's host name (default node name); defaults to os.hostname(). */
  hostname?: () => string;
  /** Resolves a group name to its gid, undefined when there is no such group. */
  lookupGroup?: (name: string) => number | undefined;
  /** Reads the config file; defaults to readFileSync(path, "utf8"). */
  readFile?: (path: string) => string;
}

// ---------------------------------------------------------------------------
// Settings

type Raw = string | number | boolean | null | object;

interface Setting<K extends keyof DaemonConfig> {
  /** Flag without dashes; also the key in the config file. */
  key: string;
  field: K;
  argName: string;
  description: string;
  /** A flag without a value (--kubernetes); from the environment or file: true/false. */
  boolean?: true;
  /** Validates a raw value (flag/env: string; file: any JSON value); throws Invalid. */
  parse: (raw: Raw, ctx: Required<ParseConfigOptions>) => DaemonConfig[K];
  /**
   * The flag may be given several times (raw: an array of strings); in the
   * environment the values are separated by commas, in the file a JSON array.
   */
  repeatable?: true;
}

/** A validation failure; turned into a ConfigError naming where the value came from. */
class Invalid extends Error {}

function setting<K extends keyof DaemonConfig>(s: Setting<K>): Setting<K> {
  return s;
}

const SETTINGS = [
  setting({
    key: "socket",
    field: "socketPath",
    argName: "path",
    description: `unix socket of the gRPC API (default: ${DEFAULT_SOCKET_PATH})`,
    parse: (raw) => socketPath(raw),
  }),
  setting({
    key: "ipv4-prefix",
    field: "ipv4Prefix",
    argName: "cidr",
    description: "IPv4 pod prefix, e.g. 10.88.0.0/24",
    parse: (raw) => cidr(raw, 4),
  }),
  setting({
    key: "ipv6-prefix",
    field: "ipv6Prefix",
    argName: "cidr",
    description: "IPv6 pod prefix, e.g. fd00:88::/64",
    parse: (raw) => cidr(raw, 6),
  }),
  setting({
    key: "prefix-file",
    field: "prefixFile",
    argName: "path",
    description: "file with the pod prefixes, watched for changes",
    parse: (raw) => absolutePath(raw),
  }),
  setting({
    key: "mtu",
    field: "mtu",
    argName: "n",
    description: "MTU of workload links, 68..65535 (default: the MTU of the link that carries the node's address, less the VXLAN overhead when VXLAN may be used)",
    parse: (raw) => integer(raw, 68, 65535),
  }),
  setting({
    key: "link-group",
    field: "linkGroup",
    argName: "n",
    description: `link group marking workload links, 1..4294967295 (default: ${DEFAULT_LINK_GROUP})`,
    parse: (raw) => integer(raw, 1, 4294967295),
  }),
  setting({
    key: "veth-queues",
    field: "vethQueues",
    argName: "n",
    description: `transmit and receive queues of each veth end, 1..4096 (default: ${DEFAULT_VETH_QUEUES})`,
    parse: (raw) => integer(raw, 1, 4096),
  }),
  setting({
    key: "warm-up",
    field: "warmUp",
    argName: "n",
    description: `attaches made in throwaway namespaces before serving, so the first real ones run warm (the namespaces go once the daemon is first idle), 0..1000 (default: ${DEFAULT_WARM_UP})`,
    parse: (raw) => integer(raw, 0, 1000),
  }),
  setting({
    key: "log-level",
    field: "logLevel",
    argName: "level",
    description: `${LOG_LEVELS.join("|")} (default: ${DEFAULT_LOG_LEVEL})`,
    parse: (raw) => logLevel(raw),
  }),
  setting({
    key: "detach-mode",
    field: "detachMode",
    argName: "mode",
    description: `${DETACH_MODES.join("|")}: deferred answers Detach before the kernel's slow veth delete, done in bulk (default: ${DEFAULT_DETACH_MODE})`,
    parse: (raw) => oneOf(raw, DETACH_MODES),
  }),
  setting({
    key: "metrics-address",
    field: "metricsAddress",
    argName: "host:port",
    description: "serve Prometheus metrics at http://HOST:PORT/metrics and the probes /healthz and /readyz, e.g. 127.0.0.1:9650 (default: off)",
    parse: (raw) => hostPort(raw),
  }),
  setting({
    key: "cni-state-file",
    field: "cniStateFile",
    argName: "path",
    description: "where the CNI plugin's attachments are recorded (default: SOCKET-NAME.cni-attachments.json beside the socket)",
    parse: (raw) => absolutePath(raw),
  }),
  setting({
    key: "cni-bin-dir",
    field: "cniBinDir",
    argName: "dir",
    description: "install the CNI plugin into this directory at start, e.g. /opt/cni/bin (with --cni-conf-dir)",
    parse: (raw) => absolutePath(raw),
  }),
  setting({
    key: "cni-conf-dir",
    field: "cniConfDir",
    argName: "dir",
    description: "write the CNI network configuration here once the pod prefixes are known, e.g. /etc/cni/net.d (with --cni-bin-dir)",
    parse: (raw) => absolutePath(raw),
  }),
  setting({
    key: "kubernetes",
    field: "kubernetes",
    argName: "",
    boolean: true,
    description: "take pod prefixes and the other nodes from the Kubernetes API (Node objects), with the pod's service-account credentials",
    parse: (raw) => bool(raw),
  }),
  setting({
    key: "kubeconfig",
    field: "kubeconfig",
    argName: "path",
    description: "kubeconfig for the Kubernetes API instead of in-cluster credentials (implies --kubernetes)",
    parse: (raw) => absolutePath(raw),
  }),
  setting({
    key: "node-name",
    field: "nodeName",
    argName: "name",
    description: "this node's name (default: $NODE_NAME, else the host name)",
    parse: (raw) => nodeName(raw),
  }),
  setting({
    key: "routing",
    field: "routing",
    argName: "mode",
    description: `${ROUTING_MODES.join("|")}: routes to other nodes' pods; auto is direct to nodes on a shared link, VXLAN to the others (default: ${DEFAULT_ROUTING})`,
    parse: (raw) => oneOf(raw, ROUTING_MODES),
  }),
  setting({
    key: "vxlan-vni",
    field: "vxlanVni",
    argName: "n",
    description: `VXLAN network identifier, 1..16777215 (default: ${DEFAULT_VXLAN_VNI})`,
    parse: (raw) => integer(raw, 1, 16777215),
  }),
  setting({
    key: "vxlan-port",
    field: "vxlanPort",
    argName: "port",
    description: `UDP port of the VXLAN device, 1..65535 (default: ${DEFAULT_VXLAN_PORT})`,
    parse: (raw) => integer(raw, 1, 65535),
  }),
  setting({
    key: "resync-interval",
    field: "resyncInterval",
    argName: "seconds",
    description: `seconds between full reconciles of the routes to other nodes, which repair what someone else changed, 1..86400 (default: ${DEFAULT_RESYNC_INTERVAL})`,
    parse: (raw) => integer(raw, 1, 86400),
  }),
  setting({
    key: "masquerade",
    field: "masquerade",
    argName: "bool",
    description: "true|false: pod traffic to destinations outside the cluster's pod prefixes leaves with the node's address (default: true)",
    parse: (raw) => bool(raw),
  }),
  setting({
    key: "cluster-cidr",
    field: "clusterCidrs",
    argName: "cidr",
    description: "a pod prefix of the cluster (all nodes'), repeatable: traffic to it keeps the pod's address; the cluster view's prefixes count too",
    parse: (raw) => cidrList(raw),
    repeatable: true,
  }),
  setting({
    key: "no-masquerade-cidr",
    field: "noMasqueradeCidrs",
    argName: "cidr",
    description: "a destination prefix never masqueraded, repeatable",
    parse: (raw) => cidrList(raw),
    repeatable: true,
  }),
  setting({
    key: "socket-group",
    field: "socketGroup",
    argName: "name-or-gid",
    description: "group given read/write access to the socket",
    parse: (raw, ctx) => group(raw, ctx.lookupGroup),
  }),
] as const;

const CONFIG_KEY = "config";
const FILE_KEYS = new Set<string>(SETTINGS.map((s) => s.key));

// ---------------------------------------------------------------------------
// Validators. Each returns the value or throws Invalid(reason).

/** Unix socket addresses hold at most 107 bytes of path (sun_path minus NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

function str(raw: Raw, what: string): string {
  if (typeof raw !== "string") throw new Invalid(`must be ${what}`);
  return raw;
}

function absolutePath(raw: Raw): string {
  const p = str(raw, "an absolute path");
  if (p === "" || !isAbsolute(p)) throw new Invalid("must be an absolute path");
  if (p.includes("\0")) throw new Invalid("must not contain a NUL byte");
  return p;
}

function socketPath(raw: Raw): string {
  const p = absolutePath(raw);
  if (p.endsWith("/")) throw new Invalid("must name a file, not a directory");
  const bytes = Buffer.byteLength(p);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new Invalid(`is ${bytes} bytes long; a unix socket path can have at most ${MAX_SOCKET_PATH_BYTES}`);
  }
  return p;
}

function integer(raw: Raw, min: number, max: number): number {
  const reason = `must be an integer between ${min} and ${max}`;
  let n: number;
  if (typeof raw === "number") n = raw;
  else if (typeof raw === "string" && /^[0-9]+$/.test(raw)) n = Number(raw);
  else throw new Invalid(reason);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new Invalid(reason);
  return n;
}

function hostPort(raw: Raw): { host: string; port: number } {
  const reason = "must be HOST:PORT with an IP address or localhost, e.g. 127.0.0.1:9650 or [::1]:9650";
  const m = typeof raw === "string" ? /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+|localhost)):([0-9]{1,5})$/.exec(raw) : null;
  if (!m) throw new Invalid(reason);
  const host = m[1] ?? m[2] ?? "";
  const port = Number(m[3]);
  if ((m[1] !== undefined && !isIPv6(host)) || (m[2] !== undefined && host !== "localhost" && !isIPv4(host)) || port < 1 || port > 65535) {
    throw new Invalid(reason);
  }
  return { host, port };
}

function oneOf<T extends string>(raw: Raw, allowed: readonly T[]): T {
  const found = allowed.find((a) => a === raw);
  if (found === undefined) throw new Invalid(`must be one of ${allowed.join(", ")}`);
  return found;
}

function bool(raw: Raw): boolean {
  if (raw === true || raw === "true" || raw === "1" || raw === "yes") return true;
  if (raw === false || raw === "false" || raw === "0" || raw === "no") return false;
  throw new Invalid("must be true or false");
}

/** Prefixes of either family (host bits must be zero, as the kernel's sets need). */
function cidrList(raw: Raw): string[] {
  const items = typeof raw === "string" ? [raw] : Array.isArray(raw) ? raw : undefined;
  if (items === undefined) throw new Invalid("must be a list of prefixes such as 10.0.0.0/8");
  return items.map((item) => {
    if (typeof item !== "string") throw new Invalid("must be a list of prefixes such as 10.0.0.0/8");
    const problem = checkCidrSyntax(item, item.includes(":") ? 6 : 4);
    if (problem !== undefined) throw new Invalid(`${JSON.stringify(item)} ${problem}`);
    try {
      parsePrefix(item);
    } catch (err) {
      throw new Invalid(`${JSON.stringify(item)}: ${(err as Error).message}`);
    }
    return item;
  });
}

/** A Kubernetes node name: a DNS subdomain (RFC 1123), as the API requires of Node objects. */
function nodeName(raw: Raw): string {
  const reason = "must be a node name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters";
  if (typeof raw !== "string" || raw.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(raw)) throw new Invalid(reason);
  return raw;
}

function logLevel(raw: Raw): LogLevel {
  const reason = `must be one of ${LOG_LEVELS.join(", ")}`;
  if (typeof raw !== "string") throw new Invalid(reason);
  const level = LOG_LEVELS.find((l) => l === raw);
  if (level === undefined) throw new Invalid(reason);
  return level;
}

/** Checks the syntax "ADDRESS/LENGTH" of a prefix of the given family. */
export function checkCidrSyntax(value: string, family: 4 | 6): string | undefined {
  const example = family === 4 ? "10.88.0.0/24" : "fd00:88::/64";
  const expected = `must be an IPv${family} prefix such as ${example}`;
  const parts = value.split("/");
  if (parts.length !== 2) return expected;
  const [addr, len] = parts as [string, string];
  // The codec's parser (node:net's syntax): isIPv6's large regular
  // expression took ~10 ms of CPU to compile at every start.
  const bytes = parseIp(addr);
  const v4 = bytes?.length === 4;
  const v6 = bytes?.length === 16 && !addr.includes("%");
  if (!v4 && !v6) return expected;
  if ((family === 4 && v6) || (family === 6 && v4)) {
    return `is an IPv${family === 4 ? 6 : 4} prefix; ${expected}`;
  }
  const maxLen = family === 4 ? 32 : 128;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(len) || Number(len) > maxLen) {
    return `prefix length must be an integer between 0 and ${maxLen}`;
  }
  return undefined;
}

function cidr(raw: Raw, family: 4 | 6): string {
  const example = family === 4 ? "10.88.0.0/24" : "fd00:88::/64";
  const value = str(raw, `an IPv${family} prefix such as ${example}`);
  const problem = checkCidrSyntax(value, family);
  if (problem !== undefined) throw new Invalid(problem);
  return value;
}

/** gid_t is 32 bits and (gid_t)-1 means "no change", so 4294967294 is the largest gid. */
const MAX_GID = 4294967294;

function group(raw: Raw, lookup: (name: string) => number | undefined): number {
  if (typeof raw === "number" || (typeof raw === "string" && /^[0-9]+$/.test(raw))) {
    try {
      return integer(raw, 0, MAX_GID);
    } catch {
      throw new Invalid(`must be a group name or a gid between 0 and ${MAX_GID}`);
    }
  }
  if (typeof raw !== "string" || !/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(raw)) {
    throw new Invalid(`must be a group name or a gid between 0 and ${MAX_GID}`);
  }
  const gid = lookup(raw);
  if (gid === undefined) throw new Invalid("no such group");
  return gid;
}

/** Finds a group in /etc/group, then through NSS (getent) for LDAP and friends. */
export function lookupSystemGroup(name: string): number | undefined {
  const fromLine = (line: string): number | undefined => {
    const [gname, , gid] = line.split(":");
    return gname === name && gid !== undefined && /^[0-9]+$/.test(gid) ? Number(gid) : undefined;
  };
  try {
    for (const line of readFileSync("/etc/group", "utf8").split("\n")) {
      const gid = fromLine(line);
      if (gid !== undefined) return gid;
    }
  } catch {
    // fall through to getent
  }
  try {
    const out = execFileSync("getent", ["group", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    return fromLine(out.trim());
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Parsing

const MAX_SHOWN_VALUE = 80;

function show(raw: unknown): string {
  const text = typeof raw === "number" ? String(raw) : (JSON.stringify(raw) ?? String(raw));
  return text.length > MAX_SHOWN_VALUE ? `${text.slice(0, MAX_SHOWN_VALUE)}…` : text;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

function envName(key: string): string {
  return ENV_PREFIX + key.toUpperCase().replace(/-/g, "_");
}

function kebab(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/_/g, "-");
}

/** An option that takes a value; one named --no-… is not commander's negation of another. */
function valueOption(key: string, argName = "x", description?: string): Option {
  const option = new Option(`--${key} <${argName}>`, description);
  option.negate = false;
  return option;
}

function buildCommand(): Command {
  const cmd = new Command("workloadnetd")
    .description("Workload networking daemon: serves the WorkloadNetworking gRPC API on a unix socket.")
    .allowExcessArguments(false)
    .allowUnknownOption(false)
    .exitOverride()
    .addOption(new Option(`--${CONFIG_KEY} <file>`, "JSON file with settings; flags and environment override it"));
  for (const s of SETTINGS) {
    const option = "boolean" in s ? new Option(`--${s.key}`, s.description) : valueOption(s.key, s.argName, s.description);
    if ("repeatable" in s) option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    cmd.addOption(option);
  }
  cmd.addHelpText(
    "after",
    [
      "",
      `Every setting can also be given as an environment variable ${ENV_PREFIX}<NAME>,`,
      `e.g. ${envName("log-level")}=debug, or in the --config file under its flag's name:`,
      '  {"ipv4-prefix": "10.88.0.0/24", "mtu": 1400}',
      "Precedence: flags, then environment, then the config file, then defaults.",
    ].join("\n"),
  );
  return cmd;
}

function readConfigFile(path: string, label: string, readFile: (p: string) => string): Record<string, unknown> {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new ConfigError(oneLine(`invalid ${label} ${show(path)}: cannot read it (${msg})`), { cause: err });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new ConfigError(oneLine(`invalid ${label} ${show(path)}: not valid JSON (${msg})`), { cause: err });
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError(`invalid ${label} ${show(path)}: must contain a JSON object`);
  }
  const obj = data as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (FILE_KEYS.has(key)) continue;
    const hint = FILE_KEYS.has(kebab(key)) ? ` (did you mean "${kebab(key)}"?)` : "";
    throw new ConfigError(
      `${path}: unknown key ${show(key)}${hint}; known keys: ${[...FILE_KEYS].join(", ")}`,
    );
  }
  return obj;
}

/**
 * Parses the daemon's command line (arguments only, without node and the
 * script: process.argv.slice(2)), environment and config file.
 * Throws ConfigError for bad input and HelpRequested for --help.
 */
export function parseConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  options: ParseConfigOptions = {},
): DaemonConfig {
  const ctx: Required<ParseConfigOptions> = {
    lookupGroup: options.lookupGroup ?? lookupSystemGroup,
    readFile: options.readFile ?? ((p) => readFileSync(p, "utf8")),
    hostname: options.hostname ?? hostname,
  };

  let helpText = "";
  const cmd = buildCommand().configureOutput({
    writeOut: (s) => (helpText += s),
    writeErr: (s) => (helpText += s),
    outputError: () => undefined,
  });
  try {
    cmd.parse([...argv], { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.help") {
        throw new HelpRequested(helpText);
      }
      throw new ConfigError(oneLine(err.message.replace(/^error: /, "")), { cause: err });
    }
    throw err;
  }
  const flags = cmd.opts<Record<string, string | string[] | true | undefined>>();
  const flagValue = (key: string): string | true | undefined => {
    const v = flags[valueOption(key).attributeName()];
    return Array.isArray(v) ? v.join(",") : v;
  };
  const flagValues = (key: string): string[] | undefined => {
    const v = flags[valueOption(key).attributeName()];
    return v === undefined || v === true ? undefined : Array.isArray(v) ? v : [v];
  };

  // Environment: empty means unset; unknown WORKLOADNETD_* names are typos.
  const envKeys = new Map<string, string>();
  for (const key of [CONFIG_KEY, ...FILE_KEYS]) envKeys.set(envName(key), key);
  const envValues = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined || value === "") continue;
    const key = envKeys.get(name);
    if (key === undefined) {
      throw new ConfigError(`unknown environment variable ${name}; known: ${[...envKeys.keys()].join(", ")}`);
    }
    envValues.set(key, value);
  }

  let configFile: string | undefined;
  let file: Record<string, unknown> = {};
  const configFlag = flagValue(CONFIG_KEY);
  const configEnv = envValues.get(CONFIG_KEY);
  if (configFlag !== undefined || configEnv !== undefined) {
    configFile = typeof configFlag === "string" ? configFlag : configEnv!;
    const label = configFlag !== undefined ? `--${CONFIG_KEY}` : envName(CONFIG_KEY);
    if (configFile === "") throw new ConfigError(`invalid ${label} "": must be a file name`);
    file = readConfigFile(configFile, label, ctx.readFile);
  }

  const config: DaemonConfig = {
    socketPath: DEFAULT_SOCKET_PATH,
    ipv4Prefix: undefined,
    ipv6Prefix: undefined,
    prefixFile: undefined,
    mtu: undefined,
    linkGroup: DEFAULT_LINK_GROUP,
    vethQueues: DEFAULT_VETH_QUEUES,
    warmUp: DEFAULT_WARM_UP,
    logLevel: DEFAULT_LOG_LEVEL,
    detachMode: DEFAULT_DETACH_MODE,
    metricsAddress: undefined,
    socketGroup: undefined,
    cniStateFile: undefined,
    cniBinDir: undefined,
    cniConfDir: undefined,
    kubernetes: false,
    kubeconfig: undefined,
    // A DaemonSet passes the node's name as $NODE_NAME (downward API); Kubernetes names nodes after the lower-cased host name.
    nodeName: env.NODE_NAME || ctx.hostname().toLowerCase(),
    routing: DEFAULT_ROUTING,
    vxlanVni: DEFAULT_VXLAN_VNI,
    vxlanPort: DEFAULT_VXLAN_PORT,
    resyncInterval: DEFAULT_RESYNC_INTERVAL,
    masquerade: true,
    clusterCidrs: [],
    noMasqueradeCidrs: [],
    configFile,
  };
  for (const s of SETTINGS) {
    let raw: Raw;
    let label: string;
    const fromFlag = flagValue(s.key);
    if (fromFlag !== undefined) {
      raw = "repeatable" in s ? (flagValues(s.key) ?? fromFlag) : fromFlag;
      label = fromFlag === true ? `invalid --${s.key}` : `invalid --${s.key} ${show(fromFlag)}`;
    } else if (envValues.has(s.key)) {
      raw = envValues.get(s.key)!;
      if ("repeatable" in s) raw = raw.split(",").map((v) => v.trim()).filter((v) => v !== "");
      label = `invalid ${envName(s.key)} ${show(raw)}`;
    } else if (Object.hasOwn(file, s.key)) {
      raw = file[s.key] as Raw;
      label = `${configFile}: invalid "${s.key}" ${show(raw)}`;
    } else {
      continue;
    }
    try {
      (config as unknown as Record<string, unknown>)[s.field] = s.parse(raw, ctx);
    } catch (err) {
      if (err instanceof Invalid) throw new ConfigError(oneLine(`${label}: ${err.message}`));
      throw err;
    }
  }
  // A kubeconfig is only ever read by the Kubernetes source.
  if (config.kubeconfig !== undefined) config.kubernetes = true;
  return config;
}
