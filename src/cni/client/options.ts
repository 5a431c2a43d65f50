// go-cni's options. Namespace options describe one setup/remove/check call;
// Opts configure the client (go-cni's New/Load options).
import type { BandWidth, ClientLogger, DNS, NamespaceOpt, Opt, PortMapping } from "./types.js";

// ---- namespace options --------------------------------------------------------

/** Labels; K8S_POD_UID names the workload (as the plugin does with CNI_ARGS). */
export const withLabels = (labels: Record<string, string>): NamespaceOpt => (ns) => {
  ns.labels = { ...ns.labels, ...labels };
};

/** One CNI_ARGS-style argument; K8S_POD_UID counts as with withLabels. */
export const withArgs = (key: string, value: string): NamespaceOpt => (ns) => {
  ns.args = { ...ns.args, [key]: value };
};

/** A runtime capability by name, e.g. "io.kubernetes.cri.pod-annotations". */
export const withCapability = (name: string, capability: unknown): NamespaceOpt => (ns) => {
  ns.capabilities = { ...ns.capabilities, [name]: capability };
};

export const withCapabilityPortMap = (portMappings: PortMapping[]): NamespaceOpt => (ns) => {
  ns.portMappings = [...portMappings];
};

export const withCapabilityBandWidth = (bandwidth: BandWidth): NamespaceOpt => (ns) => {
  ns.bandwidth = { ...bandwidth };
};

export const withCapabilityDNS = (dns: DNS): NamespaceOpt => (ns) => {
  ns.dns = { ...dns };
};

export const withCapabilityCgroupPath = (cgroupPath: string): NamespaceOpt => (ns) => {
  ns.cgroupPath = cgroupPath;
};

/** Cancels the call when the signal fires (go-cni's context). */
export const withSignal = (signal: AbortSignal): NamespaceOpt => (ns) => {
  ns.signal = signal;
};

/** Gives the call a deadline. */
export const withTimeout = (timeoutMs: number): NamespaceOpt => (ns) => {
  ns.timeoutMs = timeoutMs;
};

// ---- client options -----------------------------------------------------------

/** The daemon's unix socket (default /run/workloadnet/workloadnet.sock). */
export const withSocketPath = (socketPath: string): Opt => (s) => {
  s.socketPath = socketPath;
};

/** Interface name prefix: the interface is prefix + "0" (default "eth" → eth0). */
export const withInterfacePrefix = (prefix: string): Opt => (s) => {
  s.interfacePrefix = prefix;
};

export const withLogger = (logger: ClientLogger): Opt => (s) => {
  s.logger = logger;
};

export const withPluginDir = (dirs: string[]): Opt => (s) => {
  s.pluginDirs = [...dirs];
};

export const withPluginConfDir = (dir: string): Opt => (s) => {
  s.pluginConfDir = dir;
};

export const withPluginMaxConfNum = (max: number): Opt => (s) => {
  s.pluginMaxConfNum = max;
};

const ignoredOpt =
  (name: string): Opt =>
  (s) => {
    if (!s.ignored.includes(name)) s.ignored.push(name);
  };

// Accepted for go-cni compatibility; the daemon has no CNI config files, so
// they have no effect. getConfig().ignoredOptions lists those that were given.
export const withConf = (_bytes: Uint8Array | string): Opt => ignoredOpt("withConf");
export const withConfFile = (_fileName: string): Opt => ignoredOpt("withConfFile");
export const withConfIndex = (_bytes: Uint8Array | string, _index: number): Opt => ignoredOpt("withConfIndex");
export const withConfListBytes = (_bytes: Uint8Array | string): Opt => ignoredOpt("withConfListBytes");
export const withConfListFile = (_fileName: string): Opt => ignoredOpt("withConfListFile");
export const withMinNetworkCount = (_count: number): Opt => ignoredOpt("withMinNetworkCount");
export const withDefaultConf: Opt = ignoredOpt("withDefaultConf");
export const withLoNetwork: Opt = ignoredOpt("withLoNetwork");
