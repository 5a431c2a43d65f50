// workloadnetctl against the real daemon: each command's output and exit
// status, as an operator would use them. Runs only inside the sandbox.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { DaemonHarness, linkNames, writeFileAtomic } from "./daemon-harness.js";
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
    assert.match(
      status.stdout,
      /^ready: prefixes 10\.88\.0\.0\/24, fd00:88::\/64; 0 attached\nsource: static; node [a-z0-9.-]+; last sync \d{4}-\d\d-\d\dT[0-9:.]+Z; 0 other nodes; routing auto\n$/,
    );

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

  it("nodes and status show the cluster view of a prefix file: nodes, skipped entries, the file's error", async () => {
    const n = await DaemonHarness.start({ args: ["--routing", "none", "--mtu", "1400", "--prefix-file", "/run/workloadnet/ctl-nodes.json"] });
    try {
      const file = "/run/workloadnet/ctl-nodes.json";
      const run = (...args: string[]) => {
        const r = spawnSync(process.execPath, [CTL, "--socket", n.socketPath, ...args], { encoding: "utf8" });
        return { code: r.status, stdout: r.stdout, stderr: r.stderr };
      };
      const pending = run("status");
      assert.equal(pending.code, 1);
      assert.match(pending.stderr, /^workloadnetctl: status: Unavailable: no pod prefixes yet: prefix file \/run\/workloadnet\/ctl-nodes\.json: does not exist/);

      writeFileAtomic(
        file,
        JSON.stringify({
          name: "n1",
          ipv4: "10.70.1.0/24",
          ipv6: "fd70:1::/64",
          addresses: ["192.0.2.11"],
          nodes: [
            { name: "n2", addresses: ["192.0.2.12", "2001:db8::12"], prefixes: ["10.70.2.0/24", "fd70:2::/64"] },
            { name: "n3", addresses: ["192.0.2.13"], prefixes: ["10.70.1.0/25"] },
          ],
        }),
      );
      await n.waitForLog((l) => l.msg === "pod prefixes in use");
      const table = run("nodes");
      assert.equal(table.code, 0, table.stderr);
      assert.deepEqual(table.stdout.split("\n").map((l) => l.trimEnd()), [
        "NODE  ADDRESSES                PREFIXES                  ROUTE  STATE",
        "n1    192.0.2.11               10.70.1.0/24,fd70:1::/64  local  ok",
        "n2    192.0.2.12,2001:db8::12  10.70.2.0/24,fd70:2::/64  none   ok",
        "problem: node n3 refused: its pod prefix 10.70.1.0/25 overlaps 10.70.1.0/24 of node n1; not routed",
        "",
      ]);
      const json = run("--json", "nodes").stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(json[1], { node: "n2", self: false, addresses: ["192.0.2.12", "2001:db8::12"], prefixes: ["10.70.2.0/24", "fd70:2::/64"], route: "none", state: "ok" });
      assert.match(String(json[2]!.problem), /node n3 refused/);

      writeFileAtomic(file, "{ broken");
      await n.waitForLog((l) => l.msg === "cluster source error; keeping the last view");
      const s = JSON.parse(run("--json", "status").stdout) as Record<string, unknown>;
      assert.equal(s.source, "file");
      assert.equal(s.nodeName, "n1");
      assert.equal(s.nodesKnown, 1);
      assert.equal(s.routing, "none");
      assert.match(String(s.sourceError), /ctl-nodes\.json: invalid JSON.*\(keeping 10\.70\.1\.0\/24, fd70:1::\/64 and 1 other node\)/);
      assert.deepEqual(s.prefixes, ["10.70.1.0/24", "fd70:1::/64"]);
      assert.match(String((s.problems as string[])[0]), /node n3 refused/);
      assert.ok(Date.now() - Date.parse(String(s.lastSync)) < 60_000, "lastSync is the last good read");
    } finally {
      await n.cleanup();
      spawnSync("rm", ["-f", "/run/workloadnet/ctl-nodes.json"]);
    }
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
