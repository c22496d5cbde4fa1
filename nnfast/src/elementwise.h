/* elementwise.h -- the simple loops of the layer kernels, vectorised for the CPU at hand.
 *
 * The Cython modules are compiled for baseline x86-64 (SSE2: two doubles per instruction).
 * These loops (elementwise_body.h) are compiled once per dtype x code path -- AVX-512,
 * AVX2, baseline, with cpu.h's target attributes -- and each entry point runs the path
 * cpu.h chooses for the family NNF_FAMILY_ELEMENTWISE, as the products and the fast math do.
 * Every element is computed by the same expression in the vector body and in the scalar
 * tail (the build passes -ffp-contract=off), so a result never depends on an element's
 * position, nor on the path.
 *
 *   nnf_tanh_backward_{d,f}(dZ, A, dA, n)      dZ = dA (1 - A^2)      (dZ may be dA)
 *   nnf_sigmoid_backward_{d,f}(dZ, A, dA, n)   dZ = dA A (1 - A)      (dZ may be dA)
 *   nnf_fill_rows_{d,f}(Z, b, rows, cols)      every row of Z = b
 *   nnf_add_column_sums_{d,f}(s, D, rows, cols)  s += column sums of D
 *   nnf_sgd_update_{d,f}, nnf_adam_update_{d,f}  optimizer steps (see elementwise_body.h)
 */
#ifndef NNF_ELEMENTWISE_H
#define NNF_ELEMENTWISE_H

#include <stddef.h>

#include "cpu.h"

#define NNF__EW_CAT2(a, b) a##b
#define NNF__EW_CAT(a, b) NNF__EW_CAT2(a, b)
#if defined(__GNUC__) || defined(__clang__)
#define NNF__EW_NOINLINE __attribute__((noinline))
#else
#define NNF__EW_NOINLINE
#endif

#define NNF_T double
#define NNF_SQRT __builtin_sqrt
#define NNF_SUFFIX _d_baseline
#define NNF_TGT
#include "elementwise_body.h"
#define NNF_T float
#define NNF_SQRT __builtin_sqrtf
#define NNF_SUFFIX _f_baseline
#define NNF_TGT
#include "elementwise_body.h"
#if NNF_ELEMENTWISE_SIMD
#define NNF_T double
#define NNF_SQRT __builtin_sqrt
#define NNF_SUFFIX _d_avx2
#define NNF_TGT NNF_TARGET_ELEMENTWISE_AVX2
#include "elementwise_body.h"
#define NNF_T float
#define NNF_SQRT __builtin_sqrtf
#define NNF_SUFFIX _f_avx2
#define NNF_TGT NNF_TARGET_ELEMENTWISE_AVX2
#include "elementwise_body.h"
#define NNF_T double
#define NNF_SQRT __builtin_sqrt
#define NNF_SUFFIX _d_avx512
#define NNF_TGT NNF_TARGET_ELEMENTWISE_AVX512
#include "elementwise_body.h"
#define NNF_T float
#define NNF_SQRT __builtin_sqrtf
#define NNF_SUFFIX _f_avx512
#define NNF_TGT NNF_TARGET_ELEMENTWISE_AVX512
#include "elementwise_body.h"
#endif

/* Entry points, bound by cpu.h to the path it chooses. */
#define NNF__EW_ENTRY(name, PARAMS, ARGS)                                                   \
    NNF_ENTRY_POINT(NNF_FAMILY_ELEMENTWISE, nnf__bind_elementwise, name, PARAMS, ARGS)
#define NNF__EW_ENTRY_POINTS(S, T)                                                          \
    NNF__EW_ENTRY(nnf_tanh_backward_into_##S, (T *dZ, const T *A, const T *dA, ptrdiff_t n),  \
                  (dZ, A, dA, n))                                                           \
    NNF__EW_ENTRY(nnf_tanh_backward_inplace_##S, (T *dZ, const T *A, ptrdiff_t n),           \
                  (dZ, A, n))                                                               \
    NNF__EW_ENTRY(nnf_sigmoid_backward_into_##S,                                            \
                  (T *dZ, const T *A, const T *dA, ptrdiff_t n), (dZ, A, dA, n))            \
    NNF__EW_ENTRY(nnf_sigmoid_backward_inplace_##S, (T *dZ, const T *A, ptrdiff_t n),        \
                  (dZ, A, n))                                                               \
    NNF__EW_ENTRY(nnf_fill_rows_##S, (T *Z, const T *b, ptrdiff_t rows, ptrdiff_t cols),      \
                  (Z, b, rows, cols))                                                       \
    NNF__EW_ENTRY(nnf_add_column_sums_##S, (T *s, const T *D, ptrdiff_t rows, ptrdiff_t cols),\
                  (s, D, rows, cols))                                                       \
    NNF__EW_ENTRY(nnf_sgd_update_##S, (T *p, T *v, const T *g, ptrdiff_t n, T lr, T mu,      \
                  int nesterov), (p, v, g, n, lr, mu, nesterov))                            \
    NNF__EW_ENTRY(nnf_adam_update_##S, (T *p, T *m, T *v, const T *g, ptrdiff_t n, T lr,     \
                  T b1, T b2, T c1, T c2, T eps), (p, m, v, g, n, lr, b1, b2, c1, c2, eps)) \
    /* backward in place (dZ == dA) or into another array */                               \
    static inline void nnf_tanh_backward_##S(T *dZ, const T *A, const T *dA, ptrdiff_t n)    \
    {                                                                                       \
        if (dZ == dA) nnf_tanh_backward_inplace_##S(dZ, A, n);                              \
        else nnf_tanh_backward_into_##S(dZ, A, dA, n);                                      \
    }                                                                                       \
    static inline void nnf_sigmoid_backward_##S(T *dZ, const T *A, const T *dA, ptrdiff_t n) \
    {                                                                                       \
        if (dZ == dA) nnf_sigmoid_backward_inplace_##S(dZ, A, n);                           \
        else nnf_sigmoid_backward_into_##S(dZ, A, dA, n);                                   \
    }

NNF__EW_ENTRY_POINTS(d, double)
NNF__EW_ENTRY_POINTS(f, float)

#if NNF_ELEMENTWISE_SIMD
#define NNF__EW_BIND NNF_BIND_SIMD
#else
#define NNF__EW_BIND NNF_BIND_BASELINE
#endif
#define NNF__EW_BIND_ALL(S)                                                                 \
    NNF__EW_BIND(nnf_tanh_backward_into_##S) NNF__EW_BIND(nnf_tanh_backward_inplace_##S)    \
    NNF__EW_BIND(nnf_sigmoid_backward_into_##S) NNF__EW_BIND(nnf_sigmoid_backward_inplace_##S) \
    NNF__EW_BIND(nnf_fill_rows_##S) NNF__EW_BIND(nnf_add_column_sums_##S)                   \
    NNF__EW_BIND(nnf_sgd_update_##S) NNF__EW_BIND(nnf_adam_update_##S)
static void nnf__bind_elementwise(int path)
{
    (void)path;
    NNF__EW_BIND_ALL(d)
    NNF__EW_BIND_ALL(f)
}

#endif /* NNF_ELEMENTWISE_H */
