// The probes of the real daemon, asked over HTTP from inside its host
// namespace as a kubelet on that node would: /healthz answers while the event
// loop turns and not while the process is stopped; /readyz is 503 until the
// pod prefixes are known and while the API socket is gone, 200 otherwise.
import assert from "node:assert/strict";
import { mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DaemonHarness, writeFileAtomic } from "./daemon-harness.js";
import { assertSandbox, execIn, uniqueName } from "./sandbox.js";

assertSandbox();

const ADDRESS = "127.0.0.1:9651";
let d: DaemonHarness;
let prefixFile: string;

before(async () => {
  // The prefix file does not exist yet: the daemon starts without prefixes.
  const dir = `/run/workloadnet/${uniqueName("probes-")}`;
  mkdirSync(dir);
  prefixFile = join(dir, "prefixes.json");
  d = await DaemonHarness.start({ args: ["--prefix-file", prefixFile, "--metrics-address", ADDRESS] });
});
after(async () => {
  await d?.cleanup();
  rmSync(dirname(prefixFile), { recursive: true, force: true });
});

/** GET a path from inside the daemon's namespace: the status code, or "timeout" when no answer came within timeoutMs. */
async function get(path: string, timeoutMs = 3000): Promise<{ status: number | "timeout"; body: string }> {
  const script = `fetch("http://${ADDRESS}${path}", { signal: AbortSignal.timeout(${timeoutMs}) }).then(
    async (r) => process.stdout.write(r.status + "\\n" + (await r.text())),
    (e) => process.stdout.write((e.name === "TimeoutError" ? "timeout" : "error " + e.message) + "\\n"))`;
  const r = await execIn(d.hostNs, [process.execPath, "-e", script], timeoutMs + 10_000);
  assert.equal(r.code, 0, r.stderr);
  const nl = r.stdout.indexOf("\n");
  const head = r.stdout.slice(0, nl);
  assert.ok(head === "timeout" || /^[0-9]{3}$/.test(head), `unexpected answer: ${r.stdout}`);
  return { status: head === "timeout" ? "timeout" : Number(head), body: r.stdout.slice(nl + 1) };
}

async function waitForStatus(path: string, status: number, timeoutMs = 5000): Promise<{ status: number | "timeout"; body: string }> {
  const deadline = Date.now() + timeoutMs;
  let last = await get(path);
  while (last.status !== status && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    last = await get(path);
  }
  return last;
}

describe("probes", () => {
  it("/readyz is 503 until the prefixes are known, naming what is missing; /healthz is 200 meanwhile", async () => {
    const health = await get("/healthz");
    assert.equal(health.status, 200);
    assert.equal(health.body, "ok\n");

    const notReady = await get("/readyz");
    assert.equal(notReady.status, 503);
    assert.match(notReady.body, /^prefixes: failed: no pod prefixes yet/m);
    assert.match(notReady.body, /^kernel: ok$/m);
    assert.match(notReady.body, /^socket: ok$/m);

    writeFileAtomic(prefixFile, JSON.stringify({ ipv4: "10.88.0.0/24" }));
    const ready = await waitForStatus("/readyz", 200);
    assert.equal(ready.status, 200, ready.body);
    assert.equal(ready.body, "prefixes: ok\nkernel: ok\nsocket: ok\n");
  });

  it("/readyz is 503 while the API socket cannot be reached, and 200 again once it can", async () => {
    const moved = `${d.socketPath}.moved`;
    renameSync(d.socketPath, moved);
    try {
      const r = await get("/readyz");
      assert.equal(r.status, 503);
      assert.match(r.body, new RegExp(`^socket: failed: connect ${d.socketPath}: ENOENT$`, "m"));
    } finally {
      renameSync(moved, d.socketPath);
    }
    assert.equal((await get("/readyz")).status, 200);
  });

  it("/healthz gets no answer while the daemon's event loop cannot turn (process stopped), and 200 once it can", async () => {
    process.kill(d.pid!, "SIGSTOP");
    try {
      assert.equal((await get("/healthz", 1000)).status, "timeout");
    } finally {
      process.kill(d.pid!, "SIGCONT");
    }
    assert.equal((await get("/healthz")).status, 200);
  });

  it("answers 404 for other paths and 405 for other methods", async () => {
    assert.equal((await get("/other")).status, 404);
    const r = await execIn(d.hostNs, [process.execPath, "-e", `fetch("http://${ADDRESS}/healthz", { method: "POST" }).then((r) => process.stdout.write(String(r.status)))`]);
    assert.equal(r.stdout, "405");
  });
});
