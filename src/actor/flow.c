/*
 * flow.c - flow control (the rules: flow.h): muting an actor on a mailbox
 * over its bound, waking what waits when the mailbox drains, the bounded
 * tell for threads outside the runtime, and the drain callbacks the
 * remote side stops reading on.
 *
 * The waiters of a mailbox are under the lock of its stripe (slot modulo
 * FL__FLOW_STRIPES): muted actors in a list through their slots
 * (actor->mutes, then each one's mute_next), threads on the stripe's
 * condition variable, callbacks in the stripe's list. A waiter adds
 * itself, then looks at the mailbox again; the actor's turn end subtracts
 * from `queued`, then looks for waiters: both with sequentially
 * consistent operations, so at least one of them sees the other and no
 * drain is missed (Dekker's pattern, as in remote/inbound.c).
 */
#include "actor/flow.h"
#include "actor/deliver.h"
#include "actor/system.h"

#include <errno.h>
#include <time.h>

_Thread_local fl__actor_t *fl__tls_mute_on;
_Thread_local uint32_t fl__tls_rng;

void fl__flow_init(fl__flow_t *f)
{
    for (unsigned i = 0; i < FL__FLOW_STRIPES; i++) {
        pthread_mutex_init(&f->s[i].mu, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&f->s[i].cv, &ca);
        pthread_condattr_destroy(&ca);
        f->s[i].cbs = NULL;
    }
}

void fl__flow_fini(fl__flow_t *f)
{
    for (unsigned i = 0; i < FL__FLOW_STRIPES; i++) {
        pthread_mutex_destroy(&f->s[i].mu);
        pthread_cond_destroy(&f->s[i].cv);
    }
}

static fl__flow_stripe_t *stripe_of(fl_system_t *sys, const fl__actor_t *a)
{
    return &sys->flow.s[a->slot % FL__FLOW_STRIPES];
}

static uint32_t bound_of(const fl__actor_t *a)
{
    /* Relaxed: set at spawn, published by gstate. */
    return atomic_load_explicit(&a->bound, memory_order_relaxed);
}

static uint32_t queued_of(const fl__actor_t *a)
{
    /* seq_cst: after the waiter's store, against the turn end's
     * subtraction (see the top of this file). */
    return atomic_load_explicit(&a->queued, memory_order_seq_cst);
}

/* ---- muted actors ------------------------------------------------------ */

/* Under r's stripe lock: take s out of r's list. True if it was there. */
static bool unlink_muted(fl_system_t *sys, fl__actor_t *r, fl__actor_t *s)
{
    if (s->muted_on != r->slot)
        return false;
    /* Relaxed under the lock (see the top of this file). */
    uint32_t at = atomic_load_explicit(&r->mutes, memory_order_relaxed);
    if (at == s->slot) {
        atomic_store_explicit(&r->mutes, s->mute_next, memory_order_relaxed);
    } else {
        fl__actor_t *p = fl__slot(sys, at);
        while (p->mute_next != s->slot)
            p = fl__slot(sys, p->mute_next);
        p->mute_next = s->mute_next;
    }
    s->muted_on = FL__NO_SLOT;
    return true;
}

bool fl__flow_mute(fl_system_t *sys, fl__actor_t *s, fl__actor_t *r)
{
    /* An actor others may wait on is not held back: its own mailbox above
     * its low mark (flow.h: no cycle of muted actors). */
    if (atomic_load_explicit(&s->queued, memory_order_relaxed) >
        fl__flow_low(bound_of(s)))
        return false;
    fl__flow_stripe_t *st = stripe_of(sys, r);
    pthread_mutex_lock(&st->mu);
    if (queued_of(r) <= bound_of(r)) {
        pthread_mutex_unlock(&st->mu);
        return false;
    }
    s->muted_on = r->slot;
    s->mute_next = atomic_load_explicit(&r->mutes, memory_order_relaxed);
    /* seq_cst: before the look at r's mailbox below. */
    atomic_store_explicit(&r->mutes, s->slot, memory_order_seq_cst);
    pthread_mutex_unlock(&st->mu);
    /* Relaxed: a statistic. */
    atomic_fetch_add_explicit(&sys->flow.mutes, 1, memory_order_relaxed);
    if (queued_of(r) > fl__flow_low(bound_of(r)))
        return true;
    /* r drained meanwhile, and its turn end may not have seen us. */
    pthread_mutex_lock(&st->mu);
    bool back = unlink_muted(sys, r, s);
    pthread_mutex_unlock(&st->mu);
    /* Not back: r's wake took s and schedules it. */
    return !back;
}

void fl__flow_wake(fl_system_t *sys, fl__actor_t *r)
{
    fl__flow_stripe_t *st = stripe_of(sys, r);
    pthread_mutex_lock(&st->mu);
    /* Relaxed under the lock. */
    uint32_t list =
        atomic_exchange_explicit(&r->mutes, FL__NO_SLOT, memory_order_relaxed);
    for (uint32_t at = list; at != FL__NO_SLOT;) {
        fl__actor_t *s = fl__slot(sys, at);
        s->muted_on = FL__NO_SLOT;
        at = s->mute_next;
    }
    if (atomic_load_explicit(&r->waits, memory_order_relaxed) != 0) {
        pthread_cond_broadcast(&st->cv);
        for (fl__drain_wait_t **p = &st->cbs; *p != NULL;) {
            fl__drain_wait_t *w = *p;
            if (w->on != r) {
                p = &w->next;
                continue;
            }
            *p = w->next;
            w->armed = false;
            atomic_fetch_sub_explicit(&r->waits, 1, memory_order_relaxed);
            w->fn(w->arg);
        }
    }
    pthread_mutex_unlock(&st->mu);
    /* The muted actors are nobody's until scheduled: read each link before
     * the actor can run (and be muted again). */
    while (list != FL__NO_SLOT) {
        fl__actor_t *s = fl__slot(sys, list);
        list = s->mute_next;
        fl__sched_schedule(&sys->sched, s);
    }
}

/* ---- threads outside the runtime ------------------------------------- */

int fl__flow_wait_room(fl_system_t *sys, fl__actor_t *a, uint64_t deadline_ns)
{
    fl__flow_stripe_t *st = stripe_of(sys, a);
    int rc = FL_OK;
    pthread_mutex_lock(&st->mu);
    /* seq_cst: before the look at the mailbox (see the top). */
    atomic_fetch_add_explicit(&a->waits, 1, memory_order_seq_cst);
    while (queued_of(a) >= bound_of(a) && !fl__sys_closed(sys)) {
        if (deadline_ns == 0) {
            pthread_cond_wait(&st->cv, &st->mu);
            continue;
        }
        uint64_t now = fl_clock_now_ns();
        if (now >= deadline_ns) {
            rc = FL_ETIMEDOUT;
            break;
        }
        /* fl_clock_now_ns is CLOCK_MONOTONIC, the condition's clock. */
        struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000u),
                              .tv_nsec = (long)(deadline_ns % 1000000000u)};
        (void)pthread_cond_timedwait(&st->cv, &st->mu, &ts);
    }
    atomic_fetch_sub_explicit(&a->waits, 1, memory_order_relaxed);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void fl__flow_wake_threads(fl_system_t *sys)
{
    for (unsigned i = 0; i < FL__FLOW_STRIPES; i++) {
        pthread_mutex_lock(&sys->flow.s[i].mu);
        pthread_cond_broadcast(&sys->flow.s[i].cv);
        pthread_mutex_unlock(&sys->flow.s[i].mu);
    }
}

/* The live actor id names, or NULL. */
static fl__actor_t *live_actor(fl_system_t *sys, uint64_t id)
{
    fl__actor_t *a = fl__slot(sys, FL__REF_SLOT(id));
    /* Pairs with the release stores of gstate. */
    if (a == NULL ||
        !fl__ref_live(atomic_load_explicit(&a->gstate, memory_order_acquire),
                      id))
        return NULL;
    return a;
}

int fl_tell_bounded(fl_system_t *sys, fl_actor_ref_t to, fl_msg_t *msg,
                    int64_t timeout_ms)
{
    if (msg == NULL)
        return FL_EINVAL;
    if (sys == NULL || (timeout_ms < 0 && timeout_ms != FL_INFINITE)) {
        fl_msg_free(msg);
        return FL_EINVAL;
    }
    fl__actor_t *a = live_actor(sys, to.id);
    if (a != NULL && queued_of(a) >= bound_of(a)) {
        /* Relaxed: a statistic. */
        atomic_fetch_add_explicit(&sys->flow.tells_full, 1,
                                  memory_order_relaxed);
        if (timeout_ms == 0)
            return FL_EFULL;
        if (fl__tls_sys != NULL || fl__tls_no_block)
            return FL_EDEADLK;
        /* Saturated: a far timeout never wraps into the past. */
        uint64_t deadline =
            timeout_ms == FL_INFINITE
                ? 0
                : fl__add_sat(fl_clock_now_ns(), fl__ms_to_ns(timeout_ms));
        /* Counted in: shutdown waits for this thread before freeing the
         * stripes; its close wakes it. */
        bool external = fl__sys_enter(sys);
        int rc =
            fl__sys_closed(sys) ? FL_OK : fl__flow_wait_room(sys, a, deadline);
        fl__sys_leave(sys, external);
        if (rc != FL_OK)
            return rc;
    }
    return fl_tell(sys, to, msg);
}

int fl_actor_queued(fl_system_t *sys, fl_actor_ref_t ref, uint32_t *out)
{
    if (sys == NULL || out == NULL)
        return FL_EINVAL;
    *out = 0;
    fl__actor_t *a = live_actor(sys, ref.id);
    if (a == NULL)
        return FL_EUNREACHABLE;
    /* Relaxed: a snapshot. */
    *out = atomic_load_explicit(&a->queued, memory_order_relaxed);
    return FL_OK;
}

/* ---- drain callbacks ---------------------------------------------------- */

bool fl__actor_over_bound(fl_system_t *sys, uint64_t id)
{
    fl__actor_t *a = live_actor(sys, id);
    /* Relaxed: a snapshot. */
    return a != NULL &&
           atomic_load_explicit(&a->queued, memory_order_relaxed) > bound_of(a);
}

/* Take w out of its stripe's list; true if it was armed. */
static bool disarm(fl_system_t *sys, fl__drain_wait_t *w)
{
    if (w->on == NULL)
        return false;
    fl__flow_stripe_t *st = stripe_of(sys, w->on);
    pthread_mutex_lock(&st->mu);
    bool was = w->armed;
    if (was) {
        fl__drain_wait_t **p = &st->cbs;
        while (*p != w)
            p = &(*p)->next;
        *p = w->next;
        w->armed = false;
        /* Relaxed under the lock. */
        atomic_fetch_sub_explicit(&w->on->waits, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&st->mu);
    return was;
}

int fl__drain_wait_arm(fl_system_t *sys, uint64_t id, fl__drain_wait_t *w,
                       void (*fn)(void *), void *arg)
{
    fl__actor_t *a = live_actor(sys, id);
    if (a == NULL)
        return FL_EUNREACHABLE;
    fl__flow_stripe_t *st = stripe_of(sys, a);
    pthread_mutex_lock(&st->mu);
    if (queued_of(a) <= bound_of(a)) {
        pthread_mutex_unlock(&st->mu);
        return FL_EALREADY;
    }
    w->fn = fn;
    w->arg = arg;
    w->on = a;
    w->armed = true;
    w->next = st->cbs;
    st->cbs = w;
    /* seq_cst: before the look at the mailbox below. */
    atomic_fetch_add_explicit(&a->waits, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&st->mu);
    if (queued_of(a) > fl__flow_low(bound_of(a)))
        return FL_OK;
    /* Drained meanwhile, and its turn end may not have seen w; if it did,
     * fn has run: armed, as the contract says. */
    return disarm(sys, w) ? FL_EALREADY : FL_OK;
}

void fl__drain_wait_cancel(fl_system_t *sys, fl__drain_wait_t *w)
{
    (void)disarm(sys, w);
}
