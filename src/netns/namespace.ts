// Opening a network namespace by path, checked on the opened descriptor so the
// path cannot be swapped between the check and its use.
import { closeSync, constants, fstatSync, openSync, statSync } from "node:fs";
import { CLONE_NEWNET, native } from "../netlink/native.js";

export class NamespaceError extends Error {
  constructor(message: string, readonly code: "ENOENT" | "ENOTNS" | "EACCES" | "EINVAL", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NamespaceError";
  }
}

let own: { ino: number; dev: number } | undefined;

/** An open network namespace; close() when done. */
export class NetnsFd {
  private constructor(readonly fd: number, readonly path: string) {}

  static open(path: string): NetnsFd {
    let fd: number;
    try {
      // O_NONBLOCK so a FIFO at the path cannot hang us (Node adds O_CLOEXEC itself).
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") throw new NamespaceError(`network namespace ${path} does not exist`, "ENOENT", { cause: err });
      if (code === "EACCES" || code === "EPERM") throw new NamespaceError(`network namespace ${path}: permission denied`, "EACCES", { cause: err });
      throw new NamespaceError(`cannot open network namespace ${path}: ${code ?? String(err)}`, "EINVAL", { cause: err });
    }
    let type: number;
    try {
      type = native.nsType(fd);
    } catch (err) {
      closeSync(fd);
      throw new NamespaceError(`${path} is not a namespace (an nsfs mount or /proc/PID/ns/net is needed)`, "ENOTNS", { cause: err });
    }
    if (type !== CLONE_NEWNET) {
      closeSync(fd);
      throw new NamespaceError(`${path} is a namespace, but not a network namespace`, "ENOTNS");
    }
    return new NetnsFd(fd, path);
  }

  /** True when this is the daemon's own network namespace (the host's), which no workload may be attached into. */
  isOwnNamespace(): boolean {
    // Ours never changes (a thread that switches comes straight back), so it is looked at once.
    own ??= statSync("/proc/self/ns/net");
    const it = fstatSync(this.fd);
    return it.ino === own.ino && it.dev === own.dev;
  }

  close(): void {
    closeSync(this.fd);
  }
}
