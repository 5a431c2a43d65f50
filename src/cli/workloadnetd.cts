#!/usr/bin/env -S node --max-semi-space-size=4 --max-old-space-size=256
// The daemon's entry point (the bin). Netlink exchanges that wait in the
// kernel (a veth delete, ~20 ms; up to 12 at once, see reaper.ts) each hold
// a thread of libuv's pool, so the daemon wants more than the default 4. The pool's size is read once,
// when it first starts, and the ES module loader already reads files on it:
// so this entry is CommonJS (loaded without the pool) and sets the size
// before it imports the daemon.
process.env.UV_THREADPOOL_SIZE ??= "32";
void import("./workloadnetd-main.js");
