// A handle is bound to one network namespace: its sockets are opened inside
// that namespace once (the opening thread switches in, opens, and switches
// straight back; native/netlink_socket.c), and no later call switches
// namespaces again. Operations (link.ts, addr.ts, ...) take a handle as their
// first argument.
import { NetlinkSocket, type Outcome, type Request } from "./socket.js";
import type { NetlinkMessage } from "./codec/message.js";

export interface HandleOptions {
  /**
   * How many requests may be in the kernel at once. Each needs its own socket;
   * more than one only pays off where calls block (e.g. veth deletes).
   */
  maxSockets?: number;
  /**
   * Whether requests that cannot block may run on the calling thread, saving
   * the thread pool's handoffs (see socket.ts): a fixed answer, or a question
   * asked before each exchange. Default: never; the caller knows whether its
   * event loop can spare the kernel's microseconds.
   */
  inline?: boolean | (() => boolean);
}

export class Handle {
  private readonly idle: NetlinkSocket[] = [];
  private readonly waiters: ((s: NetlinkSocket) => void)[] = [];
  private open = 0;
  private closed = false;
  private readonly maxSockets: number;
  /** See HandleOptions.inline; asked before each exchange. */
  readonly inline: () => boolean;

  private constructor(private readonly nsFd: number, readonly where: string, opts: HandleOptions, first: NetlinkSocket) {
    this.maxSockets = Math.max(1, opts.maxSockets ?? 1);
    const inline = opts.inline ?? false;
    this.inline = typeof inline === "function" ? inline : () => inline;
    // The first socket is opened by the factory, so a bad namespace fails at creation.
    this.idle.push(first);
    this.open = 1;
  }

  /** A handle in the daemon's own namespace. */
  static current(opts: HandleOptions = {}): Handle {
    const where = "host namespace";
    return new Handle(-1, where, opts, NetlinkSocket.open(-1, where));
  }

  /**
   * A handle in the namespace `nsFd` refers to. The fd is used while opening
   * sockets: keep it open as long as the handle may open more (maxSockets > 1).
   */
  static inNamespace(nsFd: number, where: string, opts: HandleOptions = {}): Handle {
    return new Handle(nsFd, where, opts, NetlinkSocket.open(nsFd, where));
  }

  /** Like inNamespace, without blocking the event loop for the namespace switch. */
  static async openInNamespace(nsFd: number, where: string, opts: HandleOptions = {}): Promise<Handle> {
    return new Handle(nsFd, where, opts, await NetlinkSocket.openAsync(nsFd, where));
  }

  async request(req: Request): Promise<NetlinkMessage[]> {
    const s = await this.acquire();
    try {
      return await s.request(req, this.inline());
    } finally {
      this.release(s);
    }
  }

  async batch(reqs: Request[]): Promise<Outcome[]> {
    const s = await this.acquire();
    try {
      return await s.batch(reqs, this.inline());
    } finally {
      this.release(s);
    }
  }

  private acquire(): Promise<NetlinkSocket> {
    if (this.closed) return Promise.reject(new Error(`netlink handle for ${this.where} is closed`));
    const s = this.idle.pop();
    if (s) return Promise.resolve(s);
    if (this.open < this.maxSockets) {
      this.open++;
      try {
        return Promise.resolve(NetlinkSocket.open(this.nsFd, this.where));
      } catch (err) {
        this.open--;
        return Promise.reject(err);
      }
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(s: NetlinkSocket): void {
    const next = this.waiters.shift();
    if (next) next(s);
    else if (this.closed) void s.close();
    else this.idle.push(s);
  }

  /** Closes idle sockets now and busy ones when their exchange ends. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.idle.splice(0).map((s) => s.close()));
  }
}
