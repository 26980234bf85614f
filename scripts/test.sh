#!/usr/bin/env bash
# The whole test suite: Rust unit tests (gradient checks, optimizers), lints, and pytest
# (API, scikit-learn estimator checks, trajectory parity with scikit-learn).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets --features python -- -D warnings
cargo test
"$PY" -m ruff check python tests examples $(ls -d bench 2>/dev/null)
"$PY" -m pytest -q tests "$@"
