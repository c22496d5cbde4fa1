/* gemm_paths.c -- the AVX-512 product kernel against the AVX2 one, shape by shape.
 *
 *   gcc -O3 -ffp-contract=off -fno-math-errno -Innfast/src benchmarks/gemm_paths.c \
 *       -o /tmp/gemm_paths -lm && /tmp/gemm_paths nn d && /tmp/gemm_paths tn f
 *
 * Arguments: the product (nn: NN with a bias, Z = X @ W + b; tn: TN, dW = X^T @ dZ; act:
 * NN with tanh's backward, dA = dZ @ W^T * (1 - A^2)) and the dtype (d or f). Prints
 * time(avx512) / time(avx2) over a grid of m, k and n: one core, best of 7 per cell.
 * docs/kernels.md keeps a Zen 4 run. On a CPU without AVX-512 the AVX-512 kernel cannot
 * run (illegal instruction).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gemm_small.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

enum { NN, TN, ACT };
#define N_ELEMENTS (1 << 20)

/* bench_d / bench_f: best time per call of `f` on one shape. */
#define DEFINE_BENCH(NAME, T)                                                                 \
    typedef void (*NAME##_fn)(ptrdiff_t, ptrdiff_t, ptrdiff_t, const T *, ptrdiff_t,          \
                              ptrdiff_t, const T *, ptrdiff_t, T *, ptrdiff_t, int, const T *, \
                              const T *);                                                     \
    static T NAME##_A[N_ELEMENTS], NAME##_B[N_ELEMENTS], NAME##_C[N_ELEMENTS],                \
        NAME##_act[N_ELEMENTS], NAME##_bias[4096];                                            \
    static double NAME(NAME##_fn f, int mode, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k)          \
    {                                                                                         \
        const ptrdiff_t a_row = mode == TN ? 1 : k, a_col = mode == TN ? m : 1;               \
        const T *bias = mode == NN ? NAME##_bias : NULL;                                      \
        const T *act = mode == ACT ? NAME##_act : NULL;                                       \
        const long reps = (long)(2e7 / (m * n * k + 100)) + 5;                                \
        double best = 1e9;                                                                    \
        for (int r = 0; r < 7; r++) {                                                         \
            const double t0 = now();                                                          \
            for (long i = 0; i < reps; i++)                                                   \
                f(m, n, k, NAME##_A, a_row, a_col, NAME##_B, n, NAME##_C, n, 0, bias, act);   \
            const double t = (now() - t0) / reps;                                             \
            if (t < best) best = t;                                                           \
        }                                                                                     \
        return best;                                                                          \
    }                                                                                         \
    static void NAME##_fill(void)                                                             \
    {                                                                                         \
        for (int i = 0; i < N_ELEMENTS; i++) {                                                \
            NAME##_A[i] = (T)((i % 7) * 0.1 - 0.3);                                           \
            NAME##_B[i] = (T)((i % 5) * 0.1 - 0.2);                                           \
            NAME##_act[i] = (T)((i % 3) * 0.2 - 0.2);                                         \
        }                                                                                     \
    }
DEFINE_BENCH(bench_d, double)
DEFINE_BENCH(bench_f, float)

int main(int argc, char **argv)
{
    static const char *const names[] = {"NN + bias", "TN", "NN + tanh backward"};
    static const ptrdiff_t ms[] = {1, 8, 32, 256}, ks[] = {1, 20, 64};
    static const ptrdiff_t ns[] = {1,  2,  3,  4,  5,  7,  8,  10, 12, 16, 17, 20,
                                   24, 28, 32, 36, 40, 48, 64, 68, 100, 128};
    const int mode = argc > 1 && !strcmp(argv[1], "tn") ? TN : argc > 1 && !strcmp(argv[1], "act") ? ACT : NN;
    const int single = argc > 2 && !strcmp(argv[2], "f");
    bench_d_fill();
    bench_f_fill();
    printf("%s, %s: time avx512 / avx2 (below 1: AVX-512 faster)\n%7s", names[mode],
           single ? "float32" : "float64", "m k \\ n");
    for (size_t c = 0; c < sizeof ns / sizeof *ns; c++) printf(" %4td", ns[c]);
    printf("\n");
    for (size_t a = 0; a < sizeof ms / sizeof *ms; a++)
        for (size_t b = 0; b < sizeof ks / sizeof *ks; b++) {
            printf("%3td %3td", ms[a], ks[b]);
            for (size_t c = 0; c < sizeof ns / sizeof *ns; c++) {
                double t2, t5;
                if (single) {
                    t2 = bench_f(nnf_gemm_ex_f_avx2, mode, ms[a], ns[c], ks[b]);
                    t5 = bench_f(nnf_gemm_ex_f_avx512, mode, ms[a], ns[c], ks[b]);
                } else {
                    t2 = bench_d(nnf_gemm_ex_d_avx2, mode, ms[a], ns[c], ks[b]);
                    t5 = bench_d(nnf_gemm_ex_d_avx512, mode, ms[a], ns[c], ks[b]);
                }
                printf(" %4.2f", t5 / t2);
            }
            printf("\n");
            fflush(stdout);
        }
    return 0;
}
