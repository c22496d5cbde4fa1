# C declarations of the kernel headers in nnfast/src used by nnfast/_kernels.pyx only (the
# elementwise loops, finiteness, the products, the fast math and the code-path dispatch);
# cimported there, nowhere else, so no other module includes these headers.

cdef extern from "elementwise.h" nogil:
    # Loops of the layer kernels compiled for AVX-512 / AVX2 / baseline (cpu.h chooses).
    void nnf_tanh_backward_d(double* dZ, const double* A, const double* dA, Py_ssize_t n)
    void nnf_tanh_backward_f(float* dZ, const float* A, const float* dA, Py_ssize_t n)
    void nnf_sigmoid_backward_d(double* dZ, const double* A, const double* dA, Py_ssize_t n)
    void nnf_sigmoid_backward_f(float* dZ, const float* A, const float* dA, Py_ssize_t n)
    void nnf_fill_rows_d(double* Z, const double* b, Py_ssize_t rows, Py_ssize_t cols)
    void nnf_fill_rows_f(float* Z, const float* b, Py_ssize_t rows, Py_ssize_t cols)
    void nnf_sgd_update_d(double* p, double* v, const double* g, Py_ssize_t n, double lr,
                          double mu, int nesterov)
    void nnf_sgd_update_f(float* p, float* v, const float* g, Py_ssize_t n, float lr,
                          float mu, int nesterov)
    void nnf_adam_update_d(double* p, double* m, double* v, const double* g, Py_ssize_t n,
                           double lr, double b1, double b2, double c1, double c2, double eps)
    void nnf_adam_update_f(float* p, float* m, float* v, const float* g, Py_ssize_t n,
                           float lr, float b1, float b2, float c1, float c2, float eps)


cdef extern from "finite.h" nogil:
    bint nnf_all_finite_d(const double* x, Py_ssize_t n)
    bint nnf_all_finite_f(const float* x, Py_ssize_t n)


cdef extern from "gemm_small.h" nogil:
    # Register-tiled products for small and medium matrices (nnfast/src/gemm_small.h):
    # C (m, n) = op(A) @ B (+ C), op(A)[i, p] = A[i a_row + p a_col], B rows contiguous;
    # AVX-512 / AVX2+FMA / portable paths, chosen by cpu.h.
    void nnf_gemm_d(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double* A,
                    Py_ssize_t a_row, Py_ssize_t a_col, const double* B, Py_ssize_t ldb,
                    double* C, Py_ssize_t ldc, int accumulate)
    void nnf_gemm_f(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* A,
                    Py_ssize_t a_row, Py_ssize_t a_col, const float* B, Py_ssize_t ldb,
                    float* C, Py_ssize_t ldc, int accumulate)
    # The same with an epilogue: bias (not NULL): the chains start from bias[j];
    # act (not NULL): C = product * (1 - act²), act laid out as C (tanh's backward).
    void nnf_gemm_ex_d(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double* A,
                       Py_ssize_t a_row, Py_ssize_t a_col, const double* B, Py_ssize_t ldb,
                       double* C, Py_ssize_t ldc, int accumulate, const double* bias,
                       const double* act)
    void nnf_gemm_ex_f(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* A,
                       Py_ssize_t a_row, Py_ssize_t a_col, const float* B, Py_ssize_t ldb,
                       float* C, Py_ssize_t ldc, int accumulate, const float* bias,
                       const float* act)
    int NNF_GEMM_BASELINE_FMA  # 1 if the baseline products fuse multiply-adds (NEON)
    # out (cols, rows) = inp (rows, cols).T (4 x 4 register blocks)
    void nnf_transpose_d(double* out, const double* inp, Py_ssize_t rows, Py_ssize_t cols)
    void nnf_transpose_f(float* out, const float* inp, Py_ssize_t rows, Py_ssize_t cols)


cdef extern from "fastmath.h" nogil:
    # Vectorised tanh, sigmoid, exp and elu over arrays (nnfast/src/fastmath.h): within
    # 2.5 ulp over the whole range, exact at ±0, ±inf and NaN, with AVX-512 / AVX2 / SSE2
    # code paths chosen by cpu.h. out == in is allowed.
    void nnf_tanh_d(double* out, const double* inp, Py_ssize_t n)
    void nnf_tanh_f(float* out, const float* inp, Py_ssize_t n)
    void nnf_sigmoid_d(double* out, const double* inp, Py_ssize_t n)
    void nnf_sigmoid_f(float* out, const float* inp, Py_ssize_t n)
    void nnf_exp_d(double* out, const double* inp, Py_ssize_t n)
    void nnf_exp_f(float* out, const float* inp, Py_ssize_t n)
    void nnf_elu_d(double* out, const double* inp, Py_ssize_t n, double alpha)
    void nnf_elu_f(float* out, const float* inp, Py_ssize_t n, float alpha)


cdef extern from "cpu.h" nogil:
    # The CPU's features, detected once, and the code path of each kernel family: the
    # widest it can run here, up to the limit set by nnf_set_path_limit.
    ctypedef struct nnf_cpu_info:
        char vendor[13]
        char brand[49]
        int family, model, stepping
        unsigned features
        int avx512_unit_bits
    const nnf_cpu_info* nnf_cpu()
    const char* nnf_path_name(int path)
    const char* nnf_feature_name(int bit)
    int nnf_family_path(int family)
    void nnf_set_path_limit(int limit)
    int nnf_avx512_unit_bits()
    int nnf_avx512_unit_bits_request()
    void nnf_set_avx512_unit_bits(int bits)
    int NNF_FEATURE_COUNT


cdef extern from "row_step.h" nogil:
    # One plain-SGD step on one sample through a whole network of identity, tanh and relu
    # layers with an MSE loss, the same bits as the general path (nnfast/src/row_step.h).
    int NNF_ROW_FIELDS
    int nnf_row_step_runs()
    double nnf_sgd_row_step_d(Py_ssize_t n_layers, const Py_ssize_t* table,
                              Py_ssize_t scratch, Py_ssize_t max_width, double* p, double* v,
                              const double* x, const double* y, double w,
                              double inv_weight_sum, double lr, double mu, int nesterov,
                              double* ws)
    double nnf_sgd_row_step_f(Py_ssize_t n_layers, const Py_ssize_t* table,
                              Py_ssize_t scratch, Py_ssize_t max_width, float* p, float* v,
                              const float* x, const float* y, double w,
                              double inv_weight_sum, double lr, double mu, int nesterov,
                              float* ws)
