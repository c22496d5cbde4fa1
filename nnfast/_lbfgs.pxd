# L-BFGS over a float64 vector, without the GIL: the objective is a C function pointer.

# ObjectiveFn(context, x, &f, grad): f(x) and its gradient; non-zero return = STOP_ABORTED.
from nnfast._linesearch cimport ObjectiveFn

# Called after each iteration with the new iterate; a non-zero return stops (STOP_CALLBACK).
ctypedef int (*IterationFn)(void* context, Py_ssize_t iteration, const double* x, double f,
                            const double* grad) noexcept nogil

cdef enum:
    STOP_RUNNING = 0
    STOP_GTOL = 1        # max |g| <= gtol
    STOP_FTOL = 2        # (f_k - f_k+1) / max(|f_k|, |f_k+1|, 1) <= ftol
    STOP_MAX_ITER = 3
    STOP_MAX_FUN = 4     # more than max_fun evaluations at the end of an iteration
    STOP_STALLED = 5     # no decrease along steepest descent either
    STOP_DIVERGED = 6    # f or its gradient not finite at the starting point
    STOP_CALLBACK = 7
    STOP_ABORTED = 8     # the objective returned non-zero


cdef struct LbfgsOptions:
    Py_ssize_t memory            # correction pairs kept (SciPy's maxcor)
    Py_ssize_t max_iter
    Py_ssize_t max_fun           # checked at the end of each iteration, as SciPy does
    Py_ssize_t max_line_search   # evaluations per line search (SciPy's maxls)
    double gtol
    double ftol
    double c1                    # sufficient decrease: f(a) <= f(0) + c1 a f'(0)
    double c2                    # curvature: |f'(a)| <= c2 |f'(0)|


cdef struct LbfgsResult:
    Py_ssize_t iterations
    Py_ssize_t evaluations
    int reason
    double f                     # at the returned x


cdef void default_options(LbfgsOptions* options) noexcept nogil
cdef Py_ssize_t work_size(Py_ssize_t n, Py_ssize_t memory) noexcept nogil
cdef void lbfgs_minimize(ObjectiveFn objective, IterationFn iteration_end, void* context,
                         double* x, double* grad, Py_ssize_t n, const LbfgsOptions* options,
                         double* work, LbfgsResult* result) noexcept nogil
