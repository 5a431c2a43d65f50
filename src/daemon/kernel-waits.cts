// How much of the daemon may wait in the kernel at once: one decision behind
// three numbers. A veth delete waits ~20 ms in the kernel for the device's
// last references; each delete in flight holds a host netlink socket and a
// thread of libuv's pool for that long. CommonJS, so that the bin
// (src/cli/workloadnetd.cts) can read it before anything has started the pool.

/**
 * Bulk deletes of retired links running at once (service/reaper.ts). With
 * fewer than one per few milliseconds of Detaches, Detaches queue for a free
 * one: a limit of 4 put a ~20 ms tail on one Detach in five at one caller's pace.
 */
export const DELETE_ROUNDS = 12;

/** Host netlink sockets: one per delete round, as many again for the calls' own requests. */
export const HOST_SOCKETS = 2 * DELETE_ROUNDS;

/** libuv's pool: an exchange on every host socket at once, and room for file system work and namespace switches. */
export const POOL_THREADS = HOST_SOCKETS + 8;
