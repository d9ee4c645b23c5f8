#!/bin/sh
# Build saturate's native gRPC sender (loadgen/clients/_cgrpc*.c) for the venv's Python:
#   usage: tools/build_native.sh VENV          (make native; make test, make integration run it)
# Needs gRPC's C core headers (Debian libgrpc-dev, installed via apt when missing and root or
# passwordless sudo is there), a C compiler and the interpreter's Python.h (Debian python3-dev for a
# system Python). Output: loadgen/clients/_cgrpc<EXT_SUFFIX>, next to its source (git-ignored).
# Without it saturate still runs: the threaded driver then sends through grpcio, and each level's
# client.sender says which one ran. Idempotent: an extension newer than its sources that imports
# returns at once. Any failure is one line on stderr and exit 1.
set -u
VENV=${1:-.venv}
PY="$VENV/bin/python"
SRC=loadgen/clients/_cgrpc.c
SOURCES="$SRC loadgen/clients/_cgrpc_loops.c loadgen/clients/_cgrpc_sync.c loadgen/clients/_cgrpc_open.c"
DEPS="$SOURCES loadgen/clients/_cgrpc.h"
fail() { echo "native: $*" >&2; exit 1; }

[ -x "$PY" ] || fail "no Python at $PY; create the venv first (make $VENV/.installed)"
[ -f "$SRC" ] || fail "run from the repository root ($SRC not found)"
SUFFIX=$("$PY" -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))") || fail "cannot ask $PY for its extension suffix"
OUT="loadgen/clients/_cgrpc$SUFFIX"
loads() { "$PY" -c "from loadgen.clients import _cgrpc; print(_cgrpc.GRPC_VERSION)" 2>/dev/null; }
newer() { for f in $DEPS; do [ "$OUT" -nt "$f" ] || return 1; done; }
if [ -f "$OUT" ] && newer && V=$(loads); then
    echo "native: gRPC sender already built ($OUT, gRPC core $V)"
    exit 0
fi

apt_install() {
    if [ "$(id -u)" = 0 ]; then SUDO=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"
    else fail "needs $*: run 'sudo apt-get install $*' (no root here for apt), then rerun"
    fi
    command -v apt-get >/dev/null 2>&1 || fail "needs $* and there is no apt-get: install gRPC's C core headers yourself"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q "$@" >/dev/null 2>&1 \
        || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q "$@" >/dev/null 2>&1; } \
        || fail "apt-get could not install $* (no package index or registry reachable?)"
}

command -v pkg-config >/dev/null 2>&1 && pkg-config --exists grpc || apt_install libgrpc-dev pkg-config
pkg-config --exists grpc || fail "libgrpc-dev installed but pkg-config does not find grpc"
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || apt_install gcc
INCLUDE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
[ -f "$INCLUDE/Python.h" ] || apt_install python3-dev
[ -f "$INCLUDE/Python.h" ] || fail "no Python.h in $INCLUDE: install the headers of $("$PY" -c 'import sys; print(sys.executable)')"

# shellcheck disable=SC2046  # pkg-config's flags are meant to split
"$CC" -O2 -shared -fPIC -fvisibility=hidden -Wall -I"$INCLUDE" $SOURCES -o "$OUT.tmp" $(pkg-config --cflags --libs grpc) \
    >"$OUT.log" 2>&1 || fail "the compiler failed ($OUT.log): $(grep -m1 error "$OUT.log")"
rm -f "$OUT.log"
mv "$OUT.tmp" "$OUT" || fail "could not write $OUT"
V=$(loads) || fail "built $OUT but it does not import: $("$PY" -c 'from loadgen.clients import _cgrpc' 2>&1 | tail -1)"
echo "native: built the gRPC sender ($OUT, gRPC core $V)"
