// How much of the daemon may wait in the kernel at once: one decision behind
// three numbers. A veth delete waits ~20 ms in the kernel for the device's
// last references; each delete in flight holds a host netlink socket and a
// thread of libuv's pool for that long. CommonJS, so that the bin
// (src/cli/workloadnetd.cts) can read it before anything has started the pool.

/**
 * Bulk deletes of retired links running at once (service/reaper.ts). When all
 * are waiting, a Detach queues for the next free one, up to ~20 ms. One caller
 * detaching back to back (~1 ms each) needs about 20 at once: with 12, one
 * Detach in ten took 5-24 ms; with 32, one in fifty or fewer, and 16 callers
 * detached ~50 % more per second. Above the limit, links wait and go in bulk.
 */
export const DELETE_ROUNDS = 32;

/** Host netlink sockets: one per delete round, and 16 for the calls' own requests. */
export const HOST_SOCKETS = DELETE_ROUNDS + 16;

/** libuv's pool: an exchange on every host socket at once, and room for file system work and namespace switches. */
export const POOL_THREADS = HOST_SOCKETS + 8;
