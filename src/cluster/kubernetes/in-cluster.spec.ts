// In-cluster credentials as a DaemonSet pod has them: the service-account
// token and CA mounted at /var/run/secrets/kubernetes.io/serviceaccount (in
// a private mount namespace of a child process, over a tmpfs) and
// KUBERNETES_SERVICE_HOST/PORT in the environment; the token rotated in place.

import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type KubeApiStandIn, startKubeApiServer } from "../../../test/kube-apiserver/server.js";

const childJs = join(dirname(fileURLToPath(import.meta.url)), "../../../test/kube-source-child.js");

interface Line {
  view?: { nodes: { name: string }[]; prefixes?: { v4?: string }; pendingReason?: string };
  error?: string | null;
  rotated?: boolean;
}

class Child {
  readonly lines: Line[] = [];
  readonly stderr: string[] = [];
  constructor(readonly proc: ChildProcessWithoutNullStreams) {
    createInterface({ input: proc.stdout }).on("line", (l) => this.lines.push(JSON.parse(l) as Line));
    proc.stderr.on("data", (d: Buffer) => this.stderr.push(d.toString()));
  }
  async waitFor(what: string, ms: number, pred: (l: Line) => boolean): Promise<Line> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = [...this.lines].reverse().find(pred);
      if (hit) return hit;
      if (Date.now() > deadline || this.proc.exitCode !== null) throw new Error(`not within ${ms} ms: ${what}; lines ${JSON.stringify(this.lines)}; stderr ${this.stderr.join("")}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  send(line: string) {
    this.proc.stdin.write(`${line}\n`);
  }
}

describe("kubernetes source with in-cluster credentials", () => {
  let api: KubeApiStandIn;
  let child: Child | undefined;
  before(async () => {
    api = await startKubeApiServer();
  });
  after(async () => {
    child?.proc.kill("SIGKILL");
    await api.close();
  });

  it("reads the service-account token and CA where a pod has them, and follows a rotated token", async () => {
    api.nodes.add({ name: "n1", podCIDRs: ["10.70.1.0/24"], internalIPs: ["192.0.2.11"] });
    api.nodes.add({ name: "n2", podCIDRs: ["10.70.2.0/24"], internalIPs: ["192.0.2.12"] });
    const sa = api.serviceAccountDir();
    const script = [
      "set -e",
      // /var/run is /run: a tmpfs over it in this mount namespace only.
      "mount -t tmpfs -o mode=0755 pod-run /var/run",
      "mkdir -p /var/run/secrets/kubernetes.io/serviceaccount",
      'cp "$1/token" "$1/ca.crt" "$1/namespace" /var/run/secrets/kubernetes.io/serviceaccount/',
      'exec "$2" "$3"',
    ].join("\n");
    const proc = spawn("unshare", ["--mount", "--propagation", "private", "bash", "-c", script, "in-cluster", sa, process.execPath, childJs], {
      env: { ...process.env, KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(api.port), NODE_NAME: "n1", KUBECONFIG_PATH: "" },
    });
    child = new Child(proc);
    const first = await child.waitFor("first view", 20_000, (l) => l.view?.prefixes?.v4 !== undefined);
    assert.equal(first.error, null);
    assert.equal(first.view!.prefixes!.v4, "10.70.1.0/24");
    assert.deepEqual(first.view!.nodes.map((n) => n.name), ["n2"]);

    // The kubelet rotates the token file; the API server accepts only the new token from then on.
    child.send("rotate rotated-token-2");
    await child.waitFor("rotated", 2000, (l) => l.rotated === true);
    const mark = api.requests.length;
    api.setToken("rotated-token-2");
    api.closeWatches();
    api.nodes.add({ name: "n3", podCIDRs: ["10.70.3.0/24"], internalIPs: ["192.0.2.13"] });
    await child.waitFor("n3 seen with the new token", 5000, (l) => l.error === null && (l.view?.nodes.some((n) => n.name === "n3") ?? false));
    const statuses = api.requests.slice(mark).map((r) => r.status);
    assert.ok(statuses.includes(401), "the old token was refused once");
    assert.equal(statuses.at(-1), 200, "the new token is in use");
    child.send("quit");
    // It exits by itself: the closed source holds no socket or timer.
    const code = await new Promise<number | null | string>((r) => {
      if (proc.exitCode !== null) r(proc.exitCode);
      proc.on("exit", r);
      setTimeout(() => r("still running 5 s after quit"), 5000).unref();
    });
    assert.equal(code, 0, child.stderr.join(""));
    child = undefined;
  });
});
