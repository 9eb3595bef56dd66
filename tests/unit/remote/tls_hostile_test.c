/*
 * tls_hostile_test.c - fling's TLS servers against hostile and mistaken
 * clients (issue 18; docs/remote.md, "TLS"; docs/wire-protocol.md, "TLS").
 *
 * Two in-process RPC services listen on 127.0.0.1, port 0, each with the
 * calc endpoint of wire_client.h: one speaks mutual TLS (node.crt, trusting
 * ca.crt, handshake_timeout_ms HS_MS), the other plaintext. For the whole
 * session a well-behaved fling client calls each of them in a loop on its
 * own thread (the TLS one with client.crt) and checks every reply. Each
 * case is one hostile step, made with fling clients (a fling service with
 * the wrong scheme or certificate) and with the raw clients of wire_raw.h
 * (plaintext) and tls_raw.h (libssl directly: no certificate, a
 * ClientHello and silence, bytes that are not frames inside TLS), and
 * asserts exactly what comes back: the connect's code and message at a
 * fling client, OpenSSL's reason at a raw one, and the server's one warn
 * line (message and fields) naming the client's address.
 *
 * After every step both good clients must have completed GOOD_PER_STEP
 * more calls, all correct, a fresh raw session (TLS on the TLS server)
 * must get through the handshake and a call, and the servers must have
 * warned exactly the lines the step expects, no more. The log clock moves
 * a rate-limit window per line, so no expected line is held back.
 */
#include "tls_raw.h"

#include "common/internal.h"

/* Calls each good client must complete after each hostile step begins. */
#define GOOD_PER_STEP 20
/* The servers' and the raw clients' maximum frame sizes. */
#define SERVER_MAX (1024u * 1024u)
#define CLIENT_MAX (1024u * 1024u)
#define CLIENT_NAME "hostile-client"
#define EP_ID "calc"

/* The TLS server's handshake bound (fl_rpc_service_opts_t): it bounds every
 * good handshake of every step too, so it is the default, not tight; only
 * the stalled step waits it out. */
#define HS_MS 5000
#define TLS_NAME "tls-hostile-server"
#define PLAIN_NAME "plain-hostile-server"

#define PREFIX "Could not connect to rpc endpoint under address "

/* ---- the certificates ---------------------------------------------------- */

#define CERT(name) FL_TEST_CERTS "/" name

static const fl_rpc_tls_opts_t SERVER_TLS = {
    .cert_file = CERT("node.crt"),
    .key_file = CERT("node.key"),
    .ca_file = CERT("ca.crt"),
};

/* A client's TLS options with certificate `name` (its base name). */
static fl_rpc_tls_opts_t client_tls(const char *name, char *cert, char *key,
                                    size_t cap)
{
    snprintf(cert, cap, "%s/%s.crt", FL_TEST_CERTS, name);
    snprintf(key, cap, "%s/%s.key", FL_TEST_CERTS, name);
    fl_rpc_tls_opts_t o = {
        .cert_file = cert, .key_file = key, .ca_file = CERT("ca.crt")};
    return o;
}

/* ---- the warn lines ------------------------------------------------------ */

/* Every warning the library logged, in order (the servers' and any
 * other's). */
#define WARN_MAX 64
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char line[WARN_MAX][1024];
    char fields[WARN_MAX][256];
    unsigned n;
} warns = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void warn_sink(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
    if (rec->level < FL_LOG_WARN)
        return;
    fprintf(stderr, "fling: %s\n", rec->message);
    pthread_mutex_lock(&warns.mu);
    unsigned i = warns.n % WARN_MAX;
    snprintf(warns.line[i], sizeof warns.line[i], "%s", rec->message);
    size_t k = 0;
    warns.fields[i][0] = '\0';
    for (size_t f = 0; f < rec->nfields && k < sizeof warns.fields[i]; f++)
        k += (size_t)snprintf(warns.fields[i] + k, sizeof warns.fields[i] - k,
                              "%s%s=%s", f ? " " : "", rec->fields[f].key,
                              rec->fields[f].value);
    warns.n++;
    pthread_cond_broadcast(&warns.cv);
    pthread_mutex_unlock(&warns.mu);
}

/* The log's clock: each reading a rate-limit window past the last, so
 * that no line of a step is held back by the limit of its call site. */
static atomic_uint_fast64_t log_now;

static uint64_t stepping_clock(void)
{
    return atomic_fetch_add(&log_now, FL__LOG_WINDOW_NS) + FL__LOG_WINDOW_NS;
}

static unsigned warn_count(void)
{
    pthread_mutex_lock(&warns.mu);
    unsigned n = warns.n;
    pthread_mutex_unlock(&warns.mu);
    return n;
}

/* Waits (WAIT_MS) for warning number `i` (counted from the start) and
 * copies its line and fields. */
static void warn_get(unsigned i, char *line, size_t lcap, char *fields,
                     size_t fcap)
{
    struct timespec dl = fl_test_deadline(WAIT_MS);
    pthread_mutex_lock(&warns.mu);
    int rc = 0;
    while (warns.n <= i && rc == 0)
        rc = pthread_cond_timedwait(&warns.cv, &warns.mu, &dl);
    bool have = warns.n > i;
    if (have) {
        snprintf(line, lcap, "%s", warns.line[i % WARN_MAX]);
        snprintf(fields, fcap, "%s", warns.fields[i % WARN_MAX]);
    }
    pthread_mutex_unlock(&warns.mu);
    if (!have)
        fail_msg("no warning number %u within %d ms", i, WAIT_MS);
}

/* Warning number i is exactly `want` with the field peer=<peer>. */
static void expect_warn(unsigned i, const char *want, const char *peer)
{
    char line[1024], fields[256], kv[128];
    warn_get(i, line, sizeof line, fields, sizeof fields);
    assert_string_equal(want, line);
    snprintf(kv, sizeof kv, "peer=%s", peer);
    assert_string_equal(kv, fields);
}

/* The peer a fling client's connection had (its port is the kernel's):
 * the field of warning number i, which must be 127.0.0.1:<port> of a port
 * neither server's. Copied into peer. */
static void warned_peer(unsigned i, char *peer, size_t cap)
{
    char line[1024], fields[256];
    warn_get(i, line, sizeof line, fields, sizeof fields);
    int port = 0, n = 0;
    if (sscanf(fields, "peer=127.0.0.1:%d%n", &port, &n) != 1 ||
        fields[n] != '\0' || port <= 0 || port > 65535)
        fail_msg("warning %u names no loopback peer: \"%s\" | %s", i, line,
                 fields);
    snprintf(peer, cap, "127.0.0.1:%d", port);
}

/* ---- the fixture: two servers, two good clients -------------------------- */

typedef struct session {
    fixture_t tls, plain;
} session_t;

static int setup(void **state)
{
    session_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -1;
    *state = s;
    fl_rpc_service_opts_t so = server_opts(TLS_NAME, SERVER_MAX, 0);
    so.tls = &SERVER_TLS;
    so.handshake_timeout_ms = HS_MS;
    static char cert[512], key[512];
    static fl_rpc_tls_opts_t good;
    good = client_tls("client", cert, key, sizeof cert);
    s->tls.client_tls = &good;
    if (fixture_start_opts(&s->tls, &so, EP_ID, calc_services(), 2) != 0)
        return -1;
    return fixture_start(&s->plain, PLAIN_NAME, SERVER_MAX, 0, EP_ID,
                         calc_services(), 2);
}

static int teardown(void **state)
{
    raw_fd_close_all();
    session_t *s = *state;
    if (s != NULL) {
        fixture_end(&s->tls);
        fixture_end(&s->plain);
        free(s);
    }
    return 0;
}

/* The peer name a server sees for r: "127.0.0.1:<r's port>". */
static const char *peer_of(const raw_t *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "127.0.0.1:%d", raw_local_port(r->fd));
    return buf;
}

/* A raw plaintext connection to fx's server. */
static raw_t plain_open(const fixture_t *fx, const char *server_name)
{
    return raw_of(raw_connect(fx->port, 0), CLIENT_MAX, CLIENT_NAME, SERVER_MAX,
                  server_name, EP_ID);
}

/* A raw TLS connection to the TLS server with client.crt, through the TLS
 * handshake (and no frame yet). */
static raw_t tls_open(const session_t *s)
{
    raw_t r;
    char why[256];
    if (!tls_raw_open(&r, s->tls.port, "client", CLIENT_MAX, CLIENT_NAME,
                      SERVER_MAX, TLS_NAME, EP_ID, why, sizeof why))
        fail_msg("TLS handshake with the TLS server: %s", why);
    return r;
}

/*
 * Every step ends with this: both good clients completed GOOD_PER_STEP
 * more calls since the marks, all correct, and then one more each; a
 * fresh raw TLS session on the TLS server and a raw plaintext session on
 * the plaintext one get through HELLO, CONNECT and a call; and the
 * servers warned `warned` lines since `since`, no more.
 */
static void step_end(session_t *s, uint64_t tls_mark, uint64_t plain_mark,
                     unsigned since, unsigned warned)
{
    good_wait(&s->tls.good, tls_mark + GOOD_PER_STEP, WAIT_MS);
    good_wait(&s->plain.good, plain_mark + GOOD_PER_STEP, WAIT_MS);
    good_wait(&s->tls.good, good_done(&s->tls.good) + 1, WAIT_MS);
    good_wait(&s->plain.good, good_done(&s->plain.good) + 1, WAIT_MS);
    raw_t r = tls_open(s);
    raw_hello(&r);
    raw_attach(&r, 1, CALC_NAME, CALC_INDEX);
    expect_usable(&r, 2, 41);
    raw_close(&r);
    r = plain_open(&s->plain, PLAIN_NAME);
    raw_hello(&r);
    raw_attach(&r, 1, CALC_NAME, CALC_INDEX);
    expect_usable(&r, 2, 42);
    raw_close(&r);
    assert_int_equal(since + warned, warn_count());
    assert_int_equal(0, atomic_load(&s->tls.calc.poison_hits));
    assert_int_equal(0, atomic_load(&s->plain.calc.poison_hits));
}

typedef unsigned (*tls_step_fn)(session_t *s, unsigned since);

/* Runs one step, which returns how many warnings it expected, with the
 * marks and the checks of step_end around it. */
static void run_tls_step(void **state, tls_step_fn step)
{
    session_t *s = *state;
    uint64_t tm = good_done(&s->tls.good), pm = good_done(&s->plain.good);
    unsigned since = warn_count();
    unsigned warned = step(s, since);
    step_end(s, tm, pm, since, warned);
}

/* Defines the cmocka case test_<name>: the step whose body follows, with
 * s (the session) and since (the warnings before it); it returns the
 * number of warnings it expected. */
#define TLS_STEP(name)                                                         \
    static unsigned name##_step(session_t *s, unsigned since);                 \
    static void test_##name(void **state)                                      \
    {                                                                          \
        run_tls_step(state, name##_step);                                      \
    }                                                                          \
    static unsigned name##_step(session_t *s, unsigned since)

/* A calling service of this process (not listening) with TLS options t
 * (NULL: plaintext). */
static fl_rpc_service_t *caller(const fl_rpc_tls_opts_t *t)
{
    fl_rpc_service_opts_t o = {0};
    o.workers = 1;
    o.name = "hostile-caller";
    o.tls = t;
    fl_rpc_service_t *svc = NULL;
    int rc = fl_rpc_service_alloc(&o, &svc);
    if (rc != FL_OK)
        fail_msg("fl_rpc_service_alloc: %s (%s)", fl_err_name(rc),
                 fl_rpc_last_message());
    return svc;
}

/* Connecting from svc to address fails with code and exactly want. */
static void expect_connect_fails(fl_rpc_service_t *svc, const char *address,
                                 int code, const char *want)
{
    char msg[FL_FUTURE_MESSAGE_MAX];
    assert_fl(code, fl_test_connect_error(svc, address,
                                          &flhostile__calc_gateway__descriptor,
                                          msg, sizeof msg));
    assert_string_equal(want, msg);
}

/* ---- cases --------------------------------------------------------------- */

TLS_STEP(addresses_say_the_scheme)
{
    char want[128];
    snprintf(want, sizeof want, "fling.ssl://127.0.0.1:%d/" EP_ID, s->tls.port);
    assert_string_equal(want, fl_rpc_endpoint_address(s->tls.ep));
    snprintf(want, sizeof want, "fling.tcp://127.0.0.1:%d/" EP_ID,
             s->plain.port);
    assert_string_equal(want, fl_rpc_endpoint_address(s->plain.ep));
    (void)since;
    return 0;
}

/* A plaintext fling client on the TLS port is told in its own protocol
 * (HELLO, then ERROR FL_ETLS) to connect with TLS. */
TLS_STEP(plaintext_client_on_the_tls_port_is_told_to_use_tls)
{
    char addr[128], want[512], told[256], peer[64], line[512];
    snprintf(told, sizeof told,
             "127.0.0.1:%d requires TLS: connect with fling.ssl:// and a "
             "client certificate",
             s->tls.port);

    /* A fling client. */
    fl_rpc_service_t *cli = caller(NULL);
    snprintf(addr, sizeof addr, "fling.tcp://127.0.0.1:%d/" EP_ID, s->tls.port);
    snprintf(want, sizeof want, PREFIX "%s: %s", addr, told);
    expect_connect_fails(cli, addr, FL_ETLS, want);
    fl_test_service_end(cli);
    warned_peer(since, peer, sizeof peer);
    snprintf(line, sizeof line,
             "TLS handshake with %s failed: the peer speaks plaintext fling, "
             "not TLS (told to connect with fling.ssl://)",
             peer);
    expect_warn(since, line, peer);

    /* A raw one: the server's HELLO, the ERROR, the end. */
    raw_t r = plain_open(&s->tls, TLS_NAME);
    peer_of(&r, peer, sizeof peer);
    raw_hello(&r);
    char msg[FL__ERRMSG_MAX + 1];
    expect_error_then_close(&r, FL_ETLS, msg, sizeof msg);
    assert_string_equal(told, msg);
    raw_close(&r);
    snprintf(line, sizeof line,
             "TLS handshake with %s failed: the peer speaks plaintext fling, "
             "not TLS (told to connect with fling.ssl://)",
             peer);
    expect_warn(since + 1, line, peer);
    return 2;
}

/* A TLS client on the plaintext port: the plaintext server says so, a
 * fling client says the peer speaks plaintext. */
TLS_STEP(tls_client_on_the_plaintext_port_is_refused)
{
    char addr[128], want[512], peer[64], line[512];
    char cert[512], key[512];
    fl_rpc_tls_opts_t t = client_tls("client", cert, key, sizeof cert);
    fl_rpc_service_t *cli = caller(&t);
    snprintf(addr, sizeof addr, "fling.ssl://127.0.0.1:%d/" EP_ID,
             s->plain.port);
    snprintf(want, sizeof want,
             PREFIX "%s: TLS handshake with 127.0.0.1:%d failed: the peer "
                    "speaks plaintext fling, not TLS (connect with "
                    "fling.tcp://, or turn TLS on at the peer)",
             addr, s->plain.port);
    expect_connect_fails(cli, addr, FL_ETLS, want);
    fl_test_service_end(cli);
    warned_peer(since, peer, sizeof peer);
    snprintf(line, sizeof line,
             "a TLS client %s connected to the plaintext port %d; refused",
             peer, s->plain.port);
    expect_warn(since, line, peer);

    /* A raw TLS client: OpenSSL reads the frame magic as a record. */
    raw_t r;
    char why[256];
    assert_false(tls_raw_open(&r, s->plain.port, "client", 0, "", 0, "", "",
                              why, sizeof why));
    assert_string_equal("wrong version number", why);
    peer_of(&r, peer, sizeof peer);
    raw_close(&r);
    snprintf(line, sizeof line,
             "a TLS client %s connected to the plaintext port %d; refused",
             peer, s->plain.port);
    expect_warn(since + 1, line, peer);
    return 2;
}

TLS_STEP(client_without_a_certificate_is_refused)
{
    char peer[64], line[512];
    int port = tls_raw_expect_refused(s->tls.port, NULL,
                                      "tlsv13 alert certificate required");
    snprintf(peer, sizeof peer, "127.0.0.1:%d", port);
    snprintf(line, sizeof line,
             "TLS handshake with %s failed: peer did not return a "
             "certificate",
             peer);
    expect_warn(since, line, peer);
    return 1;
}

/*
 * A client whose certificate the server refuses (cert: its base name):
 * a fling client's connect fails FL_ETLS with the alert the server sent
 * (alert), a raw client reads the same alert, and each is one warn line
 * with the certificate's fault (x509: X509_verify_cert_error_string).
 */
static unsigned refused_cert(session_t *s, unsigned since, const char *cert,
                             const char *alert, const char *x509)
{
    char addr[128], want[512], peer[64], line[512], crt[512], key[512];
    fl_rpc_tls_opts_t t = client_tls(cert, crt, key, sizeof crt);
    fl_rpc_service_t *cli = caller(&t);
    snprintf(addr, sizeof addr, "fling.ssl://127.0.0.1:%d/" EP_ID, s->tls.port);
    snprintf(want, sizeof want,
             PREFIX "%s: TLS handshake with 127.0.0.1:%d failed: the peer "
                    "refused the handshake: %s",
             addr, s->tls.port, alert);
    expect_connect_fails(cli, addr, FL_ETLS, want);
    fl_test_service_end(cli);
    warned_peer(since, peer, sizeof peer);
    snprintf(line, sizeof line,
             "TLS handshake with %s failed: certificate verify failed: %s",
             peer, x509);
    expect_warn(since, line, peer);

    int port = tls_raw_expect_refused(s->tls.port, cert, alert);
    snprintf(peer, sizeof peer, "127.0.0.1:%d", port);
    snprintf(line, sizeof line,
             "TLS handshake with %s failed: certificate verify failed: %s",
             peer, x509);
    expect_warn(since + 1, line, peer);
    return 2;
}

TLS_STEP(self_signed_client_certificate_is_refused)
{
    return refused_cert(s, since, "self-signed", "tlsv1 alert unknown ca",
                        "self-signed certificate");
}

TLS_STEP(client_certificate_of_another_ca_is_refused)
{
    return refused_cert(s, since, "other-client", "tlsv1 alert unknown ca",
                        "unable to get local issuer certificate");
}

TLS_STEP(expired_client_certificate_is_refused)
{
    return refused_cert(s, since, "expired", "sslv3 alert certificate expired",
                        "certificate has expired");
}

/* A client that says ClientHello and nothing more is dropped at the
 * handshake bound, neither sooner nor held. */
TLS_STEP(stalled_client_hello_is_dropped_at_the_handshake_timeout)
{
    char peer[64], line[512];
    int port = 0;
    uint64_t t0 = fl_clock_now_ns();
    tls_raw_stall(s->tls.port, WAIT_MS, &port);
    /* The bound runs from the accept, a little before our clock began. */
    fl_test_assert_elapsed("dropping the stalled handshake",
                           fl_test_ms_since(t0), HS_MS - 100, WAIT_MS);
    snprintf(peer, sizeof peer, "127.0.0.1:%d", port);
    snprintf(line, sizeof line, "TLS handshake with %s timed out after %d ms",
             peer, HS_MS);
    expect_warn(since, line, peer);
    return 1;
}

/* Inside TLS the frames' rules hold as outside: bytes that are not a frame
 * are ERROR FL_EPROTO (encrypted), then the connection closes. Once in
 * place of HELLO, once after a session's call. */
TLS_STEP(garbage_inside_tls_is_a_protocol_error)
{
    uint8_t junk[256];
    uint32_t x = 0x9e3779b9u;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1664525u + 1013904223u;
        junk[i] = (uint8_t)(x >> 24);
    }
    junk[0] = 0x00; /* not 'F': the magic is wrong from the first byte */
    uint32_t magic = (uint32_t)junk[0] << 24 | (uint32_t)junk[1] << 16 |
                     (uint32_t)junk[2] << 8 | junk[3];
    char why[128], msg[FL__ERRMSG_MAX + 1], peer[64], line[512];
    snprintf(why, sizeof why, "bad magic 0x%08x (want 0x464c4e47)", magic);

    for (int k = 0; k < 2; k++) {
        raw_t r = tls_open(s);
        peer_of(&r, peer, sizeof peer);
        if (k == 1) {
            raw_hello(&r);
            raw_attach(&r, 1, CALC_NAME, CALC_INDEX);
            expect_usable(&r, 2, 7);
        }
        raw_send(&r, junk, sizeof junk);
        expect_error_then_close(&r, FL_EPROTO, msg, sizeof msg);
        assert_string_equal(why, msg);
        raw_close(&r);
        snprintf(line, sizeof line, "%s: FL_EPROTO: %s; closing the connection",
                 peer, why);
        expect_warn(since + (unsigned)k, line, peer);
    }
    return 2;
}

/* Bytes that are not TLS in place of a ClientHello (a plain HTTP request):
 * the handshake fails with OpenSSL's reason and the connection closes. */
TLS_STEP(http_request_on_the_tls_port_fails_the_handshake)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    int fd = raw_connect(s->tls.port, 0);
    char peer[64], line[512];
    snprintf(peer, sizeof peer, "127.0.0.1:%d", raw_local_port(fd));
    raw_t r = raw_of(fd, 0, "", 0, "", "");
    raw_send(&r, req, sizeof req - 1);
    raw_wait_closed(fd, WAIT_MS);
    raw_close(&r);
    snprintf(line, sizeof line, "TLS handshake with %s failed: http request",
             peer);
    expect_warn(since, line, peer);
    return 1;
}

/* A forged record after the handshake (bytes written past TLS, which no
 * key sealed): the record layer refuses it and the connection closes; the
 * session's HELLO and call came first. */
TLS_STEP(forged_record_after_the_handshake_closes_the_connection)
{
    raw_t r = tls_open(s);
    char peer[64], line[512];
    peer_of(&r, peer, sizeof peer);
    raw_hello(&r);
    raw_attach(&r, 1, CALC_NAME, CALC_INDEX);
    expect_usable(&r, 2, 8);
    uint8_t rec[5 + 32] = {0x17, 0x03, 0x03, 0x00, 32};
    for (size_t i = 5; i < sizeof rec; i++)
        rec[i] = (uint8_t)(i * 37);
    assert_int_equal((ssize_t)sizeof rec,
                     send(r.fd, rec, sizeof rec, MSG_NOSIGNAL));
    raw_wait_closed(r.fd, WAIT_MS);
    raw_close(&r);
    snprintf(line, sizeof line,
             "%s: TLS: decryption failed or bad record mac; closing the "
             "connection",
             peer);
    expect_warn(since, line, peer);
    return 1;
}

/* The last case: the good clients stop (all their answers were right), the
 * endpoints terminate, so every request the servers ever dispatched has
 * run, and none of them was a poisoned one. */
static void test_after_the_session_every_good_call_was_right(void **state)
{
    session_t *s = *state;
    raw_session_end(&s->tls, GOOD_PER_STEP);
    raw_session_end(&s->plain, GOOD_PER_STEP);
}

int main(void)
{
    fl__log_set_clock(stepping_clock);
    fl_test_cond_init(&warns.cv);
    fl_log_set_handler(warn_sink, NULL);
    const struct CMUnitTest tests[] = {
        FL_TEST(test_addresses_say_the_scheme),
        FL_TEST(test_plaintext_client_on_the_tls_port_is_told_to_use_tls),
        FL_TEST(test_tls_client_on_the_plaintext_port_is_refused),
        FL_TEST(test_client_without_a_certificate_is_refused),
        FL_TEST(test_self_signed_client_certificate_is_refused),
        FL_TEST(test_client_certificate_of_another_ca_is_refused),
        FL_TEST(test_expired_client_certificate_is_refused),
        FL_TEST(test_stalled_client_hello_is_dropped_at_the_handshake_timeout),
        FL_TEST(test_garbage_inside_tls_is_a_protocol_error),
        FL_TEST(test_http_request_on_the_tls_port_fails_the_handshake),
        FL_TEST(test_forged_record_after_the_handshake_closes_the_connection),
        FL_TEST(test_after_the_session_every_good_call_was_right),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    fl_log_set_handler(NULL, NULL);
    fl__log_set_clock(NULL);
    return failed;
}
