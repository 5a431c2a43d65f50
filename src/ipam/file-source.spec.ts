import assert from "node:assert/strict";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FilePrefixSource } from "./file-source.js";
import { formatPrefixes } from "./prefix.js";
import type { Prefixes } from "./prefix-source.js";

/** Polls until check() is true; fails with what it was waiting for after timeoutMs. */
async function waitFor(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const show = (p: Prefixes | undefined) => formatPrefixes(p);

describe("FilePrefixSource", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ipam-file-source-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads the file before start() resolves and picks up rewrites", async (t) => {
    const path = join(dir, "rewrite.json");
    await writeFile(path, JSON.stringify({ ipv4: "10.88.0.0/24" }));
    const src = new FilePrefixSource(path);
    t.after(() => src.close());
    const changes: string[] = [];
    src.onChange((p) => changes.push(show(p)));
    await src.start();
    assert.equal(show(src.current()), "10.88.0.0/24");
    assert.equal(src.lastError(), undefined);

    await writeFile(path, JSON.stringify({ ipv4: "10.89.0.0/24", ipv6: "fd00:89::/64" }));
    await waitFor("the rewrite", () => show(src.current()) === "10.89.0.0/24, fd00:89::/64");

    // Same prefixes written differently: no change event.
    await writeFile(path, `{"ipv6": "FD00:89:0::/64", "ipv4": "10.89.0.0/24"}\n`);
    await writeFile(path, JSON.stringify({ ipv6: "fd00:90::/64" }));
    await waitFor("the IPv6-only file", () => show(src.current()) === "fd00:90::/64");
    // The initial read counts as a change (from nothing); the equal rewrite does not.
    assert.deepEqual(changes, ["10.88.0.0/24", "10.89.0.0/24, fd00:89::/64", "fd00:90::/64"]);
  });

  it("keeps the last good prefixes on garbage and reports why", async (t) => {
    const path = join(dir, "garbage.json");
    await writeFile(path, JSON.stringify({ ipv4: "10.1.0.0/16" }));
    const src = new FilePrefixSource(path);
    t.after(() => src.close());
    await src.start();
    const errors: string[] = [];
    src.onError((m) => errors.push(m));
    let changes = 0;
    src.onChange(() => changes++);

    await writeFile(path, "{ not json");
    await waitFor("an error", () => src.lastError() !== undefined);
    assert.match(src.lastError()!, new RegExp(`^prefix file ${path}: invalid JSON: .*\\(keeping 10\\.1\\.0\\.0/16\\)$`));
    assert.equal(show(src.current()), "10.1.0.0/16");
    assert.equal(errors.at(-1), src.lastError());

    await writeFile(path, JSON.stringify({ ipv4: "10.1.0.5/16" }));
    await waitFor("the host-bits error", () => /host bits set/.test(src.lastError() ?? ""));
    await writeFile(path, JSON.stringify({ ipv6: "10.2.0.0/16" }));
    await waitFor("the family error", () => /"ipv6" must be an IPv6 prefix/.test(src.lastError() ?? ""));
    await writeFile(path, JSON.stringify({ ipv4: "10.1.0.0/16", extra: 1 }));
    await waitFor("the unknown-key error", () => /unknown key "extra"/.test(src.lastError() ?? ""));
    await writeFile(path, "{}");
    await waitFor("the empty-object error", () => /no prefix given/.test(src.lastError() ?? ""));
    assert.equal(show(src.current()), "10.1.0.0/16");
    assert.equal(changes, 0);

    // Back to the same good content: error cleared, still no change event.
    await writeFile(path, JSON.stringify({ ipv4: "10.1.0.0/16" }));
    await waitFor("recovery", () => src.lastError() === undefined);
    assert.equal(changes, 0);
    // Each problem was reported (a read racing a write may add an "empty file" one).
    for (const re of [/invalid JSON/, /host bits set/, /must be an IPv6 prefix/, /unknown key/, /no prefix given/]) {
      assert.ok(errors.some((m) => re.test(m)), String(re));
    }
  });

  it("starts without a file, then sees it renamed into place", async (t) => {
    const path = join(dir, "late.json");
    const src = new FilePrefixSource(path);
    t.after(() => src.close());
    await src.start();
    assert.equal(src.current(), undefined);
    assert.match(src.lastError()!, /late\.json: does not exist/);

    const tmp = join(dir, ".late.json.tmp");
    await writeFile(tmp, JSON.stringify({ ipv4: "10.7.0.0/24" }));
    await rename(tmp, path);
    await waitFor("the renamed file", () => show(src.current()) === "10.7.0.0/24");
    assert.equal(src.lastError(), undefined);

    // An atomic replace of an existing file is seen too.
    await writeFile(tmp, JSON.stringify({ ipv4: "10.8.0.0/24" }));
    await rename(tmp, path);
    await waitFor("the replaced file", () => show(src.current()) === "10.8.0.0/24");

    // Removal keeps the prefixes and says so.
    await rm(path);
    await waitFor("the removal error", () => /was removed \(keeping 10\.8\.0\.0\/24\)/.test(src.lastError() ?? ""));
    assert.equal(show(src.current()), "10.8.0.0/24");
  });

  it("waits for a directory that does not exist yet", async (t) => {
    const sub = join(dir, "later");
    const path = join(sub, "p.json");
    const src = new FilePrefixSource(path, { retryMs: 50 });
    t.after(() => src.close());
    await src.start();
    assert.equal(src.current(), undefined);
    await mkdir(sub);
    await writeFile(path, JSON.stringify({ ipv6: "fd00:1::/64" }));
    await waitFor("the file in the new directory", () => show(src.current()) === "fd00:1::/64");
  });

  it("stops after close()", async () => {
    const path = join(dir, "closed.json");
    await writeFile(path, JSON.stringify({ ipv4: "10.3.0.0/24" }));
    const src = new FilePrefixSource(path);
    let changes = 0;
    src.onChange(() => changes++);
    await src.start();
    assert.equal(changes, 1, "the initial read is a change from nothing");
    src.close();
    src.close();
    await writeFile(path, JSON.stringify({ ipv4: "10.4.0.0/24" }));
    await new Promise((r) => setTimeout(r, 150)); // nothing to poll for: absence of an event
    assert.equal(changes, 1);
    assert.equal(show(src.current()), "10.3.0.0/24");
  });
});
