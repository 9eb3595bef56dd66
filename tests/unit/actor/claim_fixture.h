/*
 * claim_fixture.h - what claim_test.c and claim_held_test.c share: the
 * recording actor (rec_t: what each receive saw, forwarding by message
 * type), claim_idle, the run checks and the two-actor system (fx_t).
 *
 * Every wait is on an event (the recorder's count, a latch, a future) and
 * bounded. An actor just spawned or just run by a worker may not be idle
 * yet, so claim_idle retries with a message it then waits for, and for
 * the worker's turn to end (the mailbox marked empty).
 *
 * Header-only (static inline) because each program is built from one file.
 */
#ifndef CLAIM_FIXTURE_H
#define CLAIM_FIXTURE_H

#include "fl_test.h"

#include "actor/claim.h"
#include "actor/system.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#define T_REC 1u  /* record the message */
#define T_FWD 2u  /* record it, then fl__tell_claim its value to rec_t.fwd */
#define T_SLOW 3u /* record it after SLOW_NS of work */
#define T_LONG 4u /* record it after LONG_NS of work */
#define T_HELD 5u /* record it, then fl__tell_held its value to rec_t.fwd */
#define SLOW_NS 300000u
#define LONG_NS 1500000u
#define BUDGET_NS 1000000u /* the budget of the budget cases (1 ms) */
#define WARM (-1)          /* the value of claim_idle's messages */
#define BATCH 4u           /* the batch of the batch case's system */
#define MAX_ENTRIES 128

/* What the receive saw, one entry per message. */
typedef struct entry {
    int v;
    uint64_t began; /* fl_clock_now_ns() when the receive began */
    pthread_t thread;
    uint64_t self;        /* fl_self() */
    fl_system_t *current; /* fl_system_current() */
    int wait_rc;          /* fl_future_wait on a pending future */
    int fwd_rc;           /* T_FWD: fl__tell_claim's result; T_HELD:
                             fl__tell_held's */
    bool fwd_claimed;     /* T_FWD: it claimed (it must not) */
} entry_t;

typedef struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fl_actor_ref_t fwd;      /* where T_FWD and T_HELD forward (set before) */
    const fl__claim_t *held; /* what T_HELD passes (set before any T_HELD) */
    atomic_int stops;        /* on_stop runs */
    pthread_t stop_thread;
    fl_test_latch_t *stopped; /* optional: on_stop counts down */
    /* Messages received, deliberately NOT atomic and not under mu: only
     * the actor's turns touch it, so TSan reports a turn on one thread
     * (claimed or a worker) that does not happen after the one before. */
    long plain;
    int n;                  /* under mu */
    entry_t e[MAX_ENTRIES]; /* under mu */
} rec_t;

static inline void rec_init(rec_t *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    fl_test_cond_init(&r->cv);
}

static inline void rec_fini(rec_t *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static inline int rec_count(rec_t *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* Waits (FL_TEST_WAIT_MS) until r recorded at least n messages. */
static inline void rec_wait(rec_t *r, int n)
{
    struct timespec ts = fl_test_deadline(FL_TEST_WAIT_MS);
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    while (r->n < n && rc == 0)
        rc = pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    int have = r->n;
    pthread_mutex_unlock(&r->mu);
    if (have < n)
        fail_msg("recorded %d messages, want %d", have, n);
}

/* Entry i, read once the messages up to it are recorded. */
static inline entry_t rec_at(rec_t *r, int i)
{
    if (i < 0 || i >= MAX_ENTRIES)
        fail_msg("entry %d: only %d are kept", i, MAX_ENTRIES);
    pthread_mutex_lock(&r->mu);
    entry_t e = r->e[i];
    pthread_mutex_unlock(&r->mu);
    return e;
}

static inline void rec_receive(fl_system_t *sys, fl_actor_ref_t self,
                               void *state, fl_msg_t *msg)
{
    (void)self;
    rec_t *r = state;
    uint64_t began = fl_clock_now_ns();
    uint32_t type = fl_msg_type(msg);
    if (type == T_SLOW || type == T_LONG) {
        uint64_t until = began + (type == T_SLOW ? SLOW_NS : LONG_NS);
        while (fl_clock_now_ns() < until)
            ;
    }
    entry_t e = {.v = *(int *)fl_msg_data(msg),
                 .began = began,
                 .thread = pthread_self()};
    e.self = fl_self().id;
    e.current = fl_system_current();
    fl_future_t *f = fl_future_alloc();
    e.wait_rc = f ? fl_future_wait(f, 1) : FL_ENOMEM;
    fl_future_release(f);
    if (fl_msg_type(msg) == T_FWD) {
        fl__claim_t c;
        e.fwd_rc = fl__tell_claim(sys, r->fwd, fl_test_msg_int(T_REC, e.v), &c);
        e.fwd_claimed = c.a != NULL;
        (void)fl__claim_run(&c, 0); /* a no-op unless it wrongly claimed */
    }
    if (type == T_HELD)
        e.fwd_rc = fl__tell_held(r->held, r->fwd, fl_test_msg_int(T_REC, e.v));
    r->plain++;
    pthread_mutex_lock(&r->mu);
    if (r->n < MAX_ENTRIES)
        r->e[r->n] = e;
    r->n++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static inline void rec_on_stop(fl_system_t *sys, fl_actor_ref_t self,
                               void *state)
{
    (void)sys;
    (void)self;
    rec_t *r = state;
    r->stop_thread = pthread_self();
    atomic_fetch_add(&r->stops, 1);
    if (r->stopped)
        fl_test_latch_count_down(r->stopped);
}

static inline fl_actor_ref_t spawn_rec(fl_system_t *sys, rec_t *r)
{
    fl_actor_opts_t o = {.on_stop = rec_on_stop};
    fl_actor_ref_t ref;
    assert_fl_ok(fl_actor_spawn(sys, rec_receive, r, &o, &ref));
    return ref;
}

/* Waits (FL_TEST_WAIT_MS) until ref's mailbox is marked empty: the turn
 * that ran the actor has ended, and the next tell makes it runnable. */
static inline void wait_idle(fl_system_t *sys, fl_actor_ref_t ref)
{
    fl__actor_t *a = fl__slot(sys, FL__REF_SLOT(ref.id));
    assert_non_null(a);
    uint64_t t0 = fl_clock_now_ns();
    /* Pairs with the acq_rel CAS in fl__mpscq_markempty. */
    while ((atomic_load_explicit(&a->head, memory_order_acquire) & 1u) == 0) {
        if (fl_test_ms_since(t0) > FL_TEST_WAIT_MS)
            fail_msg("actor %016llx never went idle",
                     (unsigned long long)ref.id);
        sched_yield();
    }
}

/* Tells r's actor a WARM until one claims it (a tell that does not was
 * queued: wait until it ran and the turn ended, then try again). Returns
 * how many messages r has recorded (final while claimed): the claimed
 * WARM will be that entry. */
static inline int claim_idle(fl_system_t *sys, fl_actor_ref_t ref, rec_t *r,
                             fl__claim_t *c)
{
    for (int tries = 0; tries < 1000; tries++) {
        int before = rec_count(r);
        assert_fl_ok(fl__tell_claim(sys, ref, fl_test_msg_int(T_REC, WARM), c));
        if (c->a != NULL)
            return rec_count(r);
        rec_wait(r, before + 1);
        wait_idle(sys, ref);
    }
    fail_msg("the actor was never idle in 1000 tries");
    return -1;
}

/* Entries [from, from + n) hold values first, first + 1, ..., ran with the
 * actor's context, on the calling thread (on_caller) or on others. */
static inline void expect_run(rec_t *r, int from, int n, int first,
                              fl_actor_ref_t ref, fl_system_t *sys,
                              bool on_caller)
{
    pthread_t thread = pthread_self();
    for (int i = 0; i < n; i++) {
        entry_t e = rec_at(r, from + i);
        if (e.v != first + i)
            fail_msg("entry %d: value %d, want %d", from + i, e.v, first + i);
        if ((pthread_equal(e.thread, thread) != 0) != on_caller)
            fail_msg("entry %d (value %d) ran %s the calling thread", from + i,
                     e.v, on_caller ? "off" : "on");
        assert_int_equal(ref.id, e.self);
        assert_ptr_equal(sys, e.current);
        assert_fl(FL_EDEADLK, e.wait_rc);
    }
}

/* Tells other a message and waits until a worker ran it. */
static inline void workers_ran(fl_system_t *sys, fl_actor_ref_t other, rec_t *r)
{
    int n = rec_count(r);
    assert_fl_ok(fl_tell(sys, other, fl_test_msg_int(T_REC, 0)));
    rec_wait(r, n + 1);
}

/* A system (2 workers, batch 0: the default) with two recording actors:
 * a, spawned first, and b. */
typedef struct fx {
    fl_system_t *sys;
    rec_t a, b;
    fl_actor_ref_t aref, bref;
} fx_t;

static inline void fx_start(fx_t *fx, unsigned batch)
{
    fl_system_opts_t o = {.workers = 2, .batch = batch};
    fx->sys = NULL;
    assert_fl_ok(fl_system_alloc(&o, &fx->sys));
    rec_init(&fx->a);
    rec_init(&fx->b);
    fx->aref = spawn_rec(fx->sys, &fx->a);
    fx->bref = spawn_rec(fx->sys, &fx->b);
}

/* Frees the system (its threads joined) and checks every message was
 * counted by both counters. */
static inline void fx_end(fx_t *fx)
{
    fl_system_free(fx->sys);
    assert_int_equal(fx->a.n, fx->a.plain);
    assert_int_equal(fx->b.n, fx->b.plain);
    rec_fini(&fx->a);
    rec_fini(&fx->b);
}

#endif /* CLAIM_FIXTURE_H */
