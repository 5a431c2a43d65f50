// Which requests can keep the kernel busy for long. Deleting a link, or
// taking one down, waits for an RCU grace period (tens of milliseconds) while
// holding the rtnl lock, which every other link, address and route change
// then waits for too; a dump's size is unbounded. Such requests always run
// on the thread pool. Everything else is answered by the kernel in
// microseconds, and may run on the calling thread while none of our blocking
// requests is in flight (see NetlinkSocket).
import { IFF_UP, NLM_F_DUMP, RTM_DELLINK, RTM_NEWLINK, RTM_SETLINK } from "./codec/constants.js";
import type { Request } from "./socket.js";

export function mayBlock(req: Request): boolean {
  if ((req.flags & NLM_F_DUMP) === NLM_F_DUMP) return true;
  if (req.type === RTM_DELLINK) return true;
  if (req.type === RTM_NEWLINK || req.type === RTM_SETLINK) return takesLinkDown(req);
  return false;
}

/** The ifinfomsg (first part) changes IFF_UP to off. */
function takesLinkDown(req: Request): boolean {
  const ifi = req.parts[0];
  if (ifi === undefined || ifi.length < 16) return false;
  const flags = ifi.readUInt32LE(8);
  const change = ifi.readUInt32LE(12);
  return (change & IFF_UP) !== 0 && (flags & IFF_UP) === 0;
}

/**
 * Blocking requests of this process in the kernel right now. The rtnl lock is
 * one for the whole kernel, so this counts across every namespace and socket.
 */
let inFlight = 0;

export const blockingInFlight = (): number => inFlight;

/** Runs `work` counted as in flight while it is not settled. */
export async function countedAsBlocking<T>(work: () => Promise<T>): Promise<T> {
  inFlight++;
  try {
    return await work();
  } finally {
    inFlight--;
  }
}
