#!/usr/bin/env bash
# Checks the wheel as a user gets it: builds it once (maturin, release), then for each
# interpreter checked installs only the wheel into a fresh virtual environment without
# system site packages (pip resolves its declared dependencies from PyPI) and, from a
# directory outside the source tree, runs:
#   1. a smoke test: version, fit / predict, pickle, to_sklearn / from_sklearn;
#   2. mypy's stubtest of python/mlp_rs/_core.pyi against the compiled module (main
#      interpreter only);
#   3. the project's pytest suite (tests/ and examples/ copied out of the tree) against
#      the installed wheel.
# The main interpreter is $PYTHON (default python3) with every optional test dependency;
# with --matrix, every other CPython 3.10-3.13 found on the machine (PATH, pyenv) runs
# the smoke test and the suite too (optional dependencies dask, tqdm, skl2onnx... left
# out: their tests skip). A version not found is reported as absent, not failed.
# A failed build stops the script; the checks all run, and the script ends with a
# summary (the support matrix, with pass counts) and exits non-zero if any failed.
#
# Usage: bash scripts/wheel_check.sh [--wheel W] [--matrix] [--minimal] [--keep]
#                                    [-- PYTEST_ARGS...]
#   --wheel W   check the wheel W (e.g. release.sh's dist/ wheel) instead of building one
#   --matrix    also check every other CPython 3.10-3.13 found
#   --minimal   no optional test dependencies for the main interpreter either
#   --keep      keep the temporary directory (wheel, venvs) and print its path
# Environment: PYTHON (default python3, >= 3.10); CARGO_TARGET_DIR is honoured by the
# build (default: target/wheel-check, apart from the editable build's target/ so that
# a concurrent `maturin develop` cannot pull files from under it).
set -euo pipefail

source "$(dirname "$0")/env.sh"
MINIMAL=0
KEEP=0
MATRIX=0
GIVEN_WHEEL=
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --matrix) MATRIX=1 ;;
        --wheel) GIVEN_WHEEL=$(realpath "$2"); shift ;;
        --minimal) MINIMAL=1 ;;
        --keep) KEEP=1 ;;
        --) shift; PYTEST_ARGS=("$@"); break ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "wheel_check: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

step() { printf '\n==> %s\n' "$*"; }
die() { echo "wheel_check: FAILED: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FAILED=()
fail() { echo "wheel_check: FAILED: $*" >&2; FAILED+=("$*"); }

need_rust

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mlp_rs_wheel_check.XXXXXX")
cleanup() {
    if [ "$KEEP" = 1 ]; then echo "wheel_check: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
# Nothing from the source tree or the calling environment may leak into the venv.
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP VIRTUAL_ENV || true
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

EXPECTED_VERSION=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$ROOT/Cargo.toml" | head -n1)
[ -n "$EXPECTED_VERSION" ] || die "no version found in Cargo.toml"
echo "source: $ROOT (Cargo.toml version $EXPECTED_VERSION)"
echo "work:   $WORK"

# ---------------------------------------------------------------- build the wheel
ensure_venv
if [ -n "$GIVEN_WHEEL" ]; then
    WHEEL=$GIVEN_WHEEL
    [ -f "$WHEEL" ] || die "no wheel $WHEEL"
else
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/wheel-check}
    step "building the wheel (maturin build --release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    # maturin from the project's own environment (scripts/setup.sh --tools installs it)
    "$VPY" -m maturin --version >/dev/null 2>&1 || venv_install "maturin>=1.9,<2"
    MATURIN=("$VPY" -m maturin)
    "${MATURIN[@]}" --version
    (cd "$ROOT" && "${MATURIN[@]}" build --release --interpreter "$PY" -o "$WORK/dist")
    shopt -s nullglob
    WHEELS=("$WORK"/dist/mlp_rs-*.whl)
    shopt -u nullglob
    [ ${#WHEELS[@]} -eq 1 ] || die "expected one wheel in $WORK/dist, found ${#WHEELS[@]}"
    WHEEL=${WHEELS[0]}
fi
echo "wheel: $(basename "$WHEEL")"
case "$(basename "$WHEEL")" in
    mlp_rs-"$EXPECTED_VERSION"-*abi3*.whl) ;;
    *) die "wheel name does not carry version $EXPECTED_VERSION and the abi3 tag" ;;
esac
"$PY" - "$WHEEL" <<'EOF'
import sys
import zipfile

names = zipfile.ZipFile(sys.argv[1]).namelist()
print("\n".join("  " + n for n in names))
need = ["mlp_rs/__init__.py", "mlp_rs/_core.pyi", "mlp_rs/py.typed"]
missing = [n for n in need if n not in names]
cores = [n for n in names if n.startswith("mlp_rs/_core.") and n.endswith((".so", ".pyd"))]
if missing or len(cores) != 1:
    sys.exit(f"wheel content: missing {missing}, compiled modules {cores}")
EOF

# ------------------------------------------------------- one interpreter, the wheel only
# Python versions the matrix covers; the main interpreter is checked in full. The
# oldest runs with the dependency floors of pyproject.toml pinned (numpy==X for
# numpy>=X ...), so that the floors are versions CI actually ran.
VERSIONS=(3.10 3.11 3.12 3.13)
FLOORS_VERSION=3.10
MATRIX_LINES=()
FLOORS="$WORK/floors.txt"
"$VPY" - "$ROOT/pyproject.toml" > "$FLOORS" <<'EOF'
import re
import sys

text = open(sys.argv[1]).read()
deps = re.search(r"^dependencies = \[(.*?)\]", text, re.M | re.S).group(1)
for name, version in re.findall(r'"([A-Za-z0-9_.-]+)>=([^",]+)"', deps):
    print(f"{name}=={version}")
EOF

# The interpreter of CPython $1 on this machine (PATH, then pyenv), or nothing.
find_python() {
    local v=$1 cand root
    for cand in "python$v" "/usr/bin/python$v"; do
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import venv' >/dev/null 2>&1; then
            command -v "$cand"; return
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        root=$(pyenv root)
        for cand in $(ls -d "$root"/versions/"$v".*/bin/python 2>/dev/null | sort -V -r); do
            [[ "$cand" =~ /versions/$v\.[0-9]+/ ]] && { echo "$cand"; return; }
        done
    fi
}

# check_python PYTHON LABEL FULL: the wheel alone in a fresh venv of PYTHON; smoke test,
# (FULL: stubtest and the optional test dependencies), pytest.
check_python() {
    local py=$1 label=$2 full=$3 venv="$WORK/venv-$2" run="$WORK/run-$2"
    step "[$label] fresh venv of $py without system site packages; only the wheel"
    "$py" -m venv "$venv" || { fail "[$label] venv (install python3-venv)"; return; }
    local vpy="$venv/bin/python" pins=()
    [ "$label" = "$FLOORS_VERSION" ] && pins=(-c "$FLOORS")
    "$vpy" -m pip install -q --upgrade pip
    "$vpy" -m pip install -q ${pins[@]+"${pins[@]}"} "$WHEEL" \
        || { fail "[$label] installing the wheel"; return; }
    "$vpy" -m pip list
    # Everything below runs outside the source tree.
    mkdir -p "$run"
    cp "$ROOT/scripts/smoke.py" "$run/smoke.py"
    (cd "$run" && "$vpy" smoke.py "$EXPECTED_VERSION" "$ROOT") || fail "[$label] smoke test"
    if [ "$full" = 1 ]; then
        step "[$label] stubtest: python/mlp_rs/_core.pyi against the compiled module"
        "$vpy" -m pip install -q mypy
        (cd "$run" && "$vpy" -m mypy.stubtest mlp_rs._core) || fail "[$label] stubtest"
    fi
    step "[$label] pytest against the installed wheel"
    local deps=(pytest hypothesis pandas)
    if [ "$full" = 1 ] && [ "$MINIMAL" = 0 ]; then
        deps+=("dask[array]" distributed dask-ml tqdm skl2onnx onnxruntime)
    fi
    "$vpy" -m pip install -q ${pins[@]+"${pins[@]}"} "${deps[@]}" \
        || { fail "[$label] test dependencies"; return; }
    local sklearn
    sklearn=$("$vpy" -c 'import sklearn, numpy, scipy; print(f"scikit-learn {sklearn.__version__}, numpy {numpy.__version__}, scipy {scipy.__version__}")')
    cp -r "$ROOT/tests" "$run/tests"
    [ -d "$ROOT/examples" ] && cp -r "$ROOT/examples" "$run/examples"
    # (tests/test_cpu_levels.py runs it against the installed wheel)
    mkdir -p "$run/scripts" && cp "$ROOT/scripts/fingerprint.py" "$run/scripts/"
    find "$run" -name __pycache__ -prune -exec rm -rf {} +
    # A plugin loaded into the pytest process itself: shows which mlp_rs the tests
    # import and stops the run if it is not the installed wheel.
    mkdir -p "$WORK/plugin"
    cp "$ROOT/scripts/wheel_check_plugin.py" "$WORK/plugin/"
    local log="$WORK/pytest-$label.log" rc
    set +e
    (cd "$run" && PYTHONPATH="$WORK/plugin" "$vpy" -m pytest -p wheel_check_plugin \
        -p no:cacheprovider -q -ra --rootdir "$run" "$run/tests" \
        ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"}) 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    local summary
    summary=$(grep -E '^=*.*[0-9]+ (passed|failed|error)' "$log" | tail -n1 | tr -d '=' | sed 's/^ *//; s/ in [0-9.]*s.*//; s/, [0-9]* warnings//')
    MATRIX_LINES+=("$label: $("$vpy" -c 'import platform; print(platform.python_version())'), $sklearn: ${summary:-no result}")
    [ "$rc" = 0 ] || fail "[$label] pytest against the installed wheel"
}

MAIN_VERSION=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
check_python "$PY" "$MAIN_VERSION" 1
if [ "$MATRIX" = 1 ]; then
    for v in "${VERSIONS[@]}"; do
        [ "$v" = "$MAIN_VERSION" ] && continue
        other=$(find_python "$v")
        if [ -z "$other" ]; then
            MATRIX_LINES+=("$v: absent on this machine, skipped")
            continue
        fi
        check_python "$other" "$v" 0
    done
fi

step "support matrix (the wheel $(basename "$WHEEL"))"
printf 'matrix: %s\n' "${MATRIX_LINES[@]}"
if [ ${#FAILED[@]} -gt 0 ]; then
    step "wheel check FAILED ($(basename "$WHEEL")):"
    printf '  - %s\n' "${FAILED[@]}"
    exit 1
fi
step "wheel check passed: $(basename "$WHEEL")"
