import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { ServiceError, StatusCode } from "../service/errors.js";
import type { AttachInput, AttachmentInfo, AttachOutput, DetachInput, WorkloadService } from "../service/types.js";
import { startGrpcServer, type GrpcServer } from "./grpc-server.js";
import { connectClient, grpcJsClient, SERVICE_NAME } from "../../test/grpc-clients.js";
import { captureLogger } from "../../test/log-capture.js";

const V4 = [10, 88, 0, 2];
const V6 = [0xfd, 0, 0, 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

const ODD_MESSAGE = "if_name \"eth 0\" in /run/netns/a,b: 100% wrong; ü ✓ ?#&=+:@";

interface Call {
  method: string;
  input?: AttachInput | DetachInput;
  signal?: AbortSignal;
}

/** A WorkloadService that records calls; behaviour is chosen by the workload id. */
class FakeService implements WorkloadService {
  calls: Call[] = [];
  statusError: Error | undefined;
  private gates = new Map<string, { promise: Promise<void>; release: () => void }>();
  private arrivals = new Map<string, () => void>();

  /** Calls with this id wait until release(id). */
  hold(id: string): { arrived: Promise<void>; release: () => void } {
    let release!: () => void;
    const promise = new Promise<void>((r) => (release = r));
    this.gates.set(id, { promise, release });
    const arrived = new Promise<void>((r) => this.arrivals.set(id, r));
    return { arrived, release };
  }

  async attach(input: AttachInput, signal?: AbortSignal): Promise<AttachOutput> {
    this.calls.push({ method: "attach", input, ...(signal ? { signal } : {}) });
    await this.behave(input.workloadId);
    const details = { hostIfName: "wkfake", hostMac: "02:9c:52:fe:6d:0a", podMac: "02:00:00:00:00:01" };
    if (input.workloadId === "bad-address") return { addresses: ["not-an-ip"], ...details };
    return { addresses: ["10.88.0.2", "fd00:88::2"], ...details };
  }

  async check(input: DetachInput): Promise<void> {
    this.calls.push({ method: "check", input });
    await this.behave(input.workloadId);
  }

  async list(): Promise<AttachmentInfo[]> {
    return [{ workloadId: "w1", addresses: ["10.88.0.2"], hostIfName: "wkw1" }];
  }

  async gc(keep: string[]): Promise<string[]> {
    return ["w1", "w2"].filter((id) => !keep.includes(id));
  }

  async detach(input: DetachInput, signal?: AbortSignal): Promise<void> {
    this.calls.push({ method: "detach", input, ...(signal ? { signal } : {}) });
    await this.behave(input.workloadId);
  }

  async status(): Promise<void> {
    this.calls.push({ method: "status" });
    if (this.statusError) throw this.statusError;
  }

  private async behave(id: string): Promise<void> {
    this.arrivals.get(id)?.();
    const gate = this.gates.get(id);
    if (gate) await gate.promise;
    switch (id) {
      case "missing-ns":
        throw new ServiceError(StatusCode.NotFound, "network namespace /run/netns/x does not exist");
      case "dup":
        throw new ServiceError(StatusCode.AlreadyExists, 'workload "dup" is already attached');
      case "full":
        throw new ServiceError(StatusCode.ResourceExhausted, "no free IPv4 address in 10.88.0.0/30");
      case "odd-message":
        throw new ServiceError(StatusCode.InvalidArgument, ODD_MESSAGE);
      case "boom":
        throw new Error("secret internal detail");
    }
  }
}


let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(os.tmpdir(), "wln-grpc-"));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let counter = 0;
function freshSocketPath(): string {
  counter++;
  return join(tmp, `d${counter}`, "wl.sock");
}

describe("gRPC server with a running service", () => {
  const service = new FakeService();
  const log = captureLogger();
  let server: GrpcServer;
  let socketPath: string;
  let cc: ReturnType<typeof connectClient>;
  let gc: ReturnType<typeof grpcJsClient>;

  before(async () => {
    socketPath = freshSocketPath();
    server = await startGrpcServer({
      socketPath,
      service,
      logger: log.logger,
      socketGroup: process.getgid!(),
    });
    cc = connectClient(socketPath);
    gc = grpcJsClient(socketPath);
  });
  after(async () => {
    cc.close();
    gc.close();
    await server.close();
  });

  test("the socket is 0660 in a new 0750 directory, with the requested group", async () => {
    assert.equal(server.address, socketPath);
    const st = await stat(socketPath);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(st.gid, process.getgid!());
    const dirSt = await stat(join(socketPath, ".."));
    assert.equal(dirSt.mode & 0o777, 0o750);
    assert.ok(log.lines().some((l) => l.msg === "gRPC server listening"));
  });

  test("Attach through Connect returns 4- and 16-byte addresses", async () => {
    const res = await cc.client.attach({
      workloadId: "w1",
      netns: { netnsPath: "/run/netns/w1", ifName: "eth0" },
    });
    assert.deepEqual(res.ip.map((b) => Array.from(b)), [V4, V6]);
    const call = service.calls.at(-1)!;
    assert.equal(call.method, "attach");
    assert.deepEqual(call.input, {
      workloadId: "w1",
      netns: { netnsPath: "/run/netns/w1", ifName: "eth0" },
    });
    assert.ok(call.signal instanceof AbortSignal);
  });

  test("Attach through grpc-js returns 4- and 16-byte addresses", async () => {
    const res = await gc.attach({ workloadId: "w2", netns: { netnsPath: "/proc/1/ns/net", ifName: "eth1" } });
    assert.deepEqual(res.ip.map((b) => Array.from(b)), [V4, V6]);
    assert.deepEqual(service.calls.at(-1)!.input, {
      workloadId: "w2",
      netns: { netnsPath: "/proc/1/ns/net", ifName: "eth1" },
    });
  });

  test("a missing netns reaches the service as undefined", async () => {
    await gc.attach({ workloadId: "w3" });
    assert.deepEqual(service.calls.at(-1)!.input, { workloadId: "w3", netns: undefined });
    await cc.client.detach({ workloadId: "w3" });
    assert.deepEqual(service.calls.at(-1), {
      method: "detach",
      input: { workloadId: "w3", netns: undefined },
      signal: service.calls.at(-1)!.signal,
    });
  });

  test("Detach and Status succeed through both clients", async () => {
    await cc.client.detach({ workloadId: "w1", netns: { netnsPath: "/run/netns/w1", ifName: "eth0" } });
    await gc.detach({ workloadId: "w2" });
    await cc.client.status({});
    await gc.status();
  });

  const serviceErrors: Array<[string, StatusCode, number, string]> = [
    ["missing-ns", StatusCode.NotFound, grpc.status.NOT_FOUND, "network namespace /run/netns/x does not exist"],
    ["dup", StatusCode.AlreadyExists, grpc.status.ALREADY_EXISTS, 'workload "dup" is already attached'],
    ["odd-message", StatusCode.InvalidArgument, grpc.status.INVALID_ARGUMENT, ODD_MESSAGE],
    ["full", StatusCode.ResourceExhausted, grpc.status.RESOURCE_EXHAUSTED, "no free IPv4 address in 10.88.0.0/30"],
  ];
  for (const [id, code, grpcCode, message] of serviceErrors) {
    test(`ServiceError ${StatusCode[code]} arrives with its code and message`, async () => {
      await assert.rejects(cc.client.attach({ workloadId: id }), (err: unknown) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(err.code as number, code as number);
        assert.equal(err.rawMessage, message);
        return true;
      });
      await assert.rejects(gc.attach({ workloadId: id }), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpcCode);
        assert.equal(err.details, message);
        return true;
      });
      await assert.rejects(gc.detach({ workloadId: id }), { code: grpcCode, details: message });
    });
  }

  test("Status errors keep their code (UNAVAILABLE before prefixes)", async () => {
    service.statusError = new ServiceError(StatusCode.Unavailable, "no pod prefixes yet");
    try {
      await assert.rejects(gc.status(), { code: grpc.status.UNAVAILABLE, details: "no pod prefixes yet" });
      await assert.rejects(cc.client.status({}), { code: Code.Unavailable, rawMessage: "no pod prefixes yet" });
    } finally {
      service.statusError = undefined;
    }
  });

  test("an unexpected error arrives as INTERNAL without details or stack, and is logged", async () => {
    await assert.rejects(gc.attach({ workloadId: "boom" }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.INTERNAL);
      assert.doesNotMatch(err.details, /secret|\n|\bat /);
      return true;
    });
    await assert.rejects(cc.client.attach({ workloadId: "boom" }), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.Internal);
      assert.doesNotMatch(err.rawMessage, /secret|\n|\bat /);
      return true;
    });
    // A service returning a non-address is a bug, handled the same way.
    await assert.rejects(gc.attach({ workloadId: "bad-address" }), { code: grpc.status.INTERNAL });
    const logged = log.lines().filter((l) => l.msg === "unexpected error in call");
    assert.ok(logged.length >= 3);
    assert.match(JSON.stringify(logged[0]!.err), /secret internal detail/);
    assert.equal(logged[0]!.method, "Attach");
  });

  test("a malformed protobuf body gets a clean error and the server keeps serving", async () => {
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      gc.raw.makeUnaryRequest(
        `/${SERVICE_NAME}/Attach`,
        () => Buffer.from([0xff, 0xff, 0xff]),
        (b: Buffer) => b,
        {},
        new grpc.Metadata(),
        { deadline: Date.now() + 5000 },
        (e) => resolve(e),
      );
    });
    assert.ok(err, "the call must fail");
    // grpc-js itself would say INTERNAL "Error deserializing request"; the server says INVALID_ARGUMENT.
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT, err.details);
    assert.match(err.details, /^malformed request message: /);
    assert.doesNotMatch(err.details, /\n\s+at /);
    await gc.status();
    await cc.client.status({});
  });

  test("a client that goes away mid-call aborts the service's signal", async () => {
    const held = service.hold("leaver");
    const call = gc.raw.makeUnaryRequest(
      `/${SERVICE_NAME}/Detach`,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from([0x0a, 0x06, ...Buffer.from("leaver")]), // workload_id = "leaver"
      new grpc.Metadata(),
      {},
      () => undefined,
    );
    await held.arrived;
    const signal = service.calls.at(-1)!.signal!;
    assert.equal(signal.aborted, false);
    call.cancel();
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener("abort", () => resolve(), { once: true });
    });
    held.release();
    // Still serving.
    await gc.status();
  });
});

describe("socket path handling", () => {
  test("a stale socket from an earlier run is replaced", async () => {
    const socketPath = freshSocketPath();
    await mkdir(join(socketPath, ".."), { recursive: true });
    // A process that binds the socket and exits without removing it.
    execFileSync(process.execPath, [
      "-e",
      `require("net").createServer().listen(${JSON.stringify(socketPath)}, () => process.exit(0))`,
    ]);
    assert.ok((await stat(socketPath)).isSocket());
    const server = await startGrpcServer({ socketPath, service: new FakeService(), logger: pino({ level: "silent" }) });
    const gc = grpcJsClient(socketPath);
    try {
      await gc.status();
    } finally {
      gc.close();
      await server.close();
    }
  });

  test("a socket another server is listening on is not taken over", async () => {
    const socketPath = freshSocketPath();
    const logger = pino({ level: "silent" });
    const first = await startGrpcServer({ socketPath, service: new FakeService(), logger });
    try {
      await assert.rejects(
        startGrpcServer({ socketPath, service: new FakeService(), logger }),
        /already listening/,
      );
      const gc = grpcJsClient(socketPath);
      await gc.status();
      gc.close();
    } finally {
      await first.close();
    }
  });

  test("a regular file at the socket path is refused and left alone", async () => {
    const socketPath = freshSocketPath();
    await mkdir(join(socketPath, ".."), { recursive: true });
    await writeFile(socketPath, "precious");
    await assert.rejects(
      startGrpcServer({ socketPath, service: new FakeService(), logger: pino({ level: "silent" }) }),
      (err: Error) => {
        assert.match(err.message, /is a regular file; refusing to replace it/);
        assert.ok(err.message.includes(socketPath));
        return true;
      },
    );
    assert.equal(await readFile(socketPath, "utf8"), "precious");
  });

  test("a directory at the socket path is refused and left alone", async () => {
    const socketPath = freshSocketPath();
    await mkdir(socketPath, { recursive: true });
    await assert.rejects(
      startGrpcServer({ socketPath, service: new FakeService(), logger: pino({ level: "silent" }) }),
      /is a directory; refusing to replace it/,
    );
    assert.ok((await stat(socketPath)).isDirectory());
  });
});

describe("close()", () => {
  test("lets an in-flight call finish, then removes the socket", async () => {
    const socketPath = freshSocketPath();
    const service = new FakeService();
    const log = captureLogger();
    const server = await startGrpcServer({ socketPath, service, logger: log.logger });
    const cc = connectClient(socketPath);
    const gc = grpcJsClient(socketPath);
    try {
      const heldC = service.hold("slow-c");
      const heldG = service.hold("slow-g");
      const viaConnect = cc.client.attach({ workloadId: "slow-c" });
      const viaGrpcJs = gc.attach({ workloadId: "slow-g" });
      await Promise.all([heldC.arrived, heldG.arrived]);

      const closed = server.close();
      let closeDone = false;
      void closed.then(() => (closeDone = true));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(closeDone, false, "close() waits for running calls");
      assert.equal(server.close(), closed, "close() is idempotent");

      heldC.release();
      heldG.release();
      const [a, b] = await Promise.all([viaConnect, viaGrpcJs]);
      assert.deepEqual(a.ip.map((x) => Array.from(x)), [V4, V6]);
      assert.deepEqual(b.ip.map((x) => Array.from(x)), [V4, V6]);
      await closed;
      assert.equal(existsSync(socketPath), false);
      assert.ok(log.lines().some((l) => l.msg === "gRPC server stopped"));
      // Nothing listens any more.
      await assert.rejects(gc.status({ deadline: Date.now() + 1000 }), { code: grpc.status.UNAVAILABLE });
    } finally {
      cc.close();
      gc.close();
    }
  });

  test("after the shutdown deadline, running calls are cut and see their signal abort", async () => {
    const socketPath = freshSocketPath();
    const service = new FakeService();
    const log = captureLogger();
    const server = await startGrpcServer({ socketPath, service, logger: log.logger, shutdownTimeoutMs: 200 });
    const gc = grpcJsClient(socketPath);
    try {
      const held = service.hold("stuck");
      const call = gc.attach({ workloadId: "stuck" });
      call.catch(() => undefined);
      await held.arrived;
      const started = Date.now();
      await server.close();
      assert.ok(Date.now() - started < 5000);
      await assert.rejects(call);
      assert.equal(service.calls.at(-1)!.signal!.aborted, true);
      assert.equal(existsSync(socketPath), false);
      assert.ok(log.lines().some((l) => l.level === 40));
      held.release();
    } finally {
      gc.close();
    }
  });
});
