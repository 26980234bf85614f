#!/usr/bin/env bash
# The main job: trains mlp_rs and scikit-learn side by side on Fashion-MNIST (installed
# from Debian's dataset-fashion-mnist when possible, else scikit-learn's digits) and
# prints test accuracy and training time of both.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
        || echo "note: could not install dataset-fashion-mnist; the demo uses digits"
fi
bash scripts/setup.sh
# A stale OPENBLAS_CORETYPE forces an old BLAS kernel on scikit-learn's side.
exec env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "${PYTHON:-python3}" examples/demo.py "$@"
