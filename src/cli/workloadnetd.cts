#!/usr/bin/env -S node --max-semi-space-size=4 --max-old-space-size=256 --no-flush-bytecode
// The daemon's entry point (the bin). Netlink exchanges that wait in the
// kernel (veth deletes, see daemon/kernel-waits.cts) each hold a thread of
// libuv's pool, so the daemon wants more than the default 4. The pool's size
// is read once, when it first starts, and the ES module loader already reads
// files on it: so this entry is CommonJS (loaded without the pool) and sets
// the size before it imports the daemon.
//
// Start-up (docs/performance-cold.md): the daemon is loaded from one bundled
// file when the build made one (workloadnetd-bundle.cjs, see
// scripts/bundle-daemon.mjs), else from its modules; and V8's compiled code
// is cached on disk between starts, in a directory beside the code, so only
// whoever may change the code may change the cache: the bundle's by
// load-bundle.cts (with what the warm-up compiled), the modules' by Node's
// compile cache.
import { existsSync } from "node:fs";
import { enableCompileCache } from "node:module";
import { join } from "node:path";
import { POOL_THREADS } from "../daemon/kernel-waits.cjs";
import { loadBundle } from "./load-bundle.cjs";

process.env.UV_THREADPOOL_SIZE ??= String(POOL_THREADS);
// A directory that cannot be made or written just means no cache; Node's
// NODE_DISABLE_COMPILE_CACHE=1 turns it off.
const cacheDir = join(__dirname, "..", "..", ".compile-cache");
enableCompileCache(cacheDir);
// WORKLOADNET_BUNDLE=off: the modules instead (for comparing the two).
const bundle = join(__dirname, "workloadnetd-bundle.cjs");
if (existsSync(bundle) && process.env.WORKLOADNET_BUNDLE !== "off") loadBundle(bundle, cacheDir);
else void import("./workloadnetd-main.js");
