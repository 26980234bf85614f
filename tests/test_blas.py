"""scipy's BLAS on one thread while an L-BFGS fit runs (mlp_rs._blas), the setting
restored afterwards, also when fits overlap."""

import threading

import numpy as np
from mlp_rs import MLPClassifier, _blas
from threadpoolctl import threadpool_info, threadpool_limits


def _blas_threads():
    return sorted(
        (lib["filepath"], lib["num_threads"])
        for lib in threadpool_info()
        if lib["user_api"] == "blas"
    )


def _problem():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 12))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def test_an_lbfgs_fit_runs_blas_on_one_thread_and_restores_it():
    X, y = _problem()
    seen = []

    def record(epoch, loss, validation_score, elapsed):
        seen.append(_blas_threads())

    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        MLPClassifier(solver="lbfgs", max_iter=3, callbacks=record).fit(X, y)
        assert _blas_threads() == before
    assert seen and before
    for libs in seen:
        assert [n for _, n in libs] == [1] * len(before)


def test_the_limit_is_lifted_by_the_last_fit_to_leave():
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        one = [(path, 1) for path, _ in before]
        with _blas.one_blas_thread():
            with _blas.one_blas_thread():
                assert _blas_threads() == one
            # the outer fit still runs
            assert _blas_threads() == one
        assert _blas_threads() == before


def test_overlapping_fits_from_threads_leave_the_setting_as_it_was():
    X, y = _problem()
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        errors = []

        def fit():
            try:
                for _ in range(3):
                    MLPClassifier(solver="lbfgs", max_iter=5).fit(X, y)
            except Exception as e:  # (reported below)
                errors.append(e)

        threads = [threading.Thread(target=fit) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert _blas_threads() == before
