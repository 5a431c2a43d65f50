#!/usr/bin/env -S node --max-semi-space-size=4 --max-old-space-size=256
// The daemon's entry point (the bin). Netlink exchanges that wait in the
// kernel (veth deletes, see daemon/kernel-waits.cts) each hold a thread of
// libuv's pool, so the daemon wants more than the default 4. The pool's size
// is read once, when it first starts, and the ES module loader already reads
// files on it: so this entry is CommonJS (loaded without the pool) and sets
// the size before it imports the daemon.
import { POOL_THREADS } from "../daemon/kernel-waits.cjs";

process.env.UV_THREADPOOL_SIZE ??= String(POOL_THREADS);
void import("./workloadnetd-main.js");
