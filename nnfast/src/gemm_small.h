/* gemm_small.h -- register-tiled matrix products for small and medium matrices
 *                 (nnfast's MLP layers: m, n, k ~ 1..1000).
 *
 * Header-only C99/C++ (every function `static`), included from Cython-generated C built with
 * plain -O3 (no -march): the AVX2 and AVX-512 paths are compiled per function with `target`
 * attributes and chosen at run time by cpu.h (NNFAST_SIMD, nnfast.kernels.set_simd_path).
 * The kernel itself is gemm_body.h, included below once per dtype x path; the design (tiles,
 * tails, blocking, cache-conflict special cases, what was measured) is in docs/kernels.md.
 *
 *   C = op(A) @ B  (accumulate == 0: C is only written)   or   C = op(A) @ B + C
 *
 *   static void nnf_gemm_d(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
 *                          const double *A, ptrdiff_t a_row, ptrdiff_t a_col,
 *                          const double *B, ptrdiff_t ldb,
 *                          double *C, ptrdiff_t ldc, int accumulate);
 *   static void nnf_gemm_f(... the same with float ...);
 *
 *   C is m x n row-major (C[i*ldc + j]); op(A)[i, p] = A[i*a_row + p*a_col]:
 *     NN (A is m x k row-major): a_row = lda, a_col = 1;  TN (A is k x m, op = A^T):
 *     a_row = 1, a_col = lda (other element strides work, more slowly). B is k x n row-major,
 *     B[p*ldb + j]. m, n, k >= 0; k == 0 gives C = 0 (or leaves C unchanged if accumulate).
 *   Any alignment; C must not overlap A or B. Thread-safe, no heap allocation (<= ~17 KiB
 *   of stack). NN x B^T (dX = dZ @ W^T): transpose W into a scratch buffer first
 *   (nnf_transpose_{d,f}: 4 x 4 register blocks).
 *
 *   static void nnf_gemm_ex_d(... the same ..., int accumulate, const double *bias,
 *                             const double *act);
 *   The product with an epilogue: bias != NULL starts every chain from bias[j] (instead of
 *   C or 0: Z = X @ W + b without a pass filling Z with b first); act != NULL stores
 *   c * (1 - a*a), a = act[i*ldc + j] (tanh's backward fused into dA = dZ @ W^T). Same
 *   values as the separate passes; every row stays independent of the others.
 *   Per-path entry points with the same signature, for tests: nnf_gemm_{d,f}_baseline,
 *   nnf_gemm_{d,f}_avx2, nnf_gemm_{d,f}_avx512 (call a SIMD one only if
 *   nnf_path_runs(NNF_FAMILY_PRODUCTS, path) says so; while the products are bound to
 *   AVX-512 planned for 256-bit units, the AVX-512 ones give narrow rows to the AVX2 kernel,
 *   see nnf__ymm_rows).
 *
 * Tiles: an MR x NV-vector block of C lives in registers: AVX-512 8 x 3 zmm (8x24 doubles,
 * 8x48 floats), AVX2 4 x 3 ymm, baseline 4 x 2 xmm (16-byte GCC vector extensions on SSE2
 * and other 16-byte ISAs; NNF_GEMM_SCALAR, or a compiler without GNU extensions: a plain-C
 * 4x4 / 4x8 tile). On AArch64 the baseline is the NEON kernel: 8 x 3 q registers (8x6
 * doubles, 8x12 floats) of the 32, with FMA (vfmaq), as NEON and FMA are part of every
 * AArch64 CPU; NNF_GEMM_BASELINE_FMA says whether this build's baseline fuses.
 * Reproducibility invariant: on a given path every C[i, j] is ONE chain
 *     acc = (accumulate ? C[i, j] : 0);  acc = fma(op(A)[i, p], B[p, j], acc), p = 0..k-1
 * whatever m, n, the position, the tile, the blocking or the alignment (no k-split partial
 * sums, no final "+ C"). So a row of C equals the single-row product, a column the
 * single-column product, and the AVX2 and AVX-512 paths agree bit for bit.
 */
#ifndef NNF_GEMM_SMALL_H
#define NNF_GEMM_SMALL_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

#if defined(__GNUC__) || defined(__clang__)
#define NNF__GNU 1
#else
#define NNF__GNU 0
#endif

#if NNF_PRODUCTS_SIMD
#include <immintrin.h>
#endif

/* Baseline: NEON intrinsics on AArch64, else 16-byte GCC vector extensions, else plain
   scalar C. */
#if NNF__GNU && !defined(NNF_GEMM_SCALAR) && defined(__aarch64__) && defined(__ARM_NEON)
#define NNF__NEON 1
#define NNF__VECEXT 0
#include <arm_neon.h>
#elif NNF__GNU && !defined(NNF_GEMM_SCALAR) &&                                \
    (defined(__SSE2__) || defined(__ARM_NEON) || defined(__aarch64__))
#define NNF__NEON 0
#define NNF__VECEXT 1
#else
#define NNF__NEON 0
#define NNF__VECEXT 0
#endif
/* 1 if the baseline products fuse each multiply-add (one rounding), as AVX2 and AVX-512 do:
   then the baseline gives the same bits as those paths. */
#define NNF_GEMM_BASELINE_FMA NNF__NEON

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
#if defined(__clang__) && defined(__aarch64__)
/* clang 14 on AArch64 leaves the 8 x 3 tile loops rolled under plain "unroll", with the
   accumulators in memory; "unroll(full)" keeps them in registers. */
#define NNF__UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__clang__)
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
   NNF_GEMM_KBLOCK_BYTES_AVX512: the same threshold for the AVX-512 kernels, 4 MiB. On
     AMD Zen 4 (1 MiB of L2), NN products with B of 2-4 MiB ran 4-15 % faster with k
     unblocked (and op(A) in row blocks) than in 256-deep k blocks, whose C tiles are
     reloaded and stored at every block: float64 128 x 784 x 512 45 -> 52-55 GFLOP/s,
     512 x 784 x 512 47 -> 51, 128 x 512 x 512 +4 %, float32 +2-3 %; B of more than
     4 MiB (128 x 1024 x 1024) is still blocked and took the same time either way. The
     AVX2 and baseline kernels keep 1 MiB: with B rows 4 KiB apart they pack B in 128-deep
     panels anyway, and elsewhere the gain was within this machine's noise.
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
#ifndef NNF_GEMM_KBLOCK_BYTES_AVX512
#define NNF_GEMM_KBLOCK_BYTES_AVX512 (4 * 1024 * 1024)
#endif
#define NNF__A_BLOCK_BYTES (256 * 1024)
#define NNF__PACK_KC 128 /* depth of a packed B panel (<= 24 KiB of stack) */

#define NNF__MIN(a, b) ((a) < (b) ? (a) : (b))

/* Cache-set aliasing (measured on AMD Zen 2, AVX2 kernels; docs/kernels.md). The L1 data
   cache (32 KiB, 8 ways) maps addresses 4 KiB apart to one set, and 2 KiB apart to two, so
   the rows of a panel read at such a stride cannot stay in L1 together.
   nnf__pack_b: whether the B panels of an m-row product with B rows stride_bytes apart are
     copied into a contiguous buffer (NNF_PACK4K; with two_k, NNF_PACK2K, at 2 KiB strides
     too). The copy costs about one pass over a panel and pays from about 32 rows of C at a
     4 KiB stride (float64 64 x 64 x 512: 26 -> 34 GFLOP/s; 16 rows: 27 -> 20) and from
     about 64 rows at 2 KiB (float32 128 x 512 x 512: 65 -> 83; 32 rows: 71 -> 65).
   TN products whose op(A) rows are 2 KiB apart copy its row blocks (gemm_body.h's _run,
     with a row stride from nnf__spread_stride). */
static inline int nnf__pack_b(ptrdiff_t m, ptrdiff_t stride_bytes, int two_k)
{
    if ((stride_bytes & 4095) == 0) return m >= 32;
    return two_k && (stride_bytes & 2047) == 0 && m >= 64;
}
/* A row stride of at least `rows` elements that is an odd multiple of 64 bytes, so that
   consecutive rows start in different L1 sets. */
static inline ptrdiff_t nnf__spread_stride(ptrdiff_t rows, ptrdiff_t elem_size)
{
    const ptrdiff_t per_line = 64 / elem_size;
    ptrdiff_t lines = (rows + per_line - 1) / per_line;
    if (lines % 2 == 0) lines++;
    return lines * per_line;
}

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

/* Epilogue helpers of the product with an epilogue (nnf_gemm_ex_*): C[0:m, 0:n] = b
   (the chains of a biased product start from b), and tanh's backward applied to a
   stored product, C = C * (1 - A^2) with A laid out as C -- the expression of
   nnf_tanh_backward (elementwise_body.h), so the values are the same. */
#define NNF__DEFINE_FILL_ROWS(NAME, T)                                        \
    static NNF__UNUSED void NAME(ptrdiff_t m, ptrdiff_t n, const T *b, T *C,  \
                                 ptrdiff_t ldc)                               \
    {                                                                         \
        ptrdiff_t i, j;                                                       \
        for (i = 0; i < m; i++)                                               \
            for (j = 0; j < n; j++) C[i * ldc + j] = b[j];                    \
    }
#define NNF__DEFINE_TANH_GRAD_ROWS(NAME, T)                                   \
    static NNF__UNUSED void NAME(ptrdiff_t m, ptrdiff_t n, const T *a, T *C,  \
                                 ptrdiff_t ldc)                               \
    {                                                                         \
        ptrdiff_t i, j;                                                       \
        for (i = 0; i < m; i++)                                               \
            for (j = 0; j < n; j++) {                                         \
                const T x = a[i * ldc + j];                                   \
                C[i * ldc + j] = C[i * ldc + j] * ((T)1 - x * x);             \
            }                                                                 \
    }
NNF__DEFINE_FILL_ROWS(nnf__fill_rows_d, double)
NNF__DEFINE_FILL_ROWS(nnf__fill_rows_f, float)
NNF__DEFINE_TANH_GRAD_ROWS(nnf__tanh_grad_rows_d, double)
NNF__DEFINE_TANH_GRAD_ROWS(nnf__tanh_grad_rows_f, float)
#define NNF__FILL_ROWS_double nnf__fill_rows_d
#define NNF__FILL_ROWS_float nnf__fill_rows_f
#define NNF__TANH_GRAD_ROWS_double nnf__tanh_grad_rows_d
#define NNF__TANH_GRAD_ROWS_float nnf__tanh_grad_rows_f
/* The same expression on vectors (GNU vector operators; products are compiled without FP
   contraction, so it rounds as the scalar form: a*a, 1 - that, g times that). */
#define NNF__TANH_GRAD(g, a, one) ((g) * ((one) - (a) * (a)))

/* out (cols x rows) = in (rows x cols)^T, both row-major: 4 x 4 blocks (BLOCK4(out, ldo,
   in, ldi) transposes one), in column blocks of 64 so that the 64 output rows a strip
   writes stay in L1. Copies only: every path gives the same result. */
#define NNF__DEFINE_TRANSPOSE(NAME, T, TGT, BLOCK4)                                       \
    static NNF__UNUSED NNF__NOINLINE TGT void NAME(T *out, const T *in, ptrdiff_t rows,   \
                                                   ptrdiff_t cols)                        \
    {                                                                                     \
        ptrdiff_t i, j, j0;                                                               \
        int r;                                                                            \
        for (j0 = 0; j0 < cols; j0 += 64) {                                               \
            const ptrdiff_t j1 = NNF__MIN(j0 + 64, cols);                                 \
            for (i = 0; i + 4 <= rows; i += 4) {                                          \
                const T *a = in + i * cols;                                               \
                for (j = j0; j + 4 <= j1; j += 4)                                         \
                    BLOCK4(out + j * rows + i, rows, a + j, cols);                        \
                for (; j < j1; j++)                                                       \
                    NNF__UNROLL for (r = 0; r < 4; r++)                                   \
                        out[j * rows + i + r] = a[r * cols + j];                          \
            }                                                                             \
            for (; i < rows; i++)                                                         \
                for (j = j0; j < j1; j++) out[j * rows + i] = in[i * cols + j];           \
        }                                                                                 \
    }
#define NNF__DEFINE_BLOCK4_SCALAR(NAME, T)                                                \
    NNF__INLINE void NAME(T *o, ptrdiff_t ldo, const T *a, ptrdiff_t lda)                 \
    {                                                                                     \
        T t[4][4];                                                                        \
        int r, c;                                                                         \
        NNF__UNROLL for (r = 0; r < 4; r++)                                               \
            NNF__UNROLL for (c = 0; c < 4; c++) t[r][c] = a[r * lda + c];                 \
        NNF__UNROLL for (c = 0; c < 4; c++)                                               \
            NNF__UNROLL for (r = 0; r < 4; r++) o[c * ldo + r] = t[r][c];                 \
    }
NNF__DEFINE_BLOCK4_SCALAR(nnf__block4_d, double)
NNF__DEFINE_BLOCK4_SCALAR(nnf__block4_f, float)
NNF__DEFINE_TRANSPOSE(nnf_transpose_d_baseline, double, , nnf__block4_d)
NNF__DEFINE_TRANSPOSE(nnf_transpose_f_baseline, float, , nnf__block4_f)

#define NNF__CAT2(a, b) a##b
#define NNF__CAT(a, b) NNF__CAT2(a, b)

/* Rows per tile of a panel of nv vectors: MR_MAX * NV_MAX / nv accumulators
   worth, at most 12 (more row addresses than that spill GPRs). */
#define NNF__WROWS(MR_MAX, NV_MAX, nv)                                        \
    NNF__MIN((MR_MAX) * (NV_MAX) / (nv), 12)

/* Vectors of C per row pass of the k == 1 kernel (gemm_body.h's _k1): B's and the bias's
   vectors stay in registers, 2 * 6 + 2 of 16. */
#define NNF__K1_NV 6

/* ======================================================================== */
/* AArch64 baseline: NEON, 32 q registers -> 8 x 3 tiles with FMA             */
/* ======================================================================== */
#if NNF__NEON

/* 8 x 3 tiles: 24 accumulators + 3 B vectors + a broadcast of 32 q registers. The
   broadcasts of op(A) are ld1r loads (no shuffle), so a k step is NV + MR loads for MR*NV
   FMAs (8 x 3: 11 loads, 24 FMAs): FMA-bound on cores with 2 loads per FMA pair. The
   accumulators hide FMA latency x throughput up to 24 (Neoverse N1: 4 x 2 = 8; V1, Apple
   M1: 4 x 4 = 16); see docs/kernels.md. Masks are lane counts (1 <= r < VL): partial
   loads and stores touch only the first r elements. */
NNF__INLINE float64x2_t nnf__n2d_loadm(const double *p, int r)
{
    (void)r; /* r == 1: the only partial vector of 2 lanes */
    return vcombine_f64(vld1_f64(p), vdup_n_f64(0.0));
}
NNF__INLINE void nnf__n2d_storem(double *p, int r, float64x2_t v)
{
    (void)r;
    vst1q_lane_f64(p, v, 0);
}
NNF__INLINE float32x4_t nnf__n4f_loadm(const float *p, int r)
{
    const float32x2_t zero = vdup_n_f32(0.0f);
    const float32x2_t lo = r >= 2 ? vld1_f32(p) : vset_lane_f32(p[0], zero, 0);
    const float32x2_t hi = r == 3 ? vset_lane_f32(p[2], zero, 0) : zero;
    return vcombine_f32(lo, hi);
}
NNF__INLINE void nnf__n4f_storem(float *p, int r, float32x4_t v)
{
    if (r >= 2) vst1_f32(p, vget_low_f32(v));
    else vst1q_lane_f32(p, v, 0);
    if (r == 3) vst1q_lane_f32(p + 2, v, 2);
}

#define NNF__N2D_ZERO() vdupq_n_f64(0.0)
#define NNF__N2D_LOAD(p) vld1q_f64(p)
#define NNF__N2D_LOADM(p, m) nnf__n2d_loadm((p), (m))
#define NNF__N2D_STORE(p, v) vst1q_f64((p), (v))
#define NNF__N2D_STOREM(p, m, v) nnf__n2d_storem((p), (m), (v))
#define NNF__N2D_BCAST(x) vdupq_n_f64(x)
#define NNF__N2D_FMA(a, b, c) vfmaq_f64((c), (a), (b))
#define NNF__N2D_MASK(r) (r)

#define NNF__N4F_ZERO() vdupq_n_f32(0.0f)
#define NNF__N4F_LOAD(p) vld1q_f32(p)
#define NNF__N4F_LOADM(p, m) nnf__n4f_loadm((p), (m))
#define NNF__N4F_STORE(p, v) vst1q_f32((p), (v))
#define NNF__N4F_STOREM(p, m, v) nnf__n4f_storem((p), (m), (v))
#define NNF__N4F_BCAST(x) vdupq_n_f32(x)
#define NNF__N4F_FMA(a, b, c) vfmaq_f32((c), (a), (b))
#define NNF__N4F_MASK(r) (r)

/* TNS_N = VL - 1: a TN product with fewer columns than a vector has lanes runs its
   vectors along m. WIDE_NV 16: the m == 1 kernel keeps 16 chains (32 doubles, 64 floats)
   in flight per pass. PACK4K: B rows 4 KiB apart alias in the L1 sets of 64 KiB 4-way
   (Neoverse) and 128 KiB 8-way (Apple) caches alike, as on x86. */
#define NNF_GEMM_NAME nnf_gemm_d_baseline
#define NNF_GEMM_EX_NAME nnf_gemm_ex_d_baseline
#define NNF_TGT NNF_TARGET_PRODUCTS_BASELINE
#define NNF_T double
#define NNF_V float64x2_t
#define NNF_M int
#define NNF_VL 2
#define NNF_MR_MAX 8
#define NNF_NV_MAX 3
#define NNF_TNS_N 1
#define NNF_WIDE_NV 16
#define NNF_PACK4K 1
#define NNF_OPS NNF__N2D
#include "gemm_body.h"

#define NNF_GEMM_NAME nnf_gemm_f_baseline
#define NNF_GEMM_EX_NAME nnf_gemm_ex_f_baseline
#define NNF_TGT NNF_TARGET_PRODUCTS_BASELINE
#define NNF_T float
#define NNF_V float32x4_t
#define NNF_M int
#define NNF_VL 4
#define NNF_MR_MAX 8
#define NNF_NV_MAX 3
#define NNF_TNS_N 3
#define NNF_WIDE_NV 16
#define NNF_PACK4K 1
#define NNF_OPS NNF__N4F
#include "gemm_body.h"

/* ======================================================================== */
/* Baseline: 16-byte GCC vector extensions (SSE2 / NEON), no run-time check */
/* ======================================================================== */
#elif NNF__VECEXT

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
#define NNF_GEMM_NAME nnf_gemm_d_baseline
#define NNF_GEMM_EX_NAME nnf_gemm_ex_d_baseline
#define NNF_TGT 
#define NNF_T double
#define NNF_V nnf__v2d
#define NNF_M int
#define NNF_VL 2
#define NNF_MR_MAX 4
#define NNF_NV_MAX 2
#define NNF_TNS_N 1
#define NNF_WIDE_NV 6
#define NNF_PACK4K 1
#define NNF_OPS NNF__G2D
#include "gemm_body.h"

#define NNF_GEMM_NAME nnf_gemm_f_baseline
#define NNF_GEMM_EX_NAME nnf_gemm_ex_f_baseline
#define NNF_TGT 
#define NNF_T float
#define NNF_V nnf__v4f
#define NNF_M int
#define NNF_VL 4
#define NNF_MR_MAX 4
#define NNF_NV_MAX 2
#define NNF_TNS_N 2
#define NNF_WIDE_NV 6
#define NNF_PACK4K 1
#define NNF_OPS NNF__G4F
#include "gemm_body.h"

#else /* !NNF__VECEXT: plain scalar C */

#define NNF_GEMM_NAME nnf_gemm_d_baseline
#define NNF_GEMM_EX_NAME nnf_gemm_ex_d_baseline
#define NNF_T double
#define NNF_MR 4
#define NNF_NR 4
#include "gemm_scalar_body.h"
#define NNF_GEMM_NAME nnf_gemm_f_baseline
#define NNF_GEMM_EX_NAME nnf_gemm_ex_f_baseline
#define NNF_T float
#define NNF_MR 4
#define NNF_NR 8
#include "gemm_scalar_body.h"

#endif /* NNF__NEON, NNF__VECEXT */

#if NNF_PRODUCTS_SIMD

/* ======================================================================== */
/* AVX2 + FMA: 16 ymm registers -> 4 x 3 tiles, vmaskmov tails             */
/* ======================================================================== */
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

/* NN products with n <= NNF__TINY_N_MAX columns (a 1-wide output layer, X @ w, or one of
   three classes: in the main kernel one to three lanes of each C-row vector would be used,
   and AVX2's masked tail loads cost more than the FMAs; float32 256 x 64 x 3 on Zen 4:
   5.5-5.9 us with masked ymm vectors, 3.9-4.2 us here): vectors of 4 rows along m instead,
   op(A)'s columns taken from 4 x 4 blocks of A transposed in registers (4 loads and 8
   shuffles per 4 rows x 4 values of p), G groups of 4 rows at once for G*N independent chains. Each
   C[i, j] is still ONE chain acc = fma(A[i, p], B[p, j], acc), p = 0..k-1 in order, started
   from bias[j], C or 0; act: the epilogue of _tile. Compiled for AVX2 + FMA, run by the
   AVX2 and the AVX-512 paths alike (4-lane vectors: 256-bit double, 128-bit float), so the
   two paths agree. Does rows 0..4*floor(m/4)-1 and returns their number. */
#define NNF__TINY_N_MAX 3
#define NNF__DEFINE_TINY_N(P, T, V, LOADU, STOREU, SET1, SETR4, FMA, ZERO, TRANSPOSE4)      \
    NNF__INLINE NNF_TARGET_PRODUCTS_AVX2 void P##_group(                                    \
        const int G, const int N, ptrdiff_t k, const T *A, ptrdiff_t lda, const T *B,       \
        ptrdiff_t ldb, T *C, ptrdiff_t ldc, int acc_c, const T *bias, const T *act)         \
    {                                                                                       \
        V acc[8][3];                                                                        \
        ptrdiff_t p;                                                                        \
        int g, j, q;                                                                        \
        NNF__UNROLL for (g = 0; g < G; g++)                                                 \
            NNF__UNROLL for (j = 0; j < N; j++) {                                           \
                const T *c = C + 4 * g * ldc + j;                                           \
                acc[g][j] = bias    ? SET1(bias[j])                                         \
                            : acc_c ? SETR4(c[0], c[ldc], c[2 * ldc], c[3 * ldc])           \
                                    : ZERO();                                               \
            }                                                                               \
        for (p = 0; p + 4 <= k; p += 4) {                                                   \
            V bb[4][3];                                                                     \
            NNF__UNROLL for (q = 0; q < 4; q++)                                             \
                NNF__UNROLL for (j = 0; j < N; j++) bb[q][j] = SET1(B[(p + q) * ldb + j]);  \
            NNF__UNROLL for (g = 0; g < G; g++) {                                           \
                const T *a = A + 4 * g * lda + p;                                           \
                V col[4];                                                                   \
                col[0] = LOADU(a);                                                          \
                col[1] = LOADU(a + lda);                                                    \
                col[2] = LOADU(a + 2 * lda);                                                \
                col[3] = LOADU(a + 3 * lda);                                                \
                TRANSPOSE4(col[0], col[1], col[2], col[3]);                                 \
                NNF__UNROLL for (q = 0; q < 4; q++)                                         \
                    NNF__UNROLL for (j = 0; j < N; j++)                                     \
                        acc[g][j] = FMA(col[q], bb[q][j], acc[g][j]);                       \
            }                                                                               \
        }                                                                                   \
        for (; p < k; p++)                                                                  \
            NNF__UNROLL for (g = 0; g < G; g++) {                                           \
                const T *a = A + 4 * g * lda + p;                                           \
                const V col = SETR4(a[0], a[lda], a[2 * lda], a[3 * lda]);                  \
                NNF__UNROLL for (j = 0; j < N; j++)                                         \
                    acc[g][j] = FMA(col, SET1(B[p * ldb + j]), acc[g][j]);                  \
            }                                                                               \
        NNF__UNROLL for (g = 0; g < G; g++)                                                 \
            NNF__UNROLL for (j = 0; j < N; j++) {                                           \
                T *c = C + 4 * g * ldc + j;                                                 \
                NNF__ALIGN64 T t[4];                                                        \
                int r;                                                                      \
                if (act) {                                                                  \
                    const T *x = act + 4 * g * ldc + j;                                     \
                    const V a = SETR4(x[0], x[ldc], x[2 * ldc], x[3 * ldc]);                \
                    acc[g][j] = NNF__TANH_GRAD(acc[g][j], a, SET1((T)1));                   \
                }                                                                           \
                if (N == 1 && ldc == 1) {                                                   \
                    STOREU(c, acc[g][j]);                                                   \
                } else {                                                                    \
                    STOREU(t, acc[g][j]);                                                   \
                    for (r = 0; r < 4; r++) c[r * ldc] = t[r];                              \
                }                                                                           \
            }                                                                               \
    }                                                                                       \
    /* 4G rows with N = 2 or 3 columns, at most 16 per _group call (G = 8: two calls) */     \
    NNF__INLINE NNF_TARGET_PRODUCTS_AVX2 void P##_groups(                                   \
        const int N, int G, ptrdiff_t k, const T *A, ptrdiff_t lda, const T *B,             \
        ptrdiff_t ldb, T *C, ptrdiff_t ldc, int acc_c, const T *bias, const T *act)         \
    {                                                                                       \
        if (G >= 4) {                                                                       \
            P##_group(4, N, k, A, lda, B, ldb, C, ldc, acc_c, bias, act);                   \
            if (G == 8)                                                                     \
                P##_group(4, N, k, A + 16 * lda, lda, B, ldb, C + 16 * ldc, ldc, acc_c,     \
                          bias, act ? act + 16 * ldc : NULL);                               \
        }                                                                                   \
        if (G == 2) P##_group(2, N, k, A, lda, B, ldb, C, ldc, acc_c, bias, act);           \
        if (G == 1) P##_group(1, N, k, A, lda, B, ldb, C, ldc, acc_c, bias, act);           \
    }                                                                                       \
    static NNF__UNUSED NNF__NOINLINE NNF_TARGET_PRODUCTS_AVX2 ptrdiff_t P(                  \
        ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *A, ptrdiff_t lda, const T *B,       \
        ptrdiff_t ldb, T *C, ptrdiff_t ldc, int acc_c, const T *bias, const T *act)         \
    {                                                                                       \
        ptrdiff_t i = 0;                                                                    \
        int G;                                                                              \
        for (G = 8; G >= 1; G /= 2)                                                         \
            for (; i + 4 * G <= m && (G == 8 || i + 8 * G > m); i += 4 * G) {               \
                const T *ai = A + i * lda;                                                  \
                T *ci = C + i * ldc;                                                        \
                const T *xi = act ? act + i * ldc : NULL;                                   \
                if (n == 1) {                                                               \
                    if (G == 8) P##_group(8, 1, k, ai, lda, B, ldb, ci, ldc, acc_c, bias, xi); \
                    if (G == 4) P##_group(4, 1, k, ai, lda, B, ldb, ci, ldc, acc_c, bias, xi); \
                    if (G == 2) P##_group(2, 1, k, ai, lda, B, ldb, ci, ldc, acc_c, bias, xi); \
                    if (G == 1) P##_group(1, 1, k, ai, lda, B, ldb, ci, ldc, acc_c, bias, xi); \
                } else if (n == 2) {                                                        \
                    P##_groups(2, G, k, ai, lda, B, ldb, ci, ldc, acc_c, bias, xi);         \
                } else {                                                                    \
                    P##_groups(3, G, k, ai, lda, B, ldb, ci, ldc, acc_c, bias, xi);         \
                }                                                                           \
            }                                                                               \
        return i;                                                                           \
    }

#define NNF__TRANSPOSE4_PD(r0, r1, r2, r3)                                                  \
    do {                                                                                    \
        const __m256d t0_ = _mm256_unpacklo_pd(r0, r1), t1_ = _mm256_unpackhi_pd(r0, r1);  \
        const __m256d t2_ = _mm256_unpacklo_pd(r2, r3), t3_ = _mm256_unpackhi_pd(r2, r3);  \
        r0 = _mm256_permute2f128_pd(t0_, t2_, 0x20);                                        \
        r1 = _mm256_permute2f128_pd(t1_, t3_, 0x20);                                        \
        r2 = _mm256_permute2f128_pd(t0_, t2_, 0x31);                                        \
        r3 = _mm256_permute2f128_pd(t1_, t3_, 0x31);                                        \
    } while (0)
#define NNF__SETR4_PD(a, b, c, d) _mm256_setr_pd((a), (b), (c), (d))
#define NNF__SETR4_PS(a, b, c, d) _mm_setr_ps((a), (b), (c), (d))
NNF__DEFINE_TINY_N(nnf__tiny_n_d, double, __m256d, _mm256_loadu_pd, _mm256_storeu_pd,
                   _mm256_set1_pd, NNF__SETR4_PD, _mm256_fmadd_pd, _mm256_setzero_pd,
                   NNF__TRANSPOSE4_PD)
NNF__DEFINE_TINY_N(nnf__tiny_n_f, float, __m128, _mm_loadu_ps, _mm_storeu_ps, _mm_set1_ps,
                   NNF__SETR4_PS, _mm_fmadd_ps, _mm_setzero_ps, _MM_TRANSPOSE4_PS)
#define NNF__TINY_N_double nnf__tiny_n_d
#define NNF__TINY_N_float nnf__tiny_n_f

#define NNF_GEMM_NAME nnf_gemm_d_avx2
#define NNF_TINY_N nnf__tiny_n_d
#define NNF_GEMM_EX_NAME nnf_gemm_ex_d_avx2
#define NNF_TGT NNF_TARGET_PRODUCTS_AVX2
#define NNF_T double
#define NNF_V __m256d
#define NNF_M __m256i
#define NNF_VL 4
#define NNF_MR_MAX 4
#define NNF_NV_MAX 3
#define NNF_TNS_N 3
#define NNF_WIDE_NV 8
#define NNF_PACK4K 1
#define NNF_PACK2K 1
#define NNF_OPS NNF__Y4D
#include "gemm_body.h"

#define NNF_GEMM_NAME nnf_gemm_f_avx2
#define NNF_TINY_N nnf__tiny_n_f
#define NNF_GEMM_EX_NAME nnf_gemm_ex_f_avx2
#define NNF_TGT NNF_TARGET_PRODUCTS_AVX2
#define NNF_T float
#define NNF_V __m256
#define NNF_M __m256i
#define NNF_VL 8
#define NNF_MR_MAX 4
#define NNF_NV_MAX 3
#define NNF_TNS_N 4
#define NNF_WIDE_NV 8
#define NNF_PACK4K 1
#define NNF_PACK2K 1
#define NNF_OPS NNF__Y8F
#include "gemm_body.h"

/* ======================================================================== */
/* AVX-512F: 32 zmm registers -> 8 x 3 tiles, k-mask tails                  */
/* ======================================================================== */
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

/* AVX-512 on 256-bit units (nnf_avx512_unit_bits() == 256: Zen 4). Such a unit runs a zmm
   operation in two passes, however many of its lanes are used, and a ymm operation in one.
   So a row of C of n elements costs 2 * ceil(n / VL) passes per k step in zmm vectors (VL
   lanes) and ceil(n / (VL/2)) in ymm vectors; the AVX2 kernel wins where the second is
   smaller (n mod 8 = 1..4 doubles, n mod 16 = 1..8 floats; the seed network's n = 20:
   6 against 5), counting half a pass more for its masked tail, whose AVX2 loads and stores
   cost more than AVX-512's. It does not where AVX-512 runs a kernel of its own: wide rows
   (n >= 128: its 8-row tiles load B half as often), TN with n <= its NNF_TNS_N (the
   transposed kernel), and k == 1, whose one-step chains are all loads, broadcasts and
   stores: there fewer, wider vectors win, except one whole ymm vector against a half-empty
   zmm one (n = VL/2); nor TN products over 256 rows or more whose rows need more than one
   AVX2 panel. Nor for single rows (m == 1): alone the ymm single-row kernel is
   faster at n < 32, but batch-1 training ran at 0.91-0.97x with it (a cause not found).
   docs/kernels.md has the measurements. Both kernels give the same bits (same chains), so
   the choice changes no result. The AVX-512 kernels make this choice while
   nnf__ymm_rows_on is set: the products' binder sets it when it binds them to AVX-512
   planned for 256-bit units. float32 rows go to the AVX-512VL kernel in ymm vectors below
   instead of the AVX2 one (cheap masked tails). */
static int nnf__ymm_rows_on = 0;

static inline int nnf__ymm_rows(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, ptrdiff_t a_row,
                                ptrdiff_t vl, ptrdiff_t tns_n)
{
    const ptrdiff_t half = vl / 2;
    if (n >= 128 || m == 1) return 0;
    if (k == 1) return n == half;
    if (a_row == 1 && n <= tns_n && n < m) return 0;
    /* TN (a weight gradient over a batch of k >= 256 rows) with rows of more than one AVX2
       panel (3 ymm vectors): the AVX2 kernel's 4-row tiles re-read the k-deep panels of B,
       and op(A) once per panel, from L2; the 8-row AVX-512 tiles half as often (float64
       20 x 1000 x 20: 29-31 against 40-42 GFLOP/s, 100 x 256 x 36: 32-34 against 44-45;
       float32 100 x 1000 x 36: 62 against 75). float32 now runs those rows on the
       AVX-512VL kernel below, whose 8-row tiles ran as fast as the zmm kernel there (83-84
       GFLOP/s on both), so the rule costs it nothing. */
    if (a_row == 1 && k >= 256 && (n + half - 1) / half > 3) return 0;
    /* in half passes: a masked ymm tail counts half a pass more */
    return 2 * ((n + half - 1) / half) + (n % half != 0) < 4 * ((n + vl - 1) / vl);
}

/* The kernel for those rows in float32: AVX-512VL in 256-bit vectors
   (nnf_gemm_ex_f_avx512y), the AVX2 kernel's vectors with AVX-512's 32 registers and mask
   registers: 8 x 3 tiles (24 ymm accumulators) and masked tails that cost what full vectors
   do. AVX2's masked loads of the tail of each B row (vmaskmovps) cost more: float32
   1000 x 20 x 20, whose rows end in a 4-lane tail, ran at 45-62 GFLOP/s on the AVX2 kernel
   against 64-79 on this one (Zen 4), 32 x 20 x 20 at 41-60 against 58-73. float64 keeps the
   AVX2 kernel: its n = 20 rows have no tail, and this kernel's float64 twin ran 0-10 %
   slower there (8 x 3 or 4 x 3 tiles) and no faster with tails (n = 10, 30). Same chains
   as every other kernel. nnf__ymm_rows_on is 2 when it runs, 1 when the CPU lacks
   AVX-512VL and the AVX2 kernel takes the rows. */
#define NNF__Y8FV_ZERO() _mm256_setzero_ps()
#define NNF__Y8FV_LOAD(p) _mm256_loadu_ps(p)
#define NNF__Y8FV_LOADM(p, m) _mm256_maskz_loadu_ps((m), (p))
#define NNF__Y8FV_STORE(p, v) _mm256_storeu_ps((p), (v))
#define NNF__Y8FV_STOREM(p, m, v) _mm256_mask_storeu_ps((p), (m), (v))
#define NNF__Y8FV_BCAST(x) _mm256_set1_ps(x)
#define NNF__Y8FV_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define NNF__Y8FV_MASK(r) ((__mmask8)((1u << (r)) - 1u))

#define NNF_GEMM_NAME nnf_gemm_f_avx512y
#define NNF_TINY_N nnf__tiny_n_f
#define NNF_GEMM_EX_NAME nnf_gemm_ex_f_avx512y
#define NNF_TGT NNF_TARGET_PRODUCTS_AVX512VL
#define NNF_T float
#define NNF_V __m256
#define NNF_M __mmask8
#define NNF_VL 8
#define NNF_MR_MAX 8
#define NNF_NV_MAX 3
#define NNF_TNS_N 4
#define NNF_WIDE_NV 8
#define NNF_PACK4K 0
#define NNF_K1_MASKED 1
#define NNF_OPS NNF__Y8FV
#include "gemm_body.h"

#define NNF_GEMM_NAME nnf_gemm_d_avx512
#define NNF_TINY_N nnf__tiny_n_d
#define NNF_GEMM_EX_NAME nnf_gemm_ex_d_avx512
#define NNF_TGT NNF_TARGET_PRODUCTS_AVX512
#define NNF_T double
#define NNF_V __m512d
#define NNF_M __mmask8
#define NNF_VL 8
#define NNF_MR_MAX 8
#define NNF_NV_MAX 3
#define NNF_TNS_N 7
#define NNF_WIDE_NV 16
#define NNF_PACK4K 0
#define NNF_K1_MASKED 1
#define NNF_YMM_KERNEL nnf_gemm_ex_d_avx2
#define NNF_KBLOCK NNF_GEMM_KBLOCK_BYTES_AVX512
#define NNF_OPS NNF__Z8D
#include "gemm_body.h"

#define NNF_GEMM_NAME nnf_gemm_f_avx512
#define NNF_TINY_N nnf__tiny_n_f
#define NNF_GEMM_EX_NAME nnf_gemm_ex_f_avx512
#define NNF_TGT NNF_TARGET_PRODUCTS_AVX512
#define NNF_T float
#define NNF_V __m512
#define NNF_M __mmask16
#define NNF_VL 16
#define NNF_MR_MAX 8
#define NNF_NV_MAX 3
#define NNF_TNS_N 8
#define NNF_WIDE_NV 16
#define NNF_PACK4K 0
#define NNF_K1_MASKED 1
#define NNF_YMM_KERNEL nnf_gemm_ex_f_avx2
#define NNF_YMM_VL_KERNEL nnf_gemm_ex_f_avx512y
#define NNF_KBLOCK NNF_GEMM_KBLOCK_BYTES_AVX512
#define NNF_OPS NNF__Z16F
#include "gemm_body.h"

/* Transposes of 4 x 4 blocks in registers: 4 loads, 8 shuffles, 4 stores (the AVX-512
   path runs the same 256-bit code: a 20 x 20 W is too small for 8 x 8 blocks to pay). */
NNF__INLINE NNF_TARGET_PRODUCTS_AVX2 void nnf__block4_d_avx2(double *o, ptrdiff_t ldo,
                                                             const double *a, ptrdiff_t lda)
{
    const __m256d r0 = _mm256_loadu_pd(a), r1 = _mm256_loadu_pd(a + lda);
    const __m256d r2 = _mm256_loadu_pd(a + 2 * lda), r3 = _mm256_loadu_pd(a + 3 * lda);
    const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(o, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(o + ldo, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(o + 2 * ldo, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(o + 3 * ldo, _mm256_permute2f128_pd(t1, t3, 0x31));
}
NNF__INLINE NNF_TARGET_PRODUCTS_AVX2 void nnf__block4_f_avx2(float *o, ptrdiff_t ldo,
                                                             const float *a, ptrdiff_t lda)
{
    __m128 r0 = _mm_loadu_ps(a), r1 = _mm_loadu_ps(a + lda);
    __m128 r2 = _mm_loadu_ps(a + 2 * lda), r3 = _mm_loadu_ps(a + 3 * lda);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(o, r0);
    _mm_storeu_ps(o + ldo, r1);
    _mm_storeu_ps(o + 2 * ldo, r2);
    _mm_storeu_ps(o + 3 * ldo, r3);
}
NNF__DEFINE_TRANSPOSE(nnf_transpose_d_avx2, double, NNF_TARGET_PRODUCTS_AVX2, nnf__block4_d_avx2)
NNF__DEFINE_TRANSPOSE(nnf_transpose_f_avx2, float, NNF_TARGET_PRODUCTS_AVX2, nnf__block4_f_avx2)
NNF__DEFINE_TRANSPOSE(nnf_transpose_d_avx512, double, NNF_TARGET_PRODUCTS_AVX512,
                      nnf__block4_d_avx2)
NNF__DEFINE_TRANSPOSE(nnf_transpose_f_avx512, float, NNF_TARGET_PRODUCTS_AVX512,
                      nnf__block4_f_avx2)

#endif /* NNF_PRODUCTS_SIMD */

/* ======================================================================== */
/* Entry points: cpu.h binds them to the path it chooses                    */
/* ======================================================================== */

/* C = op(A) @ B (+ C if accumulate), float64 and float32.  See the top of the file. */
NNF_ENTRY_POINT(NNF_FAMILY_PRODUCTS, nnf__bind_products, nnf_gemm_d,
                (ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const double *A, ptrdiff_t a_row,
                 ptrdiff_t a_col, const double *B, ptrdiff_t ldb, double *C, ptrdiff_t ldc,
                 int accumulate),
                (m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate))
NNF_ENTRY_POINT(NNF_FAMILY_PRODUCTS, nnf__bind_products, nnf_gemm_f,
                (ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *A, ptrdiff_t a_row,
                 ptrdiff_t a_col, const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc,
                 int accumulate),
                (m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate))

/* C = op(A) @ B (+ C if accumulate) with an epilogue, float64 and float32:
   bias != NULL: every chain starts from bias[j] instead of 0 or C (C = op(A) @ B + b, the
   same values as filling C's rows with b and accumulating); act != NULL: the value stored
   is c * (1 - a^2) with a = act[i*ldc + j] (act laid out as C; tanh's backward
   dZ = dA * (1 - A^2) fused into the product dA = dZ_above @ W^T, the same values as the
   product followed by nnf_tanh_backward). Both keep every row independent of the others. */
NNF_ENTRY_POINT(NNF_FAMILY_PRODUCTS, nnf__bind_products, nnf_gemm_ex_d,
                (ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const double *A, ptrdiff_t a_row,
                 ptrdiff_t a_col, const double *B, ptrdiff_t ldb, double *C, ptrdiff_t ldc,
                 int accumulate, const double *bias, const double *act),
                (m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate, bias, act))
NNF_ENTRY_POINT(NNF_FAMILY_PRODUCTS, nnf__bind_products, nnf_gemm_ex_f,
                (ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *A, ptrdiff_t a_row,
                 ptrdiff_t a_col, const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc,
                 int accumulate, const float *bias, const float *act),
                (m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate, bias, act))

/* out (cols x rows) = in (rows x cols)^T (matmul_nt's B^T). */
NNF_ENTRY_POINT(NNF_FAMILY_PRODUCTS, nnf__bind_products, nnf_transpose_d,
                (double *out, const double *in, ptrdiff_t rows, ptrdiff_t cols),
                (out, in, rows, cols))
NNF_ENTRY_POINT(NNF_FAMILY_PRODUCTS, nnf__bind_products, nnf_transpose_f,
                (float *out, const float *in, ptrdiff_t rows, ptrdiff_t cols),
                (out, in, rows, cols))

static void nnf__bind_products(int path)
{
#if NNF_PRODUCTS_SIMD
    NNF_BIND_SIMD(nnf_gemm_d)
    NNF_BIND_SIMD(nnf_gemm_f)
    NNF_BIND_SIMD(nnf_gemm_ex_d)
    NNF_BIND_SIMD(nnf_gemm_ex_f)
    NNF__STORE_RELAXED(nnf__ymm_rows_on,
                       path == NNF_PATH_AVX512 && nnf_avx512_unit_bits() == 256
                           ? ((nnf_cpu()->features & NNF_FEATURE_AVX512VL) ? 2 : 1)
                           : 0);
    NNF_BIND_SIMD(nnf_transpose_d)
    NNF_BIND_SIMD(nnf_transpose_f)
#else
    (void)path;
    NNF_BIND_BASELINE(nnf_gemm_d)
    NNF_BIND_BASELINE(nnf_gemm_f)
    NNF_BIND_BASELINE(nnf_gemm_ex_d)
    NNF_BIND_BASELINE(nnf_gemm_ex_f)
    NNF_BIND_BASELINE(nnf_transpose_d)
    NNF_BIND_BASELINE(nnf_transpose_f)
#endif
}

#endif /* NNF_GEMM_SMALL_H */
