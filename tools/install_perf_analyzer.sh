#!/bin/sh
# Install NVIDIA's real perf_analyzer 2.51.0 for this project, from the package registries alone:
#   usage: tools/install_perf_analyzer.sh VENV        (make perf-analyzer; make test runs it)
# - the binary: tritonclient 2.51.0's manylinux wheel ships tritonclient-2.51.0.data/data/bin/perf_analyzer
#   (2.51 is the release PyTriton 0.7 bundles; from 2.52 on it needs glibc 2.38, which Debian 12 lacks);
# - its libraries: libb64.so.0d (Debian package libb64-0d, via apt) and libcudart.so.12 (PyPI
#   nvidia-cuda-runtime-cu12); it needs no GPU.
# Both wheels are downloaded (pip download --no-deps) and unpacked into VENV/opt/perf_analyzer-2.51.0;
# VENV/bin/perf_analyzer is a two-line wrapper that puts lib/ on LD_LIBRARY_PATH. Nothing is
# pip-installed: pinning tritonclient==2.51.0 would downgrade the tritonclient saturate itself uses
# (>=2.51, 2.73 today) and still need LD_LIBRARY_PATH for libcudart. Idempotent: a working wrapper of
# the right version returns at once. Any failure is one line on stderr and exit 1.
set -u
VERSION=2.51.0
CUDART=nvidia-cuda-runtime-cu12==12.6.77
VENV=${1:-.venv}
PY="$VENV/bin/python"
WRAPPER="$VENV/bin/perf_analyzer"
fail() { echo "perf-analyzer: $*" >&2; exit 1; }

if [ -x "$WRAPPER" ] && "$WRAPPER" --version 2>&1 | grep -q "Perf Analyzer Version $VERSION"; then
    echo "perf-analyzer: perf_analyzer $VERSION already installed ($WRAPPER)"
    exit 0
fi
[ -x "$PY" ] || fail "no Python at $PY; create the venv first (make $VENV/.installed)"
case "$(uname -sm)" in
    "Linux x86_64") ;;
    *) fail "perf_analyzer $VERSION wheels exist for Linux x86_64 only (this is $(uname -sm))" ;;
esac

have_b64() { ldconfig -p 2>/dev/null | grep -q 'libb64\.so\.0d' || [ -e /usr/lib/x86_64-linux-gnu/libb64.so.0d ]; }
if ! have_b64; then
    if [ "$(id -u)" = 0 ]; then SUDO=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"
    else fail "needs libb64.so.0d: run 'sudo apt-get install libb64-0d' (no root here for apt), then rerun"
    fi
    command -v apt-get >/dev/null 2>&1 || fail "needs libb64.so.0d and there is no apt-get: install libb64 1.2 yourself"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q libb64-0d >/dev/null 2>&1 \
        || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q libb64-0d >/dev/null 2>&1; } \
        || fail "apt-get could not install libb64-0d (no package index or registry reachable?)"
    have_b64 || fail "libb64-0d installed but libb64.so.0d is not on the loader path"
fi

ABS_VENV=$(cd "$VENV" && pwd)
DEST="$ABS_VENV/opt/perf_analyzer-$VERSION"
TMP=$(mktemp -d) || fail "mktemp failed"
trap 'rm -rf "$TMP"' EXIT
"$PY" -m pip download -q --no-deps --only-binary=:all: -d "$TMP" "tritonclient==$VERSION" "$CUDART" \
    >"$TMP/pip.log" 2>&1 || fail "pip download tritonclient==$VERSION $CUDART failed (no registry?): $(grep -m1 ERROR "$TMP/pip.log")"
"$PY" - "$TMP" "$DEST" "$VERSION" <<'PYEOF' || fail "could not unpack perf_analyzer from the wheels in $TMP"
import glob, os, shutil, stat, sys, zipfile
tmp, dest, version = sys.argv[1:]
members = {
    "bin/perf_analyzer": (f"tritonclient-{version}-*.whl", f"tritonclient-{version}.data/data/bin/perf_analyzer"),
    "lib/libcudart.so.12": ("nvidia_cuda_runtime_cu12-*.whl", "nvidia/cuda_runtime/lib/libcudart.so.12"),
}
staging = dest + ".new"
shutil.rmtree(staging, ignore_errors=True)
for target, (pattern, name) in members.items():
    (wheel,) = glob.glob(os.path.join(tmp, pattern))
    out = os.path.join(staging, target)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with zipfile.ZipFile(wheel) as z, z.open(name) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.chmod(out, os.stat(out).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
shutil.rmtree(dest, ignore_errors=True)
os.replace(staging, dest)
PYEOF
cat >"$WRAPPER.tmp" <<WEOF
#!/bin/sh
# perf_analyzer $VERSION from the tritonclient wheel (tools/install_perf_analyzer.sh); libcudart beside it
LD_LIBRARY_PATH="$DEST/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$DEST/bin/perf_analyzer" "\$@"
WEOF
chmod +x "$WRAPPER.tmp" && mv "$WRAPPER.tmp" "$WRAPPER" || fail "could not write $WRAPPER"
"$WRAPPER" --version 2>&1 | grep -q "Perf Analyzer Version $VERSION" \
    || fail "installed, but '$WRAPPER --version' does not run: $("$WRAPPER" --version 2>&1 | head -1)"
echo "perf-analyzer: installed perf_analyzer $VERSION ($WRAPPER)"
