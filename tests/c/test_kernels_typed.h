/* test_kernels_typed.h -- the tests of test_kernels.c for one dtype.
 *
 * Not a standalone header: test_kernels.c includes it once per dtype after defining TT (the
 * element type), TS (the kernels' suffix: d, f), TNAME, T_MANT (significand bits), T_TINY
 * (the smallest denormal), T_EPS, T_FMA (fma, fmaf), T_UNFUSED (a * b + c rounded twice)
 * and T_RANDOM() (a deterministic value in [-1, 1)); it undefines them at its end.
 */
#define TK_CAT2(a, b) a##b
#define TK_CAT(a, b) TK_CAT2(a, b)
#define TK(name) TK_CAT(name, TS) /* TK(nnf_gemm_) -> nnf_gemm_d */

enum { TK(DTYPE_) = sizeof(TT) == 8 ? 0 : 1 };

static int TK(same_)(TT a, TT b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Bit for bit when this file is compiled without contraction, else within 8 eps. */
static int TK(elementwise_close_)(TT got, TT want)
{
    const TT scale = fabs((double)want) > 1 ? (TT)fabs((double)want) : (TT)1;
    return exact_elementwise ? TK(same_)(got, want)
                             : fabs((double)got - (double)want) <= 8 * T_EPS * scale;
}

/* ---- products ---------------------------------------------------------------------- */

/* C[i, j] as ONE chain over p = 0..k-1 in order, started from acc. */
static TT TK(product_element_)(int fused, TT acc, const TT *A, ptrdiff_t a_row, ptrdiff_t a_col,
                               ptrdiff_t i, const TT *B, ptrdiff_t ldb, ptrdiff_t j, ptrdiff_t k)
{
    for (ptrdiff_t p = 0; p < k; p++) {
        const TT a = A[i * a_row + p * a_col], b = B[p * ldb + j];
        acc = fused ? T_FMA(a, b, acc) : T_UNFUSED(a, b, acc);
    }
    return acc;
}

#define TK_SENTINEL ((TT)1234.5)

/* One product C (m x n) (+)= op(A) @ B on the current path: NN (trans 0, A m x k with row
   stride lda) or TN (trans 1, A k x m, op(A) = A^T); B k x n with row stride ldb; C with
   row stride n + c_padding. Every buffer is exactly as long as its last element needs (a sanitized
   build catches any read or write past it); C's padding must stay untouched. */
/* epilogue (nnf_gemm_ex_*): bit 1 a bias row (the chains start from b[j], overriding
   accumulate), bit 2 tanh's backward C * (1 - a^2) with a laid out as C; 0: nnf_gemm_. */
static void TK(check_product_ep_)(int path, int trans, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                  ptrdiff_t lda, ptrdiff_t ldb, int accumulate, int epilogue,
                                  uint64_t *digest)
{
    const int fused = products_fuse(path);
    const ptrdiff_t ldc = n + c_padding;
    const ptrdiff_t a_len = trans ? (k ? (k - 1) * lda + m : 1) : (m - 1) * lda + (k ? k : 1);
    const ptrdiff_t b_len = k ? (k - 1) * ldb + n : 1, c_len = (m - 1) * ldc + n;
    const ptrdiff_t a_row = trans ? 1 : lda, a_col = trans ? lda : 1;
    TT *A = malloc(sizeof(TT) * a_len), *B = malloc(sizeof(TT) * b_len);
    TT *C = malloc(sizeof(TT) * c_len), *C0 = malloc(sizeof(TT) * c_len);
    TT *bias = malloc(sizeof(TT) * n), *act = malloc(sizeof(TT) * c_len);
    ptrdiff_t i, j, bad = 0;
    for (i = 0; i < a_len; i++) A[i] = T_RANDOM();
    for (i = 0; i < b_len; i++) B[i] = T_RANDOM();
    for (i = 0; i < c_len; i++) C0[i] = i % ldc < n && accumulate ? T_RANDOM() : TK_SENTINEL;
    /* (drawn only for an epilogue: the plain products see the inputs, and give the digest,
       they always did) */
    for (j = 0; j < n && epilogue; j++) bias[j] = T_RANDOM();
    for (i = 0; i < c_len && epilogue; i++) act[i] = T_RANDOM();
    memcpy(C, C0, sizeof(TT) * c_len);
    if (epilogue)
        TK(nnf_gemm_ex_)(m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate,
                         epilogue & 1 ? bias : NULL, epilogue & 2 ? act : NULL);
    else
        TK(nnf_gemm_)(m, n, k, A, a_row, a_col, B, ldb, C, ldc, accumulate);
    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            const TT start = epilogue & 1 ? bias[j] : accumulate ? C0[i * ldc + j] : (TT)0;
            TT want = TK(product_element_)(fused, start, A, a_row, a_col, i, B, ldb, j, k);
            int ok;
            if (epilogue & 2) {
                const TT a = act[i * ldc + j];
                want = want * ((TT)1 - a * a);
                ok = TK(elementwise_close_)(C[i * ldc + j], want);
            } else {
                ok = TK(same_)(C[i * ldc + j], want);
            }
            if (!ok && bad++ < 3)
                CHECK(0, "%s %s gemm %s m=%td n=%td k=%td lda=%td ldb=%td acc=%d ep=%d: "
                      "C[%td,%td] = %a, one %s chain gives %a", TNAME, path_label(path),
                      trans ? "TN" : "NN", m, n, k, lda, ldb, accumulate, epilogue, i, j,
                      (double)C[i * ldc + j], fused ? "fused" : "unfused", (double)want);
        }
        for (j = n; j < ldc && i * ldc + j < c_len; j++)
            CHECK(TK(same_)(C[i * ldc + j], TK_SENTINEL), "%s %s gemm m=%td n=%td k=%td wrote "
                  "padding C[%td,%td]", TNAME, path_label(path), m, n, k, i, j);
    }
    n_checks++;
    if (digest) *digest = digest_bytes(*digest, C, sizeof(TT) * c_len);
    free(A);
    free(B);
    free(C);
    free(C0);
    free(bias);
    free(act);
}

static void TK(check_product_)(int path, int trans, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                               ptrdiff_t lda, ptrdiff_t ldb, int accumulate, uint64_t *digest)
{
    TK(check_product_ep_)(path, trans, m, n, k, lda, ldb, accumulate, 0, digest);
}

/* The products with an epilogue (bias start, tanh's backward, both) on every kernel the
   plain products have: each element is still one chain, started from b[j]. */
static void TK(test_products_ex_)(int path)
{
    static const ptrdiff_t ms[] = {1, 3, 8, 13, 32};
    static const ptrdiff_t ns[] = {1, 2, 3, 5, 17, 20, 25};
    static const ptrdiff_t ks[] = {1, 3, 20};
    const ptrdiff_t page = 4096 / (ptrdiff_t)sizeof(TT), half_page = 2048 / (ptrdiff_t)sizeof(TT);
    const ptrdiff_t wide_n = 7 * (64 / (ptrdiff_t)sizeof(TT)); /* 7 AVX-512 vectors per row */
    for (int ep = 1; ep <= 3; ep++) {
        for (size_t a = 0; a < sizeof ms / sizeof *ms; a++)
            for (size_t b = 0; b < sizeof ns / sizeof *ns; b++)
                for (size_t c = 0; c < sizeof ks / sizeof *ks; c++) {
                    const ptrdiff_t m = ms[a], n = ns[b], k = ks[c];
                    const int accumulate = (int)((a + b + c) % 2);
                    TK(check_product_ep_)(path, 0, m, n, k, k + 1, n, accumulate, ep, NULL);
                    TK(check_product_ep_)(path, 1, m, n, k, m + 1, n, accumulate, ep, NULL);
                }
        TK(check_product_ep_)(path, 0, 5, 7, 0, 3, 7, ep % 2, ep, NULL);    /* k == 0 */
        TK(check_product_ep_)(path, 0, 1, 300, 17, 17, 300, 0, ep, NULL);   /* m == 1 wide */
        TK(check_product_ep_)(path, 1, 65, 1, 17, 65, 1, 1, ep, NULL);      /* TN tiny n */
        TK(check_product_ep_)(path, 0, 20, page - 12, 64, 64, page, 0, ep, NULL); /* packed */
        TK(check_product_ep_)(path, 0, 9, 2 * page / 9 * 4, 300, 300, 2 * page / 9 * 4, 1, ep,
                              NULL); /* k blocks: bias in the first, the epilogue in the last */
        TK(check_product_ep_)(path, 0, 9, 2 * page / 9 * 4, 1200, 1200, 2 * page / 9 * 4,
                              ep % 2, ep, NULL); /* idem past the AVX-512 threshold (4 MiB) */
        TK(check_product_ep_)(path, 0, 300, 20, 128, 128, 20, 0, ep, NULL); /* row blocks */
        TK(check_product_ep_)(path, 1, 20, 20, 300, 20, 20, ep % 2, ep,
                              NULL); /* TN over 300 rows (AVX-512 on 256-bit units: zmm) */
        TK(check_product_ep_)(path, 0, 70, half_page - 3, 65, 65, half_page, ep % 2, ep,
                              NULL); /* B packed at a 2 KiB stride */
        TK(check_product_ep_)(path, 1, half_page - 5, wide_n + 3, 70, half_page,
                              wide_n + 3, 0, ep, NULL); /* op(A) packed (TN) */
    }
}

static void TK(test_products_)(void)
{
    static const ptrdiff_t ms[] = {1, 2, 3, 7, 8, 9, 12, 13, 17, 25, 65};
    static const ptrdiff_t ns[] = {1, 2, 3, 4, 5, 7, 8, 17, 24, 25, 65};
    static const ptrdiff_t ks[] = {1, 3, 17, 65};
    const ptrdiff_t page = 4096 / (ptrdiff_t)sizeof(TT), half_page = 2048 / (ptrdiff_t)sizeof(TT);
    const ptrdiff_t wide_n = 7 * (64 / (ptrdiff_t)sizeof(TT)); /* 7 AVX-512 vectors per row */
    for (int variant = 0; variant < PRODUCT_VARIANTS; variant++) {
        const int path = variant_path(variant);
        const long before = n_checks;
        uint64_t digest = DIGEST_START;
        if (!use_product_variant(variant)) continue;
        rng_state = 0x9e3779b97f4a7c15u + (uint64_t)TK(DTYPE_); /* same inputs on every path */
        for (size_t a = 0; a < sizeof ms / sizeof *ms; a++)
            for (size_t b = 0; b < sizeof ns / sizeof *ns; b++)
                for (size_t c = 0; c < sizeof ks / sizeof *ks; c++) {
                    const ptrdiff_t m = ms[a], n = ns[b], k = ks[c];
                    const int accumulate = (int)((a + b + c) % 2);
                    /* NN with padded rows of A and B; TN with lda = m + 1; both accumulate */
                    TK(check_product_)(path, 0, m, n, k, k + 1, n + (c % 2), accumulate, &digest);
                    TK(check_product_)(path, 1, m, n, k, m + 1, n, !accumulate, &digest);
                }
        /* k == 0: C = 0, or C unchanged */
        TK(check_product_)(path, 0, 5, 7, 0, 3, 7, 0, &digest);
        TK(check_product_)(path, 1, 5, 7, 0, 6, 7, 1, &digest);
        /* m == 1 and wide B: the single-row kernel and its leftover columns */
        TK(check_product_)(path, 0, 1, 300, 17, 17, 300, 0, &digest);
        TK(check_product_)(path, 1, 1, 130, 5, 1, 131, 1, &digest);
        TK(check_product_)(path, 0, 1, 64, 3, 3, 64, 1, &digest);
        /* TN with tiny n: the transposed kernel */
        TK(check_product_)(path, 1, 65, 1, 17, 65, 1, 0, &digest);
        TK(check_product_)(path, 1, 300, 2, 9, 301, 2, 1, &digest);
        TK(check_product_)(path, 1, 40, 3, 20, 40, 3, 0, &digest);
        TK(check_product_)(path, 1, 100, 8, 3, 100, 8, 1, &digest);
        /* B rows 4 KiB apart: packed B panels */
        TK(check_product_)(path, 0, 20, page - 12, 64, 64, page, 0, &digest);
        TK(check_product_)(path, 1, 17, page, 70, 17, page, 1, &digest);
        /* B larger than the k-block threshold: k blocks continue from the stored C */
        TK(check_product_)(path, 0, 9, 2 * page / 9 * 4, 300, 300, 2 * page / 9 * 4, 0, &digest);
        /* TN with op(A) rows 2 KiB apart: k blocks of 128 */
        TK(check_product_)(path, 1, 20, 7, 200, half_page, 7, 1, &digest);
        /* op(A) larger than its L2 block: row blocks */
        TK(check_product_)(path, 0, 300, 20, 128, 128, 20, 0, &digest);
        /* one contiguous column (C's rows back to back): TN runs the single-row kernel on
           C^T; m == 1 with every vector of the row in one pass */
        c_padding = 0;
        for (ptrdiff_t m = 2; m <= 300; m += m < 40 ? 1 : 37) {
            TK(check_product_)(path, 1, m, 1, 32, m + 1, 1, (int)(m % 2), NULL);
            TK(check_product_)(path, 0, m, 1, 20, 21, 1, (int)(m % 2), NULL);
            TK(check_product_)(path, 0, 1, m, 32, 32, m, (int)(m % 2), NULL);
            TK(check_product_)(path, 1, 1, m, 32, 1, m + 2, (int)(m % 2), NULL);
        }
        TK(check_product_)(path, 1, 20, 1, 3000, 20, 1, 1, NULL); /* TN, k-blocked sizes */
        /* B larger than the AVX-512 kernels' k-block threshold too (4 MiB), after the
           digest's products (their inputs stay those of every earlier digest) */
        TK(check_product_)(path, 0, 9, 2 * page / 9 * 4, 1200, 1200, 2 * page / 9 * 4, 1, NULL);
        /* packed operands (nnf__pack_b, and op(A) in _run): B rows 4 KiB apart with enough rows
           of C, B rows 2 KiB apart, and TN with op(A) rows 2 KiB apart and at least 7
           vectors per C row: one row block, k blocks of 128, and row blocks of op(A) */
        TK(check_product_)(path, 0, 40, page - 12, 64, 64, page, 1, NULL);
        TK(check_product_)(path, 0, 70, half_page - 3, 65, 65, half_page, 0, NULL);
        TK(check_product_)(path, 1, 40, page, 70, 40, page, 0, NULL);
        TK(check_product_)(path, 1, half_page - 5, wide_n + 3, 70, half_page,
                           wide_n + 3, 1, NULL);
        TK(check_product_)(path, 1, 37, wide_n + 5, 300, half_page,
                           wide_n + 5, 0, NULL);
        TK(check_product_)(path, 1, 2 * half_page - 1, 50, 129, 2 * half_page, 50, 1, NULL);
        /* op(A) one value for every p (a_col = 0): the column sums of the bias gradients */
        for (ptrdiff_t n = 1; n <= 300; n += n < 24 ? 1 : 41)
            TK(check_product_)(path, 1, 1, n, 32, 0, n, (int)(n % 2), NULL);
        c_padding = 3;
        TK(test_products_ex_)(path);
        /* the transpose of matmul_nt (4 x 4 blocks, 64-column blocks, tails) */
        for (ptrdiff_t rows = 1; rows <= 70; rows += rows < 9 ? 1 : 19)
            for (ptrdiff_t cols = 1; cols <= 140; cols += cols < 9 ? 1 : 29) {
                TT *in = malloc(sizeof(TT) * rows * cols), *out = malloc(sizeof(TT) * rows * cols);
                ptrdiff_t bad = 0;
                for (ptrdiff_t i = 0; i < rows * cols; i++) in[i] = T_RANDOM();
                TK(nnf_transpose_)(out, in, rows, cols);
                for (ptrdiff_t i = 0; i < rows; i++)
                    for (ptrdiff_t j = 0; j < cols; j++)
                        bad += !TK(same_)(out[j * rows + i], in[i * cols + j]);
                CHECK(bad == 0, "%s %s transpose %td x %td: %td values misplaced", TNAME,
                      path_label(path), rows, cols, bad);
                n_checks++;
                free(in);
                free(out);
            }
        printf("products     %7ld checks  %s %s\n", n_checks - before, TNAME,
               variant_label(variant));
        if (products_fuse(path)) {
            if (fused_products_digest_set & (1 << TK(DTYPE_)))
                CHECK(digest == fused_digest[TK(DTYPE_)], "%s products on %s differ from the "
                      "other fused path", TNAME, variant_label(variant));
            fused_digest[TK(DTYPE_)] = digest;
            fused_products_digest_set |= 1 << TK(DTYPE_);
        }
    }
    nnf_set_avx512_unit_bits(0);
    nnf_set_path_limit(-1);
}

/* ---- fast math ------------------------------------------------------------------------ */

#define TK_ALPHA ((TT)0.7)
static void TK(elu_)(TT *out, const TT *in, ptrdiff_t n) { TK(nnf_elu_)(out, in, n, TK_ALPHA); }
static long double TK(ref_elu_)(long double x) { return ref_elu(x, (long double)TK_ALPHA); }

static void TK(test_fast_math_)(void)
{
    static const ptrdiff_t sizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 100, 1000};
    void (*const kernels[4])(TT *, const TT *, ptrdiff_t) = {TK(nnf_tanh_), TK(nnf_sigmoid_),
                                                             TK(nnf_exp_), TK(elu_)};
    long double (*const refs[4])(long double) = {tanhl, ref_sigmoid, expl, TK(ref_elu_)};
    static const char *const names[4] = {"tanh", "sigmoid", "exp", "elu"};
    /* input scale: past tanh's saturation, exp's overflow and (gradual) underflow */
    const double scales[4] = {25, sizeof(TT) == 8 ? 800 : 120, sizeof(TT) == 8 ? 760 : 110, 50};
    const TT specials[] = {NAN, INFINITY, -INFINITY, 0, -(TT)0, T_TINY, -T_TINY,
                           sizeof(TT) == 8 ? (TT)DBL_MAX : (TT)FLT_MAX, (TT)-1e-30, (TT)3e-5};
    const size_t n_specials = sizeof specials / sizeof *specials;
    uint64_t digests[NNF_PATH_COUNT];
    int ran[NNF_PATH_COUNT] = {0};
    TT *in = malloc(sizeof(TT) * 1000), *out = malloc(sizeof(TT) * 1008);
    TT *again = malloc(sizeof(TT) * 1000), one;
    for (int path = 0; path < NNF_PATH_COUNT; path++) {
        const long before = n_checks;
        long double worst[4] = {0, 0, 0, 0};
        if (!use_path(NNF_FAMILY_FAST_MATH, path)) continue;
        digests[path] = DIGEST_START;
        ran[path] = 1;
        rng_state = 0x2545f4914f6cdd1du + (uint64_t)TK(DTYPE_);
        for (int f = 0; f < 4; f++) {
            for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
                const ptrdiff_t n = sizes[s];
                size_t special = 0;
                for (ptrdiff_t i = 0; i < n; i++) {
                    const TT x = T_RANDOM();
                    /* a quarter near 0, where the relative accuracy is hardest */
                    in[i] = i % 4 == 3 ? (TT)(x * 1e-3) : (TT)(x * scales[f]);
                    if (i % 11 == 5) in[i] = specials[special++ % n_specials];
                }
                for (ptrdiff_t i = 0; i < n + 8; i++) out[i] = TK_SENTINEL;
                kernels[f](out, in, n);
                for (ptrdiff_t i = 0; i < n; i++) {
                    const long double want = refs[f]((long double)in[i]);
                    /* beyond the type's range: the result must overflow to infinity */
                    const long double err = isinf((TT)want) ? (out[i] == (TT)want ? 0 : INFINITY)
                                                            : ulps(out[i], want, T_MANT, T_TINY);
                    if (err > worst[f]) worst[f] = err;
                    CHECK(err <= 3, "%s %s %s(%a) = %a, libm %La: %.2Lf ulp", TNAME,
                          path_label(path), names[f], (double)in[i], (double)out[i], want, err);
                    if (want == 0 || out[i] == 0)
                        CHECK(out[i] == 0 && !signbit(out[i]) == !signbit(want), "%s %s %s(%a) "
                              "= %a, want %La", TNAME, path_label(path), names[f],
                              (double)in[i], (double)out[i], want);
                    kernels[f](&one, in + i, 1); /* alone: the tail code */
                    CHECK(TK(same_)(one, out[i]), "%s %s %s(%a): %a at %td of %td, %a alone",
                          TNAME, path_label(path), names[f], (double)in[i], (double)out[i], i,
                          n, (double)one);
                }
                for (ptrdiff_t i = n; i < n + 8; i++)
                    CHECK(TK(same_)(out[i], TK_SENTINEL), "%s %s %s n=%td wrote out[%td]", TNAME,
                          path_label(path), names[f], n, i);
                memcpy(again, in, sizeof(TT) * n);
                kernels[f](again, again, n); /* in place */
                CHECK(memcmp(again, out, sizeof(TT) * n) == 0, "%s %s %s n=%td: in place "
                      "differs", TNAME, path_label(path), names[f], n);
                digests[path] = digest_bytes(digests[path], out, sizeof(TT) * n);
            }
        }
        printf("fast_math    %7ld checks  %s %s  worst ulp: tanh %.2Lf sigmoid %.2Lf exp %.2Lf "
               "elu %.2Lf\n", n_checks - before, TNAME, path_label(path), worst[0], worst[1],
               worst[2], worst[3]);
    }
    /* AVX2 and AVX-512 both fuse, in the same order */
    if (ran[NNF_PATH_AVX2] && ran[NNF_PATH_AVX512])
        CHECK(digests[NNF_PATH_AVX2] == digests[NNF_PATH_AVX512], "%s fast math: avx2 and "
              "avx512 differ", TNAME);
    nnf_set_path_limit(-1);
    free(in);
    free(out);
    free(again);
}

/* ---- elementwise loops ---------------------------------------------------------------- */

static void TK(fill_random_)(TT *x, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) x[i] = T_RANDOM();
}

static void TK(test_elementwise_)(void)
{
    static const ptrdiff_t sizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 65, 100};
    enum { CAP = 100 + 8 };
    TT A[CAP], dA[CAP], dZ[CAP], want[CAP], p[CAP], v[CAP], m[CAP], g[CAP];
    TT p0[CAP], v0[CAP], m0[CAP];
    const TT lr = (TT)0.01, mu = (TT)0.9, b1 = (TT)0.9, b2 = (TT)0.999, c1 = (TT)0.1,
             c2 = (TT)0.001, eps = (TT)1e-8;
    for (int path = 0; path < NNF_PATH_COUNT; path++) {
        const long before = n_checks;
        if (!use_path(NNF_FAMILY_ELEMENTWISE, path)) continue;
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            const ptrdiff_t n = sizes[s];
            ptrdiff_t i;
            TK(fill_random_)(A, n);
            TK(fill_random_)(dA, n);
            for (int kind = 0; kind < 2; kind++) { /* tanh, sigmoid backward */
                for (i = 0; i < n; i++)
                    want[i] = kind == 0 ? dA[i] * ((TT)1 - A[i] * A[i])
                                        : dA[i] * A[i] * ((TT)1 - A[i]);
                for (int inplace = 0; inplace < 2; inplace++) {
                    for (i = 0; i < n + 8; i++) dZ[i] = inplace && i < n ? dA[i] : TK_SENTINEL;
                    if (kind == 0) TK(nnf_tanh_backward_)(dZ, A, inplace ? dZ : dA, n);
                    else TK(nnf_sigmoid_backward_)(dZ, A, inplace ? dZ : dA, n);
                    for (i = 0; i < n; i++)
                        CHECK(TK(elementwise_close_)(dZ[i], want[i]), "%s %s %s_backward%s n=%td "
                              "i=%td: %a != %a", TNAME, path_label(path), kind ? "sigmoid" : "tanh",
                              inplace ? " in place" : "", n, i, (double)dZ[i], (double)want[i]);
                    for (; i < n + 8; i++)
                        CHECK(TK(same_)(dZ[i], TK_SENTINEL), "%s backward n=%td wrote %td", TNAME, n, i);
                }
            }
            for (int nesterov = 0; nesterov < 2; nesterov++) {
                TK(fill_random_)(p0, n);
                TK(fill_random_)(v0, n);
                TK(fill_random_)(g, n);
                memcpy(p, p0, sizeof(TT) * n);
                memcpy(v, v0, sizeof(TT) * n);
                TK(nnf_sgd_update_)(p, v, g, n, lr, mu, nesterov);
                for (i = 0; i < n; i++) {
                    const TT vi = mu * v0[i] - lr * g[i];
                    const TT pi = p0[i] + (nesterov ? mu * vi - lr * g[i] : vi);
                    CHECK(TK(elementwise_close_)(v[i], vi) && TK(elementwise_close_)(p[i], pi),
                          "%s %s sgd nesterov=%d n=%td i=%td", TNAME, path_label(path), nesterov, n, i);
                }
            }
            TK(fill_random_)(p0, n);
            TK(fill_random_)(m0, n);
            TK(fill_random_)(v0, n);
            TK(fill_random_)(g, n);
            for (i = 0; i < n; i++) v0[i] = v0[i] * v0[i]; /* second moments are >= 0 */
            memcpy(p, p0, sizeof(TT) * n);
            memcpy(m, m0, sizeof(TT) * n);
            memcpy(v, v0, sizeof(TT) * n);
            TK(nnf_adam_update_)(p, m, v, g, n, lr, b1, b2, c1, c2, eps);
            for (i = 0; i < n; i++) {
                const TT mi = b1 * m0[i] + c1 * g[i], vi = b2 * v0[i] + c2 * g[i] * g[i];
                const TT pi = p0[i] - lr * mi / ((TT)sqrt((double)vi) + eps);
                CHECK(TK(elementwise_close_)(m[i], mi) && TK(elementwise_close_)(v[i], vi) &&
                          TK(elementwise_close_)(p[i], pi),
                      "%s %s adam n=%td i=%td: p %a != %a", TNAME, path_label(path), n, i,
                      (double)p[i], (double)pi);
            }
        }
        /* rows x cols: fill_rows and add_column_sums */
        for (ptrdiff_t rows = 1; rows <= 17; rows += 8) {
            for (size_t s = 0; s < 6; s++) {
                const ptrdiff_t cols = sizes[s * 2];
                TT *Z = malloc(sizeof(TT) * (rows * cols + 8)), *D = malloc(sizeof(TT) * rows * cols);
                TT b[CAP], sums[CAP], sums0[CAP];
                ptrdiff_t i, j;
                TK(fill_random_)(b, cols);
                TK(fill_random_)(D, rows * cols);
                TK(fill_random_)(sums0, cols);
                for (i = 0; i < rows * cols + 8; i++) Z[i] = TK_SENTINEL;
                TK(nnf_fill_rows_)(Z, b, rows, cols);
                for (i = 0; i < rows * cols; i++)
                    CHECK(TK(same_)(Z[i], b[i % cols]), "%s fill_rows %tdx%td at %td", TNAME, rows, cols, i);
                for (; i < rows * cols + 8; i++)
                    CHECK(TK(same_)(Z[i], TK_SENTINEL), "%s fill_rows wrote %td", TNAME, i);
                memcpy(sums, sums0, sizeof(TT) * cols);
                TK(nnf_add_column_sums_)(sums, D, rows, cols);
                for (j = 0; j < cols; j++) {
                    TT s_j = sums0[j];
                    for (i = 0; i < rows; i++) s_j += D[i * cols + j]; /* row after row */
                    CHECK(TK(same_)(sums[j], s_j), "%s add_column_sums %tdx%td col %td", TNAME,
                          rows, cols, j);
                }
                free(Z);
                free(D);
            }
        }
        printf("elementwise  %7ld checks  %s %s\n", n_checks - before, TNAME, path_label(path));
    }
    nnf_set_path_limit(-1);
}

/* ---- one sample's SGD step ---------------------------------------------------------- */

/* The general path's step (nnfast/_network.pyx, then the optimizer's pass) from the entry
   points: forward with the bias in the product, MSE, per layer dW (k = 1), db (1^T dZ), dA
   as W @ dZ^T (with tanh's backward in the epilogue), then SGD over every parameter. */
static double TK(general_row_step_)(ptrdiff_t n_layers, const ptrdiff_t *table,
                                     ptrdiff_t scratch, ptrdiff_t max_width, TT *p, TT *v,
                                     TT *g, const TT *x, const TT *y, double w, double inv,
                                     TT lr, TT mu, int nesterov, ptrdiff_t n_params, TT *ws)
{
    static const TT one = 1;
    const ptrdiff_t *last = table + (n_layers - 1) * NNF_ROW_FIELDS;
    const ptrdiff_t n_out = last[NNF_ROW_WIDTH];
    const TT *inp = x;
    TT *dZ = ws + scratch, *dA = dZ + max_width, *swap;
    double scale = inv / (double)n_out, row = 0, total = 0;
    ptrdiff_t l, j, q;
    for (l = 0; l < n_layers; l++) {
        const ptrdiff_t *L = table + l * NNF_ROW_FIELDS;
        const ptrdiff_t k = L[NNF_ROW_N_IN], n = L[NNF_ROW_WIDTH];
        TT *Z = ws + L[NNF_ROW_Z], *A = ws + L[NNF_ROW_A];
        TK(nnf_gemm_ex_)(1, n, k, inp, k, 1, p + L[NNF_ROW_W], n, Z, n, 0, p + L[NNF_ROW_B], NULL);
        if (L[NNF_ROW_ACT] == NNF_ROW_TANH) TK(nnf_tanh_)(A, Z, n);
        if (L[NNF_ROW_ACT] == NNF_ROW_RELU)
            for (j = 0; j < n; j++) A[j] = Z[j] <= 0 ? (TT)0 : Z[j];
        inp = A;
    }
    for (j = 0; j < n_out; j++) {
        const double d = (TT)(inp[j] - y[j]);
        row += d * d;
        dZ[j] = (TT)(2 * w * scale * d);
    }
    total += w * row;
    for (l = n_layers - 1; l >= 0; l--) {
        const ptrdiff_t *L = table + l * NNF_ROW_FIELDS;
        const ptrdiff_t m = L[NNF_ROW_N_IN], n = L[NNF_ROW_WIDTH];
        const ptrdiff_t *below = l > 0 ? L - NNF_ROW_FIELDS : NULL;
        const TT *W = p + L[NNF_ROW_W];
        inp = below ? ws + below[NNF_ROW_A] : x;
        TK(nnf_gemm_)(m, n, 1, inp, 1, m, dZ, n, g + L[NNF_ROW_W], n, 0);
        TK(nnf_gemm_)(1, n, 1, &one, 0, 0, dZ, n, g + L[NNF_ROW_B], n, 0);
        if (below) {
            if (below[NNF_ROW_ACT] == NNF_ROW_TANH) {
                TK(nnf_gemm_ex_)(m, 1, n, W, n, 1, dZ, 1, dA, 1, 0, NULL, inp);
            } else {
                TK(nnf_gemm_)(m, 1, n, W, n, 1, dZ, 1, dA, 1, 0);
                if (below[NNF_ROW_ACT] == NNF_ROW_RELU)
                    for (q = 0; q < m; q++) dA[q] = ws[below[NNF_ROW_Z] + q] > 0 ? dA[q] : (TT)0;
            }
        }
        swap = dZ;
        dZ = dA;
        dA = swap;
    }
    TK(nnf_sgd_update_)(p, v, g, n_params, lr, mu, nesterov);
    return total * scale;
}

/* nnf_sgd_row_step against the general step, bit for bit, on every path whose products
   fuse (nnf_row_step_runs), for networks of identity, tanh and relu layers of odd sizes,
   plain SGD, momentum and Nesterov, weighted samples, several steps in a row. */
static void TK(test_row_step_)(void)
{
    static const ptrdiff_t nets[][6] = {{4, 1, 20, 20, 1}, {4, 3, 17, 65, 2}, {2, 1, 1},
                                        {5, 2, 9, 7, 33, 3}};
    static const int acts[][5] = {{NNF_ROW_TANH, NNF_ROW_TANH, NNF_ROW_IDENTITY},
                                  {NNF_ROW_RELU, NNF_ROW_TANH, NNF_ROW_IDENTITY},
                                  {NNF_ROW_IDENTITY},
                                  {NNF_ROW_TANH, NNF_ROW_RELU, NNF_ROW_IDENTITY, NNF_ROW_IDENTITY}};
    enum { MAXP = 4096, MAXW = 4096 };
    static TT p1[MAXP], v1[MAXP], p2[MAXP], v2[MAXP], g[MAXP], ws1[MAXW], ws2[MAXW];
    for (int variant = 0; variant < PRODUCT_VARIANTS; variant++) {
        const long before = n_checks;
        if (!use_product_variant(variant) || !nnf_row_step_runs()) continue;
        for (size_t t = 0; t < sizeof nets / sizeof *nets; t++) {
            const ptrdiff_t n_layers = nets[t][0] - 1, *sizes = nets[t] + 1;
            ptrdiff_t table[4 * NNF_ROW_FIELDS], offset = 0, per_row = 0, max_width = 0;
            for (ptrdiff_t l = 0; l < n_layers; l++) { /* nnfast/_network.pyx's layout */
                ptrdiff_t *L = table + l * NNF_ROW_FIELDS;
                L[NNF_ROW_N_IN] = sizes[l];
                L[NNF_ROW_WIDTH] = sizes[l + 1];
                L[NNF_ROW_W] = offset;
                L[NNF_ROW_B] = offset + sizes[l] * sizes[l + 1];
                offset += (sizes[l] + 1) * sizes[l + 1];
                L[NNF_ROW_ACT] = acts[t][l];
                L[NNF_ROW_Z] = per_row;
                per_row += sizes[l + 1];
                L[NNF_ROW_A] = L[NNF_ROW_Z];
                if (acts[t][l] != NNF_ROW_IDENTITY) {
                    L[NNF_ROW_A] = per_row;
                    per_row += sizes[l + 1];
                }
                if (sizes[l] > max_width) max_width = sizes[l];
                if (sizes[l + 1] > max_width) max_width = sizes[l + 1];
            }
            for (int opt = 0; opt < 3; opt++) { /* plain, momentum, Nesterov */
                const TT lr = (TT)0.05, mu = opt ? (TT)0.9 : (TT)0;
                TK(fill_random_)(p1, offset);
                TK(fill_random_)(v1, offset);
                memcpy(p2, p1, (size_t)offset * sizeof(TT));
                memcpy(v2, v1, (size_t)offset * sizeof(TT));
                for (int step = 0; step < 5; step++) {
                    TT x[8], y[8];
                    const double w = step == 2 ? 0.0 : 0.25 + step, inv = 1.0 / (w + 1.0);
                    TK(fill_random_)(x, sizes[0]);
                    TK(fill_random_)(y, sizes[n_layers]);
                    if (step == 1) x[0] = 0; /* zero products: gradients of +-0 */
                    const double got = TK(nnf_sgd_row_step_)(n_layers, table, per_row, max_width,
                                                            p1, v1, x, y, w, inv, (double)lr,
                                                            (double)mu, opt == 2, ws1);
                    const double want = TK(general_row_step_)(n_layers, table, per_row, max_width,
                                                              p2, v2, g, x, y, w, inv, lr, mu,
                                                              opt == 2, offset, ws2);
                    CHECK(got == want, "%s %s row step net %zu opt %d step %d: loss %a != %a",
                          TNAME, variant_label(variant), t, opt, step, got, want);
                    CHECK(memcmp(p1, p2, (size_t)offset * sizeof(TT)) == 0 &&
                              memcmp(v1, v2, (size_t)offset * sizeof(TT)) == 0,
                          "%s %s row step net %zu opt %d step %d: parameters differ", TNAME,
                          variant_label(variant), t, opt, step);
                }
            }
        }
        printf("row step     %7ld checks  %s %s\n", n_checks - before, TNAME,
               variant_label(variant));
    }
    nnf_set_avx512_unit_bits(0);
    nnf_set_path_limit(-1);
}

#undef TK_ALPHA
#undef TK_SENTINEL
#undef TK
#undef TK_CAT
#undef TK_CAT2
#undef TT
#undef TS
#undef TNAME
#undef T_MANT
#undef T_TINY
#undef T_EPS
#undef T_FMA
#undef T_UNFUSED
#undef T_RANDOM
