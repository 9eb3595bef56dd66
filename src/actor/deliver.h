/*
 * src/actor/deliver.h - the fast path of delivery (the rest is deliver.c):
 * putting a message into its actor's mailbox, and the sends a worker's
 * turn coalesces per target. Inline because fl_tell, fl_ask and every
 * exec run through it once per message. Included by actor/ only.
 */
#ifndef FL_ACTOR_DELIVER_H
#define FL_ACTOR_DELIVER_H

#include "actor/system.h"

/*
 * Weigh m for a's count (flow.h, "Sampled count"): its weight is a's
 * sampling factor k with probability 1/k, else 0, so that the sum of the
 * weights in a mailbox is, on average, the number of its messages, at one
 * atomic add per k messages. k is 1 (every message counted, exactly) for a
 * bound under FL__FLOW_EXACT. Returns the weight. The pushing thread.
 */
static inline uint32_t fl__flow_weigh(const fl__actor_t *a, fl_msg_t *m)
{
    /* The draw is a Weyl sequence (the golden ratio's fraction of 2^32
     * added per push): equidistributed, also over every subsequence a
     * thread's periodic pattern of targets picks, at an add per push.
     * Relaxed: k and k_upto are set at spawn, published by gstate. */
    uint32_t x = fl__tls_rng += 0x9E3779B9u;
    uint32_t w = x <= atomic_load_explicit(&a->k_upto, memory_order_relaxed)
                     ? atomic_load_explicit(&a->k, memory_order_relaxed)
                     : 0;
    m->flags = (m->flags & ((1u << FL__MF_WEIGHT_SHIFT) - 1)) |
               (w << FL__MF_WEIGHT_SHIFT);
    return w;
}

/*
 * Count weight w pushed to a by the calling thread (flow.h). When a is
 * then over its bound and the caller runs a message of an actor of sys, a
 * becomes the caller's mute candidate. Any thread; not blocking.
 */
static inline void fl__flow_pushed(fl_system_t *sys, fl__actor_t *a, uint32_t w)
{
    /* A weightless push does not look: a sender over the bound is seen at
     * one of its next k pushes. */
    if (w == 0)
        return;
    /* Relaxed: a count; the wake-up's ordering is the turn end's and the
     * muter's (flow.c). */
    uint32_t q =
        atomic_fetch_add_explicit(&a->queued, w, memory_order_relaxed) + w;
    if (fl__unlikely(q >
                     atomic_load_explicit(&a->bound, memory_order_relaxed)) &&
        fl__tls_sys == sys && (fl__tls_actor != 0 || fl__tls_turn.in_turn))
        fl__tls_mute_on = a;
}

/* Push the chain first..last, of total weight w, into a's mailbox, count
 * it, and schedule a if that made it runnable. CONSUMES the messages. Any
 * thread; not blocking. */
static inline void fl__push_chain(fl_system_t *sys, fl__actor_t *a,
                                  fl_msg_t *first, fl_msg_t *last, uint32_t w)
{
    /* Counted before the push: the consumer may count them out as soon
     * as it sees them. */
    fl__flow_pushed(sys, a, w);
    if (fl__mpscq_push_chain(&a->head, &first->node, &last->node))
        fl__sched_schedule(&sys->sched, a);
}

/* Push the sends t coalesced (t->out_to is not NULL) and empty the
 * chain: fl__turn_push_out, inline for the turn's flush after each
 * message. Worker thread. */
static FL_ALWAYS_INLINE void fl__turn_push_now(fl__turn_t *t)
{
    fl__actor_t *a = t->out_to;
    uint32_t w = t->out_w;
    t->out_to = NULL;
    t->out_n = 0;
    t->out_w = 0;
    fl__push_chain(t->sys, a, t->out_first, t->out_last, w);
}

/* Push m into a's mailbox and schedule a if that made it runnable.
 * CONSUMES m. Any thread; not blocking. */
static inline void fl__push(fl_system_t *sys, fl__actor_t *a, fl_msg_t *m)
{
    fl__push_chain(sys, a, m, m, fl__flow_weigh(a, m));
}

/* Sends made in one callback to one target are coalesced into a chain and
 * pushed with a single exchange: the mailbox head is the one line every
 * sender writes, and bouncing it between cores per message is what limits
 * many-to-one throughput. Flushed when the target changes, after a batch,
 * and when the callback returns, so per-sender order and the order between
 * targets are those of the fl_tell calls. The chain lives in the worker
 * thread's turn record (fl__tls_turn, system.h). */
#define FL__OUT_MAX 64u

/* The rare turns of fl__send_coalesced (deliver.c): m goes to another
 * target than the chain held, which is pushed first. Returns FL_OK. */
int fl__send_switch(fl__turn_t *t, fl__actor_t *a, fl_msg_t *m);

/* Add m (to a) to the chain t holds. Returns FL_OK. Every call in it is
 * a tail call, so a sender's fast path saves no registers for them. */
static inline int fl__send_coalesced(fl__turn_t *t, fl__actor_t *a, fl_msg_t *m)
{
    fl__actor_t *held = t->out_to;
    if (fl__likely(held == a)) {
        /* Relaxed: the chain is this thread's until the release store
         * that links it in fl__mpscq_push_chain publishes it. */
        atomic_store_explicit(&t->out_last->node.next, &m->node,
                              memory_order_relaxed);
        t->out_last = m;
        t->out_w += fl__flow_weigh(a, m);
        if (fl__unlikely(++t->out_n >= FL__OUT_MAX))
            return fl__turn_push_out(t);
        return FL_OK;
    }
    if (fl__unlikely(held != NULL))
        return fl__send_switch(t, a, m);
    t->out_to = a;
    t->out_first = t->out_last = m;
    t->out_w = fl__flow_weigh(a, m);
    t->out_n = 1;
    return FL_OK;
}

/* fl__deliver, but an undeliverable m is left to the caller
 * (FL_EUNREACHABLE) to dead-letter once it holds no lock. */
static inline int fl__deliver_or_keep(fl_system_t *sys, fl_msg_t *m,
                                      bool control)
{
    fl__actor_t *a = fl__target_of(sys, m, control);
    if (a == NULL)
        return FL_EUNREACHABLE;
    fl__turn_t *t = &fl__tls_turn;
    if (t->in_turn && t->sys == sys && !control)
        return fl__send_coalesced(t, a, m);
    fl__push(sys, a, m);
    return FL_OK;
}

/*
 * Deliver m to the actor it names (m->target). CONSUMES m. control = true
 * lets control messages (exec, stop) reach actors that have a stop
 * request pending and bypasses the closed check (used by the timer thread
 * and stop). Returns FL_OK or FL_EUNREACHABLE (m was dead-lettered).
 * Any thread; not blocking.
 */
static inline int fl__deliver(fl_system_t *sys, fl_msg_t *m, bool control)
{
    int rc = fl__deliver_or_keep(sys, m, control);
    if (rc != FL_OK)
        fl__dead_letter(sys, m, "has stopped or does not exist");
    return rc;
}

#endif /* FL_ACTOR_DELIVER_H */
