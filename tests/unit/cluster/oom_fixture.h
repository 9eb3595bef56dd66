/*
 * oom_fixture.h - out of memory on demand for the cluster tests: an
 * allocator for fl_replace_allocator that makes the n-th allocation
 * through fling's seam fail, and says afterwards whether that allocation
 * came. A case fails each allocation of an operation in turn (n = 1, 2,
 * ...) until one run goes through with none failed.
 *
 * The count is process-wide: allocations of every thread count while the
 * failure is armed, as they would under real memory pressure. Arm it
 * where the operation runs (on the owner's main thread for a main-thread
 * call) so that the test's own machinery does not draw it.
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

/* True for the allocation that must fail (the countdown reaching 0). */
static inline bool oom_take(void)
{
    uint64_t c = atomic_load(&oom_countdown);
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

/* The n-th allocation from now fails (n >= 1). */
static inline void oom_arm(uint64_t n)
{
    atomic_store(&oom_hit, false);
    atomic_store(&oom_countdown, n);
}

/* Disarms; returns whether the armed allocation came (and failed). */
static inline bool oom_disarm(void)
{
    atomic_store(&oom_countdown, 0);
    return atomic_load(&oom_hit);
}

#endif /* OOM_FIXTURE_H */
