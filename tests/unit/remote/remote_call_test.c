/*
 * remote_call_test.c - calls from this test process to remote_peer over
 * TCP (docs/contract.md S1, C1, C11, M7, T1): the peer reports its port and
 * addresses and stops cleanly; every call style (tell, closure, future,
 * blocking), many calls in flight, per-call and next-call timeouts.
 */
#include "peer_calls.h"

/* ---- the peer process ---------------------------------------------------- */

static void
test_peer_reports_its_port_and_addresses_and_stops_cleanly(void **state)
{
    (void)state;
    peer_t p;
    peer_spawn(&p, "0", 0);
    assert_true(p.port > 0 && p.port <= 65535);
    expect_address(p.port, "plain", p.plain);
    expect_address(p.port, "fenced", p.fenced);
    expect_address(p.port, "idle", p.idle);
    expect_address(p.port, "doomed", p.doomed);
    peer_stop(&p);

    /* SIGTERM stops it cleanly too, also with a client connected. */
    peer_spawn(&p, "0", 0);
    fl_rpc_service_t *svc = test_service(0);
    fl_rpc_gateway_t *gw = fl_test_connect(svc, p.plain, RG, NULL);
    expect_echo(gw, "before SIGTERM", 1);
    assert_int_equal(0, kill(p.pid, SIGTERM));
    peer_expect_clean_exit(&p, "SIGTERM");
    fl_rpc_gateway_free(gw);
    fl_test_service_end(svc);
}

/* ---- calls from the test to the peer --------------------------------------
 */

static void test_tell_to_the_peer_runs_its_handler(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    tell_count(fx.plain, 1);
    tell_count(fx.plain, 10);
    tell_count(fx.plain, 100);
    assert_int_equal(111, peer_wait_count(fx.plain, 111));

    fx_end(&fx);
}

static void test_closure_call_to_the_peer_delivers_the_reply(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    rg_seen_t c;
    Flremote__EchoRequest req = echo_req("closure reply", 21);
    closure_call(&c, fx.plain, M_ECHO, &req.base);
    assert_int_equal(1, c.runs);
    assert_true(c.got_reply);
    assert_fl_ok(c.code);
    assert_string_equal("closure reply", c.text);
    assert_int_equal(21, c.n);

    /* A failure: NULL reply, exact code and message. */
    rg_seen_t e;
    Flremote__FailRequest freq = fail_req(FL_EUSER + 5, "boom number 5");
    closure_call(&e, fx.plain, M_FAIL, &freq.base);
    assert_int_equal(1, e.runs);
    assert_false(e.got_reply);
    assert_fl(FL_EUSER + 5, e.code);
    assert_string_equal("boom number 5", e.message);

    rg_seen_fini(&c);
    rg_seen_fini(&e);
    fx_end(&fx);
}

typedef struct call_from {
    fl_rpc_gateway_t *gw;
    rg_seen_t *c;
} call_from_t;

static void call_from_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    call_from_t *cf = arg;
    Flremote__EchoRequest req = echo_req("from an endpoint", 91);
    rg_stub_call(fl_rpc_gateway_service(cf->gw), M_ECHO, &req.base, cf->c);
}

static void
test_closure_of_a_remote_call_runs_on_the_calling_endpoint(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    rg_seen_t c;
    rg_seen_init(&c, fx.back_ep);

    call_from_t cf = {.gw = fx.plain, .c = &c};
    assert_fl_ok(fl_rpc_run_async(fx.back_ep, call_from_task, &cf, NULL));
    closure_wait(&c);
    assert_int_equal(1, c.runs);
    assert_true(c.got_reply);
    assert_string_equal("from an endpoint", c.text);
    assert_int_equal(91, c.n);
    assert_true(c.on_caller);

    rg_seen_fini(&c);
    fx_end(&fx);
}

static void test_future_call_to_the_peer_completes_with_the_reply(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    expect_echo(fx.plain, "future reply", 31);

    /* Large request and reply (several reads and writes each). */
    char *text = text_of(3u << 20);
    expect_echo(fx.plain, text, 77);
    free(text);

    expect_size_reply(fx.plain, 2 << 20);

    fx_end(&fx);
}

static void test_blocking_call_to_the_peer_returns_the_reply(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    Flremote__EchoRequest req = echo_req("blocking reply", 41);
    ProtobufCMessage *reply = NULL;
    assert_fl_ok(fl_rpc_call_sync(fx.plain, M_ECHO, &req.base, 0, &reply));
    assert_non_null(reply);
    assert_ptr_equal(&flremote__echo_reply__descriptor, reply->descriptor);
    Flremote__EchoReply *r = (Flremote__EchoReply *)reply;
    assert_string_equal("blocking reply", r->text);
    assert_int_equal(41, r->n);
    protobuf_c_message_free_unpacked(reply, NULL);

    /* A failure leaves the reply NULL; the handler's message crosses too,
     * in fl_rpc_last_message(). */
    Flremote__FailRequest freq = fail_req(FL_EUSER + 43, "blocking failure");
    assert_fl(FL_EUSER + 43,
              fl_test_call_sync_code(fx.plain, M_FAIL, &freq.base, 0));
    assert_string_equal("blocking failure", fl_rpc_last_message());

    fx_end(&fx);
}

static void test_many_calls_in_flight_are_answered_by_correlation(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    enum { N = 64 };

    /* One call stays parked while N others overtake it. */
    Flremote__EchoRequest breq = echo_req("parked", 7);
    fl_future_t *parked = fl_test_call(fx.plain, M_BLOCK, &breq.base, 0);
    fl_future_t *fs[N];
    char texts[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(texts[i], sizeof texts[i], "call %d", i);
        Flremote__EchoRequest req = echo_req(texts[i], i);
        fs[i] = fl_test_call(fx.plain, M_ECHO, &req.base, 0);
    }
    for (int i = 0; i < N; i++) {
        expect_echo_reply(fs[i], texts[i], i);
        fl_future_release(fs[i]);
    }
    assert_false(fl_future_done(parked));
    assert_int_equal(1, peer_release(fx.plain, 7));
    expect_echo_reply(parked, "released", 7);
    fl_future_release(parked);

    fx_end(&fx);
}

/* ---- timeouts, test -> peer -----------------------------------------------
 */

static void
test_call_timeout_to_the_peer_fails_etimedout_after_the_given_time(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    /* fl_rpc_call with its own timeout. */
    Flremote__EchoRequest r1 = echo_req("never answered in time", 1);
    uint64_t t0 = fl_clock_now_ns();
    assert_fl(FL_ETIMEDOUT, fl_test_call_code(fx.plain, M_BLOCK, &r1.base,
                                              SHORT_MS, NULL, 0));
    fl_test_assert_elapsed("fl_rpc_call timeout", fl_test_ms_since(t0),
                           SHORT_MS, SHORT_MS + PROMPT_MS);

    /* fl_rpc_call_sync with its own timeout (the reply stays NULL). */
    t0 = fl_clock_now_ns();
    assert_fl(FL_ETIMEDOUT,
              fl_test_call_sync_code(fx.plain, M_BLOCK, &r1.base, SHORT_MS));
    fl_test_assert_elapsed("fl_rpc_call_sync timeout", fl_test_ms_since(t0),
                           SHORT_MS, SHORT_MS + PROMPT_MS);

    /* A call that keeps waiting, then late answers to the two that timed
     * out: they are dropped, and the connection keeps serving. */
    Flremote__EchoRequest r2 = echo_req("waits", 2);
    fl_future_t *waiting = fl_test_call(fx.plain, M_BLOCK, &r2.base, 0);
    peer_wait_parked(fx.plain, 1, 2);
    peer_wait_parked(fx.plain, 2, 1);
    assert_int_equal(2, peer_release(fx.plain, 1));
    expect_echo(fx.plain, "after late answers", 3);
    assert_false(fl_future_done(waiting));
    assert_int_equal(1, peer_release(fx.plain, 2));
    expect_echo_reply(waiting, "released", 2);
    fl_future_release(waiting);

    fx_end(&fx);
}

static void
test_next_timeout_applies_to_the_next_remote_stub_call_only(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    enum { GW_MS = 1500 };
    assert_fl_ok(fl_rpc_gateway_set_timeout(fx.plain, GW_MS));
    Flremote__EchoRequest req = echo_req("blocked", 5);

    rg_seen_t c1;
    uint64_t t0 = fl_clock_now_ns();
    fl_rpc_next_timeout(SHORT_MS);
    closure_call(&c1, fx.plain, M_BLOCK, &req.base);
    assert_false(c1.got_reply);
    assert_fl(FL_ETIMEDOUT, c1.code);
    fl_test_assert_elapsed("call after fl_rpc_next_timeout",
                           fl_test_ms_since(t0), SHORT_MS, GW_MS);

    /* The next stub call falls back to the gateway's timeout. */
    rg_seen_t c2;
    t0 = fl_clock_now_ns();
    closure_call(&c2, fx.plain, M_BLOCK, &req.base);
    assert_fl(FL_ETIMEDOUT, c2.code);
    fl_test_assert_elapsed("next call (gateway timeout)", fl_test_ms_since(t0),
                           GW_MS, GW_MS + PROMPT_MS);
    assert_int_equal(1, c1.runs);
    assert_int_equal(1, c2.runs);

    assert_fl_ok(fl_rpc_gateway_set_timeout(fx.plain, LONG_MS));
    peer_wait_parked(fx.plain, 5, 2);
    assert_int_equal(2, peer_release(fx.plain, 5));
    rg_seen_fini(&c1);
    rg_seen_fini(&c2);
    fx_end(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        REMOTE_TEST(test_peer_reports_its_port_and_addresses_and_stops_cleanly),
        REMOTE_TEST(test_tell_to_the_peer_runs_its_handler),
        REMOTE_TEST(test_closure_call_to_the_peer_delivers_the_reply),
        REMOTE_TEST(test_closure_of_a_remote_call_runs_on_the_calling_endpoint),
        REMOTE_TEST(test_future_call_to_the_peer_completes_with_the_reply),
        REMOTE_TEST(test_blocking_call_to_the_peer_returns_the_reply),
        REMOTE_TEST(test_many_calls_in_flight_are_answered_by_correlation),
        REMOTE_TEST(
            test_call_timeout_to_the_peer_fails_etimedout_after_the_given_time),
        REMOTE_TEST(
            test_next_timeout_applies_to_the_next_remote_stub_call_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
