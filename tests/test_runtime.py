"""Runtime behaviour of the binding: Ctrl-C, the GIL, concurrent use."""

import signal
import threading
import time

import numpy as np
import pytest
from mlp_rs import MLPClassifier, MLPRegressor
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError


@pytest.fixture(scope="module")
def big_problem():
    X, y = make_classification(
        n_samples=20000, n_features=40, n_informative=20, n_classes=3, random_state=0
    )
    return X.astype(np.float32), y


@pytest.fixture
def default_sigint():
    """Python's own Ctrl-C handling for the test, whatever an earlier test or library
    left: the KeyboardInterrupt handler, and SIGINT not blocked in this thread."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        signal.signal(signal.SIGINT, previous)


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread()
    or not hasattr(signal, "pthread_sigmask"),
    reason="signals are delivered to the main thread; pthread_sigmask is POSIX",
)
@pytest.mark.usefixtures("default_sigint")
@pytest.mark.parametrize("solver", ["sgd", "adam"])
# one thread trains on the calling thread and polls for signals itself; more train in a
# pool while the calling thread polls
@pytest.mark.parametrize("n_jobs", [1, None])
# batches cut by rows (128 units), or by halves of the hidden units (100: 880,600
# multiply-adds a batch), whose shares go back to the model when interrupted
@pytest.mark.parametrize("hidden", [(128,), (100,)])
def test_ctrl_c_stops_training_and_keeps_a_usable_model(
    big_problem, solver, n_jobs, hidden
):
    X, y = big_problem
    clf = MLPClassifier(
        hidden_layer_sizes=hidden,
        solver=solver,
        n_jobs=n_jobs,
        # (bounded, so that a lost signal fails the test instead of hanging it)
        max_iter=500,
        tol=0.0,
        n_iter_no_change=10**9,
        random_state=0,
        # Ctrl-C during the second epoch, whatever the machine's speed, raised in the
        # thread that runs the callback (the pool's, with more than one thread)
        callbacks=lambda epoch, *args: (
            epoch == 1 and signal.raise_signal(signal.SIGINT)
        ),
    )
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        clf.fit(X, y)
    assert clf.n_iter_ < 500
    assert len(clf.loss_curve_) == clf.n_iter_
    assert all(np.isfinite(c).all() for c in clf.coefs_)
    proba = clf.predict_proba(X[:10])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread()
    or not hasattr(signal, "setitimer"),
    reason="signals are delivered to the main thread; setitimer is POSIX",
)
@pytest.mark.parametrize("n_jobs", [1, None])
def test_exception_from_a_signal_handler_aborts_the_fit(big_problem, n_jobs):
    """A signal handler that raises (here on SIGALRM) stops training and its exception
    reaches the caller, whichever thread trains; the estimator is left as it was."""
    X, y = big_problem

    class Alarm(Exception):
        pass

    def handler(signum, frame):
        raise Alarm("time is up")

    clf = MLPClassifier(
        hidden_layer_sizes=(128,),
        max_iter=100000,
        tol=0.0,
        n_iter_no_change=10**9,
        random_state=0,
        n_jobs=n_jobs,
    )
    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(Alarm, match="time is up"):
            clf.fit(X, y)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not hasattr(clf, "coefs_")


@pytest.mark.parametrize("n_jobs", [1, None])
def test_fit_releases_the_gil(big_problem, n_jobs):
    X, y = big_problem
    clf = MLPClassifier(
        hidden_layer_sizes=(128,),
        n_jobs=n_jobs,
        max_iter=30,
        tol=0.0,
        n_iter_no_change=1000,
        random_state=0,
    )
    done = threading.Event()

    def fit():
        clf.fit(X, y)
        done.set()

    worker = threading.Thread(target=fit)
    ticks = 0
    worker.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    # Holding the GIL for the whole fit would leave this loop at a handful of ticks.
    assert ticks > 20
    assert clf.n_iter_ == 30


def test_many_threads_predict_like_one(big_problem):
    X, y = big_problem
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=2, random_state=0).fit(X, y)
    expected = clf.predict_proba(X)
    results = [None] * 8

    def predict(i):
        results[i] = clf.predict_proba(X)

    threads = [threading.Thread(target=predict, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_two_models_fit_concurrently_like_alone():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(3000, 30))
    y = X @ rng.normal(size=30) + 0.1 * rng.normal(size=3000)
    params = dict(hidden_layer_sizes=(64,), max_iter=5, random_state=0, n_jobs=2)
    alone = MLPRegressor(**params).fit(X, y)
    models = [MLPRegressor(**params), MLPRegressor(**params)]
    threads = [threading.Thread(target=m.fit, args=(X, y)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for m in models:
        for a, b in zip(alone.coefs_, m.coefs_, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_fit_inside_another_fits_callback_runs_like_alone():
    """Each fit on threads has a pool of its own while it runs (pools are kept for the
    next fits, never shared by two at once): a fit started from another fit's callback
    gets its own instead of waiting on the outer fit's busy threads."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(3000, 30))
    y = X @ rng.normal(size=30) + 0.1 * rng.normal(size=3000)
    params = dict(hidden_layer_sizes=(64,), max_iter=3, random_state=0, n_jobs=2)
    alone = MLPRegressor(**params).fit(X, y)
    inner = []

    def fit_another(epoch, loss, validation_score, elapsed):
        inner.append(MLPRegressor(**params).fit(X, y))

    outer = MLPRegressor(**params, callbacks=fit_another).fit(X, y)
    assert len(inner) == 3
    for m in [outer, *inner]:
        for a, b in zip(alone.coefs_, m.coefs_, strict=True):
            np.testing.assert_array_equal(a, b)


def test_exception_in_a_verbose_print_propagates(big_problem, monkeypatch):
    X, y = big_problem
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, verbose=True)

    def broken(*args):
        raise RuntimeError("callback failed")

    monkeypatch.setattr(clf, "_report_epoch", broken)
    with pytest.raises(RuntimeError, match="callback failed"):
        clf.fit(X[:500], y[:500])


def test_predict_while_fitting_sees_whole_models(big_problem):
    """Predictions during refits come from one fit's model, never a mix, and
    nothing raises; however the threads interleave."""
    X, y = big_problem
    X, y = X[:3000], y[:3000]
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=2, random_state=0)
    clf.fit(X, y)
    models = {0: clf.predict_proba(X[:50])}
    errors = []
    stop = threading.Event()

    def refit():
        try:
            for seed in range(1, 6):
                est = clf.set_params(random_state=seed).fit(X, y)
                models[seed] = MLPClassifier(**est.get_params()).fit(X, y)
                models[seed] = models[seed].predict_proba(X[:50])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()

    worker = threading.Thread(target=refit)
    worker.start()
    seen = [clf.predict_proba(X[:50])]
    while not stop.is_set():
        seen.append(clf.predict_proba(X[:50]))
    worker.join()
    assert not errors
    for proba in seen:
        assert any(np.array_equal(proba, m) for m in models.values())


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_refit_shows_the_previous_model_until_it_ends(big_problem, n_jobs):
    """While a refit runs (here: in its epoch callbacks, and from another thread
    meanwhile), the estimator shows the previous model whole -- weights, classes,
    feature count -- even when the new data differs in all of them; the new model
    appears when the fit returns."""
    X, y = big_problem
    X, y = X[:3000], y[:3000]
    params = dict(hidden_layer_sizes=(32,), max_iter=2, random_state=0, n_jobs=n_jobs)
    clf = MLPClassifier(**params).fit(X, y)
    old = clf.predict_proba(X[:50])
    seen = []

    def during(*args):
        seen.append(clf.predict_proba(X[:50]))
        other = threading.Thread(target=lambda: seen.append(clf.predict_proba(X[:50])))
        other.start()
        other.join()

    X2, y2 = X[:, :10], y == 0  # 10 features, 2 classes
    clf.set_params(random_state=1, max_iter=3, callbacks=during).fit(X2, y2)
    assert len(seen) == 6
    for proba in seen:
        np.testing.assert_array_equal(proba, old)
    assert clf.n_features_in_ == 10 and list(clf.classes_) == [False, True]
    assert clf.predict_proba(X2[:5]).shape == (5, 2)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_first_fit_is_not_fitted_until_it_ends(big_problem, method):
    X, y = big_problem
    X, y = X[:1000], y[:1000]
    raised = []

    def during(*args):
        with pytest.raises(NotFittedError):
            clf.predict(X[:5])
        raised.append(True)

    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, callbacks=during)
    if method == "fit":
        clf.fit(X, y)
    else:
        clf.partial_fit(X, y, classes=[0, 1, 2])
    assert raised and clf.predict(X[:5]).shape == (5,)


def test_failed_refit_leaves_the_old_model_visible(big_problem):
    X, y = big_problem
    X, y = X[:1000], y[:1000]
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)
    old = clf.predict_proba(X[:20])

    def fail(epoch, *args):
        np.testing.assert_array_equal(clf.predict_proba(X[:20]), old)
        if epoch == 2:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        clf.set_params(random_state=3, max_iter=5, callbacks=fail).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X[:20]), old)


def test_fitting_one_model_from_two_threads_is_serialised(big_problem):
    X, y = big_problem
    X, y = X[:3000], y[:3000]
    params = dict(hidden_layer_sizes=(32,), max_iter=3, random_state=0)
    alone = MLPClassifier(**params).fit(X, y)
    shared = MLPClassifier(**params)
    threads = [threading.Thread(target=shared.fit, args=(X, y)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone.coefs_, shared.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert shared.loss_curve_ == alone.loss_curve_


@pytest.mark.parametrize(
    "params",
    [
        # batches cut by rows
        dict(hidden_layer_sizes=(256,), max_iter=3, random_state=0, batch_size=256),
        # batches cut by halves of the hidden units (880,600 multiply-adds a batch)
        dict(hidden_layer_sizes=(100,), max_iter=3, random_state=0),
    ],
    ids=["rows", "halves"],
)
def test_results_under_a_busy_process_are_bit_identical(big_problem, params):
    """With another process busy beside the fit, the engine may run batches on one
    thread or two as it sees fit (see parallel::Governor): the model is the same bytes
    for any n_jobs, and the same as on a quiet machine."""
    import subprocess
    import sys

    X, y = big_problem
    quiet = MLPClassifier(**params, n_jobs=2).fit(X, y)
    busy = subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"])
    try:
        loaded = {k: MLPClassifier(**params, n_jobs=k).fit(X, y) for k in (1, 2, None)}
    finally:
        busy.kill()
        busy.wait()
    expected = [a.tobytes() for a in quiet.coefs_ + quiet.intercepts_]
    for est in loaded.values():
        assert [a.tobytes() for a in est.coefs_ + est.intercepts_] == expected
        assert est.loss_curve_ == quiet.loss_curve_


def test_predictions_under_a_busy_process_are_bit_identical(big_problem):
    """Predictions share their rows with the process's serving helper when it keeps up
    (see team::with_serving_team): beside a busy process, call after call, every
    n_jobs gives the quiet machine's bytes."""
    import subprocess
    import sys

    X, y = big_problem
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=2, random_state=0)
    clf.fit(X[:3000], y[:3000])
    sizes = (1, 100, 3000)
    quiet = {rows: clf.predict_proba(X[:rows]) for rows in sizes}
    busy = subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"])
    try:
        for n_jobs in (1, 2, None):
            clf.set_params(n_jobs=n_jobs)
            for _ in range(20):
                for rows in sizes:
                    np.testing.assert_array_equal(
                        clf.predict_proba(X[:rows]), quiet[rows]
                    )
    finally:
        busy.kill()
        busy.wait()


def _predict_in_child(args):
    clf, X = args
    return clf.predict_proba(X)


@pytest.mark.skipif(
    "fork" not in __import__("multiprocessing").get_all_start_methods(),
    reason="needs the fork start method",
)
def test_predictions_in_a_forked_child_after_the_parent_predicted(big_problem):
    """Predictions run in a pool the process keeps; a child forked afterwards has no
    copy of its threads and starts its own instead of waiting on the parent's."""
    import multiprocessing

    X, y = big_problem
    X = X[:3000]
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=2, random_state=0, n_jobs=2)
    clf.fit(X, y[:3000])
    expected = clf.predict_proba(X)  # the parent's pool now exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        result = pool.map_async(_predict_in_child, [(clf, X)])
        got = result.get(timeout=120)[0]
    np.testing.assert_array_equal(got, expected)


def _fit_in_child(args):
    params, X, y = args
    return MLPClassifier(**params).fit(X, y).coefs_


@pytest.mark.skipif(
    "fork" not in __import__("multiprocessing").get_all_start_methods(),
    reason="needs the fork start method",
)
def test_fits_in_a_forked_child_after_the_parent_fitted(big_problem):
    """Fits take a pool their process keeps from earlier fits; a child forked afterwards
    has no copy of its threads and starts its own instead of waiting on the parent's."""
    import multiprocessing

    X, y = big_problem
    X, y = X[:3000], y[:3000]
    params = dict(hidden_layer_sizes=(64,), max_iter=2, random_state=0, n_jobs=2)
    expected = MLPClassifier(**params).fit(X, y).coefs_  # a pool is now kept
    with multiprocessing.get_context("fork").Pool(1) as pool:
        result = pool.map_async(_fit_in_child, [(params, X, y)])
        got = result.get(timeout=120)[0]
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)
