// The reaper against the real kernel: links are freed only once the kernel
// has deleted them (announced, or answered), concurrent retirements share
// bulk deletes, and nothing else (other groups) is touched.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { Handle } from "../netlink/handle.js";
import { LinkDeletions } from "../netlink/link-deletions.js";
import { createVeth, deleteLink, getLinkByName, listLinks, setLinkByIndexRequest, type Link } from "../netlink/link.js";
import { NetnsFd } from "../netns/namespace.js";
import { createNamespace } from "../../test/sandbox.js";
import { LinkReaper, retiringGroup, type ReaperOptions } from "./reaper.js";

const LINK_GROUP = 8;
const silent = pino({ level: "silent" });

test("retiringGroup flips the top bit and stays a valid u32", () => {
  assert.equal(retiringGroup(8), 0x80000008);
  assert.equal(retiringGroup(0x80000008), 8);
});

/** A host namespace with a handle; the test's process stays in its own namespace. */
function hostNamespace(t: TestContext): Handle {
  const hostNs = createNamespace("reap");
  const ns = NetnsFd.open(hostNs.path);
  const host = Handle.inNamespace(ns.fd, hostNs.path, { maxSockets: 8 });
  t.after(async () => {
    await host.close();
    ns.close();
    hostNs.remove();
  });
  return host;
}

/**
 * Announcements are heard in this process's own namespace (the sandbox's):
 * tests that need them use a handle there, a group of their own and names no
 * other test uses.
 */
function ownNamespaceListening(t: TestContext): { host: Handle; deletions: LinkDeletions; deleteAtEnd: (link: Link) => void } {
  const host = Handle.current({ maxSockets: 8 });
  // Links the test keeps are deleted before the handle closes (hooks run in the order they were added).
  const kept: Link[] = [];
  t.after(async () => {
    for (const l of kept) await deleteLink(host, l.index, l.name).catch(() => undefined); // gone already is fine
    await host.close();
  });
  const deletions = LinkDeletions.open();
  t.after(() => deletions.close());
  return { host, deletions, deleteAtEnd: (link) => kept.push(link) };
}

/** Only the link kept out of the retirements is left in the group, and the reaper has nothing left to do. */
async function assertOnlyKeptAndIdle(host: Handle, group: number, keep: Link, reaper: LinkReaper): Promise<void> {
  assert.deepEqual((await listLinks(host, group)).map((l) => l.name), [keep.name]);
  await reaper.flush();
  assert.equal(reaper.backlog, 0);
}

async function retireAll(t: TestContext, host: Handle, opts: ReaperOptions, count: number, group = LINK_GROUP): Promise<{ reaper: LinkReaper; links: Link[]; keep: Link }> {
  const reaper = new LinkReaper(host, retiringGroup(group), silent, opts);
  t.after(() => reaper.flush());
  const links: Link[] = [];
  for (let i = 0; i < count; i++) links.push(await createVeth(host, { name: `wkr${process.pid % 1000}x${i}`, group, peer: { name: `prr${process.pid % 1000}x${i}` } }));
  const keep = await createVeth(host, { name: `wkk${process.pid % 1000}`, group, peer: { name: `prk${process.pid % 1000}` } });
  return { reaper, links, keep };
}

async function retireConcurrently(host: Handle, reaper: LinkReaper, links: Link[]): Promise<string[]> {
  const released: string[] = [];
  await Promise.all(
    links.map(async (l) => {
      const listening = reaper.listen(l.index);
      await host.request(setLinkByIndexRequest(l.index, { group: reaper.group }, false, l.name));
      await reaper.enqueue(l.index, () => released.push(l.name), listening);
      // Released means deleted: the kernel no longer has it.
      assert.equal(await getLinkByName(host, l.name), undefined, `${l.name} released before it was deleted`);
    }),
  );
  return released;
}

test("without announcements: retired links are deleted in bulk and released when the delete answers", async (t) => {
  const host = hostNamespace(t);
  // One round at a time: links retired while it waits share the next one.
  const { reaper, links, keep } = await retireAll(t, host, { maxRounds: 1 }, 6);
  const released = await retireConcurrently(host, reaper, links);
  assert.deepEqual(released.sort(), links.map((l) => l.name).sort());
  assert.ok(reaper.rounds < links.length, `${reaper.rounds} rounds for ${links.length} links: not in bulk`);
  assert.equal(reaper.releasedOnAnnouncement, 0);
  await assertOnlyKeptAndIdle(host, LINK_GROUP, keep, reaper);
});

test("links retired while a delete is under way wait for it, then go together", async (t) => {
  const host = hostNamespace(t);
  // Rounds to spare: only the delete under way holds them back. Without
  // announcements it is under way until it answers, after the kernel's wait
  // (~20 ms): time for every retirement to queue. (Announced, it would be
  // ~1 ms, and how many queue in that time depends on the machine.)
  const { reaper, links, keep } = await retireAll(t, host, { maxRounds: 12 }, 9);
  const [first, ...rest] = links;
  assert.equal(reaper.canDeleteNow, true);
  const firstDeleted = reaper.deleteNow(first!.index);
  assert.equal(reaper.canDeleteNow, false, "a second delete would queue behind the first");
  const released = await retireConcurrently(host, reaper, rest);
  await firstDeleted;
  assert.deepEqual(released.sort(), rest.map((l) => l.name).sort());
  // A request per link would be 9 rounds; each round holds the kernel's lock for ~0.7 ms however many links it deletes.
  assert.ok(reaper.rounds <= 4, `${reaper.rounds} rounds for ${links.length} links: retired links did not wait to go together`);
  await assertOnlyKeptAndIdle(host, LINK_GROUP, keep, reaper);
});

test("a delete that is never heard of holds back the next one only for unregisterWaitMs", async (t) => {
  const host = hostNamespace(t);
  // Without announcements a delete counts as under way until it answers,
  // after the kernel's wait (~20 ms): here only for 1 ms.
  const { reaper, links, keep } = await retireAll(t, host, { maxRounds: 12, unregisterWaitMs: 1 }, 1);
  let answeredAt: number | undefined;
  const deleted = reaper.deleteNow(links[0]!.index).then(() => (answeredAt = performance.now()));
  assert.equal(reaper.canDeleteNow, false);
  let freeAt: number | undefined;
  while (answeredAt === undefined) {
    if (freeAt === undefined && reaper.canDeleteNow) freeAt = performance.now();
    await new Promise((r) => setImmediate(r));
  }
  await deleted;
  assert.ok(freeAt !== undefined && freeAt < answeredAt, "the next delete was held back until the first answered");
  await assertOnlyKeptAndIdle(host, LINK_GROUP, keep, reaper);
});

test("with announcements: each link is released when the kernel announces it gone, before the delete answers", async (t) => {
  const group = 0x5ea9;
  const { host, deletions, deleteAtEnd } = ownNamespaceListening(t);
  const { reaper, links, keep } = await retireAll(t, host, { deletions, maxRounds: 12 }, 6, group);
  deleteAtEnd(keep);
  // One at a time: the kernel answers only after waiting for the device's
  // last references, and the announcement comes first.
  for (const l of links.slice(0, 3)) {
    const before = reaper.releasedOnAnnouncement;
    assert.deepEqual(await retireConcurrently(host, reaper, [l]), [l.name]);
    assert.equal(reaper.releasedOnAnnouncement, before + 1, `${l.name} was not released on its announcement`);
  }
  // At once: a link an earlier round deleted before its own round listened is released by its round's answer.
  const released = await retireConcurrently(host, reaper, links.slice(3));
  assert.deepEqual(released.sort(), links.slice(3).map((l) => l.name).sort());
  await assertOnlyKeptAndIdle(host, group, keep, reaper);
});

test("deleteNow: one link by its index, done on the kernel's announcement; a refused delete rejects and leaves everything", async (t) => {
  const group = 0x5eaa;
  const { host, deletions, deleteAtEnd } = ownNamespaceListening(t);
  const reaper = new LinkReaper(host, retiringGroup(group), silent, { deletions, maxRounds: 2 });
  t.after(() => reaper.flush());
  const tag = process.pid % 1000;
  const link = await createVeth(host, { name: `wkn${tag}`, group, peer: { name: `prn${tag}` } });
  const keep = await createVeth(host, { name: `wkm${tag}`, group, peer: { name: `prm${tag}` } });
  deleteAtEnd(keep);

  assert.equal(reaper.canDeleteNow, true);
  const before = reaper.releasedOnAnnouncement;
  await reaper.deleteNow(link.index);
  assert.equal(await getLinkByName(host, link.name), undefined, "gone when deleteNow resolves");
  assert.equal(reaper.releasedOnAnnouncement, before + 1, "resolved on the announcement, before the delete answered");
  assert.deepEqual((await listLinks(host, group)).map((l) => l.name), [keep.name], "nothing else in the group touched");
  // Gone already: ENODEV counts as done.
  await reaper.deleteNow(link.index);

  // The loopback device cannot be deleted: the kernel's refusal comes back, and lo stays.
  await assert.rejects(reaper.deleteNow(1), (err: unknown) => (err as { code?: string }).code === "EOPNOTSUPP");
  assert.ok((await listLinks(host)).some((l) => l.index === 1), "lo is still there");
  await reaper.flush();
  assert.equal(reaper.canDeleteNow, true, "every round has ended");
});
