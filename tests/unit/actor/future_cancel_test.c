/*
 * future_cancel_test.c - cancel and its hook, and set_timeout.
 */
#include "future_fixture.h"

/* ---- cancel -------------------------------------------------------------- */

typedef struct hook_rec {
    atomic_int calls;
    atomic_int err_in_hook;
    fl_future_t *seen;
} hook_rec_t;

static void hook_cb(fl_future_t *f, void *arg)
{
    hook_rec_t *h = arg;
    h->seen = f;
    atomic_store(&h->err_in_hook, fl_future_error(f));
    atomic_fetch_add(&h->calls, 1);
}

static void
test_cancel_fails_with_ecanceled_then_runs_the_hook_once(void **state)
{
    (void)state;
    hook_rec_t h = {0};
    rec_t r = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_set_cancel_hook(f, hook_cb, &h));
    assert_fl_ok(fl_future_on_complete(f, rec_cb, &r));
    assert_fl_ok(fl_future_cancel(f));
    assert_true(fl_future_done(f));
    assert_fl(FL_ECANCELED, fl_future_error(f));
    assert_int_equal(1, atomic_load(&h.calls));
    assert_ptr_equal(f, h.seen);
    /* The future is already failed when the hook runs. */
    assert_fl(FL_ECANCELED, atomic_load(&h.err_in_hook));
    assert_int_equal(1, atomic_load(&r.calls));
    assert_fl(FL_ECANCELED, atomic_load(&r.err));

    assert_fl(FL_EALREADY, fl_future_cancel(f));
    assert_int_equal(1, atomic_load(&h.calls));
    assert_int_equal(1, atomic_load(&r.calls));
    fl_future_release(f);
}

static void test_cancel_without_hook_fails_with_ecanceled(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_cancel(f));
    assert_fl(FL_ECANCELED, fl_future_error(f));
    fl_future_release(f);
}

static void test_cancel_after_complete_returns_ealready_and_never_runs_the_hook(
    void **state)
{
    (void)state;
    hook_rec_t h = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_set_cancel_hook(f, hook_cb, &h));
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    assert_fl(FL_EALREADY, fl_future_cancel(f));
    assert_fl_ok(fl_future_error(f));
    assert_int_equal(0, atomic_load(&h.calls));
    fl_future_release(f);
    assert_int_equal(0, atomic_load(&h.calls));
}

static void
test_cancel_hook_does_not_run_when_the_future_fails_otherwise(void **state)
{
    (void)state;
    hook_rec_t h = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_set_cancel_hook(f, hook_cb, &h));
    assert_fl_ok(fl_future_fail(f, FL_EUSER, NULL));
    assert_fl(FL_EALREADY, fl_future_cancel(f));
    assert_int_equal(0, atomic_load(&h.calls));
    fl_future_release(f);
}

static void
test_set_cancel_hook_on_a_complete_future_returns_ealready(void **state)
{
    (void)state;
    hook_rec_t h = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_fail(f, FL_EUSER, NULL));
    assert_fl(FL_EALREADY, fl_future_set_cancel_hook(f, hook_cb, &h));
    assert_fl(FL_EALREADY, fl_future_cancel(f));
    assert_int_equal(0, atomic_load(&h.calls));
    fl_future_release(f);
}

/* ---- set_timeout --------------------------------------------------------- */

static void test_set_timeout_fails_a_pending_future_with_etimedout(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    rec_t r = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_on_complete(f, rec_cb, &r));
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_future_set_timeout(sys, f, 20));
    assert_fl(FL_ETIMEDOUT, fl_future_wait(f, WAIT_MS));
    uint64_t elapsed = fl_clock_now_ns() - t0;
    bool done = fl_future_done(f);
    int err = fl_future_error(f);
    char msg[300];
    snprintf(msg, sizeof msg, "%s", fl_future_message(f));
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_future_release(f);
    /* Checked after the teardown, so a failure leaks nothing. */
    assert_int_equal(1, atomic_load(&r.calls));
    assert_true(done);
    assert_fl(FL_ETIMEDOUT, err);
    if (elapsed < 20 * 1000000ull)
        fail_msg("timed out after %llu ns, before the 20 ms timeout",
                 (unsigned long long)elapsed);
    assert_string_equal("timed out after 20 ms", msg);
}

static void
test_completing_before_the_timeout_wins_and_stays_successful(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    atomic_int freed = 0;
    rec_t r = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_on_complete(f, rec_cb, &r));
    assert_fl_ok(fl_future_set_timeout(sys, f, 30));
    val_t *v = val_new(&freed, 1);
    assert_fl_ok(fl_future_complete(f, v, val_free));

    /* A sentinel timing out well after f's deadline. */
    fl_future_t *sentinel = fl_future_alloc();
    assert_fl_ok(fl_future_set_timeout(sys, sentinel, 90));
    assert_fl(FL_ETIMEDOUT, fl_future_wait(sentinel, WAIT_MS));
    assert_true(fl_future_done(sentinel));

    assert_fl_ok(fl_future_error(f));
    assert_ptr_equal(v, fl_future_value(f));
    assert_string_equal("", fl_future_message(f));
    assert_int_equal(1, atomic_load(&r.calls));
    assert_fl(FL_EALREADY, fl_future_set_timeout(sys, f, 10));

    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_future_release(sentinel);
    fl_future_release(f);
    assert_int_equal(1, atomic_load(&freed));
}

static void test_completing_a_future_cancels_its_timeout_timer(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    fl_system_stats_t st;
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_set_timeout(sys, f, 60000));
    assert_fl_ok(fl_system_stats(sys, &st));
    assert_int_equal(1, st.timers_pending);
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    assert_fl_ok(fl_system_stats(sys, &st));
    assert_int_equal(0, st.timers_pending);
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_future_release(f);
}

static void test_set_timeout_rejects_bad_arguments(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    fl_future_t *f = fl_future_alloc();
    assert_fl(FL_EINVAL, fl_future_set_timeout(sys, f, 0));
    assert_fl(FL_EINVAL, fl_future_set_timeout(sys, f, -1));
    assert_fl(FL_EINVAL, fl_future_set_timeout(sys, f, FL_INFINITE));
    assert_fl(FL_EINVAL, fl_future_set_timeout(NULL, f, 10));
    assert_fl(FL_EINVAL, fl_future_set_timeout(sys, NULL, 10));
    assert_pending(f);

    fl_future_t *done = fl_future_alloc();
    assert_fl_ok(fl_future_complete(done, NULL, NULL));
    assert_fl(FL_EALREADY, fl_future_set_timeout(sys, done, 10));
    assert_fl_ok(fl_future_error(done));

    assert_fl_ok(fl_system_shutdown(sys));
    assert_fl(FL_ECLOSED, fl_future_set_timeout(sys, f, 10));
    assert_pending(f);
    fl_system_free(sys);
    fl_future_release(done);
    fl_future_release(f);
}

static void
test_shutdown_drops_a_pending_timeout_without_firing_it(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    fl_future_t *f = fl_future_alloc();
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_future_set_timeout(sys, f, 60000));
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    /* Shutdown does not wait for the deadline and never times f out; the
     * header leaves open whether f stays pending or fails with FL_ECLOSED
     * (the implementation fails it so nobody waits forever). */
    assert_true(fl_clock_now_ns() - t0 < 30 * 1000000000ull);
    if (fl_future_done(f))
        assert_fl(FL_ECLOSED, fl_future_error(f));
    else
        assert_pending(f);
    fl_future_release(f);
}

/* A wait of 0 ms polls: FL_ETIMEDOUT at once on a pending future (which
 * stays pending), the result of a complete one. 100 polls take far less
 * than one 30 us poll-then-sleep wait each would (8 ms and more): the
 * fastest of up to 10 rounds of 100, so that a round the machine's load
 * held up does not count (a wait that sleeps is slow in every round). */
static void test_wait_of_zero_ms_is_a_poll(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    uint64_t best = UINT64_MAX;
    for (int round = 0; round < 10 && best >= 4; round++) {
        uint64_t t0 = fl_clock_now_ns();
        for (int i = 0; i < 100; i++)
            assert_fl(FL_ETIMEDOUT, fl_future_wait(f, 0));
        uint64_t ms = fl_test_ms_since(t0);
        if (ms < best)
            best = ms;
    }
    fl_test_assert_elapsed("100 polls of a pending future (fastest round)",
                           best, 0, 4);
    assert_pending(f);
    assert_fl_ok(fl_future_fail(f, FL_ECANCELED, "gone"));
    assert_fl(FL_ECANCELED, fl_future_wait(f, 0));
    fl_future_release(f);

    fl_future_t *g = fl_future_alloc();
    assert_fl_ok(fl_future_complete(g, NULL, NULL));
    assert_fl_ok(fl_future_wait(g, 0));
    fl_future_release(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_cancel_fails_with_ecanceled_then_runs_the_hook_once),
        FL_TEST(test_cancel_without_hook_fails_with_ecanceled),
        FL_TEST(
            test_cancel_after_complete_returns_ealready_and_never_runs_the_hook),
        FL_TEST(test_cancel_hook_does_not_run_when_the_future_fails_otherwise),
        FL_TEST(test_set_cancel_hook_on_a_complete_future_returns_ealready),
        FL_TEST(test_set_timeout_fails_a_pending_future_with_etimedout),
        FL_TEST(test_completing_before_the_timeout_wins_and_stays_successful),
        FL_TEST(test_completing_a_future_cancels_its_timeout_timer),
        FL_TEST(test_set_timeout_rejects_bad_arguments),
        FL_TEST(test_shutdown_drops_a_pending_timeout_without_firing_it),
        FL_TEST(test_wait_of_zero_ms_is_a_poll),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
