/*
 * endpoint_test.c - the endpoint life cycle (docs/contract.md E4-E13): created,
 * started, stopped, closed, terminated; on_start/on_stop and their failures;
 * the termination future and id reuse; is_running and in_main_thread.
 */
#include "rpc_fixture.h"

/* ---- helpers ------------------------------------------------------------- */

/* A run_async task that records whether it ran on the main thread. */
typedef struct where {
    atomic_int ran;
    atomic_int main;
    fl_test_latch_t *done;
} where_t;

static void where_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)state;
    where_t *w = arg;
    atomic_store(&w->main, fl_rpc_in_main_thread(ep));
    atomic_fetch_add(&w->ran, 1);
    fl_test_latch_count_down(w->done);
}

/* Begins fx with endpoint id (flags as ep_fx_open) whose on_stop answers
 * with a pending future; returns the test's reference to that future. */
static fl_future_t *begin_with_pending_stop(ep_fx_t *fx, const char *id,
                                            unsigned flags)
{
    ep_fx_init(fx);
    fl_future_t *p = tep_pending_stop(&fx->st);
    ep_fx_open(fx, id, flags);
    return p;
}

/* Closes fx's endpoint and waits until its on_stop has run; returns the
 * close's future. */
static fl_future_t *close_into_on_stop(ep_fx_t *fx)
{
    fl_future_t *t = fl_rpc_endpoint_close(fx->ep);
    wait_latch(fx->st.stopping);
    return t;
}

/* Ends what begin_with_pending_stop began (its endpoint terminated):
 * releases p and the stopping latch, then ep_fx_end_closed. */
static void end_with_pending_stop(ep_fx_t *fx, fl_future_t *p)
{
    fl_future_release(p);
    fl_test_latch_free(fx->st.stopping);
    ep_fx_end_closed(fx);
}

/* ---- not started --------------------------------------------------------- */

static void test_call_before_start_fails_with_endpoint_not_started(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_GW);

    assert_fl(FL_ENOTSTARTED, echo_code(fx.gw));
    assert_int_equal(0, atomic_load(&fx.st.starts));

    ep_fx_end(&fx);
}

static void
test_blocking_call_before_start_returns_endpoint_not_started(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_GW);

    Fltest__EchoRequest req = echo_req("x", 1);
    ProtobufCMessage *reply = (ProtobufCMessage *)&req; /* must become NULL */
    assert_fl(FL_ENOTSTARTED,
              fl_rpc_call_sync(fx.gw, M_ECHO, &req.base, 0, &reply));
    assert_null(reply);

    ep_fx_end(&fx);
}

static void test_tell_before_start_is_dropped_and_never_handled(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_GW);

    tell_count(fx.gw, 0, 0);
    /* A call behind the tell reaches the endpoint after it (FIFO per
     * sender, also on a TCP connection): the tell has arrived before the
     * start, which does not travel the gateway's way. */
    assert_fl(FL_ENOTSTARTED, echo_code(fx.gw));
    /* Start, then a call from the same thread: it is handled after the
     * tell (FIFO per sender), so a tell that was kept would show by now. */
    tep_start(fx.ep, &fx.st);
    expect_echo(fx.gw, "after", 2);
    assert_int_equal(0, atomic_load(&fx.st.counts));

    ep_fx_end(&fx);
}

/* ---- start and stop ------------------------------------------------------ */

static void test_start_is_idempotent_and_on_start_runs_once(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_GW);

    tep_start(fx.ep, &fx.st);
    assert_fl_ok(fl_rpc_endpoint_start(fx.ep));
    assert_fl_ok(fl_rpc_endpoint_start(fx.ep));
    expect_echo(fx.gw, "started", 3); /* handled after both extra starts */
    assert_int_equal(1, atomic_load(&fx.st.starts));

    ep_fx_end(&fx);
}

static void test_stop_returns_the_endpoint_to_not_started(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    expect_echo(fx.gw, "before stop", 1);

    assert_fl_ok(fl_rpc_endpoint_stop(fx.ep));
    assert_fl(FL_ENOTSTARTED, echo_code(fx.gw));
    assert_int_equal(0, atomic_load(&fx.st.stops)); /* stop is not close */

    ep_fx_end(&fx);
}

/* Stops endpoint "ep" (opened with flags), checks that calls then fail not
 * started, starts it and checks on_start ran want_starts times in all and
 * Echo(text, n) is served. */
static void stop_then_start(unsigned flags, int want_starts, const char *text,
                            int64_t n)
{
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", flags | FX_GW);

    assert_fl_ok(fl_rpc_endpoint_stop(fx.ep));
    assert_fl(FL_ENOTSTARTED, echo_code(fx.gw));
    tep_start(fx.ep, &fx.st);
    assert_int_equal(want_starts, atomic_load(&fx.st.starts));
    expect_echo(fx.gw, text, n);

    ep_fx_end(&fx);
}

static void test_start_after_stop_runs_on_start_again(void **state)
{
    (void)state;
    stop_then_start(FX_START, 2, "again", 2);
}

static void test_stop_of_a_not_started_endpoint_is_a_no_op(void **state)
{
    (void)state;
    stop_then_start(0, 1, "ok", 1);
}

static void test_close_after_stop_terminates_without_on_stop(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    assert_fl_ok(fl_rpc_endpoint_stop(fx.ep));
    fl_future_t *t = tep_close(fx.ep); /* not started any more */
    assert_int_equal(1, atomic_load(&fx.st.starts));
    assert_int_equal(0, atomic_load(&fx.st.stops));

    fl_future_release(t);
    ep_fx_end_closed(&fx);
}

/* ---- close and termination ----------------------------------------------- */

static void test_close_twice_runs_on_stop_exactly_once(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    fl_future_t *t1 = fl_rpc_endpoint_close(fx.ep);
    fl_future_t *t2 = fl_rpc_endpoint_close(fx.ep);
    assert_fl_ok(future_code(t1));
    assert_fl_ok(future_code(t2));
    fl_future_t *t3 = tep_close(fx.ep); /* after termination */
    assert_int_equal(1, atomic_load(&fx.st.stops));

    fl_future_release(t1);
    fl_future_release(t2);
    fl_future_release(t3);
    ep_fx_end_closed(&fx);
}

static void
test_close_during_a_pending_on_stop_does_not_run_it_again(void **state)
{
    (void)state;
    ep_fx_t fx;
    fl_future_t *p = begin_with_pending_stop(&fx, "ep", FX_START | FX_GW);

    fl_future_t *t1 = close_into_on_stop(&fx);
    fl_future_t *t2 = fl_rpc_endpoint_close(fx.ep);
    expect_echo(fx.gw, "handled after the second close", 1);
    assert_int_equal(1, atomic_load(&fx.st.stops));
    assert_false(fl_future_done(t2));

    assert_fl_ok(fl_future_complete(p, NULL, NULL));
    assert_fl_ok(future_code(t1));
    assert_fl_ok(future_code(t2));
    assert_int_equal(1, atomic_load(&fx.st.stops));

    fl_future_release(t1);
    fl_future_release(t2);
    end_with_pending_stop(&fx, p);
}

static void test_on_stop_runs_on_the_main_thread_while_running(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    tep_end(fx.ep);
    assert_int_equal(1, atomic_load(&fx.st.stops));
    assert_true(atomic_load(&fx.st.stop_main));
    assert_true(atomic_load(&fx.st.stop_running));
    svc_end(fx.svc);
}

static void test_termination_future_is_pending_until_close(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    fl_future_t *t = fl_rpc_endpoint_termination(fx.ep);
    assert_non_null(t);
    expect_echo(fx.gw, "x", 1);
    assert_false(fl_future_done(t));
    fl_future_t *c = fl_rpc_endpoint_close(fx.ep);
    assert_fl_ok(future_code(t));
    assert_fl_ok(future_code(c));

    fl_future_release(t);
    fl_future_release(c);
    ep_fx_end_closed(&fx);
}

static void
test_endpoint_serves_calls_until_the_on_stop_future_completes(void **state)
{
    (void)state;
    ep_fx_t fx;
    fl_future_t *p = begin_with_pending_stop(&fx, "ep", FX_START | FX_GW);

    fl_future_t *t = close_into_on_stop(&fx);
    expect_echo(fx.gw, "still serving", 1);
    expect_echo(fx.gw, "still serving", 2);
    assert_false(fl_future_done(t));

    assert_fl_ok(fl_future_complete(p, NULL, NULL));
    assert_fl_ok(future_code(t));
    assert_int_equal(1, atomic_load(&fx.st.stops));

    fl_future_release(t);
    end_with_pending_stop(&fx, p);
}

static void
test_calls_queued_when_on_stop_future_completes_fail_unreachable(void **state)
{
    (void)state;
    ep_fx_t fx;
    fl_future_t *p = begin_with_pending_stop(&fx, "ep", FX_START | FX_GW);

    fl_future_t *t = close_into_on_stop(&fx);

    /* Hold the main thread, queue a call behind it, then let on_stop's
     * future complete: the queued call must not be served. */
    hold_t h = {fl_test_latch_alloc(1), fl_test_latch_alloc(1)};
    assert_fl_ok(fl_rpc_run_async(fx.ep, hold_task, &h, NULL));
    wait_latch(h.entered);
    fl_future_t *queued = call_echo(fx.gw, "queued", 1);
    assert_fl_ok(fl_future_complete(p, NULL, NULL));
    fl_test_latch_count_down(h.gate);

    assert_fl_ok(future_code(t));
    assert_fl(FL_EUNREACHABLE, future_code(queued));

    fl_future_release(queued);
    fl_future_release(t);
    fl_test_latch_free(h.entered);
    fl_test_latch_free(h.gate);
    end_with_pending_stop(&fx, p);
}

static void test_calls_after_termination_fail_unreachable(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    fl_future_t *t = tep_close(fx.ep);

    assert_fl(FL_EUNREACHABLE, echo_code(fx.gw));
    Fltest__EchoRequest req = echo_req("late", 1);
    ProtobufCMessage *reply = NULL;
    assert_fl(FL_EUNREACHABLE,
              fl_rpc_call_sync(fx.gw, M_ECHO, &req.base, 0, &reply));
    assert_null(reply);

    fl_future_release(t);
    ep_fx_end_closed(&fx);
}

static void test_tell_after_termination_reports_unreachable(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    fl_future_t *t = tep_close(fx.ep);
    tell_count(fx.gw, 0, 0);
    if (fx_remote) {
        /* Over a network the tell is only queued; the serving side drops
         * it (contract E12). A call behind it on the connection fails, and
         * by then the tell has been dropped. */
        assert_fl(FL_OK, fl_rpc_last_error());
        assert_fl(FL_EUNREACHABLE, echo_code(fx.gw));
    } else {
        assert_fl(FL_EUNREACHABLE, fl_rpc_last_error());
    }
    assert_int_equal(0, atomic_load(&fx.st.counts));

    fl_future_release(t);
    ep_fx_end_closed(&fx);
}

static void
test_start_and_stop_after_termination_return_unreachable(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    fl_future_t *t = tep_close(fx.ep);
    assert_fl(FL_EUNREACHABLE, fl_rpc_endpoint_start(fx.ep));
    assert_fl(FL_EUNREACHABLE, fl_rpc_endpoint_stop(fx.ep));
    assert_int_equal(1, atomic_load(&fx.st.starts));

    fl_future_release(t);
    ep_fx_end_closed(&fx);
}

typedef struct reuse_ctx {
    fl_rpc_service_t *svc;
    tep_t *st2;
    atomic_int lookup_rc;
    atomic_int create_rc;
    fl_rpc_endpoint_t *created;
    fl_test_latch_t *done;
} reuse_ctx_t;

static void reuse_in_callback(fl_future_t *f, void *arg)
{
    (void)f;
    reuse_ctx_t *c = arg;
    fl_rpc_endpoint_t *found = NULL;
    atomic_store(&c->lookup_rc, fl_rpc_service_lookup(c->svc, "same", &found));
    fl_rpc_endpoint_opts_t o = tep_opts("same", c->st2, NULL);
    atomic_store(&c->create_rc,
                 fl_rpc_endpoint_create(c->svc, &o, &c->created));
    fl_test_latch_count_down(c->done);
}

static void test_termination_future_completes_after_the_id_is_free(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_init(&fx);
    tep_t st2;
    tep_init(&st2);
    ep_fx_open(&fx, "same", FX_START);

    reuse_ctx_t c = {.svc = fx.svc, .st2 = &st2};
    atomic_init(&c.lookup_rc, -1);
    atomic_init(&c.create_rc, -1);
    c.done = fl_test_latch_alloc(1);
    fl_future_t *t = fl_rpc_endpoint_termination(fx.ep);
    assert_fl_ok(fl_future_on_complete(t, reuse_in_callback, &c));
    fl_future_t *t2 = fl_rpc_endpoint_close(fx.ep);
    wait_latch(c.done);

    assert_fl(FL_ENOENT, atomic_load(&c.lookup_rc));
    assert_fl_ok(atomic_load(&c.create_rc));
    assert_non_null(c.created);
    assert_fl_ok(future_code(t));
    assert_string_equal("same", fl_rpc_endpoint_id(c.created));

    tep_start(c.created, &st2);
    fl_rpc_gateway_t *gw = gw_to(fx.svc, c.created, NULL);
    expect_echo(gw, "new one", 5);
    fl_rpc_gateway_free(gw);
    tep_end(c.created);

    fl_future_release(t);
    fl_future_release(t2);
    fl_test_latch_free(c.done);
    ep_fx_end_closed(&fx);
}

static void test_duplicate_live_id_fails_with_eexist(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_init(&fx);
    tep_t st2;
    tep_init(&st2);
    ep_fx_open(&fx, "dup", 0);

    fl_rpc_endpoint_opts_t o = tep_opts("dup", &st2, NULL);
    fl_rpc_endpoint_t *ep2 = NULL;
    assert_fl(FL_EEXIST, fl_rpc_endpoint_create(fx.svc, &o, &ep2));
    tep_start(fx.ep, &fx.st);
    assert_fl(FL_EEXIST, fl_rpc_endpoint_create(fx.svc, &o, &ep2));

    ep_fx_end(&fx);
}

static void test_id_stays_taken_while_on_stop_future_is_pending(void **state)
{
    (void)state;
    ep_fx_t fx;
    tep_t st2;
    tep_init(&st2);
    fl_future_t *p = begin_with_pending_stop(&fx, "busy", FX_START);

    fl_future_t *t = close_into_on_stop(&fx);
    fl_rpc_endpoint_opts_t o = tep_opts("busy", &st2, NULL);
    fl_rpc_endpoint_t *ep2 = NULL;
    assert_fl(FL_EEXIST, fl_rpc_endpoint_create(fx.svc, &o, &ep2));

    assert_fl_ok(fl_future_complete(p, NULL, NULL));
    assert_fl_ok(future_code(t));

    fl_future_release(t);
    end_with_pending_stop(&fx, p);
}

static void test_id_is_reusable_after_termination(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st, st2;
    tep_init(&st);
    tep_init(&st2);
    fl_rpc_endpoint_t *ep = tep_create_started(svc, "again", &st, NULL);
    tep_end(ep);

    fl_rpc_endpoint_t *ep2 = tep_create_started(svc, "again", &st2, NULL);
    fl_rpc_gateway_t *gw = gw_to(svc, ep2, NULL);
    expect_echo(gw, "second life", 2);
    assert_int_equal(1, atomic_load(&st2.starts));

    fl_rpc_gateway_free(gw);
    tep_end(ep2);
    svc_end(svc);
}

static void
test_gateway_to_a_terminated_endpoint_does_not_reach_its_successor(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st, st2;
    tep_init(&st);
    tep_init(&st2);
    fl_rpc_endpoint_t *ep = tep_create_started(svc, "succ", &st, NULL);
    fl_rpc_gateway_t *old = gw_to(svc, ep, NULL);
    tep_end(ep);

    fl_rpc_endpoint_t *ep2 = tep_create_started(svc, "succ", &st2, NULL);
    assert_fl(FL_EUNREACHABLE, echo_code(old));
    fl_rpc_gateway_t *gw = gw_to(svc, ep2, NULL);
    expect_echo(gw, "new", 1);

    fl_rpc_gateway_free(gw);
    fl_rpc_gateway_free(old);
    tep_end(ep2);
    svc_end(svc);
}

static void
test_close_of_a_never_started_endpoint_terminates_without_on_stop(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "idle", 0);

    fl_future_t *t = tep_close(fx.ep);
    assert_int_equal(0, atomic_load(&fx.st.starts));
    assert_int_equal(0, atomic_load(&fx.st.stops));
    fl_rpc_endpoint_t *found = NULL;
    assert_fl(FL_ENOENT, fl_rpc_service_lookup(fx.svc, "idle", &found));

    fl_future_release(t);
    ep_fx_end_closed(&fx);
}

/* Begins fx with endpoint "badstart" whose on_start returns code, starts it
 * and checks that its termination future fails with code; returns that
 * future (the test releases it and ends with svc_end_any). */
static fl_future_t *start_failing(ep_fx_t *fx, int code)
{
    ep_fx_init(fx);
    fx->st.start_rc = code;
    ep_fx_open(fx, "badstart", 0);
    fl_future_t *t = fl_rpc_endpoint_termination(fx->ep);

    assert_fl_ok(fl_rpc_endpoint_start(fx->ep));
    assert_fl(code, future_code(t));
    return t;
}

static void test_on_start_failure_fails_termination_with_its_code(void **state)
{
    (void)state;
    ep_fx_t fx;
    fl_future_t *t = start_failing(&fx, FL_EUSER + 11);

    const char *prefix = "Could not start RpcEndpoint badstart";
    if (strncmp(fl_future_message(t), prefix, strlen(prefix)) != 0)
        fail_msg("message \"%s\" does not start with \"%s\"",
                 fl_future_message(t), prefix);
    assert_int_equal(1, atomic_load(&fx.st.starts));

    fl_future_release(t);
    fl_rpc_endpoint_free(fx.ep);
    svc_end_any(fx.svc);
}

static void test_on_start_failure_does_not_run_on_stop(void **state)
{
    (void)state;
    ep_fx_t fx;
    fl_future_t *t = start_failing(&fx, FL_EUSER + 12);

    fl_future_t *c = fl_rpc_endpoint_close(fx.ep); /* no second result */
    assert_fl(FL_EUSER + 12, future_code(c));
    assert_int_equal(0, atomic_load(&fx.st.stops));

    fl_future_release(c);
    fl_future_release(t);
    fl_rpc_endpoint_free(fx.ep);
    svc_end_any(fx.svc);
}

static void test_termination_future_carries_on_stop_failure(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_init(&fx);
    fl_future_t *p = fl_future_alloc();
    assert_fl_ok(fl_future_fail(p, FL_EUSER + 13, "on_stop failed %d", 13));
    fx.st.stop_future = p; /* the endpoint takes our only reference */
    ep_fx_open(&fx, "badstop", FX_START);

    fl_future_t *t = fl_rpc_endpoint_close(fx.ep);
    assert_fl(FL_EUSER + 13, future_code(t));
    assert_string_equal("on_stop failed 13", fl_future_message(t));

    fl_future_release(t);
    fl_rpc_endpoint_free(fx.ep);
    svc_end_any(fx.svc);
}

static void test_termination_future_carries_a_late_on_stop_failure(void **state)
{
    (void)state;
    ep_fx_t fx;
    fl_future_t *p = begin_with_pending_stop(&fx, "latestop", FX_START);

    fl_future_t *t = close_into_on_stop(&fx);
    assert_fl_ok(fl_future_fail(p, FL_EUSER + 14, "late failure"));
    assert_fl(FL_EUSER + 14, future_code(t));
    assert_string_equal("late failure", fl_future_message(t));

    fl_future_release(t);
    fl_future_release(p);
    fl_test_latch_free(fx.st.stopping);
    fl_rpc_endpoint_free(fx.ep);
    svc_end_any(fx.svc);
}

/* ---- is_running and in_main_thread --------------------------------------- */

static void test_is_running_is_true_in_handlers_and_false_outside(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "run", FX_START | FX_GW);

    assert_true(probe_bits(fx.gw, "run") & PROBE_RUNNING);
    assert_true(atomic_load(&fx.st.start_running));
    assert_false(fl_rpc_endpoint_is_running(fx.ep));

    ep_fx_end(&fx);
}

static void test_is_running_is_false_once_on_stop_returned(void **state)
{
    (void)state;
    ep_fx_t fx;
    fl_future_t *p = begin_with_pending_stop(&fx, "run", FX_START | FX_GW);

    fl_future_t *t = close_into_on_stop(&fx);
    assert_true(atomic_load(&fx.st.stop_running)); /* during on_stop */
    int bits = probe_bits(fx.gw, "run");           /* still served ... */
    assert_false(bits & PROBE_RUNNING);            /* ... but not running */
    assert_true(bits & PROBE_MAIN);

    assert_fl_ok(fl_future_complete(p, NULL, NULL));
    assert_fl_ok(future_code(t));

    fl_future_release(t);
    end_with_pending_stop(&fx, p);
}

static void
test_in_main_thread_is_true_in_handlers_tasks_and_hooks(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "main", FX_START | FX_GW);

    assert_true(atomic_load(&fx.st.start_main));
    assert_true(probe_bits(fx.gw, "main") & PROBE_MAIN);
    where_t w = {.done = fl_test_latch_alloc(1)};
    assert_fl_ok(fl_rpc_run_async(fx.ep, where_task, &w, NULL));
    wait_latch(w.done);
    assert_int_equal(1, atomic_load(&w.ran));
    assert_true(atomic_load(&w.main));

    fl_rpc_gateway_free(fx.gw);
    tep_end(fx.ep);
    assert_true(atomic_load(&fx.st.stop_main));
    fl_test_latch_free(w.done);
    svc_end(fx.svc);
}

static void test_in_main_thread_is_false_on_the_test_thread(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "main", FX_START);

    assert_false(fl_rpc_in_main_thread(fx.ep));

    ep_fx_end(&fx);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_call_before_start_fails_with_endpoint_not_started),
        FL_TEST(test_blocking_call_before_start_returns_endpoint_not_started),
        FL_TEST(test_tell_before_start_is_dropped_and_never_handled),
        FL_TEST(test_start_is_idempotent_and_on_start_runs_once),
        FL_TEST(test_stop_returns_the_endpoint_to_not_started),
        FL_TEST(test_start_after_stop_runs_on_start_again),
        FL_TEST(test_stop_of_a_not_started_endpoint_is_a_no_op),
        FL_TEST(test_close_after_stop_terminates_without_on_stop),
        FL_TEST(test_close_twice_runs_on_stop_exactly_once),
        FL_TEST(test_close_during_a_pending_on_stop_does_not_run_it_again),
        FL_TEST(test_on_stop_runs_on_the_main_thread_while_running),
        FL_TEST(test_termination_future_is_pending_until_close),
        FL_TEST(test_endpoint_serves_calls_until_the_on_stop_future_completes),
        FL_TEST(
            test_calls_queued_when_on_stop_future_completes_fail_unreachable),
        FL_TEST(test_calls_after_termination_fail_unreachable),
        FL_TEST(test_tell_after_termination_reports_unreachable),
        FL_TEST(test_start_and_stop_after_termination_return_unreachable),
        FL_TEST(test_termination_future_completes_after_the_id_is_free),
        FL_TEST(test_duplicate_live_id_fails_with_eexist),
        FL_TEST(test_id_stays_taken_while_on_stop_future_is_pending),
        FL_TEST(test_id_is_reusable_after_termination),
        FL_TEST(
            test_gateway_to_a_terminated_endpoint_does_not_reach_its_successor),
        FL_TEST(
            test_close_of_a_never_started_endpoint_terminates_without_on_stop),
        FL_TEST(test_on_start_failure_fails_termination_with_its_code),
        FL_TEST(test_on_start_failure_does_not_run_on_stop),
        FL_TEST(test_termination_future_carries_on_stop_failure),
        FL_TEST(test_termination_future_carries_a_late_on_stop_failure),
        FL_TEST(test_is_running_is_true_in_handlers_and_false_outside),
        FL_TEST(test_is_running_is_false_once_on_stop_returned),
        FL_TEST(test_in_main_thread_is_true_in_handlers_tasks_and_hooks),
        FL_TEST(test_in_main_thread_is_false_on_the_test_thread),
    };
    return FX_RUN(argc, argv, tests);
}
