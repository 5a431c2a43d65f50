import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hostAltName, hostNameCandidates } from "./host-names.js";

describe("host link names", () => {
  it("the alternative name: from the whole id, the same each time, longer than any interface name, valid as one", () => {
    const a = hostAltName("0123456789abcdef-long-workload-id");
    assert.equal(a, hostAltName("0123456789abcdef-long-workload-id"));
    assert.notEqual(a, hostAltName("0123456789abcdef-long-workload-iD"), "ids that differ only late differ");
    assert.match(a, /^wk-[0-9a-f]{32}$/);
    assert.ok(a.length > 15 && a.length < 128, "past IFNAMSIZ, within ALTIFNAMSIZ");
    assert.match(hostAltName("a/b:c d"), /^wk-[0-9a-f]{32}$/, "whatever the id holds");
  });

  it("candidates: wk + the first 8 usable characters, then numbered", () => {
    const it = hostNameCandidates("ab:cd/ef.gh-ij");
    assert.equal(it.next().value, "wkabcdefgh");
    assert.equal(it.next().value, "wkabcdefgh-0000");
  });
});
