/*
 * src/sched/runq.h - a worker's run queue: a bounded FIFO ring with one
 * producer (the owning worker) and many consumers (the owner and thieves).
 * Owns fl__runq_t; included by sched/ only (through sched/sched.h).
 *
 * The owner pushes at the tail; anyone pops at the head with a CAS. A slot
 * is only rewritten by the owner once head has moved past it (the push
 * checks tail - head < capacity), so a consumer whose CAS on head succeeds
 * read a value that was still current. FIFO keeps actors fair: an actor
 * that reschedules itself goes behind the others.
 */
#ifndef FL_SCHED_RUNQ_H
#define FL_SCHED_RUNQ_H

#include "common/internal.h"

#define FL__RUNQ_CAP 1024u /* power of two */

typedef struct fl__runq {
    /* Consumers (owner and thieves) CAS this. */
    FL_ALIGNED(FL_CACHE_LINE) _Atomic uint64_t head;
    /* Owner only writes; thieves read. */
    FL_ALIGNED(FL_CACHE_LINE) _Atomic uint64_t tail;
    _Atomic(void *) slots[FL__RUNQ_CAP];
} fl__runq_t;

static inline void fl__runq_init(fl__runq_t *q)
{
    /* Relaxed: before the workers start (pthread_create publishes it). */
    atomic_store_explicit(&q->head, 0, memory_order_relaxed);
    atomic_store_explicit(&q->tail, 0, memory_order_relaxed);
}

/* Owner only. Returns false when full (the caller overflows elsewhere). */
static inline bool fl__runq_push(fl__runq_t *q, void *item)
{
    /* Relaxed: only the owner writes tail. */
    uint64_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    /* Pairs with the CAS on head in pop: we see slots freed by consumers. */
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    if (t - h >= FL__RUNQ_CAP)
        return false;
    /* Relaxed: published by the release store of tail below. */
    atomic_store_explicit(&q->slots[t & (FL__RUNQ_CAP - 1)], item,
                          memory_order_relaxed);
    /* Pairs with the acquire load of tail in pop: publishes the slot. */
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return true;
}

/* Any thread. NULL when empty. */
static inline void *fl__runq_pop(fl__runq_t *q)
{
    /* Pairs with the CAS on head by other consumers. */
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        /* Pairs with the release store of tail in push. */
        uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
        if (h >= t)
            return NULL;
        /* Relaxed: ordered by the acquire load of tail; the CAS below
         * proves the owner had not yet reused the slot. */
        void *item = atomic_load_explicit(&q->slots[h & (FL__RUNQ_CAP - 1)],
                                          memory_order_relaxed);
        /* Pairs with the acquire load of head in push. */
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + 1,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            return item;
    }
}

/* Any thread; a snapshot. */
static inline bool fl__runq_empty(fl__runq_t *q)
{
    /* Pair with the CAS on head in pop and the release store of tail in
     * push. */
    return atomic_load_explicit(&q->head, memory_order_acquire) >=
           atomic_load_explicit(&q->tail, memory_order_acquire);
}

#endif /* FL_SCHED_RUNQ_H */
