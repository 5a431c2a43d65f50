// A file that some other agent writes, watched and parsed: the machinery
// behind the prefix file (file-source.ts), kept apart from what the file means.
//
// We watch the file's directory, not the file: writers usually replace the
// file by renaming a temporary one over it, which would leave a watch on the
// old inode deaf, and a directory watch also sees a file created after start.
// Events come in bursts, so re-reads are debounced, and listeners hear only
// about real changes. A bad or missing file never takes the last good content
// away: it stays, and lastError()/onError say what is wrong.

import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { Listeners } from "./listeners.js";

export interface WatchedFileOptions<T> {
  /** What the file is, for messages: "prefix file" gives "prefix file /etc/x.json: invalid JSON: …". */
  label: string;
  /** Turns the file's text into a value; throws an Error whose message says what is wrong. */
  parse: (text: string) => T;
  /** Whether two parsed values mean the same (no change event then). */
  equal: (a: T, b: T) => boolean;
  /** Short text for "(keeping …)" in error messages. */
  describe: (value: T) => string;
  /** What a missing file means before any good content, e.g. "no pod prefixes until it is created". */
  missingMeans: string;
  /** Quiet time after the last change event before re-reading. Default 50 ms. */
  debounceMs?: number;
  /** How often to retry when the directory cannot be watched (e.g. not created yet). Default 1 s. */
  retryMs?: number;
}

export class WatchedFile<T> {
  readonly path: string;
  private readonly dir: string;
  private readonly name: string;
  private readonly debounceMs: number;
  private readonly retryMs: number;

  private value: T | undefined;
  private error: string | undefined;
  private goodReadAt: Date | undefined;
  private readonly changeListeners = new Listeners<T>();
  private readonly errorListeners = new Listeners<string>();

  private watcher: FSWatcher | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private started: Promise<void> | undefined;
  private reading: Promise<void> | undefined;
  private rereadWanted = false;
  private closed = false;

  constructor(
    path: string,
    private readonly options: WatchedFileOptions<T>,
  ) {
    this.path = resolve(path);
    this.dir = dirname(this.path);
    this.name = basename(this.path);
    this.debounceMs = options.debounceMs ?? 50;
    this.retryMs = options.retryMs ?? 1000;
  }

  /** Starts watching and resolves once the file's current content has been read. */
  start(): Promise<void> {
    this.started ??= (async () => {
      // Watch first, so a change made while the first read runs is not missed.
      this.watchDir();
      await this.reload();
    })();
    return this.started;
  }

  /** The last good content, undefined until there was any. */
  current(): T | undefined {
    return this.value;
  }

  lastError(): string | undefined {
    return this.error;
  }

  /** When the file was last read and found good (changed or not). */
  lastGoodRead(): Date | undefined {
    return this.goodReadAt;
  }

  onChange(listener: (value: T) => void): () => void {
    return this.changeListeners.add(listener);
  }

  onError(listener: (message: string) => void): () => void {
    return this.errorListeners.add(listener);
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
    clearTimeout(this.debounceTimer);
    clearTimeout(this.retryTimer);
    this.changeListeners.clear();
    this.errorListeners.clear();
  }

  private watchDir(): void {
    if (this.closed) return;
    try {
      // Not persistent: watching must not keep the process alive on shutdown.
      const w = watch(this.dir, { persistent: false }, (_event, filename) => {
        // Some platforms omit the name; then any event may concern us.
        if (filename === null || filename === this.name) this.schedule();
      });
      w.on("error", (err) => {
        // E.g. the directory was removed: start over once it is back.
        w.close();
        if (this.watcher === w) this.watcher = undefined;
        this.fail(`cannot watch directory ${this.dir}: ${err.message}; retrying`);
        this.retryWatch();
      });
      this.watcher = w;
    } catch (err) {
      this.fail(`cannot watch directory ${this.dir}: ${(err as Error).message}; retrying`);
      this.retryWatch();
    }
  }

  private retryWatch(): void {
    if (this.closed || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.watchDir();
      // The file may have appeared while nobody was watching.
      if (this.watcher !== undefined) this.schedule();
    }, this.retryMs);
    this.retryTimer.unref();
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      void this.reload();
    }, this.debounceMs);
    this.debounceTimer.unref();
  }

  // One read at a time; a request during a read causes one more read after it,
  // so the last content written is always the last one read.
  private reload(): Promise<void> {
    if (this.reading !== undefined) {
      this.rereadWanted = true;
      return this.reading;
    }
    const run = async () => {
      try {
        do {
          this.rereadWanted = false;
          await this.readOnce();
        } while (this.rereadWanted && !this.closed);
      } finally {
        this.reading = undefined;
      }
    };
    this.reading = run();
    return this.reading;
  }

  // Never rejects: every problem becomes lastError.
  private async readOnce(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if (this.closed) return;
      const code = (err as NodeJS.ErrnoException).code;
      this.fail(
        code === "ENOENT"
          ? this.value === undefined
            ? `does not exist (yet); ${this.options.missingMeans}`
            : "was removed"
          : `cannot read: ${(err as Error).message}`,
      );
      return;
    }
    if (this.closed) return;
    let next: T;
    try {
      next = this.options.parse(text);
    } catch (err) {
      this.fail((err as Error).message);
      return;
    }
    this.error = undefined;
    this.goodReadAt = new Date();
    if (this.value !== undefined && this.options.equal(this.value, next)) return;
    this.value = next;
    // A listener's bug is not the file's fault: report it, but keep lastError clean.
    this.changeListeners.emit(next, (err) => this.notifyError(`${this.options.label} ${this.path}: change listener failed: ${err.message}`));
  }

  private fail(problem: string): void {
    const keeping = this.value === undefined ? "" : ` (keeping ${this.options.describe(this.value)})`;
    const message = `${this.options.label} ${this.path}: ${problem}${keeping}`;
    // Report each distinct problem once, not on every event while it persists.
    if (message === this.error) return;
    this.error = message;
    this.notifyError(message);
  }

  private notifyError(message: string): void {
    // Nothing sensible to do if the logger itself fails.
    this.errorListeners.emit(message);
  }
}

/** JSON.parse with messages for people; tolerates a byte-order mark (some editors add one). */
export function parseJsonText(text: string): unknown {
  const body = text.replace(/^\uFEFF/, "");
  if (body.trim() === "") throw new Error("empty file (expected JSON)");
  try {
    return JSON.parse(body);
  } catch (err) {
    throw new Error(`invalid JSON: ${(err as Error).message}`);
  }
}
