// The CNI plugin's logic, run inside the daemon for each forwarded invocation:
// parse the variables and the network configuration, check the version, call
// the service, and answer in the spec's JSON (a result or an error object).
//
//   ADD     → attach; the result in the requested version's format
//   DEL     → detach; idempotent (gone, never made, or no CNI_NETNS: success)
//   CHECK   → service check, and prevResult's addresses must be the attachment's
//   STATUS  → service status (error 50 while the node has no pod prefixes)
//   VERSION → the versions we speak
//   GC      → detach this network's attachments not in cni.dev/valid-attachments
import { isIPv4 } from "node:net";
import type { Logger } from "pino";
import { canonicalAddress } from "../ipam/address.js";
import { ServiceError, StatusCode } from "../service/errors.js";
import type { WorkloadService } from "../service/types.js";
import type { CniAttachment, CniAttachmentStore } from "./attachments.js";
import { configVersion, decodeConfig, parseConfig, type NetworkConfig } from "./config.js";
import { parseCommand, parseEnv, workloadIdFor, type CniEnv } from "./env.js";
import { CniCode, CniError, toCniError } from "./errors.js";
import { formatResult, prevResultAddresses } from "./result.js";
import { commandAllowed, introducedIn, isSupportedVersion, LATEST_VERSION, SUPPORTED_VERSIONS, type CniCommand, type CniVersion } from "./versions.js";
import type { CniReply, CniRequest } from "./wire.js";

export interface CniPluginDeps {
  service: WorkloadService;
  store: CniAttachmentStore;
  log: Logger;
}

interface Outcome {
  /** JSON to print on stdout, if any. */
  stdout?: unknown;
  /** Lines for the runtime's log (the plugin's stderr). */
  warnings?: string[];
}

export class CniPlugin {
  private readonly log: Logger;

  constructor(private readonly deps: CniPluginDeps) {
    this.log = deps.log.child({ component: "cni" });
  }

  /** Runs one invocation; never throws. */
  async run(req: CniRequest, signal?: AbortSignal): Promise<CniReply> {
    const started = performance.now();
    let command: CniCommand | undefined;
    // Errors are answered in the requested version when we speak it.
    let raw: Record<string, unknown> | CniError;
    try {
      raw = decodeConfig(req.stdin);
    } catch (err) {
      raw = err as CniError;
    }
    let version: CniVersion = !(raw instanceof CniError) && isSupportedVersion(raw.cniVersion) ? raw.cniVersion : LATEST_VERSION;
    const fields: Record<string, unknown> = {};
    try {
      command = parseCommand(req.env);
      if (command === "VERSION") return reply(0, { cniVersion: version, supportedVersions: SUPPORTED_VERSIONS });
      if (raw instanceof CniError) throw raw;
      version = configVersion(raw);
      if (!commandAllowed(command, version)) {
        throw new CniError(CniCode.IncompatibleVersion, `incompatible CNI version: ${command} needs cniVersion ${introducedIn(command)} or later, the config has ${version}`);
      }
      const env = parseEnv(req.env);
      const config = parseConfig(raw, version, command === "GC", command === "ADD");
      Object.assign(fields, { network: config.name, containerId: env.containerId || undefined, ifName: env.ifName || undefined });
      const outcome = await this.dispatch(command, env, config, signal);
      this.log.info({ command, cniVersion: version, ...fields, durationMs: ms(started), outcome: "ok" }, `CNI ${command} ok`);
      for (const w of outcome.warnings ?? []) this.log.warn({ command, ...fields }, w);
      return reply(0, outcome.stdout, outcome.warnings);
    } catch (err) {
      const e = toCniError(err, command ? `CNI ${command}` : "CNI");
      const level = e.code === CniCode.Internal ? "error" : "warn";
      this.log[level]({ command, cniVersion: version, ...fields, durationMs: ms(started), code: e.code, err: e.message, ...(e.code === CniCode.Internal ? { cause: String((e.cause as Error | undefined)?.stack ?? e.cause) } : {}) }, `CNI ${command ?? "call"} failed`);
      return reply(1, e.toJson(version));
    }
  }

  private dispatch(command: CniCommand, env: CniEnv, config: NetworkConfig, signal?: AbortSignal): Promise<Outcome> {
    switch (command) {
      case "ADD":
        return this.add(env, config, signal);
      case "DEL":
        return this.del(env, config);
      case "CHECK":
        return this.check(env, config);
      case "STATUS":
        return this.status();
      case "GC":
        return this.gc(config);
      case "VERSION":
        throw new Error("VERSION is answered before dispatch");
    }
  }

  private async add(env: CniEnv, config: NetworkConfig, signal?: AbortSignal): Promise<Outcome> {
    const workloadId = workloadIdFor(env.containerId, env.args);
    let out;
    try {
      const ports = config.portMappings.length > 0 ? { portMappings: config.portMappings } : {};
      out = await this.deps.service.attach({ workloadId, netns: { netnsPath: env.netns, ifName: env.ifName }, ...ports }, signal);
    } catch (err) {
      if (err instanceof ServiceError && err.code === StatusCode.AlreadyExists) throw this.alreadyAttached(env, config, workloadId, err);
      throw err;
    }
    this.deps.store.put({ network: config.name, containerId: env.containerId, ifName: env.ifName, workloadId, netns: env.netns });
    return {
      stdout: formatResult(config.cniVersion, { ...out, podIfName: env.ifName, netns: env.netns }),
    };
  }

  private alreadyAttached(env: CniEnv, config: NetworkConfig, workloadId: string, err: ServiceError): CniError {
    const mine = this.deps.store.find(config.name, env.containerId, env.ifName);
    if (mine !== undefined && mine.workloadId === workloadId) {
      return new CniError(CniCode.TryAgainLater, `CNI ADD: container ${env.containerId} already has ${env.ifName} on network ${config.name} (workload ${workloadId}); DEL it before adding it again`);
    }
    const holders = this.deps.store.ofWorkload(workloadId).map((a) => `container ${a.containerId} on network ${a.network}`);
    const by = holders.length > 0 ? holders.join(", ") : "another client of workloadnetd";
    return new CniError(CniCode.TryAgainLater, `CNI ADD: workload ${workloadId} is already attached by ${by}; try again once that attachment is deleted`, err.message);
  }

  private async del(env: CniEnv, config: NetworkConfig): Promise<Outcome> {
    const mine = this.deps.store.find(config.name, env.containerId, env.ifName);
    const workloadId = mine?.workloadId ?? workloadIdFor(env.containerId, env.args);
    const others = this.deps.store.ofWorkload(workloadId).filter((a) => a !== mine && !sameKey(a, config.name, env));
    if (mine === undefined && others.length > 0) {
      // The pod's workload belongs to another container's attachment (a newer
      // sandbox of the same pod): this container has nothing left to delete.
      const holder = others[0] as CniAttachment;
      return { warnings: [`DEL ${env.containerId}: nothing to do; workload ${workloadId} belongs to container ${holder.containerId} on network ${holder.network}`] };
    }
    const warnings: string[] = [];
    try {
      await this.deps.service.detach({ workloadId, netns: env.netns ? { netnsPath: env.netns, ifName: env.ifName } : undefined });
    } catch (err) {
      // The service already freed what was ours; another owner's interface
      // with our old name is left alone. Nothing a retried DEL could change.
      if (!(err instanceof ServiceError && err.code === StatusCode.FailedPrecondition)) throw err;
      warnings.push(`DEL ${env.containerId}: ${err.message}`);
    }
    if (mine !== undefined) this.deps.store.remove(mine);
    if (others.length === 0) this.deps.store.removeWorkload(workloadId);
    return { warnings };
  }

  private async check(env: CniEnv, config: NetworkConfig): Promise<Outcome> {
    const expected = prevResultAddresses(config.prevResult).map(canonicalAddress);
    const mine = this.deps.store.find(config.name, env.containerId, env.ifName);
    const workloadId = mine?.workloadId ?? workloadIdFor(env.containerId, env.args);
    if (mine === undefined) {
      const holder = this.deps.store.ofWorkload(workloadId)[0];
      if (holder !== undefined) {
        throw new CniError(CniCode.UnknownContainer, `CNI CHECK: container ${env.containerId} has no ${env.ifName} on network ${config.name}; workload ${workloadId} is attached for container ${holder.containerId}`);
      }
    }
    await this.deps.service.check({ workloadId, netns: { netnsPath: env.netns, ifName: env.ifName } });
    const attached = (await this.deps.service.list()).find((a) => a.workloadId === workloadId);
    if (attached === undefined) throw new CniError(CniCode.UnknownContainer, `CNI CHECK: workload ${workloadId} is not attached`);
    const actual = attached.addresses.map(canonicalAddress);
    const extra = expected.filter((a) => !actual.includes(a));
    const lacking = actual.filter((a) => !expected.includes(a));
    if (extra.length > 0 || lacking.length > 0) {
      const parts = [
        ...extra.map((a) => `prevResult has ${a}, which is not the workload's`),
        ...lacking.map((a) => `the workload's ${isIPv4(a) ? "IPv4" : "IPv6"} address ${a} is missing from prevResult`),
      ];
      throw new CniError(CniCode.AttachmentMismatch, `CNI CHECK: ${parts.join("; ")}`, `workload ${workloadId} has ${actual.join(", ") || "no addresses"}`);
    }
    return {};
  }

  private async status(): Promise<Outcome> {
    try {
      await this.deps.service.status();
    } catch (err) {
      if (err instanceof ServiceError && err.code === StatusCode.Unavailable) {
        throw new CniError(CniCode.PluginNotAvailable, `plugin not available: ${err.message}`);
      }
      throw err;
    }
    return {};
  }

  private async gc(config: NetworkConfig): Promise<Outcome> {
    const valid = new Set((config.validAttachments ?? []).map((v) => keyOf(config.name, v.containerId, v.ifName)));
    const attached = new Set((await this.deps.service.list()).map((a) => a.workloadId));
    const records = this.deps.store.ofNetwork(config.name);
    const stale = records.filter((a) => !valid.has(keyOf(a.network, a.containerId, a.ifName)));
    // A workload is detached only when no valid record (on any network) still uses it.
    const stillUsed = (workloadId: string): boolean =>
      this.deps.store.ofWorkload(workloadId).some((a) => a.network !== config.name || valid.has(keyOf(a.network, a.containerId, a.ifName)));
    const results = await Promise.allSettled(
      stale.map(async (a) => {
        if (attached.has(a.workloadId) && !stillUsed(a.workloadId)) {
          await this.deps.service.detach({ workloadId: a.workloadId, netns: undefined });
        }
        this.deps.store.remove(a);
        return a;
      }),
    );
    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`${stale[i]?.containerId}: ${(r.reason as Error).message}`] : []));
    this.log.info({ network: config.name, valid: valid.size, removed: stale.length - failed.length, failed: failed.length }, "CNI GC done");
    if (failed.length > 0) {
      throw new CniError(CniCode.TryAgainLater, `CNI GC: ${failed.length} of ${stale.length} stale attachments could not be removed; try again later`, failed.join("; "));
    }
    return {};
  }
}

const keyOf = (network: string, containerId: string, ifName: string): string => `${network}\0${containerId}\0${ifName}`;
const sameKey = (a: CniAttachment, network: string, env: CniEnv): boolean => a.network === network && a.containerId === env.containerId && a.ifName === env.ifName;
const ms = (since: number): number => Math.round((performance.now() - since) * 1000) / 1000;

function reply(exitCode: number, stdout: unknown, warnings: string[] = []): CniReply {
  return {
    exitCode,
    stdout: stdout === undefined ? Buffer.alloc(0) : Buffer.from(`${JSON.stringify(stdout)}\n`, "utf8"),
    stderr: Buffer.from(warnings.map((w) => `workloadnet-cni: ${w}\n`).join(""), "utf8"),
  };
}
