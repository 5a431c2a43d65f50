import assert from "node:assert/strict";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FileClusterSource } from "./file-source.js";
import { formatPrefixes } from "../ipam/prefix.js";
import type { ClusterView } from "./view.js";

/** Polls until check() is true; fails with what it was waiting for after timeoutMs. */
async function waitFor(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const show = (v: ClusterView) => formatPrefixes(v.prefixes);

describe("FileClusterSource", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "cluster-file-source-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads the file before start() resolves and picks up rewrites", async (t) => {
    const path = join(dir, "rewrite.json");
    await writeFile(path, JSON.stringify({ ipv4: "10.88.0.0/24" }));
    const src = new FileClusterSource(path);
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
    const src = new FileClusterSource(path);
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
    const src = new FileClusterSource(path);
    t.after(() => src.close());
    await src.start();
    assert.equal(src.current().prefixes, undefined);
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
    const src = new FileClusterSource(path, { retryMs: 50 });
    t.after(() => src.close());
    await src.start();
    assert.equal(src.current().prefixes, undefined);
    await mkdir(sub);
    await writeFile(path, JSON.stringify({ ipv6: "fd00:1::/64" }));
    await waitFor("the file in the new directory", () => show(src.current()) === "fd00:1::/64");
  });

  it("stops after close()", async () => {
    const path = join(dir, "closed.json");
    await writeFile(path, JSON.stringify({ ipv4: "10.3.0.0/24" }));
    const src = new FileClusterSource(path);
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
  it("reads the cluster form: this node's name and addresses, the other nodes; skips a bad entry, keeps the rest", async (t) => {
    const path = join(dir, "cluster.json");
    await writeFile(
      path,
      JSON.stringify({
        name: "n1",
        ipv4: "10.70.1.0/24",
        ipv6: "fd70:1::/64",
        addresses: ["192.0.2.11", "2001:db8::11"],
        nodes: [
          { name: "n2", addresses: ["192.0.2.12"], prefixes: ["10.70.2.0/24", "fd70:2::/64"] },
          { name: "n3", addresses: ["192.0.2.13"], prefix: ["10.70.3.0/24"] },
          { name: "n4", addresses: ["192.0.2.300"], prefixes: ["10.70.4.0/24"] },
          { name: "n5", addresses: ["198.51.100.15"], prefixes: ["10.70.1.128/25"] },
          "n6",
        ],
      }),
    );
    const src = new FileClusterSource(path);
    t.after(() => src.close());
    const before = Date.now();
    await src.start();
    const v = src.current();
    assert.equal(src.kind, "file");
    assert.equal(src.lastError(), undefined);
    assert.ok(src.lastSync()!.getTime() >= before - 5, "lastSync is the read just made");
    assert.equal(v.nodeName, "n1");
    assert.equal(show(v), "10.70.1.0/24, fd70:1::/64");
    assert.deepEqual(v.addresses, ["192.0.2.11", "2001:db8::11"]);
    assert.deepEqual(v.nodes.map((n) => [n.name, n.addresses, n.prefixes.v4?.text, n.prefixes.v6?.text]), [["n2", ["192.0.2.12"], "10.70.2.0/24", "fd70:2::/64"]]);
    const problems = v.problems.join("\n");
    assert.match(problems, /nodes\[1\] \(n3\) skipped: unknown key "prefix"/);
    assert.match(problems, /node n4 skipped.*192\.0\.2\.300/);
    assert.match(problems, /node n5 refused: its pod prefix 10\.70\.1\.128\/25 overlaps 10\.70\.1\.0\/24 of node n1/);
    assert.match(problems, /nodes\[4\] skipped: expected an object/);
    assert.equal(v.problems.length, 4);

    // A node added, one removed, one readdressed: one change with the new list.
    const seen: ClusterView[] = [];
    src.onChange((view) => seen.push(view));
    await writeFile(
      path,
      JSON.stringify({
        name: "n1",
        ipv4: "10.70.1.0/24",
        nodes: [
          { name: "n2", addresses: ["192.0.2.22"], prefixes: ["10.70.2.0/24"] },
          { name: "n7", addresses: ["2001:db8::17"], prefixes: ["fd70:7::/64"] },
        ],
      }),
    );
    await waitFor("the new node list", () => seen.length > 0 && seen.at(-1)!.nodes.length === 2);
    assert.deepEqual(seen.at(-1)!.nodes.map((n) => [n.name, n.address.v4 ?? n.address.v6]), [["n2", "192.0.2.22"], ["n7", "2001:db8::17"]]);
    assert.deepEqual(seen.at(-1)!.problems, []);
  });

  it("refuses a file whose shape is wrong as a whole and keeps the last good view", async (t) => {
    const path = join(dir, "cluster-bad.json");
    const good = { ipv4: "10.71.1.0/24", nodes: [{ name: "n2", addresses: ["192.0.2.12"], prefixes: ["10.71.2.0/24"] }] };
    await writeFile(path, JSON.stringify(good));
    const src = new FileClusterSource(path);
    t.after(() => src.close());
    await src.start();
    for (const [bad, re] of [
      [{ ...good, node: [] }, /unknown key "node" \(expected "name", "ipv4", "ipv6", "addresses", "nodes"\)/],
      [{ ...good, nodes: { n2: {} } }, /"nodes" must be a list/],
      [{ ...good, addresses: "192.0.2.11" }, /"addresses" must be a list of strings/],
      [{ ...good, name: 7 }, /"name" must be a non-empty string/],
      [{ nodes: good.nodes }, /no prefix given/],
    ] as const) {
      await writeFile(path, JSON.stringify(bad));
      await waitFor(String(re), () => re.test(src.lastError() ?? ""));
      assert.match(src.lastError()!, /\(keeping 10\.71\.1\.0\/24 and 1 other node\)$/);
      assert.deepEqual(src.current().nodes.map((n) => n.name), ["n2"]);
    }
  });
});
