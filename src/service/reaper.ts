// Bulk deletion of retired workload links. Deleting a veth makes the kernel
// wait for the device's last references (an RCU grace period or more, ~20 ms)
// before it answers; deleting every link of a group in one request pays that
// wait once for all of them. Detach moves a link to the retiring group and
// hands it to the reaper, which deletes the whole group, then runs each
// link's release (which frees its name and addresses).
//
// A link counts as deleted as soon as the kernel announces it (see
// link-deletions.ts): unregistered, its name, routes and addresses are gone,
// though the kernel's answer to the delete comes only after its wait. The
// answer still releases whatever was not announced (a missed announcement,
// or no listener at all). Up to maxRounds deletes run at once, so links
// retired while one round waits do not wait for it to end. A sync Detach that
// finds a round free deletes its link by index in a round of its own instead
// (deleteNow), one kernel request fewer than moving it to the group first.
import type { Logger } from "pino";
import { isErrno } from "../netlink/errors.js";
import type { Handle } from "../netlink/handle.js";
import { deleteLink, deleteLinksInGroup } from "../netlink/link.js";
import type { DeletionWait, LinkDeletions } from "../netlink/link-deletions.js";

/** The group retired links wait in: the link group with its top bit flipped. */
export const retiringGroup = (linkGroup: number): number => (linkGroup ^ 0x80000000) >>> 0;

const RETRY_MS = 200;

interface Retired {
  index: number;
  release: () => void;
  done: () => void;
  finished: boolean;
  watch?: DeletionWait;
}

export interface ReaperOptions {
  /** Announcements of deletions; without it a link is released when its round's delete answers. */
  deletions?: LinkDeletions;
  /** Deletes running at once; each holds a host socket and a pool thread while the kernel waits (the daemon's is in daemon/kernel-waits.cts). */
  maxRounds: number;
}

export class LinkReaper {
  private pending: Retired[] = [];
  private running = 0;
  private roundCount = 0;
  private announced = 0;
  private retrying = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: (() => void) | undefined;
  private readonly deletions: LinkDeletions | undefined;
  private readonly maxRounds: number;

  constructor(
    private readonly host: Handle,
    readonly group: number,
    private readonly log: Logger,
    opts: ReaperOptions,
  ) {
    this.deletions = opts.deletions;
    this.maxRounds = Math.max(1, opts.maxRounds);
  }

  /**
   * Call once the link (by its ifindex) is in the retiring group. `release`
   * runs once the kernel has deleted it; the returned promise resolves right after.
   */
  enqueue(index: number, release: () => void): Promise<void> {
    const deleted = new Promise<void>((done) => this.pending.push({ index, release, done, finished: false }));
    this.markBusy();
    this.startRounds();
    return deleted;
  }

  /** True when deleteNow would not take a round that queued links are waiting for. */
  get hasFreeRound(): boolean {
    return this.running < this.maxRounds && this.pending.length === 0 && !this.retrying;
  }

  /**
   * Deletes one link by its ifindex, now, in a round of its own: for a sync
   * Detach that finds a round free, which then need not move the link to the
   * retiring group first. Resolves once the kernel has announced the link
   * gone, or answered; rejects with the kernel's error if it refused, the
   * link then being still there.
   */
  deleteNow(index: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const item: Retired = { index, release: () => undefined, done: resolve, finished: false };
      this.markBusy();
      this.beginRound([item]);
      void deleteLink(this.host, index)
        .then(
          () => this.finish(item),
          (err: unknown) => {
            if (isErrno(err, "ENODEV") || item.finished) return this.finish(item);
            item.finished = true;
            item.watch?.cancel();
            reject(err);
          },
        )
        .finally(() => this.endRound());
    });
  }

  /** Resolves when every link enqueued so far is deleted and every round has ended. */
  flush(): Promise<void> {
    return this.idle;
  }

  get backlog(): number {
    return this.pending.length;
  }

  /** Delete requests sent so far: bulk rounds and single deletes. */
  get rounds(): number {
    return this.roundCount;
  }

  /** Links released on the kernel's announcement, before their round's answer. */
  get releasedOnAnnouncement(): number {
    return this.announced;
  }

  private startRounds(): void {
    while (this.pending.length > 0 && this.running < this.maxRounds && !this.retrying) this.startRound();
  }

  private startRound(): void {
    // Every link enqueued so far is in the group now; later ones go to a later round.
    const batch = this.pending.splice(0);
    this.beginRound(batch);
    void deleteLinksInGroup(this.host, this.group)
      .then(
        // Also ENODEV: none left in the group, so an earlier round took these.
        () => batch.forEach((item) => this.finish(item)),
        (err: unknown) => {
          if (isErrno(err, "ENODEV")) return batch.forEach((item) => this.finish(item));
          const left = batch.filter((item) => !item.finished);
          this.log.error({ err: (err as Error).message, links: left.length }, "bulk delete of retired links failed; retrying");
          for (const item of left) item.watch?.cancel();
          this.pending.unshift(...left);
          this.retrying = true;
          setTimeout(() => {
            this.retrying = false;
            this.startRounds();
          }, RETRY_MS);
        },
      )
      .finally(() => this.endRound());
  }

  private markBusy(): void {
    if (this.markIdle === undefined) this.idle = new Promise((resolve) => (this.markIdle = resolve));
  }

  /** Counts a delete request about to be sent, and listens for the deletion of each of its links. */
  private beginRound(batch: Retired[]): void {
    this.running++;
    this.roundCount++;
    for (const item of batch) {
      // Listen before asking: the announcement goes only to those already listening.
      item.watch = this.deletions?.wait(item.index);
      void item.watch?.deleted.then(() => {
        if (!item.finished) this.announced++;
        this.finish(item);
      });
    }
  }

  private endRound(): void {
    this.running--;
    this.startRounds();
    if (this.running === 0 && this.pending.length === 0 && !this.retrying) {
      this.markIdle?.();
      this.markIdle = undefined;
    }
  }

  private finish(item: Retired): void {
    if (item.finished) return;
    item.finished = true;
    item.watch?.cancel();
    item.release();
    item.done();
  }
}
