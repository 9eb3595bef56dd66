/*
 * src/actor/mailbox.h - the mailbox: Pony's intrusive multi-producer
 * single-consumer queue (Vyukov's design with an "empty" mark in the head
 * pointer). Owns fl__qnode_t (the link every message embeds) and
 * fl__mpscq_t. Included by the actor layer (actor/) only; the remote layer
 * reaches mailboxes through actor/msg.h and actor/claim.h.
 *
 * Producers push with one atomic exchange; the push itself says whether the
 * queue had been marked empty, i.e. whether the consumer actor is
 * unscheduled and the producer must schedule it. The consumer pops from the
 * tail; the node it returns stays in the queue as the new stub until the
 * next pop, which hands the previous stub back for freeing.
 *
 * FIFO per producer; linearizable push. Lock-free for producers; the
 * consumer may transiently see "empty" while a producer is between its
 * exchange and its link store, in which case markempty fails and the actor
 * stays scheduled.
 */
#ifndef FL_ACTOR_MAILBOX_H
#define FL_ACTOR_MAILBOX_H

#include "common/internal.h"

typedef struct fl__qnode {
    _Atomic(struct fl__qnode *) next;
} fl__qnode_t;

/*
 * Head and tail live on separate cache lines: every send writes the head,
 * every receive writes the tail, and sharing a line would bounce it between
 * the producing and the consuming core on each message.
 */
typedef struct fl__mpscq {
    /* Written by producers (exchange). Low bit set = marked empty. */
    FL_ALIGNED(FL_CACHE_LINE) _Atomic(uintptr_t) head;
    /* Consumer only. */
    FL_ALIGNED(FL_CACHE_LINE) fl__qnode_t *tail;
} fl__mpscq_t;

/* Initialise with stub as the first node, marked empty. */
static inline void fl__mpscq_init(fl__mpscq_t *q, fl__qnode_t *stub)
{
    /* Relaxed: before any producer can reach q (a slot is published by the
     * release store of its gstate or chunk). */
    atomic_store_explicit(&stub->next, NULL, memory_order_relaxed);
    atomic_store_explicit(&q->head, (uintptr_t)stub | 1u, memory_order_relaxed);
    q->tail = stub;
}

/*
 * Push one node. Returns true if the queue was marked empty: the caller
 * must then schedule the consumer. Any thread.
 */
static inline bool fl__mpscq_push(fl__mpscq_t *q, fl__qnode_t *n)
{
    /* Relaxed: n is ours until the exchange below publishes it. */
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    /* acq_rel: release publishes n's contents to the consumer (paired with
     * the acquire fence in pop); acquire orders us after the previous
     * producer, whose node we link to. */
    uintptr_t prev =
        atomic_exchange_explicit(&q->head, (uintptr_t)n, memory_order_acq_rel);
    fl__qnode_t *p = (fl__qnode_t *)(prev & ~(uintptr_t)1);
    /* Pairs with the load of tail->next in pop. */
    atomic_store_explicit(&p->next, n, memory_order_release);
    return (prev & 1u) != 0;
}

/*
 * Push a chain first..last (already linked through next, in order) with one
 * exchange. Returns as fl__mpscq_push. Any thread.
 */
static inline bool fl__mpscq_push_chain(fl__mpscq_t *q, fl__qnode_t *first,
                                        fl__qnode_t *last)
{
    /* Relaxed, as in push; acq_rel exchange as in push. */
    atomic_store_explicit(&last->next, NULL, memory_order_relaxed);
    uintptr_t prev = atomic_exchange_explicit(&q->head, (uintptr_t)last,
                                              memory_order_acq_rel);
    fl__qnode_t *p = (fl__qnode_t *)(prev & ~(uintptr_t)1);
    /* Publishes the whole chain: its inner links were stored before. */
    atomic_store_explicit(&p->next, first, memory_order_release);
    return (prev & 1u) != 0;
}

/*
 * Pop the next node, or NULL if none is visible. *freed is set to the
 * previous stub, which the caller now owns (NULL when nothing was popped).
 * Consumer only.
 */
static inline fl__qnode_t *fl__mpscq_pop(fl__mpscq_t *q, fl__qnode_t **freed)
{
    fl__qnode_t *tail = q->tail;
    /* Pairs with the release store of p->next in push. */
    fl__qnode_t *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next == NULL) {
        *freed = NULL;
        return NULL;
    }
    q->tail = next;
    *freed = tail;
    return next;
}

/*
 * Try to mark the queue empty. Returns true if it is now marked (the
 * consumer must not run again until a producer reschedules it), false if
 * nodes arrived (the consumer must stay scheduled). Consumer only.
 */
static inline bool fl__mpscq_markempty(fl__mpscq_t *q)
{
    uintptr_t tail = (uintptr_t)q->tail;
    /* Relaxed: a first look; the CAS below decides. */
    uintptr_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    if ((head & 1u) != 0)
        return true;
    if (head != tail)
        return false;
    /* acq_rel pairs with the exchange in push: a producer either sees the
     * mark (and schedules us) or we see its node (and stay scheduled). */
    return atomic_compare_exchange_strong_explicit(
        &q->head, &tail, tail | 1u, memory_order_acq_rel, memory_order_relaxed);
}

#endif /* FL_ACTOR_MAILBOX_H */
