/* fastmath_loops.h -- the array functions of fastmath.h for one code path.
 *
 * Not a standalone header: fastmath.h includes it once per path after defining NNF_FM_PATH
 * (the name suffix: _baseline, _avx2, _avx512) and NNF_TGT (cpu.h's target attribute of
 * the path, or nothing), and it undefines both at its end. The scalar kernels nnf__*1_*
 * are always inlined without a target, so each path gets its own copy of them, compiled
 * (and vectorised by NNF__LOOP) for its instruction set.
 */
#define NNF__FM_CAT2(a, b) a##b
#define NNF__FM_CAT(a, b) NNF__FM_CAT2(a, b)
#define NNF_FM_FN(name) NNF__FM_CAT(name, NNF_FM_PATH)

static inline NNF_TGT void NNF_FM_FN(nnf_tanh_d)(double *out, const double *in, ptrdiff_t n)
{ NNF__LOOP(double, NNF__W_D, nnf__tanh1_d(v_)); }
static inline NNF_TGT void NNF_FM_FN(nnf_tanh_f)(float *out, const float *in, ptrdiff_t n)
{ NNF__LOOP(float, NNF__W_F, nnf__tanh1_f(v_)); }
static inline NNF_TGT void NNF_FM_FN(nnf_sigmoid_d)(double *out, const double *in, ptrdiff_t n)
{ NNF__LOOP(double, NNF__W_D, nnf__sigmoid1_d(v_)); }
static inline NNF_TGT void NNF_FM_FN(nnf_sigmoid_f)(float *out, const float *in, ptrdiff_t n)
{ NNF__LOOP(float, NNF__W_F, nnf__sigmoid1_f(v_)); }
static inline NNF_TGT void NNF_FM_FN(nnf_exp_d)(double *out, const double *in, ptrdiff_t n)
{ NNF__LOOP(double, NNF__W_D, nnf__exp1_d(v_)); }
static inline NNF_TGT void NNF_FM_FN(nnf_exp_f)(float *out, const float *in, ptrdiff_t n)
{ NNF__LOOP(float, NNF__W_F, nnf__exp1_f(v_)); }
static inline NNF_TGT void NNF_FM_FN(nnf_elu_d)(double *out, const double *in, ptrdiff_t n,
                                                double alpha)
{ NNF__LOOP(double, NNF__W_D, nnf__elu1_d(v_, alpha)); }
static inline NNF_TGT void NNF_FM_FN(nnf_elu_f)(float *out, const float *in, ptrdiff_t n,
                                                float alpha)
{ NNF__LOOP(float, NNF__W_F, nnf__elu1_f(v_, alpha)); }

#undef NNF_FM_FN
#undef NNF_FM_PATH
#undef NNF_TGT
