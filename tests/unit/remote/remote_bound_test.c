/*
 * remote_bound_test.c - the mailbox bound stops reading a connection
 * (docs/wire-protocol.md, "Flow control"; src/remote/inbound.c).
 *
 * A server, on a system whose mailboxes hold BOUND messages, serves a
 * "slow" endpoint whose handler waits behind a gate (gate_fixture.h) and a
 * "calc" endpoint. A fling client floods the slow endpoint with NMSG
 * Add(i), tells with an ask every ASK_EVERY, on one connection, over TCP
 * or TLS. While the gate is shut the server stops reading that connection
 * once the endpoint's mailbox is over its bound: it holds exactly BOUND + 1
 * messages, the byte budget is not what stopped it, and a good client on
 * another connection calls "calc" meanwhile. Once the gate opens every
 * call is handled exactly once, in the order sent, the mailbox never held
 * more than BOUND + 1, and every ask is answered.
 *
 * Closing while paused: the flood's client goes away while the server is
 * not reading it; or the server's transport shuts down then. The drain
 * wait is armed while paused and gone once the connection has closed
 * (the slot's count of waits), and what the server handled is a prefix of
 * the flood, in order. ASan and valgrind find what was not freed.
 *
 * The server runs without I/O turns: a handler that waits must not run on
 * the I/O thread.
 */
#include "bound_fixture.h"

#define BOUND 64u

/* Waits until the server stopped reading the flood for the mailbox, then
 * checks what the pause holds: bound + 1 messages, nothing handled, the
 * byte budget untouched, the drain wait armed. */
static void expect_paused(bound_fx_t *fx)
{
    uint64_t t0 = fl_clock_now_ns();
    while (server_stats(fx).mailbox_pauses == 0) {
        if (fl_test_ms_since(t0) > WAIT_MS)
            fail_msg("the server never stopped reading the flood (frames in "
                     "%llu, mailbox %u)",
                     (unsigned long long)server_stats(fx).frames_in,
                     slow_queued(fx));
        usleep(1000);
    }
    /* A good client is served meanwhile, on another connection. */
    good_wait(&fx->good, good_done(&fx->good) + 50, WAIT_MS);
    fl__net_stats_t st = server_stats(fx);
    assert_int_equal(1, st.mailbox_pauses);
    assert_int_equal(0, st.inbound_pauses);
    assert_int_equal(fx->bound + 1, slow_queued(fx));
    assert_int_equal(0, gate_seen(&fx->slow));
    assert_int_equal(1, slow_waits(fx));
}

static void run_held_to_bound(bool tls)
{
    static bound_fx_t fx;
    fx_start(&fx, tls, BOUND, 0, 0);
    flood(&fx);
    expect_paused(&fx);

    /* The gate opens: everything is handled once, in order, and the
     * mailbox never held more than at the pause. */
    gate_open(&fx.slow);
    if (fl_test_latch_wait(fx.slow.all, WAIT_MS) != 0)
        fail_msg("%zu of %u calls handled within %d ms", gate_seen(&fx.slow),
                 NMSG, WAIT_MS);
    gate_expect_in_order(&fx.slow, NMSG);
    for (unsigned k = 0; k < NMSG / ASK_EVERY; k++) {
        fl_future_t *f = fx.asks[k];
        int rc = fl_future_wait(f, WAIT_MS);
        if (rc != FL_OK)
            fail_msg("ask Add(%u): %s (%s)", k * ASK_EVERY, fl_err_name(rc),
                     fl_future_done(f) ? fl_future_message(f) : "pending");
        const Flhostile__Num *r = fl_future_value(f);
        assert_int_equal(k * ASK_EVERY + 1, r->v);
        assert_string_equal("flood", r->text);
    }
    pthread_mutex_lock(&fx.slow.mu);
    uint32_t max_held = fx.slow.max_held;
    pthread_mutex_unlock(&fx.slow.mu);
    fl__net_stats_t st = server_stats(&fx);
    print_message("%s: %llu pauses for the mailbox, at most %u held (bound "
                  "%u)\n",
                  tls ? "tls" : "tcp", (unsigned long long)st.mailbox_pauses,
                  max_held, BOUND);
    assert_in_range(max_held, 1, BOUND + 1);
    /* Reading resumes at half the bound, no sooner: from then on at least
     * BOUND - BOUND / 2 + 1 calls go in before the next pause. */
    assert_in_range(st.mailbox_pauses, 1,
                    1 + (NMSG - (BOUND + 1)) / (BOUND - BOUND / 2 + 1));
    assert_int_equal(0, st.inbound_pauses);
    assert_int_equal(0, slow_waits(&fx));
    fx_end(&fx);
    gate_fini(&fx.slow);
}

static void test_a_flood_is_held_to_the_mailbox_bound_over_tcp(void **state)
{
    (void)state;
    run_held_to_bound(false);
}

static void test_a_flood_is_held_to_the_mailbox_bound_over_tls(void **state)
{
    (void)state;
    run_held_to_bound(true);
}

/* What the server handled is a prefix of the flood, in order, of at
 * least `least` calls. */
static void expect_prefix(bound_fx_t *fx, size_t least)
{
    size_t n = gate_seen(&fx->slow);
    assert_in_range(n, least, NMSG);
    gate_expect_in_order(&fx->slow, n);
}

static void run_client_closes(bool tls)
{
    static bound_fx_t fx;
    fx_start(&fx, tls, BOUND, 0, 0);
    flood(&fx);
    expect_paused(&fx);

    /* The flood's client goes while the server is not reading it: the
     * server reads on once the mailbox has drained, to the end of the
     * stream. */
    fl_rpc_gateway_free(fx.flood_gw);
    fx.flood_gw = NULL;
    assert_fl_ok(service_end(fx.flood_cli));
    fx.flood_cli = NULL;
    gate_open(&fx.slow);
    uint64_t t0 = fl_clock_now_ns();
    while (slow_waits(&fx) != 0) {
        if (fl_test_ms_since(t0) > WAIT_MS)
            fail_msg("the drain wait is still armed %d ms after the gate "
                     "opened",
                     WAIT_MS);
        usleep(1000);
    }
    fx_end(&fx);
    expect_prefix(&fx, BOUND + 1); /* what the pause held, at least */
    gate_fini(&fx.slow);
}

static void test_the_client_closing_while_paused_frees_all_over_tcp(void **s)
{
    (void)s;
    run_client_closes(false);
}

static void test_the_client_closing_while_paused_frees_all_over_tls(void **s)
{
    (void)s;
    run_client_closes(true);
}

/* The server's transport shuts down while the connection is paused: the
 * close cancels the drain wait before the gate opens. */
static void run_server_stops(bool tls)
{
    static bound_fx_t fx;
    fx_start(&fx, tls, BOUND, 0, 0);
    flood(&fx);
    expect_paused(&fx);
    fl_future_release(fl_rpc_service_close(fx.server));
    fl__rpc_tcp_shutdown(fx.server);
    assert_int_equal(0, slow_waits(&fx));
    gate_open(&fx.slow);
    fx_end(&fx);
    /* The endpoint stopped after the call in its handler: the rest of
     * its mailbox went to the dead letters. */
    expect_prefix(&fx, 1);
    gate_fini(&fx.slow);
}

static void test_the_server_stopping_while_paused_cancels_over_tcp(void **s)
{
    (void)s;
    run_server_stops(false);
}

static void test_the_server_stopping_while_paused_cancels_over_tls(void **s)
{
    (void)s;
    run_server_stops(true);
}
/*
 * A connection whose own calls have all finished while the mailbox is
 * still over its low mark is read again by the drain wait alone. Bound 4,
 * turns of one message (the count falls call by call): the flood stops
 * at 5 held; A's tell makes 6 (A stops), three more clients' tells 9. A's
 * ask waits in its socket. The gate admits the flood's 5 and A's tell,
 * then holds the next: A's call is done (settled before the next call
 * starts) at 3 held, above the low mark of 2, and A's ask is not read.
 * Once the gate opens, only the drain to 2 can read A again.
 */
#define SIDES 3
static void
test_a_drained_mailbox_reads_a_connection_with_no_call_left(void **state)
{
    (void)state;
    static bound_fx_t fx;
    log_start();
    fx_start(&fx, false, 4, 1, 0);
    fx.nflood = 20;
    flood(&fx);
    wait_pauses(&fx, 1);
    fl_rpc_gateway_t *a_gw = NULL, *c_gw[SIDES];
    fl_rpc_service_t *a = side_client(&fx, &a_gw), *c[SIDES];
    side_tell(a_gw, 1000);
    wait_pauses(&fx, 2);
    for (int i = 0; i < SIDES; i++) {
        c[i] = side_client(&fx, &c_gw[i]);
        side_tell(c_gw[i], 2000 + i);
        wait_pauses(&fx, 3 + (uint64_t)i);
    }
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = 1001;
    req.text = "side";
    fl_future_t *ask = NULL;
    assert_fl_ok(fl_rpc_call(a_gw, M_ADD, &req.base, ASK_MS, &ask));
    assert_int_equal(4 + 1 + 1 + SIDES, slow_queued(&fx));
    assert_int_equal(2 + SIDES, slow_waits(&fx));
    assert_int_equal(2 + SIDES, log_count(L_PAUSED));

    gate_admit(&fx.slow, 4 + 1 + 1);
    gate_wait_stuck(&fx.slow, 4 + 1 + 1);
    /* The call in the handler counts until its turn ends. */
    assert_int_equal(SIDES, slow_queued(&fx));
    assert_int_equal(2 + SIDES, server_stats(&fx).mailbox_pauses);
    gate_open(&fx.slow);
    int rc = fl_future_wait(ask, WAIT_MS);
    if (rc != FL_OK)
        fail_msg("A's ask: %s (%s)", fl_err_name(rc),
                 fl_future_done(ask) ? fl_future_message(ask) : "pending");
    assert_int_equal(1002, ((const Flhostile__Num *)fl_future_value(ask))->v);
    fl_future_release(ask);
    /* Stopped for mailboxes alone: no finished call kicked the I/O
     * thread, which never refused to read. */
    assert_int_equal(0, server_stats(&fx).inbound_kicks);
    assert_int_equal(0, log_count(L_REFUSED));
    log_end();
    expect_each_in_order(&fx, fx.nflood + 2 + SIDES, SIDES);
    for (int i = 0; i < SIDES; i++) {
        fl_rpc_gateway_free(c_gw[i]);
        assert_fl_ok(service_end(c[i]));
    }
    fl_rpc_gateway_free(a_gw);
    assert_fl_ok(service_end(a));
    fx_end(&fx);
    gate_fini(&fx.slow);
}

int main(void)
{
    fl_test_cond_init(&logged.cv); /* timed on CLOCK_MONOTONIC */
    const struct CMUnitTest tests[] = {
        FL_TEST(test_a_flood_is_held_to_the_mailbox_bound_over_tcp),
        FL_TEST(test_a_flood_is_held_to_the_mailbox_bound_over_tls),
        FL_TEST(test_the_client_closing_while_paused_frees_all_over_tcp),
        FL_TEST(test_the_client_closing_while_paused_frees_all_over_tls),
        FL_TEST(test_the_server_stopping_while_paused_cancels_over_tcp),
        FL_TEST(test_the_server_stopping_while_paused_cancels_over_tls),
        FL_TEST(test_a_drained_mailbox_reads_a_connection_with_no_call_left),
    };
    return cmocka_run_group_tests_name("mailbox bound on the wire", tests, NULL,
                                       NULL);
}
