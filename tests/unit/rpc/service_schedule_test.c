/*
 * service_schedule_test.c - the service's scheduled executor: once, fixed
 * rate, fixed delay, cancel, bad arguments and after shutdown.
 */
#include "service_fixture.h"

/* ---- the scheduled executor ---------------------------------------------- */

static void test_schedule_runs_the_task_once_after_the_delay(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    sched_ctx_t c;
    sched_ctx_init(&c, 1);

    uint64_t t0 = fl_clock_now_ns();
    fl_rpc_task_id_t id = 0;
    assert_fl_ok(fl_rpc_schedule(svc, sched_task, &c, 30, &id));
    assert_true(id != 0);
    wait_latch(c.done);
    uint64_t waited = (c.start_ns[0] - t0) / NS_PER_MS;
    if (waited < 30)
        fail_msg("ran after %llu ms, want >= 30", (unsigned long long)waited);
    assert_int_equal(1, assert_no_more_runs(svc, &c, 60));
    assert_fl(FL_ENOENT, fl_rpc_cancel(svc, id)); /* finished */

    fl_test_latch_free(c.done);
    svc_end(svc);
}

static void
test_schedule_at_fixed_rate_runs_on_its_deadlines_until_cancelled(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    sched_ctx_t c;
    sched_ctx_init(&c, 5);
    const int64_t initial = 20, period = 15;

    uint64_t t0 = fl_clock_now_ns();
    fl_rpc_task_id_t id = 0;
    assert_fl_ok(fl_rpc_schedule_at_fixed_rate(svc, sched_task, &c, initial,
                                               period, &id));
    wait_latch(c.done); /* at least 5 runs */
    assert_fl_ok(fl_rpc_cancel(svc, id));
    int runs = assert_no_more_runs(svc, &c, 4 * period);
    assert_true(runs >= 5);

    /* Run k starts no earlier than its deadline initial + k * period. */
    for (int k = 0; k < 5; k++) {
        uint64_t at = (c.start_ns[k] - t0) / NS_PER_MS;
        if (at < (uint64_t)(initial + k * period))
            fail_msg("run %d at %llu ms, deadline %lld ms", k,
                     (unsigned long long)at, (long long)(initial + k * period));
    }

    fl_test_latch_free(c.done);
    svc_end(svc);
}

static void test_schedule_with_fixed_delay_waits_between_runs(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    sched_ctx_t c;
    sched_ctx_init(&c, 3);
    c.work_ms = 15; /* a fixed rate of 20 ms would leave only ~5 ms gaps */
    c.cancel_at = 3;
    const int64_t delay = 20;

    fl_rpc_task_id_t id = 0;
    assert_fl_ok(
        fl_rpc_schedule_with_fixed_delay(svc, sched_task, &c, 0, delay, &id));
    atomic_store(&c.id, id);
    wait_latch(c.done);
    assert_int_equal(3, assert_no_more_runs(svc, &c, 3 * (delay + 15)));
    assert_fl_ok(atomic_load(&c.cancel_rc)); /* cancelled from the task */

    for (int k = 0; k + 1 < 3; k++) {
        uint64_t gap = (c.start_ns[k + 1] - c.end_ns[k]) / NS_PER_MS;
        if (gap < (uint64_t)delay)
            fail_msg("gap after run %d is %llu ms, want >= %lld", k,
                     (unsigned long long)gap, (long long)delay);
    }

    fl_test_latch_free(c.done);
    svc_end(svc);
}

/* Far delays and periods saturate (docs/guide.md, "Timers"): the tasks
 * stay scheduled and never run; a far period runs its task once. */
static void test_far_delays_and_periods_never_run(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    const int64_t far[] = FL_TEST_FAR_MS;
    sched_ctx_t never, once;
    sched_ctx_init(&never, 1);
    sched_ctx_init(&once, 2);
    fl_rpc_task_id_t ids[2];
    for (int i = 0; i < 2; i++) {
        assert_fl_ok(fl_rpc_schedule(svc, sched_task, &never, far[i], &ids[i]));
        assert_fl_ok(fl_rpc_schedule_at_fixed_rate(svc, sched_task, &once, 0,
                                                   far[i], NULL));
    }
    wait_latch(once.done);
    /* Tasks run on the timer thread in deadline order: a far one that
     * wrapped into the past would have run before these sentinels. */
    assert_int_equal(0, assert_no_more_runs(svc, &never, 20));
    assert_int_equal(2, assert_no_more_runs(svc, &once, 20));
    for (int i = 0; i < 2; i++)
        assert_fl_ok(fl_rpc_cancel(svc, ids[i])); /* still scheduled */
    fl_test_latch_free(never.done);
    fl_test_latch_free(once.done);
    svc_end(svc);
}

static void test_cancel_returns_ok_then_enoent(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    sched_ctx_t c;
    sched_ctx_init(&c, 1);

    fl_rpc_task_id_t id = 0;
    assert_fl_ok(fl_rpc_schedule(svc, sched_task, &c, 60000, &id));
    assert_fl_ok(fl_rpc_cancel(svc, id));
    assert_fl(FL_ENOENT, fl_rpc_cancel(svc, id));
    assert_int_equal(0, assert_no_more_runs(svc, &c, 10));

    fl_test_latch_free(c.done);
    svc_end(svc);
}

static void test_cancel_of_a_periodic_task_returns_ok_then_enoent(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    sched_ctx_t c;
    sched_ctx_init(&c, 2);

    fl_rpc_task_id_t id = 0;
    assert_fl_ok(
        fl_rpc_schedule_with_fixed_delay(svc, sched_task, &c, 0, 10, &id));
    wait_latch(c.done);
    assert_fl_ok(fl_rpc_cancel(svc, id));
    assert_fl(FL_ENOENT, fl_rpc_cancel(svc, id));
    (void)assert_no_more_runs(svc, &c, 40);

    fl_test_latch_free(c.done);
    svc_end(svc);
}

static void test_cancel_of_an_unknown_task_is_enoent(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    assert_fl(FL_ENOENT, fl_rpc_cancel(svc, (fl_rpc_task_id_t)987654321));
    svc_end(svc);
}

/* rc must be err, with fl_rpc_last_error() and fl_rpc_last_message()
 * saying so. */
static void expect_refused(int rc, int err, const char *msg)
{
    assert_fl(err, rc);
    assert_fl(err, fl_rpc_last_error());
    assert_string_equal(msg, fl_rpc_last_message());
}

static void test_schedule_rejects_bad_arguments_with_einval(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    int arg = 0;
    fl_rpc_task_id_t id = 0;

    expect_refused(fl_rpc_schedule(svc, noop_task, &arg, -1, &id), FL_EINVAL,
                   "delay_ms must be >= 0 (got -1)");
    expect_refused(fl_rpc_schedule(svc, NULL, &arg, 10, &id), FL_EINVAL,
                   "fn must not be NULL");
    expect_refused(fl_rpc_schedule(NULL, noop_task, &arg, 10, &id), FL_EINVAL,
                   "svc must not be NULL");
    expect_refused(
        fl_rpc_schedule_at_fixed_rate(svc, noop_task, &arg, -1, 10, &id),
        FL_EINVAL, "initial_ms must be >= 0 (got -1)");
    expect_refused(
        fl_rpc_schedule_at_fixed_rate(svc, noop_task, &arg, 0, 0, &id),
        FL_EINVAL, "period_ms must be > 0 (got 0)");
    expect_refused(
        fl_rpc_schedule_at_fixed_rate(svc, noop_task, &arg, 0, -5, &id),
        FL_EINVAL, "period_ms must be > 0 (got -5)");
    expect_refused(fl_rpc_schedule_at_fixed_rate(svc, NULL, &arg, 0, 10, &id),
                   FL_EINVAL, "fn must not be NULL");
    expect_refused(
        fl_rpc_schedule_with_fixed_delay(svc, noop_task, &arg, -1, 10, &id),
        FL_EINVAL, "initial_ms must be >= 0 (got -1)");
    expect_refused(
        fl_rpc_schedule_with_fixed_delay(svc, noop_task, &arg, 0, 0, &id),
        FL_EINVAL, "delay_ms must be > 0 (got 0)");
    expect_refused(
        fl_rpc_schedule_with_fixed_delay(svc, NULL, &arg, 0, 10, &id),
        FL_EINVAL, "fn must not be NULL");
    expect_refused(fl_rpc_cancel(NULL, id), FL_EINVAL, "svc must not be NULL");

    svc_end(svc);
}

static void test_schedule_after_shutdown_is_eclosed(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    assert_fl_ok(fl_rpc_service_shutdown(svc));

    int arg = 0;
    const char *msg = "the rpc service is closed";
    expect_refused(fl_rpc_schedule(svc, noop_task, &arg, 10, NULL), FL_ECLOSED,
                   msg);
    expect_refused(
        fl_rpc_schedule_at_fixed_rate(svc, noop_task, &arg, 10, 10, NULL),
        FL_ECLOSED, msg);
    expect_refused(
        fl_rpc_schedule_with_fixed_delay(svc, noop_task, &arg, 10, 10, NULL),
        FL_ECLOSED, msg);

    svc_free(svc);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_schedule_runs_the_task_once_after_the_delay),
        FL_TEST(
            test_schedule_at_fixed_rate_runs_on_its_deadlines_until_cancelled),
        FL_TEST(test_schedule_with_fixed_delay_waits_between_runs),
        FL_TEST(test_far_delays_and_periods_never_run),
        FL_TEST(test_cancel_returns_ok_then_enoent),
        FL_TEST(test_cancel_of_a_periodic_task_returns_ok_then_enoent),
        FL_TEST(test_cancel_of_an_unknown_task_is_enoent),
        FL_TEST(test_schedule_rejects_bad_arguments_with_einval),
        FL_TEST(test_schedule_after_shutdown_is_eclosed),
    };
    return FX_RUN(argc, argv, tests);
}
