// The CNI logic without a kernel or a daemon: a fake service records calls.
// (test/cni-plugin.spec.ts drives the real binary against the real daemon.)
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pino } from "pino";
import { ServiceError, StatusCode } from "../service/errors.js";
import type { AttachInput, AttachmentInfo, AttachOutput, DetachInput, WorkloadService } from "../service/types.js";
import { CniAttachmentStore, readRecordsFile } from "./attachments.js";
import { cniCodeOf, CniCode } from "./errors.js";
import { CniPlugin } from "./plugin.js";
import { formatResult } from "./result.js";
import { decodeReply, encodeReply, encodeRequest, FramingError, parseEnvBlock, parseRequestHeader, MAGIC } from "./wire.js";

const log = pino({ level: "silent" });

class FakeService implements WorkloadService {
  attached = new Map<string, string[]>();
  calls: string[] = [];
  failNext: Error | undefined;
  private next = 2;

  async attach(input: AttachInput): Promise<AttachOutput> {
    this.calls.push(`attach ${input.workloadId}`);
    this.throwIfAsked();
    if (this.attached.has(input.workloadId)) throw new ServiceError(StatusCode.AlreadyExists, `workload ${input.workloadId} is already attached`);
    const n = this.next++;
    const addresses = [`10.88.0.${n}`];
    this.attached.set(input.workloadId, addresses);
    return { addresses, hostIfName: `wk${n}`, hostMac: "02:9c:52:fe:6d:0a", podMac: "02:00:00:00:00:01" };
  }
  async detach(input: DetachInput): Promise<void> {
    this.calls.push(`detach ${input.workloadId}`);
    this.throwIfAsked();
    this.attached.delete(input.workloadId);
  }
  async status(): Promise<void> {
    this.throwIfAsked();
  }
  async check(input: DetachInput): Promise<void> {
    this.calls.push(`check ${input.workloadId}`);
    this.throwIfAsked();
    if (!this.attached.has(input.workloadId)) throw new ServiceError(StatusCode.NotFound, `workload ${input.workloadId} is not attached`);
  }
  async list(): Promise<AttachmentInfo[]> {
    return [...this.attached].map(([workloadId, addresses]) => ({ workloadId, addresses, hostIfName: "wk" }));
  }
  async gc(): Promise<string[]> {
    throw new Error("the CNI layer detaches one by one");
  }
  private throwIfAsked(): void {
    const e = this.failNext;
    this.failNext = undefined;
    if (e) throw e;
  }
}

async function setup(stateFile?: string): Promise<{ service: FakeService; plugin: CniPlugin; store: CniAttachmentStore }> {
  const service = new FakeService();
  const store = await CniAttachmentStore.open(stateFile, new Set(), log);
  return { service, store, plugin: new CniPlugin({ service, store, log }) };
}

const conf = (extra: Record<string, unknown> = {}, version = "1.1.0", name = "net"): Buffer => Buffer.from(JSON.stringify({ cniVersion: version, name, ...extra }));
const env = (command: string, containerId = "c1", extra: Record<string, string> = {}): Map<string, string> =>
  new Map(Object.entries({ CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: "/run/netns/x", CNI_IFNAME: "eth0", ...extra }));

async function call(plugin: CniPlugin, e: Map<string, string>, stdin: Buffer): Promise<{ exitCode: number; out: Record<string, unknown> | undefined; stderr: string }> {
  const r = await plugin.run({ env: e, stdin });
  const text = r.stdout.toString();
  return { exitCode: r.exitCode, out: text ? (JSON.parse(text) as Record<string, unknown>) : undefined, stderr: r.stderr.toString() };
}

describe("CNI errors", () => {
  it("maps every service code to a CNI code", () => {
    const expected: [StatusCode, CniCode][] = [
      [StatusCode.InvalidArgument, CniCode.InvalidEnvironment],
      [StatusCode.NotFound, CniCode.UnknownContainer],
      [StatusCode.AlreadyExists, CniCode.TryAgainLater],
      [StatusCode.Unavailable, CniCode.TryAgainLater],
      [StatusCode.Aborted, CniCode.TryAgainLater],
      [StatusCode.DeadlineExceeded, CniCode.TryAgainLater],
      [StatusCode.Cancelled, CniCode.TryAgainLater],
      [StatusCode.ResourceExhausted, CniCode.AddressesExhausted],
      [StatusCode.FailedPrecondition, CniCode.AttachmentMismatch],
      [StatusCode.PermissionDenied, CniCode.PermissionDenied],
      [StatusCode.Internal, CniCode.Internal],
      [StatusCode.Unknown, CniCode.Internal],
    ];
    for (const [s, c] of expected) assert.equal(cniCodeOf(s), c, StatusCode[s]);
  });

  it("an unexpected failure is error 100 without its stack; exhaustion is 101", async () => {
    const { service, plugin } = await setup();
    service.failNext = new TypeError("boom at somewhere.js:1:2");
    const r = await call(plugin, env("ADD"), conf());
    assert.equal(r.exitCode, 1);
    assert.deepEqual(r.out, { cniVersion: "1.1.0", code: 100, msg: "CNI ADD: internal error in workloadnetd", details: "see the workloadnetd log" });
    service.failNext = new ServiceError(StatusCode.ResourceExhausted, "prefix 10.88.0.0/24 has no free address");
    const ex = await call(plugin, env("ADD"), conf({}, "0.3.1"));
    assert.deepEqual(ex.out, { cniVersion: "0.3.1", code: 101, msg: "CNI ADD: prefix 10.88.0.0/24 has no free address" });
  });
});

describe("CNI plugin logic", () => {
  it("formats results per version, IPv4-only too", () => {
    const r = formatResult("0.4.0", { addresses: ["10.88.0.5"], hostIfName: "wkx", hostMac: "m1", podIfName: "eth0", podMac: "m2", netns: "/ns" });
    assert.deepEqual(r, {
      cniVersion: "0.4.0",
      interfaces: [{ name: "wkx", mac: "m1" }, { name: "eth0", mac: "m2", sandbox: "/ns" }],
      ips: [{ version: "4", address: "10.88.0.5/32", gateway: "169.254.77.1", interface: 1 }],
      routes: [{ dst: "0.0.0.0/0", gw: "169.254.77.1" }],
      dns: {},
    });
  });

  it("STATUS: 50 when unavailable, other failures mapped as usual", async () => {
    const { service, plugin } = await setup();
    assert.equal((await call(plugin, env("STATUS"), conf())).exitCode, 0);
    service.failNext = new ServiceError(StatusCode.Unavailable, "no pod prefixes yet");
    assert.equal((await call(plugin, env("STATUS"), conf())).out?.code, 50);
  });

  it("DEL treats 'not ours to delete' as done, with a warning on stderr", async () => {
    const { service, plugin } = await setup();
    await call(plugin, env("ADD"), conf());
    service.failNext = new ServiceError(StatusCode.FailedPrecondition, "detach c1: refusing to delete wk2: it is not this workload's");
    const r = await call(plugin, env("DEL"), conf());
    assert.equal(r.exitCode, 0);
    assert.match(r.stderr, /^workloadnet-cni: DEL c1: detach c1: refusing to delete wk2/);
    // A transient failure is reported: the runtime retries DEL.
    await call(plugin, env("ADD", "c2"), conf());
    service.failNext = new ServiceError(StatusCode.Unavailable, "netlink busy");
    assert.equal((await call(plugin, env("DEL", "c2"), conf())).out?.code, 11);
  });

  it("GC keeps a workload that a valid record on another network still uses", async () => {
    const { service, plugin, store } = await setup();
    const uid = { CNI_ARGS: "K8S_POD_UID=pod-1" };
    await call(plugin, env("ADD", "c1", uid), conf({}, "1.1.0", "net-a"));
    // The same pod's workload recorded on net-b too (a second network of a multi-network pod would fail ADD; simulate the record).
    store.put({ network: "net-b", containerId: "c1", ifName: "eth1", workloadId: "pod-1", netns: "/run/netns/x" });
    const r = await call(plugin, env("GC", ""), conf({ "cni.dev/valid-attachments": [] }, "1.1.0", "net-a"));
    assert.equal(r.exitCode, 0);
    assert.deepEqual(service.calls.filter((c) => c.startsWith("detach")), [], "still used on net-b: not detached");
    assert.equal(store.ofNetwork("net-a").length, 0, "net-a's record is gone");
    const r2 = await call(plugin, env("GC", ""), conf({ "cni.dev/valid-attachments": [] }, "1.1.0", "net-b"));
    assert.equal(r2.exitCode, 0);
    assert.deepEqual(service.calls.filter((c) => c.startsWith("detach")), ["detach pod-1"]);
  });

  it("GC reports detaches that failed as try again later, and keeps their records", async () => {
    const { service, plugin, store } = await setup();
    await call(plugin, env("ADD", "c1"), conf());
    service.failNext = new ServiceError(StatusCode.Unavailable, "netlink busy");
    const r = await call(plugin, env("GC", ""), conf({ "cni.dev/valid-attachments": [] }));
    assert.equal(r.out?.code, 11);
    assert.match(String(r.out?.details), /c1: netlink busy/);
    assert.equal(store.size, 1);
  });
});

describe("CNI attachment records", () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("survive a restart; records of workloads no longer attached are dropped; a corrupt file is survivable", async () => {
    const dir = await mkdtemp(join(tmpdir(), "wk-cni-"));
    dirs.push(dir);
    const file = join(dir, "records.json");
    const store = await CniAttachmentStore.open(file, new Set(), log);
    store.put({ network: "n", containerId: "a", ifName: "eth0", workloadId: "wa", netns: "/x" });
    store.put({ network: "n", containerId: "b", ifName: "eth0", workloadId: "wb", netns: "/y" });
    const reloaded = await CniAttachmentStore.open(file, new Set(["wa"]), log);
    assert.equal(reloaded.size, 1);
    assert.equal(reloaded.find("n", "a", "eth0")?.workloadId, "wa");
    const text = await readFile(file, "utf8");
    assert.deepEqual(readRecordsFile(text).map((a) => a.containerId), ["a"], "the pruned records were written back");
    assert.equal(text.trim().split("\n").length, 2, "rewritten at start-up: the header and one line");

    await writeFile(file, "{not json");
    const fromCorrupt = await CniAttachmentStore.open(file, new Set(["wa"]), log);
    assert.equal(fromCorrupt.size, 0);
  });

  it("each change is one line appended; the file is rewritten once it holds twice the records plus 64 lines", async () => {
    const dir = await mkdtemp(join(tmpdir(), "wk-cni-"));
    dirs.push(dir);
    const file = join(dir, "records.json");
    const store = await CniAttachmentStore.open(file, new Set(), log);
    const rec = (i: number) => ({ network: "n", containerId: `c${i}`, ifName: "eth0", workloadId: `w${i}`, netns: `/run/netns/p${i}` });
    for (let i = 0; i < 10; i++) store.put(rec(i));
    const lines = async (): Promise<number> => (await readFile(file, "utf8")).trim().split("\n").length;
    assert.equal(await lines(), 11, "the header and ten puts");
    // Churn: put and remove one more, again and again; the file stays bounded and right.
    let most = 0;
    for (let k = 0; k < 200; k++) {
      store.put(rec(100 + k));
      store.remove(rec(100 + k));
      most = Math.max(most, await lines());
    }
    assert.ok(most <= 1 + 2 * 11 + 64 + 1, `the journal grew to ${most} lines`);
    assert.deepEqual(readRecordsFile(await readFile(file, "utf8")).map((a) => a.containerId), Array.from({ length: 10 }, (_, i) => `c${i}`));
    store.removeWorkload("w3");
    const reloaded = await CniAttachmentStore.open(file, new Set(Array.from({ length: 10 }, (_, i) => `w${i}`)), log);
    assert.equal(reloaded.size, 9);
    assert.equal(reloaded.find("n", "c3", "eth0"), undefined);
  });

  it("finds a workload's records after puts that replace a record and removes", async () => {
    const store = await CniAttachmentStore.open(undefined, new Set(), log);
    const rec = (c: string, w: string, network = "n") => ({ network, containerId: c, ifName: "eth0", workloadId: w, netns: "/x" });
    store.put(rec("a", "w1"));
    store.put(rec("b", "w1", "m"));
    store.put(rec("c", "w2"));
    assert.deepEqual(store.ofWorkload("w1").map((a) => a.containerId).sort(), ["a", "b"]);
    store.put(rec("a", "w3")); // the same container and interface, now another workload's
    assert.deepEqual(store.ofWorkload("w1").map((a) => a.containerId), ["b"]);
    assert.deepEqual(store.ofWorkload("w3").map((a) => a.containerId), ["a"]);
    store.removeWorkload("w1");
    store.remove(rec("c", "w2"));
    assert.deepEqual([store.ofWorkload("w1"), store.ofWorkload("w2")], [[], []]);
    assert.equal(store.size, 1);
  });

  it("reads a journal cut short mid-line, skips a bad line in the middle, and still reads the version 1 format", () => {
    const put = (c: string) => JSON.stringify({ put: { network: "n", containerId: c, ifName: "eth0", workloadId: `w-${c}`, netns: "/x" } });
    const skipped: number[] = [];
    const text = [JSON.stringify({ version: 2 }), put("a"), "garbage", put("b"), JSON.stringify({ remove: { network: "n", containerId: "a", ifName: "eth0" } }), put("c").slice(0, 20)].join("\n");
    assert.deepEqual(readRecordsFile(text, (line) => skipped.push(line)).map((a) => a.containerId), ["b"]);
    assert.deepEqual(skipped, [3], "only the bad line in the middle is reported");
    const v1 = JSON.stringify({ version: 1, attachments: [{ network: "n", containerId: "old", ifName: "eth0", workloadId: "w", netns: "/x" }, { bad: 1 }] });
    assert.deepEqual(readRecordsFile(v1).map((a) => a.containerId), ["old"]);
    assert.throws(() => readRecordsFile(JSON.stringify({ version: 3 })), /not a version 2 records file/);
  });
});

describe("CNI framing", () => {
  it("round-trips requests and replies, and refuses what is malformed", () => {
    const req = encodeRequest({ env: new Map([["CNI_COMMAND", "ADD"], ["CNI_ARGS", "A=1;B=2"]]), stdin: Buffer.from("{}") });
    assert.ok(req.subarray(0, MAGIC.length).equals(MAGIC));
    const { envLen, stdinLen } = parseRequestHeader(req.subarray(MAGIC.length));
    assert.equal(stdinLen, 2);
    const envBlock = req.subarray(MAGIC.length + 8, MAGIC.length + 8 + envLen);
    assert.deepEqual([...parseEnvBlock(envBlock)], [["CNI_COMMAND", "ADD"], ["CNI_ARGS", "A=1;B=2"]]);
    assert.throws(() => parseEnvBlock(Buffer.from("A=1")), FramingError);
    assert.throws(() => parseEnvBlock(Buffer.from("=1\0")), FramingError);
    const big = Buffer.alloc(8);
    big.writeUInt32BE(1 << 30, 0);
    assert.throws(() => parseRequestHeader(big), /over the 65536-byte limit/);

    const reply = decodeReply(encodeReply({ exitCode: 1, stdout: Buffer.from("out"), stderr: Buffer.from("err") }));
    assert.deepEqual([reply.exitCode, reply.stdout.toString(), reply.stderr.toString()], [1, "out", "err"]);
  });
});
