#!/usr/bin/env bash
# Sets up the project's own virtual environment .venv/ (created with $PYTHON, default
# python3; nothing is installed into that interpreter): maturin, numpy, scikit-learn,
# scipy, pandas, pytest, hypothesis and ruff, then mlp_rs itself, built in release mode
# as an editable install. Idempotent; `--tools` installs the tools only (no build).
set -euo pipefail
source "$(dirname "$0")/env.sh"
need_rust
ensure_venv
venv_install "maturin>=1.9,<2" numpy scikit-learn scipy pandas pytest hypothesis ruff
if [ "${1:-}" != "--tools" ]; then
    (cd "$ROOT" && "$VPY" -m pip install -q --disable-pip-version-check \
        --no-build-isolation -e .)
fi
