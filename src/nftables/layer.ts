// The daemon's nftables layer: our table made (or adopted) at start, the
// masquerade prefix sets kept in line with the cluster, and each workload's
// published ports as map elements, one transaction per Attach or Detach.
//
// Which host ports are held, and by whom, lives here in memory, rebuilt from
// the table at start (adopt): the pod address in each element names its
// workload. A conflict is found here, before any kernel work, and an Attach
// that holds ports but fails later releases them (release).
import type { Logger } from "pino";
import { parsePrefix, type Prefix } from "../ipam/prefix.js";
import { type Nft, NftError, openNft } from "./nft.js";
import { describeMapping, entriesOverlap, mappingOf, mappingsOf, type PortEntry, type PortMapping } from "./port-mappings.js";
import {
  addEntryCommands,
  deleteEntryCommands,
  deleteHairpinCommand,
  HAIRPIN_SETS,
  LIST_TABLE,
  parseHairpinSet,
  parsePortMap,
  PORT_MAPS,
  replacePrefixSet,
  structureCommands,
} from "./table.js";

/** A host port another workload holds; the message names both. */
export class PortConflictError extends Error {
  constructor(
    message: string,
    readonly holder: string,
  ) {
    super(message);
    this.name = "PortConflictError";
  }
}

/** Removes the conntrack entries of connections a removed mapping had translated. */
export type ConntrackFlusher = (entries: readonly PortEntry[]) => Promise<number>;

export interface NftablesOptions {
  /** Masquerade pod traffic to destinations outside the cluster (default on). */
  masquerade: boolean;
  /** Destinations never masqueraded, besides the cluster's pod prefixes (--no-masquerade-cidr). */
  noMasqueradeCidrs?: readonly string[];
  log: Logger;
  /** Tests and benches may pass their own; default: this process's libnftables context. */
  nft?: Nft;
  flushConntrack?: ConntrackFlusher;
}

export interface AdoptReport {
  /** Mappings per workload found in the table and kept. */
  mappings: Map<string, PortMapping[]>;
  /** Elements removed because no attached workload has their pod address. */
  removed: number;
}

export class NftablesLayer {
  /** Entries per workload: in the kernel, or reserved by an Attach under way. */
  private readonly held = new Map<string, PortEntry[]>();
  private readonly noMasquerade: Prefix[];
  private nodePrefixes: Prefix[] = [];
  private clusterPrefixes: Prefix[] = [];
  /** Prefix set updates, in order: each writes the whole wanted state. */
  private prefixUpdates: Promise<void> = Promise.resolve();
  /** Conntrack flushes under way, by host port (entryKey): publishing that port again waits for them. */
  private readonly flushing = new Map<string, Promise<void>>();

  private constructor(
    private readonly nft: Nft,
    private readonly opts: NftablesOptions,
  ) {
    this.noMasquerade = (opts.noMasqueradeCidrs ?? []).map((c) => parsePrefix(c));
  }

  /** Makes our table (or brings the one found up to date) in one transaction. */
  static async start(opts: NftablesOptions): Promise<NftablesLayer> {
    const layer = new NftablesLayer(opts.nft ?? openNft(), opts);
    try {
      await layer.nft.run(structureCommands({ masquerade: opts.masquerade }));
    } catch (err) {
      throw new NftError(`set up the nftables table: ${(err as Error).message}`, { cause: err });
    }
    opts.log.info({ masquerade: opts.masquerade }, "nftables table ready");
    return layer;
  }

  /**
   * Adopts the published ports found in the table: elements whose pod
   * address belongs to an attached workload (`owners`: address → workload id)
   * are that workload's; the rest belong to workloads detached while the
   * daemon was down, and are removed with their conntrack entries.
   */
  async adopt(owners: ReadonlyMap<string, string>): Promise<AdoptReport> {
    const table = await this.nft.list(LIST_TABLE);
    const found: PortEntry[] = [];
    for (const name of PORT_MAPS) found.push(...parsePortMap(name, table));
    const hairpins: { family: 4 | 6; address: string }[] = [];
    for (const name of HAIRPIN_SETS) {
      for (const address of parseHairpinSet(name, table)) hairpins.push({ family: name.endsWith("v6") ? 6 : 4, address });
    }
    const stale: PortEntry[] = [];
    for (const e of found) {
      const owner = owners.get(e.podAddress);
      if (owner === undefined) {
        stale.push(e);
        continue;
      }
      const list = this.held.get(owner) ?? [];
      list.push(e);
      this.held.set(owner, list);
    }
    const kept = new Set(found.filter((e) => owners.has(e.podAddress)).map((e) => e.podAddress));
    const staleHairpins = hairpins.filter((h) => !kept.has(h.address));
    const cmds = [
      ...deleteEntryCommands(stale).filter((c) => !c.includes(" hairpin-v")),
      ...staleHairpins.map((h) => deleteHairpinCommand(h.family, h.address)),
    ];
    if (cmds.length > 0) {
      await this.nft.run(cmds);
      await this.flush(stale);
      this.opts.log.info({ removed: stale.map((e) => `${describeMapping(mappingOf(e))} (to ${e.podAddress})`) }, "removed published ports of workloads detached while the daemon was down");
    }
    const mappings = new Map<string, PortMapping[]>();
    for (const [id, entries] of this.held) mappings.set(id, mappingsOf(entries));
    return { mappings, removed: stale.length };
  }

  /**
   * Holds the entries' host ports for the workload, or throws
   * PortConflictError naming the port and its holder. Synchronous, so two
   * Attaches asking for one port cannot both pass. Undo with release().
   */
  reserve(workloadId: string, entries: readonly PortEntry[]): void {
    for (const e of entries) {
      for (const [holder, theirs] of this.held) {
        const clash = theirs.find((t) => entriesOverlap(t, e));
        if (clash === undefined) continue;
        const port = describeMapping(mappingOf(e)).split(" -> ")[0];
        throw new PortConflictError(`host port ${port} (IPv${e.family}) is already published by workload ${holder}`, holder);
      }
    }
    if (entries.length > 0) this.held.set(workloadId, [...entries]);
  }

  /** Forgets a reservation whose Attach failed before publish() (nothing is in the kernel). */
  release(workloadId: string): void {
    this.held.delete(workloadId);
  }

  /**
   * One transaction: the reserved entries into the port maps, the pod into
   * the hairpin set. A port whose old connections are still being flushed
   * waits for that first, so it never reaches the old pod.
   */
  async publish(workloadId: string): Promise<void> {
    const entries = this.held.get(workloadId);
    if (entries === undefined || entries.length === 0) return;
    const pending = entries.map((e) => this.flushing.get(entryKey(e))).filter((p) => p !== undefined);
    if (pending.length > 0) await Promise.all(pending);
    await this.nft.run(addEntryCommands(entries));
  }

  /** Resolves once every conntrack flush under way is done (the daemon's stop). */
  async drain(): Promise<void> {
    await Promise.all([...this.flushing.values()]);
  }

  /** The workload's published ports as mappings (for List). */
  mappingsOf(workloadId: string): PortMapping[] {
    return mappingsOf(this.held.get(workloadId) ?? []);
  }

  /**
   * Removes the workload's entries in one transaction; then, without holding
   * up the caller, the conntrack entries of the connections they translated
   * (a walk of the kernel's whole table, tens of milliseconds: see
   * conntrack.ts), so a port published again never reaches the old pod.
   * Nothing held: nothing to do.
   */
  async unpublish(workloadId: string): Promise<void> {
    const entries = this.held.get(workloadId);
    if (entries === undefined) return;
    try {
      await this.nft.run(deleteEntryCommands(entries));
    } catch (err) {
      // An element already gone (someone ran nft by hand) fails the whole
      // transaction: delete what is still there instead.
      await this.deleteWhatRemains(entries, err);
    }
    this.held.delete(workloadId);
    const done = this.flush(entries);
    for (const e of entries) this.flushing.set(entryKey(e), done);
    void done.then(() => {
      for (const e of entries) if (this.flushing.get(entryKey(e)) === done) this.flushing.delete(entryKey(e));
    });
  }

  private async deleteWhatRemains(entries: readonly PortEntry[], first: unknown): Promise<void> {
    const table = await this.nft.list(LIST_TABLE);
    const present = new Set<string>();
    for (const name of PORT_MAPS) for (const e of parsePortMap(name, table)) present.add(entryKey(e));
    const hairpins = new Set<string>();
    for (const name of HAIRPIN_SETS) for (const a of parseHairpinSet(name, table)) hairpins.add(a);
    const remaining = entries.filter((e) => present.has(entryKey(e)));
    const cmds = deleteEntryCommands(remaining).filter((c) => !c.includes(" hairpin-v"));
    for (const e of entries) {
      const cmd = deleteHairpinCommand(e.family, e.podAddress);
      if (hairpins.has(e.podAddress) && !cmds.includes(cmd)) cmds.push(cmd);
    }
    if (cmds.length === 0) return;
    try {
      await this.nft.run(cmds);
    } catch (err) {
      throw new NftError(`${(err as Error).message} (after: ${(first as Error).message})`, { cause: err });
    }
  }

  private async flush(entries: readonly PortEntry[]): Promise<void> {
    if (entries.length === 0 || this.opts.flushConntrack === undefined) return;
    try {
      await this.opts.flushConntrack(entries);
    } catch (err) {
      // The mapping is gone already; stale entries time out by themselves.
      this.opts.log.warn({ err: (err as Error).message }, "could not flush the conntrack entries of removed port mappings");
    }
  }

  /** This node's pod prefixes: the sources that are masqueraded. */
  setNodePrefixes(prefixes: readonly (Prefix | string)[]): Promise<void> {
    this.nodePrefixes = prefixes.map(toPrefix);
    return this.writePrefixSets();
  }

  /**
   * Every pod prefix in the cluster (this node's included): destinations that
   * keep the pod's address. The --no-masquerade-cidr prefixes are added to
   * them. Call it on every change of the cluster view; it writes set
   * elements only, in one transaction.
   */
  setClusterPrefixes(prefixes: readonly (Prefix | string)[]): Promise<void> {
    this.clusterPrefixes = prefixes.map(toPrefix);
    return this.writePrefixSets();
  }

  /** Both at once, in one transaction. */
  setPrefixes(node: readonly (Prefix | string)[], cluster: readonly (Prefix | string)[]): Promise<void> {
    this.nodePrefixes = node.map(toPrefix);
    this.clusterPrefixes = cluster.map(toPrefix);
    return this.writePrefixSets();
  }

  private writePrefixSets(): Promise<void> {
    const run = async (): Promise<void> => {
      const exempt = [...this.clusterPrefixes, ...this.nodePrefixes, ...this.noMasquerade];
      const cmds = [
        ...replacePrefixSet("pod-v4", outermost(this.nodePrefixes, 4)),
        ...replacePrefixSet("pod-v6", outermost(this.nodePrefixes, 6)),
        ...replacePrefixSet("cluster-v4", outermost(exempt, 4)),
        ...replacePrefixSet("cluster-v6", outermost(exempt, 6)),
      ];
      await this.nft.run(cmds);
      this.opts.log.info({ masqueradeSources: this.nodePrefixes.map(String), notMasqueraded: outermost(exempt, 4).concat(outermost(exempt, 6)) }, "masquerade prefix sets updated");
    };
    // Each update writes the whole wanted state, so one that fails is mended by the next.
    const next = this.prefixUpdates.then(run, run);
    this.prefixUpdates = next.catch(() => undefined);
    return next;
  }
}

function toPrefix(p: Prefix | string): Prefix {
  return typeof p === "string" ? parsePrefix(p) : p;
}

function entryKey(e: PortEntry): string {
  return `${e.family}/${e.protocol}/${e.hostPort}/${e.hostIp ?? "*"}`;
}

/** The prefixes of one family with those inside another left out: an interval set refuses overlapping elements. */
function outermost(prefixes: readonly Prefix[], family: 4 | 6): string[] {
  const mine = prefixes.filter((p) => p.family === family);
  const kept = mine.filter((p, i) => !mine.some((q, j) => q.bits <= p.bits && q.contains(p.network) && (q.bits < p.bits || j < i)));
  return kept.map((p) => p.text);
}
