// When the daemon hands freed memory back: after its start and after a burst
// of calls, once they have stopped; never during them, after a few isolated
// calls, or while nobody calls. Real timers, shortened.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { ActiveCalls } from "../service/active-calls.js";
import { native } from "../netlink/native.js";
import { releaseMemoryWhenIdle, type ReleaseTiming } from "./release-memory.js";

const TIMING: ReleaseTiming = { idleMs: 40, againMs: 150, minCalls: 8 };
const { idleMs: IDLE, againMs: AGAIN } = TIMING;

/** Started, and past the two releases that follow the start. */
async function watch(): Promise<{ calls: ActiveCalls; releases: number[]; stop: () => void }> {
  const calls = new ActiveCalls();
  const releases: number[] = [];
  const t0 = performance.now();
  const stop = releaseMemoryWhenIdle(calls, () => releases.push(performance.now() - t0), TIMING);
  await sleep(IDLE + AGAIN + IDLE);
  assert.equal(releases.length, 2, "the start is followed by two releases");
  releases.length = 0;
  return { calls, releases, stop };
}

const burst = (calls: ActiveCalls, n = 16): Promise<void[]> => Promise.all(Array.from({ length: n }, () => calls.run(() => sleep(5))));

test("after the start's releases, no calls, no releases", async () => {
  const w = await watch();
  await sleep(IDLE * 3);
  w.stop();
  assert.deepEqual(w.releases, []);
});

test("after a burst: one release once idle, one more later, then none", async () => {
  const w = await watch();
  await burst(w.calls);
  await sleep(IDLE / 2);
  assert.equal(w.releases.length, 0, "not before the daemon has been idle for a while");
  await sleep(IDLE * 2);
  assert.equal(w.releases.length, 1);
  await sleep(AGAIN + IDLE);
  assert.equal(w.releases.length, 2);
  await sleep(AGAIN + IDLE * 2);
  w.stop();
  assert.equal(w.releases.length, 2);
});

test("isolated calls release nothing until enough have added up", async () => {
  const w = await watch();
  for (let i = 0; i < TIMING.minCalls - 1; i++) {
    await w.calls.run(() => sleep(1));
    await sleep(IDLE * 2.5);
  }
  assert.equal(w.releases.length, 0);
  await w.calls.run(() => sleep(1));
  await sleep(IDLE * 2.5);
  w.stop();
  assert.equal(w.releases.length, 1);
});

test("no release while calls keep coming or one is still running", async () => {
  const w = await watch();
  const until = performance.now() + IDLE * 4;
  while (performance.now() < until) await w.calls.run(() => sleep(IDLE / 4));
  assert.equal(w.releases.length, 0);
  let finish!: () => void;
  const long = w.calls.run(() => new Promise<void>((r) => (finish = r)));
  await sleep(IDLE * 3);
  assert.equal(w.releases.length, 0, "a call still running");
  finish();
  await long;
  await sleep(IDLE * 3);
  w.stop();
  assert.equal(w.releases.length, 1);
});

test("calls resuming before the second release put it off until the next burst", async () => {
  const w = await watch();
  await burst(w.calls);
  await sleep(IDLE * 2.5);
  assert.equal(w.releases.length, 1);
  await w.calls.run(() => sleep(1));
  await sleep(AGAIN + IDLE * 2);
  assert.equal(w.releases.length, 1, "one call is not a burst");
  await burst(w.calls);
  await sleep(IDLE * 2.5);
  w.stop();
  assert.equal(w.releases.length, 2);
});

test("the addon's release runs and says whether pages went back", async () => {
  assert.equal(typeof (await native.releaseFreeMemory()), "boolean");
});
