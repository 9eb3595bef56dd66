/*
 * src/common/prof.h - event counters for profiling the runtime's hot path
 * (a profiling aid; docs/RATIONALE.md, "Fan-in"). Compiled in only with
 * -DFL_PROF_COUNTERS (cmake -DCMAKE_C_FLAGS=-DFL_PROF_COUNTERS); otherwise
 * every macro is empty. Counted per thread, without atomics; each worker
 * prints its own line to stderr when it exits ("prof worker N: ..."):
 * turns run and those that ended with messages left, messages taken,
 * where find_work found the actor (next slot, own run queue, inject
 * queue, a steal), idle searches, parks, patient parks (sched.c) and
 * the wake-ups this worker
 * made, coalesced chains pushed, actors put in the next slot and those
 * they displaced, mutes, the pool's batches taken and given back and
 * the allocations that fell through to malloc.
 */
#ifndef FL_COMMON_PROF_H
#define FL_COMMON_PROF_H

#ifdef FL_PROF_COUNTERS
#include <stdint.h>

#define FL__PROF_LIST(X)                                                       \
    X(turns)                                                                   \
    X(turns_more)                                                              \
    X(msgs)                                                                    \
    X(from_next)                                                               \
    X(from_runq)                                                               \
    X(from_inject)                                                             \
    X(from_steal)                                                              \
    X(idles)                                                                   \
    X(parks)                                                                   \
    X(looks)                                                                   \
    X(wakes)                                                                   \
    X(chains)                                                                  \
    X(sched_next)                                                              \
    X(displaced)                                                               \
    X(mutes)                                                                   \
    X(pool_take)                                                               \
    X(pool_malloc)                                                             \
    X(pool_give)

enum {
#define FL__PROF_ENUM(n) FL__PROF_##n,
    FL__PROF_LIST(FL__PROF_ENUM) FL__PROF_N
};
extern _Thread_local uint64_t fl__prof[FL__PROF_N];
#define FL_PROF_ADD(name, v) (fl__prof[FL__PROF_##name] += (v))
void fl__prof_dump(unsigned worker);
#else
#define FL_PROF_ADD(name, v) ((void)0)
#define fl__prof_dump(w) ((void)0)
#endif

#define FL_PROF(name) FL_PROF_ADD(name, 1)

#endif /* FL_COMMON_PROF_H */
