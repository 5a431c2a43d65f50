import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { entriesFor, entriesOverlap, mappingsOf, PortMappingError, validatePortMappings } from "./port-mappings.js";
import { addEntryCommands, deleteEntryCommands, parseHairpinSet, parsePortMap, structureCommands } from "./table.js";

describe("validatePortMappings", () => {
  test("normalises: protocol any case, empty protocol is tcp, hostIP canonical, empty hostIP is none", () => {
    assert.deepEqual(
      validatePortMappings([
        { hostPort: 8080, containerPort: 80, protocol: "TCP", hostIp: "" },
        { hostPort: 53, containerPort: 53, protocol: "udp", hostIp: "FD00:0088::0001" },
        { hostPort: 9000, containerPort: 9000 },
      ]),
      [
        { hostPort: 8080, containerPort: 80, protocol: "tcp" },
        { hostPort: 53, containerPort: 53, protocol: "udp", hostIp: "fd00:88::1" },
        { hostPort: 9000, containerPort: 9000, protocol: "tcp" },
      ],
    );
  });

  const bad: [string, unknown, RegExp][] = [
    ["port 0", { hostPort: 0, containerPort: 80 }, /port mapping 1: hostPort 0 is not a port: must be an integer between 1 and 65535/],
    ["port above 65535", { hostPort: 80, containerPort: 65536 }, /containerPort 65536 is not a port/],
    ["a port that is not a number", { hostPort: "80", containerPort: 80 }, /hostPort "80" is not a port/],
    ["a fractional port", { hostPort: 80.5, containerPort: 80 }, /hostPort 80.5 is not a port/],
    ["an unknown protocol", { hostPort: 80, containerPort: 80, protocol: "icmp" }, /protocol "icmp" is not one of tcp, udp, sctp/],
    ["a hostIP that is a name", { hostPort: 80, containerPort: 80, hostIp: "localhost" }, /hostIP "localhost" is not an IP address/],
    ["a hostIP with a zone", { hostPort: 80, containerPort: 80, hostIp: "fe80::1%eth0" }, /hostIP "fe80::1%eth0" is not an IP address/],
  ];
  for (const [what, mapping, message] of bad) {
    test(`refuses ${what}`, () => {
      assert.throws(() => validatePortMappings([mapping as never]), (e: Error) => e instanceof PortMappingError && message.test(e.message));
    });
  }

  test("refuses the same host port twice in one request", () => {
    assert.throws(
      () => validatePortMappings([{ hostPort: 80, containerPort: 80 }, { hostPort: 80, containerPort: 81, protocol: "tcp" }]),
      /port mapping 2: tcp 80 -> 81 is listed twice/,
    );
  });
});

describe("entriesFor", () => {
  const addrs = ["10.88.0.2", "fd00:88::2"];
  test("no hostIP: one entry per family of the workload; 0.0.0.0 and :: only their family", () => {
    const all = entriesFor([{ hostPort: 8080, containerPort: 80, protocol: "tcp" }], addrs);
    assert.deepEqual(all.map((e) => `${e.family} ${e.podAddress} ${e.hostIp ?? "*"}`), ["4 10.88.0.2 *", "6 fd00:88::2 *"]);
    const v4only = entriesFor([{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIp: "0.0.0.0" }], addrs);
    assert.deepEqual(v4only.map((e) => `${e.family} ${e.hostIp ?? "*"}`), ["4 *"]);
    const v6only = entriesFor([{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIp: "::" }], addrs);
    assert.deepEqual(v6only.map((e) => `${e.family} ${e.hostIp ?? "*"}`), ["6 *"]);
  });

  test("a hostIP of a family the workload lacks is refused", () => {
    assert.throws(() => entriesFor([{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIp: "2001:db8::1" }], ["10.88.0.2"]), /is IPv6 but the workload has no IPv6 address/);
  });

  test("overlap: same family, protocol and port, and host addresses that meet", () => {
    const [any] = entriesFor([{ hostPort: 80, containerPort: 80, protocol: "tcp" }], ["10.88.0.2"]);
    const [one] = entriesFor([{ hostPort: 80, containerPort: 80, protocol: "tcp", hostIp: "192.0.2.1" }], ["10.88.0.3"]);
    const [other] = entriesFor([{ hostPort: 80, containerPort: 80, protocol: "tcp", hostIp: "192.0.2.2" }], ["10.88.0.4"]);
    const [udp] = entriesFor([{ hostPort: 80, containerPort: 80, protocol: "udp" }], ["10.88.0.5"]);
    assert.ok(entriesOverlap(any!, one!));
    assert.ok(!entriesOverlap(one!, other!));
    assert.ok(!entriesOverlap(any!, udp!));
  });

  test("mappingsOf merges the families of one mapping back", () => {
    const entries = entriesFor([{ hostPort: 8080, containerPort: 80, protocol: "tcp" }], addrs);
    assert.deepEqual(mappingsOf(entries), [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }]);
  });
});

describe("table commands", () => {
  test("every command names our table only", () => {
    const entries = entriesFor([{ hostPort: 8080, containerPort: 80, protocol: "sctp", hostIp: "192.0.2.1" }], ["10.88.0.2"]);
    const cmds = [...structureCommands({ masquerade: true }), ...structureCommands({ masquerade: false }), ...addEntryCommands(entries), ...deleteEntryCommands(entries)];
    for (const c of cmds) assert.match(c, /^(add|flush|delete|create) (table|set|map|chain|rule|element) inet workloadnet( |$)/, c);
  });

  test("an element is keyed by host address (if any), protocol number and port", () => {
    const entries = entriesFor([{ hostPort: 8080, containerPort: 80, protocol: "sctp", hostIp: "192.0.2.1" }], ["10.88.0.2"]);
    assert.deepEqual(addEntryCommands(entries), [
      "create element inet workloadnet hostip-v4 { 192.0.2.1 . 132 . 8080 : 10.88.0.2 . 80 }",
      "add element inet workloadnet hairpin-v4 { 10.88.0.2 . 10.88.0.2 }",
    ]);
  });

  test("masquerade off: its chain is made and deleted in the same transaction (nft has no 'delete if present')", () => {
    const off = structureCommands({ masquerade: false });
    assert.ok(off.includes("delete chain inet workloadnet egress"));
    assert.ok(!off.some((c) => c.includes("masquerade") && c.includes("@pod-v4")));
  });

  test("elements read back from nft's JSON", () => {
    // As `nft -j list map inet workloadnet …` prints them (nftables 1.0.6).
    const any = { nftables: [{ metainfo: { version: "1.0.6" } }, { map: { family: "inet", name: "any-v4", table: "workloadnet", elem: [[{ concat: ["udp", 53] }, { concat: ["10.88.0.2", 53] }]] } }] };
    const specific = { nftables: [{ map: { name: "hostip-v6", elem: [[{ concat: ["2001:db8::1", "sctp", 8080] }, { concat: ["fd00:88::3", 80] }]] } }] };
    const hairpin = { nftables: [{ set: { name: "hairpin-v4", elem: [{ concat: ["10.88.0.2", "10.88.0.2"] }] } }] };
    assert.deepEqual(parsePortMap("any-v4", any), [{ family: 4, protocol: "udp", hostPort: 53, podAddress: "10.88.0.2", containerPort: 53 }]);
    assert.deepEqual(parsePortMap("hostip-v6", specific), [{ family: 6, protocol: "sctp", hostPort: 8080, hostIp: "2001:db8::1", podAddress: "fd00:88::3", containerPort: 80 }]);
    assert.deepEqual(parseHairpinSet("hairpin-v4", hairpin), ["10.88.0.2"]);
    assert.deepEqual(parseHairpinSet("hairpin-v6", hairpin), []);
    assert.deepEqual(parsePortMap("any-v6", { nftables: [{ map: { name: "any-v6" } }] }), []);
  });
});
