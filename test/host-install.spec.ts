// The host install (deploy/systemd/): the unit file passes systemd's own
// checker, and the daemon works with what the unit grants it: root with only
// the capabilities of its CapabilityBoundingSet, no new privileges, settings
// from the example config file. A control run without CAP_SYS_ADMIN shows the
// capability is needed (entering the pod's namespace is refused).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { parseConfig } from "../src/cli/config.js";
import { DaemonHarness } from "./daemon-harness.js";
import { assertSandbox, uniqueName } from "./sandbox.js";

assertSandbox();

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const UNIT = `${ROOT}deploy/systemd/workloadnetd.service`;
const EXAMPLE = `${ROOT}deploy/systemd/workloadnetd.json`;
const unitText = readFileSync(UNIT, "utf8");
const daemons: DaemonHarness[] = [];
const temp: string[] = [];

after(async () => {
  for (const d of daemons) await d.cleanup();
  for (const t of temp) rmSync(t, { force: true });
});

/** The unit's value of a key, e.g. "CapabilityBoundingSet". */
function unitValue(key: string): string {
  const line = unitText.split("\n").find((l) => l.startsWith(`${key}=`));
  assert.ok(line, `the unit sets ${key}`);
  return line.slice(key.length + 1);
}

/** setpriv arguments that give root only these capabilities (CAP_X names), with no_new_privs. */
function onlyCaps(caps: string[]): string[] {
  const list = caps.map((c) => `+${c.replace(/^CAP_/, "").toLowerCase()}`).join(",");
  return ["setpriv", `--bounding-set=-all,${list}`, "--inh-caps=-all", "--no-new-privs", "--"];
}

async function attachUnder(caps: string[]): Promise<{ d: DaemonHarness; attach: Promise<unknown>; podPath: string }> {
  // The example's settings, with a socket of this test's own.
  const d = await DaemonHarness.start({ args: ["--config", EXAMPLE], wrapper: onlyCaps(caps), beforeStart: forwardingOn });
  daemons.push(d);
  const status = readFileSync(`/proc/${d.pid}/status`, "utf8");
  const eff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(status)![1]}`);
  assert.equal(eff.toString(2).replace(/0/g, "").length, caps.length, "the daemon holds exactly these capabilities");
  assert.match(status, /^NoNewPrivs:\s*1$/m);
  const pod = d.pod("caps");
  return { d, podPath: pod.path, attach: d.client.attach({ workloadId: uniqueName("caps-"), netns: { netnsPath: pod.path, ifName: "eth0" } }) };
}

function forwardingOn(hostNs: string): void {
  spawnSync("ip", ["netns", "exec", hostNs, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
}

describe("host install: systemd unit and config example", () => {
  it("the unit passes systemd-analyze verify without a warning", () => {
    const copy = `/run/workloadnet/${uniqueName("unit-")}.service`;
    temp.push(copy);
    // The checker wants ExecStart to exist: point it at this checkout's launcher.
    writeFileSync(copy, unitText.replace("/opt/workloadnet/bin/workloadnetd", `${ROOT}bin/workloadnetd`));
    assert.ok(existsSync("/usr/bin/systemd-analyze"), "systemd-analyze is installed (scripts/install-deps.sh)");
    const r = spawnSync("systemd-analyze", ["verify", copy], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.split("\n").filter((l) => l.includes(copy)).join("\n"), "", "no warning about the unit");
  });

  it("the config example is valid", () => {
    const c = parseConfig(["--config", EXAMPLE], {});
    assert.equal(c.ipv4Prefix, "10.88.0.0/24");
    assert.equal(c.ipv6Prefix, "fd00:88::/64");
  });

  it("with only the unit's capabilities and no new privileges, the daemon attaches a pod", async () => {
    const caps = unitValue("CapabilityBoundingSet").split(" ");
    assert.deepEqual(caps, ["CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_CHOWN"]);
    const { attach } = await attachUnder(caps);
    const r = (await attach) as { ip: Uint8Array[] };
    assert.equal(r.ip.length, 2, "an IPv4 and an IPv6 address");
  });

  it("without CAP_SYS_ADMIN it cannot enter the pod's namespace (a control)", async () => {
    const { attach } = await attachUnder(["CAP_NET_ADMIN", "CAP_CHOWN"]);
    await assert.rejects(attach, /EPERM|permission/i);
  });
});
