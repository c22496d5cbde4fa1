/* lbfgs_vectors.h -- the float64 vector loops of nnfast's L-BFGS (nnfast/_lbfgs.pyx and
 * nnfast/_linesearch.pyx): dot products, axpy, differences and trial points.
 *
 * Compiled once, for the build's baseline instruction set (SSE2 on x86-64, vectorised by
 * -O3): nnfast has one CPU dispatch (cpu.h), and these loops cost little next to the
 * network's loss and gradient evaluations; they can join it when a profile says so. A dot
 * product keeps eight partial sums, lane j
 * summing the elements i = j (mod 8) in order, combined in one fixed order at the end: each
 * lane is its own chain whatever the vector width, so every path gives the same result
 * (the build passes -ffp-contract=off: no path fuses a multiply into an add).
 */
#ifndef NNF_LBFGS_VECTORS_H
#define NNF_LBFGS_VECTORS_H

#include <stddef.h>


/* a'b */
static double nnf_dot(const double *restrict a, const double *restrict b,
                                        ptrdiff_t n)
{
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            lane[j] += a[i + j] * b[i + j];
    for (int j = 0; i < n; i++, j++)
        lane[j] += a[i] * b[i];
    return ((lane[0] + lane[4]) + (lane[2] + lane[6])) +
           ((lane[1] + lane[5]) + (lane[3] + lane[7]));
}

/* y += a x */
static void nnf_axpy(double *restrict y, double a,
                                       const double *restrict x, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* out = a - b */
static void nnf_difference(double *restrict out, const double *restrict a,
                                             const double *restrict b, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = a[i] - b[i];
}

/* out = x + step d (a trial point of the line search) */
static void nnf_trial_point(double *restrict out, const double *restrict x,
                                              double step, const double *restrict d,
                                              ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = x[i] + step * d[i];
}

#endif
