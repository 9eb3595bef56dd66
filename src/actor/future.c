/*
 * future.c - one-shot futures: the small core (complete/fail exactly once,
 * callbacks, cancel hook, timeout, blocking wait). The combinators built
 * on it (then, compose, all) are in future_combine.c.
 *
 * Every state change happens under the future's lock; callbacks run after
 * it is released, in registration order, on the completing thread.
 *
 * The lock is a spin lock, not a mutex: its critical sections are a few
 * stores, it is rarely contended (a completion racing a registration),
 * and on the remote call path a future is locked twice per call, where a
 * mutex's unlock is a second atomic read-modify-write and a call into
 * libc. A thread that spins long (its holder was preempted) yields. A
 * blocking wait sleeps on a condition variable of its own (waiter_t),
 * which the completion signals once it has let go of the lock.
 */
#include "actor/future.h"
#include "actor/system.h"
#include "common/pool.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { ST_PENDING = 0, ST_OK = 1, ST_FAILED = 2 };

typedef struct cb_node {
    fl_future_cb fn;
    fl_free_cb drop; /* called instead of fn if f is freed while pending */
    void *arg;
    struct cb_node *next;
} cb_node_t;

/* A thread blocked in fl_future_wait: woken by the completion, which sets
 * woken under mu once it has taken w off the future's list. */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool woken; /* under mu */
    struct waiter *next;
} waiter_t;

struct fl_future {
    _Atomic uint32_t refs;
    _Atomic uint32_t state; /* written under lk; read lock-free */
    _Atomic bool lk;        /* the spin lock: lock() and unlock() */
    bool timed;             /* a timed_t: its timer's slot follows */
    uint16_t room;          /* bytes of a timed_t's room (the caller's) */
    int err;
    /* Set before the release store of state; after that it only changes
     * by being taken (exchange), so reading it needs no lock. */
    _Atomic(void *) value;
    fl_free_cb value_free;
    char *message;   /* owned; NULL = fl_strerror(err) */
    cb_node_t first; /* inline first callback (fn NULL = none) */
    cb_node_t *more, **more_tail;
    waiter_t *waiters;
    fl_future_cb cancel_hook;
    void *cancel_arg;
    fl__timer_t *timer; /* timeout timer, cancelled on completion */
    fl_system_t *timer_sys;
    /* What the future is the result of, for the runtime's failures
     * (fl__future_fail_runtime); taken under the lock by whoever lets go
     * of namer_ctx: the completion, that failure, or the last release. */
    const fl__namer_t *namer;
    void *namer_ctx;
    const void *namer_aux;
    uint64_t namer_word;
};

static void lock(fl_future_t *f)
{
    fl__spin_lock(&f->lk);
}

static void unlock(fl_future_t *f)
{
    fl__spin_unlock(&f->lk);
}

/* An ask's future with the block of its timeout timer behind it, and
 * then its caller's room: one allocation and one free per ask instead of
 * two or three (a future and its timer fit the pool's 256-byte class). */
typedef struct timed {
    fl_future_t f;
    fl__timer_t t;
} timed_t;

static fl_future_t *alloc_future(size_t size)
{
    /* A copy of a zero template, not memset: see fl__frame_decode_meta. */
    static const fl_future_t none;
    fl_future_t *f = fl__block_alloc(size);
    if (f == NULL)
        return NULL;
    memcpy(f, &none, sizeof *f);
    /* Not atomic operations: f is not shared yet. */
    atomic_init(&f->refs, 1);
    atomic_init(&f->state, ST_PENDING);
    atomic_init(&f->lk, false);
    f->more_tail = &f->more;
    return f;
}

fl_future_t *fl_future_alloc(void)
{
    return alloc_future(sizeof(fl_future_t));
}

fl_future_t *fl__future_alloc_timed(size_t room)
{
    if (room > UINT16_MAX)
        return NULL;
    fl_future_t *f = alloc_future(sizeof(timed_t) + room);
    if (f != NULL) {
        f->timed = true;
        f->room = (uint16_t)room;
    }
    return f;
}

void *fl__future_room(fl_future_t *f)
{
    return (char *)f + sizeof(timed_t);
}

fl__timer_t *fl__future_timer_slot(fl_future_t *f)
{
    return f->timed ? &((timed_t *)f)->t : NULL;
}

fl_future_t *fl_future_retain(fl_future_t *f)
{
    /* Relaxed: the caller holds a reference already; the release side
     * orders the frees (fl_future_release). */
    if (f != NULL)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

fl_future_t *fl__future_retain_unshared(fl_future_t *f)
{
    /* Relaxed, not a read-modify-write: no other thread holds f yet; the
     * release store that shares f (a mailbox push) publishes the count. */
    uint32_t n = atomic_load_explicit(&f->refs, memory_order_relaxed);
    atomic_store_explicit(&f->refs, n + 1, memory_order_relaxed);
    return f;
}

void fl_future_release(fl_future_t *f)
{
    if (f == NULL)
        return;
    /* acq_rel: the last releaser sees every write made under other refs. */
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Relaxed: ordered by the acq_rel decrement above. */
    void *v = atomic_load_explicit(&f->value, memory_order_relaxed);
    if (v != NULL && f->value_free != NULL)
        f->value_free(v);
    fl__free(f->message);
    if (f->namer != NULL)
        f->namer->release(f->namer_ctx);
    /* Pending callbacks can never run now: let them free what they hold. */
    if (f->first.fn != NULL && f->first.drop != NULL)
        f->first.drop(f->first.arg);
    cb_node_t *n = f->more;
    while (n != NULL) {
        cb_node_t *next = n->next;
        if (n->drop != NULL)
            n->drop(n->arg);
        fl__free(n);
        n = next;
    }
    fl__block_free(f, f->timed ? sizeof(timed_t) + f->room : sizeof *f);
}

/*
 * Finish a completion started under f's lock (state already set): detach
 * the callbacks and waiters, unlock, wake the waiters, cancel the timer
 * and run the callbacks.
 */
static void finish(fl_future_t *f)
{
    cb_node_t first = f->first;
    cb_node_t *more = f->more;
    f->first.fn = NULL;
    f->more = NULL;
    f->more_tail = &f->more;
    fl__timer_t *timer = f->timer;
    fl_system_t *tsys = f->timer_sys;
    f->timer = NULL;
    const fl__namer_t *namer = f->namer;
    f->namer = NULL;
    waiter_t *w = f->waiters;
    f->waiters = NULL;
    unlock(f);

    while (w != NULL) {
        /* w lives on its thread's stack until it sees woken: read next
         * first, touch nothing after the unlock. */
        waiter_t *next = w->next;
        pthread_mutex_lock(&w->mu);
        w->woken = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        w = next;
    }
    if (timer != NULL)
        fl__timer_cancel_internal(tsys, timer);
    if (namer != NULL)
        namer->release(f->namer_ctx);
    if (first.fn != NULL)
        first.fn(f, first.arg);
    while (more != NULL) {
        cb_node_t *next = more->next;
        more->fn(f, more->arg);
        fl__free(more);
        more = next;
    }
}

int fl_future_complete(fl_future_t *f, void *value, fl_free_cb value_free)
{
    if (f == NULL) {
        if (value != NULL && value_free != NULL)
            value_free(value);
        return FL_EINVAL;
    }
    lock(f);
    /* Relaxed: state is written under the lock we hold. */
    if (atomic_load_explicit(&f->state, memory_order_relaxed) != ST_PENDING) {
        unlock(f);
        if (value != NULL && value_free != NULL)
            value_free(value);
        return FL_EALREADY;
    }
    /* Relaxed: published by the release store of state below. */
    atomic_store_explicit(&f->value, value, memory_order_relaxed);
    f->value_free = value_free;
    f->err = FL_OK;
    /* Pairs with the acquire loads in the lock-free accessors. */
    atomic_store_explicit(&f->state, ST_OK, memory_order_release);
    finish(f);
    return FL_OK;
}

int fl_future_failv(fl_future_t *f, int err, const char *fmt, va_list ap)
{
    if (f == NULL || err == FL_OK)
        return FL_EINVAL;
    char *msg = NULL;
    if (fmt != NULL) {
        /* Sized to the message, up to FL_FUTURE_MESSAGE_MAX bytes. */
        va_list ap2;
        va_copy(ap2, ap);
        int n = vsnprintf(NULL, 0, fmt, ap2);
        va_end(ap2);
        size_t cap = n < 0 ? 1
                     : (size_t)n < FL_FUTURE_MESSAGE_MAX
                         ? (size_t)n + 1
                         : FL_FUTURE_MESSAGE_MAX;
        msg = fl__malloc(cap);
        if (msg != NULL)
            vsnprintf(msg, cap, fmt, ap);
    }
    lock(f);
    /* Relaxed: state is written under the lock we hold. */
    if (atomic_load_explicit(&f->state, memory_order_relaxed) != ST_PENDING) {
        unlock(f);
        fl__free(msg);
        return FL_EALREADY;
    }
    f->err = err;
    f->message = msg;
    /* As in fl_future_complete: publishes err and message. */
    atomic_store_explicit(&f->state, ST_FAILED, memory_order_release);
    finish(f);
    return FL_OK;
}

int fl_future_fail(fl_future_t *f, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fl_future_failv(f, err, fmt, ap);
    va_end(ap);
    return rc;
}

void fl__future_set_namer(fl_future_t *f, const fl__namer_t *namer, void *ctx,
                          const void *aux, uint64_t word)
{
    /* Not shared yet: whoever gets f later sees these through the release
     * that shares it (a mailbox push, a future handed over). */
    f->namer = namer;
    f->namer_ctx = ctx;
    f->namer_aux = aux;
    f->namer_word = word;
}

int fl__future_fail_runtime(fl_future_t *f, int err, int64_t timeout_ms,
                            const char *fmt, ...)
{
    /* Take the namer (and with it ctx) only if the failure can still win:
     * a completion that wins meanwhile finds no namer, so ctx is released
     * here, once. */
    lock(f);
    const fl__namer_t *namer = NULL;
    /* Relaxed: state is written under the lock we hold. */
    if (atomic_load_explicit(&f->state, memory_order_relaxed) == ST_PENDING) {
        namer = f->namer;
        f->namer = NULL;
    }
    unlock(f);
    if (namer == NULL) {
        va_list ap;
        va_start(ap, fmt);
        int rc = fl_future_failv(f, err, fmt, ap);
        va_end(ap);
        return rc;
    }
    char text[FL_FUTURE_MESSAGE_MAX];
    namer->say(f->namer_ctx, f->namer_aux, f->namer_word, err, timeout_ms, text,
               sizeof text);
    int rc = fl_future_fail(f, err, "%s", text);
    namer->release(f->namer_ctx);
    return rc;
}

int fl_future_cancel(fl_future_t *f)
{
    if (f == NULL)
        return FL_EINVAL;
    lock(f);
    fl_future_cb hook = f->cancel_hook;
    void *harg = f->cancel_arg;
    f->cancel_hook = NULL;
    unlock(f);
    /* Keep f alive across the hook even if callbacks release it. */
    fl_future_retain(f);
    int rc = fl_future_fail(f, FL_ECANCELED, NULL);
    if (rc == FL_OK && hook != NULL)
        hook(f, harg);
    fl_future_release(f);
    return rc;
}

int fl_future_set_cancel_hook(fl_future_t *f, fl_future_cb hook, void *arg)
{
    if (f == NULL)
        return FL_EINVAL;
    lock(f);
    int rc = FL_OK;
    /* Relaxed: state is written under the lock we hold. */
    if (atomic_load_explicit(&f->state, memory_order_relaxed) != ST_PENDING) {
        rc = FL_EALREADY;
    } else {
        f->cancel_hook = hook;
        f->cancel_arg = arg;
    }
    unlock(f);
    return rc;
}

bool fl_future_done(const fl_future_t *f)
{
    /* Pairs with the release stores of state (complete, fail). */
    return f != NULL &&
           atomic_load_explicit(&((fl_future_t *)f)->state,
                                memory_order_acquire) != ST_PENDING;
}

int fl_future_error(const fl_future_t *f)
{
    if (f == NULL)
        return FL_EINVAL;
    /* Pairs with the release stores of state: err is visible. */
    uint32_t st =
        atomic_load_explicit(&((fl_future_t *)f)->state, memory_order_acquire);
    if (st == ST_PENDING)
        return FL_EPENDING;
    return st == ST_OK ? FL_OK : f->err;
}

const char *fl_future_message(const fl_future_t *f)
{
    /* Pairs with the release store of state in fl_future_failv. */
    if (f == NULL || atomic_load_explicit(&((fl_future_t *)f)->state,
                                          memory_order_acquire) != ST_FAILED)
        return "";
    return f->message != NULL ? f->message : fl_strerror(f->err);
}

void *fl_future_value(const fl_future_t *f)
{
    /* Pairs with the release store of state in fl_future_complete. */
    if (f == NULL || atomic_load_explicit(&((fl_future_t *)f)->state,
                                          memory_order_acquire) != ST_OK)
        return NULL;
    /* Ordered by the acquire load of state above; relaxed would do, acquire
     * also orders it after a take by another thread. */
    return atomic_load_explicit(&((fl_future_t *)f)->value,
                                memory_order_acquire);
}

void *fl_future_take_value(fl_future_t *f)
{
    /* Pairs with the release store of state in fl_future_complete. */
    if (f == NULL ||
        atomic_load_explicit(&f->state, memory_order_acquire) != ST_OK)
        return NULL;
    /* acq_rel: one taker wins; pairs with other takes and the release
     * store of state. */
    return atomic_exchange_explicit(&f->value, NULL, memory_order_acq_rel);
}

void fl__future_on_complete_unshared(fl_future_t *f, fl_future_cb cb,
                                     fl_free_cb drop, void *arg)
{
    /* Not shared yet: as in fl__future_set_namer. */
    f->first.fn = cb;
    f->first.drop = drop;
    f->first.arg = arg;
}

int fl_future_on_complete(fl_future_t *f, fl_future_cb cb, void *arg)
{
    return fl__future_on_complete_ex(f, cb, NULL, arg);
}

int fl__future_on_complete_ex(fl_future_t *f, fl_future_cb cb, fl_free_cb drop,
                              void *arg)
{
    if (f == NULL || cb == NULL)
        return FL_EINVAL;
    lock(f);
    /* Relaxed: state is written under the lock we hold. */
    if (atomic_load_explicit(&f->state, memory_order_relaxed) != ST_PENDING) {
        unlock(f);
        cb(f, arg);
        return FL_OK;
    }
    if (f->first.fn == NULL && f->more == NULL) {
        f->first.fn = cb;
        f->first.drop = drop;
        f->first.arg = arg;
    } else {
        cb_node_t *n = fl__malloc(sizeof *n);
        if (n == NULL) {
            unlock(f);
            return FL_ENOMEM;
        }
        n->fn = cb;
        n->drop = drop;
        n->arg = arg;
        n->next = NULL;
        *f->more_tail = n;
        f->more_tail = &n->next;
    }
    unlock(f);
    return FL_OK;
}

void fl__future_forward(fl_future_t *src, fl_future_t *dst)
{
    if (fl_future_error(src) == FL_OK) {
        /* As in fl_future_take. */
        void *v =
            atomic_exchange_explicit(&src->value, NULL, memory_order_acq_rel);
        fl_free_cb vf = src->value_free;
        fl_future_complete(dst, v, vf);
    } else {
        fl_future_fail(dst, src->err, "%s", fl_future_message(src));
    }
}

/* ---- timeout ------------------------------------------------------------- */

int fl__future_attach_timer(fl_future_t *f, fl_system_t *sys, fl__timer_t *t)
{
    lock(f);
    int rc = FL_OK;
    /* Relaxed: state is written under the lock we hold. */
    if (atomic_load_explicit(&f->state, memory_order_relaxed) != ST_PENDING)
        rc = FL_EALREADY;
    else if (f->timer != NULL)
        rc = FL_EEXIST;
    else {
        f->timer = t;
        f->timer_sys = sys;
    }
    unlock(f);
    return rc;
}

void fl__future_set_timer_unshared(fl_future_t *f, fl_system_t *sys,
                                   fl__timer_t *t)
{
    /* Not shared yet: as in fl__future_set_namer. */
    f->timer = t;
    f->timer_sys = sys;
}

int fl_future_set_timeout(fl_system_t *sys, fl_future_t *f, int64_t timeout_ms)
{
    if (sys == NULL || f == NULL || timeout_ms <= 0)
        return FL_EINVAL;
    /* Pairs with the exchange of closed in fl_system_close (a hint: the
     * arm below refuses on a stopped timer thread). */
    if (atomic_load_explicit(&sys->closed, memory_order_acquire))
        return FL_ECLOSED;
    fl__timer_t *t = fl__timer_new_future(f, timeout_ms, 0);
    if (t == NULL)
        return FL_ENOMEM;
    int rc = fl__future_attach_timer(f, sys, t);
    if (rc != FL_OK) {
        fl__timer_discard(t);
        return rc;
    }
    /* From here the future owns the timer: arming may fail (closed), in
     * which case the timer is already cancelled and freed by arm. */
    return fl__timer_arm(sys, t);
}

/* ---- blocking wait ------------------------------------------------------- */

#ifndef FL__WAIT_SPIN_NS
#define FL__WAIT_SPIN_NS 30000u
#endif

int fl_future_wait(fl_future_t *f, int64_t timeout_ms)
{
    if (f == NULL || (timeout_ms < 0 && timeout_ms != FL_INFINITE))
        return FL_EINVAL;
    if (fl__tls_sys != NULL || fl__tls_no_block)
        return FL_EDEADLK;
    if (fl_future_done(f))
        return fl_future_error(f);
    if (timeout_ms == 0)
        return FL_ETIMEDOUT; /* a poll: pending */
    /* The deadline counts from the call, the poll below included. */
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms != FL_INFINITE) {
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    /* Poll briefly before sleeping: an answer that is microseconds away
     * (a remote call's reply) then costs no wake-up. Yielding between
     * polls lets the thread that brings the answer (a service's I/O
     * thread, woken on this core) run at once instead of waiting for the
     * poll to end (docs/rationale-remote.md). */
    uint64_t until = fl_clock_now_ns() + FL__WAIT_SPIN_NS;
    do {
        for (int i = 0; i < 64; i++)
            fl__cpu_relax();
        if (fl_future_done(f))
            return fl_future_error(f);
        sched_yield();
    } while (fl_clock_now_ns() < until);

    waiter_t w = {.woken = false, .next = NULL};
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w.cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&w.mu, NULL);

    lock(f);
    /* Relaxed: state is written under the lock we hold. */
    bool done =
        atomic_load_explicit(&f->state, memory_order_relaxed) != ST_PENDING;
    if (!done) {
        w.next = f->waiters;
        f->waiters = &w;
    }
    unlock(f);
    if (!done) {
        int rc = 0;
        pthread_mutex_lock(&w.mu);
        while (!w.woken && rc != ETIMEDOUT) {
            if (timeout_ms == FL_INFINITE)
                rc = pthread_cond_wait(&w.cv, &w.mu);
            else
                rc = pthread_cond_timedwait(&w.cv, &w.mu, &deadline);
        }
        done = w.woken;
        pthread_mutex_unlock(&w.mu);
        if (!done) {
            /* Timed out: take w off the list, unless the completion has
             * already taken it, in which case it is about to wake w and
             * w must live until it has. */
            lock(f);
            bool listed = false;
            for (waiter_t **p = &f->waiters; *p != NULL; p = &(*p)->next) {
                if (*p == &w) {
                    *p = w.next;
                    listed = true;
                    break;
                }
            }
            unlock(f);
            if (!listed) {
                pthread_mutex_lock(&w.mu);
                while (!w.woken)
                    pthread_cond_wait(&w.cv, &w.mu);
                pthread_mutex_unlock(&w.mu);
                done = true;
            }
        }
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return done ? fl_future_error(f) : FL_ETIMEDOUT;
}
