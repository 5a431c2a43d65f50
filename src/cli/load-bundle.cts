// Runs the daemon's bundled file (workloadnetd-bundle.cjs) as `require` would,
// but compiled through vm.Script with a code cache of our own. Node's compile
// cache keeps only what V8 compiled when the file was loaded, so the
// functions the warm-up and the first calls run were compiled lazily at every
// start; V8's cache made after the daemon is ready (createCachedData) holds
// every function compiled by then, the warm-up's path included. The cache is
// written once, after a start that had none or whose cache V8 refused (V8
// checks its own version and flags, and of the source only its length: so
// the file starts with the SHA-256 of the bundle it was made from, and a
// cache of another bundle is not used), in the directory Node's compile cache uses, beside the code, so only
// whoever may change the code may change the cache. NODE_DISABLE_COMPILE_CACHE=1
// turns it off too. See docs/performance-cold.md.
import { hash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import Module, { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Script, constants } from "node:vm";

/** What the daemon calls once it is ready (src/daemon/daemon.ts). */
export const READY_HOOK = Symbol.for("workloadnet.ready");

export function loadBundle(file: string, cacheDir: string): void {
  const useCache = process.env.NODE_DISABLE_COMPILE_CACHE !== "1";
  // One file per Node build: two versions in turn would refuse each other's.
  const cacheFile = join(cacheDir, `workloadnetd-bundle-${process.version}-${process.arch}.v8`);
  const source = readFileSync(file, "utf8");
  // ~1.5 ms for the ~0.9 MB file.
  const digest = hash("sha256", source, "buffer");
  let cached: Buffer | undefined;
  if (useCache) {
    try {
      const saved = readFileSync(cacheFile);
      if (saved.length > digest.length && saved.subarray(0, digest.length).equals(digest)) cached = saved.subarray(digest.length);
    } catch {
      // none yet (or unreadable): made after this start
    }
  }
  const script = new Script(Module.wrap(source), {
    filename: file,
    cachedData: cached,
    // The Kubernetes client is imported at run time (--kubernetes).
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  if (useCache && (cached === undefined || script.cachedDataRejected === true)) {
    (globalThis as Record<symbol, unknown>)[READY_HOOK] = (): void => {
      // After the ready line, off the path of anything already waiting.
      setImmediate(() => {
        try {
          mkdirSync(cacheDir, { recursive: true });
          const tmp = `${cacheFile}.${process.pid}.tmp`;
          writeFileSync(tmp, Buffer.concat([digest, script.createCachedData()]), { mode: 0o644 });
          renameSync(tmp, cacheFile);
        } catch {
          // a directory that cannot be written just means no cache
        }
      });
    };
  }
  const mod = new Module(file, module);
  mod.filename = file;
  mod.loaded = true;
  const wrapper = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: Module, filename: string, dirname: string) => void;
  wrapper.call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file));
}
