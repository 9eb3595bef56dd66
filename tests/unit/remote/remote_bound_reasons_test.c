/*
 * remote_bound_reasons_test.c - a connection stops being read for two
 * reasons, its inbound byte budget and a mailbox over its bound
 * (src/remote/inbound.c), kept apart: a finished call kicks the I/O
 * thread only for the budget, the mailbox is left to its drain wait, and
 * a connection stopped for both is read again once both are clear. TCP
 * and TLS. The fixture (server, flood, side clients, the captured debug
 * lines): bound_fixture.h.
 */
#include "bound_fixture.h"

/*
 * Both cases: bound 8 (low mark 4), turns of one message, a
 * budget of BIG_BUDGET bytes (low-water mark 2048): the flood F stops at 9
 * held, for the mailbox alone (its calls are small); X's first ask, over
 * the budget by itself, stops X for both, its second waits in the
 * socket. A finished call kicks the I/O thread only for X's budget
 * (inbound_kicks, exactly), and X is read again only once both are clear.
 */
#define BIG_BUDGET 4096u
#define BIG_TEXT 5000u
#define NSMALL 20u

static char big_text[BIG_TEXT + 1];

/* An ask Add(v) of big_text on gw: over BIG_BUDGET by itself. */
static fl_future_t *big_ask(fl_rpc_gateway_t *gw, int64_t v)
{
    memset(big_text, 'x', BIG_TEXT);
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = v;
    req.text = big_text;
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_call(gw, M_ADD, &req.base, ASK_MS, &f));
    return f;
}

/* Waits for the answer of the ask Add(v) with text: v + 1, text. */
static void expect_answer(fl_future_t *f, int64_t v, const char *text)
{
    int rc = fl_future_wait(f, WAIT_MS);
    if (rc != FL_OK)
        fail_msg("ask Add(%lld): %s (%s)", (long long)v, fl_err_name(rc),
                 fl_future_done(f) ? fl_future_message(f) : "pending");
    const Flhostile__Num *r = fl_future_value(f);
    assert_int_equal(v + 1, r->v);
    assert_string_equal(text, r->text);
}

/* The start of both cases: F stopped for the mailbox, X for both; their
 * peers (as the server names them) into f_peer and x_peer. */
static void both_start(bound_fx_t *fx, bool tls, fl_rpc_service_t **x,
                       fl_rpc_gateway_t **x_gw, fl_future_t *x_ask[2],
                       char f_peer[64], char x_peer[64])
{
    log_start();
    fx_start(fx, tls, 8, 1, BIG_BUDGET);
    fx->nflood = NSMALL;
    flood(fx);
    log_wait(L_PAUSED, 1);
    *x = side_client(fx, x_gw);
    x_ask[0] = big_ask(*x_gw, 1000);
    x_ask[1] = big_ask(*x_gw, 1001);
    log_wait(L_PAUSED, 2);
    log_peer(L_PAUSED, 0, f_peer);
    log_peer(L_PAUSED, 1, x_peer);
    fl__net_stats_t st = server_stats(fx);
    assert_int_equal(2, st.mailbox_pauses);
    assert_int_equal(1, st.inbound_pauses); /* X's first ask */
    assert_int_equal(0, st.inbound_kicks);
    assert_int_equal(9 + 1, slow_queued(fx));
}

/* The end of both cases, the gate open: every answer, each connection's
 * calls once and in order (want of them, `sides` side clients besides
 * X); X's second ask stopped it for the budget again, and its end kicked
 * the I/O thread once more: two kicks in all. */
static void both_end(bound_fx_t *fx, size_t want, int sides,
                     fl_future_t *x_ask[2], const char *x_peer)
{
    expect_answer(x_ask[0], 1000, big_text);
    expect_answer(x_ask[1], 1001, big_text);
    expect_answer(fx->asks[0], 0, "flood");
    expect_answer(fx->asks[1], ASK_EVERY, "flood");
    expect_each_in_order(fx, want, sides);
    log_wait_peer(L_RESUMED, x_peer, 2);
    fl__net_stats_t st = server_stats(fx);
    assert_int_equal(2, st.inbound_pauses);
    assert_int_equal(2, st.inbound_kicks);
    fl_future_release(x_ask[0]);
    fl_future_release(x_ask[1]);
    log_end();
}

/* The budget clears first: five side clients' tells keep the mailbox
 * over its low mark while F's 9 calls and X's first finish. */
#define BOTH_SIDES 5
static void run_budget_clears_first(bool tls)
{
    static bound_fx_t fx;
    fl_rpc_service_t *x = NULL, *c[BOTH_SIDES];
    fl_rpc_gateway_t *x_gw = NULL, *c_gw[BOTH_SIDES];
    fl_future_t *x_ask[2];
    char f_peer[64], x_peer[64], peer[64];
    both_start(&fx, tls, &x, &x_gw, x_ask, f_peer, x_peer);
    for (int i = 0; i < BOTH_SIDES; i++) {
        c[i] = side_client(&fx, &c_gw[i]);
        side_tell(c_gw[i], 2000 + i);
        log_wait(L_PAUSED, 3 + (unsigned)i);
    }
    assert_int_equal(9 + 1 + BOTH_SIDES, slow_queued(&fx));
    assert_int_equal(2 + BOTH_SIDES, slow_waits(&fx));

    /* F's calls finish: no kick (F waits for the mailbox alone). X's
     * finishes: one kick, and the server refuses to read X (the mailbox,
     * at 5, is above its low mark). Nothing new is read. */
    gate_admit(&fx.slow, 9 + 1);
    gate_wait_stuck(&fx.slow, 9 + 1);
    log_wait(L_REFUSED, 1);
    log_peer(L_REFUSED, 0, peer);
    assert_string_equal(x_peer, peer);
    assert_int_equal(1, server_stats(&fx).inbound_kicks);
    assert_int_equal(1, log_count(L_REFUSED));
    assert_int_equal(0, log_count(L_RESUMED));
    assert_int_equal(BOTH_SIDES, slow_queued(&fx)); /* one in the handler */

    /* The first side call drains the mailbox to 4: every stopped
     * connection is read again, once, with no kick of a finished call. */
    gate_admit(&fx.slow, 1);
    log_wait(L_RESUMED, 2 + BOTH_SIDES);
    for (unsigned i = 0; i < 2 + BOTH_SIDES; i++) {
        log_peer(L_PAUSED, i, peer);
        pthread_mutex_lock(&logged.mu);
        unsigned n = peer_lines_locked(L_RESUMED, peer);
        pthread_mutex_unlock(&logged.mu);
        assert_int_equal(1, n);
    }
    assert_int_equal(1, server_stats(&fx).inbound_kicks);
    gate_open(&fx.slow);
    both_end(&fx, NSMALL + 2 + BOTH_SIDES, BOTH_SIDES, x_ask, x_peer);
    for (int i = 0; i < BOTH_SIDES; i++) {
        fl_rpc_gateway_free(c_gw[i]);
        assert_fl_ok(service_end(c[i]));
    }
    fl_rpc_gateway_free(x_gw);
    assert_fl_ok(service_end(x));
    fx_end(&fx);
    gate_fini(&fx.slow);
}

static void test_a_stop_for_a_mailbox_gets_no_kick_per_call_over_tcp(void **s)
{
    (void)s;
    run_budget_clears_first(false);
}

static void test_a_stop_for_a_mailbox_gets_no_kick_per_call_over_tls(void **s)
{
    (void)s;
    run_budget_clears_first(true);
}

/* The position of the first call Add(v) handled (it must be there). */
static size_t handled_at(bound_fx_t *fx, int64_t v)
{
    pthread_mutex_lock(&fx->slow.mu);
    size_t i = 0;
    while (i < fx->slow.nseen && fx->slow.seen[i] != v)
        i++;
    size_t n = fx->slow.nseen;
    pthread_mutex_unlock(&fx->slow.mu);
    if (i == n)
        fail_msg("call Add(%lld) not handled", (long long)v);
    return i;
}

/* The mailbox clears first: F's first 6 calls, Add(0 .. 5), drain it to
 * 4 (Add(6 .. 8) and X's first ask); F is read again, X not, its ask
 * still holding its budget. F's next 5, Add(9 .. 13), fill the mailbox
 * over its bound again. Once X's ask has finished X is read again: its
 * second ask comes after them. */
static void run_mailbox_clears_first(bool tls)
{
    static bound_fx_t fx;
    fl_rpc_service_t *x = NULL;
    fl_rpc_gateway_t *x_gw = NULL;
    fl_future_t *x_ask[2];
    char f_peer[64], x_peer[64], peer[64];
    both_start(&fx, tls, &x, &x_gw, x_ask, f_peer, x_peer);

    gate_admit(&fx.slow, 6);
    gate_wait_stuck(&fx.slow, 6);
    log_wait(L_RESUMED, 1);
    log_peer(L_RESUMED, 0, peer);
    assert_string_equal(f_peer, peer);
    log_wait(L_PAUSED, 3);
    log_peer(L_PAUSED, 2, peer);
    assert_string_equal(f_peer, peer);
    gate_admit(&fx.slow, 3);
    gate_wait_stuck(&fx.slow, 9); /* X's first ask at the gate */
    assert_int_equal(1, log_count(L_RESUMED));
    assert_int_equal(1 + 5, slow_queued(&fx)); /* it and Add(9 .. 13) */
    assert_int_equal(0, server_stats(&fx).inbound_kicks);

    /* X's ask finishes: one kick, and X is read, both reasons clear. */
    gate_admit(&fx.slow, 1);
    log_wait(L_RESUMED, 2);
    log_peer(L_RESUMED, 1, peer);
    assert_string_equal(x_peer, peer);
    assert_int_equal(1, server_stats(&fx).inbound_kicks);
    gate_open(&fx.slow);
    both_end(&fx, NSMALL + 2, 0, x_ask, x_peer);
    assert_true(handled_at(&fx, 1001) > handled_at(&fx, 13));
    assert_int_equal(0, log_count(L_REFUSED));
    fl_rpc_gateway_free(x_gw);
    assert_fl_ok(service_end(x));
    fx_end(&fx);
    gate_fini(&fx.slow);
}

static void test_a_stop_for_both_waits_for_the_budget_too_over_tcp(void **s)
{
    (void)s;
    run_mailbox_clears_first(false);
}

static void test_a_stop_for_both_waits_for_the_budget_too_over_tls(void **s)
{
    (void)s;
    run_mailbox_clears_first(true);
}

int main(void)
{
    fl_test_cond_init(&logged.cv); /* timed on CLOCK_MONOTONIC */
    const struct CMUnitTest tests[] = {
        FL_TEST(test_a_stop_for_a_mailbox_gets_no_kick_per_call_over_tcp),
        FL_TEST(test_a_stop_for_a_mailbox_gets_no_kick_per_call_over_tls),
        FL_TEST(test_a_stop_for_both_waits_for_the_budget_too_over_tcp),
        FL_TEST(test_a_stop_for_both_waits_for_the_budget_too_over_tls),
    };
    return cmocka_run_group_tests_name("two reasons to stop reading", tests,
                                       NULL, NULL);
}
