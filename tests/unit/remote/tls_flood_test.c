/*
 * tls_flood_test.c - what a TLS peer that does not read makes a fling
 * server hold stays bounded (issue 18; docs/remote.md, "TLS"):
 *
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
} seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void log_sink(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
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
} left;

static void left_end(void)
{
    raw_fd_close_all();
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
    fl_test_cond_init(&seen.cv);
    fl_log_set_handler(log_sink, NULL);
    const struct CMUnitTest tests[] = {
        FL_TEST(test_key_update_flood_closes_the_connection),
    };
    int failed = cmocka_run_group_tests(tests, NULL, group_teardown);
    fl_log_set_handler(NULL, NULL);
    pthread_cond_destroy(&seen.cv);
    return failed;
}
