// Link deletion announcements, against the real kernel, in this process's
// own namespace (the sandbox's). iproute2 deletes the links: the announcement
// comes from the kernel, whoever asked.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { test, type TestContext } from "node:test";
import { assertSandbox, ip } from "../../test/sandbox.js";
import { Handle } from "./handle.js";
import { LinkDeletions, type LinkDeletionsOptions } from "./link-deletions.js";
import { native } from "./native.js";
import { parseMessages } from "./codec/message.js";
import { createVeth, deleteLink } from "./link.js";
import { RTM_DELLINK, RTM_NEWLINK, RTNLGRP_LINK } from "./codec/constants.js";

assertSandbox();

const tag = `ld${process.pid % 10000}`;

/** This process's netlink sockets that listen to link notifications (/proc/net/netlink, matched by inode). */
function listeningToLinks(): number {
  const ours = new Set(
    readdirSync("/proc/self/fd").flatMap((fd) => {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
        return m ? [m[1]!] : [];
      } catch {
        return [];
      }
    }),
  );
  const [header, ...rows] = readFileSync("/proc/net/netlink", "utf8").trim().split("\n").map((l) => l.trim().split(/\s+/));
  const groups = header!.indexOf("Groups");
  const inode = header!.indexOf("Inode");
  return rows.filter((r) => ours.has(r[inode]!) && (parseInt(r[groups]!, 16) & (1 << (RTNLGRP_LINK - 1))) !== 0).length;
}

/** A handle and a listener in this process's namespace, closed after the test. */
function opened(t: TestContext, opts: LinkDeletionsOptions = { lingerMs: 0 }): { h: Handle; deletions: LinkDeletions } {
  const h = Handle.current();
  const deletions = LinkDeletions.open(opts);
  t.after(async () => {
    deletions.close();
    await h.close();
  });
  return { h, deletions };
}

test("a wait resolves when the kernel announces the link deleted, whoever deleted it", async (t) => {
  const { h, deletions } = opened(t);
  const a = await createVeth(h, { name: `${tag}a`, peer: { name: `${tag}pa` } });
  const b = await createVeth(h, { name: `${tag}b`, peer: { name: `${tag}pb` } });
  const before = listeningToLinks();
  const waitA = deletions.wait(a.index);
  const waitB = deletions.wait(b.index);
  assert.equal(listeningToLinks(), before + 1, "joined the link group while waiting");

  let bDone = false;
  void waitB.deleted.then(() => (bDone = true));
  ip(["link", "del", `${tag}a`]);
  await waitA.deleted;
  assert.equal(bDone, false, "another link's deletion must not resolve this wait");

  await deleteLink(h, b.index);
  await waitB.deleted;
  assert.equal(listeningToLinks(), before, "left the link group once nobody waits");
});

test("a cancelled wait never resolves and stops the listening", async (t) => {
  const { h, deletions } = opened(t);
  const c = await createVeth(h, { name: `${tag}c`, peer: { name: `${tag}pc` } });
  const before = listeningToLinks();
  const w = deletions.wait(c.index);
  let resolved = false;
  void w.deleted.then(() => (resolved = true));
  assert.equal(listeningToLinks(), before + 1);
  w.cancel();
  assert.equal(listeningToLinks(), before, "not listening after the only wait is cancelled");
  await deleteLink(h, c.index);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(resolved, false);
});

test("after the last wait the listener stays in the group for lingerMs, so a run of waits joins once", async (t) => {
  const { h, deletions } = opened(t, { lingerMs: 300 });
  const before = listeningToLinks();
  for (const name of ["d", "e"]) {
    const link = await createVeth(h, { name: `${tag}${name}`, peer: { name: `${tag}p${name}` } });
    const w = deletions.wait(link.index);
    assert.equal(listeningToLinks(), before + 1, "in the group, once");
    await deleteLink(h, link.index);
    await w.deleted;
    assert.equal(listeningToLinks(), before + 1, "still in the group right after the wait");
  }
  const deadline = Date.now() + 2000;
  while (listeningToLinks() !== before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(listeningToLinks(), before, "left the group once nobody waited for lingerMs");
});

test("the kernel passes the listener deletions only: creating and changing links does not wake it", async (t) => {
  const h = Handle.current();
  t.after(() => h.close());
  // Two monitors side by side, one filtered as LinkDeletions' is, one not.
  const seen = { filtered: [] as number[], all: [] as number[] };
  const filtered = native.openMonitor((data) => data && seen.filtered.push(...parseMessages(data).map((m) => m.type)), RTM_DELLINK);
  const all = native.openMonitor((data) => data && seen.all.push(...parseMessages(data).map((m) => m.type)));
  t.after(() => {
    native.monitorClose(filtered);
    native.monitorClose(all);
  });
  native.monitorJoin(filtered, RTNLGRP_LINK);
  native.monitorJoin(all, RTNLGRP_LINK);
  ip(["link", "add", `${tag}f`, "type", "veth", "peer", "name", `${tag}pf`]);
  ip(["link", "set", `${tag}f`, "alias", "changed", "up"]);
  ip(["link", "del", `${tag}f`]);
  const deadline = Date.now() + 2000;
  while (seen.filtered.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen.filtered, [RTM_DELLINK, RTM_DELLINK], "both ends' deletions, nothing else");
  assert.ok(seen.all.includes(RTM_NEWLINK), `the unfiltered one saw the creation too: ${seen.all.join(",")}`);
});
