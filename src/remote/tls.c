/*
 * tls.c - the TLS engine (tls.h): a context per service made from its
 * options, and per connection an SSL object between two memory BIOs. No
 * socket: the connection's side moves the bytes (tls_io.c), which is what
 * lets one engine serve the I/O thread and, under its mutex, a thread
 * writing or reading directly.
 */
#include "remote/tls.h"

#include "common/internal.h"
#include "remote/frame.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct fl__tls_ctx {
    SSL_CTX *ssl;
    bool skip_hostname;
};

struct fl__tls {
    pthread_mutex_t mu; /* every call below; the innermost lock */
    SSL *ssl;
    BIO *in;  /* ciphertext fed, for SSL to read (owned by ssl) */
    BIO *out; /* ciphertext SSL wrote, to be sent (owned by ssl) */
    bool client;
    bool done;        /* the handshake is done */
    bool app_seen;    /* plaintext came: the peer took the handshake */
    bool plain;       /* the peer speaks plaintext fling */
    bool broken;      /* a call failed for good: reads ask SSL again */
    uint8_t first[4]; /* the peer's first bytes, for the plaintext check */
    size_t nfirst;
    char why[FL__TLS_WHY_MAX + 1];
};

/* ---- the context ---------------------------------------------------------
 */

/* An encrypted key asks for its passphrase: say there is none (OpenSSL
 * would otherwise prompt on the terminal). */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* OpenSSL's reason for the errors queued on this thread (then cleared):
 * the PEM reader's if it has one (OpenSSL 3's decoders queue
 * "unsupported" and the SSL library "PEM lib" around the reason a user
 * can act on, "no start line"), else the oldest; `dflt` if none. */
static const char *ssl_reason(const char *dflt)
{
    unsigned long e, first = 0, pem = 0;
    while ((e = ERR_get_error()) != 0) {
        if (first == 0)
            first = e;
        if (pem == 0 && ERR_GET_LIB(e) == ERR_LIB_PEM)
            pem = e;
    }
    e = pem != 0 ? pem : first;
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    return r != NULL ? r : dflt;
}

/* Whether `path` of option `opt` can be opened for reading; else FL_EINVAL
 * with why naming both and errno's reason. */
static int readable(const char *opt, const char *path, char *why,
                    size_t why_len)
{
    if (path == NULL || path[0] == '\0') {
        fl__say(why, why_len,
                "tls.%s is not set: give the path of a PEM file (mutual TLS "
                "needs a certificate, its key and the trusted CAs)",
                opt);
        return FL_EINVAL;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fl__say(why, why_len, "tls.%s %s: cannot read it: %s", opt, path,
                strerror(errno));
        return FL_EINVAL;
    }
    char c;
    size_t n = fread(&c, 1, 1, f);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (err != 0) {
        fl__say(why, why_len, "tls.%s %s: cannot read it: %s", opt, path,
                strerror(err));
        return FL_EINVAL;
    }
    if (n == 0) {
        fl__say(why, why_len, "tls.%s %s: the file is empty", opt, path);
        return FL_EINVAL;
    }
    return FL_OK;
}

/* The separators of OpenSSL's cipher lists and of its suite lists. */
#define CIPHER_SEPS ":, ;"
#define SUITE_SEPS ":"
#define NAME_MAX_LEN 128

/* Calls fn(ctx, name) on each name of list (separated by seps) until
 * one returns false; returns that name in bad (bad_cap bytes, cut to fit),
 * or false when all pass. */
static bool find_bad(SSL_CTX *ctx, const char *list, const char *seps,
                     bool (*fn)(SSL_CTX *ctx, const char *name), char *bad,
                     size_t bad_cap)
{
    const char *p = list;
    while (*p != '\0') {
        size_t len = strcspn(p, seps);
        if (len > 0) {
            char name[NAME_MAX_LEN + 1];
            size_t n = len < NAME_MAX_LEN ? len : NAME_MAX_LEN;
            memcpy(name, p, n);
            name[n] = '\0';
            if (!fn(ctx, name)) {
                snprintf(bad, bad_cap, "%s", name);
                return true;
            }
        }
        p += len;
        if (*p != '\0')
            p++;
    }
    return false;
}

/* Whether one word of a TLS 1.2 cipher list selects a cipher on its own
 * (it is left set: the whole list is set after). A word that removes or
 * moves ciphers ("!aNULL", "-X", "+X") or is a command ("@STRENGTH")
 * selects none by design and passes. OpenSSL drops a word that selects
 * nothing without a word: a misspelt name would go unnoticed. */
static bool cipher_word_selects(SSL_CTX *ctx, const char *word)
{
    if (strchr("!-+@", word[0]) != NULL)
        return true;
    bool ok = SSL_CTX_set_cipher_list(ctx, word) == 1;
    ERR_clear_error();
    return ok;
}

/* Whether name is one of the TLS 1.3 suites set in ctx. */
static bool suite_is_set(SSL_CTX *ctx, const char *name)
{
    STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
    for (int i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
        if (strcmp(SSL_CIPHER_get_version(c), "TLSv1.3") == 0 &&
            strcmp(SSL_CIPHER_standard_name(c), name) == 0)
            return true;
    }
    return false;
}

/* The TLS 1.2 cipher list into ctx; a word that selects no cipher is
 * refused by name. FL_OK or FL_EINVAL. */
static int set_ciphers(SSL_CTX *ctx, const char *list, char *why,
                       size_t why_len)
{
    char bad[NAME_MAX_LEN + 1];
    if (find_bad(ctx, list, CIPHER_SEPS, cipher_word_selects, bad,
                 sizeof bad)) {
        fl__say(why, why_len,
                "tls.ciphers: '%s' is no TLS 1.2 cipher this OpenSSL offers "
                "(e.g. ECDHE-ECDSA-AES128-GCM-SHA256)",
                bad);
        return FL_EINVAL;
    }
    if (SSL_CTX_set_cipher_list(ctx, list) != 1) {
        ERR_clear_error();
        fl__say(why, why_len,
                "tls.ciphers leaves no TLS 1.2 cipher (e.g. "
                "ECDHE-ECDSA-AES128-GCM-SHA256)");
        return FL_EINVAL;
    }
    return FL_OK;
}

/* Whether OpenSSL knows the TLS 1.3 suite name (it is left set: the
 * whole list is set after). */
static bool suite_known(SSL_CTX *ctx, const char *name)
{
    bool ok =
        SSL_CTX_set_ciphersuites(ctx, name) == 1 && suite_is_set(ctx, name);
    ERR_clear_error();
    return ok;
}

/* The TLS 1.3 suites into ctx; a name OpenSSL does not know (it drops
 * it without a word) is refused by name. FL_OK or FL_EINVAL. */
static int set_suites(SSL_CTX *ctx, const char *list, char *why, size_t why_len)
{
    char bad[NAME_MAX_LEN + 1];
    if (find_bad(ctx, list, SUITE_SEPS, suite_known, bad, sizeof bad)) {
        fl__say(why, why_len,
                "tls.ciphersuites: '%s' is no TLS 1.3 suite this OpenSSL "
                "offers (e.g. TLS_AES_128_GCM_SHA256)",
                bad);
        return FL_EINVAL;
    }
    if (SSL_CTX_set_ciphersuites(ctx, list) != 1) {
        fl__say(why, why_len, "tls.ciphersuites: %s",
                ssl_reason("not a usable suite list"));
        return FL_EINVAL;
    }
    return FL_OK;
}

/* The version settings of o into ctx: FL_OK or FL_EINVAL. */
static int set_versions(SSL_CTX *ctx, const fl_rpc_tls_opts_t *o, char *why,
                        size_t why_len)
{
    int min;
    switch (o->min_version) {
    case FL_TLS_DEFAULT:
    case FL_TLS_1_3:
        min = TLS1_3_VERSION;
        break;
    case FL_TLS_1_2:
        min = TLS1_2_VERSION;
        break;
    default:
        fl__say(why, why_len,
                "tls.min_version %d is not a TLS version fling speaks: give "
                "FL_TLS_1_2 (12), FL_TLS_1_3 (13) or FL_TLS_DEFAULT (0, TLS "
                "1.3)",
                (int)o->min_version);
        return FL_EINVAL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, min) != 1) {
        fl__say(why, why_len, "tls.min_version: %s",
                ssl_reason("not supported by this OpenSSL"));
        return FL_EINVAL;
    }
    if (o->ciphers != NULL &&
        set_ciphers(ctx, o->ciphers, why, why_len) != FL_OK)
        return FL_EINVAL;
    if (o->ciphersuites != NULL &&
        set_suites(ctx, o->ciphersuites, why, why_len) != FL_OK)
        return FL_EINVAL;
    return FL_OK;
}

/* True when the errors queued say a key does not match its certificate
 * (then cleared, as every other). */
static bool key_mismatch(void)
{
    bool m = false;
    unsigned long e;
    while ((e = ERR_get_error()) != 0)
        if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
            (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
             ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH))
            m = true;
    return m;
}

/* The certificate, its key and the CAs of o into ctx: FL_OK or
 * FL_EINVAL. */
static int set_files(SSL_CTX *ctx, const fl_rpc_tls_opts_t *o, char *why,
                     size_t why_len)
{
    if (readable("cert_file", o->cert_file, why, why_len) != FL_OK ||
        readable("key_file", o->key_file, why, why_len) != FL_OK ||
        readable("ca_file", o->ca_file, why, why_len) != FL_OK)
        return FL_EINVAL;
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
        fl__say(why, why_len, "tls.cert_file %s: not a PEM certificate: %s",
                o->cert_file, ssl_reason("unusable"));
        return FL_EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1) {
        /* It checks the key against the certificate; else OpenSSL 3 says
         * no more than "unsupported". */
        if (key_mismatch())
            goto mismatch;
        fl__say(why, why_len,
                "tls.key_file %s: no private key in it that OpenSSL can read "
                "(PEM, unencrypted)",
                o->key_file);
        return FL_EINVAL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
    mismatch:
        ERR_clear_error();
        fl__say(why, why_len, "tls.key_file %s does not match tls.cert_file %s",
                o->key_file, o->cert_file);
        return FL_EINVAL;
    }
    if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1) {
        fl__say(why, why_len, "tls.ca_file %s: no PEM CA certificate in it: %s",
                o->ca_file, ssl_reason("unusable"));
        return FL_EINVAL;
    }
    return FL_OK;
}

int fl__tls_ctx_new(const fl_rpc_tls_opts_t *o, fl__tls_ctx_t **out, char *why,
                    size_t why_len)
{
    *out = NULL;
    ERR_clear_error();
    fl__tls_ctx_t *x = fl__calloc(1, sizeof *x);
    if (x == NULL)
        return FL_ENOMEM;
    x->ssl = SSL_CTX_new(TLS_method());
    if (x->ssl == NULL) {
        ERR_clear_error();
        fl__free(x);
        return FL_ENOMEM;
    }
    SSL_CTX *ctx = x->ssl;
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    int rc = set_versions(ctx, o, why, why_len);
    if (rc == FL_OK)
        rc = set_files(ctx, o, why, why_len);
    if (rc != FL_OK) {
        fl__tls_ctx_free(x);
        return rc;
    }
    /* Mutual authentication: a server refuses a client without a
     * certificate (the flag means nothing to a client, which always
     * checks the server's). */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    /* No resumption: connections are long-lived, and neither tickets nor
     * a cache are worth their bytes and state. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_COMPRESSION);
    /* The chain sent is cert_file's, as written: no CA of ca_file added
     * to it (a peer has its own; and a refusal then says "unable to get
     * local issuer certificate", not "self-signed certificate in
     * certificate chain"). */
    SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
    x->skip_hostname = o->skip_hostname_check;
    *out = x;
    return FL_OK;
}

void fl__tls_ctx_free(fl__tls_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl); /* engines hold their own reference */
    fl__free(ctx);
}

bool fl__tls_ctx_skips_hostname(const fl__tls_ctx_t *ctx)
{
    return ctx->skip_hostname;
}

/* ---- the engine ----------------------------------------------------------
 */

/* Empty this thread's error queue before an SSL call, so that
 * SSL_get_error reads that call's errors only. The queue is empty unless
 * something left errors in it (every failure below clears its own), and
 * ERR_clear_error walks all of its slots, a fixed cost per record on the
 * hot path: peek first. */
static void errors_clear(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

int fl__tls_new(fl__tls_ctx_t *ctx, bool client, const char *host,
                fl__tls_t **out)
{
    *out = NULL;
    fl__tls_t *t = fl__calloc(1, sizeof *t);
    if (t == NULL)
        return FL_ENOMEM;
    t->client = client;
    t->ssl = SSL_new(ctx->ssl);
    if (t->ssl == NULL)
        goto fail;
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (t->in == NULL || t->out == NULL) {
        BIO_free(t->in);
        BIO_free(t->out);
        goto fail;
    }
    /* An empty input is "more later", not the end. */
    BIO_set_mem_eof_return(t->in, -1);
    BIO_set_mem_eof_return(t->out, -1);
    SSL_set_bio(t->ssl, t->in, t->out); /* ssl owns both from here */
    if (client) {
        SSL_set_connect_state(t->ssl);
        if (host != NULL && !ctx->skip_hostname) {
            unsigned char ip[16];
            X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
            bool literal = inet_pton(AF_INET, host, ip) == 1 ||
                           inet_pton(AF_INET6, host, ip) == 1;
            /* A wildcard matches a whole label only (*.example.com,
             * never f*.example.com). */
            X509_VERIFY_PARAM_set_hostflags(
                vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (literal ? X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1
                        : SSL_set1_host(t->ssl, host) != 1 ||
                              SSL_set_tlsext_host_name(t->ssl, host) != 1)
                goto fail;
        }
    } else {
        SSL_set_accept_state(t->ssl);
    }
    pthread_mutex_init(&t->mu, NULL);
    *out = t;
    return FL_OK;
fail:
    ERR_clear_error();
    SSL_free(t->ssl);
    fl__free(t);
    return FL_ENOMEM;
}

void fl__tls_free(fl__tls_t *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);
    pthread_mutex_destroy(&t->mu);
    fl__free(t);
}

int fl__tls_feed(fl__tls_t *t, const uint8_t *p, size_t n)
{
    if (n == 0)
        return FL_OK;
    pthread_mutex_lock(&t->mu);
    if (t->nfirst < sizeof t->first) {
        /* Copied, not consumed: SSL reads these too. */
        size_t k = sizeof t->first - t->nfirst;
        if (k > n)
            k = n;
        memcpy(t->first + t->nfirst, p, k);
        t->nfirst += k;
    }
    int w = BIO_write(t->in, p, (int)n);
    pthread_mutex_unlock(&t->mu);
    if (w != (int)n) {
        ERR_clear_error();
        return FL_ENOMEM;
    }
    return FL_OK;
}

/* Why the SSL call that returned ret failed, into t->why (engine locked):
 * FL_EPENDING (it wants more input), FL_ECLOSED (the peer closed the
 * session) or FL_ETLS. */
static int failed(fl__tls_t *t, int ret)
{
    int e = SSL_get_error(t->ssl, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errors_clear();
        return FL_EPENDING;
    }
    t->broken = true;
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        snprintf(t->why, sizeof t->why, "the peer closed the TLS session");
        return t->done ? FL_ECLOSED : FL_ETLS;
    }
    unsigned long err = ERR_get_error();
    ERR_clear_error();
    if (e != SSL_ERROR_SSL || err == 0) {
        snprintf(t->why, sizeof t->why, "the peer closed the connection");
        return FL_ETLS;
    }
    int reason = ERR_GET_REASON(err);
    const char *rs = ERR_reason_error_string(err);
    if (ERR_GET_LIB(err) == ERR_LIB_SSL &&
        reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        long v = SSL_get_verify_result(t->ssl);
        snprintf(t->why, sizeof t->why, "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
    } else if (ERR_GET_LIB(err) == ERR_LIB_SSL &&
               reason >= SSL_AD_REASON_OFFSET && rs != NULL) {
        /* An alert the peer sent: the handshake's verdict until the
         * peer's first plaintext shows it took it. */
        snprintf(t->why, sizeof t->why, "%s: %s",
                 t->app_seen ? "the peer sent an alert"
                             : "the peer refused the handshake",
                 rs);
    } else {
        snprintf(t->why, sizeof t->why, "%s",
                 rs != NULL ? rs : "an unknown TLS error");
    }
    return FL_ETLS;
}

/* A peer that speaks plaintext fling (engine locked): FL_ETLS when its
 * first bytes are the frame magic, FL_EPENDING while they may become it,
 * FL_OK when they cannot. */
static int plain_check(fl__tls_t *t)
{
    static const uint8_t magic[4] = {
        (uint8_t)(FL__FRAME_MAGIC >> 24), (uint8_t)(FL__FRAME_MAGIC >> 16),
        (uint8_t)(FL__FRAME_MAGIC >> 8), (uint8_t)FL__FRAME_MAGIC};
    if (t->nfirst == 0)
        return FL_EPENDING;
    if (memcmp(t->first, magic, t->nfirst) != 0)
        return FL_OK;
    if (t->nfirst < sizeof magic)
        return FL_EPENDING;
    t->plain = true;
    snprintf(t->why, sizeof t->why, "%s",
             t->client ? FL__TLS_PLAIN_CLIENT_WHY : FL__TLS_PLAIN_SERVER_WHY);
    return FL_ETLS;
}

/* Drive the handshake (engine locked): as fl__tls_handshake. */
static int handshake_locked(fl__tls_t *t)
{
    if (t->done)
        return FL_OK;
    if (t->plain)
        return FL_ETLS;
    /* A client speaks first; a server waits for the peer's first bytes
     * before it lets OpenSSL look at them. */
    if (!t->client || t->nfirst > 0) {
        int p = plain_check(t);
        if (p == FL_ETLS || (p == FL_EPENDING && !t->client))
            return p;
    }
    errors_clear();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->done = true;
        return FL_OK;
    }
    return failed(t, r);
}

int fl__tls_handshake(fl__tls_t *t)
{
    pthread_mutex_lock(&t->mu);
    int rc = handshake_locked(t);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

bool fl__tls_done(fl__tls_t *t)
{
    pthread_mutex_lock(&t->mu);
    bool d = t->done;
    pthread_mutex_unlock(&t->mu);
    return d;
}

bool fl__tls_peer_plaintext(fl__tls_t *t)
{
    pthread_mutex_lock(&t->mu);
    bool p = t->plain;
    pthread_mutex_unlock(&t->mu);
    return p;
}

int fl__tls_read(fl__tls_t *t, uint8_t *buf, size_t cap, size_t *got)
{
    *got = 0;
    pthread_mutex_lock(&t->mu);
    int rc = handshake_locked(t);
    if (rc == FL_EPENDING) {
        rc = FL_OK; /* nothing to read yet */
    } else if (rc == FL_OK && cap > 0 && !t->broken &&
               BIO_ctrl_pending(t->in) == 0 && SSL_pending(t->ssl) == 0) {
        /* Nothing fed and not decrypted, nothing decrypted and not read:
         * SSL_read could only say "want more" (records are read whole,
         * read-ahead off), at the price of a call and two error queue
         * walks. The last read of every batch is such a read. */
    } else if (rc == FL_OK && cap > 0) {
        errors_clear();
        size_t n = 0;
        if (SSL_read_ex(t->ssl, buf, cap, &n) == 1) {
            *got = n;
            t->app_seen = true;
        } else {
            rc = failed(t, 0);
            if (rc == FL_EPENDING)
                rc = FL_OK;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

size_t fl__tls_pending(fl__tls_t *t)
{
    pthread_mutex_lock(&t->mu);
    int n = t->done ? SSL_pending(t->ssl) : 0;
    pthread_mutex_unlock(&t->mu);
    return n > 0 ? (size_t)n : 0;
}

int fl__tls_write(fl__tls_t *t, const void *p, size_t n)
{
    pthread_mutex_lock(&t->mu);
    int rc = FL_OK;
    if (!t->done) {
        snprintf(t->why, sizeof t->why, "write before the handshake is done");
        rc = FL_ETLS;
    }
    const uint8_t *b = p;
    while (rc == FL_OK && n > 0) {
        errors_clear();
        size_t w = 0;
        if (SSL_write_ex(t->ssl, b, n, &w) != 1) {
            rc = failed(t, 0);
            if (rc != FL_ETLS) {
                /* A memory BIO takes everything: only memory runs out. */
                rc = FL_ENOMEM;
            }
            break;
        }
        b += w;
        n -= w;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

size_t fl__tls_out_len(fl__tls_t *t)
{
    pthread_mutex_lock(&t->mu);
    size_t n = BIO_ctrl_pending(t->out);
    pthread_mutex_unlock(&t->mu);
    return n;
}

size_t fl__tls_out_take(fl__tls_t *t, uint8_t *buf, size_t cap)
{
    if (cap == 0)
        return 0;
    pthread_mutex_lock(&t->mu);
    int r = BIO_read(t->out, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    pthread_mutex_unlock(&t->mu);
    return r > 0 ? (size_t)r : 0;
}

const char *fl__tls_why(fl__tls_t *t)
{
    return t->why;
}

const char *fl__tls_why_copy(fl__tls_t *t, char *buf, size_t cap)
{
    pthread_mutex_lock(&t->mu);
    snprintf(buf, cap, "%s", t->why);
    pthread_mutex_unlock(&t->mu);
    return buf;
}
