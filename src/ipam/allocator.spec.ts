import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  AddressAllocator,
  Ipam,
  IpamConflictError,
  IpamExhaustedError,
  IpamNotReadyError,
} from "./allocator.js";
import { addressToBigint, bigintToAddress, parsePrefix } from "./prefix.js";

const v4 = (text: string) => ({ v4: parsePrefix(text) });

describe("AddressAllocator", () => {
  it("skips network, first host and broadcast", () => {
    const pool = new AddressAllocator(parsePrefix("10.0.0.0/29"));
    const got: string[] = [];
    for (let a = pool.allocate(); a !== undefined; a = pool.allocate()) got.push(bigintToAddress(a, 4));
    assert.deepEqual(got, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
    assert.equal(pool.available, 0n);
  });

  it("treats /31 and /32 as exhausted", () => {
    assert.equal(new AddressAllocator(parsePrefix("10.0.0.0/31")).allocate(), undefined);
    assert.equal(new AddressAllocator(parsePrefix("10.0.0.0/32")).allocate(), undefined);
    assert.equal(new AddressAllocator(parsePrefix("10.0.0.0/31"), { reserveFirstHost: false }).allocate(), undefined);
  });

  it("honours extra reserved addresses and reserveFirstHost: false", () => {
    const pool = new AddressAllocator(parsePrefix("10.0.0.0/29"), {
      reserveFirstHost: false,
      reserved: ["10.0.0.2", "10.9.9.9", "fd00::1"],
    });
    assert.equal(pool.available, 5n); // .1 .3 .4 .5 .6
    assert.equal(bigintToAddress(pool.allocate()!, 4), "10.0.0.1");
    assert.equal(bigintToAddress(pool.allocate()!, 4), "10.0.0.3");
  });
});

describe("Ipam", () => {
  it("is not ready without prefixes", () => {
    const ipam = new Ipam();
    assert.equal(ipam.ready(), false);
    assert.throws(() => ipam.allocate("a"), IpamNotReadyError);
    assert.equal(ipam.size(), 0);
  });

  it("gives exactly one address from a /30, then fails with nothing held", () => {
    const ipam = new Ipam();
    ipam.setPrefixes(v4("10.0.0.0/30"));
    assert.equal(ipam.ready(), true);
    assert.deepEqual(ipam.allocate("a"), { v4: "10.0.0.2" });
    assert.throws(
      () => ipam.allocate("b"),
      (err: unknown) =>
        err instanceof IpamExhaustedError &&
        err.message === "no free addresses in 10.0.0.0/30" &&
        err.prefix.text === "10.0.0.0/30",
    );
    assert.equal(ipam.addressesOf("b"), undefined);
    assert.equal(ipam.size(), 1);
  });

  it("is all-or-nothing across families", () => {
    const ipam = new Ipam();
    ipam.setPrefixes({ v4: parsePrefix("10.0.0.0/24"), v6: parsePrefix("fd00::/127") });
    assert.throws(() => ipam.allocate("a"), /no free addresses in fd00::\/127/);
    assert.equal(ipam.addressesOf("a"), undefined);
    assert.equal(ipam.size(), 0);
    // The IPv4 address taken before the IPv6 failure went back to the pool.
    ipam.setPrefixes(v4("10.0.0.0/24"));
    const all = new Set<string>();
    for (let i = 0; i < 253; i++) all.add(ipam.allocate(`w${i}`).v4!);
    assert.equal(all.size, 253);
    assert.throws(() => ipam.allocate("one-more"), IpamExhaustedError);
  });

  it("allocates round-robin and does not reuse a freed address until wrap", () => {
    const ipam = new Ipam();
    ipam.setPrefixes(v4("10.0.0.0/29")); // usable: .2 .3 .4 .5 .6
    assert.equal(ipam.allocate("a").v4, "10.0.0.2");
    assert.equal(ipam.allocate("b").v4, "10.0.0.3");
    assert.equal(ipam.allocate("c").v4, "10.0.0.4");
    ipam.release("b");
    assert.equal(ipam.allocate("d").v4, "10.0.0.5", "freed .3 is not reused at once");
    assert.equal(ipam.allocate("e").v4, "10.0.0.6");
    assert.equal(ipam.allocate("f").v4, "10.0.0.3", "after the wrap, .3 is next");
    assert.throws(() => ipam.allocate("g"), IpamExhaustedError);
    ipam.release("a");
    ipam.release("a"); // idempotent
    assert.equal(ipam.allocate("g").v4, "10.0.0.2");
  });

  it("gives a released owner's address to nobody else before the rest are tried", () => {
    const ipam = new Ipam();
    ipam.setPrefixes(v4("10.1.0.0/28")); // 13 usable: .2 .. .14
    const first = ipam.allocate("x").v4!;
    ipam.release("x");
    const seen: string[] = [];
    for (let i = 0; i < 12; i++) seen.push(ipam.allocate(`y${i}`).v4!);
    assert.ok(!seen.includes(first));
    assert.equal(ipam.allocate("last").v4, first);
  });

  it("makes 1000 distinct allocations in a /22 quickly, never network/reserved/broadcast", () => {
    const ipam = new Ipam();
    ipam.setPrefixes(v4("10.64.0.0/22"));
    const start = performance.now();
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) seen.add(ipam.allocate(`pod-${i}`).v4!);
    const ms = performance.now() - start;
    assert.equal(seen.size, 1000);
    for (const bad of ["10.64.0.0", "10.64.0.1", "10.64.3.255"]) assert.ok(!seen.has(bad), bad);
    for (const a of seen) {
      const n = addressToBigint(a);
      assert.ok(n > addressToBigint("10.64.0.1") && n < addressToBigint("10.64.3.255"), a);
    }
    // Generous bound: linear scans per call would still pass, but quadratic blow-ups show.
    assert.ok(ms < 1000, `took ${ms} ms`);
    // Churn near full: free every other one, the next allocations still come fast and fresh.
    for (let i = 0; i < 1000; i += 2) ipam.release(`pod-${i}`);
    for (let i = 0; i < 21; i++) {
      const a = ipam.allocate(`fresh-${i}`).v4!;
      assert.ok(!seen.has(a), `${a} was never handed out before`);
    }
    assert.equal(ipam.size(), 521);
  });

  it("allocates IPv6 from a /64, with both families at once", () => {
    const ipam = new Ipam();
    ipam.setPrefixes({ v4: parsePrefix("10.88.0.0/24"), v6: parsePrefix("fd00:88::/64") });
    assert.deepEqual(ipam.allocate("a"), { v4: "10.88.0.2", v6: "fd00:88::2" });
    assert.deepEqual(ipam.allocate("b"), { v4: "10.88.0.3", v6: "fd00:88::3" });
    assert.deepEqual(ipam.addressesOf("a"), { v4: "10.88.0.2", v6: "fd00:88::2" });
    // Allocating again for a holder returns what it has, not a second address.
    assert.deepEqual(ipam.allocate("a"), { v4: "10.88.0.2", v6: "fd00:88::2" });
    assert.equal(ipam.ownerOf("FD00:88:0::3"), "b");
    assert.deepEqual(ipam.release("a"), { v4: "10.88.0.2", v6: "fd00:88::2" });
    assert.equal(ipam.addressesOf("a"), undefined);
    assert.equal(ipam.release("a"), undefined);
  });

  it("never hands out an address recorded with markUsed", () => {
    const ipam = new Ipam();
    ipam.markUsed("old", "10.0.0.3"); // recovery may run before any prefix is known
    ipam.setPrefixes(v4("10.0.0.0/29"));
    ipam.markUsed("old2", "10.0.0.2");
    ipam.markUsed("old2", "10.0.0.2"); // repeat is harmless
    const got = ["a", "b", "c"].map((o) => ipam.allocate(o).v4);
    assert.deepEqual(got, ["10.0.0.4", "10.0.0.5", "10.0.0.6"]);
    assert.throws(() => ipam.allocate("d"), IpamExhaustedError);
    assert.throws(() => ipam.markUsed("x", "10.0.0.4"), IpamConflictError);
    assert.throws(() => ipam.markUsed("old", "10.0.0.9"), /already holds IPv4 address 10\.0\.0\.3/);
    assert.throws(() => ipam.markUsed("x", "10.0.0"), /not a valid IPv4 address/);
    ipam.release("old");
    assert.equal(ipam.allocate("d").v4, "10.0.0.3");
  });

  it("keeps addresses of a prefix that went away, and honours them when it returns", () => {
    const ipam = new Ipam();
    ipam.markUsed("survivor", "10.0.0.2");
    ipam.setPrefixes(v4("10.5.0.0/24"));
    assert.equal(ipam.allocate("n").v4, "10.5.0.2");
    ipam.setPrefixes(v4("10.0.0.0/29"));
    assert.equal(ipam.allocate("m").v4, "10.0.0.3", "10.0.0.2 is still held");
  });

  it("lets existing owners keep their addresses when the prefixes change", () => {
    const ipam = new Ipam();
    ipam.setPrefixes(v4("10.88.0.0/24"));
    ipam.allocate("a");
    ipam.allocate("b");
    ipam.setPrefixes({ v4: parsePrefix("10.99.0.0/24"), v6: parsePrefix("fd00:99::/64") });
    assert.equal(ipam.prefixes().v4?.text, "10.99.0.0/24");
    assert.deepEqual(ipam.addressesOf("a"), { v4: "10.88.0.2" });
    assert.deepEqual(ipam.allocate("c"), { v4: "10.99.0.2", v6: "fd00:99::2" });
    // An old owner gains only the family it lacks.
    assert.deepEqual(ipam.allocate("a"), { v4: "10.88.0.2", v6: "fd00:99::3" });
    // Release of an address from the old prefix works.
    assert.deepEqual(ipam.release("b"), { v4: "10.88.0.3" });
    assert.equal(ipam.ownerOf("10.88.0.3"), undefined);
    // Going back to the old prefix: "a" still blocks .2, and the cursor resumes after .3.
    ipam.setPrefixes(v4("10.88.0.0/24"));
    assert.equal(ipam.allocate("d").v4, "10.88.0.4");
    assert.equal(ipam.prefixes().v6, undefined);
    assert.equal(ipam.size(), 3);
  });

  it("rejects a prefix in the wrong slot and bad reserved addresses", () => {
    const ipam = new Ipam();
    assert.throws(() => ipam.setPrefixes({ v4: parsePrefix("fd00::/64") }), /v4 prefix must be IPv4/);
    assert.throws(() => new Ipam({ reserved: ["10.0.0.256"] }), /not a valid IPv4 address/);
    const custom = new Ipam({ reserved: ["10.0.0.2"], reserveFirstHost: false });
    custom.setPrefixes(v4("10.0.0.0/29"));
    assert.equal(custom.allocate("a").v4, "10.0.0.1");
    assert.equal(custom.allocate("b").v4, "10.0.0.3");
  });
});
