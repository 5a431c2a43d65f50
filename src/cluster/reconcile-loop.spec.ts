import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { ReconcileLoop } from "./reconcile-loop.js";

const log = pino({ level: "silent" });
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("ReconcileLoop", () => {
  it("never overlaps runs, and a burst of triggers during a run costs one more run that sees the last state", async (t) => {
    let state = 0;
    const seen: number[] = [];
    let running = 0;
    let maxRunning = 0;
    const loop = new ReconcileLoop({
      what: "test",
      log,
      run: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        const s = state;
        await tick(30);
        seen.push(s);
        running--;
      },
    });
    t.after(() => loop.close());
    const first = loop.trigger();
    await tick(5);
    for (let i = 1; i <= 5; i++) {
      state = i;
      void loop.trigger();
    }
    const last = loop.trigger();
    await Promise.all([first, last]);
    assert.deepEqual(seen, [0, 5], "the first run, then one run for the whole burst, with its last state");
    assert.equal(maxRunning, 1);
  });

  it("retries a failed run soon, reports each outcome, and resyncs periodically", async (t) => {
    let calls = 0;
    const outcomes: string[] = [];
    const loop = new ReconcileLoop({
      what: "test",
      log,
      retryMs: 20,
      resyncMs: 60,
      run: async () => {
        calls++;
        if (calls === 1) throw new Error("EBUSY");
      },
      onDone: (err) => outcomes.push(err === undefined ? "ok" : (err as Error).message),
    });
    t.after(() => loop.close());
    loop.start();
    await loop.trigger();
    assert.deepEqual(outcomes, ["EBUSY"]);
    await tick(45);
    assert.deepEqual(outcomes, ["EBUSY", "ok"], "retried after the failure without waiting for the resync");
    await tick(150);
    assert.ok(outcomes.length >= 3, `periodic resyncs ran (${outcomes.length} runs)`);
    await loop.close();
    const n = outcomes.length;
    await tick(100);
    assert.equal(outcomes.length, n, "nothing runs after close()");
  });
});
