"""Every script in examples/ runs to completion (exit code 0) in its quick setting.

Each example is run as a user would run it, in a subprocess of this Python
(``sys.executable``), from a scratch directory. Examples whose optional
dependencies are missing exit 0 with a message, so they pass here too.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Arguments per script; every other example takes --quick.
SPECIAL_ARGS = {
    "demo.py": ["--dataset", "digits", "--epochs", "2", "--no-warmup"],
    "quickstart.py": [],
}
TIMEOUT = 300  # seconds; a quick example takes a few


def _scripts():
    if not EXAMPLES.is_dir():
        return []
    return sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_examples_are_found():
    scripts = _scripts()
    if not EXAMPLES.is_dir():
        pytest.skip(f"no examples directory next to the tests ({EXAMPLES})")
    assert "quickstart.py" in scripts, scripts


@pytest.mark.parametrize("script", _scripts())
def test_example_runs(script, tmp_path):
    args = SPECIAL_ARGS.get(script, ["--quick"])
    env = dict(os.environ)
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONUNBUFFERED"] = "1"
    try:
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / script), *args],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{script} {' '.join(args)} did not finish in {TIMEOUT} s: {exc}")
    assert done.returncode == 0, (
        f"{script} {' '.join(args)} exited with {done.returncode}\n"
        f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    )
    assert done.stdout.strip(), f"{script} printed nothing"
