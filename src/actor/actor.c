/*
 * actor.c - spawning, stopping, tell/ask, running an actor's turn, dead
 * letters, running code on an actor's thread, names and termination.
 */
#include "actor/claim.h"
#include "actor/future.h"
#include "actor/system.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- dead letters
 * -------------------------------------------------------------- */

/* Handle what a dead letter owes (its ask, its exec argument); memory stays. */
void fl__dead_letter_contents(fl_system_t *sys, fl_msg_t *m, const char *why)
{
    if (m->kind == FL__MSG_START || m->kind == FL__MSG_STOP)
        return; /* control messages of a gone actor: nothing owed */
    atomic_fetch_add_explicit(&sys->dead_letters, 1, memory_order_relaxed);
    FL_LOG(FL_LOG_DEBUG, "dead letter (type %u) to actor %016llx: %s",
           (unsigned)m->type, (unsigned long long)m->target, why);
    if (m->reply != NULL || (m->flags & FL__MF_SETTLE)) {
        char text[160];
        snprintf(text, sizeof text, "recipient unreachable: actor %016llx %s",
                 (unsigned long long)m->target, why);
        fl__msg_settle(m, FL_EUNREACHABLE, text);
        if (m->reply != NULL) {
            fl_future_t *f = m->reply;
            m->reply = NULL;
            fl_future_fail(f, FL_EUNREACHABLE, "%s", text);
            fl_future_release(f);
        }
    }
    if (m->kind == FL__MSG_EXEC) {
        fl__exec_t *e = fl__msg_payload(m);
        if (e->arg_free != NULL)
            e->arg_free(e->arg);
        e->arg_free = NULL;
    }
}

void fl__dead_letter(fl_system_t *sys, fl_msg_t *m, const char *why)
{
    fl__dead_letter_contents(sys, m, why);
    fl__msg_release_mem(m);
}

/* ---- delivery
 * ------------------------------------------------------------------ */

void fl__push(fl_system_t *sys, fl__actor_t *a, fl_msg_t *m)
{
    if (fl__mpscq_push(&a->mq, &m->node))
        fl__sched_schedule(&sys->sched, a);
}

/* Sends made in one callback to one target are coalesced into a chain and
 * pushed with a single exchange: the mailbox head is the one line every
 * sender writes, and bouncing it between cores per message is what limits
 * many-to-one throughput. Flushed when the target changes, after a batch,
 * and when the callback returns, so per-sender order and the order between
 * targets are those of the fl_tell calls. The chain lives in the worker
 * thread's turn record (fl__tls_turn, system.h). */
#define FL__OUT_MAX 64u

void fl__turn_push_out(fl__turn_t *t)
{
    fl__actor_t *a = t->out_to;
    fl_msg_t *first = t->out_first, *last = t->out_last;
    t->out_to = NULL;
    t->out_first = t->out_last = NULL;
    t->out_n = 0;
    if (fl__mpscq_push_chain(&a->mq, &first->node, &last->node))
        fl__sched_schedule(&t->sys->sched, a);
}

static inline void send_coalesced(fl__turn_t *t, fl__actor_t *a, fl_msg_t *m)
{
    if (t->out_to != a) {
        fl__turn_flush(t);
        t->out_to = a;
        t->out_first = m;
    } else {
        /* Relaxed: the chain is this thread's until the release store
         * that links it in fl__mpscq_push_chain publishes it. */
        atomic_store_explicit(&t->out_last->node.next, &m->node,
                              memory_order_relaxed);
    }
    t->out_last = m;
    if (++t->out_n >= FL__OUT_MAX)
        fl__turn_push_out(t);
}

int fl__deliver(fl_system_t *sys, fl_msg_t *m, bool control)
{
    int rc = fl__deliver_or_keep(sys, m, control);
    if (rc != FL_OK)
        fl__dead_letter(sys, m, "has stopped or does not exist");
    return rc;
}

int fl__deliver_or_keep(fl_system_t *sys, fl_msg_t *m, bool control)
{
    fl__actor_t *a = fl__target_of(sys, m, control);
    if (a == NULL)
        return FL_EUNREACHABLE;
    fl__turn_t *t = &fl__tls_turn;
    if (t->in_turn && t->sys == sys && !control)
        send_coalesced(t, a, m);
    else
        fl__push(sys, a, m);
    return FL_OK;
}

/* ---- the turn
 * ------------------------------------------------------------------ */

static void run_start(fl_system_t *sys, fl__actor_t *a, fl_actor_ref_t ref)
{
    fl__actor_ext_t *ext = atomic_load_explicit(&a->ext, memory_order_acquire);
    if (ext != NULL && ext->on_start != NULL)
        ext->on_start(sys, ref, a->state);
}

static void handle(fl_system_t *sys, fl__actor_t *a, fl_msg_t *m)
{
    /* Pairs with the release stores of gstate in spawn and
     * fl__actor_finish_stop. */
    uint64_t gs = atomic_load_explicit(&a->gstate, memory_order_acquire);
    if (!fl__ref_live(gs, m->target)) {
        fl__dead_letter_contents(sys, m, "has stopped");
        return;
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
        gs = atomic_load_explicit(&a->gstate, memory_order_acquire);
    }
    if (FL__STATE(gs) == FL__A_STOPREQ) {
        fl__actor_finish_stop(sys, a, gs);
        fl__dead_letter_contents(sys, m, "stopped before handling it");
        return;
    }
    fl__tls_actor = ref.id;
    switch (m->kind) {
    case FL__MSG_USER:
        a->receive(sys, ref, a->state, m);
        fl__msg_settle(m, FL_ENOREPLY, "the actor returned without answering");
        if (m->reply != NULL) {
            fl_future_t *f = m->reply;
            m->reply = NULL;
            fl_future_fail(f, FL_ENOREPLY,
                           "actor %016llx returned without answering the ask",
                           (unsigned long long)ref.id);
            fl_future_release(f);
        }
        break;
    case FL__MSG_START: /* the hook ran above */
        break;
    case FL__MSG_EXEC: {
        fl__exec_t *e = fl__msg_payload(m);
        e->fn(sys, ref, a->state, e->arg);
        break;
    }
    default:
        break;
    }
    fl__tls_actor = 0;
    /* A stop requested during this message (by the actor itself or anyone)
     * takes effect now, not after the rest of the batch. */
    gs = atomic_load_explicit(&a->gstate, memory_order_acquire);
    if (FL__STATE(gs) == FL__A_STOPREQ && FL__GEN(gs) == FL__REF_GEN(ref.id))
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
static bool run_turn(fl_system_t *sys, fl__actor_t *a, fl__turn_t *t,
                     uint64_t start, uint64_t until, bool *cut)
{
    unsigned batch = sys->batch;
    unsigned stride = 1, unchecked = 0;
    bool more = true;
    if (t != NULL) {
        t->sys = sys;
        t->in_turn = true;
    }
    for (unsigned i = 0; i < batch; i++) {
        fl__qnode_t *freed;
        fl__qnode_t *n = fl__mpscq_pop(&a->mq, &freed);
        if (freed != NULL && freed != &a->stub)
            fl__msg_release_mem((fl_msg_t *)freed);
        if (n == NULL) {
            more = !fl__mpscq_markempty(&a->mq);
            break;
        }
        handle(sys, a, (fl_msg_t *)n);
        if (until != 0 && ++unchecked == stride) {
            uint64_t now = fl_clock_now_ns();
            if (now >= until) {
                /* Idle again if nothing is queued; else the workers go
                 * on. */
                *cut = true;
                more = !fl__mpscq_markempty(&a->mq);
                break;
            }
            stride = budget_stride(stride, i + 1, start, now, until);
            unchecked = 0;
        }
        if (t == NULL)
            continue;
        /* What the callback sent is delivered when it returns. */
        fl__turn_flush(t);
        if (fl__tls_flush != NULL)
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
    return more;
}

bool fl__actor_run(void *ctx, struct fl__actor *a)
{
    return run_turn(ctx, a, &fl__tls_turn, 0, 0, NULL);
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

#define FL__NAME_MAX 255

/* ---- names
 * ------------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

static fl__name_t **name_slot(fl_system_t *sys, const char *name)
{
    if (sys->namecap == 0)
        return NULL;
    fl__name_t **p = &sys->names[hash_str(name) & (sys->namecap - 1)];
    while (*p != NULL && strcmp((*p)->name, name) != 0)
        p = &(*p)->next;
    return p;
}

/* Under sys->lock. */
static int name_add(fl_system_t *sys, char *name, uint64_t id)
{
    if (sys->nnames + 1 > sys->namecap / 2) {
        size_t cap = sys->namecap ? sys->namecap * 2 : 64;
        fl__name_t **b = fl__calloc(cap, sizeof *b);
        if (b == NULL)
            return FL_ENOMEM;
        for (size_t i = 0; i < sys->namecap; i++) {
            fl__name_t *n = sys->names[i];
            while (n != NULL) {
                fl__name_t *next = n->next;
                size_t k = hash_str(n->name) & (cap - 1);
                n->next = b[k];
                b[k] = n;
                n = next;
            }
        }
        fl__free(sys->names);
        sys->names = b;
        sys->namecap = cap;
    }
    fl__name_t *n = fl__malloc(sizeof *n);
    if (n == NULL)
        return FL_ENOMEM;
    n->name = name;
    n->id = id;
    fl__name_t **p = &sys->names[hash_str(name) & (sys->namecap - 1)];
    n->next = *p;
    *p = n;
    sys->nnames++;
    return FL_OK;
}

/* Under sys->lock. */
static void name_del(fl_system_t *sys, const char *name)
{
    fl__name_t **p = name_slot(sys, name);
    if (p != NULL && *p != NULL) {
        fl__name_t *n = *p;
        *p = n->next;
        fl__free(n);
        sys->nnames--;
    }
}

/* ---- stopping
 * ---------------------------------------------------------------- */

void fl__actor_finish_stop(fl_system_t *sys, fl__actor_t *a, uint64_t gs)
{
    uint32_t gen = FL__GEN(gs);
    fl_actor_ref_t ref = {FL__REF(gen, a->slot)};
    fl__actor_ext_t *ext = atomic_load_explicit(&a->ext, memory_order_acquire);
    if (ext != NULL && ext->on_stop != NULL) {
        fl__tls_actor = ref.id;
        ext->on_stop(sys, ref, a->state);
        fl__tls_actor = 0;
    }
    pthread_mutex_lock(&sys->lock);
    ext = atomic_load_explicit(&a->ext, memory_order_acquire);
    atomic_store_explicit(&a->ext, NULL, memory_order_relaxed);
    if (ext != NULL && ext->name != NULL)
        name_del(sys, ext->name);
    uint32_t ngen = gen + 1 == 0 ? 1 : gen + 1;
    a->receive = NULL;
    a->state = NULL;
    /* From here references to this incarnation are stale. */
    atomic_store_explicit(&a->gstate, FL__GS(ngen, FL__A_FREE),
                          memory_order_release);
    a->next_free = sys->free_head;
    sys->free_head = a->slot;
    if (--sys->live == 0)
        pthread_cond_broadcast(&sys->idle_cv);
    pthread_mutex_unlock(&sys->lock);

    if (ext != NULL) {
        fl__term_t *t = ext->waiters;
        while (t != NULL) {
            fl__term_t *next = t->next;
            fl_future_complete(t->f, NULL, NULL);
            fl_future_release(t->f);
            fl__free(t);
            t = next;
        }
        fl__free(ext->name);
        fl__free(ext);
    }
}

/* ---- spawn and stop
 * ------------------------------------------------------------ */

/* Under sys->lock: a free slot, initialised, or NULL (limit or memory). */
static fl__actor_t *take_slot(fl_system_t *sys, int *err)
{
    if (sys->free_head != FL__NO_SLOT) {
        fl__actor_t *a = fl__slot(sys, sys->free_head);
        sys->free_head = a->next_free;
        return a;
    }
    if (sys->high_water >= sys->max_actors) {
        *err = FL_ELIMIT;
        return NULL;
    }
    uint32_t slot = sys->high_water;
    uint32_t c = slot >> FL__CHUNK_SHIFT;
    fl__actor_t *chunk =
        atomic_load_explicit(&sys->chunks[c], memory_order_relaxed);
    if (chunk == NULL) {
        /* calloc: pages are committed as slots are first used. Aligned by
         * hand so that slot lines are real cache lines. */
        void *mem = fl__calloc(1, (size_t)FL__CHUNK_SIZE * sizeof(fl__actor_t) +
                                      FL_CACHE_LINE);
        if (mem == NULL) {
            *err = FL_ENOMEM;
            return NULL;
        }
        sys->chunk_mem[c] = mem;
        chunk = (fl__actor_t *)(((uintptr_t)mem + FL_CACHE_LINE - 1) &
                                ~(uintptr_t)(FL_CACHE_LINE - 1));
        /* Pairs with the acquire load in fl__slot. */
        atomic_store_explicit(&sys->chunks[c], chunk, memory_order_release);
    }
    fl__actor_t *a = &chunk[slot & (FL__CHUNK_SIZE - 1)];
    fl__mpscq_init(&a->mq, &a->stub);
    a->slot = slot;
    atomic_store_explicit(&a->gstate, FL__GS(1, FL__A_FREE),
                          memory_order_release);
    sys->high_water++;
    return a;
}

int fl_actor_spawn(fl_system_t *sys, fl_receive_cb receive, void *state,
                   const fl_actor_opts_t *opts, fl_actor_ref_t *out)
{
    if (sys == NULL || receive == NULL || out == NULL)
        return FL_EINVAL;
    out->id = 0;
    fl__actor_ext_t *ext = NULL;
    fl_msg_t *start = NULL;
    if (opts != NULL && (opts->name || opts->on_start || opts->on_stop)) {
        if (opts->name != NULL &&
            (opts->name[0] == '\0' || strlen(opts->name) > FL__NAME_MAX))
            return FL_EINVAL;
        ext = fl__calloc(1, sizeof *ext);
        if (ext == NULL)
            return FL_ENOMEM;
        ext->on_start = opts->on_start;
        ext->on_stop = opts->on_stop;
        if (opts->name != NULL && (ext->name = fl__strdup(opts->name)) == NULL)
            goto nomem;
        if (opts->on_start != NULL &&
            (start = fl__msg_alloc_kind(FL__MSG_START, 0, 0)) == NULL)
            goto nomem;
    }

    bool external = fl__sys_enter(sys);
    int rc = FL_OK;
    pthread_mutex_lock(&sys->lock);
    if (fl__sys_closed(sys)) {
        rc = FL_ECLOSED;
        goto unlock_fail;
    }
    if (ext != NULL && ext->name != NULL) {
        fl__name_t **p = name_slot(sys, ext->name);
        if (p != NULL && *p != NULL) {
            rc = FL_EEXIST;
            goto unlock_fail;
        }
    }
    fl__actor_t *a = take_slot(sys, &rc);
    if (a == NULL)
        goto unlock_fail;
    uint32_t gen =
        FL__GEN(atomic_load_explicit(&a->gstate, memory_order_relaxed));
    uint64_t id = FL__REF(gen, a->slot);
    if (ext != NULL && ext->name != NULL &&
        (rc = name_add(sys, ext->name, id)) != FL_OK) {
        a->next_free = sys->free_head;
        sys->free_head = a->slot;
        goto unlock_fail;
    }
    a->receive = receive;
    a->state = state;
    atomic_store_explicit(&a->ext, ext, memory_order_relaxed);
    sys->live++;
    /* Publishes receive/state/ext to every thread that checks the ref. */
    atomic_store_explicit(&a->gstate, FL__GS(gen, FL__A_LIVE),
                          memory_order_release);
    pthread_mutex_unlock(&sys->lock);
    atomic_fetch_add_explicit(&sys->spawned, 1, memory_order_relaxed);
    if (start != NULL) {
        /* Wakes the actor so its start hook runs even if nothing else is
         * sent (the hook runs before any message: see handle). */
        start->target = id;
        fl__push(sys, a, start);
    }
    fl__sys_leave(sys, external);
    out->id = id;
    return FL_OK;

unlock_fail:
    pthread_mutex_unlock(&sys->lock);
    fl__sys_leave(sys, external);
    if (ext != NULL) {
        fl__free(ext->name);
        fl__free(ext);
    }
    if (start != NULL)
        fl__msg_release_mem(start);
    return rc;
nomem:
    fl__free(ext->name);
    fl__free(ext);
    return FL_ENOMEM;
}

/* Request a stop of a live actor (CAS LIVE -> STOPREQ) and wake it. */
int fl__actor_request_stop(fl_system_t *sys, uint64_t id)
{
    fl__actor_t *a = fl__slot(sys, FL__REF_SLOT(id));
    if (a == NULL)
        return FL_EUNREACHABLE;
    fl_msg_t *m = NULL;
    uint64_t gs = atomic_load_explicit(&a->gstate, memory_order_acquire);
    for (;;) {
        if (!fl__ref_live(gs, id)) {
            if (m != NULL)
                fl__msg_release_mem(m);
            return FL_EUNREACHABLE;
        }
        if (FL__STATE(gs) == FL__A_STOPREQ) {
            if (m != NULL)
                fl__msg_release_mem(m);
            return FL_OK;
        }
        if (m == NULL && (m = fl__msg_alloc_kind(FL__MSG_STOP, 0, 0)) == NULL)
            return FL_ENOMEM;
        if (atomic_compare_exchange_weak_explicit(
                &a->gstate, &gs, FL__GS(FL__GEN(gs), FL__A_STOPREQ),
                memory_order_acq_rel, memory_order_acquire))
            break;
    }
    /* If the actor finished stopping meanwhile, this STOP is stale and the
     * consumer drops it (generation mismatch). */
    m->target = id;
    fl__push(sys, a, m);
    return FL_OK;
}

int fl_actor_stop(fl_system_t *sys, fl_actor_ref_t ref)
{
    if (sys == NULL)
        return FL_EINVAL;
    if (fl__sched_stopping(&sys->sched))
        return FL_ECLOSED;
    bool external = fl__sys_enter(sys);
    int rc = fl__actor_request_stop(sys, ref.id);
    fl__sys_leave(sys, external);
    return rc;
}

bool fl_actor_alive(fl_system_t *sys, fl_actor_ref_t ref)
{
    if (sys == NULL)
        return false;
    fl__actor_t *a = fl__slot(sys, FL__REF_SLOT(ref.id));
    return a != NULL &&
           fl__ref_live(atomic_load_explicit(&a->gstate, memory_order_acquire),
                        ref.id);
}

int fl_actor_lookup(fl_system_t *sys, const char *name, fl_actor_ref_t *out)
{
    if (sys == NULL || name == NULL || out == NULL)
        return FL_EINVAL;
    out->id = 0;
    if (fl__sched_stopping(&sys->sched))
        return FL_ECLOSED;
    pthread_mutex_lock(&sys->lock);
    fl__name_t **p = name_slot(sys, name);
    int rc = FL_ENOENT;
    if (p != NULL && *p != NULL) {
        out->id = (*p)->id;
        rc = FL_OK;
    }
    pthread_mutex_unlock(&sys->lock);
    return rc;
}

int fl_actor_termination(fl_system_t *sys, fl_actor_ref_t ref,
                         fl_future_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (sys == NULL || out == NULL)
        return FL_EINVAL;
    if (fl__sched_stopping(&sys->sched))
        return FL_ECLOSED;
    fl_future_t *f = fl_future_alloc();
    fl__term_t *t = fl__malloc(sizeof *t);
    fl__actor_ext_t *fresh = fl__calloc(1, sizeof *fresh);
    if (f == NULL || t == NULL || fresh == NULL) {
        fl_future_release(f);
        fl__free(t);
        fl__free(fresh);
        return FL_ENOMEM;
    }
    pthread_mutex_lock(&sys->lock);
    fl__actor_t *a = fl__slot(sys, FL__REF_SLOT(ref.id));
    if (a == NULL ||
        !fl__ref_live(atomic_load_explicit(&a->gstate, memory_order_acquire),
                      ref.id)) {
        pthread_mutex_unlock(&sys->lock);
        fl__free(t);
        fl__free(fresh);
        fl_future_fail(f, FL_EUNREACHABLE,
                       "recipient unreachable: actor %016llx is not live",
                       (unsigned long long)ref.id);
        *out = f;
        return FL_OK;
    }
    fl__actor_ext_t *ext = atomic_load_explicit(&a->ext, memory_order_acquire);
    if (ext == NULL) {
        ext = fresh;
        fresh = NULL;
        /* Pairs with the acquire loads in run_start/fl__actor_finish_stop. */
        atomic_store_explicit(&a->ext, ext, memory_order_release);
    }
    t->f = fl_future_retain(f);
    t->next = ext->waiters;
    ext->waiters = t;
    pthread_mutex_unlock(&sys->lock);
    fl__free(fresh);
    *out = f;
    return FL_OK;
}

fl_actor_ref_t fl_self(void)
{
    fl_actor_ref_t r = {fl__tls_actor};
    return r;
}

/* ---- tell / ask / reply
 * ---------------------------------------------------------- */

/* Push m to the actor it names, as fl__deliver, but when the push makes
 * the actor runnable, hand it to *claim instead of scheduling it. */
static int deliver_claim(fl_system_t *sys, fl_msg_t *m, fl__claim_t *claim)
{
    fl__actor_t *a = fl__target_of(sys, m, false);
    if (a == NULL) {
        fl__dead_letter(sys, m, "has stopped or does not exist");
        return FL_EUNREACHABLE;
    }
    if (fl__mpscq_push(&a->mq, &m->node)) {
        claim->sys = sys;
        claim->a = a;
    }
    return FL_OK;
}

/* fl_tell, and fl__tell_claim when claim is not NULL. counted: the
 * thread holds a claim on sys, which counts it in already. */
static int tell(fl_system_t *sys, fl_actor_ref_t to, fl_msg_t *msg,
                fl__claim_t *claim, bool counted)
{
    if (msg == NULL)
        return FL_EINVAL;
    if (sys == NULL) {
        fl_msg_free(msg);
        return FL_EINVAL;
    }
    /* Only a thread outside every runtime may take a turn over. */
    if (claim != NULL && fl__tls_sys != NULL)
        claim = NULL;
    bool external = counted || fl__sys_enter(sys);
    int rc;
    if (fl__unlikely(fl__sys_closed(sys))) {
        fl__msg_settle(msg, FL_ECLOSED, "the actor system is closed");
        fl_msg_free(msg);
        rc = FL_ECLOSED;
    } else {
        msg->target = to.id;
        msg->sender = external ? 0 : fl__tls_actor;
        rc = claim != NULL ? deliver_claim(sys, msg, claim)
                           : fl__deliver(sys, msg, false);
    }
    /* A claimer stays counted in until fl__claim_run. */
    if (!counted && (claim == NULL || claim->a == NULL))
        fl__sys_leave(sys, external);
    return rc;
}

int fl_tell(fl_system_t *sys, fl_actor_ref_t to, fl_msg_t *msg)
{
    return tell(sys, to, msg, NULL, false);
}

int fl__tell_claim(fl_system_t *sys, fl_actor_ref_t to, fl_msg_t *msg,
                   fl__claim_t *claim)
{
    claim->sys = NULL;
    claim->a = NULL;
    return tell(sys, to, msg, claim, false);
}

int fl__tell_held(const fl__claim_t *held, fl_actor_ref_t to, fl_msg_t *msg)
{
    if (held == NULL || held->a == NULL || fl__tls_sys != NULL) {
        fl_msg_free(msg);
        return FL_EINVAL;
    }
    return tell(held->sys, to, msg, NULL, true);
}

int fl_ask(fl_system_t *sys, fl_actor_ref_t to, fl_msg_t *msg,
           int64_t timeout_ms, fl_future_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (msg == NULL)
        return FL_EINVAL;
    if (sys == NULL || out == NULL || msg->reply != NULL ||
        (timeout_ms <= 0 && timeout_ms != FL_INFINITE)) {
        fl_msg_free(msg);
        return FL_EINVAL;
    }
    fl_future_t *f = fl_future_alloc();
    if (f == NULL) {
        fl_msg_free(msg);
        return FL_ENOMEM;
    }
    bool external = fl__sys_enter(sys);
    if (fl__unlikely(fl__sys_closed(sys))) {
        fl__sys_leave(sys, external);
        fl_msg_free(msg);
        fl_future_release(f);
        return FL_ECLOSED;
    }
    msg->target = to.id;
    msg->sender = external ? 0 : fl__tls_actor;
    msg->reply = fl_future_retain(f);
    if (fl__deliver(sys, msg, false) == FL_OK && timeout_ms != FL_INFINITE &&
        !fl_future_done(f)) {
        fl__timer_t *t = fl__timer_new_future(f, timeout_ms);
        if (t == NULL) {
            fl_future_fail(f, FL_ENOMEM, "no memory for the ask timeout");
        } else if (fl__future_attach_timer(f, sys, t) != FL_OK) {
            /* Answered already. */
            fl_future_release(t->u.fut.f);
            fl__free(t);
        } else {
            (void)fl__timer_arm(sys, t);
        }
    }
    fl__sys_leave(sys, external);
    *out = f;
    return FL_OK;
}

int fl_reply(fl_msg_t *request, fl_msg_t *reply)
{
    if (reply == NULL)
        return FL_EINVAL;
    if (request == NULL || request->reply == NULL) {
        fl_msg_free(reply);
        return FL_EINVAL;
    }
    fl_future_t *f = request->reply;
    request->reply = NULL;
    reply->sender = fl__tls_actor;
    int rc = fl_future_complete(f, reply, fl_msg_free_cb);
    fl_future_release(f);
    return rc;
}

int fl_reply_error(fl_msg_t *request, int err, const char *fmt, ...)
{
    if (request == NULL || request->reply == NULL || err == FL_OK)
        return FL_EINVAL;
    fl_future_t *f = request->reply;
    request->reply = NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = fl_future_failv(f, err, fmt, ap);
    va_end(ap);
    fl_future_release(f);
    return rc;
}

fl_future_t *fl_msg_take_reply(fl_msg_t *request)
{
    if (request == NULL)
        return NULL;
    fl_future_t *f = request->reply;
    request->reply = NULL;
    return f;
}

/* ---- running code on an actor
 * ----------------------------------------------------- */

int fl_actor_exec(fl_system_t *sys, fl_actor_ref_t ref, fl_exec_cb fn,
                  void *arg, fl_free_cb arg_free)
{
    if (sys == NULL || fn == NULL) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_EINVAL;
    }
    fl_msg_t *m = fl__msg_alloc_kind(FL__MSG_EXEC, 0, sizeof(fl__exec_t));
    if (m == NULL) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_ENOMEM;
    }
    fl__exec_t *e = fl__msg_payload(m);
    e->fn = fn;
    e->arg = arg;
    e->arg_free = arg_free;
    bool external = fl__sys_enter(sys);
    int rc;
    if (fl__unlikely(fl__sys_closed(sys))) {
        fl__dead_letter_contents(sys, m, "system closed");
        fl__msg_release_mem(m);
        rc = FL_ECLOSED;
    } else {
        m->target = ref.id;
        m->sender = external ? 0 : fl__tls_actor;
        rc = fl__deliver(sys, m, false);
    }
    fl__sys_leave(sys, external);
    return rc;
}

typedef struct hop {
    fl_future_cb cb;
    void *arg;
    fl_free_cb arg_free;
    fl_future_t *f;
    fl_system_t *sys;
    fl_actor_ref_t ref;
} hop_t;

static void hop_run(fl_system_t *sys, fl_actor_ref_t self, void *state, void *p)
{
    hop_t *h = p;
    h->cb(h->f, h->arg);
    fl_future_release(h->f);
    fl__free(h);
}

static void hop_free(void *p)
{
    hop_t *h = p;
    if (h->arg_free != NULL)
        h->arg_free(h->arg);
    fl_future_release(h->f);
    fl__free(h);
}

static void hop_post(fl_future_t *f, void *p)
{
    hop_t *h = p;
    /* The completer holds f; keep it for the continuation on the actor. */
    h->f = fl_future_retain(f);
    fl_actor_exec(h->sys, h->ref, hop_run, h, hop_free);
}

/* f was freed pending: the continuation never runs. */
static void hop_drop(void *p)
{
    hop_t *h = p;
    if (h->arg_free != NULL)
        h->arg_free(h->arg);
    fl__free(h);
}

int fl_future_on_complete_in(fl_future_t *f, fl_system_t *sys,
                             fl_actor_ref_t ref, fl_future_cb cb, void *arg,
                             fl_free_cb arg_free)
{
    if (f == NULL || sys == NULL || cb == NULL) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_EINVAL;
    }
    if (atomic_load_explicit(&sys->closed, memory_order_acquire)) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_ECLOSED;
    }
    hop_t *h = fl__malloc(sizeof *h);
    if (h == NULL) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_ENOMEM;
    }
    h->cb = cb;
    h->arg = arg;
    h->arg_free = arg_free;
    h->f = NULL; /* taken when f completes: no cycle while pending */
    h->sys = sys;
    h->ref = ref;
    int rc = fl__future_on_complete_ex(f, hop_post, hop_drop, h);
    if (rc != FL_OK)
        hop_drop(h);
    return rc;
}
