/*
 * src/actor/mailbox.h - the mailbox: Pony's intrusive multi-producer
 * single-consumer queue (Vyukov's design with an "empty" mark in the head
 * pointer). Owns fl__qnode_t (the link every message embeds) and
 * fl__mpscq_head_t. Included by the actor layer (actor/) only; the remote layer
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
 * The queue is its two ends, which its user places: the head is written by
 * every producer (exchange), the tail by the consumer only, so they belong
 * on different cache lines, each beside what its writer touches anyway
 * (actor/actor_slot.h). Sharing a line would bounce it between the
 * producing and the consuming core on each message.
 */
typedef _Atomic(uintptr_t) fl__mpscq_head_t; /* low bit set = marked empty */

/* Initialise with stub as the first node, marked empty. */
static inline void fl__mpscq_init(fl__mpscq_head_t *head, fl__qnode_t **tail,
                                  fl__qnode_t *stub)
{
    /* Relaxed: before any producer can reach the queue (a slot is
     * published by the release store of its gstate or chunk). */
    atomic_store_explicit(&stub->next, NULL, memory_order_relaxed);
    atomic_store_explicit(head, (uintptr_t)stub | 1u, memory_order_relaxed);
    *tail = stub;
}

/*
 * Push a chain first..last (already linked through next, in order; first
 * == last for one node) with one exchange. Returns true if the queue was
 * marked empty: the caller must then schedule the consumer. Any thread.
 */
static inline bool fl__mpscq_push_chain(fl__mpscq_head_t *head,
                                        fl__qnode_t *first, fl__qnode_t *last)
{
    /* Relaxed: last is ours until the exchange below publishes it. */
    atomic_store_explicit(&last->next, NULL, memory_order_relaxed);
    /* acq_rel: release publishes the chain's contents to the consumer
     * (paired with the acquire load in pop); acquire orders us after the
     * previous producer, whose node we link to. */
    uintptr_t prev =
        atomic_exchange_explicit(head, (uintptr_t)last, memory_order_acq_rel);
    fl__qnode_t *p = (fl__qnode_t *)(prev & ~(uintptr_t)1);
    /* Publishes the whole chain (its inner links were stored before);
     * pairs with the load of tail->next in pop. */
    atomic_store_explicit(&p->next, first, memory_order_release);
    return (prev & 1u) != 0;
}

/* Push one node; as fl__mpscq_push_chain. Any thread. */
static inline bool fl__mpscq_push(fl__mpscq_head_t *head, fl__qnode_t *n)
{
    return fl__mpscq_push_chain(head, n, n);
}

/*
 * Pop the next node, or NULL if none is visible. *freed is set to the
 * previous stub, which the caller now owns (NULL when nothing was popped).
 * Consumer only.
 */
static inline fl__qnode_t *fl__mpscq_pop(fl__qnode_t **tailp,
                                         fl__qnode_t **freed)
{
    fl__qnode_t *tail = *tailp;
    /* Pairs with the release store of p->next in push. */
    fl__qnode_t *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next == NULL) {
        *freed = NULL;
        return NULL;
    }
    *tailp = next;
    *freed = tail;
    return next;
}

/*
 * Try to mark the queue empty. Returns true if it is now marked (the
 * consumer must not run again until a producer reschedules it), false if
 * nodes arrived (the consumer must stay scheduled). Consumer only.
 */
static inline bool fl__mpscq_markempty(fl__mpscq_head_t *head,
                                       fl__qnode_t *tailn)
{
    uintptr_t tail = (uintptr_t)tailn;
    /* Relaxed: a first look; the CAS below decides. */
    uintptr_t h = atomic_load_explicit(head, memory_order_relaxed);
    if ((h & 1u) != 0)
        return true;
    if (h != tail)
        return false;
    /* acq_rel pairs with the exchange in push: a producer either sees the
     * mark (and schedules us) or we see its node (and stay scheduled). */
    return atomic_compare_exchange_strong_explicit(
        head, &tail, tail | 1u, memory_order_acq_rel, memory_order_relaxed);
}

#endif /* FL_ACTOR_MAILBOX_H */
