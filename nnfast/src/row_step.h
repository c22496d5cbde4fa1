/* row_step.h -- one plain-SGD step on one sample through the whole network, in one call.
 *
 * A batch of one row is mostly calls: per layer a product dispatch, an activation, a loss,
 * a backward product, then an optimizer pass over every parameter (7,592 instructions per
 * sample of the seed network 1-20-20-1 on the AVX2 path; 4,938 with this step, see
 * docs/performance.md). This is the same step in one function: the forward pass, the MSE
 * loss, and per layer, top down, the input gradient (from the weights before the step)
 * followed at once by the layer's SGD update, so no gradient buffer is written or read back.
 *
 *   static double nnf_sgd_row_step_d(ptrdiff_t n_layers, const ptrdiff_t *table,
 *       ptrdiff_t scratch, ptrdiff_t max_width, double *p, double *v, const double *x,
 *       const double *y, double w, double inv_weight_sum, double lr, double mu,
 *       int nesterov, double *ws);       (and nnf_sgd_row_step_f for float)
 *
 *   table: NNF_ROW_FIELDS values per layer, input layer first: n_in, width, the offsets of
 *   W (n_in, width) and b (width,) in p, of Z and A in ws (A == Z for identity), and the
 *   activation as nnfast's code (nnfast/_kernels.pxd: 0 identity, 2 tanh, 3 relu; the last
 *   layer identity). scratch: the offset in ws of two blocks of max_width values. y (n_out,)
 *   the targets, w the sample's weight, inv_weight_sum as in nnfast/_losses.pyx (its
 *   loss_scale / w). v the velocity. Returns the loss, mse_delta's value for this row.
 *
 * Same bits as the general path (nnfast/_network.pyx, then the optimizer's pass): every
 * value is the same chain of the same operations --
 *   Z[j] = fma(x[p], W[p, j], ...) over p from b[j];  A = the bound nnf_tanh_{d,f};
 *   dA[q] = fma(W[q, j], dZ[j], ...) over j from 0, times (1 - a a) below a tanh;
 *   g = fma(inp[q], dZ[j], 0) (db: fma(1, dZ[j], 0));  v = mu v - lr g;  p += v
 *   (nesterov: p += mu v - lr g), without contraction (-ffp-contract=off) --
 * as long as the products fuse their multiply-adds: nnf_row_step_runs() says whether the
 * products' current path does (AVX2, AVX-512; the baseline only where it is NEON). The
 * tests compare the two bit for bit on every path.
 *
 * The arithmetic is written as scalar C on purpose: each output element is one ordered
 * chain, and on x86 the functions are compiled for AVX2 + FMA, also run on the AVX-512
 * path (an AVX-512 copy was no faster on Zen 4). The compiler vectorises the forward
 * blocks and the updates, which run across j; the input gradient's chains run along the
 * rows of W, eight rows at a time to keep the FMA units busy.
 */
#ifndef NNF_ROW_STEP_H
#define NNF_ROW_STEP_H

#include <math.h> /* fma, fmaf: instructions where the target has FMA (-fno-math-errno) */
#include <stddef.h>

#include "cpu.h"
#include "fastmath.h"
#include "gemm_small.h"

enum {
    NNF_ROW_N_IN, NNF_ROW_WIDTH, NNF_ROW_W, NNF_ROW_B, NNF_ROW_Z, NNF_ROW_A, NNF_ROW_ACT,
    NNF_ROW_FIELDS
};
/* nnfast's activation codes (nnfast/_kernels.pxd's Activation) of the layers this takes. */
#define NNF_ROW_IDENTITY 0
#define NNF_ROW_TANH 2
#define NNF_ROW_RELU 3

#if NNF_PRODUCTS_SIMD
#define NNF__RS_TGT NNF_TARGET_PRODUCTS_AVX2
#else
#define NNF__RS_TGT
#endif

/* 1 when the products of the current path fuse every multiply-add, as this step does. */
static inline int nnf_row_step_runs(void)
{
    const int path = nnf_family_path(NNF_FAMILY_PRODUCTS);
    return path != NNF_PATH_BASELINE || NNF_GEMM_BASELINE_FMA;
}

#define NNF__RS_CAT2(a, b) a##b
#define NNF__RS_CAT(a, b) NNF__RS_CAT2(a, b)

#define NNF_T double
#define NNF_RS_FMA fma
#define NNF_RS_SUFFIX _d
#define NNF_RS_TANH nnf_tanh_d
#include "row_step_body.h"
#define NNF_T float
#define NNF_RS_FMA fmaf
#define NNF_RS_SUFFIX _f
#define NNF_RS_TANH nnf_tanh_f
#include "row_step_body.h"

#endif /* NNF_ROW_STEP_H */
