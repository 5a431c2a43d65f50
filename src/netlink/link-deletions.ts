// Link deletions as the kernel announces them. Deleting a veth answers only
// after the kernel has waited for every reference to the device to go (tens
// of milliseconds), but it announces the deletion (RTM_DELLINK to the link
// group's listeners) as soon as the device is unregistered: by then its name
// is free, and its routes, addresses and neighbours are gone. Waiting for the
// announcement instead of the answer lets a Detach return in about a
// millisecond with nothing of the workload left in the namespace.
//
// Listens in the daemon's own namespace, only while somebody waits and for a
// while after (LINGER_MS): joining and leaving the group for each of a run of
// Detaches would cost each two system calls. The kernel passes on deletions
// only, so other link changes (an Attach makes several) never wake us.
import { AF_UNSPEC, RTM_DELLINK, RTNLGRP_LINK } from "./codec/constants.js";
import { parseMessages } from "./codec/message.js";
import { native, type NativeMonitor } from "./native.js";

/** How long the socket stays in the group after the last wait ends. */
const LINGER_MS = 1000;

export interface LinkDeletionsOptions {
  /** See LINGER_MS (the default); 0 leaves the group as soon as nobody waits. */
  lingerMs?: number;
}

export interface DeletionWait {
  /** Resolves when the kernel announces the link deleted; never rejects. */
  deleted: Promise<void>;
  /** Stops waiting (the promise then never settles). */
  cancel(): void;
}

export class LinkDeletions {
  private readonly waiters = new Map<number, Set<() => void>>();
  private joined = false;
  /** Leaves the group once nobody has waited for LINGER_MS. */
  private leaving: NodeJS.Timeout | undefined;
  private closed = false;
  /** Datagrams the kernel dropped (ENOBUFS) or read errors: announcements may have been missed. */
  private missed = 0;

  private constructor(
    private readonly monitor: NativeMonitor,
    private readonly lingerMs: number,
  ) {}

  /** Opens the listening socket; it listens to nothing until a wait begins. */
  static open(opts: LinkDeletionsOptions = {}): LinkDeletions {
    let self: LinkDeletions | undefined;
    const monitor = native.openMonitor((data, errno) => self?.onData(data, errno), RTM_DELLINK);
    self = new LinkDeletions(monitor, opts.lingerMs ?? LINGER_MS);
    return self;
  }

  /** How often announcements may have been lost (the kernel's queue overflowed). */
  get missedCount(): number {
    return this.missed;
  }

  /**
   * Waits for the deletion of the link with this index. Call before asking
   * for the deletion: an announcement is only seen by those already listening.
   */
  wait(index: number): DeletionWait {
    if (this.closed) return { deleted: new Promise(() => undefined), cancel: () => undefined };
    let waiter!: () => void;
    const deleted = new Promise<void>((resolve) => (waiter = resolve));
    let set = this.waiters.get(index);
    if (set === undefined) this.waiters.set(index, (set = new Set()));
    set.add(waiter);
    this.updateMembership();
    return {
      deleted,
      cancel: () => {
        const s = this.waiters.get(index);
        if (s?.delete(waiter) && s.size === 0) this.waiters.delete(index);
        this.updateMembership();
      },
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.leaving);
    this.waiters.clear();
    native.monitorClose(this.monitor);
  }

  private onData(data: Buffer | null, errno: number): void {
    if (data === null) {
      if (errno !== 0) this.missed++;
      return;
    }
    for (const m of parseMessages(data)) {
      // AF_UNSPEC: the device itself; bridge port notifications use AF_BRIDGE.
      if (m.type !== RTM_DELLINK || m.payload.length < 16 || m.payload.readUInt8(0) !== AF_UNSPEC) continue;
      const index = m.payload.readInt32LE(4);
      const set = this.waiters.get(index);
      if (set === undefined) continue;
      this.waiters.delete(index);
      for (const resolve of set) resolve();
    }
    this.updateMembership();
  }

  /** In the group while somebody waits, and for lingerMs after. */
  private updateMembership(): void {
    if (this.closed) return;
    if (this.waiters.size > 0) {
      if (!this.joined) native.monitorJoin(this.monitor, RTNLGRP_LINK);
      this.joined = true;
    } else if (this.joined && this.lingerMs === 0) {
      this.leave();
    } else if (this.joined && this.leaving === undefined) {
      // Checked when it fires rather than re-armed at every wait: one timer per linger, not per Detach.
      this.leaving = setTimeout(() => {
        this.leaving = undefined;
        if (!this.closed && this.waiters.size === 0) this.leave();
        else this.updateMembership();
      }, this.lingerMs);
      this.leaving.unref();
    }
  }

  private leave(): void {
    native.monitorLeave(this.monitor, RTNLGRP_LINK);
    this.joined = false;
  }
}
