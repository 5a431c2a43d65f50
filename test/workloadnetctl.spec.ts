// workloadnetctl against the real daemon: each command's output and exit
// status, as an operator would use them. Runs only inside the sandbox.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { DaemonHarness, linkNames } from "./daemon-harness.js";
import { assertSandbox } from "./sandbox.js";

assertSandbox();

const CTL = fileURLToPath(new URL("../src/cli/workloadnetctl.js", import.meta.url));
let d: DaemonHarness;

before(async () => {
  d = await DaemonHarness.start();
});
after(() => d?.cleanup());

function ctl(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CTL, "--socket", d.socketPath, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("workloadnetctl", () => {
  it("status, attach, list, check, detach, gc — text and JSON", () => {
    const status = ctl("status");
    assert.equal(status.code, 0, status.stderr);
    assert.equal(status.stdout, "ready: prefixes 10.88.0.0/24, fd00:88::/64; 0 attached\n");

    const p1 = d.pod("ctl");
    const p2 = d.pod("ctl");
    const a1 = ctl("attach", "ctl-one", p1.path);
    assert.equal(a1.code, 0, a1.stderr);
    assert.match(a1.stdout, /^ctl-one\twkctl-one\t10\.88\.0\.\d+ fd00:88::[0-9a-f]+\n$/);
    assert.deepEqual(linkNames(p1.name).sort(), ["eth0", "lo"]);
    const a2 = ctl("--json", "attach", "ctl-two", p2.path, "--if-name", "net1");
    assert.equal(a2.code, 0, a2.stderr);
    const j = JSON.parse(a2.stdout) as { workloadId: string; addresses: string[]; hostIfName: string };
    assert.equal(j.workloadId, "ctl-two");
    assert.equal(j.addresses.length, 2);
    assert.deepEqual(linkNames(p2.name).sort(), ["lo", "net1"]);

    const list = ctl("list");
    assert.equal(list.code, 0);
    assert.deepEqual(list.stdout.trim().split("\n").map((l) => l.split("\t")[0]).sort(), ["ctl-one", "ctl-two"]);

    assert.equal(ctl("check", "ctl-one", p1.path).stdout, "ctl-one\tok\n");
    assert.equal(ctl("detach", "ctl-one").stdout, "ctl-one\tdetached\n");
    assert.deepEqual(linkNames(p1.name), ["lo"]);

    const gc = ctl("gc");
    assert.equal(gc.stdout, "ctl-two\tremoved\n");
    assert.deepEqual(d.hostLinks(8), []);
  });

  it("errors: one line naming the call, the status code and the daemon's message; exit 1", () => {
    const missing = ctl("attach", "ctl-x", "/run/netns/does-not-exist");
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, "");
    assert.equal(missing.stderr, "workloadnetctl: attach ctl-x: NotFound: network namespace /run/netns/does-not-exist does not exist\n");

    const check = ctl("check", "nobody-here", "/run/netns/x");
    assert.equal(check.code, 1);
    assert.match(check.stderr, /^workloadnetctl: check nobody-here: NotFound: workload nobody-here is not attached\n$/);

    const down = spawnSync(process.execPath, [CTL, "--socket", "/run/workloadnet/nothing-here.sock", "status"], { encoding: "utf8" });
    assert.equal(down.status, 1);
    assert.match(down.stderr, /^workloadnetctl: status: Unavailable: cannot reach workloadnetd at \/run\/workloadnet\/nothing-here\.sock: /);

    const usage = ctl("attach");
    assert.notEqual(usage.code, 0);
    assert.match(usage.stderr, /missing required argument/);
  });
});
