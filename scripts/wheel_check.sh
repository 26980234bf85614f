#!/usr/bin/env bash
# Checks the wheel as a user gets it: builds it (maturin, release), installs only the
# wheel into a fresh virtual environment without system site packages (pip resolves its
# declared dependencies from PyPI), then, from a directory outside the source tree:
#   1. a smoke test: version, fit / predict, pickle, to_sklearn / from_sklearn;
#   2. mypy's stubtest of python/mlp_rs/_core.pyi against the compiled module;
#   3. the project's pytest suite (tests/ and examples/ copied out of the tree) against
#      the installed wheel.
# A failed build or install stops the script; the three checks all run, and the script
# ends with a summary and exits non-zero if any of them failed.
#
# Usage: bash scripts/wheel_check.sh [--minimal] [--keep] [-- PYTEST_ARGS...]
#   --minimal   do not install the optional test dependencies (dask, distributed,
#               dask-ml, tqdm, skl2onnx, onnxruntime); their tests and examples skip
#   --keep      keep the temporary directory (wheel, venv) and print its path
# Environment: PYTHON (default python3, >= 3.10) builds the venv; CARGO_TARGET_DIR is
# honoured by the build (default: target/wheel-check, apart from the editable build's
# target/ so that a concurrent `maturin develop` cannot pull files from under it).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
MINIMAL=0
KEEP=0
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --minimal) MINIMAL=1 ;;
        --keep) KEEP=1 ;;
        --) shift; PYTEST_ARGS=("$@"); break ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "wheel_check: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

step() { printf '\n==> %s\n' "$*"; }
die() { echo "wheel_check: FAILED: $*" >&2; exit 1; }
FAILED=()
fail() { echo "wheel_check: FAILED: $*" >&2; FAILED+=("$*"); }

command -v cargo >/dev/null || die "a Rust toolchain (cargo) is needed on PATH"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$PY is older than Python 3.10"

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
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/wheel-check}
step "building the wheel (maturin build --release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
if command -v maturin >/dev/null; then
    MATURIN=(maturin)
elif "$PY" -m maturin --version >/dev/null 2>&1; then
    MATURIN=("$PY" -m maturin)
else
    # A throwaway build venv, so that nothing is installed into the system Python.
    "$PY" -m venv "$WORK/build-venv" || die "python3 -m venv failed (python3-venv?)"
    "$WORK/build-venv/bin/python" -m pip install -q "maturin>=1.7,<2"
    MATURIN=("$WORK/build-venv/bin/maturin")
fi
"${MATURIN[@]}" --version
(cd "$ROOT" && "${MATURIN[@]}" build --release --interpreter "$PY" -o "$WORK/dist")
shopt -s nullglob
WHEELS=("$WORK"/dist/mlp_rs-*.whl)
shopt -u nullglob
[ ${#WHEELS[@]} -eq 1 ] || die "expected one wheel in $WORK/dist, found ${#WHEELS[@]}"
WHEEL=${WHEELS[0]}
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

# ---------------------------------------------------------- a fresh venv, the wheel only
step "fresh venv without system site packages; installing only the wheel"
"$PY" -m venv "$WORK/venv" || die "python3 -m venv failed (install python3-venv)"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q --upgrade pip
"$VPY" -m pip install "$WHEEL"
"$VPY" -m pip list

# Everything below runs outside the source tree.
mkdir -p "$WORK/run"
cd "$WORK/run"

step "smoke test of the installed package"
cat > "$WORK/run/smoke.py" <<'EOF'
import os
import pickle
import sys
import sysconfig
import warnings
from importlib.metadata import version

import numpy as np
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

import mlp_rs
from mlp_rs import MLPClassifier, MLPRegressor, _core

warnings.simplefilter("ignore", ConvergenceWarning)
expected, source_root = sys.argv[1], os.path.realpath(sys.argv[2])
site = os.path.realpath(sysconfig.get_paths()["purelib"])
where = os.path.realpath(mlp_rs.__file__)
print("mlp_rs.__file__   ", mlp_rs.__file__)
print("mlp_rs._core      ", _core.__file__)
print("mlp_rs.__version__", mlp_rs.__version__)
assert where.startswith(site + os.sep), f"{where} is not in {site}"
assert not where.startswith(source_root + os.sep), "imported from the source tree"
assert mlp_rs.__version__ == expected, (mlp_rs.__version__, expected)
assert version("mlp_rs") == expected, (version("mlp_rs"), expected)
assert _core.__version__ == expected, (_core.__version__, expected)

X, y = load_iris(return_X_y=True)
X = (X - X.mean(axis=0)) / X.std(axis=0)
for dtype in (np.float64, np.float32):
    Xd = X.astype(dtype)
    clf = MLPClassifier(
        hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=300, random_state=0
    )
    clf.fit(Xd, y)
    acc = clf.score(Xd, y)
    assert acc > 0.9, acc
    proba = clf.predict_proba(Xd)
    assert proba.dtype == dtype, proba.dtype
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)

    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(Xd), proba)

    sk = clf.to_sklearn()
    assert type(sk) is SkMLPClassifier, type(sk)
    # float64: equal to rounding; float32: a few ulps (another GEMM's summation order)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(sk.predict_proba(Xd), proba, rtol=rtol, atol=0)
    np.testing.assert_array_equal(sk.predict(Xd), clf.predict(Xd))
    back = MLPClassifier.from_sklearn(sk)
    assert type(back) is MLPClassifier, type(back)
    np.testing.assert_array_equal(back.predict_proba(Xd), proba)
    print(f"classifier {np.dtype(dtype).name}: train accuracy {acc:.3f}, "
          "pickle and to_sklearn/from_sklearn round trips equal")

Xr, yr = make_regression(n_samples=200, n_features=5, noise=0.1, random_state=0)
yr = yr / yr.std()
reg = MLPRegressor(hidden_layer_sizes=(16,), max_iter=500, random_state=0, n_jobs=2)
reg.fit(Xr, yr)
pred = reg.predict(Xr)
assert reg.score(Xr, yr) > 0.9, reg.score(Xr, yr)
np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(Xr), pred)
sk = reg.to_sklearn()
assert type(sk) is SkMLPRegressor, type(sk)
np.testing.assert_allclose(sk.predict(Xr), pred, rtol=1e-12, atol=0)
np.testing.assert_array_equal(MLPRegressor.from_sklearn(sk).predict(Xr), pred)
print(f"regressor: R2 {reg.score(Xr, yr):.3f}, round trips equal")
print("smoke test OK")
EOF
"$VPY" "$WORK/run/smoke.py" "$EXPECTED_VERSION" "$ROOT" || fail "smoke test"

step "stubtest: python/mlp_rs/_core.pyi against the compiled module"
"$VPY" -m pip install -q mypy
"$VPY" -m mypy --version
"$VPY" -m mypy.stubtest mlp_rs._core || fail "stubtest (mlp_rs/_core.pyi)"

# ------------------------------------------------------------- pytest on the wheel
step "pytest against the installed wheel"
TEST_DEPS=(pytest hypothesis pandas)
if [ "$MINIMAL" = 0 ]; then
    TEST_DEPS+=("dask[array]" distributed dask-ml tqdm skl2onnx onnxruntime)
fi
"$VPY" -m pip install -q "${TEST_DEPS[@]}"
"$VPY" -m pip list
cp -r "$ROOT/tests" "$WORK/run/tests"
[ -d "$ROOT/examples" ] && cp -r "$ROOT/examples" "$WORK/run/examples"
find "$WORK/run" -name __pycache__ -prune -exec rm -rf {} +
# A plugin loaded into the pytest process itself: shows which mlp_rs the tests import
# and stops the run if it is not the installed wheel.
mkdir -p "$WORK/plugin"
cat > "$WORK/plugin/wheel_check_plugin.py" <<'EOF'
import os
import sysconfig

import pytest


def pytest_sessionstart(session):
    import mlp_rs

    where = os.path.realpath(mlp_rs.__file__)
    site = os.path.realpath(sysconfig.get_paths()["purelib"])
    if not where.startswith(site + os.sep):
        raise pytest.UsageError(f"mlp_rs imported from {where}, not from {site}")
    line = f"mlp_rs {mlp_rs.__version__} from {mlp_rs.__file__} (the installed wheel)"
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
EOF
PYTHONPATH="$WORK/plugin" "$VPY" -m pytest -p wheel_check_plugin -p no:cacheprovider \
    -q -ra --rootdir "$WORK/run" "$WORK/run/tests" ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"} \
    || fail "pytest against the installed wheel"

if [ ${#FAILED[@]} -gt 0 ]; then
    step "wheel check FAILED ($(basename "$WHEEL")):"
    printf '  - %s\n' "${FAILED[@]}"
    exit 1
fi
step "wheel check passed: $(basename "$WHEEL")"
