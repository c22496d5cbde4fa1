# Compiled kernels of nnfast: dense products, activations, losses, optimizer updates.
#
# Every kernel is `noexcept nogil`, works on raw C-contiguous buffers of one floating
# type (float32 or float64 through the fused type `floating`) and checks nothing: the
# Python layer (nnfast/kernels.py, nnfast/network.py) validates shapes and dtypes first.
# Argument order: outputs first, then const inputs, then sizes.
from cython cimport floating

# Activation codes: defined here only. Python reads them as nnfast._kernels.Activation;
# nnfast._spec.ACTIVATION_CODES maps each name to its code.
cpdef enum Activation:
    ACT_IDENTITY = 0
    ACT_SIGMOID = 1
    ACT_TANH = 2
    ACT_RELU = 3
    ACT_LEAKY_RELU = 4
    ACT_ELU = 5
    ACT_MAXOUT = 6
    ACT_SOFTMAX = 7
    ACT_EXP = 8

# Loss codes: defined here only (Python: nnfast._kernels.Loss, nnfast._spec.LOSS_CODES).
cpdef enum Loss:
    LOSS_MSE = 0
    LOSS_CROSS_ENTROPY = 1
    LOSS_BINARY_CROSS_ENTROPY = 2
    LOSS_POISSON = 3
    LOSS_GAUSSIAN_NLL = 4

# Activation parameters shared by every layer of a network.
cdef struct ActParams:
    double leaky_slope
    double elu_alpha
    Py_ssize_t pieces   # maxout pieces (1 for other activations)

# ---- products -----------------------------------------------------------------------
cdef void matvec(floating* y, const floating* A, const floating* x,
                 Py_ssize_t m, Py_ssize_t n) noexcept nogil
cdef void matmul(floating* C, const floating* A, const floating* B,
                 Py_ssize_t m, Py_ssize_t k, Py_ssize_t n, bint accumulate) noexcept nogil
cdef void matmul_tn(floating* C, const floating* A, const floating* B,
                    Py_ssize_t m, Py_ssize_t k, Py_ssize_t n, bint accumulate) noexcept nogil
cdef void matmul_nt(floating* C, const floating* A, const floating* B,
                    Py_ssize_t m, Py_ssize_t k, Py_ssize_t n, bint accumulate,
                    floating* scratch) noexcept nogil
# dZ = (A @ B.T) * (1 - T²): matmul_nt fused with tanh_backward (T: tanh's output), same values.
cdef void matmul_nt_tanh_backward(floating* dZ, const floating* A, const floating* B,
                                  const floating* T, Py_ssize_t m, Py_ssize_t k,
                                  Py_ssize_t n, floating* scratch) noexcept nogil
# A block of a transposed product, for a team of threads splitting one (never BLAS):
# C (m, n), row stride ldc, (+)= A.T @ B with A (k, m) of row stride lda, B (k, n) of ldb.
cdef void matmul_tn_block(floating* C, Py_ssize_t ldc, const floating* A, Py_ssize_t lda,
                          const floating* B, Py_ssize_t ldb, Py_ssize_t m, Py_ssize_t k,
                          Py_ssize_t n, bint accumulate) noexcept nogil
# Whether some products go to BLAS (set_blas_min_flops): their blocks would round otherwise.
cdef bint blas_products() noexcept nogil

# ---- dense layer ----------------------------------------------------------------------
cdef void dense_forward(floating* out, const floating* inp, const floating* W,
                        const floating* b, Py_ssize_t n, Py_ssize_t n_in,
                        Py_ssize_t n_out) noexcept nogil
# s (cols,) (+)= column sums of D (rows, cols; row stride ld), each one chain in row order.
cdef void column_sums(floating* s, const floating* D, Py_ssize_t ld, Py_ssize_t rows,
                      Py_ssize_t cols, bint accumulate) noexcept nogil
cdef void dense_backward(floating* dW, floating* db, floating* dinp, const floating* dout,
                         const floating* inp, const floating* W, Py_ssize_t n,
                         Py_ssize_t n_in, Py_ssize_t n_out, bint accumulate,
                         floating* scratch) noexcept nogil

cdef void transpose(floating* out, const floating* inp, Py_ssize_t rows,
                    Py_ssize_t cols) noexcept nogil

# ---- activations ----------------------------------------------------------------------
# One forward/backward pair per activation (elementwise over `size` values; maxout over
# rows of `pieces`; softmax over rows of m), and the dispatchers by activation code.
cdef void sigmoid_forward(floating* A, const floating* Z, Py_ssize_t size) noexcept nogil
cdef void sigmoid_backward(floating* dZ, const floating* A, const floating* dA,
                           Py_ssize_t size) noexcept nogil
cdef void tanh_forward(floating* A, const floating* Z, Py_ssize_t size) noexcept nogil
cdef void tanh_backward(floating* dZ, const floating* A, const floating* dA,
                        Py_ssize_t size) noexcept nogil
cdef void relu_forward(floating* A, const floating* Z, Py_ssize_t size) noexcept nogil
cdef void relu_backward(floating* dZ, const floating* Z, const floating* dA,
                        Py_ssize_t size) noexcept nogil
cdef void leaky_relu_forward(floating* A, const floating* Z, Py_ssize_t size,
                             floating slope) noexcept nogil
cdef void leaky_relu_backward(floating* dZ, const floating* Z, const floating* dA,
                              Py_ssize_t size, floating slope) noexcept nogil
cdef void elu_forward(floating* A, const floating* Z, Py_ssize_t size,
                      floating alpha) noexcept nogil
cdef void elu_backward(floating* dZ, const floating* Z, const floating* A,
                       const floating* dA, Py_ssize_t size, floating alpha) noexcept nogil
cdef void maxout_forward(floating* A, const floating* Z, Py_ssize_t rows,
                         Py_ssize_t pieces) noexcept nogil
cdef void maxout_backward(floating* dZ, const floating* Z, const floating* dA,
                          Py_ssize_t rows, Py_ssize_t pieces) noexcept nogil
cdef void softmax_forward(floating* A, const floating* Z, Py_ssize_t n,
                          Py_ssize_t m) noexcept nogil
cdef void softmax_backward(floating* dZ, const floating* A, const floating* dA,
                           Py_ssize_t n, Py_ssize_t m) noexcept nogil
cdef void exp_forward(floating* A, const floating* Z, Py_ssize_t size) noexcept nogil
cdef void exp_backward(floating* dZ, const floating* A, const floating* dA,
                       Py_ssize_t size) noexcept nogil
cdef void activation_forward(int code, floating* A, const floating* Z, Py_ssize_t n,
                             Py_ssize_t m, const ActParams* p) noexcept nogil
cdef void activation_backward(int code, floating* dZ, const floating* Z, const floating* A,
                              const floating* dA, Py_ssize_t n, Py_ssize_t m,
                              const ActParams* p) noexcept nogil

# ---- losses -------------------------------------------------------------------------
cdef inline Py_ssize_t loss_target_width(int loss, Py_ssize_t m) noexcept nogil:
    """Columns of the targets Y for an output layer of width m: gaussian_nll reads the
    output as k = m / 2 means and k log-variances of k targets; every other loss, m."""
    return m // 2 if loss == LOSS_GAUSSIAN_NLL else m

# The loss kernels: nnfast/_losses.pxd.

cdef bint all_finite_values(const floating* x, Py_ssize_t size) noexcept nogil

# ---- optimizers -----------------------------------------------------------------------
cdef void sgd_update(floating* params, floating* velocity, const floating* grad,
                     Py_ssize_t size, double lr, double momentum, bint nesterov) noexcept nogil
cdef void adam_update(floating* params, floating* m, floating* v, const floating* grad,
                      Py_ssize_t size, double lr_t, double beta1, double beta2,
                      double eps) noexcept nogil
cdef void rprop_update(floating* params, floating* step, floating* prev_grad,
                       const floating* grad, Py_ssize_t size, double eta_plus,
                       double eta_minus, double step_min, double step_max) noexcept nogil

# One plain-SGD step on one sample (batch 1) through a whole network of identity, tanh and
# relu layers with an MSE loss: nnfast/src/row_step.h (table: NNF_ROW_FIELDS values per
# layer: n_in, width, the offsets of W and b in the parameters and of Z and A in the
# workspace, the activation code). Same bits as the general path while row_step_runs().
cdef enum:
    ROW_STEP_FIELDS = 7
    ROW_STEP_MAX_LAYERS = 16
cdef bint row_step_runs() noexcept nogil
cdef double sgd_row_step(Py_ssize_t n_layers, const Py_ssize_t* table, Py_ssize_t scratch,
                         Py_ssize_t max_width, floating* params, floating* velocity,
                         const floating* x, const floating* y, double w,
                         double inv_weight_sum, double lr, double momentum, bint nesterov,
                         floating* ws) noexcept nogil

# ---- entry-point checks ---------------------------------------------------------------
# ValueError naming the argument unless data (NULL: an empty array) is a multiple of
# itemsize: the kernels load whole elements, and a misaligned load is undefined in C.
cdef enum:
    CACHE_LINE = 64  # bytes; the alignment of the buffers nnfast allocates for the kernels
cdef void* cache_aligned_malloc(size_t nbytes) noexcept nogil
cdef void cache_aligned_free(void* block) noexcept nogil
cdef Py_ssize_t cache_lines_of(Py_ssize_t count, size_t itemsize) noexcept nogil
cdef int check_aligned(const void* data, size_t itemsize, str name) except -1
# ValueError naming the argument unless its shape is (want_rows, want_cols).
cdef int check_shape(str name, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t want_rows,
                     Py_ssize_t want_cols) except -1
