// Bulk deletion of retired workload links. Deleting a veth makes the kernel
// wait for an RCU grace period (~20 ms) per request, under a lock that
// serialises all such requests; deleting every link of a group in one request
// pays that wait once for all of them. Detach takes a link down and moves it
// to the retiring group; the reaper deletes the whole group, then runs each
// link's release (which frees its name and addresses). Concurrent Detaches
// thus share one kernel wait, and nothing is freed before the kernel is done.
import type { Logger } from "pino";
import { isErrno } from "../netlink/errors.js";
import type { Handle } from "../netlink/handle.js";
import { deleteLinksInGroup } from "../netlink/link.js";

/** The group retired links wait in: the link group with its top bit flipped. */
export const retiringGroup = (linkGroup: number): number => (linkGroup ^ 0x80000000) >>> 0;

const RETRY_MS = 200;

/**
 * How long a round may wait for more links before it deletes. Under load,
 * the callers whose links the last round deleted come straight back with
 * their next Detach; without the wait, the round would start with the one or
 * two links retired meanwhile, cost a full kernel wait for them, and the
 * callers' links would wait for the round after. A round waits only while
 * fewer links are pending than the last round deleted, so a lone Detach
 * never waits.
 */
export const DEFAULT_GATHER_MS = 10;

export class LinkReaper {
  private pending: { release: () => void; done: () => void }[] = [];
  private running: Promise<void> | undefined;
  /** Links the last round deleted: how many the next one waits for. */
  private lastRound = 0;
  private roundCount = 0;
  /** Ends a round's wait for more links. */
  private gathered: (() => void) | undefined;

  constructor(
    private readonly host: Handle,
    readonly group: number,
    private readonly log: Logger,
    private readonly gatherMs = DEFAULT_GATHER_MS,
  ) {}

  /**
   * Call after the link is in the retiring group. `release` runs once the
   * kernel has deleted it; the returned promise resolves right after.
   */
  enqueue(release: () => void): Promise<void> {
    const deleted = new Promise<void>((done) => this.pending.push({ release, done }));
    if (this.pending.length >= this.lastRound) this.gathered?.();
    this.running ??= this.drain();
    return deleted;
  }

  /** Resolves when every link enqueued so far is deleted. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  get backlog(): number {
    return this.pending.length;
  }

  /** Bulk deletes sent so far. */
  get rounds(): number {
    return this.roundCount;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        await this.gather();
        // Every link enqueued before this request is in the group now; those
        // enqueued while it runs wait for the next round.
        const batch = this.pending.splice(0);
        this.lastRound = batch.length;
        this.roundCount++;
        try {
          await deleteLinksInGroup(this.host, this.group);
        } catch (err) {
          if (!isErrno(err, "ENODEV")) {
            this.log.error({ err: (err as Error).message, links: batch.length }, "bulk delete of retired links failed; retrying");
            this.pending.unshift(...batch);
            await new Promise((r) => setTimeout(r, RETRY_MS));
            continue;
          }
        }
        for (const item of batch) {
          item.release();
          item.done();
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  /** Waits up to gatherMs while fewer links are pending than the last round had. */
  private async gather(): Promise<void> {
    if (this.gatherMs <= 0 || this.pending.length >= this.lastRound) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.gathered?.(), this.gatherMs);
      this.gathered = () => {
        clearTimeout(timer);
        this.gathered = undefined;
        resolve();
      };
    });
  }
}
