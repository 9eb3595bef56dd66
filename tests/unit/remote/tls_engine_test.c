/*
 * tls_engine_test - the TLS engine (src/remote/tls.h) in memory: two
 * engines, a client and a server, talking through buffers with the test
 * certificates (scripts/test-certs.sh, FL_TEST_CERTS). The handshake,
 * data both ways in records of any size fed byte by byte and all at once,
 * every failure with OpenSSL's exact reason, the plaintext peer, and a bad
 * or missing file for each option with its exact message.
 */
#include "fl_test.h"

#include "remote/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CERTS FL_TEST_CERTS

static char path_buf[8][512];
static unsigned path_next;

/* FL_TEST_CERTS/<name>, in a ring of buffers (a few per call). */
static const char *cert(const char *name)
{
    char *p = path_buf[path_next++ % 8];
    snprintf(p, sizeof path_buf[0], "%s/%s", CERTS, name);
    return p;
}

/* A context of o, or the test fails naming who. */
static fl__tls_ctx_t *ctx_make(const fl_rpc_tls_opts_t *o, const char *who)
{
    fl__tls_ctx_t *x = NULL;
    char why[512] = "";
    int rc = fl__tls_ctx_new(o, &x, why, sizeof why);
    if (rc != FL_OK)
        fail_msg("context of %s: %s: %s", who, fl_err_name(rc), why);
    return x;
}

/* A context with `who`.crt/.key trusting ca (the name of its .crt). */
static fl__tls_ctx_t *ctx_of(const char *who, const char *ca, bool skip_host)
{
    char c[64], k[64], a[64];
    snprintf(c, sizeof c, "%s.crt", who);
    snprintf(k, sizeof k, "%s.key", who);
    snprintf(a, sizeof a, "%s.crt", ca);
    fl_rpc_tls_opts_t o = {.cert_file = cert(c),
                           .key_file = cert(k),
                           .ca_file = cert(a),
                           .skip_hostname_check = skip_host};
    return ctx_make(&o, who);
}

/* A context of server.* (server) or client.* trusting ca, with the
 * given version floor and lists. */
static fl__tls_ctx_t *ctx_lists(bool server, fl_tls_version_t min,
                                const char *ciphers, const char *suites)
{
    const char *who = server ? "server" : "client";
    char c[64], k[64];
    snprintf(c, sizeof c, "%s.crt", who);
    snprintf(k, sizeof k, "%s.key", who);
    fl_rpc_tls_opts_t o = {.cert_file = cert(c),
                           .key_file = cert(k),
                           .ca_file = cert("ca.crt"),
                           .min_version = min,
                           .ciphers = ciphers,
                           .ciphersuites = suites};
    return ctx_make(&o, who);
}

/* Move what `from` has to send into `to`, one byte per feed if bytewise.
 * Returns the bytes moved. */
static size_t pump(fl__tls_t *from, fl__tls_t *to, bool bytewise)
{
    uint8_t buf[4096];
    size_t total = 0, n;
    while ((n = fl__tls_out_take(from, buf, sizeof buf)) > 0) {
        total += n;
        if (bytewise) {
            for (size_t i = 0; i < n; i++)
                assert_fl_ok(fl__tls_feed(to, buf + i, 1));
        } else {
            assert_fl_ok(fl__tls_feed(to, buf, n));
        }
    }
    return total;
}

typedef struct pair {
    fl__tls_ctx_t *cx, *sx;
    fl__tls_t *c, *s;
    int crc, src; /* the last handshake results */
} pair_t;

/* The two engines of p's contexts, the client's dialing host. */
static void pair_engines(pair_t *p, const char *host)
{
    assert_fl_ok(fl__tls_new(p->cx, true, host, &p->c));
    assert_fl_ok(fl__tls_new(p->sx, false, NULL, &p->s));
}

static void pair_open(pair_t *p, const char *client, const char *client_ca,
                      const char *server, const char *server_ca,
                      const char *host)
{
    memset(p, 0, sizeof *p);
    p->cx = ctx_of(client, client_ca, false);
    p->sx = ctx_of(server, server_ca, false);
    pair_engines(p, host);
}

static void pair_close(pair_t *p)
{
    fl__tls_free(p->c);
    fl__tls_free(p->s);
    fl__tls_ctx_free(p->cx);
    fl__tls_ctx_free(p->sx);
}

/* Run the handshake until neither side has anything to send. */
static void pair_handshake(pair_t *p, bool bytewise)
{
    p->crc = fl__tls_handshake(p->c);
    p->src = FL_EPENDING;
    for (int round = 0; round < 20; round++) {
        size_t moved = pump(p->c, p->s, bytewise);
        if (p->src == FL_EPENDING)
            p->src = fl__tls_handshake(p->s);
        moved += pump(p->s, p->c, bytewise);
        if (p->crc == FL_EPENDING)
            p->crc = fl__tls_handshake(p->c);
        if (moved == 0)
            return;
    }
    fail_msg("the handshake did not settle in 20 rounds");
}

/* Run the handshake; both sides must succeed. */
static void pair_handshake_ok(pair_t *p, bool bytewise)
{
    pair_handshake(p, bytewise);
    assert_fl_ok(p->crc);
    assert_fl_ok(p->src);
}

/* Read everything `to` has decrypted into out (cap bytes). */
static size_t drain(fl__tls_t *to, uint8_t *out, size_t cap, int *rc)
{
    size_t total = 0, got;
    do {
        *rc = fl__tls_read(to, out + total, cap - total, &got);
        total += got;
    } while (*rc == FL_OK && got > 0 && total < cap);
    return total;
}

/* n bytes from `from` to `to`, written in pieces of `piece` bytes, fed
 * byte by byte or all at once; checks they arrive whole and in order. */
static void send_check(fl__tls_t *from, fl__tls_t *to, size_t n, size_t piece,
                       bool bytewise)
{
    uint8_t *src = malloc(n), *dst = malloc(n + 1);
    assert_non_null(src);
    assert_non_null(dst);
    for (size_t i = 0; i < n; i++)
        src[i] = (uint8_t)(i * 7 + n);
    for (size_t off = 0; off < n; off += piece)
        assert_fl_ok(
            fl__tls_write(from, src + off, n - off < piece ? n - off : piece));
    pump(from, to, bytewise);
    int rc;
    size_t got = drain(to, dst, n + 1, &rc);
    assert_fl_ok(rc);
    assert_int_equal(n, got);
    assert_memory_equal(src, dst, n);
    free(src);
    free(dst);
}

static void test_handshake_and_data_both_ways(void **st)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        pair_t p;
        pair_open(&p, "client", "ca", "server", "ca", "localhost");
        pair_handshake_ok(&p, bytewise);
        assert_true(fl__tls_done(p.c));
        assert_true(fl__tls_done(p.s));
        assert_string_equal("", fl__tls_why(p.c));
        static const size_t sizes[] = {1, 100, 16383, 16384, 16385, 100000};
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            /* Whole, then in small and in odd pieces (many records). */
            send_check(p.c, p.s, sizes[i], sizes[i], bytewise);
            send_check(p.s, p.c, sizes[i], sizes[i], bytewise);
            if (!bytewise || sizes[i] <= 16385) {
                send_check(p.c, p.s, sizes[i], 7, bytewise);
                send_check(p.s, p.c, sizes[i], 4099, bytewise);
            }
        }
        pair_close(&p);
    }
}

static void test_hostname_is_checked_unless_skipped(void **st)
{
    static const struct {
        const char *host, *why;
    } cases[] = {
        {"127.0.0.1", NULL},
        {"localhost", NULL},
        {"example.com", "certificate verify failed: hostname mismatch"},
        {"127.0.0.2", "certificate verify failed: IP address mismatch"},
        {"::1", "certificate verify failed: IP address mismatch"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pair_t p;
        pair_open(&p, "client", "ca", "server", "ca", cases[i].host);
        pair_handshake(&p, false);
        if (cases[i].why == NULL) {
            assert_fl_ok(p.crc);
            assert_fl_ok(p.src);
        } else {
            assert_fl(FL_ETLS, p.crc);
            assert_string_equal(cases[i].why, fl__tls_why(p.c));
            assert_fl(FL_ETLS, p.src);
            assert_string_equal("the peer refused the handshake: sslv3 alert "
                                "bad certificate",
                                fl__tls_why(p.s));
        }
        pair_close(&p);
    }
    /* skip_hostname_check: any certificate of a trusted CA. */
    pair_t p;
    memset(&p, 0, sizeof p);
    p.cx = ctx_of("client", "ca", true);
    p.sx = ctx_of("server", "ca", false);
    assert_true(fl__tls_ctx_skips_hostname(p.cx));
    assert_false(fl__tls_ctx_skips_hostname(p.sx));
    pair_engines(&p, "example.com");
    pair_handshake_ok(&p, false);
    pair_close(&p);
}

/*
 * A client certificate the server refuses: the server fails with its
 * verify reason; the client (TLS 1.3: its handshake is done before the
 * server has looked at its certificate) learns it from the server's alert
 * at its first read.
 */
static void expect_client_refused(const char *client, const char *server_why,
                                  const char *client_why)
{
    pair_t p;
    pair_open(&p, client, "ca", "server", "ca", "localhost");
    pair_handshake(&p, false);
    assert_fl(FL_ETLS, p.src);
    assert_string_equal(server_why, fl__tls_why(p.s));
    assert_false(fl__tls_done(p.s));
    uint8_t b[64];
    size_t got = 99;
    int rc = fl__tls_read(p.c, b, sizeof b, &got);
    assert_fl(FL_ETLS, rc);
    assert_int_equal(0, got);
    assert_string_equal(client_why, fl__tls_why(p.c));
    pair_close(&p);
}

static void test_client_certificates_refused_with_their_reasons(void **st)
{
    expect_client_refused(
        "other-client",
        "certificate verify failed: unable to get local issuer certificate",
        "the peer refused the handshake: tlsv1 alert unknown ca");
    expect_client_refused(
        "self-signed", "certificate verify failed: self-signed certificate",
        "the peer refused the handshake: tlsv1 alert unknown ca");
    expect_client_refused(
        "expired", "certificate verify failed: certificate has expired",
        "the peer refused the handshake: sslv3 alert certificate expired");
    /* A serverAuth-only certificate presented by a client. */
    expect_client_refused(
        "server", "certificate verify failed: unsuitable certificate purpose",
        "the peer refused the handshake: sslv3 alert unsupported certificate");
}

static void test_server_of_another_ca_is_refused(void **st)
{
    pair_t p;
    pair_open(&p, "client", "other-ca", "server", "ca", "localhost");
    pair_handshake(&p, false);
    assert_fl(FL_ETLS, p.crc);
    assert_string_equal(
        "certificate verify failed: unable to get local issuer certificate",
        fl__tls_why(p.c));
    assert_fl(FL_ETLS, p.src);
    assert_string_equal(
        "the peer refused the handshake: tlsv1 alert unknown ca",
        fl__tls_why(p.s));
    pair_close(&p);
}

/* A raw OpenSSL client (memory BIOs) against a server engine of sx. */
typedef struct raw {
    SSL_CTX *cctx;
    SSL *c;
    BIO *cin, *cout;
    fl__tls_t *s;
} raw_t;

/* Open r: a client trusting ca.crt of at most max_version (0: any)
 * offering suites (NULL: its defaults), with client.crt if with_cert. */
static void raw_open(raw_t *r, fl__tls_ctx_t *sx, int max_version,
                     const char *suites, bool with_cert)
{
    r->s = NULL;
    assert_fl_ok(fl__tls_new(sx, false, NULL, &r->s));
    r->cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(r->cctx);
    if (max_version != 0)
        assert_int_equal(1,
                         SSL_CTX_set_max_proto_version(r->cctx, max_version));
    if (suites != NULL)
        assert_int_equal(1, SSL_CTX_set_ciphersuites(r->cctx, suites));
    assert_int_equal(
        1, SSL_CTX_load_verify_locations(r->cctx, cert("ca.crt"), NULL));
    if (with_cert) {
        assert_int_equal(
            1, SSL_CTX_use_certificate_chain_file(r->cctx, cert("client.crt")));
        assert_int_equal(1, SSL_CTX_use_PrivateKey_file(
                                r->cctx, cert("client.key"), SSL_FILETYPE_PEM));
    }
    r->c = SSL_new(r->cctx);
    r->cin = BIO_new(BIO_s_mem());
    r->cout = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(r->cin, -1);
    SSL_set_bio(r->c, r->cin, r->cout);
    SSL_set_connect_state(r->c);
}

/* Ten rounds of handshake both ways. Returns the server's result; *crc
 * gets the client's last SSL_do_handshake. */
static int raw_handshake(raw_t *r, int *crc)
{
    int src = FL_EPENDING;
    uint8_t buf[8192];
    for (int round = 0; round < 10; round++) {
        *crc = SSL_do_handshake(r->c);
        int n;
        while ((n = BIO_read(r->cout, buf, sizeof buf)) > 0)
            assert_fl_ok(fl__tls_feed(r->s, buf, (size_t)n));
        if (src == FL_EPENDING)
            src = fl__tls_handshake(r->s);
        size_t k;
        while ((k = fl__tls_out_take(r->s, buf, sizeof buf)) > 0)
            BIO_write(r->cin, buf, (int)k);
    }
    return src;
}

static void raw_close(raw_t *r)
{
    SSL_free(r->c);
    SSL_CTX_free(r->cctx);
    fl__tls_free(r->s);
}

/* A client without a certificate: raw OpenSSL, since an engine always
 * has one. */
static void test_client_without_certificate_is_refused(void **st)
{
    fl__tls_ctx_t *sx = ctx_of("server", "ca", false);
    raw_t r;
    raw_open(&r, sx, 0, NULL, false);
    int crc = 0, src = raw_handshake(&r, &crc);
    uint8_t buf[8192];
    assert_fl(FL_ETLS, src);
    assert_string_equal("peer did not return a certificate", fl__tls_why(r.s));
    /* The client finished its side; its read meets the server's alert. */
    assert_int_equal(1, crc);
    assert_true(SSL_read(r.c, buf, sizeof buf) <= 0);
    unsigned long e = ERR_get_error();
    assert_string_equal("tlsv13 alert certificate required",
                        ERR_reason_error_string(e));
    ERR_clear_error();
    raw_close(&r);
    fl__tls_ctx_free(sx);
}

/* A server engine against a raw OpenSSL client that speaks TLS 1.2 at
 * most (with client.crt): the handshake's result, both sides' reasons,
 * and the version agreed. */
static int tls12_client(fl__tls_ctx_t *sx, char *client_why, size_t cap,
                        int *version)
{
    raw_t r;
    raw_open(&r, sx, TLS1_2_VERSION, NULL, true);
    SSL *c = r.c;
    fl__tls_t *s = r.s;
    int crc = 0, src = raw_handshake(&r, &crc);
    uint8_t buf[8192];
    client_why[0] = '\0';
    if (crc != 1) {
        unsigned long e = ERR_get_error();
        snprintf(client_why, cap, "%s", ERR_reason_error_string(e));
    }
    ERR_clear_error();
    *version = SSL_version(c);
    if (src == FL_OK) {
        /* Data both ways over 1.2. */
        assert_fl_ok(fl__tls_write(s, "twelve", 6));
        size_t k = fl__tls_out_take(s, buf, sizeof buf);
        BIO_write(r.cin, buf, (int)k);
        char got[16] = "";
        assert_int_equal(6, SSL_read(c, got, sizeof got));
        assert_memory_equal("twelve", got, 6);
        assert_int_equal(2, SSL_write(c, "ok", 2));
        int n = BIO_read(r.cout, buf, sizeof buf);
        assert_fl_ok(fl__tls_feed(s, buf, (size_t)n));
        size_t g = 0;
        assert_fl_ok(fl__tls_read(s, (uint8_t *)got, sizeof got, &g));
        assert_int_equal(2, g);
    } else {
        snprintf(client_why + strlen(client_why), cap - strlen(client_why),
                 " | %s", fl__tls_why(s));
    }
    raw_close(&r);
    return src;
}

static void test_tls_1_2_only_when_allowed(void **st)
{
    char why[512];
    fl__tls_ctx_t *sx = ctx_lists(true, FL_TLS_1_2, NULL, NULL);
    int version = 0;
    assert_fl_ok(tls12_client(sx, why, sizeof why, &version));
    assert_string_equal("", why);
    assert_int_equal(TLS1_2_VERSION, version);
    fl__tls_ctx_free(sx);
    /* The default, TLS 1.3 only: the 1.2 client is refused. */
    sx = ctx_lists(true, FL_TLS_DEFAULT, NULL, NULL);
    assert_fl(FL_ETLS, tls12_client(sx, why, sizeof why, &version));
    assert_string_equal("tlsv1 alert protocol version | unsupported protocol",
                        why);
    fl__tls_ctx_free(sx);
}

static void test_plaintext_fling_peer_is_told_apart(void **st)
{
    fl__tls_ctx_t *cx = ctx_of("client", "ca", false);
    fl__tls_ctx_t *sx = ctx_of("server", "ca", false);
    /* A server: "FL" may still be fling, "FLNG" is. */
    fl__tls_t *s = NULL;
    assert_fl_ok(fl__tls_new(sx, false, NULL, &s));
    assert_fl(FL_EPENDING, fl__tls_handshake(s));
    assert_fl_ok(fl__tls_feed(s, (const uint8_t *)"FL", 2));
    assert_fl(FL_EPENDING, fl__tls_handshake(s));
    assert_false(fl__tls_peer_plaintext(s));
    assert_fl_ok(fl__tls_feed(s, (const uint8_t *)"NG\x01\x02", 4));
    assert_fl(FL_ETLS, fl__tls_handshake(s));
    assert_true(fl__tls_peer_plaintext(s));
    assert_string_equal(FL__TLS_PLAIN_SERVER_WHY, fl__tls_why(s));
    assert_string_equal("the peer speaks plaintext fling, not TLS (told to "
                        "connect with fling.ssl://)",
                        fl__tls_why(s));
    assert_int_equal(0, fl__tls_out_len(s)); /* nothing said to it */
    fl__tls_free(s);
    /* A client meets a plaintext server's HELLO. */
    fl__tls_t *c = NULL;
    assert_fl_ok(fl__tls_new(cx, true, "127.0.0.1", &c));
    assert_fl(FL_EPENDING, fl__tls_handshake(c));
    assert_true(fl__tls_out_len(c) > 0); /* its ClientHello */
    assert_fl_ok(fl__tls_feed(c, (const uint8_t *)"FLNG\x00\x01", 6));
    uint8_t b[16];
    size_t got;
    assert_fl(FL_ETLS, fl__tls_read(c, b, sizeof b, &got));
    assert_true(fl__tls_peer_plaintext(c));
    assert_string_equal("the peer speaks plaintext fling, not TLS (connect "
                        "with fling.tcp://, or turn TLS on at the peer)",
                        fl__tls_why(c));
    fl__tls_free(c);
    /* Other bytes are OpenSSL's to refuse. */
    assert_fl_ok(fl__tls_new(sx, false, NULL, &s));
    assert_fl_ok(fl__tls_feed(s, (const uint8_t *)"GET / HTTP/1.1\r\n", 16));
    assert_fl(FL_ETLS, fl__tls_handshake(s));
    assert_false(fl__tls_peer_plaintext(s));
    assert_string_equal("http request", fl__tls_why(s));
    fl__tls_free(s);
    fl__tls_ctx_free(cx);
    fl__tls_ctx_free(sx);
}

/* A record broken after the handshake fails the read. */
static void test_broken_record_fails_the_read(void **st)
{
    pair_t p;
    pair_open(&p, "client", "ca", "server", "ca", "localhost");
    pair_handshake_ok(&p, false);
    assert_fl_ok(fl__tls_write(p.c, "hello", 5));
    uint8_t rec[256];
    size_t n = fl__tls_out_take(p.c, rec, sizeof rec);
    assert_true(n > 10);
    rec[n - 1] ^= 0x55; /* its tag */
    assert_fl_ok(fl__tls_feed(p.s, rec, n));
    uint8_t b[16];
    size_t got;
    assert_fl(FL_ETLS, fl__tls_read(p.s, b, sizeof b, &got));
    assert_string_equal("decryption failed or bad record mac",
                        fl__tls_why(p.s));
    /* Asked again, with nothing fed: still a failure, not "nothing yet"
     * (fl__tls_read skips SSL when nothing is fed, but not on a broken
     * session). */
    assert_fl(FL_ETLS, fl__tls_read(p.s, b, sizeof b, &got));
    assert_int_equal(0, got);
    pair_close(&p);
}

/* One record read through a buffer smaller than it: every piece comes,
 * from what the engine decrypted and holds (SSL_pending), though nothing
 * more is fed; then "nothing yet". */
static void test_record_read_in_small_pieces(void **st)
{
    pair_t p;
    pair_open(&p, "client", "ca", "server", "ca", "localhost");
    pair_handshake_ok(&p, false);
    char msg[100];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('a' + i % 26);
    assert_fl_ok(fl__tls_write(p.c, msg, sizeof msg)); /* one record */
    pump(p.c, p.s, false);
    char got[sizeof msg];
    size_t total = 0, n;
    for (int i = 0; i < 14; i++) {
        assert_fl_ok(fl__tls_read(p.s, (uint8_t *)got + total, 7, &n));
        assert_int_equal(7, n);
        total += n;
    }
    assert_fl_ok(fl__tls_read(p.s, (uint8_t *)got + total, 7, &n));
    assert_int_equal(2, n);
    total += n;
    assert_memory_equal(msg, got, sizeof msg);
    assert_fl_ok(fl__tls_read(p.s, (uint8_t *)got, sizeof got, &n));
    assert_int_equal(0, n);
    pair_close(&p);
}

/* ---- the options' files ------------------------------------------------ */

static void expect_opts(const fl_rpc_tls_opts_t *o, int code, const char *msg)
{
    fl__tls_ctx_t *x = (fl__tls_ctx_t *)&x;
    char why[1024] = "";
    int rc = fl__tls_ctx_new(o, &x, why, sizeof why);
    assert_fl(code, rc);
    assert_null(x);
    assert_string_equal(msg, why);
}

static char tmpdir[256];

static const char *tmp_file(const char *name, const char *content)
{
    char *p = path_buf[path_next++ % 8];
    snprintf(p, sizeof path_buf[0], "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    return p;
}

static void test_bad_files_are_refused_naming_option_and_path(void **st)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fl_tls_engine_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    char crt[512], key[512], ca[512], okey[512], msg[2048];
    snprintf(crt, sizeof crt, "%s", cert("server.crt"));
    snprintf(key, sizeof key, "%s", cert("server.key"));
    snprintf(ca, sizeof ca, "%s", cert("ca.crt"));
    snprintf(okey, sizeof okey, "%s", cert("client.key"));
    fl_rpc_tls_opts_t good = {.cert_file = crt, .key_file = key, .ca_file = ca};
    fl_rpc_tls_opts_t o;

    /* Not set. */
    static const char *const names[] = {"cert_file", "key_file", "ca_file"};
    for (int i = 0; i < 3; i++) {
        o = good;
        const char **f = i == 0   ? &o.cert_file
                         : i == 1 ? &o.key_file
                                  : &o.ca_file;
        *f = NULL;
        snprintf(msg, sizeof msg,
                 "tls.%s is not set: give the path of a PEM file (mutual TLS "
                 "needs a certificate, its key and the trusted CAs)",
                 names[i]);
        expect_opts(&o, FL_EINVAL, msg);
        *f = "";
        expect_opts(&o, FL_EINVAL, msg);
        /* Missing. */
        char missing[600];
        snprintf(missing, sizeof missing, "%s/none.pem", tmpdir);
        *f = missing;
        snprintf(msg, sizeof msg,
                 "tls.%s %s: cannot read it: No such file or directory",
                 names[i], missing);
        expect_opts(&o, FL_EINVAL, msg);
        /* A folder. */
        *f = tmpdir;
        snprintf(msg, sizeof msg, "tls.%s %s: cannot read it: Is a directory",
                 names[i], tmpdir);
        expect_opts(&o, FL_EINVAL, msg);
        /* Empty. */
        *f = tmp_file("empty.pem", "");
        snprintf(msg, sizeof msg, "tls.%s %s: the file is empty", names[i], *f);
        expect_opts(&o, FL_EINVAL, msg);
    }
    /* Not PEM. */
    o = good;
    o.cert_file = tmp_file("junk.crt", "not a certificate\n");
    snprintf(msg, sizeof msg,
             "tls.cert_file %s: not a PEM certificate: no start line",
             o.cert_file);
    expect_opts(&o, FL_EINVAL, msg);
    o = good;
    o.key_file = tmp_file("junk.key", "not a key\n");
    snprintf(msg, sizeof msg,
             "tls.key_file %s: no private key in it that OpenSSL can read "
             "(PEM, unencrypted)",
             o.key_file);
    expect_opts(&o, FL_EINVAL, msg);
    o = good;
    o.ca_file = tmp_file("junk.ca", "not a CA\n");
    snprintf(msg, sizeof msg,
             "tls.ca_file %s: no PEM CA certificate in it: no certificate or "
             "crl found",
             o.ca_file);
    expect_opts(&o, FL_EINVAL, msg);
    /* A key and a certificate that do not match. */
    o = good;
    o.key_file = okey;
    snprintf(msg, sizeof msg, "tls.key_file %s does not match tls.cert_file %s",
             okey, crt);
    expect_opts(&o, FL_EINVAL, msg);
    /* Opened but unreadable: a folder (fread fails with EISDIR, as any
     * user, root too). */
    o = good;
    o.key_file = FL_TEST_CERTS;
    snprintf(msg, sizeof msg, "tls.key_file %s: cannot read it: Is a directory",
             o.key_file);
    expect_opts(&o, FL_EINVAL, msg);
    /* Versions and ciphers. */
    o = good;
    o.min_version = (fl_tls_version_t)11;
    expect_opts(&o, FL_EINVAL,
                "tls.min_version 11 is not a TLS version fling speaks: give "
                "FL_TLS_1_2 (12), FL_TLS_1_3 (13) or FL_TLS_DEFAULT (0, TLS "
                "1.3)");
    /* A name OpenSSL does not know is refused by name, alone or after a
     * good one (OpenSSL itself drops it without a word). */
    static const char *const bad_ciphers[][2] = {
        {"NO-SUCH-CIPHER", "NO-SUCH-CIPHER"},
        {"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-TYPO", "ECDHE-TYPO"},
        {"HIGH,RC4-MD5", "RC4-MD5"},
        {"TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"},
    };
    for (size_t i = 0; i < sizeof bad_ciphers / sizeof bad_ciphers[0]; i++) {
        o = good;
        o.ciphers = bad_ciphers[i][0];
        snprintf(msg, sizeof msg,
                 "tls.ciphers: '%s' is no TLS 1.2 cipher this OpenSSL offers "
                 "(e.g. ECDHE-ECDSA-AES128-GCM-SHA256)",
                 bad_ciphers[i][1]);
        expect_opts(&o, FL_EINVAL, msg);
    }
    o = good;
    o.ciphers = "!ALL";
    expect_opts(&o, FL_EINVAL,
                "tls.ciphers leaves no TLS 1.2 cipher (e.g. "
                "ECDHE-ECDSA-AES128-GCM-SHA256)");
    static const char *const bad_suites[][2] = {
        {"TLS_NO_SUCH", "TLS_NO_SUCH"},
        {"TLS_AES_128_GCM_SHA256:TLS_TYPO", "TLS_TYPO"},
        {"TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256",
         "ECDHE-ECDSA-AES128-GCM-SHA256"},
    };
    for (size_t i = 0; i < sizeof bad_suites / sizeof bad_suites[0]; i++) {
        o = good;
        o.ciphersuites = bad_suites[i][0];
        snprintf(msg, sizeof msg,
                 "tls.ciphersuites: '%s' is no TLS 1.3 suite this OpenSSL "
                 "offers (e.g. TLS_AES_128_GCM_SHA256)",
                 bad_suites[i][1]);
        expect_opts(&o, FL_EINVAL, msg);
    }
    /* OpenSSL's keywords, exclusions and separators pass. */
    o = good;
    o.ciphers = "HIGH:!aNULL:+ECDHE-ECDSA-AES128-GCM-SHA256 @STRENGTH";
    o.ciphersuites = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
    fl__tls_ctx_t *kx = NULL;
    char kwhy[512] = "";
    int krc = fl__tls_ctx_new(&o, &kx, kwhy, sizeof kwhy);
    assert_string_equal("", kwhy);
    assert_fl_ok(krc);
    fl__tls_ctx_free(kx);
    /* And the good ones pass, each version. */
    static const fl_tls_version_t versions[] = {FL_TLS_DEFAULT, FL_TLS_1_2,
                                                FL_TLS_1_3};
    for (int i = 0; i < 3; i++) {
        o = good;
        o.min_version = versions[i];
        o.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
        o.ciphersuites = "TLS_AES_128_GCM_SHA256";
        fl__tls_ctx_t *x = NULL;
        char why[512] = "";
        assert_fl_ok(fl__tls_ctx_new(&o, &x, why, sizeof why));
        assert_non_null(x);
        fl__tls_ctx_free(x);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    assert_int_equal(0, system(cmd));
}

/* A server engine of sx against a raw OpenSSL client (client.crt) of at
 * most max_version (0: any) offering suites (NULL: its defaults).
 * Returns the server's result; agreed gets "<version> <cipher>". */
static int raw_client_agrees(fl__tls_ctx_t *sx, int max_version,
                             const char *suites, char *agreed, size_t cap)
{
    raw_t r;
    raw_open(&r, sx, max_version, suites, true);
    int crc, src = raw_handshake(&r, &crc);
    ERR_clear_error();
    snprintf(agreed, cap, "%s %s", SSL_get_version(r.c),
             SSL_CIPHER_get_name(SSL_get_current_cipher(r.c)));
    raw_close(&r);
    return src;
}

static void test_suite_lists_take_effect(void **st)
{
    (void)st;
    /* Disjoint TLS 1.3 suites: no handshake, either side says why. */
    pair_t p;
    memset(&p, 0, sizeof p);
    p.cx = ctx_lists(false, FL_TLS_DEFAULT, NULL, "TLS_AES_128_GCM_SHA256");
    p.sx = ctx_lists(true, FL_TLS_DEFAULT, NULL, "TLS_AES_256_GCM_SHA384");
    pair_engines(&p, "localhost");
    pair_handshake(&p, false);
    assert_fl(FL_ETLS, p.src);
    assert_string_equal("no shared cipher", fl__tls_why(p.s));
    assert_fl(FL_ETLS, p.crc);
    assert_string_equal(
        "the peer refused the handshake: sslv3 alert handshake failure",
        fl__tls_why(p.c));
    pair_close(&p);
    /* A suite in common is the one agreed, whatever the client prefers. */
    char agreed[128];
    fl__tls_ctx_t *sx =
        ctx_lists(true, FL_TLS_DEFAULT, NULL, "TLS_CHACHA20_POLY1305_SHA256");
    assert_fl_ok(raw_client_agrees(
        sx, 0, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256", agreed,
        sizeof agreed));
    assert_string_equal("TLSv1.3 TLS_CHACHA20_POLY1305_SHA256", agreed);
    fl__tls_ctx_free(sx);
    /* TLS 1.2 ciphers restrict TLS 1.2 only: TLS 1.3 keeps its suites. */
    sx = ctx_lists(true, FL_TLS_1_2, "ECDHE-ECDSA-AES128-GCM-SHA256", NULL);
    assert_fl_ok(
        raw_client_agrees(sx, TLS1_2_VERSION, NULL, agreed, sizeof agreed));
    assert_string_equal("TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256", agreed);
    assert_fl_ok(raw_client_agrees(sx, 0, NULL, agreed, sizeof agreed));
    assert_string_equal("TLSv1.3 TLS_AES_256_GCM_SHA384", agreed);
    fl__tls_ctx_free(sx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_handshake_and_data_both_ways),
        FL_TEST(test_hostname_is_checked_unless_skipped),
        FL_TEST(test_client_certificates_refused_with_their_reasons),
        FL_TEST(test_server_of_another_ca_is_refused),
        FL_TEST(test_client_without_certificate_is_refused),
        FL_TEST(test_tls_1_2_only_when_allowed),
        FL_TEST(test_plaintext_fling_peer_is_told_apart),
        FL_TEST(test_broken_record_fails_the_read),
        FL_TEST(test_record_read_in_small_pieces),
        FL_TEST(test_bad_files_are_refused_naming_option_and_path),
        FL_TEST(test_suite_lists_take_effect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
