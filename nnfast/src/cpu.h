/* cpu.h -- what this CPU runs, detected once, and the code path of every kernel family.
 *
 * nnfast is built without -march, so one binary runs on any x86-64. Each kernel family is
 * compiled once per code path, with a GCC/Clang `target` attribute:
 *
 *   family        header          paths                       code compiled for (target)
 *   products      gemm_small.h    baseline, avx2, avx512      avx2,fma | avx512f,avx2,fma
 *   fast_math     fastmath.h      baseline, avx2, avx512      avx2,fma | avx512f,dq,bw,vl,avx2,fma
 *   elementwise   elementwise.h   baseline, avx2, avx512      avx2     | avx512f
 *
 * (baseline: the compile flags' own ISA, SSE2 on x86-64; on AArch64 it is NEON with FMA,
 * which every core has, so there the baseline is the only path and is itself SIMD: see
 * NNF_TARGET_*_BASELINE below.) A family runs the widest of its paths that
 *   1. is not wider than the path limit: nnf_set_path_limit(), which nnfast._kernels sets
 *      at import from the environment variable NNFAST_SIMD=avx512|avx2|baseline (unset:
 *      no limit) and nnfast.kernels.set_simd_path() changes at run time; and
 *   2. runs here: the CPU has every feature in that path's target list and the OS saves
 *      the registers (XCR0), as the table above and nnf__needs[] below say.
 * Each family's target attributes are defined here, next to the features they need, so
 * the two cannot disagree. Its entry points call through function pointers bound to that
 * path (NNF_ENTRY_POINT below), so choosing costs nothing per call.
 *
 * The detection records vendor, family and model as well as the features, so that a
 * choice by microarchitecture (e.g. AMD family 25, Zen 4, executes AVX-512 on 256-bit
 * units) can be made in nnf__preferred_path() without touching the families.
 *
 * Everything is `static`: each translation unit that includes this file has its own state
 * (nnfast includes the kernel headers in one module, nnfast._kernels). Setting the limit
 * while kernels run in other threads is not supported: set it before.
 *
 * NNF_NO_DISPATCH: compile the baseline path of every family only.
 */
#ifndef NNF_CPU_H
#define NNF_CPU_H

#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define NNF__LOAD_RELAXED(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define NNF__STORE_RELAXED(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define NNF__LOAD_ACQUIRE(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define NNF__STORE_RELEASE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#define NNF__COLD __attribute__((noinline, cold))
#define NNF__LIKELY(x) __builtin_expect(!!(x), 1)
#else /* no threads assumed */
#define NNF__LOAD_RELAXED(x) (x)
#define NNF__STORE_RELAXED(x, v) ((x) = (v))
#define NNF__LOAD_ACQUIRE(x) (x)
#define NNF__STORE_RELEASE(x, v) ((x) = (v))
#define NNF__COLD
#define NNF__LIKELY(x) (x)
#endif

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define NNF_CPU_X86 1
#include <cpuid.h>
#else
#define NNF_CPU_X86 0
#endif

/* Which families have SIMD paths in this build (baseline only otherwise). The products'
   AVX paths need the 16 vector registers of x86-64; the fast math needs IEEE arithmetic
   rounded to the type (see fastmath.h: its libm fallback has no paths). */
#if NNF_CPU_X86 && !defined(NNF_NO_DISPATCH)
#define NNF_ELEMENTWISE_SIMD 1
#if defined(__x86_64__)
#define NNF_PRODUCTS_SIMD 1
#else
#define NNF_PRODUCTS_SIMD 0
#endif
#if !defined(NNF_FASTMATH_USE_LIBM) && !(defined(__FLT_EVAL_METHOD__) && __FLT_EVAL_METHOD__ != 0)
#define NNF_FAST_MATH_SIMD 1
#else
#define NNF_FAST_MATH_SIMD 0
#endif
#else
#define NNF_ELEMENTWISE_SIMD 0
#define NNF_PRODUCTS_SIMD 0
#define NNF_FAST_MATH_SIMD 0
#endif

/* Code paths, narrowest first (a limit of p allows every path <= p). */
#define NNF_PATH_BASELINE 0
#define NNF_PATH_AVX2 1
#define NNF_PATH_AVX512 2
#define NNF_PATH_COUNT 3

#define NNF_FAMILY_PRODUCTS 0
#define NNF_FAMILY_FAST_MATH 1
#define NNF_FAMILY_ELEMENTWISE 2
#define NNF_FAMILY_COUNT 3

/* CPU features, each set only when the OS also saves the registers it uses. */
#define NNF_FEATURE_SSE2 (1u << 0)
#define NNF_FEATURE_AVX (1u << 1)
#define NNF_FEATURE_FMA (1u << 2)
#define NNF_FEATURE_AVX2 (1u << 3)
#define NNF_FEATURE_AVX512F (1u << 4)
#define NNF_FEATURE_AVX512DQ (1u << 5)
#define NNF_FEATURE_AVX512BW (1u << 6)
#define NNF_FEATURE_AVX512VL (1u << 7)
#define NNF_FEATURE_ASIMD (1u << 8) /* AArch64 NEON: every core has it (the baseline path) */
#define NNF_FEATURE_COUNT 9

/* Target attributes of each family's paths, and the features they need. */
#if defined(__clang__)
#define NNF__CONTRACT /* clang has no optimize attribute: -ffp-contract decides */
#else
/* FMA contraction for the fast math even under -std=c99/c11 or -ffp-contract=off (see
   fastmath.h: it is accurate either way, and ~40% faster with FMA). */
#define NNF__CONTRACT , optimize("fp-contract=fast")
#endif
#define NNF_TARGET_PRODUCTS_AVX2 __attribute__((target("avx2,fma")))
#define NNF_TARGET_PRODUCTS_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define NNF_TARGET_PRODUCTS_AVX512VL __attribute__((target("avx512f,avx512vl,avx2,fma")))
#define NNF_TARGET_FAST_MATH_AVX2 __attribute__((target("avx2,fma") NNF__CONTRACT))
#define NNF_TARGET_FAST_MATH_AVX512                                                           \
    __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma") NNF__CONTRACT))
#define NNF_TARGET_ELEMENTWISE_AVX2 __attribute__((target("avx2")))
#define NNF_TARGET_ELEMENTWISE_AVX512 __attribute__((target("avx512f")))

/* AArch64: NEON (Advanced SIMD) and its FMA are part of every core, so the NEON code is the
   baseline path, with no target attribute. gcc's pre-allocation scheduler hoists the 8
   op(A) loads of a k step above the FMAs of the products' 8 x 3 tile and spills
   accumulators (24 + 3 + 8 registers of 32); without that pass the tile stays in
   registers. The fast math fuses its multiply-adds there (contraction, as the AVX paths
   do). clang: no optimize attribute (its scheduler tracks register pressure; the fast
   math then follows -ffp-contract). */
#if defined(__aarch64__) && defined(__GNUC__) && !defined(__clang__)
#define NNF_TARGET_PRODUCTS_BASELINE __attribute__((optimize("no-schedule-insns")))
#define NNF_TARGET_FAST_MATH_BASELINE __attribute__((optimize("fp-contract=fast")))
#else
#define NNF_TARGET_PRODUCTS_BASELINE
#define NNF_TARGET_FAST_MATH_BASELINE
#endif

#define NNF__NOT_BUILT 0xffffffffu /* a path this build does not contain */
static const unsigned nnf__needs[NNF_FAMILY_COUNT][NNF_PATH_COUNT] = {
#if NNF_PRODUCTS_SIMD
    {0, NNF_FEATURE_AVX2 | NNF_FEATURE_FMA,
     NNF_FEATURE_AVX512F | NNF_FEATURE_AVX2 | NNF_FEATURE_FMA},
#else
    {0, NNF__NOT_BUILT, NNF__NOT_BUILT},
#endif
#if NNF_FAST_MATH_SIMD
    {0, NNF_FEATURE_AVX2 | NNF_FEATURE_FMA,
     NNF_FEATURE_AVX512F | NNF_FEATURE_AVX512DQ | NNF_FEATURE_AVX512BW | NNF_FEATURE_AVX512VL |
         NNF_FEATURE_AVX2 | NNF_FEATURE_FMA},
#else
    {0, NNF__NOT_BUILT, NNF__NOT_BUILT},
#endif
#if NNF_ELEMENTWISE_SIMD
    {0, NNF_FEATURE_AVX2, NNF_FEATURE_AVX512F},
#else
    {0, NNF__NOT_BUILT, NNF__NOT_BUILT},
#endif
};

typedef struct {
    char vendor[13];     /* "GenuineIntel", "AuthenticAMD", ... ("" if unknown) */
    char brand[49];      /* e.g. "AMD EPYC 9R14 96-Core Processor" ("" if unknown) */
    int family, model;   /* display family and model, as in /proc/cpuinfo (-1 if unknown) */
    int stepping;
    unsigned features;   /* NNF_FEATURE_* */
    int avx512_unit_bits; /* with AVX-512F: the width of the units that execute it, 256 on
                             AMD family 25 (Zen 4: each 512-bit operation takes two passes),
                             else 512; 0 without AVX-512F */
} nnf_cpu_info;

#if NNF_CPU_X86
/* XCR0: the register state the OS saves on a context switch. */
static inline unsigned long long nnf__xcr0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static inline void nnf__detect(nnf_cpu_info *cpu)
{
    unsigned a, b, c, d, max_leaf, base_family, i;
    unsigned long long xcr0 = 0;
    int ymm_saved, zmm_saved;
    if (!__get_cpuid(0, &max_leaf, &b, &c, &d)) return;
    memcpy(cpu->vendor, &b, 4);
    memcpy(cpu->vendor + 4, &d, 4);
    memcpy(cpu->vendor + 8, &c, 4);
    cpu->vendor[12] = '\0';
    __cpuid(1, a, b, c, d);
    base_family = (a >> 8) & 0xf;
    cpu->family = (int)(base_family + (base_family == 0xf ? (a >> 20) & 0xff : 0));
    cpu->model = (int)(((a >> 4) & 0xf) |
                       (base_family == 0x6 || base_family == 0xf ? ((a >> 16) & 0xf) << 4 : 0));
    cpu->stepping = (int)(a & 0xf);
    if (c & (1u << 27)) xcr0 = nnf__xcr0(); /* OSXSAVE: XGETBV is available */
    ymm_saved = (xcr0 & 0x6) == 0x6;        /* XMM and YMM state */
    zmm_saved = (xcr0 & 0xe6) == 0xe6;      /* ... and opmask, ZMM0-15 upper halves, ZMM16-31 */
    if (d & (1u << 26)) cpu->features |= NNF_FEATURE_SSE2;
    if (ymm_saved && (c & (1u << 28))) cpu->features |= NNF_FEATURE_AVX;
    if (ymm_saved && (c & (1u << 12))) cpu->features |= NNF_FEATURE_FMA;
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if (ymm_saved && (b & (1u << 5))) cpu->features |= NNF_FEATURE_AVX2;
        if (zmm_saved && (b & (1u << 16))) cpu->features |= NNF_FEATURE_AVX512F;
        if (zmm_saved && (b & (1u << 17))) cpu->features |= NNF_FEATURE_AVX512DQ;
        if (zmm_saved && (b & (1u << 30))) cpu->features |= NNF_FEATURE_AVX512BW;
        if (zmm_saved && (b & (1u << 31))) cpu->features |= NNF_FEATURE_AVX512VL;
    }
    if (cpu->features & NNF_FEATURE_AVX512F)
        cpu->avx512_unit_bits =
            !strcmp(cpu->vendor, "AuthenticAMD") && cpu->family == 25 ? 256 : 512;
    __cpuid(0x80000000u, a, b, c, d);
    if (a >= 0x80000004u) {
        unsigned regs[12];
        char *s = cpu->brand;
        for (i = 0; i < 3; i++)
            __cpuid(0x80000002u + i, regs[4 * i], regs[4 * i + 1], regs[4 * i + 2],
                    regs[4 * i + 3]);
        memcpy(cpu->brand, regs, 48);
        cpu->brand[48] = '\0';
        while (*s == ' ') s++; /* some CPUs pad the brand string on the left */
        memmove(cpu->brand, s, strlen(s) + 1);
    }
}
#endif

/* The CPU, detected on first use. Racing first calls detect the same values. */
static inline const nnf_cpu_info *nnf_cpu(void)
{
    static nnf_cpu_info cpu;
    static int detected = 0;
    if (!NNF__LOAD_ACQUIRE(detected)) {
        nnf_cpu_info found;
        memset(&found, 0, sizeof found);
        found.family = found.model = found.stepping = -1;
#if NNF_CPU_X86
        nnf__detect(&found);
#elif defined(__aarch64__) && defined(__ARM_NEON)
        found.features |= NNF_FEATURE_ASIMD; /* the compile flags' ISA runs here */
#endif
        cpu = found;
        NNF__STORE_RELEASE(detected, 1);
    }
    return &cpu;
}

static inline const char *nnf_path_name(int path)
{
    return path == NNF_PATH_AVX512 ? "avx512" : path == NNF_PATH_AVX2 ? "avx2" : "baseline";
}

static inline const char *nnf_feature_name(int bit)
{
    static const char *const names[NNF_FEATURE_COUNT] = {
        "sse2", "avx", "fma", "avx2", "avx512f", "avx512dq", "avx512bw", "avx512vl", "asimd"};
    return bit >= 0 && bit < NNF_FEATURE_COUNT ? names[bit] : "";
}

/* Can `family` run `path` here (built, and every feature its code is compiled for)? */
static inline int nnf_path_runs(int family, int path)
{
    const unsigned needs = nnf__needs[family][path];
    return needs != NNF__NOT_BUILT && (nnf_cpu()->features & needs) == needs;
}

/* The path `family` runs under `limit`: today the widest it can run. A choice by
   microarchitecture (what the CPU executes well, not only what it supports) goes here. */
static inline int nnf__preferred_path(int family, int limit)
{
    int path;
    for (path = limit; path > NNF_PATH_BASELINE; path--)
        if (nnf_path_runs(family, path)) return path;
    return NNF_PATH_BASELINE;
}

/* Path limit and each family's path, cached (-1: not chosen yet). Relaxed atomics: a
   race between first calls computes and stores the same values. */
static int nnf__path_limit = NNF_PATH_COUNT - 1;
static int nnf__family_path[NNF_FAMILY_COUNT] = {-1, -1, -1};

static NNF__COLD int nnf__choose_family_path(int family)
{
    const int path = nnf__preferred_path(family, NNF__LOAD_RELAXED(nnf__path_limit));
    NNF__STORE_RELAXED(nnf__family_path[family], path);
    return path;
}

/* The path `family` uses now. */
static inline int nnf_family_path(int family)
{
    const int path = NNF__LOAD_RELAXED(nnf__family_path[family]);
    return NNF__LIKELY(path >= 0) ? path : nnf__choose_family_path(family);
}

/* Entry points. Each entry point `name` of a family is a call through a function pointer,
 * name_ptr, that points at name_baseline, name_avx2 or name_avx512 -- a load and an
 * indirect call, as cheap as the PLT call of an ifunc. The pointers start at a resolver
 * that binds the whole family (its binder stores every pointer of the family for one path)
 * on the first call; the binder also registers itself here, so that nnf_set_path_limit
 * binds the family again.
 *
 *   NNF_ENTRY_POINT(family, binder, name, PARAMS, ARGS)   declares name_ptr and defines
 *       `static inline void name PARAMS`, which calls *name_ptr ARGS
 *   NNF_BIND_SIMD(name) / NNF_BIND_BASELINE(name)         in a binder's body (`path` in
 *       scope): point name_ptr at the variant of `path` / at name_baseline
 */
typedef void (*nnf_binder)(int path);
static nnf_binder nnf__binders[NNF_FAMILY_COUNT];

static NNF__COLD void nnf_bind_family(int family, nnf_binder binder)
{
    NNF__STORE_RELAXED(nnf__binders[family], binder);
    binder(nnf_family_path(family));
}

#define NNF_ENTRY_POINT(family, binder, name, PARAMS, ARGS)                                 \
    static void binder(int path);                                                          \
    static NNF__COLD void name##_resolve PARAMS;                                           \
    static void(*name##_ptr) PARAMS = name##_resolve;                                      \
    static inline void name PARAMS { NNF__LOAD_RELAXED(name##_ptr) ARGS; }                 \
    static NNF__COLD void name##_resolve PARAMS                                            \
    {                                                                                      \
        nnf_bind_family(family, binder);                                                   \
        NNF__LOAD_RELAXED(name##_ptr) ARGS;                                                \
    }
#define NNF_BIND_SIMD(name)                                                                 \
    NNF__STORE_RELAXED(name##_ptr, path == NNF_PATH_AVX512 ? &name##_avx512                \
                                   : path == NNF_PATH_AVX2 ? &name##_avx2                  \
                                                           : &name##_baseline);
#define NNF_BIND_BASELINE(name) NNF__STORE_RELAXED(name##_ptr, &name##_baseline);

/* Allow every path up to `limit` (NNF_PATH_*; out of range: no limit), choose each
   family's path again and bind the families already in use to it. */
static inline void nnf_set_path_limit(int limit)
{
    int family;
    if (limit < 0 || limit >= NNF_PATH_COUNT) limit = NNF_PATH_COUNT - 1;
    NNF__STORE_RELAXED(nnf__path_limit, limit);
    for (family = 0; family < NNF_FAMILY_COUNT; family++) {
        const int path = nnf__choose_family_path(family);
        const nnf_binder binder = NNF__LOAD_RELAXED(nnf__binders[family]);
        if (binder != NULL) binder(path);
    }
}

static inline int nnf_path_limit(void) { return NNF__LOAD_RELAXED(nnf__path_limit); }

/* The AVX-512 unit width the products plan for: as detected (nnf_cpu()->avx512_unit_bits),
   or as set by nnf_set_avx512_unit_bits (256 or 512; anything else: as detected). On 256-bit
   units the AVX-512 products give rows that take fewer 256-bit operations in ymm vectors
   to the AVX2 kernel (gemm_small.h), with the same bits. Setting it binds the products
   again; like the path limit, set it before kernels run in other threads. */
static int nnf__avx512_unit_bits_request = 0; /* 0: as detected */

/* What nnf_set_avx512_unit_bits last set: 256, 512, or 0 (as detected). */
static inline int nnf_avx512_unit_bits_request(void)
{
    return NNF__LOAD_RELAXED(nnf__avx512_unit_bits_request);
}

static inline int nnf_avx512_unit_bits(void)
{
    const int bits = nnf_avx512_unit_bits_request();
    return bits ? bits : nnf_cpu()->avx512_unit_bits;
}

static inline void nnf_set_avx512_unit_bits(int bits)
{
    nnf_binder binder;
    NNF__STORE_RELAXED(nnf__avx512_unit_bits_request, bits == 256 || bits == 512 ? bits : 0);
    binder = NNF__LOAD_RELAXED(nnf__binders[NNF_FAMILY_PRODUCTS]);
    if (binder != NULL) binder(nnf_family_path(NNF_FAMILY_PRODUCTS));
}

#endif /* NNF_CPU_H */
