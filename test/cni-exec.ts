// Runs the real CNI plugin binary (build/Release/workloadnet-cni) as a runtime
// does: a clean environment with the CNI_* variables, the network config on
// stdin, stdout/stderr/exit code back. Inside a host namespace when given
// (`ip netns exec`), as a runtime on that host would.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The plugin built by `npm ci`/node-gyp, from dist/test/ (compiled) or test/. */
export const CNI_PLUGIN = ["../../build/Release/workloadnet-cni", "../build/Release/workloadnet-cni"]
  .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
  .find((p) => existsSync(p)) ?? fileURLToPath(new URL("../../build/Release/workloadnet-cni", import.meta.url));

export interface CniEnvVars {
  CNI_COMMAND?: string;
  CNI_CONTAINERID?: string;
  CNI_NETNS?: string;
  CNI_IFNAME?: string;
  CNI_ARGS?: string;
  CNI_PATH?: string;
}

export interface CniRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, or undefined when empty/not JSON. */
  json: Record<string, unknown> | undefined;
}

export interface RunOptions {
  /** Host network namespace to run in (`ip netns exec`). */
  hostNs?: string;
  /** A command to run the plugin under, e.g. setpriv to run it as another uid. */
  wrapper?: string[];
  timeoutMs?: number;
  plugin?: string;
}

export function runCni(env: CniEnvVars, stdin: string | Buffer | undefined, options: RunOptions = {}): Promise<CniRun> {
  const plugin = options.plugin ?? CNI_PLUGIN;
  const argv = [...(options.wrapper ?? []), plugin];
  const cmd = options.hostNs ? ["ip", "netns", "exec", options.hostNs, ...argv] : argv;
  const cleanEnv: Record<string, string> = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) cleanEnv[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { env: cleanEnv, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 20_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json });
    });
    child.stdin.on("error", () => undefined); // the plugin may exit before reading everything
    child.stdin.end(stdin);
  });
}

/** The error object of a failed run; throws with the whole output when the run did not fail as CNI says. */
export function cniError(r: CniRun): { code: number; msg: string; details?: string; cniVersion: string } {
  if (r.code !== 1 || r.json === undefined || typeof r.json.code !== "number") {
    throw new Error(`expected a CNI error (exit 1 and an error object), got exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return r.json as unknown as { code: number; msg: string; details?: string; cniVersion: string };
}

/** The result of a successful run; throws with the whole output otherwise. */
export function cniOk(r: CniRun): Record<string, unknown> | undefined {
  if (r.code !== 0) throw new Error(`expected success, got exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.json;
}
