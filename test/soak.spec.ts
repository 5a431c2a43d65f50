// A short soak (the full one is `npm run soak`): 400 attach/detach cycles from
// 16 concurrent clients, then no link, route, address, allocation or file
// descriptor may be left over. Runs in the sandbox.
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatReport, runSoak } from "../bench/soak.js";
import { assertSandbox } from "./sandbox.js";

test("400 attach/detach cycles from 16 clients leak nothing", async () => {
  assertSandbox();
  const r = await runSoak({ cycles: 400 });
  process.stdout.write(formatReport(r) + "\n");
  assert.equal(r.cycles, 400);
  assert.equal(r.errors, 0, r.errorSamples.join("; "));
  assert.equal(r.leakedLinks, 0);
  assert.equal(r.leakedRoutes, 0);
  assert.equal(r.leakedAddresses, 0);
  assert.equal(r.leakedAllocations, 0);
  assert.equal(r.dirtyPods, 0);
  assert.ok(!r.leaked, `descriptors: ${r.fdsAfterWarmup} after warm-up, ${r.fdsAtEnd} at the end, ${r.hostNetlinkAtEnd} host netlink sockets`);
});
