#!/usr/bin/env bash
# Brings a fresh Debian 12 machine (as root) to the point where strata runs:
# Debian packages, npm dependencies, the native addon, the BPF object and the
# TypeScript build. Idempotent and incremental; it says what it does. Without
# root it installs nothing and says what is missing; the transports that need
# the missing pieces then report themselves unavailable.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "setup: $*"; }

PKGS=(clang llvm libbpf-dev libxdp-dev xdp-tools bpftool pkg-config make g++ libssl-dev iproute2 ethtool
      iputils-ping wrk curl tcpdump openssl iptables nginx-light netcat-openbsd util-linux procps)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then missing+=("$p"); fi
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "WARNING: missing Debian packages (need root to install): ${missing[*]}"
  fi
else
  say "Debian packages present"
fi

# Native dependencies (the addon, re2) build against the Node headers Debian
# installs, never headers downloaded at install time (no network but the registries).
if [[ -z "${npm_config_nodedir:-}" && -f /usr/include/node/node.h ]]; then export npm_config_nodedir=/usr; fi

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
else
  say "npm dependencies present"
fi

# The addon, the BPF object and the C benchmark programs (incremental).
bash scripts/build-native.sh

say "compiling TypeScript"
npx tsc -p tsconfig.json

if [[ $(id -u) -eq 0 ]] && ! mountpoint -q /sys/fs/bpf 2>/dev/null; then
  say "mounting bpffs at /sys/fs/bpf"
  mount -t bpf bpf /sys/fs/bpf || say "WARNING: could not mount bpffs; AF_XDP will be unavailable"
fi
say "ready"
