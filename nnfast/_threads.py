"""How many threads one call of nnfast may use: the ``n_threads`` argument.

``n_threads=None`` means the cores this process may use (``os.sched_getaffinity``), capped
by OpenMP's limit in force (``OMP_NUM_THREADS``, or threadpoolctl's
``threadpool_limits(..., user_api="openmp")``), as scikit-learn's OpenMP estimators count
them; an integer sets the number. Results are the same bytes for any number
(nnfast/_team.pyx), so the number only changes the time.

Calls running at the same time in several Python threads (ensemble members, a
``GridSearchCV`` on joblib's threading backend, a user's threads) share the cores: those
with ``n_threads=None`` draw from a process-wide budget, each getting the cores the
others have left (at least one), so that together they do not oversubscribe the machine.
An explicit integer is taken as given. Worker processes (joblib's loky, Dask) get their
limit from ``OMP_NUM_THREADS``, which joblib sets for each worker.

A call holds its number for everything it runs (:func:`use` sets a context variable that
the solver layer reads with :func:`current`): an estimator's fit, its validation scores
and the MLP calls beneath it use the count the outermost call was given.
"""

from __future__ import annotations

import contextvars
import os
import threading

from nnfast import _team
from nnfast._validation import check_int

_granted: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "nnfast_n_threads", default=None
)
_budget_lock = threading.Lock()
_in_use = 0


def allowed_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def effective_n_threads(n_threads=None) -> int:
    """The threads a call with this ``n_threads`` asks for: None resolves to the cores
    this process may use, capped by OpenMP's limit in force (``OMP_NUM_THREADS``,
    threadpoolctl); 1 in a build without OpenMP. An integer >= 1 is returned as it is."""
    if n_threads is None:
        return max(1, min(allowed_cores(), _team.max_threads()))
    return check_int(n_threads, "n_threads", 1)


def current() -> int:
    """The thread count of the call this code runs in (1 outside any)."""
    granted = _granted.get()
    return 1 if granted is None else granted


class use:
    """``with use(n_threads) as count:`` the calls inside run on up to ``count`` threads.

    Inside another ``use``, None keeps the outer call's count. Otherwise None takes what
    the process-wide budget has left of :func:`effective_n_threads` (at least 1) and gives
    it back on exit; an integer is taken as given, outside the budget.
    """

    __slots__ = ("n_threads", "_token", "_budgeted")

    def __init__(self, n_threads=None):
        if n_threads is not None:
            n_threads = check_int(n_threads, "n_threads", 1)
        self.n_threads = n_threads
        self._token = None
        self._budgeted = 0

    def __enter__(self) -> int:
        global _in_use
        count = self.n_threads
        if count is None:
            outer = _granted.get()
            if outer is not None:
                return outer
            wanted = effective_n_threads(None)
            with _budget_lock:
                count = max(1, min(wanted, wanted - _in_use))
                _in_use += count
            self._budgeted = count
        self._token = _granted.set(count)
        return count

    def __exit__(self, *exc_info):
        global _in_use
        if self._token is not None:
            _granted.reset(self._token)
            self._token = None
        if self._budgeted:
            with _budget_lock:
                _in_use -= self._budgeted
            self._budgeted = 0
        return False
