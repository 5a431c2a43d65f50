// V8 flags the daemon runs with. The defaults let the young generation grow to
// 48 MiB and the old one to gigabytes before collecting hard, so a daemon
// with 1 000 attachments sat at ~120 MiB RSS; with these it stays near 80 MiB
// (see docs/performance.md). Semi-spaces of 4 MiB rather than 1: about 6 MiB
// more, and 10-20 % less CPU per Attach, most of it fewer young-generation
// collections. The old-space cap is far above what any number of attachments
// needs (a few KiB each).
//
// The launcher bin/workloadnetd and the entry's shebang
// (`#!/usr/bin/env -S node ...`) pass them (kept in sync by tests); whoever
// starts the daemon with `node` directly should pass them too.
export const DAEMON_NODE_FLAGS = ["--max-semi-space-size=4", "--max-old-space-size=256"] as const;
