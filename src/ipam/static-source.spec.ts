import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePrefixConfig } from "./prefix-config.js";
import { parsePrefix } from "./prefix.js";
import { StaticPrefixSource } from "./static-source.js";

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

describe("StaticPrefixSource", () => {
  it("serves fixed prefixes", () => {
    const src = StaticPrefixSource.fromConfig({ ipv4: "10.88.0.0/24" });
    assert.equal(src.current()?.v4?.text, "10.88.0.0/24");
    assert.equal(src.lastError(), undefined);
    const off = src.onChange(() => assert.fail("never changes"));
    off();
    src.close();
  });

  it("reports an empty config as not ready", () => {
    const src = new StaticPrefixSource({});
    assert.equal(src.current(), undefined);
    assert.match(src.lastError()!, /no pod prefixes/);
    assert.equal(new StaticPrefixSource({ v6: parsePrefix("fd00::/64") }).current()?.v6?.text, "fd00::/64");
  });
});
