/* team.h -- a team of threads for one pass over a batch (nnfast/_team.pyx).
 *
 * OpenMP when the build has it (setup.py passes -fopenmp, or /openmp to MSVC, when the
 * compiler accepts it), else a team of one. The team is OpenMP's thread pool: its threads
 * persist between passes, so a pass costs one fork/join (measured 1.1 us with libgomp on a
 * 2-core Zen 4) and one barrier per phase (0.55 us), not the creation of threads.
 *
 *   nnf_team_run(threads, task, context)  runs task(context, rank, size, sync) on up to
 *       `threads` threads (rank 0 is the calling thread) and returns when every one has
 *       returned. `size` is the number the runtime gave, which may be fewer; the task must
 *       split its work by (rank, size), never by `threads`.
 *   nnf_team_barrier(sync)  inside a task: waits for the whole team (a no-op in a team of
 *       one, where sync may be NULL).
 *
 * The barrier spins on the team's own counter (then yields the core), not on OpenMP's
 * barrier: libgomp spins at its barriers only while the process has no more OpenMP
 * threads than cores, and every Python thread that ever ran a team keeps a pool of its
 * own, so after a team in a second thread libgomp's barriers sleep in the kernel (17-40 us
 * each here instead of 0.55) and a split pass ran 2x slower than one thread. The region's
 * fork and join stay OpenMP's: one wake-up per pass, where a pass has several barriers.
 * Compilers without the GNU atomic builtins (MSVC), and Windows (no sched_yield), use
 * OpenMP's barrier.
 *   nnf_team_max_threads()  omp_get_max_threads(): OMP_NUM_THREADS, omp_set_num_threads
 *       (threadpoolctl's limits) in force; 1 without OpenMP.
 *   nnf_team_compiled()  1 if this build has OpenMP.
 *   nnf_team_regions()  how many passes of this module have run on more than one thread
 *       (tests check with it that a team was used; each module has its own count).
 *
 * Every barrier of a task must be reached by every thread of its team: a task's control
 * flow may depend on (rank, size) only in the work it does between barriers.
 */
#ifndef NNF_TEAM_H
#define NNF_TEAM_H

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(_OPENMP) && (defined(__GNUC__) || defined(__clang__)) && !defined(_WIN32)
#define NNF__TEAM_SPIN 1
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NNF__TEAM_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define NNF__TEAM_PAUSE() __asm__ __volatile__("yield")
#else
#define NNF__TEAM_PAUSE() ((void)0)
#endif
#include <sched.h>
#endif

/* A barrier's state: arrivals in the current phase, and the phase number (bumped by the
   last thread to arrive, which releases the others). */
typedef struct nnf_team_sync {
    int count;
    unsigned phase;
    int size;
} nnf_team_sync;

typedef void (*nnf_team_task)(void *context, int rank, int size, nnf_team_sync *sync);

static inline long *nnf__team_region_count(void)
{
    static long count = 0;
    return &count;
}

static inline long nnf_team_regions(void) { return *nnf__team_region_count(); }

static inline void nnf__team_set_size(nnf_team_sync *sync, int size)
{
#ifdef NNF__TEAM_SPIN
    __atomic_store_n(&sync->size, size, __ATOMIC_RELAXED);
#else
    (void)sync; /* (OpenMP's barrier does not read it) */
    (void)size;
#endif
}

/* Pauses before a waiting thread starts to yield its core at each check (about 0.1 ms on
   a 3 GHz core: past that, the thread it waits for is probably not running). */
#define NNF__TEAM_SPINS 4000

static inline void nnf_team_barrier(nnf_team_sync *sync)
{
#ifdef NNF__TEAM_SPIN
    unsigned phase, spins = 0;
    int size;
    if (sync == NULL || (size = __atomic_load_n(&sync->size, __ATOMIC_RELAXED)) < 2) return;
    phase = __atomic_load_n(&sync->phase, __ATOMIC_RELAXED);
    if (__atomic_add_fetch(&sync->count, 1, __ATOMIC_ACQ_REL) == size) {
        /* last to arrive: reset for the next barrier, then release this one (the release
           store publishes every thread's writes, which this thread acquired) */
        __atomic_store_n(&sync->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&sync->phase, phase + 1, __ATOMIC_RELEASE);
        return;
    }
    while (__atomic_load_n(&sync->phase, __ATOMIC_ACQUIRE) == phase) {
        if (spins < NNF__TEAM_SPINS) {
            spins++;
            NNF__TEAM_PAUSE();
        } else {
            sched_yield();
        }
    }
#elif defined(_OPENMP)
    (void)sync;
#pragma omp barrier
#else
    (void)sync;
#endif
}

static inline void nnf_team_run(int threads, nnf_team_task task, void *context)
{
    nnf_team_sync sync;
    sync.count = 0;
    sync.phase = 0;
    sync.size = 1;
#ifdef _OPENMP
    if (threads > 1) {
        long *count = nnf__team_region_count();
#pragma omp parallel num_threads(threads) shared(sync)
        {
            const int rank = omp_get_thread_num(), size = omp_get_num_threads();
            /* every thread stores the same size before its first barrier (no OpenMP
               construct with a barrier of its own: `single` would add one) */
            nnf__team_set_size(&sync, size);
            if (rank == 0 && size > 1) {
#pragma omp atomic
                (*count)++;
            }
            task(context, rank, size, &sync);
            /* Every thread reaches the region's end together, so OpenMP's join (which
               may sleep, see above) finds them all there. */
            nnf_team_barrier(&sync);
        }
        return;
    }
#endif
    (void)threads;
    task(context, 0, 1, &sync);
}

static inline int nnf_team_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static inline int nnf_team_compiled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

#endif /* NNF_TEAM_H */
