// Turns what the Kubernetes client throws into one short sentence a person
// can act on, and classifies it (gone, unauthorized, timeout).

import { STATUS_CODES } from "node:http";

type Loose = Record<string, unknown>;

/** The HTTP status of a failed request: ApiException has code, the client's Watch statusCode. */
export function httpStatusOf(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const e = err as Loose;
  if (typeof e.statusCode === "number") return e.statusCode;
  if (typeof e.code === "number") return e.code;
  return undefined;
}

export function isTimeout(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as Loose).name === "TimeoutError";
}

/** The message of a Kubernetes Status in a response body, when there is one. */
function statusMessage(body: unknown): string | undefined {
  let b = body;
  if (typeof body === "string") {
    try {
      b = JSON.parse(body);
    } catch {
      return body.trim() === "" ? undefined : body.trim().slice(0, 200);
    }
  }
  if (typeof b === "object" && b !== null && typeof (b as Loose).message === "string") return (b as Loose).message as string;
  return undefined;
}

const hints: Record<number, string> = {
  401: "the token or client certificate was refused",
  403: "the account needs get, list and watch on nodes",
};

/** One sentence for an error of a request to the API (without the server's name). */
export function describeApiError(err: unknown, timeoutMs: number): string {
  if (isTimeout(err)) return `no answer within ${timeoutMs / 1000} s`;
  const code = httpStatusOf(err);
  if (code !== undefined) {
    const detail = statusMessage((err as Loose).body);
    const hint = hints[code];
    return `HTTP ${code} ${STATUS_CODES[code] ?? ""}`.trimEnd() + (detail && detail !== STATUS_CODES[code] ? `: ${detail}` : "") + (hint ? ` (${hint})` : "");
  }
  if (err instanceof Error) {
    // fetch wraps the socket's error ("connect ECONNREFUSED 10.0.0.1:6443") as its cause.
    const cause = (err as Error & { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return cause.message;
    return err.message;
  }
  return String(err);
}
