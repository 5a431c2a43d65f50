// A NETLINK_ROUTE socket bound to one namespace. It numbers requests, sends
// them (alone or in a batch) and matches every reply to its request. One
// exchange at a time per socket: replies of concurrent exchanges would mix.
//
// An exchange runs on libuv's thread pool, so the event loop keeps going
// while the kernel works. Handing over to a pool thread and back costs tens
// of microseconds, more than the kernel needs for most requests; so an
// exchange asked to run inline does its system calls on the calling thread,
// unless it may block (blocking.ts) or a blocking request of ours is in the
// kernel, holding the lock the inline one would wait for.
import { blockingInFlight, countedAsBlocking, mayBlock } from "./blocking.js";
import { native } from "./native.js";
import { closeSync } from "node:fs";
import { NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_ECHO, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP } from "./codec/constants.js";
import { encodeMessage, parseAck, parseDone, parseMessages, type NetlinkMessage } from "./codec/message.js";
import { NetlinkError, wrapSystemError } from "./errors.js";

export interface Request {
  type: number;
  /** NLM_F_* flags beyond REQUEST (ACK is added for non-dumps). */
  flags: number;
  parts: Buffer[];
  /** Prefix for any error: what this request does, on what. */
  context: string;
  /** The kernel answers with data (a netfilter dump): the rtnetlink rule of answeredByAckOnly does not apply. */
  dataReplies?: true;
}

/** Per request: the data messages of a dump, or an error. */
export type Outcome = { ok: true; messages: NetlinkMessage[] } | { ok: false; error: NetlinkError };

const exchanges = { inline: 0, pooled: 0 };

/** How many exchanges this process has run on the calling thread and on the pool. */
export const exchangeCounts = (): { inline: number; pooled: number } => ({ ...exchanges });

/**
 * The kernel answers with a lone acknowledgement: not a get (rtnetlink's get
 * types, dumps included, are the third of each four: GETLINK, GETADDR...) and
 * no echo. (The dump bits say nothing here: NLM_F_EXCL is one of them.) The
 * addon then reads the acknowledgements of a batch several per system call.
 */
export function answeredByAckOnly(req: Request): boolean {
  return req.dataReplies === undefined && (req.flags & NLM_F_ECHO) === 0 && (req.type & 3) !== 2;
}

export class NetlinkSocket {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private busy: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(private readonly fd: number, readonly where: string) {}

  /** Opens a socket inside the namespace nsFd refers to (-1: the daemon's own). */
  static open(nsFd: number, where: string): NetlinkSocket {
    try {
      return new NetlinkSocket(native.openSocket(nsFd), where);
    } catch (err) {
      throw describeOpenError(err, where);
    }
  }

  /** A NETLINK_NETFILTER socket in the daemon's own namespace (conntrack). */
  static openNetfilter(where: string): NetlinkSocket {
    try {
      return new NetlinkSocket(native.openNetfilterSocket(), where);
    } catch (err) {
      throw describeOpenError(err, where);
    }
  }

  /** Like open(), with the namespace switch done on a worker thread. */
  static async openAsync(nsFd: number, where: string): Promise<NetlinkSocket> {
    try {
      return new NetlinkSocket(await native.openSocketAsync(nsFd), where);
    } catch (err) {
      throw describeOpenError(err, where);
    }
  }

  /** Sends one request; resolves with its reply messages or rejects with a NetlinkError. */
  async request(req: Request, inline = false): Promise<NetlinkMessage[]> {
    const [outcome] = await this.batch([req], inline);
    if (!outcome) throw new Error("netlink: no outcome for request");
    if (!outcome.ok) throw outcome.error;
    return outcome.messages;
  }

  /**
   * Sends several requests in one system call and waits for all answers. The
   * kernel handles each on its own: a failure does not stop the ones after it.
   * `inline`: run on the calling thread where that cannot block (see above).
   */
  batch(reqs: Request[], inline = false): Promise<Outcome[]> {
    if (this.closed) return Promise.reject(new Error(`netlink socket in ${this.where} is closed`));
    const run = this.busy.then(() => this.exchange(reqs, inline));
    this.busy = run.catch(() => undefined);
    return run;
  }

  private async exchange(reqs: Request[], inline: boolean): Promise<Outcome[]> {
    const first = this.nextSeqs(reqs.length);
    const wire = reqs.map((r, i) => {
      const dump = (r.flags & NLM_F_DUMP) === NLM_F_DUMP;
      return encodeMessage(r.type, r.flags | NLM_F_REQUEST | (dump ? 0 : NLM_F_ACK), first + i, r.parts);
    });
    const request = wire.length === 1 ? wire[0]! : Buffer.concat(wire);
    const blocking = reqs.some(mayBlock);
    const acks = reqs.every(answeredByAckOnly);
    let raw: Buffer;
    try {
      if (inline && !blocking && blockingInFlight() === 0) {
        exchanges.inline++;
        raw = native.exchangeSync(this.fd, request, reqs.length, acks);
      } else {
        exchanges.pooled++;
        raw = await (blocking ? countedAsBlocking(() => native.exchange(this.fd, request, reqs.length, acks)) : native.exchange(this.fd, request, reqs.length, acks));
      }
    } catch (err) {
      throw wrapSystemError(`${reqs[0]?.context ?? "netlink request"} (socket in ${this.where})`, err);
    }
    const byIndex: NetlinkMessage[][] = reqs.map(() => []);
    const outcomes: (Outcome | undefined)[] = reqs.map(() => undefined);
    const interrupted = new Set<number>();
    for (const m of parseMessages(raw)) {
      const i = (m.seq - first) >>> 0;
      const req = reqs[i];
      if (req === undefined) continue; // a stray reply to an earlier, abandoned exchange
      if (m.type === NLMSG_ERROR) {
        const ack = parseAck(m);
        outcomes[i] = ack.errno === 0 ? { ok: true, messages: byIndex[i]! } : { ok: false, error: new NetlinkError(req.context, ack.errno, ack.extack) };
      } else if (m.type === NLMSG_DONE) {
        const errno = parseDone(m);
        if (errno !== 0) outcomes[i] = { ok: false, error: new NetlinkError(req.context, errno) };
        // The table changed during the dump, so it may be inconsistent; the caller may retry.
        else if (interrupted.has(i)) outcomes[i] = { ok: false, error: new NetlinkError(`${req.context} (dump interrupted)`, 4 /* EINTR */) };
        else outcomes[i] = { ok: true, messages: byIndex[i]! };
      } else if (m.type !== NLMSG_NOOP) {
        if (m.flags & NLM_F_DUMP_INTR) interrupted.add(i);
        byIndex[i]!.push(m);
      }
    }
    return outcomes.map((o, i) => o ?? { ok: false, error: new NetlinkError(`${reqs[i]!.context} (no answer)`, 5 /* EIO */) });
  }

  private nextSeqs(n: number): number {
    const first = this.seq;
    this.seq = (this.seq + n) % 0x7fffffff;
    if (this.seq < first) {
      // Keep a batch's numbers contiguous across the wrap.
      this.seq = n;
      return 0;
    }
    return first;
  }

  /** Closes the fd once every queued exchange has finished (never under a running one). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.busy;
    closeSync(this.fd);
  }
}

function describeOpenError(err: unknown, where: string): Error {
  const wrapped = wrapSystemError(`open netlink socket in ${where}`, err);
  // setns refuses a wrong fd with a bare errno; say what it means.
  const e = err as { syscall?: unknown; code?: unknown };
  if (e.syscall === "setns") {
    wrapped.message +=
      e.code === "EINVAL" ? " (setns: the fd is not a network namespace)" : e.code === "EBADF" ? " (setns: the namespace fd is not open)" : " (setns)";
  }
  return wrapped;
}
