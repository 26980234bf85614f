"""Soak: many calls from several threads on shared estimators, valid and invalid.

2,000 calls (fit, partial_fit, predict, predict_proba, score, pickling) from 4 threads
on 2 estimators, with random valid inputs and random invalid ones (NaN, wrong feature
count, mismatched lengths, empty data, strings). Every call either succeeds or raises
one of the exceptions scikit-learn raises for bad input; nothing crashes or deadlocks,
and the process's memory stops growing after the warm-up.
"""

import pickle
import sys
import threading

import numpy as np
import pytest
from mlp_rs import MLPClassifier, MLPRegressor
from sklearn.exceptions import NotFittedError

pytestmark = [
    pytest.mark.slow,
    # (warnings.catch_warnings is not thread-safe; the filter is set once here)
    pytest.mark.filterwarnings("ignore"),
]

CALLS = 2000
THREADS = 4
WARM_UP = 200  # calls before the RSS baseline is taken
MiB = 2**20


def _rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _inputs(rng, n_features):
    """(X, y, valid) for one call: mostly valid data, sometimes broken."""
    n = int(rng.randint(1, 400))
    X = rng.standard_normal((n, n_features))
    y = rng.randint(0, 3, n)
    kind = rng.randint(10)
    if kind == 0:
        X[rng.randint(n), rng.randint(n_features)] = np.nan
    elif kind == 1:
        X = X[:, : max(1, n_features - 1)] if n_features > 1 else X
    elif kind == 2:
        y = y[:-1]
    elif kind == 3:
        X, y = X[:0], y[:0]
    elif kind == 4:
        X = X.astype(str).astype(object)
        X[0, 0] = "not a number"
    return X, y, kind >= 5


# What bad input (or predicting before any fit) raises in scikit-learn.
EXPECTED = (ValueError, TypeError, NotFittedError)


def _call(est, rng, n_features):
    X, y, _ = _inputs(rng, n_features)
    op = rng.randint(6)
    if op == 0:
        est.fit(X, y)
    elif op == 1:
        if isinstance(est, MLPClassifier):
            est.partial_fit(X, y, classes=[0, 1, 2])
        else:
            est.partial_fit(X, y)
    elif op == 2:
        est.predict(X)
    elif op == 3 and isinstance(est, MLPClassifier):
        est.predict_proba(X)
    elif op == 4:
        est.score(X, y)
    else:
        pickle.loads(pickle.dumps(est))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc for RSS")
def test_soak_threads_valid_and_invalid_calls():
    estimators = [
        MLPClassifier(hidden_layer_sizes=(32,), max_iter=3, random_state=0),
        MLPRegressor(hidden_layer_sizes=(32,), max_iter=3, random_state=0, n_jobs=2),
    ]
    lock = threading.Lock()
    done = [0]
    succeeded = [0]
    unexpected = []
    baseline = []

    def worker(seed):
        rng = np.random.RandomState(seed)
        for _ in range(CALLS // THREADS):
            est = estimators[rng.randint(len(estimators))]
            try:
                _call(est, rng, n_features=8)
                succeeded[0] += 1
            except EXPECTED:
                pass
            except BaseException as exc:  # reported below
                unexpected.append(repr(exc))
            with lock:
                done[0] += 1
                if done[0] == WARM_UP:
                    baseline.append(_rss())

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=170)
    assert not any(t.is_alive() for t in threads), "a call deadlocked"
    assert not unexpected, unexpected[:5]
    assert done[0] == CALLS
    growth = _rss() - baseline[0]
    print(
        f"\n{CALLS} calls ({succeeded[0]} succeeded, the rest raised for bad input), "
        f"RSS growth after warm-up {growth / MiB:.1f} MiB"
    )
    assert succeeded[0] > CALLS // 3
    assert growth < 50 * MiB, f"RSS grew {growth / MiB:.0f} MiB after the warm-up"
    # the estimators still work
    rng = np.random.RandomState(99)
    X, y = rng.standard_normal((50, 8)), rng.randint(0, 3, 50)
    for est in estimators:
        assert est.fit(X, y).predict(X).shape == (50,)
