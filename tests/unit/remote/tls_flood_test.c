/*
 * tls_flood_test.c - what a TLS peer that does not read makes a fling
 * server hold stays bounded (issue 18; docs/remote.md, "TLS"):
 *
 * - direct writes: a fling TLS client sends tells (each written straight
 *   to the socket by the sending thread) to a raw TLS server that stops
 *   reading after CONNECT, while the client's I/O thread is held in a log
 *   line. After every tell, the bytes the client holds (c->queued, and
 *   the ciphertext a direct write left that the queue does not count)
 *   stay within max_queued plus the records' overhead.
 * - engine output: a raw TLS 1.3 client that never reads asks a fling
 *   server for a KeyUpdate again and again (each answered by one), one
 *   byte of a frame between two, so OpenSSL's limit on consecutive
 *   KeyUpdates never applies. The answers the server cannot send are
 *   bounded: it closes the connection with "outbound queue full: the peer
 *   is not reading" and keeps serving its good client.
 *
 * Waits are bounded (WAIT_MS); the server's close is seen in its log.
 */
#include "tls_raw.h"

#include "common/internal.h"
#include "remote/net.h"
#include "remote/tls_io.h"
#include "rpc/service.h"

#define CERT(name) FL_TEST_CERTS "/" name
#define RAW_MAX (1024u * 1024u)
/* SO_RCVBUF of the raw sockets that stop reading. */
#define RAW_RCVBUF 4096
#define EP_ID "calc"

/* The server's queue limit and the most KeyUpdates it may take
 * before it closes the connection. */
#define SERVER_NAME "flood-server"
#define SERVER_QUEUED (64u * 1024u)
#define MAX_UPDATES 400000

static const fl_rpc_tls_opts_t NODE_TLS = {
    .cert_file = CERT("node.crt"),
    .key_file = CERT("node.key"),
    .ca_file = CERT("ca.crt"),
};

/* ---- the log: the server's close ----------------------------------------- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned closes; /* "outbound queue full" lines */
    char line[512];
    /* The line that holds the thread logging it until let_go (case 1;
     * empty: none). */
    char block[128];
    bool blocked, let_go;
} seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void log_sink(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
    pthread_mutex_lock(&seen.mu);
    if (seen.block[0] != '\0' && !seen.blocked &&
        strncmp(rec->message, seen.block, strlen(seen.block)) == 0) {
        seen.blocked = true;
        pthread_cond_broadcast(&seen.cv);
        struct timespec dl = fl_test_deadline(WAIT_MS);
        int rc = 0;
        while (!seen.let_go && rc == 0)
            rc = pthread_cond_timedwait(&seen.cv, &seen.mu, &dl);
    }
    pthread_mutex_unlock(&seen.mu);
    if (rec->level > FL_LOG_INFO)
        return;
    char line[1024];
    fl_log_format(rec, line, sizeof line);
    fprintf(stderr, "%s\n", line);
    if (strstr(rec->message, "outbound queue full") == NULL)
        return;
    pthread_mutex_lock(&seen.mu);
    if (seen.closes++ == 0)
        snprintf(seen.line, sizeof seen.line, "%s", rec->message);
    pthread_cond_broadcast(&seen.cv);
    pthread_mutex_unlock(&seen.mu);
}

static unsigned closes_seen(void)
{
    pthread_mutex_lock(&seen.mu);
    unsigned n = seen.closes;
    pthread_mutex_unlock(&seen.mu);
    return n;
}

/* ---- what a failed case leaves behind ------------------------------------ */

static struct {
    fixture_t *fx;
    fl_rpc_service_t *client;
    fl_rpc_gateway_t *gw;
    fl__conn_t *conn;
} left;

static void let_go(void)
{
    pthread_mutex_lock(&seen.mu);
    seen.let_go = true;
    seen.block[0] = '\0';
    pthread_cond_broadcast(&seen.cv);
    pthread_mutex_unlock(&seen.mu);
}

static void left_end(void)
{
    let_go();
    raw_fd_close_all();
    fl_rpc_gateway_free(left.gw);
    left.gw = NULL;
    if (left.conn != NULL)
        fl__conn_release(left.conn);
    left.conn = NULL;
    (void)service_end(left.client);
    left.client = NULL;
    if (left.fx != NULL) {
        fixture_end(left.fx);
        free(left.fx);
        left.fx = NULL;
    }
}

static int group_teardown(void **state)
{
    (void)state;
    left_end();
    return 0;
}

/* ---- direct writes to a server that does not read ----------------------- */

#define CLIENT_NAME "flood-client"
#define CLIENT_QUEUED (64u * 1024u)
#define TELL_TEXT (16 * 1024)
#define TELLS 64
/* Record headers and tags of a queue's worth of frames. */
#define RECORD_SLACK 4096u

/* Accepts the client's connection on lfd as a raw TLS server with
 * node.crt (the client's certificate required): HELLO both ways, CONNECT
 * to the CalcGateway answered, then it reads nothing. */
static raw_t tls_accept(int lfd)
{
    int fd = accept(lfd, NULL, NULL); /* bounded by lfd's SO_RCVTIMEO */
    if (fd < 0)
        fail_msg("accept: %s", strerror(errno));
    raw_fd_adopt(fd);
    raw_t s =
        raw_of(fd, RAW_MAX, "stalled-server", RAW_MAX, CLIENT_NAME, "sink");
    tls_raw_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(t->ctx);
    assert_int_equal(
        1, SSL_CTX_use_certificate_chain_file(t->ctx, CERT("node.crt")));
    assert_int_equal(1, SSL_CTX_use_PrivateKey_file(t->ctx, CERT("node.key"),
                                                    SSL_FILETYPE_PEM));
    assert_int_equal(
        1, SSL_CTX_load_verify_locations(t->ctx, CERT("ca.crt"), NULL));
    SSL_CTX_set_verify(t->ctx,
                       SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    t->ssl = SSL_new(t->ctx);
    assert_non_null(t->ssl);
    assert_int_equal(1, SSL_set_fd(t->ssl, fd));
    s.io = &TLS_RAW_IO;
    s.io_arg = t;
    char why[256];
    if (SSL_accept(t->ssl) != 1)
        fail_msg("TLS handshake: %s", tls_raw_reason(why, sizeof why));
    raw_hello(&s);
    frame_t f;
    char d[1200];
    next_frame_or_fail(&s, &f, "CONNECT", 1);
    if (f.h.kind != FL__K_CONNECT)
        fail_msg("want CONNECT, got %s", describe(&f, d, sizeof d));
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.service_index = CALC_INDEX;
    send_frame(&s, FL__K_CONNECTED, 0, f.h.corr, &m, NULL, 0);
    frame_clear(&f);
    return s;
}

static void test_direct_writes_stay_within_max_queued(void **state)
{
    (void)state;
    int port;
    int lfd = raw_listen(4096, &port);
    fl_rpc_service_opts_t co = {0};
    co.workers = 1;
    co.name = CLIENT_NAME;
    co.max_frame_size = RAW_MAX;
    co.max_queued_bytes = CLIENT_QUEUED;
    co.tls = &NODE_TLS;
    assert_fl_ok(fl_rpc_service_alloc(&co, &left.client));
    char address[64];
    snprintf(address, sizeof address, "fling.ssl://127.0.0.1:%d/sink", port);
    fl_future_t *cf = NULL;
    assert_fl_ok(fl_rpc_connect(
        left.client, address, &flhostile__calc_gateway__descriptor, NULL, &cf));
    raw_t srv = tls_accept(lfd);
    assert_fl_ok(fl_future_wait(cf, WAIT_MS));
    left.gw = fl_future_take_value(cf);
    fl_future_release(cf);
    assert_fl_ok(fl__net_peer(left.client->net, "127.0.0.1", (uint16_t)port,
                              &left.conn));
    fl__conn_t *c = left.conn;

    /* The client's I/O thread is held in the log line of a connection
     * refused: only the sending thread writes. */
    int shut;
    raw_fd_close(raw_listen(0, &shut));
    fl_log_level_t level = fl_log_get_level();
    fl_log_set_level(FL_LOG_DEBUG);
    pthread_mutex_lock(&seen.mu);
    seen.let_go = seen.blocked = false;
    snprintf(seen.block, sizeof seen.block, "connection to 127.0.0.1:%d closed",
             shut);
    pthread_mutex_unlock(&seen.mu);
    snprintf(address, sizeof address, "fling.ssl://127.0.0.1:%d/sink", shut);
    fl_future_t *rf = NULL;
    assert_fl_ok(fl_rpc_connect(
        left.client, address, &flhostile__calc_gateway__descriptor, NULL, &rf));
    struct timespec dl = fl_test_deadline(WAIT_MS);
    pthread_mutex_lock(&seen.mu);
    int rc = 0;
    while (!seen.blocked && rc == 0)
        rc = pthread_cond_timedwait(&seen.cv, &seen.mu, &dl);
    bool blocked = seen.blocked;
    pthread_mutex_unlock(&seen.mu);
    if (!blocked)
        fail_msg("the refused connection logged nothing within %d ms", WAIT_MS);

    char *text = malloc(TELL_TEXT + 1);
    assert_non_null(text);
    memset(text, 't', TELL_TEXT);
    text[TELL_TEXT] = '\0';
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.text = text;
    size_t most = 0;
    for (int k = 0; k < TELLS; k++) {
        req.v = k;
        flhostile__calc_gateway__add(fl_rpc_gateway_service(left.gw), &req,
                                     NULL, NULL);
        fl__conn_lock(c);
        size_t held = c->queued + fl__tls_io_unsent_locked(c);
        fl__conn_unlock(c);
        if (held > most)
            most = held;
        if (held > CLIENT_QUEUED + RECORD_SLACK)
            fail_msg("after tell %d the client holds %zu bytes for a server "
                     "that does not read, over max_queued %u",
                     k, held, CLIENT_QUEUED);
    }
    print_message("the most held: %zu bytes\n", most);
    free(text);
    let_go();
    fl_log_set_level(level);
    (void)fl_future_wait(rf, WAIT_MS);
    fl_future_release(rf);
    raw_close(&srv);
    raw_fd_close(lfd);
    left_end();
}

/* ---- KeyUpdates from a client that does not read ------------------------- */

static void test_key_update_flood_closes_the_connection(void **state)
{
    (void)state;
    unsigned closes = closes_seen();
    left.fx = calloc(1, sizeof *left.fx);
    assert_non_null(left.fx);
    fl_rpc_service_opts_t so = server_opts(SERVER_NAME, RAW_MAX, SERVER_QUEUED);
    so.tls = &NODE_TLS;
    left.fx->client_tls = &NODE_TLS;
    assert_int_equal(
        0, fixture_start_opts(left.fx, &so, EP_ID, calc_services(), 2));
    uint64_t mark = good_done(&left.fx->good);

    /* A raw TLS 1.3 client with a small receive buffer. */
    raw_t r = raw_of(raw_connect(left.fx->port, RAW_RCVBUF), RAW_MAX,
                     "flood-raw", RAW_MAX, SERVER_NAME, EP_ID);
    tls_raw_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->ctx = tls_raw_ctx("client");
    assert_int_equal(1, SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION));
    t->ssl = SSL_new(t->ctx);
    assert_non_null(t->ssl);
    assert_int_equal(1, SSL_set_fd(t->ssl, r.fd));
    assert_int_equal(
        1, X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), "127.0.0.1"));
    r.io = &TLS_RAW_IO;
    r.io_arg = t;
    char why[256];
    if (SSL_connect(t->ssl) != 1)
        fail_msg("TLS handshake: %s", tls_raw_reason(why, sizeof why));
    raw_hello(&r);
    char peer[64];
    snprintf(peer, sizeof peer, "127.0.0.1:%d", raw_local_port(r.fd));

    /* The bytes of one large frame, one a record, a KeyUpdate (update
     * requested) before each; never a read. */
    uint8_t body[64];
    memset(body, 0, sizeof body);
    fl__frame_hdr_t h = {FL__PROTO_VERSION,           FL__K_INVOKE, 0, 7, 64,
                         RAW_MAX - FL__FRAME_HDR - 64};
    uint8_t hdr[FL__FRAME_HDR];
    fl__frame_encode_hdr(hdr, &h);
    int i = 0;
    for (; i < MAX_UPDATES; i++) {
        if (SSL_key_update(t->ssl, SSL_KEY_UPDATE_REQUESTED) != 1) {
            print_message("key_update: %s\n", tls_raw_reason(why, sizeof why));
            break;
        }
        const uint8_t *b =
            (unsigned)i < FL__FRAME_HDR ? &hdr[i] : &body[i % 64];
        ERR_clear_error();
        int w = SSL_write(t->ssl, b, 1);
        if (w != 1) {
            print_message("write: %s\n", strerror(errno));
            break; /* the server closed the connection */
        }
        if ((i & 1023) == 0 && closes_seen() > closes)
            break;
    }
    ERR_clear_error();
    print_message("%d KeyUpdates sent\n", i);
    struct timespec dl = fl_test_deadline(WAIT_MS);
    pthread_mutex_lock(&seen.mu);
    int rc = 0;
    while (seen.closes == closes && rc == 0)
        rc = pthread_cond_timedwait(&seen.cv, &seen.mu, &dl);
    char line[512];
    snprintf(line, sizeof line, "%s", seen.line);
    unsigned got = seen.closes;
    pthread_mutex_unlock(&seen.mu);
    if (got == closes)
        fail_msg("%d KeyUpdates from a client that does not read, and the "
                 "server did not close the connection within %d ms",
                 i, WAIT_MS);
    char want[256];
    snprintf(want, sizeof want,
             "%s: outbound queue full: the peer is not reading; closing the "
             "connection",
             peer);
    assert_string_equal(want, line);
    raw_wait_closed(r.fd, WAIT_MS);
    raw_close(&r);
    /* The server keeps serving its good client. */
    good_wait(&left.fx->good, mark + 20, WAIT_MS);
    left_end();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_direct_writes_stay_within_max_queued),
        FL_TEST(test_key_update_flood_closes_the_connection),
    };
    return raw_run_logged("tests", tests, sizeof tests / sizeof *tests,
                          log_sink, &seen.cv, group_teardown);
}
