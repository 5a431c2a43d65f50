// A NETLINK_ROUTE socket that listens to the kernel's notifications (e.g. a
// link was deleted) in the daemon's own namespace. It is watched by libuv's
// event loop, so notifications reach JavaScript without a thread of their
// own: each time the socket is readable, every queued datagram is read and
// handed to the callback in one buffer. Which groups it listens to can change
// at any time (join/leave), so it costs nothing while nobody needs it, and a
// filter in the kernel may keep all but one message type out.
#define _GNU_SOURCE
#include "netlink_monitor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

// Delivered in pieces of about this size, so one burst cannot build a huge buffer.
#define DELIVER_BYTES (256 * 1024)

struct monitor {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int fd;
  int closed;
  int joined;  // groups joined: the handle keeps the loop alive while > 0
};

static void deliver(struct monitor *m, const char *data, size_t len, int err) {
  napi_env env = m->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[2];
  // make_callback needs an object as the receiver.
  if (napi_get_reference_value(env, m->callback, &cb) == napi_ok && cb != NULL &&
      napi_get_global(env, &recv) == napi_ok) {
    void *copy;
    if (len > 0) {
      if (napi_create_buffer_copy(env, len, data, &copy, &argv[0]) != napi_ok) napi_get_null(env, &argv[0]);
    } else {
      napi_get_null(env, &argv[0]);
    }
    napi_create_int32(env, err, &argv[1]);
    // make_callback: promises resolved by the callback settle before we return to the loop.
    napi_value ignored;
    napi_make_callback(env, m->context, recv, cb, 2, argv, &ignored);
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  (void)events;
  struct monitor *m = poll->data;
  if (m->closed) return;
  if (status < 0) {
    deliver(m, NULL, 0, -status);
    return;
  }
  char *acc = malloc(DELIVER_BYTES + 65536);
  if (acc == NULL) {
    deliver(m, NULL, 0, ENOMEM);
    return;
  }
  size_t len = 0;
  for (;;) {
    ssize_t n = recv(m->fd, acc + len, 65536, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // ENOBUFS: the kernel dropped notifications; say so, then keep reading.
      int err = errno;
      if (len > 0) deliver(m, acc, len, 0);
      len = 0;
      deliver(m, NULL, 0, err);
      if (m->closed || err != ENOBUFS) break;
      continue;
    }
    if (n == 0) break;
    len += (size_t)n;
    if (len >= DELIVER_BYTES) {
      deliver(m, acc, len, 0);
      len = 0;
      if (m->closed) break;
    }
  }
  if (len > 0 && !m->closed) deliver(m, acc, len, 0);
  free(acc);
}

static void on_closed(uv_handle_t *handle) {
  struct monitor *m = handle->data;
  free(m);
}

static void release_js(struct monitor *m) {
  if (m->callback) napi_delete_reference(m->env, m->callback);
  if (m->context) napi_async_destroy(m->env, m->context);
  m->callback = NULL;
  m->context = NULL;
}

static struct monitor *unwrap(napi_env env, napi_value value) {
  void *data = NULL;
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external ||
      napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "not a monitor");
    return NULL;
  }
  struct monitor *m = data;
  if (m->closed) {
    napi_throw_error(env, NULL, "monitor is closed");
    return NULL;
  }
  return m;
}

// Lets through only datagrams whose (first) message is of this type: the
// kernel then drops the rest before they are queued, and they never wake the
// event loop. rtnetlink sends each notification in a datagram of its own.
static int accept_only(int fd, uint16_t nlmsg_type) {
  struct sock_filter code[] = {
      // Classic BPF loads in network byte order; nlmsg_type is in host order.
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, offsetof(struct nlmsghdr, nlmsg_type)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htons(nlmsg_type), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
}

// openMonitor(onData(data: Buffer | null, errno: number), onlyType?: number): external
static napi_value open_monitor(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name, result;
  napi_valuetype type, type2 = napi_undefined;
  uint32_t only_type = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_typeof(env, argv[0], &type) != napi_ok || type != napi_function ||
      (argc > 1 && napi_typeof(env, argv[1], &type2) != napi_ok) ||
      (type2 != napi_undefined &&
       (napi_get_value_uint32(env, argv[1], &only_type) != napi_ok || only_type < 1 || only_type > 0xffff))) {
    napi_throw_type_error(env, NULL, "openMonitor(onData: function, onlyType?: 1..65535)");
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    napi_throw_error(env, NULL, "openMonitor: no event loop");
    return NULL;
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) {
    napi_throw(env, errno_error(env, errno, "socket"));
    return NULL;
  }
  int bufsize = 4 << 20;
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize) < 0 ||
      bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
    int err = errno;
    close(fd);
    napi_throw(env, errno_error(env, err, "bind"));
    return NULL;
  }
  if (only_type != 0 && accept_only(fd, (uint16_t)only_type) < 0) {
    int err = errno;
    close(fd);
    napi_throw(env, errno_error(env, err, "setsockopt SO_ATTACH_FILTER"));
    return NULL;
  }
  struct monitor *m = calloc(1, sizeof *m);
  if (m == NULL) {
    close(fd);
    napi_throw(env, errno_error(env, ENOMEM, "calloc"));
    return NULL;
  }
  m->env = env;
  m->fd = fd;
  m->poll.data = m;
  if (napi_create_reference(env, argv[0], 1, &m->callback) != napi_ok ||
      napi_create_string_utf8(env, "netlinkMonitor", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &m->context) != napi_ok ||
      napi_create_external(env, m, NULL, NULL, &result) != napi_ok) {
    release_js(m);
    close(fd);
    free(m);
    napi_throw_error(env, NULL, "openMonitor: N-API call failed");
    return NULL;
  }
  int rc = uv_poll_init(loop, &m->poll, fd);
  if (rc != 0) {
    release_js(m);
    close(fd);
    free(m);
    napi_throw(env, errno_error(env, -rc, "uv_poll_init"));
    return NULL;
  }
  rc = uv_poll_start(&m->poll, UV_READABLE, on_readable);
  if (rc != 0) {
    release_js(m);
    close(fd);
    m->closed = 1;
    uv_close((uv_handle_t *)&m->poll, on_closed);  // frees m
    napi_throw(env, errno_error(env, -rc, "uv_poll_start"));
    return NULL;
  }
  // Listening to nothing, the monitor does not keep the process alive.
  uv_unref((uv_handle_t *)&m->poll);
  return result;
}

static napi_value membership(napi_env env, napi_callback_info info, int option, const char *usage) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t group;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[1], &group) != napi_ok || group < 1) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  struct monitor *m = unwrap(env, argv[0]);
  if (m == NULL) return NULL;
  if (setsockopt(m->fd, SOL_NETLINK, option, &group, sizeof group) < 0) {
    napi_throw(env, errno_error(env, errno, "setsockopt"));
    return NULL;
  }
  // Someone waits for a notification while a group is joined: that keeps the process alive.
  if (option == NETLINK_ADD_MEMBERSHIP) m->joined++;
  else if (m->joined > 0) m->joined--;
  if (m->joined > 0) uv_ref((uv_handle_t *)&m->poll);
  else uv_unref((uv_handle_t *)&m->poll);
  return NULL;
}

// monitorJoin(monitor, group): start receiving the group's notifications.
static napi_value monitor_join(napi_env env, napi_callback_info info) {
  return membership(env, info, NETLINK_ADD_MEMBERSHIP, "monitorJoin(monitor, group >= 1)");
}

// monitorLeave(monitor, group)
static napi_value monitor_leave(napi_env env, napi_callback_info info) {
  return membership(env, info, NETLINK_DROP_MEMBERSHIP, "monitorLeave(monitor, group >= 1)");
}

// monitorClose(monitor): stops watching and closes the socket; idempotent.
static napi_value monitor_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "monitorClose(monitor)");
    return NULL;
  }
  struct monitor *m = data;
  if (m->closed) return NULL;
  m->closed = 1;
  uv_poll_stop(&m->poll);
  close(m->fd);
  release_js(m);
  uv_close((uv_handle_t *)&m->poll, on_closed);
  return NULL;
}

napi_status monitor_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"openMonitor", NULL, open_monitor, NULL, NULL, NULL, napi_default, NULL},
      {"monitorJoin", NULL, monitor_join, NULL, NULL, NULL, napi_default, NULL},
      {"monitorLeave", NULL, monitor_leave, NULL, NULL, NULL, napi_default, NULL},
      {"monitorClose", NULL, monitor_close, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
