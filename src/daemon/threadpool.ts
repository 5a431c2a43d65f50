// Netlink exchanges run on libuv's thread pool, and a veth delete holds its
// thread ~20 ms in the kernel. With the default 4 threads, 16 concurrent
// Detaches would queue behind each other. This must run before anything uses
// the pool, so it is the daemon's first import.
process.env.UV_THREADPOOL_SIZE ??= "24";
export {};
