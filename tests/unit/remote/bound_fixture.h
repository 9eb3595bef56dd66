/*
 * bound_fixture.h - the server, clients and flood of the tests of the
 * mailbox bound on the wire (remote_bound_test.c,
 * remote_bound_reasons_test.c): a server on a system of small mailbox
 * bounds serving the gated "slow" endpoint (gate_fixture.h) and "calc", a
 * good client calling "calc", a flood's client, side clients of their
 * own connections; the server's debug lines about stopping and reading
 * again, captured by kind and peer; the net's stats.
 *
 * Header-only (static inline), like gate_fixture.h. A test's main calls
 * fl_test_cond_init(&logged.cv) once.
 */
#ifndef BOUND_FIXTURE_H
#define BOUND_FIXTURE_H

#include "gate_fixture.h"

#include "actor/system.h"
#include "rpc/service.h"
#include "rpc/tcp.h"
#include "unit/rpc/rpc_transport.h"

#define NMSG 3000u
#define ASK_EVERY 10u
#define EP_SLOW "slow"
#define ASK_MS 60000

/* The peers of the server's debug lines, by kind, in order (log_sink):
 * "<peer>: a mailbox is over its bound: not reading" (L_PAUSED),
 * "<peer>: calls drained, a mailbox not yet: not reading" (L_REFUSED),
 * "<peer>: calls drained: reading again" (L_RESUMED). */
enum { L_PAUSED, L_REFUSED, L_RESUMED, L_KINDS };
static const char *const log_tails[L_KINDS] = {
    ": a mailbox is over its bound: not reading",
    ": calls drained, a mailbox not yet: not reading",
    ": calls drained: reading again"};
#define LOG_PEERS 64
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char peer[L_KINDS][LOG_PEERS][64];
    unsigned n[L_KINDS];
} logged = {.mu = PTHREAD_MUTEX_INITIALIZER}; /* cv: main */

static inline bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

static inline void log_sink(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
    if (rec->level != FL_LOG_DEBUG)
        fprintf(stderr, "fling: %s\n", rec->message);
    if (rec->nfields == 0 || strcmp(rec->fields[0].key, "peer") != 0)
        return;
    pthread_mutex_lock(&logged.mu);
    for (int k = 0; k < L_KINDS; k++)
        if (ends_with(rec->message, log_tails[k]) && logged.n[k] < LOG_PEERS)
            snprintf(logged.peer[k][logged.n[k]++], 64, "%s",
                     rec->fields[0].value);
    pthread_cond_broadcast(&logged.cv);
    pthread_mutex_unlock(&logged.mu);
}

/* Forgets the lines logged so far and logs at debug level into log_sink
 * (log_end undoes it). */
static inline void log_start(void)
{
    pthread_mutex_lock(&logged.mu);
    memset(logged.n, 0, sizeof logged.n);
    pthread_mutex_unlock(&logged.mu);
    fl_log_set_handler(log_sink, NULL);
    fl_log_set_level(FL_LOG_DEBUG);
}

static inline void log_end(void)
{
    fl_log_set_level(FL_LOG_WARN);
    fl_log_set_handler(NULL, NULL);
}

/* The number of lines of kind k so far. */
static inline unsigned log_count(int k)
{
    pthread_mutex_lock(&logged.mu);
    unsigned n = logged.n[k];
    pthread_mutex_unlock(&logged.mu);
    return n;
}

/* The peer of the i-th line of kind k (there must be one), into out. */
static inline void log_peer(int k, unsigned i, char out[64])
{
    pthread_mutex_lock(&logged.mu);
    unsigned n = logged.n[k];
    if (i < n)
        snprintf(out, 64, "%s", logged.peer[k][i]);
    pthread_mutex_unlock(&logged.mu);
    if (i >= n)
        fail_msg("line %u of kind %d asked for, %u logged", i, k, n);
}

/* Waits (WAIT_MS) until n lines of kind k were logged. */
static inline void log_wait(int k, unsigned n)
{
    struct timespec ts = fl_test_deadline(WAIT_MS);
    pthread_mutex_lock(&logged.mu);
    int rc = 0;
    while (logged.n[k] < n && rc == 0)
        rc = pthread_cond_timedwait(&logged.cv, &logged.mu, &ts);
    unsigned got = logged.n[k];
    pthread_mutex_unlock(&logged.mu);
    if (got < n)
        fail_msg("%u lines \"<peer>%s\" within %d ms, want %u", got,
                 log_tails[k], WAIT_MS, n);
}

/* The lines of kind k about peer so far (under logged.mu). */
static inline unsigned peer_lines_locked(int k, const char *peer)
{
    unsigned c = 0;
    for (unsigned i = 0; i < logged.n[k]; i++)
        c += strcmp(logged.peer[k][i], peer) == 0;
    return c;
}

/* Waits (WAIT_MS) until n lines of kind k about peer were logged. */
static inline void log_wait_peer(int k, const char *peer, unsigned n)
{
    struct timespec ts = fl_test_deadline(WAIT_MS);
    pthread_mutex_lock(&logged.mu);
    int rc = 0;
    while (peer_lines_locked(k, peer) < n && rc == 0)
        rc = pthread_cond_timedwait(&logged.cv, &logged.mu, &ts);
    unsigned got = peer_lines_locked(k, peer);
    pthread_mutex_unlock(&logged.mu);
    if (got < n)
        fail_msg("%u lines \"%s%s\" within %d ms, want %u", got, peer,
                 log_tails[k], WAIT_MS, n);
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

static inline fl__net_stats_t server_stats(bound_fx_t *fx)
{
    fl__net_stats_t st;
    fl__net_stats(fx->server->net, &st);
    return st;
}

/* The drain waits armed on the slow endpoint's mailbox. */
static inline uint32_t slow_waits(bound_fx_t *fx)
{
    fl__actor_t *a = fl__slot(fx->sys, FL__REF_SLOT(fx->slow_ep->actor.id));
    return atomic_load(&a->waits);
}

static inline uint32_t slow_queued(bound_fx_t *fx)
{
    uint32_t q = 0;
    assert_fl_ok(fl_actor_queued(fx->sys, fx->slow_ep->actor, &q));
    return q;
}

/* The server (TLS when tls) on a system of mailbox bound `bound` and
 * turns of `batch` messages, with an inbound budget of `budget` bytes (0:
 * the default), its endpoints, the good client calling
 * "calc" on its own connection, and the flood's client and gateway. */
static inline void fx_start(bound_fx_t *fx, bool tls, unsigned bound,
                            unsigned batch, size_t budget)
{
    memset(fx, 0, sizeof *fx);
    fx->bound = bound;
    fx->nflood = NMSG;
    fx_remote = true;
    fx_tls = tls;
    fl_system_opts_t sysopts = {
        .workers = 2, .mailbox_bound = bound, .batch = batch};
    assert_fl_ok(fl_system_alloc(&sysopts, &fx->sys));
    fl_rpc_service_opts_t so = {.system = fx->sys,
                                .name = "bound-server",
                                .no_io_turns = true,
                                .max_inbound_bytes = budget};
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
static inline void flood(bound_fx_t *fx)
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

/* Ends the clients, the endpoints and the server (the gate open); the
 * gate's record stays for the caller to check (gate_fini). */
static inline void fx_end(bound_fx_t *fx)
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

/* Waits until the server has stopped reading for a mailbox n times. */
static inline void wait_pauses(bound_fx_t *fx, uint64_t n)
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
static inline fl_rpc_service_t *side_client(bound_fx_t *fx,
                                            fl_rpc_gateway_t **gw)
{
    fl_rpc_service_opts_t co = {.workers = 1};
    svc_dial(&co);
    fl_rpc_service_t *cli = NULL;
    assert_fl_ok(fl_rpc_service_alloc(&co, &cli));
    assert_fl_ok(gw_connect(cli, fl_rpc_endpoint_address(fx->slow_ep),
                            &flhostile__calc_gateway__descriptor, gw));
    return cli;
}

static inline void side_tell(fl_rpc_gateway_t *gw, int64_t v)
{
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = v;
    req.text = "side";
    flhostile__calc_gateway__add(fl_rpc_gateway_service(gw), &req, NULL, NULL);
    assert_fl_ok(fl_rpc_last_error());
}

/*
 * Waits (WAIT_MS) until `want` calls were handled, then checks them: each
 * connection's calls once, in its order. The flood sends 0, 1, ...; one
 * side connection 1000, 1001, ...; `sides` more one call each, 2000 + i.
 */
static inline void expect_each_in_order(bound_fx_t *fx, size_t want, int sides)
{
    uint64_t t0 = fl_clock_now_ns();
    while (gate_seen(&fx->slow) < want) {
        if (fl_test_ms_since(t0) > WAIT_MS)
            fail_msg("%zu of %zu calls handled within %d ms",
                     gate_seen(&fx->slow), want, WAIT_MS);
        usleep(1000);
    }
    int64_t next_flood = 0, next_a = 1000;
    bool c_seen[16] = {false};
    assert_in_range(sides, 0, 16);
    pthread_mutex_lock(&fx->slow.mu);
    size_t seen = fx->slow.nseen;
    for (size_t i = 0; i < seen; i++) {
        int64_t v = fx->slow.seen[i];
        if (v < 1000 && v == next_flood)
            next_flood++;
        else if (v >= 1000 && v < 2000 && v == next_a)
            next_a++;
        else if (v >= 2000 && v < 2000 + sides && !c_seen[v - 2000])
            c_seen[v - 2000] = true;
        else
            fail_msg("call Add(%lld) handled as number %zu: out of order or "
                     "twice",
                     (long long)v, i);
    }
    pthread_mutex_unlock(&fx->slow.mu);
    assert_int_equal(want, seen);
}

#endif /* BOUND_FIXTURE_H */
