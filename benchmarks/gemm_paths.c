/* gemm_paths.c -- the AVX-512 product kernel against the AVX2 one, shape by shape (float64).
 *
 *   gcc -O3 -ffp-contract=off -fno-math-errno -Innfast/src benchmarks/gemm_paths.c \
 *       -o /tmp/gemm_paths -lm && /tmp/gemm_paths && /tmp/gemm_paths tn
 *
 * Prints time(avx512) / time(avx2) for NN products with a bias (or TN without) over a grid
 * of m, k and n: one core, best of 5 per cell. docs/kernels.md keeps a Zen 4 run. On a CPU
 * without AVX-512 the AVX-512 kernel cannot run (illegal instruction).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "gemm_small.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
typedef void (*gemm_ex)(ptrdiff_t, ptrdiff_t, ptrdiff_t, const double *, ptrdiff_t, ptrdiff_t,
                        const double *, ptrdiff_t, double *, ptrdiff_t, int, const double *, const double *);
static double A[1 << 20], B[1 << 20], C[1 << 20], bias[4096];
static double bench(gemm_ex f, int trans, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k) {
    ptrdiff_t a_row = trans ? 1 : k, a_col = trans ? m : 1;
    long reps = (long)(3e7 / (m * n * k + 200)) + 5;
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        for (long i = 0; i < reps; i++) f(m, n, k, A, a_row, a_col, B, n, C, n, 0, trans ? NULL : bias, NULL);
        double t = (now() - t0) / reps;
        if (t < best) best = t;
    }
    return best;
}
int main(int argc, char **argv) {
    (void)argv; /* any argument: TN */
    for (int i = 0; i < (1 << 20); i++) { A[i] = (i % 7) * 0.1 - 0.3; B[i] = (i % 5) * 0.1 - 0.2; }
    int trans = argc > 1;
    static const ptrdiff_t ms[] = {8, 32, 256}, ks[] = {20, 64};
    static const ptrdiff_t ns[] = {1, 2, 3, 4, 5, 7, 8, 10, 12, 16, 17, 20, 24, 28, 32, 36, 40, 48, 64, 100, 128};
    printf("%s: time avx512 / avx2 (below 1: AVX-512 faster)\n%6s", trans ? "TN" : "NN +bias", "m k \\ n");
    for (size_t c = 0; c < sizeof ns / sizeof *ns; c++) printf(" %5td", ns[c]);
    printf("\n");
    for (size_t a = 0; a < 3; a++) for (size_t b = 0; b < 2; b++) {
        printf("%3td %3td", ms[a], ks[b]);
        for (size_t c = 0; c < sizeof ns / sizeof *ns; c++) {
            double t2 = bench(nnf_gemm_ex_d_avx2, trans, ms[a], ns[c], ks[b]);
            double t5 = bench(nnf_gemm_ex_d_avx512, trans, ms[a], ns[c], ks[b]);
            printf(" %5.2f", t5 / t2);
        }
        printf("\n");
    }
    return 0;
}
