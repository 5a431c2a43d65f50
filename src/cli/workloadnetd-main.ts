// workloadnetd: the workload networking daemon. Started through
// workloadnetd.cts (the bin), which sizes libuv's thread pool first.
import { pino } from "pino";
import { parsePrefix, type Prefixes } from "../ipam/prefix.js";
import { startDaemon } from "../daemon/daemon.js";
import { ConfigError, HelpRequested, parseConfig, type DaemonConfig } from "./config.js";

/** The oldest Node.js major the project supports (package.json "engines"). */
const MIN_NODE_MAJOR = 24;

function fail(message: string): never {
  process.stderr.write(`workloadnetd: ${message}\n`);
  process.exit(2);
}

/** Full prefix parsing (host bits, ranges) beyond the config's syntax check. */
function staticPrefixes(config: DaemonConfig): Prefixes {
  const out: Prefixes = {};
  for (const [flag, value, slot] of [["--ipv4-prefix", config.ipv4Prefix, "v4"], ["--ipv6-prefix", config.ipv6Prefix, "v6"]] as const) {
    if (value === undefined) continue;
    try {
      out[slot] = parsePrefix(value);
    } catch (err) {
      fail(`invalid ${flag} "${value}": ${(err as Error).message}`);
    }
  }
  return out;
}

async function main(): Promise<void> {
  let config: DaemonConfig;
  try {
    config = parseConfig(process.argv.slice(2));
  } catch (err) {
    if (err instanceof HelpRequested) {
      process.stdout.write(err.text);
      process.exit(0);
    }
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const prefixes = staticPrefixes(config);
  if (config.prefixFile !== undefined && (prefixes.v4 || prefixes.v6)) {
    fail(`--prefix-file "${config.prefixFile}" cannot be combined with --ipv4-prefix/--ipv6-prefix: choose one source of pod prefixes`);
  }
  if ((config.cniBinDir === undefined) !== (config.cniConfDir === undefined)) {
    fail("--cni-bin-dir and --cni-conf-dir go together: the plugin and its network configuration are installed as one");
  }
  if (config.kubernetes && (config.prefixFile !== undefined || prefixes.v4 || prefixes.v6)) {
    fail(`--kubernetes${config.kubeconfig !== undefined ? ` (from --kubeconfig)` : ""} cannot be combined with --prefix-file/--ipv4-prefix/--ipv6-prefix: the Kubernetes API gives the pod prefixes`);
  }
  // Each line is written as it is logged, on this thread, as Go's log package
  // does: an asynchronous destination handed every line to libuv's thread
  // pool, and the worker it woke took the CPU in the middle of the call being
  // logged (docs/performance-cold.md).
  const log = pino({ level: config.logLevel, base: { service: "workloadnetd" } }, pino.destination({ fd: 1, sync: true }));
  log.info({ node: process.version, execPath: process.execPath }, "workloadnetd starting");
  if (Number(process.versions.node.split(".")[0]) < MIN_NODE_MAJOR) {
    log.warn({ node: process.version }, `Node.js ${process.version} is older than ${MIN_NODE_MAJOR}, the oldest this daemon supports: start it through bin/workloadnetd, which uses the Node.js the install step brings`);
  }

  const daemon = await startDaemon({
    socketPath: config.socketPath,
    prefixes,
    ...(config.mtu !== undefined ? { mtu: config.mtu } : {}),
    routing: { mode: config.routing, vxlanVni: config.vxlanVni, vxlanPort: config.vxlanPort },
    routeResyncMs: config.resyncInterval * 1000,
    nodeName: config.nodeName,
    ...(config.kubernetes ? { kubernetes: { nodeName: config.nodeName, ...(config.kubeconfig !== undefined ? { kubeconfig: config.kubeconfig } : {}) } } : {}),
    vethQueues: config.vethQueues,
    warmUp: config.warmUp,
    linkGroup: config.linkGroup,
    detachMode: config.detachMode,
    egress: { masquerade: config.masquerade, clusterCidrs: config.clusterCidrs, noMasqueradeCidrs: config.noMasqueradeCidrs },
    log,
    ...(config.metricsAddress !== undefined ? { metricsAddress: config.metricsAddress } : {}),
    ...(config.prefixFile !== undefined ? { prefixFile: config.prefixFile } : {}),
    ...(config.socketGroup !== undefined ? { socketGroup: config.socketGroup } : {}),
    ...(config.cniStateFile !== undefined ? { cniStateFile: config.cniStateFile } : {}),
    ...(config.cniBinDir !== undefined && config.cniConfDir !== undefined ? { cniInstall: { binDir: config.cniBinDir, confDir: config.cniConfDir } } : {}),
  }).catch((err: unknown) => {
    log.fatal({ err: (err as Error).message }, "workloadnetd failed to start");
    process.exit(1);
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down: finishing in-flight calls");
    daemon.close().then(
      () => {
        log.info("stopped");
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err: (err as Error).message }, "error during shutdown");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

// Loaded into a startup snapshot (workloadnetd-snapshot.cts): main runs once the
// snapshot is deserialised, not while it is built.
const deferMain = (globalThis as Record<symbol, unknown>)[Symbol.for("workloadnet.snapshot.main")];
if (typeof deferMain === "function") deferMain(main);
else void main();
