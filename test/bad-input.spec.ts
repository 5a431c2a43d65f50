// Bad input through the real daemon's socket (SPEC §5): every case gets its
// gRPC status with a message a person understands, and afterwards the daemon
// still serves, the pod namespace holds only `lo` and the host has no extra
// link or route. One daemon for the file, on a /30 (one usable IPv4 address),
// so any address a failed call leaked would make the next good Attach fail.
// Runs only inside the sandbox (test/run-in-sandbox.sh).
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import * as net from "node:net";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { AttachRequestSchema } from "../src/gen/workload_pb.js";
import { DaemonHarness, ipFromBytes, linkNames, sleep } from "./daemon-harness.js";
import { SERVICE_NAME } from "./grpc-clients.js";
import { assertSandbox, type PodNamespace } from "./sandbox.js";

assertSandbox();

const V4 = "10.77.0.0/30";
const ONLY_V4 = "10.77.0.2";

let d: DaemonHarness;
let pod: PodNamespace;

before(async () => {
  d = await DaemonHarness.start({ args: ["--ipv4-prefix", V4, "--ipv6-prefix", "fd00:77::/126"] });
  pod = d.pod();
});
after(() => d?.cleanup());

/** The daemon serves, nothing is attached, nothing is left in the kernel. */
async function assertClean(): Promise<void> {
  assert.ok(d.running, "the daemon is still running");
  await d.client.status({});
  assert.deepEqual(linkNames(pod.name), ["lo"], "the pod namespace holds only lo");
  assert.deepEqual(d.hostLinks(8).map((l) => l.ifname), [], "no pod link on the host");
  assert.deepEqual(d.hostStaticRoutes(), [], "no pod route on the host");
}

/** A good Attach gets the /30's only address (so nothing leaked it), then is detached. */
async function assertAddressFree(): Promise<void> {
  const res = await d.client.attach({ workloadId: "probe", netns: { netnsPath: pod.path, ifName: "eth0" } });
  assert.equal(ipFromBytes(res.ip[0]!), ONLY_V4);
  await d.client.detach({ workloadId: "probe" });
  await assertClean();
}

async function expectCode(p: Promise<unknown>, code: Code, message: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    const e = ConnectError.from(err);
    assert.equal(Code[e.code], Code[code], `expected ${Code[code]}, got ${Code[e.code]}: ${e.rawMessage}`);
    assert.match(e.rawMessage, message);
    assert.doesNotMatch(e.rawMessage, /\n\s+at /, "no stack trace in the message");
    assert.ok(e.rawMessage.length < 400, `a short message, got ${e.rawMessage.length} chars`);
    return;
  }
  assert.fail(`expected ${Code[code]}, but the call succeeded`);
}

interface Case {
  workloadId?: string;
  netns?: { netnsPath: string; ifName: string } | undefined;
  code: Code;
  message: RegExp;
}

const good = (): { netnsPath: string; ifName: string } => ({ netnsPath: pod.path, ifName: "eth0" });

describe("bad input gets a clear status and leaves no trace", () => {
  const cases: [string, () => Case][] = [
    ["empty workload_id", () => ({ workloadId: "", netns: good(), code: Code.InvalidArgument, message: /workload_id is empty/ })],
    ["300-byte workload_id", () => ({ workloadId: "x".repeat(300), netns: good(), code: Code.InvalidArgument, message: /longer than 253 bytes/ })],
    ...["with space", "a/b", "a\nb", "pöd", "🙂", "-leading-dash"].map((id): [string, () => Case] => [
      `workload_id ${JSON.stringify(id)}`,
      () => ({ workloadId: id, netns: good(), code: Code.InvalidArgument, message: /workload_id .* may only contain letters, digits/ }),
    ]),
    ["missing netns", () => ({ workloadId: "w", netns: undefined, code: Code.InvalidArgument, message: /netns is missing/ })],
    ["empty netns_path", () => ({ workloadId: "w", netns: { netnsPath: "", ifName: "eth0" }, code: Code.InvalidArgument, message: /netns_path is empty/ })],
    ["relative netns_path", () => ({ workloadId: "w", netns: { netnsPath: "run/netns/x", ifName: "eth0" }, code: Code.InvalidArgument, message: /must be an absolute path/ })],
    ["netns_path that does not exist", () => ({ workloadId: "w", netns: { netnsPath: "/run/netns/no-such-ns", ifName: "eth0" }, code: Code.NotFound, message: /\/run\/netns\/no-such-ns does not exist/ })],
    ["regular file /etc/passwd", () => ({ workloadId: "w", netns: { netnsPath: "/etc/passwd", ifName: "eth0" }, code: Code.InvalidArgument, message: /\/etc\/passwd is not a namespace/ })],
    ["directory /tmp", () => ({ workloadId: "w", netns: { netnsPath: "/tmp", ifName: "eth0" }, code: Code.InvalidArgument, message: /\/tmp is not a namespace/ })],
    ["mount namespace /proc/self/ns/mnt", () => ({ workloadId: "w", netns: { netnsPath: "/proc/self/ns/mnt", ifName: "eth0" }, code: Code.InvalidArgument, message: /is a namespace, but not a network namespace/ })],
    ["empty if_name", () => ({ workloadId: "w", netns: { netnsPath: pod.path, ifName: "" }, code: Code.InvalidArgument, message: /if_name is empty/ })],
    ["16-byte if_name", () => ({ workloadId: "w", netns: { netnsPath: pod.path, ifName: "a".repeat(16) }, code: Code.InvalidArgument, message: /longer than 15 bytes/ })],
    ["if_name with /", () => ({ workloadId: "w", netns: { netnsPath: pod.path, ifName: "eth/0" }, code: Code.InvalidArgument, message: /must not contain '\/'/ })],
    ["if_name with a space", () => ({ workloadId: "w", netns: { netnsPath: pod.path, ifName: "eth 0" }, code: Code.InvalidArgument, message: /whitespace/ })],
    ["if_name .", () => ({ workloadId: "w", netns: { netnsPath: pod.path, ifName: "." }, code: Code.InvalidArgument, message: /not a valid interface name/ })],
    ["if_name ..", () => ({ workloadId: "w", netns: { netnsPath: pod.path, ifName: ".." }, code: Code.InvalidArgument, message: /not a valid interface name/ })],
  ];

  for (const [name, make] of cases) {
    it(`Attach: ${name}`, async () => {
      const c = make();
      await expectCode(d.client.attach({ workloadId: c.workloadId ?? "", ...(c.netns ? { netns: c.netns } : {}) }), c.code, c.message);
      await assertClean();
    });
  }

  it("Detach: bad workload_ids are refused too", async () => {
    await expectCode(d.client.detach({ workloadId: "" }), Code.InvalidArgument, /workload_id is empty/);
    await expectCode(d.client.detach({ workloadId: "a/b" }), Code.InvalidArgument, /may only contain/);
    await assertClean();
  });

  it("Attach: a 1 MiB workload_id is refused by size, through grpc-js", async () => {
    await assert.rejects(d.grpcJs.attach({ workloadId: "x".repeat(1 << 20), netns: good() }), (err: grpc.ServiceError) => {
      assert.equal(grpc.status[err.code], "RESOURCE_EXHAUSTED", err.details);
      assert.match(err.details, /larger than/);
      return true;
    });
    await assertClean();
    await d.grpcJs.status();
  });

  it("Attach: a 15-byte if_name is fine (the limit is inclusive)", async () => {
    const res = await d.client.attach({ workloadId: "w15", netns: { netnsPath: pod.path, ifName: "a".repeat(15) } });
    assert.equal(ipFromBytes(res.ip[0]!), ONLY_V4);
    assert.deepEqual(linkNames(pod.name).sort(), ["a".repeat(15), "lo"]);
    await d.client.detach({ workloadId: "w15" });
    await assertClean();
  });

  it("Attach: an if_name that exists in the pod (lo) is FAILED_PRECONDITION with a full rollback", async () => {
    await expectCode(
      d.client.attach({ workloadId: "clash", netns: { netnsPath: pod.path, ifName: "lo" } }),
      Code.FailedPrecondition,
      /already has an interface/,
    );
    await assertClean();
    // Not attached: Attach of the same id is not ALREADY_EXISTS, and the address is free.
    await assertAddressFree();
    const res = await d.client.attach({ workloadId: "clash", netns: good() });
    assert.equal(ipFromBytes(res.ip[0]!), ONLY_V4);
    await d.client.detach({ workloadId: "clash" });
    await assertClean();
  });

  it("a malformed protobuf body is INVALID_ARGUMENT", async () => {
    for (const body of [Buffer.from([0xff, 0xff, 0xff]), Buffer.from([0x0a, 0x10, 0x61])]) {
      const err = await new Promise<grpc.ServiceError | null>((resolve) => {
        d.grpcJs.raw.makeUnaryRequest(
          `/${SERVICE_NAME}/Attach`,
          (b: Buffer) => b,
          (b: Buffer) => b,
          body,
          new grpc.Metadata(),
          { deadline: Date.now() + 5000 },
          (e) => resolve(e),
        );
      });
      assert.ok(err, "the call must fail");
      assert.equal(grpc.status[err.code], "INVALID_ARGUMENT", err.details);
      assert.match(err.details, /^malformed request message: /);
    }
    await assertClean();
  });

  // A raw HTTP/2 client, so the whole request is on the wire before the cancel.
  for (const [how, delayMs] of [
    ["RST_STREAM right after the request", 0],
    ["RST_STREAM 2 ms after the request", 2],
    ["connection dropped right after the request", -1],
    ["connection dropped 5 ms after the request", -5],
  ] as const) {
    it(`a client that disconnects mid-Attach (${how}) leaves a consistent state`, async (t) => {
      const id = `leaver${delayMs < 0 ? "c" : "s"}${Math.abs(delayMs)}`;
      const session = http2.connect("http://localhost", { createConnection: () => net.connect(d.socketPath) });
      session.on("error", () => undefined);
      const msg = toBinary(AttachRequestSchema, create(AttachRequestSchema, { workloadId: id, netns: good() }));
      const frame = Buffer.alloc(5 + msg.length);
      frame.writeUInt32BE(msg.length, 1);
      frame.set(msg, 5);
      const stream = session.request({
        ":method": "POST",
        ":path": `/${SERVICE_NAME}/Attach`,
        "content-type": "application/grpc",
        te: "trailers",
      });
      stream.on("error", () => undefined);
      await new Promise<void>((resolve) => stream.end(frame, resolve));
      if (Math.abs(delayMs) > 0) await sleep(Math.abs(delayMs));
      if (delayMs >= 0) stream.close(http2.constants.NGHTTP2_CANCEL);
      else session.destroy();
      stream.on("close", () => session.close());

      // The call either ran to its end (logged) or never reached the service.
      const logged = await d.waitForLog((l) => l.workloadId === id, 2000).catch(() => undefined);
      const host = d.hostLinks(8).filter((l) => l.ifalias === `wk${id}`);
      t.diagnostic(`outcome: ${logged?.msg ?? "never reached the service"}`);
      if (logged?.msg === "attach ok") {
        assert.equal(host.length, 1, "attached: the host link is there");
        assert.deepEqual(linkNames(pod.name).sort(), ["eth0", "lo"]);
        await expectCode(d.client.attach({ workloadId: id, netns: good() }), Code.AlreadyExists, /already attached/);
      } else {
        assert.deepEqual(host, [], `not attached (${logged?.msg ?? "never reached the service"}): no host link`);
        assert.deepEqual(linkNames(pod.name), ["lo"]);
      }
      await d.client.detach({ workloadId: id });
      await assertClean();
      await assertAddressFree();
    });
  }
});
