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

/* The peers of the server's debug lines "<peer>: a mailbox is over its
 * bound: not reading" (paused) and "<peer>: calls drained, a mailbox not
 * yet: not reading" (refused), in order (log_sink). */
#define LOG_PEERS 64
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char paused[LOG_PEERS][64], refused[LOG_PEERS][64];
    unsigned npaused, nrefused;
} logged = {.mu = PTHREAD_MUTEX_INITIALIZER}; /* cv: main */

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

static void log_sink(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
    if (rec->level != FL_LOG_DEBUG)
        fprintf(stderr, "fling: %s\n", rec->message);
    if (rec->nfields == 0 || strcmp(rec->fields[0].key, "peer") != 0)
        return;
    pthread_mutex_lock(&logged.mu);
    if (ends_with(rec->message, ": a mailbox is over its bound: not reading") &&
        logged.npaused < LOG_PEERS)
        snprintf(logged.paused[logged.npaused++], 64, "%s",
                 rec->fields[0].value);
    if (ends_with(rec->message,
                  ": calls drained, a mailbox not yet: not reading") &&
        logged.nrefused < LOG_PEERS)
        snprintf(logged.refused[logged.nrefused++], 64, "%s",
                 rec->fields[0].value);
    pthread_cond_broadcast(&logged.cv);
    pthread_mutex_unlock(&logged.mu);
}

typedef struct bound_fx {
    unsigned bound, nflood;
    fl_system_t *sys; /* the server's, mailboxes of `bound` */
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

/* The server (TLS when tls) on a system of mailbox bound `bound` and
 * turns of `batch` messages, its endpoints, the good client calling
 * "calc" on its own connection, and the flood's client and gateway. */
static void fx_start(bound_fx_t *fx, bool tls, unsigned bound, unsigned batch)
{
    memset(fx, 0, sizeof *fx);
    fx->bound = bound;
    fx->nflood = NMSG;
    fx_remote = true;
    fx_tls = tls;
    fl_system_opts_t sysopts = {
        .workers = 2, .mailbox_bound = bound, .batch = batch};
    assert_fl_ok(fl_system_alloc(&sysopts, &fx->sys));
    fl_rpc_service_opts_t so = {
        .system = fx->sys, .name = "bound-server", .no_io_turns = true};
    svc_listen(&so);
    assert_fl_ok(fl_rpc_service_alloc(&so, &fx->server));
    gate_init(&fx->slow, NMSG);
    assert_fl_ok(calc_start(fx->server, EP_SLOW, &fx->slow.calc,
                            slow_services(), 1, &fx->slow_ep));
    assert_fl_ok(calc_start(fx->server, "calc", &fx->calc, calc_services(), 2,
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
    assert_fl_ok(gw_connect(fx->flood_cli, fl_rpc_endpoint_address(fx->slow_ep),
                            &flhostile__calc_gateway__descriptor,
                            &fx->flood_gw));
}

/* The flood: Add(i) for i < fx->nflood, a tell but every ASK_EVERY-th an
 * ask (its future in fx->asks). */
static void flood(bound_fx_t *fx)
{
    ProtobufCService *calc = fl_rpc_gateway_service(fx->flood_gw);
    for (unsigned i = 0; i < fx->nflood; i++) {
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
    fx_start(&fx, tls, BOUND, 0);
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
    fx_start(&fx, tls, BOUND, 0);
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
    fx_start(&fx, tls, BOUND, 0);
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

/* Waits until the server has stopped reading for a mailbox n times. */
static void wait_pauses(bound_fx_t *fx, uint64_t n)
{
    uint64_t t0 = fl_clock_now_ns();
    while (server_stats(fx).mailbox_pauses < n) {
        if (fl_test_ms_since(t0) > WAIT_MS)
            fail_msg("%llu pauses for the mailbox within %d ms, want %llu",
                     (unsigned long long)server_stats(fx).mailbox_pauses,
                     WAIT_MS, (unsigned long long)n);
        usleep(1000);
    }
}

/* A client of its own (one more connection) with a gateway to the slow
 * endpoint, *gw. */
static fl_rpc_service_t *side_client(bound_fx_t *fx, fl_rpc_gateway_t **gw)
{
    fl_rpc_service_opts_t co = {.workers = 1};
    svc_dial(&co);
    fl_rpc_service_t *cli = NULL;
    assert_fl_ok(fl_rpc_service_alloc(&co, &cli));
    assert_fl_ok(gw_connect(cli, fl_rpc_endpoint_address(fx->slow_ep),
                            &flhostile__calc_gateway__descriptor, gw));
    return cli;
}

static void side_tell(fl_rpc_gateway_t *gw, int64_t v)
{
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = v;
    req.text = "side";
    flhostile__calc_gateway__add(fl_rpc_gateway_service(gw), &req, NULL, NULL);
    assert_fl_ok(fl_rpc_last_error());
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
    pthread_mutex_lock(&logged.mu);
    logged.npaused = logged.nrefused = 0;
    pthread_mutex_unlock(&logged.mu);
    fl_log_set_handler(log_sink, NULL);
    fl_log_set_level(FL_LOG_DEBUG);
    fx_start(&fx, false, 4, 1);
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
    pthread_mutex_lock(&logged.mu);
    assert_int_equal(2 + SIDES, logged.npaused);
    pthread_mutex_unlock(&logged.mu);

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
    fl_log_set_level(FL_LOG_WARN);
    size_t want = fx.nflood + 2 + SIDES;
    uint64_t t0 = fl_clock_now_ns();
    while (gate_seen(&fx.slow) < want) {
        if (fl_test_ms_since(t0) > WAIT_MS)
            fail_msg("%zu of %zu calls handled within %d ms",
                     gate_seen(&fx.slow), want, WAIT_MS);
        usleep(1000);
    }
    /* Each connection's calls once, in its order. */
    int64_t next_flood = 0, next_a = 1000;
    bool c_seen[SIDES] = {false};
    pthread_mutex_lock(&fx.slow.mu);
    size_t seen = fx.slow.nseen;
    for (size_t i = 0; i < seen; i++) {
        int64_t v = fx.slow.seen[i];
        if (v < 1000 && v == next_flood)
            next_flood++;
        else if (v >= 1000 && v < 2000 && v == next_a)
            next_a++;
        else if (v >= 2000 && v < 2000 + SIDES && !c_seen[v - 2000])
            c_seen[v - 2000] = true;
        else
            fail_msg("call Add(%lld) handled as number %zu: out of order or "
                     "twice",
                     (long long)v, i);
    }
    pthread_mutex_unlock(&fx.slow.mu);
    assert_int_equal(want, seen);
    for (int i = 0; i < SIDES; i++) {
        fl_rpc_gateway_free(c_gw[i]);
        assert_fl_ok(service_end(c[i]));
    }
    fl_rpc_gateway_free(a_gw);
    assert_fl_ok(service_end(a));
    fx_end(&fx);
    gate_fini(&fx.slow);
    fl_log_set_handler(NULL, NULL);
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
