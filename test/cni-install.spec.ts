// The daemon installs its CNI side (--cni-bin-dir, --cni-conf-dir): the plugin
// at start, replaced by rename (never rewritten in place), the conflist only
// once the pod prefixes are known, both kept across a restart and rewritten
// only when they differ; a clear warning when the plugin directory lacks the
// `loopback` plugin. The installed plugin and conflist then network a pod, as
// a runtime would use them. Runs only inside the sandbox.
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CNI_PLUGIN, cniOk, runCni } from "./cni-exec.js";
import { DaemonHarness, writeFileAtomic } from "./daemon-harness.js";
import { assertSandbox, ipJson, uniqueName } from "./sandbox.js";

assertSandbox();

const BASE = `/run/workloadnet/${uniqueName("cni-install-")}`;
const BIN = join(BASE, "bin");
const CONF = join(BASE, "net.d");
const PREFIXES = join(BASE, "prefixes.json");
const CONFLIST = join(CONF, "10-workloadnet.conflist");
const PLUGIN = join(BIN, "workloadnet-cni");

let d: DaemonHarness | undefined;

before(() => {
  mkdirSync(BIN, { recursive: true });
  mkdirSync(CONF, { recursive: true });
  // An older plugin is in place, as after an upgrade.
  writeFileSync(PLUGIN, "#!/bin/sh\necho old plugin\n", { mode: 0o755 });
});
after(async () => {
  await d?.cleanup();
  rmSync(BASE, { recursive: true, force: true });
});

const args = (): string[] => ["--prefix-file", PREFIXES, "--cni-bin-dir", BIN, "--cni-conf-dir", CONF];

/** Polls until the file exists or the time is up. */
async function waitForFile(path: string, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

const noTempFiles = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith("."));

describe("CNI install by the daemon", () => {
  it("replaces the plugin by rename at start, and writes no conflist while the prefixes are unknown", async () => {
    const oldInode = statSync(PLUGIN).ino;
    d = await DaemonHarness.start({ args: args() });
    const st = statSync(PLUGIN);
    assert.ok(readFileSync(PLUGIN).equals(readFileSync(CNI_PLUGIN)), "the installed plugin is the built one");
    assert.equal(st.mode & 0o777, 0o755);
    assert.notEqual(st.ino, oldInode, "a new file renamed over the old one, not the old one rewritten");
    assert.deepEqual(noTempFiles(BIN), []);

    // Ready to serve, but no prefixes: the node must not look ready to the kubelet.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(existsSync(CONFLIST), false, "no conflist before the prefixes are known");
  });

  it("says clearly that the plugin directory lacks loopback", async () => {
    const warning = d!.logs.find((l) => l.level === 40 && typeof l.msg === "string" && l.msg.includes('"loopback"'));
    assert.ok(warning, "a warning about loopback");
    assert.match(warning.msg, new RegExp(`--cni-bin-dir ${BIN} has no executable "loopback" plugin: containerd 1.6 and 1.7 run it for every pod`));
  });

  it("writes the conflist once the prefixes are known, and a pod is networked through what was installed", async () => {
    writeFileAtomic(PREFIXES, JSON.stringify({ ipv4: "10.88.0.0/24", ipv6: "fd00:88::/64" }));
    assert.ok(await waitForFile(CONFLIST), "the conflist appears");
    const conflist = JSON.parse(readFileSync(CONFLIST, "utf8")) as { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
    assert.deepEqual(conflist, { cniVersion: "1.0.0", name: "workloadnet", plugins: [{ type: "workloadnet-cni", socket: d!.socketPath, capabilities: { portMappings: true } }] });
    assert.equal(statSync(CONFLIST).mode & 0o777, 0o644);
    assert.deepEqual(noTempFiles(CONF), []);

    // As a runtime does: the plugin entry plus the list's name and version on stdin.
    const pod = d!.pod("inst");
    const stdin = JSON.stringify({ cniVersion: conflist.cniVersion, name: conflist.name, ...conflist.plugins[0] });
    const env = { CNI_CONTAINERID: "installed-plugin-pod", CNI_NETNS: pod.path, CNI_IFNAME: "eth0", CNI_PATH: BIN };
    const result = cniOk(await runCni({ ...env, CNI_COMMAND: "ADD" }, stdin, { hostNs: d!.hostNs, plugin: PLUGIN }));
    const ips = (result?.ips as { address: string }[]).map((i) => i.address);
    assert.deepEqual(ips, ["10.88.0.2/32", "fd00:88::2/128"]);
    const addrs = ipJson<{ addr_info: { local: string; scope: string }[] }[]>(["addr", "show", "dev", "eth0"], pod.name)[0]!.addr_info;
    assert.deepEqual(addrs.filter((a) => a.scope === "global").map((a) => a.local).sort(), ["10.88.0.2", "fd00:88::2"]);
    cniOk(await runCni({ ...env, CNI_COMMAND: "DEL" }, stdin, { hostNs: d!.hostNs, plugin: PLUGIN }));
  });

  it("keeps both across a restart and rewrites neither when unchanged; with loopback present, no warning", async () => {
    const before = { plugin: statSync(PLUGIN), conflist: statSync(CONFLIST) };
    copyFileSync("/bin/true", join(BIN, "loopback"));
    chmodSync(join(BIN, "loopback"), 0o755);
    await d!.stop({ expectCleanExit: true });
    assert.ok(existsSync(CONFLIST), "the conflist stays while the daemon is down");
    assert.ok(existsSync(PLUGIN), "the plugin stays while the daemon is down");
    await d!.restart();
    await d!.waitForLog((l) => typeof l.msg === "string" && l.msg.startsWith("CNI network configuration"));
    const now = { plugin: statSync(PLUGIN), conflist: statSync(CONFLIST) };
    assert.equal(now.plugin.ino, before.plugin.ino, "plugin not rewritten");
    assert.equal(now.plugin.mtimeMs, before.plugin.mtimeMs);
    assert.equal(now.conflist.ino, before.conflist.ino, "conflist not rewritten");
    assert.equal(now.conflist.mtimeMs, before.conflist.mtimeMs);
    assert.equal(d!.logs.filter((l) => typeof l.msg === "string" && l.msg.includes('"loopback"')).length, 0);
  });

  it("refuses --cni-bin-dir without --cni-conf-dir", async () => {
    await assert.rejects(DaemonHarness.start({ args: ["--ipv4-prefix", "10.88.0.0/24", "--cni-bin-dir", BIN] }), /--cni-bin-dir and --cni-conf-dir go together/);
  });
});
