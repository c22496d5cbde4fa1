"""L-BFGS without the GIL: the minimiser, and its entry points for networks and for Python.

`lbfgs_minimize` minimises f over a float64 vector x (n,) through a C function pointer
(the network's loss, an analytic test problem, a Python callable behind a GIL-taking
trampoline). Each iteration steps along d = -H g, H the inverse-Hessian estimate of the
two-loop recursion over the last `memory` pairs (s, y) = (x_k+1 - x_k, g_k+1 - g_k) with
H0 = (s'y / y'y) I, to a step that satisfies the strong Wolfe conditions, found by the
Moré–Thuente line search (the method of MINPACK-2's dcsrch, which L-BFGS-B uses).
It stops as SciPy's L-BFGS-B stops on an unbounded problem: after max_iter iterations,
after an iteration that ended with more than max_fun evaluations, when max |g| <= gtol or
when the relative reduction (f_k - f_k+1) / max(|f_k|, |f_k+1|, 1) <= ftol.

Departures from L-BFGS-B, for robustness: a trial step where f or g is not finite is a
failed step that shortens the search (not a crash); a line search that ends without a
Wolfe point accepts the lowest point it saw when that is below f(x_k); when it saw none,
the memory is dropped and the search repeated along -γ g (γ of the last pair kept), and
only a failure there too ends the run ("stalled").
"""

from cython cimport floating
from libc.math cimport fabs, isfinite, sqrt
from libc.string cimport memcpy

from collections import namedtuple

import numpy as np

from nnfast._kernels cimport (
    cache_aligned_free,
    cache_aligned_malloc,
    cache_lines_of,
    loss_target_width,
)
from nnfast._network cimport Layout, NetLayout, check_target_shape, weight_penalty
from nnfast._team cimport team_loss_grad, team_size, team_workspace_size
from nnfast._linesearch cimport (
    LINE_ABORTED,
    LINE_FAILED,
    Points,
    axpy,
    difference,
    dot,
    line_search,
    max_abs,
    swap,
)

cdef double EPSILON = 2.220446049250313e-16
cdef double STEP_MAX = 1e10     # L-BFGS-B's bound on the step of an unbounded problem

STOP_REASONS = ("running", "gtol", "ftol", "max_iter", "max_fun", "stalled", "diverged",
                "callback", "aborted")
cdef double FTOL = 2.220446049250313e-09   # SciPy's default: factr 1e7 times machine epsilon
DEFAULT_FTOL = FTOL


cdef void default_options(LbfgsOptions* options) noexcept nogil:
    """SciPy's defaults for L-BFGS-B (maxcor 10, maxiter and maxfun 15000, maxls 20)."""
    options.memory = 10
    options.max_iter = 15000
    options.max_fun = 15000
    options.max_line_search = 20
    options.gtol = 1e-5
    options.ftol = FTOL
    options.c1 = 1e-3
    options.c2 = 0.9


cdef Py_ssize_t work_size(Py_ssize_t n, Py_ssize_t memory) noexcept nogil:
    """Doubles of work space: direction, two trial points with their gradients, and
    memory + 1 slots of pairs (one is written before the pair is judged) with their
    coefficients."""
    return n * (5 + 2 * (memory + 1)) + 2 * (memory + 1)


# ---- the minimiser -------------------------------------------------------------------------

cdef void two_loop(double* d, const double* g, const double* S, const double* Y,
                   const double* rho, double* alpha, Py_ssize_t n, Py_ssize_t slots,
                   Py_ssize_t newest, Py_ssize_t count, double gamma) noexcept nogil:
    """d = -H g, H the L-BFGS inverse Hessian of the `count` pairs ending at slot `newest`
    of the circular S, Y (slots, n), starting from H0 = gamma I."""
    cdef Py_ssize_t i, k, slot
    cdef double a
    for i in range(n):
        d[i] = -g[i]
    for k in range(count):
        slot = (newest - k + slots) % slots
        a = rho[slot] * dot(S + slot * n, d, n)
        alpha[slot] = a
        axpy(d, -a, Y + slot * n, n)
    for i in range(n):
        d[i] *= gamma
    for k in range(count - 1, -1, -1):
        slot = (newest - k + slots) % slots
        axpy(d, alpha[slot] - rho[slot] * dot(Y + slot * n, d, n), S + slot * n, n)


cdef void lbfgs_minimize(ObjectiveFn objective, IterationFn iteration_end, void* context,
                         double* x, double* grad, Py_ssize_t n, const LbfgsOptions* options,
                         double* work, LbfgsResult* result) noexcept nogil:
    """Minimise from x (n,); on return x is the last iterate and grad its gradient.

    work holds work_size(n, options.memory) doubles; nothing else is allocated.
    """
    cdef Py_ssize_t slots = options.memory + 1, i, count = 0, newest = 0, spare
    cdef Points p
    cdef double* S = work + 5 * n
    cdef double* Y = S + slots * n
    cdef double* rho = Y + slots * n
    cdef double* alpha = rho + slots
    cdef double f, f_new, g0, step, sy, yy, gs, gamma = 0.0
    cdef int status
    p.x, p.g = x, grad
    p.d, p.xt, p.gt, p.xb, p.gb = work, work + n, work + 2 * n, work + 3 * n, work + 4 * n
    result.iterations, result.evaluations, result.reason = 0, 1, STOP_RUNNING
    if objective(context, x, &f, grad) != 0:
        result.reason = STOP_ABORTED
    elif not (isfinite(f) and isfinite(max_abs(grad, n))):
        result.reason = STOP_DIVERGED
    elif max_abs(grad, n) <= options.gtol:
        result.reason = STOP_GTOL
    elif options.max_iter <= 0:
        result.reason = STOP_MAX_ITER
    while result.reason == STOP_RUNNING:
        if count > 0:
            two_loop(p.d, p.g, S, Y, rho, alpha, n, slots, newest, count, gamma)
            step = 1.0
        else:
            # Steepest descent: scaled by the last pair's gamma once there is one, else a
            # first step of unit length (L-BFGS-B's 1 / ||g||).
            for i in range(n):
                p.d[i] = -p.g[i]
            step = gamma if gamma > 0 else 1.0 / sqrt(dot(p.g, p.g, n))
        step = min(step, STEP_MAX)
        g0 = dot(p.g, p.d, n)
        status = LINE_FAILED
        if g0 < 0 and isfinite(step) and step > 0:
            status = line_search(objective, context, &p, n, f, g0, step, options.c1,
                                 options.c2, options.max_line_search, &f_new,
                                 &result.evaluations)
        if status == LINE_ABORTED:
            result.reason = STOP_ABORTED
            break
        if status == LINE_FAILED:
            if count > 0:
                count = 0   # drop the memory and search along steepest descent
                continue
            result.reason = STOP_STALLED
            break
        # The pair goes to the free slot; it is kept (the oldest then freed) unless its
        # curvature s'y is not clearly positive (L-BFGS-B's test: s'y > eps (-g_k's)):
        # H would not stay positive definite.
        spare = (newest + 1) % slots
        difference(S + spare * n, p.xt, p.x, n)
        difference(Y + spare * n, p.gt, p.g, n)
        sy = dot(S + spare * n, Y + spare * n, n)
        yy = dot(Y + spare * n, Y + spare * n, n)
        gs = dot(p.g, S + spare * n, n)
        if sy > EPSILON * -gs and yy > 0:
            newest = spare
            rho[newest] = 1.0 / sy
            gamma = sy / yy
            count = min(count + 1, slots - 1)
        swap(&p.x, &p.xt)
        swap(&p.g, &p.gt)
        result.iterations += 1
        # SciPy's order: callback, max_iter, max_fun, then the convergence tests.
        if iteration_end != NULL and iteration_end(context, result.iterations, p.x, f_new,
                                                   p.g) != 0:
            result.reason = STOP_CALLBACK
        elif result.iterations >= options.max_iter:
            result.reason = STOP_MAX_ITER
        elif result.evaluations > options.max_fun:
            result.reason = STOP_MAX_FUN
        elif max_abs(p.g, n) <= options.gtol:
            result.reason = STOP_GTOL
        elif f - f_new <= options.ftol * max(max(fabs(f), fabs(f_new)), 1.0):
            result.reason = STOP_FTOL
        f = f_new
    result.f = f
    if p.x != x:
        memcpy(x, p.x, n * sizeof(double))
        memcpy(grad, p.g, n * sizeof(double))


# ---- the network driver --------------------------------------------------------------------

cdef extern from "Python.h":
    # Declared without an exception clause: the caller looks at the result itself.
    int run_signal_handlers "PyErr_CheckSignals" ()

cdef Py_ssize_t CHUNK_ROWS = 1024     # rows per forward/backward pass (as nnfast._network)
# Python's signal handlers (Ctrl-C) run at most this often, as in nnfast._train.
cdef double SIGNAL_CHECK_SECONDS = 0.1


cdef extern from "monotonic.h" nogil:
    # clock_gettime(CLOCK_MONOTONIC) on POSIX, QueryPerformanceCounter on Windows
    double monotonic_seconds "nnf_monotonic_seconds"() noexcept


cdef bint signal_raised() noexcept nogil:
    """Run Python's signal handlers (taking the GIL); True when one raised (the exception
    stays set for the caller to propagate)."""
    with gil:
        return run_signal_handlers() != 0


cdef int propagate_exception() except -1:
    """Raise the exception already set (by a signal handler)."""
    return -1


cdef struct NetworkProblem:
    const NetLayout* net
    const void* X           # (n, n_in), (n, y_cols), (n,) or NULL: the network's dtype
    const void* Y
    const void* w
    void* params            # the network's parameters: the rounded iterate (float32)
    void* grad              # float32 gradient (float64 networks use the minimiser's)
    void* ws
    bint float32
    Py_ssize_t n, rows, y_cols
    double inv_weight_sum, l2
    int loss
    int team                # threads of each chunk's pass (nnfast/_team.pyx)
    double next_check
    bint interrupted
    double* losses          # (n_losses,) each iteration's loss
    Py_ssize_t n_losses
    void* hook              # a Python callable iteration_end(iteration, loss), or NULL
    void* errors            # a Python list that receives the hook's exception


cdef bint interrupted(NetworkProblem* p) noexcept nogil:
    """Ctrl-C, checked when SIGNAL_CHECK_SECONDS have passed since the last check."""
    if monotonic_seconds() < p.next_check:
        return False
    if signal_raised():
        p.interrupted = True
        return True
    p.next_check = monotonic_seconds() + SIGNAL_CHECK_SECONDS
    return False


cdef int evaluate_network(NetworkProblem* p, const floating* params, floating* grad,
                          const double* x, double* f, double* g) noexcept nogil:
    """f = data loss + 0.5 l2 ΣW² at params and its gradient in grad, over all rows."""
    cdef const floating* X = <const floating*>p.X
    cdef const floating* Y = <const floating*>p.Y
    cdef const floating* w = <const floating*>p.w
    cdef Py_ssize_t start = 0, size, i, n_in = p.net.n_in
    cdef double total = 0
    while start < p.n:
        if interrupted(p):
            return 1
        size = min(p.rows, p.n - start)
        total += team_loss_grad(p.net, params, X + start * n_in, Y + start * p.y_cols,
                                w + start if w != NULL else NULL, size, p.rows,
                                p.inv_weight_sum, p.loss, grad, start > 0, 0.0, NULL,
                                <floating*>p.ws, p.team)
        start += size
    if p.l2 != 0:
        total += weight_penalty(p.net, params, grad, p.l2)
    if floating is float:
        for i in range(p.net.n_params):
            g[i] = grad[i]
    f[0] = total
    return 0


cdef int network_objective(void* context, const double* x, double* f,
                           double* g) noexcept nogil:
    cdef NetworkProblem* p = <NetworkProblem*>context
    cdef float* params
    cdef Py_ssize_t i
    if p.float32:
        params = <float*>p.params
        for i in range(p.net.n_params):
            params[i] = <float>x[i]
        return evaluate_network(p, <const float*>params, <float*>p.grad, x, f, g)
    # float64: the iterate itself is evaluated, the gradient lands in the minimiser's.
    return evaluate_network(p, x, g, x, f, g)


cdef void store_iterate(NetworkProblem* p, const double* x) noexcept nogil:
    """The network's parameters = x, rounded to its dtype."""
    cdef Py_ssize_t i
    if p.float32:
        for i in range(p.net.n_params):
            (<float*>p.params)[i] = <float>x[i]
    else:
        memcpy(p.params, x, p.net.n_params * sizeof(double))


cdef int network_iteration_end(void* context, Py_ssize_t iteration, const double* x,
                               double f, const double* g) noexcept nogil:
    """Record the loss; with a hook, call it (with the GIL) at the new parameters."""
    cdef NetworkProblem* p = <NetworkProblem*>context
    if iteration <= p.n_losses:
        p.losses[iteration - 1] = f
    if p.hook == NULL:
        return 1 if interrupted(p) else 0
    store_iterate(p, x)
    return call_hook(p, iteration, f)


cdef int call_hook(NetworkProblem* p, Py_ssize_t iteration, double f) noexcept with gil:
    """network_iteration_end's hook, with the GIL. A function of its own: a nogil function
    holding a Python object (the exception) takes the GIL at every return, which a busy
    Python thread would make wait up to its switch interval each iteration."""
    if run_signal_handlers() != 0:
        p.interrupted = True
        return 1
    try:
        return 1 if (<object>p.hook)(iteration, f) is False else 0
    except BaseException as err:
        (<list>p.errors).append(err)
        return 1


def fit_lbfgs(Layout layout, floating[::1] params, const floating[:, ::1] X,
              const floating[:, ::1] Y, const floating[::1] w, int loss,
              double inv_weight_sum, double l2, Py_ssize_t max_iter, Py_ssize_t max_fun,
              double gtol, double ftol, Py_ssize_t memory, double[::1] losses,
              iteration_end=None, int n_threads=1):
    """Minimise the full-batch loss + 0.5 l2 ΣW² over params (in place) by L-BFGS.

    params (n_params,); X (n, n_in); Y (n, n_out), or (n, n_out / 2) for gaussian_nll;
    w (n,) or None; losses (>= min(max_iter, max_fun),) receives each iteration's loss
    (with a hook, which sees every loss, it may be shorter: the first iterations' only).
    The iterate is float64; a float32 network is evaluated at its rounding. With
    `iteration_end(iteration, loss)` (the GIL is taken for it after every iteration, with
    params at the new iterate), a False return stops the run. Returns
    (iterations, evaluations, stop reason code (an index of STOP_REASONS), final loss);
    params hold the last iterate. Ctrl-C, or an exception in the hook, propagates with
    params at the last iterate and `.lbfgs_state` = (iterations, evaluations) on the
    exception. Each evaluation's passes run on up to n_threads threads when they are large
    enough to gain from them (the iterates are the same on any number).
    """
    cdef NetworkProblem p
    cdef LbfgsOptions options
    cdef LbfgsResult result
    cdef const NetLayout* net = &layout.c
    cdef Py_ssize_t n = X.shape[0], n_params = net.n_params, doubles, ws_len, i
    cdef double* block
    cdef list errors = []
    if n == 0:
        raise ValueError("X: expected at least one sample, got 0 rows")
    if params.shape[0] != n_params or X.shape[1] != net.n_in:
        raise ValueError(f"fit_lbfgs: params must hold {n_params} values and X "
                         f"{net.n_in} columns, got {params.shape[0]} and {X.shape[1]}")
    check_target_shape(Y.shape[0], Y.shape[1], loss, net, n)
    if w is not None and w.shape[0] != n:
        raise ValueError(f"sample_weight: expected {n} values, got {w.shape[0]}")
    if memory < 1 or max_iter < 0 or max_fun < 1 or not (gtol >= 0 and ftol >= 0):
        raise ValueError("fit_lbfgs: expected memory >= 1, max_iter >= 0, max_fun >= 1, "
                         f"gtol >= 0 and ftol >= 0, got {memory}, {max_iter}, {max_fun}, "
                         f"{gtol} and {ftol}")
    if n_threads < 1:
        raise ValueError(f"n_threads: expected an integer >= 1, got {n_threads}")
    if iteration_end is None and losses.shape[0] < min(max_iter, max_fun):
        raise ValueError(f"fit_lbfgs: losses must hold min(max_iter, max_fun) = "
                         f"{min(max_iter, max_fun)} values, got {losses.shape[0]}")
    default_options(&options)
    options.memory, options.max_iter, options.max_fun = memory, max_iter, max_fun
    options.gtol, options.ftol = gtol, ftol
    p.net, p.n, p.rows = net, n, min(n, CHUNK_ROWS)
    p.team = team_size(net, p.rows, n_threads, 3)
    p.X, p.Y = &X[0, 0], &Y[0, 0]
    p.w = NULL if w is None else <const void*>&w[0]
    p.y_cols = loss_target_width(loss, net.n_out)
    p.loss, p.inv_weight_sum, p.l2 = loss, inv_weight_sum, l2
    p.float32 = floating is float
    p.params = &params[0]
    p.losses, p.n_losses = &losses[0] if losses.shape[0] else NULL, losses.shape[0]
    p.hook = NULL if iteration_end is None else <void*>iteration_end
    p.errors = <void*>errors
    p.interrupted = False
    # One block: the iterate and its gradient, the minimiser's work, then in the network's
    # dtype its workspace and (float32) its gradient, the workspace starting on a cache line.
    doubles = cache_lines_of(2 * n_params + work_size(n_params, memory), sizeof(double))
    ws_len = cache_lines_of(team_workspace_size(net, p.rows, p.team), sizeof(floating))
    block = <double*>cache_aligned_malloc(doubles * sizeof(double)
                                          + (ws_len + n_params) * sizeof(floating))
    if block == NULL:
        raise MemoryError("nnfast: cannot allocate the L-BFGS workspace")
    p.ws = block + doubles
    p.grad = <floating*>p.ws + ws_len
    try:
        for i in range(n_params):
            block[i] = params[i]
        with nogil:
            p.next_check = monotonic_seconds() + SIGNAL_CHECK_SECONDS
            lbfgs_minimize(network_objective, network_iteration_end, &p, block,
                           block + n_params, n_params, &options, block + 2 * n_params,
                           &result)
            store_iterate(&p, block)
        if p.interrupted or errors:
            try:
                if errors:
                    raise errors[0]
                propagate_exception()
            except BaseException as err:
                err.lbfgs_state = (result.iterations, result.evaluations)
                raise
        return result.iterations, result.evaluations, result.reason, result.f
    finally:
        cache_aligned_free(block)


# ---- Python objectives (tests, users) --------------------------------------------------------

MinimizeResult = namedtuple("MinimizeResult", "x fun jac nit nfev stop_reason")


cdef struct PythonProblem:
    void* fun               # fun(x) -> (f, g)
    void* callback          # callback(x, f) -> False to stop, or NULL
    void* errors            # a Python list that receives the first exception
    Py_ssize_t n


cdef int python_objective(void* context, const double* x, double* f,
                          double* g) noexcept nogil:
    cdef PythonProblem* p = <PythonProblem*>context
    cdef double[::1] grad_out
    with gil:
        try:
            value, grad = (<object>p.fun)(np.array(<double[:p.n]><double*>x))
            grad = np.asarray(grad, dtype=np.float64)
            if grad.shape != (p.n,):
                raise ValueError(f"fun: expected a gradient of shape ({p.n},), got "
                                 f"{grad.shape}")
            grad_out = np.ascontiguousarray(grad)
            memcpy(g, &grad_out[0], p.n * sizeof(double))
            f[0] = float(value)
            return 0
        except BaseException as err:
            (<list>p.errors).append(err)
            return 1


cdef int python_iteration_end(void* context, Py_ssize_t iteration, const double* x, double f,
                              const double* g) noexcept nogil:
    cdef PythonProblem* p = <PythonProblem*>context
    if p.callback == NULL:
        return 0
    with gil:
        try:
            return 1 if (<object>p.callback)(np.array(<double[:p.n]><double*>x), f) is False \
                else 0
        except BaseException as err:
            (<list>p.errors).append(err)
            return 1


def minimize(fun, x0, *, Py_ssize_t max_iter=15000, Py_ssize_t max_fun=15000,
             double gtol=1e-5, double ftol=DEFAULT_FTOL, Py_ssize_t memory=10,
             Py_ssize_t max_line_search=20, callback=None):
    """Minimise fun(x) -> (f, gradient) from x0 by the compiled L-BFGS; returns
    MinimizeResult(x, fun, jac, nit, nfev, stop_reason).

    The minimiser that fits networks, driven by a Python callable (the GIL is taken for
    each call). `callback(x, f)` runs after every iteration; False stops. Stops as SciPy's
    L-BFGS-B (max_iter, max_fun, max |g| <= gtol, relative reduction <= ftol); an
    exception raised by fun or callback propagates.
    """
    cdef PythonProblem p
    cdef LbfgsOptions options
    cdef LbfgsResult result
    cdef list errors = []
    cdef double[::1] x
    cdef double[::1] grad
    cdef double[::1] work
    if not callable(fun) or (callback is not None and not callable(callback)):
        raise TypeError("minimize: fun (and callback, unless None) must be callable")
    x = np.array(x0, dtype=np.float64).reshape(-1)
    if x.shape[0] == 0:
        raise ValueError("x0: expected at least one value, got none")
    if memory < 1 or max_iter < 0 or max_fun < 1 or max_line_search < 1:
        raise ValueError("minimize: expected memory, max_fun and max_line_search >= 1 and "
                         f"max_iter >= 0, got {memory}, {max_fun}, {max_line_search} and "
                         f"{max_iter}")
    if not (gtol >= 0 and ftol >= 0):
        raise ValueError(f"minimize: expected gtol >= 0 and ftol >= 0, got {gtol} and {ftol}")
    default_options(&options)
    options.memory, options.max_iter, options.max_fun = memory, max_iter, max_fun
    options.max_line_search, options.gtol, options.ftol = max_line_search, gtol, ftol
    grad = np.empty(x.shape[0])
    work = np.empty(work_size(x.shape[0], memory))
    p.fun, p.errors, p.n = <void*>fun, <void*>errors, x.shape[0]
    p.callback = NULL if callback is None else <void*>callback
    with nogil:
        lbfgs_minimize(python_objective, python_iteration_end, &p, &x[0], &grad[0],
                       x.shape[0], &options, &work[0], &result)
    if errors:
        raise errors[0]
    return MinimizeResult(np.asarray(x), result.f, np.asarray(grad), result.iterations,
                          result.evaluations, STOP_REASONS[result.reason])
