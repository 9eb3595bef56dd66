/*
 * main_thread_test.c - the endpoint's main thread: calls, run_async,
 * call_async, scheduled tasks and future callbacks run serially and FIFO per
 * sender; delays, timeouts and results of the main-thread executors; what
 * happens to their arguments when they cannot run.
 */
#include "rpc_fixture.h"

#include <pthread.h>

#ifdef FL_SANITIZE
#define SCALE 4
#else
#define SCALE 1
#endif

#define CALLERS 3
#define TELLS_PER_CALLER (2000 / SCALE)
#define RUN_ASYNCS 10000
#define CALL_ASYNC_EVERY 100
#define CALL_ASYNCS (RUN_ASYNCS / CALL_ASYNC_EVERY)
/* The test thread numbers its run_async and call_async as this sender. */
#define TEST_SENDER CALLERS

/* ---- helpers ------------------------------------------------------------- */

/* An arg that records whether its function ran or it was freed instead. */
typedef struct tracked {
    atomic_int ran;
    atomic_int freed;
    atomic_int main; /* ran on the endpoint's main thread */
    atomic_int err;  /* fl_future_error seen by a future callback */
    uint64_t ran_at_ns;
    fl_rpc_endpoint_t *ep; /* for fl_rpc_in_main_thread in callbacks */
    fl_test_latch_t *done; /* counted down when it ran or was freed */
} tracked_t;

static void tracked_init(tracked_t *t, fl_rpc_endpoint_t *ep)
{
    memset(t, 0, sizeof *t);
    t->ep = ep;
    t->done = fl_test_latch_alloc(1);
}

static void tracked_fini(tracked_t *t)
{
    fl_test_latch_free(t->done);
}

static void tracked_free(void *arg)
{
    tracked_t *t = arg;
    atomic_fetch_add(&t->freed, 1);
    fl_test_latch_count_down(t->done);
}

static void tracked_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)state;
    tracked_t *t = arg;
    FL_RPC_ASSERT_MAIN_THREAD(ep);
    t->ran_at_ns = fl_clock_now_ns();
    atomic_store(&t->main, fl_rpc_in_main_thread(ep));
    atomic_fetch_add(&t->ran, 1);
    fl_test_latch_count_down(t->done);
}

static int tracked_callable(fl_rpc_endpoint_t *ep, void *state, void *arg,
                            void **out, fl_free_cb *out_free)
{
    (void)state;
    tracked_t *t = arg;
    atomic_store(&t->main, fl_rpc_in_main_thread(ep));
    atomic_fetch_add(&t->ran, 1);
    fl_test_latch_count_down(t->done);
    *out = NULL;
    *out_free = NULL;
    return FL_OK;
}

static void tracked_future_cb(fl_future_t *f, void *arg)
{
    tracked_t *t = arg;
    atomic_store(&t->err, fl_future_error(f));
    atomic_store(&t->main, fl_rpc_in_main_thread(t->ep));
    atomic_fetch_add(&t->ran, 1);
    fl_test_latch_count_down(t->done);
}

/* Waits until t's function has run, checks it ran once on the main
 * thread. */
static void tracked_expect_ran(tracked_t *t)
{
    wait_latch(t->done);
    assert_int_equal(1, atomic_load(&t->ran));
    assert_true(atomic_load(&t->main));
}

/* Waits until t was freed, checks it was freed once and never ran. */
static void tracked_expect_dropped(tracked_t *t)
{
    wait_latch(t->done);
    assert_int_equal(1, atomic_load(&t->freed));
    assert_int_equal(0, atomic_load(&t->ran));
}

/* The calling thread's last error and message must be err and msg. */
static void expect_last(int err, const char *msg)
{
    assert_fl(err, fl_rpc_last_error());
    assert_string_equal(msg, fl_rpc_last_message());
}

/* A callable whose result is a heap int (arg) or the error code in arg. */
static int int_callable(fl_rpc_endpoint_t *ep, void *state, void *arg,
                        void **out, fl_free_cb *out_free)
{
    (void)ep;
    (void)state;
    int v = (int)(intptr_t)arg;
    if (v >= FL_EUSER)
        return v;
    int *p = malloc(sizeof *p);
    if (!p)
        return FL_ENOMEM;
    *p = v;
    *out = p;
    *out_free = free;
    return FL_OK;
}

/* A barrier through the main thread: returns once everything queued to ep
 * from this thread before it has been handled. */
static void main_thread_barrier(fl_rpc_endpoint_t *ep)
{
    tracked_t t;
    tracked_init(&t, ep);
    assert_fl_ok(fl_rpc_run_async(ep, tracked_task, &t, tracked_free));
    wait_latch(t.done);
    assert_int_equal(1, atomic_load(&t.ran));
    tracked_fini(&t);
}

/* A case's endpoint "ep" (ep_fx_t) and its tracked arg. */
typedef struct tcase {
    ep_fx_t fx;
    tracked_t t;
    fl_future_t *term; /* tcase_close's termination future */
} tcase_t;

/* ep_fx_begin(&c->fx, "ep", flags), then the tracked arg for its
 * endpoint. */
static void tcase_begin(tcase_t *c, unsigned flags)
{
    ep_fx_begin(&c->fx, "ep", flags);
    tracked_init(&c->t, c->fx.ep);
    c->term = NULL;
}

/* Closes the endpoint now (its termination future kept for tcase_end). */
static void tcase_close(tcase_t *c)
{
    c->term = tep_close(c->fx.ep);
}

/* Ends the endpoint (already ended if c->fx.ep is NULL, closed if
 * tcase_close ran) and the service, then the tracked arg. */
static void tcase_end(tcase_t *c)
{
    if (c->fx.ep == NULL) {
        svc_end(c->fx.svc);
    } else if (c->term != NULL) {
        fl_future_release(c->term);
        ep_fx_end_closed(&c->fx);
    } else {
        ep_fx_end(&c->fx);
    }
    tracked_fini(&c->t);
}

/* rc is FL_EINVAL with the message msg, and the arg has been freed
 * `freed` times. */
static void expect_einval(tracked_t *t, int rc, int freed, const char *msg)
{
    assert_fl(FL_EINVAL, rc);
    assert_int_equal(freed, atomic_load(&t->freed));
    expect_last(FL_EINVAL, msg);
}

/* ---- serial execution ---------------------------------------------------- */

/* A run_async task / callable numbered by the test thread. */
static void serial_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    tep_t *st = state;
    serial_enter(st);
    serial_check_order(st, TEST_SENDER, (int64_t)(intptr_t)arg);
    serial_leave(st);
    fl_test_latch_count_down(st->counted);
}

static int serial_callable(fl_rpc_endpoint_t *ep, void *state, void *arg,
                           void **out, fl_free_cb *out_free)
{
    serial_task(ep, state, arg);
    *out = NULL;
    *out_free = NULL;
    return FL_OK;
}

typedef struct caller {
    fl_rpc_gateway_t *gw;
    int sender;
    fl_test_latch_t *go;
    atomic_int errors; /* tells that could not be queued */
} caller_t;

static void *caller_main(void *arg)
{
    caller_t *c = arg;
    (void)fl_test_latch_wait(c->go, WAIT_MS);
    for (int64_t i = 0; i < TELLS_PER_CALLER; i++) {
        tell_count(c->gw, c->sender, i);
        if (fl_rpc_last_error() != FL_OK)
            atomic_fetch_add(&c->errors, 1);
    }
    return NULL;
}

static void test_calls_and_tasks_run_serially_and_fifo_per_sender(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_init(&fx);
    const uint64_t total =
        (uint64_t)CALLERS * TELLS_PER_CALLER + RUN_ASYNCS + CALL_ASYNCS;
    fx.st.counted = fl_test_latch_alloc(total);
    ep_fx_open(&fx, "serial", FX_START);

    fl_test_latch_t *go = fl_test_latch_alloc(1);
    caller_t callers[CALLERS];
    pthread_t threads[CALLERS];
    for (int i = 0; i < CALLERS; i++) {
        callers[i].gw = gw_to(fx.svc, fx.ep, NULL);
        callers[i].sender = i;
        callers[i].go = go;
        atomic_init(&callers[i].errors, 0);
        assert_int_equal(
            0, pthread_create(&threads[i], NULL, caller_main, &callers[i]));
    }
    fl_test_latch_count_down(go);

    fl_future_t *futures[CALL_ASYNCS];
    int64_t seq = 0;
    for (int i = 0; i < RUN_ASYNCS; i++) {
        assert_fl_ok(fl_rpc_run_async(fx.ep, serial_task,
                                      (void *)(intptr_t)seq++, NULL));
        if ((i + 1) % CALL_ASYNC_EVERY == 0) {
            fl_future_t **f = &futures[i / CALL_ASYNC_EVERY];
            assert_fl_ok(fl_rpc_call_async(fx.ep, serial_callable,
                                           (void *)(intptr_t)seq++, NULL,
                                           WAIT_MS, f));
        }
    }
    for (int i = 0; i < CALLERS; i++)
        assert_int_equal(0, pthread_join(threads[i], NULL));
    wait_latch(fx.st.counted);

    for (int i = 0; i < CALL_ASYNCS; i++) {
        assert_fl_ok(future_code(futures[i]));
        fl_future_release(futures[i]);
    }
    for (int i = 0; i < CALLERS; i++) {
        assert_int_equal(0, atomic_load(&callers[i].errors));
        fl_rpc_gateway_free(callers[i].gw);
    }
    assert_int_equal(0, atomic_load(&fx.st.overlaps));
    assert_int_equal(0, atomic_load(&fx.st.order_errors));
    assert_int_equal((long)total, fx.st.serial_count);
    assert_int_equal((int)((uint64_t)CALLERS * TELLS_PER_CALLER),
                     atomic_load(&fx.st.counts));

    ep_fx_end(&fx);
    fl_test_latch_free(go);
    fl_test_latch_free(fx.st.counted);
}

/* ---- run_async ----------------------------------------------------------- */

static void test_run_async_runs_the_task_on_the_main_thread(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, FX_START);
    assert_fl_ok(fl_rpc_run_async(c.fx.ep, tracked_task, &c.t, tracked_free));
    tracked_expect_ran(&c.t);

    tep_end(c.fx.ep);
    assert_int_equal(0, atomic_load(&c.t.freed)); /* it ran: not freed */
    c.fx.ep = NULL;
    tcase_end(&c);
}

static void test_run_async_before_start_is_dropped_and_frees_arg(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, 0);
    assert_fl_ok(fl_rpc_run_async(c.fx.ep, tracked_task, &c.t, tracked_free));
    wait_latch(c.t.done);
    assert_int_equal(1, atomic_load(&c.t.freed));

    tep_start(c.fx.ep, &c.fx.st);
    main_thread_barrier(c.fx.ep); /* a kept task would have run by now */
    assert_int_equal(0, atomic_load(&c.t.ran));
    assert_int_equal(1, atomic_load(&c.t.freed));

    tcase_end(&c);
}

static void
test_run_async_after_termination_fails_unreachable_and_frees_arg(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, FX_START);
    tcase_close(&c);
    assert_fl(FL_EUNREACHABLE,
              fl_rpc_run_async(c.fx.ep, tracked_task, &c.t, tracked_free));
    expect_last(FL_EUNREACHABLE,
                "recipient unreachable: rpc endpoint 'ep' has terminated");
    tracked_expect_dropped(&c.t);

    tcase_end(&c);
}

static void
test_run_async_with_bad_arguments_fails_einval_and_frees_arg(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, FX_START);
    expect_einval(&c.t, fl_rpc_run_async(c.fx.ep, NULL, &c.t, tracked_free), 1,
                  "fn must not be NULL");
    expect_einval(&c.t,
                  fl_rpc_run_async(NULL, tracked_task, &c.t, tracked_free), 2,
                  "ep must not be NULL");
    assert_int_equal(0, atomic_load(&c.t.ran));

    tcase_end(&c);
}

/* ---- schedule_run_async -------------------------------------------------- */

static void test_schedule_run_async_runs_no_earlier_than_the_delay(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, FX_START);
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_rpc_schedule_run_async(c.fx.ep, tracked_task, &c.t,
                                           tracked_free, 100, NULL));
    tracked_expect_ran(&c.t);
    uint64_t waited = (c.t.ran_at_ns - t0) / NS_PER_MS;
    if (waited < 100)
        fail_msg("ran after %llu ms, want >= 100", (unsigned long long)waited);

    tcase_end(&c);
}

static void test_schedule_run_async_with_zero_delay_runs(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, FX_START);
    assert_fl_ok(fl_rpc_schedule_run_async(c.fx.ep, tracked_task, &c.t,
                                           tracked_free, 0, NULL));
    tracked_expect_ran(&c.t);

    tcase_end(&c);
}

static void
test_schedule_run_async_negative_delay_fails_einval_and_frees_arg(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, FX_START);
    expect_einval(&c.t,
                  fl_rpc_schedule_run_async(c.fx.ep, tracked_task, &c.t,
                                            tracked_free, -1, NULL),
                  1, "delay_ms must be >= 0 (got -1)");
    main_thread_barrier(c.fx.ep);
    assert_int_equal(0, atomic_load(&c.t.ran));

    tcase_end(&c);
}

static void
test_schedule_run_async_before_start_is_dropped_and_frees_arg(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, 0);
    assert_fl_ok(fl_rpc_schedule_run_async(c.fx.ep, tracked_task, &c.t,
                                           tracked_free, 10, NULL));
    tracked_expect_dropped(&c.t);

    tcase_end(&c);
}

/* A delay changes nothing: refused at once, as fl_rpc_run_async is (rpc.h
 * says they behave alike). */
static void
test_schedule_run_async_after_termination_fails_unreachable(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, FX_START);
    tcase_close(&c);
    assert_fl(FL_EUNREACHABLE,
              fl_rpc_schedule_run_async(c.fx.ep, tracked_task, &c.t,
                                        tracked_free, 10, NULL));
    expect_last(FL_EUNREACHABLE,
                "recipient unreachable: rpc endpoint 'ep' has terminated");
    tracked_expect_dropped(&c.t);

    tcase_end(&c);
}

/* ---- call_async ---------------------------------------------------------- */

static void test_call_async_completes_with_the_callables_value(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_call_async(fx.ep, int_callable, (void *)(intptr_t)42,
                                   NULL, 5000, &f));
    assert_fl_ok(future_code(f));
    int *v = fl_future_value(f);
    assert_non_null(v);
    assert_int_equal(42, *v);
    fl_future_release(f); /* frees the value with its out_free */

    ep_fx_end(&fx);
}

static void test_call_async_runs_the_callable_on_the_main_thread(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, FX_START);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_call_async(c.fx.ep, tracked_callable, &c.t,
                                   tracked_free, 5000, &f));
    assert_fl_ok(future_code(f));
    assert_null(fl_future_value(f));
    assert_int_equal(1, atomic_load(&c.t.ran));
    assert_true(atomic_load(&c.t.main));

    fl_future_release(f);
    tcase_end(&c);
}

static void test_call_async_fails_with_the_callables_error_code(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_call_async(
        fx.ep, int_callable, (void *)(intptr_t)(FL_EUSER + 9), NULL, 5000, &f));
    assert_fl(FL_EUSER + 9, future_code(f));
    assert_null(fl_future_value(f));

    fl_future_release(f);
    ep_fx_end(&fx);
}

static void test_call_async_times_out_behind_a_slow_task(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    hold_t h = {fl_test_latch_alloc(1), fl_test_latch_alloc(1)};
    assert_fl_ok(fl_rpc_run_async(fx.ep, hold_task, &h, NULL));
    wait_latch(h.entered);

    /* Its value, if it still runs after the timeout, must be freed by the
     * endpoint (a leak shows under ASan/valgrind). */
    fl_future_t *f = NULL;
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_rpc_call_async(fx.ep, int_callable, (void *)(intptr_t)5,
                                   NULL, 50, &f));
    expect_timed_out(f, t0, 50);

    fl_test_latch_count_down(h.gate);
    main_thread_barrier(fx.ep);
    fl_future_release(f);
    ep_fx_end(&fx);
    fl_test_latch_free(h.entered);
    fl_test_latch_free(h.gate);
}

static void
test_call_async_before_start_fails_not_started_and_frees_arg(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, 0);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_call_async(c.fx.ep, tracked_callable, &c.t,
                                   tracked_free, 5000, &f));
    assert_fl(FL_ENOTSTARTED, future_code(f));
    tracked_expect_dropped(&c.t);

    fl_future_release(f);
    tcase_end(&c);
}

static void
test_call_async_after_termination_fails_unreachable_and_frees_arg(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, FX_START);
    tcase_close(&c);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_call_async(c.fx.ep, tracked_callable, &c.t,
                                   tracked_free, 5000, &f));
    assert_fl(FL_EUNREACHABLE, future_code(f));
    tracked_expect_dropped(&c.t);

    fl_future_release(f);
    tcase_end(&c);
}

/* fl_rpc_call_async(ep, fn, &c->t, tracked_free, timeout_ms, &f) fails
 * FL_EINVAL with msg, frees the arg (the freed-th time) and sets f to
 * NULL. */
static void expect_call_async_einval(tcase_t *c, fl_rpc_endpoint_t *ep,
                                     fl_rpc_callable_cb fn, int64_t timeout_ms,
                                     int freed, const char *msg)
{
    fl_future_t *f = (fl_future_t *)&c->t; /* must become NULL */
    expect_einval(
        &c->t, fl_rpc_call_async(ep, fn, &c->t, tracked_free, timeout_ms, &f),
        freed, msg);
    assert_null(f);
}

static void
test_call_async_with_a_nonpositive_timeout_fails_einval(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, FX_START);
    /* arg is always consumed, and *out becomes NULL. */
    expect_call_async_einval(&c, c.fx.ep, tracked_callable, 0, 1,
                             "timeout_ms must be > 0 (got 0)");
    expect_call_async_einval(&c, c.fx.ep, tracked_callable, -5, 2,
                             "timeout_ms must be > 0 (got -5)");
    expect_call_async_einval(&c, c.fx.ep, NULL, 1000, 3, "fn must not be NULL");
    expect_call_async_einval(&c, NULL, tracked_callable, 1000, 4,
                             "ep must not be NULL");
    expect_einval(&c.t,
                  fl_rpc_call_async(c.fx.ep, tracked_callable, &c.t,
                                    tracked_free, 1000, NULL),
                  5, "out must not be NULL");
    main_thread_barrier(c.fx.ep);
    assert_int_equal(0, atomic_load(&c.t.ran));

    tcase_end(&c);
}

/* ---- on_complete --------------------------------------------------------- */

static void test_on_complete_runs_the_callback_on_the_main_thread(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, FX_START);
    atomic_init(&c.t.err, -1);
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(
        fl_rpc_on_complete(c.fx.ep, f, tracked_future_cb, &c.t, tracked_free));
    assert_fl_ok(fl_future_fail(f, FL_EUSER + 1, "done"));
    tracked_expect_ran(&c.t);
    assert_fl(FL_EUSER + 1, atomic_load(&c.t.err));

    fl_future_release(f);
    tcase_end(&c);
}

static void
test_on_complete_of_a_completed_future_still_runs_on_main_thread(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, FX_START);
    atomic_init(&c.t.err, -1);
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    assert_fl_ok(
        fl_rpc_on_complete(c.fx.ep, f, tracked_future_cb, &c.t, tracked_free));
    tracked_expect_ran(&c.t);
    assert_fl_ok(atomic_load(&c.t.err));

    fl_future_release(f);
    tcase_end(&c);
}

static void test_on_complete_runs_whatever_the_endpoints_state(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, 0); /* not started */
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(
        fl_rpc_on_complete(c.fx.ep, f, tracked_future_cb, &c.t, tracked_free));
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    wait_latch(c.t.done);
    assert_int_equal(1, atomic_load(&c.t.ran));
    assert_int_equal(0, atomic_load(&c.t.freed));
    assert_true(atomic_load(&c.t.main));

    fl_future_release(f);
    tcase_end(&c);
}

static void
test_on_complete_after_termination_frees_arg_without_running(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, FX_START);
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(
        fl_rpc_on_complete(c.fx.ep, f, tracked_future_cb, &c.t, tracked_free));
    tcase_close(&c);
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    wait_latch(c.t.done);
    assert_int_equal(0, atomic_load(&c.t.ran));
    assert_int_equal(1, atomic_load(&c.t.freed));

    fl_future_release(f);
    tcase_end(&c);
}

static void
test_on_complete_with_bad_arguments_fails_einval_and_frees_arg(void **state)
{
    (void)state;
    tcase_t c;
    tcase_begin(&c, FX_START);
    fl_future_t *f = fl_future_alloc();
    expect_einval(
        &c.t,
        fl_rpc_on_complete(NULL, f, tracked_future_cb, &c.t, tracked_free), 1,
        "ep must not be NULL");
    expect_einval(&c.t,
                  fl_rpc_on_complete(c.fx.ep, NULL, tracked_future_cb, &c.t,
                                     tracked_free),
                  2, "f must not be NULL");
    expect_einval(&c.t,
                  fl_rpc_on_complete(c.fx.ep, f, NULL, &c.t, tracked_free), 3,
                  "cb must not be NULL");
    assert_int_equal(0, atomic_load(&c.t.ran));

    fl_future_release(f);
    tcase_end(&c);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_calls_and_tasks_run_serially_and_fifo_per_sender),
        FL_TEST(test_run_async_runs_the_task_on_the_main_thread),
        FL_TEST(test_run_async_before_start_is_dropped_and_frees_arg),
        FL_TEST(
            test_run_async_after_termination_fails_unreachable_and_frees_arg),
        FL_TEST(test_run_async_with_bad_arguments_fails_einval_and_frees_arg),
        FL_TEST(test_schedule_run_async_runs_no_earlier_than_the_delay),
        FL_TEST(test_schedule_run_async_with_zero_delay_runs),
        FL_TEST(
            test_schedule_run_async_negative_delay_fails_einval_and_frees_arg),
        FL_TEST(test_schedule_run_async_before_start_is_dropped_and_frees_arg),
        FL_TEST(test_schedule_run_async_after_termination_fails_unreachable),
        FL_TEST(test_call_async_completes_with_the_callables_value),
        FL_TEST(test_call_async_runs_the_callable_on_the_main_thread),
        FL_TEST(test_call_async_fails_with_the_callables_error_code),
        FL_TEST(test_call_async_times_out_behind_a_slow_task),
        FL_TEST(test_call_async_before_start_fails_not_started_and_frees_arg),
        FL_TEST(
            test_call_async_after_termination_fails_unreachable_and_frees_arg),
        FL_TEST(test_call_async_with_a_nonpositive_timeout_fails_einval),
        FL_TEST(test_on_complete_runs_the_callback_on_the_main_thread),
        FL_TEST(
            test_on_complete_of_a_completed_future_still_runs_on_main_thread),
        FL_TEST(test_on_complete_runs_whatever_the_endpoints_state),
        FL_TEST(test_on_complete_after_termination_frees_arg_without_running),
        FL_TEST(test_on_complete_with_bad_arguments_fails_einval_and_frees_arg),
    };
    return FX_RUN(argc, argv, tests);
}
