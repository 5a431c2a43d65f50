// The one place that loads the native addon (native/netlink_socket.c):
// rtnetlink sockets, namespace checks, and a unix socket peer's credentials.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

export interface NativeNetlink {
  /**
   * Opens a bound NETLINK_ROUTE socket inside the namespace nsFd refers to
   * (-1: our own): the calling thread switches in, opens it and switches back,
   * microseconds in all. A thread that cannot switch back aborts the process.
   */
  openSocket(nsFd: number): number;
  /** openSocket on a worker thread of libuv's pool. */
  openSocketAsync(nsFd: number): Promise<number>;
  /**
   * A new, empty network namespace as an fd (close it to let it go), made by
   * the calling thread switching into it and straight back.
   */
  newNetns(): number;
  /** A NETLINK_NETFILTER socket (conntrack) in our own namespace, set up as openSocket's. */
  openNetfilterSocket(): number;
  /** The CLONE_NEW* type of a namespace fd; throws ENOTTY/EINVAL for other files. */
  nsType(fd: number): number;
  /**
   * Sends `request` (one or more whole messages) and resolves with every reply
   * datagram, concatenated, once `terminals` NLMSG_ERROR/NLMSG_DONE messages
   * have arrived. Runs on a worker thread. At most one exchange per fd at a time.
   * acksOnly: every reply is an acknowledgement (socket.ts answeredByAckOnly),
   * read several per system call; a larger datagram then fails with EMSGSIZE.
   */
  exchange(fd: number, request: Buffer, terminals: number, acksOnly?: boolean): Promise<Buffer>;
  /** exchange() on the calling thread: blocks it until the kernel has answered. */
  exchangeSync(fd: number, request: Buffer, terminals: number, acksOnly?: boolean): Buffer;
  /**
   * A NETLINK_ROUTE socket in our own namespace, watched by the event loop:
   * `onData` gets every queued notification datagram in one buffer, or null
   * and an errno (ENOBUFS: the kernel dropped some). Listens to no group until
   * joined; keeps the process alive only while it has joined a group.
   */
  /** onlyType: the kernel drops every notification but those of this nlmsg_type. */
  openMonitor(onData: (data: Buffer | null, errno: number) => void, onlyType?: number): NativeMonitor;
  monitorJoin(monitor: NativeMonitor, group: number): void;
  monitorLeave(monitor: NativeMonitor, group: number): void;
  /** Stops watching and closes the socket; idempotent. */
  monitorClose(monitor: NativeMonitor): void;
  /** Credentials of the process that connected the unix socket fd, fixed at connect() (SO_PEERCRED). */
  peerCred(fd: number): PeerCred;
  /**
   * Supplementary groups of that process at connect() (SO_PEERGROUPS, Linux
   * 4.13+); throws with code ENOPROTOOPT where the kernel lacks it.
   */
  peerGroups(fd: number): number[];
  /**
   * Hands the C heap's free pages back to the kernel (glibc's malloc_trim(0),
   * every arena), on a worker thread; true when some were. Does nothing
   * without glibc.
   */
  releaseFreeMemory(): Promise<boolean>;
}

/** An opaque handle of openMonitor's. */
export type NativeMonitor = { readonly __monitor: unique symbol };

/** What SO_PEERCRED reports about a unix socket's peer. */
export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

/** Node's system-error shape, as the addon reports failures. */
export interface ErrnoError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
// dist/src/netlink -> project root
const root = path.resolve(here, "..", "..", "..");
const require = createRequire(import.meta.url);

export const native: NativeNetlink = require(path.join(root, "build", "Release", "workloadnet_native.node")) as NativeNetlink;

export const CLONE_NEWNET = 0x40000000;
