#!/usr/bin/env bash
# Installs what mlp_rs needs to build and test (idempotent), then builds the extension
# in release mode into the source tree (editable install).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
command -v cargo >/dev/null || { echo "mlp_rs needs a Rust toolchain (cargo) on PATH" >&2; exit 1; }
"$PY" -m pip install -q --disable-pip-version-check \
    "maturin>=1.7,<2" numpy scikit-learn scipy pandas pytest hypothesis ruff
"$PY" -m pip install -q --disable-pip-version-check --no-build-isolation -e .
