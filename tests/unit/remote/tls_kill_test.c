/*
 * tls_kill_test.c - a TLS server killed with SIGKILL while a call is
 * pending (issue 18; docs/contract.md R7 over TLS): the call fails at once,
 * far below its timeout, with the code and message it gets over TCP.
 *
 * The server is remote_peer (peer_process.h) with --tls, a second process
 * speaking mutual TLS with the test certificates (node.crt); the caller is
 * a service of this process with client.crt. The same case runs over TCP
 * first, so the two outcomes are compared, not only asserted.
 */
#include "peer_calls.h"

#ifndef FL_TEST_CERTS
#error "FL_TEST_CERTS: the test certificates' folder (tests/CMakeLists.txt)"
#endif

/* The caller's TLS options: client.crt, trusting ca.crt. */
static const fl_rpc_tls_opts_t client_tls = {
    .cert_file = FL_TEST_CERTS "/client.crt",
    .key_file = FL_TEST_CERTS "/client.key",
    .ca_file = FL_TEST_CERTS "/ca.crt",
};

/* A calling service (not listening), with TLS if tls. */
static fl_rpc_service_t *caller(bool tls)
{
    fl_rpc_service_opts_t o = {0};
    o.workers = 2;
    o.default_timeout_ms = LONG_MS;
    o.name = "tls_kill_test";
    o.tls = tls ? &client_tls : NULL;
    fl_rpc_service_t *svc = NULL;
    int rc = fl_rpc_service_alloc(&o, &svc);
    if (rc != FL_OK)
        fail_msg("fl_rpc_service_alloc: %s (%s)", fl_err_name(rc),
                 fl_rpc_last_message());
    return svc;
}

/* What a call pending on a killed peer saw. */
typedef struct outcome {
    int code;
    char message[FL_FUTURE_MESSAGE_MAX];
    int port;
    uint64_t ms; /* from the kill to the failure */
} outcome_t;

/*
 * Starts a peer (TLS if tls), parks a Block call on it (a future) and a
 * second through the stub (a closure), kills the peer with SIGKILL and
 * returns what the future saw; the closure must have seen the same code.
 */
static outcome_t kill_mid_call(bool tls)
{
    peer_tls_dir = tls ? FL_TEST_CERTS : NULL;
    peer_t p;
    peer_spawn(&p, "0", 0);
    char want[256];
    snprintf(want, sizeof want, "%s://127.0.0.1:%d/plain",
             tls ? "fling.ssl" : "fling.tcp", p.port);
    assert_string_equal(want, p.plain);

    fl_rpc_service_t *svc = caller(tls);
    fl_rpc_gateway_t *gw = fl_test_connect(svc, p.plain, RG, NULL);
    expect_echo(gw, "before the kill", 1);

    Flremote__EchoRequest req = echo_req("pending", 9);
    fl_future_t *f = fl_test_call(gw, M_BLOCK, &req.base, LONG_MS);
    rg_seen_t c;
    rg_seen_init(&c, NULL);
    fl_rpc_next_timeout(LONG_MS);
    rg_stub_call(fl_rpc_gateway_service(gw), M_BLOCK, &req.base, &c);
    peer_wait_parked(gw, 9, 2);

    uint64_t t0 = fl_clock_now_ns();
    peer_crash(&p);
    outcome_t o = {.port = p.port};
    o.code = fl_test_future_code(f);
    o.ms = fl_test_ms_since(t0);
    snprintf(o.message, sizeof o.message, "%s", fl_future_message(f));
    fl_future_release(f);
    closure_wait(&c);
    assert_false(c.got_reply);
    assert_fl(o.code, c.code);

    fl_rpc_gateway_free(gw);
    fl_test_service_end(svc);
    peer_tls_dir = NULL;
    return o;
}

static void
test_killed_tls_peer_fails_a_pending_call_at_once_as_tcp(void **state)
{
    (void)state;
    outcome_t tcp = kill_mid_call(false);
    outcome_t tls = kill_mid_call(true);
    char want[256];
    snprintf(want, sizeof want,
             "recipient unreachable: connection to 127.0.0.1:%d lost: the "
             "peer closed the connection",
             tcp.port);
    assert_fl(FL_EUNREACHABLE, tcp.code);
    assert_string_equal(want, tcp.message);
    snprintf(want, sizeof want,
             "recipient unreachable: connection to 127.0.0.1:%d lost: the "
             "peer closed the connection",
             tls.port);
    assert_fl(FL_EUNREACHABLE, tls.code);
    assert_string_equal(want, tls.message);
    fl_test_assert_elapsed("failing the call pending over TCP", tcp.ms, 0,
                           PROMPT_MS);
    fl_test_assert_elapsed("failing the call pending over TLS", tls.ms, 0,
                           PROMPT_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        REMOTE_TEST(test_killed_tls_peer_fails_a_pending_call_at_once_as_tcp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
