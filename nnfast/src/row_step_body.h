/* row_step_body.h -- nnf_sgd_row_step for one dtype (see row_step.h).
 *
 * Not a standalone header: row_step.h includes it once per dtype after defining
 *   NNF_T          the element type (double, float)
 *   NNF_RS_FMA     its fused multiply-add (fma, fmaf)
 *   NNF_RS_SUFFIX  the name suffix (_d, _f)
 *   NNF_RS_TANH    the bound tanh of fastmath.h (nnf_tanh_d, nnf_tanh_f)
 * and it undefines them at its end.
 */
#define NNF_RS_FN(name) NNF__RS_CAT(name, NNF_RS_SUFFIX)

/* Columns of Z per block of the forward pass: 4 AVX2 vectors of accumulators. */
#define NNF__RS_NB ((ptrdiff_t)(128 / sizeof(NNF_T)))

/* out[c] = b[c] + x @ W[:, c] for the NB columns c < NB (NB a constant once inlined: the
   accumulators are registers), each one chain over p:  x (k,), W (k, n), b (NB,) */
NNF__INLINE NNF__RS_TGT void NNF_RS_FN(nnf__rs_forward_block)(
    const int NB, NNF_T *restrict out, const NNF_T *restrict x, const NNF_T *restrict W,
    const NNF_T *restrict b, ptrdiff_t k, ptrdiff_t n)
{
    NNF_T acc[NNF__RS_NB];
    ptrdiff_t p;
    int c;
    for (c = 0; c < NB; c++) acc[c] = b[c];
    for (p = 0; p < k; p++) {
        const NNF_T xp = x[p];
        for (c = 0; c < NB; c++) acc[c] = NNF_RS_FMA(xp, W[p * n + c], acc[c]);
    }
    for (c = 0; c < NB; c++) out[c] = acc[c];
}

/* out = b + x @ W:  x (k,), W (k, n), b (n,); blocks of NNF__RS_NB, then 4, then 1 column */
static inline NNF__RS_TGT void NNF_RS_FN(nnf__rs_forward)(
    NNF_T *restrict out, const NNF_T *restrict x, const NNF_T *restrict W,
    const NNF_T *restrict b, ptrdiff_t k, ptrdiff_t n)
{
    ptrdiff_t j = 0;
    for (; j + NNF__RS_NB <= n; j += NNF__RS_NB)
        NNF_RS_FN(nnf__rs_forward_block)(NNF__RS_NB, out + j, x, W + j, b + j, k, n);
    for (; j + 4 <= n; j += 4)
        NNF_RS_FN(nnf__rs_forward_block)(4, out + j, x, W + j, b + j, k, n);
    for (; j < n; j++) NNF_RS_FN(nnf__rs_forward_block)(1, out + j, x, W + j, b + j, k, n);
}

/* dA[c] = W[c, :] @ dZ for the R rows c < R of W (R <= 8, a constant once inlined), each
   one chain over j from 0: the chains run along the rows, R of them side by side. */
NNF__INLINE NNF__RS_TGT void NNF_RS_FN(nnf__rs_input_grad_rows)(
    const int R, NNF_T *restrict dA, const NNF_T *restrict W, const NNF_T *restrict dZ,
    ptrdiff_t n)
{
    NNF_T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    ptrdiff_t j;
    int c;
    for (j = 0; j < n; j++) {
        const NNF_T d = dZ[j];
        for (c = 0; c < R; c++) acc[c] = NNF_RS_FMA(W[c * n + j], d, acc[c]);
    }
    for (c = 0; c < R; c++) dA[c] = acc[c];
}

/* dA = W @ dZ:  W (m, n), dZ (n,), dA (m,); rows 8, then 4, then 1 at a time. */
static inline NNF__RS_TGT void NNF_RS_FN(nnf__rs_input_grad)(
    NNF_T *restrict dA, const NNF_T *restrict W, const NNF_T *restrict dZ, ptrdiff_t m,
    ptrdiff_t n)
{
    ptrdiff_t q = 0;
    if (n == 1) { /* one chain of one step per row: a run down W's column */
        for (q = 0; q < m; q++) dA[q] = NNF_RS_FMA(W[q], dZ[0], (NNF_T)0);
        return;
    }
    for (; q + 8 <= m; q += 8) NNF_RS_FN(nnf__rs_input_grad_rows)(8, dA + q, W + q * n, dZ, n);
    for (; q + 4 <= m; q += 4) NNF_RS_FN(nnf__rs_input_grad_rows)(4, dA + q, W + q * n, dZ, n);
    for (; q < m; q++) NNF_RS_FN(nnf__rs_input_grad_rows)(1, dA + q, W + q * n, dZ, n);
}

/* The SGD step of n parameters pr with velocity vr and gradients g = fma(a[i], d[i], 0)
   (one of a, d advancing by a_step, d_step): v = mu v - lr g; pr += v, or with NESTEROV
   pr += mu v - lr g. */
NNF__INLINE NNF__RS_TGT void NNF_RS_FN(nnf__rs_update_run)(
    const int NESTEROV, NNF_T *restrict pr, NNF_T *restrict vr, const NNF_T *restrict a,
    ptrdiff_t a_step, const NNF_T *restrict d, ptrdiff_t d_step, ptrdiff_t n, NNF_T lr,
    NNF_T mu)
{
    ptrdiff_t i;
    for (i = 0; i < n; i++) {
        const NNF_T g = NNF_RS_FMA(a[i * a_step], d[i * d_step], (NNF_T)0);
        const NNF_T vi = mu * vr[i] - lr * g;
        vr[i] = vi;
        pr[i] += NESTEROV ? mu * vi - lr * g : vi;
    }
}

/* The SGD step of a layer: g = inp (m,) outer dZ (n,) for W (m, n), and for b (n,) the
   bias gradient dZ + 0 (column_sums' fma(1, dZ, 0), which turns -0 into +0). */
NNF__INLINE NNF__RS_TGT void NNF_RS_FN(nnf__rs_update)(
    const int NESTEROV, NNF_T *W, NNF_T *vW, NNF_T *b, NNF_T *vb, const NNF_T *inp,
    const NNF_T *dZ, ptrdiff_t m, ptrdiff_t n, NNF_T lr, NNF_T mu)
{
    static const NNF_T one = 1;
    ptrdiff_t q;
    if (n == 1) { /* one column: the run goes down it (a regression's single output) */
        NNF_RS_FN(nnf__rs_update_run)(NESTEROV, W, vW, inp, 1, dZ, 0, m, lr, mu);
    } else {
        for (q = 0; q < m; q++)
            NNF_RS_FN(nnf__rs_update_run)(NESTEROV, W + q * n, vW + q * n, inp + q, 0, dZ, 1,
                                          n, lr, mu);
    }
    NNF_RS_FN(nnf__rs_update_run)(NESTEROV, b, vb, &one, 0, dZ, 1, n, lr, mu);
}

static NNF__NOINLINE NNF__RS_TGT double NNF_RS_FN(nnf_sgd_row_step)(
    ptrdiff_t n_layers, const ptrdiff_t *table, ptrdiff_t scratch, ptrdiff_t max_width,
    NNF_T *p, NNF_T *v, const NNF_T *x, const NNF_T *y, double w, double inv_weight_sum,
    double lr, double mu, int nesterov, NNF_T *ws)
{
    const ptrdiff_t *last = table + (n_layers - 1) * NNF_ROW_FIELDS;
    const ptrdiff_t n_out = last[NNF_ROW_WIDTH];
    const NNF_T lr_t = (NNF_T)lr, mu_t = (NNF_T)mu;
    const NNF_T *inp = x;
    NNF_T *dZ = ws + scratch, *dA = dZ + max_width, *swap;
    const NNF_T *out;
    double scale = inv_weight_sum / (double)n_out, row = 0, total = 0;
    ptrdiff_t l, j, q;

    for (l = 0; l < n_layers; l++) {
        const ptrdiff_t *L = table + l * NNF_ROW_FIELDS;
        const ptrdiff_t n = L[NNF_ROW_WIDTH];
        NNF_T *Z = ws + L[NNF_ROW_Z], *A = ws + L[NNF_ROW_A];
        NNF_RS_FN(nnf__rs_forward)(Z, inp, p + L[NNF_ROW_W], p + L[NNF_ROW_B],
                                   L[NNF_ROW_N_IN], n);
        if (L[NNF_ROW_ACT] == NNF_ROW_TANH) {
            NNF_RS_TANH(A, Z, n);
        } else if (L[NNF_ROW_ACT] == NNF_ROW_RELU) {
            for (j = 0; j < n; j++) A[j] = Z[j] <= 0 ? (NNF_T)0 : Z[j]; /* NaN stays */
        }
        inp = A;
    }
    /* mse_delta (nnfast/_losses.pyx) of one row */
    out = inp;
    for (j = 0; j < n_out; j++) {
        const double d = (NNF_T)(out[j] - y[j]);
        row += d * d;
        dZ[j] = (NNF_T)(2 * w * scale * d);
    }
    total += w * row;

    for (l = n_layers - 1; l >= 0; l--) {
        const ptrdiff_t *L = table + l * NNF_ROW_FIELDS;
        const ptrdiff_t m = L[NNF_ROW_N_IN], n = L[NNF_ROW_WIDTH];
        NNF_T *W = p + L[NNF_ROW_W];
        const ptrdiff_t *below = l > 0 ? L - NNF_ROW_FIELDS : NULL;
        inp = below ? ws + below[NNF_ROW_A] : x;
        if (below) {
            /* the layer below's dZ, from this layer's weights before their step */
            NNF_RS_FN(nnf__rs_input_grad)(dA, W, dZ, m, n);
            if (below[NNF_ROW_ACT] == NNF_ROW_TANH) {
                for (q = 0; q < m; q++) dA[q] = dA[q] * ((NNF_T)1 - inp[q] * inp[q]);
            } else if (below[NNF_ROW_ACT] == NNF_ROW_RELU) {
                const NNF_T *Zb = ws + below[NNF_ROW_Z];
                for (q = 0; q < m; q++) dA[q] = Zb[q] > 0 ? dA[q] : (NNF_T)0;
            }
        }
        if (nesterov)
            NNF_RS_FN(nnf__rs_update)(1, W, v + L[NNF_ROW_W], p + L[NNF_ROW_B],
                                      v + L[NNF_ROW_B], inp, dZ, m, n, lr_t, mu_t);
        else
            NNF_RS_FN(nnf__rs_update)(0, W, v + L[NNF_ROW_W], p + L[NNF_ROW_B],
                                      v + L[NNF_ROW_B], inp, dZ, m, n, lr_t, mu_t);
        swap = dZ;
        dZ = dA;
        dA = swap;
    }
    return total * scale;
}

#undef NNF__RS_NB
#undef NNF_RS_FN
#undef NNF_T
#undef NNF_RS_FMA
#undef NNF_RS_SUFFIX
#undef NNF_RS_TANH
