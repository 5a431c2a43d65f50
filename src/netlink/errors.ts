// One error type for everything the kernel refuses: errno name, the kernel's
// extended-ack text, and what we were doing ("create veth wk1 -> /run/netns/p: EEXIST").
import { constants } from "node:os";

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, num]) => [num, name]),
);

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

export class NetlinkError extends Error {
  /** Errno name, e.g. "EEXIST" — the same field Node's system errors use. */
  readonly code: string;
  /** Positive errno number. */
  readonly errno: number;
  readonly extack: string | undefined;

  constructor(readonly context: string, errno: number, extack?: string) {
    const code = errnoName(errno);
    super(`${context}: ${code}${extack ? ` (${extack})` : ""}`);
    this.name = "NetlinkError";
    this.code = code;
    this.errno = errno;
    this.extack = extack;
  }
}

/** Wraps a system error from the addon (open, send, recv) with our context. */
export function wrapSystemError(context: string, err: unknown): Error {
  const e = err as { code?: unknown; errno?: unknown; message?: unknown };
  if (typeof e.code === "string" && typeof e.errno === "number") {
    const errno = Math.abs(e.errno);
    const wrapped = new NetlinkError(context, errno);
    return Object.assign(wrapped, { cause: err });
  }
  return new Error(`${context}: ${String(e.message ?? err)}`, { cause: err });
}

export const isErrno = (err: unknown, code: string): boolean =>
  err instanceof NetlinkError && err.code === code;
