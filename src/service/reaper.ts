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
// retired while one round waits for its answer do not wait for it to end.
//
// The kernel unregisters links under one lock, and each delete request pays
// a fixed share of ~0.7 ms there, however many links it takes. So a round
// starts only when no earlier one still has links to unregister: links
// retired meanwhile wait for it and go together (a group commit). On a
// 2-CPU VM, deleting one link per request topped out near 1 100 links/s,
// with one caller or sixteen; in groups of 2 it reached ~2 600/s, of 16
// ~4 000/s.
// A sync Detach that finds nothing under way deletes its link by index in a
// round of its own (deleteNow), one kernel request fewer than moving it to
// the group first.
import type { Logger } from "pino";
import { isErrno } from "../netlink/errors.js";
import type { Handle } from "../netlink/handle.js";
import { deleteLinkByAltNameRequest, deleteLinkRequest, deleteLinksInGroup } from "../netlink/link.js";
import type { DeletionWait, LinkDeletions } from "../netlink/link-deletions.js";

/** The group retired links wait in: the link group with its top bit flipped. */
export const retiringGroup = (linkGroup: number): number => (linkGroup ^ 0x80000000) >>> 0;

const RETRY_MS = 200;
/**
 * How long a round may hold back the next one while its links are not yet
 * announced deleted; that normally takes about a millisecond. Past it (an
 * announcement missed and the answer slow, e.g. a device whose last reference
 * is never dropped), the next round starts anyway rather than stall every
 * Detach behind it.
 */
const UNREGISTER_WAIT_MS = 100;

interface Retired {
  index: number;
  release: () => void;
  done: () => void;
  finished: boolean;
  watch?: DeletionWait;
  round?: Round;
}

/** A delete request sent: `left` of its links are not deleted yet. */
interface Round {
  left: number;
  /** Ends the round's hold on the next one (UNREGISTER_WAIT_MS). */
  timer?: NodeJS.Timeout;
}

export interface ReaperOptions {
  /** Announcements of deletions; without it a link is released when its round's delete answers. */
  deletions?: LinkDeletions;
  /** Deletes running at once; each holds a host socket and a pool thread while the kernel waits (the daemon's is in daemon/kernel-waits.cts). */
  maxRounds: number;
  /** See UNREGISTER_WAIT_MS (the default). */
  unregisterWaitMs?: number;
}

export class LinkReaper {
  private pending: Retired[] = [];
  private running = 0;
  /** The round whose links are not all deleted yet (announced or answered): the next waits for it. */
  private underWay: Round | undefined;
  private roundCount = 0;
  private announced = 0;
  private retrying = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: (() => void) | undefined;
  private readonly deletions: LinkDeletions | undefined;
  private readonly maxRounds: number;
  private readonly unregisterWaitMs: number;

  constructor(
    private readonly host: Handle,
    readonly group: number,
    private readonly log: Logger,
    opts: ReaperOptions,
  ) {
    this.deletions = opts.deletions;
    this.maxRounds = Math.max(1, opts.maxRounds);
    this.unregisterWaitMs = opts.unregisterWaitMs ?? UNREGISTER_WAIT_MS;
  }

  /**
   * Starts listening for the deletion of a link about to be moved into the
   * retiring group. Call it before the move: a round under way deletes every
   * link in the group, this one too once it is there, and the kernel
   * announces a deletion only to those already listening. Hand the result to
   * enqueue(), or cancel it if the move fails.
   */
  listen(index: number): DeletionWait | undefined {
    return this.deletions?.wait(index);
  }

  /**
   * Call once the link (by its ifindex) is in the retiring group, with what
   * listen() gave before the move. `release` runs once the kernel has deleted
   * it; the returned promise resolves right after.
   */
  enqueue(index: number, release: () => void, listening?: DeletionWait): Promise<void> {
    const deleted = new Promise<void>((done) => {
      const item: Retired = { index, release, done, finished: false };
      if (listening !== undefined) this.watch(item, listening);
      this.pending.push(item);
    });
    this.markBusy();
    this.startRounds();
    return deleted;
  }

  /** True when deleteNow would neither queue behind another delete nor take a round that queued links are waiting for. */
  get canDeleteNow(): boolean {
    return this.mayStartRound && this.pending.length === 0;
  }

  private get mayStartRound(): boolean {
    return this.running < this.maxRounds && this.underWay === undefined && !this.retrying;
  }

  /**
   * Deletes one link, now, in a round of its own: for a sync Detach that
   * finds nothing under way (canDeleteNow), which then need not move the link
   * to the retiring group first. By its ifindex, or by an alternative name
   * (the link's index is still needed, to hear its deletion announced).
   * Resolves once the kernel has announced the link gone, or answered;
   * rejects with the kernel's error if it refused, the link then being still
   * there. By index, a link already gone counts as deleted; by name, no link
   * of that name rejects with ENODEV.
   */
  deleteNow(index: number, altName?: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const item: Retired = { index, release: () => undefined, done: resolve, finished: false };
      this.markBusy();
      const round = this.beginRound([item]);
      const request = altName === undefined ? deleteLinkRequest(index) : deleteLinkByAltNameRequest(altName);
      void this.host
        .request(request)
        .then(
          () => this.finish(item),
          (err: unknown) => {
            if ((isErrno(err, "ENODEV") && altName === undefined) || item.finished) return this.finish(item);
            item.finished = true;
            item.watch?.cancel();
            reject(err);
          },
        )
        .finally(() => this.endRound(round));
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
    if (this.pending.length > 0 && this.mayStartRound) this.startRound();
  }

  private startRound(): void {
    // Every link enqueued so far is in the group now; later ones go to a later round.
    // Links an earlier round took along (they were in the group by then) are done already.
    const batch = this.pending.splice(0).filter((item) => !item.finished);
    if (batch.length === 0) return;
    const round = this.beginRound(batch);
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
      .finally(() => this.endRound(round));
  }

  private markBusy(): void {
    if (this.markIdle === undefined) this.idle = new Promise((resolve) => (this.markIdle = resolve));
  }

  /** Counts a delete request about to be sent, and listens for the deletion of each of its links. */
  private beginRound(batch: Retired[]): Round {
    this.running++;
    this.roundCount++;
    const round: Round = { left: batch.length };
    round.timer = setTimeout(() => this.unregistered(round), this.unregisterWaitMs).unref();
    this.underWay = round;
    for (const item of batch) {
      item.round = round;
      // Listen before asking: the announcement goes only to those already listening.
      if (item.watch === undefined) {
        const listening = this.listen(item.index);
        if (listening !== undefined) this.watch(item, listening);
      }
    }
    return round;
  }

  private watch(item: Retired, listening: DeletionWait): void {
    item.watch = listening;
    void listening.deleted.then(() => {
      if (!item.finished) this.announced++;
      this.finish(item);
    });
  }

  /** The round's links are all deleted, it has answered, or it took too long: the next round may start. */
  private unregistered(round: Round): void {
    clearTimeout(round.timer);
    if (this.underWay !== round) return;
    this.underWay = undefined;
    this.startRounds();
  }

  private endRound(round: Round): void {
    this.running--;
    this.unregistered(round);
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
    if (item.round !== undefined && --item.round.left === 0) this.unregistered(item.round);
  }
}
