#!/usr/bin/env bash
# The whole test suite: lints (cargo fmt, clippy, ruff, scripts/check_layout.py), the
# Rust unit tests, then the release artifacts built and checked as scripts/release.sh
# does (the manylinux2014 wheel and the sdist: auditwheel, twine, both installed alone
# and smoke-tested), and the release wheel tested as users get it
# (scripts/wheel_check.sh): installed alone into a fresh virtual environment of every
# CPython 3.10-3.13 found on the machine, with the smoke test and the whole pytest suite
# (slow tests included) in each, stubtest on the main one. Tools come from the
# project's .venv (scripts/setup.sh --tools); nothing is installed into $PYTHON.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k parity`.
set -euo pipefail
source "$(dirname "$0")/env.sh"
need_rust --lints
bash "$ROOT/scripts/setup.sh" --tools
ensure_venv
cd "$ROOT"
cargo fmt --check
cargo clippy --all-targets --features python -- -D warnings
cargo test
"$VPY" -m ruff check python tests examples bench scripts
"$VPY" scripts/check_layout.py
bash scripts/release.sh
shopt -s nullglob
WHEELS=(dist/mlp_rs-*manylinux_2_17*.whl)
[ ${#WHEELS[@]} -eq 1 ] || die "release.sh left no manylinux_2_17 wheel in dist/"
bash scripts/wheel_check.sh --matrix --wheel "${WHEELS[0]}" -- "$@"
