/* elementwise_body.h -- the loops of elementwise.h for one dtype on one code path.
 *
 * Not a standalone header: elementwise.h includes it once per dtype x path after defining
 *   NNF_T        the element type (double, float)
 *   NNF_SQRT     its square root (__builtin_sqrt, __builtin_sqrtf)
 *   NNF_SUFFIX   the name suffix: _d_baseline, _d_avx2, ..., _f_avx512
 *   NNF_TGT      cpu.h's target attribute of the path (or nothing)
 * and it undefines them at its end. Every element is computed by the same expression in the
 * vector body and the scalar tail (the build passes -ffp-contract=off), so a result never
 * depends on an element's position, nor on the path.
 */
#define NNF_EW_FN(name) NNF__EW_CAT(name, NNF_SUFFIX)

/* dZ = dA * (1 - A^2); dZ may be dA (the _inplace form) but never A. */
static NNF__EW_NOINLINE NNF_TGT void NNF_EW_FN(nnf_tanh_backward_into)(
    NNF_T *restrict dZ, const NNF_T *restrict A, const NNF_T *restrict dA, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const NNF_T a = A[i], g = dA[i];
        dZ[i] = g * ((NNF_T)1 - a * a);
    }
}
static NNF__EW_NOINLINE NNF_TGT void NNF_EW_FN(nnf_tanh_backward_inplace)(
    NNF_T *restrict dZ, const NNF_T *restrict A, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const NNF_T a = A[i], g = dZ[i];
        dZ[i] = g * ((NNF_T)1 - a * a);
    }
}

/* dZ = dA * A * (1 - A); dZ may be dA (the _inplace form) but never A. */
static NNF__EW_NOINLINE NNF_TGT void NNF_EW_FN(nnf_sigmoid_backward_into)(
    NNF_T *restrict dZ, const NNF_T *restrict A, const NNF_T *restrict dA, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const NNF_T a = A[i], g = dA[i];
        dZ[i] = g * a * ((NNF_T)1 - a);
    }
}
static NNF__EW_NOINLINE NNF_TGT void NNF_EW_FN(nnf_sigmoid_backward_inplace)(
    NNF_T *restrict dZ, const NNF_T *restrict A, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const NNF_T a = A[i], g = dZ[i];
        dZ[i] = g * a * ((NNF_T)1 - a);
    }
}

/* Every row of Z (rows, cols) = b (cols,) */
static NNF__EW_NOINLINE NNF_TGT void NNF_EW_FN(nnf_fill_rows)(
    NNF_T *restrict Z, const NNF_T *restrict b, ptrdiff_t rows, ptrdiff_t cols)
{
    for (ptrdiff_t i = 0; i < rows; i++)
        for (ptrdiff_t j = 0; j < cols; j++)
            Z[i * cols + j] = b[j];
}

/* s (cols,) += the sum over the rows of D (rows, cols), row after row */
static NNF__EW_NOINLINE NNF_TGT void NNF_EW_FN(nnf_add_column_sums)(
    NNF_T *restrict s, const NNF_T *restrict D, ptrdiff_t rows, ptrdiff_t cols)
{
    for (ptrdiff_t i = 0; i < rows; i++)
        for (ptrdiff_t j = 0; j < cols; j++)
            s[j] += D[i * cols + j];
}

/* SGD with momentum (scikit-learn's form): v = mu v - lr g; p += nesterov ? mu v - lr g : v */
static NNF__EW_NOINLINE NNF_TGT void NNF_EW_FN(nnf_sgd_update)(
    NNF_T *restrict p, NNF_T *restrict v, const NNF_T *restrict g, ptrdiff_t n, NNF_T lr,
    NNF_T mu, int nesterov)
{
    if (nesterov) {
        for (ptrdiff_t i = 0; i < n; i++) {
            v[i] = mu * v[i] - lr * g[i];
            p[i] += mu * v[i] - lr * g[i];
        }
    } else {
        for (ptrdiff_t i = 0; i < n; i++) {
            v[i] = mu * v[i] - lr * g[i];
            p[i] += v[i];
        }
    }
}

/* Adam (scikit-learn's form; lr carries the bias correction):
 * m = b1 m + c1 g;  v = b2 v + c2 g g;  p -= lr m / (sqrt(v) + eps)
 * (sqrt vectorises because the build passes -fno-math-errno) */
static NNF__EW_NOINLINE NNF_TGT void NNF_EW_FN(nnf_adam_update)(
    NNF_T *restrict p, NNF_T *restrict m, NNF_T *restrict v, const NNF_T *restrict g,
    ptrdiff_t n, NNF_T lr, NNF_T b1, NNF_T b2, NNF_T c1, NNF_T c2, NNF_T eps)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const NNF_T gi = g[i];
        const NNF_T mi = b1 * m[i] + c1 * gi;
        const NNF_T vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * mi / (NNF_SQRT(vi) + eps);
    }
}

#undef NNF_EW_FN
#undef NNF_T
#undef NNF_SQRT
#undef NNF_SUFFIX
#undef NNF_TGT
