// What the CNI layer remembers about the attachments it made: for each
// (network, CNI_CONTAINERID, CNI_IFNAME) the workload id it attached. GC only
// names container ids, and ADD may have used the pod UID (K8S_POD_UID) as the
// workload id, so this map is how GC and DEL find the workload again.
//
// The map is kept in memory; on disk it is a journal of JSON lines: a header,
// then one line per change ({"put": record} or {"remove": key}). A change
// costs one small append, however many records there are; the journal is
// rewritten with just the live records (a temporary file renamed over the
// old one) at start-up and whenever it has grown to twice the records plus a
// margin. Put it on a tmpfs such as /run: the attachments themselves do not
// survive a reboot either. On load, records whose workload is no longer
// attached (the kernel is the source of truth) are dropped. A missing or
// unreadable file only makes GC more conservative: attachments it has no
// record of are never removed by GC.
import { appendFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";

export interface CniAttachment {
  network: string;
  containerId: string;
  ifName: string;
  workloadId: string;
  netns: string;
}

type RecordKey = Pick<CniAttachment, "network" | "containerId" | "ifName">;

const FILE_VERSION = 2;
const HEADER = JSON.stringify({ version: FILE_VERSION });
/** Appended lines allowed beyond twice the live records before a rewrite. */
const COMPACT_MARGIN = 64;

export class CniAttachmentStore {
  private readonly records = new Map<string, CniAttachment>();
  /** Record keys by workload id, so a DEL's lookups do not scan every record. */
  private readonly byWorkload = new Map<string, Set<string>>();
  /** Lines in the file after its header. */
  private lines = 0;

  private constructor(
    private readonly path: string | undefined,
    private readonly log: Logger,
  ) {}

  /** Loads the file (when given), keeps only records of workloads in `attached`, and rewrites it with those. */
  static async open(path: string | undefined, attached: ReadonlySet<string>, log: Logger): Promise<CniAttachmentStore> {
    const store = new CniAttachmentStore(path, log);
    if (path === undefined) return store;
    let loaded: CniAttachment[] = [];
    try {
      loaded = readRecordsFile(await readFile(path, "utf8"), (line, err) =>
        log.warn({ file: path, line, err }, "CNI attachment records: a line is unreadable and was skipped"),
      );
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") log.warn({ err: (err as Error).message, file: path }, "CNI attachment records unreadable; GC will leave attachments it has no record of alone");
    }
    let dropped = 0;
    for (const a of loaded) {
      if (attached.has(a.workloadId)) store.remember(a);
      else dropped++;
    }
    if (loaded.length > 0) log.info({ file: path, records: store.records.size, dropped }, "CNI attachment records loaded");
    store.rewrite();
    return store;
  }

  find(network: string, containerId: string, ifName: string): CniAttachment | undefined {
    return this.records.get(keyOf({ network, containerId, ifName }));
  }

  /** Records on any network that attached this workload. */
  ofWorkload(workloadId: string): CniAttachment[] {
    const keys = this.byWorkload.get(workloadId);
    return keys === undefined ? [] : [...keys].map((k) => this.records.get(k)!);
  }

  ofNetwork(network: string): CniAttachment[] {
    return [...this.records.values()].filter((a) => a.network === network);
  }

  put(a: CniAttachment): void {
    const record = { network: a.network, containerId: a.containerId, ifName: a.ifName, workloadId: a.workloadId, netns: a.netns };
    this.forget(keyOf(record));
    this.remember(record);
    this.append({ put: record });
  }

  remove(a: RecordKey): void {
    const key = { network: a.network, containerId: a.containerId, ifName: a.ifName };
    if (this.forget(keyOf(key))) this.append({ remove: key });
  }

  /** Forgets every record of a workload (it is no longer attached). */
  removeWorkload(workloadId: string): void {
    for (const a of this.ofWorkload(workloadId)) this.remove(a);
  }

  get size(): number {
    return this.records.size;
  }

  private remember(record: CniAttachment): void {
    const key = keyOf(record);
    this.records.set(key, record);
    let keys = this.byWorkload.get(record.workloadId);
    if (keys === undefined) this.byWorkload.set(record.workloadId, (keys = new Set()));
    keys.add(key);
  }

  private forget(key: string): boolean {
    const old = this.records.get(key);
    if (old === undefined) return false;
    this.records.delete(key);
    const keys = this.byWorkload.get(old.workloadId);
    keys?.delete(key);
    if (keys?.size === 0) this.byWorkload.delete(old.workloadId);
    return true;
  }

  /**
   * Writes are synchronous: one append of a line, on a tmpfs microseconds,
   * so changes reach the file in the order they were made. Failures are
   * logged, not thrown: the in-memory map stays right, only a restart would lose it.
   */
  private append(change: { put: CniAttachment } | { remove: RecordKey }): void {
    if (this.path === undefined) return;
    if (this.lines >= 2 * this.records.size + COMPACT_MARGIN) {
      this.rewrite();
      return;
    }
    try {
      appendFileSync(this.path, `${JSON.stringify(change)}\n`, { mode: 0o600 });
      this.lines++;
    } catch (err) {
      this.log.error({ err: (err as Error).message, file: this.path }, "cannot save a CNI attachment record; GC after a restart will not know this attachment");
    }
  }

  /** Replaces the file with the header and one line per live record. */
  private rewrite(): void {
    if (this.path === undefined) return;
    const tmp = `${this.path}.tmp-${process.pid}`;
    const body = [HEADER, ...[...this.records.values()].map((record) => JSON.stringify({ put: record }))].join("\n");
    try {
      writeFileSync(tmp, `${body}\n`, { mode: 0o600 });
      renameSync(tmp, this.path);
      this.lines = this.records.size;
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {
        // it was never written
      }
      this.log.error({ err: (err as Error).message, file: this.path }, "cannot save CNI attachment records; GC after a restart will not know these attachments");
    }
  }
}

const keyOf = (a: RecordKey): string => `${a.network}\0${a.containerId}\0${a.ifName}`;

const KEY_FIELDS = ["network", "containerId", "ifName"] as const;
const RECORD_FIELDS = [...KEY_FIELDS, "workloadId", "netns"] as const;

/** An object whose `fields` are all strings. */
const hasStrings = (r: unknown, fields: readonly string[]): boolean =>
  r !== null && typeof r === "object" && fields.every((k) => typeof (r as Record<string, unknown>)[k] === "string");

const isRecord = (r: unknown): r is CniAttachment => hasStrings(r, RECORD_FIELDS);
const isKey = (r: unknown): r is RecordKey => hasStrings(r, KEY_FIELDS);

/**
 * The live records a records file holds, in the order they were put. Throws
 * when it is not a records file at all. A line that cannot be read is passed
 * to `skipped` and left out, except a last line cut short without its newline
 * (the daemon stopped while appending it), which is dropped quietly.
 */
export function readRecordsFile(text: string, skipped: (line: number, reason: string) => void = () => undefined): CniAttachment[] {
  const lines = text.split("\n");
  const header = JSON.parse(lines[0] ?? "") as { version?: unknown; attachments?: unknown };
  // Version 1 was one JSON document of all records.
  if (header.version === 1 && Array.isArray(header.attachments)) return header.attachments.filter(isRecord);
  if (header.version !== FILE_VERSION) throw new Error(`not a version ${FILE_VERSION} records file`);
  const live = new Map<string, CniAttachment>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "") continue;
    let change: { put?: unknown; remove?: unknown };
    try {
      change = JSON.parse(line) as typeof change;
    } catch (err) {
      if (i < lines.length - 1) skipped(i + 1, (err as Error).message);
      continue;
    }
    if (isRecord(change.put)) live.set(keyOf(change.put), change.put);
    else if (isKey(change.remove)) live.delete(keyOf(change.remove));
    else skipped(i + 1, "neither a put of a record nor a remove of a key");
  }
  return [...live.values()];
}
