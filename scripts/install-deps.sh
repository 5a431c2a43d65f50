#!/usr/bin/env bash
# Installs everything workloadnet needs on a fresh Debian machine (run as root):
# the Debian packages the daemon, its tests and its demo use, then the npm
# dependencies (which also builds the native addon and the CNI plugin) and,
# where the machine's Node.js is older than 24, a supported one.
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
  nftables libnftables-dev            # our table (the daemon links libnftables); nft for the tests
  conntrack iptables                  # the tests: conntrack entries, iptables-nft rules that must stay untouched
  openssl                             # certificates for the Kubernetes API stand-in
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
# The project runs on a supported Node.js LTS (24 or later). Where the
# machine's is older, npm brings the pinned one from the npm registry as an
# optional dependency (node-linux-<arch>); npm puts it first on the PATH of
# every npm script, so `npm test` and `npm run demo` run on it.
machine_node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if (( machine_node_major >= 24 )); then
  npm ci --omit=optional
else
  echo "install-deps: Node.js $(node --version 2>/dev/null || echo none) is older than 24; installing Node.js 24 into node_modules" >&2
  npm ci
fi
