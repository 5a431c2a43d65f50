// The startup-snapshot experiment (scripts/build-snapshot.mjs,
// src/cli/workloadnetd-snapshot.cts; docs/performance-cold.md): a daemon started
// from the snapshot attaches as usual, with its addons loaded after
// deserialisation; a snapshot of another build of the bundle is not run, the
// daemon starts without it. The launcher does not use the snapshot: this
// keeps the experiment honest for whoever measures it again. Runs in the sandbox.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { DAEMON_NODE_FLAGS } from "../src/cli/node-flags.js";
import { leanClient, type LeanClient } from "../bench/lean-grpc-client.js";
import { DEFAULT_ARGS, ipFromBytes, linkNames, sleep } from "./daemon-harness.js";
import { assertSandbox, createNamespace, ip, removeNamespaces, uniqueName } from "./sandbox.js";

assertSandbox();

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BLOB = `${ROOT}dist/workloadnetd-snapshot.blob`;
const BUNDLE = `${ROOT}dist/src/cli/workloadnetd-bundle.cjs`;

interface Started {
  child: ChildProcess;
  client: LeanClient;
  stderr(): string;
}

async function startFromSnapshot(hostNs: string): Promise<Started> {
  const socket = `/run/workloadnet/${hostNs}.sock`;
  const child = spawn("ip", ["netns", "exec", hostNs, process.execPath, ...DAEMON_NODE_FLAGS, "--snapshot-blob", BLOB, "--", "--socket", socket, ...DEFAULT_ARGS], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  for (const end = Date.now() + 15_000; Date.now() < end; await sleep(20)) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode} during start-up: ${err}`);
    if (!existsSync(socket)) continue;
    const client = leanClient(socket);
    try {
      await client.status();
      return { child, client, stderr: () => err };
    } catch {
      client.close();
    }
  }
  child.kill("SIGKILL");
  throw new Error(`not ready within 15 s: ${err}`);
}

async function stop(s: Started): Promise<number | null> {
  s.client.close();
  const exited = new Promise<number | null>((resolve) => s.child.once("exit", (code) => resolve(code)));
  s.child.kill("SIGTERM");
  return exited;
}

async function attachOnce(s: Started, id: string): Promise<void> {
  const pod = createNamespace("snappod");
  try {
    const res = await s.client.attach({ workloadId: id, netns: { netnsPath: pod.path, ifName: "eth0" } });
    assert.deepEqual(res.ip.map(ipFromBytes), ["10.88.0.2", "fd00:88::2"]);
    // The netlink addon at work: the pod's end of the veth, made in its namespace.
    assert.deepEqual(linkNames(pod.name).sort(), ["eth0", "lo"]);
    await s.client.detach({ workloadId: id });
  } finally {
    pod.remove();
  }
}

describe("the daemon started from a startup snapshot (experiment)", () => {
  const namespaces: string[] = [];
  after(() => removeNamespaces(namespaces));

  const hostNs = (): string => {
    const ns = uniqueName("snaphost");
    ip(["netns", "add", ns]);
    ip(["link", "set", "lo", "up"], ns);
    namespaces.push(ns);
    return ns;
  };

  it("builds, attaches as usual, and runs without it when the bundle on disk is another build", async () => {
    const built = spawnSync(process.execPath, [`${ROOT}scripts/build-snapshot.mjs`], { encoding: "utf8" });
    assert.equal(built.status, 0, built.stderr);

    const s = await startFromSnapshot(hostNs());
    await attachOnce(s, "from-snapshot");
    assert.equal(await stop(s), 0);
    assert.doesNotMatch(s.stderr(), /another build/);

    // The same blob, the bundle changed since: started again without the snapshot.
    const bundle = readFileSync(BUNDLE);
    try {
      writeFileSync(BUNDLE, Buffer.concat([bundle, Buffer.from("\n// another build\n")]));
      const again = await startFromSnapshot(hostNs());
      assert.match(again.stderr(), /startup snapshot is of another build/);
      await attachOnce(again, "without-snapshot");
      assert.equal(await stop(again), 0);
    } finally {
      writeFileSync(BUNDLE, bundle);
    }
  });
});
