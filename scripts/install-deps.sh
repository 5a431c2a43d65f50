#!/usr/bin/env bash
# Installs everything workloadnet needs on a fresh Debian machine (run as root):
# the Debian packages the daemon, its tests and its demo use, then the npm
# dependencies (which also builds the native addon and the CNI plugin).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $EUID -ne 0 ]]; then
  echo "install-deps: run as root (it installs Debian packages)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
packages=(
  iproute2 util-linux iputils-ping   # the sandbox, the tests' witness, pings between pods
  g++ make python3                    # native addon and CNI plugin (node-gyp)
  podman runc busybox-static          # the end-to-end test with a real runtime
  containernetworking-plugins         # ptp + host-local, the benchmark's baseline
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
npm ci
