/*
 * tls_remote_test - RPC over TLS (docs/remote.md, "TLS"): a service with
 * fl_rpc_service_opts_t.tls serving RemoteGateway on 127.0.0.1, and
 * callers with certificates of the test CA (scripts/test-certs.sh,
 * FL_TEST_CERTS): calls and asks with mutual authentication, large frames
 * (fragments) both ways, the scheme refusals, a bad option at alloc, a
 * refused client's backoff message, a silent server timing the client's
 * handshake out, the direct paths, the client refusing a server
 * certificate (not naming the host dialed, of another CA, self-signed),
 * and a peer that completes TLS and then never says HELLO. Hostile and
 * mistaken clients at a TLS server (another CA, a stall, plaintext and
 * TLS meeting) are tls_hostile_test's.
 */
#include "fl_test.h"

#include "remote_fixture.h"
#include "tls_raw.h"

#include "common/internal.h"
#include "remote/net.h"
#include "remote/tls.h"
#include "rpc/service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#define CERTS FL_TEST_CERTS

/* The handlers remote_fixture.h leaves to each program. */
static void rg_close_endpoint(Flremote__RemoteGateway_Service *svc,
                              const Flremote__CloseRequest *in,
                              Flremote__Empty_Closure closure,
                              void *closure_data)
{
    (void)svc;
    (void)in;
    (void)closure;
    fl_rpc_fail(closure_data, FL_ENOTSUP, "not in this test");
}

static void rg_call_back(Flremote__RemoteGateway_Service *svc,
                         const Flremote__CallBackRequest *in,
                         Flremote__CallBackReply_Closure closure,
                         void *closure_data)
{
    (void)svc;
    (void)in;
    (void)closure;
    fl_rpc_fail(closure_data, FL_ENOTSUP, "not in this test");
}

static Flremote__RemoteGateway_Service impl =
    FLREMOTE__REMOTE_GATEWAY__INIT(rg_);
static ProtobufCService *const services[1] = {&impl.base};

/* ---- the log ------------------------------------------------------------- */

#define LOG_MAX 256

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    struct {
        fl_log_level_t level;
        char message[600];
        char peer[80];
    } r[LOG_MAX];
} logs = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {{0}}};

static void log_handler(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
    pthread_mutex_lock(&logs.mu);
    if (logs.n < LOG_MAX && rec->level <= FL_LOG_WARN) {
        int i = logs.n++;
        logs.r[i].level = rec->level;
        snprintf(logs.r[i].message, sizeof logs.r[i].message, "%s",
                 rec->message);
        logs.r[i].peer[0] = '\0';
        for (size_t k = 0; k < rec->nfields; k++)
            if (strcmp(rec->fields[k].key, "peer") == 0)
                snprintf(logs.r[i].peer, sizeof logs.r[i].peer, "%s",
                         rec->fields[k].value);
    }
    pthread_cond_broadcast(&logs.cv);
    pthread_mutex_unlock(&logs.mu);
}

static void log_clear(void)
{
    pthread_mutex_lock(&logs.mu);
    logs.n = 0;
    pthread_mutex_unlock(&logs.mu);
}

/* Waits (bounded) for the first warn line beginning with prefix; copies
 * its message and its peer field. */
static void log_wait(const char *prefix, char *msg, size_t cap, char *peer,
                     size_t pcap)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += FL_TEST_WAIT_MS / 1000;
    pthread_mutex_lock(&logs.mu);
    for (;;) {
        for (int i = 0; i < logs.n; i++) {
            if (strncmp(logs.r[i].message, prefix, strlen(prefix)) == 0) {
                assert_int_equal(FL_LOG_WARN, logs.r[i].level);
                snprintf(msg, cap, "%s", logs.r[i].message);
                snprintf(peer, pcap, "%s", logs.r[i].peer);
                pthread_mutex_unlock(&logs.mu);
                return;
            }
        }
        if (pthread_cond_timedwait(&logs.cv, &logs.mu, &dl) != 0)
            break;
    }
    pthread_mutex_unlock(&logs.mu);
    fail_msg("no warn line \"%s...\" within %d ms", prefix, FL_TEST_WAIT_MS);
}

/* A peer field must be "127.0.0.1:<port>" of a port other than ours. */
static void assert_loopback_peer(const char *peer, int not_port)
{
    int port = -1;
    char rest[8] = "";
    if (sscanf(peer, "127.0.0.1:%d%7s", &port, rest) != 1)
        fail_msg("peer \"%s\" is not 127.0.0.1:<port>", peer);
    assert_true(port > 0 && port < 65536 && port != not_port);
}

static int setup(void **st)
{
    (void)st;
    fl_log_set_handler(log_handler, NULL);
    log_clear();
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    fl_log_set_handler(NULL, NULL);
    return 0;
}

#define TLS_TEST(fn)                                                           \
    cmocka_unit_test_setup_teardown(fn, tls_case_setup, tls_case_teardown)

static int tls_case_setup(void **st)
{
    setup(st);
    return fl_test_arm(st);
}

static int tls_case_teardown(void **st)
{
    teardown(st);
    return fl_test_disarm(st);
}

/* ---- services ------------------------------------------------------------ */

static char paths[16][512];
static unsigned npaths;

static const char *cert(const char *name)
{
    char *p = paths[npaths++ % 16];
    snprintf(p, sizeof paths[0], "%s/%s", CERTS, name);
    return p;
}

/* TLS options with who.crt/key, trusting ca.crt. */
static fl_rpc_tls_opts_t tls_of(const char *who, const char *ca)
{
    char c[64], k[64], a[64];
    snprintf(c, sizeof c, "%s.crt", who);
    snprintf(k, sizeof k, "%s.key", who);
    snprintf(a, sizeof a, "%s.crt", ca);
    fl_rpc_tls_opts_t t = {
        .cert_file = cert(c), .key_file = cert(k), .ca_file = cert(a)};
    return t;
}

typedef struct server {
    fl_rpc_service_t *svc;
    fl_rpc_endpoint_t *ep;
    rg_store_t store;
    int port;
    char addr[128];
} server_t;

/* A service on host (TLS with tls, else plaintext) serving
 * RemoteGateway as endpoint "rg". */
static void server_on(server_t *s, const char *host,
                      const fl_rpc_tls_opts_t *tls, int64_t handshake_ms)
{
    memset(s, 0, sizeof *s);
    rg_store_init(&s->store);
    fl_rpc_service_opts_t o = {0};
    o.workers = 2;
    o.bind_host = host;
    o.port = "0";
    o.tls = tls;
    o.handshake_timeout_ms = handshake_ms;
    assert_fl_ok(fl_rpc_service_alloc(&o, &s->svc));
    s->port = fl_rpc_service_port(s->svc);
    fl_rpc_endpoint_opts_t eo = {0};
    eo.id = "rg";
    eo.services = services;
    eo.nservices = 1;
    eo.state = &s->store;
    eo.on_start = rg_on_start;
    assert_fl_ok(fl_rpc_endpoint_create(s->svc, &eo, &s->ep));
    assert_fl_ok(fl_rpc_endpoint_start(s->ep));
}

/* server_on 127.0.0.1, its address checked into s->addr. */
static void server_start(server_t *s, const fl_rpc_tls_opts_t *tls,
                         int64_t handshake_ms)
{
    server_on(s, "127.0.0.1", tls, handshake_ms);
    snprintf(s->addr, sizeof s->addr, "%s://127.0.0.1:%d/rg",
             tls != NULL ? "fling.ssl" : "fling.tcp", s->port);
    assert_string_equal(s->addr, fl_rpc_endpoint_address(s->ep));
}

static void server_end(server_t *s)
{
    fl_test_endpoint_end(s->ep);
    fl_test_service_end(s->svc);
    rg_store_fini(&s->store);
}

static fl_rpc_service_t *client_new(const fl_rpc_tls_opts_t *tls,
                                    int64_t handshake_ms)
{
    fl_rpc_service_opts_t o = {0};
    o.workers = 2;
    o.tls = tls;
    o.handshake_timeout_ms = handshake_ms;
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(&o, &svc));
    return svc;
}

/* server_start with TLS of server.crt trusting ca.crt. */
static void server_start_tls(server_t *s)
{
    fl_rpc_tls_opts_t t = tls_of("server", "ca");
    server_start(s, &t, 0);
}

/* client_new with TLS of client.crt trusting ca.crt. */
static fl_rpc_service_t *tls_client(int64_t handshake_ms)
{
    fl_rpc_tls_opts_t t = tls_of("client", "ca");
    return client_new(&t, handshake_ms);
}

/* Echo through gw: a call (future), a blocking call and an ask (a stub
 * call with a closure), each answered with text and n. */
static void echo_all_ways(fl_rpc_gateway_t *gw, const char *text)
{
    Flremote__EchoRequest req = FLREMOTE__ECHO_REQUEST__INIT;
    req.text = (char *)text;
    req.n = 7;
    fl_future_t *f = fl_test_call(gw, M_ECHO, &req.base, 0);
    fl_test_future_ok(f, "Echo");
    const Flremote__EchoReply *r = fl_future_value(f);
    assert_string_equal(text, r->text);
    assert_int_equal(7, r->n);
    fl_future_release(f);

    ProtobufCMessage *out = NULL;
    req.n = 8;
    assert_fl_ok(fl_rpc_call_sync(gw, M_ECHO, &req.base, 0, &out));
    assert_string_equal(text, ((Flremote__EchoReply *)out)->text);
    assert_int_equal(8, ((Flremote__EchoReply *)out)->n);
    protobuf_c_message_free_unpacked(out, NULL);

    rg_seen_t seen;
    rg_seen_init(&seen, NULL);
    req.n = 9;
    assert_true(
        rg_stub_call(fl_rpc_gateway_service(gw), M_ECHO, &req.base, &seen));
    assert_true(rg_seen_wait(&seen, WAIT_MS));
    assert_fl_ok(seen.code);
    assert_true(seen.got_reply);
    assert_int_equal(9, seen.n);
    assert_string_equal(text, seen.text);
    rg_seen_fini(&seen);
}

/* ---- the cases ----------------------------------------------------------- */

static void test_calls_and_asks_over_mutual_tls(void **st)
{
    server_t s;
    server_start_tls(&s);
    fl_rpc_service_t *cli = tls_client(0);
    fl_rpc_gateway_t *gw = fl_test_connect(cli, s.addr, RG, NULL);
    assert_string_equal(s.addr, fl_rpc_gateway_address(gw));
    echo_all_ways(gw, "over TLS");
    /* A tell, then an answer behind it. */
    Flremote__CountRequest c = FLREMOTE__COUNT_REQUEST__INIT;
    c.n = 5;
    assert_true(
        rg_stub_call(fl_rpc_gateway_service(gw), M_COUNT, &c.base, NULL));
    assert_int_equal(5, rg_store_wait(&s.store, &s.store.count, 5, WAIT_MS));
    /* A handler's failure comes back as it is. */
    Flremote__FailRequest fr = FLREMOTE__FAIL_REQUEST__INIT;
    fr.code = FL_EINVAL;
    fr.message = "no such thing";
    char msg[256];
    assert_fl(FL_EINVAL,
              fl_test_call_code(gw, M_FAIL, &fr.base, 0, msg, sizeof msg));
    assert_string_equal("no such thing", msg);
    fl_rpc_gateway_free(gw);
    fl_test_service_end(cli);
    /* The IP literal and the DNS name the certificate names both pass
     * the host name check. */
    cli = tls_client(0);
    char byname[160];
    snprintf(byname, sizeof byname, "fling.ssl://localhost:%d/rg", s.port);
    gw = fl_test_connect(cli, byname, RG, NULL);
    echo_all_ways(gw, "by name");
    fl_rpc_gateway_free(gw);
    fl_test_service_end(cli);
    server_end(&s);
    int n;
    pthread_mutex_lock(&logs.mu);
    n = logs.n;
    pthread_mutex_unlock(&logs.mu);
    assert_int_equal(0, n); /* no warning on the way */
}

static void test_large_frames_go_in_fragments_over_tls(void **st)
{
    server_t s;
    server_start_tls(&s);
    fl_rpc_service_t *cli = tls_client(0);
    fl_rpc_gateway_t *gw = fl_test_connect(cli, s.addr, RG, NULL);
    /* 3 MiB up (an Echo's text), 5 MiB down (Size): FRAGMENTs inside
     * TLS records both ways. */
    char *text = rg_text(3 << 20, 'a');
    assert_non_null(text);
    Flremote__EchoRequest req = FLREMOTE__ECHO_REQUEST__INIT;
    req.text = text;
    req.n = 1;
    fl_future_t *f = fl_test_call(gw, M_ECHO, &req.base, 0);
    fl_test_future_ok(f, "Echo of 3 MiB");
    const Flremote__EchoReply *r = fl_future_value(f);
    assert_int_equal(3 << 20, strlen(r->text));
    assert_string_equal(text, r->text);
    fl_future_release(f);
    free(text);
    Flremote__SizeRequest sz = FLREMOTE__SIZE_REQUEST__INIT;
    sz.size = 5 << 20;
    f = fl_test_call(gw, M_SIZE, &sz.base, 0);
    fl_test_future_ok(f, "Size of 5 MiB");
    r = fl_future_value(f);
    assert_int_equal(5 << 20, strlen(r->text));
    char *want = rg_text(5 << 20, 'a');
    assert_string_equal(want, r->text);
    free(want);
    fl_future_release(f);
    /* Small calls still pass after them. */
    echo_all_ways(gw, "after");
    fl_rpc_gateway_free(gw);
    fl_test_service_end(cli);
    server_end(&s);
}

static void test_schemes_are_refused_across(void **st)
{
    fl_rpc_service_t *tls = tls_client(0);
    fl_rpc_service_t *plain = client_new(NULL, 0);
    fl_future_t *f = (fl_future_t *)&f;
    assert_fl(FL_EINVAL, fl_rpc_connect(tls, "fling.tcp://127.0.0.1:6123/rg",
                                        RG, NULL, &f));
    assert_null(f);
    assert_fl(FL_EINVAL, fl_rpc_last_error());
    assert_string_equal(
        "Could not connect to rpc endpoint under address "
        "fling.tcp://127.0.0.1:6123/rg: this service uses TLS "
        "(fl_rpc_service_opts_t.tls) and connects to fling.ssl:// addresses "
        "only; there is no plaintext fallback",
        fl_rpc_last_message());
    f = (fl_future_t *)&f;
    assert_fl(FL_EINVAL, fl_rpc_connect(plain, "fling.ssl://127.0.0.1:6123/rg",
                                        RG, NULL, &f));
    assert_null(f);
    assert_string_equal(
        "Could not connect to rpc endpoint under address "
        "fling.ssl://127.0.0.1:6123/rg: this service has no TLS configured "
        "(fl_rpc_service_opts_t.tls, or security.ssl.internal.enabled)",
        fl_rpc_last_message());
    /* A bad fling.ssl:// address is the parser's, as for fling.tcp://. */
    char msg[512];
    assert_fl(FL_ECONNECT, fl_test_connect_error(tls, "fling.ssl://h/rg", RG,
                                                 msg, sizeof msg));
    assert_string_equal("Could not connect to rpc endpoint under address "
                        "fling.ssl://h/rg: no :<port> after the host 'h' "
                        "(fling.ssl://<host>:<port>/<id>)",
                        msg);
    fl_test_service_end(tls);
    fl_test_service_end(plain);
}

static void test_bad_option_is_refused_at_alloc(void **st)
{
    fl_rpc_tls_opts_t t = tls_of("server", "ca");
    t.cert_file = "/nonexistent/server.crt";
    fl_rpc_service_opts_t o = {0};
    o.bind_host = "127.0.0.1";
    o.tls = &t;
    fl_rpc_service_t *svc = (fl_rpc_service_t *)&svc;
    assert_fl(FL_EINVAL, fl_rpc_service_alloc(&o, &svc));
    assert_string_equal("tls.cert_file /nonexistent/server.crt: cannot read "
                        "it: No such file or directory",
                        fl_rpc_last_message());
    /* A key of another certificate. */
    t = tls_of("server", "ca");
    t.key_file = cert("client.key");
    char want[1200];
    snprintf(want, sizeof want,
             "tls.key_file %s/client.key does not match tls.cert_file "
             "%s/server.crt",
             CERTS, CERTS);
    assert_fl(FL_EINVAL, fl_rpc_service_alloc(&o, &svc));
    assert_string_equal(want, fl_rpc_last_message());
    /* A local-only service reads them too (it dials). */
    o.bind_host = NULL;
    t.min_version = (fl_tls_version_t)10;
    t.key_file = cert("server.key");
    assert_fl(FL_EINVAL, fl_rpc_service_alloc(&o, &svc));
    assert_string_equal(
        "tls.min_version 10 is not a TLS version fling speaks: give "
        "FL_TLS_1_2 (12), FL_TLS_1_3 (13) or FL_TLS_DEFAULT (0, TLS 1.3)",
        fl_rpc_last_message());
}

/* A refused client's next attempt waits out its backoff, and says so with
 * the same code and reason. (Refusals with good clients alongside are
 * tls_hostile_test's.) */
static void test_a_refused_client_waits_out_its_backoff(void **st)
{
    server_t s;
    server_start_tls(&s);
    fl_rpc_tls_opts_t other = tls_of("other-client", "ca");
    fl_rpc_service_t *bad = client_new(&other, 0);
    char msg[1024], want[1024];
    assert_fl(FL_ETLS, fl_test_connect_error(bad, s.addr, RG, msg, sizeof msg));
    snprintf(want, sizeof want,
             "Could not connect to rpc endpoint under address %s: TLS "
             "handshake with 127.0.0.1:%d failed: the peer refused the "
             "handshake: tlsv1 alert unknown ca",
             s.addr, s.port);
    assert_string_equal(want, msg);
    char line[600], peer[80];
    log_wait("TLS handshake with ", line, sizeof line, peer, sizeof peer);
    assert_loopback_peer(peer, s.port);
    snprintf(want, sizeof want,
             "TLS handshake with %s failed: certificate verify failed: "
             "unable to get local issuer certificate",
             peer);
    assert_string_equal(want, line);
    assert_fl(FL_ETLS, fl_test_connect_error(bad, s.addr, RG, msg, sizeof msg));
    snprintf(want, sizeof want,
             "Could not connect to rpc endpoint under address %s: TLS "
             "handshake with 127.0.0.1:%d failed: the peer refused the "
             "handshake: tlsv1 alert unknown ca (next attempt in ",
             s.addr, s.port);
    size_t wl = strlen(want);
    assert_memory_equal(want, msg, wl);
    /* The wait left: positive, at most the longest backoff. */
    long long ms = -1;
    int used = -1;
    assert_int_equal(1, sscanf(msg + wl, "%lld ms)%n", &ms, &used));
    assert_int_equal((int)strlen(msg + wl), used);
    assert_true(ms > 0 && ms <= FL__NET_BACKOFF_MAX_MS);
    fl_test_service_end(bad);
    server_end(&s);
}

/* A server that accepts and never answers: the client's handshake bound
 * fails the connect, at that bound and well before the call timeout
 * (10,000 ms). (A client that stalls at a server is tls_hostile_test's.) */
static void test_a_silent_server_times_the_handshake_out(void **st)
{
    int port;
    int lfd = raw_listen(0, &port);
    fl_rpc_service_t *cli = tls_client(300);
    char addr[128], msg[1024], want[1024];
    snprintf(addr, sizeof addr, "fling.ssl://127.0.0.1:%d/rg", port);
    uint64_t t0 = fl_clock_now_ns();
    assert_fl(FL_ETLS, fl_test_connect_error(cli, addr, RG, msg, sizeof msg));
    uint64_t took = fl_test_ms_since(t0);
    snprintf(want, sizeof want,
             "Could not connect to rpc endpoint under address %s: TLS "
             "handshake with 127.0.0.1:%d timed out after 300 ms",
             addr, port);
    assert_string_equal(want, msg);
    assert_true(took >= 300);
    assert_true(took < 5000);
    fl_test_service_end(cli);
    raw_fd_close(lfd);
}

/* ---- the direct paths ---------------------------------------------------
 *
 * Once its handshake is done, a TLS connection is written straight to the
 * socket by the thread that queued a frame, and a thread blocked in a
 * call reads its own answer, as a plaintext one (src/remote/tls_io.c).
 */

typedef struct hold {
    fl_test_latch_t *entered, *release;
} hold_t;

/* A call's completion on the client's I/O thread that keeps it there. */
static void hold_io(fl_future_t *f, void *arg)
{
    (void)f;
    hold_t *h = arg;
    fl_test_latch_count_down(h->entered);
    (void)fl_test_latch_wait(h->release, FL_TEST_WAIT_MS);
}

static fl__net_stats_t stats_of(fl_rpc_service_t *svc)
{
    fl__net_stats_t st;
    fl__net_stats(svc->net, &st);
    return st;
}

static void test_a_blocked_caller_writes_and_reads_itself(void **st)
{
    server_t a, b;
    server_start_tls(&a);
    server_start_tls(&b);
    fl_rpc_service_t *cli = tls_client(0);
    fl_rpc_gateway_t *ga = fl_test_connect(cli, a.addr, RG, NULL);
    fl_rpc_gateway_t *gb = fl_test_connect(cli, b.addr, RG, NULL);
    echo_all_ways(ga, "warm a");
    echo_all_ways(gb, "warm b");
    uint64_t spin_was =
        atomic_exchange(&fl__net_await_spin_ns, (uint64_t)WAIT_MS * 1000000u);
    /* The client's I/O thread stays in the completion of a call to b,
     * parked by b until it is registered. */
    hold_t h = {fl_test_latch_alloc(1), fl_test_latch_alloc(1)};
    Flremote__EchoRequest req = FLREMOTE__ECHO_REQUEST__INIT;
    req.text = "hold";
    req.n = 7;
    fl_future_t *held = fl_test_call(gb, M_BLOCK, &req.base, 0);
    assert_fl_ok(fl_future_on_complete(held, hold_io, &h));
    uint64_t t0 = fl_clock_now_ns();
    while (rg_store_release(&b.store, false, 7) == 0) {
        assert_true(fl_test_ms_since(t0) < WAIT_MS);
        sched_yield();
    }
    assert_int_equal(0, fl_test_latch_wait(h.entered, WAIT_MS));
    /* Meanwhile a blocking call to a goes out from this thread, and this
     * thread reads and decrypts its answer. */
    fl__net_stats_t before = stats_of(cli);
    ProtobufCMessage *out = NULL;
    req.text = "by myself";
    req.n = 42;
    assert_fl_ok(fl_rpc_call_sync(ga, M_ECHO, &req.base, 0, &out));
    assert_string_equal("by myself", ((Flremote__EchoReply *)out)->text);
    assert_int_equal(42, ((Flremote__EchoReply *)out)->n);
    protobuf_c_message_free_unpacked(out, NULL);
    fl__net_stats_t after = stats_of(cli);
    assert_int_equal(before.caller_answers + 1, after.caller_answers);
    fl_test_latch_count_down(h.release);
    fl_test_future_ok(held, "the holding call");
    fl_future_release(held);
    atomic_store(&fl__net_await_spin_ns, spin_was);
    /* Both connections go on as before. */
    echo_all_ways(ga, "after a");
    echo_all_ways(gb, "after b");
    fl_test_latch_free(h.entered);
    fl_test_latch_free(h.release);
    fl_rpc_gateway_free(ga);
    fl_rpc_gateway_free(gb);
    fl_test_service_end(cli);
    server_end(&a);
    server_end(&b);
}

#define CALLERS 4
#define CALLS 300

typedef struct caller {
    fl_rpc_gateway_t *gw;
    int id;
    int bad;
} caller_t;

/* CALLS blocking calls, each checked; every 50th a large one (the I/O
 * thread's big lane beside the direct writes). */
static void *caller_main(void *p)
{
    caller_t *c = p;
    char small[64];
    char *big = rg_text(200000, 'A');
    for (int i = 0; i < CALLS && big != NULL; i++) {
        Flremote__EchoRequest req = FLREMOTE__ECHO_REQUEST__INIT;
        snprintf(small, sizeof small, "caller %d call %d", c->id, i);
        req.text = i % 50 == 49 ? big : small;
        req.n = c->id * 100000 + i;
        ProtobufCMessage *out = NULL;
        if (fl_rpc_call_sync(c->gw, M_ECHO, &req.base, 0, &out) != FL_OK) {
            c->bad++;
            continue;
        }
        const Flremote__EchoReply *r = (const Flremote__EchoReply *)out;
        if (r->n != req.n || strcmp(r->text, req.text) != 0)
            c->bad++;
        protobuf_c_message_free_unpacked(out, NULL);
    }
    if (big == NULL)
        c->bad++;
    free(big);
    return NULL;
}

static void test_many_callers_share_one_tls_connection(void **st)
{
    server_t s;
    server_start_tls(&s);
    fl_rpc_service_t *cli = tls_client(0);
    fl_rpc_gateway_t *gw = fl_test_connect(cli, s.addr, RG, NULL);
    caller_t c[CALLERS];
    pthread_t t[CALLERS];
    for (int i = 0; i < CALLERS; i++) {
        c[i] = (caller_t){.gw = gw, .id = i};
        assert_int_equal(0, pthread_create(&t[i], NULL, caller_main, &c[i]));
    }
    /* Tells and asks from this thread meanwhile. */
    for (int i = 1; i <= 200; i++) {
        Flremote__CountRequest cr = FLREMOTE__COUNT_REQUEST__INIT;
        cr.n = 1;
        assert_true(
            rg_stub_call(fl_rpc_gateway_service(gw), M_COUNT, &cr.base, NULL));
    }
    for (int i = 0; i < CALLERS; i++) {
        assert_int_equal(0, pthread_join(t[i], NULL));
        assert_int_equal(0, c[i].bad);
    }
    assert_int_equal(200,
                     rg_store_wait(&s.store, &s.store.count, 200, WAIT_MS));
    fl_rpc_gateway_free(gw);
    fl_test_service_end(cli);
    server_end(&s);
}

/* ---- the server's certificate, and a silent peer after TLS -------------- */

/* Connecting from cli to fling.ssl://<host>:<s's port>/rg fails FL_ETLS,
 * the client refusing the server's certificate with OpenSSL's reason. */
static void expect_server_refused(fl_rpc_service_t *cli, const server_t *s,
                                  const char *host, const char *reason)
{
    char addr[128], msg[1024], want[1024];
    snprintf(addr, sizeof addr, "fling.ssl://%s:%d/rg", host, s->port);
    assert_fl(FL_ETLS, fl_test_connect_error(cli, addr, RG, msg, sizeof msg));
    snprintf(want, sizeof want,
             "Could not connect to rpc endpoint under address %s: TLS "
             "handshake with %s:%d failed: certificate verify failed: %s",
             addr, host, s->port, reason);
    assert_string_equal(want, msg);
}

static void test_the_client_checks_the_server_certificate(void **st)
{
    (void)st;
    /* node.crt names localhost and 127.0.0.1, not 127.0.0.2. */
    server_t s;
    fl_rpc_tls_opts_t node = tls_of("node", "ca");
    /* On every address: dialed as 127.0.0.2, it is not the host its
     * certificate names. */
    server_on(&s, "0.0.0.0", &node, 0);
    fl_rpc_tls_opts_t ctls = tls_of("client", "ca");
    fl_rpc_service_t *cli = client_new(&ctls, 0);
    expect_server_refused(cli, &s, "127.0.0.2", "IP address mismatch");
    fl_test_service_end(cli);
    /* skip_hostname_check lets the same server through. */
    ctls.skip_hostname_check = true;
    cli = client_new(&ctls, 0);
    char addr[128];
    snprintf(addr, sizeof addr, "fling.ssl://127.0.0.2:%d/rg", s.port);
    fl_rpc_gateway_t *gw = fl_test_connect(cli, addr, RG, NULL);
    echo_all_ways(gw, "any host");
    fl_rpc_gateway_free(gw);
    fl_test_service_end(cli);
    server_end(&s);

    /* A server certificate of another CA, or of none. */
    const char *const bad[][2] = {
        {"other-client", "unable to get local issuer certificate"},
        {"self-signed", "self-signed certificate"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fl_rpc_tls_opts_t stls = tls_of(bad[i][0], "ca");
        server_start(&s, &stls, 0);
        ctls.skip_hostname_check = false;
        cli = client_new(&ctls, 0);
        expect_server_refused(cli, &s, "127.0.0.1", bad[i][1]);
        fl_test_service_end(cli);
        server_end(&s);
    }
}

/* The raw TLS server of the next case: node.crt, the client's certificate
 * required. Caller frees it with SSL_CTX_free. */
static SSL_CTX *silent_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    assert_int_equal(1,
                     SSL_CTX_use_certificate_chain_file(ctx, cert("node.crt")));
    assert_int_equal(1, SSL_CTX_use_PrivateKey_file(ctx, cert("node.key"),
                                                    SSL_FILETYPE_PEM));
    assert_int_equal(1,
                     SSL_CTX_load_verify_locations(ctx, cert("ca.crt"), NULL));
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    return ctx;
}

/* A peer that completes the TLS handshake and then says nothing: the
 * connect fails at handshake_timeout_ms with the HELLO rule's code and
 * message (FL_ECONNECT), not FL_ETLS. */
static void test_tls_done_then_no_hello_times_out(void **st)
{
    (void)st;
    int port;
    int lfd = raw_listen(0, &port); /* accept and fd bounded (SO_RCVTIMEO) */

    fl_rpc_service_t *cli = tls_client(500);
    char addr[128];
    snprintf(addr, sizeof addr, "fling.ssl://127.0.0.1:%d/rg", port);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_connect(cli, addr, RG, NULL, &f));
    int fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    SSL_CTX *ctx = silent_ctx();
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    assert_int_equal(1, SSL_set_fd(ssl, fd));
    assert_int_equal(1, SSL_accept(ssl));

    uint64_t t0 = fl_clock_now_ns();
    (void)fl_future_wait(f, FL_TEST_WAIT_MS);
    assert_true(fl_future_done(f));
    assert_true(fl_test_ms_since(t0) < FL_TEST_WAIT_MS);
    assert_fl(FL_ECONNECT, fl_future_error(f));
    char want[512];
    snprintf(want, sizeof want,
             "Could not connect to rpc endpoint under address %s: handshake "
             "timed out: no HELLO within 500 ms",
             addr);
    assert_string_equal(want, fl_future_message(f));
    fl_future_release(f);
    fl_test_service_end(cli);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    raw_fd_close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TLS_TEST(test_calls_and_asks_over_mutual_tls),
        TLS_TEST(test_large_frames_go_in_fragments_over_tls),
        TLS_TEST(test_schemes_are_refused_across),
        TLS_TEST(test_bad_option_is_refused_at_alloc),
        TLS_TEST(test_a_refused_client_waits_out_its_backoff),
        TLS_TEST(test_a_silent_server_times_the_handshake_out),
        TLS_TEST(test_a_blocked_caller_writes_and_reads_itself),
        TLS_TEST(test_many_callers_share_one_tls_connection),
        TLS_TEST(test_the_client_checks_the_server_certificate),
        TLS_TEST(test_tls_done_then_no_hello_times_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
