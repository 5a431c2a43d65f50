// Kernel tests of the operations behind routes to other nodes (VXLAN links,
// FDB entries, neighbours by device, routes with our protocol, onlink and
// replace), with iproute2 and bridge as the independent witnesses.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it, type TestContext } from "node:test";
import { AF_INET, AF_INET6, IFF_UP, RTNH_F_ONLINK, RTPROT_WORKLOADNET, NUD_PERMANENT, NTF_SELF } from "./codec/constants.js";
import { parseMac } from "./codec/mac.js";
import { Handle } from "./handle.js";
import { deleteLink, getLinkByName, setLinkUp } from "./link.js";
import { createVxlan } from "./vxlan.js";
import { appendFdb, deleteFdb, listFdb, replaceFdb } from "./fdb.js";
import { addPermanentNeighbour, deleteNeighbour, listNeighbours } from "./neigh.js";
import { getRoute, listRoutesByProtocol, lookupRoute, replaceRoute } from "./route.js";
import { NetnsFd } from "../netns/namespace.js";
import { assertSandbox, createNamespace, ip, ipJson, type IpRoute } from "../../test/sandbox.js";

assertSandbox();

function namespace(t: TestContext): { name: string; h: Handle } {
  const ns = createNamespace("vx");
  const fd = NetnsFd.open(ns.path);
  const h = Handle.inNamespace(fd.fd, ns.path);
  t.after(async () => {
    await h.close();
    fd.close();
    ns.remove();
  });
  ip(["link", "set", "lo", "up"], ns.name);
  return { name: ns.name, h };
}

const bridgeFdb = (ns: string, dev: string): { mac: string; dst?: string; flags?: string[]; state?: string }[] =>
  JSON.parse(execFileSync("bridge", ["-n", ns, "-json", "fdb", "show", "dev", dev], { encoding: "utf8" }) || "[]");

describe("VXLAN links", () => {
  it("created as asked (id, local, dstport, nolearning, MTU, MAC), seen by ip, looked up with its settings, deleted", async (t) => {
    const { name, h } = namespace(t);
    const link = await createVxlan(h, { name: "vxa", mtu: 1450, mac: parseMac("02:57:c0:00:02:0b"), vxlan: { vni: 4242, local: "192.0.2.11", port: 4789, learning: false } });
    assert.deepEqual(link.vxlan, { vni: 4242, local: "192.0.2.11", port: 4789, learning: false });
    const [l] = ipJson<{ mtu: number; address: string; linkinfo: { info_kind: string; info_data: { id: number; local: string; port: number; learning: boolean } } }[]>(["-d", "link", "show", "dev", "vxa"], name);
    assert.equal(l?.linkinfo.info_kind, "vxlan");
    assert.deepEqual([l?.linkinfo.info_data.id, l?.linkinfo.info_data.local, l?.linkinfo.info_data.port, l?.linkinfo.info_data.learning], [4242, "192.0.2.11", 4789, false]);
    assert.deepEqual([l?.mtu, l?.address], [1450, "02:57:c0:00:02:0b"]);
    await setLinkUp(h, link.index);
    const got = await getLinkByName(h, "vxa");
    assert.ok(got && got.flags & IFF_UP);
    assert.equal(got.kind, "vxlan");
    assert.equal(got.vxlan?.vni, 4242);
    await deleteLink(h, link.index);
    assert.equal(await getLinkByName(h, "vxa"), undefined);
  });

  it("over IPv6 (LOCAL6), and one made by ip is read back the same", async (t) => {
    const { name, h } = namespace(t);
    const link = await createVxlan(h, { name: "vx6", vxlan: { vni: 9, local: "2001:db8::11", port: 8472, learning: false } });
    assert.equal(link.vxlan?.local, "2001:db8::11");
    ip(["link", "add", "vxip", "type", "vxlan", "id", "77", "local", "198.51.100.1", "dstport", "4790", "learning"], name);
    assert.deepEqual((await getLinkByName(h, "vxip"))?.vxlan, { vni: 77, local: "198.51.100.1", port: 4790, learning: true });
  });
});

describe("FDB entries, neighbours by device, our routes", () => {
  it("fdb append/replace/del as bridge shows them; list by device leaves other devices' entries out", async (t) => {
    const { name, h } = namespace(t);
    const a = await createVxlan(h, { name: "vxa", vxlan: { vni: 1, local: "192.0.2.11", port: 4789, learning: false } });
    const b = await createVxlan(h, { name: "vxb", vxlan: { vni: 2, local: "192.0.2.11", port: 4790, learning: false } });
    await appendFdb(h, { index: a.index, mac: "02:57:c0:00:02:0c", dst: "192.0.2.12" });
    // Several remotes for one MAC: the kernel takes them only for the all-zeros (flooding) entry.
    await appendFdb(h, { index: a.index, mac: "00:00:00:00:00:00", dst: "192.0.2.21" });
    await appendFdb(h, { index: a.index, mac: "00:00:00:00:00:00", dst: "192.0.2.22" });
    await appendFdb(h, { index: b.index, mac: "02:00:00:00:00:bb", dst: "192.0.2.99" });
    const shown = () => bridgeFdb(name, "vxa").map((e) => `${e.mac} ${e.dst} ${e.flags?.join(",")} ${e.state}`).sort();
    assert.deepEqual(shown(), [
      "00:00:00:00:00:00 192.0.2.21 self permanent",
      "00:00:00:00:00:00 192.0.2.22 self permanent",
      "02:57:c0:00:02:0c 192.0.2.12 self permanent",
    ]);
    const listed = await listFdb(h, a.index);
    assert.deepEqual(listed.map((e) => `${e.mac} ${e.dst}`).sort(), ["00:00:00:00:00:00 192.0.2.21", "00:00:00:00:00:00 192.0.2.22", "02:57:c0:00:02:0c 192.0.2.12"]);
    assert.ok(listed.every((e) => e.state & NUD_PERMANENT && e.flags & NTF_SELF));
    await deleteFdb(h, { index: a.index, mac: "00:00:00:00:00:00", dst: "192.0.2.22" });
    await replaceFdb(h, { index: a.index, mac: "02:57:c0:00:02:0c", dst: "192.0.2.14" });
    assert.deepEqual(shown(), ["00:00:00:00:00:00 192.0.2.21 self permanent", "02:57:c0:00:02:0c 192.0.2.14 self permanent"]);
    await deleteFdb(h, { index: a.index, mac: "02:57:c0:00:02:0c" });
    await deleteFdb(h, { index: a.index, mac: "00:00:00:00:00:00" });
    assert.deepEqual(await listFdb(h, a.index), []);
    assert.deepEqual(bridgeFdb(name, "vxb").map((e) => e.dst), ["192.0.2.99"], "the other device's entry stays");
  });

  it("permanent neighbours added, replaced, listed by device (filtered by the kernel) and deleted", async (t) => {
    const { name, h } = namespace(t);
    const a = await createVxlan(h, { name: "vxa", vxlan: { vni: 1, local: "192.0.2.11", port: 4789, learning: false } });
    const b = await createVxlan(h, { name: "vxb", vxlan: { vni: 2, local: "192.0.2.11", port: 4790, learning: false } });
    await addPermanentNeighbour(h, { index: a.index, address: "10.70.3.0", mac: "02:57:c6:33:64:0d" });
    await addPermanentNeighbour(h, { index: a.index, address: "fd70:3::", mac: "02:57:c6:33:64:0d" });
    await addPermanentNeighbour(h, { index: b.index, address: "10.70.9.0", mac: "02:00:00:00:00:09" });
    await addPermanentNeighbour(h, { index: a.index, address: "10.70.3.0", mac: "02:57:c6:33:64:0e" });
    assert.deepEqual(
      (await listNeighbours(h, { index: a.index })).map((n) => `${n.address} ${n.mac} ${n.state === NUD_PERMANENT}`).sort(),
      ["10.70.3.0 02:57:c6:33:64:0e true", "fd70:3:: 02:57:c6:33:64:0d true"],
    );
    await deleteNeighbour(h, { index: a.index, address: "fd70:3::" });
    assert.deepEqual(ipJson<{ dst: string; lladdr: string }[]>(["neigh", "show", "dev", "vxa"], name).map((n) => `${n.dst} ${n.lladdr}`), ["10.70.3.0 02:57:c6:33:64:0e"]);
    assert.equal(ipJson<{ dst: string }[]>(["neigh", "show", "dev", "vxb"], name).length, 1);
  });

  it("routes with our protocol, onlink via the tunnel, replaced in place, listed apart from others'", async (t) => {
    const { name, h } = namespace(t);
    ip(["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"], name);
    ip(["link", "set", "eth0p", "up"], name);
    ip(["link", "set", "eth0", "up"], name);
    ip(["addr", "add", "192.0.2.11/24", "dev", "eth0"], name);
    ip(["route", "add", "default", "via", "192.0.2.1"], name);
    ip(["route", "add", "10.99.0.0/24", "via", "192.0.2.1", "proto", "static"], name);
    const vx = await createVxlan(h, { name: "vxa", vxlan: { vni: 1, local: "192.0.2.11", port: 4789, learning: false } });
    await setLinkUp(h, vx.index);
    const eth0 = (await getLinkByName(h, "eth0"))!.index;
    await replaceRoute(h, { family: AF_INET, dst: "10.70.3.0", dstLen: 24, gateway: "10.70.3.0", oif: vx.index, protocol: RTPROT_WORKLOADNET, flags: RTNH_F_ONLINK });
    await replaceRoute(h, { family: AF_INET6, dst: "fd70:3::", dstLen: 64, gateway: "fd70:3::", oif: vx.index, protocol: RTPROT_WORKLOADNET, flags: RTNH_F_ONLINK });
    const shown = [...ipJson<IpRoute[]>(["route", "show", "proto", "87"], name), ...ipJson<IpRoute[]>(["-6", "route", "show", "proto", "87"], name)];
    assert.deepEqual(shown.map((r) => `${r.dst} via ${r.gateway} dev ${r.dev} ${r.flags?.join(",")}`), ["10.70.3.0/24 via 10.70.3.0 dev vxa onlink", "fd70:3::/64 via fd70:3:: dev vxa onlink"]);
    // Replace: the same destination now direct via the LAN, one route still.
    await replaceRoute(h, { family: AF_INET, dst: "10.70.3.0", dstLen: 24, gateway: "192.0.2.13", oif: eth0, protocol: RTPROT_WORKLOADNET });
    const ours = await listRoutesByProtocol(h, RTPROT_WORKLOADNET);
    assert.deepEqual(ours.map((r) => `${r.dst}/${r.dstLen} via ${r.gateway} ${r.oif === eth0 ? "eth0" : "vxa"} ${r.flags ?? 0}`).sort(), [
      "10.70.3.0/24 via 192.0.2.13 eth0 0",
      `fd70:3::/64 via fd70:3:: vxa ${RTNH_F_ONLINK}`,
    ]);
    assert.ok(ipJson<IpRoute[]>(["route", "show", "10.99.0.0/24"], name).some((r) => r.protocol === "static"), "someone else's route stays");
    // Lookups: the connected route (on-link), and the source the kernel picks.
    const connected = await lookupRoute(h, "192.0.2.13");
    assert.deepEqual([connected?.gateway, connected?.oif, connected?.dstLen], [undefined, eth0, 24]);
    assert.equal((await getRoute(h, "198.51.100.1"))?.src, "192.0.2.11");
  });
});
