/*
 * turn.c - an actor's turn: handling one message (the start hook first,
 * a stop request at the message boundary, user messages and exec), the
 * batch a worker runs, and the turn a claiming thread runs itself under a
 * time budget.
 */
#include "actor/claim.h"
#include "actor/deliver.h"
#include "actor/flow.h"
#include "actor/system.h"
#include "common/prof.h"

static void run_start(fl_system_t *sys, fl__actor_t *a, fl_actor_ref_t ref)
{
    /* Pairs with the release store of ext in fl_actor_termination. */
    fl__actor_ext_t *ext = atomic_load_explicit(&a->ext, memory_order_acquire);
    if (ext != NULL && ext->on_start != NULL)
        ext->on_start(sys, ref, a->state);
}

/* The rare cases of handle(), before the message: a dead letter, the
 * start hook of a new generation, a stop requested. True when m is to be
 * handled; false when it was dead-lettered. */
static __attribute__((noinline)) bool
handle_first(fl_system_t *sys, fl__actor_t *a, fl_msg_t *m, uint64_t gs)
{
    if (!fl__ref_live(gs, m->target)) {
        fl__dead_letter_contents(sys, m, "has stopped");
        return false;
    }
    fl_actor_ref_t ref = {m->target};
    /* The start hook runs before anything else this generation handles,
     * whatever reached the mailbox first (a stop request, or a message to
     * a ref found by name); the START message is only a wake-up. */
    if (a->started_gen != FL__GEN(gs)) {
        a->started_gen = FL__GEN(gs);
        fl__tls_actor = ref.id;
        run_start(sys, a, ref);
        fl__tls_actor = 0;
        /* As above: the hook may have asked for a stop. */
        gs = atomic_load_explicit(&a->gstate, memory_order_acquire);
    }
    if (FL__STATE(gs) == FL__A_STOPREQ) {
        fl__actor_finish_stop(sys, a, gs);
        fl__dead_letter_contents(sys, m, "stopped before handling it");
        return false;
    }
    return true;
}

/* A user message whose callback returned without answering what it owes
 * (an ask, a settle function). */
static __attribute__((noinline)) void unanswered(fl_msg_t *m)
{
    fl__msg_settle(m, FL_ENOREPLY, "the actor returned without answering");
    if (m->reply != NULL) {
        fl_future_t *f = m->reply;
        m->reply = NULL;
        fl_future_fail(f, FL_ENOREPLY,
                       "actor %016llx returned without answering the ask",
                       (unsigned long long)m->target);
        fl_future_release(f);
    }
}

static __attribute__((noinline)) void handle_other(fl_system_t *sys,
                                                   fl__actor_t *a, fl_msg_t *m)
{
    if (m->kind == FL__MSG_EXEC) {
        fl__exec_t *e = fl__msg_payload(m);
        fl_actor_ref_t ref = {m->target};
        e->fn(sys, ref, a->state, e->arg);
    }
    /* START: the hook ran in handle_first; STOP: only a wake-up. */
}

static FL_ALWAYS_INLINE void handle(fl_system_t *sys, fl__actor_t *a,
                                    fl_msg_t *m)
{
    /* Pairs with the release stores of gstate in spawn and
     * fl__actor_finish_stop. The common case is one compare: m is for the
     * live generation, whose start hook has run, with no stop requested. */
    uint64_t gs = atomic_load_explicit(&a->gstate, memory_order_acquire);
    uint64_t live = (m->target & ~(uint64_t)0xffffffffu) | FL__A_LIVE;
    if (fl__unlikely(gs != live || a->started_gen != FL__GEN(gs)) &&
        !handle_first(sys, a, m, gs))
        return;
    fl_actor_ref_t ref = {m->target};
    fl__tls_actor = ref.id;
    if (fl__likely(m->kind == FL__MSG_USER)) {
        a->receive(sys, ref, a->state, m);
        if (fl__unlikely((m->flags & FL__MF_SETTLE) || m->reply != NULL))
            unanswered(m);
    } else {
        handle_other(sys, a, m);
    }
    fl__tls_actor = 0;
    /* A stop requested during this message (by the actor itself or anyone)
     * takes effect now, not after the rest of the batch. Pairs with the
     * CAS in fl__actor_request_stop. */
    gs = atomic_load_explicit(&a->gstate, memory_order_acquire);
    if (fl__unlikely(FL__STATE(gs) == FL__A_STOPREQ) &&
        FL__GEN(gs) == FL__REF_GEN(ref.id))
        fl__actor_finish_stop(sys, a, gs);
}

/*
 * A turn with a time budget reads the clock after the first message, and
 * then after every message while its messages are slow; while they are
 * fast it reads it after 2, 4, then every BUDGET_STRIDE_MAX messages, as
 * long as that many more, at the average pace so far, fit in what is left
 * of the budget. So a run of fast calls costs a few clock reads per turn,
 * not one per call, and a slow message is still seen at once unless it
 * comes after fast ones, when at most BUDGET_STRIDE_MAX - 1 more messages
 * run before the cut.
 */
#define BUDGET_STRIDE_MAX 8u

static unsigned budget_stride(unsigned stride, unsigned done, uint64_t start,
                              uint64_t now, uint64_t until)
{
    uint64_t pace = (now - start) / done; /* ns per message so far */
    unsigned next = stride < BUDGET_STRIDE_MAX ? 2 * stride : stride;
    return now < until && pace * next < until - now ? next : 1;
}

/* One turn of a (up to the system's batch of messages) on a worker with
 * turn record t, or on a thread outside the workers (t NULL: no coalesced
 * sends, no held back output), begun at `start` and ended early at the first
 * message boundary at or past `until` where the clock is read (ns; 0 = no
 * limit; *cut then says so). True when messages remain: the caller schedules a.
 */
static FL_ALWAYS_INLINE bool run_turn(fl_system_t *sys, fl__actor_t *a,
                                      fl__turn_t *t, uint64_t start,
                                      uint64_t until, bool *cut)
{
    unsigned batch = sys->batch;
    unsigned stride = 1, unchecked = 0;
    uint32_t popped = 0; /* the weight taken (flow.h) */
    fl__actor_t *mute_on = NULL;
    bool more = true;
    if (t != NULL) {
        t->sys = sys;
        t->in_turn = true;
    }
    fl__tls_mute_on = NULL;
    for (unsigned i = 0; i < batch; i++) {
        fl__qnode_t *freed;
        fl__qnode_t *n = fl__mpscq_pop(&a->tail, &freed);
        if (freed != NULL && freed != &a->stub)
            fl__msg_release_mem((fl_msg_t *)freed);
        if (n == NULL) {
            more = !fl__mpscq_markempty(&a->head, a->tail);
            break;
        }
        popped += fl__msg_weight((fl_msg_t *)n);
        FL_PROF(msgs);
        handle(sys, a, (fl_msg_t *)n);
        /* What the callback sent is delivered when it returns. */
        if (t != NULL && t->out_to != NULL) {
            FL_PROF(chains);
            fl__turn_push_now(t);
        }
        /* A send over a mailbox's bound ends the turn here, to mute the
         * actor (flow.h); the actor stays unmarked, as scheduled. */
        if (fl__unlikely(fl__tls_mute_on != NULL)) {
            mute_on = fl__tls_mute_on;
            fl__tls_mute_on = NULL;
            if (mute_on != a) {
                if (t != NULL && fl__tls_flush != NULL)
                    fl__tls_flush(false);
                break;
            }
            mute_on = NULL;
        }
        if (until != 0 && ++unchecked == stride) {
            uint64_t now = fl_clock_now_ns();
            if (now >= until) {
                /* Idle again if nothing is queued; else the workers go
                 * on. */
                *cut = true;
                more = !fl__mpscq_markempty(&a->head, a->tail);
                break;
            }
            stride = budget_stride(stride, i + 1, start, now, until);
            unchecked = 0;
        }
        if (t != NULL && fl__tls_flush != NULL)
            /* Relaxed: a hint whether more is queued; a miss only
             * flushes the held-back output one message early. */
            fl__tls_flush(
                i + 1 < batch &&
                atomic_load_explicit(&n->next, memory_order_relaxed) != NULL);
    }
    /* A turn that ended with messages the clock did not see: did the
     * last one end past the budget? */
    if (until != 0 && unchecked != 0 && !*cut)
        *cut = fl_clock_now_ns() >= until;
    if (t != NULL)
        t->in_turn = false;
    fl__flow_turn_end(sys, a, popped);
    /* Muted: r's drain schedules a. */
    if (mute_on != NULL && fl__flow_mute(sys, a, mute_on)) {
        FL_PROF(mutes);
        return false;
    }
    return more;
}

void fl__actor_loop(struct fl__worker *w, void *ctx)
{
    fl_system_t *sys = ctx;
    fl__turn_t *t = &fl__tls_turn;
    fl__actor_t *a;
    while ((a = fl__sched_take(w)) != NULL)
        if (run_turn(sys, a, t, 0, 0, NULL))
            fl__sched_requeue(w, a);
}

bool fl__claim_run(fl__claim_t *claim, uint64_t budget_ns)
{
    fl_system_t *sys = claim->sys;
    fl__actor_t *a = claim->a;
    bool cut = false;
    if (a == NULL)
        return false;
    claim->sys = NULL;
    claim->a = NULL;
    /* A runtime thread for the turn: blocking waits refuse, tells to this
     * system are the actor's own. */
    fl__tls_sys = sys;
    uint64_t start = budget_ns != 0 ? fl_clock_now_ns() : 0;
    bool more = run_turn(sys, a, NULL, start,
                         budget_ns != 0 ? start + budget_ns : 0, &cut);
    fl__tls_sys = NULL;
    if (more)
        fl__sched_schedule(&sys->sched, a);
    fl__sys_leave(sys, true);
    return cut;
}
