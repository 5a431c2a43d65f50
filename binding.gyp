{
  "targets": [
    {
      "target_name": "workloadnet_native",
      "sources": ["native/netlink_socket.c", "native/netlink_monitor.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "workloadnet_nftables",
      "sources": ["native/nftables.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lnftables"]
    },
    {
      "target_name": "workloadnet-cni",
      "type": "executable",
      "sources": ["native/cni/workloadnet-cni.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"],
      "ldflags": ["-static"]
    }
  ]
}
