/*
 * claim_test.c - a turn taken over from the scheduler by a thread outside
 * the runtime (fl__tell_claim / fl__claim_run, actor/claim.h): the tell
 * that makes an idle actor runnable hands it to the caller instead of a
 * worker; while claimed nobody runs it and further tells only queue; the
 * claim runs one batch on the calling thread as a worker would (fl_self,
 * fl_system_current, blocking waits refused) and hands what remains to the
 * workers, or stops past a time budget; dead refs, closed systems and
 * runtime threads claim nothing;
 * shutdown waits for a held claim. The claiming thread's own tells while
 * it holds the claim (fl__tell_held) join the claimed turn or go to the
 * workers, and need a claim that holds something. A budgeted turn reads
 * the clock less often while messages are fast, and once more at its end.
 *
 * Every wait is on an event (the recorder's count, a latch, a future) and
 * bounded. An actor just spawned or just run by a worker may not be idle
 * yet, so claim_idle retries with a message it then waits for, and for
 * the worker's turn to end (the mailbox marked empty).
 */
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

static void rec_init(rec_t *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    fl_test_cond_init(&r->cv);
}

static void rec_fini(rec_t *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static int rec_count(rec_t *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* Waits (FL_TEST_WAIT_MS) until r recorded at least n messages. */
static void rec_wait(rec_t *r, int n)
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
static entry_t rec_at(rec_t *r, int i)
{
    if (i < 0 || i >= MAX_ENTRIES)
        fail_msg("entry %d: only %d are kept", i, MAX_ENTRIES);
    pthread_mutex_lock(&r->mu);
    entry_t e = r->e[i];
    pthread_mutex_unlock(&r->mu);
    return e;
}

static void rec_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                        fl_msg_t *msg)
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

static void rec_on_stop(fl_system_t *sys, fl_actor_ref_t self, void *state)
{
    (void)sys;
    (void)self;
    rec_t *r = state;
    r->stop_thread = pthread_self();
    atomic_fetch_add(&r->stops, 1);
    if (r->stopped)
        fl_test_latch_count_down(r->stopped);
}

static fl_actor_ref_t spawn_rec(fl_system_t *sys, rec_t *r)
{
    fl_actor_opts_t o = {.on_stop = rec_on_stop};
    fl_actor_ref_t ref;
    assert_fl_ok(fl_actor_spawn(sys, rec_receive, r, &o, &ref));
    return ref;
}

/* Waits (FL_TEST_WAIT_MS) until ref's mailbox is marked empty: the turn
 * that ran the actor has ended, and the next tell makes it runnable. */
static void wait_idle(fl_system_t *sys, fl_actor_ref_t ref)
{
    fl__actor_t *a = fl__slot(sys, FL__REF_SLOT(ref.id));
    assert_non_null(a);
    uint64_t t0 = fl_clock_now_ns();
    /* Pairs with the acq_rel CAS in fl__mpscq_markempty. */
    while ((atomic_load_explicit(&a->mq.head, memory_order_acquire) & 1u) ==
           0) {
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
static int claim_idle(fl_system_t *sys, fl_actor_ref_t ref, rec_t *r,
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
static void expect_run(rec_t *r, int from, int n, int first, fl_actor_ref_t ref,
                       fl_system_t *sys, bool on_caller)
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
static void workers_ran(fl_system_t *sys, fl_actor_ref_t other, rec_t *r)
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

static void fx_start(fx_t *fx, unsigned batch)
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
static void fx_end(fx_t *fx)
{
    fl_system_free(fx->sys);
    assert_int_equal(fx->a.n, fx->a.plain);
    assert_int_equal(fx->b.n, fx->b.plain);
    rec_fini(&fx->a);
    rec_fini(&fx->b);
}

/* ---- cases --------------------------------------------------------------- */

/* A tell from the test thread to an idle actor claims it; later tells
 * (plain or claiming) only queue; nothing runs until the claim does, then
 * every queued message runs in order on the test thread as the actor. The
 * turn emptied the mailbox on this thread, so the next tell claims again. */
static void test_claim_runs_the_turn_on_the_calling_thread(void **state)
{
    (void)state;
    fx_t fx;
    fx_start(&fx, 0);
    fl_system_t *sys = fx.sys;
    fl__claim_t c;
    int base = claim_idle(sys, fx.aref, &fx.a, &c);
    assert_ptr_equal(sys, c.sys);
    assert_fl_ok(fl_tell(sys, fx.aref, fl_test_msg_int(T_REC, 0)));
    fl__claim_t c2 = {(fl_system_t *)&c2, (fl__actor_t *)&c2};
    assert_fl_ok(fl__tell_claim(sys, fx.aref, fl_test_msg_int(T_REC, 1), &c2));
    assert_null(c2.a);
    assert_null(c2.sys);
    workers_ran(sys, fx.bref, &fx.b);
    assert_int_equal(base, rec_count(&fx.a));

    assert_false(fl__claim_run(&c, 0));
    assert_null(c.a);
    assert_null(c.sys);
    assert_int_equal(base + 3, rec_count(&fx.a));
    expect_run(&fx.a, base, 1, WARM, fx.aref, sys, true);
    expect_run(&fx.a, base + 1, 2, 0, fx.aref, sys, true);
    /* The turn's context is gone again. */
    assert_int_equal(0, fl_self().id);
    assert_null(fl_system_current());
    assert_false(fl__claim_run(&c, 0)); /* a cleared claim: no-op */
    assert_int_equal(base + 3, rec_count(&fx.a));

    assert_fl_ok(fl__tell_claim(sys, fx.aref, fl_test_msg_int(T_REC, 2), &c));
    assert_non_null(c.a);
    assert_false(fl__claim_run(&c, 0));
    assert_int_equal(base + 4, rec_count(&fx.a));
    expect_run(&fx.a, base + 3, 1, 2, fx.aref, sys, true);
    fx_end(&fx);
}

/* More messages than the batch queued under a claim: the claim runs the
 * first BATCH on the test thread, the workers the rest, all in order. */
static void test_claim_runs_one_batch_then_hands_over_to_workers(void **state)
{
    (void)state;
    enum { QUEUED = 3 * BATCH };
    fx_t fx;
    fx_start(&fx, BATCH);
    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    for (int i = 0; i < QUEUED; i++)
        assert_fl_ok(fl_tell(fx.sys, fx.aref, fl_test_msg_int(T_REC, i)));
    workers_ran(fx.sys, fx.bref, &fx.b);
    assert_int_equal(base, rec_count(&fx.a));

    assert_false(fl__claim_run(&c, 0));
    assert_null(c.a);
    rec_wait(&fx.a, base + 1 + QUEUED);
    expect_run(&fx.a, base, 1, WARM, fx.aref, fx.sys, true);
    expect_run(&fx.a, base + 1, BATCH - 1, 0, fx.aref, fx.sys, true);
    expect_run(&fx.a, base + BATCH, QUEUED - (BATCH - 1), BATCH - 1, fx.aref,
               fx.sys, false);
    fl_system_free(fx.sys);
    fx.sys = NULL;
    assert_int_equal(base + 1 + QUEUED, rec_count(&fx.a));
    fx_end(&fx);
}

/* A budget ends the turn at the first message that ends past it: of five
 * messages of SLOW_NS (1.5 ms) under a 1 ms budget, 1 to 4 run on the test
 * thread (the clock decides how many; the fourth ends past 1 ms at the
 * latest), the rest on the workers, all in order, and the run reports the
 * cut. */
static void test_claim_budget_cuts_the_turn(void **state)
{
    (void)state;
    enum { SLOW = 5 };
    fx_t fx;
    fx_start(&fx, 0);
    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    for (int i = 0; i < SLOW; i++)
        assert_fl_ok(fl_tell(fx.sys, fx.aref, fl_test_msg_int(T_SLOW, i)));
    assert_true(fl__claim_run(&c, 1000000u));
    assert_null(c.a);
    rec_wait(&fx.a, base + 1 + SLOW);
    int here = 0;
    while (here < 1 + SLOW &&
           pthread_equal(rec_at(&fx.a, base + here).thread, pthread_self()))
        here++;
    assert_in_range(here, 2, SLOW); /* WARM and 1 to 4 slow ones */
    expect_run(&fx.a, base, 1, WARM, fx.aref, fx.sys, true);
    expect_run(&fx.a, base + 1, here - 1, 0, fx.aref, fx.sys, true);
    expect_run(&fx.a, base + here, 1 + SLOW - here, here - 1, fx.aref, fx.sys,
               false);
    fx_end(&fx);
}

/* A stopped actor: FL_EUNREACHABLE, a dead letter, no claim. A NULL
 * message: FL_EINVAL. A closed system: FL_ECLOSED, no claim. */
static void test_claim_refuses_dead_refs_and_closed_systems(void **state)
{
    (void)state;
    fx_t fx;
    fx_start(&fx, 0);
    fl_future_t *t = NULL;
    assert_fl_ok(fl_actor_termination(fx.sys, fx.aref, &t));
    assert_fl_ok(fl_actor_stop(fx.sys, fx.aref));
    fl_test_future_ok(t, "termination");
    fl_future_release(t);
    fl_system_stats_t before, after;
    assert_fl_ok(fl_system_stats(fx.sys, &before));
    fl__claim_t c = {fx.sys, (fl__actor_t *)&c};
    assert_fl(FL_EUNREACHABLE,
              fl__tell_claim(fx.sys, fx.aref, fl_test_msg_int(T_REC, 1), &c));
    assert_null(c.a);
    assert_fl_ok(fl_system_stats(fx.sys, &after));
    assert_int_equal(before.dead_letters + 1, after.dead_letters);
    assert_fl(FL_EINVAL, fl__tell_claim(fx.sys, fx.aref, NULL, &c));
    assert_null(c.a);

    assert_fl_ok(fl_system_close(fx.sys));
    c.a = (fl__actor_t *)&c;
    assert_fl(FL_ECLOSED,
              fl__tell_claim(fx.sys, fx.bref, fl_test_msg_int(T_REC, 2), &c));
    assert_null(c.a);
    assert_int_equal(0, rec_count(&fx.a) + rec_count(&fx.b));
    fx_end(&fx);
}

/* On a runtime thread fl__tell_claim is fl_tell: from a worker's turn and
 * from a claimed turn alike, the forward to an idle actor claims nothing
 * and a worker runs it. */
static void test_claim_inside_a_turn_is_a_plain_tell(void **state)
{
    (void)state;
    fx_t fx;
    fx_start(&fx, 0);
    fx.a.fwd = fx.bref;
    /* From a worker. */
    assert_fl_ok(fl_tell(fx.sys, fx.aref, fl_test_msg_int(T_FWD, 10)));
    rec_wait(&fx.a, 1);
    rec_wait(&fx.b, 1);
    entry_t e = rec_at(&fx.a, 0);
    assert_fl_ok(e.fwd_rc);
    assert_false(e.fwd_claimed);
    assert_false(pthread_equal(e.thread, pthread_self()));
    expect_run(&fx.b, 0, 1, 10, fx.bref, fx.sys, false);
    /* From a claimed turn on this thread. */
    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    int bbase = rec_count(&fx.b);
    assert_fl_ok(fl_tell(fx.sys, fx.aref, fl_test_msg_int(T_FWD, 11)));
    assert_false(fl__claim_run(&c, 0));
    expect_run(&fx.a, base + 1, 1, 11, fx.aref, fx.sys, true);
    e = rec_at(&fx.a, base + 1);
    assert_fl_ok(e.fwd_rc);
    assert_false(e.fwd_claimed);
    rec_wait(&fx.b, bbase + 1);
    expect_run(&fx.b, bbase, 1, 11, fx.bref, fx.sys, false);
    fx_end(&fx);
}

/* fl_system_shutdown on a thread of its own; done counts down after. */
typedef struct shutter {
    fl_system_t *sys;
    int rc; /* read after the join */
    fl_test_latch_t *done;
} shutter_t;

static void *shutter_main(void *p)
{
    shutter_t *s = p;
    s->rc = fl_system_shutdown(s->sys);
    fl_test_latch_count_down(s->done);
    return NULL;
}

/* Shutdown waits for a held claim: the claimed actor (asked to stop) can
 * only stop in the claim's turn, so shutdown, though it has closed the
 * system (b stopped), cannot return before the claim runs; the turn stops
 * the actor on this thread, its WARM a dead letter, and shutdown returns
 * FL_OK. */
static void test_shutdown_waits_for_a_held_claim(void **state)
{
    (void)state;
    fx_t fx;
    fx_start(&fx, 0);
    fx.b.stopped = fl_test_latch_alloc(1);
    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    assert_fl_ok(fl_actor_stop(fx.sys, fx.aref));
    fl_system_stats_t before, after;
    assert_fl_ok(fl_system_stats(fx.sys, &before));
    shutter_t s = {.sys = fx.sys, .rc = -1, .done = fl_test_latch_alloc(1)};
    pthread_t th;
    assert_int_equal(0, pthread_create(&th, NULL, shutter_main, &s));
    fl_test_latch_await(fx.b.stopped);
    fl__claim_t late;
    assert_fl(FL_ECLOSED, fl__tell_claim(fx.sys, fx.aref,
                                         fl_test_msg_int(T_REC, 1), &late));
    assert_null(late.a);
    assert_int_equal(1, fl_test_latch_count(s.done));
    assert_true(fl_actor_alive(fx.sys, fx.aref));
    assert_int_equal(0, atomic_load(&fx.a.stops));

    assert_false(fl__claim_run(&c, 0));
    assert_int_equal(1, atomic_load(&fx.a.stops));
    assert_true(pthread_equal(fx.a.stop_thread, pthread_self()));
    fl_test_latch_await(s.done);
    assert_int_equal(0, pthread_join(th, NULL));
    assert_fl_ok(s.rc);
    assert_int_equal(base, rec_count(&fx.a));
    assert_fl_ok(fl_system_stats(fx.sys, &after));
    assert_int_equal(before.dead_letters + 1, after.dead_letters);
    fl_test_latch_free(s.done);
    fl_test_latch_free(fx.b.stopped);
    fx_end(&fx);
}

/* ---- tells from the claiming thread (fl__tell_held) ---------------------- */

/* A T_REC message carrying an ask's future (*f, which the caller holds
 * too): a message freed unsent fails it with FL_ENOREPLY. */
static fl_msg_t *msg_with_reply(int v, fl_future_t **f)
{
    fl_msg_t *m = fl_test_msg_int(T_REC, v);
    *f = fl_future_alloc();
    assert_non_null(*f);
    m->reply = fl_future_retain(*f);
    return m;
}

/* Threads outside the runtime counted in with sys (a held claim is one). */
static uint64_t inflight(fl_system_t *sys)
{
    return atomic_load(&sys->inflight);
}

/* Tells from the test thread to the actor it holds a claim on
 * (fl__tell_held) only queue: nothing runs, the claim is unchanged and
 * the system counts the thread in once, for the claim. The claim's turn
 * runs them on this thread, in order, after the claiming message, and
 * the count ends with it. */
static void test_tell_held_to_the_claimed_actor_joins_its_turn(void **state)
{
    (void)state;
    enum { HELD = 5 };
    fx_t fx;
    fx_start(&fx, 0);
    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    fl__actor_t *claimed = c.a;
    assert_int_equal(1, inflight(fx.sys));
    for (int i = 0; i < HELD; i++)
        assert_fl_ok(fl__tell_held(&c, fx.aref, fl_test_msg_int(T_REC, i)));
    assert_ptr_equal(fx.sys, c.sys);
    assert_ptr_equal(claimed, c.a);
    assert_int_equal(1, inflight(fx.sys));
    workers_ran(fx.sys, fx.bref, &fx.b);
    assert_int_equal(base, rec_count(&fx.a));

    assert_false(fl__claim_run(&c, 0));
    assert_int_equal(0, inflight(fx.sys));
    assert_int_equal(base + 1 + HELD, rec_count(&fx.a));
    expect_run(&fx.a, base, 1, WARM, fx.aref, fx.sys, true);
    expect_run(&fx.a, base + 1, HELD, 0, fx.aref, fx.sys, true);
    fx_end(&fx);
}

/* fl__tell_held to another actor of the system delivers as fl_tell: a
 * worker runs the messages, in order, while the claim is still held; the
 * claimed actor gets none of them and the count stays the claim's. */
static void test_tell_held_to_another_actor_goes_to_the_workers(void **state)
{
    (void)state;
    enum { HELD = 3 };
    fx_t fx;
    fx_start(&fx, 0);
    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    for (int i = 0; i < HELD; i++)
        assert_fl_ok(
            fl__tell_held(&c, fx.bref, fl_test_msg_int(T_REC, 10 + i)));
    assert_int_equal(1, inflight(fx.sys));
    rec_wait(&fx.b, HELD);
    expect_run(&fx.b, 0, HELD, 10, fx.bref, fx.sys, false);
    assert_int_equal(base, rec_count(&fx.a));
    assert_non_null(c.a);

    assert_false(fl__claim_run(&c, 0));
    assert_int_equal(0, inflight(fx.sys));
    assert_int_equal(base + 1, rec_count(&fx.a));
    expect_run(&fx.a, base, 1, WARM, fx.aref, fx.sys, true);
    assert_int_equal(HELD, rec_count(&fx.b));
    fx_end(&fx);
}

/* fl__tell_held needs a claim that holds an actor, on a thread outside the
 * runtime: a NULL claim, a zeroed one, one naming a system but no actor
 * and one whose turn has run (fl__claim_run cleared it) are FL_EINVAL,
 * the message freed at once (its ask fails with FL_ENOREPLY); from a
 * worker's turn and from a claimed turn it is FL_EINVAL whatever the
 * claim. Nothing is delivered and the count is untouched. */
static void test_tell_held_without_a_held_claim_is_einval(void **state)
{
    (void)state;
    fx_t fx;
    fx_start(&fx, 0);
    fl_future_t *f;
    fl__claim_t zero = {NULL, NULL};
    fl__claim_t no_actor = {fx.sys, NULL};
    const fl__claim_t *bad[] = {NULL, &zero, &no_actor};
    for (int i = 0; i < 3; i++) {
        assert_fl(FL_EINVAL,
                  fl__tell_held(bad[i], fx.bref, msg_with_reply(i, &f)));
        assert_fl(FL_ENOREPLY, fl_future_error(f));
        fl_future_release(f);
    }
    assert_int_equal(0, inflight(fx.sys));

    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    assert_false(fl__claim_run(&c, 0));
    assert_null(c.a);
    assert_fl(FL_EINVAL, fl__tell_held(&c, fx.bref, msg_with_reply(3, &f)));
    assert_fl(FL_ENOREPLY, fl_future_error(f));
    fl_future_release(f);
    assert_int_equal(0, inflight(fx.sys));

    /* On runtime threads, with a claim that looks held. */
    fl__claim_t looks_held = {fx.sys,
                              fl__slot(fx.sys, FL__REF_SLOT(fx.aref.id))};
    assert_non_null(looks_held.a);
    fx.a.fwd = fx.bref;
    fx.a.held = &looks_held;
    assert_fl_ok(fl_tell(fx.sys, fx.aref, fl_test_msg_int(T_HELD, 20)));
    rec_wait(&fx.a, base + 2);
    expect_run(&fx.a, base + 1, 1, 20, fx.aref, fx.sys, false);
    assert_fl(FL_EINVAL, rec_at(&fx.a, base + 1).fwd_rc);
    base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    assert_fl_ok(fl_tell(fx.sys, fx.aref, fl_test_msg_int(T_HELD, 21)));
    assert_false(fl__claim_run(&c, 0));
    expect_run(&fx.a, base + 1, 1, 21, fx.aref, fx.sys, true);
    assert_fl(FL_EINVAL, rec_at(&fx.a, base + 1).fwd_rc);
    assert_int_equal(0, inflight(fx.sys));
    /* Nothing reached b: what it records first is this. */
    workers_ran(fx.sys, fx.bref, &fx.b);
    assert_int_equal(1, rec_count(&fx.b));
    expect_run(&fx.b, 0, 1, 0, fx.bref, fx.sys, false);
    fx_end(&fx);
}

/* Once the system is closed fl__tell_held is FL_ECLOSED, to the claimed
 * actor and to another, and leaves the claim's count alone; the claim's
 * turn still runs (it stops the claimed actor, as the close asked: its
 * WARM is a dead letter), ends the count, and shutdown returns. */
static void test_tell_held_after_close_is_eclosed(void **state)
{
    (void)state;
    fx_t fx;
    fx_start(&fx, 0);
    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    assert_fl_ok(fl_system_close(fx.sys));
    assert_fl(FL_ECLOSED,
              fl__tell_held(&c, fx.aref, fl_test_msg_int(T_REC, 1)));
    assert_fl(FL_ECLOSED,
              fl__tell_held(&c, fx.bref, fl_test_msg_int(T_REC, 2)));
    assert_int_equal(1, inflight(fx.sys));
    assert_non_null(c.a);

    assert_false(fl__claim_run(&c, 0));
    assert_int_equal(0, inflight(fx.sys));
    assert_int_equal(1, atomic_load(&fx.a.stops));
    assert_true(pthread_equal(fx.a.stop_thread, pthread_self()));
    assert_fl_ok(fl_system_shutdown(fx.sys));
    assert_int_equal(base, rec_count(&fx.a));
    assert_int_equal(0, rec_count(&fx.b));
    fx_end(&fx);
}

/* ---- how often a budgeted turn reads the clock --------------------------- */

/* A budget case runs its turn up to ATTEMPTS times, on a fresh system each
 * time, until one was quiet: its fast messages took under QUIET_NS (a
 * quarter of the budget) from just before fl__claim_run, so the clock
 * reads fall where the stride schedule puts them. What any turn must do
 * is checked on every attempt. */
#define ATTEMPTS 10
#define QUIET_NS (BUDGET_NS / 4)

/* A claimed turn under BUDGET_NS: the claiming WARM, fast - 1 T_REC, then
 * nslow messages of slow_type; values WARM, 0, 1, ... */
typedef struct budget_turn {
    int base;    /* the WARM's entry */
    int here;    /* messages run on this thread (a prefix of the turn) */
    bool cut;    /* what fl__claim_run returned */
    uint64_t t0; /* the clock just before fl__claim_run */
    uint64_t t1; /* and just after */
} budget_turn_t;

/* Runs the turn, waits until every message ran and checks they ran in
 * order, a prefix on this thread and the rest on the workers. */
static budget_turn_t budget_turn(fx_t *fx, int fast, uint32_t slow_type,
                                 int nslow)
{
    budget_turn_t t;
    fl__claim_t c;
    int total = fast + nslow;
    t.base = claim_idle(fx->sys, fx->aref, &fx->a, &c);
    for (int i = 0; i < total - 1; i++)
        assert_fl_ok(
            fl_tell(fx->sys, fx->aref,
                    fl_test_msg_int(i < fast - 1 ? T_REC : slow_type, i)));
    t.t0 = fl_clock_now_ns();
    t.cut = fl__claim_run(&c, BUDGET_NS);
    t.t1 = fl_clock_now_ns();
    assert_null(c.a);
    rec_wait(&fx->a, t.base + total);
    t.here = 0;
    while (
        t.here < total &&
        pthread_equal(rec_at(&fx->a, t.base + t.here).thread, pthread_self()))
        t.here++;
    expect_run(&fx->a, t.base, 1, WARM, fx->aref, fx->sys, true);
    expect_run(&fx->a, t.base + 1, t.here - 1, 0, fx->aref, fx->sys, true);
    expect_run(&fx->a, t.base + t.here, total - t.here, t.here - 1, fx->aref,
               fx->sys, false);
    return t;
}

/* When message k of the turn (1: the WARM) began, in ns after t->t0. */
static uint64_t began_at(fx_t *fx, const budget_turn_t *t, int k)
{
    return rec_at(&fx->a, t->base + k - 1).began - t->t0;
}

/* A turn whose only overrun is its last message, after fast ones: three
 * fast messages (the clock read after the first and the third, then due
 * again four messages later) and one of 1.5 ms, under 1 ms. The read at
 * the end of the turn reports the cut: fl__claim_run returns true. All
 * four ran here whenever the fourth began inside the budget (a cut before
 * it would have needed the budget spent). */
static void test_claim_budget_sees_a_slow_last_message(void **state)
{
    (void)state;
    for (int attempt = 1;; attempt++) {
        fx_t fx;
        fx_start(&fx, 0);
        budget_turn_t t = budget_turn(&fx, 3, T_LONG, 1);
        uint64_t b4 = began_at(&fx, &t, 4);
        fx_end(&fx);
        assert_true(t.cut);
        if (b4 < BUDGET_NS)
            assert_int_equal(4, t.here);
        if (b4 < QUIET_NS)
            return;
        if (attempt == ATTEMPTS)
            fail_msg("no quiet turn in %d attempts", ATTEMPTS);
    }
}

/* Twenty fast messages then twenty of 300 us, under 1 ms. The fourth slow
 * one (24) ends past the budget at the latest and the next clock read is
 * at most 7 messages later, so at most 31 run here, and 21 or more
 * whenever the 21st began inside the budget (a cut before it would have
 * needed the budget spent); the rest run on the workers, in order;
 * fl__claim_run returns true. In a quiet turn the clock is read after
 * messages 1, 3, 7, 15 (strides 1, 2, 4, 8: the pace fits what is left),
 * 23 (three slow ones: 8 more no longer fit), then after every message:
 * the cut is at 23 or 24. */
static void
test_claim_budget_reads_the_clock_less_often_while_fast(void **state)
{
    (void)state;
    enum { FAST = 20, SLOW = 20 };
    for (int attempt = 1;; attempt++) {
        fx_t fx;
        fx_start(&fx, 0);
        budget_turn_t t = budget_turn(&fx, FAST, T_SLOW, SLOW);
        uint64_t b21 = began_at(&fx, &t, FAST + 1);
        fx_end(&fx);
        assert_true(t.cut);
        assert_in_range(t.here, 1, FAST + 4 + 7);
        if (b21 < BUDGET_NS)
            assert_in_range(t.here, FAST + 1, FAST + 4 + 7);
        if (b21 < QUIET_NS) {
            assert_in_range(t.here, 23, 24);
            return;
        }
        if (attempt == ATTEMPTS)
            fail_msg("no quiet turn in %d attempts", ATTEMPTS);
    }
}

/* Ten fast messages under 1 ms: when the whole run took less than the
 * budget, no read (the one at the end of the turn included) can be past
 * it: all ten run here and fl__claim_run returns false. */
static void test_claim_budget_not_reached_by_fast_messages(void **state)
{
    (void)state;
    for (int attempt = 1;; attempt++) {
        fx_t fx;
        fx_start(&fx, 0);
        budget_turn_t t = budget_turn(&fx, 10, T_REC, 0);
        fx_end(&fx);
        if (t.t1 - t.t0 < BUDGET_NS) {
            assert_false(t.cut);
            assert_int_equal(10, t.here);
            return;
        }
        if (attempt == ATTEMPTS)
            fail_msg("no turn inside the budget in %d attempts", ATTEMPTS);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_claim_runs_the_turn_on_the_calling_thread),
        FL_TEST(test_claim_runs_one_batch_then_hands_over_to_workers),
        FL_TEST(test_claim_budget_cuts_the_turn),
        FL_TEST(test_claim_refuses_dead_refs_and_closed_systems),
        FL_TEST(test_claim_inside_a_turn_is_a_plain_tell),
        FL_TEST(test_shutdown_waits_for_a_held_claim),
        FL_TEST(test_tell_held_to_the_claimed_actor_joins_its_turn),
        FL_TEST(test_tell_held_to_another_actor_goes_to_the_workers),
        FL_TEST(test_tell_held_without_a_held_claim_is_einval),
        FL_TEST(test_tell_held_after_close_is_eclosed),
        FL_TEST(test_claim_budget_sees_a_slow_last_message),
        FL_TEST(test_claim_budget_reads_the_clock_less_often_while_fast),
        FL_TEST(test_claim_budget_not_reached_by_fast_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
