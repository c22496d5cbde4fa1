# The Moré–Thuente line search of nnfast's L-BFGS (nnfast/_lbfgs.pyx), on raw float64 buffers.
from libc.math cimport fabs

# f(x) and its gradient at x (n,): write them to f[0] and grad, return 0; a non-zero return
# stops the run. A NaN or infinite f or gradient is a failed trial step.
ctypedef int (*ObjectiveFn)(void* context, const double* x, double* f,
                            double* grad) noexcept nogil


cdef struct Points:
    double* x           # the iterate x_k and its gradient
    double* g
    double* xt          # the trial point and its gradient (the accepted one on return)
    double* gt
    double* xb          # the best step of the search so far and its gradient
    double* gb
    double* d           # the search direction


cdef enum:
    LINE_ACCEPTED = 0   # the new point is in (xt, gt)
    LINE_FAILED = 1     # no point below f(x_k)
    LINE_ABORTED = 2    # the objective returned non-zero


cdef int line_search(ObjectiveFn objective, void* context, Points* p, Py_ssize_t n,
                     double f0, double g0, double step, double c1, double c2,
                     Py_ssize_t max_evaluations, double* f_new,
                     Py_ssize_t* evaluations) noexcept nogil


cdef extern from "lbfgs_vectors.h" nogil:
    # Vectorised for the CPU at hand, the same result on every path.
    double dot "nnf_dot" (const double* a, const double* b, Py_ssize_t n)
    void axpy "nnf_axpy" (double* y, double a, const double* x, Py_ssize_t n)
    void difference "nnf_difference" (double* out, const double* a, const double* b,
                                      Py_ssize_t n)
    void trial_point "nnf_trial_point" (double* out, const double* x, double step,
                                        const double* d, Py_ssize_t n)


cdef inline double max_abs(const double* a, Py_ssize_t n) noexcept nogil:
    """max |a_i|; NaN when any a_i is NaN."""
    cdef double m = 0
    cdef Py_ssize_t i
    for i in range(n):
        if fabs(a[i]) > m:
            m = fabs(a[i])
        elif a[i] != a[i]:
            return a[i]
    return m


cdef inline void swap(double** a, double** b) noexcept nogil:
    cdef double* t = a[0]
    a[0] = b[0]
    b[0] = t
