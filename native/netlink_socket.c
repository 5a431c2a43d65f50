// The only native code of the netlink module: open a NETLINK_ROUTE socket
// inside a given network namespace, and run one request/response exchange on
// a worker thread. Everything protocol-specific (message layout, attributes,
// error payloads) lives in TypeScript; this file only needs nlmsghdr.type to
// know when the kernel has finished answering. Besides, for the server's access
// check: the credentials of a unix socket's peer (SO_PEERCRED, SO_PEERGROUPS);
// and for the daemon once idle, handing the C heap's free pages back.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <node_api.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "netlink_monitor.h"
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

// A kernel that never answers must not pin a worker thread forever.
#define RECV_TIMEOUT_SEC 30

#define CHECK_NAPI(env, call)                                   \
  do {                                                          \
    if ((call) != napi_ok) {                                    \
      napi_throw_error((env), NULL, "N-API call failed: " #call); \
      return NULL;                                              \
    }                                                           \
  } while (0)

// Builds an Error shaped like Node's system errors: code, errno, syscall.
napi_value errno_error(napi_env env, int err, const char *syscall) {
  const char *name = strerrorname_np(err);
  if (name == NULL) name = "EUNKNOWN";
  char msg[256];
  snprintf(msg, sizeof msg, "%s %s: %s", syscall, name, strerror(err));
  napi_value code, message, error, errno_value, syscall_value;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, -err, &errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  return error;
}

static int get_int32_arg(napi_env env, napi_value value, int32_t *out) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number) return -1;
  return napi_get_value_int32(env, value, out) == napi_ok ? 0 : -1;
}

// Reads the only argument, an integer >= min; throws a TypeError with `usage` otherwise.
static bool int_arg(napi_env env, napi_callback_info info, const char *usage, int32_t min, int32_t *out) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      get_int32_arg(env, argv[0], out) < 0 || *out < min) {
    napi_throw_type_error(env, NULL, usage);
    return false;
  }
  return true;
}

// Starts `execute` on a worker thread of libuv's pool, `complete` after it on
// this one, and gives the promise they settle. False (the work not queued,
// `data` still the caller's to free) when N-API refuses.
static bool queue_promised_work(napi_env env, const char *name, napi_async_execute_callback execute, napi_async_complete_callback complete,
                                void *data, napi_deferred *deferred, napi_async_work *work, napi_value *promise) {
  napi_value name_value;
  *work = NULL;
  if (napi_create_promise(env, deferred, promise) != napi_ok ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &name_value) != napi_ok ||
      napi_create_async_work(env, NULL, name_value, execute, complete, data, work) != napi_ok) {
    return false;
  }
  if (napi_queue_async_work(env, *work) != napi_ok) {
    napi_delete_async_work(env, *work);
    *work = NULL;
    return false;
  }
  return true;
}

// ---- opening a socket inside a namespace ---------------------------------

struct open_job {
  int ns_fd;
  int fd;
  int err;
  const char *syscall;
};

static int configure_socket(int fd, const char **syscall) {
  int one = 1;
  int bufsize = 1 << 20;
  struct timeval tv = {.tv_sec = RECV_TIMEOUT_SEC, .tv_usec = 0};
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  // Extended acks carry the kernel's own explanation of a refusal; capped
  // acks keep error replies from echoing our whole request back.
  if (setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one) < 0 ||
      setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one) < 0) {
    *syscall = "setsockopt";
    return -1;
  }
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) {
    *syscall = "setsockopt";
    return -1;
  }
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
    *syscall = "bind";
    return -1;
  }
  return 0;
}

// The daemon's own network namespace, opened when the addon loads (before any
// thread has switched): where every switch returns to.
static int home_netns_fd = -1;

// Opens the socket inside job->ns_fd's namespace on the calling thread:
// switch in, open, switch back. Thread creation would cost more than the
// switches (on VMs, tens of microseconds plus cross-CPU interrupts when the
// thread's stack is unmapped). A thread that cannot switch back must not run
// on in the pod's namespace; so the process aborts (a restart rebuilds its
// state from the kernel). Switching back needs only a small allocation.
static void open_in_namespace(struct open_job *job) {
  if (job->ns_fd >= 0) {
    if (home_netns_fd < 0) {
      job->err = EBADF;
      job->syscall = "open /proc/thread-self/ns/net";
      return;
    }
    if (setns(job->ns_fd, CLONE_NEWNET) < 0) {
      job->err = errno;
      job->syscall = "setns";
      return;
    }
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    job->err = errno;
    job->syscall = "socket";
  } else if (configure_socket(fd, &job->syscall) < 0) {
    job->err = errno;
    close(fd);
  } else {
    job->fd = fd;
  }
  if (job->ns_fd >= 0) {
    int tries = 0;
    while (setns(home_netns_fd, CLONE_NEWNET) < 0) {
      if (++tries == 3) {
        fprintf(stderr, "workloadnet: cannot return a thread to the daemon's network namespace (setns: %s); aborting\n", strerror(errno));
        abort();
      }
    }
  }
}

// openSocket(nsFd: number): number. nsFd < 0 means the daemon's own namespace.
static napi_value open_socket(napi_env env, napi_callback_info info) {
  int32_t ns_fd;
  if (!int_arg(env, info, "openSocket(nsFd): nsFd must be an integer (-1: our own namespace)", -1, &ns_fd)) return NULL;
  struct open_job job = {.ns_fd = ns_fd, .fd = -1, .err = 0, .syscall = NULL};
  open_in_namespace(&job);
  if (job.fd < 0) {
    napi_throw(env, errno_error(env, job.err, job.syscall));
    return NULL;
  }
  napi_value result;
  CHECK_NAPI(env, napi_create_int32(env, job.fd, &result));
  return result;
}

struct open_async {
  napi_async_work work;
  napi_deferred deferred;
  struct open_job job;
};

static void open_async_execute(napi_env env, void *data) {
  (void)env;
  open_in_namespace(&((struct open_async *)data)->job);
}

static void open_async_complete(napi_env env, napi_status status, void *data) {
  struct open_async *op = data;
  napi_value result;
  if (status != napi_ok) {
    napi_value message;
    napi_create_string_utf8(env, "opening a netlink socket was cancelled", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    napi_reject_deferred(env, op->deferred, result);
  } else if (op->job.fd < 0) {
    napi_reject_deferred(env, op->deferred, errno_error(env, op->job.err, op->job.syscall));
  } else if (napi_create_int32(env, op->job.fd, &result) != napi_ok) {
    close(op->job.fd);
    napi_reject_deferred(env, op->deferred, errno_error(env, ENOMEM, "napi_create_int32"));
  } else {
    napi_resolve_deferred(env, op->deferred, result);
  }
  napi_delete_async_work(env, op->work);
  free(op);
}

// openSocketAsync(nsFd): Promise<number>. Same as openSocket, on a worker
// thread of libuv's pool.
static napi_value open_socket_async(napi_env env, napi_callback_info info) {
  int32_t ns_fd;
  if (!int_arg(env, info, "openSocketAsync(nsFd): nsFd must be an integer (-1: our own namespace)", -1, &ns_fd)) return NULL;
  struct open_async *op = calloc(1, sizeof *op);
  if (op == NULL) {
    napi_throw(env, errno_error(env, ENOMEM, "calloc"));
    return NULL;
  }
  op->job = (struct open_job){.ns_fd = ns_fd, .fd = -1, .err = 0, .syscall = NULL};
  napi_value promise;
  if (!queue_promised_work(env, "netlinkOpen", open_async_execute, open_async_complete, op, &op->deferred, &op->work, &promise)) {
    free(op);
    napi_throw_error(env, NULL, "openSocketAsync: could not queue work");
    return NULL;
  }
  return promise;
}

// newNetns(): number. A new, empty network namespace, as an fd (O_CLOEXEC);
// it lives as long as something holds it (this fd, a netlink socket opened in
// it). Made on the calling thread: unshare into it, open it, switch back, as
// open_in_namespace does; a thread that cannot switch back aborts the process.
static napi_value new_netns(napi_env env, napi_callback_info info) {
  (void)info;
  if (home_netns_fd < 0) {
    napi_throw(env, errno_error(env, EBADF, "open /proc/thread-self/ns/net"));
    return NULL;
  }
  if (unshare(CLONE_NEWNET) < 0) {
    napi_throw(env, errno_error(env, errno, "unshare(CLONE_NEWNET)"));
    return NULL;
  }
  int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int open_err = errno;
  int tries = 0;
  while (setns(home_netns_fd, CLONE_NEWNET) < 0) {
    if (++tries == 3) {
      fprintf(stderr, "workloadnet: cannot return a thread to the daemon's network namespace (setns: %s); aborting\n", strerror(errno));
      abort();
    }
  }
  if (fd < 0) {
    napi_throw(env, errno_error(env, open_err, "open /proc/thread-self/ns/net"));
    return NULL;
  }
  napi_value result;
  CHECK_NAPI(env, napi_create_int32(env, fd, &result));
  return result;
}

// openNetfilterSocket(): number. A NETLINK_NETFILTER socket in the daemon's
// own namespace (conntrack: flushing the entries of removed port mappings),
// set up like the route sockets.
static napi_value open_netfilter_socket(napi_env env, napi_callback_info info) {
  (void)info;
  const char *syscall = "socket";
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0 || configure_socket(fd, &syscall) < 0) {
    int err = errno;
    if (fd >= 0) close(fd);
    napi_throw(env, errno_error(env, err, syscall));
    return NULL;
  }
  napi_value result;
  CHECK_NAPI(env, napi_create_int32(env, fd, &result));
  return result;
}

// nsType(fd): number, the CLONE_NEW* constant of the namespace fd refers to.
static napi_value ns_type(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!int_arg(env, info, "nsType(fd): fd must be a non-negative number", 0, &fd)) return NULL;
  int type = ioctl(fd, NS_GET_NSTYPE);
  if (type < 0) {
    napi_throw(env, errno_error(env, errno, "ioctl(NS_GET_NSTYPE)"));
    return NULL;
  }
  napi_value result;
  CHECK_NAPI(env, napi_create_int32(env, type, &result));
  return result;
}

// ---- credentials of a unix socket's peer -----------------------------------

// peerCred(fd): {pid, uid, gid} of the process that connected the unix socket
// fd, as the kernel recorded them at connect() (SO_PEERCRED).
static napi_value peer_cred(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!int_arg(env, info, "peerCred(fd): fd must be a non-negative number", 0, &fd)) return NULL;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    napi_throw(env, errno_error(env, errno, "getsockopt(SO_PEERCRED)"));
    return NULL;
  }
  napi_value result, pid, uid, gid;
  CHECK_NAPI(env, napi_create_object(env, &result));
  CHECK_NAPI(env, napi_create_int32(env, cred.pid, &pid));
  CHECK_NAPI(env, napi_create_uint32(env, cred.uid, &uid));
  CHECK_NAPI(env, napi_create_uint32(env, cred.gid, &gid));
  CHECK_NAPI(env, napi_set_named_property(env, result, "pid", pid));
  CHECK_NAPI(env, napi_set_named_property(env, result, "uid", uid));
  CHECK_NAPI(env, napi_set_named_property(env, result, "gid", gid));
  return result;
}

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

// peerGroups(fd): number[], the supplementary groups of the peer at connect()
// (SO_PEERGROUPS, Linux 4.13+). Throws ENOPROTOOPT where the kernel lacks it.
static napi_value peer_groups(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!int_arg(env, info, "peerGroups(fd): fd must be a non-negative number", 0, &fd)) return NULL;
  gid_t small[64];
  gid_t *groups = small;
  socklen_t len = sizeof small;
  int rc = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len);
  if (rc < 0 && errno == ERANGE) {
    // len now holds the size needed (at most NGROUPS_MAX = 65536 entries).
    groups = malloc(len);
    if (groups == NULL) {
      napi_throw(env, errno_error(env, ENOMEM, "malloc"));
      return NULL;
    }
    rc = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len);
  }
  if (rc < 0) {
    int err = errno;
    if (groups != small) free(groups);
    napi_throw(env, errno_error(env, err, "getsockopt(SO_PEERGROUPS)"));
    return NULL;
  }
  size_t count = len / sizeof(gid_t);
  napi_value result = NULL;
  napi_status st = napi_create_array_with_length(env, count, &result);
  for (size_t i = 0; st == napi_ok && i < count; i++) {
    napi_value gid;
    st = napi_create_uint32(env, groups[i], &gid);
    if (st == napi_ok) st = napi_set_element(env, result, (uint32_t)i, gid);
  }
  if (groups != small) free(groups);
  if (st != napi_ok) {
    napi_throw_error(env, NULL, "peerGroups: cannot build the result");
    return NULL;
  }
  return result;
}

// releaseFreeMemory(): Promise<boolean>, true when glibc gave pages back to
// the kernel. free() returns only the top of a malloc heap, so after a burst
// of calls the pages freed inside the heaps (V8's compiler zones, Buffers,
// netlink replies) stay in the process, in every arena that libuv's and V8's
// threads allocated from; malloc_trim(0) releases each whole free page there
// (madvise). It takes ~20 ms here, so it runs on a worker thread of libuv's
// pool: the main thread waits only if it mallocs from the arena being
// trimmed at that moment. Without glibc it does nothing.
struct release_job {
  napi_async_work work;
  napi_deferred deferred;
  bool released;
};

static void release_execute(napi_env env, void *data) {
  (void)env;
  struct release_job *job = data;
#ifdef __GLIBC__
  job->released = malloc_trim(0) == 1;
#else
  job->released = false;
#endif
}

static void release_complete(napi_env env, napi_status status, void *data) {
  struct release_job *job = data;
  napi_value result;
  if (napi_get_boolean(env, status == napi_ok && job->released, &result) == napi_ok) napi_resolve_deferred(env, job->deferred, result);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value release_free_memory(napi_env env, napi_callback_info info) {
  (void)info;
  struct release_job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw(env, errno_error(env, ENOMEM, "calloc"));
    return NULL;
  }
  napi_value promise;
  if (!queue_promised_work(env, "releaseFreeMemory", release_execute, release_complete, job, &job->deferred, &job->work, &promise)) {
    free(job);
    napi_throw_error(env, NULL, "releaseFreeMemory: could not queue work");
    return NULL;
  }
  return promise;
}

// ---- one exchange on a worker thread --------------------------------------

struct exchange {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref request_ref;
  int fd;
  const char *request;
  size_t request_len;
  uint32_t terminals;  // NLMSG_ERROR / NLMSG_DONE messages that end the exchange
  bool acks_only;      // every reply is an acknowledgement (see receive_acks)
  char *reply;
  size_t reply_len;
  size_t reply_cap;
  int err;
  const char *syscall;
};

static int append_reply(struct exchange *ex, const char *data, size_t len) {
  if (ex->reply_len + len > ex->reply_cap) {
    size_t cap = ex->reply_cap ? ex->reply_cap : 4096;
    while (cap < ex->reply_len + len) cap *= 2;
    char *grown = realloc(ex->reply, cap);
    if (grown == NULL) return -1;
    ex->reply = grown;
    ex->reply_cap = cap;
  }
  memcpy(ex->reply + ex->reply_len, data, len);
  ex->reply_len += len;
  return 0;
}

static uint32_t count_terminals(const char *data, size_t len) {
  uint32_t count = 0;
  size_t off = 0;
  while (off + sizeof(struct nlmsghdr) <= len) {
    const struct nlmsghdr *h = (const struct nlmsghdr *)(data + off);
    if (h->nlmsg_len < sizeof(struct nlmsghdr) || off + h->nlmsg_len > len) break;
    if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) count++;
    off += NLMSG_ALIGN(h->nlmsg_len);
  }
  return count;
}

// Acknowledgements are small, one datagram each, and all queued by the time
// sendto returns. Reading them several per recvmmsg saves the two system
// calls per datagram of the general loop below (a size peek, then the read):
// a pod's batch has a dozen requests.
#define ACK_SLOTS 16
#define ACK_SLOT_BYTES 2048  // an acknowledgement with CAP_ACK and an extack message is a few hundred bytes

static void receive_acks(struct exchange *ex) {
  // On the stack: a heap buffer this size is trimmed and faulted in again on every exchange.
  char slots[ACK_SLOTS][ACK_SLOT_BYTES];
  struct mmsghdr msgs[ACK_SLOTS];
  struct iovec iov[ACK_SLOTS];
  uint32_t seen = 0;
  while (seen < ex->terminals) {
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < ACK_SLOTS; i++) {
      iov[i].iov_base = slots[i];
      iov[i].iov_len = ACK_SLOT_BYTES;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // Waits (up to the socket's receive timeout) for the first, takes what else is queued.
    int n = recvmmsg(ex->fd, msgs, ACK_SLOTS, MSG_WAITFORONE, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      ex->err = errno;
      ex->syscall = "recvmmsg";
      return;
    }
    for (int i = 0; i < n; i++) {
      if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        // Not an acknowledgement of ours (e.g. the rest of an abandoned dump): say so, lose nothing silently.
        ex->err = EMSGSIZE;
        ex->syscall = "recvmmsg";
        return;
      }
      if (append_reply(ex, slots[i], msgs[i].msg_len) < 0) {
        ex->err = ENOMEM;
        ex->syscall = "realloc";
        return;
      }
      seen += count_terminals(slots[i], msgs[i].msg_len);
    }
  }
}

static void exchange_execute(napi_env env, void *data) {
  (void)env;
  struct exchange *ex = data;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  size_t sent = 0;
  while (sent < ex->request_len) {
    // Each sendto carries whole messages: the caller hands us one batch.
    ssize_t n = sendto(ex->fd, ex->request + sent, ex->request_len - sent, 0,
                       (struct sockaddr *)&kernel, sizeof kernel);
    if (n < 0) {
      if (errno == EINTR) continue;
      ex->err = errno;
      ex->syscall = "sendto";
      return;
    }
    sent += (size_t)n;
  }
  if (ex->acks_only) {
    receive_acks(ex);
    return;
  }
  uint32_t seen = 0;
  char *buf = NULL;
  size_t buf_cap = 0;
  while (seen < ex->terminals) {
    // Peek at the datagram's real size first so a large dump part never truncates.
    ssize_t size = recv(ex->fd, NULL, 0, MSG_PEEK | MSG_TRUNC);
    if (size < 0) {
      if (errno == EINTR) continue;
      ex->err = errno;
      ex->syscall = "recv";
      break;
    }
    if ((size_t)size > buf_cap || buf == NULL) {
      buf_cap = (size_t)size > 65536 ? (size_t)size : 65536;
      free(buf);
      buf = malloc(buf_cap);
      if (buf == NULL) {
        ex->err = ENOMEM;
        ex->syscall = "malloc";
        break;
      }
    }
    ssize_t n = recv(ex->fd, buf, buf_cap, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      ex->err = errno;
      ex->syscall = "recv";
      break;
    }
    if (append_reply(ex, buf, (size_t)n) < 0) {
      ex->err = ENOMEM;
      ex->syscall = "realloc";
      break;
    }
    seen += count_terminals(buf, (size_t)n);
  }
  free(buf);
}

static void exchange_free(napi_env env, struct exchange *ex) {
  if (ex->request_ref) napi_delete_reference(env, ex->request_ref);
  if (ex->work) napi_delete_async_work(env, ex->work);
  free(ex->reply);
  free(ex);
}

static void exchange_complete(napi_env env, napi_status status, void *data) {
  struct exchange *ex = data;
  if (status != napi_ok) {
    napi_value error;
    napi_value message;
    napi_create_string_utf8(env, "netlink exchange cancelled", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
    napi_reject_deferred(env, ex->deferred, error);
  } else if (ex->err != 0) {
    napi_reject_deferred(env, ex->deferred, errno_error(env, ex->err, ex->syscall));
  } else {
    napi_value result;
    void *copy;
    if (napi_create_buffer_copy(env, ex->reply_len, ex->reply ? ex->reply : "", &copy,
                                &result) != napi_ok) {
      napi_reject_deferred(env, ex->deferred, errno_error(env, ENOMEM, "napi_create_buffer_copy"));
    } else {
      napi_resolve_deferred(env, ex->deferred, result);
    }
  }
  exchange_free(env, ex);
}

// The arguments both exchange entry points take: (fd, request: Buffer,
// terminals >= 1, acksOnly?: boolean). On a bad one it throws a TypeError
// naming `usage` and returns false.
static bool exchange_args(napi_env env, napi_callback_info info, const char *usage, struct exchange *ex,
                          napi_value *request_value) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t fd, terminals;
  bool is_buffer = false, acks_only = false;
  void *request = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      get_int32_arg(env, argv[0], &fd) < 0 || napi_is_buffer(env, argv[1], &is_buffer) != napi_ok ||
      !is_buffer || get_int32_arg(env, argv[2], &terminals) < 0 || terminals < 1 ||
      (argc > 3 && napi_get_value_bool(env, argv[3], &acks_only) != napi_ok) ||
      napi_get_buffer_info(env, argv[1], &request, &ex->request_len) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return false;
  }
  ex->acks_only = acks_only;
  ex->fd = fd;
  ex->terminals = (uint32_t)terminals;
  ex->request = request;
  *request_value = argv[1];
  return true;
}

// exchange(fd, request: Buffer, terminals: number, acksOnly?: boolean): Promise<Buffer>
// Sends the request and collects every reply datagram until `terminals`
// NLMSG_ERROR/NLMSG_DONE messages have arrived. Runs off the main thread: the
// kernel can block the sender for tens of milliseconds (e.g. a veth delete
// waits for an RCU grace period).
static napi_value exchange(napi_env env, napi_callback_info info) {
  struct exchange *ex = calloc(1, sizeof *ex);
  if (ex == NULL) {
    napi_throw(env, errno_error(env, ENOMEM, "calloc"));
    return NULL;
  }
  napi_value request, promise;
  if (!exchange_args(env, info, "exchange(fd, request: Buffer, terminals >= 1, acksOnly?: boolean)", ex, &request)) {
    exchange_free(env, ex);
    return NULL;
  }
  // The reference keeps the buffer alive until the exchange completes.
  if (napi_create_reference(env, request, 1, &ex->request_ref) != napi_ok ||
      !queue_promised_work(env, "netlinkExchange", exchange_execute, exchange_complete, ex, &ex->deferred, &ex->work, &promise)) {
    exchange_free(env, ex);
    napi_throw_error(env, NULL, "exchange: could not queue work");
    return NULL;
  }
  return promise;
}

// exchangeSync(fd, request: Buffer, terminals: number, acksOnly?: boolean): Buffer
// The same exchange on the calling thread, for requests the kernel answers
// at once: it saves the two thread handoffs of the pool (tens of
// microseconds each), but blocks the caller for as long as the kernel takes.
static napi_value exchange_sync(napi_env env, napi_callback_info info) {
  struct exchange ex = {0};
  napi_value request;
  if (!exchange_args(env, info, "exchangeSync(fd, request: Buffer, terminals >= 1, acksOnly?: boolean)", &ex, &request)) return NULL;
  exchange_execute(env, &ex);
  napi_value result = NULL;
  if (ex.err != 0) {
    napi_throw(env, errno_error(env, ex.err, ex.syscall));
  } else {
    void *copy;
    if (napi_create_buffer_copy(env, ex.reply_len, ex.reply ? ex.reply : "", &copy, &result) != napi_ok) {
      napi_throw(env, errno_error(env, ENOMEM, "napi_create_buffer_copy"));
      result = NULL;
    }
  }
  free(ex.reply);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  // Loaded on the main thread, before anything of ours has switched namespace.
  if (home_netns_fd < 0) home_netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  napi_property_descriptor props[] = {
      {"openSocket", NULL, open_socket, NULL, NULL, NULL, napi_default, NULL},
      {"openSocketAsync", NULL, open_socket_async, NULL, NULL, NULL, napi_default, NULL},
      {"openNetfilterSocket", NULL, open_netfilter_socket, NULL, NULL, NULL, napi_default, NULL},
      {"nsType", NULL, ns_type, NULL, NULL, NULL, napi_default, NULL},
      {"newNetns", NULL, new_netns, NULL, NULL, NULL, napi_default, NULL},
      {"exchange", NULL, exchange, NULL, NULL, NULL, napi_default, NULL},
      {"exchangeSync", NULL, exchange_sync, NULL, NULL, NULL, napi_default, NULL},
      {"peerCred", NULL, peer_cred, NULL, NULL, NULL, napi_default, NULL},
      {"peerGroups", NULL, peer_groups, NULL, NULL, NULL, napi_default, NULL},
      {"releaseFreeMemory", NULL, release_free_memory, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK_NAPI(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  CHECK_NAPI(env, monitor_define(env, exports));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
