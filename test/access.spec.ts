// Access control on the API socket, with real unprivileged users (setpriv):
// the file system layer (socket 0660, directory 0750, root + socket group) and
// the peer-credential check made on every call (SO_PEERCRED/SO_PEERGROUPS).
// Runs in the sandbox; the client runs as `nobody` from dist/test/access-client.js,
// reached through a bind mount of the checkout (see exposeCheckout).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { startGrpcServer, type GrpcServer } from "../src/server/grpc-server.js";
import type { AttachInput, AttachOutput, DetachInput, WorkloadService } from "../src/service/types.js";
import { DaemonHarness } from "./daemon-harness.js";
import { assertSandbox, uniqueName } from "./sandbox.js";
import { captureLogger } from "./log-capture.js";

/** The checkout (this file is dist/test/access.spec.js) and the client in it. */
const CHECKOUT = fileURLToPath(new URL("../../", import.meta.url));
const CLIENT_IN_CHECKOUT = fileURLToPath(new URL("./access-client.js", import.meta.url));
/** Where the client is run from: the checkout as seen through EXPOSED (set in before()). */
let clientJs = CLIENT_IN_CHECKOUT;
let nodeBin = process.execPath;
/** An existing group ("users" on Debian): tests must not add groups to the machine's /etc/group. */
const GROUP_NAME = "users";
const GROUP = 100;
const NOBODY = 65534;

const OK = 0;
const NOT_FOUND = 5;
const PERMISSION_DENIED = 7;
const UNAVAILABLE = 14;

interface Outcome {
  code: number;
  details?: string;
}
interface ClientReport {
  pid: number;
  uid: number;
  connect: string;
  status: Outcome;
  attach: Outcome;
  detach: Outcome;
}

/** Who the client runs as: setpriv arguments after --reuid=nobody. */
const AS_NOBODY = ["--regid=nogroup", "--clear-groups"];
const AS_NOBODY_IN_GROUP = ["--regid=nogroup", `--groups=${GROUP}`];
const AS_NOBODY_PRIMARY_GROUP = [`--regid=${GROUP}`, "--clear-groups"];

/** Runs the client (asynchronously: the server under test may live in this very process). */
function runClientAs(argv: string[], socketPath: string, netnsPath?: string): Promise<ClientReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, [...argv.slice(1), nodeBin, clientJs, socketPath, ...(netnsPath ? [netnsPath] : [])], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`client exited with ${code}: ${stderr}`));
      try {
        resolve(JSON.parse(stdout.trim()) as ClientReport);
      } catch (err) {
        reject(new Error(`client output is not JSON: ${stdout} ${stderr}`, { cause: err }));
      }
    });
  });
}

async function runClient(who: string[], socketPath: string, netnsPath?: string): Promise<ClientReport> {
  const report = await runClientAs(["setpriv", "--reuid=nobody", ...who], socketPath, netnsPath);
  assert.equal(report.uid, NOBODY, "the client really ran as nobody");
  return report;
}

/** The calls that reach the service; only Status, Attach and Detach are used here. */
class RecordingService {
  calls: string[] = [];
  async attach(input: AttachInput): Promise<Pick<AttachOutput, "addresses">> {
    this.calls.push(`attach ${input.workloadId}`);
    return { addresses: ["10.88.0.2"] };
  }
  async detach(input: DetachInput): Promise<void> {
    this.calls.push(`detach ${input.workloadId}`);
  }
  async status(): Promise<void> {
    this.calls.push("status");
  }
  /** As the server's parameter type, which has more methods than this test calls. */
  get asService(): WorkloadService {
    return this as unknown as WorkloadService;
  }
}


const mode = (path: string): number => statSync(path).mode & 0o7777;

// Under /run/workloadnet (a tmpfs of the sandbox, 0755): /tmp's mkdtemp dirs are 0700, closed to nobody.
const BASE = `/run/workloadnet/${uniqueName("access-")}`;
const EXPOSED = join(BASE, "checkout");
let exposed = false;

/**
 * The checkout may sit under a directory nobody cannot enter (root's home is
 * 0700), and then nobody cannot load the client, its modules or the Node.js
 * under node_modules. A bind mount shows the same tree at a path nobody can
 * reach; it lives in the sandbox's private mount namespace only.
 */
function exposeCheckout(): void {
  mkdirSync(EXPOSED, { mode: 0o755 });
  execFileSync("mount", ["--bind", CHECKOUT, EXPOSED]);
  exposed = true;
  const through = (path: string): string => {
    const rel = relative(CHECKOUT, path);
    return rel.startsWith("..") || rel.startsWith(sep) ? path : join(EXPOSED, rel);
  };
  clientJs = through(CLIENT_IN_CHECKOUT);
  nodeBin = through(process.execPath);
}

before(() => {
  assertSandbox();
  mkdirSync(BASE, { mode: 0o755 });
  chmodSync(BASE, 0o755);
  exposeCheckout();
});
after(() => {
  // Never remove BASE while the checkout is still mounted inside it.
  if (exposed) execFileSync("umount", [EXPOSED]);
  rmSync(BASE, { recursive: true, force: true });
});

describe("socket and directory permissions", () => {
  test("a directory the server creates is 0750 and the socket 0660, root and the socket group", async () => {
    const { logger } = captureLogger();
    const socketPath = join(BASE, "made", "sub", "wl.sock");
    const server = await startGrpcServer({ socketPath, service: new RecordingService().asService, logger, socketGroup: GROUP });
    try {
      for (const dir of [join(BASE, "made"), join(BASE, "made", "sub")]) {
        const st = statSync(dir);
        assert.equal(st.mode & 0o7777, 0o750, `${dir} mode`);
        assert.equal(st.uid, 0, `${dir} owner`);
        assert.equal(st.gid, GROUP, `${dir} group`);
      }
      const st = statSync(socketPath);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o7777, 0o660);
      assert.equal(st.uid, 0);
      assert.equal(st.gid, GROUP);
    } finally {
      await server.close();
    }
  });

  test("an existing directory with only a stale socket in it is made the daemon's own", async () => {
    const { logger } = captureLogger();
    const dir = join(BASE, "existing");
    mkdirSync(dir, { mode: 0o777 });
    chmodSync(dir, 0o777);
    const socketPath = join(dir, "wl.sock");
    // A crashed daemon leaves its socket behind; the next one takes the directory as its own.
    const crashed = spawnSync(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, "SIGKILL"))`]);
    assert.equal(crashed.signal, "SIGKILL");
    assert.ok(statSync(socketPath).isSocket(), "a stale socket is left");
    const server = await startGrpcServer({ socketPath, service: new RecordingService().asService, logger, socketGroup: GROUP });
    try {
      assert.equal(mode(dir), 0o750);
      assert.equal(statSync(dir).gid, GROUP);
    } finally {
      await server.close();
    }
  });

  test("a shared directory (anything else in it) is left as it is", async () => {
    const { logger, lines } = captureLogger();
    const dir = join(BASE, "shared");
    mkdirSync(dir, { mode: 0o711 });
    chmodSync(dir, 0o711);
    writeFileSync(join(dir, "someone-elses-file"), "");
    const server = await startGrpcServer({ socketPath: join(dir, "wl.sock"), service: new RecordingService().asService, logger, socketGroup: GROUP });
    try {
      assert.equal(mode(dir), 0o711);
      assert.equal(statSync(dir).gid, 0);
      assert.equal(mode(join(dir, "wl.sock")), 0o660);
      // Members can enter (o+x), so no warning is needed.
      assert.ok(!lines().some((l) => String(l.msg).includes("cannot enter")));
    } finally {
      await server.close();
    }
    chmodSync(dir, 0o700);
    const again = await startGrpcServer({ socketPath: join(dir, "wl.sock"), service: new RecordingService().asService, logger, socketGroup: GROUP });
    await again.close();
    assert.equal(mode(dir), 0o700);
    assert.ok(lines().some((l) => l.level === 40 && String(l.msg).includes("cannot enter")), "warns that members cannot reach the socket");
  });
});

describe("peer credentials, with real users", () => {
  const service = new RecordingService();
  const log = captureLogger();
  let server: GrpcServer;
  const socketPath = join(BASE, "peers", "wl.sock");

  before(async () => {
    server = await startGrpcServer({ socketPath, service: service.asService, logger: log.logger, socketGroup: GROUP });
  });
  after(() => server.close());

  test("nobody outside the group cannot even connect (file system)", async () => {
    const r = await runClient(AS_NOBODY, socketPath);
    assert.equal(r.connect, "EACCES");
    assert.equal(r.status.code, UNAVAILABLE);
    assert.deepEqual(service.calls, []);
  });

  test("a member of the socket group (supplementary group) may call", async () => {
    const r = await runClient(AS_NOBODY_IN_GROUP, socketPath);
    assert.equal(r.connect, "ok");
    assert.deepEqual([r.status.code, r.attach.code, r.detach.code], [OK, OK, OK], JSON.stringify(r));
    assert.deepEqual(service.calls.splice(0), ["status", "attach access-probe", "detach access-probe"]);
  });

  test("a member by primary group may call", async () => {
    const r = await runClient(AS_NOBODY_PRIMARY_GROUP, socketPath);
    assert.deepEqual([r.status.code, r.attach.code, r.detach.code], [OK, OK, OK], JSON.stringify(r));
    assert.equal(service.calls.splice(0).length, 3);
  });

  test("with the socket opened to everyone, a non-member is still refused: PERMISSION_DENIED, logged with uid and pid", async () => {
    // As if an operator loosened the modes by mistake: the credential check still holds.
    chmodSync(join(BASE, "peers"), 0o755);
    chmodSync(socketPath, 0o666);
    try {
      const r = await runClient(AS_NOBODY, socketPath);
      assert.equal(r.connect, "ok");
      for (const o of [r.status, r.attach, r.detach]) {
        assert.equal(o.code, PERMISSION_DENIED, JSON.stringify(r));
        assert.match(o.details ?? "", /uid 65534 is neither root nor a member of group 100/);
      }
      assert.deepEqual(service.calls, [], "no call reached the service");
      const refusals = log.lines().filter((l) => l.msg === "call refused: caller not allowed");
      const warned = refusals.filter((l) => l.level === 40);
      assert.equal(warned.length, 1, "one warning per connection; the rest at debug");
      assert.equal(refusals.length, 3, "every refused call is logged");
      assert.equal(warned[0]!.uid, NOBODY);
      assert.equal(warned[0]!.pid, r.pid, "the log names the caller's pid");
      assert.equal(warned[0]!.method, "/metropolis.node.core.network.workloads.WorkloadNetworking/Status");
    } finally {
      chmodSync(join(BASE, "peers"), 0o750);
      chmodSync(socketPath, 0o660);
    }
  });

  test("root may call", async () => {
    const report = await runClientAs(["env"], socketPath);
    assert.equal(report.uid, 0);
    assert.deepEqual([report.status.code, report.attach.code, report.detach.code], [OK, OK, OK]);
    service.calls.splice(0);
  });
});

describe("peer credentials without a socket group", () => {
  test("only root (and the daemon's own user) may call; group membership does not count", async () => {
    const service = new RecordingService();
    const { logger } = captureLogger();
    const socketPath = join(BASE, "nogroup", "wl.sock");
    const server = await startGrpcServer({ socketPath, service: service.asService, logger });
    try {
      chmodSync(join(BASE, "nogroup"), 0o755);
      chmodSync(socketPath, 0o666);
      const r = await runClient(AS_NOBODY_IN_GROUP, socketPath);
      assert.equal(r.status.code, PERMISSION_DENIED);
      assert.match(r.status.details ?? "", /uid 65534 is not root, and no socket group is configured/);
      assert.deepEqual(service.calls, []);
    } finally {
      await server.close();
    }
  });
});

describe("the real daemon with --socket-group", () => {
  let h: DaemonHarness;
  const sockDir = "/run/workloadnet";
  let saved: { mode: number; gid: number };

  before(async () => {
    const st = statSync(sockDir);
    saved = { mode: st.mode & 0o7777, gid: st.gid };
    h = await DaemonHarness.start({ args: ["--ipv4-prefix", "10.91.0.0/24", "--ipv6-prefix", "fd00:91::/64", "--socket-group", GROUP_NAME] });
  });
  after(async () => {
    await h?.cleanup();
    // The harness's socket directory is shared by every test's daemon: put it back.
    chmodSync(sockDir, saved.mode);
    chownSync(sockDir, -1, saved.gid);
  });

  test("socket 0660 root:users; members attach and detach, others are refused and logged", async () => {
    const st = statSync(h.socketPath);
    assert.equal(st.mode & 0o7777, 0o660);
    assert.equal(st.uid, 0);
    assert.equal(st.gid, GROUP);
    const pod = h.pod();

    // A member of the group does real work.
    const member = await runClient(AS_NOBODY_IN_GROUP, h.socketPath, pod.path);
    assert.deepEqual([member.status.code, member.attach.code, member.detach.code], [OK, OK, OK], JSON.stringify(member));
    assert.deepEqual(h.hostLinks(), [], "the member's detach removed its link");

    // Open the path up so that the credential check is what stands in the way.
    chmodSync(sockDir, 0o755);
    chmodSync(h.socketPath, 0o666);
    const outsider = await runClient(AS_NOBODY, h.socketPath, pod.path);
    assert.deepEqual([outsider.status.code, outsider.attach.code, outsider.detach.code], [PERMISSION_DENIED, PERMISSION_DENIED, PERMISSION_DENIED]);
    const line = await h.waitForLog((l) => l.msg === "call refused: caller not allowed");
    assert.equal(line.uid, NOBODY);
    assert.equal(line.pid, outsider.pid);
    assert.deepEqual(h.hostLinks(), []);
    // An allowed caller whose Attach is for a missing namespace: a clear NOT_FOUND, as before.
    const missing = await runClient(AS_NOBODY_IN_GROUP, h.socketPath);
    assert.equal(missing.attach.code, NOT_FOUND);
    await h.grpcJs.status();
  });
});
