/*
 * tls_raw.h - the raw TLS client of the TLS tests (tls_hostile_test.c), on
 * libssl directly, for what a fling client would not do: connect without
 * a certificate or with one the server must refuse, say ClientHello and
 * then nothing, send bytes that are not frames inside TLS.
 *
 * A raw TLS connection is wire_raw.h's raw_t with this file's raw_io_t
 * under it: the frame helpers (send_frame, raw_hello, expect_error ...)
 * work inside TLS as on a plain socket, and raw_close frees the TLS state.
 * The certificates are the test set of FL_TEST_CERTS (tests/CMakeLists.txt,
 * fling_test_certs). The client checks the server's certificate against
 * ca.crt and 127.0.0.1, as a fling client does.
 *
 * Header-only (static inline), like wire_raw.h. Helpers fail the test on
 * anything unexpected and belong to the test's thread.
 */
#ifndef TLS_RAW_H
#define TLS_RAW_H

#include "wire_raw.h"

#include <limits.h>
#include <poll.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#ifndef FL_TEST_CERTS
#error "FL_TEST_CERTS: the test certificates' folder (tests/CMakeLists.txt)"
#endif

/* One raw TLS connection's state (the raw_t's io_arg). */
typedef struct tls_raw {
    SSL_CTX *ctx;
    SSL *ssl;
} tls_raw_t;

/* The path of the test certificate file `name` ("client.crt"). */
static inline const char *cert_path(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", FL_TEST_CERTS, name);
    return buf;
}

/* The reason of OpenSSL's last error on this thread ("tlsv1 alert unknown
 * ca"), or "no OpenSSL error"; clears the thread's error queue. */
static inline const char *tls_raw_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, cap, "%s", r != NULL ? r : "no OpenSSL error");
    ERR_clear_error();
    return buf;
}

/*
 * A client context presenting the test certificate `cert` (its base name:
 * "client" for client.crt and client.key; NULL: no certificate), trusting
 * ca.crt, TLS 1.2 at least. An end of stream without close_notify reads
 * as the end (a server that drops the connection). Caller frees it with
 * SSL_CTX_free.
 */
static inline SSL_CTX *tls_raw_ctx(const char *cert)
{
    char path[512];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(1, SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION));
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ctx, cert_path("ca.crt", path, 512),
                                      NULL) != 1)
        fail_msg("load %s: %s", path, tls_raw_reason(path, sizeof path));
    if (cert != NULL) {
        char name[64];
        snprintf(name, sizeof name, "%s.crt", cert);
        if (SSL_CTX_use_certificate_chain_file(
                ctx, cert_path(name, path, sizeof path)) != 1)
            fail_msg("load %s: %s", name, tls_raw_reason(path, sizeof path));
        snprintf(name, sizeof name, "%s.key", cert);
        if (SSL_CTX_use_PrivateKey_file(ctx, cert_path(name, path, sizeof path),
                                        SSL_FILETYPE_PEM) != 1)
            fail_msg("load %s: %s", name, tls_raw_reason(path, sizeof path));
    }
    return ctx;
}

/* send(2) and recv(2) of raw_io_t over t's SSL: an OpenSSL failure is -1
 * with EPROTO (its reason printed), a timeout -1 with EAGAIN. */
static inline ssize_t tls_raw_result(tls_raw_t *t, int rc)
{
    int e = SSL_get_error(t->ssl, rc);
    char why[256];
    switch (e) {
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_SYSCALL:
        if (errno == 0)
            return 0;
        return -1;
    default:
        print_message("tls_raw: %s\n", tls_raw_reason(why, sizeof why));
        errno = EPROTO;
        return -1;
    }
}

static inline ssize_t tls_raw_send(void *arg, const void *p, size_t n)
{
    tls_raw_t *t = arg;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_write(t->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
    return rc > 0 ? rc : tls_raw_result(t, rc);
}

static inline ssize_t tls_raw_recv(void *arg, void *p, size_t n)
{
    tls_raw_t *t = arg;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_read(t->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
    return rc > 0 ? rc : tls_raw_result(t, rc);
}

static inline void tls_raw_close(void *arg)
{
    tls_raw_t *t = arg;
    SSL_free(t->ssl);
    SSL_CTX_free(t->ctx);
    free(t);
}

static const raw_io_t TLS_RAW_IO = {tls_raw_send, tls_raw_recv, tls_raw_close};

/*
 * Connects to 127.0.0.1:port and runs the TLS handshake with certificate
 * `cert` (tls_raw_ctx); r gets the connection either way (raw_close ends
 * it), with the frame parameters of raw_of(fd, max_frame, name, peer_max,
 * peer_name, endpoint). Returns true once the handshake ended (for TLS
 * 1.3 the client's side: the server may still refuse the certificate), or
 * false with OpenSSL's reason in why.
 */
static inline bool tls_raw_open(raw_t *r, int port, const char *cert,
                                uint32_t max_frame, const char *name,
                                uint32_t peer_max, const char *peer_name,
                                const char *endpoint, char *why, size_t cap)
{
    *r = raw_of(raw_connect(port, 0), max_frame, name, peer_max, peer_name,
                endpoint);
    tls_raw_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->ctx = tls_raw_ctx(cert);
    t->ssl = SSL_new(t->ctx);
    assert_non_null(t->ssl);
    assert_int_equal(1, SSL_set_fd(t->ssl, r->fd));
    assert_int_equal(
        1, X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), "127.0.0.1"));
    r->io = &TLS_RAW_IO;
    r->io_arg = t;
    ERR_clear_error();
    if (SSL_connect(t->ssl) == 1)
        return true;
    tls_raw_reason(why, cap);
    return false;
}

/*
 * The server refuses the handshake of a raw TLS client with certificate
 * `cert`: within IO_TIMEOUT_MS the client fails with OpenSSL's reason
 * `want` (an alert the server sent, e.g. "tlsv1 alert unknown ca"), in
 * SSL_connect or, under TLS 1.3 where the client's side ends first, in
 * the first read. Returns the client's local port (the server names it).
 */
static inline int tls_raw_expect_refused(int port, const char *cert,
                                         const char *want)
{
    raw_t r;
    char why[256] = "";
    if (tls_raw_open(&r, port, cert, 0, "", 0, "", "", why, sizeof why)) {
        tls_raw_t *t = r.io_arg;
        uint8_t b;
        ERR_clear_error();
        int rc = SSL_read(t->ssl, &b, 1);
        int e = SSL_get_error(t->ssl, rc);
        if (rc > 0 || e != SSL_ERROR_SSL)
            fail_msg("%s: the server did not refuse the handshake (read %d, "
                     "SSL error %d)",
                     cert ? cert : "no certificate", rc, e);
        tls_raw_reason(why, sizeof why);
    }
    int local = raw_local_port(r.fd);
    raw_close(&r);
    assert_string_equal(want, why);
    return local;
}

/* Reads fd (a raw socket), dropping what comes, until the peer closes it
 * (end of stream or a reset); fails the test unless that happens within
 * wait_ms. */
static inline void raw_wait_closed(int fd, int wait_ms)
{
    uint8_t buf[4096];
    uint64_t t0 = fl_clock_now_ns();
    for (;;) {
        long long left = wait_ms - (long long)fl_test_ms_since(t0);
        if (left <= 0)
            fail_msg("the server kept the connection open over %d ms", wait_ms);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t got = recv(fd, buf, sizeof buf, 0);
        if (got == 0 || (got < 0 && errno == ECONNRESET))
            return;
        if (got < 0 && errno != EINTR)
            fail_msg("recv: %s", strerror(errno));
    }
}

/*
 * A raw TLS client says ClientHello to 127.0.0.1:port and then nothing;
 * returns once the server closed the connection (what it sent meanwhile is
 * read and dropped), failing the test unless that happens within wait_ms.
 * *local_port: the client's port (the server names it).
 */
static inline void tls_raw_stall(int port, int wait_ms, int *local_port)
{
    int fd = raw_connect(port, 0);
    *local_port = raw_local_port(fd);
    SSL_CTX *ctx = tls_raw_ctx("client");
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    assert_non_null(in);
    assert_non_null(out);
    SSL_set_bio(ssl, in, out);
    SSL_set_connect_state(ssl);
    int rc = SSL_do_handshake(ssl);
    assert_int_equal(SSL_ERROR_WANT_READ, SSL_get_error(ssl, rc));
    uint8_t buf[4096];
    int n = BIO_read(out, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(0x16, buf[0]); /* a handshake record */
    raw_t r = raw_of(fd, 0, "", 0, "", "");
    raw_send(&r, buf, (size_t)n);
    raw_wait_closed(fd, wait_ms);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    raw_fd_close(fd);
}

#endif /* TLS_RAW_H */
