/* elementwise.h -- the simple loops of the layer kernels, vectorised for the CPU at hand.
 *
 * The Cython modules are compiled for baseline x86-64 (SSE2: two doubles per
 * instruction). These loops are compiled three times by gcc's target_clones (AVX-512,
 * AVX2, baseline) and the best clone is bound at load time, as the functions of fastmath.h
 * and gemm_small.h are. Every element is computed by the same expression in the vector
 * body and in the scalar tail (the build passes -ffp-contract=off), so a result never
 * depends on an element's position.
 */
#ifndef NNF_ELEMENTWISE_H
#define NNF_ELEMENTWISE_H

#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__)) \
    && !defined(NNF_NO_DISPATCH)
#define NNF__CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NNF__CLONES
#endif

/* dZ = EXPR of g = dA[i] and a = A[i]; dZ may be dA (in place) but never A. */
#define NNF__BACKWARD(NAME, SUFFIX, T, EXPR)                                      \
    NNF__CLONES static void NAME##_into_##SUFFIX(T *restrict dZ, const T *restrict A,   \
                                                 const T *restrict dA, ptrdiff_t n)     \
    {                                                                                   \
        for (ptrdiff_t i = 0; i < n; i++) {                                             \
            const T a = A[i], g = dA[i];                                                \
            dZ[i] = EXPR;                                                               \
        }                                                                               \
    }                                                                                   \
    NNF__CLONES static void NAME##_inplace_##SUFFIX(T *restrict dZ, const T *restrict A, \
                                                    ptrdiff_t n)                        \
    {                                                                                   \
        for (ptrdiff_t i = 0; i < n; i++) {                                             \
            const T a = A[i], g = dZ[i];                                                \
            dZ[i] = EXPR;                                                               \
        }                                                                               \
    }                                                                                   \
    static inline void NAME##_##SUFFIX(T *dZ, const T *A, const T *dA, ptrdiff_t n)     \
    {                                                                                   \
        if (dZ == dA)                                                                   \
            NAME##_inplace_##SUFFIX(dZ, A, n);                                          \
        else                                                                            \
            NAME##_into_##SUFFIX(dZ, A, dA, n);                                         \
    }

#define NNF__ELEMENTWISE(SUFFIX, T)                                                     \
    NNF__BACKWARD(nnf_tanh_backward, SUFFIX, T, g * ((T)1 - a * a))                     \
    NNF__BACKWARD(nnf_sigmoid_backward, SUFFIX, T, g * a * ((T)1 - a))                  \
    /* Every row of Z (rows, cols) = b (cols,) */                                       \
    NNF__CLONES static void nnf_fill_rows_##SUFFIX(T *restrict Z, const T *restrict b,  \
                                                   ptrdiff_t rows, ptrdiff_t cols)      \
    {                                                                                   \
        for (ptrdiff_t i = 0; i < rows; i++)                                            \
            for (ptrdiff_t j = 0; j < cols; j++)                                        \
                Z[i * cols + j] = b[j];                                                 \
    }                                                                                   \
    /* s (cols,) += the sum over the rows of D (rows, cols), row after row */           \
    NNF__CLONES static void nnf_add_column_sums_##SUFFIX(T *restrict s,                 \
                                                         const T *restrict D,           \
                                                         ptrdiff_t rows, ptrdiff_t cols) \
    {                                                                                   \
        for (ptrdiff_t i = 0; i < rows; i++)                                            \
            for (ptrdiff_t j = 0; j < cols; j++)                                        \
                s[j] += D[i * cols + j];                                                \
    }

/* SGD with momentum (scikit-learn's form): v = mu v - lr g; p += nesterov ? mu v - lr g : v */
#define NNF__SGD(SUFFIX, T)                                                             \
    NNF__CLONES static void nnf_sgd_update_##SUFFIX(T *restrict p, T *restrict v,       \
                                                    const T *restrict g, ptrdiff_t n,   \
                                                    T lr, T mu, int nesterov)           \
    {                                                                                   \
        if (nesterov) {                                                                 \
            for (ptrdiff_t i = 0; i < n; i++) {                                         \
                v[i] = mu * v[i] - lr * g[i];                                           \
                p[i] += mu * v[i] - lr * g[i];                                          \
            }                                                                           \
        } else {                                                                        \
            for (ptrdiff_t i = 0; i < n; i++) {                                         \
                v[i] = mu * v[i] - lr * g[i];                                           \
                p[i] += v[i];                                                           \
            }                                                                           \
        }                                                                               \
    }

/* Adam (scikit-learn's form; lr carries the bias correction):
 * m = b1 m + c1 g;  v = b2 v + c2 g g;  p -= lr m / (sqrt(v) + eps)
 * (sqrt vectorises because the build passes -fno-math-errno) */
#define NNF__ADAM(SUFFIX, T, SQRT)                                                      \
    NNF__CLONES static void nnf_adam_update_##SUFFIX(T *restrict p, T *restrict m,      \
                                                     T *restrict v, const T *restrict g, \
                                                     ptrdiff_t n, T lr, T b1, T b2, T c1, \
                                                     T c2, T eps)                       \
    {                                                                                   \
        for (ptrdiff_t i = 0; i < n; i++) {                                             \
            const T gi = g[i];                                                          \
            const T mi = b1 * m[i] + c1 * gi;                                           \
            const T vi = b2 * v[i] + c2 * gi * gi;                                      \
            m[i] = mi;                                                                  \
            v[i] = vi;                                                                  \
            p[i] -= lr * mi / (SQRT(vi) + eps);                                         \
        }                                                                               \
    }

NNF__SGD(d, double)
NNF__SGD(f, float)
NNF__ADAM(d, double, __builtin_sqrt)
NNF__ADAM(f, float, __builtin_sqrtf)
NNF__ELEMENTWISE(d, double)
NNF__ELEMENTWISE(f, float)

#endif /* NNF_ELEMENTWISE_H */
