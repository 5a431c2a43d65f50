// The go-cni-shaped client against the real daemon (started by the harness in
// its own host namespace), imported through the package's "./cni-client"
// export as a user would. Kernel state is checked with iproute2.
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import * as client from "workloadnet/cni-client";
import {
  CniClientError,
  newCni,
  withArgs,
  withCapability,
  withCapabilityBandWidth,
  withCapabilityCgroupPath,
  withCapabilityDNS,
  withCapabilityPortMap,
  withConfListFile,
  withInterfacePrefix,
  withLabels,
  withLogger,
  withSocketPath,
  type CNI,
} from "workloadnet/cni-client";
import { DaemonHarness, linkNames } from "./daemon-harness.js";
import { assertSandbox, ipJson, ping } from "./sandbox.js";

assertSandbox();

interface Warning {
  fields: Record<string, unknown>;
  message: string;
}

async function setupDaemon(t: TestContext, args?: string[]): Promise<{ d: DaemonHarness; cni: CNI; warnings: Warning[] }> {
  const d = await DaemonHarness.start(args ? { args } : {});
  const warnings: Warning[] = [];
  const cni = newCni(withSocketPath(d.socketPath), withLogger({ warn: (fields, message) => warnings.push({ fields, message }) }));
  t.after(async () => {
    cni.close();
    await d.cleanup();
  });
  return { d, cni, warnings };
}

const aliases = (d: DaemonHarness): string[] => d.hostLinks().map((l) => l.ifalias ?? "").sort();

function podGlobalAddresses(ns: string, dev: string): string[] {
  const links = ipJson<{ addr_info: { local: string; prefixlen: number; scope: string }[] }[]>(["addr", "show", "dev", dev], ns);
  return (links[0]?.addr_info ?? []).filter((a) => a.scope === "global").map((a) => a.local);
}

describe("go-cni-shaped client (workloadnet/cni-client)", { concurrency: false }, () => {
  it("is exported under the package subpaths", async () => {
    const viaRoot = (await import("workloadnet")) as typeof client;
    assert.equal(viaRoot.newCni, client.newCni);
    for (const name of ["newCni", "withLabels", "withArgs", "withCapabilityPortMap", "withCapabilityBandWidth", "withCapabilityDNS", "withCapabilityCgroupPath"]) {
      assert.equal(typeof (client as Record<string, unknown>)[name], "function", name);
    }
  });

  it("setup returns go-cni's result shape; the kernel has the addresses; remove takes everything away", async (t) => {
    const { d, cni, warnings } = await setupDaemon(t);
    const pod = d.pod();
    const result = await cni.setup("container-1", pod.path);
    const eth0 = result.interfaces.eth0;
    assert.ok(eth0, "eth0 in the result");
    assert.equal(eth0.sandbox, pod.path);
    assert.match(eth0.mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.equal(eth0.mac, ipJson<{ address: string }[]>(["link", "show", "eth0"], pod.name)[0]!.address);
    assert.equal(eth0.ipConfigs.length, 2);
    const [v4, v6] = eth0.ipConfigs;
    assert.match(v4!.ip, /^10\.88\.0\.\d+$/);
    assert.equal(v4!.gateway, "169.254.77.1");
    assert.match(v6!.ip, /^fd00:88::[0-9a-f]+$/);
    assert.equal(v6!.gateway, "fe80::1");
    assert.deepEqual(podGlobalAddresses(pod.name, "eth0").sort(), [v4!.ip, v6!.ip].sort());
    const host = Object.entries(result.interfaces).find(([name]) => name !== "eth0");
    assert.ok(host, "the host veth is in the result too");
    assert.deepEqual(host[1], { ipConfigs: [], mac: "02:9c:52:fe:6d:0a", sandbox: "" });
    assert.deepEqual(result.routes, [{ dst: "0.0.0.0/0", gw: "169.254.77.1" }, { dst: "::/0", gw: "fe80::1" }]);
    assert.deepEqual(result.dns, []);
    assert.deepEqual(result.unsupported, []);
    assert.deepEqual(warnings, []);
    assert.ok(await ping(pod.name, "169.254.77.1"));

    await cni.check("container-1", pod.path);
    await cni.remove("container-1", pod.path);
    assert.deepEqual(d.hostLinks(), []);
    assert.deepEqual(linkNames(pod.name), ["lo"]);
    await cni.remove("container-1", pod.path); // idempotent
    await cni.remove("container-1", ""); // no namespace path: still fine
  });

  it("K8S_POD_UID (label or argument) names the workload, as with the CNI plugin", async (t) => {
    const { d, cni } = await setupDaemon(t);
    const a = d.pod();
    const b = d.pod();
    await cni.setup("sandbox-a", a.path, withLabels({ K8S_POD_NAMESPACE: "default", K8S_POD_NAME: "web", K8S_POD_UID: "uid-aaaa", IgnoreUnknown: "1" }));
    await cni.setupSerially("sandbox-b", b.path, withArgs("K8S_POD_UID", "uid-bbbb"));
    assert.deepEqual(aliases(d), ["wkuid-aaaa", "wkuid-bbbb"]);
    await cni.check("sandbox-a", a.path, withLabels({ K8S_POD_UID: "uid-aaaa" }));
    await cni.remove("sandbox-a", a.path, withLabels({ K8S_POD_UID: "uid-aaaa" }));
    await cni.remove("sandbox-b", b.path, withArgs("K8S_POD_UID", "uid-bbbb"));
    assert.deepEqual(d.hostLinks(), []);
  });

  it("port mappings are published; bandwidth and DNS are accepted, reported in the result and logged, never silently dropped", async (t) => {
    const { d, cni, warnings } = await setupDaemon(t);
    const pod = d.pod();
    const portMappings = [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "0.0.0.0" }];
    const bandwidth = { ingressRate: 1_000_000, ingressBurst: 10_000, egressRate: 0, egressBurst: 0 };
    const dns = { servers: ["10.96.0.10"], searches: ["default.svc.cluster.local"], options: ["ndots:5"] };
    const result = await cni.setup(
      "c-opts",
      pod.path,
      withCapabilityPortMap(portMappings),
      withCapabilityBandWidth(bandwidth),
      withCapabilityDNS(dns),
      withCapabilityCgroupPath("/kubepods/pod1"),
      withCapability("io.kubernetes.cri.pod-annotations", { a: "b" }),
      withCapability("io.example/unknown", true),
    );
    assert.deepEqual(result.unsupported.map((u) => u.option), ["bandwidth", "dns", "io.example/unknown"]);
    assert.deepEqual(result.unsupported[0]!.value, bandwidth);
    assert.deepEqual(result.unsupported[1]!.value, dns);
    assert.deepEqual(warnings.map((w) => w.fields.option), ["bandwidth", "dns", "io.example/unknown"]);
    // The daemon published the port (0.0.0.0: every IPv4 address of the node).
    const listed = (await d.client.list({})).attachments.find((a) => a.workloadId === "c-opts");
    assert.deepEqual(listed?.portMappings.map((m) => [m.protocol, m.hostPort, m.containerPort, m.hostIp]), [["tcp", 8080, 80, ""]]);
    assert.match(d.hostNft(["list", "map", "inet", "workloadnet", "any-v4"]), /tcp \. 8080 : 10\.88\.0\.\d+ \. 80/);
    assert.ok(warnings.every((w) => w.fields.workloadId === "c-opts" && /not honoured/.test(w.message)));
    // The attachment itself is made.
    assert.equal(result.interfaces.eth0!.ipConfigs.length, 2);
    // Empty options are not reported.
    warnings.length = 0;
    const other = d.pod();
    const plain = await cni.setup("c-empty", other.path, withCapabilityPortMap([]), withCapabilityBandWidth({}), withCapabilityDNS({ servers: [] }));
    assert.deepEqual(plain.unsupported, []);
    assert.deepEqual(warnings, []);
  });

  it("errors carry the gRPC code and the daemon's message", async (t) => {
    const { d, cni } = await setupDaemon(t);
    const pod = d.pod();
    await cni.setup("dup", pod.path);
    await assert.rejects(cni.setup("dup", pod.path), (err: unknown) => {
      assert.ok(err instanceof CniClientError);
      assert.equal(err.code, 6); // ALREADY_EXISTS
      assert.match(err.message, /while requesting workload network attachment: AlreadyExists: workload dup is already attached/);
      return true;
    });
    await assert.rejects(cni.setup("nons", "/run/netns/does-not-exist"), (err: unknown) => err instanceof CniClientError && err.code === 5);
    await assert.rejects(cni.check("never", pod.path), (err: unknown) => err instanceof CniClientError && err.code === 5);
  });

  it("check finds an interface that was removed behind the daemon's back", async (t) => {
    const { d, cni } = await setupDaemon(t);
    const pod = d.pod();
    await cni.setup("chk", pod.path);
    d.hostIp(["link", "del", d.hostLinks()[0]!.ifname]);
    await assert.rejects(cni.check("chk", pod.path), (err: unknown) => err instanceof CniClientError && err.code === 9 && /is gone/.test(err.message));
  });

  it("status: resolves when serving, UNAVAILABLE without prefixes or without a daemon", async (t) => {
    const { cni } = await setupDaemon(t);
    await cni.status();
    const { d: noPrefixes } = await setupDaemon(t, ["--prefix-file", "/run/workloadnet/no-such-prefixes.json"]);
    const other = newCni(withSocketPath(noPrefixes.socketPath));
    t.after(() => other.close());
    await assert.rejects(other.status(), (err: unknown) => err instanceof CniClientError && err.code === 14 && /no pod prefixes/.test(err.message));
    const down = newCni(withSocketPath("/run/workloadnet/nobody.sock"));
    t.after(() => down.close());
    await assert.rejects(down.status(), (err: unknown) => err instanceof CniClientError && err.code === 14 && /cannot reach workloadnetd at \/run\/workloadnet\/nobody\.sock: connect ENOENT/.test(err.message));
  });

  it("load and getConfig: interface prefix and socket apply; config-file options are listed as having no effect", async (t) => {
    const { d, cni } = await setupDaemon(t);
    await cni.load(withInterfacePrefix("net"), withConfListFile("/etc/cni/net.d/10-x.conflist"));
    const config = cni.getConfig();
    assert.equal(config.prefix, "net");
    assert.deepEqual(config.networks, [{ ifName: "net0", config: { name: "workloadnet", cniVersion: "1.1.0", source: `workloadnetd at ${d.socketPath}` } }]);
    assert.deepEqual(config.ignoredOptions, ["withConfListFile"]);
    const pod = d.pod();
    const result = await cni.setup("c-net0", pod.path);
    assert.ok(result.interfaces.net0);
    assert.deepEqual(linkNames(pod.name).sort(), ["lo", "net0"]);
    await cni.remove("c-net0", pod.path);
  });
});
