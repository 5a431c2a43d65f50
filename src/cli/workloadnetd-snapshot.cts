// Builds a startup snapshot of the daemon: an experiment, not used by the
// launcher (docs/performance-cold.md, "A startup snapshot": it saved 0-40 ms
// of CPU to ready, too little for what it needs). scripts/build-snapshot.mjs
// runs it as
//   node DAEMON_NODE_FLAGS --snapshot-blob OUT --build-snapshot-config CONFIG
// with this file as the config's builder. It loads the bundle
// (workloadnetd-bundle.cjs) as load-bundle.cts does, so Node's modules, the
// libraries and the daemon's own modules are loaded and their top levels
// run, but not the daemon's main; V8 then writes the heap to OUT.
// `node DAEMON_NODE_FLAGS --snapshot-blob OUT -- ARGS` starts the daemon
// from it: the function given to setDeserializeMainFunction below runs main
// in the deserialised heap.
//
// What a snapshot cannot hold is deferred to that function:
// - the native addons (build/Release/*.node): while building, requiring one
//   gives an empty object, which is filled with the addon's functions after
//   deserialisation, before main;
// - Node's modules whose native parts Node cannot snapshot (node:http,
//   node:https, node:http2: the build dies on their handles): the bundle gets
//   a stand-in that requires the module on first use. esbuild's ES-module
//   view of a CommonJS module copies its export names at load, so the build
//   passes the names (WORKLOADNET_SNAPSHOT_LAZY, a JSON object: module →
//   export names), read in a process of its own;
// - libuv's pool size (given by the build), argv, and the check that the
//   bundle on disk is the one in the snapshot (else the daemon is started
//   again without the snapshot).
//
// No exports: the builder runs as a plain script, without `module`/`exports`.
import crypto = require("node:crypto");
import fs = require("node:fs");
import Module = require("node:module");
import path = require("node:path");
import v8 = require("node:v8");
import vm = require("node:vm");

const cli = __dirname;
const bundleFile = path.join(cli, "workloadnetd-bundle.cjs");
const entryFile = path.join(cli, "workloadnetd.cjs");
/** What workloadnetd-main.ts hands its main to instead of calling it. */
const DEFER_MAIN = Symbol.for("workloadnet.snapshot.main");

const source = fs.readFileSync(bundleFile, "utf8");
const digest = crypto.hash("sha256", source);
const realRequire = Module.createRequire(bundleFile);
// kernel-waits.cts's POOL_THREADS, from the build: a module of our own
// required here would leave Node's module loader set up in the snapshot,
// which Node refuses when it starts from it.
const poolThreads = process.env.WORKLOADNET_SNAPSHOT_POOL_THREADS;
if (poolThreads === undefined || !/^[0-9]+$/.test(poolThreads)) throw new Error("WORKLOADNET_SNAPSHOT_POOL_THREADS: the daemon's libuv pool size, from the build");
const lazyExports = JSON.parse(process.env.WORKLOADNET_SNAPSHOT_LAZY ?? "{}") as Record<string, string[]>;

/** A module required on first use; its export names known in advance. */
function lazyBuiltin(id: string, names: string[]): object {
  let real: Record<PropertyKey, unknown> | undefined;
  const load = (): Record<PropertyKey, unknown> => (real ??= realRequire(id) as Record<PropertyKey, unknown>);
  return new Proxy(
    {},
    {
      get: (_t, key) => load()[key],
      has: (_t, key) => key in load(),
      ownKeys: () => (real === undefined ? names : Reflect.ownKeys(real)),
      getOwnPropertyDescriptor: (_t, key) => {
        if (real === undefined && typeof key === "string" && names.includes(key)) return { configurable: true, enumerable: true, writable: true, value: undefined };
        return Reflect.getOwnPropertyDescriptor(load(), key);
      },
    },
  );
}

const bundleRequire = Object.assign((id: string): unknown => {
  const names = lazyExports[id] ?? lazyExports[id.replace(/^node:/, "")];
  return names !== undefined ? lazyBuiltin(id, names) : realRequire(id);
}, realRequire);

// Addons: an empty object now, filled after deserialisation.
type Extensions = Record<string, (mod: { exports: unknown }, filename: string) => void>;
const extensions = (Module as unknown as { _extensions: Extensions })._extensions;
const loadAddon = extensions[".node"]!;
const addons: { stub: object; filename: string }[] = [];
extensions[".node"] = (mod, filename) => {
  const stub = {};
  addons.push({ stub, filename });
  mod.exports = stub;
};

let daemonMain: (() => Promise<void>) | undefined;
(globalThis as Record<symbol, unknown>)[DEFER_MAIN] = (main: () => Promise<void>): void => {
  daemonMain = main;
};
// WORKLOADNET_SNAPSHOT_EAGER=1: the bundle compiled whole, its bytecode in the snapshot.
const eager = process.env.WORKLOADNET_SNAPSHOT_EAGER === "1";
if (eager) v8.setFlagsFromString("--no-lazy");
try {
  const script = new vm.Script(Module.wrap(source), {
    filename: bundleFile,
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const mod = new Module(bundleFile);
  mod.filename = bundleFile;
  mod.loaded = true;
  const wrapper = script.runInThisContext() as (exports: unknown, require: unknown, module: Module, filename: string, dirname: string) => void;
  wrapper.call(mod.exports, mod.exports, bundleRequire, mod, bundleFile, cli);
} finally {
  if (eager) v8.setFlagsFromString("--lazy");
  extensions[".node"] = loadAddon;
  delete (globalThis as Record<symbol, unknown>)[DEFER_MAIN];
}
if (daemonMain === undefined) throw new Error(`${bundleFile} did not hand over its main: built from another workloadnetd-main?`);
const runMain = daemonMain;

v8.startupSnapshot.setDeserializeMainFunction(() => {
  // From a snapshot, argv is node and the arguments; the daemon expects
  // node, the entry, the arguments (as below, before main).
  const args = process.argv.slice(1);
  // A bundle rebuilt since (without its snapshot) is what should run: start
  // again without the snapshot, in this process (same pid for the service manager).
  let onDisk: string | undefined;
  try {
    onDisk = crypto.hash("sha256", fs.readFileSync(bundleFile, "utf8"));
  } catch {
    // no bundle any more: the entry will load the modules
  }
  if (onDisk !== digest) {
    process.stderr.write(`workloadnetd: the startup snapshot is of another build of ${bundleFile}: starting without it\n`);
    const flags = process.execArgv.filter((a, i, all) => a !== "--snapshot-blob" && all[i - 1] !== "--snapshot-blob" && !a.startsWith("--snapshot-blob="));
    process.execve!(process.execPath, [process.execPath, ...flags, entryFile, ...args]);
  }
  // Read by libuv when its pool first starts, which nothing has done yet (see workloadnetd.cts).
  process.env.UV_THREADPOOL_SIZE ??= poolThreads;
  for (const { stub, filename } of addons) {
    const loaded = { exports: {} as object };
    loadAddon(loaded, filename);
    // N-API defines the functions non-enumerable.
    Object.defineProperties(stub, Object.getOwnPropertyDescriptors(loaded.exports));
  }
  process.argv.splice(1, 0, entryFile);
  void runMain();
});
