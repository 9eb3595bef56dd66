/*
 * oom_fixture.h - out of memory on demand for the cluster tests: an
 * allocator for fl_replace_allocator that makes the n-th allocation
 * through fling's seam fail, and says afterwards whether that allocation
 * came. A case fails each allocation of an operation in turn (n = 1, 2,
 * ...) until one run goes through with none failed.
 *
 * oom_arm's count is process-wide: allocations of every thread count
 * while the failure is armed, as they would under real memory pressure,
 * for an operation whose steps run on other threads. oom_arm_here counts
 * the arming thread's allocations only, for an operation that runs on
 * one thread (a main-thread call, armed on that main thread): what the
 * other threads allocate meanwhile (their timers, the other endpoints,
 * the test's own thread) then neither fails nor moves which of the
 * operation's allocations fails.
 *
 * Header-only (static inline), one instance per test program: call
 * oom_install() at the top of main(), before any other fling call.
 */
#ifndef OOM_FIXTURE_H
#define OOM_FIXTURE_H

#include "fl_test.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* How many runs a case tries before it gives up: more allocations than
 * any of these operations makes. */
#define OOM_MAX_RUNS 400

static _Atomic uint64_t oom_countdown; /* 0: disarmed */
static atomic_bool oom_hit;
/* Armed by oom_arm_here: only the allocations of the thread whose
 * oom_armer is set count. Stored before the countdown arms, cleared
 * after it disarms (seq_cst, like the countdown). */
static atomic_bool oom_here_only;
static _Thread_local bool oom_armer;

/* True for the allocation that must fail (the countdown reaching 0). */
static inline bool oom_take(void)
{
    uint64_t c = atomic_load(&oom_countdown);
    if (c != 0 && atomic_load(&oom_here_only) && !oom_armer)
        return false;
    while (c != 0) {
        if (atomic_compare_exchange_weak(&oom_countdown, &c, c - 1)) {
            if (c != 1)
                return false;
            atomic_store(&oom_hit, true);
            return true;
        }
    }
    return false;
}

static inline void *oom_malloc(size_t n)
{
    return oom_take() ? NULL : malloc(n);
}

static inline void *oom_calloc(size_t n, size_t size)
{
    return oom_take() ? NULL : calloc(n, size);
}

static inline void *oom_realloc(void *p, size_t n)
{
    return oom_take() ? NULL : realloc(p, n);
}

/* Installs the allocator: first thing in main(). */
static inline void oom_install(void)
{
    if (fl_replace_allocator(oom_malloc, oom_calloc, oom_realloc, free) !=
        FL_OK)
        abort();
}

/* The n-th allocation from now, of any thread, fails (n >= 1). */
static inline void oom_arm(uint64_t n)
{
    atomic_store(&oom_here_only, false);
    atomic_store(&oom_hit, false);
    atomic_store(&oom_countdown, n);
}

/* The calling thread's n-th allocation from now fails (n >= 1); other
 * threads' allocations neither fail nor count. Disarm on this thread. */
static inline void oom_arm_here(uint64_t n)
{
    oom_armer = true;
    atomic_store(&oom_here_only, true);
    atomic_store(&oom_hit, false);
    atomic_store(&oom_countdown, n);
}

/* Disarms; returns whether the armed allocation came (and failed). */
static inline bool oom_disarm(void)
{
    atomic_store(&oom_countdown, 0);
    atomic_store(&oom_here_only, false);
    oom_armer = false;
    return atomic_load(&oom_hit);
}

#endif /* OOM_FIXTURE_H */
