/* team.h -- a team of threads for one pass over a batch (nnfast/_team.pyx).
 *
 * OpenMP when the build has it (setup.py passes -fopenmp, or /openmp to MSVC, when the
 * compiler accepts it), else a team of one. The team is OpenMP's thread pool: its threads
 * persist between passes, so a pass costs one fork/join (measured 1.1 us with libgomp on a
 * 2-core Zen 4) and one barrier per phase (0.55 us), not the creation of threads.
 *
 *   nnf_team_run(threads, task, context)  runs task(context, rank, size) on up to `threads`
 *       threads (rank 0 is the calling thread) and returns when every one has returned.
 *       `size` is the number the runtime gave, which may be fewer; the task must split its
 *       work by (rank, size), never by `threads`.
 *   nnf_team_barrier()  inside a task: waits for the whole team (a no-op in a team of one).
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

typedef void (*nnf_team_task)(void *context, int rank, int size);

static inline long *nnf__team_region_count(void)
{
    static long count = 0;
    return &count;
}

static inline long nnf_team_regions(void) { return *nnf__team_region_count(); }

static inline void nnf_team_run(int threads, nnf_team_task task, void *context)
{
#ifdef _OPENMP
    if (threads > 1) {
        long *count = nnf__team_region_count();
#pragma omp parallel num_threads(threads)
        {
            const int rank = omp_get_thread_num(), size = omp_get_num_threads();
            if (rank == 0 && size > 1) {
#pragma omp atomic
                (*count)++;
            }
            task(context, rank, size);
        }
        return;
    }
#endif
    (void)threads;
    task(context, 0, 1);
}

static inline void nnf_team_barrier(void)
{
#ifdef _OPENMP
#pragma omp barrier
#endif
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
