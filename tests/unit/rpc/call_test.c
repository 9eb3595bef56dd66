/*
 * call_test.c - the four call styles (tell, closure, future, blocking),
 * timeouts (per call, next stub call, gateway), refused blocking calls on
 * runtime threads, bad arguments and method lookup. Answering calls is
 * call_answer_test.c's.
 */
#include "call_fixture.h"

/* ---- tell ---------------------------------------------------------------- */

static void test_tell_through_the_stub_runs_the_handler(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.counted = fl_test_latch_alloc(1);

    tell_count(fx.gw, 0, 0);
    assert_fl_ok(fl_rpc_last_error()); /* it could be queued */
    wait_latch(fx.st.counted);
    assert_int_equal(1, atomic_load(&fx.st.counts));

    ep_fx_end(&fx);
    fl_test_latch_free(fx.st.counted);
}

static void test_is_tell_is_true_only_for_tells(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.probed = fl_test_latch_alloc(1);

    Fltest__Empty e = FLTEST__EMPTY__INIT;
    fltest__test_gateway__probe(fl_rpc_gateway_service(fx.gw), &e, NULL, NULL);
    wait_latch(fx.st.probed);
    assert_true(atomic_load(&fx.st.probe_bits) & PROBE_TELL);
    assert_false(probe_bits(fx.gw, "ep") & PROBE_TELL);

    ep_fx_end(&fx);
    fl_test_latch_free(fx.st.probed);
}

/* ---- closure ------------------------------------------------------------- */

static void test_closure_call_delivers_the_reply(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    closure_ctx_t c = {.done = fl_test_latch_alloc(1)};

    Fltest__EchoRequest req = echo_req("closure reply", 21);
    fltest__test_gateway__echo(fl_rpc_gateway_service(fx.gw), &req,
                               echo_closure, &c);
    wait_latch(c.done);
    assert_int_equal(1, atomic_load(&c.runs));
    assert_true(c.got_reply);
    assert_string_equal("closure reply", c.text);
    assert_int_equal(21, c.n);

    fl_test_latch_free(c.done);
    ep_fx_end(&fx);
}

static void
test_closure_failure_gives_null_reply_and_exact_code_and_message(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    closure_ctx_t c = {.done = fl_test_latch_alloc(1)};

    Fltest__FailRequest req = fail_req(FL_EUSER + 5, "boom number 5");
    fltest__test_gateway__fail(fl_rpc_gateway_service(fx.gw), &req,
                               echo_closure, &c);
    wait_latch(c.done);
    assert_int_equal(1, atomic_load(&c.runs));
    assert_false(c.got_reply);
    assert_fl(FL_EUSER + 5, c.code);
    assert_string_equal("boom number 5", c.message);

    fl_test_latch_free(c.done);
    ep_fx_end(&fx);
}

static void test_closure_runs_on_the_calling_endpoints_main_thread(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    tep_t cst;
    tep_init(&cst);
    fl_rpc_endpoint_t *caller =
        tep_create_started(cli_of(fx.svc), "caller", &cst, NULL);
    closure_ctx_t c = {.done = fl_test_latch_alloc(1), .caller = caller};

    /* The call is made from caller's main thread (a run_async task). */
    call_from_t cf = {.gw = fx.gw, .c = &c};
    assert_fl_ok(fl_rpc_run_async(caller, call_from_task, &cf, NULL));
    wait_latch(c.done);
    assert_int_equal(1, atomic_load(&c.runs));
    assert_true(c.got_reply);
    assert_string_equal("from an endpoint", c.text);
    assert_true(c.on_caller);

    tep_end(caller);
    fl_test_latch_free(c.done);
    ep_fx_end(&fx);
}

static void
test_closure_call_to_a_terminated_endpoint_gets_unreachable(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fl_future_t *t = tep_close(fx.ep);
    closure_ctx_t c = {.done = fl_test_latch_alloc(1)};

    Fltest__EchoRequest req = echo_req("too late", 1);
    fltest__test_gateway__echo(fl_rpc_gateway_service(fx.gw), &req,
                               echo_closure, &c);
    wait_latch(c.done);
    assert_int_equal(1, atomic_load(&c.runs));
    assert_false(c.got_reply);
    assert_fl(FL_EUNREACHABLE, c.code);

    fl_test_latch_free(c.done);
    fl_future_release(t);
    ep_fx_end(&fx); /* closing again is fine */
}

/* ---- future and blocking ------------------------------------------------- */

static void test_future_call_completes_with_the_unpacked_reply(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    fl_future_t *f = call_echo(fx.gw, "future reply", 31);
    expect_reply_of("call", f, "future reply", 31);

    fl_future_release(f);
    ep_fx_end(&fx);
}

static void test_blocking_call_returns_the_reply(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    expect_sync_reply(fx.gw, M_ECHO, "blocking reply", 41,
                      &fltest__echo_reply__descriptor);

    ep_fx_end(&fx);
}

/* ---- timeouts ------------------------------------------------------------ */

static void
test_call_timeout_fails_with_etimedout_after_the_given_time(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.blocked = fl_test_latch_alloc(1);

    Fltest__EchoRequest req = echo_req("never answered", 1);
    uint64_t t0 = fl_clock_now_ns();
    fl_future_t *f = call_async_req(fx.gw, M_BLOCK, &req.base, 50);
    expect_timed_out(f, t0, 50);

    settle_timed_out_block(fx.gw, &fx.st, "too late");
    fl_future_release(f);
    fl_test_latch_free(fx.st.blocked);
    ep_fx_end(&fx);
}

/* Far timeouts saturate and never fire (locally a timer, over TCP the
 * connection's deadline list): a near one made after them times out
 * first, and a far call still gets its late answer. */
static void test_far_call_timeouts_never_fire(void **state)
{
    (void)state;
    const int64_t far[] = FL_TEST_FAR_MS;
    for (int i = 0; i < 2; i++) {
        ep_fx_t fx;
        ep_fx_begin(&fx, "ep", FX_START | FX_GW);
        fx.st.blocked = fl_test_latch_alloc(1);
        Fltest__EchoRequest req = echo_req("far", 1);
        fl_future_t *f = call_async_req(fx.gw, M_BLOCK, &req.base, far[i]);
        wait_latch(fx.st.blocked);
        void *far_call = fx.st.parked_call;
        fl_test_latch_free(fx.st.blocked);

        fx.st.blocked = fl_test_latch_alloc(1);
        uint64_t t0 = fl_clock_now_ns();
        fl_future_t *near = call_async_req(fx.gw, M_BLOCK, &req.base, 20);
        expect_timed_out(near, t0, 20);
        assert_false(fl_future_done(f));

        settle_timed_out_block(fx.gw, &fx.st, "near, discarded");
        fx.st.parked_call = far_call;
        tep_release_parked(&fx.st, "far, answered", 7);
        expect_reply_of("Block", f, "far, answered", 7);
        fl_future_release(f);
        fl_future_release(near);
        fl_test_latch_free(fx.st.blocked);
        ep_fx_end(&fx);
    }
}

static void test_next_timeout_applies_to_the_next_stub_call_only(void **state)
{
    (void)state;
    enum { GW_MS = 1000 }; /* far from 50 ms, even under load */
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    assert_fl_ok(fl_rpc_gateway_set_timeout(fx.gw, GW_MS));
    Fltest__EchoRequest req = echo_req("blocked", 1);
    ProtobufCService *stub = fl_rpc_gateway_service(fx.gw);

    /* With fl_rpc_next_timeout(50): times out after 50 ms, not GW_MS. */
    closure_ctx_t c1 = {.done = fl_test_latch_alloc(1)};
    fx.st.blocked = fl_test_latch_alloc(1);
    uint64_t t0 = fl_clock_now_ns();
    fl_rpc_next_timeout(50);
    fltest__test_gateway__block(stub, &req, echo_closure, &c1);
    wait_latch(c1.done);
    uint64_t el1 = ms_since(t0);
    assert_false(c1.got_reply);
    assert_fl(FL_ETIMEDOUT, c1.code);
    if (el1 < 50 || el1 >= GW_MS)
        fail_msg("first call timed out after %llu ms, want [50, %d)",
                 (unsigned long long)el1, GW_MS);
    settle_timed_out_block(fx.gw, &fx.st, "late");
    fl_test_latch_free(fx.st.blocked);

    /* The next stub call falls back to the gateway's GW_MS. */
    closure_ctx_t c2 = {.done = fl_test_latch_alloc(1)};
    fx.st.blocked = fl_test_latch_alloc(1);
    t0 = fl_clock_now_ns();
    fltest__test_gateway__block(stub, &req, echo_closure, &c2);
    wait_latch(c2.done);
    uint64_t el2 = ms_since(t0);
    assert_fl(FL_ETIMEDOUT, c2.code);
    if (el2 < GW_MS)
        fail_msg("second call timed out after %llu ms, want >= %d",
                 (unsigned long long)el2, GW_MS);
    settle_timed_out_block(fx.gw, &fx.st, "late");
    fl_test_latch_free(fx.st.blocked);

    fl_test_latch_free(c1.done);
    fl_test_latch_free(c2.done);
    ep_fx_end(&fx);
}

static void test_gateway_timeout_applies_to_calls_without_one(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.blocked = fl_test_latch_alloc(1);
    assert_fl_ok(fl_rpc_gateway_set_timeout(fx.gw, 50));

    Fltest__EchoRequest req = echo_req("blocked", 1);
    uint64_t t0 = fl_clock_now_ns();
    fl_future_t *f = call_async_req(fx.gw, M_BLOCK, &req.base, 0);
    expect_timed_out(f, t0, 50);

    settle_timed_out_block(fx.gw, &fx.st, "late");
    fl_future_release(f);
    fl_test_latch_free(fx.st.blocked);
    ep_fx_end(&fx);
}

static void
test_blocking_call_timeout_returns_etimedout_and_null_reply(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.blocked = fl_test_latch_alloc(1);

    Fltest__EchoRequest req = echo_req("blocked", 1);
    ProtobufCMessage *reply = (ProtobufCMessage *)&req; /* must become NULL */
    uint64_t t0 = fl_clock_now_ns();
    assert_fl(FL_ETIMEDOUT,
              fl_rpc_call_sync(fx.gw, M_BLOCK, &req.base, 50, &reply));
    uint64_t el = ms_since(t0);
    assert_null(reply);
    if (el < 50 || el >= 5000)
        fail_msg("timed out after %llu ms, want [50, 5000)",
                 (unsigned long long)el);

    settle_timed_out_block(fx.gw, &fx.st, "late");
    fl_test_latch_free(fx.st.blocked);
    ep_fx_end(&fx);
}

/* ---- blocking calls on runtime threads ----------------------------------- */

typedef struct sync_in_task {
    fl_rpc_gateway_t *gw;
    atomic_int rc;
    bool reply_null;
    uint64_t elapsed_ms;
    fl_test_latch_t *done;
} sync_in_task_t;

static void sync_call_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    sync_in_task_t *s = arg;
    Fltest__EchoRequest req = echo_req("from the main thread", 1);
    ProtobufCMessage *reply = (ProtobufCMessage *)&req;
    uint64_t t0 = fl_clock_now_ns();
    atomic_store(&s->rc,
                 fl_rpc_call_sync(s->gw, M_ECHO, &req.base, 2000, &reply));
    s->elapsed_ms = ms_since(t0);
    s->reply_null = reply == NULL;
    if (reply != NULL && reply != (ProtobufCMessage *)&req)
        protobuf_c_message_free_unpacked(reply, NULL);
    fl_test_latch_count_down(s->done);
}

static void
test_blocking_call_on_the_endpoints_own_thread_fails_edeadlk(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fl_rpc_gateway_t *self = NULL;
    assert_fl_ok(fl_rpc_self_gateway(fx.ep, TG, &self));

    sync_in_task_t s = {.gw = self, .done = fl_test_latch_alloc(1)};
    atomic_init(&s.rc, -1);
    assert_fl_ok(fl_rpc_run_async(fx.ep, sync_call_task, &s, NULL));
    wait_latch(s.done);
    assert_fl(FL_EDEADLK, atomic_load(&s.rc));
    assert_true(s.reply_null);
    assert_true(s.elapsed_ms < 2000); /* refused, not timed out */

    fl_rpc_gateway_free(self);
    fl_test_latch_free(s.done);
    ep_fx_end(&fx);
}

static void
test_blocking_call_on_another_endpoints_thread_fails_edeadlk(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    tep_t cst;
    tep_init(&cst);
    fl_rpc_endpoint_t *caller =
        tep_create_started(cli_of(fx.svc), "caller", &cst, NULL);

    sync_in_task_t s = {.gw = fx.gw, .done = fl_test_latch_alloc(1)};
    atomic_init(&s.rc, -1);
    assert_fl_ok(fl_rpc_run_async(caller, sync_call_task, &s, NULL));
    wait_latch(s.done);
    assert_fl(FL_EDEADLK, atomic_load(&s.rc));
    assert_true(s.reply_null);

    tep_end(caller);
    fl_test_latch_free(s.done);
    ep_fx_end(&fx);
}

/* ---- bad arguments and method lookup ------------------------------------- */

static void test_call_with_a_bad_method_index_fails_with_einval(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    Fltest__EchoRequest req = echo_req("x", 1);
    fl_future_t *f = (fl_future_t *)&req; /* must become NULL */
    assert_fl(FL_EINVAL,
              fl_rpc_call(fx.gw, M_COUNT_OF_METHODS, &req.base, 0, &f));
    assert_null(f);
    f = (fl_future_t *)&req;
    assert_fl(FL_EINVAL, fl_rpc_call(fx.gw, 1000000u, &req.base, 0, &f));
    assert_null(f);

    ep_fx_end(&fx);
}

static void
test_call_with_a_request_of_the_wrong_type_fails_with_einval(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    Fltest__FailRequest req = fail_req(FL_EUSER, "wrong type for Echo");
    fl_future_t *f = (fl_future_t *)&req;
    assert_fl(FL_EINVAL, fl_rpc_call(fx.gw, M_ECHO, &req.base, 0, &f));
    assert_null(f);

    ep_fx_end(&fx);
}

static void
test_call_to_a_method_the_endpoint_leaves_null_fails_enomethod(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_init(&fx);
    /* TestGateway without an Echo handler. */
    static Fltest__TestGateway_Service partial;
    partial = *(Fltest__TestGateway_Service *)tep_services()[0];
    partial.echo = NULL;
    static ProtobufCService *const services[1] = {&partial.base};
    fl_rpc_endpoint_opts_t o = tep_opts("partial", &fx.st, NULL);
    o.services = services;
    assert_fl_ok(fl_rpc_endpoint_create(fx.svc, &o, &fx.ep));
    tep_start(fx.ep, &fx.st);
    fx.gw = gw_to(fx.svc, fx.ep, NULL);

    assert_fl(FL_ENOMETHOD, echo_code(fx.gw));
    assert_true(probe_bits(fx.gw, "partial") & PROBE_MAIN); /* others work */

    ep_fx_end(&fx);
}

/* Echo replying with WIDE unknown fields: 2 bytes each packed, about 36
 * bytes each unpacked, so the caller's unpack of it passes the bound of
 * 8 x the packed size + 1 MiB (src/rpc/arena.h). */
#define WIDE 300000
static void wide_echo(Fltest__TestGateway_Service *svc,
                      const Fltest__EchoRequest *in,
                      Fltest__EchoReply_Closure closure, void *closure_data)
{
    (void)svc;
    (void)in;
    static ProtobufCMessageUnknownField fields[WIDE];
    for (size_t i = 0; i < WIDE; i++)
        fields[i] = (ProtobufCMessageUnknownField){
            .tag = 100,
            .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT,
            .len = 1,
            .data = (uint8_t *)"\x01"};
    Fltest__EchoReply r = FLTEST__ECHO_REPLY__INIT;
    r.base.n_unknown_fields = WIDE;
    r.base.unknown_fields = fields;
    closure(&r, closure_data);
}

static void test_reply_over_the_decode_bound_names_the_method(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_init(&fx);
    static Fltest__TestGateway_Service wide;
    wide = *(Fltest__TestGateway_Service *)tep_services()[0];
    wide.echo = wide_echo;
    static ProtobufCService *const services[1] = {&wide.base};
    fl_rpc_endpoint_opts_t o = tep_opts("wide", &fx.st, NULL);
    o.services = services;
    assert_fl_ok(fl_rpc_endpoint_create(fx.svc, &o, &fx.ep));
    tep_start(fx.ep, &fx.st);
    fx.gw = gw_to(fx.svc, fx.ep, NULL);

    fl_future_t *f = call_echo(fx.gw, "x", 1);
    assert_fl(FL_EDECODE, fl_test_future_code(f));
    /* 3 bytes a field (tag 100 takes 2), 900,000 bytes in all. */
    const char *bound = "the decoded size exceeded the bound of 8248576 "
                        "bytes (8 x the 900000-byte body + 1024 KiB)";
    char want[512];
    if (fx_remote)
        snprintf(want, sizeof want,
                 "Could not decode the reply of fltest.TestGateway.Echo from "
                 "%s: fltest.EchoReply: %s",
                 fl_rpc_endpoint_address(fx.ep), bound);
    else
        snprintf(want, sizeof want,
                 "Could not decode the reply of fltest.TestGateway.Echo: "
                 "fltest.EchoReply: %s",
                 bound);
    assert_string_equal(want, fl_future_message(f));
    fl_future_release(f);

    /* A stub's closure says the same. */
    seen_t seen = {.done = fl_test_latch_alloc(1)};
    Fltest__EchoRequest req = echo_req("x", 1);
    fltest__test_gateway__echo(fl_rpc_gateway_service(fx.gw), &req,
                               seen_closure, &seen);
    wait_latch(seen.done);
    assert_false(seen.got_reply);
    assert_fl(FL_EDECODE, seen.err);
    assert_string_equal(want, seen.msg);
    fl_test_latch_free(seen.done);

    ep_fx_end(&fx);
}

static void test_method_index_finds_methods_by_their_proto_name(void **state)
{
    (void)state;
    assert_int_equal(M_ECHO, fl_rpc_method_index(TG, "Echo"));
    assert_int_equal(M_FAIL, fl_rpc_method_index(TG, "Fail"));
    assert_int_equal(M_FROM_FUTURE, fl_rpc_method_index(TG, "FromFuture"));
    assert_int_equal(M_TWICE, fl_rpc_method_index(TG, "Twice"));
    assert_int_equal(0, fl_rpc_method_index(OTHER, "Ping"));
    assert_int_equal(-1, fl_rpc_method_index(TG, "Ping"));
    assert_int_equal(-1, fl_rpc_method_index(TG, "NoSuchMethod"));
    assert_int_equal(-1, fl_rpc_method_index(TG, ""));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_tell_through_the_stub_runs_the_handler),
        FL_TEST(test_is_tell_is_true_only_for_tells),
        FL_TEST(test_closure_call_delivers_the_reply),
        FL_TEST(
            test_closure_failure_gives_null_reply_and_exact_code_and_message),
        FL_TEST(test_closure_runs_on_the_calling_endpoints_main_thread),
        FL_TEST(test_closure_call_to_a_terminated_endpoint_gets_unreachable),
        FL_TEST(test_future_call_completes_with_the_unpacked_reply),
        FL_TEST(test_blocking_call_returns_the_reply),
        FL_TEST(test_call_timeout_fails_with_etimedout_after_the_given_time),
        FL_TEST(test_far_call_timeouts_never_fire),
        FL_TEST(test_next_timeout_applies_to_the_next_stub_call_only),
        FL_TEST(test_gateway_timeout_applies_to_calls_without_one),
        FL_TEST(test_blocking_call_timeout_returns_etimedout_and_null_reply),
        FL_TEST(test_blocking_call_on_the_endpoints_own_thread_fails_edeadlk),
        FL_TEST(test_blocking_call_on_another_endpoints_thread_fails_edeadlk),
        FL_TEST(test_call_with_a_bad_method_index_fails_with_einval),
        FL_TEST(test_call_with_a_request_of_the_wrong_type_fails_with_einval),
        FL_TEST(test_call_to_a_method_the_endpoint_leaves_null_fails_enomethod),
        FL_TEST(test_reply_over_the_decode_bound_names_the_method),
        FL_TEST(test_method_index_finds_methods_by_their_proto_name),
    };
    return FX_RUN(argc, argv, tests);
}
