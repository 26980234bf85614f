"""BLAS libraries kept to one thread while an L-BFGS fit runs.

scipy's L-BFGS-B calls its BLAS (``ddot``, ``daxpy``) on vectors as long as the model's
parameters; OpenBLAS splits those of more than 10,000 values over its threads, which
then spin for about 0.1 s after each call, beside the engine's threads computing the
next loss and gradient. On two cores a two-thread L-BFGS fit (Fashion-MNIST, 10,000
rows, 784-256-10, float64) took 1.51 s against 1.42 s on one thread, 0.89 s with
scipy's BLAS on one thread (Intel host, 2026-12-07). One thread also makes the solver's
sums the same whatever the machine's core count.
"""

import threading

from sklearn.utils.parallel import _get_threadpool_controller

_lock = threading.Lock()
_state = {"users": 0, "limiter": None}


class one_blas_thread:
    """Context manager: the BLAS libraries on one thread until the last of the fits
    that entered it leaves (the limits are the process's: a count, so that two fits
    from two Python threads do not restore each other's setting)."""

    def __enter__(self):
        with _lock:
            if _state["users"] == 0:
                # (scikit-learn's controller, made once: the scan of the loaded
                # libraries takes a few milliseconds)
                controller = _get_threadpool_controller()
                _state["limiter"] = controller.limit(limits=1, user_api="blas")
            _state["users"] += 1
        return self

    def __exit__(self, *exc):
        with _lock:
            _state["users"] -= 1
            if _state["users"] == 0:
                _state["limiter"].restore_original_limits()
                _state["limiter"] = None
        return False
