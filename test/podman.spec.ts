// A real runtime end to end: Debian's podman (4.x, CNI network backend, runc)
// runs containers on a conflist whose only plugin is workloadnet-cni, against
// the real daemon. Everything podman keeps is in a temporary directory or on
// tmpfs mounts made inside the test sandbox's private mount namespace, so
// nothing is left on the machine; the test checks that too.
//
// Needs the Debian packages podman, runc and busybox-static (see docs/cni.md).
// Runs only inside the sandbox (test/run-in-sandbox.sh).
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, symlinkSync, copyFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { CNI_PLUGIN } from "./cni-exec.js";
import { DaemonHarness, ipFromBytes } from "./daemon-harness.js";
import { assertSandbox, createNamespace, ip, uniqueName } from "./sandbox.js";
import { ask, serve, tryAsk } from "./net-probe.js";
import { readRecordsFile } from "../src/cni/attachments.js";

assertSandbox();

const run = promisify(execFile);
const NETWORK = "wknet";
const CHAINED = "wkportmap";
const REQUIRED = [
  ["podman", "/usr/bin/podman"],
  ["runc", "/usr/sbin/runc"],
  ["busybox-static", "/bin/busybox"],
] as const;

/** Top-level names in places a careless podman run would write to. */
const WATCHED_DIRS = ["/run", "/var/lib", "/var/tmp", "/etc", "/var/run", "/tmp"];
function snapshot(): Map<string, string[]> {
  return new Map(WATCHED_DIRS.map((d) => [d, existsSync(d) ? readdirSync(d).sort() : []]));
}

function cgroupDirsNamed(name: string): string[] {
  const root = "/sys/fs/cgroup";
  const out: string[] = [];
  for (const controller of readdirSync(root)) {
    const d = join(root, controller, name);
    if (existsSync(d)) out.push(d);
  }
  if (existsSync(join(root, name))) out.push(join(root, name)); // unified-only layout
  return out;
}

/** Removes a cgroup tree, children first (cgroup directories go with rmdir only). */
function removeCgroupTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeCgroupTree(join(dir, entry.name));
  rmdirSync(dir);
}

/** The processes in a cgroup tree. */
function cgroupProcs(dir: string): number[] {
  const own = readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  const below = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => cgroupProcs(join(dir, e.name)));
  return [...own, ...below];
}

/**
 * removeCgroupTree, again while the kernel says EBUSY: conmon can still be
 * on its way out for a moment after podman has removed its container. After
 * a second, what is left in the tree (podman's helpers, started by this test)
 * is killed.
 */
async function removeCgroupTreeWhenEmpty(dir: string, timeoutMs = 5000): Promise<void> {
  const started = performance.now();
  for (;;) {
    try {
      return removeCgroupTree(dir);
    } catch (err) {
      const waited = performance.now() - started;
      if ((err as NodeJS.ErrnoException).code !== "EBUSY" || waited > timeoutMs) throw err;
      if (waited > 1000) {
        for (const pid of cgroupProcs(dir)) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // gone already
          }
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe("podman runs containers on workloadnet-cni", { concurrency: false }, () => {
  let d: DaemonHarness;
  let dir: string;
  let podmanEnv: NodeJS.ProcessEnv;
  let globalArgs: string[];
  const cgroupParent = uniqueName("wkpodman");
  const before0 = snapshot();
  let varLibMounted = false;

  const podman = async (...args: string[]): Promise<string> => {
    try {
      const { stdout } = await run("nsenter", [`--net=/run/netns/${d.hostNs}`, "podman", ...globalArgs, ...args], { env: podmanEnv, timeout: 60_000, maxBuffer: 16 << 20 });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`podman ${args.join(" ")} failed: ${e.message}\nstderr: ${e.stderr ?? ""}\nstdout: ${e.stdout ?? ""}\n--- daemon log ---\n${d.stdout.slice(-4000)}`);
    }
  };

  before(async () => {
    const missing = REQUIRED.filter(([, path]) => !existsSync(path)).map(([pkg]) => pkg);
    if (missing.length > 0) {
      throw new Error(`this test needs the Debian packages ${missing.join(", ")}: apt-get install -y podman runc busybox-static`);
    }
    d = await DaemonHarness.start();
    dir = mkdtempSync(join(tmpdir(), "workloadnet-podman-"));
    // libcni's result cache (/var/lib/cni) and containers/image's blob cache
    // (/var/lib/containers/cache) have fixed paths: put a tmpfs over /var/lib,
    // in the sandbox's private mount namespace only, while this test runs.
    execFileSync("mount", ["-t", "tmpfs", "-o", "mode=0755", "workloadnet-podman", "/var/lib"]);
    varLibMounted = true;

    for (const sub of ["root", "runroot", "runc", "tmp", "conf", "bin", "rootfs/bin"]) mkdirSync(join(dir, sub), { recursive: true });
    symlinkSync(CNI_PLUGIN, join(dir, "bin", "workloadnet-cni"));
    writeFileSync(join(dir, "bin", "runc"), `#!/bin/sh\nexec /usr/sbin/runc --root '${join(dir, "runc")}' "$@"\n`, { mode: 0o755 });
    writeFileSync(
      join(dir, "conf", `${NETWORK}.conflist`),
      JSON.stringify({ cniVersion: "1.0.0", name: NETWORK, plugins: [{ type: "workloadnet-cni", socket: d.socketPath, capabilities: { portMappings: true } }] }, null, 2),
    );
    // For those who prefer it: CNI's portmap plugin chained after ours (which then publishes nothing itself).
    symlinkSync("/usr/lib/cni/portmap", join(dir, "bin", "portmap"));
    writeFileSync(
      join(dir, "conf", `${CHAINED}.conflist`),
      JSON.stringify({ cniVersion: "1.0.0", name: CHAINED, plugins: [{ type: "workloadnet-cni", socket: d.socketPath }, { type: "portmap", capabilities: { portMappings: true } }] }, null, 2),
    );
    writeFileSync(
      join(dir, "containers.conf"),
      [
        "[containers]",
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
        "[network]",
        'network_backend = "cni"',
        `cni_plugin_dirs = ["${join(dir, "bin")}"]`,
        `network_config_dir = "${join(dir, "conf")}"`,
        "[engine]",
        'cgroup_manager = "cgroupfs"',
        'runtime = "runc"',
        'events_logger = "file"',
        `events_logfile_path = "${join(dir, "events.log")}"`,
        `image_copy_tmp_dir = "${join(dir, "tmp")}"`,
        // runc keeps its state in /run/runc unless told otherwise: a wrapper tells it.
        "[engine.runtimes]",
        `runc = ["${join(dir, "bin", "runc")}"]`,
        "",
      ].join("\n"),
    );
    podmanEnv = { PATH: process.env.PATH, CONTAINERS_CONF: join(dir, "containers.conf"), TMPDIR: join(dir, "tmp"), HOME: dir };
    globalArgs = [
      "--root", join(dir, "root"),
      "--runroot", join(dir, "runroot"),
      "--tmpdir", join(dir, "tmp"),
      "--storage-driver", "vfs",
      "--runtime", "runc",
      "--network-backend", "cni",
      "--cni-config-dir", join(dir, "conf"),
      "--cgroup-manager", "cgroupfs",
    ];

    // An image made offline: a root file system with the static busybox.
    const rootfs = join(dir, "rootfs");
    copyFileSync("/bin/busybox", join(rootfs, "bin", "busybox"));
    for (const cmd of ["sh", "ip", "ping", "sleep", "cat", "httpd"]) symlinkSync("busybox", join(rootfs, "bin", cmd));
    mkdirSync(join(rootfs, "www"));
    writeFileSync(join(rootfs, "www", "index.html"), "hello from a podman container\n");
    await run("sh", ["-c", `tar -C '${rootfs}' -c . | nsenter --net=/run/netns/${d.hostNs} podman ${globalArgs.map((a) => `'${a}'`).join(" ")} import - localhost/wkbusybox:test`], { env: podmanEnv });
  });

  after(async () => {
    const problems: string[] = [];
    try {
      if (d !== undefined && dir !== undefined) await podman("rm", "--all", "--force", "--time", "0").catch((err: Error) => problems.push(err.message));
      if (dir !== undefined) {
        // Mounts podman may have left below the directory (container shm), innermost first.
        const mounts = execFileSync("findmnt", ["-rn", "-o", "TARGET"], { encoding: "utf8" }).split("\n").filter((m) => m.startsWith(dir)).reverse();
        for (const m of mounts) execFileSync("umount", ["-l", m]);
        rmSync(dir, { recursive: true, force: true });
      }
      for (const cg of cgroupDirsNamed(cgroupParent)) {
        try {
          await removeCgroupTreeWhenEmpty(cg);
        } catch (err) {
          problems.push(`cgroup ${cg}: ${(err as Error).message}`);
        }
      }
    } finally {
      if (varLibMounted) execFileSync("umount", ["/var/lib"]);
      await d?.cleanup();
    }
    assert.deepEqual(problems, [], "cleanup");
    // Nothing left on the machine: no new podman/CNI/runc names in the places
    // they would land by default, and no cgroup of ours.
    const now = snapshot();
    const added = [...now].flatMap(([d0, names]) => names.filter((n) => !(before0.get(d0) ?? []).includes(n)).map((n) => join(d0, n)));
    // Another run of this test on the same machine (a second checkout) has a working directory of its own: not ours to judge.
    const otherRun = (p: string): boolean => p.startsWith(join(tmpdir(), "workloadnet-podman-")) && p !== dir;
    assert.deepEqual(added.filter((p) => /podman|cni|runc|containers|libpod|crun|conmon/.test(p) && !otherRun(p)), [], "files left on the machine");
    assert.deepEqual(cgroupDirsNamed(cgroupParent), [], "cgroups left on the machine");
  });

  it("two containers get addresses in the node prefixes, reach the first hop and each other (IPv4 and IPv6); rm -f leaves nothing", async () => {
    const names = ["wk-c1", "wk-c2"];
    for (const name of names) {
      await podman("run", "--detach", "--name", name, "--network", NETWORK, "--cgroup-parent", `/${cgroupParent}`, "localhost/wkbusybox:test", "sleep", "600");
    }
    const containers: { name: string; id: string; v4: string; v6: string; mac: string }[] = [];
    for (const name of names) {
      const inspect = JSON.parse(await podman("inspect", name)) as { Id: string; NetworkSettings: { Networks: Record<string, { IPAddress: string; GlobalIPv6Address: string; MacAddress: string }> } }[];
      const net = inspect[0]!.NetworkSettings.Networks[NETWORK];
      assert.ok(net, `${name} is on ${NETWORK}`);
      containers.push({ name, id: inspect[0]!.Id, v4: net.IPAddress, v6: net.GlobalIPv6Address, mac: net.MacAddress });
    }
    for (const c of containers) {
      assert.match(c.v4, /^10\.88\.0\.(\d+)$/, `${c.name}: IPv4 in 10.88.0.0/24`);
      assert.match(c.v6, /^fd00:88::[0-9a-f:]+$/, `${c.name}: IPv6 in fd00:88::/64`);
      // Inside the container: the addresses on eth0 and default routes via the first hops.
      const addrs = await podman("exec", c.name, "ip", "addr", "show", "eth0");
      assert.match(addrs, new RegExp(`inet ${c.v4.replace(/\./g, "\\.")}/32 `));
      assert.match(addrs, new RegExp(`inet6 ${c.v6}/128 `));
      assert.match(await podman("exec", c.name, "ip", "-4", "route"), /default via 169\.254\.77\.1 dev eth0/);
      assert.match(await podman("exec", c.name, "ip", "-6", "route"), /default via fe80::1 dev eth0/);
    }
    // The daemon's side: one attachment per container, named by the container id.
    const attached = (await d.client.list({})).attachments;
    assert.deepEqual(attached.map((a) => a.workloadId).sort(), containers.map((c) => c.id).sort());
    for (const a of attached) {
      const c = containers.find((x) => x.id === a.workloadId)!;
      assert.deepEqual(a.ip.map(ipFromBytes).sort(), [c.v4, c.v6].sort());
    }
    assert.equal(d.hostLinks().length, 2);

    const [c1, c2] = containers as [(typeof containers)[number], (typeof containers)[number]];
    const ping = (from: string, ...target: string[]): Promise<string> => podman("exec", from, "ping", "-c", "1", "-W", "2", ...target);
    for (const c of containers) {
      await ping(c.name, "169.254.77.1");
      await ping(c.name, "-I", "eth0", "fe80::1");
    }
    await ping(c1.name, c2.v4);
    await ping(c1.name, c2.v6);
    await ping(c2.name, c1.v4);
    await ping(c2.name, c1.v6);

    await podman("rm", "--force", "--time", "0", ...names);
    assert.deepEqual(d.hostLinks(), [], "no pod link left on the host");
    assert.deepEqual(d.hostStaticRoutes(), [], "no host route left");
    assert.deepEqual((await d.client.list({})).attachments, [], "no allocation left");
    assert.deepEqual(readdirSync("/run/netns").filter((n) => n.startsWith("netns-")), [], "podman's namespaces are gone");
    const records = readRecordsFile(readFileSync(d.socketPath.replace(/\.sock$/, ".cni-attachments.json"), "utf8"));
    assert.deepEqual(records, [], "no CNI attachment record left");
    // The addresses are free again: a new container gets one of them.
    await podman("run", "--detach", "--name", "wk-c3", "--network", NETWORK, "--cgroup-parent", `/${cgroupParent}`, "localhost/wkbusybox:test", "sleep", "600");
    assert.equal((await d.client.list({})).attachments.length, 1);
    await podman("rm", "--force", "--time", "0", "wk-c3");
    assert.deepEqual(d.hostLinks(), []);
  });

  it("-p publishes ports with no other plugin: HTTP from another host, the node's address and 127.0.0.1, UDP; a held port is refused to a second container", async () => {
    // Another host on the node's link.
    const outside = createNamespace("out");
    try {
      ip(["link", "add", "wkt-out", "type", "veth", "peer", "name", "eth0", "netns", outside.name], d.hostNs);
      ip(["addr", "add", "192.0.2.1/24", "dev", "wkt-out"], d.hostNs);
      ip(["link", "set", "wkt-out", "up"], d.hostNs);
      ip(["addr", "add", "192.0.2.2/24", "dev", "eth0"], outside.name);
      ip(["link", "set", "eth0", "up"], outside.name);
      ip(["link", "set", "lo", "up"], outside.name);

      const base = ["run", "--detach", "--network", NETWORK, "--cgroup-parent", `/${cgroupParent}`];
      await podman(...base, "--name", "wk-web", "-p", "8080:80", "-p", "5353:53/udp", "localhost/wkbusybox:test", "httpd", "-f", "-p", "80", "-h", "/www");
      const page = "hello from a podman container";
      assert.equal(await ask(outside.name, "tcp", "192.0.2.1", 8080), page, "from another host");
      assert.equal(await ask(d.hostNs, "tcp", "192.0.2.1", 8080), page, "from the node's own address");
      assert.equal(await ask(d.hostNs, "tcp", "127.0.0.1", 8080), page, "from 127.0.0.1 on the node");
      // UDP: a server in the container's namespace (busybox has none), reached through the mapping.
      const pid = (await podman("inspect", "--format", "{{.State.Pid}}", "wk-web")).trim();
      const udp = await serve(`/proc/${pid}/ns/net`, "udp", 53, "wk-web");
      try {
        assert.equal(await ask(outside.name, "udp", "192.0.2.1", 5353), "wk-web saw 192.0.2.2");
      } finally {
        udp.stop();
      }
      const [web] = (await d.client.list({})).attachments;
      assert.deepEqual(web?.portMappings.map((m) => `${m.protocol}/${m.hostPort}:${m.containerPort}`).sort(), ["tcp/8080:80", "udp/5353:53"]);

      // A second container asking for the same host port fails, and nothing of it is left.
      const linksBefore = d.hostLinks().length;
      // Our error, through podman: the port and the workload holding it.
      await assert.rejects(
        podman(...base, "--name", "wk-web2", "-p", "8080:80", "localhost/wkbusybox:test", "httpd", "-f", "-p", "80", "-h", "/www"),
        new RegExp(`host port tcp 8080 \\(IPv4\\) is already published by workload ${web!.workloadId}`),
      );
      await podman("rm", "--force", "--time", "0", "wk-web2").catch(() => undefined);
      assert.equal(d.hostLinks().length, linksBefore, "no link of the second container");
      assert.deepEqual((await d.client.list({})).attachments.map((a) => a.workloadId), [web!.workloadId]);

      await podman("rm", "--force", "--time", "0", "wk-web");
      assert.deepEqual(d.hostLinks(), []);
      assert.doesNotMatch(d.hostNft(["list", "map", "inet", "workloadnet", "any-v4"]), /8080|5353/, "the mappings went with the container");
      assert.match(await tryAsk(outside.name, "tcp", "192.0.2.1", 8080), /^failed/);

      // Chained portmap (iptables) after our plugin still publishes.
      await podman("run", "--detach", "--network", CHAINED, "--cgroup-parent", `/${cgroupParent}`, "--name", "wk-pm", "-p", "8090:80", "localhost/wkbusybox:test", "httpd", "-f", "-p", "80", "-h", "/www");
      assert.equal(await ask(outside.name, "tcp", "192.0.2.1", 8090), page, "through portmap's rules");
      assert.doesNotMatch(d.hostNft(["list", "map", "inet", "workloadnet", "any-v4"]), /8090/, "published by portmap, not by us");
      await podman("rm", "--force", "--time", "0", "wk-pm");
      assert.deepEqual(d.hostLinks(), []);
    } finally {
      outside.remove();
    }
  });
});
