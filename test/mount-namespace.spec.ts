// The daemon in a mount namespace of its own, as in a DaemonSet's container,
// while the runtime creates pod namespaces on the host after the daemon
// started. The runtime's namespace directory (the host's /var/run/netns) is a
// shared mount here, as on a systemd host. The DaemonSet mounts it with
// `mountPropagation: HostToContainer` (a slave mount): namespaces created
// later appear in the daemon's view and Attach works. Without propagation (a
// private mount: a plain hostPath), the daemon sees only the empty file the
// runtime mounts the namespace on, and the plugin's ADD fails, naming the path. Runs only inside the sandbox.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cniError, cniOk, runCni } from "./cni-exec.js";
import { DaemonHarness } from "./daemon-harness.js";
import { assertSandbox, uniqueName } from "./sandbox.js";

assertSandbox();

/** The runtime's namespace directory on the "host". */
const HOST_NETNS = `/run/workloadnet/${uniqueName("host-netns-")}`;
const made: string[] = [];
const daemons: DaemonHarness[] = [];

before(() => {
  mkdirSync(HOST_NETNS);
  execFileSync("mount", ["-t", "tmpfs", "-o", "mode=0755", "host-netns", HOST_NETNS]);
  execFileSync("mount", ["--make-shared", HOST_NETNS]);
});
after(async () => {
  for (const d of daemons) await d.cleanup();
  for (const p of made) execFileSync("umount", [p]);
  execFileSync("umount", [HOST_NETNS]);
  rmSync(HOST_NETNS, { recursive: true, force: true });
});

/** A pod namespace created on the "host" the way runtimes do: a bind mount of the namespace onto a file. */
function runtimeCreatesNamespace(): string {
  const path = join(HOST_NETNS, uniqueName("cni-"));
  writeFileSync(path, "");
  execFileSync("unshare", [`--net=${path}`, "true"]);
  made.push(path);
  return path;
}

/** Starts a daemon in a new mount namespace whose mounts follow the host's (slave) or not (private). */
async function daemonInOwnMountNs(propagation: "slave" | "private"): Promise<DaemonHarness> {
  const d = await DaemonHarness.start({ wrapper: ["unshare", "--mount", `--propagation=${propagation}`, "--"] });
  daemons.push(d);
  const own = execFileSync("readlink", [`/proc/${d.pid}/ns/mnt`], { encoding: "utf8" });
  assert.notEqual(own, execFileSync("readlink", ["/proc/self/ns/mnt"], { encoding: "utf8" }), "the daemon has a mount namespace of its own");
  return d;
}

function cniConf(d: DaemonHarness): string {
  return JSON.stringify({ cniVersion: "1.0.0", name: "workloadnet", type: "workloadnet-cni", socket: d.socketPath });
}

const env = (netns: string) => ({ CNI_CONTAINERID: uniqueName("ctr"), CNI_NETNS: netns, CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin" });

/** As a container runtime mounts it: /proc/sys read-only (the daemon's own mount namespace only). */
const READ_ONLY_PROC_SYS = ["unshare", "--mount", "--propagation=slave", "--", "bash", "-c", 'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"', "ro-proc-sys"];

const forwardingOn = (hostNs: string): void => {
  execFileSync("ip", ["netns", "exec", hostNs, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
};

describe("the daemon with /proc/sys read-only, as in a container", () => {
  it("starts when the host has forwarding on already, and attaches", async () => {
    const d = await DaemonHarness.start({ wrapper: READ_ONLY_PROC_SYS, beforeStart: forwardingOn });
    daemons.push(d);
    const pod = d.pod("ro");
    const r = await d.client.attach({ workloadId: "ro-proc-sys", netns: { netnsPath: pod.path, ifName: "eth0" } });
    assert.equal(r.ip.length, 2);
    await d.client.detach({ workloadId: "ro-proc-sys" });
  });

  it("refuses to start when forwarding is off, saying which sysctl to set on the host", async () => {
    await assert.rejects(
      DaemonHarness.start({ wrapper: READ_ONLY_PROC_SYS }),
      /node setup: enable forwarding in \/proc\/sys\/net\/ipv4\/ip_forward: EROFS \(turn it on on the host: sysctl -w net\.ipv4\.ip_forward=1\)/,
    );
  });
});

describe("the daemon in its own mount namespace", () => {
  it("with HostToContainer propagation, attaches a namespace the runtime created after the daemon started", async () => {
    const d = await daemonInOwnMountNs("slave");
    const netns = runtimeCreatesNamespace();
    const e = env(netns);
    const r = cniOk(await runCni({ ...e, CNI_COMMAND: "ADD" }, cniConf(d), { hostNs: d.hostNs }));
    assert.deepEqual((r?.ips as { address: string }[]).map((i) => i.address), ["10.88.0.2/32", "fd00:88::2/128"]);
    // The runtime's view: the pod's interface has its address.
    const addrs = JSON.parse(execFileSync("nsenter", [`--net=${netns}`, "ip", "-json", "addr", "show", "dev", "eth0"], { encoding: "utf8" })) as { addr_info: { local: string; scope: string }[] }[];
    assert.deepEqual(addrs[0]!.addr_info.filter((a) => a.scope === "global").map((a) => a.local), ["10.88.0.2", "fd00:88::2"]);
    cniOk(await runCni({ ...e, CNI_COMMAND: "DEL" }, cniConf(d), { hostNs: d.hostNs }));
  });

  it("without propagation (a private mount), the same ADD fails: the daemon sees only the empty file under the mount", async () => {
    const d = await daemonInOwnMountNs("private");
    const netns = runtimeCreatesNamespace();
    const err = cniError(await runCni({ ...env(netns), CNI_COMMAND: "ADD" }, cniConf(d), { hostNs: d.hostNs }));
    assert.equal(err.code, 4, err.msg);
    assert.equal(err.msg, `CNI ADD: ${netns} is not a namespace (an nsfs mount or /proc/PID/ns/net is needed)`);
  });
});
