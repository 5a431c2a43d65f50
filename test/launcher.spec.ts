// bin/workloadnetd, the launcher that the unit file, the image and npm's bin
// link use: with a PATH that has only the machine's directories (whose
// Node.js may be older), the daemon still runs on the project's Node.js.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";
import { assertSandbox, ip, uniqueName } from "./sandbox.js";

assertSandbox();

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const LAUNCHER = `${ROOT}bin/workloadnetd`;
const PROJECT_NODE = `${ROOT}node_modules/.bin/node`;
const ns = uniqueName("launch");

after(() => ip(["netns", "del", ns]));

test("the launcher starts the daemon on Node.js 24 or later, the project's own where installed, whatever node the PATH has", async () => {
  ip(["netns", "add", ns]);
  const socket = `/run/workloadnet/${ns}.sock`;
  const child = spawn("ip", ["netns", "exec", ns, "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", LAUNCHER, "--socket", socket, "--ipv4-prefix", "10.88.0.0/24"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const starting = await new Promise<{ node: string; execPath: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "workloadnetd starting" line within 10 s: ${out} ${err}`)), 10_000);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.includes('"workloadnetd starting"'));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as { node: string; execPath: string });
      }
    });
    child.on("close", (code) => reject(new Error(`exited with ${code} before starting: ${out} ${err}`)));
  });
  child.kill("SIGTERM");
  await new Promise((r) => child.once("close", r));
  assert.ok(Number(/^v([0-9]+)\./.exec(starting.node)?.[1]) >= 24, `runs on ${starting.node}`);
  if (existsSync(PROJECT_NODE)) assert.equal(starting.execPath, realpathSync(PROJECT_NODE));
});
