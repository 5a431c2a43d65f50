// Runs a level-triggered reconcile: on demand (a view change), periodically
// (to repair drift: someone deleted a route of ours), and again soon after a
// failure. Runs never overlap; triggers that arrive during a run coalesce into
// one more run after it, which reads the state as it is then, so a burst of
// changes costs at most two runs and the last change is never missed.

import type { Logger } from "pino";

export interface ReconcileLoopOptions {
  /** What to do; reads the wanted state itself (level-triggered), may throw. */
  run: () => Promise<void>;
  log: Logger;
  /** What the runs are, for logs ("routes to other nodes"). */
  what: string;
  /** Periodic resync. Default 30 s. */
  resyncMs?: number;
  /** First retry after a failed run; doubles up to resyncMs. Default 1 s. */
  retryMs?: number;
  /** Told after each run: its error (undefined when it succeeded) and how long it took. */
  onDone?: (err: unknown, seconds: number) => void;
}

export class ReconcileLoop {
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  private readonly resyncMs: number;
  private readonly retryMs: number;

  constructor(private readonly opts: ReconcileLoopOptions) {
    this.resyncMs = opts.resyncMs ?? 30_000;
    this.retryMs = opts.retryMs ?? 1000;
    this.retryDelay = this.retryMs;
  }

  /** Starts the periodic resync (the first run is the caller's trigger()). */
  start(): void {
    if (this.closed || this.resyncTimer !== undefined) return;
    this.resyncTimer = setInterval(() => void this.trigger(), this.resyncMs);
    // The daemon's life is its server's; a timer must not hold the process.
    this.resyncTimer.unref();
  }

  /** Asks for a run; resolves when a run that started after this call has finished (never rejects). */
  trigger(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = this.loop();
    return this.running;
  }

  /** Stops the timers and waits for a run under way. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.resyncTimer);
    clearTimeout(this.retryTimer);
    await this.running;
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        await this.once();
      } while (this.again && !this.closed);
    } finally {
      this.running = undefined;
    }
  }

  private async once(): Promise<void> {
    const started = performance.now();
    let error: unknown;
    try {
      await this.opts.run();
    } catch (err) {
      error = err;
    }
    const seconds = (performance.now() - started) / 1000;
    try {
      this.opts.onDone?.(error, seconds);
    } catch {
      // a metrics hook must not break the loop
    }
    if (error === undefined) {
      this.retryDelay = this.retryMs;
      this.opts.log.debug({ what: this.opts.what, durationMs: Math.round(seconds * 1e6) / 1e3 }, "reconciled");
      return;
    }
    this.opts.log.error({ what: this.opts.what, err: (error as Error).message ?? String(error), retryMs: this.retryDelay }, "reconcile failed; retrying");
    if (!this.closed && this.retryTimer === undefined) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        void this.trigger();
      }, this.retryDelay);
      this.retryTimer.unref();
      this.retryDelay = Math.min(this.retryDelay * 2, this.resyncMs);
    }
  }
}
