import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { DAEMON_ENV, DAEMON_NODE_FLAGS } from "./node-flags.js";

test("the daemon's shebang passes exactly DAEMON_NODE_FLAGS", () => {
  const bin = new URL("./workloadnetd.cjs", import.meta.url);
  const firstLine = readFileSync(bin, "utf8").split("\n", 1)[0];
  assert.equal(firstLine, `#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(" ")}`);
});

test("the launcher bin/workloadnetd passes exactly DAEMON_NODE_FLAGS", () => {
  const launcher = readFileSync(new URL("../../../bin/workloadnetd", import.meta.url), "utf8");
  const exec = launcher.split("\n").find((l) => l.startsWith('exec "$node"'));
  assert.equal(exec, `exec "$node" ${DAEMON_NODE_FLAGS.join(" ")} "$root/dist/src/cli/workloadnetd.cjs" "$@"`);
});

test("the launcher bin/workloadnetd sets DAEMON_ENV, unless already set", () => {
  const launcher = readFileSync(new URL("../../../bin/workloadnetd", import.meta.url), "utf8").split("\n");
  const exports = launcher.filter((l) => l.startsWith("export "));
  assert.deepEqual(
    exports,
    Object.entries(DAEMON_ENV).map(([k, v]) => `export ${k}="\${${k}:-${v}}"`),
  );
});
