"""One consistent fitted state per call: how the estimators stay safe under threads.

A fit works on a private copy of the estimator's state and, when it is done, installs the
copy's attribute dictionary in one assignment; it never changes the estimator's attributes
one by one. A method that reads the fitted model (``predict``, ``transform`` …) runs on the
dictionary it found when it started. So a ``predict`` running while another thread refits
the same estimator uses the old model or the new one, entirely, and never a network of one
with the input width of the other. One fit at a time per estimator: a second concurrent
``fit`` raises ``RuntimeError``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import threading

# The ids of the estimators being fitted now, and the lock guarding that set. (The set is
# kept outside the estimators: a flag in an estimator's __dict__ would change it in place.)
_FITTING: set[int] = set()
_FITTING_LOCK = threading.Lock()

# Attributes that are views into the fitted network's parameter buffer: rebuilt, not copied.
_VIEWS = ("coefs_", "intercepts_", "_views")


@contextlib.contextmanager
def fitting(estimator):
    """Hold ``estimator`` for one fit; RuntimeError if another thread is fitting it."""
    with _FITTING_LOCK:
        if id(estimator) in _FITTING:
            raise RuntimeError(
                f"fit: this {type(estimator).__name__} is already being fitted in another "
                "thread; fit a clone (sklearn.base.clone) instead"
            )
        _FITTING.add(id(estimator))
    try:
        yield
    finally:
        with _FITTING_LOCK:
            _FITTING.discard(id(estimator))


def is_being_fitted(estimator) -> bool:
    """Whether a fit of ``estimator`` is under way (in any thread)."""
    with _FITTING_LOCK:
        return id(estimator) in _FITTING


def working_copy(estimator, deep=True):
    """A new instance of ``estimator``'s class for a fit to work on.

    With ``deep``, the fitted state (the network, the optimizer's buffers, the curves) is
    copied so that a warm start or ``partial_fit`` continues from it without touching the
    original; the constructor parameters are shared (a ``RandomState`` passed as
    ``random_state`` keeps advancing, as in scikit-learn). Without ``deep`` the copy holds
    the attributes themselves (for fits that replace every fitted attribute).
    """
    work = object.__new__(type(estimator))
    state = {key: value for key, value in estimator.__dict__.items() if key not in _VIEWS}
    if deep:
        parameters = estimator.get_params(deep=False)
        # An estimator never fitted holds its parameters only, which are shared anyway.
        if state.keys() - parameters.keys():
            memo = {id(value): value for value in parameters.values()}
            state = copy.deepcopy(state, memo)
    work.__dict__.update(state)
    return work


def install(estimator, work):
    """Make ``work``'s state ``estimator``'s, in one assignment."""
    estimator.__dict__ = work.__dict__


def consistent(method):
    """Run a method that reads the fitted model on the state the estimator has now.

    The method gets a stand-in sharing the estimator's current attribute dictionary; a fit
    finishing meanwhile replaces the estimator's dictionary, not this one.
    """

    @functools.wraps(method)
    def on_current_state(self, *args, **kwargs):
        stand_in = object.__new__(type(self))
        stand_in.__dict__ = self.__dict__
        return method(stand_in, *args, **kwargs)

    return on_current_state
