// Link deletion announcements, against the real kernel, in this process's
// own namespace (the sandbox's). iproute2 deletes the links: the announcement
// comes from the kernel, whoever asked.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { test, type TestContext } from "node:test";
import { assertSandbox, ip } from "../../test/sandbox.js";
import { Handle } from "./handle.js";
import { LinkDeletions } from "./link-deletions.js";
import { createVeth, deleteLink } from "./link.js";
import { RTNLGRP_LINK } from "./codec/constants.js";

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
function opened(t: TestContext): { h: Handle; deletions: LinkDeletions } {
  const h = Handle.current();
  const deletions = LinkDeletions.open();
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
