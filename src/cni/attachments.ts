// What the CNI layer remembers about the attachments it made: for each
// (network, CNI_CONTAINERID, CNI_IFNAME) the workload id it attached. GC only
// names container ids, and ADD may have used the pod UID (K8S_POD_UID) as the
// workload id, so this map is how GC and DEL find the workload again.
//
// The map is kept in memory and written to a small JSON file after every
// change (a temporary file renamed over the old one), so it survives a daemon
// restart. Put it on a tmpfs such as /run: the attachments themselves do not
// survive a reboot either. On load, records whose workload is no longer
// attached (the kernel is the source of truth) are dropped. A missing or
// unreadable file only makes GC more conservative: attachments it has no
// record of are never removed by GC.
import { readFile, rename, unlink, writeFile } from "node:fs/promises";
import type { Logger } from "pino";

export interface CniAttachment {
  network: string;
  containerId: string;
  ifName: string;
  workloadId: string;
  netns: string;
}

const FILE_VERSION = 1;

export class CniAttachmentStore {
  private readonly records = new Map<string, CniAttachment>();
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  private constructor(
    private readonly path: string | undefined,
    private readonly log: Logger,
  ) {}

  /** Loads the file (when given) and keeps only records of workloads in `attached`. */
  static async open(path: string | undefined, attached: ReadonlySet<string>, log: Logger): Promise<CniAttachmentStore> {
    const store = new CniAttachmentStore(path, log);
    if (path === undefined) return store;
    let loaded: CniAttachment[] = [];
    try {
      loaded = parseFile(await readFile(path, "utf8"));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") log.warn({ err: (err as Error).message, file: path }, "CNI attachment records unreadable; GC will leave attachments it has no record of alone");
    }
    let dropped = 0;
    for (const a of loaded) {
      if (attached.has(a.workloadId)) store.records.set(keyOf(a), a);
      else dropped++;
    }
    if (loaded.length > 0) log.info({ file: path, records: store.records.size, dropped }, "CNI attachment records loaded");
    if (dropped > 0) await store.persist();
    return store;
  }

  find(network: string, containerId: string, ifName: string): CniAttachment | undefined {
    return this.records.get(keyOf({ network, containerId, ifName }));
  }

  /** Records on any network that attached this workload. */
  ofWorkload(workloadId: string): CniAttachment[] {
    return [...this.records.values()].filter((a) => a.workloadId === workloadId);
  }

  ofNetwork(network: string): CniAttachment[] {
    return [...this.records.values()].filter((a) => a.network === network);
  }

  async put(a: CniAttachment): Promise<void> {
    this.records.set(keyOf(a), { ...a });
    await this.persist();
  }

  async remove(a: Pick<CniAttachment, "network" | "containerId" | "ifName">): Promise<void> {
    if (this.records.delete(keyOf(a))) await this.persist();
  }

  /** Forgets every record of a workload (it is no longer attached). */
  async removeWorkload(workloadId: string): Promise<void> {
    let changed = false;
    for (const [k, a] of this.records) {
      if (a.workloadId === workloadId) {
        this.records.delete(k);
        changed = true;
      }
    }
    if (changed) await this.persist();
  }

  get size(): number {
    return this.records.size;
  }

  /**
   * Writes the current records. Writes are serialised; a burst of changes
   * while one write runs is folded into the next. Failures are logged, not
   * thrown: the in-memory map stays right, only a restart would lose it.
   */
  private persist(): Promise<void> {
    if (this.path === undefined) return Promise.resolve();
    const path = this.path;
    if (this.dirty) return this.writing; // the queued write will include this change
    this.dirty = true;
    this.writing = this.writing.then(async () => {
      this.dirty = false;
      const body = JSON.stringify({ version: FILE_VERSION, attachments: [...this.records.values()] });
      const tmp = `${path}.tmp-${process.pid}`;
      try {
        await writeFile(tmp, body, { mode: 0o600 });
        await rename(tmp, path);
      } catch (err) {
        await unlink(tmp).catch(() => undefined);
        this.log.error({ err: (err as Error).message, file: path }, "cannot save CNI attachment records; GC after a restart will not know these attachments");
      }
    });
    return this.writing;
  }
}

const keyOf = (a: Pick<CniAttachment, "network" | "containerId" | "ifName">): string => `${a.network}\0${a.containerId}\0${a.ifName}`;

function parseFile(text: string): CniAttachment[] {
  const parsed = JSON.parse(text) as { version?: unknown; attachments?: unknown };
  if (parsed.version !== FILE_VERSION || !Array.isArray(parsed.attachments)) throw new Error(`not a version ${FILE_VERSION} records file`);
  return parsed.attachments.filter((a): a is CniAttachment => {
    const r = a as Record<string, unknown> | null;
    return r !== null && typeof r === "object" && ["network", "containerId", "ifName", "workloadId", "netns"].every((k) => typeof r[k] === "string");
  });
}
