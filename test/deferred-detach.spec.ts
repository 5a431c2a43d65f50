// --detach-mode deferred against the real daemon: Detach answers before the
// kernel's slow veth delete, the link is down (no traffic) by then, and its
// name and addresses are never handed out before the kernel has deleted it.
// Runs only inside the sandbox (test/run-in-sandbox.sh).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { DaemonHarness, ipFromBytes } from "./daemon-harness.js";
import { assertSandbox, ping, type PodNamespace } from "./sandbox.js";

assertSandbox();

/** 10.97.0.0/29: .2 to .6 are the pods' (.0 network, .1 reserved, .7 broadcast). */
const PREFIX_SIZE = 5;
let d: DaemonHarness;

before(async () => {
  d = await DaemonHarness.start({ args: ["--ipv4-prefix", "10.97.0.0/29", "--ipv6-prefix", "fd00:97::/64", "--detach-mode", "deferred"] });
});
after(() => d?.cleanup());

const codeOf = async (p: Promise<unknown>): Promise<number> => {
  try {
    await p;
    return 0;
  } catch (err) {
    if (err instanceof ConnectError) return err.code;
    throw err;
  }
};

async function attach(id: string, pod: PodNamespace): Promise<string[]> {
  const res = await d.client.attach({ workloadId: id, netns: { netnsPath: pod.path, ifName: "eth0" } });
  return res.ip.map(ipFromBytes);
}

/** The host side of a workload as `ip` sees it, or undefined once the kernel deleted it. */
function hostLink(name: string): { flags: string[] } | undefined {
  try {
    return d.hostIpJson<{ flags: string[] }[]>(["link", "show", "dev", name])[0];
  } catch {
    return undefined;
  }
}

async function waitGone(names: string[], timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (names.some((n) => hostLink(n) !== undefined)) {
    assert.ok(Date.now() < deadline, `links still there: ${names.filter((n) => hostLink(n) !== undefined).join(", ")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("deferred detach", () => {
  it("answers with the link already down, deletes it right after, and frees addresses only then", async () => {
    const pods = Array.from({ length: PREFIX_SIZE }, () => d.pod("dd"));
    const first = await Promise.all(pods.map((p, i) => attach(`dd-${i}`, p)));
    assert.ok(await ping(pods[0]!.name, first[1]![0]!), "pods reach each other before Detach");
    const names = (await d.client.list({})).attachments.map((a) => a.hostIfName);
    assert.equal(names.length, PREFIX_SIZE);

    await Promise.all(pods.map((_, i) => d.client.detach({ workloadId: `dd-${i}` })));
    // Every link is either gone already or down: no traffic after Detach returned.
    for (const n of names) {
      const l = hostLink(n);
      assert.ok(l === undefined || !l.flags.includes("UP"), `${n} still up after Detach: ${l?.flags.join(",")}`);
    }
    assert.equal(await ping(pods[0]!.name, first[1]![0]!), false, "no traffic after Detach");

    // The prefix is full until the kernel is done: an Attach now either waits
    // its turn (RESOURCE_EXHAUSTED) or, if the reaper finished, succeeds with
    // an address whose old link is really gone.
    const early = d.pod("dd");
    const code = await codeOf(attach("dd-early", early));
    assert.ok(code === 0 || code === Code.ResourceExhausted, `early attach: code ${code}`);
    if (code === 0) await d.client.detach({ workloadId: "dd-early" });

    await waitGone(names);
    const again = Array.from({ length: PREFIX_SIZE }, () => d.pod("dd"));
    const second = await Promise.all(again.map((p, i) => attach(`dd2-${i}`, p)));
    assert.deepEqual(second.map((a) => a[0]).sort(), first.map((a) => a[0]).sort(), "all five addresses came back");
    assert.ok(await ping(again[0]!.name, second[1]![0]!), "the new pods reach each other");
    const names2 = (await d.client.list({})).attachments.map((a) => a.hostIfName);
    await Promise.all(again.map((_, i) => d.client.detach({ workloadId: `dd2-${i}` })));
    await waitGone(names2);
    assert.deepEqual(d.hostLinks(8), []);
  });
});
