#!/usr/bin/env bash
# The main job: trains mlp_rs and scikit-learn side by side on Fashion-MNIST (installed
# from Debian's dataset-fashion-mnist when possible, else scikit-learn's digits) and
# prints test accuracy and training time of both. Runs in the project's .venv (see
# scripts/setup.sh); arguments go to examples/demo.py (--help lists them).
set -euo pipefail
source "$(dirname "$0")/env.sh"
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
        || echo "note: could not install dataset-fashion-mnist; the demo uses digits"
fi
bash "$ROOT/scripts/setup.sh"
ensure_venv
# A stale OPENBLAS_CORETYPE forces an old BLAS kernel on scikit-learn's side.
exec env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$VPY" "$ROOT/examples/demo.py" "$@"
