// A go-cni-shaped client for workloadnetd: what containerd's CRI calls
// (Setup/Remove/Check/Status…), done with the daemon's gRPC API over its unix
// socket instead of CNI plugin binaries.
//
// The workload id is the K8S_POD_UID label (or argument) when given, the
// container id otherwise: the same rule as the CNI plugin, so a pod attached
// one way can be removed the other.
import { Code, ConnectError, type CallOptions, type Client } from "@connectrpc/connect";
import { connectDaemon, type DaemonClient } from "../../client/daemon-client.js";
import type { WorkloadNetworking } from "../../gen/workload_pb.js";
import { bufferToAddress } from "../../ipam/address.js";
import { FIRST_HOP_V4, FIRST_HOP_V6 } from "../../service/constants.js";
import type { CNI, ClientSettings, ConfigResult, Namespace, NamespaceOpt, Opt, Result, Unsupported } from "./types.js";

export const DEFAULT_SOCKET_PATH = "/run/workloadnet/workloadnet.sock";
/** Capabilities that need nothing from the daemon (containerd passes them on every call). */
const NOT_NEEDED_CAPABILITIES = new Set(["io.kubernetes.cri.pod-annotations"]);

/** A failed call: the gRPC status code and the daemon's message, with what was being done. */
export class CniClientError extends Error {
  readonly code: Code;
  constructor(what: string, cause: ConnectError) {
    super(`${what}: ${Code[cause.code] ?? cause.code}: ${cause.rawMessage}`, { cause });
    this.name = "CniClientError";
    this.code = cause.code;
  }
}

/** go-cni's cni.New: a client configured by opts (socket path, interface prefix, logger). */
export function newCni(...opts: Opt[]): CNI {
  return new WorkloadnetCni(opts);
}

class WorkloadnetCni implements CNI {
  private readonly settings: ClientSettings = {
    socketPath: DEFAULT_SOCKET_PATH,
    interfacePrefix: "eth",
    pluginDirs: [],
    pluginConfDir: "",
    pluginMaxConfNum: 0,
    ignored: [],
    logger: { warn: (fields, message) => process.emitWarning(`${message} ${JSON.stringify(fields)}`, { code: "WORKLOADNET_CNI_UNSUPPORTED" }) },
  };
  private connection: (DaemonClient & { socketPath: string }) | undefined;

  constructor(opts: Opt[]) {
    for (const opt of opts) opt(this.settings);
  }

  async setup(id: string, path: string, ...opts: NamespaceOpt[]): Promise<Result> {
    const ns = namespaceOf(opts);
    const workloadId = workloadIdOf(id, ns);
    const ifName = this.ifName();
    const unsupported = this.unsupported(ns, workloadId);
    // Published by the daemon (its nftables table); checked there (INVALID_ARGUMENT, FAILED_PRECONDITION for a held port).
    const portMappings = ns.portMappings.map((m) => ({ hostPort: m.hostPort, containerPort: m.containerPort, protocol: m.protocol, hostIp: m.hostIP ?? "" }));
    const res = await this.call("while requesting workload network attachment", ns, (c, o) =>
      c.attach({ workloadId, netns: { netnsPath: path, ifName }, portMappings }, o),
    );
    const ips = res.ip.map((b) => bufferToAddress(b));
    const result: Result = {
      interfaces: {
        [ifName]: { ipConfigs: ips.map((ip) => ({ ip, gateway: ip.includes(":") ? FIRST_HOP_V6 : FIRST_HOP_V4 })), mac: res.mac, sandbox: path },
      },
      dns: [],
      routes: [
        ...(ips.some((ip) => !ip.includes(":")) ? [{ dst: "0.0.0.0/0", gw: FIRST_HOP_V4 }] : []),
        ...(ips.some((ip) => ip.includes(":")) ? [{ dst: "::/0", gw: FIRST_HOP_V6 }] : []),
      ],
      unsupported,
    };
    if (res.hostIfName) result.interfaces[res.hostIfName] = { ipConfigs: [], mac: res.hostMac, sandbox: "" };
    return result;
  }

  setupSerially(id: string, path: string, ...opts: NamespaceOpt[]): Promise<Result> {
    return this.setup(id, path, ...opts);
  }

  async remove(id: string, path: string, ...opts: NamespaceOpt[]): Promise<void> {
    const ns = namespaceOf(opts);
    const workloadId = workloadIdOf(id, ns);
    await this.call("while removing workload network attachment", ns, (c, o) =>
      c.detach({ workloadId, ...(path ? { netns: { netnsPath: path, ifName: this.ifName() } } : {}) }, o),
    );
  }

  async check(id: string, path: string, ...opts: NamespaceOpt[]): Promise<void> {
    const ns = namespaceOf(opts);
    const workloadId = workloadIdOf(id, ns);
    await this.call("while checking workload network attachment", ns, (c, o) => c.check({ workloadId, netns: { netnsPath: path, ifName: this.ifName() } }, o));
  }

  async load(...opts: Opt[]): Promise<void> {
    const before = this.settings.socketPath;
    for (const opt of opts) opt(this.settings);
    if (this.settings.socketPath !== before) this.close();
  }

  async status(): Promise<void> {
    await this.call("while checking workload network status", namespaceOf([]), (c, o) => c.status({}, o));
  }

  getConfig(): ConfigResult {
    const s = this.settings;
    return {
      pluginDirs: [...s.pluginDirs],
      pluginConfDir: s.pluginConfDir,
      pluginMaxConfNum: s.pluginMaxConfNum,
      prefix: s.interfacePrefix,
      networks: [{ ifName: this.ifName(), config: { name: "workloadnet", cniVersion: "1.1.0", source: `workloadnetd at ${s.socketPath}` } }],
      ignoredOptions: [...s.ignored],
    };
  }

  close(): void {
    this.connection?.close();
    this.connection = undefined;
  }

  private ifName(): string {
    return `${this.settings.interfacePrefix}0`;
  }

  /** Options the daemon cannot act on: listed in the result and logged, never silently dropped. */
  private unsupported(ns: Namespace, workloadId: string): Unsupported[] {
    const out: Unsupported[] = [];
    const bw = ns.bandwidth;
    if (bw && [bw.ingressRate, bw.ingressBurst, bw.egressRate, bw.egressBurst].some((v) => (v ?? 0) > 0)) {
      out.push({ option: "bandwidth", value: bw, reason: "workloadnetd does not shape traffic yet" });
    }
    const dns = ns.dns;
    if (dns && [dns.servers, dns.searches, dns.options].some((l) => (l?.length ?? 0) > 0)) {
      out.push({ option: "dns", value: dns, reason: "workloadnetd does not pass DNS settings into the result; the runtime's own resolv.conf handling applies" });
    }
    for (const [name, value] of Object.entries(ns.capabilities)) {
      if (!NOT_NEEDED_CAPABILITIES.has(name)) out.push({ option: name, value, reason: `workloadnetd does not know the capability ${name}` });
    }
    for (const u of out) this.settings.logger.warn({ workloadId, option: u.option, value: u.value }, `workloadnet: option not honoured: ${u.reason}`);
    return out;
  }

  private async call<T>(what: string, ns: Namespace, fn: (c: Client<typeof WorkloadNetworking>, o: CallOptions) => Promise<T>): Promise<T> {
    const options: CallOptions = {
      ...(ns.signal ? { signal: ns.signal } : {}),
      ...(ns.timeoutMs !== undefined ? { timeoutMs: ns.timeoutMs } : {}),
    };
    try {
      return await fn(this.client(), options);
    } catch (err) {
      throw new CniClientError(what, this.unreachable(ConnectError.from(err)));
    }
  }

  /** Connect reports a socket that cannot be connected as INTERNAL; gRPC clients say UNAVAILABLE. */
  private unreachable(e: ConnectError): ConnectError {
    const errno = (e.cause as NodeJS.ErrnoException | undefined)?.code;
    const connectFailed = errno !== undefined && (e.cause as NodeJS.ErrnoException).syscall === "connect";
    if (e.code !== Code.Internal || !connectFailed) return e;
    return new ConnectError(`cannot reach workloadnetd at ${this.settings.socketPath}: ${(e.cause as Error).message}`, Code.Unavailable, undefined, undefined, e);
  }

  private client(): Client<typeof WorkloadNetworking> {
    const socketPath = this.settings.socketPath;
    if (this.connection?.socketPath !== socketPath) {
      this.close();
      this.connection = { ...connectDaemon(socketPath), socketPath };
    }
    return this.connection.client;
  }
}

function namespaceOf(opts: NamespaceOpt[]): Namespace {
  const ns: Namespace = { labels: {}, args: {}, capabilities: {}, portMappings: [], bandwidth: undefined, dns: undefined, cgroupPath: "", signal: undefined, timeoutMs: undefined };
  for (const opt of opts) opt(ns);
  return ns;
}

/** K8S_POD_UID from the arguments or labels, else the container id. */
function workloadIdOf(id: string, ns: Namespace): string {
  return ns.args.K8S_POD_UID || ns.labels.K8S_POD_UID || id;
}
