#!/usr/bin/env bash
# Runs a command inside a private network namespace and a private mount
# namespace, so nothing it does can touch this machine's own network, and
# /run/netns (where `ip netns add` keeps its namespaces) is private to it.
set -euo pipefail
if [[ "${WORKLOADNET_SANDBOX:-}" == "1" ]]; then
  exec "$@"
fi
if [[ $EUID -ne 0 ]]; then
  echo "workloadnet: the sandbox needs root (network namespaces, veth pairs); run as root" >&2
  exit 1
fi
mkdir -p /run/netns
exec unshare --net --mount --propagation private -- bash -c '
  set -euo pipefail
  mount -t tmpfs -o mode=0755 workloadnet-sandbox /run/netns
  mkdir -p /run/workloadnet
  mount -t tmpfs -o mode=0755 workloadnet-sandbox /run/workloadnet
  ip link set lo up
  export WORKLOADNET_SANDBOX=1
  exec "$@"
' workloadnet-sandbox "$@"
