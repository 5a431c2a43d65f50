// Kernel notifications on a socket watched by the event loop (netlink_monitor.c).
#ifndef WORKLOADNET_NETLINK_MONITOR_H
#define WORKLOADNET_NETLINK_MONITOR_H
#include <node_api.h>

napi_status monitor_define(napi_env env, napi_value exports);

// An Error shaped like Node's system errors (netlink_socket.c).
napi_value errno_error(napi_env env, int err, const char *syscall);

#endif
