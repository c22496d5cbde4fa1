/*
 * fastmath.h -- fast, vectorizable elementwise math for nnfast.
 *
 * Self-contained, header-only C99 (+ GNU attributes).  Include it from any
 * number of translation units: every symbol is `static`, so each extension
 * module gets its own private copy and there is nothing to link.
 *
 *   void nnf_tanh_d   (double *out, const double *in, ptrdiff_t n);
 *   void nnf_tanh_f   (float  *out, const float  *in, ptrdiff_t n);
 *   void nnf_sigmoid_d(double *out, const double *in, ptrdiff_t n); 1/(1+exp(-x))
 *   void nnf_sigmoid_f(float  *out, const float  *in, ptrdiff_t n);
 *   void nnf_exp_d    (double *out, const double *in, ptrdiff_t n);
 *   void nnf_exp_f    (float  *out, const float  *in, ptrdiff_t n);
 *   void nnf_elu_d    (double *out, const double *in, ptrdiff_t n, double alpha);
 *   void nnf_elu_f    (float  *out, const float  *in, ptrdiff_t n, float  alpha);
 *                     elu(x) = x >= 0 ? x : alpha * expm1(x)
 *
 *   The code path (baseline SSE2, AVX2+FMA, AVX-512) is chosen at run time by cpu.h
 *   (family NNF_FAMILY_FAST_MATH); the per-path functions nnf_tanh_d_avx2 ... are there
 *   for tests.
 *
 * Contract: n <= 0 does nothing; no alignment requirement; `out` may be equal
 * to `in` (in place), but the two ranges must not otherwise overlap.
 *
 * Accuracy (tests/test_fastmath.py; tools/fastmath_accuracy.py scans it per function and
 * path against float64 / mpmath references): max error tanh 2.4 ulp, sigmoid 2.3, exp 1.0,
 * elu 1.2 (float64 and float32 alike).
 * Special values: NaN -> NaN; tanh(+-0) = +-0, tanh(+-inf) = +-1, tanh of a
 * denormal is the input; exp overflows to +inf and underflows *gradually*
 * (denormal results are computed, rounded once; 0 below the denormal range);
 * sigmoid(+inf) = 1, sigmoid(-inf) = 0, sigmoid of large negative x is the
 * correct tiny/denormal value or 0; elu(+inf) = +inf, elu(-inf) = -alpha,
 * elu(-0.0) = -0.0.  Finite inputs never produce NaN (no invalid operation is
 * performed on them).  Results do NOT depend on the dispatch path except
 * through FMA contraction (last-bit differences only).
 *
 * ---------------------------------------------------------------------------
 * How the code is vectorized
 * ---------------------------------------------------------------------------
 * Each function is a scalar, branch-free kernel (always inlined) applied in a
 * loop over fixed-size 64-byte sub-blocks (NNF__W_D = 8 doubles, NNF__W_F =
 * 16 floats), which gcc auto-vectorizes at -O2 and -O3 (a fixed trip count
 * that is a multiple of the vector length is accepted even by gcc 12's "very
 * cheap" -O2 cost model).  The ragged tail is also done by vector code, on
 * the last full sub-block (or a zero-padded one when n is tiny), see
 * NNF__LOOP.  `#pragma GCC ivdep` tells gcc that the out == in case is safe
 * (it is: element i is read before it is written and no other iteration
 * touches it), which removes the run-time alias check.
 *
 * To keep the kernels vectorizable under gcc's default -ftrapping-math:
 *   - there are no floating-point comparisons (gcc refuses to if-convert
 *     `a > b ? c : d` on doubles for AVX2/SSE2 with -ftrapping-math);
 *     selections are bitwise blends with a mask built from a sign bit,
 *     e.g. "a > 20" is the sign of (20 - a), turned into all-ones/zero by an
 *     unsigned shift and a negation (SSE2-friendly: no 64-bit compares);
 *   - there are no float<->int conversions (no 64-bit conversion before
 *     AVX-512DQ): k = round(x/ln2) is obtained with the "shifter" trick, adding
 *     1.5*2^52 (1.5*2^23 for float) so the integer lands in the low mantissa
 *     bits, which are then shifted straight into an exponent field;
 *   - bit casts use memcpy (well-defined C, compiled to nothing).
 *
 * ---------------------------------------------------------------------------
 * Run-time dispatch
 * ---------------------------------------------------------------------------
 * On x86 with gcc/clang every array function is compiled three times (fastmath_loops.h,
 * included once per path) with cpu.h's target attributes: AVX-512 (F/DQ/BW/VL + AVX2 +
 * FMA), AVX2+FMA, and the baseline ISA of the compile flags (SSE2 without -march). The
 * entry point calls the variant cpu.h binds it to (NNF_ENTRY_POINT: the CPU's features,
 * detected once, and the limit set through NNFAST_SIMD / nnfast.kernels.set_simd_path).
 * We deliberately do not use target_clones: on gcc 12 a clone written as
 * "arch=haswell" is only selected when __builtin_cpu_is("haswell"), i.e.
 * never on AMD CPUs, and explicit variants let the tests run every path on
 * one machine.
 *
 * Define NNF_NO_DISPATCH (cpu.h) before including to compile only the
 * baseline variant (then the ISA is whatever the compile flags say, e.g.
 * -march=native gives a native build without any dispatch).  Define
 * NNF_FASTMATH_USE_LIBM to replace everything by plain libm loops (the
 * fallback used for non-GNU compilers; handy to bisect a numerical issue).
 *
 * ---------------------------------------------------------------------------
 * Integration notes / pitfalls
 * ---------------------------------------------------------------------------
 *  - Do not compile with -ffast-math / -ffinite-math-only / -Ofast: they let
 *    the compiler assume no NaN/inf and reassociate the carefully ordered
 *    operations (NaN/inf handling and the exact range reduction break).  A
 *    #warning is emitted if __FAST_MATH__ or __FINITE_MATH_ONLY__ is set.
 *  - Build with -O2 or -O3: the loops are auto-vectorized.  At -O0/-O1 they
 *    are not (same results as the baseline path, but several times slower).
 *  - -std=c99/c11 (ISO mode) implies -ffp-contract=off; the AVX2/AVX-512
 *    variants re-enable contraction with optimize("fp-contract=fast") (gcc),
 *    so they use FMA whatever the -std.  The x86 baseline variant never has FMA; the
 *    AArch64 baseline (NEON, whose FMA every core has) is contracted the same way (gcc).
 *  - If the process runs with FTZ/DAZ set (e.g. another library built with
 *    -ffast-math), denormal inputs/outputs are flushed to zero by the CPU.
 */
#ifndef NNF_FASTMATH_H
#define NNF_FASTMATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"

#if defined(__FAST_MATH__) || (defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__)
#warning "fastmath.h: -ffast-math/-ffinite-math-only breaks NaN/inf handling of nnf_* functions"
#endif

/* The kernels need IEEE binary32/64 arithmetic rounded to the type (the
 * shifter trick and the exact range reduction rely on it): x87 excess
 * precision (32-bit x86 without -mfpmath=sse) gets the libm fallback. */
#if !defined(__GNUC__) || defined(NNF_FASTMATH_USE_LIBM) ||                   \
    (defined(__FLT_EVAL_METHOD__) && __FLT_EVAL_METHOD__ != 0)
/* ======================================================================== */
/* Portable fallback (compilers without GNU extensions, x87 math, or forced */
/* with -DNNF_FASTMATH_USE_LIBM for debugging): plain libm loops, same API. */
/* ======================================================================== */
#include <math.h>
static inline void nnf_tanh_d(double *out, const double *in, ptrdiff_t n)
{ for (ptrdiff_t i = 0; i < n; i++) out[i] = tanh(in[i]); }
static inline void nnf_tanh_f(float *out, const float *in, ptrdiff_t n)
{ for (ptrdiff_t i = 0; i < n; i++) out[i] = tanhf(in[i]); }
static inline void nnf_sigmoid_d(double *out, const double *in, ptrdiff_t n)
{ for (ptrdiff_t i = 0; i < n; i++) { double x = in[i], e = exp(-fabs(x));
    out[i] = (x < 0 ? e : 1.0) / (1.0 + e); } }
static inline void nnf_sigmoid_f(float *out, const float *in, ptrdiff_t n)
{ for (ptrdiff_t i = 0; i < n; i++) { float x = in[i], e = expf(-fabsf(x));
    out[i] = (x < 0 ? e : 1.0f) / (1.0f + e); } }
static inline void nnf_exp_d(double *out, const double *in, ptrdiff_t n)
{ for (ptrdiff_t i = 0; i < n; i++) out[i] = exp(in[i]); }
static inline void nnf_exp_f(float *out, const float *in, ptrdiff_t n)
{ for (ptrdiff_t i = 0; i < n; i++) out[i] = expf(in[i]); }
static inline void nnf_elu_d(double *out, const double *in, ptrdiff_t n, double alpha)
{ for (ptrdiff_t i = 0; i < n; i++) { double x = in[i]; out[i] = x >= 0 ? x : alpha * expm1(x); } }
static inline void nnf_elu_f(float *out, const float *in, ptrdiff_t n, float alpha)
{ for (ptrdiff_t i = 0; i < n; i++) { float x = in[i]; out[i] = x >= 0 ? x : alpha * expm1f(x); } }

#else /* GNU C: vectorized implementation */

/* ======================================================================== */
/* Configuration                                                            */
/* ======================================================================== */
#define NNF__AI     static inline __attribute__((always_inline))

/* The AVX2 / AVX-512 variants are compiled with cpu.h's NNF_TARGET_FAST_MATH_* attributes,
 * which also turn FMA contraction on (gcc: optimize("fp-contract=fast")) even under
 * -std=c99/c11 or -ffp-contract=off (~40% faster). The kernels are accurate with and without
 * contraction (tested: the baseline path, -O0 and NNF_NO_DISPATCH builds run uncontracted). */

/* "No loop-carried dependence": makes out == in legal without an alias check. */
#if defined(__clang__)
#define NNF__IVDEP _Pragma("clang loop vectorize(assume_safety)")
#else
#define NNF__IVDEP _Pragma("GCC ivdep")
#endif

/* Sub-block sizes (elements): 64 bytes = 1 AVX-512 / 2 AVX2 / 4 SSE vectors. */
#define NNF__W_D 8
#define NNF__W_F 16

/* ======================================================================== */
/* Bit-level helpers (all compile to register moves or single instructions) */
/* ======================================================================== */
NNF__AI uint64_t nnf__u64(double x)   { uint64_t u; memcpy(&u, &x, sizeof u); return u; }
NNF__AI double   nnf__f64(uint64_t u) { double x;   memcpy(&x, &u, sizeof x); return x; }
NNF__AI uint32_t nnf__u32(float x)    { uint32_t u; memcpy(&u, &x, sizeof u); return u; }
NNF__AI float    nnf__f32(uint32_t u) { float x;    memcpy(&x, &u, sizeof x); return x; }

/* All-ones if the sign bit of v is set, else 0: the "v < 0" mask.
 * NaN handling: the clamps apply it to (C - |x|).  For a NaN |x| that is a
 * NaN with a clear sign bit (IEEE arithmetic returns the NaN operand, or a
 * positive canonical NaN on RISC-V/ARM default-NaN mode), so NaN is never
 * clamped and propagates.  exp, whose clamps see x itself (either NaN sign),
 * fixes NaN up explicitly; sigmoid/elu select a branch by the sign of x, and
 * both branches are NaN for a NaN x. */
NNF__AI uint64_t nnf__negmask_d(double v) { return (uint64_t)0 - (nnf__u64(v) >> 63); }
NNF__AI uint32_t nnf__negmask_f(float v)  { return (uint32_t)0 - (nnf__u32(v) >> 31); }

/* m ? a : b, bitwise (m is all-ones or zero). */
NNF__AI double nnf__sel_d(uint64_t m, double a, double b)
{ return nnf__f64((m & nnf__u64(a)) | (~m & nnf__u64(b))); }
NNF__AI float nnf__sel_f(uint32_t m, float a, float b)
{ return nnf__f32((m & nnf__u32(a)) | (~m & nnf__u32(b))); }

/* All-ones if x is a NaN: |x| bits > inf bits <=> (inf - |x|) is negative. */
NNF__AI uint64_t nnf__nanmask_d(double x)
{ return (uint64_t)0 - ((UINT64_C(0x7ff0000000000000) - (nnf__u64(x) & UINT64_C(0x7fffffffffffffff))) >> 63); }
NNF__AI uint32_t nnf__nanmask_f(float x)
{ return (uint32_t)0 - ((UINT32_C(0x7f800000) - (nnf__u32(x) & UINT32_C(0x7fffffff))) >> 31); }

/* ======================================================================== */
/* Core: range reduction + expm1 polynomial                                 */
/* ======================================================================== */
/*
 * x = k*ln2 + r with k = round(x/ln2), |r| <= ln2/2 (0.3466).
 *  - k via the shifter: kd = x*(1/ln2) + 1.5*2^52 rounds to an integer in the
 *    low mantissa bits (|x/ln2| < 2^51); kd - shifter is k exactly.  The raw
 *    bits `ki` carry k in their low bits and are used to build 2^k directly.
 *  - r = (x - k*LN2_HI) - k*LN2_LO  (Cody-Waite).  LN2_HI has its 21 low
 *    mantissa bits zero, so k*LN2_HI is exact for |k| < 2^21 and the first
 *    subtraction is exact (both operands lie on a common grid and the result
 *    is small); only the LN2_LO step rounds (half an ulp of r, i.e. a
 *    relative error <= 2^-55 in e^r).  Correct with or without FMA.
 *  - expm1(r) ~= P(r) = r + r^2 * Q(r), Q a degree-10 minimax polynomial for
 *    (expm1(r) - r)/r^2 on |r| <= 0.347 (tools/gen_fastmath_coeffs.py; approximation error of
 *    P 1e-18 relative = 0.01 ulp; degree 9 would give 0.36 ulp).  Keeping the
 *    leading r separate makes expm1 accurate in *relative* terms for tiny r
 *    and exp(r) = 1 + P a single final rounding.
 */
#define NNF__INVLN2_D  0x1.71547652b82fep+0
#define NNF__SHIFT_D   0x1.8p52
#define NNF__LN2HI_D   0x1.62e42fee00000p-1   /* 6.93147180369123816490e-01 */
#define NNF__LN2LO_D   0x1.a39ef35793c76p-33  /* 1.90821492927058770002e-10 */

/* Q by its even and odd parts, each a Horner chain in s = r^2:
 *   Q(r) = E(s) + r O(s),  E = c0 + c2 s + ... + c10 s^5,  O = c1 + c3 s + ... + c9 s^4.
 * 11 multiply-adds and one multiply (s), two fewer than Estrin's scheme (which needs r^2,
 * r^4, r^8 and five more multiply-adds to combine the pairs), with two independent chains
 * of depth 5. The loops are bound by the multiply-add units, not by this latency:
 * tanh float64 ran 5-6 % faster than with Estrin (AVX-512 and AVX2, AMD EPYC family 25
 * model 17; Horner in r, depth 10, had been 6 % slower than Estrin). The terms c_i r^i
 * shrink by >10x per degree, so the evaluation error stays ~1 rounding of Q, i.e.
 * < 2^-56 relative in P = r + r^2 Q. */
NNF__AI double nnf__expm1_poly_d(double r)
{
    double s = r * r;
    double e = 0x1.1f1a0ec36927cp-29;                                 /* c10 ~ 1/12!         */
    e = 0x1.27e510f65dbb5p-22 + e * s;                                /* c8  ~ 1/10!         */
    e = 0x1.a01a019044178p-16 + e * s;                                /* c6  ~ 1/8!          */
    e = 0x1.6c16c16c1a0f9p-10 + e * s;                                /* c4  ~ 1/6!          */
    e = 0x1.555555555554ep-5 + e * s;                                 /* c2  ~ 1/4!          */
    e = 0x1.0000000000000p-1 + e * s;                                 /* c0  = 1/2           */
    double o = 0x1.af4e4bc79edfap-26;                                 /* c9  ~ 1/11!         */
    o = 0x1.71de02048be1ep-19 + o * s;                                /* c7  ~ 1/9!          */
    o = 0x1.a01a01abf54cep-13 + o * s;                                /* c5  ~ 1/7!          */
    o = 0x1.11111111100c5p-7 + o * s;                                 /* c3  ~ 1/5!          */
    o = 0x1.5555555555557p-3 + o * s;                                 /* c1  ~ 1/3!          */
    double q = e + r * o;
    return r + s * q;
}

/* Reduction.  Returns P = expm1(r) and the raw shifter bits (k in low bits). */
NNF__AI double nnf__reduce_d(double x, uint64_t *ki)
{
    double kd = x * NNF__INVLN2_D + NNF__SHIFT_D;
    *ki = nnf__u64(kd);
    kd -= NNF__SHIFT_D;
    double r = x - kd * NNF__LN2HI_D;
    r = r - kd * NNF__LN2LO_D;
    return nnf__expm1_poly_d(r);
}

/*
 * expm1(x) for |x| <= ~45 and x not NaN-sensitive (callers clamp):
 *   expm1(x) = 2^k * P + (2^k - 1).
 * 2^k*P is exact (power-of-two scaling, no over/underflow for |k| <= 65) and
 * 2^k - 1 is exact for -53 <= k <= 53, so there is a single rounding; beyond
 * that range the exactly-computed big term dominates.  2^k is built directly
 * in the exponent field: (ki << 52) drops the shifter bits and keeps k mod
 * 2^12, adding the bits of 1.0 adds the bias (wrapping correctly for k < 0).
 */
NNF__AI double nnf__expm1_core_d(double x)
{
    uint64_t ki;
    double p = nnf__reduce_d(x, &ki);
    double s = nnf__f64((ki << 52) + UINT64_C(0x3ff0000000000000));
    return s * p + (s - 1.0);
}

/*
 * exp(x) over the whole double range, with gradual underflow.
 * Clamp to [-746, 710]: exp(710) > DBL_MAX and exp(-746) < DBL_TRUE_MIN/2, so
 * the clamped values still overflow to +inf / round to 0, but k stays in
 * [-1076, 1024] and the integer tricks cannot wrap (and +-inf become finite,
 * so no inf-inf/0*inf is ever evaluated).  2^k is applied as two factors
 * 2^k1 * 2^k2 (k1 = floor(k/2), k2 = k - k1, both in [-538, 512], normal
 * numbers): (1+P)*2^k1 is exact, and the second product is the only rounding,
 * so overflow gives +inf and results in the denormal range are rounded once
 * (correct gradual underflow, not flushed).  NaN is passed through explicitly
 * (a NaN with its sign bit set would otherwise be clamped).
 */
NNF__AI double nnf__exp_scale2_d(double p1, uint64_t ki)
{
    /* kb = k + 2048 > 0, so floor(k/2) is a logical shift (no 64-bit
     * arithmetic shift before AVX-512). */
    uint64_t kb  = ki - (UINT64_C(0x4338000000000000) - 2048);
    uint64_t k1b = kb >> 1;                        /* floor(k/2) + 1024 */
    double s1 = nnf__f64((k1b - 1) << 52);         /* 2^(k1b-1024) */
    double s2 = nnf__f64((kb - k1b - 1) << 52);    /* 2^(k - k1)   */
    return (p1 * s1) * s2;
}

NNF__AI double nnf__exp1_d(double x)
{
    double xc = nnf__sel_d(nnf__negmask_d(710.0 - x), 710.0, x);   /* x > 710  */
    xc = nnf__sel_d(nnf__negmask_d(xc + 746.0), -746.0, xc);        /* x < -746 */
    uint64_t ki;
    double p = nnf__reduce_d(xc, &ki);
    double y = nnf__exp_scale2_d(1.0 + p, ki);
    /* NaN in -> the same NaN, quieted (sNaN -> qNaN as an arithmetic op would) */
    double qx = nnf__f64(nnf__u64(x) | UINT64_C(0x0008000000000000));
    return nnf__sel_d(nnf__nanmask_d(x), qx, y);
}

/*
 * tanh(x) = sign(x) * e/(e+2) with e = expm1(2|x|).
 * No cancellation anywhere (e > 0, e/(e+2) has ~3 roundings: e, e+2, /), so
 * it is accurate to ~2 ulp from denormals (e = 2a exactly, result a) up to the
 * clamp.  |x| is clamped at 20: 1 - tanh(20) = 8.5e-18 < 2^-54, so tanh
 * already rounds to exactly 1 there; the clamp keeps e finite (e(+inf)
 * would give inf/inf = NaN).  NaN: |x| is a positive NaN, 20 - NaN keeps that
 * NaN's (clear) sign, so it is not clamped and propagates.  The sign bit of x
 * is OR-ed back, so tanh(-0) = -0.
 */
NNF__AI double nnf__tanh1_d(double x)
{
    uint64_t sign = nnf__u64(x) & UINT64_C(0x8000000000000000);
    double a = nnf__f64(nnf__u64(x) ^ sign);
    a = nnf__sel_d(nnf__negmask_d(20.0 - a), 20.0, a);
    double e = nnf__expm1_core_d(2.0 * a);
    double t = e / (e + 2.0);
    return nnf__f64(nnf__u64(t) | sign);
}

/*
 * sigmoid(x) = 1/(1+e) for x >= 0, e/(1+e) for x < 0, with e = exp(-|x|) in
 * (0, 1]: never overflows, no cancellation (<= ~2.5 ulp), and for very
 * negative x the result is e itself, i.e. the correct tiny or denormal value
 * (0 below ~-745).  |x| is clamped at 746 (exp(-746) rounds to 0) so that
 * -inf/+inf give exactly 0/1.  NaN: |x| is a positive NaN, not clamped.
 */
NNF__AI double nnf__sigmoid1_d(double x)
{
    double a = nnf__f64(nnf__u64(x) & UINT64_C(0x7fffffffffffffff));
    a = nnf__sel_d(nnf__negmask_d(746.0 - a), 746.0, a);
    uint64_t ki;
    double p = nnf__reduce_d(-a, &ki);
    double e = nnf__exp_scale2_d(1.0 + p, ki);
    double num = nnf__sel_d(nnf__negmask_d(x), e, 1.0);
    /* The quotient is >= +0 except for NaN, whose sign would come from whichever operand
       an instruction propagates (clang's AVX2 and AVX-512 code differ there): clearing the
       sign bit gives every path the same NaN. */
    return nnf__f64(nnf__u64(num / (1.0 + e)) & UINT64_C(0x7fffffffffffffff));
}

/*
 * elu(x) = x >= 0 ? x : alpha*expm1(x).
 * The negative branch uses expm1(-min(|x|, 40)): expm1(-40) rounds to -1
 * (e^-40 = 4e-18 < 2^-54), so the clamp is invisible and keeps k >= -58.
 * Selector: the sign of (x + 0.0) is set exactly when x < 0 (-0.0 + 0.0 is
 * +0.0, so elu(-0.0) = x = -0.0 as the formula says); a NaN takes the branch
 * of its sign bit and stays NaN in both.
 */
NNF__AI double nnf__elu1_d(double x, double alpha)
{
    double a = nnf__f64(nnf__u64(x) & UINT64_C(0x7fffffffffffffff));
    a = nnf__sel_d(nnf__negmask_d(40.0 - a), 40.0, a);
    double neg = alpha * nnf__expm1_core_d(-a);
    return nnf__sel_d(nnf__negmask_d(x + 0.0), neg, x);
}

/* ------------------------------------------------------------------------ */
/* float32 kernels: same algorithms, float arithmetic throughout            */
/* ------------------------------------------------------------------------ */
/*
 * Reduction constants: LN2_HI has 15 significant bits, so k*LN2_HI is exact
 * for |k| < 2^9 (we need |k| <= 150); LN2_LO = ln2 - LN2_HI rounded to float.
 * Q: degree-5 minimax for (expm1(r) - r)/r^2 on |r| <= 0.347 (tools/gen_fastmath_coeffs.py,
 * approximation error of P 2e-9 = 0.03 ulp; degree 4 would be 0.43 ulp).
 */
#define NNF__INVLN2_F  0x1.715476p+0f
#define NNF__SHIFT_F   0x1.8p23f
#define NNF__LN2HI_F   0x1.62e4p-1f
#define NNF__LN2LO_F   0x1.7f7d1cp-20f

NNF__AI float nnf__expm1_poly_f(float r)       /* even and odd parts, as in _d */
{
    float s = r * r;
    float e = 0x1.5554e8p-5f + 0x1.6d4388p-10f * s;   /* c2 ~ 1/4!, c4 ~ 1/6! */
    e = 0x1.000000p-1f + e * s;                       /* c0 = 1/2             */
    float o = 0x1.11114cp-7f + 0x1.a072f8p-13f * s;   /* c3 ~ 1/5!, c5 ~ 1/7! */
    o = 0x1.555556p-3f + o * s;                       /* c1 ~ 1/3!            */
    float q = e + r * o;
    return r + s * q;
}

NNF__AI float nnf__reduce_f(float x, uint32_t *ki)
{
    float kd = x * NNF__INVLN2_F + NNF__SHIFT_F;
    *ki = nnf__u32(kd);
    kd -= NNF__SHIFT_F;
    float r = x - kd * NNF__LN2HI_F;
    r = r - kd * NNF__LN2LO_F;
    return nnf__expm1_poly_f(r);
}

NNF__AI float nnf__expm1_core_f(float x)        /* |x| <= ~25 */
{
    uint32_t ki;
    float p = nnf__reduce_f(x, &ki);
    float s = nnf__f32((ki << 23) + UINT32_C(0x3f800000));
    return s * p + (s - 1.0f);
}

/* Gradual underflow as in the double version: k in [-150, 128], split into
 * two factors in [-75, 64]; kb = k + 256 > 0. */
NNF__AI float nnf__exp_scale2_f(float p1, uint32_t ki)
{
    uint32_t kb  = ki - (UINT32_C(0x4b400000) - 256);
    uint32_t k1b = kb >> 1;                         /* floor(k/2) + 128 */
    float s1 = nnf__f32((k1b - 1) << 23);
    float s2 = nnf__f32((kb - k1b - 1) << 23);
    return (p1 * s1) * s2;
}

/* Clamp [-104, 89]: expf(89) > FLT_MAX, expf(-104) < FLT_TRUE_MIN/2. */
NNF__AI float nnf__exp1_f(float x)
{
    float xc = nnf__sel_f(nnf__negmask_f(89.0f - x), 89.0f, x);
    xc = nnf__sel_f(nnf__negmask_f(xc + 104.0f), -104.0f, xc);
    uint32_t ki;
    float p = nnf__reduce_f(xc, &ki);
    float y = nnf__exp_scale2_f(1.0f + p, ki);
    float qx = nnf__f32(nnf__u32(x) | UINT32_C(0x00400000));
    return nnf__sel_f(nnf__nanmask_f(x), qx, y);
}

/* Clamp |x| at 10: 1 - tanh(10) = 4e-9 < 2^-25, tanhf(10) rounds to 1. */
NNF__AI float nnf__tanh1_f(float x)
{
    uint32_t sign = nnf__u32(x) & UINT32_C(0x80000000);
    float a = nnf__f32(nnf__u32(x) ^ sign);
    a = nnf__sel_f(nnf__negmask_f(10.0f - a), 10.0f, a);
    float e = nnf__expm1_core_f(2.0f * a);
    float t = e / (e + 2.0f);
    return nnf__f32(nnf__u32(t) | sign);
}

/* Clamp |x| at 104: expf(-104) rounds to 0. */
NNF__AI float nnf__sigmoid1_f(float x)
{
    float a = nnf__f32(nnf__u32(x) & UINT32_C(0x7fffffff));
    a = nnf__sel_f(nnf__negmask_f(104.0f - a), 104.0f, a);
    uint32_t ki;
    float p = nnf__reduce_f(-a, &ki);
    float e = nnf__exp_scale2_f(1.0f + p, ki);
    float num = nnf__sel_f(nnf__negmask_f(x), e, 1.0f);
    return nnf__f32(nnf__u32(num / (1.0f + e)) & UINT32_C(0x7fffffff)); /* as in _d */
}

/* Clamp |x| at 20 for the negative branch: expm1f(-20) rounds to -1. */
NNF__AI float nnf__elu1_f(float x, float alpha)
{
    float a = nnf__f32(nnf__u32(x) & UINT32_C(0x7fffffff));
    a = nnf__sel_f(nnf__negmask_f(20.0f - a), 20.0f, a);
    float neg = alpha * nnf__expm1_core_f(-a);
    return nnf__sel_f(nnf__negmask_f(x + 0.0f), neg, x);
}

/* ======================================================================== */
/* Array loops                                                              */
/* ======================================================================== */
/*
 * Body shared by all variants.  The vector loop runs over sub-blocks of W
 * elements (64 bytes: one AVX-512 vector, two AVX2, four SSE) with a
 * constant trip count, which gcc vectorizes at -O2/-O3 without an epilogue.
 * The ragged tail (rem = n % W elements) is handled without scalar code:
 *  - n >= W: the last W elements, in[n-W, n), are computed *first* into a
 *    local buffer (so with out == in they are read before anything is
 *    written), then the main loop runs, then the last rem results are copied
 *    out.  No store->load round trip through memory on the input side.
 *  - n < W: the input is copied into a zero-padded buffer (computing f(0)
 *    for the padding raises no exception).
 * EXPR is an expression of the element `v_`.
 */
#define NNF__LOOP(T, W, EXPR)                                                 \
    do {                                                                      \
        if (n <= 0)                                                           \
            break;                                                            \
        ptrdiff_t rem_ = n % (W), end_ = n - rem_, off_ = 0;                  \
        T tail_[W];                                                           \
        if (rem_) {                                                           \
            T pad_[W];                                                        \
            const T *tsrc_;                                                   \
            if (n < (W)) {                                                    \
                memset(pad_, 0, sizeof pad_);                                 \
                memcpy(pad_, in, (size_t)n * sizeof(T));                      \
                tsrc_ = pad_;                                                 \
            } else {                                                          \
                tsrc_ = in + (n - (W));                                       \
                off_ = (W) - rem_;                                            \
            }                                                                 \
            NNF__IVDEP                                                        \
            for (int j_ = 0; j_ < (W); j_++) {                                \
                T v_ = tsrc_[j_];                                             \
                tail_[j_] = (EXPR);                                           \
            }                                                                 \
        }                                                                     \
        for (ptrdiff_t i_ = 0; i_ < end_; i_ += (W)) {                        \
            const T *src_ = in + i_;                                          \
            T *dst_ = out + i_;                                               \
            NNF__IVDEP                                                        \
            for (int j_ = 0; j_ < (W); j_++) {                                \
                T v_ = src_[j_];                                              \
                dst_[j_] = (EXPR);                                            \
            }                                                                 \
        }                                                                     \
        if (rem_)                                                             \
            memcpy(out + end_, tail_ + off_, (size_t)rem_ * sizeof(T));       \
    } while (0)

/* ---- the array functions: one copy per code path (fastmath_loops.h), chosen by cpu.h ---- */
#define NNF_FM_PATH _baseline
#define NNF_TGT NNF_TARGET_FAST_MATH_BASELINE /* empty except on AArch64 (cpu.h) */
#include "fastmath_loops.h"
#if NNF_FAST_MATH_SIMD
#define NNF_FM_PATH _avx2
#define NNF_TGT NNF_TARGET_FAST_MATH_AVX2
#include "fastmath_loops.h"
#define NNF_FM_PATH _avx512
#define NNF_TGT NNF_TARGET_FAST_MATH_AVX512
#include "fastmath_loops.h"
#endif

#define NNF__P_D (double *out, const double *in, ptrdiff_t n)
#define NNF__P_F (float *out, const float *in, ptrdiff_t n)
#define NNF__A   (out, in, n)
#define NNF__FM_ENTRY(name, PARAMS, ARGS)                                     \
    NNF_ENTRY_POINT(NNF_FAMILY_FAST_MATH, nnf__bind_fast_math, name, PARAMS, ARGS)

NNF__FM_ENTRY(nnf_tanh_d,    NNF__P_D, NNF__A)
NNF__FM_ENTRY(nnf_tanh_f,    NNF__P_F, NNF__A)
NNF__FM_ENTRY(nnf_sigmoid_d, NNF__P_D, NNF__A)
NNF__FM_ENTRY(nnf_sigmoid_f, NNF__P_F, NNF__A)
NNF__FM_ENTRY(nnf_exp_d,     NNF__P_D, NNF__A)
NNF__FM_ENTRY(nnf_exp_f,     NNF__P_F, NNF__A)
NNF__FM_ENTRY(nnf_elu_d, (double *out, const double *in, ptrdiff_t n, double alpha),
              (out, in, n, alpha))
NNF__FM_ENTRY(nnf_elu_f, (float *out, const float *in, ptrdiff_t n, float alpha),
              (out, in, n, alpha))

#if NNF_FAST_MATH_SIMD
#define NNF__FM_BIND NNF_BIND_SIMD
#else
#define NNF__FM_BIND NNF_BIND_BASELINE
#endif
static void nnf__bind_fast_math(int path)
{
    (void)path;
    NNF__FM_BIND(nnf_tanh_d) NNF__FM_BIND(nnf_tanh_f)
    NNF__FM_BIND(nnf_sigmoid_d) NNF__FM_BIND(nnf_sigmoid_f)
    NNF__FM_BIND(nnf_exp_d) NNF__FM_BIND(nnf_exp_f)
    NNF__FM_BIND(nnf_elu_d) NNF__FM_BIND(nnf_elu_f)
}

#endif /* GNU C */
#endif /* NNF_FASTMATH_H */
