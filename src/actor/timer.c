/*
 * timer.c - the system's timer thread: a binary min-heap ordered by
 * (deadline, sequence), so equal deadlines fire in arming order.
 *
 * Message timers enqueue into the mailbox while holding the timer lock, so
 * fl_timer_cancel() returning FL_OK really means "never delivered". Callback
 * and future-timeout timers run outside the lock (state FIRING); their
 * memory is freed by whoever ends their life last, decided under the lock.
 *
 * The thread sleeps on a condition variable until the earliest deadline and
 * is only signalled when a new timer becomes earlier than that, so arming a
 * later timeout (every ask does) costs no wake-up. "The lock" below is
 * hlk, a spin lock; mu only serves the thread's sleep (see timer_main).
 */
#include "actor/deliver.h"
#include "actor/future.h"
#include "actor/system.h"
#include "common/pool.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* The heap's lock (hlk): every arm and cancel takes it, so it is a spin
 * lock, not the mutex (a mutex pair per arm and per cancel showed in
 * actor.ask). The mutex mu only pairs with cv for the thread's sleep. */
static inline void hlock(fl__timers_t *T)
{
    fl__spin_lock(&T->hlk);
}

static inline void hunlock(fl__timers_t *T)
{
    fl__spin_unlock(&T->hlk);
}

static inline bool before(const fl__timer_t *a, const fl__timer_t *b)
{
    return a->deadline < b->deadline ||
           (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_swap(fl__timers_t *T, size_t i, size_t j)
{
    fl__timer_t *t = T->heap[i];
    T->heap[i] = T->heap[j];
    T->heap[j] = t;
    T->heap[i]->heap_idx = i;
    T->heap[j]->heap_idx = j;
}

static void sift_up(fl__timers_t *T, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(T->heap[i], T->heap[p]))
            break;
        heap_swap(T, i, p);
        i = p;
    }
}

static void sift_down(fl__timers_t *T, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < T->len && before(T->heap[l], T->heap[m]))
            m = l;
        if (r < T->len && before(T->heap[r], T->heap[m]))
            m = r;
        if (m == i)
            return;
        heap_swap(T, i, m);
        i = m;
    }
}

static int heap_push(fl__timers_t *T, fl__timer_t *t)
{
    if (T->len == T->cap) {
        size_t cap = T->cap ? T->cap * 2 : 64;
        fl__timer_t **h = fl__realloc(T->heap, cap * sizeof *h);
        if (h == NULL)
            return FL_ENOMEM;
        T->heap = h;
        T->cap = cap;
    }
    t->seq = T->seq++;
    t->heap_idx = T->len;
    T->heap[T->len++] = t;
    sift_up(T, t->heap_idx);
    t->st = FL__TS_HEAP;
    return FL_OK;
}

static void heap_remove(fl__timers_t *T, fl__timer_t *t)
{
    size_t i = t->heap_idx;
    T->len--;
    if (i != T->len) {
        T->heap[i] = T->heap[T->len];
        T->heap[i]->heap_idx = i;
        sift_down(T, i);
        sift_up(T, i);
    }
    t->st = FL__TS_NEW;
}

/* ---- the id table (public timers) -----------------------------------------
 */

static inline size_t id_bucket(const fl__timers_t *T, uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (T->idcap - 1);
}

static int ids_put(fl__timers_t *T, fl__timer_t *t)
{
    if (T->nids + 1 > T->idcap / 2) {
        size_t cap = T->idcap ? T->idcap * 2 : 64;
        fl__timer_t **b = fl__calloc(cap, sizeof *b);
        if (b == NULL)
            return FL_ENOMEM;
        fl__timer_t **old = T->ids;
        size_t oldcap = T->idcap;
        T->ids = b;
        T->idcap = cap;
        for (size_t i = 0; i < oldcap; i++) {
            fl__timer_t *n = old[i];
            while (n != NULL) {
                fl__timer_t *next = n->hnext;
                size_t k = id_bucket(T, n->id);
                n->hnext = b[k];
                b[k] = n;
                n = next;
            }
        }
        fl__free(old);
    }
    size_t k = id_bucket(T, t->id);
    t->hnext = T->ids[k];
    T->ids[k] = t;
    T->nids++;
    return FL_OK;
}

static fl__timer_t *ids_find(fl__timers_t *T, uint64_t id)
{
    if (T->idcap == 0)
        return NULL;
    for (fl__timer_t *n = T->ids[id_bucket(T, id)]; n != NULL; n = n->hnext)
        if (n->id == id)
            return n;
    return NULL;
}

static void ids_del(fl__timers_t *T, fl__timer_t *t)
{
    for (fl__timer_t **p = &T->ids[id_bucket(T, t->id)]; *p != NULL;
         p = &(*p)->hnext) {
        if (*p == t) {
            *p = t->hnext;
            T->nids--;
            return;
        }
    }
}

/* ---- lifecycle of one timer -----------------------------------------------
 */

/* Timers come from the block pool, zeroed (one per ask with a timeout:
 * calloc's cost showed in rpc.local_call). */
static fl__timer_t *timer_alloc(void)
{
    static const fl__timer_t none;
    fl__timer_t *t = fl__block_alloc(sizeof *t);
    if (t != NULL)
        memcpy(t, &none, sizeof *t);
    return t;
}

static void timer_free(fl__timer_t *t)
{
    fl__block_free(t, sizeof *t);
}

/* End a future timer's life: its reference to the future, and its memory
 * (which, in the future's block, goes with the last reference). */
static void free_future_timer(fl__timer_t *t)
{
    if (t->in_future) {
        fl_future_release(t->u.fut.f); /* may free t */
        return;
    }
    fl_future_release(t->u.fut.f);
    timer_free(t);
}

void fl__timer_discard(fl__timer_t *t)
{
    free_future_timer(t);
}

static void free_timer(fl__timer_t *t)
{
    if (t->kind == FL__T_FUTURE) {
        free_future_timer(t);
        return;
    }
    if (t->kind == FL__T_MSG)
        fl_msg_free(t->u.m.msg); /* never delivered: settles an exec's arg */
    timer_free(t);
}

/* Whether t, just pushed (hlk held), is now the earliest deadline and
 * earlier than the one the thread sleeps to: then call wake() once hlk
 * is released. */
static bool needs_wake(const fl__timers_t *T, const fl__timer_t *t)
{
    return T->heap[0] == t && t->deadline < T->sleep_until;
}

/* Signal the thread. Under mu: the thread holds mu from its last look at
 * the heap until its wait starts, so the signal cannot fall between. */
static void wake(fl__timers_t *T)
{
    pthread_mutex_lock(&T->mu);
    pthread_cond_signal(&T->cv);
    pthread_mutex_unlock(&T->mu);
}

/* Whether the coarse clock may time a timer: its resolution (the kernel's
 * tick) is at most 4 ms, so that its lag behind the precise clock,
 * measured up to 1.6 ticks, stays within FL__COARSE_SLACK_NS. Found once;
 * a race finds the same answer twice. */
static bool coarse_ok(void)
{
    static _Atomic int ok = -1; /* -1: not known yet */
    int v = atomic_load_explicit(&ok, memory_order_relaxed);
    if (fl__unlikely(v < 0)) {
        struct timespec r;
        v = clock_getres(CLOCK_MONOTONIC_COARSE, &r) == 0 && r.tv_sec == 0 &&
            r.tv_nsec <= 4000000;
        atomic_store_explicit(&ok, v, memory_order_relaxed);
    }
    return v != 0;
}

/* The coarse clock costs a quarter of the precise one's read (5 ns
 * against 23 on this VM: a fifth of an ask's time with its default 10 s
 * timeout); its slack is at most 1% of a timer that long. */
uint64_t fl__timer_deadline_after(int64_t ms)
{
    uint64_t now = ms >= FL__TIMER_COARSE_MS && coarse_ok()
                       ? fl__clock_coarse_ns() + FL__COARSE_SLACK_NS
                       : fl_clock_now_ns();
    return fl__add_sat(now, fl__ms_to_ns(ms));
}

static void init_future_timer(fl__timer_t *t, fl_future_t *f, int64_t ms,
                              uint64_t to, bool shared)
{
    t->kind = FL__T_FUTURE;
    t->st = FL__TS_NEW;
    t->deadline = fl__timer_deadline_after(ms);
    t->u.fut.f = shared ? fl_future_retain(f) : fl__future_retain_unshared(f);
    t->u.fut.ms = ms;
    t->u.fut.to = to;
}

fl__timer_t *fl__timer_new_future(fl_future_t *f, int64_t ms, uint64_t to)
{
    fl__timer_t *t = timer_alloc();
    if (t != NULL)
        init_future_timer(t, f, ms, to, true);
    return t;
}

fl__timer_t *fl__timer_new_future_in(fl_future_t *f, int64_t ms, uint64_t to)
{
    static const fl__timer_t none;
    fl__timer_t *t = fl__future_timer_slot(f);
    memcpy(t, &none, sizeof *t);
    t->in_future = true;
    init_future_timer(t, f, ms, to, false);
    return t;
}

/*
 * Fail the future of t (state FIRING, lock not held) and end t's life. The
 * future's completion calls fl__timer_cancel_internal(t) exactly once: on
 * this thread if our failure won (then cancel_req is set when we look), or
 * on the thread that completed it, possibly later (then we leave t FIRED
 * and that call frees it).
 */
static void fire_future(fl__timers_t *T, fl__timer_t *t, int err)
{
    /* The future's namer (an RPC call's) names the call; else an ask
     * names its recipient. */
    if (err == FL_ETIMEDOUT && t->u.fut.to != 0)
        fl__future_fail_runtime(t->u.fut.f, FL_ETIMEDOUT, t->u.fut.ms,
                                "Ask to actor %016llx timed out after %lld ms",
                                (unsigned long long)t->u.fut.to,
                                (long long)t->u.fut.ms);
    else if (err == FL_ETIMEDOUT)
        fl__future_fail_runtime(t->u.fut.f, FL_ETIMEDOUT, t->u.fut.ms,
                                "timed out after %lld ms",
                                (long long)t->u.fut.ms);
    else if (err == FL_ECLOSED)
        fl_future_fail(t->u.fut.f, FL_ECLOSED, "actor system shut down");
    else
        fl_future_fail(t->u.fut.f, err, "could not arm the timeout");
    hlock(T);
    bool ours = t->cancel_req;
    if (!ours)
        t->st = FL__TS_FIRED;
    hunlock(T);
    if (ours)
        free_timer(t);
}

int fl__timer_arm(fl_system_t *sys, fl__timer_t *t)
{
    fl__timers_t *T = &sys->timers;
    hlock(T);
    if (t->st == FL__TS_CANCELED) {
        /* Its future completed before we got here. */
        hunlock(T);
        free_timer(t);
        return FL_OK;
    }
    if (!T->stop) {
        int rc = heap_push(T, t);
        if (rc == FL_OK) {
            bool w = needs_wake(T, t);
            hunlock(T);
            if (w)
                wake(T);
            return FL_OK;
        }
    }
    /* Closed (or no memory for the heap): fail the future now, through the
     * same FIRING protocol as a real expiry. */
    int err = T->stop ? FL_ECLOSED : FL_ENOMEM;
    t->st = FL__TS_FIRING;
    hunlock(T);
    fire_future(T, t, err);
    return err;
}

void fl__timer_cancel_internal(fl_system_t *sys, fl__timer_t *t)
{
    fl__timers_t *T = &sys->timers;
    hlock(T);
    switch (t->st) {
    case FL__TS_NEW:
        t->st = FL__TS_CANCELED; /* arm frees it */
        hunlock(T);
        return;
    case FL__TS_HEAP:
        heap_remove(T, t);
        hunlock(T);
        free_timer(t);
        return;
    case FL__TS_FIRED: /* fired and waiting for us */
        hunlock(T);
        free_timer(t);
        return;
    default: /* FIRING: the firing side frees it */
        t->cancel_req = true;
        hunlock(T);
        return;
    }
}

/* Public timers: create and arm in one step. */
static int arm_public(fl_system_t *sys, fl__timer_t *t, int64_t delay_ms,
                      int64_t period_ms, fl_timer_id_t *out)
{
    fl__timers_t *T = &sys->timers;
    t->deadline = fl__timer_deadline_after(delay_ms);
    t->period = fl__ms_to_ns(period_ms);
    hlock(T);
    /* Pairs with the exchange of closed in fl_system_close. */
    if (T->stop || atomic_load_explicit(&sys->closed, memory_order_acquire)) {
        hunlock(T);
        free_timer(t);
        return FL_ECLOSED;
    }
    t->id = ++T->next_id;
    int rc = ids_put(T, t);
    if (rc == FL_OK) {
        rc = heap_push(T, t);
        if (rc != FL_OK)
            ids_del(T, t);
    }
    if (rc != FL_OK) {
        hunlock(T);
        free_timer(t);
        return rc;
    }
    bool w = needs_wake(T, t);
    if (out != NULL)
        *out = t->id;
    hunlock(T);
    if (w)
        wake(T);
    return FL_OK;
}

int fl_timer_send(fl_system_t *sys, fl_actor_ref_t to, fl_msg_t *msg,
                  int64_t delay_ms, int64_t period_ms, fl_timer_id_t *out)
{
    if (msg == NULL)
        return FL_EINVAL;
    if (sys == NULL || delay_ms < 0 || period_ms < 0 || msg->reply != NULL) {
        fl_msg_free(msg);
        return FL_EINVAL;
    }
    fl__timer_t *t = timer_alloc();
    if (t == NULL) {
        fl_msg_free(msg);
        return FL_ENOMEM;
    }
    t->kind = FL__T_MSG;
    msg->target = to.id;
    msg->sender = fl__tls_actor;
    t->u.m.msg = msg;
    t->u.m.to = to.id;
    return arm_public(sys, t, delay_ms, period_ms, out);
}

int fl_timer_start(fl_system_t *sys, fl_timer_cb cb, void *arg,
                   int64_t delay_ms, int64_t period_ms, fl_timer_id_t *out)
{
    if (sys == NULL || cb == NULL || delay_ms < 0 || period_ms < 0)
        return FL_EINVAL;
    fl__timer_t *t = timer_alloc();
    if (t == NULL)
        return FL_ENOMEM;
    t->kind = FL__T_CB;
    t->u.c.cb = cb;
    t->u.c.arg = arg;
    return arm_public(sys, t, delay_ms, period_ms, out);
}

int fl_timer_cancel(fl_system_t *sys, fl_timer_id_t id)
{
    return fl__timer_cancel_id(sys, id, NULL);
}

int fl__timer_cancel_id(fl_system_t *sys, fl_timer_id_t id, bool *firing)
{
    if (firing != NULL)
        *firing = false;
    if (sys == NULL)
        return FL_EINVAL;
    if (id == 0)
        return FL_ENOENT;
    fl__timers_t *T = &sys->timers;
    hlock(T);
    if (T->stop) {
        /* A callback may still be running (the thread is being joined):
         * say so, so that the caller does not free what it uses. */
        fl__timer_t *r = ids_find(T, id);
        if (firing != NULL && r != NULL && r->st == FL__TS_FIRING)
            *firing = true;
        hunlock(T);
        return FL_ECLOSED;
    }
    fl__timer_t *t = ids_find(T, id);
    if (t == NULL || t->cancel_req) {
        hunlock(T);
        return FL_ENOENT;
    }
    if (t->st == FL__TS_FIRING) {
        /* A callback run is in progress; the firing side frees it. */
        if (firing != NULL)
            *firing = true;
        t->cancel_req = true;
        hunlock(T);
        return FL_OK;
    }
    ids_del(T, t);
    heap_remove(T, t);
    hunlock(T);
    free_timer(t);
    return FL_OK;
}

/* ---- the thread ------------------------------------------------------------
 */

/* The timer thread lets go of both its locks to run user code (a
 * callback, a future's callbacks, a dead letter), which may arm, cancel,
 * or close the system; and takes them back in its order, mu then hlk. */
static void thread_unlock(fl__timers_t *T)
{
    hunlock(T);
    pthread_mutex_unlock(&T->mu);
}

static void thread_relock(fl__timers_t *T)
{
    pthread_mutex_lock(&T->mu);
    hlock(T);
}

/* Fire t, popped from the heap; called and returns with mu and hlk held
 * (the timer thread). */
static void fire(fl_system_t *sys, fl__timer_t *t, uint64_t now)
{
    fl__timers_t *T = &sys->timers;
    switch (t->kind) {
    case FL__T_MSG: {
        /* Deliver under the lock: cancel is linearizable with delivery. */
        fl_msg_t *m = t->period ? fl__msg_clone(t->u.m.msg) : t->u.m.msg;
        int rc = FL_ENOMEM;
        fl_msg_t *dead = NULL;
        if (m != NULL) {
            if (!t->period)
                t->u.m.msg = NULL;
            rc = fl__deliver_or_keep(sys, m, true);
            if (rc != FL_OK)
                dead = m; /* settled below, without the lock */
        }
        bool rearmed = false;
        if (t->period && rc != FL_EUNREACHABLE) {
            t->deadline = fl__add_sat(t->deadline, t->period);
            rearmed = heap_push(T, t) == FL_OK;
        }
        if (!rearmed) {
            /* One-shot delivered, periodic to a dead actor, or no memory. */
            if (rc == FL_ENOMEM)
                FL_LOG(FL_LOG_WARN, "timer %llu: no memory for a delivery",
                       (unsigned long long)t->id);
            ids_del(T, t);
        }
        /* Dead letters may run user code (an exec's arg_free): never under
         * the timer lock. */
        fl_msg_t *rest = rearmed ? NULL : t->u.m.msg;
        if (!rearmed) {
            t->u.m.msg = NULL;
            timer_free(t);
        }
        if (dead != NULL || rest != NULL) {
            thread_unlock(T);
            if (dead != NULL)
                fl__dead_letter(sys, dead, "has stopped");
            fl_msg_free(rest);
            thread_relock(T);
        }
        return;
    }
    case FL__T_CB: {
        t->st = FL__TS_FIRING;
        thread_unlock(T);
        t->u.c.cb(sys, t->u.c.arg);
        thread_relock(T);
        if (t->period && !t->cancel_req && !T->stop) {
            t->deadline = fl__add_sat(t->deadline, t->period);
            if (heap_push(T, t) == FL_OK)
                return;
        }
        ids_del(T, t);
        free_timer(t);
        return;
    }
    case FL__T_FUTURE:
        t->st = FL__TS_FIRING;
        thread_unlock(T);
        fire_future(T, t, FL_ETIMEDOUT);
        thread_relock(T);
        return;
    }
    (void)now;
}

/*
 * The thread holds mu whenever it is awake, and hlk while it looks at the
 * heap. It publishes sleep_until under hlk before letting go of it; an
 * arming thread that reads a later sleep_until then signals under mu,
 * which it gets only once the thread waits. While the thread is awake
 * sleep_until is 0, so nobody signals (it looks at the heap again anyway).
 */
static void *timer_main(void *p)
{
    fl_system_t *sys = p;
    fl__timers_t *T = &sys->timers;
    fl__tls_sys = sys;
    pthread_mutex_lock(&T->mu);
    /* Running: fl__timers_start waits for this. */
    T->running = true;
    pthread_cond_broadcast(&T->cv);
    for (;;) {
        hlock(T);
        T->sleep_until = 0;
        uint64_t now = fl_clock_now_ns();
        while (T->len > 0 && T->heap[0]->deadline <= now && !T->stop) {
            fl__timer_t *t = T->heap[0];
            heap_remove(T, t);
            fire(sys, t, now);
            now = fl_clock_now_ns();
        }
        if (T->stop) {
            hunlock(T);
            break;
        }
        uint64_t d = T->len > 0 ? T->heap[0]->deadline : UINT64_MAX;
        T->sleep_until = d;
        hunlock(T);
        if (d == UINT64_MAX) {
            pthread_cond_wait(&T->cv, &T->mu);
        } else {
            struct timespec ts = {(time_t)(d / 1000000000ull),
                                  (long)(d % 1000000000ull)};
            pthread_cond_timedwait(&T->cv, &T->mu, &ts);
        }
    }
    pthread_mutex_unlock(&T->mu);
    fl__pool_flush_thread();
    return NULL;
}

int fl__timers_start(fl_system_t *sys)
{
    fl__timers_t *T = &sys->timers;
    pthread_condattr_t a;
    pthread_mutex_init(&T->mu, NULL);
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&T->cv, &a);
    pthread_condattr_destroy(&a);
    atomic_init(&T->hlk, false);
    T->sleep_until = 0;
    if (pthread_create(&T->thread, NULL, timer_main, sys) != 0)
        return FL_ESYSTEM;
    T->started = true;
    pthread_mutex_lock(&T->mu);
    while (!T->running)
        pthread_cond_wait(&T->cv, &T->mu);
    pthread_mutex_unlock(&T->mu);
    return FL_OK;
}

void fl__timers_shutdown(fl_system_t *sys)
{
    fl__timers_t *T = &sys->timers;
    if (!T->started)
        return;
    hlock(T);
    T->stop = true;
    hunlock(T);
    wake(T);
    pthread_join(T->thread, NULL);
    T->started = false;

    /* Drop everything still armed; future timeouts fail with FL_ECLOSED so
     * nobody waits for a timer that will never fire. */
    hlock(T);
    fl__timer_t **heap = T->heap;
    size_t len = T->len;
    T->heap = NULL;
    T->len = T->cap = 0;
    for (size_t i = 0; i < len; i++) {
        /* Dropped, never to fire: out of the id table first, so a cancel
         * does not take them for running callbacks. */
        if (heap[i]->id != 0)
            ids_del(T, heap[i]);
        heap[i]->st = FL__TS_FIRING;
    }
    hunlock(T);
    for (size_t i = 0; i < len; i++) {
        if (heap[i]->kind == FL__T_FUTURE)
            fire_future(T, heap[i], FL_ECLOSED);
        else
            free_timer(heap[i]);
    }
    fl__free(heap);
    fl__free(T->ids);
    T->ids = NULL;
    T->idcap = T->nids = 0;
}

uint64_t fl__timers_pending(fl_system_t *sys)
{
    /* Under hlk, which guards the heap (mu is the thread's wait). */
    hlock(&sys->timers);
    uint64_t n = sys->timers.len;
    hunlock(&sys->timers);
    return n;
}
