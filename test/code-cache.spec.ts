// The bundled daemon's code cache (src/cli/load-bundle.cts): written once the
// daemon is ready when there was none or V8 refused it, then used as it is by
// the next start, which serves as usual. Runs in the sandbox.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { DaemonHarness, DAEMON_JS, DEFAULT_ARGS, ipFromBytes, linkNames, sleep } from "./daemon-harness.js";
import { assertSandbox } from "./sandbox.js";

assertSandbox();

const cli = dirname(DAEMON_JS);
const cacheFile = join(cli, "..", "..", ".compile-cache", `workloadnetd-bundle-${process.version}-${process.arch}.v8`);
const GARBAGE = Buffer.from("not a code cache\n");

async function waitFor(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(50)) if (pred()) return;
  throw new Error(`timed out waiting for ${what}`);
}

describe("the bundled daemon's code cache", () => {
  const daemons: DaemonHarness[] = [];
  after(async () => {
    for (const d of daemons) await d.cleanup();
  });

  it("replaces a cache V8 refuses once ready, and the next start uses it unchanged", async () => {
    assert.ok(existsSync(join(cli, "workloadnetd-bundle.cjs")), "the build makes the bundle");
    writeFileSync(cacheFile, GARBAGE);
    const d = await DaemonHarness.start({ args: [...DEFAULT_ARGS, "--warm-up", "2"] });
    daemons.push(d);
    await d.client.status({});
    await waitFor(() => !readFileSync(cacheFile).equals(GARBAGE), "the cache to be rewritten");
    const written = statSync(cacheFile);
    // The functions compiled by then (the warm-up's path), not only the file's top level.
    assert.ok(written.size > 100_000, `cache of ${written.size} bytes`);
    await d.stop({ expectCleanExit: true });

    await d.restart();
    const pod = d.pod();
    const res = await d.client.attach({ workloadId: "cached", netns: { netnsPath: pod.path, ifName: "eth0" } });
    assert.deepEqual(res.ip.map(ipFromBytes), ["10.88.0.2", "fd00:88::2"]);
    assert.deepEqual(linkNames(pod.name).sort(), ["eth0", "lo"]);
    await d.client.detach({ workloadId: "cached" });
    await sleep(500);
    // Accepted by V8: a refused cache would have been written again.
    assert.equal(statSync(cacheFile).mtimeMs, written.mtimeMs);
    await d.stop({ expectCleanExit: true });

    // A cache made from another bundle (its digest differs) is not used:
    // V8 itself would check only the source's length.
    const good = readFileSync(cacheFile);
    const other = Buffer.from(good);
    other[0] = other[0]! ^ 0xff;
    writeFileSync(cacheFile, other);
    await d.restart();
    await d.client.status({});
    await waitFor(() => readFileSync(cacheFile)[0] === good[0], "the cache of another bundle to be replaced");
  });
});
