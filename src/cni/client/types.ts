// The go-cni shapes (github.com/containerd/go-cni), in TypeScript: what a
// containerd-style caller gets back. IPs are text ("10.88.0.2", "fd00:88::2").

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: string;
  hostIP?: string;
}

/** Ingress/egress rate (bits per second) and burst (bits) limits. */
export interface BandWidth {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

export interface DNS {
  servers?: string[];
  searches?: string[];
  options?: string[];
}

export interface IPConfig {
  ip: string;
  gateway: string;
}

/** One interface of the result, keyed by its name in Result.interfaces. */
export interface Config {
  ipConfigs: IPConfig[];
  mac: string;
  /** The namespace path for interfaces inside the workload; "" for host-side ones. */
  sandbox: string;
}

export interface Route {
  dst: string;
  gw: string;
}

/** A namespace option that was accepted but not acted on. */
export interface Unsupported {
  /** The option: "portMappings", "bandwidth", "dns", or a capability name. */
  option: string;
  value: unknown;
  reason: string;
}

export interface Result {
  interfaces: Record<string, Config>;
  dns: DNS[];
  routes: Route[];
  /** Options the daemon cannot honour yet; each was also logged as a warning. Empty when none. */
  unsupported: Unsupported[];
}

/** What getConfig() reports: go-cni's ConfigResult, for the one "network" the daemon provides. */
export interface ConfigResult {
  pluginDirs: string[];
  pluginConfDir: string;
  pluginMaxConfNum: number;
  prefix: string;
  networks: { ifName: string; config: { name: string; cniVersion: string; source: string } }[];
  /** Load options accepted for compatibility that have no effect here (no CNI config files are read). */
  ignoredOptions: string[];
}

/** The go-cni CNI interface. */
export interface CNI {
  /** Sets up the network of the namespace at `path` for container `id`. */
  setup(id: string, path: string, ...opts: NamespaceOpt[]): Promise<Result>;
  /** Same as setup: there is one network, so serial and parallel are the same. */
  setupSerially(id: string, path: string, ...opts: NamespaceOpt[]): Promise<Result>;
  /** Tears the network down; succeeds when it is already gone. */
  remove(id: string, path: string, ...opts: NamespaceOpt[]): Promise<void>;
  /** Verifies the network is as set up (interface, addresses, routes on both sides). */
  check(id: string, path: string, ...opts: NamespaceOpt[]): Promise<void>;
  /** Applies options; there are no CNI config files to load. */
  load(...opts: Opt[]): Promise<void>;
  /** Resolves when the daemon can set up networks; rejects (UNAVAILABLE) otherwise. */
  status(): Promise<void>;
  getConfig(): ConfigResult;
  /** Closes the connection to the daemon. */
  close(): void;
}

/** What namespace options set; see options.ts. */
export interface Namespace {
  labels: Record<string, string>;
  args: Record<string, string>;
  capabilities: Record<string, unknown>;
  portMappings: PortMapping[];
  bandwidth: BandWidth | undefined;
  dns: DNS | undefined;
  cgroupPath: string;
  signal: AbortSignal | undefined;
  timeoutMs: number | undefined;
}

export type NamespaceOpt = (ns: Namespace) => void;

export interface ClientSettings {
  socketPath: string;
  /** Interface name inside the namespace = prefix + "0" (go-cni's default "eth"). */
  interfacePrefix: string;
  pluginDirs: string[];
  pluginConfDir: string;
  pluginMaxConfNum: number;
  /** Load options that were given but have no effect. */
  ignored: string[];
  logger: ClientLogger;
}

export type Opt = (s: ClientSettings) => void;

/** Where warnings go; pino's logger fits. */
export interface ClientLogger {
  warn(fields: Record<string, unknown>, message: string): void;
}
