// After a burst of calls the daemon keeps memory it no longer uses: glibc's
// free() gives back only the top of each malloc heap, so what was freed inside
// them (V8's compiler zones, Buffers, netlink replies, in the arenas of
// libuv's pool and V8's threads) stays resident. Once no call has started for
// a second, after at least 32 calls since the last time, the free pages go
// back to the kernel (malloc_trim, on a worker thread); and once more 10 s
// later if the daemon is still idle, when V8's memory reducer (8 s after its
// last full collection) has freed the Buffers its heap held. The
// start counts as a burst (modules loaded, the warm-up's calls): it is
// followed by the same two releases. After that, a daemon nobody calls wakes
// for none of this. Figures: docs/performance-cold.md.
import type { ActiveCalls } from "../service/active-calls.js";

export interface ReleaseTiming {
  /** No call started for this long: idle. */
  idleMs: number;
  /** The second release, this long after the first. */
  againMs: number;
  /**
   * Calls since the last release below which an idle spell releases nothing:
   * a trim takes ~1 ms of a pool thread even after a single call (~20 ms
   * after a large burst), as much as the call itself.
   */
  minCalls: number;
}

export const RELEASE_TIMING: ReleaseTiming = { idleMs: 1000, againMs: 10_000, minCalls: 32 };

/** Calls `release` as described above; returns a function that stops it. */
export function releaseMemoryWhenIdle(calls: ActiveCalls, release: () => void, timing: ReleaseTiming = RELEASE_TIMING): () => void {
  let timer: NodeJS.Timeout | undefined;
  let seen = 0; // calls.started when the timer was armed
  let releasedAt = -timing.minCalls; // calls.started at the last release; the start counts as a burst
  let second = false; // the timer is the second release's
  const arm = (ms: number): void => {
    timer = setTimeout(check, ms);
    timer.unref();
  };
  function check(): void {
    timer = undefined;
    if (calls.count > 0 || calls.started !== seen) {
      // Not idle yet (or again): wait for a quiet spell.
      seen = calls.started;
      second = false;
      arm(timing.idleMs);
      return;
    }
    if (second) {
      second = false;
      release();
    } else if (calls.started - releasedAt >= timing.minCalls) {
      releasedAt = calls.started;
      release();
      second = true;
      arm(timing.againMs);
    }
  }
  calls.onStart = () => {
    if (timer !== undefined && !second) return; // the idle check is armed already
    // Idle until now, or waiting for the second release: wait for calls to stop.
    clearTimeout(timer);
    second = false;
    seen = calls.started;
    arm(timing.idleMs);
  };
  arm(timing.idleMs);
  return () => {
    clearTimeout(timer);
    timer = undefined;
    calls.onStart = undefined;
  };
}
