#!/usr/bin/env bash
# Builds what a release uploads into dist/, and checks it:
#   - the abi3 wheel for manylinux2014 / manylinux_2_17 (glibc >= 2.17: every Linux
#     numpy and scikit-learn install on), cross-linked by zig (maturin --zig, the
#     ziglang package from PyPI) against glibc 2.17's symbols. The machine's own
#     toolchain links against its glibc (2.36 here: a manylinux_2_34 wheel at best),
#     and no manylinux container runs here, which is why zig.
#   - the sdist (maturin sdist).
# Checks: `auditwheel show` reports manylinux_2_17 and no shared library outside the
# manylinux policy; `twine check dist/*`; the wheel, and a wheel built from the sdist
# in a fresh venv with only a Rust toolchain and PyPI (pip fetches maturin), each
# install alone in a fresh venv and pass the smoke test; the wheel's size is printed.
#
# Usage: bash scripts/release.sh [--keep]
# Environment: PYTHON (default python3) makes the venvs. CARGO_TARGET_DIR, when set,
# is used by both builds; by default both build in target/zig (the sdist's wheel reuses
# the compiled dependencies; `cargo` fetches crates from crates.io).
set -euo pipefail
source "$(dirname "$0")/env.sh"
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

step() { printf '\n==> %s\n' "$*"; }
FAILED=()
fail() { echo "release: FAILED: $*" >&2; FAILED+=("$*"); }

need_rust
ensure_venv
# the release tools, in the project's .venv: pinned, so that a release is reproducible
venv_install "maturin>=1.9,<2" "ziglang==0.17.1" "auditwheel==6.8.2" "twine>=6.1"
VERSION=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$ROOT/Cargo.toml" | head -n1)
DIST=$ROOT/dist
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mlp_rs_release.XXXXXX")
cleanup() { if [ "$KEEP" = 1 ]; then echo "release: kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV || true
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
rm -rf "$DIST"
mkdir -p "$DIST"

step "wheel: maturin build --release --zig --compatibility manylinux2014"
# maturin finds zig as `python -m ziglang` of the first python on PATH
(cd "$ROOT" && PATH="$VENV/bin:$PATH" \
    CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/zig} \
    maturin build --release --zig --compatibility manylinux2014 -o "$DIST")

step "sdist: maturin sdist"
(cd "$ROOT" && "$VPY" -m maturin sdist -o "$DIST")

shopt -s nullglob
WHEELS=("$DIST"/mlp_rs-"$VERSION"-cp310-abi3-*manylinux_2_17_x86_64*.whl)
SDISTS=("$DIST"/mlp_rs-"$VERSION".tar.gz)
shopt -u nullglob
[ ${#WHEELS[@]} -eq 1 ] || die "expected one manylinux_2_17 abi3 wheel in dist/: $(ls "$DIST")"
[ ${#SDISTS[@]} -eq 1 ] || die "expected the sdist mlp_rs-$VERSION.tar.gz in dist/"
WHEEL=${WHEELS[0]}
SDIST=${SDISTS[0]}

step "auditwheel show"
"$VPY" -m auditwheel show "$WHEEL" | tee "$WORK/auditwheel.txt"
# one paragraph, wrapped: join the lines before looking
AUDIT=$(tr '\n' ' ' < "$WORK/auditwheel.txt" | tr -s ' ')
case "$AUDIT" in
    *'consistent with the following platform tag: "manylinux_2_17_x86_64"'*) ;;
    *) fail "auditwheel: not manylinux_2_17 / manylinux2014" ;;
esac
# only libraries of the manylinux policy (libc, libm, libpthread, libdl...) may be needed;
# auditwheel names others as "external shared libraries" to be grafted
case "$AUDIT" in
    *"external shared libraries"*|*"would need to be grafted"*) fail "auditwheel: external libraries" ;;
esac

step "twine check"
"$VPY" -m twine check "$DIST"/* || fail "twine check"

# smoke_venv NAME WHEEL: the wheel alone in a fresh venv, then the smoke test there
smoke_venv() {
    local venv="$WORK/$1"
    "$PY" -m venv "$venv" || { fail "$1: venv"; return; }
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q "$2" || { fail "$1: installing $(basename "$2")"; return; }
    mkdir -p "$WORK/run-$1"
    cp "$ROOT/scripts/smoke.py" "$WORK/run-$1/"
    (cd "$WORK/run-$1" && "$venv/bin/python" smoke.py "$VERSION" "$ROOT") || fail "$1: smoke test"
}

step "the wheel, alone in a fresh venv: smoke test"
smoke_venv wheel "$WHEEL"

step "a wheel built from the sdist in a fresh venv (pip fetches maturin from PyPI)"
"$PY" -m venv "$WORK/build" || die "venv for the sdist build"
"$WORK/build/bin/python" -m pip install -q --upgrade pip
mkdir -p "$WORK/from-sdist"
if CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/sdist} \
    "$WORK/build/bin/python" -m pip wheel --no-cache-dir --no-deps -w "$WORK/from-sdist" \
    "$SDIST"; then
    shopt -s nullglob
    BUILT=("$WORK"/from-sdist/mlp_rs-"$VERSION"-*.whl)
    shopt -u nullglob
    if [ ${#BUILT[@]} -eq 1 ]; then
        step "the sdist's wheel, alone in a fresh venv: smoke test"
        smoke_venv sdist-wheel "${BUILT[0]}"
    else
        fail "the sdist built no wheel"
    fi
else
    fail "building a wheel from the sdist"
fi

step "artifacts"
"$VPY" - "$DIST"/* <<'EOF'
import os
import sys

for path in sys.argv[1:]:
    size = os.path.getsize(path)
    print(f"  {os.path.basename(path):76s} {size / 2**20:6.2f} MiB ({size:,} bytes)")
EOF
echo "glibc floor of the wheel: 2.17 (manylinux2014)"
if [ ${#FAILED[@]} -gt 0 ]; then
    step "release checks FAILED:"
    printf '  - %s\n' "${FAILED[@]}"
    exit 1
fi
step "release checks passed: dist/ holds $(basename "$WHEEL") and $(basename "$SDIST")"
