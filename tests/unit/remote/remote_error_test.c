/*
 * remote_error_test.c - what fails between this test process and
 * remote_peer (docs/contract.md C2, E12, F2, G2-G4, R3, R6): handler errors
 * across the wire; fenced gateways; endpoints not started and terminated;
 * handshake errors (unknown endpoint, unsupported gateway, unresolvable host,
 * refused port); frame limits in both directions.
 */
#include "peer_calls.h"

#include "remote/frame.h"
#include "rpc/gateway.h"

/* ---- errors across the wire -----------------------------------------------
 */

static void test_handler_errors_cross_the_wire_intact(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    char msg[FL_FUTURE_MESSAGE_MAX + 64];

    Flremote__FailRequest r1 = fail_req(FL_EUSER + 42, "custom failure: 42");
    fl_future_t *f = fl_test_call(fx.plain, M_FAIL, &r1.base, 0);
    assert_fl(FL_EUSER + 42, fl_test_future_code(f));
    assert_string_equal("custom failure: 42", fl_future_message(f));
    assert_null(fl_future_value(f));
    fl_future_release(f);

    /* fl_rpc_fail(code, NULL): the code's own message. */
    Flremote__FailRequest r2 = fail_req(FL_ESTATE, "");
    assert_fl(FL_ESTATE, fl_test_call_code(fx.plain, M_FAIL, &r2.base, 0, msg,
                                           sizeof msg));
    assert_string_equal(fl_strerror(FL_ESTATE), msg);

    /* A fling code that is not the transport's own. */
    Flremote__FailRequest r3 = fail_req(FL_ENOENT, "no such thing here");
    assert_fl(FL_ENOENT, fl_test_call_code(fx.plain, M_FAIL, &r3.base, 0, msg,
                                           sizeof msg));
    assert_string_equal("no such thing here", msg);

    /* A long message arrives cut as a local one would be (a future keeps
     * FL_FUTURE_MESSAGE_MAX - 1 bytes), from its start, in one ERROR. */
    enum { LONG = FL_FUTURE_MESSAGE_MAX + 300 };
    static char longmsg[LONG + 1];
    memset(longmsg, 'm', LONG);
    memcpy(longmsg, "start:", 6);
    longmsg[LONG] = '\0';
    Flremote__FailRequest r4 = fail_req(FL_EUSER + 1, longmsg);
    assert_fl(FL_EUSER + 1, fl_test_call_code(fx.plain, M_FAIL, &r4.base, 0,
                                              msg, sizeof msg));
    assert_int_equal(FL_FUTURE_MESSAGE_MAX - 1, strlen(msg));
    assert_memory_equal(longmsg, msg, FL_FUTURE_MESSAGE_MAX - 1);

    fx_end(&fx);
}

static void test_fenced_endpoint_serves_only_its_token(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    fl_fencing_token_t right = fl_test_token(PEER_TOKEN_BYTE);
    fl_fencing_token_t wrong = fl_test_token(WRONG_TOKEN_BYTE);
    fl_fencing_token_t got;

    fl_rpc_gateway_t *ok = fl_test_connect(fx.svc, fx.peer.fenced, RG, &right);
    expect_echo(ok, "right token", 1);
    Flremote__EchoRequest req = echo_req("blocking", 2);
    assert_fl_ok(fl_test_call_sync_code(ok, M_ECHO, &req.base, 0));
    assert_fl_ok(fl_rpc_gateway_fencing_token(ok, &got));
    assert_memory_equal(right.bytes, got.bytes, sizeof got.bytes);

    /* Another token and no token connect (tokens are not checked then),
     * but every call fails with FL_EFENCING. */
    fl_rpc_gateway_t *bad = fl_test_connect(fx.svc, fx.peer.fenced, RG, &wrong);
    fl_rpc_gateway_t *none = fl_test_connect(fx.svc, fx.peer.fenced, RG, NULL);
    expect_calls_fail(bad, FL_EFENCING);
    expect_calls_fail(none, FL_EFENCING);
    assert_fl(FL_ENOTSUP, fl_rpc_gateway_fencing_token(none, &got));

    /* A tell with the wrong token is dropped: only the right one counts
     * (one connection, one endpoint: handled in order). */
    tell_count(bad, 1000);
    tell_count(none, 1000);
    tell_count(ok, 1);
    assert_int_equal(1, peer_wait_count(ok, 1));

    /* The unfenced endpoint keeps serving unfenced calls. */
    expect_echo(fx.plain, "unfenced", 3);

    fl_rpc_gateway_free(ok);
    fl_rpc_gateway_free(bad);
    fl_rpc_gateway_free(none);
    fx_end(&fx);
}

static void
test_not_started_endpoint_connects_but_calls_fail_enotstarted(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    fl_rpc_gateway_t *gw = fl_test_connect(fx.svc, fx.peer.idle, RG, NULL);
    uint64_t t0 = fl_clock_now_ns();
    expect_calls_fail(gw, FL_ENOTSTARTED);
    fl_test_assert_elapsed("calls to a not started endpoint",
                           fl_test_ms_since(t0), 0, PROMPT_MS);

    Flremote__EchoRequest req = echo_req("blocking", 2);
    bool got_reply = true;
    assert_fl(FL_ENOTSTARTED, closure_code(gw, M_ECHO, &req.base, &got_reply));
    assert_false(got_reply);

    fl_rpc_gateway_free(gw);
    fx_end(&fx);
}

static void
test_calls_to_a_terminated_remote_endpoint_fail_fast_unreachable(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    fl_rpc_gateway_t *gw = fl_test_connect(fx.svc, fx.peer.doomed, RG, NULL);
    expect_echo(gw, "still alive", 1);

    Flremote__CloseRequest creq = FLREMOTE__CLOSE_REQUEST__INIT;
    creq.id = "doomed";
    fl_future_t *cf = fl_test_call(fx.plain, M_CLOSE_ENDPOINT, &creq.base, 0);
    fl_test_future_ok(cf, "CloseEndpoint");
    fl_future_release(cf);

    uint64_t t0 = fl_clock_now_ns();
    expect_calls_fail(gw, FL_EUNREACHABLE);
    Flremote__EchoRequest req = echo_req("blocking", 2);
    assert_fl(FL_EUNREACHABLE, closure_code(gw, M_ECHO, &req.base, NULL));
    fl_test_assert_elapsed("calls to a terminated endpoint",
                           fl_test_ms_since(t0), 0, PROMPT_MS);

    /* Its id is gone: a new connect fails; the other endpoints serve. */
    expect_connect_error(fx.svc, fx.peer.doomed, FL_ECONNECT, fx.peer.doomed,
                         NULL);
    expect_echo(fx.plain, "others still serve", 4);

    fl_rpc_gateway_free(gw);
    fx_end(&fx);
}

/* ---- handshake errors ------------------------------------------------------
 */

static void
test_connect_to_an_unknown_endpoint_fails_econnect_naming_it(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    char address[300];
    format_address(address, sizeof address, fx.peer.port, "nobody");

    expect_connect_error(fx.svc, address, FL_ECONNECT, address,
                         "connect to an unknown endpoint");

    /* The connection stays good for the endpoints that exist. */
    expect_echo(fx.plain, "after a failed handshake", 1);

    fx_end(&fx);
}

static void
test_connect_with_an_unsupported_gateway_fails_ehandshake(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    char msg[512];

    assert_fl(FL_EHANDSHAKE, fl_test_connect_error(fx.svc, fx.peer.plain, OTHER,
                                                   msg, sizeof msg));
    if (!strstr(msg, "The rpc endpoint does not support the gateway ") ||
        !strstr(msg, "OtherGateway"))
        fail_msg("unexpected handshake message \"%s\"", msg);
    /* Also for an endpoint that is not started (answered in every state). */
    assert_fl(FL_EHANDSHAKE, fl_test_connect_error(fx.svc, fx.peer.idle, OTHER,
                                                   msg, sizeof msg));
    expect_echo(fx.plain, "after a refused gateway", 1);

    fx_end(&fx);
}

static void test_connect_to_an_unresolvable_host_fails_promptly(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = test_service(0); /* default timeout LONG_MS */
    const char *address = "fling.tcp://no-such-host.invalid:6123/plain";

    expect_connect_error(svc, address, FL_ECONNECT, address,
                         "connect to an unresolvable host");

    fl_test_service_end(svc);
}

static void test_connect_to_a_refused_port_fails_promptly(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = test_service(0); /* default timeout LONG_MS */
    char address[128];
    format_address(address, sizeof address, closed_port(), "plain");

    expect_connect_error(svc, address, FL_ECONNECT, address,
                         "connect to a refused port");
    /* Again at once (now backing off): still a prompt FL_ECONNECT. */
    expect_connect_error(svc, address, FL_ECONNECT, address,
                         "second connect to a refused port");

    fl_test_service_end(svc);
}

/* ---- frame limits ----------------------------------------------------------
 */

/* The bytes of the INVOKE frame of an ask through gw (deadline and
 * instance flags, as tcp_client.c sets them) to endpoint id with a body of
 * body bytes. */
static unsigned long long invoke_frame(const char *id, bool instance,
                                       size_t body)
{
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.endpoint = (fl__str_t){id, (uint16_t)strlen(id)};
    uint16_t flags = FL__F_DEADLINE | (instance ? FL__F_INSTANCE : 0);
    size_t meta = fl__frame_meta_size(FL__K_INVOKE, flags, &m);
    assert_true(meta > 0);
    return FL__FRAME_HDR + meta + body;
}

/* The bytes of the REPLY frame of Size(size): EchoReply(text of size
 * letters from 'a', n = size), as the handler makes it. */
static unsigned long long size_reply_frame(int64_t size)
{
    char *text = rg_text(size, 'a');
    assert_non_null(text);
    Flremote__EchoReply r = FLREMOTE__ECHO_REPLY__INIT;
    r.text = text;
    r.n = size;
    size_t n = protobuf_c_message_get_packed_size(&r.base);
    free(text);
    return FL__FRAME_HDR + n;
}

/* "host:port" of a "fling.tcp://host:port/id" address, into buf. */
static const char *host_port_of(const char *address, char *buf, size_t cap)
{
    const char *p = address + strlen("fling.tcp://");
    const char *slash = strchr(p, '/');
    assert_non_null(slash);
    snprintf(buf, cap, "%.*s", (int)(slash - p), p);
    return buf;
}

/* Frame-limit cases, peer at SMALL_FRAME: our oversized request fails at
 * once naming the method, both sizes and whose limit (the peer's); the
 * peer's call to us whose reply would exceed the peer's maximum fails
 * with FL_EMSGSIZE, saying that we refused to send it. */
static void test_frame_limits_of_the_peer(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin_with(&fx, SMALL_FRAME, 0);

    char *text = text_of(OVER_SMALL);
    Flremote__EchoRequest req = echo_req(text, 1);
    size_t body = protobuf_c_message_get_packed_size(&req.base);
    char want[FL_FUTURE_MESSAGE_MAX], hp[128];
    snprintf(want, sizeof want,
             "Request of flremote.RemoteGateway.Echo is %llu bytes, over the "
             "%u-byte frame limit of the service at %s (its max_frame_size)",
             invoke_frame(fx.plain->remote_id, fx.plain->has_instance, body),
             SMALL_FRAME, host_port_of(fx.peer.plain, hp, sizeof hp));
    expect_call_too_big(fx.plain, M_ECHO, &req.base, want);
    assert_fl(FL_EMSGSIZE, closure_code(fx.plain, M_ECHO, &req.base, NULL));
    free(text);

    /* Below the limit, and on the same connection: served. */
    char *small = text_of(1000);
    expect_echo(fx.plain, small, 2);
    free(small);

    /* The peer's call to us: a reply over the peer's maximum. */
    snprintf(want, sizeof want,
             "Reply of flremote.RemoteGateway.Size is %llu bytes, over the "
             "caller's %u-byte frame limit (its max_frame_size): rpc endpoint "
             "%s refused to send it",
             size_reply_frame(OVER_SMALL), SMALL_FRAME,
             fl_rpc_endpoint_address(fx.back_ep));
    expect_call_back_too_big(&fx, M_SIZE, OVER_SMALL, want);

    fx_end(&fx);
}

/* Frame-limit cases, test process at SMALL_FRAME: the peer's reply over
 * our maximum fails our call with FL_EMSGSIZE, the peer saying it refused
 * to send it; the peer's oversized request to us fails at once at the
 * peer, naming our limit. */
static void test_frame_limits_of_the_test_process(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin_with(&fx, 0, SMALL_FRAME);

    Flremote__SizeRequest sreq = FLREMOTE__SIZE_REQUEST__INIT;
    sreq.size = OVER_SMALL;
    char want[FL_FUTURE_MESSAGE_MAX], hp[128];
    snprintf(want, sizeof want,
             "Reply of flremote.RemoteGateway.Size is %llu bytes, over the "
             "caller's %u-byte frame limit (its max_frame_size): rpc endpoint "
             "%s refused to send it",
             size_reply_frame(OVER_SMALL), SMALL_FRAME, fx.peer.plain);
    expect_call_too_big(fx.plain, M_SIZE, &sreq.base, want);

    /* A reply below the limit on the same connection: served. */
    expect_size_reply(fx.plain, 60000);

    /* The peer's request to us over our maximum: Echo(text of OVER_SMALL
     * letters from 'A', n = 0) to "back". */
    char *text = rg_text(OVER_SMALL, 'A');
    assert_non_null(text);
    Flremote__EchoRequest req = echo_req(text, 0);
    size_t body = protobuf_c_message_get_packed_size(&req.base);
    free(text);
    snprintf(want, sizeof want,
             "Request of flremote.RemoteGateway.Echo is %llu bytes, over the "
             "%u-byte frame limit of the service at %s (its max_frame_size)",
             invoke_frame("back", true, body), SMALL_FRAME,
             host_port_of(fl_rpc_endpoint_address(fx.back_ep), hp, sizeof hp));
    expect_call_back_too_big(&fx, M_ECHO, OVER_SMALL, want);

    fx_end(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        REMOTE_TEST(test_handler_errors_cross_the_wire_intact),
        REMOTE_TEST(test_fenced_endpoint_serves_only_its_token),
        REMOTE_TEST(
            test_not_started_endpoint_connects_but_calls_fail_enotstarted),
        REMOTE_TEST(
            test_calls_to_a_terminated_remote_endpoint_fail_fast_unreachable),
        REMOTE_TEST(
            test_connect_to_an_unknown_endpoint_fails_econnect_naming_it),
        REMOTE_TEST(test_connect_with_an_unsupported_gateway_fails_ehandshake),
        REMOTE_TEST(test_connect_to_an_unresolvable_host_fails_promptly),
        REMOTE_TEST(test_connect_to_a_refused_port_fails_promptly),
        REMOTE_TEST(test_frame_limits_of_the_peer),
        REMOTE_TEST(test_frame_limits_of_the_test_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
