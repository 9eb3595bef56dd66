/*
 * service_opts_test.c - the RPC service's addresses, timeouts and
 * options, the system it borrows or owns, and its shutdown seen from
 * runtime threads, calls and scheduled tasks.
 */
#include "service_fixture.h"

/* ---- addresses, timeouts, systems ---------------------------------------- */

static void
test_local_service_has_an_empty_address_and_port_minus_one(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);

    assert_string_equal("", fl_rpc_service_address(svc));
    assert_int_equal(-1, fl_rpc_service_port(svc));

    svc_end(svc);
}

static void test_service_timeout_defaults_to_10000_ms(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    assert_int_equal(FL_RPC_DEFAULT_TIMEOUT_MS, fl_rpc_service_timeout(svc));
    assert_int_equal(10000, fl_rpc_service_timeout(svc));
    svc_end(svc);

    fl_rpc_service_t *svc2 = NULL;
    assert_fl_ok(fl_rpc_service_alloc(NULL, &svc2)); /* NULL opts */
    assert_int_equal(10000, fl_rpc_service_timeout(svc2));
    svc_end(svc2);
}

static void
test_service_default_timeout_applies_to_calls_without_one(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(80);
    assert_int_equal(80, fl_rpc_service_timeout(svc));
    tep_t st;
    tep_init(&st);
    st.blocked = fl_test_latch_alloc(1);
    fl_rpc_endpoint_t *ep = tep_create_started(svc, "ep", &st, NULL);
    fl_rpc_gateway_t *gw = gw_to(svc, ep, NULL);

    Fltest__EchoRequest req = echo_req("blocked", 1);
    uint64_t t0 = fl_clock_now_ns();
    fl_future_t *f = call_async_req(gw, M_BLOCK, &req.base, 0);
    expect_timed_out(f, t0, 80);

    settle_timed_out_block(gw, &st, "late");
    fl_future_release(f);
    fl_rpc_gateway_free(gw);
    tep_end(ep);
    fl_test_latch_free(st.blocked);
    svc_end(svc);
}

static void test_service_on_a_borrowed_system_leaves_it_running(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    fl_rpc_service_opts_t o = {0};
    o.system = sys;
    svc_listen(&o);
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(&o, &svc));
    assert_ptr_equal(sys, fl_rpc_service_system(svc));
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_t *ep = tep_create_started(svc, "ep", &st, NULL);
    fl_rpc_gateway_t *gw = gw_to(svc, ep, NULL);
    expect_echo(gw, "borrowed", 1);
    fl_rpc_gateway_free(gw);
    tep_end(ep);
    svc_end(svc);

    /* The system is still ours and still works (a closed one would say
     * FL_ECLOSED). */
    fl_msg_t *m = fl_msg_alloc(1, 8);
    assert_non_null(m);
    fl_actor_ref_t nobody = {0};
    assert_fl(FL_EUNREACHABLE, fl_tell(sys, nobody, m));
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
}

static void test_service_owns_a_system_when_given_none(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    fl_system_t *sys = fl_rpc_service_system(svc);
    assert_non_null(sys);
    assert_int_equal(2, fl_system_workers(sys));
    svc_end(svc); /* shuts it down and frees it: LSan/valgrind check */
}

static int shutdown_fn(fl_rpc_service_t *svc)
{
    return fl_rpc_service_shutdown(svc);
}

static void test_shutdown_on_a_runtime_thread_fails_edeadlk(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    on_main_t m = {.fn = shutdown_fn, .done = fl_test_latch_alloc(1)};
    atomic_init(&m.rc, -1);
    assert_fl_ok(fl_rpc_run_async(fx.ep, on_main_task, &m, NULL));
    wait_latch(m.done);
    assert_fl(FL_EDEADLK, atomic_load(&m.rc));

    fl_test_latch_free(m.done);
    ep_fx_end_closed(&fx);
}

static void test_calls_after_shutdown_fail_eclosed(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    assert_fl_ok(svc_shutdown(fx.svc));

    Fltest__EchoRequest req = echo_req("after shutdown", 1);
    fl_future_t *f = (fl_future_t *)&req; /* must become NULL */
    assert_fl(FL_ECLOSED, fl_rpc_call(fx.gw, M_ECHO, &req.base, 0, &f));
    assert_null(f);
    ProtobufCMessage *reply = (ProtobufCMessage *)&req;
    assert_fl(FL_ECLOSED,
              fl_rpc_call_sync(fx.gw, M_ECHO, &req.base, 0, &reply));
    assert_null(reply);
    tell_count(fx.gw, 0, 0);
    assert_fl(FL_ECLOSED, fl_rpc_last_error());
    assert_int_equal(0, atomic_load(&fx.st.counts));

    fl_rpc_gateway_free(fx.gw);
    fl_rpc_endpoint_free(fx.ep);
    svc_free(fx.svc);
}

static void test_service_alloc_rejects_bad_options_with_einval(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = NULL;
    fl_rpc_service_opts_t o = {0};
    o.workers = 1000; /* an actor system has at most 256 */
    assert_fl(FL_EINVAL, fl_rpc_service_alloc(&o, &svc));
    assert_null(svc);
    assert_fl(FL_EINVAL, fl_rpc_service_alloc(NULL, NULL));
}

static fl_future_t *close_future_seen;

static int close_fn(fl_rpc_service_t *svc)
{
    close_future_seen = fl_rpc_service_close(svc); /* never blocks */
    return close_future_seen ? FL_OK : FL_ENOMEM;
}

static void test_service_close_from_a_main_thread_completes(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);
    fl_future_t *t = fl_rpc_endpoint_termination(fx.ep);

    on_main_t m = {.fn = close_fn, .done = fl_test_latch_alloc(1)};
    atomic_init(&m.rc, -1);
    assert_fl_ok(fl_rpc_run_async(fx.ep, on_main_task, &m, NULL));
    wait_latch(m.done);
    assert_fl_ok(atomic_load(&m.rc));
    assert_fl_ok(future_code(close_future_seen)); /* closes its caller too */
    assert_fl_ok(future_code(t));
    assert_int_equal(1, atomic_load(&fx.st.stops));

    fl_future_release(close_future_seen);
    close_future_seen = NULL;
    fl_future_release(t);
    fl_test_latch_free(m.done);
    ep_fx_end_closed(&fx);
}

static void test_shutdown_drops_pending_scheduled_tasks(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    sched_ctx_t once, periodic;
    sched_ctx_init(&once, 1);
    sched_ctx_init(&periodic, 1);
    assert_fl_ok(fl_rpc_schedule(svc, sched_task, &once, 60000, NULL));
    assert_fl_ok(fl_rpc_schedule_at_fixed_rate(svc, sched_task, &periodic,
                                               60000, 1000, NULL));

    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_rpc_service_shutdown(svc));
    uint64_t el = ms_since(t0);
    if (el >= 5000)
        fail_msg("shutdown took %llu ms", (unsigned long long)el);
    assert_int_equal(0, atomic_load(&once.runs));
    assert_int_equal(0, atomic_load(&periodic.runs));

    svc_free(svc);
    fl_test_latch_free(once.done);
    fl_test_latch_free(periodic.done);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        /* A local-only service's address; a listening one has a port. */
        FX_LOCAL_ONLY(
            test_local_service_has_an_empty_address_and_port_minus_one),
        FL_TEST(test_service_timeout_defaults_to_10000_ms),
        FL_TEST(test_service_default_timeout_applies_to_calls_without_one),
        FL_TEST(test_service_on_a_borrowed_system_leaves_it_running),
        FL_TEST(test_service_owns_a_system_when_given_none),
        FL_TEST(test_shutdown_on_a_runtime_thread_fails_edeadlk),
        FL_TEST(test_calls_after_shutdown_fail_eclosed),
        FL_TEST(test_service_alloc_rejects_bad_options_with_einval),
        FL_TEST(test_service_close_from_a_main_thread_completes),
        FL_TEST(test_shutdown_drops_pending_scheduled_tasks),
    };
    return FX_RUN(argc, argv, tests);
}
