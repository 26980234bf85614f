"""Running out of memory is a MemoryError, never an abort of the interpreter.

Each case runs in a subprocess whose address space is capped (``RLIMIT_AS``, what
``ulimit -v`` sets) a few GiB above what it already uses, then asks for far more: the
call must raise ``MemoryError`` naming what it was allocating, and leave the estimator
as it was (it still predicts exactly as before).
"""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's"
)

_CHILD = r"""
import json, resource, sys, warnings
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from mlp_rs import MLPClassifier, MLPRegressor

warnings.simplefilter("ignore", ConvergenceWarning)
case = sys.argv[1]
rng = np.random.RandomState(0)


def vm_size():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024


def cap(extra_gib=3):
    limit = vm_size() + int(extra_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def outcome(est, call):
    before = [c.copy() for c in est.coefs_]
    X_check = rng.standard_normal((5, est.n_features_in_))
    expected = est.predict(X_check)
    try:
        call()
    except MemoryError as e:
        same = all(np.array_equal(a, b) for a, b in zip(est.coefs_, before))
        again = np.array_equal(est.predict(X_check), expected)
        return {"raised": "MemoryError", "message": str(e), "unchanged": same and again}
    return {"raised": None}


if case in ("fit", "partial_fit", "lbfgs"):
    X = rng.standard_normal((20_000, 50))
    y = rng.randint(0, 3, 20_000)
    solver = "lbfgs" if case == "lbfgs" else "adam"
    est = MLPClassifier((16,), solver=solver, max_iter=2, random_state=0).fit(X, y)
    big = dict(hidden_layer_sizes=(200_000,), batch_size=20_000, max_iter=1)
    est.set_params(**big)
    cap()
    if case == "partial_fit":
        # partial_fit keeps the layers; grow the batch through a wide model instead
        est.set_params(hidden_layer_sizes=(16,))
        wide = MLPClassifier((200_000,), batch_size=20_000, random_state=0)
        wide.partial_fit(X[:10], y[:10], classes=[0, 1, 2])
        result = outcome(wide, lambda: wide.partial_fit(X, y))
    else:
        result = outcome(est, lambda: est.fit(X, y))
elif case == "bf16":
    # a bfloat16 fit's copy of X (half of X's 2 GiB) does not fit in what is left
    small = rng.standard_normal((50, 1000)).astype(np.float32)
    est = MLPClassifier((8,), max_iter=1, random_state=0, matmul_precision="bfloat16")
    est.fit(small, np.arange(50) % 2)
    X = np.zeros((537_000, 1000), dtype=np.float32)
    cap(0.5)
    result = outcome(est, lambda: est.fit(X, np.arange(len(X)) % 2))
elif case == "predict":
    # 100,000 outputs for 100,000 rows: 80 GB of predictions
    X = rng.standard_normal((4, 1))
    Y = rng.standard_normal((4, 100_000))
    est = MLPRegressor(hidden_layer_sizes=(2,), max_iter=1, random_state=0).fit(X, Y)
    cap()
    many = rng.standard_normal((100_000, 1))
    result = outcome(est, lambda: est.predict(many))
print(json.dumps(result))
"""


@pytest.mark.parametrize("case", ["fit", "partial_fit", "lbfgs", "bf16", "predict"])
def test_memory_exhaustion_is_a_memory_error(case):
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, case],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # an abort would end the process with SIGABRT (returncode -6), not a result
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["raised"] == "MemoryError", result
    assert result["unchanged"], result
    message = result["message"]
    assert message.startswith("Unable to allocate"), message
    assert "GiB" in message or "TiB" in message, message
    if case == "bf16":
        assert "rounded to bfloat16" in message, message
