import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePrefixConfig } from "../ipam/prefix-config.js";
import { parsePrefix } from "../ipam/prefix.js";
import { StaticClusterSource } from "./static-source.js";

describe("parsePrefixConfig", () => {
  it("accepts either family or both", () => {
    assert.equal(parsePrefixConfig({ ipv4: "10.88.0.0/24" }).v4?.text, "10.88.0.0/24");
    const both = parsePrefixConfig({ ipv4: "10.88.0.0/24", ipv6: "fd00:88::/64" });
    assert.equal(both.v6?.text, "fd00:88::/64");
  });

  it("rejects what it does not understand", () => {
    assert.throws(() => parsePrefixConfig([]), /expected an object/);
    assert.throws(() => parsePrefixConfig("10.0.0.0/8"), /expected an object/);
    assert.throws(() => parsePrefixConfig({}), /no prefix given/);
    assert.throws(() => parsePrefixConfig({ ipv4: 10 }), /"ipv4" must be a string/);
    assert.throws(() => parsePrefixConfig({ ipv4: "fd00::/64" }), /"ipv4" must be an IPv4 prefix/);
    assert.throws(() => parsePrefixConfig({ ip4: "10.0.0.0/8" }), /unknown key "ip4"/);
    assert.throws(() => parsePrefixConfig({ ipv4: "10.0.0.300/24" }), /invalid IPv4 prefix "10\.0\.0\.300\/24"/);
  });
});

describe("StaticClusterSource", () => {
  it("serves fixed prefixes and no other nodes", async () => {
    const src = new StaticClusterSource(parsePrefixConfig({ ipv4: "10.88.0.0/24" }));
    assert.equal(src.lastSync(), undefined);
    await src.start();
    assert.equal(src.kind, "static");
    assert.equal(src.current().prefixes?.v4?.text, "10.88.0.0/24");
    assert.deepEqual(src.current().nodes, []);
    assert.equal(src.lastError(), undefined);
    assert.ok(src.lastSync() instanceof Date);
    const off = src.onChange(() => assert.fail("never changes"));
    off();
    src.close();
  });

  it("reports an empty config as not ready, saying why", () => {
    const src = new StaticClusterSource({});
    assert.equal(src.current().prefixes, undefined);
    assert.match(src.current().pendingReason!, /no pod prefixes configured/);
    assert.equal(new StaticClusterSource({ v6: parsePrefix("fd00::/64") }).current().prefixes?.v6?.text, "fd00::/64");
  });
});
