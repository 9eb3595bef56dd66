/*
 * remote_port_test.c - ports of a service talking to remote_peer: port
 * ranges with busy ports, and a peer killed with SIGKILL while calls are
 * pending, then restarted on the same port (docs/contract.md R2, R7): a
 * gateway to the old incarnation never reaches the new one and says so.
 */
#include "peer_calls.h"

#include "remote/net.h"
#include "rpc/gateway.h"

/* ---- port ranges -----------------------------------------------------------
 */

static void test_a_busy_port_makes_the_range_use_the_next_one(void **state)
{
    (void)state;
    int fds[2] = {-1, -1}, lo = 0;
    hold_two_ports(fds, &lo);
    close(fds[1]); /* lo stays taken, lo + 1 is free */
    char range[32], list[32];
    snprintf(range, sizeof range, "%d-%d", lo, lo + 1);
    snprintf(list, sizeof list, "%d,%d", lo, lo + 1);

    /* In this process, with a comma list. */
    fl_rpc_service_opts_t o = port_opts(list);
    fl_rpc_service_t *svc = NULL;
    int rc = fl_rpc_service_alloc(&o, &svc);
    if (rc != FL_OK)
        fail_msg("service on %s: %s (%s)", list, fl_err_name(rc),
                 fl_rpc_last_message());
    assert_int_equal(lo + 1, fl_rpc_service_port(svc));
    fl_test_service_end(svc);

    /* The peer, with a range: it serves on lo + 1. */
    peer_t p;
    peer_spawn(&p, range, 0);
    assert_int_equal(lo + 1, p.port);
    expect_address(lo + 1, "plain", p.plain);
    fl_rpc_service_t *client = test_service(0);
    fl_rpc_gateway_t *gw = fl_test_connect(client, p.plain, RG, NULL);
    expect_echo(gw, "on the next port", 1);
    fl_rpc_gateway_free(gw);
    fl_test_service_end(client);
    peer_stop(&p);

    close(fds[0]);
}

static void test_all_ports_busy_fails_eaddrinuse_naming_the_range(void **state)
{
    (void)state;
    int fds[2] = {-1, -1}, lo = 0;
    hold_two_ports(fds, &lo);
    char range[32], single[16];
    snprintf(range, sizeof range, "%d-%d", lo, lo + 1);
    snprintf(single, sizeof single, "%d", lo);

    expect_ports_busy(range, "the range");
    expect_ports_busy(single, "the port");

    /* The peer reports the same and exits (status 2). */
    peer_t p;
    int st = 0;
    assert_false(peer_try_spawn(&p, range, 0, &st));
    if (strncmp(p.line, "error FL_EADDRINUSE ", 20) != 0 ||
        !strstr(p.line, range))
        fail_msg("peer said \"%s\", want FL_EADDRINUSE naming %s", p.line,
                 range);
    assert_true(WIFEXITED(st));
    assert_int_equal(2, WEXITSTATUS(st));

    close(fds[0]);
    close(fds[1]);
}

/* ---- the peer crashes ------------------------------------------------------
 */

typedef struct sync_job {
    fl_rpc_gateway_t *gw;
    int rc;
    bool reply_null;
    fl_test_latch_t *done;
} sync_job_t;

/* A blocking Block call (tag 9) from a thread of its own. */
static void *sync_block_main(void *arg)
{
    sync_job_t *s = arg;
    Flremote__EchoRequest req = echo_req("blocking, pending", 9);
    ProtobufCMessage *reply = NULL;
    s->rc = fl_rpc_call_sync(s->gw, M_BLOCK, &req.base, LONG_MS, &reply);
    s->reply_null = reply == NULL;
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    fl_test_latch_count_down(s->done);
    return NULL;
}

static void
test_killed_peer_fails_pending_calls_and_its_restart_is_recognised(void **state)
{
    (void)state;
    enum { K = 4 };
    peer_t p;
    peer_spawn(&p, "0", 0);
    int port = p.port;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    fl_rpc_service_t *svc = test_service(0); /* default timeout LONG_MS */
    fl_rpc_gateway_t *gw = fl_test_connect(svc, p.plain, RG, NULL);
    expect_echo(gw, "before the crash", 1);

    /* Calls pending at the peer in every style: K futures, a closure, a
     * blocking call on another thread. */
    Flremote__EchoRequest req = echo_req("pending", 9);
    fl_future_t *fs[K];
    for (int i = 0; i < K; i++)
        fs[i] = fl_test_call(gw, M_BLOCK, &req.base, LONG_MS);
    rg_seen_t c;
    rg_seen_init(&c, NULL);
    fl_rpc_next_timeout(LONG_MS);
    rg_stub_call(fl_rpc_gateway_service(gw), M_BLOCK, &req.base, &c);
    sync_job_t s = {.gw = gw, .rc = -1, .done = fl_test_latch_alloc(1)};
    pthread_t th;
    assert_int_equal(0, pthread_create(&th, NULL, sync_block_main, &s));
    peer_wait_parked(gw, 9, K + 2);

    uint64_t t0 = fl_clock_now_ns();
    peer_crash(&p);
    for (int i = 0; i < K; i++) {
        int rc = fl_test_future_code(fs[i]);
        if (rc != FL_EUNREACHABLE)
            fail_msg("pending future %d: %s (%s), want FL_EUNREACHABLE", i,
                     fl_err_name(rc), fl_future_message(fs[i]));
        fl_future_release(fs[i]);
    }
    closure_wait(&c);
    assert_false(c.got_reply);
    assert_fl(FL_EUNREACHABLE, c.code);
    fl_test_latch_await(s.done);
    assert_int_equal(0, pthread_join(th, NULL));
    assert_fl(FL_EUNREACHABLE, s.rc);
    assert_true(s.reply_null);
    fl_test_assert_elapsed("failing the pending calls", fl_test_ms_since(t0), 0,
                           PROMPT_MS);

    /* The same port again: a new incarnation of the peer. The old
     * gateway never reaches it: its calls fail with FL_EUNREACHABLE, at
     * once while the reconnect backs off, and the first that gets through
     * says the peer restarted (not the new peer's "no rpc endpoint"). */
    peer_spawn(&p, portstr, 0);
    assert_int_equal(port, p.port);
    uint64_t was = gw->peer_inc;
    assert_true(was != 0);
    t0 = fl_clock_now_ns();
    int attempts = 0;
    char msg[512];
    for (;;) {
        attempts++;
        Flremote__EchoRequest again = echo_req("after the restart", 2);
        int rc = fl_test_call_code(gw, M_ECHO, &again.base, PROMPT_MS, msg,
                                   sizeof msg);
        if (rc != FL_EUNREACHABLE || strstr(msg, "no rpc endpoint") != NULL)
            fail_msg("call %d after the restart: %s (%s), want "
                     "FL_EUNREACHABLE",
                     attempts, fl_err_name(rc), msg);
        if (strstr(msg, " restarted ") != NULL)
            break;
        if (fl_test_ms_since(t0) > RESTART_RETRY_MS)
            fail_msg("no call reached the restarted peer within %d ms (%d "
                     "attempts; last: %s)",
                     RESTART_RETRY_MS, attempts, msg);
        /* Pace the retries (the backoff decides when one gets through). */
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    print_message("restart: recognised after %d call(s), %llu ms\n", attempts,
                  (unsigned long long)fl_test_ms_since(t0));
    uint64_t now = fl__conn_peer_incarnation(gw->conn);
    assert_true(now != 0 && now != was);
    char want[512];
    snprintf(want, sizeof want,
             "recipient unreachable: rpc endpoint plain at 127.0.0.1:%d "
             "restarted (incarnation %016llx, now %016llx): connect again to "
             "reach the new one",
             port, (unsigned long long)was, (unsigned long long)now);
    assert_string_equal(want, msg);
    /* From now on at once, in the same words; a fresh connect reaches the
     * new peer. */
    Flremote__EchoRequest again = echo_req("still the old gateway", 3);
    assert_fl(FL_EUNREACHABLE, fl_test_call_code(gw, M_ECHO, &again.base,
                                                 PROMPT_MS, msg, sizeof msg));
    assert_string_equal(want, msg);
    fl_rpc_gateway_t *fresh = fl_test_connect(svc, p.plain, RG, NULL);
    expect_echo(fresh, "a new gateway", 4);

    fl_rpc_gateway_free(fresh);
    fl_rpc_gateway_free(gw);
    peer_stop(&p);
    fl_test_service_end(svc);
    rg_seen_fini(&c);
    fl_test_latch_free(s.done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        REMOTE_TEST(test_a_busy_port_makes_the_range_use_the_next_one),
        REMOTE_TEST(test_all_ports_busy_fails_eaddrinuse_naming_the_range),
        REMOTE_TEST(
            test_killed_peer_fails_pending_calls_and_its_restart_is_recognised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
