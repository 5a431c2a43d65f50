// Which requests must stay off the event loop's thread.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addAddressRequest } from "./addr.js";
import { blockingInFlight, countedAsBlocking, mayBlock } from "./blocking.js";
import { AF_INET, NLM_F_DUMP, RTM_GETLINK, RTM_GETROUTE } from "./codec/constants.js";
import { encodeIfInfo } from "./codec/link-message.js";
import { createVethRequest, deleteLinkRequest, setLinkByIndexRequest, setLinkByNameRequest, setLinkUpRequest } from "./link.js";
import { addPermanentNeighbourRequest } from "./neigh.js";
import { addRouteRequest, deleteRouteRequest } from "./route.js";

describe("mayBlock", () => {
  it("deleting a link or taking it down may block (they wait for an RCU grace period under the rtnl lock)", () => {
    assert.equal(mayBlock(deleteLinkRequest(7)), true);
    assert.equal(mayBlock(setLinkUpRequest(7, false)), true);
    assert.equal(mayBlock(setLinkByIndexRequest(7, { group: 5 }, false)), true);
  });

  it("dumps may block: their size is not bounded", () => {
    assert.equal(mayBlock({ type: RTM_GETLINK, flags: NLM_F_DUMP, parts: [encodeIfInfo({})], context: "list links" }), true);
    assert.equal(mayBlock({ type: RTM_GETROUTE, flags: NLM_F_DUMP, parts: [Buffer.alloc(12)], context: "list routes" }), true);
  });

  it("what Attach sends does not block", () => {
    const veth = createVethRequest({ name: "wk1", up: true, peer: { name: "eth0", netnsFd: 3 } });
    assert.equal(mayBlock(veth), false);
    assert.equal(mayBlock(setLinkUpRequest(1, true)), false);
    assert.equal(mayBlock(setLinkByIndexRequest(7, { group: 5 })), false);
    assert.equal(mayBlock(setLinkByIndexRequest(7, { group: 5 }, true)), false);
    assert.equal(mayBlock(setLinkByNameRequest("wk1", { alias: "x" })), false);
    assert.equal(mayBlock(addAddressRequest({ index: 2, address: "10.0.0.2", prefixLen: 32 })), false);
    assert.equal(mayBlock(addRouteRequest({ family: AF_INET, dst: "10.0.0.2", dstLen: 32, oif: 2 })), false);
    assert.equal(mayBlock(deleteRouteRequest({ family: AF_INET, dst: "10.0.0.2", dstLen: 32, oif: 2 })), false);
    assert.equal(mayBlock(addPermanentNeighbourRequest({ index: 2, address: "10.0.0.2", mac: "02:00:00:00:00:01" })), false);
    assert.equal(mayBlock({ type: RTM_GETLINK, flags: 0, parts: [encodeIfInfo({ index: 1 })], context: "get link lo" }), false);
  });
});

describe("countedAsBlocking", () => {
  it("counts work while it runs, also when it fails", async () => {
    assert.equal(blockingInFlight(), 0);
    let release!: () => void;
    const running = countedAsBlocking(() => new Promise<void>((r) => (release = r)));
    const failing = countedAsBlocking(() => Promise.reject(new Error("EIO")));
    assert.equal(blockingInFlight(), 2);
    await assert.rejects(failing, /EIO/);
    assert.equal(blockingInFlight(), 1);
    release();
    await running;
    assert.equal(blockingInFlight(), 0);
  });
});
