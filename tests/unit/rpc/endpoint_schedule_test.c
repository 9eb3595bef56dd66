/*
 * endpoint_schedule_test.c - tasks scheduled on an endpoint's main thread
 * and their handles: one-shot (fl_rpc_schedule_run_async), fixed rate and
 * fixed delay. When runs come due and how they keep to the clock, that they
 * run on the main thread serialized with calls, what the handle says, how
 * they end with the endpoint (arg freed exactly once), and what their
 * refusals say. Cancelling them: endpoint_cancel_test.c.
 *
 * A slow run is simulated with a sleep inside the task: that is the thing
 * measured, never a way to wait for an event (the test waits on latches).
 */
#include "schedule_fixture.h"

/* ---- fixed rate ---------------------------------------------------------- */

/* Runs that take 80 of every 100 ms keep to the deadlines initial + n *
 * 100: never early, and their lateness does not grow. Load delays runs,
 * so it is run 7's lateness compared with run 0's that tells the kinds
 * apart: at a fixed rate it is less than 7 * 80 ms more (one late run is
 * followed at once, and the rate catches up), at a fixed delay every run
 * adds the 80 ms the previous one took, 560 ms by run 7, whatever the
 * load. */
static void test_fixed_rate_runs_on_its_deadlines(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);
    enum { RUNS = 8, INITIAL = 20, PERIOD = 100, SLOW = 80 };

    ticker_t k;
    ticker_init(&k, fx.ep, RUNS);
    for (int i = 0; i < MAX_RUNS; i++)
        k.slow_ms[i] = SLOW;
    fl_rpc_scheduled_t *h = NULL;
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_rpc_schedule_run_at_fixed_rate(
        fx.ep, ticker_run, &k, ticker_free, INITIAL, PERIOD, &h));
    assert_non_null(h);
    wait_latch(k.ran);
    assert_false(fl_rpc_scheduled_is_done(h));

    assert_true(fl_rpc_scheduled_cancel(h));
    wait_latch(k.ended);
    ticker_expect_ended(&k, atomic_load(&k.runs));
    /* Deadline n lies at or after t0 + INITIAL + n * PERIOD; run n stands
     * for deadline n or, after a late run, a later one. */
    int64_t late[RUNS];
    for (int n = 0; n < RUNS; n++) {
        late[n] = ms_between(t0, k.start_ns[n]) - (INITIAL + n * PERIOD);
        if (late[n] < 0)
            fail_msg("run %d started %lld ms before its deadline", n,
                     (long long)-late[n]);
    }
    expect_in("run 7's lateness over run 0's", late[RUNS - 1] - late[0],
              -late[0], (RUNS - 1) * SLOW);
    assert_true(fl_rpc_scheduled_is_done(h));
    assert_true(fl_rpc_scheduled_is_cancelled(h));
    fl_rpc_scheduled_free(h);

    ticker_fini(&k);
    ep_fx_end(&fx);
}

/* Run 0 ends 500 ms into a 200 ms period: run 1 follows it at once,
 * standing for deadline 2 (deadline 1 is skipped), and run 2 waits for
 * deadline 3 instead of making up for the skipped one in a burst.
 * Sentinels tell "at once" and "at deadline 3" whatever the load: run 1
 * comes before a task due 50 ms after run 0 (waiting for deadline 3 would
 * be 100 ms), run 2 before one due a period after run 1 (the next deadline
 * lies within a period; deadline 4 would not). */
static void
test_fixed_rate_late_run_is_followed_once_then_keeps_time(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);
    enum { PERIOD = 200, END0 = 500, AT_ONCE = 50 };

    ticker_t k, s;
    ticker_init(&k, fx.ep, 3);
    ticker_init(&s, fx.ep, 2);
    k.sentinel = &s;
    k.sentinel_ms[0] = AT_ONCE;
    k.sentinel_ms[1] = PERIOD;
    fl_rpc_scheduled_t *h = NULL;
    uint64_t t0 = fl_clock_now_ns();
    /* Run 0 ends at a set time, not after a set length: a late start
     * does not move it nearer to the next deadline. */
    k.until_ns[0] = t0 + (uint64_t)END0 * NS_PER_MS;
    assert_fl_ok(fl_rpc_schedule_run_at_fixed_rate(fx.ep, ticker_run, &k,
                                                   ticker_free, 0, PERIOD, &h));
    uint64_t t1 = fl_clock_now_ns();
    wait_latch(k.ran);
    assert_true(fl_rpc_scheduled_cancel(h));
    wait_latch(k.ended);
    wait_latch(s.ran);

    /* The deadlines are first + n * PERIOD, first between t0 and t1: the
     * first deadline after run 0 ended comes at or after next_lo (ms from
     * t0), and run 2 stands for it or, after a late run 1, a later one. */
    int64_t end0 = ms_between(t0, k.end_ns[0]);
    int64_t skew = ms_between(t0, t1) + 1;
    int64_t next_lo = ((end0 - skew) / PERIOD + 1) * PERIOD;
    expect_before("run 1 after the late run 0", &k, 1, &s, 0);
    int64_t run2 = ms_between(t0, k.start_ns[2]);
    if (run2 < next_lo)
        fail_msg("run 2 started %lld ms before the first deadline past run "
                 "0",
                 (long long)(next_lo - run2));
    expect_before("run 2 after run 1", &k, 2, &s, 1);
    ticker_expect_ended(&k, atomic_load(&k.runs));
    fl_rpc_scheduled_free(h);

    ticker_fini(&k);
    ticker_fini(&s);
    ep_fx_end(&fx);
}

/* ---- fixed delay --------------------------------------------------------- */

/* The next run starts `delay` after the previous one ENDS: 100 ms after
 * a run of 200 ms (a fixed rate would start it at once), and after a
 * quick one. Never sooner (exact); no later than sentinels tell, whatever
 * the load: run 0 comes before a task due 50 ms after the initial delay
 * (the period would be 100), each next run before one due DELAY + 50 ms
 * after the run before it (waiting the run's 200 ms on top would not). */
static void test_fixed_delay_waits_after_each_run_ends(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);
    enum { INITIAL = 10, DELAY = 100, SLOW = 200, MARGIN = 50 };

    ticker_t k, s;
    ticker_init(&k, fx.ep, 3);
    ticker_init(&s, fx.ep, 3);
    k.slow_ms[0] = SLOW;
    k.sentinel = &s;
    k.sentinel_ms[0] = k.sentinel_ms[1] = DELAY + MARGIN;
    fl_rpc_scheduled_t *h = NULL;
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_rpc_schedule_run_with_fixed_delay(
        fx.ep, ticker_run, &k, ticker_free, INITIAL, DELAY, &h));
    /* Scheduled after the task: due later than its run 0. */
    assert_fl_ok(fl_rpc_schedule_run_async(fx.ep, ticker_run, &s, NULL,
                                           INITIAL + MARGIN, NULL));
    wait_latch(k.ran);
    assert_true(fl_rpc_scheduled_cancel(h));
    wait_latch(k.ended);
    wait_latch(s.ran);

    if (ms_between(t0, k.start_ns[0]) < INITIAL)
        fail_msg("run 0 started %lld ms after scheduling, want >= %d",
                 (long long)ms_between(t0, k.start_ns[0]), INITIAL);
    expect_before("run 0 after the initial delay", &k, 0, &s, 0);
    for (int n = 0; n < 2; n++) {
        int64_t gap = ms_between(k.end_ns[n], k.start_ns[n + 1]);
        if (gap < DELAY)
            fail_msg("the gap after run %d: %lld ms, want >= %d", n,
                     (long long)gap, DELAY);
    }
    expect_before("the gap after the slow run 0", &k, 1, &s, 1);
    expect_before("the gap after run 1", &k, 2, &s, 2);
    ticker_expect_ended(&k, atomic_load(&k.runs));
    fl_rpc_scheduled_free(h);

    ticker_fini(&k);
    ticker_fini(&s);
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

/* ---- one-shot with a handle ---------------------------------------------- */

/* It runs once on the main thread no earlier than its delay, and before
 * a sentinel due half the delay later (a doubled delay would not; the
 * sentinel is of another kind, a fixed rate's first run, so that a fault
 * of the one-shot does not move it too): the handle then says done, not
 * cancelled, and arg is fn's. */
static void test_one_shot_runs_once_and_is_done(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);
    enum { DELAY = 50 };

    ticker_t k, s;
    ticker_init(&k, fx.ep, 1);
    ticker_init(&s, fx.ep, 1);
    fl_rpc_scheduled_t *h = NULL, *hs = NULL;
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_rpc_schedule_run_async(fx.ep, ticker_run, &k, ticker_free,
                                           DELAY, &h));
    /* Scheduled after it: due later than it by DELAY / 2 at least. */
    assert_fl_ok(fl_rpc_schedule_run_at_fixed_rate(
        fx.ep, ticker_run, &s, ticker_free, DELAY + DELAY / 2, NEVER_MS, &hs));
    wait_latch(k.ran);
    wait_latch(s.ran);
    assert_true(fl_rpc_scheduled_cancel(hs));
    ticker_expect_ended(&s, 1);
    fl_rpc_scheduled_free(hs);
    main_barrier(fx.ep);
    if (ms_between(t0, k.start_ns[0]) < DELAY)
        fail_msg("the run started %lld ms after scheduling, want >= %d",
                 (long long)ms_between(t0, k.start_ns[0]), DELAY);
    expect_before("the run after its delay", &k, 0, &s, 0);
    assert_true(fl_rpc_scheduled_is_done(h));
    assert_false(fl_rpc_scheduled_is_cancelled(h));
    assert_int_equal(1, atomic_load(&k.runs));
    assert_int_equal(0, atomic_load(&k.freed));
    assert_int_equal(0, atomic_load(&k.off_main));
    fl_rpc_scheduled_free(h);

    ticker_fini(&k);
    ticker_fini(&s);
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
