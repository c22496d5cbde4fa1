/* gemm_scalar_body.h -- the plain-C product kernel (compilers without GNU vector extensions,
 * or NNF_GEMM_SCALAR), for one dtype.
 *
 * Not a standalone header: gemm_small.h includes it once per dtype after defining
 * NNF_GEMM_NAME (the entry point), NNF_T (the element type) and NNF_MR x NNF_NR (the tile),
 * and it undefines them at its end. Same contract and same one-chain-per-element order as
 * gemm_body.h.
 */
#define NNF_FN(suffix) NNF__CAT(NNF_GEMM_NAME, suffix)

/* NNF_MR x NNF_NR tile; constant size for full tiles, runtime-bounded (mr <= NNF_MR,
   nr <= NNF_NR) for edge tiles. */
NNF__INLINE void NNF_FN(_tile)(const int full, int mr, int nr, ptrdiff_t k, const NNF_T *A,
                               ptrdiff_t a_row, ptrdiff_t a_col, const NNF_T *B,
                               ptrdiff_t ldb, NNF_T *C, ptrdiff_t ldc, int acc_c)
{
    NNF_T acc[NNF_MR][NNF_NR];
    ptrdiff_t p;
    int r, j;
    if (full) { mr = NNF_MR; nr = NNF_NR; }
    for (r = 0; r < NNF_MR; r++)
        for (j = 0; j < NNF_NR; j++)
            acc[r][j] = acc_c && r < mr && j < nr ? C[r * ldc + j] : (NNF_T)0;
    for (p = 0; p < k; p++) {
        const NNF_T *b = B + p * ldb;
        for (r = 0; r < NNF_MR; r++) {
            if (r < mr) {
                const NNF_T a = A[r * a_row + p * a_col];
                for (j = 0; j < NNF_NR; j++)
                    if (j < nr) acc[r][j] += a * b[j];
            }
        }
    }
    for (r = 0; r < mr; r++)
        for (j = 0; j < nr; j++) C[r * ldc + j] = acc[r][j];
}

static NNF__UNUSED NNF__NOINLINE void NNF_GEMM_NAME(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                                    const NNF_T *A, ptrdiff_t a_row,
                                                    ptrdiff_t a_col, const NNF_T *B,
                                                    ptrdiff_t ldb, NNF_T *C, ptrdiff_t ldc,
                                                    int accumulate)
{
    ptrdiff_t i, j;
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        if (!accumulate) NNF__CAT(NNF__ZERO_, NNF_T)(m, n, C, ldc);
        return;
    }
    for (j = 0; j < n; j += NNF_NR) {
        const int nr = (int)NNF__MIN((ptrdiff_t)NNF_NR, n - j);
        for (i = 0; i < m; i += NNF_MR) {
            const int mr = (int)NNF__MIN((ptrdiff_t)NNF_MR, m - i);
            const NNF_T *a = A + i * a_row;
            NNF_T *c = C + i * ldc + j;
            if (mr == NNF_MR && nr == NNF_NR)
                NNF_FN(_tile)(1, NNF_MR, NNF_NR, k, a, a_row, a_col, B + j, ldb, c, ldc,
                              accumulate);
            else
                NNF_FN(_tile)(0, mr, nr, k, a, a_row, a_col, B + j, ldb, c, ldc, accumulate);
        }
    }
}

/* With an epilogue (see nnf_gemm_ex_d): the plain product, then separate passes. */
static NNF__UNUSED NNF__NOINLINE void NNF_GEMM_EX_NAME(
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const NNF_T *A, ptrdiff_t a_row, ptrdiff_t a_col,
    const NNF_T *B, ptrdiff_t ldb, NNF_T *C, ptrdiff_t ldc, int accumulate, const NNF_T *bias,
    const NNF_T *act)
{
    if (m <= 0 || n <= 0) return;
    if (bias) {
        NNF__CAT(NNF__FILL_ROWS_, NNF_T)(m, n, bias, C, ldc);
        accumulate = 1;
    }
    NNF_GEMM_NAME(m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate);
    if (act) NNF__CAT(NNF__TANH_GRAD_ROWS_, NNF_T)(m, n, act, C, ldc);
}

#undef NNF_FN
#undef NNF_GEMM_NAME
#undef NNF_GEMM_EX_NAME
#undef NNF_T
#undef NNF_MR
#undef NNF_NR
