// The reaper against the real kernel: links are freed only after the kernel
// deleted them, concurrent retirements share bulk deletes, and nothing else
// (other groups) is touched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { Handle } from "../netlink/handle.js";
import { createVeth, getLinkByName, listLinks, setLinkByIndexRequest } from "../netlink/link.js";
import { NetnsFd } from "../netns/namespace.js";
import { createNamespace } from "../../test/sandbox.js";
import { LinkReaper, retiringGroup } from "./reaper.js";

const LINK_GROUP = 8;

test("retiringGroup flips the top bit and stays a valid u32", () => {
  assert.equal(retiringGroup(8), 0x80000008);
  assert.equal(retiringGroup(0x80000008), 8);
});

test("retired links are deleted in bulk and released only afterwards", async () => {
  const hostNs = createNamespace("reap");
  const ns = NetnsFd.open(hostNs.path);
  const host = Handle.inNamespace(ns.fd, hostNs.path, { maxSockets: 4 });
  const reaper = new LinkReaper(host, retiringGroup(LINK_GROUP), pino({ level: "silent" }));
  try {
    const links = [];
    for (let i = 0; i < 6; i++) links.push(await createVeth(host, { name: `wkr${i}`, group: LINK_GROUP, peer: { name: `pr${i}` } }));
    const keep = await createVeth(host, { name: "wkkeep", group: LINK_GROUP, peer: { name: "prkeep" } });

    const released: string[] = [];
    const deletions = await Promise.all(
      links.map(async (l) => {
        await host.request(setLinkByIndexRequest(l.index, { group: reaper.group }, false, l.name));
        await reaper.enqueue(() => {
          released.push(l.name);
        });
        // Released means deleted: the kernel no longer has it.
        assert.equal(await getLinkByName(host, l.name), undefined, `${l.name} released before it was deleted`);
      }),
    );
    assert.equal(deletions.length, links.length);
    assert.deepEqual(released.sort(), links.map((l) => l.name).sort());
    for (const l of links) assert.equal(await getLinkByName(host, l.name), undefined, `${l.name} should be gone`);
    assert.deepEqual((await listLinks(host, LINK_GROUP)).map((l) => l.name), [keep.name]);
    await reaper.flush();
    assert.equal(reaper.backlog, 0);
  } finally {
    await host.close();
    ns.close();
    hostNs.remove();
  }
});

test("under load a round waits briefly for as many links as the last one deleted", async () => {
  const hostNs = createNamespace("reap");
  const ns = NetnsFd.open(hostNs.path);
  const host = Handle.inNamespace(ns.fd, hostNs.path, { maxSockets: 4 });
  const GATHER_MS = 2000;
  const reaper = new LinkReaper(host, retiringGroup(LINK_GROUP), pino({ level: "silent" }), GATHER_MS);
  const retire = async (name: string): Promise<void> => {
    const l = await createVeth(host, { name, group: LINK_GROUP, peer: { name: `p${name}` } });
    await host.request(setLinkByIndexRequest(l.index, { group: reaper.group }, false, l.name));
  };
  try {
    // Three at once: one round.
    for (const name of ["wka", "wkb", "wkc"]) await retire(name);
    await Promise.all([0, 1, 2].map(() => reaper.enqueue(() => undefined)));
    assert.equal(reaper.rounds, 1);

    // Then one, and two more a little later: the round waits for them instead of deleting the one alone.
    await retire("wkd");
    const started = performance.now();
    const first = reaper.enqueue(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    for (const name of ["wke", "wkf"]) await retire(name);
    await Promise.all([first, reaper.enqueue(() => undefined), reaper.enqueue(() => undefined)]);
    assert.equal(reaper.rounds, 2, "the three later links should share one round");
    assert.ok(performance.now() - started < GATHER_MS, "the round should start once three links are pending, not at the deadline");

    // A lone link after a round of three waits at most the gathering time; after that round of one, none.
    await retire("wkg");
    const lone = performance.now();
    await reaper.enqueue(() => undefined);
    const waited = performance.now() - lone;
    assert.ok(waited >= GATHER_MS - 5, `waited only ${waited.toFixed(0)} ms`);
    await retire("wkh");
    const next = performance.now();
    await reaper.enqueue(() => undefined);
    assert.ok(performance.now() - next < GATHER_MS, "a lone Detach after a round of one must not wait");
    assert.equal(reaper.rounds, 4);
    assert.deepEqual(await listLinks(host, reaper.group), []);
  } finally {
    await reaper.flush();
    await host.close();
    ns.close();
    hostNs.remove();
  }
});
