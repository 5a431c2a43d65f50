import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Listeners } from "./listeners.js";

describe("listeners", () => {
  it("calls each listener in turn; one that throws is reported and the others still run; unsubscribe works", () => {
    const l = new Listeners<number>();
    const seen: string[] = [];
    const failures: string[] = [];
    const off = l.add((v) => seen.push(`a${v}`));
    l.add(() => {
      throw new Error("boom");
    });
    l.add((v) => seen.push(`c${v}`));
    l.emit(1, (err) => failures.push(err.message));
    off();
    l.emit(2);
    assert.deepEqual(seen, ["a1", "c1", "c2"]);
    assert.deepEqual(failures, ["boom"]);
    l.clear();
    l.emit(3);
    assert.deepEqual(seen, ["a1", "c1", "c2"]);
  });
});
