"""The solver layer's L-BFGS: full-batch fits of a network by one of two minimisers.

With :mod:`nnfast._solvers` this is the solver layer, the only Python that calls the
compiled drivers. :func:`run_lbfgs` fits :class:`nnfast.MLP` (``optimizer="lbfgs"`` /
``"lbfgs_scipy"``) and the scikit-learn estimators (``solver="lbfgs"`` / ``"lbfgs_scipy"``):

- ``"compiled"`` (the default): nnfast's own L-BFGS (``nnfast._lbfgs.fit_lbfgs``), the
  whole run in one call without the GIL: two-loop recursion over the last 10 pairs, a
  strong-Wolfe (Moré–Thuente) line search, the compiled loss and gradient, a float64
  iterate for float32 networks. Python runs between iterations only for validation,
  verbose output or a callback.
- ``"scipy"``: ``scipy.optimize.minimize(method="L-BFGS-B")`` over the flat buffer, the
  minimiser scikit-learn uses: its iterates are scikit-learn's own.

Both stop as L-BFGS-B stops an unbounded problem (``max_iter`` iterations, more than
``max_fun`` evaluations at the end of an iteration, ``max |g| <= tol``, a relative
reduction ``(f_k - f_k+1) / max(|f_k|, |f_k+1|, 1) <= 2.2e-9``) and report it in the
History (``stop_reason``) and in an :class:`LbfgsResult` shaped like SciPy's.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time

import numpy as np

from nnfast import _lbfgs, _threads
from nnfast._history import History
from nnfast._solvers import compiled
from nnfast._spec import LOSS_CODES

METHODS = ("compiled", "scipy")

# What the estimators read of a run, with SciPy's meanings: status 0 converged (gtol or
# ftol), 1 a limit reached (max_iter, max_fun), 2 anything else.
LbfgsResult = collections.namedtuple("LbfgsResult", "fun nit nfev status message")

# The compiled minimiser's stop reasons (nnfast._lbfgs.STOP_REASONS) -> (History stop
# reason, SciPy status, SciPy's message for the same stop).
_COMPILED_STOPS = {
    "gtol": ("converged", 0, "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL"),
    "ftol": ("converged", 0, "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH"),
    "max_iter": ("completed", 1, "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"),
    "max_fun": ("max_fun", 1, "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT"),
    "stalled": ("stalled", 2, "ABNORMAL: THE LINE SEARCH FOUND NO LOWER POINT"),
    "diverged": ("diverged", 2, "ABNORMAL: THE LOSS IS NOT FINITE AT THE START"),
    "callback": ("callback", 2, "STOP: CALLBACK REQUESTED HALT"),
}
_MEMORY = 10  # correction pairs kept: SciPy's maxcor


def run_lbfgs(
    net,
    X,
    Y,
    w,
    loss,
    l2,
    inv_wsum,
    max_iter,
    max_fun,
    tol,
    validation=None,
    callback=None,
    verbose=False,
    label="iteration",
    method="compiled",
):
    """Full-batch L-BFGS on validated arrays; returns ``(History, LbfgsResult)`` (result
    None when max_iter is 0), the weights of the last accepted iterate kept on failure.

    The objective is ``data_loss * (inv_wsum · Σw) + 0.5 · l2 · ΣW²`` for the loss named
    `loss`: ``inv_wsum`` is ``1 / Σw`` for :meth:`nnfast.MLP.loss` and may carry an extra
    scale (the estimators' loss conventions). One History epoch is one iteration.
    ``method`` is ``"compiled"`` or ``"scipy"`` (see the module's docstring). Raises
    FloatingPointError (diverged) and KeyboardInterrupt with ``.history``.
    """
    history = History()
    if max_iter == 0:
        return history, None
    net = compiled(net)
    code = LOSS_CODES[loss]
    started = time.perf_counter()
    stopped_by_callback = False

    def iteration_end(iteration, value):
        """After each accepted iterate (params hold it): validation, verbose, callback."""
        nonlocal stopped_by_callback
        if validation is not None:
            Xv, Yv, inv_wsum_v = validation
            history.val_loss.append(float(net.loss(Xv, Yv, None, code, inv_wsum_v, l2)))
        if verbose:
            val_text = f"  val_loss {history.val_loss[-1]:.6g}" if validation else ""
            print(
                f"{label} {iteration:>{len(str(max_iter))}}/{max_iter}  loss {value:.6g}"
                f"{val_text}  ({time.perf_counter() - started:.2f} s)",
                flush=True,
            )
        if callback is not None and callback(iteration, value) is False:
            stopped_by_callback = True
            return False
        return True

    per_iteration = validation is not None or verbose or callback is not None
    problem = (net, X, Y, w, code, l2, inv_wsum, max_iter, max_fun, tol)
    if method == "scipy":
        run = _run_scipy
    elif isinstance(X, np.ndarray):
        run = _run_compiled
    else:  # sparse rows: the same minimiser, the loss evaluated a chunk of rows at a time
        run = _run_compiled_sparse
    try:
        result = run(problem, history, iteration_end if per_iteration else None)
    except BaseException:
        # Stopped inside an iteration (Ctrl-C, the callback raised): the weights are those
        # of the last recorded iterate, whose validation loss may not be recorded yet.
        if validation is not None and len(history.val_loss) < history.epochs:
            Xv, Yv, inv_wsum_v = validation
            history.val_loss.append(float(net.loss(Xv, Yv, None, code, inv_wsum_v, l2)))
        raise
    if stopped_by_callback:
        history.stop_reason = "callback"
    if history.stop_reason == "diverged":
        err = FloatingPointError(
            "fit: the L-BFGS loss or the weights became NaN or infinite after "
            f"{history.epochs} iterations; the weights of the last finite iteration were "
            "kept. Scaling the inputs and targets usually helps."
        )
        err.history = history
        raise err
    return history, result


# ---- nnfast's compiled L-BFGS ----------------------------------------------------------------


_MAX_RECORDED = 1 << 20  # iterations whose losses the driver records in an array (8 MB)


def _run_compiled(problem, history, iteration_end):
    """One call of ``_lbfgs.fit_lbfgs``: the whole run without the GIL (taken after each
    iteration only when there is an `iteration_end` hook)."""
    net, X, Y, w, code, l2, inv_wsum, max_iter, max_fun, tol = problem
    # At most min(max_iter, max_fun) iterations: each one evaluates the loss at least once.
    # Beyond _MAX_RECORDED, a hook records them instead (taking the GIL per iteration).
    limit = min(max_iter, max_fun)
    recorded = limit <= _MAX_RECORDED
    losses = np.empty(limit if recorded else 0)
    hook = iteration_end
    if not recorded:

        def hook(iteration, value):
            history.loss.append(float(value))
            return True if iteration_end is None else iteration_end(iteration, value)

    try:
        iterations, evaluations, reason, value = _lbfgs.fit_lbfgs(
            net.layout,
            net.params,
            X,
            Y,
            w,
            code,
            inv_wsum,
            l2,
            max_iter,
            max_fun,
            tol,
            _lbfgs.DEFAULT_FTOL,
            _MEMORY,
            losses,
            hook,
            _threads.current(),
        )
    except BaseException as err:
        # Ctrl-C, or an exception in the hook: params hold the last iterate.
        iterations = getattr(err, "lbfgs_state", (0, 0))[0]
        if recorded:
            history.loss.extend(float(v) for v in losses[:iterations])
        elif history.epochs < iterations:  # Ctrl-C came before the hook saw the iterate
            history.loss.append(float(net.loss(X, Y, w, code, inv_wsum, l2)))
        if isinstance(err, KeyboardInterrupt):
            history.stop_reason = "interrupted"
            err.history = history
        raise
    if recorded:
        history.loss.extend(float(v) for v in losses[:iterations])
    stop_reason, status, message = _COMPILED_STOPS[_lbfgs.STOP_REASONS[reason]]
    history.stop_reason = stop_reason
    return LbfgsResult(float(value), iterations, evaluations, status, message)


def _run_compiled_sparse(problem, history, iteration_end):
    """The compiled minimiser (``_lbfgs.minimize``, the one ``fit_lbfgs`` runs) over sparse
    X: each evaluation is ``CompiledNetwork.loss_and_grad``, which densifies X a chunk of
    rows at a time, so the GIL is taken per evaluation. The chunks are those of the dense
    loss, so the iterates equal those of ``_run_compiled`` on ``X.toarray()``."""
    net, X, Y, w, code, l2, inv_wsum, max_iter, max_fun, tol = problem
    grad = np.empty_like(net.params)
    accepted = np.array(net.params, dtype=np.float64)  # the last accepted iterate

    def objective(x):
        net.params[:] = x  # (a float32 network is evaluated at the iterate's rounding)
        value = net.loss_and_grad(X, Y, w, code, inv_wsum, grad, l2)
        return value, grad

    def after_iteration(x, value):
        accepted[:] = x
        net.params[:] = x
        history.loss.append(float(value))
        return True if iteration_end is None else iteration_end(history.epochs, value)

    try:
        result = _lbfgs.minimize(
            objective,
            accepted,
            max_iter=max_iter,
            max_fun=max_fun,
            gtol=tol,
            ftol=_lbfgs.DEFAULT_FTOL,
            memory=_MEMORY,
            callback=after_iteration,
        )
    except BaseException as err:
        net.params[:] = accepted  # a trial point may be in params
        if isinstance(err, KeyboardInterrupt):
            history.stop_reason = "interrupted"
            err.history = history
        raise
    net.params[:] = result.x
    stop_reason, status, message = _COMPILED_STOPS[result.stop_reason]
    history.stop_reason = stop_reason
    return LbfgsResult(float(result.fun), result.nit, result.nfev, status, message)


# ---- SciPy's L-BFGS-B ------------------------------------------------------------------------

_BLAS_CONTROLLER = None
_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0  # fits inside _one_blas_thread now
_BLAS_LIMITER = None  # the limit they share: restored when the last of them leaves


@contextlib.contextmanager
def _one_blas_thread():
    """A context in which BLAS runs on one thread (needs threadpoolctl, which comes with
    scikit-learn; without it, a context that does nothing).

    SciPy's L-BFGS-B makes a few tiny BLAS calls per iteration. With OpenBLAS's default
    thread pool each costs far more than the arithmetic: here a 481-parameter fit ran its
    iterations 2-6x slower on an idle machine and up to 100x slower on a busy one.
    Concurrent fits share one limit, set by the first and restored by the last to leave
    (each restoring its own would restore out of order and leave one thread for good).
    """
    global _BLAS_CONTROLLER, _BLAS_USERS, _BLAS_LIMITER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        yield
        return
    with _BLAS_LOCK:
        if _BLAS_CONTROLLER is None:  # scanning the loaded libraries takes milliseconds
            _BLAS_CONTROLLER = ThreadpoolController()
        if _BLAS_USERS == 0:
            _BLAS_LIMITER = _BLAS_CONTROLLER.limit(limits=1, user_api="blas")
        _BLAS_USERS += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0:
                _BLAS_LIMITER.restore_original_limits()
                _BLAS_LIMITER = None


def _run_scipy(problem, history, iteration_end):
    """SciPy's L-BFGS-B from the network's parameters (as float64); params end at the
    last finite iterate."""
    net, X, Y, w, code, l2, inv_wsum, max_iter, max_fun, tol = problem
    params = net.params
    last_good = params.copy()  # the last accepted iterate: restored on failure

    def after_iteration(x, value):
        if not (np.isfinite(value) and np.isfinite(x).all()):
            return False
        last_good[...] = x
        history.loss.append(value)
        if iteration_end is None:
            return True
        params[...] = x
        return iteration_end(len(history.loss), value)

    try:
        result = _minimize_lbfgs(
            net,
            X,
            Y,
            w,
            code,
            l2,
            inv_wsum,
            last_good.astype(np.float64),
            after_iteration,
            max_iter,
            max_fun,
            tol,
        )
    except KeyboardInterrupt as err:
        params[...] = last_good
        history.stop_reason = "interrupted"
        err.history = history
        raise
    x = result.x.astype(net.dtype)
    finite = bool(np.isfinite(result.fun) and np.isfinite(x).all())
    params[...] = x if finite else last_good
    history.stop_reason = _lbfgs_stop_reason(result, history, finite, max_iter, max_fun)
    message = result.message
    if isinstance(message, bytes):
        message = message.decode("latin1")
    return LbfgsResult(float(result.fun), result.nit, result.nfev, result.status, message)


def _minimize_lbfgs(net, X, Y, w, loss, l2, inv_wsum, x0, iteration_end, max_iter, max_fun, tol):
    """SciPy's L-BFGS-B over the flat buffer.

    Minimises ``net.loss(X, Y, w, loss, inv_wsum, l2)`` over the parameters from x0 (float64);
    ``iteration_end(x, value)`` after each iteration returns False to stop. Returns a
    ``scipy.optimize.OptimizeResult`` (x, fun, status, nit, nfev, message). scipy's float64
    vector is copied into ``params`` on each call — the compiled loss and gradient run on
    the flat buffer itself, nothing is repacked.
    """
    import scipy.optimize

    params = net.params
    grad = np.empty_like(params)

    def objective(x):
        params[...] = x
        value = net.loss_and_grad(X, Y, w, loss, inv_wsum, grad, l2)
        # float64 and a fresh array: scipy keeps references to returned gradients.
        return value, grad.astype(np.float64)

    def callback(intermediate_result):  # scipy passes the result by this name
        if iteration_end(intermediate_result.x, float(intermediate_result.fun)) is False:
            raise StopIteration

    with np.errstate(over="ignore", invalid="ignore"), _one_blas_thread():
        return scipy.optimize.minimize(
            objective,
            x0,
            method="L-BFGS-B",
            jac=True,
            callback=callback,
            options={"maxiter": max_iter, "maxfun": max_fun, "gtol": tol},
        )


def _lbfgs_stop_reason(result, history, finite, max_iter, max_fun):
    if not finite or (result.status != 0 and history.loss and not np.isfinite(history.loss[-1])):
        return "diverged"
    if result.status == 0:
        return "converged"
    if result.nit >= max_iter:
        return "completed"
    if result.nfev >= max_fun:
        return "max_fun"
    return "stalled"
