/*
 * gemm_small.h -- register-tiled matrix products for SMALL matrices
 *                 (nnfast MLP layers: m, n, k ~ 1..1000).
 *
 * Self-contained and header-only: every function is `static`, the file is
 * C99 and C++ compatible and is meant to be #included from Cython-generated
 * C compiled with plain `-O3` (no -march).  The SIMD paths are compiled per
 * function with GCC/Clang `target` attributes and chosen once at run time,
 * so the same binary runs on any x86-64 CPU.
 *
 * API
 * ---
 *   C = op(A) @ B            (accumulate == 0: C is only written, never read)
 *   C = op(A) @ B + C        (accumulate != 0)
 *
 *   static void nnf_gemm_d(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
 *                          const double *A, ptrdiff_t a_row, ptrdiff_t a_col,
 *                          const double *B, ptrdiff_t ldb,
 *                          double *C, ptrdiff_t ldc, int accumulate);
 *   static void nnf_gemm_f(... the same with float ...);
 *
 *   C is m x n row-major with leading dimension ldc (C[i*ldc + j]).
 *   op(A)[i, p] = A[i*a_row + p*a_col]:
 *       NN (A is m x k row-major):          a_row = lda, a_col = 1
 *       TN (A is k x m row-major, op = A^T): a_row = 1,   a_col = lda
 *       (any other pair of element strides also works, more slowly)
 *   B is k x n row-major with leading dimension ldb (B[p*ldb + j]).
 *   m, n, k >= 0; k == 0 gives C = 0 (or leaves C unchanged if accumulate).
 *   Any alignment (element alignment only).  C must not overlap A or B.
 *   Thread-safe, no heap allocation (at most ~17 KiB of stack).
 *   NN x B^T (dX = dZ @ W^T): transpose W into a scratch buffer first.
 *
 *   static int nnf_gemm_isa(void);      path in use: NNF_ISA_BASELINE (0),
 *                                       NNF_ISA_AVX2 (1) or NNF_ISA_AVX512 (2)
 *   static int nnf_gemm_cpu_isa(void);  best path this CPU supports
 *   static const char *nnf_gemm_isa_name(int isa);
 *   Per-path entry points with the same signature (for tests/benchmarks;
 *   call a SIMD one only if nnf_gemm_cpu_isa() says so):
 *       nnf_gemm_{d,f}_baseline, nnf_gemm_{d,f}_avx2, nnf_gemm_{d,f}_avx512
 *
 * Path selection (once per translation unit, cached in a static variable)
 * ----------------------------------------------------------------------
 *   The best of AVX-512F > AVX2+FMA > baseline that __builtin_cpu_supports
 *   reports (it also checks that the OS saves the registers), capped by
 *     - the macro NNF_GEMM_MAX_ISA (0, 1, 2) at compile time, and
 *     - the environment variable NNF_GEMM_ISA=baseline|avx2|avx512, read at
 *       the first call.
 *   NNF_GEMM_NO_SIMD: compile the baseline path only.
 *   The baseline is the same kernel code on 16-byte GCC vector extensions
 *   (SSE2 on x86-64, NEON on ARM); NNF_GEMM_SCALAR (automatic for compilers
 *   without GNU extensions) selects a plain-C scalar tiled kernel instead.
 *
 * Design
 * ------
 *   Main kernel (_tile): an MR x NV*VL block of C lives in MR*NV vector
 *   registers: AVX-512 8 x 3 zmm (8x24 doubles / 8x48 floats), AVX2 4 x 3 ymm
 *   (4x12 / 4x24), baseline 4 x 2 xmm.  Per k step it loads NV vectors of
 *   row p of B, broadcasts op(A)[i..i+MR-1, p] and issues MR*NV FMAs.
 *   Column tails: the last vector of the last panel uses masked loads and
 *   stores (AVX-512 k-masks, AVX2 vmaskmov), so n = 1, 3, 10, 20... stay in
 *   the vector kernel and nothing outside the operands is read or written.
 *   Columns are split into balanced panels of <= NV vectors (n=64 doubles:
 *   3+3+2).  Panels of fewer vectors get taller tiles (up to 12 rows) so the
 *   number of independent accumulators stays near MR*NV; row tails use the
 *   same kernel with 4, 2, 1 rows.
 *   Reproducibility invariant: on a given path every element C[i, j] is ONE
 *   chain  acc = (accumulate ? C[i,j] : 0);  acc = fma(op(A)[i,p], B[p,j],
 *   acc) for p = 0, 1, ..., k-1 in order (baseline: a*b + c, unfused unless
 *   the compiler contracts it), whatever m, n, the position, the tile, the
 *   kernel, the blocking or the alignment: no k-split partial sums, no
 *   vectors along k, no final "+ C"; k blocks continue from the stored C.
 *   So a row of C equals the single-row product, C of reversed rows is C
 *   reversed, a column equals the single-column product, and the AVX2 and
 *   AVX-512 paths agree bit for bit.  The price: tiles with few
 *   accumulators (m = 1, tiny n with few rows) are bound by FMA latency.
 *   Tiny n (a row of C is a fraction of a vector):
 *     TN: C^T = B^T op(A)^T has contiguous rows A[p*lda + 0..m-1]: the main
 *         kernel runs with vectors along m and stores its tile transposed
 *         (same chains, fma operands swapped, which is exact).
 *     NN: the main kernel with one masked vector per row (tiles of up to
 *         12 rows).
 *   m == 1 with wide n (GEMV-like): a single-row kernel with 16 zmm
 *   accumulators that reads long contiguous pieces of each B row.
 *   Blocking: operands are used in place -- no packing, no setup cost.  The
 *   column panel of B (k x NV*VL) is reused by all row tiles from L1/L2;
 *   op(A) is split into L2-sized row blocks when several panels re-read it;
 *   k is split into NNF_GEMM_KC blocks once B outgrows L2.  Two cache-set
 *   conflict cases are special-cased: B rows a multiple of 4 KiB apart
 *   (AVX2/baseline copy the B panel into a stack buffer) and TN with op(A)
 *   rows a multiple of 2 KiB apart (k blocks of 128).
 *   Known slow spot: the tiny-n TN kernel with lda*sizeof a multiple of
 *   2 KiB and large k (e.g. lda = 512 doubles, k = 1000) runs at ~1/2 speed
 *   (still far ahead of BLAS); padding such leading dimensions by 8-16
 *   elements avoids it.
 */
#ifndef NNF_GEMM_SMALL_H
#define NNF_GEMM_SMALL_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define NNF_ISA_BASELINE 0
#define NNF_ISA_AVX2 1
#define NNF_ISA_AVX512 2

#ifndef NNF_GEMM_MAX_ISA
#define NNF_GEMM_MAX_ISA NNF_ISA_AVX512
#endif

#if defined(__GNUC__) || defined(__clang__)
#define NNF__GNU 1
#else
#define NNF__GNU 0
#endif

/* x86-64 SIMD paths (AVX2, AVX-512) with run-time dispatch. */
#if NNF__GNU && defined(__x86_64__) && !defined(NNF_GEMM_NO_SIMD)
#define NNF__X86 1
#include <immintrin.h>
#else
#define NNF__X86 0
#endif

/* Baseline on 16-byte GCC vector extensions, or plain scalar C. */
#if NNF__GNU && !defined(NNF_GEMM_SCALAR) &&                                  \
    (defined(__SSE2__) || defined(__ARM_NEON) || defined(__aarch64__))
#define NNF__VECEXT 1
#else
#define NNF__VECEXT 0
#endif

#if NNF__GNU
#define NNF__UNUSED __attribute__((unused))
#define NNF__INLINE static inline __attribute__((always_inline))
#define NNF__NOINLINE __attribute__((noinline))
#define NNF__ALIGN64 __attribute__((aligned(64)))
#else
#define NNF__UNUSED
#define NNF__INLINE static inline
#define NNF__NOINLINE
#define NNF__ALIGN64
#endif

/* Full unrolling of the fixed-trip (MR, NV, KS) loops: after inlining with
   constant tile sizes the accumulator arrays become registers. */
#if defined(__clang__)
#define NNF__UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define NNF__UNROLL _Pragma("GCC unroll 16")
#else
#define NNF__UNROLL
#endif

/* Blocking parameters (overridable).
   NNF_GEMM_KBLOCK_BYTES: when B's footprint k * ldb * sizeof(T) exceeds this
     (~L2), k is processed in blocks of NNF_GEMM_KC, so that the KC-deep B
     panel of a column panel stays in L2 and op(A) row blocks stay small.
   NNF__A_BLOCK_BYTES: row-block size so that op(A) stays in L2 while the
     column panels sweep over it.
   (Copying B panels into a packed buffer, as BLAS does, was measured to be
   slower than reading B in place for every shape up to 1024^3 here, except
   when B's row stride is a multiple of 4 KiB: only then is B packed.) */
#ifndef NNF_GEMM_KC
#define NNF_GEMM_KC 256
#endif
#ifndef NNF_GEMM_KBLOCK_BYTES
#define NNF_GEMM_KBLOCK_BYTES (1024 * 1024)
#endif
#define NNF__A_BLOCK_BYTES (256 * 1024)
#define NNF__PACK_KC 128 /* depth of a packed B panel (<= 24 KiB of stack) */

#define NNF__MIN(a, b) ((a) < (b) ? (a) : (b))

/* C[0:m, 0:n] = 0 (k == 0 without accumulate). */
#define NNF__DEFINE_ZERO(NAME, T)                                             \
    static NNF__UNUSED void NAME(ptrdiff_t m, ptrdiff_t n, T *C,              \
                                 ptrdiff_t ldc)                               \
    {                                                                         \
        ptrdiff_t i, j;                                                       \
        for (i = 0; i < m; i++)                                               \
            for (j = 0; j < n; j++) C[i * ldc + j] = (T)0;                    \
    }
NNF__DEFINE_ZERO(nnf__zero_d, double)
NNF__DEFINE_ZERO(nnf__zero_f, float)
#define NNF__ZERO_double nnf__zero_d
#define NNF__ZERO_float nnf__zero_f

/* ======================================================================== */
/* SIMD template: one instantiation per (ISA, dtype)                        */
/* ======================================================================== */
/*
 * Parameters:
 *   NAME    name of the entry point (helpers are NAME##_suffix)
 *   TGT     function attribute selecting the ISA, e.g.
 *           __attribute__((target("avx2,fma"))), or nothing
 *   T, V, M element type, vector type, mask type
 *   VL      lanes per vector
 *   MR_MAX  rows, NV_MAX (<= 4) vectors per main-kernel tile
 *           (MR_MAX*NV_MAX accumulators + NV_MAX + 1 must fit in registers)
 *   TNS_N   TN products with n <= TNS_N (<= MR_MAX, <= 8) and n < m use the
 *           transposed kernel
 *   WIDE_NV vectors per pass of the single-row (m == 1) kernel
 *   PACK4K  1: copy B panels into a buffer when B's row stride is a
 *           multiple of 4 KiB (see the entry point)
 *   OPS     prefix of the operation macros:
 *           OPS##_ZERO(), _LOAD(p), _LOADM(p, mask) (lanes outside the mask
 *           read as 0 and never fault), _STORE(p, v), _STOREM(p, mask, v),
 *           _BCAST(x), _FMA(a, b, c) = a*b + c (fused on AVX2/AVX-512),
 *           _MASK(r): mask of the first r lanes (1 <= r <= VL).
 */
/* Rows per tile of a panel of nv vectors: MR_MAX * NV_MAX / nv accumulators
   worth, at most 12 (more row addresses than that spill GPRs). */
#define NNF__WROWS(MR_MAX, NV_MAX, nv)                                        \
    NNF__MIN((MR_MAX) * (NV_MAX) / (nv), 12)

/* Leftover rows (< MR_MAX) as tiles of 4, 2 and 1 rows: fewer
   instantiations than one tile per remainder, nearly as fast. */
#define NNF__ROW_TAIL(NAME, R, MR_MAX, NV, MASKED)                            \
    if (R < MR_MAX && (m - i) >= R) {                                         \
        NAME##_tile(R < MR_MAX ? R : 1, NV, MASKED, 0, k, A + i * a_row,      \
                    a_row, a_col, B, ldb, C + i * ldc, ldc, mask, tail,       \
                    acc_c);                                                   \
        i += R;                                                               \
    }

/* Transposed-kernel dispatch on its number of rows (= n of the product). */
#define NNF__TROW_CASE(NAME, R, MR_MAX)                                       \
    case R:                                                                   \
        if (R <= MR_MAX)                                                      \
            NAME##_tile(R <= MR_MAX ? R : 1, NV, MASKED, 1, k, A, a_row,      \
                        a_col, B, ldb, C, ldc, mask, tail, acc_c);            \
        break;

/* (nv, masked) -> PANEL(NV, MASKED, ...) with constant NV and MASKED. */
#define NNF__PANEL_CASE(PANEL, NV, NV_MAX, ...)                               \
    case 2 * NV:                                                              \
        if (NV <= NV_MAX) PANEL(NV <= NV_MAX ? NV : 1, 0, __VA_ARGS__);       \
        break;                                                                \
    case 2 * NV + 1:                                                          \
        if (NV <= NV_MAX) PANEL(NV <= NV_MAX ? NV : 1, 1, __VA_ARGS__);       \
        break;
#define NNF__PANEL_SWITCH(PANEL, NV_MAX, ...)                                 \
    switch (2 * nv + masked) {                                                \
        NNF__PANEL_CASE(PANEL, 1, NV_MAX, __VA_ARGS__)                        \
        NNF__PANEL_CASE(PANEL, 2, NV_MAX, __VA_ARGS__)                        \
        NNF__PANEL_CASE(PANEL, 3, NV_MAX, __VA_ARGS__)                        \
        NNF__PANEL_CASE(PANEL, 4, NV_MAX, __VA_ARGS__)                        \
        default: break;                                                       \
    }

#define NNF__DEFINE_SIMD_GEMM(NAME, TGT, T, V, M, VL, MR_MAX, NV_MAX, TNS_N,  \
                              WIDE_NV, PACK4K, OPS)                           \
                                                                              \
    /* m == 1, wide B: one row of C, WIDE_NV vectors (e.g. 16 zmm = 128       \
       doubles) per pass, so each k step reads a long contiguous piece of a   \
       B row (GEMV-like shapes stream B from L2/L3).  Returns the number of   \
       columns done; the rest go to the general kernel. */                    \
    static NNF__UNUSED NNF__NOINLINE TGT ptrdiff_t NAME##_wide(               \
        ptrdiff_t n, ptrdiff_t k, const T *A, ptrdiff_t a_col, const T *B,    \
        ptrdiff_t ldb, T *C, int acc_c)                                       \
    {                                                                         \
        ptrdiff_t j, p;                                                       \
        int v;                                                                \
        for (j = 0; j + WIDE_NV * VL <= n; j += WIDE_NV * VL) {               \
            V acc[WIDE_NV];                                                   \
            NNF__UNROLL for (v = 0; v < WIDE_NV; v++)                         \
                acc[v] = acc_c ? OPS##_LOAD(C + j + v * VL) : OPS##_ZERO();   \
            for (p = 0; p < k; p++) {                                         \
                const V a = OPS##_BCAST(A[p * a_col]);                        \
                const T *b = B + p * ldb + j;                                 \
                NNF__UNROLL for (v = 0; v < WIDE_NV; v++)                     \
                    acc[v] = OPS##_FMA(a, OPS##_LOAD(b + v * VL), acc[v]);    \
            }                                                                 \
            NNF__UNROLL for (v = 0; v < WIDE_NV; v++)                         \
                OPS##_STORE(C + j + v * VL, acc[v]);                          \
        }                                                                     \
        return j;                                                             \
    }                                                                         \
                                                                              \
    /* One k step of the main kernel: acc[r][v] += op(A)[r, p] * B[p, v]. */  \
    NNF__INLINE TGT void NAME##_step(                                         \
        const int MR, const int NV, const int MASKED, V acc[][NV_MAX],        \
        const T *a, ptrdiff_t a_row, const T *b, M mask)                      \
    {                                                                         \
        V bv[NV_MAX];                                                         \
        int r, v;                                                             \
        NNF__UNROLL for (v = 0; v < NV; v++)                                  \
            bv[v] = (MASKED && v == NV - 1) ? OPS##_LOADM(b + v * VL, mask)   \
                                            : OPS##_LOAD(b + v * VL);         \
        NNF__UNROLL for (r = 0; r < MR; r++) {                                \
            const V ar = OPS##_BCAST(a[r * a_row]);                           \
            NNF__UNROLL for (v = 0; v < NV; v++)                              \
                acc[r][v] = OPS##_FMA(ar, bv[v], acc[r][v]);                  \
        }                                                                     \
    }                                                                         \
                                                                              \
    /* Transposed tile I/O (see _tns): _tload sets tmp[r*ld + j] =         \
       C[j*ldc + r] for r < rows, j < cols (0 for cols <= j < ld), _tstore    \
       does the reverse. */                                                   \
    static NNF__UNUSED NNF__NOINLINE void NAME##_tload(                       \
        T *tmp, int rows, int cols, int ld, const T *C, ptrdiff_t ldc)        \
    {                                                                         \
        int r, j;                                                             \
        for (r = 0; r < rows; r++)                                            \
            for (j = 0; j < ld; j++)                                          \
                tmp[r * ld + j] = j < cols ? C[j * ldc + r] : (T)0;           \
    }                                                                         \
    static NNF__UNUSED NNF__NOINLINE void NAME##_tstore(                      \
        const T *tmp, int rows, int cols, int ld, T *C, ptrdiff_t ldc)        \
    {                                                                         \
        int r, j;                                                             \
        for (j = 0; j < cols; j++) {                                          \
            T *c = C + j * ldc;                                               \
            for (r = 0; r < rows; r++) c[r] = tmp[r * ld + j];                \
        }                                                                     \
    }                                                                         \
                                                                              \
    /* Main kernel: C[0:MR, 0:NV*VL] (+)= op(A)[0:MR, 0:k] @ B[0:k, :].       \
       MASKED: the last vector covers only the lanes in `mask` (`tail`        \
       lanes).  TRANS_C: element (r, j) goes to C[j*ldc + r].                 \
       Every element is ONE chain acc = fma(op(A)[r,p], B[p,j], acc) for      \
       p = 0..k-1 in order, started from C (acc_c) or 0: no split of k, no    \
       final add, so the result does not depend on the tile or position. */   \
    NNF__INLINE TGT void NAME##_tile(                                         \
        const int MR, const int NV, const int MASKED, const int TRANS_C,      \
        ptrdiff_t k, const T *A, ptrdiff_t a_row, ptrdiff_t a_col,            \
        const T *B, ptrdiff_t ldb, T *C, ptrdiff_t ldc, M mask, int tail,     \
        int acc_c)                                                            \
    {                                                                         \
        V acc[NNF__WROWS(MR_MAX, NV_MAX, 1)][NV_MAX];                         \
        const int cols = MASKED ? (NV - 1) * VL + tail : NV * VL;             \
        ptrdiff_t p;                                                          \
        int r, v;                                                             \
        if (TRANS_C) {                                                        \
            NNF__ALIGN64 T tmp[MR_MAX * NV_MAX * VL];                         \
            if (acc_c) {                                                      \
                NAME##_tload(tmp, MR, cols, NV * VL, C, ldc);                 \
                NNF__UNROLL for (r = 0; r < MR; r++)                          \
                    NNF__UNROLL for (v = 0; v < NV; v++)                      \
                        acc[r][v] = OPS##_LOAD(tmp + (r * NV + v) * VL);      \
            } else {                                                          \
                NNF__UNROLL for (r = 0; r < MR; r++)                          \
                    NNF__UNROLL for (v = 0; v < NV; v++)                      \
                        acc[r][v] = OPS##_ZERO();                             \
            }                                                                 \
            for (p = 0; p < k; p++)                                           \
                NAME##_step(MR, NV, MASKED, acc, A + p * a_col, a_row,        \
                            B + p * ldb, mask);                               \
            NNF__UNROLL for (r = 0; r < MR; r++)                              \
                NNF__UNROLL for (v = 0; v < NV; v++)                          \
                    OPS##_STORE(tmp + (r * NV + v) * VL, acc[r][v]);          \
            NAME##_tstore(tmp, MR, cols, NV * VL, C, ldc);                    \
            return;                                                           \
        }                                                                     \
        if (acc_c) {                                                          \
            NNF__UNROLL for (r = 0; r < MR; r++)                              \
                NNF__UNROLL for (v = 0; v < NV; v++)                          \
                    acc[r][v] = (MASKED && v == NV - 1)                       \
                                    ? OPS##_LOADM(C + r * ldc + v * VL, mask) \
                                    : OPS##_LOAD(C + r * ldc + v * VL);       \
        } else {                                                              \
            NNF__UNROLL for (r = 0; r < MR; r++)                              \
                NNF__UNROLL for (v = 0; v < NV; v++)                          \
                    acc[r][v] = OPS##_ZERO();                                 \
        }                                                                     \
        for (p = 0; p < k; p++)                                               \
            NAME##_step(MR, NV, MASKED, acc, A + p * a_col, a_row,            \
                        B + p * ldb, mask);                                   \
        NNF__UNROLL for (r = 0; r < MR; r++)                                  \
            NNF__UNROLL for (v = 0; v < NV; v++) {                            \
                if (MASKED && v == NV - 1)                                    \
                    OPS##_STOREM(C + r * ldc + v * VL, mask, acc[r][v]);      \
                else                                                          \
                    OPS##_STORE(C + r * ldc + v * VL, acc[r][v]);             \
            }                                                                 \
    }                                                                         \
                                                                              \
    /* One column panel (NV vectors wide) over all m rows: tiles of           \
       NNF__WROWS rows (narrow panels get more rows, so that there are        \
       always about MR_MAX*NV_MAX independent accumulator chains), then       \
       MR_MAX-row tiles, then the leftover rows. */                           \
    NNF__INLINE TGT void NAME##_panel(                                        \
        const int NV, const int MASKED, ptrdiff_t m, ptrdiff_t k,             \
        const T *A, ptrdiff_t a_row, ptrdiff_t a_col, const T *B,             \
        ptrdiff_t ldb, T *C, ptrdiff_t ldc, M mask, int tail, int acc_c)      \
    {                                                                         \
        const int MRW = NNF__WROWS(MR_MAX, NV_MAX, NV);                       \
        ptrdiff_t i = 0;                                                      \
        if (MRW > MR_MAX)                                                     \
            for (; i + MRW <= m; i += MRW)                                    \
                NAME##_tile(MRW, NV, MASKED, 0, k, A + i * a_row, a_row,      \
                            a_col, B, ldb, C + i * ldc, ldc, mask, tail,      \
                            acc_c);                                           \
        for (; i + MR_MAX <= m; i += MR_MAX)                                  \
            NAME##_tile(MR_MAX, NV, MASKED, 0, k, A + i * a_row, a_row,       \
                        a_col, B, ldb, C + i * ldc, ldc, mask, tail, acc_c);  \
        NNF__ROW_TAIL(NAME, 4, MR_MAX, NV, MASKED)                            \
        NNF__ROW_TAIL(NAME, 2, MR_MAX, NV, MASKED)                            \
        NNF__ROW_TAIL(NAME, 1, MR_MAX, NV, MASKED)                            \
    }                                                                         \
                                                                              \
    /* Copy B[0:kc, 0:nv*VL] (last vector masked, zero padded) into buf       \
       (row stride nv*VL). */                                                 \
    NNF__INLINE TGT void NAME##_pack(ptrdiff_t kc, int nv, int masked,        \
                                     M mask, const T *B, ptrdiff_t ldb,       \
                                     T *buf)                                  \
    {                                                                         \
        const int full = masked ? nv - 1 : nv;                                \
        ptrdiff_t p;                                                          \
        int v;                                                                \
        for (p = 0; p < kc; p++) {                                            \
            const T *b = B + p * ldb;                                         \
            T *d = buf + p * nv * VL;                                         \
            for (v = 0; v < full; v++)                                        \
                OPS##_STORE(d + v * VL, OPS##_LOAD(b + v * VL));              \
            if (masked)                                                       \
                OPS##_STORE(d + full * VL, OPS##_LOADM(b + full * VL, mask)); \
        }                                                                     \
    }                                                                         \
                                                                              \
    /* General driver.  Blocks: k by NNF_GEMM_KC when B is large (the B       \
       panel of a k block stays in L2), rows by an L2-sized row block when    \
       several column panels re-read op(A), columns in balanced panels of     \
       <= NV_MAX vectors.  Operands are used in place, except that with buf   \
       != NULL each NNF__PACK_KC x NV*VL panel of B is first copied into buf  \
       (see the entry point). */                                              \
    static NNF__UNUSED NNF__NOINLINE TGT void NAME##_run(                     \
        ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *A, ptrdiff_t a_row,   \
        ptrdiff_t a_col, const T *B, ptrdiff_t ldb, T *C, ptrdiff_t ldc,      \
        int accumulate, T *buf)                                               \
    {                                                                         \
        const ptrdiff_t nvec = (n + VL - 1) / VL; /* vectors per C row */     \
        ptrdiff_t kc_max =                                                    \
            (double)k * (double)ldb * sizeof(T) > NNF_GEMM_KBLOCK_BYTES       \
                ? NNF_GEMM_KC                                                 \
                : k;                                                          \
        ptrdiff_t mc_max = m, pc, ic;                                         \
        /* TN with a row stride that is a multiple of 2 KiB (lda = 256, 512,  \
           1024...): the k rows a tile reads from op(A) map to a few cache    \
           sets only; shorter k blocks keep them cached (+30-60% at k=1024). */ \
        if (a_row == 1 && ((a_col * (ptrdiff_t)sizeof(T)) & 2047) == 0 &&     \
            kc_max > 128)                                                     \
            kc_max = 128;                                                     \
        if (buf != NULL && kc_max > NNF__PACK_KC) kc_max = NNF__PACK_KC;      \
        if (nvec > NV_MAX &&                                                  \
            m * kc_max * (ptrdiff_t)sizeof(T) > NNF__A_BLOCK_BYTES) {         \
            mc_max = NNF__A_BLOCK_BYTES / ((ptrdiff_t)sizeof(T) * kc_max);    \
            mc_max = mc_max < MR_MAX ? MR_MAX : mc_max - mc_max % MR_MAX;     \
        }                                                                     \
        for (pc = 0; pc < k; pc += kc_max) {                                  \
            const ptrdiff_t kc = NNF__MIN(kc_max, k - pc);                    \
            const int acc_c = accumulate || pc > 0;                           \
            for (ic = 0; ic < m; ic += mc_max) {                              \
                const ptrdiff_t mc = NNF__MIN(mc_max, m - ic);                \
                const T *a = A + ic * a_row + pc * a_col;                     \
                ptrdiff_t j = 0, vleft = nvec;                                \
                ptrdiff_t npanel = (nvec + NV_MAX - 1) / NV_MAX;              \
                for (; npanel > 0; npanel--) {                                \
                    /* balanced split of the remaining vectors */             \
                    const int nv = npanel == 1                                \
                                       ? (int)vleft                           \
                                       : (int)((vleft + npanel - 1) / npanel); \
                    const ptrdiff_t ncols = NNF__MIN((ptrdiff_t)nv * VL, n - j); \
                    const int masked = ncols < (ptrdiff_t)nv * VL;            \
                    const int tail = (int)(ncols - (nv - 1) * VL);            \
                    const M mask = OPS##_MASK(tail);                          \
                    const T *bp = B + pc * ldb + j;                           \
                    ptrdiff_t ldbp = ldb;                                     \
                    if (buf != NULL) {                                        \
                        NAME##_pack(kc, nv, masked, mask, bp, ldb, buf);      \
                        bp = buf;                                             \
                        ldbp = (ptrdiff_t)nv * VL;                            \
                    }                                                         \
                    NNF__PANEL_SWITCH(NAME##_panel, NV_MAX, mc, kc, a, a_row, \
                                      a_col, bp, ldbp, C + ic * ldc + j, ldc, \
                                      mask, tail, acc_c)                      \
                    j += ncols;                                               \
                    vleft -= nv;                                              \
                }                                                             \
            }                                                                 \
        }                                                                     \
    }                                                                         \
                                                                              \
    /* B rows 4 KiB apart: pack B panels (the stack buffer lives only in      \
       this function's frame). */                                             \
    static NNF__UNUSED NNF__NOINLINE TGT void NAME##_packed(                  \
        ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *A, ptrdiff_t a_row,   \
        ptrdiff_t a_col, const T *B, ptrdiff_t ldb, T *C, ptrdiff_t ldc,      \
        int accumulate)                                                       \
    {                                                                         \
        NNF__ALIGN64 T buf[NNF__PACK_KC * NV_MAX * VL];                       \
        NAME##_run(m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate, buf); \
    }                                                                         \
                                                                              \
    /* TN with tiny n: C^T (n x m) = B^T (n x k) @ op(A)^T (k x m), whose     \
       right operand rows A[p*a_col + 0..m-1] are contiguous.  The main       \
       kernel runs with vectors along i (n rows of broadcasts of B) and       \
       stores its tile transposed. */                                         \
    NNF__INLINE TGT void NAME##_tpanel(                                       \
        const int NV, const int MASKED, int rows, ptrdiff_t k, const T *A,    \
        ptrdiff_t a_row, ptrdiff_t a_col, const T *B, ptrdiff_t ldb, T *C,    \
        ptrdiff_t ldc, M mask, int tail, int acc_c)                           \
    {                                                                         \
        switch (rows) {                                                       \
            NNF__TROW_CASE(NAME, 1, MR_MAX)                                   \
            NNF__TROW_CASE(NAME, 2, MR_MAX)                                   \
            NNF__TROW_CASE(NAME, 3, MR_MAX)                                   \
            NNF__TROW_CASE(NAME, 4, MR_MAX)                                   \
            NNF__TROW_CASE(NAME, 5, MR_MAX)                                   \
            NNF__TROW_CASE(NAME, 6, MR_MAX)                                   \
            NNF__TROW_CASE(NAME, 7, MR_MAX)                                   \
            NNF__TROW_CASE(NAME, 8, MR_MAX)                                   \
            default: break;                                                   \
        }                                                                     \
    }                                                                         \
    static NNF__UNUSED NNF__NOINLINE TGT void                                 \
    NAME##_tns(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *A,             \
               ptrdiff_t lda, const T *B, ptrdiff_t ldb, T *C, ptrdiff_t ldc, \
               int accumulate)                                                \
    {                                                                         \
        const ptrdiff_t nvec = (m + VL - 1) / VL;                             \
        ptrdiff_t j = 0, vleft = nvec;                                        \
        ptrdiff_t npanel = (nvec + NV_MAX - 1) / NV_MAX;                      \
        for (; npanel > 0; npanel--) {                                        \
            const int nv = npanel == 1 ? (int)vleft                           \
                                       : (int)((vleft + npanel - 1) / npanel); \
            const ptrdiff_t ncols = NNF__MIN((ptrdiff_t)nv * VL, m - j);      \
            const int masked = ncols < (ptrdiff_t)nv * VL;                    \
            const int tail = (int)(ncols - (nv - 1) * VL);                    \
            const M mask = OPS##_MASK(tail);                                  \
            NNF__PANEL_SWITCH(NAME##_tpanel, NV_MAX, (int)n, k, B, 1, ldb,    \
                              A + j, lda, C + j * ldc, ldc, mask, tail,       \
                              accumulate)                                     \
            j += ncols;                                                       \
            vleft -= nv;                                                      \
        }                                                                     \
    }                                                                         \
                                                                              \
    static NNF__UNUSED NNF__NOINLINE TGT void                                 \
    NAME(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *A, ptrdiff_t a_row,  \
         ptrdiff_t a_col, const T *B, ptrdiff_t ldb, T *C, ptrdiff_t ldc,     \
         int accumulate)                                                      \
    {                                                                         \
        if (m <= 0 || n <= 0) return;                                         \
        if (k <= 0) {                                                         \
            if (!accumulate) NNF__ZERO_##T(m, n, C, ldc);                     \
            return;                                                           \
        }                                                                     \
        /* TN with tiny n: most lanes of a C row vector would idle; run the   \
           vectors along m (transposed kernel). */                            \
        if (n <= TNS_N && a_row == 1 && n < m) {                              \
            NAME##_tns(m, n, k, A, a_col, B, ldb, C, ldc, accumulate);        \
            return;                                                           \
        }                                                                     \
        if (m == 1 && n >= WIDE_NV * VL) {                                    \
            const ptrdiff_t done =                                            \
                NAME##_wide(n, k, A, a_col, B, ldb, C, accumulate);           \
            /* the remaining < WIDE_NV*VL columns: general kernel */          \
            B += done;                                                        \
            C += done;                                                        \
            n -= done;                                                        \
            if (n == 0) return;                                               \
        }                                                                     \
        /* B rows a multiple of 4 KiB apart (n = 512, 1024 doubles): all rows \
           of a B panel fall into the same L1 sets and the panel cannot stay  \
           cached; copy it into a contiguous buffer (AVX2 f64: +50%; on       \
           AVX-512, whose tile does twice the work per B row, it costs more   \
           than it saves, so PACK4K = 0 there). */                            \
        if (PACK4K && ((ldb * (ptrdiff_t)sizeof(T)) & 4095) == 0 && k >= 64 && \
            m >= 2 * MR_MAX) {                                                \
            NAME##_packed(m, n, k, A, a_row, a_col, B, ldb, C, ldc,           \
                          accumulate);                                        \
            return;                                                           \
        }                                                                     \
        NAME##_run(m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate, NULL); \
    }

/* ======================================================================== */
/* Baseline: 16-byte GCC vector extensions (SSE2 / NEON), no run-time check */
/* ======================================================================== */
#if NNF__VECEXT

typedef double nnf__v2d __attribute__((vector_size(16)));
typedef float nnf__v4f __attribute__((vector_size(16)));

/* Masks are lane counts: partial loads/stores touch only the first r
   elements. */
#define NNF__DEFINE_VECEXT_OPS(P, T, V, VL, VINIT)                            \
    NNF__INLINE V P##_zero(void)                                              \
    {                                                                         \
        V v;                                                                  \
        memset(&v, 0, sizeof v);                                              \
        return v;                                                             \
    }                                                                         \
    NNF__INLINE V P##_load(const T *p)                                        \
    {                                                                         \
        V v;                                                                  \
        memcpy(&v, p, sizeof v);                                              \
        return v;                                                             \
    }                                                                         \
    NNF__INLINE V P##_loadm(const T *p, int r)                                \
    {                                                                         \
        T t[VL];                                                              \
        V v;                                                                  \
        int l;                                                                \
        /* built from scalars in registers (lane inserts through memory       \
           would stall store forwarding at every k step) */                   \
        NNF__UNROLL for (l = 0; l < VL; l++) t[l] = l < r ? p[l] : (T)0;      \
        {                                                                     \
            const V w = VINIT(t);                                             \
            v = w;                                                            \
        }                                                                     \
        return v;                                                             \
    }                                                                         \
    NNF__INLINE void P##_store(T *p, V v) { memcpy(p, &v, sizeof v); }        \
    NNF__INLINE void P##_storem(T *p, int r, V v)                             \
    {                                                                         \
        int l;                                                                \
        for (l = 0; l < r; l++) p[l] = v[l];                                  \
    }                                                                         \
    NNF__INLINE V P##_bcast(T x)                                              \
    {                                                                         \
        T t[VL];                                                              \
        int l;                                                                \
        NNF__UNROLL for (l = 0; l < VL; l++) t[l] = x;                        \
        {                                                                     \
            const V w = VINIT(t); /* one shuffle, not VL lane inserts */      \
            return w;                                                         \
        }                                                                     \
    }
#define NNF__VINIT2(t) { (t)[0], (t)[1] }
#define NNF__VINIT4(t) { (t)[0], (t)[1], (t)[2], (t)[3] }
NNF__DEFINE_VECEXT_OPS(nnf__g2d, double, nnf__v2d, 2, NNF__VINIT2)
NNF__DEFINE_VECEXT_OPS(nnf__g4f, float, nnf__v4f, 4, NNF__VINIT4)

#define NNF__G2D_ZERO() nnf__g2d_zero()
#define NNF__G2D_LOAD(p) nnf__g2d_load(p)
#define NNF__G2D_LOADM(p, m) nnf__g2d_loadm((p), (m))
#define NNF__G2D_STORE(p, v) nnf__g2d_store((p), (v))
#define NNF__G2D_STOREM(p, m, v) nnf__g2d_storem((p), (m), (v))
#define NNF__G2D_BCAST(x) nnf__g2d_bcast(x)
#define NNF__G2D_FMA(a, b, c) ((a) * (b) + (c))
#define NNF__G2D_MASK(r) (r)

#define NNF__G4F_ZERO() nnf__g4f_zero()
#define NNF__G4F_LOAD(p) nnf__g4f_load(p)
#define NNF__G4F_LOADM(p, m) nnf__g4f_loadm((p), (m))
#define NNF__G4F_STORE(p, v) nnf__g4f_store((p), (v))
#define NNF__G4F_STOREM(p, m, v) nnf__g4f_storem((p), (m), (v))
#define NNF__G4F_BCAST(x) nnf__g4f_bcast(x)
#define NNF__G4F_FMA(a, b, c) ((a) * (b) + (c))
#define NNF__G4F_MASK(r) (r)

/* 4 x 2 tiles: 8 accumulators + 2 B vectors + 1 broadcast of 16 xmm. */
NNF__DEFINE_SIMD_GEMM(nnf_gemm_d_baseline, , double, nnf__v2d, int, 2, 4, 2,
                      1, 6, 1, NNF__G2D)
NNF__DEFINE_SIMD_GEMM(nnf_gemm_f_baseline, , float, nnf__v4f, int, 4, 4, 2,
                      2, 6, 1, NNF__G4F)

#else /* !NNF__VECEXT */

/* ======================================================================== */
/* Baseline: plain scalar C (compilers without GNU vector extensions)       */
/* ======================================================================== */
/* MR x NR tile; constant size for full tiles, runtime-bounded (mr <= MR,
   nr <= NR) for edge tiles. */
#define NNF__DEFINE_SCALAR_GEMM(NAME, T, MR, NR)                              \
    NNF__INLINE void NAME##_tile(const int full, int mr, int nr, ptrdiff_t k, \
                                 const T *A, ptrdiff_t a_row,                 \
                                 ptrdiff_t a_col, const T *B, ptrdiff_t ldb,  \
                                 T *C, ptrdiff_t ldc, int acc_c)              \
    {                                                                         \
        T acc[MR][NR];                                                        \
        ptrdiff_t p;                                                          \
        int r, j;                                                             \
        if (full) { mr = MR; nr = NR; }                                       \
        for (r = 0; r < MR; r++)                                              \
            for (j = 0; j < NR; j++)                                          \
                acc[r][j] = acc_c && r < mr && j < nr ? C[r * ldc + j] : (T)0; \
        for (p = 0; p < k; p++) {                                             \
            const T *b = B + p * ldb;                                         \
            for (r = 0; r < MR; r++) {                                        \
                if (r < mr) {                                                 \
                    const T a = A[r * a_row + p * a_col];                     \
                    for (j = 0; j < NR; j++)                                  \
                        if (j < nr) acc[r][j] += a * b[j];                    \
                }                                                             \
            }                                                                 \
        }                                                                     \
        for (r = 0; r < mr; r++)                                              \
            for (j = 0; j < nr; j++) C[r * ldc + j] = acc[r][j];              \
    }                                                                         \
                                                                              \
    static NNF__UNUSED NNF__NOINLINE void NAME(                               \
        ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *A, ptrdiff_t a_row,   \
        ptrdiff_t a_col, const T *B, ptrdiff_t ldb, T *C, ptrdiff_t ldc,      \
        int accumulate)                                                       \
    {                                                                         \
        ptrdiff_t i, j;                                                       \
        if (m <= 0 || n <= 0) return;                                         \
        if (k <= 0) {                                                         \
            if (!accumulate) NNF__ZERO_##T(m, n, C, ldc);                     \
            return;                                                           \
        }                                                                     \
        for (j = 0; j < n; j += NR) {                                         \
            const int nr = (int)NNF__MIN((ptrdiff_t)NR, n - j);               \
            for (i = 0; i < m; i += MR) {                                     \
                const int mr = (int)NNF__MIN((ptrdiff_t)MR, m - i);           \
                const T *a = A + i * a_row;                                   \
                T *c = C + i * ldc + j;                                       \
                if (mr == MR && nr == NR)                                     \
                    NAME##_tile(1, MR, NR, k, a, a_row, a_col, B + j, ldb, c, \
                                ldc, accumulate);                             \
                else                                                          \
                    NAME##_tile(0, mr, nr, k, a, a_row, a_col, B + j, ldb, c, \
                                ldc, accumulate);                             \
            }                                                                 \
        }                                                                     \
    }

NNF__DEFINE_SCALAR_GEMM(nnf_gemm_d_baseline, double, 4, 4)
NNF__DEFINE_SCALAR_GEMM(nnf_gemm_f_baseline, float, 4, 8)

#endif /* NNF__VECEXT */

#if NNF__X86

/* ======================================================================== */
/* AVX2 + FMA: 16 ymm registers -> 4 x 3 tiles, vmaskmov tails             */
/* ======================================================================== */
#define NNF__TGT_AVX2 __attribute__((target("avx2,fma")))

#define NNF__Y4D_ZERO() _mm256_setzero_pd()
#define NNF__Y4D_LOAD(p) _mm256_loadu_pd(p)
#define NNF__Y4D_LOADM(p, m) _mm256_maskload_pd((p), (m))
#define NNF__Y4D_STORE(p, v) _mm256_storeu_pd((p), (v))
#define NNF__Y4D_STOREM(p, m, v) _mm256_maskstore_pd((p), (m), (v))
#define NNF__Y4D_BCAST(x) _mm256_set1_pd(x)
#define NNF__Y4D_FMA(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define NNF__Y4D_MASK(r)                                                      \
    _mm256_cmpgt_epi64(_mm256_set1_epi64x(r), _mm256_setr_epi64x(0, 1, 2, 3))

#define NNF__Y8F_ZERO() _mm256_setzero_ps()
#define NNF__Y8F_LOAD(p) _mm256_loadu_ps(p)
#define NNF__Y8F_LOADM(p, m) _mm256_maskload_ps((p), (m))
#define NNF__Y8F_STORE(p, v) _mm256_storeu_ps((p), (v))
#define NNF__Y8F_STOREM(p, m, v) _mm256_maskstore_ps((p), (m), (v))
#define NNF__Y8F_BCAST(x) _mm256_set1_ps(x)
#define NNF__Y8F_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define NNF__Y8F_MASK(r)                                                      \
    _mm256_cmpgt_epi32(_mm256_set1_epi32(r),                                  \
                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))

NNF__DEFINE_SIMD_GEMM(nnf_gemm_d_avx2, NNF__TGT_AVX2, double, __m256d,
                      __m256i, 4, 4, 3, 3, 8, 1, NNF__Y4D)
NNF__DEFINE_SIMD_GEMM(nnf_gemm_f_avx2, NNF__TGT_AVX2, float, __m256,
                      __m256i, 8, 4, 3, 4, 8, 1, NNF__Y8F)

/* ======================================================================== */
/* AVX-512F: 32 zmm registers -> 8 x 3 tiles, k-mask tails                  */
/* ======================================================================== */
#define NNF__TGT_AVX512 __attribute__((target("avx512f,avx2,fma")))

#define NNF__Z8D_ZERO() _mm512_setzero_pd()
#define NNF__Z8D_LOAD(p) _mm512_loadu_pd(p)
#define NNF__Z8D_LOADM(p, m) _mm512_maskz_loadu_pd((m), (p))
#define NNF__Z8D_STORE(p, v) _mm512_storeu_pd((p), (v))
#define NNF__Z8D_STOREM(p, m, v) _mm512_mask_storeu_pd((p), (m), (v))
#define NNF__Z8D_BCAST(x) _mm512_set1_pd(x)
#define NNF__Z8D_FMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define NNF__Z8D_MASK(r) ((__mmask8)((1u << (r)) - 1u))

#define NNF__Z16F_ZERO() _mm512_setzero_ps()
#define NNF__Z16F_LOAD(p) _mm512_loadu_ps(p)
#define NNF__Z16F_LOADM(p, m) _mm512_maskz_loadu_ps((m), (p))
#define NNF__Z16F_STORE(p, v) _mm512_storeu_ps((p), (v))
#define NNF__Z16F_STOREM(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
#define NNF__Z16F_BCAST(x) _mm512_set1_ps(x)
#define NNF__Z16F_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define NNF__Z16F_MASK(r) ((__mmask16)((1u << (r)) - 1u))

NNF__DEFINE_SIMD_GEMM(nnf_gemm_d_avx512, NNF__TGT_AVX512, double, __m512d,
                      __mmask8, 8, 8, 3, 7, 16, 0, NNF__Z8D)
NNF__DEFINE_SIMD_GEMM(nnf_gemm_f_avx512, NNF__TGT_AVX512, float, __m512,
                      __mmask16, 16, 8, 3, 8, 16, 0, NNF__Z16F)

#endif /* NNF__X86 */

/* ======================================================================== */
/* Run-time dispatch                                                        */
/* ======================================================================== */

typedef void (*nnf_gemm_d_fn)(ptrdiff_t, ptrdiff_t, ptrdiff_t, const double *,
                              ptrdiff_t, ptrdiff_t, const double *, ptrdiff_t,
                              double *, ptrdiff_t, int);
typedef void (*nnf_gemm_f_fn)(ptrdiff_t, ptrdiff_t, ptrdiff_t, const float *,
                              ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t,
                              float *, ptrdiff_t, int);

/* Best path the CPU (and OS) supports. */
static NNF__UNUSED int nnf_gemm_cpu_isa(void)
{
#if NNF__X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        return NNF_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return NNF_ISA_AVX2;
#endif
    return NNF_ISA_BASELINE;
}

static NNF__UNUSED const char *nnf_gemm_isa_name(int isa)
{
    return isa == NNF_ISA_AVX512 ? "avx512"
           : isa == NNF_ISA_AVX2 ? "avx2"
                                 : "baseline";
}

/* CPU support capped by NNF_GEMM_MAX_ISA and $NNF_GEMM_ISA. */
static NNF__UNUSED int nnf__choose_isa(void)
{
    int isa = nnf_gemm_cpu_isa();
    const char *env = getenv("NNF_GEMM_ISA");
    if (isa > NNF_GEMM_MAX_ISA) isa = NNF_GEMM_MAX_ISA;
    if (env != NULL) {
        int cap = isa;
        if (strcmp(env, "baseline") == 0) cap = NNF_ISA_BASELINE;
        else if (strcmp(env, "avx2") == 0) cap = NNF_ISA_AVX2;
        else if (strcmp(env, "avx512") == 0) cap = NNF_ISA_AVX512;
        if (cap < isa) isa = cap;
    }
    return isa;
}

/* Racing first calls all compute and store the same values, so relaxed
   atomics are enough. */
#if NNF__GNU
#define NNF__LOAD_RELAXED(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define NNF__STORE_RELAXED(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#else
#define NNF__LOAD_RELAXED(x) (x)
#define NNF__STORE_RELAXED(x, v) ((x) = (v))
#endif

static int nnf__isa_cache = -1; /* -1: not chosen yet */
static nnf_gemm_d_fn nnf__gemm_d_ptr = NULL;
static nnf_gemm_f_fn nnf__gemm_f_ptr = NULL;

static NNF__UNUSED int nnf_gemm_isa(void)
{
    int isa = NNF__LOAD_RELAXED(nnf__isa_cache);
    if (isa < 0) {
        isa = nnf__choose_isa();
        NNF__STORE_RELAXED(nnf__isa_cache, isa);
    }
    return isa;
}

static NNF__UNUSED NNF__NOINLINE nnf_gemm_d_fn nnf__select_d(void)
{
    nnf_gemm_d_fn f = nnf_gemm_d_baseline;
#if NNF__X86
    switch (nnf_gemm_isa()) {
        case NNF_ISA_AVX512: f = nnf_gemm_d_avx512; break;
        case NNF_ISA_AVX2: f = nnf_gemm_d_avx2; break;
        default: break;
    }
#endif
    NNF__STORE_RELAXED(nnf__gemm_d_ptr, f);
    return f;
}

static NNF__UNUSED NNF__NOINLINE nnf_gemm_f_fn nnf__select_f(void)
{
    nnf_gemm_f_fn f = nnf_gemm_f_baseline;
#if NNF__X86
    switch (nnf_gemm_isa()) {
        case NNF_ISA_AVX512: f = nnf_gemm_f_avx512; break;
        case NNF_ISA_AVX2: f = nnf_gemm_f_avx2; break;
        default: break;
    }
#endif
    NNF__STORE_RELAXED(nnf__gemm_f_ptr, f);
    return f;
}

/* C = op(A) @ B (+ C if accumulate), float64.  See the top of the file. */
static NNF__UNUSED void nnf_gemm_d(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                   const double *A, ptrdiff_t a_row,
                                   ptrdiff_t a_col, const double *B,
                                   ptrdiff_t ldb, double *C, ptrdiff_t ldc,
                                   int accumulate)
{
    nnf_gemm_d_fn f = NNF__LOAD_RELAXED(nnf__gemm_d_ptr);
    if (f == NULL) f = nnf__select_d();
    f(m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate);
}

/* C = op(A) @ B (+ C if accumulate), float32.  See the top of the file. */
static NNF__UNUSED void nnf_gemm_f(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                   const float *A, ptrdiff_t a_row,
                                   ptrdiff_t a_col, const float *B,
                                   ptrdiff_t ldb, float *C, ptrdiff_t ldc,
                                   int accumulate)
{
    nnf_gemm_f_fn f = NNF__LOAD_RELAXED(nnf__gemm_f_ptr);
    if (f == NULL) f = nnf__select_f();
    f(m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate);
}

#endif /* NNF_GEMM_SMALL_H */
