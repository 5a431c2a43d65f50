// Who may use the API. Two layers, so that one mistake does not open the door:
//
// 1. The file system: the socket is 0660 and its directory 0750, both owned by
//    the daemon's user (root) and the configured socket group, so nobody else
//    can even connect (secureSocketDirectory here; the socket's own mode is set
//    by the server right after listen).
// 2. The peer's credentials, which decide what every call on a connection
//    gets: the kernel records the connecting process's pid, uid and gid
//    (SO_PEERCRED) and its supplementary groups (SO_PEERGROUPS) when it calls
//    connect(), so the check is made once per connection, as it is accepted.
//    Allowed: uid 0, the daemon's own uid (the socket's owner), and members of
//    the socket group, by primary gid or a supplementary group. Anyone else
//    gets PERMISSION_DENIED for every call, before their request is even read,
//    and the attempt is logged with uid and pid (grpc-server.ts).
//
// Why SO_PEERGROUPS rather than /proc/<pid>/status or getgrouplist(): it is the
// groups the process really had at connect(), taken atomically by the kernel.
// /proc/<pid> is read later (the pid may have exited and been reused, or the
// process may have changed its groups), and getgrouplist() only says what
// /etc/group lists for a user name, not what the calling process holds (a
// process that dropped its groups, e.g. with setpriv --clear-groups, would
// still pass). /proc/<pid>/status is the fallback for kernels without
// SO_PEERGROUPS (before 4.13).

import { readFileSync } from "node:fs";
import { chmod, chown, readdir, stat } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { native } from "../netlink/native.js";

/** Who is at the other end of a connection. */
export interface PeerIdentity {
  pid: number;
  uid: number;
  gid: number;
}

export type AccessDecision =
  | { allowed: true; peer: PeerIdentity; why: string }
  | { allowed: false; peer: PeerIdentity | undefined; reason: string };

/** How credentials are read from a connected unix socket fd (the addon, or a fake in tests). */
export interface CredentialReader {
  peerCred(fd: number): PeerIdentity;
  /** Supplementary groups at connect(); may throw (e.g. ENOPROTOOPT on old kernels). */
  peerGroups(fd: number): number[];
}

export interface PeerAuthOptions {
  /** Members of this group may call; undefined: only root and the daemon's own user. */
  socketGroup?: number;
  log: Logger;
  /** The daemon's own uid, also allowed (the socket's owner). Default: process.getuid(). */
  ownUid?: number;
  credentials?: CredentialReader;
  /** Supplementary groups of a pid from /proc, the fallback; injectable for tests. */
  procGroups?: (pid: number) => number[];
}

/** The connection's kernel handle: one object per connection, whatever wraps it. */
export interface HandleLike {
  fd?: number;
}

export class PeerAuthorizer {
  /** Keyed by the connection's handle: credentials of a unix socket are fixed at connect(). */
  private readonly decisions = new WeakMap<object, AccessDecision>();
  /** Connections whose refusal was already logged at warn level. */
  private readonly reported = new WeakSet<object>();
  private readonly ownUid: number;
  private readonly credentials: CredentialReader;
  private readonly procGroups: (pid: number) => number[];

  constructor(private readonly options: PeerAuthOptions) {
    this.ownUid = options.ownUid ?? process.getuid?.() ?? 0;
    this.credentials = options.credentials ?? native;
    this.procGroups = options.procGroups ?? groupsFromProc;
  }

  /** The decision for a connection (by its kernel handle), made once and cached. */
  decide(handle: HandleLike | undefined): AccessDecision {
    if (handle === undefined || handle === null) {
      return { allowed: false, peer: undefined, reason: "permission denied: the connection is already closed" };
    }
    const cached = this.decisions.get(handle);
    if (cached !== undefined) return cached;
    const decision = this.evaluate(handle.fd);
    this.decisions.set(handle, decision);
    if (decision.allowed) {
      this.options.log.debug({ ...decision.peer, why: decision.why }, "client connection allowed");
    }
    return decision;
  }

  private evaluate(fd: number | undefined): AccessDecision {
    if (fd === undefined || fd < 0) {
      return { allowed: false, peer: undefined, reason: "permission denied: cannot identify the caller (no socket descriptor)" };
    }
    let peer: PeerIdentity;
    try {
      peer = this.credentials.peerCred(fd);
    } catch (err) {
      return { allowed: false, peer: undefined, reason: `permission denied: cannot read the caller's credentials (${(err as Error).message})` };
    }
    if (peer.uid === 0) return { allowed: true, peer, why: "root" };
    if (peer.uid === this.ownUid) return { allowed: true, peer, why: "the daemon's own user" };
    const group = this.options.socketGroup;
    if (group === undefined) {
      return { allowed: false, peer, reason: `permission denied: uid ${peer.uid} is not root, and no socket group is configured` };
    }
    if (peer.gid === group) return { allowed: true, peer, why: `primary group ${group}` };
    let groups: number[];
    try {
      groups = this.supplementaryGroups(fd, peer.pid);
    } catch (err) {
      return { allowed: false, peer, reason: `permission denied: cannot read the groups of uid ${peer.uid} (${(err as Error).message})` };
    }
    if (groups.includes(group)) return { allowed: true, peer, why: `supplementary group ${group}` };
    return { allowed: false, peer, reason: `permission denied: uid ${peer.uid} is neither root nor a member of group ${group}, the socket group` };
  }

  private supplementaryGroups(fd: number, pid: number): number[] {
    try {
      return this.credentials.peerGroups(fd);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOPROTOOPT" && code !== "EOPNOTSUPP" && code !== "EINVAL") throw err;
    }
    return this.procGroups(pid);
  }

  /**
   * Logs a call refused by `decision`: at warn for the connection's first
   * refused call, at debug for the rest.
   */
  logRefusal(handle: HandleLike | undefined, decision: AccessDecision, path: string): void {
    const fields = { uid: decision.peer?.uid, gid: decision.peer?.gid, pid: decision.peer?.pid, method: path, reason: decision.allowed ? undefined : decision.reason };
    // Once per connection at warn, so a client looping on refused calls cannot flood the log.
    if (handle !== undefined && handle !== null && this.reported.has(handle)) {
      this.options.log.debug(fields, "call refused: caller not allowed");
      return;
    }
    if (handle !== undefined && handle !== null) this.reported.add(handle);
    this.options.log.warn(fields, "call refused: caller not allowed");
  }
}

/** The Groups: line of /proc/<pid>/status. */
export function groupsFromProc(pid: number): number[] {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const line = status.split("\n").find((l) => l.startsWith("Groups:"));
  if (line === undefined) throw new Error(`no Groups line in /proc/${pid}/status`);
  return line
    .slice("Groups:".length)
    .trim()
    .split(/\s+/)
    .filter((g) => g !== "")
    .map(Number);
}

/**
 * Gives the socket's directory mode 0750 and the socket group, when the
 * directory is the daemon's own: created by it now (`created` is the topmost
 * directory mkdir made; each one from there down is set), or holding nothing
 * but the socket's name (e.g. /run/workloadnet from an earlier run, or made
 * empty by systemd's RuntimeDirectory). A directory with anything else in it is
 * shared (/run, /tmp, …) and is left as it is.
 */
export async function secureSocketDirectory(
  socketPath: string,
  created: string | undefined,
  socketGroup: number | undefined,
  log: Logger,
): Promise<void> {
  const dir = dirname(socketPath);
  const socketName = socketPath.slice(dir.length + 1);
  let mine: string[];
  if (created !== undefined) {
    mine = [];
    for (let d = dir; d.length >= created.length; d = dirname(d)) {
      mine.push(d);
      if (d === created || d === dirname(d)) break;
    }
  } else {
    const entries = await readdir(dir);
    if (entries.some((e) => e !== socketName)) {
      const st = await stat(dir);
      const groupCanEnter = (st.mode & 0o001) !== 0 || (st.gid === socketGroup && (st.mode & 0o010) !== 0);
      if (socketGroup !== undefined && !groupCanEnter) {
        log.warn({ dir, mode: (st.mode & 0o7777).toString(8), gid: st.gid, socketGroup }, "the socket's directory is shared and members of the socket group cannot enter it; left as it is");
      }
      return;
    }
    mine = [dir];
  }
  for (const d of mine) {
    await chmod(d, 0o750);
    // uid -1 keeps the owner: the daemon's user (root in production).
    if (socketGroup !== undefined) await chown(d, -1, socketGroup);
  }
}
