/*
 * timer_test.c - message timers (fl_timer_send), callback timers
 * (fl_timer_start), deadline order, cancellation, fixed rate, dead letters.
 */
#include "fl_test.h"

#include "actor/timer.h"
#include "common/internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 20000
#define MS 1000000ull
#define LOG_MAX 1024

/* Payloads at or above this mark sentinels. */
#define SENTINEL 1000000

/* ---- helpers ------------------------------------------------------------- */

static void end_system(fl_system_t *sys)
{
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
}

/* An actor that logs what its timers deliver. */
typedef struct sink {
    atomic_int count;          /* every message */
    atomic_int sentinels;      /* sentinel messages */
    atomic_int after_sentinel; /* non-sentinels after the first sentinel */
    uint64_t at[LOG_MAX];      /* arrival times, actor-written */
    int val[LOG_MAX];          /* payloads in arrival order */
    uint32_t type[LOG_MAX];
    fl_test_latch_t *each;        /* counted down per non-sentinel message */
    fl_test_latch_t *sentinel[4]; /* sentinel[k]: sentinel number k arrived */
} sink_t;

static void sink_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                         fl_msg_t *msg)
{
    (void)sys;
    (void)self;
    sink_t *s = st;
    int v = fl_msg_size(msg) >= sizeof(int) ? *(int *)fl_msg_data(msg) : -1;
    int n = atomic_fetch_add(&s->count, 1);
    if (n < LOG_MAX) {
        s->at[n] = fl_clock_now_ns();
        s->val[n] = v;
        s->type[n] = fl_msg_type(msg);
    }
    if (v >= SENTINEL) {
        int k = atomic_fetch_add(&s->sentinels, 1);
        if (k < 4 && s->sentinel[k])
            fl_test_latch_count_down(s->sentinel[k]);
        return;
    }
    if (atomic_load(&s->sentinels) > 0)
        atomic_fetch_add(&s->after_sentinel, 1);
    if (s->each)
        fl_test_latch_count_down(s->each);
}

/* A zeroed sink; each > 0 gives it an `each` latch of that count. */
static sink_t *sink_new(uint64_t each)
{
    sink_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    if (each > 0)
        s->each = fl_test_latch_alloc(each);
    return s;
}

static void sink_free(sink_t *s)
{
    fl_test_latch_free(s->each);
    for (int k = 0; k < 4; k++)
        fl_test_latch_free(s->sentinel[k]);
    free(s);
}

static fl_actor_ref_t spawn_sink(fl_system_t *sys, sink_t *s)
{
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, sink_receive, s, NULL, &a));
    return a;
}

/* Schedules sentinel number k to a after delay_ms; returns its latch. */
static fl_test_latch_t *send_sentinel(fl_system_t *sys, fl_actor_ref_t a,
                                      sink_t *s, int k, int64_t delay_ms)
{
    s->sentinel[k] = fl_test_latch_alloc(1);
    assert_fl_ok(fl_timer_send(sys, a, fl_test_msg_int(9, SENTINEL + k),
                               delay_ms, 0, NULL));
    return s->sentinel[k];
}

static fl_system_stats_t stats(fl_system_t *sys)
{
    fl_system_stats_t st;
    assert_fl_ok(fl_system_stats(sys, &st));
    return st;
}

/* ---- one-shot message timers --------------------------------------------- */

static void
test_one_shot_timer_delivers_to_the_mailbox_after_its_delay(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    sink_t *s = sink_new(1);
    fl_actor_ref_t a = spawn_sink(sys, s);
    fl_timer_id_t id = 0;
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_timer_send(sys, a, fl_test_msg_int(7, 42), 30, 0, &id));
    assert_true(id != 0);
    fl_test_latch_await(s->each);
    uint64_t waited = s->at[0] - t0;
    if (waited < 30 * MS)
        fail_msg("delivered after %llu ns, before the 30 ms delay",
                 (unsigned long long)waited);
    assert_int_equal(42, s->val[0]);
    assert_int_equal(7, s->type[0]);
    /* One-shot: nothing more before a later sentinel. */
    fl_test_latch_await(send_sentinel(sys, a, s, 0, 80));
    assert_int_equal(2, atomic_load(&s->count));
    assert_int_equal(0, atomic_load(&s->after_sentinel));
    end_system(sys);
    sink_free(s);
}

static void test_timer_with_zero_delay_delivers(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    sink_t *s = sink_new(1);
    fl_actor_ref_t a = spawn_sink(sys, s);
    assert_fl_ok(fl_timer_send(sys, a, fl_test_msg_int(1, 5), 0, 0, NULL));
    fl_test_latch_await(s->each);
    assert_int_equal(5, s->val[0]);
    end_system(sys);
    sink_free(s);
}

#define ORDER_N 50
#define ORDER_STEP_MS 5

static void test_timers_fire_in_deadline_order(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    sink_t *s = sink_new(ORDER_N);
    fl_actor_ref_t a = spawn_sink(sys, s);

    /* Shuffled distinct delays 20, 25, ... ms (fixed seed). */
    int delay[ORDER_N];
    for (int i = 0; i < ORDER_N; i++)
        delay[i] = 20 + ORDER_STEP_MS * i;
    unsigned seed = 12345;
    for (int i = ORDER_N - 1; i > 0; i--) {
        seed = seed * 1103515245u + 12345u;
        int j = (int)((seed >> 16) % (unsigned)(i + 1));
        int t = delay[i];
        delay[i] = delay[j];
        delay[j] = t;
    }
    /* Each deadline lies in [before + delay, after + delay]. */
    uint64_t lo[ORDER_N], hi[ORDER_N];
    for (int i = 0; i < ORDER_N; i++) {
        uint64_t before = fl_clock_now_ns();
        assert_fl_ok(
            fl_timer_send(sys, a, fl_test_msg_int(1, i), delay[i], 0, NULL));
        uint64_t after = fl_clock_now_ns();
        lo[i] = before + (uint64_t)delay[i] * MS;
        hi[i] = after + (uint64_t)delay[i] * MS;
    }
    fl_test_latch_await(s->each);
    for (int k = 0; k + 1 < ORDER_N; k++) {
        int x = s->val[k], y = s->val[k + 1];
        /* x came first: y's deadline must not be surely earlier. */
        if (hi[y] < lo[x])
            fail_msg(
                "timer with delay %d ms delivered before the one with %d ms",
                delay[x], delay[y]);
    }
    /* With 5 ms steps the windows do not overlap in practice: the order is
     * exactly by delay. */
    int in_order = 1;
    for (int k = 0; k + 1 < ORDER_N; k++)
        if (delay[s->val[k]] > delay[s->val[k + 1]])
            in_order = 0;
    if (!in_order)
        print_message("note: scheduling took longer than %d ms; order checked "
                      "against measured deadlines only\n",
                      ORDER_STEP_MS);
    for (int k = 0; k < ORDER_N; k++)
        if (s->at[k] < lo[s->val[k]])
            fail_msg("timer %d delivered before its deadline", s->val[k]);
    end_system(sys);
    sink_free(s);
}

static void test_timers_with_equal_delay_fire_in_scheduling_order(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    enum { N = 20 };
    sink_t *s = sink_new(N);
    fl_actor_ref_t a = spawn_sink(sys, s);
    for (int i = 0; i < N; i++)
        assert_fl_ok(fl_timer_send(sys, a, fl_test_msg_int(1, i), 30, 0, NULL));
    fl_test_latch_await(s->each);
    for (int i = 0; i < N; i++)
        if (s->val[i] != i)
            fail_msg("position %d holds timer %d", i, s->val[i]);
    end_system(sys);
    sink_free(s);
}

/* ---- cancel -------------------------------------------------------------- */

static void test_cancelled_timers_never_deliver(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    sink_t *s = sink_new(0);
    fl_actor_ref_t a = spawn_sink(sys, s);
    enum { N = 100 };
    fl_timer_id_t ids[N];
    for (int i = 0; i < N; i++) {
        ids[i] = 0;
        assert_fl_ok(
            fl_timer_send(sys, a, fl_test_msg_int(1, i), 50, 0, &ids[i]));
        assert_true(ids[i] != 0);
        for (int j = 0; j < i; j++)
            assert_true(ids[j] != ids[i]);
    }
    for (int i = 0; i < N; i++)
        assert_fl_ok(fl_timer_cancel(sys, ids[i]));
    fl_test_latch_t *sentinel = send_sentinel(sys, a, s, 0, 200);
    fl_test_latch_await(sentinel);
    /* Only the sentinel arrived. */
    assert_int_equal(1, atomic_load(&s->count));
    assert_int_equal(SENTINEL, s->val[0]);
    end_system(sys);
    sink_free(s);
}

static void test_second_cancel_returns_enoent(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    sink_t *s = sink_new(0);
    fl_actor_ref_t a = spawn_sink(sys, s);
    fl_timer_id_t id = 0;
    assert_fl_ok(fl_timer_send(sys, a, fl_test_msg_int(1, 1), 60000, 0, &id));
    assert_fl_ok(fl_timer_cancel(sys, id));
    assert_fl(FL_ENOENT, fl_timer_cancel(sys, id));

    assert_fl_ok(fl_timer_send(sys, a, fl_test_msg_int(1, 1), 60000, 10, &id));
    assert_fl_ok(fl_timer_cancel(sys, id));
    assert_fl(FL_ENOENT, fl_timer_cancel(sys, id));
    end_system(sys);
    sink_free(s);
}

static void test_cancel_of_a_fired_one_shot_timer_returns_enoent(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    sink_t *s = sink_new(1);
    fl_actor_ref_t a = spawn_sink(sys, s);
    fl_timer_id_t id = 0;
    assert_fl_ok(fl_timer_send(sys, a, fl_test_msg_int(1, 1), 1, 0, &id));
    fl_test_latch_await(s->each);
    assert_fl(FL_ENOENT, fl_timer_cancel(sys, id));
    end_system(sys);
    sink_free(s);
}

static void test_cancel_of_an_unknown_id_returns_enoent(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    assert_fl(FL_ENOENT, fl_timer_cancel(sys, 987654321));
    assert_fl(FL_ENOENT, fl_timer_cancel(sys, UINT64_MAX));
    end_system(sys);
}

/* Id 0 is "never a valid timer", so it is unknown: the contract lists no
 * FL_EINVAL for fl_timer_cancel. */
static void test_cancel_of_timer_id_zero_returns_enoent(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    int rc = fl_timer_cancel(sys, 0);
    end_system(sys);
    assert_fl(FL_ENOENT, rc);
}

static void test_timers_pending_counts_armed_timers(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    sink_t *s = sink_new(1);
    fl_actor_ref_t a = spawn_sink(sys, s);
    assert_int_equal(0, stats(sys).timers_pending);
    fl_timer_id_t ids[3];
    for (int i = 0; i < 3; i++)
        assert_fl_ok(
            fl_timer_send(sys, a, fl_test_msg_int(1, i), 60000, 0, &ids[i]));
    assert_int_equal(3, stats(sys).timers_pending);
    assert_fl_ok(fl_timer_cancel(sys, ids[1]));
    assert_int_equal(2, stats(sys).timers_pending);
    assert_fl_ok(fl_timer_cancel(sys, ids[0]));
    assert_fl_ok(fl_timer_cancel(sys, ids[2]));
    assert_int_equal(0, stats(sys).timers_pending);

    /* A fired one-shot is no longer pending. */
    assert_fl_ok(fl_timer_send(sys, a, fl_test_msg_int(1, 9), 1, 0, NULL));
    fl_test_latch_await(s->each);
    assert_int_equal(0, stats(sys).timers_pending);
    end_system(sys);
    sink_free(s);
}

/* ---- fixed rate ------------------------------------------------------------
 */

static void
test_fixed_rate_timer_delivers_every_period_until_cancelled(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    enum { N = 10 };
    sink_t *s = sink_new(N);
    fl_actor_ref_t a = spawn_sink(sys, s);
    fl_timer_id_t id = 0;
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_timer_send(sys, a, fl_test_msg_int(3, 77), 10, 10, &id));
    fl_test_latch_await(s->each);
    assert_fl_ok(fl_timer_cancel(sys, id));
    assert_fl(FL_ENOENT, fl_timer_cancel(sys, id));
    /* Every delivery is a copy of the payload, each at its deadline or later
     * (deadline k = t0 + 10 + 10 k ms, fixed rate). */
    for (int k = 0; k < N; k++) {
        assert_int_equal(77, s->val[k]);
        assert_int_equal(3, s->type[k]);
        uint64_t due = (uint64_t)(10 + 10 * k) * MS;
        if (s->at[k] - t0 < due)
            fail_msg("delivery %d after %llu ns, before its deadline %llu ns",
                     k, (unsigned long long)(s->at[k] - t0),
                     (unsigned long long)due);
    }
    /* Deliveries queued before the cancel arrive before the first sentinel;
     * none may come after it. */
    fl_test_latch_await(send_sentinel(sys, a, s, 0, 30));
    fl_test_latch_await(send_sentinel(sys, a, s, 1, 60));
    assert_int_equal(0, atomic_load(&s->after_sentinel));
    end_system(sys);
    sink_free(s);
}

/* ---- callback timers ------------------------------------------------------
 */

typedef struct cb_rec {
    fl_system_t *sys;
    pthread_t main_thread;
    atomic_int calls;
    atomic_bool on_timer_thread; /* current == sys, not main, no actor */
    atomic_uint_least64_t first_at;
    _Atomic fl_timer_id_t id;
    atomic_int cancel_rc;
    int cancel_after;       /* cancel itself on this call */
    fl_test_latch_t *latch; /* counted down per call */
} cb_rec_t;

static void rec_timer_cb(fl_system_t *sys, void *arg)
{
    cb_rec_t *r = arg;
    int n = atomic_fetch_add(&r->calls, 1) + 1;
    if (n == 1) {
        atomic_store(&r->first_at, fl_clock_now_ns());
        atomic_store(&r->on_timer_thread,
                     sys == r->sys && fl_system_current() == sys &&
                         fl_self().id == 0 &&
                         !pthread_equal(pthread_self(), r->main_thread));
    }
    if (r->cancel_after != 0 && n == r->cancel_after)
        atomic_store(&r->cancel_rc, fl_timer_cancel(sys, atomic_load(&r->id)));
    if (r->latch)
        fl_test_latch_count_down(r->latch);
}

/* A record for rec_timer_cb on sys; calls > 0 gives it a latch counting that
 * many calls. */
static cb_rec_t cb_rec(fl_system_t *sys, uint64_t calls)
{
    return (cb_rec_t){.sys = sys,
                      .main_thread = pthread_self(),
                      .latch = calls > 0 ? fl_test_latch_alloc(calls) : NULL};
}

/* Runs a one-shot callback timer on *sentinel after delay_ms and waits until
 * it has run: timers run on one thread in deadline order, so every timer due
 * earlier has run too. The caller frees sentinel->latch. */
static void run_sentinel(fl_system_t *sys, cb_rec_t *sentinel, int64_t delay_ms)
{
    *sentinel = cb_rec(sys, 1);
    assert_fl_ok(
        fl_timer_start(sys, rec_timer_cb, sentinel, delay_ms, 0, NULL));
    fl_test_latch_await(sentinel->latch);
}

static void
test_timer_start_runs_the_callback_on_the_timer_thread_after_its_delay(
    void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    cb_rec_t r = cb_rec(sys, 1);
    fl_timer_id_t id = 0;
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_timer_start(sys, rec_timer_cb, &r, 25, 0, &id));
    assert_true(id != 0);
    fl_test_latch_await(r.latch);
    assert_true(atomic_load(&r.on_timer_thread));
    uint64_t waited = atomic_load(&r.first_at) - t0;
    if (waited < 25 * MS)
        fail_msg("callback ran after %llu ns, before its 25 ms delay",
                 (unsigned long long)waited);
    /* Once a later timer has run on the (single) timer thread, the one-shot
     * run is over: the timer has fired and is gone. */
    cb_rec_t sentinel;
    run_sentinel(sys, &sentinel, 1);
    assert_fl(FL_ENOENT, fl_timer_cancel(sys, id));
    end_system(sys);
    assert_int_equal(1, atomic_load(&r.calls));
    fl_test_latch_free(r.latch);
    fl_test_latch_free(sentinel.latch);
}

static void
test_periodic_timer_start_runs_until_cancelled_from_its_callback(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    cb_rec_t r = cb_rec(sys, 5);
    r.cancel_after = 5;
    r.cancel_rc = -1;
    fl_timer_id_t id = 0;
    /* The first run is 50 ms away: the id is stored long before. */
    assert_fl_ok(fl_timer_start(sys, rec_timer_cb, &r, 50, 5, &id));
    atomic_store(&r.id, id);
    fl_test_latch_await(r.latch);
    assert_fl_ok(atomic_load(&r.cancel_rc));
    /* Nothing more after a sentinel 10 periods later. */
    cb_rec_t sentinel;
    run_sentinel(sys, &sentinel, 50);
    assert_int_equal(5, atomic_load(&r.calls));
    assert_fl(FL_ENOENT, fl_timer_cancel(sys, id));
    end_system(sys);
    assert_int_equal(5, atomic_load(&r.calls));
    fl_test_latch_free(r.latch);
    fl_test_latch_free(sentinel.latch);
}

static void
test_periodic_timer_start_cancelled_from_outside_stops_running(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    cb_rec_t r = cb_rec(sys, 3);
    fl_timer_id_t id = 0;
    assert_fl_ok(fl_timer_start(sys, rec_timer_cb, &r, 5, 5, &id));
    fl_test_latch_await(r.latch);
    assert_fl_ok(fl_timer_cancel(sys, id));
    /* A run in progress on the timer thread may finish; none starts after
     * the cancel returned. Timers run on one thread in deadline order, so
     * once a later sentinel has run, the count is final. */
    cb_rec_t sentinel;
    run_sentinel(sys, &sentinel, 1);
    int calls = atomic_load(&r.calls);
    fl_test_latch_free(sentinel.latch);
    run_sentinel(sys, &sentinel, 50);
    assert_int_equal(calls, atomic_load(&r.calls));
    end_system(sys);
    fl_test_latch_free(r.latch);
    fl_test_latch_free(sentinel.latch);
}

/* ---- far deadlines --------------------------------------------------------
 */

static void test_far_delays_and_periods_saturate_and_never_fire(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    const int64_t far[] = FL_TEST_FAR_MS;
    cb_rec_t once = cb_rec(sys, 0);
    cb_rec_t periodic = cb_rec(sys, 2);
    fl_timer_id_t ids[2];
    for (int i = 0; i < 2; i++) {
        assert_fl_ok(
            fl_timer_start(sys, rec_timer_cb, &once, far[i], 0, &ids[i]));
        /* Due now, then a far period: it runs once. */
        assert_fl_ok(
            fl_timer_start(sys, rec_timer_cb, &periodic, 0, far[i], NULL));
    }
    fl_test_latch_await(periodic.latch);
    /* Timers run in deadline order: a far one that wrapped would have run
     * before this sentinel. */
    cb_rec_t sentinel;
    run_sentinel(sys, &sentinel, 20);
    assert_int_equal(0, atomic_load(&once.calls));
    assert_int_equal(2, atomic_load(&periodic.calls));
    for (int i = 0; i < 2; i++)
        assert_fl_ok(fl_timer_cancel(sys, ids[i])); /* still armed */
    end_system(sys);
    fl_test_latch_free(periodic.latch);
    fl_test_latch_free(sentinel.latch);
}

/* Takes the asks it gets, so that their answers stay owed. */
typedef struct taker {
    fl_future_t *taken[2];
    atomic_int n;
    fl_test_latch_t *latch;
} taker_t;

static void take_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                         fl_msg_t *msg)
{
    (void)sys;
    (void)self;
    taker_t *t = st;
    int n = atomic_fetch_add(&t->n, 1);
    if (n < 2)
        t->taken[n] = fl_msg_take_reply(msg);
    fl_test_latch_count_down(t->latch);
}

static void test_far_ask_and_future_timeouts_never_fire(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    const int64_t far[] = FL_TEST_FAR_MS;
    taker_t t = {.latch = fl_test_latch_alloc(2)};
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, take_receive, &t, NULL, &a));
    fl_future_t *asks[2], *futs[2];
    for (int i = 0; i < 2; i++) {
        assert_fl_ok(fl_ask(sys, a, fl_test_msg_int(1, i), far[i], &asks[i]));
        futs[i] = fl_future_alloc();
        assert_non_null(futs[i]);
        assert_fl_ok(fl_future_set_timeout(sys, futs[i], far[i]));
    }
    fl_test_latch_await(t.latch);
    /* Timeouts are timers: a near one armed last fires after any far one
     * that wrapped. */
    fl_future_t *near = fl_future_alloc();
    assert_non_null(near);
    assert_fl_ok(fl_future_set_timeout(sys, near, 20));
    assert_fl(FL_ETIMEDOUT, fl_future_wait(near, WAIT_MS));
    assert_true(fl_future_done(near));
    for (int i = 0; i < 2; i++) {
        assert_false(fl_future_done(asks[i]));
        assert_false(fl_future_done(futs[i]));
        assert_fl_ok(fl_future_fail(t.taken[i], FL_EUSER, "answered"));
        assert_fl(FL_EUSER, fl_future_wait(asks[i], WAIT_MS));
        fl_future_release(t.taken[i]);
        fl_future_release(asks[i]);
        fl_future_release(futs[i]);
    }
    fl_future_release(near);
    end_system(sys);
    fl_test_latch_free(t.latch);
}

/* ---- arguments ----------------------------------------------------------- */

static void test_negative_delay_or_period_is_invalid(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    sink_t *s = sink_new(0);
    fl_actor_ref_t a = spawn_sink(sys, s);
    cb_rec_t r = cb_rec(sys, 0);
    fl_timer_id_t id = 0;
    /* The message is consumed even when rejected (LSan checks). */
    assert_fl(FL_EINVAL,
              fl_timer_send(sys, a, fl_test_msg_int(1, 1), -1, 0, &id));
    assert_fl(FL_EINVAL,
              fl_timer_send(sys, a, fl_test_msg_int(1, 1), 10, -1, &id));
    assert_fl(FL_EINVAL,
              fl_timer_send(sys, a, fl_test_msg_int(1, 1), -100, -100, &id));
    assert_fl(FL_EINVAL, fl_timer_send(sys, a, NULL, 10, 0, &id));
    assert_fl(FL_EINVAL, fl_timer_start(sys, rec_timer_cb, &r, -1, 0, &id));
    assert_fl(FL_EINVAL, fl_timer_start(sys, rec_timer_cb, &r, 10, -1, &id));
    assert_int_equal(0, stats(sys).timers_pending);
    end_system(sys);
    assert_int_equal(0, atomic_load(&s->count));
    assert_int_equal(0, atomic_load(&r.calls));
    sink_free(s);
}

/* ---- dead letters ----------------------------------------------------------
 */

/* Stops a live actor and waits until it has terminated. */
static void stop_and_wait(fl_system_t *sys, fl_actor_ref_t a)
{
    fl_future_t *t = NULL;
    assert_fl_ok(fl_actor_termination(sys, a, &t));
    assert_fl_ok(fl_actor_stop(sys, a));
    assert_fl_ok(fl_future_wait(t, WAIT_MS));
    fl_future_release(t);
}

/* Spawns an actor (no state) and stops it: returns its ref, now stale. */
static fl_actor_ref_t spawn_and_stop(fl_system_t *sys)
{
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, sink_receive, NULL, NULL, &a));
    stop_and_wait(sys, a);
    return a;
}

static void test_timer_to_a_stopped_actor_is_a_dead_letter(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    sink_t *s = sink_new(0);
    fl_actor_ref_t live = spawn_sink(sys, s);
    fl_actor_ref_t dead = spawn_and_stop(sys);
    uint64_t before = stats(sys).dead_letters;
    assert_fl_ok(fl_timer_send(sys, dead, fl_test_msg_int(1, 1), 10, 0, NULL));
    /* The timer thread fires in deadline order: once the later sentinel is
     * in, the delivery to the dead actor has been attempted. */
    fl_test_latch_await(send_sentinel(sys, live, s, 0, 60));
    assert_int_equal(before + 1, stats(sys).dead_letters);
    assert_int_equal(0, stats(sys).timers_pending);
    end_system(sys);
    sink_free(s);
}

static void test_periodic_timer_to_a_stopped_actor_cancels_itself(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    sink_t *target = sink_new(3), *s = sink_new(0);
    fl_actor_ref_t a = spawn_sink(sys, target);
    fl_actor_ref_t live = spawn_sink(sys, s);
    fl_timer_id_t id = 0;
    assert_fl_ok(fl_timer_send(sys, a, fl_test_msg_int(1, 1), 5, 5, &id));
    fl_test_latch_await(target->each);

    /* Counted before the stop: the delivery that finds the actor dead comes
     * after this. */
    uint64_t before = stats(sys).dead_letters;
    stop_and_wait(sys, a);

    /* Ten periods later the timer has hit the dead actor and cancelled
     * itself. */
    fl_test_latch_await(send_sentinel(sys, live, s, 0, 50));
    fl_system_stats_t st = stats(sys);
    assert_true(st.dead_letters >= before + 1);
    assert_int_equal(0, st.timers_pending);
    assert_fl(FL_ENOENT, fl_timer_cancel(sys, id));
    /* And stays silent. */
    fl_test_latch_await(send_sentinel(sys, live, s, 1, 50));
    assert_int_equal(st.dead_letters, stats(sys).dead_letters);
    end_system(sys);
    sink_free(target);
    sink_free(s);
}

/* ---- shutdown
 * ---------------------------------------------------------------- */

static void test_shutdown_drops_pending_timers_without_firing_them(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    sink_t *s = sink_new(0);
    fl_actor_ref_t a = spawn_sink(sys, s);
    cb_rec_t r = cb_rec(sys, 0);
    assert_fl_ok(fl_timer_send(sys, a, fl_test_msg_int(1, 1), 60000, 0, NULL));
    assert_fl_ok(
        fl_timer_send(sys, a, fl_test_msg_int(1, 2), 60000, 1000, NULL));
    assert_fl_ok(fl_timer_start(sys, rec_timer_cb, &r, 60000, 0, NULL));
    assert_fl_ok(fl_timer_start(sys, rec_timer_cb, &r, 60000, 10, NULL));
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_system_shutdown(sys));
    /* It did not wait for the deadlines. */
    assert_true(fl_clock_now_ns() - t0 < 30000 * MS);
    assert_int_equal(0, atomic_load(&r.calls));
    assert_int_equal(0, atomic_load(&s->count));
    fl_system_free(sys);
    sink_free(s);
}

/* A timer's deadline is never earlier than its delay from now: from the
 * precise clock when short; from FL__TIMER_COARSE_MS on, from the coarse
 * clock plus its slack, at most that slack late. */
static void test_a_deadline_is_never_early(void **state)
{
    (void)state;
    const int64_t delays[] = {0, 1, FL__TIMER_COARSE_MS - 1,
                              FL__TIMER_COARSE_MS, 10000};
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < sizeof delays / sizeof delays[0]; i++) {
            uint64_t ms = (uint64_t)delays[i] * MS;
            uint64_t before = fl_clock_now_ns();
            uint64_t d = fl__timer_deadline_after(delays[i]);
            uint64_t after = fl_clock_now_ns();
            uint64_t slack =
                delays[i] >= FL__TIMER_COARSE_MS ? FL__COARSE_SLACK_NS : 0;
            if (d < before + ms || d > after + ms + slack)
                fail_msg("a %lld ms deadline %lld ns from before the call, "
                         "%llu ns to after it (want %llu to %llu)",
                         (long long)delays[i], (long long)(d - before),
                         (unsigned long long)(after - before),
                         (unsigned long long)ms,
                         (unsigned long long)(ms + slack));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_one_shot_timer_delivers_to_the_mailbox_after_its_delay),
        FL_TEST(test_timer_with_zero_delay_delivers),
        FL_TEST(test_timers_fire_in_deadline_order),
        FL_TEST(test_timers_with_equal_delay_fire_in_scheduling_order),
        FL_TEST(test_cancelled_timers_never_deliver),
        FL_TEST(test_second_cancel_returns_enoent),
        FL_TEST(test_cancel_of_a_fired_one_shot_timer_returns_enoent),
        FL_TEST(test_cancel_of_an_unknown_id_returns_enoent),
        FL_TEST(test_cancel_of_timer_id_zero_returns_enoent),
        FL_TEST(test_timers_pending_counts_armed_timers),
        FL_TEST(test_fixed_rate_timer_delivers_every_period_until_cancelled),
        FL_TEST(
            test_timer_start_runs_the_callback_on_the_timer_thread_after_its_delay),
        FL_TEST(
            test_periodic_timer_start_runs_until_cancelled_from_its_callback),
        FL_TEST(test_periodic_timer_start_cancelled_from_outside_stops_running),
        FL_TEST(test_far_delays_and_periods_saturate_and_never_fire),
        FL_TEST(test_far_ask_and_future_timeouts_never_fire),
        FL_TEST(test_negative_delay_or_period_is_invalid),
        FL_TEST(test_timer_to_a_stopped_actor_is_a_dead_letter),
        FL_TEST(test_periodic_timer_to_a_stopped_actor_cancels_itself),
        FL_TEST(test_shutdown_drops_pending_timers_without_firing_them),
        FL_TEST(test_a_deadline_is_never_early),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
