// Link deletions as the kernel announces them. Deleting a veth answers only
// after the kernel has waited for every reference to the device to go (tens
// of milliseconds), but it announces the deletion (RTM_DELLINK to the link
// group's listeners) as soon as the device is unregistered: by then its name
// is free, and its routes, addresses and neighbours are gone. Waiting for the
// announcement instead of the answer lets a Detach return in about a
// millisecond with nothing of the workload left in the namespace.
//
// Listens in the daemon's own namespace, and only while somebody waits.
import { AF_UNSPEC, RTM_DELLINK, RTNLGRP_LINK } from "./codec/constants.js";
import { parseMessages } from "./codec/message.js";
import { native, type NativeMonitor } from "./native.js";

export interface DeletionWait {
  /** Resolves when the kernel announces the link deleted; never rejects. */
  deleted: Promise<void>;
  /** Stops waiting (the promise then never settles). */
  cancel(): void;
}

export class LinkDeletions {
  private readonly waiters = new Map<number, Set<() => void>>();
  private joined = false;
  private closed = false;
  /** Datagrams the kernel dropped (ENOBUFS) or read errors: announcements may have been missed. */
  private missed = 0;

  private constructor(private readonly monitor: NativeMonitor) {}

  /** Opens the listening socket; it listens to nothing until a wait begins. */
  static open(): LinkDeletions {
    let self: LinkDeletions | undefined;
    const monitor = native.openMonitor((data, errno) => self?.onData(data, errno));
    self = new LinkDeletions(monitor);
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

  /** Listen only while somebody waits: otherwise every link change would wake us. */
  private updateMembership(): void {
    if (this.closed) return;
    const want = this.waiters.size > 0;
    if (want === this.joined) return;
    if (want) native.monitorJoin(this.monitor, RTNLGRP_LINK);
    else native.monitorLeave(this.monitor, RTNLGRP_LINK);
    this.joined = want;
  }
}
