// Builds the daemon's startup snapshot from the bundle (run after
// scripts/bundle-daemon.mjs): dist/workloadnetd-snapshot.blob (outside
// dist/src, so npm's package leaves it out), made
// by src/cli/workloadnetd-snapshot.cts on the project's Node.js. An experiment
// (docs/performance-cold.md, "A startup snapshot"): the launcher does not
// use it; the cold-start bench does, as a variant whose entry is the blob.
//
//   npm run build && node scripts/build-snapshot.mjs [--eager]
//
// --eager: the bundle compiled whole (V8's --no-lazy) while the snapshot is
// built, so its functions' bytecode is in the blob.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const cli = `${root}dist/src/cli/`;
const { DAEMON_NODE_FLAGS } = await import(`${cli}node-flags.js`);
const { POOL_THREADS } = await import(`${root}dist/src/daemon/kernel-waits.cjs`);
// The Node.js the launcher runs: a blob is refused by any other.
const node = existsSync(`${root}node_modules/.bin/node`) ? `${root}node_modules/.bin/node` : process.execPath;
const out = `${root}dist/workloadnetd-snapshot.blob`;

// Node's modules whose native parts a snapshot cannot hold: the bundle gets
// stand-ins that load them on first use, and needs their export names now.
const LAZY = ["http", "https", "http2"];
const names = spawnSync(node, ["-p", `JSON.stringify(Object.fromEntries(${JSON.stringify(LAZY)}.map((m) => [m, Object.getOwnPropertyNames(require(m))])))`], { encoding: "utf8" });
if (names.status !== 0) throw new Error(`listing the exports of ${LAZY.join(", ")}: ${names.stderr}`);

const tmp = `${out}.${process.pid}.tmp`;
const config = `${tmp}.json`;
// Node runs the builder as a plain script, without the `exports` that tsc's
// CommonJS output marks itself in: given one here. Beside it, for its __dirname.
const builder = `${cli}workloadnetd-snapshot.${process.pid}.tmp.cjs`;
writeFileSync(builder, `const exports = {};\n${readFileSync(`${cli}workloadnetd-snapshot.cjs`, "utf8")}`);
// Without Node's own code cache for its modules: it makes the blob twice as
// large, and reading it cost more than it saved (docs/performance-cold.md).
writeFileSync(config, JSON.stringify({ builder, withoutCodeCache: true }));
const res = spawnSync(node, [...DAEMON_NODE_FLAGS, "--snapshot-blob", tmp, "--build-snapshot-config", config], {
  env: { ...process.env, WORKLOADNET_SNAPSHOT_LAZY: names.stdout.trim(), WORKLOADNET_SNAPSHOT_POOL_THREADS: String(POOL_THREADS), ...(process.argv.includes("--eager") ? { WORKLOADNET_SNAPSHOT_EAGER: "1" } : {}) },
  encoding: "utf8",
});
rmSync(config, { force: true });
rmSync(builder, { force: true });
if (res.status !== 0) {
  rmSync(tmp, { force: true });
  throw new Error(`building the snapshot: exit ${res.status ?? res.signal}: ${res.stderr.trim().split("\n").slice(-5).join(" | ")}`);
}
renameSync(tmp, out);
console.log(`snapshot: ${out}`);
