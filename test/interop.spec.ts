// Interop: the same Attach/Status/Detach through two independent gRPC clients
// against the real daemon: @grpc/grpc-js with proto-loader (the proto file read
// at run time, as any gRPC user would) and connect-es with the generated code.
// Runs only inside the sandbox (test/run-in-sandbox.sh).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { DaemonHarness, ipFromBytes, linkNames, type IpAddrInfo } from "./daemon-harness.js";
import { assertSandbox, ipJson, ping, type PodNamespace } from "./sandbox.js";

assertSandbox();

let d: DaemonHarness;

before(async () => {
  d = await DaemonHarness.start();
});
after(() => d?.cleanup());

/** The pod's global addresses as the kernel has them. */
function podAddresses(pod: PodNamespace): string[] {
  const links = ipJson<{ ifname: string; addr_info: IpAddrInfo[] }[]>(["addr", "show", "dev", "eth0"], pod.name);
  return links[0]!.addr_info.filter((a) => a.scope === "global").map((a) => a.local);
}

/** Checks the wire form: one 4-byte IPv4 and one 16-byte IPv6 address, as the kernel has them. */
function checkIps(ips: Uint8Array[], pod: PodNamespace): string[] {
  assert.deepEqual(ips.map((b) => b.length), [4, 16]);
  const text = ips.map(ipFromBytes);
  assert.match(text[0]!, /^10\.88\.0\.\d+$/);
  assert.match(text[1]!, /^fd00:88::[0-9a-f]+$/);
  assert.deepEqual(podAddresses(pod).sort(), [...text].sort());
  return text;
}

function assertDetached(pod: PodNamespace): void {
  assert.deepEqual(linkNames(pod.name), ["lo"]);
  assert.deepEqual(d.hostLinks(8), []);
  assert.deepEqual(d.hostStaticRoutes(), []);
}

describe("interop: grpc-js and connect-es against the daemon", () => {
  it("grpc-js + proto-loader: Status, Attach, ALREADY_EXISTS, NOT_FOUND, Detach", async () => {
    const c = d.grpcJs;
    // The fields added to StatusResponse reach a client that loads the proto at run time.
    const status = await c.status();
    assert.match(String(status.lastSync), /^\d{4}-\d\d-\d\dT/);
    // The node's name: --node-name, else $NODE_NAME, else the host name.
    assert.match(String(status.nodeName), /^[a-z0-9.-]+$/);
    assert.deepEqual(
      { ...status, lastSync: "", nodeName: "" },
      { prefixes: ["10.88.0.0/24", "fd00:88::/64"], attached: 0, prefixError: "", source: "static", lastSync: "", sourceError: "", problems: [], nodesKnown: 0, nodeName: "", routing: "auto" },
    );
    const pod = d.pod();
    const res = await c.attach({ workloadId: "gj", netns: { netnsPath: pod.path, ifName: "eth0" } });
    assert.ok(res.ip.every((b) => Buffer.isBuffer(b)));
    const [v4] = checkIps(res.ip, pod);
    assert.ok(await ping(pod.name, "169.254.77.1"), `pod ${v4} reaches its first hop`);

    await assert.rejects(c.attach({ workloadId: "gj", netns: { netnsPath: pod.path, ifName: "eth0" } }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.ALREADY_EXISTS);
      assert.match(err.details, /workload gj is already attached/);
      return true;
    });
    // Paths in messages arrive readable (no %2F), through grpc-js's decoder.
    await assert.rejects(c.attach({ workloadId: "gj2", netns: { netnsPath: "/run/netns/nope", ifName: "eth0" } }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.NOT_FOUND);
      assert.equal(err.details, "network namespace /run/netns/nope does not exist");
      return true;
    });
    assert.deepEqual(await c.detach({ workloadId: "gj", netns: { netnsPath: pod.path, ifName: "eth0" } }), {});
    assertDetached(pod);
    assert.deepEqual(await c.detach({ workloadId: "gj" }), {});
  });

  it("connect-es: Status, Attach, ALREADY_EXISTS, NOT_FOUND, Detach", async () => {
    const c = d.client;
    await c.status({});
    const pod = d.pod();
    const res = await c.attach({ workloadId: "ce", netns: { netnsPath: pod.path, ifName: "eth0" } });
    assert.ok(res.ip.every((b) => b instanceof Uint8Array));
    checkIps(res.ip, pod);
    assert.ok(await ping(pod.name, "fe80::1", "eth0"), "pod reaches its IPv6 first hop");

    const dup = await c.attach({ workloadId: "ce", netns: { netnsPath: pod.path, ifName: "eth0" } }).then(
      () => assert.fail("duplicate Attach succeeded"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(dup.code, Code.AlreadyExists);
    assert.match(dup.rawMessage, /workload ce is already attached/);
    const nf = await c.attach({ workloadId: "ce2", netns: { netnsPath: "/run/netns/nope", ifName: "eth0" } }).then(
      () => assert.fail("Attach to a missing namespace succeeded"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(nf.code, Code.NotFound);
    assert.equal(nf.rawMessage, "network namespace /run/netns/nope does not exist");
    await c.detach({ workloadId: "ce", netns: { netnsPath: pod.path, ifName: "eth0" } });
    assertDetached(pod);
  });

  it("an Attach through one client is seen and detached through the other", async () => {
    const pod1 = d.pod();
    const pod2 = d.pod();
    const a = await d.grpcJs.attach({ workloadId: "cross-1", netns: { netnsPath: pod1.path, ifName: "eth0" } });
    const b = await d.client.attach({ workloadId: "cross-2", netns: { netnsPath: pod2.path, ifName: "eth0" } });
    const ipsA = checkIps(a.ip, pod1);
    const ipsB = checkIps(b.ip, pod2);
    assert.notDeepEqual(ipsA, ipsB);
    await assert.rejects(d.client.attach({ workloadId: "cross-1", netns: { netnsPath: pod1.path, ifName: "eth0" } }), (e: unknown) => ConnectError.from(e).code === Code.AlreadyExists);
    await assert.rejects(d.grpcJs.attach({ workloadId: "cross-2", netns: { netnsPath: pod2.path, ifName: "eth0" } }), { code: grpc.status.ALREADY_EXISTS });
    await d.client.detach({ workloadId: "cross-1" });
    await d.grpcJs.detach({ workloadId: "cross-2" });
    assertDetached(pod1);
    assertDetached(pod2);
  });

  it("both clients see UNAVAILABLE from a daemon without prefixes", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "workloadnet-interop-"));
    const nd = await DaemonHarness.start({ args: ["--prefix-file", join(dir, "missing.json")] });
    t.after(async () => {
      await nd.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });
    await assert.rejects(nd.grpcJs.status(), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.match(err.details, /^no pod prefixes yet: prefix file .*missing\.json/);
      return true;
    });
    const e = await nd.client.status({}).then(
      () => assert.fail("Status succeeded without prefixes"),
      (err: unknown) => ConnectError.from(err),
    );
    assert.equal(e.code, Code.Unavailable);
    assert.match(e.rawMessage, /^no pod prefixes yet/);
  });
});
