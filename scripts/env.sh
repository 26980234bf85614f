# Sourced by the other scripts: the project's own virtual environment, .venv/ at the
# root of the checkout (git-ignored), created with $PYTHON (default python3) and used
# for every Python command. Nothing is ever installed into $PYTHON itself.
#
#   ensure_venv          create .venv if needed (again if $PYTHON changed), set $VPY
#   venv_install ARGS    pip install ARGS into .venv, quietly
#   need_rust            check cargo/rustc >= MSRV, rustfmt and clippy

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$ROOT/.venv
PY=${PYTHON:-python3}
MSRV=$(sed -n 's/^rust-version *= *"\([^"]*\)".*/\1/p' "$ROOT/Cargo.toml")

die() { echo "error: $*" >&2; exit 1; }

need_rust() {
    command -v cargo >/dev/null || die "mlp_rs needs a Rust toolchain >= $MSRV (https://rustup.rs)"
    local have
    have=$(rustc --version | sed 's/^rustc \([0-9]*\.[0-9]*\).*/\1/')
    [ "$(printf '%s\n%s\n' "$MSRV" "$have" | sort -V | head -n1)" = "$MSRV" ] \
        || die "rustc $have is older than $MSRV (Cargo.toml's rust-version): rustup update"
    if [ "${1:-}" = "--lints" ]; then
        cargo fmt --version >/dev/null 2>&1 || die "rustfmt missing: rustup component add rustfmt"
        cargo clippy --version >/dev/null 2>&1 || die "clippy missing: rustup component add clippy"
    fi
}

ensure_venv() {
    command -v "$PY" >/dev/null || die "no Python interpreter '$PY' (set PYTHON=/path/to/python3)"
    "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || die "$PY is older than Python 3.10"
    local want
    want=$("$PY" -c 'import os, sys; print(os.path.realpath(sys.executable))')
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.created-by" 2>/dev/null)" != "$want" ]; then
        echo "note: recreating .venv with $want"
        rm -rf "$VENV"
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        echo "creating the project's virtual environment .venv with $want"
        "$PY" -m venv "$VENV" \
            || die "'$PY -m venv' failed: install the venv module (Debian/Ubuntu: apt install python3-venv)"
        echo "$want" > "$VENV/.created-by"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    fi
    VPY=$VENV/bin/python
}

venv_install() {
    "$VPY" -m pip install -q --disable-pip-version-check "$@"
}
