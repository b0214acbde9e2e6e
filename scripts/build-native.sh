#!/usr/bin/env bash
# Builds the native addon (build/Release/strata.node), the XDP object
# (bpf/strata_xdp.o) and, when present, the C benchmark reference (bench/c).
# Incremental: each step is skipped when its output is newer than its inputs.
# Without the toolchain (clang, libxdp-dev, libbpf-dev, node headers) it says
# so in one line and exits 0: the AF_XDP and TAP transports then report
# themselves unavailable at run time.
set -u
cd "$(dirname "$0")/.."

say() { printf 'build-native: %s\n' "$*"; }

missing=()
command -v clang >/dev/null 2>&1 || missing+=(clang)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v g++ >/dev/null 2>&1 || command -v c++ >/dev/null 2>&1 || missing+=(g++)
[ -f /usr/include/xdp/xsk.h ] || missing+=(libxdp-dev)
[ -f /usr/include/bpf/libbpf.h ] || missing+=(libbpf-dev)
if [ ${#missing[@]} -gt 0 ]; then
  say "skipped: missing ${missing[*]} (install them to enable the afxdp and tap transports)"
  exit 0
fi

# node-gyp: npm's bundled copy, wherever npm lives.
find_node_gyp() {
  local npm_bin npm_root c
  if npm_bin="$(command -v npm 2>/dev/null)"; then
    npm_bin="$(readlink -f "$npm_bin")"
    for c in "$(dirname "$npm_bin")/../node_modules/node-gyp/bin/node-gyp.js" \
             "$(dirname "$npm_bin")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"; do
      [ -f "$c" ] && { readlink -f "$c"; return 0; }
    done
  fi
  npm_root="$(npm root -g 2>/dev/null || true)"
  for c in "$npm_root/npm/node_modules/node-gyp/bin/node-gyp.js" "$npm_root/node-gyp/bin/node-gyp.js"; do
    [ -f "$c" ] && { echo "$c"; return 0; }
  done
  command -v node-gyp >/dev/null 2>&1 && { command -v node-gyp; return 0; }
  return 1
}

status=0

# 1. the XDP object
if make -q -C bpf >/dev/null 2>&1; then
  say "bpf/strata_xdp.o is up to date"
else
  say "compiling bpf/strata_xdp.o (clang -target bpf)"
  make -s -C bpf || { say "failed to compile the XDP program"; status=1; }
fi

# 2. the addon
addon=build/Release/strata.node
newer=$(find native binding.gyp -newer "$addon" 2>/dev/null | head -1)
if [ -f "$addon" ] && [ -z "$newer" ]; then
  say "$addon is up to date"
else
  if ! gyp="$(find_node_gyp)"; then
    say "skipped the addon: node-gyp not found (it ships with npm)"
  else
    nodedir_arg=()
    # Use the installed Node headers when present, so no download is needed.
    incdir="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node"
    [ -f "$incdir/node_api.h" ] && nodedir_arg=(--nodedir="$(dirname "$(dirname "$incdir")")")
    say "building $addon (node-gyp ${nodedir_arg[*]:-})"
    if [ -d build ] && [ -f build/config.gypi ]; then
      node "$gyp" build --loglevel=error "${nodedir_arg[@]}" >/tmp/strata-gyp.$$.log 2>&1 \
        || node "$gyp" rebuild --loglevel=error "${nodedir_arg[@]}" >/tmp/strata-gyp.$$.log 2>&1
    else
      node "$gyp" rebuild --loglevel=error "${nodedir_arg[@]}" >/tmp/strata-gyp.$$.log 2>&1
    fi
    if [ $? -ne 0 ]; then
      say "addon build failed; last lines:"
      grep -E 'error|Error' /tmp/strata-gyp.$$.log | head -20
      status=1
    fi
    rm -f /tmp/strata-gyp.$$.log
  fi
fi

# 3. the C benchmark reference (owned by the bench helper)
if [ -f bench/c/Makefile ]; then
  say "make -C bench/c"
  make -s -C bench/c || { say "bench/c build failed"; status=1; }
fi

exit $status
