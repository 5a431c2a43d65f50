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

export class LinkReaper {
  private pending: { release: () => void; done: () => void }[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly host: Handle,
    readonly group: number,
    private readonly log: Logger,
  ) {}

  /**
   * Call after the link is in the retiring group. `release` runs once the
   * kernel has deleted it; the returned promise resolves right after.
   */
  enqueue(release: () => void): Promise<void> {
    const deleted = new Promise<void>((done) => this.pending.push({ release, done }));
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

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        // Every link enqueued before this request is in the group now; those
        // enqueued while it runs wait for the next round.
        const batch = this.pending.splice(0);
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
}
