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
#include "gate_fixture.h"

#include "actor/system.h"
#include "rpc/service.h"
#include "rpc/tcp.h"
#include "unit/rpc/rpc_transport.h"

#define BOUND 64u
#define NMSG 3000u
#define ASK_EVERY 10u
#define EP_SLOW "slow"
#define ASK_MS 60000

typedef struct bound_fx {
    fl_system_t *sys; /* the server's, mailboxes of BOUND */
    fl_rpc_service_t *server, *flood_cli, *good_cli;
    fl_rpc_endpoint_t *slow_ep, *calc_ep;
    slow_t slow;
    calc_t calc;
    fl_rpc_gateway_t *flood_gw;
    good_t good;
    fl_future_t *asks[NMSG / ASK_EVERY + 1];
} bound_fx_t;

static fl__net_stats_t server_stats(bound_fx_t *fx)
{
    fl__net_stats_t st;
    fl__net_stats(fx->server->net, &st);
    return st;
}

/* The drain waits armed on the slow endpoint's mailbox. */
static uint32_t slow_waits(bound_fx_t *fx)
{
    fl__actor_t *a = fl__slot(fx->sys, FL__REF_SLOT(fx->slow_ep->actor.id));
    return atomic_load(&a->waits);
}

static uint32_t slow_queued(bound_fx_t *fx)
{
    uint32_t q = 0;
    assert_fl_ok(fl_actor_queued(fx->sys, fx->slow_ep->actor, &q));
    return q;
}

/* The server (TLS when tls), its endpoints, the good client calling
 * "calc" on its own connection, and the flood's client and gateway. */
static void fx_start(bound_fx_t *fx, bool tls)
{
    memset(fx, 0, sizeof *fx);
    fx_remote = true;
    fx_tls = tls;
    fl_system_opts_t sysopts = {.workers = 2, .mailbox_bound = BOUND};
    assert_fl_ok(fl_system_alloc(&sysopts, &fx->sys));
    fl_rpc_service_opts_t so = {.system = fx->sys,
                                .name = "bound-server",
                                .no_io_turns = true};
    svc_listen(&so);
    assert_fl_ok(fl_rpc_service_alloc(&so, &fx->server));
    gate_init(&fx->slow, NMSG);
    assert_fl_ok(calc_start(fx->server, EP_SLOW, &fx->slow.calc,
                            slow_services(), 1, &fx->slow_ep));
    assert_fl_ok(
        calc_start(fx->server, "calc", &fx->calc, calc_services(), 2,
                   &fx->calc_ep));

    fl_rpc_service_opts_t co = {.workers = 1};
    svc_dial(&co);
    assert_fl_ok(fl_rpc_service_alloc(&co, &fx->good_cli));
    assert_fl_ok(fl_rpc_service_alloc(&co, &fx->flood_cli));
    good_init(&fx->good);
    assert_fl_ok(gw_connect(fx->good_cli, fl_rpc_endpoint_address(fx->calc_ep),
                            &flhostile__calc_gateway__descriptor,
                            &fx->good.gw));
    assert_int_equal(0, good_start(&fx->good));
    assert_fl_ok(gw_connect(fx->flood_cli,
                            fl_rpc_endpoint_address(fx->slow_ep),
                            &flhostile__calc_gateway__descriptor,
                            &fx->flood_gw));
}

/* The flood: Add(i) for i < NMSG, a tell but every ASK_EVERY-th an ask
 * (its future in fx->asks). */
static void flood(bound_fx_t *fx)
{
    ProtobufCService *calc = fl_rpc_gateway_service(fx->flood_gw);
    for (unsigned i = 0; i < NMSG; i++) {
        Flhostile__Num req = FLHOSTILE__NUM__INIT;
        req.v = i;
        req.text = "flood";
        if (i % ASK_EVERY == 0) {
            assert_fl_ok(fl_rpc_call(fx->flood_gw, M_ADD, &req.base, ASK_MS,
                                     &fx->asks[i / ASK_EVERY]));
        } else {
            flhostile__calc_gateway__add(calc, &req, NULL, NULL);
            assert_fl_ok(fl_rpc_last_error());
        }
    }
}

/* Waits until the server stopped reading the flood for the mailbox, then
 * checks what the pause holds: BOUND + 1 messages, nothing handled, the
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
    assert_int_equal(BOUND + 1, slow_queued(fx));
    assert_int_equal(0, gate_seen(&fx->slow));
    assert_int_equal(1, slow_waits(fx));
}

/* Ends the clients, the endpoints and the server (the gate open); the
 * gate's record stays for the caller to check (gate_fini). */
static void fx_end(bound_fx_t *fx)
{
    good_fini(&fx->good);
    fl_rpc_gateway_free(fx->flood_gw);
    for (size_t i = 0; i < sizeof fx->asks / sizeof *fx->asks; i++)
        fl_future_release(fx->asks[i]);
    assert_fl_ok(service_end(fx->flood_cli));
    assert_fl_ok(service_end(fx->good_cli));
    assert_fl_ok(calc_end(fx->calc_ep));
    assert_fl_ok(calc_end(fx->slow_ep));
    assert_fl_ok(service_end(fx->server));
    assert_fl_ok(fl_system_shutdown(fx->sys));
    fl_system_free(fx->sys);
}

static void run_held_to_bound(bool tls)
{
    static bound_fx_t fx;
    fx_start(&fx, tls);
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
    fx_start(&fx, tls);
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
    fx_start(&fx, tls);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_a_flood_is_held_to_the_mailbox_bound_over_tcp),
        FL_TEST(test_a_flood_is_held_to_the_mailbox_bound_over_tls),
        FL_TEST(test_the_client_closing_while_paused_frees_all_over_tcp),
        FL_TEST(test_the_client_closing_while_paused_frees_all_over_tls),
        FL_TEST(test_the_server_stopping_while_paused_cancels_over_tcp),
        FL_TEST(test_the_server_stopping_while_paused_cancels_over_tls),
    };
    return cmocka_run_group_tests_name("mailbox bound on the wire", tests,
                                       NULL, NULL);
}
