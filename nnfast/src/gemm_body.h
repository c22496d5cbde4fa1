/* gemm_body.h -- the register-tiled product kernel for one dtype on one code path.
 *
 * Not a standalone header: gemm_small.h includes it once per dtype x path (baseline, AVX2,
 * AVX-512; float64, float32), each time after defining
 *   NNF_GEMM_NAME   the entry point, e.g. nnf_gemm_d_avx512 (helpers: NNF_GEMM_NAME_tile ...)
 *   NNF_GEMM_EX_NAME  the entry point with an epilogue, e.g. nnf_gemm_ex_d_avx512
 *   NNF_TINY_N      (optional) the NN kernel for n <= NNF__TINY_N_MAX with vectors along m
 *                   (gemm_small.h)
 *   NNF_TGT         the target attribute of the path (NNF_TARGET_PRODUCTS_* or nothing)
 *   NNF_T, NNF_V, NNF_M   element, vector and mask types;  NNF_VL  lanes per vector
 *   NNF_MR_MAX      rows and NNF_NV_MAX (<= 4) vectors of a main-kernel tile
 *                   (NNF_MR_MAX * NNF_NV_MAX accumulators + NNF_NV_MAX + 1 must fit in registers)
 *   NNF_TNS_N       TN products with n <= NNF_TNS_N (<= NNF_MR_MAX, <= 8) and n < m use the
 *                   transposed kernel
 *   NNF_WIDE_NV     vectors per pass of the single-row (m == 1) kernel
 *   NNF_PACK4K      1: copy B panels into a buffer when B's row stride is a multiple of 4 KiB
 *   NNF_PACK2K      (optional, default 0) 1: at 2 KiB strides too, and TN products copy
 *                   row blocks of op(A) when its rows are 2 KiB apart (see _run)
 *   NNF_K1_MASKED   (optional, default 0) 1: products with k == 1 and rows narrower than a
 *                   vector take the k == 1 kernel too, one masked vector per row (set where
 *                   masked loads and stores are cheap: AVX-512)
 *   NNF_KBLOCK      (optional, default NNF_GEMM_KBLOCK_BYTES) k is blocked by NNF_GEMM_KC when
 *                   B's footprint k * ldb * sizeof(T) exceeds this many bytes
 *   NNF_YMM_KERNEL  (optional, AVX-512) the AVX2 kernel with an epilogue of the same dtype,
 *                   run instead for the rows nnf__ymm_rows picks while nnf__ymm_rows_on is set
 *                   (AVX-512 on 256-bit units)
 *   NNF_YMM_VL_KERNEL (optional, with NNF_YMM_KERNEL) the AVX-512VL kernel in 256-bit
 *                   vectors, run instead of NNF_YMM_KERNEL while nnf__ymm_rows_on is 2
 *   NNF_OPS         prefix of the vector operations: NNF_OPS##_ZERO(), _LOAD(p), _LOADM(p, mask)
 *                   (lanes outside the mask read as 0 and never fault), _STORE(p, v),
 *                   _STOREM(p, mask, v), _BCAST(x), _FMA(a, b, c) = a*b + c (fused on AVX2 and
 *                   AVX-512), _MASK(r): mask of the first r lanes (1 <= r <= VL).
 * and undefines them all at its end. See gemm_small.h (and docs/kernels.md) for the design;
 * the invariant every function here keeps: each C[i, j] is ONE chain of multiply-adds over
 * p = 0..k-1 in order, started from C (accumulate) or 0.
 *
 * Tile sizes MR, NV and MASKED are `const int` arguments of always-inlined functions, and
 * every call passes constants: after inlining, each (MR, NV, MASKED) is its own fully
 * unrolled kernel whose accumulators live in registers.
 */
#ifndef NNF_K1_MASKED
#define NNF_K1_MASKED 0
#endif
#ifndef NNF_PACK2K
#define NNF_PACK2K 0
#endif
#ifndef NNF_KBLOCK
#define NNF_KBLOCK NNF_GEMM_KBLOCK_BYTES
#endif
#define NNF_FN(suffix) NNF__CAT(NNF_GEMM_NAME, suffix)
#define NNF_OP_ZERO NNF__CAT(NNF_OPS, _ZERO)
#define NNF_OP_LOAD NNF__CAT(NNF_OPS, _LOAD)
#define NNF_OP_LOADM NNF__CAT(NNF_OPS, _LOADM)
#define NNF_OP_STORE NNF__CAT(NNF_OPS, _STORE)
#define NNF_OP_STOREM NNF__CAT(NNF_OPS, _STOREM)
#define NNF_OP_BCAST NNF__CAT(NNF_OPS, _BCAST)
#define NNF_OP_FMA NNF__CAT(NNF_OPS, _FMA)
#define NNF_OP_MASK NNF__CAT(NNF_OPS, _MASK)

/* Leftover rows (< NNF_MR_MAX) as tiles of 4, 2 and 1 rows: fewer instantiations than one
   tile per remainder, nearly as fast. */
#define NNF__ROW_TAIL(R, NV, MASKED)                                                        \
    if (R < NNF_MR_MAX && (m - i) >= R) {                                                   \
        NNF_FN(_tile)(R < NNF_MR_MAX ? R : 1, NV, MASKED, 0, k, A + i * a_row, a_row,       \
                      a_col, B, ldb, C + i * ldc, ldc, mask, tail, acc_c, bias,             \
                      act ? act + i * ldc : NULL);                                          \
        i += R;                                                                             \
    }

/* Transposed-kernel call for R rows (= n of the product). */
#define NNF__TROW_CASE(R)                                                                   \
    case R:                                                                                 \
        if (R <= NNF_MR_MAX)                                                                \
            NNF_FN(_tile)(R <= NNF_MR_MAX ? R : 1, NV, MASKED, 1, k, A, a_row, a_col, B,    \
                          ldb, C, ldc, mask, tail, acc_c, NULL, NULL);                      \
        break;

/* (nv, masked) -> FN(NV, MASKED, ...) with constant NV <= LIMIT and MASKED. */
#define NNF__NV_CASE(FN, LIMIT, NV, ...)                                                    \
    case 2 * NV:                                                                            \
        if (NV <= LIMIT) FN(NV <= LIMIT ? NV : 1, 0, __VA_ARGS__);                          \
        break;                                                                              \
    case 2 * NV + 1:                                                                        \
        if (NV <= LIMIT) FN(NV <= LIMIT ? NV : 1, 1, __VA_ARGS__);                          \
        break;
#define NNF__PANEL_CASE(PANEL, NV, ...) NNF__NV_CASE(PANEL, NNF_NV_MAX, NV, __VA_ARGS__)
#define NNF__PANEL_SWITCH(PANEL, ...)                                                       \
    switch (2 * nv + masked) {                                                              \
        NNF__PANEL_CASE(PANEL, 1, __VA_ARGS__)                                              \
        NNF__PANEL_CASE(PANEL, 2, __VA_ARGS__)                                              \
        NNF__PANEL_CASE(PANEL, 3, __VA_ARGS__)                                              \
        NNF__PANEL_CASE(PANEL, 4, __VA_ARGS__)                                              \
        default: break;                                                                     \
    }

/* A row of `cols` (>= 1) columns as nv = ceil(cols / VL) <= LIMIT (<= 16) vectors, the last
   masked when partial: FN(NV, MASKED, ...) with constant NV and MASKED; the arguments may
   use `mask`, the lanes of the last vector. */
#define NNF__ROW_VECTORS(cols, FN, LIMIT, ...)                                              \
    do {                                                                                    \
        const int nv_ = (int)(((cols) + NNF_VL - 1) / NNF_VL);                              \
        const int tail_ = (int)((cols) - (ptrdiff_t)(nv_ - 1) * NNF_VL);                    \
        const NNF_M mask = NNF_OP_MASK(tail_);                                              \
        switch (2 * nv_ + (tail_ < NNF_VL)) {                                               \
            NNF__NV_CASE(FN, LIMIT, 1, __VA_ARGS__)                                         \
            NNF__NV_CASE(FN, LIMIT, 2, __VA_ARGS__)                                         \
            NNF__NV_CASE(FN, LIMIT, 3, __VA_ARGS__)                                         \
            NNF__NV_CASE(FN, LIMIT, 4, __VA_ARGS__)                                         \
            NNF__NV_CASE(FN, LIMIT, 5, __VA_ARGS__)                                         \
            NNF__NV_CASE(FN, LIMIT, 6, __VA_ARGS__)                                         \
            NNF__NV_CASE(FN, LIMIT, 7, __VA_ARGS__)                                         \
            NNF__NV_CASE(FN, LIMIT, 8, __VA_ARGS__)                                         \
            NNF__NV_CASE(FN, LIMIT, 9, __VA_ARGS__)                                         \
            NNF__NV_CASE(FN, LIMIT, 10, __VA_ARGS__)                                        \
            NNF__NV_CASE(FN, LIMIT, 11, __VA_ARGS__)                                        \
            NNF__NV_CASE(FN, LIMIT, 12, __VA_ARGS__)                                        \
            NNF__NV_CASE(FN, LIMIT, 13, __VA_ARGS__)                                        \
            NNF__NV_CASE(FN, LIMIT, 14, __VA_ARGS__)                                        \
            NNF__NV_CASE(FN, LIMIT, 15, __VA_ARGS__)                                        \
            NNF__NV_CASE(FN, LIMIT, 16, __VA_ARGS__)                                        \
            default: break;                                                                 \
        }                                                                                   \
    } while (0)

/* m == 1, wide B: one row of C, WIDE_NV vectors (e.g. 16 zmm = 128
   doubles) per pass, so each k step reads a long contiguous piece of a
   B row (GEMV-like shapes stream B from L2/L3).  Returns the number of
   columns done; the rest go to the general kernel. */
static NNF__UNUSED NNF__NOINLINE NNF_TGT ptrdiff_t NNF_FN(_wide)(
    ptrdiff_t n, ptrdiff_t k, const NNF_T *A, ptrdiff_t a_col, const NNF_T *B,
    ptrdiff_t ldb, NNF_T *C, int acc_c, const NNF_T *bias, const NNF_T *act)
{
    ptrdiff_t j, p;
    int v;
    for (j = 0; j + NNF_WIDE_NV * NNF_VL <= n; j += NNF_WIDE_NV * NNF_VL) {
        NNF_V acc[NNF_WIDE_NV];
        NNF__UNROLL for (v = 0; v < NNF_WIDE_NV; v++)
            acc[v] = bias    ? NNF_OP_LOAD(bias + j + v * NNF_VL)
                     : acc_c ? NNF_OP_LOAD(C + j + v * NNF_VL)
                             : NNF_OP_ZERO();
        for (p = 0; p < k; p++) {
            const NNF_V a = NNF_OP_BCAST(A[p * a_col]);
            const NNF_T *b = B + p * ldb + j;
            NNF__UNROLL for (v = 0; v < NNF_WIDE_NV; v++)
                acc[v] = NNF_OP_FMA(a, NNF_OP_LOAD(b + v * NNF_VL), acc[v]);
        }
        if (act) {
            const NNF_V one = NNF_OP_BCAST((NNF_T)1);
            NNF__UNROLL for (v = 0; v < NNF_WIDE_NV; v++)
                acc[v] = NNF__TANH_GRAD(acc[v], NNF_OP_LOAD(act + j + v * NNF_VL), one);
        }
        NNF__UNROLL for (v = 0; v < NNF_WIDE_NV; v++)
            NNF_OP_STORE(C + j + v * NNF_VL, acc[v]);
    }
    return j;
}

/* m == 1 and fewer columns than a _wide pass: one pass of all NV (<= WIDE_NV) vectors of the
   row, the last masked, so that every chain of the row is in flight at once (the general
   kernel would run panels of NV_MAX vectors one after the other, each bound by FMA latency).
   bias and act as in _tile. */
NNF__INLINE NNF_TGT void NNF_FN(_row)(
    const int NV, const int MASKED, ptrdiff_t k, const NNF_T *A, ptrdiff_t a_col,
    const NNF_T *B, ptrdiff_t ldb, NNF_T *C, NNF_M mask, int acc_c, const NNF_T *bias,
    const NNF_T *act)
{
    NNF_V acc[NNF_WIDE_NV];
    ptrdiff_t p;
    int v;
#define NNF__ROW_LOAD(ptr) ((MASKED && v == NV - 1) ? NNF_OP_LOADM((ptr), mask) : NNF_OP_LOAD(ptr))
    NNF__UNROLL for (v = 0; v < NV; v++)
        acc[v] = bias    ? NNF__ROW_LOAD(bias + v * NNF_VL)
                 : acc_c ? NNF__ROW_LOAD(C + v * NNF_VL)
                         : NNF_OP_ZERO();
    for (p = 0; p < k; p++) {
        const NNF_V a = NNF_OP_BCAST(A[p * a_col]);
        const NNF_T *b = B + p * ldb;
        NNF__UNROLL for (v = 0; v < NV; v++)
            acc[v] = NNF_OP_FMA(a, NNF__ROW_LOAD(b + v * NNF_VL), acc[v]);
    }
    if (act) {
        const NNF_V one = NNF_OP_BCAST((NNF_T)1);
        NNF__UNROLL for (v = 0; v < NV; v++)
            acc[v] = NNF__TANH_GRAD(acc[v], NNF__ROW_LOAD(act + v * NNF_VL), one);
    }
    NNF__UNROLL for (v = 0; v < NV; v++) {
        if (MASKED && v == NV - 1)
            NNF_OP_STOREM(C + v * NNF_VL, mask, acc[v]);
        else
            NNF_OP_STORE(C + v * NNF_VL, acc[v]);
    }
#undef NNF__ROW_LOAD
}

/* One row of C (m == 1): _wide passes, then the remaining columns in one _row pass. */
static NNF__UNUSED NNF__NOINLINE NNF_TGT void NNF_FN(_single_row)(
    ptrdiff_t n, ptrdiff_t k, const NNF_T *A, ptrdiff_t a_col, const NNF_T *B,
    ptrdiff_t ldb, NNF_T *C, int acc_c, const NNF_T *bias, const NNF_T *act)
{
    if (n >= NNF_WIDE_NV * NNF_VL) {
        const ptrdiff_t done = NNF_FN(_wide)(n, k, A, a_col, B, ldb, C, acc_c, bias, act);
        B += done;
        C += done;
        if (bias) bias += done;
        if (act) act += done;
        n -= done;
    }
    if (n > 0)
        NNF__ROW_VECTORS(n, NNF_FN(_row), NNF_WIDE_NV, k, A, a_col, B, ldb, C, mask, acc_c, bias,
                         act);
}

/* One k step of the main kernel: acc[r][v] += op(A)[r, p] * B[p, v]. */
NNF__INLINE NNF_TGT void NNF_FN(_step)(
    const int MR, const int NV, const int MASKED, NNF_V acc[][NNF_NV_MAX],
    const NNF_T *a, ptrdiff_t a_row, const NNF_T *b, NNF_M mask)
{
    NNF_V bv[NNF_NV_MAX];
    int r, v;
    NNF__UNROLL for (v = 0; v < NV; v++)
        bv[v] = (MASKED && v == NV - 1) ? NNF_OP_LOADM(b + v * NNF_VL, mask)
                                        : NNF_OP_LOAD(b + v * NNF_VL);
    NNF__UNROLL for (r = 0; r < MR; r++) {
        const NNF_V ar = NNF_OP_BCAST(a[r * a_row]);
        NNF__UNROLL for (v = 0; v < NV; v++)
            acc[r][v] = NNF_OP_FMA(ar, bv[v], acc[r][v]);
    }
}

/* k == 1, NV column vectors of C (the last one masked when MASKED), row by row: for every
   row i, C[i, j] = fma(op(A)[i, 0], B[0, j], s) with s = bias[j], else C[i, j] (acc_c),
   else 0 -- the single step of each chain, as _tile takes it -- then act's epilogue as in
   _tile. Row by row, each row's NV vectors are written together: one vector per pass over
   all rows rewrote every cache line of C once per vector (1000 x 20 doubles on Zen 4:
   3.9 us against 3.4 on AVX-512, 4.7 against 2.9 on AVX2). */
NNF__INLINE NNF_TGT void NNF_FN(_k1_rows)(
    const int NV, const int MASKED, ptrdiff_t m, const NNF_T *A, ptrdiff_t a_row,
    const NNF_T *B, NNF_T *C, ptrdiff_t ldc, NNF_M mask, int acc_c, const NNF_T *bias,
    const NNF_T *act)
{
#define NNF__K1_LOAD(ptr) ((MASKED && v == NV - 1) ? NNF_OP_LOADM((ptr), mask) : NNF_OP_LOAD(ptr))
    NNF_V b[NNF__K1_NV], start[NNF__K1_NV];
    const NNF_V one = NNF_OP_BCAST((NNF_T)1);
    ptrdiff_t i;
    int v;
    NNF__UNROLL for (v = 0; v < NV; v++) {
        b[v] = NNF__K1_LOAD(B + v * NNF_VL);
        start[v] = bias ? NNF__K1_LOAD(bias + v * NNF_VL) : NNF_OP_ZERO();
    }
    for (i = 0; i < m; i++) {
        NNF_T *c = C + i * ldc;
        const NNF_V a = NNF_OP_BCAST(A[i * a_row]);
        NNF__UNROLL for (v = 0; v < NV; v++) {
            NNF_V s = (acc_c && !bias) ? NNF__K1_LOAD(c + v * NNF_VL) : start[v];
            s = NNF_OP_FMA(a, b[v], s);
            if (act) s = NNF__TANH_GRAD(s, NNF__K1_LOAD(act + i * ldc + v * NNF_VL), one);
            if (MASKED && v == NV - 1)
                NNF_OP_STOREM(c + v * NNF_VL, mask, s);
            else
                NNF_OP_STORE(c + v * NNF_VL, s);
        }
    }
#undef NNF__K1_LOAD
}

/* k == 1 (an outer product: a batch of one row's weight gradient, an input layer of one
   feature): rows of up to NNF__K1_NV vectors in one pass over all m rows, wider ones in
   passes of NNF__K1_NV vectors (whole cache lines of each row), without the tile machinery
   of _run (whose per-tile set-up dominates when each chain is one step). */
static NNF__UNUSED NNF__NOINLINE NNF_TGT void NNF_FN(_k1)(
    ptrdiff_t m, ptrdiff_t n, const NNF_T *A, ptrdiff_t a_row, const NNF_T *B, NNF_T *C,
    ptrdiff_t ldc, int acc_c, const NNF_T *bias, const NNF_T *act)
{
    const NNF_M full = NNF_OP_MASK(NNF_VL);
    ptrdiff_t j = 0;
    for (; n - j > NNF__K1_NV * NNF_VL; j += NNF__K1_NV * NNF_VL)
        NNF_FN(_k1_rows)(NNF__K1_NV, 0, m, A, a_row, B + j, C + j, ldc, full, acc_c,
                         bias ? bias + j : NULL, act ? act + j : NULL);
    NNF__ROW_VECTORS(n - j, NNF_FN(_k1_rows), NNF__K1_NV, m, A, a_row, B + j, C + j, ldc, mask,
                     acc_c, bias ? bias + j : NULL, act ? act + j : NULL);
}

/* Transposed tile I/O (see _tns): _tload sets tmp[r*ld + j] =
   C[j*ldc + r] for r < rows, j < cols (0 for cols <= j < ld), _tstore
   does the reverse. */
static NNF__UNUSED NNF__NOINLINE void NNF_FN(_tload)(
    NNF_T *tmp, int rows, int cols, int ld, const NNF_T *C, ptrdiff_t ldc)
{
    int r, j;
    for (r = 0; r < rows; r++)
        for (j = 0; j < ld; j++)
            tmp[r * ld + j] = j < cols ? C[j * ldc + r] : (NNF_T)0;
}
static NNF__UNUSED NNF__NOINLINE void NNF_FN(_tstore)(
    const NNF_T *tmp, int rows, int cols, int ld, NNF_T *C, ptrdiff_t ldc)
{
    int r, j;
    for (j = 0; j < cols; j++) {
        NNF_T *c = C + j * ldc;
        for (r = 0; r < rows; r++) c[r] = tmp[r * ld + j];
    }
}

/* Main kernel: C[0:MR, 0:NV*VL] (+)= op(A)[0:MR, 0:k] @ B[0:k, :].
   MASKED: the last vector covers only the lanes in `mask` (`tail`
   lanes).  TRANS_C: element (r, j) goes to C[j*ldc + r].
   Every element is ONE chain acc = fma(op(A)[r,p], B[p,j], acc) for
   p = 0..k-1 in order, started from bias[j] (bias != NULL), C (acc_c) or 0:
   no split of k, no final add, so the result does not depend on the tile or
   position.  act != NULL (not with TRANS_C): the value stored is
   acc * (1 - a*a), a = act[r*ldc + j] (tanh's backward, as
   nnf_tanh_backward computes it). */
NNF__INLINE NNF_TGT void NNF_FN(_tile)(
    const int MR, const int NV, const int MASKED, const int TRANS_C,
    ptrdiff_t k, const NNF_T *A, ptrdiff_t a_row, ptrdiff_t a_col,
    const NNF_T *B, ptrdiff_t ldb, NNF_T *C, ptrdiff_t ldc, NNF_M mask, int tail,
    int acc_c, const NNF_T *bias, const NNF_T *act)
{
    NNF_V acc[NNF__WROWS(NNF_MR_MAX, NNF_NV_MAX, 1)][NNF_NV_MAX];
    const int cols = MASKED ? (NV - 1) * NNF_VL + tail : NV * NNF_VL;
    ptrdiff_t p;
    int r, v;
    if (TRANS_C) {
        NNF__ALIGN64 NNF_T tmp[NNF_MR_MAX * NNF_NV_MAX * NNF_VL];
        if (acc_c) {
            NNF_FN(_tload)(tmp, MR, cols, NV * NNF_VL, C, ldc);
            NNF__UNROLL for (r = 0; r < MR; r++)
                NNF__UNROLL for (v = 0; v < NV; v++)
                    acc[r][v] = NNF_OP_LOAD(tmp + (r * NV + v) * NNF_VL);
        } else {
            NNF__UNROLL for (r = 0; r < MR; r++)
                NNF__UNROLL for (v = 0; v < NV; v++)
                    acc[r][v] = NNF_OP_ZERO();
        }
        for (p = 0; p < k; p++)
            NNF_FN(_step)(MR, NV, MASKED, acc, A + p * a_col, a_row,
                        B + p * ldb, mask);
        NNF__UNROLL for (r = 0; r < MR; r++)
            NNF__UNROLL for (v = 0; v < NV; v++)
                NNF_OP_STORE(tmp + (r * NV + v) * NNF_VL, acc[r][v]);
        NNF_FN(_tstore)(tmp, MR, cols, NV * NNF_VL, C, ldc);
        return;
    }
    if (bias) {
        NNF__UNROLL for (v = 0; v < NV; v++) {
            const NNF_V bv = (MASKED && v == NV - 1) ? NNF_OP_LOADM(bias + v * NNF_VL, mask)
                                                     : NNF_OP_LOAD(bias + v * NNF_VL);
            NNF__UNROLL for (r = 0; r < MR; r++) acc[r][v] = bv;
        }
    } else if (acc_c) {
        NNF__UNROLL for (r = 0; r < MR; r++)
            NNF__UNROLL for (v = 0; v < NV; v++)
                acc[r][v] = (MASKED && v == NV - 1)
                                ? NNF_OP_LOADM(C + r * ldc + v * NNF_VL, mask)
                                : NNF_OP_LOAD(C + r * ldc + v * NNF_VL);
    } else {
        NNF__UNROLL for (r = 0; r < MR; r++)
            NNF__UNROLL for (v = 0; v < NV; v++)
                acc[r][v] = NNF_OP_ZERO();
    }
    for (p = 0; p < k; p++)
        NNF_FN(_step)(MR, NV, MASKED, acc, A + p * a_col, a_row,
                    B + p * ldb, mask);
    if (act) {
        const NNF_V one = NNF_OP_BCAST((NNF_T)1);
        NNF__UNROLL for (r = 0; r < MR; r++)
            NNF__UNROLL for (v = 0; v < NV; v++) {
                const NNF_V a = (MASKED && v == NV - 1)
                                    ? NNF_OP_LOADM(act + r * ldc + v * NNF_VL, mask)
                                    : NNF_OP_LOAD(act + r * ldc + v * NNF_VL);
                acc[r][v] = NNF__TANH_GRAD(acc[r][v], a, one);
            }
    }
    NNF__UNROLL for (r = 0; r < MR; r++)
        NNF__UNROLL for (v = 0; v < NV; v++) {
            if (MASKED && v == NV - 1)
                NNF_OP_STOREM(C + r * ldc + v * NNF_VL, mask, acc[r][v]);
            else
                NNF_OP_STORE(C + r * ldc + v * NNF_VL, acc[r][v]);
        }
}

/* One column panel (NV vectors wide) over all m rows: tiles of
   NNF__WROWS rows (narrow panels get more rows, so that there are
   always about MR_MAX*NV_MAX independent accumulator chains), then
   MR_MAX-row tiles, then the leftover rows. */
NNF__INLINE NNF_TGT void NNF_FN(_panel)(
    const int NV, const int MASKED, ptrdiff_t m, ptrdiff_t k,
    const NNF_T *A, ptrdiff_t a_row, ptrdiff_t a_col, const NNF_T *B,
    ptrdiff_t ldb, NNF_T *C, ptrdiff_t ldc, NNF_M mask, int tail, int acc_c,
    const NNF_T *bias, const NNF_T *act)
{
    const int MRW = NNF__WROWS(NNF_MR_MAX, NNF_NV_MAX, NV);
    ptrdiff_t i = 0;
    if (MRW > NNF_MR_MAX)
        for (; i + MRW <= m; i += MRW)
            NNF_FN(_tile)(MRW, NV, MASKED, 0, k, A + i * a_row, a_row,
                        a_col, B, ldb, C + i * ldc, ldc, mask, tail,
                        acc_c, bias, act ? act + i * ldc : NULL);
    for (; i + NNF_MR_MAX <= m; i += NNF_MR_MAX)
        NNF_FN(_tile)(NNF_MR_MAX, NV, MASKED, 0, k, A + i * a_row, a_row,
                    a_col, B, ldb, C + i * ldc, ldc, mask, tail, acc_c, bias,
                    act ? act + i * ldc : NULL);
    NNF__ROW_TAIL(4, NV, MASKED)
    NNF__ROW_TAIL(2, NV, MASKED)
    NNF__ROW_TAIL(1, NV, MASKED)
}

/* Copy B[0:kc, 0:nv*VL] (last vector masked, zero padded) into buf
   (row stride nv*VL). */
NNF__INLINE NNF_TGT void NNF_FN(_pack)(ptrdiff_t kc, int nv, int masked,
                                 NNF_M mask, const NNF_T *B, ptrdiff_t ldb,
                                 NNF_T *buf)
{
    const int full = masked ? nv - 1 : nv;
    ptrdiff_t p;
    int v;
    for (p = 0; p < kc; p++) {
        const NNF_T *b = B + p * ldb;
        NNF_T *d = buf + p * nv * NNF_VL;
        for (v = 0; v < full; v++)
            NNF_OP_STORE(d + v * NNF_VL, NNF_OP_LOAD(b + v * NNF_VL));
        if (masked)
            NNF_OP_STORE(d + full * NNF_VL, NNF_OP_LOADM(b + full * NNF_VL, mask));
    }
}

/* General driver.  Blocks: k by NNF_GEMM_KC when B is large (the B
   panel of a k block stays in L2), rows by an L2-sized row block when
   several column panels re-read op(A), columns in balanced panels of
   <= NV_MAX vectors.  Operands are used in place, except that with buf
   != NULL each NNF__PACK_KC x NV*VL panel of B is first copied into buf
   (see the entry point).  bias: the chains of the first k block start from it;
   act: the epilogue of the last k block (see _tile). */
static NNF__UNUSED NNF__NOINLINE NNF_TGT void NNF_FN(_run)(
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const NNF_T *A, ptrdiff_t a_row,
    ptrdiff_t a_col, const NNF_T *B, ptrdiff_t ldb, NNF_T *C, ptrdiff_t ldc,
    int accumulate, NNF_T *buf, const NNF_T *bias0, const NNF_T *act0)
{
    const ptrdiff_t nvec = (n + NNF_VL - 1) / NNF_VL; /* vectors per C row */
    ptrdiff_t kc_max =
        (double)k * (double)ldb * sizeof(NNF_T) > NNF_KBLOCK
            ? NNF_GEMM_KC
            : k;
    ptrdiff_t mc_max = m, pc, ic;
    /* TN with a row stride that is a multiple of 2 KiB (lda = 256, 512,
       1024...): the k rows a tile reads from op(A) map to a few cache
       sets only; shorter k blocks keep them cached (+30-60% at k=1024). */
    const int a_rows_2k = a_row == 1 && ((a_col * (ptrdiff_t)sizeof(NNF_T)) & 2047) == 0;
    if (a_rows_2k && kc_max > 128) kc_max = 128;
    if (buf != NULL && kc_max > NNF__PACK_KC) kc_max = NNF__PACK_KC;
    if (nvec > NNF_NV_MAX &&
        m * kc_max * (ptrdiff_t)sizeof(NNF_T) > NNF__A_BLOCK_BYTES) {
        mc_max = NNF__A_BLOCK_BYTES / ((ptrdiff_t)sizeof(NNF_T) * kc_max);
        mc_max = mc_max < NNF_MR_MAX ? NNF_MR_MAX : mc_max - mc_max % NNF_MR_MAX;
    }
    /* NNF_PACK2K, the same TN products with at least three column panels re-reading each
       row block of op(A): the block is copied once into abuf, with a row stride that
       spreads its rows over the L1 sets (nnf__spread_stride; float64 512 x 512, k = 128:
       31 -> 43 GFLOP/s on Zen 2). If malloc fails, op(A) is read in place. */
    NNF_T *abuf = NULL;
    ptrdiff_t lda_p = 0;
    if (NNF_PACK2K && a_rows_2k && nvec > 2 * NNF_NV_MAX) {
        lda_p = nnf__spread_stride(mc_max, (ptrdiff_t)sizeof(NNF_T));
        abuf = (NNF_T *)malloc((size_t)(lda_p * kc_max) * sizeof(NNF_T));
    }
    for (pc = 0; pc < k; pc += kc_max) {
        const ptrdiff_t kc = NNF__MIN(kc_max, k - pc);
        const int acc_c = accumulate || pc > 0;
        const NNF_T *bias_c = pc == 0 ? bias0 : NULL;
        const int last_block = pc + kc >= k;
        for (ic = 0; ic < m; ic += mc_max) {
            const ptrdiff_t mc = NNF__MIN(mc_max, m - ic);
            const NNF_T *a = A + ic * a_row + pc * a_col;
            ptrdiff_t a_col_c = a_col;
            if (abuf != NULL) {
                ptrdiff_t p;
                for (p = 0; p < kc; p++)
                    memcpy(abuf + p * lda_p, a + p * a_col, (size_t)mc * sizeof(NNF_T));
                a = abuf;
                a_col_c = lda_p;
            }
            ptrdiff_t j = 0, vleft = nvec;
            ptrdiff_t npanel = (nvec + NNF_NV_MAX - 1) / NNF_NV_MAX;
            for (; npanel > 0; npanel--) {
                /* balanced split of the remaining vectors */
                const int nv = npanel == 1
                                   ? (int)vleft
                                   : (int)((vleft + npanel - 1) / npanel);
                const ptrdiff_t ncols = NNF__MIN((ptrdiff_t)nv * NNF_VL, n - j);
                const int masked = ncols < (ptrdiff_t)nv * NNF_VL;
                const int tail = (int)(ncols - (nv - 1) * NNF_VL);
                const NNF_M mask = NNF_OP_MASK(tail);
                const NNF_T *bp = B + pc * ldb + j;
                ptrdiff_t ldbp = ldb;
                if (buf != NULL) {
                    NNF_FN(_pack)(kc, nv, masked, mask, bp, ldb, buf);
                    bp = buf;
                    ldbp = (ptrdiff_t)nv * NNF_VL;
                }
                NNF__PANEL_SWITCH(NNF_FN(_panel), mc, kc, a, a_row,
                                  a_col_c, bp, ldbp, C + ic * ldc + j, ldc,
                                  mask, tail, acc_c, bias_c ? bias_c + j : NULL,
                                  act0 && last_block ? act0 + ic * ldc + j : NULL)
                j += ncols;
                vleft -= nv;
            }
        }
    }
    free(abuf);
}

/* B rows 4 KiB (NNF_PACK2K: 2 KiB) apart: pack B panels (the stack buffer lives only in
   this function's frame). */
static NNF__UNUSED NNF__NOINLINE NNF_TGT void NNF_FN(_packed)(
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const NNF_T *A, ptrdiff_t a_row,
    ptrdiff_t a_col, const NNF_T *B, ptrdiff_t ldb, NNF_T *C, ptrdiff_t ldc,
    int accumulate, const NNF_T *bias, const NNF_T *act)
{
    NNF__ALIGN64 NNF_T buf[NNF__PACK_KC * NNF_NV_MAX * NNF_VL];
    NNF_FN(_run)(m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate, buf, bias, act);
}

/* TN with tiny n: C^T (n x m) = B^T (n x k) @ op(A)^T (k x m), whose
   right operand rows A[p*a_col + 0..m-1] are contiguous.  The main
   kernel runs with vectors along i (n rows of broadcasts of B) and
   stores its tile transposed. */
NNF__INLINE NNF_TGT void NNF_FN(_tpanel)(
    const int NV, const int MASKED, int rows, ptrdiff_t k, const NNF_T *A,
    ptrdiff_t a_row, ptrdiff_t a_col, const NNF_T *B, ptrdiff_t ldb, NNF_T *C,
    ptrdiff_t ldc, NNF_M mask, int tail, int acc_c)
{
    switch (rows) {
        NNF__TROW_CASE(1)
        NNF__TROW_CASE(2)
        NNF__TROW_CASE(3)
        NNF__TROW_CASE(4)
        NNF__TROW_CASE(5)
        NNF__TROW_CASE(6)
        NNF__TROW_CASE(7)
        NNF__TROW_CASE(8)
        default: break;
    }
}
static NNF__UNUSED NNF__NOINLINE NNF_TGT void
NNF_FN(_tns)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const NNF_T *A,
           ptrdiff_t lda, const NNF_T *B, ptrdiff_t ldb, NNF_T *C, ptrdiff_t ldc,
           int accumulate)
{
    const ptrdiff_t nvec = (m + NNF_VL - 1) / NNF_VL;
    ptrdiff_t j = 0, vleft = nvec;
    ptrdiff_t npanel = (nvec + NNF_NV_MAX - 1) / NNF_NV_MAX;
    for (; npanel > 0; npanel--) {
        const int nv = npanel == 1 ? (int)vleft
                                   : (int)((vleft + npanel - 1) / npanel);
        const ptrdiff_t ncols = NNF__MIN((ptrdiff_t)nv * NNF_VL, m - j);
        const int masked = ncols < (ptrdiff_t)nv * NNF_VL;
        const int tail = (int)(ncols - (nv - 1) * NNF_VL);
        const NNF_M mask = NNF_OP_MASK(tail);
        NNF__PANEL_SWITCH(NNF_FN(_tpanel), (int)n, k, B, 1, ldb,
                          A + j, lda, C + j * ldc, ldc, mask, tail,
                          accumulate)
        j += ncols;
        vleft -= nv;
    }
}

/* The entry points' body: bias and act as in _tile (bias overrides accumulate). The
   transposed tiny-n kernel and k == 0 take the plain product and a separate epilogue
   pass, which gives the same values. */
NNF__INLINE NNF_TGT void NNF_FN(_dispatch)(
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const NNF_T *A, ptrdiff_t a_row, ptrdiff_t a_col,
    const NNF_T *B, ptrdiff_t ldb, NNF_T *C, ptrdiff_t ldc, int accumulate,
    const NNF_T *bias, const NNF_T *act)
{
    if (m <= 0 || n <= 0) return;
#ifdef NNF_YMM_KERNEL
    /* AVX-512 on 256-bit units: rows that take fewer 256-bit operations in ymm vectors run
       a kernel in ymm vectors (AVX-512VL's, else AVX2's), with the same bits (gemm_small.h's
       nnf__ymm_rows). */
    if (NNF__LOAD_RELAXED(nnf__ymm_rows_on) &&
        nnf__ymm_rows(m, n, k, a_row, NNF_VL, NNF_TNS_N)) {
#ifdef NNF_YMM_VL_KERNEL
        if (NNF__LOAD_RELAXED(nnf__ymm_rows_on) == 2) {
            NNF_YMM_VL_KERNEL(m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate, bias, act);
            return;
        }
#endif
        NNF_YMM_KERNEL(m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate, bias, act);
        return;
    }
#endif
    if (bias) accumulate = 1; /* the value C starts from is bias, not 0 */
    /* One step per chain, rows of at least one whole vector (narrower rows: the kernels
       below, which put the vectors along m, unless masked vectors are cheap; one column
       goes to the single-row kernel below). With k == 1, m x 1 A is also contiguous down
       its column (a_row == 1), so the transposed tiny-n kernel would take it, at 4-15x
       the time of the masked k == 1 kernel on AVX-512 (Zen 4, n = 4..7 doubles). */
    if (k == 1 && m > 1 && (n >= NNF_VL || (NNF_K1_MASKED && n > 1))) {
        NNF_FN(_k1)(m, n, A, a_row, B, C, ldc, accumulate, bias, act);
        return;
    }
    /* TN with one contiguous column: C^T (1 x m) = B^T (1 x k) @ op(A)^T, whose rows
       A[p*a_col + 0..m-1] are contiguous: the single-row kernel with all of C's chains in
       flight (same chains: fma(B[p], A[..], acc) is fma(A[..], B[p], acc)). */
    if (n == 1 && a_row == 1 && ldc == 1 && m > 1 && k > 0 && !bias && !act) {
        NNF_FN(_single_row)(m, k, B, ldb, A, a_col, C, accumulate, NULL, NULL);
        return;
    }
    /* TN with tiny n: most lanes of a C row vector would idle; run the
       vectors along m (transposed kernel). */
    if (k <= 0 || (n <= NNF_TNS_N && a_row == 1 && n < m)) {
        if (bias) NNF__CAT(NNF__FILL_ROWS_, NNF_T)(m, n, bias, C, ldc);
        if (k <= 0) {
            if (!accumulate) NNF__CAT(NNF__ZERO_, NNF_T)(m, n, C, ldc);
        } else {
            NNF_FN(_tns)(m, n, k, A, a_col, B, ldb, C, ldc, accumulate);
        }
        if (act) NNF__CAT(NNF__TANH_GRAD_ROWS_, NNF_T)(m, n, act, C, ldc);
        return;
    }
#ifdef NNF_TINY_N
    /* NN with 1 to NNF__TINY_N_MAX columns: vectors along m (see nnf__tiny_n_d), whole
       groups of 4 rows; the other rows (each its own chains) below. */
    if (a_col == 1 && n <= NNF__TINY_N_MAX && m >= 4) {
        const ptrdiff_t done = NNF_TINY_N(m, n, k, A, a_row, B, ldb, C, ldc, accumulate, bias, act);
        A += done * a_row;
        C += done * ldc;
        if (act) act += done * ldc;
        m -= done;
        if (m == 0) return;
    }
#endif
    if (m == 1) {
        NNF_FN(_single_row)(n, k, A, a_col, B, ldb, C, accumulate, bias, act);
        return;
    }
    /* B rows a multiple of 4 KiB apart (n = 512, 1024 doubles; with NNF_PACK2K 2 KiB too):
       all rows of a B panel fall into the same L1 sets and the panel cannot stay
       cached; copy it into a contiguous buffer when enough rows of C re-read it
       (nnf__pack_b; AVX2 f64: +50%; on AVX-512, whose tile does twice the work per B row,
       it costs more than it saves, so PACK4K = 0 there). */
    if (NNF_PACK4K && k >= 64 && nnf__pack_b(m, ldb * (ptrdiff_t)sizeof(NNF_T), NNF_PACK2K)) {
        NNF_FN(_packed)(m, n, k, A, a_row, a_col, B, ldb, C, ldc,
                      accumulate, bias, act);
        return;
    }
    NNF_FN(_run)(m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate, NULL, bias, act);
}

static NNF__UNUSED NNF__NOINLINE NNF_TGT void
NNF_GEMM_NAME(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const NNF_T *A, ptrdiff_t a_row,
     ptrdiff_t a_col, const NNF_T *B, ptrdiff_t ldb, NNF_T *C, ptrdiff_t ldc,
     int accumulate)
{
    NNF_FN(_dispatch)(m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate, NULL, NULL);
}

static NNF__UNUSED NNF__NOINLINE NNF_TGT void
NNF_GEMM_EX_NAME(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const NNF_T *A, ptrdiff_t a_row,
     ptrdiff_t a_col, const NNF_T *B, ptrdiff_t ldb, NNF_T *C, ptrdiff_t ldc,
     int accumulate, const NNF_T *bias, const NNF_T *act)
{
    NNF_FN(_dispatch)(m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate, bias, act);
}

#undef NNF__NV_CASE
#undef NNF__ROW_VECTORS
#undef NNF__PANEL_SWITCH
#undef NNF__PANEL_CASE
#undef NNF__TROW_CASE
#undef NNF__ROW_TAIL
#undef NNF_OP_MASK
#undef NNF_OP_FMA
#undef NNF_OP_BCAST
#undef NNF_OP_STOREM
#undef NNF_OP_STORE
#undef NNF_OP_LOADM
#undef NNF_OP_LOAD
#undef NNF_OP_ZERO
#undef NNF_FN
#undef NNF_GEMM_NAME
#undef NNF_GEMM_EX_NAME
#undef NNF_TINY_N
#undef NNF_TGT
#undef NNF_T
#undef NNF_V
#undef NNF_M
#undef NNF_VL
#undef NNF_MR_MAX
#undef NNF_NV_MAX
#undef NNF_TNS_N
#undef NNF_WIDE_NV
#undef NNF_PACK4K
#undef NNF_PACK2K
#undef NNF_K1_MASKED
#undef NNF_KBLOCK
#undef NNF_YMM_KERNEL
#undef NNF_YMM_VL_KERNEL
#undef NNF_OPS
