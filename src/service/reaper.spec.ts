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
