#!/usr/bin/env bash
# The whole test suite: lints, the Rust unit tests (gradient checks, optimizers, the
# epoch loop), then the release wheel built, installed alone in a fresh virtual
# environment and tested there: smoke test, stubtest of _core.pyi, and every pytest
# test and example (parity with scikit-learn, API, estimator checks, hostile inputs,
# runtime, ecosystem) run against the installed wheel, not the source tree.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k parity`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check ruff
cargo fmt --check
cargo clippy --all-targets --features python -- -D warnings
cargo test
"$PY" -m ruff check python tests examples bench scripts
"$PY" scripts/check_layout.py
bash scripts/wheel_check.sh -- "$@"
