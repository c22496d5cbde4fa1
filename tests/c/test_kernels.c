/* test_kernels.c -- every kernel family of nnfast/src against a scalar reference, in C.
 *
 * Built from the headers alone (no Python), so that it runs where nnfast itself cannot be
 * built or run: cross-compiled for AArch64 and run under qemu-aarch64 by .ci/arm64, and
 * natively on x86-64, where it runs every SIMD path the CPU has. For float64 and float32, on
 * odd sizes (1, 3, 17, 65 ...), on every path (cpu.h's limit, through the entry points; the
 * AVX-512 products twice, planned for 512-bit and for 256-bit units):
 *
 *   products      nnf_gemm_{d,f} NN and TN, accumulate or not, padded strides, and the
 *                 special kernels (m == 1 wide, TN tiny n, 4 KiB-strided B, k blocks):
 *                 bit for bit against ONE ordered chain per element (fused where the path
 *                 fuses: AVX2, AVX-512, the NEON baseline), C outside its m x n untouched
 *   fast math     tanh, sigmoid, exp, elu: within 3 ulp of libm in long double, special
 *                 values exact, in place == out of place, no element depends on its
 *                 position, nothing written past n; the FMA paths agree bit for bit
 *   elementwise   tanh/sigmoid backward (into and in place), fill_rows, add_column_sums,
 *                 sgd (plain and Nesterov), adam: the same expressions, bit for bit
 *   finite        nnf_all_finite_{d,f}: a NaN or an infinity at any position is found
 *   L-BFGS        nnf_dot (its 8-lane order), axpy, difference, trial_point
 *   row step      nnf_sgd_row_step_{d,f}: one sample's SGD step, bit for bit the step
 *                 composed of the entry points above, on every path whose products fuse
 *
 * Build with nnfast's flags (setup.py): gcc -O3 -ffp-contract=off -fno-math-errno
 *   -Innfast/src tests/c/test_kernels.c -lm. With contraction on (gcc's GNU default) the
 * elementwise and L-BFGS loops are compared within 4 eps instead of bit for bit.
 * Prints one line per family and path, and "products digest" (a hash of products computed
 * on a fused path: equal on every CPU, as each element is one correctly rounded FMA chain);
 * exits 1 on any mismatch.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elementwise.h"
#include "fastmath.h"
#include "finite.h"
#include "gemm_small.h"
#include "lbfgs_vectors.h"
#include "row_step.h"

static long n_checks, n_failures;
/* C's row stride in the product checks is n + c_padding (0: rows back to back). */
static ptrdiff_t c_padding = 3;
#define CHECK(cond, ...)                                                                    \
    do {                                                                                    \
        n_checks++;                                                                         \
        if (!(cond) && n_failures++ < 25) {                                                 \
            fprintf(stderr, "FAIL line %d: ", __LINE__);                                    \
            fprintf(stderr, __VA_ARGS__);                                                   \
            fputc('\n', stderr);                                                            \
        }                                                                                   \
    } while (0)

/* Deterministic inputs, the same on every CPU (integer arithmetic only). */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t next_u64(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* FNV-1a over bytes: digests of results, to compare paths and machines. */
static uint64_t digest_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3u;
    return h;
}
#define DIGEST_START 0xcbf29ce484222325u

/* Is this file compiled with floating-point contraction (a * b + c fused where the ISA has
   FMA, as gcc does by default in its GNU modes)? x*y is 1 - 2^-60, 1 once rounded: unfused
   the sum is 0, fused -2^-60. On x86 the probe is compiled for FMA, as the AVX paths are,
   and asked only if the CPU has FMA (without it no path could fuse). */
static volatile double contraction_x = 1.0 + 0x1p-30, contraction_y = 1.0 - 0x1p-30;
#if NNF_CPU_X86
#define CONTRACTION_PROBE_TARGET __attribute__((target("fma"), noinline))
#else
#define CONTRACTION_PROBE_TARGET __attribute__((noinline))
#endif
static CONTRACTION_PROBE_TARGET int contraction_probe(void)
{
    const double x = contraction_x, y = contraction_y;
    return x * y + -1.0 != 0.0;
}
static int contracting(void)
{
#if NNF_CPU_X86
    if (!(nnf_cpu()->features & NNF_FEATURE_FMA)) return 0;
#endif
    return contraction_probe();
}
static int exact_elementwise; /* set in main: !contracting() */

/* One multiply-add with two roundings, whatever the compile flags. */
static double mul_add_unfused_d(double a, double b, double c)
{
    volatile double t = a * b;
    return t + c;
}
static float mul_add_unfused_f(float a, float b, float c)
{
    volatile float t = a * b;
    return t + c;
}

/* Does the products' code on `path` fuse its multiply-adds? */
static int products_fuse(int path)
{
    return path == NNF_PATH_BASELINE ? NNF_GEMM_BASELINE_FMA : 1;
}

/* |got - want| in units of the last place of `want` in a type of `mant` significand bits
   (denormal spacing `tiny` at the bottom); 0 if both are the same NaN-ness or infinity. */
static long double ulps(long double got, long double want, int mant, long double tiny)
{
    int e;
    long double spacing;
    if (isnan(got) || isnan(want)) return isnan(got) && isnan(want) ? 0 : INFINITY;
    if (isinf(got) || isinf(want)) return got == want ? 0 : INFINITY;
    frexpl(want, &e);
    spacing = ldexpl(1.0L, e - mant);
    if (spacing < tiny) spacing = tiny;
    return fabsl(got - want) / spacing;
}

static long double ref_sigmoid(long double x)
{
    return x >= 0 ? 1.0L / (1.0L + expl(-x)) : expl(x) / (1.0L + expl(x));
}
static long double ref_elu(long double x, long double alpha)
{
    return x >= 0 ? x : alpha * expm1l(x);
}

static const char *path_label(int path) { return nnf_path_name(path); }

/* Set the path limit to `path`; 0 if `family` does not run `path` here. */
static int use_path(int family, int path)
{
    if (!nnf_path_runs(family, path)) return 0;
    nnf_set_path_limit(path);
    CHECK(nnf_family_path(family) == path, "family %d runs path %s under limit %s", family,
          path_label(nnf_family_path(family)), path_label(path));
    return nnf_family_path(family) == path;
}

/* The products run on every path, and on AVX-512 twice: planned for 512-bit units, then for
   256-bit units (cpu.h's nnf_set_avx512_unit_bits), where rows that take fewer 256-bit
   operations in ymm vectors run the AVX2 kernel (gemm_small.h's nnf__ymm_rows). */
#define PRODUCT_VARIANTS (NNF_PATH_COUNT + 1)
static int variant_path(int variant) { return variant < NNF_PATH_COUNT ? variant : NNF_PATH_AVX512; }
static const char *variant_label(int variant)
{
    return variant < NNF_PATH_COUNT ? path_label(variant) : "avx512 (256-bit units)";
}
static int use_product_variant(int variant)
{
    nnf_set_avx512_unit_bits(variant < NNF_PATH_COUNT ? 512 : 256);
    return use_path(NNF_FAMILY_PRODUCTS, variant_path(variant));
}

/* Digests of the products on fused paths, per dtype (0 float64, 1 float32). */
static uint64_t fused_digest[2];
static int fused_products_digest_set; /* bit per dtype */

static double random_d(void) { return (double)(next_u64() >> 11) * 0x1p-52 - 1.0; }
static float random_f(void) { return (float)(next_u64() >> 40) * 0x1p-23f - 1.0f; }

/* The float64 and float32 tests. */
#define TT double
#define TS d
#define TNAME "float64"
#define T_MANT 53
#define T_TINY DBL_TRUE_MIN
#define T_EPS DBL_EPSILON
#define T_FMA fma
#define T_UNFUSED mul_add_unfused_d
#define T_RANDOM random_d
#include "test_kernels_typed.h"
#define TT float
#define TS f
#define TNAME "float32"
#define T_MANT 24
#define T_TINY FLT_TRUE_MIN
#define T_EPS FLT_EPSILON
#define T_FMA fmaf
#define T_UNFUSED mul_add_unfused_f
#define T_RANDOM random_f
#include "test_kernels_typed.h"

static void test_finite(void)
{
    static const ptrdiff_t sizes[] = {0, 1, 3, 7, 8, 9, 17, 65};
    double xd[65];
    float xf[65];
    const long before = n_checks;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        const ptrdiff_t n = sizes[s];
        for (ptrdiff_t i = 0; i < n; i++) {
            /* finite extremes: x * 0 is still 0 for them */
            xd[i] = i % 4 == 0 ? DBL_MAX : i % 4 == 1 ? -DBL_TRUE_MIN : i % 4 == 2 ? -0.0 : 1.5;
            xf[i] = i % 4 == 0 ? -FLT_MAX : i % 4 == 1 ? FLT_TRUE_MIN : i % 4 == 2 ? -0.0f : 1.5f;
        }
        CHECK(nnf_all_finite_d(xd, n), "all_finite_d of finite n=%td", n);
        CHECK(nnf_all_finite_f(xf, n), "all_finite_f of finite n=%td", n);
        for (ptrdiff_t i = 0; i < n; i++) {
            for (int kind = 0; kind < 3; kind++) {
                const double bad = kind == 0 ? NAN : kind == 1 ? INFINITY : -INFINITY;
                const double saved_d = xd[i];
                const float saved_f = xf[i];
                xd[i] = bad;
                xf[i] = (float)bad;
                CHECK(!nnf_all_finite_d(xd, n), "all_finite_d misses %g at %td of %td", bad, i, n);
                CHECK(!nnf_all_finite_f(xf, n), "all_finite_f misses %g at %td of %td", bad, i, n);
                xd[i] = saved_d;
                xf[i] = saved_f;
            }
        }
    }
    printf("finite       %7ld checks\n", n_checks - before);
}

static int close_or_equal(double got, double want)
{
    return exact_elementwise ? memcmp(&got, &want, sizeof got) == 0
                             : fabs(got - want) <= 4 * DBL_EPSILON * fabs(want) + DBL_TRUE_MIN;
}

static void test_lbfgs_vectors(void)
{
    static const ptrdiff_t sizes[] = {0, 1, 3, 7, 8, 9, 17, 65, 100};
    double a[100], b[100], y[100], out[100];
    const long before = n_checks;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        const ptrdiff_t n = sizes[s];
        double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, want;
        ptrdiff_t i;
        for (i = 0; i < n; i++) a[i] = random_d(), b[i] = random_d(), y[i] = random_d();
        /* lane j sums the elements i = j (mod 8) in order; the tail continues lanes 0.. */
        for (i = 0; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++) lane[j] = lane[j] + a[i + j] * b[i + j];
        for (int j = 0; i < n; i++, j++) lane[j] = lane[j] + a[i] * b[i];
        want = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
        CHECK(close_or_equal(nnf_dot(a, b, n), want), "dot n=%td: %a != %a", n, nnf_dot(a, b, n), want);
        memcpy(out, y, sizeof y);
        nnf_axpy(out, 0.75, a, n);
        for (i = 0; i < n; i++) CHECK(close_or_equal(out[i], y[i] + 0.75 * a[i]), "axpy n=%td i=%td", n, i);
        nnf_difference(out, a, b, n);
        for (i = 0; i < n; i++) CHECK(out[i] == a[i] - b[i], "difference n=%td i=%td", n, i);
        nnf_trial_point(out, a, -0.3, b, n);
        for (i = 0; i < n; i++) CHECK(close_or_equal(out[i], a[i] + -0.3 * b[i]), "trial_point n=%td i=%td", n, i);
    }
    printf("lbfgs        %7ld checks\n", n_checks - before);
}

int main(void)
{
    const nnf_cpu_info *cpu = nnf_cpu();
    exact_elementwise = !contracting();
    printf("cpu: vendor '%s' brand '%s' features", cpu->vendor, cpu->brand);
    for (int bit = 0; bit < NNF_FEATURE_COUNT; bit++)
        if (cpu->features & (1u << bit)) printf(" %s", nnf_feature_name(bit));
    printf("\ncompiled with contraction: %s; baseline products fuse: %s\n",
           exact_elementwise ? "no" : "yes", NNF_GEMM_BASELINE_FMA ? "yes" : "no");
    test_products_d();
    test_products_f();
    test_fast_math_d();
    test_fast_math_f();
    test_elementwise_d();
    test_elementwise_f();
    test_row_step_d();
    test_row_step_f();
    test_finite();
    test_lbfgs_vectors();
    if (fused_products_digest_set == 3)
        printf("products digest (fused chains): %016llx %016llx\n",
               (unsigned long long)fused_digest[0], (unsigned long long)fused_digest[1]);
    printf("%ld checks, %ld failures\n", n_checks, n_failures);
    return n_failures ? 1 : 0;
}
