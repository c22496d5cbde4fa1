/* nnf_monotonic_seconds(): a monotonic clock in seconds, for the compiled loops' Ctrl-C
 * checks (nnfast/_train.pyx, nnfast/_lbfgs.pyx read it every few batches, without the GIL).
 *
 * POSIX (Linux, macOS >= 10.12, the BSDs): clock_gettime(CLOCK_MONOTONIC).
 * Windows (MSVC, MinGW): QueryPerformanceCounter, whose frequency is fixed at boot.
 * Only differences of two readings mean anything; the resolution needed is ~1 ms.
 */
#ifndef NNF_MONOTONIC_H
#define NNF_MONOTONIC_H

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

static inline double nnf_monotonic_seconds(void) {
    LARGE_INTEGER count, frequency;
    QueryPerformanceCounter(&count);
    QueryPerformanceFrequency(&frequency);
    return (double)count.QuadPart / (double)frequency.QuadPart;
}
#else
/* clock_gettime is POSIX, not ISO C: ask for it when this header comes first under a strict
 * -std=c11 (Python.h, which Cython includes first, has already asked for more). */
#if !defined(_POSIX_C_SOURCE) && !defined(__APPLE__)
#define _POSIX_C_SOURCE 199309L
#endif
#include <time.h>

static inline double nnf_monotonic_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
#endif

#endif /* NNF_MONOTONIC_H */
