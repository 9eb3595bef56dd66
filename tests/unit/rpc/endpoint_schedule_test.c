/*
 * endpoint_schedule_test.c - tasks scheduled on an endpoint's main thread
 * and their handles: one-shot (fl_rpc_schedule_run_async), fixed rate and
 * fixed delay. When runs come due and how they keep to the clock, that they
 * run on the main thread serialized with calls, cancelling them in every
 * state, what the handle says, how they end with the endpoint (arg freed
 * exactly once), and what their refusals say.
 *
 * A slow run is simulated with a sleep inside the task: that is the thing
 * measured, never a way to wait for an event (the test waits on latches).
 */
#include "rpc_fixture.h"

#include <pthread.h>
#include <time.h>

/* Slack for a run coming due late on a loaded machine (sanitizers: more). */
#ifdef FL_SANITIZE
#define LATE_MS 300
#else
#define LATE_MS 150
#endif

/* A delay no test waits for. */
#define NEVER_MS 3600000

#define MAX_RUNS 64

/* ---- the ticker: a task's arg, recording its runs ------------------------ */

typedef struct ticker {
    fl_rpc_endpoint_t *ep;
    atomic_int runs;
    atomic_int freed;
    atomic_int off_main; /* runs not on the endpoint's main thread */
    atomic_int inside;   /* a run is in progress (the overlap check) */
    atomic_int overlaps;
    int64_t slow_ms[MAX_RUNS]; /* how long run k takes (set beforehand) */
    uint64_t start_ns[MAX_RUNS], end_ns[MAX_RUNS]; /* main thread writes */
    fl_test_latch_t *ran;   /* counted down by each run */
    fl_test_latch_t *ended; /* counted down by arg_free */
    /* The task cancels itself in run cancel_at (-1: never), through the
     * handle the test stores in self, and records what cancel said. */
    int cancel_at;
    _Atomic(fl_rpc_scheduled_t *) self;
    atomic_int self_cancel;  /* -1 not yet, else the bool returned */
    atomic_int cancelled_in; /* the run that cancelled */
    /* Optional: run 0 counts `entered` down, then waits for `gate`. */
    fl_test_latch_t *entered, *gate;
    /* Optional: also counts into the endpoint's serial check. */
    bool serial;
} ticker_t;

static void ticker_init(ticker_t *k, fl_rpc_endpoint_t *ep, uint64_t runs)
{
    memset(k, 0, sizeof *k);
    k->ep = ep;
    k->ran = fl_test_latch_alloc(runs);
    k->ended = fl_test_latch_alloc(1);
    k->cancel_at = -1;
    atomic_init(&k->self, NULL);
    atomic_init(&k->self_cancel, -1);
}

static void ticker_fini(ticker_t *k)
{
    fl_test_latch_free(k->ran);
    fl_test_latch_free(k->ended);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void ticker_run(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    ticker_t *k = arg;
    if (atomic_exchange(&k->inside, 1) != 0)
        atomic_fetch_add(&k->overlaps, 1);
    if (k->serial)
        serial_enter(state);
    if (!fl_rpc_in_main_thread(ep) || ep != k->ep)
        atomic_fetch_add(&k->off_main, 1);
    int n = atomic_load(&k->runs);
    if (n < MAX_RUNS) {
        k->start_ns[n] = fl_clock_now_ns();
        if (k->slow_ms[n] > 0)
            sleep_ms(k->slow_ms[n]);
    }
    if (n == 0 && k->entered != NULL) {
        fl_test_latch_count_down(k->entered);
        (void)fl_test_latch_wait(k->gate, WAIT_MS);
    }
    fl_rpc_scheduled_t *self = atomic_load(&k->self);
    if (n >= k->cancel_at && k->cancel_at >= 0 && self != NULL &&
        atomic_load(&k->self_cancel) < 0) {
        atomic_store(&k->cancelled_in, n);
        atomic_store(&k->self_cancel, fl_rpc_scheduled_cancel(self));
    }
    if (n < MAX_RUNS)
        k->end_ns[n] = fl_clock_now_ns();
    if (k->serial)
        serial_leave(state);
    atomic_store(&k->inside, 0);
    atomic_fetch_add(&k->runs, 1);
    fl_test_latch_count_down(k->ran);
}

static void ticker_free(void *arg)
{
    ticker_t *k = arg;
    atomic_fetch_add(&k->freed, 1);
    fl_test_latch_count_down(k->ended);
}

/* Waits until the task ended (arg_free ran) and checks it ran `runs`
 * times, freed once, never overlapped and always on the main thread. */
static void ticker_expect_ended(ticker_t *k, int runs)
{
    wait_latch(k->ended);
    assert_int_equal(1, atomic_load(&k->freed));
    assert_int_equal(runs, atomic_load(&k->runs));
    assert_int_equal(0, atomic_load(&k->overlaps));
    assert_int_equal(0, atomic_load(&k->off_main));
}

/* ms from a to b (b >= a expected; negative if not). */
static int64_t ms_between(uint64_t a, uint64_t b)
{
    return b >= a ? (int64_t)((b - a) / NS_PER_MS)
                  : -(int64_t)((a - b) / NS_PER_MS) - 1;
}

/* Fails unless lo <= v < hi. */
static void expect_in(const char *what, int64_t v, int64_t lo, int64_t hi)
{
    if (v < lo || v >= hi)
        fail_msg("%s: %lld ms, want [%lld, %lld)", what, (long long)v,
                 (long long)lo, (long long)hi);
}

/* A barrier through the main thread: everything queued to ep from this
 * thread before it has run when it returns. */
static void main_barrier(fl_rpc_endpoint_t *ep)
{
    ticker_t k;
    ticker_init(&k, ep, 1);
    assert_fl_ok(fl_rpc_run_async(ep, ticker_run, &k, ticker_free));
    wait_latch(k.ran);
    ticker_fini(&k);
}

/* ---- fixed rate ---------------------------------------------------------- */

/* Runs that take 30 of every 40 ms keep to the deadlines initial + n * 40:
 * never early, and run 7 at most LATE_MS after its deadline (a fixed delay
 * would start it 210 ms later). */

/* kind 1: fl_rpc_schedule_run_at_fixed_rate, 2: _with_fixed_delay; the
 * cases that hold for both periodic kinds loop over them. */
static int schedule_kind(int kind, fl_rpc_endpoint_t *ep, fl_rpc_run_cb fn,
                         void *arg, fl_free_cb arg_free, int64_t initial_ms,
                         int64_t period_ms, fl_rpc_scheduled_t **out)
{
    if (kind == 1)
        return fl_rpc_schedule_run_at_fixed_rate(ep, fn, arg, arg_free,
                                                 initial_ms, period_ms, out);
    return fl_rpc_schedule_run_with_fixed_delay(ep, fn, arg, arg_free,
                                                initial_ms, period_ms, out);
}
static void test_fixed_rate_runs_on_its_deadlines(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);
    enum { RUNS = 8, INITIAL = 20, PERIOD = 40, SLOW = 30 };

    ticker_t k;
    ticker_init(&k, fx.ep, RUNS);
    for (int i = 0; i < MAX_RUNS; i++)
        k.slow_ms[i] = SLOW;
    fl_rpc_scheduled_t *h = NULL;
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_rpc_schedule_run_at_fixed_rate(
        fx.ep, ticker_run, &k, ticker_free, INITIAL, PERIOD, &h));
    uint64_t t1 = fl_clock_now_ns();
    assert_non_null(h);
    wait_latch(k.ran);
    assert_false(fl_rpc_scheduled_is_done(h));

    assert_true(fl_rpc_scheduled_cancel(h));
    wait_latch(k.ended);
    ticker_expect_ended(&k, atomic_load(&k.runs));
    for (int n = 0; n < RUNS; n++) {
        char what[64];
        snprintf(what, sizeof what, "run %d after its deadline", n);
        /* Deadline n lies between t0 and t1 plus INITIAL + n * PERIOD. */
        expect_in(what, ms_between(t0, k.start_ns[n]) - (INITIAL + n * PERIOD),
                  0, LATE_MS + ms_between(t0, t1));
    }
    assert_true(fl_rpc_scheduled_is_done(h));
    assert_true(fl_rpc_scheduled_is_cancelled(h));
    fl_rpc_scheduled_free(h);

    ticker_fini(&k);
    ep_fx_end(&fx);
}

/* Run 0 takes 500 ms of a 200 ms period: run 1 follows it at once,
 * standing for deadline 2 (deadline 1 is skipped), and run 2 waits for
 * deadline 3 instead of making up for the skipped one in a burst. */
static void
test_fixed_rate_late_run_is_followed_once_then_keeps_time(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);
    enum { PERIOD = 200, SLOW = 500 };

    ticker_t k;
    ticker_init(&k, fx.ep, 3);
    k.slow_ms[0] = SLOW;
    fl_rpc_scheduled_t *h = NULL;
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_rpc_schedule_run_at_fixed_rate(fx.ep, ticker_run, &k,
                                                   ticker_free, 0, PERIOD, &h));
    uint64_t t1 = fl_clock_now_ns();
    wait_latch(k.ran);
    assert_true(fl_rpc_scheduled_cancel(h));
    wait_latch(k.ended);

    /* The deadlines are first + n * PERIOD, first between t0 and t1: the
     * first deadline after run 0 ended comes at or after next_lo (ms from
     * t0). Run 1 starts in the first half of the wait for it. */
    int64_t end0 = ms_between(t0, k.end_ns[0]);
    int64_t skew = ms_between(t0, t1) + 1;
    int64_t next_lo = ((end0 - skew) / PERIOD + 1) * PERIOD;
    expect_in("run 1 after run 0 ended", ms_between(k.end_ns[0], k.start_ns[1]),
              0, (next_lo - end0) / 2);
    expect_in("run 2 after the first deadline past run 0",
              ms_between(t0, k.start_ns[2]) - next_lo, 0, LATE_MS + skew);
    ticker_expect_ended(&k, atomic_load(&k.runs));
    fl_rpc_scheduled_free(h);

    ticker_fini(&k);
    ep_fx_end(&fx);
}

/* ---- fixed delay --------------------------------------------------------- */

/* The next run starts `delay` after the previous one ENDS: 30 ms after a
 * run of 60 ms (a fixed rate would start it at once), and after a quick
 * one. */
static void test_fixed_delay_waits_after_each_run_ends(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);
    enum { DELAY = 30, SLOW = 60 };

    ticker_t k;
    ticker_init(&k, fx.ep, 3);
    k.slow_ms[0] = SLOW;
    fl_rpc_scheduled_t *h = NULL;
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_rpc_schedule_run_with_fixed_delay(
        fx.ep, ticker_run, &k, ticker_free, 10, DELAY, &h));
    wait_latch(k.ran);
    assert_true(fl_rpc_scheduled_cancel(h));
    wait_latch(k.ended);

    expect_in("run 0 after the initial delay", ms_between(t0, k.start_ns[0]),
              10, 10 + LATE_MS);
    expect_in("the gap after the slow run 0",
              ms_between(k.end_ns[0], k.start_ns[1]), DELAY, DELAY + LATE_MS);
    expect_in("the gap after run 1", ms_between(k.end_ns[1], k.start_ns[2]),
              DELAY, DELAY + LATE_MS);
    ticker_expect_ended(&k, atomic_load(&k.runs));
    fl_rpc_scheduled_free(h);

    ticker_fini(&k);
    ep_fx_end(&fx);
}

/* ---- the main thread ----------------------------------------------------- */

#define TELLS 2000

typedef struct teller {
    fl_rpc_gateway_t *gw;
    fl_test_latch_t *go;
} teller_t;

static void *teller_main(void *arg)
{
    teller_t *c = arg;
    (void)fl_test_latch_wait(c->go, WAIT_MS);
    for (int64_t i = 0; i < TELLS; i++)
        tell_count(c->gw, 0, i);
    return NULL;
}

/* Both kinds run on the main thread, never alongside a call: the endpoint's
 * serial check (not atomic, so TSan sees a race) counts every run and
 * every call while tells pour in. */
static void test_periodic_runs_are_serialized_with_calls(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_init(&fx);
    fx.st.counted = fl_test_latch_alloc(TELLS);
    ep_fx_open(&fx, "ep", FX_START | FX_GW);

    ticker_t rate, delay;
    ticker_init(&rate, fx.ep, 5);
    ticker_init(&delay, fx.ep, 5);
    rate.serial = delay.serial = true;
    fl_rpc_scheduled_t *hr = NULL, *hd = NULL;
    assert_fl_ok(fl_rpc_schedule_run_at_fixed_rate(fx.ep, ticker_run, &rate,
                                                   ticker_free, 0, 1, &hr));
    assert_fl_ok(fl_rpc_schedule_run_with_fixed_delay(fx.ep, ticker_run, &delay,
                                                      ticker_free, 0, 1, &hd));

    fl_test_latch_t *go = fl_test_latch_alloc(1);
    teller_t c = {.gw = fx.gw, .go = go};
    pthread_t th;
    assert_int_equal(0, pthread_create(&th, NULL, teller_main, &c));
    fl_test_latch_count_down(go);
    assert_int_equal(0, pthread_join(th, NULL));
    wait_latch(fx.st.counted);
    wait_latch(rate.ran);
    wait_latch(delay.ran);
    assert_true(fl_rpc_scheduled_cancel(hr));
    assert_true(fl_rpc_scheduled_cancel(hd));
    wait_latch(rate.ended);
    wait_latch(delay.ended);
    main_barrier(fx.ep);

    int runs = atomic_load(&rate.runs) + atomic_load(&delay.runs);
    ticker_expect_ended(&rate, atomic_load(&rate.runs));
    ticker_expect_ended(&delay, atomic_load(&delay.runs));
    assert_int_equal(0, atomic_load(&fx.st.overlaps));
    assert_int_equal(0, atomic_load(&fx.st.order_errors));
    assert_int_equal(TELLS + runs, fx.st.serial_count);
    fl_rpc_scheduled_free(hr);
    fl_rpc_scheduled_free(hd);

    ticker_fini(&rate);
    ticker_fini(&delay);
    fl_test_latch_free(go);
    ep_fx_end(&fx);
    fl_test_latch_free(fx.st.counted);
}

/* ---- cancelling ---------------------------------------------------------- */

/* Before its first run: true, it never runs, arg is freed once, the handle
 * says done and cancelled; a second cancel prevents nothing. For each
 * kind. */
static void test_cancel_before_the_first_run(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    for (int kind = 0; kind < 3; kind++) {
        ticker_t k;
        ticker_init(&k, fx.ep, 1);
        fl_rpc_scheduled_t *h = NULL;
        if (kind == 0)
            assert_fl_ok(fl_rpc_schedule_run_async(fx.ep, ticker_run, &k,
                                                   ticker_free, NEVER_MS, &h));
        else
            assert_fl_ok(schedule_kind(kind, fx.ep, ticker_run, &k, ticker_free,
                                       NEVER_MS, 1, &h));
        assert_false(fl_rpc_scheduled_is_done(h));
        assert_false(fl_rpc_scheduled_is_cancelled(h));
        assert_true(fl_rpc_scheduled_cancel(h));
        assert_true(fl_rpc_scheduled_is_done(h));
        assert_true(fl_rpc_scheduled_is_cancelled(h));
        ticker_expect_ended(&k, 0);
        assert_false(fl_rpc_scheduled_cancel(h));
        fl_rpc_scheduled_free(h);
        ticker_fini(&k);
    }

    ep_fx_end(&fx);
}

/* A one-shot queued behind a task that holds the main thread: cancelled
 * there, it does not run when the main thread gets to it. */
static void test_cancel_of_a_queued_one_shot(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    hold_t hold = {fl_test_latch_alloc(1), fl_test_latch_alloc(1)};
    assert_fl_ok(fl_rpc_run_async(fx.ep, hold_task, &hold, NULL));
    wait_latch(hold.entered);
    ticker_t k;
    ticker_init(&k, fx.ep, 1);
    fl_rpc_scheduled_t *h = NULL;
    assert_fl_ok(
        fl_rpc_schedule_run_async(fx.ep, ticker_run, &k, ticker_free, 0, &h));
    assert_false(fl_rpc_scheduled_is_done(h));
    assert_true(fl_rpc_scheduled_cancel(h));
    fl_test_latch_count_down(hold.gate);
    ticker_expect_ended(&k, 0);
    assert_true(fl_rpc_scheduled_is_cancelled(h));
    fl_rpc_scheduled_free(h);

    ticker_fini(&k);
    fl_test_latch_free(hold.entered);
    fl_test_latch_free(hold.gate);
    ep_fx_end(&fx);
}

/* Between runs: after run 0 of a fixed delay task whose next run is an
 * hour away, cancel is true and it never runs again. */
static void test_cancel_between_runs(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    for (int kind = 1; kind < 3; kind++) {
        ticker_t k;
        ticker_init(&k, fx.ep, 1);
        fl_rpc_scheduled_t *h = NULL;
        assert_fl_ok(schedule_kind(kind, fx.ep, ticker_run, &k, ticker_free, 0,
                                   NEVER_MS, &h));
        wait_latch(k.ran);
        assert_false(fl_rpc_scheduled_is_done(h));
        assert_true(fl_rpc_scheduled_cancel(h));
        assert_true(fl_rpc_scheduled_is_done(h));
        assert_true(fl_rpc_scheduled_is_cancelled(h));
        ticker_expect_ended(&k, 1);
        assert_false(fl_rpc_scheduled_cancel(h));
        fl_rpc_scheduled_free(h);
        ticker_fini(&k);
    }

    ep_fx_end(&fx);
}

/* From inside run 2 of a task due every ms: cancel is true, run 2
 * finishes, no run 3; arg is freed after it. */
static void test_cancel_from_inside_the_task(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    for (int kind = 1; kind < 3; kind++) {
        ticker_t k;
        ticker_init(&k, fx.ep, 1);
        /* From run 2 on, as soon as the handle is stored. */
        k.cancel_at = 2;
        fl_rpc_scheduled_t *h = NULL;
        assert_fl_ok(
            schedule_kind(kind, fx.ep, ticker_run, &k, ticker_free, 0, 1, &h));
        atomic_store(&k.self, h);
        wait_latch(k.ended);
        assert_int_equal(1, atomic_load(&k.self_cancel));
        /* It cancelled itself in its last run, run 2 or later. */
        int last = atomic_load(&k.cancelled_in);
        if (last < 2)
            fail_msg("cancelled in run %d, want 2 or later", last);
        ticker_expect_ended(&k, last + 1);
        assert_true(fl_rpc_scheduled_is_done(h));
        assert_true(fl_rpc_scheduled_is_cancelled(h));
        fl_rpc_scheduled_free(h);
        ticker_fini(&k);
    }

    ep_fx_end(&fx);
}

/* A one-shot's run in progress cannot be prevented: cancel is false, from
 * another thread or from inside it; the run finishes and the handle says
 * done, not cancelled. */
static void test_cancel_of_a_running_one_shot_prevents_nothing(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    ticker_t k;
    ticker_init(&k, fx.ep, 1);
    k.entered = fl_test_latch_alloc(1);
    k.gate = fl_test_latch_alloc(1);
    k.cancel_at = 0;
    fl_rpc_scheduled_t *h = NULL;
    assert_fl_ok(
        fl_rpc_schedule_run_async(fx.ep, ticker_run, &k, ticker_free, 1, &h));
    atomic_store(&k.self, h);
    wait_latch(k.entered);
    assert_false(fl_rpc_scheduled_is_done(h));
    assert_false(fl_rpc_scheduled_is_cancelled(h));
    assert_false(fl_rpc_scheduled_cancel(h));
    fl_test_latch_count_down(k.gate);
    wait_latch(k.ran);
    main_barrier(fx.ep); /* its run has returned */
    assert_int_equal(0, atomic_load(&k.self_cancel));
    assert_true(fl_rpc_scheduled_is_done(h));
    assert_false(fl_rpc_scheduled_is_cancelled(h));
    assert_false(fl_rpc_scheduled_cancel(h));
    assert_false(fl_rpc_scheduled_is_cancelled(h));
    /* It ran: arg is fn's, never freed. */
    assert_int_equal(0, atomic_load(&k.freed));
    assert_int_equal(1, atomic_load(&k.runs));
    fl_rpc_scheduled_free(h);

    fl_test_latch_free(k.entered);
    fl_test_latch_free(k.gate);
    ticker_fini(&k);
    ep_fx_end(&fx);
}

/* ---- one-shot with a handle ---------------------------------------------- */

/* It runs once on the main thread no earlier than its delay; the handle
 * then says done, not cancelled, and arg is fn's. */
static void test_one_shot_runs_once_and_is_done(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    ticker_t k;
    ticker_init(&k, fx.ep, 1);
    fl_rpc_scheduled_t *h = NULL;
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(
        fl_rpc_schedule_run_async(fx.ep, ticker_run, &k, ticker_free, 50, &h));
    wait_latch(k.ran);
    main_barrier(fx.ep);
    expect_in("the run after its delay", ms_between(t0, k.start_ns[0]), 50,
              50 + LATE_MS);
    assert_true(fl_rpc_scheduled_is_done(h));
    assert_false(fl_rpc_scheduled_is_cancelled(h));
    assert_int_equal(1, atomic_load(&k.runs));
    assert_int_equal(0, atomic_load(&k.freed));
    assert_int_equal(0, atomic_load(&k.off_main));
    fl_rpc_scheduled_free(h);

    ticker_fini(&k);
    ep_fx_end(&fx);
}

/* ---- the endpoint's state ------------------------------------------------ */

/* A run that comes due before start is dropped and ends the task, for each
 * kind: arg freed once, the handle says cancelled; starting later does not
 * bring it back. */
static void test_a_run_due_before_start_ends_the_task(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", 0);

    for (int kind = 0; kind < 3; kind++) {
        ticker_t k;
        ticker_init(&k, fx.ep, 1);
        fl_rpc_scheduled_t *h = NULL;
        if (kind == 0)
            assert_fl_ok(fl_rpc_schedule_run_async(fx.ep, ticker_run, &k,
                                                   ticker_free, 1, &h));
        else if (kind == 1)
            assert_fl_ok(fl_rpc_schedule_run_at_fixed_rate(
                fx.ep, ticker_run, &k, ticker_free, 1, 1, &h));
        else
            assert_fl_ok(fl_rpc_schedule_run_with_fixed_delay(
                fx.ep, ticker_run, &k, ticker_free, 0, 1, &h));
        ticker_expect_ended(&k, 0);
        assert_true(fl_rpc_scheduled_is_done(h));
        assert_true(fl_rpc_scheduled_is_cancelled(h));
        assert_false(fl_rpc_scheduled_cancel(h));
        fl_rpc_scheduled_free(h);
        ticker_fini(&k);
    }
    tep_start(fx.ep, &fx.st);
    main_barrier(fx.ep);

    ep_fx_end(&fx);
}

/* Stopping the endpoint ends a periodic task at its next run. */
static void test_stopping_the_endpoint_ends_a_periodic_task(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    ticker_t k;
    ticker_init(&k, fx.ep, 2);
    fl_rpc_scheduled_t *h = NULL;
    assert_fl_ok(fl_rpc_schedule_run_at_fixed_rate(fx.ep, ticker_run, &k,
                                                   ticker_free, 0, 1, &h));
    wait_latch(k.ran);
    assert_fl_ok(fl_rpc_endpoint_stop(fx.ep));
    wait_latch(k.ended);
    ticker_expect_ended(&k, atomic_load(&k.runs));
    assert_true(fl_rpc_scheduled_is_cancelled(h));
    fl_rpc_scheduled_free(h);

    ticker_fini(&k);
    ep_fx_end(&fx);
}

/* Termination ends a task whose next run is an hour away at once: arg is
 * freed once, the handle says done and cancelled, cancel prevents nothing.
 * For each kind, one with a handle and one without. */
static void test_termination_ends_the_task_and_frees_arg_once(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    ticker_t k[6];
    fl_rpc_scheduled_t *h[6] = {0};
    for (int i = 0; i < 6; i++) {
        ticker_init(&k[i], fx.ep, 1);
        fl_rpc_scheduled_t **out = i < 3 ? &h[i] : NULL;
        if (i % 3 == 0)
            assert_fl_ok(fl_rpc_schedule_run_async(fx.ep, ticker_run, &k[i],
                                                   ticker_free, NEVER_MS, out));
        else if (i % 3 == 1)
            assert_fl_ok(fl_rpc_schedule_run_at_fixed_rate(
                fx.ep, ticker_run, &k[i], ticker_free, 0, NEVER_MS, out));
        else
            assert_fl_ok(fl_rpc_schedule_run_with_fixed_delay(
                fx.ep, ticker_run, &k[i], ticker_free, NEVER_MS, 1, out));
    }
    wait_latch(k[1].ran);
    wait_latch(k[4].ran);
    fl_future_release(tep_close(fx.ep));
    for (int i = 0; i < 6; i++) {
        ticker_expect_ended(&k[i], i % 3 == 1 ? 1 : 0);
        if (h[i] != NULL) {
            assert_true(fl_rpc_scheduled_is_done(h[i]));
            assert_true(fl_rpc_scheduled_is_cancelled(h[i]));
            assert_false(fl_rpc_scheduled_cancel(h[i]));
            fl_rpc_scheduled_free(h[i]);
        }
        ticker_fini(&k[i]);
    }

    ep_fx_end_closed(&fx);
}

/* The handle outlives the endpoint, the service and its system: its
 * queries and cancel still answer, and freeing it last is fine. */
static void test_the_handle_outlives_the_endpoint_and_service(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    ticker_t k;
    ticker_init(&k, fx.ep, 1);
    fl_rpc_scheduled_t *h = NULL;
    assert_fl_ok(fl_rpc_schedule_run_with_fixed_delay(fx.ep, ticker_run, &k,
                                                      ticker_free, 0, 1, &h));
    wait_latch(k.ran);
    ep_fx_end(&fx);
    ticker_expect_ended(&k, atomic_load(&k.runs));
    assert_true(fl_rpc_scheduled_is_done(h));
    assert_true(fl_rpc_scheduled_is_cancelled(h));
    assert_false(fl_rpc_scheduled_cancel(h));
    fl_rpc_scheduled_free(h);
    ticker_fini(&k);
}

/* A fenced endpoint runs its own periodic tasks: they pass fencing. */
static void test_periodic_tasks_pass_fencing(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_fencing_token_t tok = token_of(7);
    fl_rpc_endpoint_t *ep = tep_create_started(svc, "fenced", &st, &tok);

    ticker_t k;
    ticker_init(&k, ep, 2);
    fl_rpc_scheduled_t *h = NULL;
    assert_fl_ok(fl_rpc_schedule_run_with_fixed_delay(ep, ticker_run, &k,
                                                      ticker_free, 0, 1, &h));
    wait_latch(k.ran);
    assert_true(fl_rpc_scheduled_cancel(h));
    ticker_expect_ended(&k, atomic_load(&k.runs));
    fl_rpc_scheduled_free(h);

    ticker_fini(&k);
    tep_end(ep);
    svc_end(svc);
}

/* ---- refusals ------------------------------------------------------------ */

typedef int (*sched_fn)(fl_rpc_endpoint_t *, fl_rpc_run_cb, void *, fl_free_cb,
                        int64_t, int64_t, fl_rpc_scheduled_t **);

static int once(fl_rpc_endpoint_t *ep, fl_rpc_run_cb fn, void *arg,
                fl_free_cb arg_free, int64_t delay_ms, int64_t unused,
                fl_rpc_scheduled_t **out)
{
    (void)unused;
    return fl_rpc_schedule_run_async(ep, fn, arg, arg_free, delay_ms, out);
}

/* Calls fn, which must fail with err and message msg, free arg once and
 * leave *out NULL. */
static void expect_refused(sched_fn fn, fl_rpc_endpoint_t *ep,
                           fl_rpc_run_cb run, int64_t a, int64_t b, int err,
                           const char *msg)
{
    atomic_int freed = 0;
    fl_rpc_scheduled_t *h = (fl_rpc_scheduled_t *)&freed; /* not NULL */
    assert_fl(err, fn(ep, run, &freed, count_free, a, b, &h));
    assert_null(h);
    assert_int_equal(1, atomic_load(&freed));
    assert_string_equal(msg, fl_rpc_last_message());
    assert_fl(err, fl_rpc_last_error());
}

static void test_bad_arguments_fail_einval_and_say_which(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    sched_fn kinds[3] = {once, fl_rpc_schedule_run_at_fixed_rate,
                         fl_rpc_schedule_run_with_fixed_delay};
    for (int i = 0; i < 3; i++) {
        expect_refused(kinds[i], NULL, ticker_run, 0, 1, FL_EINVAL,
                       "ep must not be NULL");
        expect_refused(kinds[i], fx.ep, NULL, 0, 1, FL_EINVAL,
                       "fn must not be NULL");
    }
    expect_refused(once, fx.ep, ticker_run, -1, 0, FL_EINVAL,
                   "delay_ms must be >= 0 (got -1)");
    expect_refused(fl_rpc_schedule_run_at_fixed_rate, fx.ep, ticker_run, -5, 10,
                   FL_EINVAL, "initial_ms must be >= 0 (got -5)");
    expect_refused(fl_rpc_schedule_run_at_fixed_rate, fx.ep, ticker_run, 0, 0,
                   FL_EINVAL, "period_ms must be > 0 (got 0)");
    expect_refused(fl_rpc_schedule_run_at_fixed_rate, fx.ep, ticker_run, 0, -3,
                   FL_EINVAL, "period_ms must be > 0 (got -3)");
    expect_refused(fl_rpc_schedule_run_with_fixed_delay, fx.ep, ticker_run, -1,
                   10, FL_EINVAL, "initial_ms must be >= 0 (got -1)");
    expect_refused(fl_rpc_schedule_run_with_fixed_delay, fx.ep, ticker_run, 0,
                   0, FL_EINVAL, "delay_ms must be > 0 (got 0)");
    main_barrier(fx.ep);

    ep_fx_end(&fx);
}

/* On a terminated endpoint each kind fails at once, whatever its delay. */
static void
test_scheduling_on_a_terminated_endpoint_fails_unreachable(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "gone", FX_START);
    fl_future_release(tep_close(fx.ep));

    const char *msg =
        "recipient unreachable: rpc endpoint 'gone' has terminated";
    expect_refused(once, fx.ep, ticker_run, 0, 0, FL_EUNREACHABLE, msg);
    expect_refused(once, fx.ep, ticker_run, 10, 0, FL_EUNREACHABLE, msg);
    expect_refused(fl_rpc_schedule_run_at_fixed_rate, fx.ep, ticker_run, 10, 10,
                   FL_EUNREACHABLE, msg);
    expect_refused(fl_rpc_schedule_run_with_fixed_delay, fx.ep, ticker_run, 0,
                   10, FL_EUNREACHABLE, msg);

    ep_fx_end_closed(&fx);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_fixed_rate_runs_on_its_deadlines),
        FL_TEST(test_fixed_rate_late_run_is_followed_once_then_keeps_time),
        FL_TEST(test_fixed_delay_waits_after_each_run_ends),
        FL_TEST(test_periodic_runs_are_serialized_with_calls),
        FL_TEST(test_cancel_before_the_first_run),
        FL_TEST(test_cancel_of_a_queued_one_shot),
        FL_TEST(test_cancel_between_runs),
        FL_TEST(test_cancel_from_inside_the_task),
        FL_TEST(test_cancel_of_a_running_one_shot_prevents_nothing),
        FL_TEST(test_one_shot_runs_once_and_is_done),
        FL_TEST(test_a_run_due_before_start_ends_the_task),
        FL_TEST(test_stopping_the_endpoint_ends_a_periodic_task),
        FL_TEST(test_termination_ends_the_task_and_frees_arg_once),
        FL_TEST(test_the_handle_outlives_the_endpoint_and_service),
        FL_TEST(test_periodic_tasks_pass_fencing),
        FL_TEST(test_bad_arguments_fail_einval_and_say_which),
        FL_TEST(test_scheduling_on_a_terminated_endpoint_fails_unreachable),
    };
    return FX_RUN(argc, argv, tests);
}
