/*
 * endpoint_cancel_test.c - cancelling tasks scheduled on an endpoint's
 * main thread through their handles (fl_rpc_scheduled_cancel), in every
 * state: before the first run, queued, between runs, from inside the task,
 * while a one-shot runs; and what the handle says after.
 */
#include "schedule_fixture.h"

/* ---- cancelling ---------------------------------------------------------- */

/* Schedules a ticker of `kind` (0 one-shot, 1 fixed rate, 2 fixed delay)
 * first due in initial_ms, then every period_ms, and waits for its first
 * run if runs is 1. Then cancel is true, it never runs again, arg is freed
 * once, the handle says done and cancelled; a second cancel prevents
 * nothing. */
static void expect_cancel_stops(ep_fx_t *fx, int kind, int64_t initial_ms,
                                int64_t period_ms, int runs)
{
    ticker_t k;
    ticker_init(&k, fx->ep, 1);
    fl_rpc_scheduled_t *h = NULL;
    if (kind == 0)
        assert_fl_ok(fl_rpc_schedule_run_async(fx->ep, ticker_run, &k,
                                               ticker_free, initial_ms, &h));
    else
        assert_fl_ok(schedule_kind(kind, fx->ep, ticker_run, &k, ticker_free,
                                   initial_ms, period_ms, &h));
    if (runs > 0)
        wait_latch(k.ran);
    assert_false(fl_rpc_scheduled_is_done(h));
    assert_false(fl_rpc_scheduled_is_cancelled(h));
    assert_true(fl_rpc_scheduled_cancel(h));
    assert_true(fl_rpc_scheduled_is_done(h));
    assert_true(fl_rpc_scheduled_is_cancelled(h));
    ticker_expect_ended(&k, runs);
    assert_false(fl_rpc_scheduled_cancel(h));
    fl_rpc_scheduled_free(h);
    ticker_fini(&k);
}

/* Before its first run, for each kind. */
static void test_cancel_before_the_first_run(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);
    for (int kind = 0; kind < 3; kind++)
        expect_cancel_stops(&fx, kind, NEVER_MS, 1, 0);
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

/* Between runs: after run 0 of a periodic task whose next run is an
 * hour away. */
static void test_cancel_between_runs(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);
    for (int kind = 1; kind < 3; kind++)
        expect_cancel_stops(&fx, kind, 0, NEVER_MS, 1);
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

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_cancel_before_the_first_run),
        FL_TEST(test_cancel_of_a_queued_one_shot),
        FL_TEST(test_cancel_between_runs),
        FL_TEST(test_cancel_from_inside_the_task),
        FL_TEST(test_cancel_of_a_running_one_shot_prevents_nothing),
    };
    return FX_RUN(argc, argv, tests);
}
