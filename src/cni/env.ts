// The CNI_* variables the runtime set for the plugin: which each verb needs,
// and the spec's rules for their values. Every problem is error 4 naming the
// variable.
import { ServiceError } from "../service/errors.js";
import { validateIfName, validateWorkloadId } from "../service/validate.js";
import { CniCode, CniError } from "./errors.js";
import { COMMANDS, type CniCommand } from "./versions.js";

export interface CniEnv {
  command: CniCommand;
  /** Set for ADD, DEL and CHECK. */
  containerId: string;
  /** Set for ADD and CHECK; may be empty for DEL. */
  netns: string;
  /** Set for ADD, DEL and CHECK. */
  ifName: string;
  /** CNI_ARGS, split into pairs. */
  args: Map<string, string>;
}

const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME"],
  STATUS: [],
  VERSION: [],
  GC: [],
};

/** The spec's container id rule (v1.1). */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const invalid = (message: string): CniError => new CniError(CniCode.InvalidEnvironment, message);

export function parseCommand(env: Map<string, string>): CniCommand {
  const raw = env.get("CNI_COMMAND");
  if (raw === undefined || raw === "") throw invalid("required environment variable CNI_COMMAND is missing");
  const command = COMMANDS.find((c) => c === raw);
  if (command === undefined) throw invalid(`CNI_COMMAND ${JSON.stringify(raw.slice(0, 40))} is not one of ${COMMANDS.join(", ")}`);
  return command;
}

export function parseEnv(env: Map<string, string>): CniEnv {
  const command = parseCommand(env);
  const missing = REQUIRED[command].filter((k) => !env.get(k));
  if (missing.length > 0) throw invalid(`required environment variable${missing.length > 1 ? "s" : ""} ${missing.join(", ")} missing for ${command}`);

  const containerId = env.get("CNI_CONTAINERID") ?? "";
  const netns = env.get("CNI_NETNS") ?? "";
  const ifName = env.get("CNI_IFNAME") ?? "";
  if (containerId !== "") {
    if (!CONTAINER_ID.test(containerId)) {
      throw invalid(`CNI_CONTAINERID ${JSON.stringify(containerId.slice(0, 80))} must start with a letter or digit and contain only letters, digits, '_', '.' and '-'`);
    }
    rethrowAs("CNI_CONTAINERID", () => validateWorkloadId(containerId));
  }
  if (netns !== "" && !netns.startsWith("/")) throw invalid(`CNI_NETNS ${JSON.stringify(netns.slice(0, 200))} must be an absolute path`);
  if (ifName !== "") rethrowAs("CNI_IFNAME", () => validateIfName(ifName));
  return { command, containerId, netns, ifName, args: parseCniArgs(env.get("CNI_ARGS") ?? "") };
}

/** "K1=V1;K2=V2" → map; an empty string is no arguments. */
export function parseCniArgs(raw: string): Map<string, string> {
  const args = new Map<string, string>();
  if (raw === "") return args;
  for (const pair of raw.split(";")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw invalid(`CNI_ARGS: ${JSON.stringify(pair.slice(0, 80))} is not KEY=VALUE`);
    args.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return args;
}

/**
 * The workload id for a CNI attachment: the pod's UID when the runtime passes
 * K8S_POD_UID (as kubelet-driven runtimes do; the gRPC client uses the same
 * id, so both paths agree), the container id otherwise.
 */
export function workloadIdFor(containerId: string, args: Map<string, string>): string {
  const podUid = args.get("K8S_POD_UID");
  if (podUid === undefined || podUid === "") return containerId;
  rethrowAs("CNI_ARGS K8S_POD_UID", () => validateWorkloadId(podUid));
  return podUid;
}

/** Runs a service validator and rewords its message for the CNI variable it checked. */
function rethrowAs(variable: string, check: () => void): void {
  try {
    check();
  } catch (err) {
    if (err instanceof ServiceError) {
      const reason = err.message.replace(/^(workload_id|netns\.if_name) /, "");
      throw invalid(`${variable}: ${reason}`);
    }
    throw err;
  }
}
