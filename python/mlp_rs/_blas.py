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

_lock = threading.Lock()
_state = {"controller": None, "users": 0, "limiter": None}


def _controller():
    # (made once, after scipy.optimize is imported: its BLAS is loaded by then; the
    # scan of the loaded libraries takes about a millisecond)
    if _state["controller"] is None:
        from threadpoolctl import ThreadpoolController

        _state["controller"] = ThreadpoolController()
    return _state["controller"]


class one_blas_thread:
    """Context manager: the BLAS libraries on one thread until the last of the fits
    that entered it leaves (the limits are the process's: a count, so that two fits
    from two Python threads do not restore each other's setting)."""

    def __enter__(self):
        with _lock:
            if _state["users"] == 0:
                _state["limiter"] = _controller().limit(limits=1, user_api="blas")
            _state["users"] += 1
        return self

    def __exit__(self, *exc):
        with _lock:
            _state["users"] -= 1
            if _state["users"] == 0:
                _state["limiter"].restore_original_limits()
                _state["limiter"] = None
        return False
