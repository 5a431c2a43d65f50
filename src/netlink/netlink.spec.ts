// Kernel integration tests for the netlink module, with iproute2 (`ip -json`)
// as the independent witness in both directions. Every test makes its own
// namespaces (a "host" one and pods) and removes them. Runs only inside the
// sandbox (test/run-in-sandbox.sh).
import assert from "node:assert/strict";
import { closeSync, openSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { describe, it, type TestContext } from "node:test";
import { addAddress, deleteAddress, listAddresses, type Address } from "./addr.js";
import { AF_INET, AF_INET6, IFA_F_NODAD, IN6_ADDR_GEN_MODE_NONE, NLM_F_DUMP, NLM_F_REQUEST, RTM_GETLINK, IFF_UP, RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN, NUD_PERMANENT } from "./codec/constants.js";
import { parseMac } from "./codec/mac.js";
import { NetlinkError } from "./errors.js";
import { Handle } from "./handle.js";
import { native } from "./native.js";
import { blockingInFlight } from "./blocking.js";
import { createVeth, createVethRequest, deleteLink, deleteLinkRequest, deleteLinksInGroup, getLinkByIndex, getLinkByName, listLinks, setLink, setLinkUp, setLinkUpRequest, type Link } from "./link.js";
import { addPermanentNeighbour, listNeighbours } from "./neigh.js";
import { addRoute, addRouteRequest, deleteRoute, listRoutes, lookupRoute, type Route } from "./route.js";
import { NetnsFd } from "../netns/namespace.js";
import { answeredByAckOnly, exchangeCounts, NetlinkSocket, type Request } from "./socket.js";
import { encodeMessage } from "./codec/message.js";
import { decodeLink, encodeIfInfo } from "./codec/link-message.js";
import { assertSandbox, createNamespace, ip, ipJson, type IpAddrInfo, type IpLink, type IpNeigh, type IpRoute, type PodNamespace } from "../../test/sandbox.js";

assertSandbox();

// ---- helpers ---------------------------------------------------------------

interface Ns {
  ns: PodNamespace;
  name: string;
  fd: NetnsFd;
  h: Handle;
}

/** A fresh namespace with an open fd and a handle in it, all removed after the test. */
function namespace(t: TestContext, prefix: string, maxSockets = 1): Ns {
  const ns = createNamespace(prefix);
  const fd = NetnsFd.open(ns.path);
  const h = Handle.inNamespace(fd.fd, ns.path, { maxSockets });
  t.after(async () => {
    await h.close();
    fd.close();
    ns.remove();
  });
  ip(["link", "set", "lo", "up"], ns.name);
  return { ns, name: ns.name, fd, h };
}

const ipLink = (name: string, ns: string): IpLink => {
  const [l] = ipJson<IpLink[]>(["-d", "link", "show", "dev", name], ns);
  assert.ok(l, `ip link show ${name}`);
  return l;
};
// iproute2 6.1 prints an empty object for each link a filter (e.g. group) skips.
const ipLinks = (ns: string, ...filter: string[]): IpLink[] => ipJson<IpLink[]>(["-d", "link", "show", ...filter], ns).filter((l) => l.ifname !== undefined);
const ipAddrs = (dev: string, ns: string): IpAddrInfo[] => ipJson<{ addr_info: IpAddrInfo[] }[]>(["addr", "show", "dev", dev], ns)[0]?.addr_info ?? [];
const linkExists = (name: string, ns: string): boolean => ipLinks(ns).some((l) => l.ifname === name);

/** Sockets this process holds open (netlink ones included). */
function openSockets(): number {
  let n = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith("socket:")) n++;
    } catch {
      // closed meanwhile (the directory's own fd)
    }
  }
  return n;
}

async function eventually(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const scopeName = (s: number): string => ({ [RT_SCOPE_UNIVERSE]: "global", [RT_SCOPE_LINK]: "link", [RT_SCOPE_HOST]: "host" })[s] ?? String(s);
const protoName = (p: number): string => ({ 2: "kernel", 3: "boot", 4: "static" })[p] ?? String(p);

async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<NetlinkError> {
  let caught: unknown;
  await p.then(
    () => assert.fail(`expected ${code}, but it succeeded`),
    (err: unknown) => (caught = err),
  );
  assert.ok(caught instanceof NetlinkError, `expected a NetlinkError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, message);
  return caught;
}

/** `count` plain veth pairs inside one namespace (peers alongside), made by ip. */
function ipVeths(ns: string, prefix: string, count: number, group?: number): void {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    lines.push(`link add ${prefix}${i} ${group !== undefined ? `group ${group} ` : ""}type veth peer name ${prefix}p${i}`);
  }
  ipEach(ns, lines);
}

/** Runs several `ip` commands in a namespace, one process each. */
function ipEach(ns: string, lines: string[]): void {
  for (const line of lines) ip(line.split(" "), ns);
}

// ---- our module -> ip ----------------------------------------------------

describe("what we create, ip shows", () => {
  it("a veth with its peer in another namespace: name, group, alias, MAC, MTU, queues, up", async (t) => {
    const host = namespace(t, "h");
    const pod = namespace(t, "p");
    const created = await createVeth(
      host.h,
      {
        name: "wkh0",
        mtu: 1400,
        group: 119,
        mac: parseMac("02:11:22:33:44:55"),
        txQueues: 3,
        rxQueues: 2,
        up: true,
        peer: { name: "eth0", mtu: 1400, mac: parseMac("02:aa:bb:cc:dd:ee"), txQueues: 1, rxQueues: 1, netnsFd: pod.fd.fd },
      },
      pod.ns.path,
    );
    assert.deepEqual([created.txQueues, created.rxQueues], [3, 2], "the echoed link has the queues asked for");
    await setLink(host.h, "wkh0", { alias: "pod/default/web-0" });
    const peer = await getLinkByName(pod.h, "eth0");
    assert.ok(peer);
    await setLinkUp(pod.h, peer.index);

    // The peer is only in the pod.
    assert.equal(linkExists("eth0", host.name), false);
    await eventually("both ends UP", () => ipLink("wkh0", host.name).operstate === "UP" && ipLink("eth0", pod.name).operstate === "UP");

    const h = ipLink("wkh0", host.name);
    assert.equal(h.ifname, "wkh0");
    assert.equal(h.group, "119");
    assert.equal(h.ifalias, "pod/default/web-0");
    assert.equal(h.address, "02:11:22:33:44:55");
    assert.equal(h.mtu, 1400);
    assert.ok(h.flags.includes("UP"));
    assert.equal(h.linkinfo?.info_kind, "veth");
    assert.deepEqual([h.num_tx_queues, h.num_rx_queues], [3, 2]);
    const p = ipLink("eth0", pod.name);
    assert.equal(p.address, "02:aa:bb:cc:dd:ee");
    assert.equal(p.mtu, 1400);
    assert.deepEqual([p.num_tx_queues, p.num_rx_queues], [1, 1]);
    assert.equal(p.group, "default");
    assert.ok(p.flags.includes("UP"));
    assert.equal(p.linkinfo?.info_kind, "veth");
    // Each end points at the other across namespaces.
    assert.equal(h.link_index, p.ifindex);
    assert.equal(p.link_index, h.ifindex);
    assert.equal(typeof h.link_netnsid, "number");

    // And our own reading agrees with ip's.
    const ours = await getLinkByName(host.h, "wkh0");
    assert.deepEqual(ours, {
      index: h.ifindex,
      name: "wkh0",
      flags: ours!.flags,
      mtu: 1400,
      group: 119,
      alias: "pod/default/web-0",
      mac: "02:11:22:33:44:55",
      kind: "veth",
      parentIndex: p.ifindex,
      linkNetnsId: h.link_netnsid,
      operstate: 6,
      txQueues: 3,
      rxQueues: 2,
    });
    assert.equal(ours!.flags & IFF_UP, IFF_UP);
  });

  it("IPv6 address generation off: the link comes up without a link-local address, unlike one left as is", async (t) => {
    const host = namespace(t, "h");
    ipVeths(host.name, "ag", 2);
    await setLink(host.h, "ag0", { ipv6AddrGenMode: IN6_ADDR_GEN_MODE_NONE });
    // Both ends up: a link makes its link-local address once it has a carrier.
    for (const name of ["ag0", "ag1", "agp0", "agp1"]) await setLinkUp(host.h, (await getLinkByName(host.h, name))!.index);
    assert.equal(ipLink("ag0", host.name).inet6_addr_gen_mode, "none");
    assert.equal(ipLink("ag1", host.name).inet6_addr_gen_mode, "eui64");
    const v6 = (dev: string): string[] => ipAddrs(dev, host.name).filter((a) => a.family === "inet6").map((a) => a.local);
    // The carrier reaches addrconf through the kernel's linkwatch, which may lag.
    await eventually("ag1 has its link-local address", () => v6("ag1").some((a) => a.startsWith("fe80:")));
    assert.deepEqual(v6("ag0"), []);
  });

  it("/32 and /128 addresses (nodad), with scopes", async (t) => {
    const host = namespace(t, "h");
    const pod = namespace(t, "p");
    await createVeth(host.h, { name: "wkh1", up: true, peer: { name: "eth0", netnsFd: pod.fd.fd } });
    const hostIdx = (await getLinkByName(host.h, "wkh1"))!.index;
    const podIdx = (await getLinkByName(pod.h, "eth0"))!.index;
    await setLinkUp(pod.h, podIdx);

    await addAddress(pod.h, { index: podIdx, address: "10.88.0.2", prefixLen: 32 });
    await addAddress(pod.h, { index: podIdx, address: "fd00:88::2", prefixLen: 128, flags: IFA_F_NODAD });
    await addAddress(host.h, { index: hostIdx, address: "169.254.77.1", prefixLen: 32, scope: RT_SCOPE_LINK });
    await addAddress(host.h, { index: hostIdx, address: "fe80::1", prefixLen: 128, scope: RT_SCOPE_LINK, flags: IFA_F_NODAD });

    const podAddrs = ipAddrs("eth0", pod.name).filter((a) => !a.local.startsWith("fe80:"));
    assert.deepEqual(
      podAddrs.map((a) => ({ family: a.family, local: a.local, prefixlen: a.prefixlen, scope: a.scope, nodad: a.nodad ?? false, tentative: a.tentative ?? false })),
      [
        { family: "inet", local: "10.88.0.2", prefixlen: 32, scope: "global", nodad: false, tentative: false },
        { family: "inet6", local: "fd00:88::2", prefixlen: 128, scope: "global", nodad: true, tentative: false },
      ],
    );
    const hostAddrs = ipAddrs("wkh1", host.name);
    const v4 = hostAddrs.find((a) => a.local === "169.254.77.1");
    assert.deepEqual(v4 && { prefixlen: v4.prefixlen, scope: v4.scope }, { prefixlen: 32, scope: "link" });
    const v6 = hostAddrs.find((a) => a.local === "fe80::1");
    assert.deepEqual(v6 && { prefixlen: v6.prefixlen, scope: v6.scope, nodad: v6.nodad }, { prefixlen: 128, scope: "link", nodad: true });

    // Deleting one leaves the other.
    await deleteAddress(pod.h, { index: podIdx, address: "10.88.0.2", prefixLen: 32 });
    assert.deepEqual(ipAddrs("eth0", pod.name).filter((a) => !a.local.startsWith("fe80:")).map((a) => a.local), ["fd00:88::2"]);
    await deleteAddress(pod.h, { index: podIdx, address: "fd00:88::2", prefixLen: 128 });
    assert.deepEqual(ipAddrs("eth0", pod.name).filter((a) => !a.local.startsWith("fe80:")), []);
  });

  it("a host route, an on-link route, default routes via link-local gateways with src; route delete", async (t) => {
    const host = namespace(t, "h");
    const pod = namespace(t, "p");
    await createVeth(host.h, { name: "wkh2", up: true, peer: { name: "eth0", netnsFd: pod.fd.fd } });
    const hostIdx = (await getLinkByName(host.h, "wkh2"))!.index;
    const podIdx = (await getLinkByName(pod.h, "eth0"))!.index;
    await setLinkUp(pod.h, podIdx);
    await addAddress(pod.h, { index: podIdx, address: "10.88.0.2", prefixLen: 32 });
    await addAddress(pod.h, { index: podIdx, address: "fd00:88::2", prefixLen: 128, flags: IFA_F_NODAD });

    await addRoute(host.h, { family: AF_INET, dst: "10.88.0.2", dstLen: 32, oif: hostIdx });
    await addRoute(pod.h, { family: AF_INET, dst: "169.254.77.1", dstLen: 32, oif: podIdx, scope: RT_SCOPE_LINK });
    await addRoute(pod.h, { family: AF_INET, dstLen: 0, gateway: "169.254.77.1", oif: podIdx, src: "10.88.0.2" });
    await addRoute(pod.h, { family: AF_INET6, dstLen: 0, gateway: "fe80::1", oif: podIdx, src: "fd00:88::2" });

    const [hr, ...more] = ipJson<IpRoute[]>(["route", "show", "10.88.0.2/32"], host.name);
    assert.equal(more.length, 0);
    assert.deepEqual({ dst: hr!.dst, dev: hr!.dev, protocol: hr!.protocol, gateway: hr!.gateway }, { dst: "10.88.0.2", dev: "wkh2", protocol: "static", gateway: undefined });

    const podV4 = ipJson<IpRoute[]>(["-4", "route", "show"], pod.name);
    assert.deepEqual(
      podV4.map((r) => ({ dst: r.dst, gateway: r.gateway, dev: r.dev, protocol: r.protocol, scope: r.scope, prefsrc: r.prefsrc })),
      [
        { dst: "default", gateway: "169.254.77.1", dev: "eth0", protocol: "static", scope: undefined, prefsrc: "10.88.0.2" },
        { dst: "169.254.77.1", gateway: undefined, dev: "eth0", protocol: "static", scope: "link", prefsrc: undefined },
      ],
    );
    const [d6, ...more6] = ipJson<IpRoute[]>(["-6", "route", "show", "default"], pod.name);
    assert.equal(more6.length, 0);
    assert.deepEqual({ gateway: d6!.gateway, dev: d6!.dev, protocol: d6!.protocol, prefsrc: d6!.prefsrc }, { gateway: "fe80::1", dev: "eth0", protocol: "static", prefsrc: "fd00:88::2" });

    // Our listing agrees on the default route.
    const ours = (await listRoutes(pod.h, AF_INET)).filter((r) => r.table === RT_TABLE_MAIN && r.dstLen === 0);
    assert.deepEqual(ours.map((r) => ({ gateway: r.gateway, oif: r.oif, src: r.src })), [{ gateway: "169.254.77.1", oif: podIdx, src: "10.88.0.2" }]);

    await deleteRoute(pod.h, { family: AF_INET, dstLen: 0, gateway: "169.254.77.1", oif: podIdx });
    assert.deepEqual(ipJson<IpRoute[]>(["-4", "route", "show", "default"], pod.name), []);
    await deleteRoute(host.h, { family: AF_INET, dst: "10.88.0.2", dstLen: 32, oif: hostIdx });
    assert.deepEqual(ipJson<IpRoute[]>(["route", "show", "10.88.0.2/32"], host.name), []);
  });

  it("a permanent neighbour (v4 and v6)", async (t) => {
    const host = namespace(t, "h");
    ipVeths(host.name, "nb", 1);
    ip(["link", "set", "nb0", "up"], host.name);
    const idx = (await getLinkByName(host.h, "nb0"))!.index;
    await addPermanentNeighbour(host.h, { index: idx, address: "10.88.0.2", mac: "02:aa:bb:cc:dd:ee" });
    await addPermanentNeighbour(host.h, { index: idx, address: "fd00:88::2", mac: "02:aa:bb:cc:dd:ef" });
    // replace semantics: adding again with another MAC updates in place
    await addPermanentNeighbour(host.h, { index: idx, address: "10.88.0.2", mac: "02:aa:bb:cc:dd:e0" });
    const seen = ipJson<IpNeigh[]>(["neigh", "show", "dev", "nb0"], host.name)
      .filter((n) => !n.dst.startsWith("fe80:") && !n.dst.startsWith("ff"))
      .map((n) => ({ dst: n.dst, lladdr: n.lladdr, state: n.state }))
      .sort((a, b) => a.dst.localeCompare(b.dst));
    assert.deepEqual(seen, [
      { dst: "10.88.0.2", lladdr: "02:aa:bb:cc:dd:e0", state: ["PERMANENT"] },
      { dst: "fd00:88::2", lladdr: "02:aa:bb:cc:dd:ef", state: ["PERMANENT"] },
    ]);
  });
});

// ---- ip -> our module ------------------------------------------------------

describe("what ip creates, we read back", () => {
  it("links by name, by index, all, and by group", async (t) => {
    const host = namespace(t, "h");
    ip(["link", "add", "ra0", "address", "02:00:00:00:01:00", "mtu", "1280", "group", "5", "type", "veth", "peer", "name", "rb0", "group", "6"], host.name);
    ip(["link", "set", "ra0", "alias", "an alias"], host.name);
    ipVeths(host.name, "rg", 2, 5);
    ip(["link", "set", "ra0", "up"], host.name);

    const witness = ipLinks(host.name);
    const byName = new Map(witness.map((l) => [l.ifname, l]));
    for (const l of witness) if (l.link !== undefined) l.link_index = byName.get(l.link)!.ifindex;
    const toOurs = (l: IpLink): Omit<Link, "flags" | "operstate"> => {
      const o: Omit<Link, "flags" | "operstate"> = { index: l.ifindex, name: l.ifname, mtu: l.mtu, group: l.group === "default" ? 0 : Number(l.group), mac: l.address };
      if (l.ifalias !== undefined) o.alias = l.ifalias;
      if (l.linkinfo?.info_kind) o.kind = l.linkinfo.info_kind;
      if (l.link_index !== undefined) o.parentIndex = l.link_index;
      if (l.link_netnsid !== undefined) o.linkNetnsId = l.link_netnsid;
      if (l.num_tx_queues !== undefined) o.txQueues = l.num_tx_queues;
      if (l.num_rx_queues !== undefined) o.rxQueues = l.num_rx_queues;
      return o;
    };
    const strip = ({ flags: _f, operstate: _o, ...rest }: Link): Omit<Link, "flags" | "operstate"> => rest;

    const all = await listLinks(host.h);
    assert.deepEqual(all.map(strip).sort((a, b) => a.index - b.index), witness.map(toOurs).sort((a, b) => a.index - b.index));
    assert.equal(all.length, 7); // lo + 3 pairs

    const ra0 = await getLinkByName(host.h, "ra0");
    assert.ok(ra0);
    assert.deepEqual(strip(ra0), toOurs(byName.get("ra0")!));
    assert.equal(ra0.alias, "an alias");
    assert.equal(ra0.group, 5);
    assert.equal(ra0.mtu, 1280);
    assert.equal(ra0.flags & IFF_UP, IFF_UP);
    assert.equal(ra0.parentIndex, byName.get("rb0")!.ifindex);
    const rb0 = await getLinkByIndex(host.h, byName.get("rb0")!.ifindex);
    assert.deepEqual(rb0 && strip(rb0), toOurs(byName.get("rb0")!));
    assert.equal(rb0!.flags & IFF_UP, 0);

    const group5 = await listLinks(host.h, 5);
    const witness5 = ipLinks(host.name, "group", "5");
    assert.deepEqual(group5.map((l) => l.name).sort(), ["ra0", "rg0", "rg1"]);
    assert.deepEqual(group5.map((l) => l.name).sort(), witness5.map((l) => l.ifname).sort());
    assert.deepEqual((await listLinks(host.h, 6)).map((l) => l.name), ["rb0"]);
    assert.deepEqual(await listLinks(host.h, 4242), []);
  });

  it("addresses", async (t) => {
    const host = namespace(t, "h");
    ipVeths(host.name, "ad", 2);
    const cmds = [
      "addr add 10.1.0.1/24 dev ad0",
      "addr add 10.1.0.2/32 dev ad0 scope link",
      "addr add 10.1.1.1/32 dev ad1",
      "addr add fd00:1::1/64 dev ad0 nodad",
      "addr add fd00:1::2/128 dev ad1 nodad",
      "addr add 127.0.0.2/8 dev lo scope host",
    ];
    for (const c of cmds) ip(c.split(" "), host.name);

    const ipAll = ipJson<{ ifindex: number; addr_info: IpAddrInfo[] }[]>(["addr", "show"], host.name).flatMap((l) => l.addr_info.map((a) => ({ ...a, index: l.ifindex })));
    const norm = (x: { index: number; address: string; prefixLen: number; scope: string; nodad: boolean }): string => `${x.index} ${x.address}/${x.prefixLen} ${x.scope}${x.nodad ? " nodad" : ""}`;
    const theirs = ipAll.map((a) => norm({ index: a.index, address: a.local, prefixLen: a.prefixlen, scope: a.scope, nodad: a.nodad ?? false })).sort();
    const ours = (await listAddresses(host.h)).map((a: Address) => norm({ index: a.index, address: a.address, prefixLen: a.prefixLen, scope: scopeName(a.scope), nodad: (a.flags & IFA_F_NODAD) !== 0 })).sort();
    assert.deepEqual(ours, theirs);
    assert.equal(ours.length, 8); // 6 above + 127.0.0.1/8 + ::1/128

    const ad0 = (await getLinkByName(host.h, "ad0"))!.index;
    const onAd0 = await listAddresses(host.h, { index: ad0, family: AF_INET });
    assert.deepEqual(onAd0.map((a) => [a.address, a.prefixLen, a.scope, a.label]).sort(), [
      ["10.1.0.1", 24, RT_SCOPE_UNIVERSE, "ad0"],
      ["10.1.0.2", 32, RT_SCOPE_LINK, "ad0"],
    ]);
    const v6 = await listAddresses(host.h, { family: AF_INET6 });
    assert.deepEqual(v6.map((a) => a.address).sort(), ["::1", "fd00:1::1", "fd00:1::2"]);
  });

  it("routes", async (t) => {
    const host = namespace(t, "h");
    ipVeths(host.name, "rt", 1);
    const cmds = [
      "link set rt0 up",
      "link set rtp0 up",
      "addr add 10.1.0.1/24 dev rt0",
      "addr add fd00:1::1/64 dev rt0 nodad",
      "route add 10.2.0.0/16 via 10.1.0.254 dev rt0 proto static metric 50",
      "route add 10.3.0.1 dev rt0 scope link",
      "route add default via 10.1.0.254 src 10.1.0.1",
      "route add fd00:2::/64 via fd00:1::fe dev rt0",
      "route add 10.4.0.0/24 dev rt0 table 1000",
    ];
    for (const c of cmds) ip(c.split(" "), host.name);
    const names = new Map((await listLinks(host.h)).map((l) => [l.index, l.name]));

    const key = (r: { dst: string; gateway?: string | undefined; dev?: string | undefined; protocol?: string | undefined; scope?: string | undefined; prefsrc?: string | undefined; metric?: number | undefined }): string =>
      [r.dst, r.gateway ?? "-", r.dev ?? "-", r.protocol ?? "boot", r.scope ?? "global", r.prefsrc ?? "-", r.metric ?? 0].join(" ");
    const ourKey = (r: Route): string =>
      key({
        dst: r.dstLen === 0 ? "default" : r.dstLen === (r.family === AF_INET ? 32 : 128) ? r.dst! : `${r.dst}/${r.dstLen}`,
        gateway: r.gateway,
        dev: r.oif !== undefined ? names.get(r.oif) : undefined,
        protocol: protoName(r.protocol),
        scope: scopeName(r.scope),
        prefsrc: r.src,
        metric: r.priority,
      });

    for (const [family, flag] of [[AF_INET, "-4"], [AF_INET6, "-6"]] as const) {
      const theirs = ipJson<IpRoute[]>([flag, "route", "show", "table", "main"], host.name).map(key).sort();
      const ours = (await listRoutes(host.h, family)).filter((r) => r.table === RT_TABLE_MAIN).map(ourKey).sort();
      assert.deepEqual(ours, theirs, flag);
    }
    const v4 = (await listRoutes(host.h, AF_INET)).filter((r) => r.table === RT_TABLE_MAIN).map(ourKey);
    assert.ok(v4.includes("10.2.0.0/16 10.1.0.254 rt0 static global - 50"), v4.join("\n"));
    assert.ok(v4.includes("10.3.0.1 - rt0 boot link - 0"), v4.join("\n"));
    assert.ok(v4.includes("default 10.1.0.254 rt0 boot global 10.1.0.1 0"), v4.join("\n"));
    const t1000 = (await listRoutes(host.h)).filter((r) => r.table === 1000);
    assert.deepEqual(t1000.map((r) => `${r.dst}/${r.dstLen}`), ["10.4.0.0/24"]);
  });

  it("route lookups: the most specific route to an address, as ip route get fibmatch finds it; none without a route", async (t) => {
    const host = namespace(t, "h");
    ipVeths(host.name, "lk", 2);
    ipEach(host.name, [
      ...["lk0", "lk1", "lkp0", "lkp1"].map((l) => `link set ${l} up`),
      "route add 10.5.0.0/24 dev lk0",
      "route add 10.5.0.7/32 dev lk1 proto static",
      "route add fd00:5::/64 dev lk0",
      "route add fd00:5::7/128 dev lk1 proto static",
    ]);
    const names = new Map((await listLinks(host.h)).map((l) => [l.index, l.name]));
    for (const [address, dst, dev] of [
      ["10.5.0.7", "10.5.0.7/32", "lk1"],
      ["10.5.0.8", "10.5.0.0/24", "lk0"],
      ["fd00:5::7", "fd00:5::7/128", "lk1"],
      ["fd00:5::8", "fd00:5::/64", "lk0"],
    ] as const) {
      const r = await lookupRoute(host.h, address);
      assert.equal(`${r?.dst}/${r?.dstLen}`, dst, address);
      assert.equal(names.get(r?.oif ?? -1), dev, address);
      const [theirs] = ipJson<IpRoute[]>(["route", "get", "fibmatch", address], host.name);
      assert.equal(theirs?.dev, dev, `ip route get fibmatch ${address}`);
    }
    // No default route in this namespace: nothing matches.
    assert.equal(await lookupRoute(host.h, "192.0.2.1"), undefined);
    assert.equal(await lookupRoute(host.h, "2001:db8::1"), undefined);
  });

  it("neighbours", async (t) => {
    const host = namespace(t, "h");
    ipVeths(host.name, "ne", 1);
    for (const c of [
      "link set ne0 up",
      "neigh add 10.1.0.9 lladdr 02:00:00:00:00:09 dev ne0 nud permanent",
      "neigh add 10.1.0.10 lladdr 02:00:00:00:00:0a dev ne0 nud permanent",
      "neigh add fd00:1::9 lladdr 02:00:00:00:00:19 dev ne0 nud permanent",
    ]) {
      ip(c.split(" "), host.name);
    }
    const idx = (await getLinkByName(host.h, "ne0"))!.index;
    const theirs = ipJson<IpNeigh[]>(["neigh", "show", "dev", "ne0", "nud", "permanent"], host.name).map((n) => `${n.dst} ${n.lladdr}`).sort();
    const ours = (await listNeighbours(host.h, { index: idx })).filter((n) => n.state === NUD_PERMANENT).map((n) => `${n.address} ${n.mac}`).sort();
    assert.deepEqual(ours, theirs);
    assert.deepEqual(ours, ["10.1.0.10 02:00:00:00:00:0a", "10.1.0.9 02:00:00:00:00:09", "fd00:1::9 02:00:00:00:00:19"]);
    const v6 = await listNeighbours(host.h, { family: AF_INET6, index: idx });
    assert.deepEqual(v6.filter((n) => n.state === NUD_PERMANENT).map((n) => n.address), ["fd00:1::9"]);
  });
});

// ---- deletes ---------------------------------------------------------------

describe("deletes", () => {
  it("deleting a veth removes its peer in the other namespace", async (t) => {
    const host = namespace(t, "h");
    const pod = namespace(t, "p");
    await createVeth(host.h, { name: "wkd0", peer: { name: "eth0", netnsFd: pod.fd.fd } });
    assert.ok(linkExists("eth0", pod.name));
    const idx = (await getLinkByName(host.h, "wkd0"))!.index;
    await deleteLink(host.h, idx);
    assert.equal(linkExists("wkd0", host.name), false);
    assert.equal(linkExists("eth0", pod.name), false);
    assert.equal(await getLinkByName(pod.h, "eth0"), undefined);
  });

  it("deleteLinksInGroup removes exactly that group", async (t) => {
    const host = namespace(t, "h");
    ipVeths(host.name, "ga", 3, 77);
    ipVeths(host.name, "gb", 2, 78);
    await deleteLinksInGroup(host.h, 77);
    assert.deepEqual(ipLinks(host.name, "group", "77"), []);
    // the peers (group 0) went with their veths; group 78 stays
    assert.deepEqual(ipLinks(host.name).map((l) => l.ifname).sort(), ["gb0", "gb1", "gbp0", "gbp1", "lo"]);
    assert.deepEqual((await listLinks(host.h, 78)).map((l) => l.name).sort(), ["gb0", "gb1"]);
    // an empty group: the kernel says ENODEV
    await rejectsWith(deleteLinksInGroup(host.h, 77), "ENODEV", /delete links in group 77: ENODEV/);
  });
});

// ---- errors ----------------------------------------------------------------

describe("errors", () => {
  it("EEXIST for a duplicate veth name and a duplicate route, with context", async (t) => {
    const host = namespace(t, "h");
    const pod = namespace(t, "p");
    await createVeth(host.h, { name: "dup0", up: true, peer: { name: "eth0", netnsFd: pod.fd.fd } }, pod.ns.path);
    await rejectsWith(
      createVeth(host.h, { name: "dup0", peer: { name: "eth1", netnsFd: pod.fd.fd } }, pod.ns.path),
      "EEXIST",
      new RegExp(`^create veth dup0 -> eth1 in ${pod.ns.path}: EEXIST`),
    );
    // nothing half-made
    assert.equal(linkExists("eth1", pod.name), false);
    const idx = (await getLinkByName(host.h, "dup0"))!.index;
    await addRoute(host.h, { family: AF_INET, dst: "10.9.0.0", dstLen: 24, oif: idx });
    await rejectsWith(addRoute(host.h, { family: AF_INET, dst: "10.9.0.0", dstLen: 24, oif: idx }), "EEXIST", /^add route 10\.9\.0\.0\/24 dev index \d+ in .*: EEXIST/);
    await addAddress(host.h, { index: idx, address: "10.9.0.1", prefixLen: 32 });
    await rejectsWith(addAddress(host.h, { index: idx, address: "10.9.0.1", prefixLen: 32 }), "EEXIST", /^add address 10\.9\.0\.1\/32 dev index \d+ in .*: EEXIST/);
  });

  it("missing links: undefined from get, ENODEV from delete", async (t) => {
    const host = namespace(t, "h");
    assert.equal(await getLinkByName(host.h, "nope0"), undefined);
    assert.equal(await getLinkByIndex(host.h, 99999), undefined);
    const err = await rejectsWith(deleteLink(host.h, 99999), "ENODEV", /^delete link index 99999: ENODEV/);
    assert.equal(err.errno, 19);
    await rejectsWith(deleteLink(host.h, 99999, "wk-gone"), "ENODEV", /^delete link wk-gone: ENODEV/);
    // the kernel's own explanation, when it gives one, reaches the message
    const bad = await rejectsWith(addRoute(host.h, { family: AF_INET, dst: "10.9.0.0", dstLen: 24, oif: 99999 }), "ENODEV", /^add route 10\.9\.0\.0\/24 dev index 99999/);
    assert.ok(bad.extack === undefined || bad.message.includes(bad.extack));
  });

  it("the addon's exchanges, on the pool and inline: bad arguments are TypeErrors, a bad fd an errno error", async () => {
    for (const bad of [[], [-1], [3, "x", 1], [3, Buffer.alloc(16), 0], ["3", Buffer.alloc(16), 1], [3, Buffer.alloc(16), 1, "yes"]] as unknown[][]) {
      const call = (f: (...a: unknown[]) => unknown): unknown => f(...bad);
      assert.throws(() => call(native.exchange as (...a: unknown[]) => unknown), /exchange\(fd, request: Buffer, terminals >= 1, acksOnly\?: boolean\)/);
      assert.throws(() => call(native.exchangeSync as (...a: unknown[]) => unknown), /exchangeSync\(fd, request: Buffer, terminals >= 1, acksOnly\?: boolean\)/);
    }
    const fd = openSync("/dev/null", "r");
    try {
      const notNetlink = (err: unknown): boolean => (err as { code?: string; syscall?: string }).syscall === "sendto" && (err as { code?: string }).code === "ENOTSOCK";
      assert.throws(() => native.exchangeSync(fd, Buffer.alloc(16), 1), notNetlink);
      await assert.rejects(native.exchange(fd, Buffer.alloc(16), 1), notNetlink);
    } finally {
      closeSync(fd);
    }
  });

  it("acknowledgements only: read several per call, more than one read's worth too; a larger reply is EMSGSIZE, never cut short", async (t) => {
    const host = namespace(t, "h");
    const ups = Array.from({ length: 20 }, () => setLinkUpRequest(1, true, "lo"));
    assert.ok(ups.every(answeredByAckOnly));
    for (const inline of [true, false]) {
      const s = NetlinkSocket.open(host.fd.fd, host.name);
      t.after(() => s.close());
      const out = await s.batch(ups, inline);
      assert.deepEqual(out.map((o) => o.ok), ups.map(() => true), `inline: ${inline}`);
      const err = await s.batch([...ups.slice(0, 3), setLinkUpRequest(999, true, "nothing"), ...ups.slice(0, 3)], inline);
      assert.deepEqual(err.map((o) => (o.ok ? "ok" : o.error.code)), ["ok", "ok", "ok", "ENODEV", "ok", "ok", "ok"]);
    }
    // A dump's parts are larger than an acknowledgement's slot: asked to read
    // one as acknowledgements, the addon fails rather than returning a piece.
    ipVeths(host.name, "big", 4);
    const fd = native.openSocket(host.fd.fd);
    t.after(() => closeSync(fd));
    const dump = encodeMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, [encodeIfInfo({})]);
    assert.throws(() => native.exchangeSync(fd, dump, 1, true), { code: "EMSGSIZE", syscall: "recvmmsg" });
  });

  it("answeredByAckOnly: changes and deletes, with or without EXCL; not gets, dumps or echoes", () => {
    assert.equal(answeredByAckOnly(setLinkUpRequest(1, true)), true);
    assert.equal(answeredByAckOnly(deleteLinkRequest(1)), true);
    assert.equal(answeredByAckOnly(addRouteRequest({ family: AF_INET, dst: "10.0.0.1", dstLen: 32, oif: 1 }, "x")), true, "NLM_F_EXCL shares a bit with the dump flags");
    assert.equal(answeredByAckOnly(createVethRequest({ name: "a", peer: { name: "b" } })), false, "the create echoes the link");
    assert.equal(answeredByAckOnly({ type: RTM_GETLINK, flags: 0, parts: [], context: "" }), false);
    assert.equal(answeredByAckOnly({ type: RTM_GETLINK, flags: NLM_F_DUMP, parts: [], context: "" }), false);
  });

  it("a closed fd or a non-network-namespace fd given to Handle.inNamespace", () => {
    const ns = createNamespace("c");
    try {
      const closed = NetnsFd.open(ns.path);
      closed.close();
      assert.throws(
        () => Handle.inNamespace(closed.fd, ns.path),
        (err: unknown) => err instanceof NetlinkError && err.code === "EBADF" && err.message === `open netlink socket in ${ns.path}: EBADF (setns: the namespace fd is not open)`,
      );
    } finally {
      ns.remove();
    }
    for (const p of ["/etc/passwd", "/proc/self/ns/mnt"]) {
      const fd = openSync(p, "r");
      try {
        assert.throws(
          () => Handle.inNamespace(fd, p),
          (err: unknown) => err instanceof NetlinkError && err.code === "EINVAL" && err.message === `open netlink socket in ${p}: EINVAL (setns: the fd is not a network namespace)`,
        );
      } finally {
        closeSync(fd);
      }
    }
  });

  it("Handle.openInNamespace opens off the main thread, in the right namespace, with the same errors", async () => {
    const ns = createNamespace("oa");
    try {
      ip(["link", "add", "oaprobe", "type", "veth", "peer", "name", "oapeer"], ns.name);
      const fd = NetnsFd.open(ns.path);
      const h = await Handle.openInNamespace(fd.fd, ns.path);
      try {
        // It sees the namespace's own links, not the sandbox's.
        assert.deepEqual((await listLinks(h)).map((l) => l.name).sort(), ["lo", "oapeer", "oaprobe"]);
      } finally {
        await h.close();
        fd.close();
      }
    } finally {
      ns.remove();
    }
    const fd = openSync("/etc/passwd", "r");
    try {
      await assert.rejects(
        Handle.openInNamespace(fd, "/etc/passwd"),
        (err: unknown) => err instanceof NetlinkError && err.code === "EINVAL" && err.message === "open netlink socket in /etc/passwd: EINVAL (setns: the fd is not a network namespace)",
      );
    } finally {
      closeSync(fd);
    }
  });

  it("a thread that opened a socket in a pod is straight back home: later sockets, on the main thread and the pool, open in the daemon's namespace", async () => {
    const home = statSync("/proc/thread-self/ns/net").ino;
    const ns = createNamespace("bk");
    const fd = NetnsFd.open(ns.path);
    try {
      ip(["link", "add", "bkprobe", "type", "veth", "peer", "name", "bkpeer"], ns.name);
      // Many at once, so every thread of the pool takes its turn in the pod.
      const opened = [...Array.from({ length: 8 }, () => Handle.inNamespace(fd.fd, ns.path)), ...(await Promise.all(Array.from({ length: 40 }, () => Handle.openInNamespace(fd.fd, ns.path))))];
      for (const h of opened) assert.ok((await listLinks(h)).some((l) => l.name === "bkprobe"), "a pod socket sees the pod");
      await Promise.all(opened.map((h) => h.close()));
      assert.equal(statSync("/proc/thread-self/ns/net").ino, home, "the main thread is back in its own namespace");
      const ours = ipJson<IpLink[]>(["link", "show"]).map((l) => l.ifname).sort();
      const sockets = [...(await Promise.all(Array.from({ length: 40 }, () => NetlinkSocket.openAsync(-1, "here")))), NetlinkSocket.open(-1, "here")];
      try {
        for (const s of sockets) {
          const names = (await s.request({ type: RTM_GETLINK, flags: NLM_F_DUMP, parts: [encodeIfInfo({})], context: "list links" })).map((m) => decodeLink(m.payload).name).sort();
          assert.deepEqual(names, ours, "a socket opened afterwards sees our own namespace");
        }
      } finally {
        await Promise.all(sockets.map((s) => s.close()));
      }
    } finally {
      fd.close();
      ns.remove();
    }
  });

  it("a closed handle refuses requests", async (t) => {
    const host = namespace(t, "h");
    const fd = NetnsFd.open(host.ns.path);
    const h = Handle.inNamespace(fd.fd, host.ns.path);
    fd.close();
    assert.equal((await listLinks(h)).length, 1); // the socket outlives the fd
    await h.close();
    await assert.rejects(listLinks(h), /netlink handle for .* is closed/);
  });
});

// ---- batches, responsiveness, concurrency -----------------------------------

describe("batches and concurrency", () => {
  it("a batch with failures in the middle reports each outcome and applies the rest", async (t) => {
    const host = namespace(t, "h");
    ipVeths(host.name, "bt", 1);
    ip(["link", "set", "bt0", "up"], host.name);
    const idx = (await getLinkByName(host.h, "bt0"))!.index;
    const route = (dst: string) => addRouteRequest({ family: AF_INET, dst, dstLen: 32, oif: idx }, host.name);
    const outcomes = await host.h.batch([route("10.5.0.1"), route("10.5.0.1"), deleteLinkRequest(99999), route("10.5.0.2"), createVethRequest({ name: "bt0", peer: { name: "x" } })]);
    assert.deepEqual(outcomes.map((o) => (o.ok ? "ok" : o.error.code)), ["ok", "EEXIST", "ENODEV", "ok", "EEXIST"]);
    const failed = outcomes[1]!;
    assert.ok(!failed.ok && /^add route 10\.5\.0\.1\/32 dev index \d+ in .*: EEXIST/.test(failed.error.message));
    const missing = outcomes[2]!;
    assert.ok(!missing.ok && missing.error.message.startsWith("delete link index 99999: ENODEV"));
    const dsts = ipJson<IpRoute[]>(["route", "show", "dev", "bt0"], host.name).map((r) => r.dst).sort();
    assert.deepEqual(dsts, ["10.5.0.1", "10.5.0.2"]);
  });

  it("a batch with a (multi-part) dump between changes", async (t) => {
    const host = namespace(t, "h");
    ipVeths(host.name, "bd", 1);
    ip(["link", "set", "bd0", "up"], host.name);
    const idx = (await getLinkByName(host.h, "bd0"))!.index;
    // Enough links that the dump spans several datagrams.
    ipVeths(host.name, "bm", 40);
    const dump: Request = { type: RTM_GETLINK, flags: NLM_F_DUMP, parts: [encodeIfInfo({})], context: "dump links" };
    const outcomes = await host.h.batch([
      addRouteRequest({ family: AF_INET, dst: "10.6.0.1", dstLen: 32, oif: idx }),
      dump,
      addRouteRequest({ family: AF_INET, dst: "10.6.0.2", dstLen: 32, oif: idx }),
    ]);
    assert.deepEqual(outcomes.map((o) => o.ok), [true, true, true]);
    assert.deepEqual(outcomes.map((o) => (o.ok ? o.messages.length : -1)), [0, 1 + 2 + 80, 0]);
    const dumped = outcomes[1]!.ok ? outcomes[1]!.messages.map((m) => decodeLink(m.payload).name).sort() : [];
    assert.deepEqual(dumped, ipLinks(host.name).map((l) => l.ifname).sort());
    const routes = (await listRoutes(host.h, AF_INET)).filter((r) => r.oif === idx && r.table === RT_TABLE_MAIN).map((r) => r.dst).sort();
    assert.deepEqual(routes, ["10.6.0.1", "10.6.0.2"]);
  });

  it("the event loop keeps running while veths are deleted", async (t) => {
    const host = namespace(t, "h");
    const pods = Array.from({ length: 8 }, (_, i) => namespace(t, `e${i}`));
    for (const [i, p] of pods.entries()) await createVeth(host.h, { name: `ev${i}`, peer: { name: "eth0", netnsFd: p.fd.fd } });
    const indexes = (await listLinks(host.h)).filter((l) => l.name.startsWith("ev")).map((l) => l.index);
    assert.equal(indexes.length, 8);

    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const start = process.hrtime.bigint();
    try {
      for (const idx of indexes) await deleteLink(host.h, idx);
    } finally {
      clearInterval(timer);
    }
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    t.diagnostic(`8 sequential veth deletes: ${ms.toFixed(1)} ms, ${ticks} timer ticks`);
    assert.ok(ticks >= indexes.length, `only ${ticks} ticks in ${ms.toFixed(1)} ms of deletes`);
    assert.deepEqual(ipLinks(host.name).map((l) => l.ifname), ["lo"]);
    for (const p of pods) assert.deepEqual(ipLinks(p.name).map((l) => l.ifname), ["lo"]);
  });

  it("inline: fast requests run on the calling thread, and on the pool while a blocking request is in flight", async (t) => {
    const host = namespace(t, "h");
    const inline = Handle.inNamespace(host.fd.fd, host.name, { inline: true, maxSockets: 2 });
    t.after(() => inline.close());
    const pods = Array.from({ length: 8 }, (_, i) => namespace(t, `i${i}`));
    const before = exchangeCounts();
    for (const [i, p] of pods.entries()) await createVeth(inline, { name: `in${i}`, group: 77, up: true, peer: { name: "eth0", netnsFd: p.fd.fd } });
    const made = exchangeCounts();
    assert.deepEqual({ inline: made.inline - before.inline, pooled: made.pooled - before.pooled }, { inline: 8, pooled: 0 });
    // Made inline, exactly as asked (ip is the witness).
    const links = ipLinks(host.name).filter((l) => l.ifname.startsWith("in"));
    assert.deepEqual(links.map((l) => l.group), Array(8).fill("77"));
    assert.ok(links.every((l) => l.flags.includes("UP")));
    for (const p of pods) assert.deepEqual(ipLinks(p.name).map((l) => l.ifname).sort(), ["eth0", "lo"]);

    // A group delete may hold the kernel's rtnl lock while it waits: the fast
    // request sent meanwhile must not wait for it on this thread.
    const deleting = deleteLinksInGroup(inline, 77);
    // It reaches the socket a few microtasks later.
    for (let i = 0; i < 100 && blockingInFlight() === 0; i++) await Promise.resolve();
    assert.equal(blockingInFlight(), 1);
    await setLinkUp(inline, 1, true);
    await deleting;
    const during = exchangeCounts();
    assert.deepEqual({ inline: during.inline - made.inline, pooled: during.pooled - made.pooled }, { inline: 0, pooled: 2 });
    assert.equal(blockingInFlight(), 0);
    assert.deepEqual(ipLinks(host.name).map((l) => l.ifname), ["lo"]);

    // Once it is done, inline again.
    await setLinkUp(inline, 1, true);
    assert.equal(exchangeCounts().inline - during.inline, 1);

    // A predicate is asked before each exchange.
    let allow = false;
    const asking = Handle.inNamespace(host.fd.fd, host.name, { inline: () => allow });
    t.after(() => asking.close());
    const c0 = exchangeCounts();
    await setLinkUp(asking, 1, true);
    allow = true;
    await setLinkUp(asking, 1, true);
    const c1 = exchangeCounts();
    assert.deepEqual({ inline: c1.inline - c0.inline, pooled: c1.pooled - c0.pooled }, { inline: 1, pooled: 1 });
  });

  it("maxSockets: 8 — concurrent deletes and reads all get their own answers", async (t) => {
    const host = namespace(t, "h", 8);
    const pods = Array.from({ length: 8 }, (_, i) => namespace(t, `c${i}`));
    for (const [i, p] of pods.entries()) await createVeth(host.h, { name: `cd${i}`, group: 42, peer: { name: "eth0", netnsFd: p.fd.fd } });
    ipVeths(host.name, "keep", 8);
    const links = await listLinks(host.h);
    const doomed = links.filter((l) => l.name.startsWith("cd"));
    const kept = links.filter((l) => l.name.startsWith("keep"));
    assert.equal(doomed.length, 8);

    const socketsBefore = openSockets();
    const results = await Promise.allSettled([
      ...doomed.map((l) => deleteLink(host.h, l.index, l.name).then(() => l.name)),
      deleteLink(host.h, 99999, "ghost").then(() => "ghost"),
      ...kept.map((l) => getLinkByName(host.h, l.name).then((got) => `${got?.name}#${got?.index}`)),
      ...kept.map((l) => getLinkByIndex(host.h, l.index).then((got) => `${got?.name}#${got?.index}`)),
    ]);
    // 17 requests at once: the handle grew from 1 to exactly maxSockets sockets.
    assert.equal(openSockets() - socketsBefore, 7);
    const values = results.map((r) => (r.status === "fulfilled" ? r.value : `error ${(r.reason as NetlinkError).code} ${(r.reason as Error).message}`));
    assert.deepEqual(values, [
      ...doomed.map((l) => l.name),
      "error ENODEV delete link ghost: ENODEV",
      ...kept.map((l) => `${l.name}#${l.index}`),
      ...kept.map((l) => `${l.name}#${l.index}`),
    ]);
    assert.deepEqual(ipLinks(host.name, "group", "42"), []);
    assert.equal(ipLinks(host.name).filter((l) => l.ifname.startsWith("keep")).length, 16);
    for (const p of pods) assert.equal(linkExists("eth0", p.name), false);
  });
});
