// Hostile input over the real socket: random and truncated protobufs, 10 000
// requests from a seeded fuzzer, clients that vanish mid-call, 1 MiB fields,
// and Attach/Detach races on one id. After each batch the daemon must serve,
// hold no stray link/route/address in its host namespace, leave the pods as
// they should be, and keep its file descriptors. Runs in the sandbox.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import * as net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { AttachRequestSchema, DetachRequestSchema, StatusRequestSchema } from "../src/gen/workload_pb.js";
import { DaemonHarness, mapLimit, sleep } from "./daemon-harness.js";
import { grpcJsClient, SERVICE_NAME, type GrpcJsTestClient } from "./grpc-clients.js";
import { createPods, DAEMON_HOST_NETLINK_MAX, dirtyPods, fdCensus, hostLinks, podLinks, removePods, waitFdsBack, waitHostClean } from "./host-state.js";
import { assertSandbox, type PodNamespace } from "./sandbox.js";

const V4_PREFIX = "10.67.0.0/27"; // 29 addresses: .2 .. .30
const V4_CAPACITY = 29;
const FUZZ_REQUESTS = 10_000;
const FUZZ_SEED = 0x5eed_2024;
const CONCURRENCY = 16;
/** Descriptors that may come and go without being a leak (e.g. a pipe of the thread pool). */
const FD_SLACK = 2;

const OK = 0;
const UNKNOWN = 2;
const INVALID_ARGUMENT = 3;
const DEADLINE_EXCEEDED = 4;
const ALREADY_EXISTS = 6;
const RESOURCE_EXHAUSTED = 8;
const INTERNAL = 13;
const UNAVAILABLE = 14;
/** A daemon that answers bad input with these has a bug: input errors have clear codes. */
const NEVER = new Set([UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE]);

type Method = "Attach" | "Detach" | "Status";

/** mulberry32: a small deterministic PRNG, so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Outcome {
  code: number;
  details: string;
}

const identity = (b: Buffer): Buffer => b;

/** A unary call with the body as raw bytes: no client-side encoding, anything goes. */
function rawCall(client: grpc.Client, method: string, body: Buffer, options: { timeoutMs?: number; cancelAfterMs?: number } = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const call = client.makeUnaryRequest<Buffer, Buffer>(`/${SERVICE_NAME}/${method}`, identity, identity, body, new grpc.Metadata(), { deadline: Date.now() + (options.timeoutMs ?? 20_000) }, (err) => {
      resolve(err ? { code: err.code, details: err.details } : { code: OK, details: "" });
    });
    if (options.cancelAfterMs !== undefined) setTimeout(() => call.cancel(), options.cancelAfterMs);
  });
}

function attachBody(workloadId: string, netnsPath?: string, ifName?: string): Buffer {
  const netns = netnsPath === undefined && ifName === undefined ? undefined : { netnsPath: netnsPath ?? "", ifName: ifName ?? "" };
  return Buffer.from(toBinary(AttachRequestSchema, create(AttachRequestSchema, { workloadId, ...(netns ? { netns } : {}) })));
}

function detachBody(workloadId: string, netnsPath?: string, ifName?: string): Buffer {
  const netns = netnsPath === undefined && ifName === undefined ? undefined : { netnsPath: netnsPath ?? "", ifName: ifName ?? "" };
  return Buffer.from(toBinary(DetachRequestSchema, create(DetachRequestSchema, { workloadId, ...(netns ? { netns } : {}) })));
}

const statusBody = (): Buffer => Buffer.from(toBinary(StatusRequestSchema, create(StatusRequestSchema, {})));

describe("hostile input", () => {
  let h: DaemonHarness;
  let pid: number;
  let pods: PodNamespace[] = [];
  let clients: GrpcJsTestClient[] = [];
  let baselineFds = 0;

  const openClients = (n: number): GrpcJsTestClient[] => {
    clients = Array.from({ length: n }, () => grpcJsClient(h.socketPath));
    return clients;
  };
  const closeClients = (): void => {
    for (const c of clients.splice(0)) c.close();
  };

  /** Detaches whatever the kernel shows attached (by alias), so that anything left after is a leak. */
  async function detachAllByAlias(): Promise<void> {
    const c = grpcJsClient(h.socketPath);
    try {
      const ids = hostLinks(h.hostNs)
        .map((l) => l.ifalias)
        .filter((a): a is string => a !== undefined && a.startsWith("wk"))
        .map((a) => a.slice(2));
      const codes = await mapLimit(ids, CONCURRENCY, (id) => rawCall(c.raw, "Detach", detachBody(id)));
      assert.deepEqual(codes.filter((o) => o.code !== OK), [], "Detach of every attached workload succeeds");
    } finally {
      c.close();
    }
  }

  /** After a batch: serving, nothing leaked in the host or the pods, descriptors back to the baseline. */
  async function assertHealthy(label: string): Promise<void> {
    closeClients();
    const c = grpcJsClient(h.socketPath);
    try {
      await c.status();
    } finally {
      c.close();
    }
    // A call from a client that went away still runs to its end, and calls on
    // one id queue behind each other: an Attach may complete after a sweep
    // listed the links. So sweep until nothing is attached (a link no Detach
    // removes still fails below).
    for (let sweep = 0; sweep < 3; sweep++) {
      await detachAllByAlias();
      if ((await waitHostClean(h.hostNs, [], 1000)).length === 0) break;
    }
    assert.deepEqual(await waitHostClean(h.hostNs), [], `${label}: nothing left in the host namespace`);
    assert.deepEqual(dirtyPods(pods), [], `${label}: pods hold only lo`);
    const fds = await waitFdsBack(pid, baselineFds + FD_SLACK);
    const seen = `${fds.other} descriptors besides host netlink sockets open, ${baselineFds} at the start: ${JSON.stringify(fds.kinds)}`;
    assert.ok(fds.other <= baselineFds + FD_SLACK, `${label}: ${seen}`);
    assert.ok(fds.hostNetlink <= DAEMON_HOST_NETLINK_MAX, `${label}: ${fds.hostNetlink} host netlink sockets, at most ${DAEMON_HOST_NETLINK_MAX} expected`);
    assert.ok(h.running, `${label}: the daemon still runs`);
  }

  before(async () => {
    assertSandbox();
    h = await DaemonHarness.start({ args: ["--ipv4-prefix", V4_PREFIX, "--ipv6-prefix", "fd00:67::/64"] });
    pid = h.pid!;
    pods = createPods(CONCURRENCY, "hz");
    // Warm-up at full concurrency, so that the daemon's pools (netlink sockets, threads) reach their size.
    const [c] = openClients(1);
    for (let round = 0; round < 2; round++) {
      const attached = await Promise.all(pods.map((p, i) => rawCall(c!.raw, "Attach", attachBody(`warm-${i}`, p.path, "eth0"))));
      assert.deepEqual(attached.filter((o) => o.code !== OK), []);
      const detached = await Promise.all(pods.map((_, i) => rawCall(c!.raw, "Detach", detachBody(`warm-${i}`))));
      assert.deepEqual(detached.filter((o) => o.code !== OK), []);
    }
    closeClients();
    await sleep(200);
    baselineFds = fdCensus(pid).other;
  });

  after(async () => {
    closeClients();
    removePods(pods.map((p) => p.name));
    await h?.cleanup();
  });

  test("random and truncated protobufs get clear statuses", async () => {
    const rnd = prng(FUZZ_SEED ^ 1);
    const [c] = openClients(1);
    const bodies: Array<[Method, Buffer]> = [];
    const valid: Array<[Method, Buffer]> = [
      ["Attach", attachBody("trunc-1", pods[0]!.path, "eth0")],
      ["Detach", detachBody("trunc-1", pods[0]!.path, "eth0")],
      ["Attach", attachBody("a-rather-long-workload-identifier-0123456789", "/run/netns/nope", "eth1")],
    ];
    // Every proper prefix of a valid message: most are malformed, some happen to parse.
    for (const [m, b] of valid) for (let n = 0; n < b.length; n++) bodies.push([m, b.subarray(0, n)]);
    // Random bytes, of every size up to 300, to every method.
    for (let i = 0; i < 600; i++) {
      const len = Math.floor(rnd() * 300);
      const b = Buffer.alloc(len);
      for (let j = 0; j < len; j++) b[j] = Math.floor(rnd() * 256);
      bodies.push([(["Attach", "Detach", "Status"] as const)[i % 3]!, b]);
    }
    // Classic troublemakers: a length that runs past the end, a huge varint, a group tag, deep nesting.
    bodies.push(["Attach", Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x41])]);
    bodies.push(["Attach", Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])]);
    bodies.push(["Detach", Buffer.from([0x0b, 0x0c])]);
    bodies.push(["Attach", Buffer.concat([Buffer.alloc(2000, 0x12).map((_, i) => (i % 2 === 0 ? 0x12 : 0x7f)), Buffer.from([0x00])])]);
    bodies.push(["Attach", Buffer.from([0x0a, 0x02, 0xc3, 0x28])]); // invalid UTF-8 in a string field

    const outcomes = await mapLimit(bodies, CONCURRENCY, ([m, b]) => rawCall(c!.raw, m, b));
    const bad = outcomes.map((o, i) => ({ ...o, method: bodies[i]![0], body: bodies[i]![1].toString("hex").slice(0, 80) })).filter((o) => NEVER.has(o.code));
    assert.deepEqual(bad, [], "no malformed request gets INTERNAL/UNKNOWN/UNAVAILABLE");
    const malformed = outcomes.filter((o) => o.code === INVALID_ARGUMENT);
    assert.ok(malformed.length > bodies.length / 2, `most get INVALID_ARGUMENT (${malformed.length} of ${bodies.length})`);
    assert.ok(malformed.some((o) => /malformed request message/.test(o.details)), "a parse failure says so");
    await assertHealthy("random/truncated");
  });

  test(`${FUZZ_REQUESTS} requests from a seeded fuzzer (seed ${FUZZ_SEED.toString(16)})`, async () => {
    const rnd = prng(FUZZ_SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const randomString = (max: number, alphabet: string): string => {
      const n = Math.floor(rnd() * (max + 1));
      let s = "";
      for (let i = 0; i < n; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      return s;
    };
    const ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_.:";
    const ODD_CHARS = ID_CHARS + " /\\\0\n\t%$ü✓\u00a0\u2028🙂";
    const pooledIds = Array.from({ length: 16 }, (_, i) => `fz-${i}`);
    const paths = [
      ...pods.map((p) => p.path),
      "/run/netns/does-not-exist",
      "/etc/passwd",
      "/",
      "/proc/self/ns/mnt",
      "/proc/self/ns/net",
      "/dev/null",
      "relative/path",
      "",
      "/run/netns/" + "x".repeat(300),
      "/" + "a/".repeat(3000),
      "/run/netns/\0evil",
    ];
    const ifNames = ["eth0", "eth0", "eth1", "lo", "", ".", "..", "a/b", "eth 0", "x".repeat(15), "x".repeat(16), "é", "all", "default", "a:b", "-", "\u00a0", "tab\t"];
    const makeRequest = (): [Method, Buffer] => {
      const r = rnd();
      const id = rnd() < 0.7 ? pick(pooledIds) : rnd() < 0.5 ? randomString(20, ID_CHARS) : randomString(300, ODD_CHARS);
      if (r < 0.35) return ["Attach", rnd() < 0.1 ? attachBody(id) : attachBody(id, pick(paths), pick(ifNames))];
      if (r < 0.65) return ["Detach", rnd() < 0.5 ? detachBody(id) : detachBody(id, pick(paths), pick(ifNames))];
      if (r < 0.75) return ["Status", statusBody()];
      if (r < 0.9) {
        // A valid message, cut short or with random bytes spliced in.
        const b = Buffer.from(attachBody(id, pick(paths), pick(ifNames)));
        if (rnd() < 0.5) return [pick(["Attach", "Detach"] as const), b.subarray(0, Math.floor(rnd() * b.length))];
        for (let i = 0; i < 3; i++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
        return [pick(["Attach", "Detach"] as const), b];
      }
      const b = Buffer.alloc(Math.floor(rnd() * 64));
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(rnd() * 256);
      return [pick(["Attach", "Detach", "Status"] as const), b];
    };
    const requests = Array.from({ length: FUZZ_REQUESTS }, makeRequest);
    const cs = openClients(4);
    const started = Date.now();
    const outcomes = await mapLimit(requests, CONCURRENCY, ([m, b], i) => rawCall(cs[i % cs.length]!.raw, m, b));
    const byCode = new Map<number, number>();
    for (const o of outcomes) byCode.set(o.code, (byCode.get(o.code) ?? 0) + 1);
    process.stdout.write(`# fuzz: ${FUZZ_REQUESTS} requests in ${Date.now() - started} ms; by code ${JSON.stringify(Object.fromEntries(byCode))}\n`);
    const bad = outcomes
      .map((o, i) => ({ ...o, method: requests[i]![0], body: requests[i]![1].toString("hex").slice(0, 120) }))
      .filter((o) => NEVER.has(o.code));
    // Grouped by message, with names and numbers masked, to show each kind of failure once.
    const kinds = new Map<string, { count: number; example: (typeof bad)[number] }>();
    for (const b of bad) {
      const kind = `${b.code} ${b.method} ${b.details.replace(/\/run\/netns\/\w+/g, "NS").replace(/wk[\w.:-]*/g, "wkID").replace(/\d+/g, "N")}`;
      const k = kinds.get(kind);
      if (k) k.count++;
      else kinds.set(kind, { count: 1, example: b });
    }
    assert.deepEqual([...kinds.entries()], [], `${bad.length} requests got a status reserved for daemon failures`);
    assert.ok((byCode.get(OK) ?? 0) > 1000, "plenty of valid calls went through");
    assert.ok((byCode.get(ALREADY_EXISTS) ?? 0) > 0, "ids collided, as intended");
    await assertHealthy("fuzz");
  });

  test("the daemon's own network namespace is refused", async () => {
    const c = grpcJsClient(h.socketPath);
    try {
      for (const path of ["/proc/self/ns/net", "/proc/thread-self/ns/net", `/proc/${pid}/ns/net`]) {
        const o = await rawCall(c.raw, "Attach", attachBody("selfish", path, "eth9"));
        assert.equal(o.code, INVALID_ARGUMENT, `${path}: ${o.details}`);
        assert.match(o.details, /daemon's own network namespace/);
      }
    } finally {
      c.close();
    }
    await assertHealthy("own namespace");
  });

  test("clients that disconnect mid-call", async () => {
    const rnd = prng(FUZZ_SEED ^ 3);
    const path = `/${SERVICE_NAME}/Attach`;
    const grpcHeaders = { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" };
    const frame = (body: Buffer, claimed = body.length): Buffer => {
      const head = Buffer.alloc(5);
      head.writeUInt32BE(claimed, 1);
      return Buffer.concat([head, body]);
    };
    const variants: Array<(i: number) => Promise<void>> = [
      // grpc-js cancels a real Attach or Detach at a random moment.
      async (i) => {
        const c = clients[i % clients.length]!;
        const id = `dc-${i % 24}`;
        const body = rnd() < 0.6 ? attachBody(id, pods[i % pods.length]!.path, `e${i % 3}`) : detachBody(id);
        await rawCall(c.raw, rnd() < 0.6 ? "Attach" : "Detach", body, { cancelAfterMs: Math.floor(rnd() * 8) });
      },
      // HTTP/2: headers and part of a message, then the connection is dropped.
      async (i) => {
        const session = http2.connect("http://localhost", { createConnection: () => net.connect(h.socketPath) });
        session.on("error", () => undefined);
        const req = session.request(grpcHeaders);
        req.on("error", () => undefined);
        const body = attachBody(`dc-${i % 24}`, pods[i % pods.length]!.path, "eth0");
        req.write(frame(body.subarray(0, 5), body.length));
        await sleep(Math.floor(rnd() * 5));
        session.destroy();
      },
      // HTTP/2: a whole request, then RST_STREAM(CANCEL) before the answer.
      async (i) => {
        const session = http2.connect("http://localhost", { createConnection: () => net.connect(h.socketPath) });
        session.on("error", () => undefined);
        const req = session.request(grpcHeaders);
        req.on("error", () => undefined);
        req.end(frame(attachBody(`dc-${i % 24}`, pods[i % pods.length]!.path, "eth0")));
        await sleep(Math.floor(rnd() * 5));
        req.close(http2.constants.NGHTTP2_CANCEL);
        await sleep(1);
        session.destroy();
      },
      // HTTP/2: a frame claiming 4 GiB, then silence and a close.
      async () => {
        const session = http2.connect("http://localhost", { createConnection: () => net.connect(h.socketPath) });
        session.on("error", () => undefined);
        const req = session.request(grpcHeaders);
        req.on("error", () => undefined);
        req.write(frame(Buffer.from("abc"), 0xffffffff));
        await sleep(Math.floor(rnd() * 5));
        session.destroy();
      },
      // Raw bytes: the HTTP/2 preface and garbage, or nothing at all.
      async () => {
        await new Promise<void>((resolve) => {
          const s = net.connect(h.socketPath);
          s.on("error", () => resolve());
          s.on("connect", () => {
            const junk = Buffer.alloc(Math.floor(rnd() * 200));
            for (let j = 0; j < junk.length; j++) junk[j] = Math.floor(rnd() * 256);
            s.write(rnd() < 0.5 ? Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), junk]) : junk);
            setTimeout(() => {
              s.destroy();
              resolve();
            }, Math.floor(rnd() * 5));
          });
        });
      },
    ];
    openClients(4);
    const good = grpcJsClient(h.socketPath);
    let statusFailures = 0;
    let stop = false;
    const watcher = (async () => {
      while (!stop) {
        if ((await rawCall(good.raw, "Status", statusBody())).code !== OK) statusFailures++;
        await sleep(5);
      }
    })();
    await mapLimit(Array.from({ length: 500 }, (_, i) => i), CONCURRENCY, (i) => variants[i % variants.length]!(i));
    stop = true;
    await watcher;
    good.close();
    assert.equal(statusFailures, 0, "Status kept answering while clients misbehaved");
    await assertHealthy("disconnects");
  });

  test("1 MiB workload ids and fields", async () => {
    const [c] = openClients(1);
    const logBefore = h.stdout.length;
    const MiB = 1 << 20;
    const cases: Array<[string, Method, Buffer]> = [
      ["1 MiB id (request over the limit)", "Attach", attachBody("a".repeat(MiB), pods[0]!.path, "eth0")],
      ["id just under the limit", "Attach", attachBody("a".repeat(MiB - 64), pods[0]!.path, "eth0")],
      ["detach, id just under the limit", "Detach", detachBody("b".repeat(MiB - 64))],
      ["netns path just under the limit", "Attach", attachBody("big-path", "/" + "p".repeat(MiB - 64), "eth0")],
      ["if_name just under the limit", "Attach", attachBody("big-if", pods[0]!.path, "i".repeat(MiB - 64))],
      ["4 MiB id", "Detach", detachBody("c".repeat(4 * MiB))],
    ];
    const outcomes = await mapLimit(cases, CONCURRENCY, ([, m, b]) => rawCall(c!.raw, m, b));
    outcomes.forEach((o, i) => {
      const [label] = cases[i]!;
      assert.ok(o.code === INVALID_ARGUMENT || o.code === RESOURCE_EXHAUSTED, `${label}: code ${o.code} ${o.details.slice(0, 200)}`);
      assert.ok(o.details.length < 1000, `${label}: the message does not echo the field (${o.details.length} chars)`);
    });
    assert.equal(outcomes[1]!.code, INVALID_ARGUMENT);
    assert.match(outcomes[1]!.details, /longer than 253 bytes/);
    // Sixteen at once, twice over: the daemon's memory holds, and it answers.
    const many = await mapLimit(Array.from({ length: 32 }, (_, i) => i), CONCURRENCY, (i) => rawCall(c!.raw, "Attach", attachBody(String(i % 10).repeat(MiB - 64), pods[0]!.path, "eth0")));
    assert.ok(many.every((o) => o.code === INVALID_ARGUMENT));
    assert.ok(h.stdout.length - logBefore < 200_000, `the log did not swallow the ids (${h.stdout.length - logBefore} bytes)`);
    await assertHealthy("1 MiB");
  });

  test("concurrent Attach and Detach of one id end in a consistent state", async () => {
    const rnd = prng(FUZZ_SEED ^ 5);
    const cs = openClients(4);
    const ROUNDS = 6;
    for (let round = 0; round < ROUNDS; round++) {
      const ids = [0, 1, 2].map((k) => `race-${round}-${k}`);
      const calls: Array<() => Promise<Outcome>> = [];
      ids.forEach((id, k) => {
        const pod = pods[k]!;
        for (let i = 0; i < 20; i++) {
          calls.push(() => rawCall(cs[i % cs.length]!.raw, "Attach", attachBody(id, pod.path, "eth0")));
          calls.push(() => rawCall(cs[(i + 1) % cs.length]!.raw, "Detach", detachBody(id, pod.path, "eth0")));
        }
      });
      // Shuffle (seeded) and fire all at once.
      for (let i = calls.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [calls[i], calls[j]] = [calls[j]!, calls[i]!];
      }
      const outcomes = await Promise.all(calls.map((f) => f()));
      assert.deepEqual(outcomes.filter((o) => ![OK, ALREADY_EXISTS, 9 /* FAILED_PRECONDITION */].includes(o.code)), []);
      for (const [k, id] of ids.entries()) {
        const links = hostLinks(h.hostNs).filter((l) => l.ifalias === `wk${id}`);
        const inPod = podLinks(pods[k]!.name);
        const probe = await rawCall(cs[0]!.raw, "Attach", attachBody(id, pods[k]!.path, "eth0"));
        if (probe.code === ALREADY_EXISTS) {
          assert.equal(links.length, 1, `${id} is attached: exactly one host link`);
          assert.deepEqual(inPod.sort(), ["eth0", "lo"]);
        } else {
          assert.equal(probe.code, OK, `${id}: ${probe.details}`);
          assert.equal(links.length, 0, `${id} was not attached: no host link`);
          assert.deepEqual(inPod, ["lo"]);
        }
        assert.equal((await rawCall(cs[0]!.raw, "Detach", detachBody(id))).code, OK);
      }
    }
    await assertHealthy("races");
  });

  test("no address leaked: the prefix still fills exactly", async () => {
    const fill = createPods(V4_CAPACITY + 1, "hf");
    try {
      const [c] = openClients(1);
      const outcomes = await mapLimit(fill, CONCURRENCY, (p, i) => rawCall(c!.raw, "Attach", attachBody(`fill-${i}`, p.path, "eth0")));
      const ok = outcomes.filter((o) => o.code === OK).length;
      assert.equal(ok, V4_CAPACITY, `every address of ${V4_PREFIX} could be handed out`);
      assert.equal(outcomes.filter((o) => o.code === RESOURCE_EXHAUSTED).length, 1);
      await assertHealthy("fill");
      assert.deepEqual(dirtyPods(fill), []);
    } finally {
      removePods(fill.map((p) => p.name));
    }
  });
});

