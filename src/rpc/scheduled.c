/*
 * scheduled.c - tasks scheduled on an endpoint's main thread and their
 * handles: once after a delay (fl_rpc_schedule_run_async), at a fixed rate
 * and with a fixed delay (fl_rpc_schedule_run_at_fixed_rate / _with_fixed_
 * delay), cancelled and queried through an fl_rpc_scheduled_t.
 *
 * Each run is an exec message to the endpoint's mailbox, so it runs like a
 * run_async: serialized with the calls. Between runs the task waits on one
 * message timer of the actor system, armed by the run before it on the main
 * thread. A task has ONE such message at any time (in a timer or in the
 * mailbox) and that message carries the task's life: its run arms the next
 * one or ends the task, and its drop (a cancelled timer, a dead letter, the
 * system's shutdown) ends it. So runs never overlap, never pile up, and the
 * task ends exactly once (arg_free with it).
 *
 * The endpoint lists its live tasks (ep->sched) and the first task watches
 * its termination future: when it completes, every task is cancelled and
 * its timer with it, so a task ends when its endpoint does, not when its
 * next run would have come due.
 */
#include <fling/rpc.h>

#include "actor/msg.h"
#include "rpc/call.h"
#include "rpc/endpoint.h"
#include "rpc/local.h"
#include "rpc/service.h"

/* What the task does. */
enum { K_ONCE, K_RATE, K_DELAY };
/* What the handle says; moves once from OUT_PENDING. */
enum { OUT_PENDING, OUT_DONE, OUT_CANCELLED };

struct fl_rpc_scheduled {
    /* The caller's handle (if one was asked for) + the task's life + a
     * set-up or arming thread's, for as long as it needs t. */
    _Atomic int refs;
    _Atomic int outcome; /* OUT_*: release when set, acquire when read */

    /* Set when scheduled, then read only. */
    fl_system_t *sys;
    fl_rpc_endpoint_t *ep; /* retained until the task ends */
    fl_actor_ref_t actor;
    fl_rpc_run_cb fn;
    void *arg;
    fl_free_cb arg_free;
    int kind;
    int64_t period_ms; /* K_RATE: the period; K_DELAY: the delay */
    uint64_t first_ns; /* K_RATE: deadline n is first_ns + n * period */

    /* K_RATE, main thread only: the deadline index of the next run. */
    uint64_t n;

    _Atomic bool lk;
    /* Under lk. */
    fl_timer_id_t timer; /* the next run's timer; 0: none known */
    uint64_t round;      /* arms and runs so far: an older arm's late id
                            is not stored */
    bool stop;           /* no further run starts (cancelled or ended by
                            the endpoint) */
    bool running;        /* a run in progress */
    bool ended;

    /* In ep->sched, under ep->sched_lk. */
    bool linked;
    struct fl_rpc_scheduled *prev, *next;
};

static void run(fl_system_t *sys, fl_actor_ref_t self, void *state, void *p);

/* ---- references and the end ---------------------------------------------- */

static void sched_retain(fl_rpc_scheduled_t *t)
{
    /* Relaxed: the caller already holds a reference (see sched_release). */
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

static void sched_release(fl_rpc_scheduled_t *t)
{
    /* acq_rel: the last holder sees every other holder's writes. */
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        fl__free(t);
}

/* Moves the outcome from pending to `to`; false if it had moved already.
 * Release: pairs with the acquire loads of the queries, so that a caller
 * who sees the outcome also sees what the task did before. */
static bool settle(fl_rpc_scheduled_t *t, int to)
{
    int pending = OUT_PENDING;
    return atomic_compare_exchange_strong_explicit(
        &t->outcome, &pending, to, memory_order_acq_rel, memory_order_acquire);
}

/*
 * Ends the task, ONCE, by whoever holds its life (its message ran or was
 * dropped): it leaves the endpoint's list, the handle says cancelled unless
 * it said done, arg_free(arg) runs if free_arg, and the task's references
 * go. Any thread; no lock held.
 */
static void end(fl_rpc_scheduled_t *t, bool free_arg)
{
    fl_rpc_endpoint_t *ep = t->ep;
    fl__spin_lock(&t->lk);
    t->ended = true;
    t->stop = true;
    t->timer = 0;
    fl__spin_unlock(&t->lk);
    fl__spin_lock(&ep->sched_lk);
    if (t->linked) {
        if (t->prev != NULL)
            t->prev->next = t->next;
        else
            ep->sched = t->next;
        if (t->next != NULL)
            t->next->prev = t->prev;
        t->linked = false;
    }
    fl__spin_unlock(&ep->sched_lk);
    /* Before arg_free: whoever learns of the end from arg_free sees the
     * outcome. */
    (void)settle(t, OUT_CANCELLED);
    if (free_arg && t->arg_free != NULL)
        t->arg_free(t->arg);
    fl__rpc_ep_release(ep);
    sched_release(t);
}

/* The exec message's arg_free: the run's message was dropped (cancelled
 * timer, dead letter, system shut down, no memory) and the task ends. */
static void dropped(void *p)
{
    end(p, true);
}

/* ---- arming the next run ------------------------------------------------- */

/*
 * Arms t's next run delay_ms from now: the task's life moves to the new
 * message. Returns FL_OK, or the failure, after which the task has ended.
 * No lock held; t may end on another thread as soon as the message exists.
 */
static int arm(fl_rpc_scheduled_t *t, int64_t delay_ms)
{
    if (delay_ms == 0)
        return fl_actor_exec(t->sys, t->actor, run, t, dropped);
    fl_msg_t *m = fl__msg_alloc_kind(FL__MSG_EXEC, 0, sizeof(fl__exec_t));
    if (m == NULL) {
        FL_LOG(FL_LOG_WARN,
               "endpoint %s: no memory to arm a scheduled task; it ends",
               t->ep->id);
        end(t, true);
        return FL_ENOMEM;
    }
    fl__exec_t *e = fl__msg_payload(m);
    e->fn = run;
    e->arg = t;
    e->arg_free = dropped;
    sched_retain(t); /* ours, until the id is stored */
    fl__spin_lock(&t->lk);
    uint64_t round = ++t->round;
    fl__spin_unlock(&t->lk);
    fl_timer_id_t id = 0;
    int rc = fl_timer_send(t->sys, t->actor, m, delay_ms, 0, &id);
    if (rc == FL_OK) {
        /* A cancel that came before the id was stored could not stop the
         * timer: stop it here. An id stored after its run began would be
         * stale: the run bumped the round. */
        bool stop = false;
        fl__spin_lock(&t->lk);
        if (t->round == round && !t->ended) {
            t->timer = id;
            stop = t->stop;
        }
        fl__spin_unlock(&t->lk);
        if (stop)
            (void)fl_timer_cancel(t->sys, id);
    }
    sched_release(t);
    return rc;
}

/* Deadline k of a fixed-rate task, saturated. */
static uint64_t rate_deadline(const fl_rpc_scheduled_t *t, uint64_t k)
{
    uint64_t p = fl__ms_to_ns(t->period_ms);
    if (k != 0 && p > (UINT64_MAX - t->first_ns) / k)
        return UINT64_MAX;
    return t->first_ns + k * p;
}

/*
 * The delay before a fixed-rate task's next run, from now (the end of the
 * run for deadline t->n): until the next deadline; 0 if it has passed, and
 * then that late run stands for the last deadline passed, those before it
 * being skipped (at most one run is ever owed). Main thread.
 */
static int64_t rate_next_delay(fl_rpc_scheduled_t *t)
{
    uint64_t now = fl_clock_now_ns();
    uint64_t d = rate_deadline(t, t->n + 1);
    if (d <= now) {
        t->n = (now - t->first_ns) / fl__ms_to_ns(t->period_ms);
        return 0;
    }
    t->n++;
    uint64_t ms = (d - now + 999999u) / 1000000u; /* never early */
    return ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)ms;
}

/* ---- a run, on the main thread ------------------------------------------- */

static void run(fl_system_t *sys, fl_actor_ref_t self, void *state, void *p)
{
    (void)sys;
    (void)self;
    (void)state;
    fl_rpc_scheduled_t *t = p;
    fl_rpc_endpoint_t *ep = t->ep;
    /* Like a run_async: a started endpoint runs it, so does one whose
     * on_stop's future is pending (it still serves calls). */
    bool serving = ep->st == EP_STARTED || ep->st == EP_TERMINATING;
    fl__spin_lock(&t->lk);
    t->timer = 0;
    t->round++;
    bool stop = t->stop;
    t->running = !stop && serving;
    fl__spin_unlock(&t->lk);
    if (stop) {
        end(t, true);
        return;
    }
    if (!serving) {
        if (ep->st == EP_STOPPED)
            FL_LOG(FL_LOG_INFO,
                   "discard %s, because the rpc endpoint %s has not "
                   "been started yet",
                   t->kind == K_ONCE ? "runnable" : "periodic task (it ends)",
                   ep->address);
        end(t, true);
        return;
    }
    t->fn(ep, ep->state, t->arg);
    fl__spin_lock(&t->lk);
    t->running = false;
    stop = t->stop;
    if (t->kind == K_ONCE)
        (void)settle(t, OUT_DONE); /* under lk: a cancel now sees it */
    fl__spin_unlock(&t->lk);
    if (t->kind == K_ONCE) {
        end(t, false); /* fn owned arg once it ran */
        return;
    }
    if (stop) {
        end(t, true);
        return;
    }
    (void)arm(t, t->kind == K_RATE ? rate_next_delay(t) : t->period_ms);
}

/* ---- the endpoint's termination ------------------------------------------ */

/* Ends t because its endpoint terminated: no run starts any more, the
 * handle says cancelled, and a pending timer is cancelled now (its
 * message's drop ends the task). */
static void stop_for_endpoint(fl_rpc_scheduled_t *t)
{
    fl_timer_id_t id = 0;
    fl__spin_lock(&t->lk);
    if (!t->ended && !t->stop) {
        t->stop = true;
        (void)settle(t, OUT_CANCELLED);
        id = t->timer;
    }
    fl__spin_unlock(&t->lk);
    if (id != 0)
        (void)fl_timer_cancel(t->sys, id);
}

/* ep's termination future completed: end its tasks; later ones are
 * refused. Runs on the completing thread; holds a reference to ep. */
static void on_terminated(fl_future_t *f, void *p)
{
    (void)f;
    fl_rpc_endpoint_t *ep = p;
    fl__spin_lock(&ep->sched_lk);
    ep->sched_closed = true;
    fl_rpc_scheduled_t *list = ep->sched;
    ep->sched = NULL;
    /* The chain is ours now: end() leaves an unlinked task's links alone. */
    for (fl_rpc_scheduled_t *t = list; t != NULL; t = t->next) {
        sched_retain(t);
        t->linked = false;
    }
    fl__spin_unlock(&ep->sched_lk);
    for (fl_rpc_scheduled_t *t = list, *next; t != NULL; t = next) {
        next = t->next;
        stop_for_endpoint(t);
        sched_release(t);
    }
    fl__rpc_ep_release(ep);
}

/* Watches ep's termination for its tasks (once per endpoint). Without
 * memory for it, tasks still end when their next run finds the endpoint
 * gone, and the next task tries again. */
static void watch_termination(fl_rpc_endpoint_t *ep)
{
    fl__rpc_ep_retain(ep); /* on_terminated's */
    if (fl_future_on_complete(ep->termination, on_terminated, ep) == FL_OK)
        return;
    fl__rpc_ep_release(ep);
    fl__spin_lock(&ep->sched_lk);
    ep->sched_watched = false;
    fl__spin_unlock(&ep->sched_lk);
}

/* ---- scheduling ---------------------------------------------------------- */

/* Checks the arguments of a schedule call; FL_OK or FL_EINVAL with the
 * thread's last message saying which one. */
static int check(const fl_rpc_endpoint_t *ep, fl_rpc_run_cb fn, int kind,
                 int64_t initial_ms, int64_t period_ms)
{
    if (ep == NULL)
        return fl__rpc_refuse(FL_EINVAL, "ep must not be NULL");
    if (fn == NULL)
        return fl__rpc_refuse(FL_EINVAL, "fn must not be NULL");
    if (initial_ms < 0)
        return fl__rpc_refuse(FL_EINVAL, "%s must be >= 0 (got %lld)",
                              kind == K_ONCE ? "delay_ms" : "initial_ms",
                              (long long)initial_ms);
    if (kind != K_ONCE && period_ms <= 0)
        return fl__rpc_refuse(FL_EINVAL, "%s must be > 0 (got %lld)",
                              kind == K_RATE ? "period_ms" : "delay_ms",
                              (long long)period_ms);
    return FL_OK;
}

static int refuse_for(const fl_rpc_endpoint_t *ep, int rc)
{
    return fl__rpc_refuse_task(ep, rc, "schedule a task on");
}

static int schedule(fl_rpc_endpoint_t *ep, int kind, fl_rpc_run_cb fn,
                    void *arg, fl_free_cb arg_free, int64_t initial_ms,
                    int64_t period_ms, fl_rpc_scheduled_t **out)
{
    if (out != NULL)
        *out = NULL;
    int rc = check(ep, fn, kind, initial_ms, period_ms);
    if (rc == FL_OK && !fl_actor_alive(ep->svc->sys, ep->actor))
        rc = refuse_for(ep, FL_EUNREACHABLE);
    fl_rpc_scheduled_t *t = rc == FL_OK ? fl__calloc(1, sizeof *t) : NULL;
    if (t == NULL) {
        if (rc == FL_OK)
            rc = refuse_for(ep, FL_ENOMEM);
        if (arg_free != NULL)
            arg_free(arg);
        return rc;
    }
    /* The task's life, ours for the set-up, and the caller's handle. */
    atomic_init(&t->refs, out != NULL ? 3 : 2);
    atomic_init(&t->outcome, OUT_PENDING);
    t->sys = ep->svc->sys;
    fl__rpc_ep_retain(ep);
    t->ep = ep;
    t->actor = ep->actor;
    t->fn = fn;
    t->arg = arg;
    t->arg_free = arg_free;
    t->kind = kind;
    t->period_ms = period_ms;
    t->first_ns = fl__add_sat(fl_clock_now_ns(), fl__ms_to_ns(initial_ms));

    fl__spin_lock(&ep->sched_lk);
    bool closed = ep->sched_closed, watch = false;
    if (!closed) {
        t->next = ep->sched;
        if (ep->sched != NULL)
            ep->sched->prev = t;
        ep->sched = t;
        t->linked = true;
        watch = !ep->sched_watched;
        ep->sched_watched = true;
    }
    fl__spin_unlock(&ep->sched_lk);
    if (watch && !closed) {
        /* A termination already complete runs on_terminated right here. */
        watch_termination(ep);
        fl__spin_lock(&ep->sched_lk);
        closed = ep->sched_closed;
        fl__spin_unlock(&ep->sched_lk);
    }
    if (closed) {
        /* Terminated since fl_actor_alive said otherwise; the task's life
         * is still ours (not armed). */
        end(t, true);
        rc = refuse_for(ep, FL_EUNREACHABLE);
    } else {
        rc = arm(t, initial_ms);
        if (rc != FL_OK)
            (void)refuse_for(ep, rc); /* the task has ended */
    }
    if (out != NULL) {
        if (rc == FL_OK)
            *out = t;
        else
            sched_release(t); /* no handle after all */
    }
    sched_release(t); /* ours */
    return rc;
}

int fl_rpc_schedule_run_async(fl_rpc_endpoint_t *ep, fl_rpc_run_cb fn,
                              void *arg, fl_free_cb arg_free, int64_t delay_ms,
                              fl_rpc_scheduled_t **out)
{
    /* Without a handle and a delay it is a run_async, minus the task. */
    if (out == NULL && delay_ms == 0)
        return fl_rpc_run_async(ep, fn, arg, arg_free);
    return schedule(ep, K_ONCE, fn, arg, arg_free, delay_ms, 0, out);
}

int fl_rpc_schedule_run_at_fixed_rate(fl_rpc_endpoint_t *ep, fl_rpc_run_cb fn,
                                      void *arg, fl_free_cb arg_free,
                                      int64_t initial_ms, int64_t period_ms,
                                      fl_rpc_scheduled_t **out)
{
    return schedule(ep, K_RATE, fn, arg, arg_free, initial_ms, period_ms, out);
}

int fl_rpc_schedule_run_with_fixed_delay(fl_rpc_endpoint_t *ep,
                                         fl_rpc_run_cb fn, void *arg,
                                         fl_free_cb arg_free,
                                         int64_t initial_ms, int64_t delay_ms,
                                         fl_rpc_scheduled_t **out)
{
    return schedule(ep, K_DELAY, fn, arg, arg_free, initial_ms, delay_ms, out);
}

/* ---- the handle ---------------------------------------------------------- */

bool fl_rpc_scheduled_cancel(fl_rpc_scheduled_t *t)
{
    if (t == NULL)
        return false;
    fl__spin_lock(&t->lk);
    /* Relaxed: the outcome moves only under lk or after ended is set. */
    if (t->ended || t->stop ||
        atomic_load_explicit(&t->outcome, memory_order_relaxed) !=
            OUT_PENDING ||
        (t->kind == K_ONCE && t->running)) {
        /* Done, cancelled, or a one-shot whose only run is under way:
         * nothing left to prevent. */
        fl__spin_unlock(&t->lk);
        return false;
    }
    t->stop = true;
    (void)settle(t, OUT_CANCELLED);
    fl_timer_id_t id = t->timer;
    fl__spin_unlock(&t->lk);
    /* Queued or running instead: the run sees stop and ends the task. */
    if (id != 0)
        (void)fl_timer_cancel(t->sys, id);
    return true;
}

bool fl_rpc_scheduled_is_done(const fl_rpc_scheduled_t *t)
{
    /* Acquire: pairs with settle. */
    return t != NULL && atomic_load_explicit(
                            &t->outcome, memory_order_acquire) != OUT_PENDING;
}

bool fl_rpc_scheduled_is_cancelled(const fl_rpc_scheduled_t *t)
{
    /* Acquire: pairs with settle. */
    return t != NULL && atomic_load_explicit(
                            &t->outcome, memory_order_acquire) == OUT_CANCELLED;
}

void fl_rpc_scheduled_free(fl_rpc_scheduled_t *t)
{
    if (t != NULL)
        sched_release(t);
}
