/* finite.h -- is every value of an array finite?
 *
 * x * 0 is +-0 for a finite x and NaN for NaN or +-inf, and NaN survives any sum: so the
 * array is finite exactly when the sum of x * 0 is zero. Eight independent partial sums
 * keep the loop free of branches and of a serial dependency, so gcc runs it in SIMD
 * registers (isfinite() or x != x comparisons are not vectorised under gcc's default
 * -ftrapping-math). The Python layer checks every input array this way.
 */
#ifndef NNF_FINITE_H
#define NNF_FINITE_H

#include <stddef.h>

#define NNF__ALL_FINITE(NAME, T)                                                \
    static inline int NAME(const T *x, ptrdiff_t n)                             \
    {                                                                           \
        T s[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                      \
        ptrdiff_t i = 0, j;                                                     \
        for (; i + 8 <= n; i += 8)                                              \
            for (j = 0; j < 8; j++)                                             \
                s[j] += x[i + j] * (T)0;                                        \
        for (; i < n; i++)                                                      \
            s[0] += x[i] * (T)0;                                                \
        return (s[0] + s[1] + s[2] + s[3]) + (s[4] + s[5] + s[6] + s[7]) == 0; \
    }

NNF__ALL_FINITE(nnf_all_finite_d, double)
NNF__ALL_FINITE(nnf_all_finite_f, float)

#endif /* NNF_FINITE_H */
