// The client library is big (about two seconds to import here): it must be
// loaded only when the Kubernetes source is created, never by importing the
// daemon's modules, so the other modes start as fast as without it.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const distSrc = join(dirname(fileURLToPath(import.meta.url)), "../..");

/** Every compiled module of the daemon, except tests and the command entry points (they run on import). */
function daemonModules(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.c?js$/.test(e.name) && !e.name.endsWith(".spec.js") && !relative(distSrc, p).startsWith("cli/workloadnet")) out.push(p);
    }
  };
  walk(distSrc);
  return out;
}

const probe = `
import { registerHooks } from "node:module";
const loaded = new Set();
registerHooks({
  resolve(specifier, context, next) {
    const r = next(specifier, context);
    if (r.url.includes("/@kubernetes/client-node/")) loaded.add(r.url);
    return r;
  },
});
const modules = JSON.parse(process.argv[1]);
for (const m of modules) await import(m);
const afterImports = loaded.size;
const { createKubernetesSource } = await import(process.argv[2]);
// Without credentials this fails, but only after loading the client.
await createKubernetesSource({ nodeName: "n1", log: console }).catch(() => {});
console.log(JSON.stringify({ imported: modules.length, afterImports, afterCreate: loaded.size }));
`;

describe("the Kubernetes client is loaded only in Kubernetes mode", () => {
  it("importing every daemon module loads none of it; creating the source does", () => {
    const modules = daemonModules();
    assert.ok(modules.some((m) => m.endsWith("daemon/daemon.js")));
    assert.ok(modules.some((m) => m.endsWith("cluster/kubernetes/kubernetes-source.js")));
    const env = { ...process.env };
    delete env.KUBERNETES_SERVICE_HOST;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", probe, JSON.stringify(modules.map((m) => pathToFileURL(m).href)), pathToFileURL(join(distSrc, "cluster/kubernetes/index.js")).href], { env, encoding: "utf8" });
    const r = JSON.parse(out.trim().split("\n").at(-1)!) as { imported: number; afterImports: number; afterCreate: number };
    assert.equal(r.imported, modules.length);
    assert.equal(r.afterImports, 0, "no module of @kubernetes/client-node loaded by the daemon's imports");
    assert.ok(r.afterCreate > 0, "createKubernetesSource loads it");
  });
});
