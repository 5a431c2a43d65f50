// V8 flags the daemon runs with. The defaults let the young generation grow to
// 48 MiB and the old one to gigabytes before collecting hard, so a daemon
// with 1 000 attachments sat at ~120 MiB RSS; with these it stays near 80 MiB
// (see docs/performance.md). Semi-spaces of 4 MiB rather than 1: about 6 MiB
// more, and 10-20 % less CPU per Attach, most of it fewer young-generation
// collections. The old-space cap is far above what any number of attachments
// needs (a few KiB each).
//
// --no-flush-bytecode: V8 may drop the compiled bytecode of functions left
// unused across enough full collections, so a daemon idle for a while would
// start cold again. Measured here it did not happen (no function flushed after
// 5 minutes idle with a forced collection every 5 s, V8's own trace); the flag
// keeps it so should V8's heuristics change, for the cost of keeping the
// bytecode of what ran only at start (docs/performance-cold.md).
//
// The launcher bin/workloadnetd and the entry's shebang
// (`#!/usr/bin/env -S node ...`) pass them (kept in sync by tests); whoever
// starts the daemon with `node` directly should pass them too, and set
// DAEMON_ENV below.
export const DAEMON_NODE_FLAGS = ["--max-semi-space-size=4", "--max-old-space-size=256", "--no-flush-bytecode"] as const;

// Environment the launcher bin/workloadnetd gives the daemon (a test keeps
// them in step), unless already set.
//
// MALLOC_ARENA_MAX: glibc gives threads that malloc at the same time arenas
// of their own, up to 8 per CPU, and the daemon has ~60 threads (libuv's pool,
// where netlink exchanges run, and V8's workers); after a burst of calls each
// arena keeps the pages freed in it. With two, the daemon's RSS with 1 000
// attachments was ~7 MiB lower (the malloc heaps 13.5 MiB instead of 21.8),
// CPU per call unchanged (docs/performance-cold.md).
export const DAEMON_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2" };
