"""The engine's kernels exist per instruction set (AVX-512, AVX2 with FMA, the x86-64
baseline) and every one gives the same bits: a model fitted with the kernels of a
lower level (``MLP_RS_CPU``, read once per process) is the same bytes as with this
CPU's own. Checked on ``scripts/fingerprint.py``'s configurations (both dtypes, dense
and sparse, warm starts, partial_fit, lbfgs, early stopping, images and one-hot rows
for the zero-skipping kernels), each level in a fresh process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlp_rs import _core

FINGERPRINT = Path(__file__).resolve().parent.parent / "scripts" / "fingerprint.py"
LEVELS = ["baseline", "avx2", "avx512"]


def _run(level, *args):
    env = {k: v for k, v in os.environ.items() if k != "MLP_RS_CPU"}
    if level is not None:
        env["MLP_RS_CPU"] = level
    run = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def _fingerprints(level):
    return json.loads(_run(level, str(FINGERPRINT)))


@pytest.mark.parametrize("level", ["avx2", "baseline", "avx512", "sse9", ""])
def test_the_variable_lowers_the_level(level):
    """A level the CPU has is taken; a higher one or an unknown name changes nothing."""
    own = _core.cpu_level()
    assert own in LEVELS
    got = _run(level, "-c", "from mlp_rs import _core; print(_core.cpu_level())")
    lowered = level in LEVELS and LEVELS.index(level) < LEVELS.index(own)
    assert got.strip() == (level if lowered else own)


@pytest.fixture(scope="module")
def own_level():
    return _fingerprints(None)


@pytest.mark.parametrize("level", ["avx2", "baseline"])
def test_every_cpu_level_fits_the_same_model(level, own_level):
    lower = _fingerprints(level)
    assert own_level
    differ = sorted(k for k in own_level if own_level[k] != lower.get(k))
    assert not differ, f"MLP_RS_CPU={level} fits other models: {differ}"


_BF16_FIT = """
import hashlib
import numpy as np
from mlp_rs import MLPClassifier, _core
rng = np.random.RandomState(0)
X = rng.rand(600, 70).astype(np.float32)
y = (X[:, :3].sum(axis=1) * 3).astype(int) % 4
# image-like rows (zeros where the pixels are background): the first layer's products
# skip zero pairs there, on both kernels
images = np.where(rng.rand(600, 70) < 0.5, 0.0, X).astype(np.float32)
images[:, :24] = 0.0
hashes = []
for data in (X, images):
    est = MLPClassifier(
        (40, 24), matmul_precision="bfloat16", max_iter=3, batch_size=128,
        random_state=0,
    ).fit(data, y)
    weights = b"".join(a.tobytes() for a in est.coefs_ + est.intercepts_)
    hashes.append(hashlib.sha256(weights).hexdigest())
print(_core.bf16_kernel(), est.loss_, *hashes)
"""


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_bfloat16_kernels_at_each_level():
    """MLP_RS_CPU=avx512 rules AMX out, avx2 the AVX512-BF16 kernel too. The
    AVX512-BF16 kernel and the portable one fit the same bytes; AMX sums a tile step
    its own way: close, not the same bits (README, "bfloat16")."""
    own = _core.bf16_kernel()
    assert own in ("amx", "avx512_bf16", "portable")
    levels = (None, "avx512", "avx2")
    runs = {level: _run(level, "-c", _BF16_FIT).split() for level in levels}
    assert runs[None][0] == own
    assert runs["avx512"][0] == ("portable" if own == "portable" else "avx512_bf16")
    assert runs["avx2"][0] == "portable"
    assert runs["avx512"][2:] == runs["avx2"][2:]
    losses = [float(run[1]) for run in runs.values()]
    assert max(losses) - min(losses) <= 1e-2 * max(losses)
