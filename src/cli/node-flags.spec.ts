import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { DAEMON_NODE_FLAGS } from "./node-flags.js";

test("the daemon's shebang passes exactly DAEMON_NODE_FLAGS", () => {
  const bin = new URL("./workloadnetd.cjs", import.meta.url);
  const firstLine = readFileSync(bin, "utf8").split("\n", 1)[0];
  assert.equal(firstLine, `#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(" ")}`);
});
