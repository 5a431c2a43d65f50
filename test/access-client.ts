// A client for the access tests, run as another user (setpriv) by
// test/access.spec.ts: `node dist/test/access-client.js SOCKET [NETNS_PATH]`.
// Connects, makes Status, Attach and Detach calls, and prints one JSON line
// with its pid and each call's outcome: {"code": 0} or {"code": N, "details"}.
// Attach/Detach use workload id "access-probe" and, without NETNS_PATH, a path
// that does not exist (so an allowed Attach gets NOT_FOUND, not a link).
import * as net from "node:net";
import type * as grpc from "@grpc/grpc-js";
import { grpcJsClient } from "./grpc-clients.js";

interface Outcome {
  code: number;
  details?: string;
}

const socketPath = process.argv[2];
const netnsPath = process.argv[3] ?? "/run/netns/access-probe-does-not-exist";
if (socketPath === undefined) {
  process.stderr.write("usage: access-client.js SOCKET [NETNS_PATH]\n");
  process.exit(2);
}

/** Whether the file system lets us connect at all: "ok" or the errno code. */
function tryConnect(path: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve("ok");
    });
    s.once("error", (err: NodeJS.ErrnoException) => {
      s.destroy();
      resolve(err.code ?? err.message);
    });
  });
}

async function outcome(p: Promise<unknown>): Promise<Outcome> {
  try {
    await p;
    return { code: 0 };
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { code: e.code, details: e.details };
  }
}

async function main(): Promise<void> {
  const connect = await tryConnect(socketPath!);
  const client = grpcJsClient(socketPath!);
  const deadline = { deadline: Date.now() + 5000 };
  const req = { workloadId: "access-probe", netns: { netnsPath, ifName: "eth0" } };
  const status = await outcome(client.status(deadline));
  const attach = await outcome(client.attach(req, deadline));
  const detach = await outcome(client.detach(req, deadline));
  client.close();
  process.stdout.write(JSON.stringify({ pid: process.pid, uid: process.getuid?.(), connect, status, attach, detach }) + "\n");
}

void main();
