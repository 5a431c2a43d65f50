// The answers of /healthz and /readyz, for a kubelet's probes or a load
// balancer. Liveness is only "the event loop turns": the answer itself shows
// it, and a stuck loop answers nothing, which the prober's timeout reports.
// Readiness is what a pod needs from this node: pod prefixes known, the
// kernel answering netlink, and the API socket accepting connections.
import { connect } from "node:net";

export interface ReadinessChecks {
  /** Resolves when the pod prefixes are known; rejects saying why not (the Status call's answer). */
  prefixes(): Promise<void>;
  /** One netlink round trip in the host namespace. */
  kernel(): Promise<unknown>;
  /** The API socket's path: readiness connects to it. */
  socketPath: string;
}

export interface ProbeAnswer {
  status: number;
  body: string;
}

/** How long one readiness check may take before it counts as failed. */
export const CHECK_TIMEOUT_MS = 2_000;

export function healthz(): ProbeAnswer {
  return { status: 200, body: "ok\n" };
}

/** 200 when every check passes, 503 otherwise; the body has one line per check. */
export async function readyz(checks: ReadinessChecks): Promise<ProbeAnswer> {
  const results = await Promise.all([
    outcome("prefixes", checks.prefixes()),
    outcome("kernel", checks.kernel()),
    outcome("socket", canConnect(checks.socketPath)),
  ]);
  const ok = results.every((r) => r.ok);
  const lines = results.map((r) => `${r.name}: ${r.ok ? "ok" : `failed: ${r.why}`}`);
  return { status: ok ? 200 : 503, body: `${lines.join("\n")}\n` };
}

async function outcome(name: string, check: Promise<unknown>): Promise<{ name: string; ok: boolean; why?: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([check, timeout]);
    return { name, ok: true };
  } catch (err) {
    return { name, ok: false, why: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

function canConnect(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve();
    });
    s.once("error", (err: NodeJS.ErrnoException) => {
      s.destroy();
      reject(new Error(`connect ${path}: ${err.code ?? err.message}`));
    });
  });
}
