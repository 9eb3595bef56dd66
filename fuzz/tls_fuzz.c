/*
 * tls_fuzz - libFuzzer target for the TLS engine (src/remote/tls.c) and
 * the record-to-frame boundary of a TLS connection's receiving side. The
 * first input byte picks the mode, the second the size of each read:
 *
 * 0, 1: the rest is what a hostile peer sends to a server (0) or to a
 *   client that sent its ClientHello (1), fed in reads of that size. The
 *   engine must answer FL_OK, FL_ETLS with a reason, or FL_ECLOSED, and
 *   never crash.
 * 2, 3: two engines finish a real handshake in memory; the rest is the
 *   plaintext stream the client sends, written in pieces of that size,
 *   sealed, and read by the server in reads of that size, decrypted into
 *   a buffer that fl__rx_next cuts into frames as the transport does.
 *   The plaintext must come out exactly as it went in (2); with one
 *   ciphertext byte flipped (3) what comes out must be a prefix of the
 *   input and never all of it (the broken record fails, or waits for
 *   bytes that never come).
 *
 * The certificate is made once, in memory (a self-signed EC key written
 * to a temporary folder for fl__tls_ctx_new).
 *
 *   make fuzz        (clang; FUZZ_SECONDS each, default 60)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/internal.h"
#include "remote/rx.h"
#include "remote/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAME 4096u

static fl__tls_ctx_t *ctx;

/* A self-signed certificate and its key in dir (cert.pem, key.pem). */
static void make_cert(const char *dir)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (k == NULL || x == NULL)
        abort();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)"fling fuzz", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, k);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                                             "critical,CA:TRUE");
    if (bc == NULL || X509_add_ext(x, bc, -1) != 1)
        abort();
    X509_EXTENSION_free(bc);
    if (X509_sign(x, k, EVP_sha256()) == 0)
        abort();
    char path[512];
    snprintf(path, sizeof path, "%s/cert.pem", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL || PEM_write_X509(f, x) != 1)
        abort();
    fclose(f);
    snprintf(path, sizeof path, "%s/key.pem", dir);
    f = fopen(path, "w");
    if (f == NULL || PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1)
        abort();
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void setup(void)
{
    char dir[] = "/tmp/fl_tls_fuzz_XXXXXX";
    if (mkdtemp(dir) == NULL)
        abort();
    make_cert(dir);
    char cert[600], key[600];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    fl_rpc_tls_opts_t o = {.cert_file = cert, .key_file = key, .ca_file = cert};
    char why[512];
    if (fl__tls_ctx_new(&o, &ctx, why, sizeof why) != FL_OK) {
        fprintf(stderr, "tls_fuzz: %s\n", why);
        abort();
    }
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

/* An outcome of the engine: documented, and FL_ETLS with a reason. */
static void check_rc(fl__tls_t *t, int rc)
{
    if (rc != FL_OK && rc != FL_EPENDING && rc != FL_ETLS && rc != FL_ECLOSED)
        abort();
    if (rc == FL_ETLS && fl__tls_why(t)[0] == '\0')
        abort();
}

/* Move a's output to b. */
static void pump(fl__tls_t *a, fl__tls_t *b)
{
    uint8_t buf[4096];
    size_t n;
    while ((n = fl__tls_out_take(a, buf, sizeof buf)) > 0)
        if (fl__tls_feed(b, buf, n) != FL_OK)
            abort();
}

/* Modes 0 and 1: a hostile peer. */
static void hostile(bool client, size_t chunk, const uint8_t *p, size_t n)
{
    fl__tls_t *t = NULL;
    if (fl__tls_new(ctx, client, NULL, &t) != FL_OK)
        abort();
    uint8_t out[4096];
    if (client)
        check_rc(t, fl__tls_handshake(t));
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        if (fl__tls_feed(t, p + off, k) != FL_OK)
            abort();
        size_t got = 0;
        int rc = fl__tls_read(t, out, sizeof out, &got);
        check_rc(t, rc);
        if (got > sizeof out)
            abort();
        while (fl__tls_out_take(t, out, sizeof out) > 0)
            ;
        if (rc != FL_OK)
            break;
    }
    fl__tls_free(t);
}

/* Cut the frames of buf[*off..len) as the transport does; false once the
 * stream is refused. */
static bool cut(fl__rx_t *rx, const uint8_t *buf, size_t len, size_t *off)
{
    for (;;) {
        size_t avail = len - *off;
        uint8_t *view = malloc(avail ? avail : 1);
        if (view == NULL)
            abort();
        memcpy(view, buf + *off, avail);
        fl__rx_frame_t fr;
        size_t need = 0;
        char why[256];
        int rc = fl__rx_next(rx, view, avail, &fr, &need, why, sizeof why);
        if (rc == FL_OK && (fr.size > avail || fr.size > MAX_FRAME))
            abort();
        free(view);
        if (rc == FL_EPENDING) {
            if (need <= avail || need > MAX_FRAME)
                abort();
            return true;
        }
        if (rc != FL_OK)
            return false;
        *off += fr.size;
    }
}

/* Modes 2 and 3: plaintext through a real session. */
static void session(bool flip, size_t chunk, const uint8_t *p, size_t n)
{
    fl__tls_t *c = NULL, *s = NULL;
    if (fl__tls_new(ctx, true, NULL, &c) != FL_OK ||
        fl__tls_new(ctx, false, NULL, &s) != FL_OK)
        abort();
    int crc = fl__tls_handshake(c), src = FL_EPENDING;
    for (int i = 0; i < 4; i++) {
        pump(c, s);
        if (src == FL_EPENDING)
            src = fl__tls_handshake(s);
        pump(s, c);
        if (crc == FL_EPENDING)
            crc = fl__tls_handshake(c);
    }
    if (crc != FL_OK || src != FL_OK)
        abort();
    for (size_t off = 0; off < n; off += chunk)
        if (fl__tls_write(c, p + off, n - off < chunk ? n - off : chunk) !=
            FL_OK)
            abort();
    size_t clen = fl__tls_out_len(c);
    uint8_t *cipher = malloc(clen ? clen : 1);
    uint8_t *plain = malloc(n + 1);
    if (cipher == NULL || plain == NULL)
        abort();
    if (fl__tls_out_take(c, cipher, clen) != clen)
        abort();
    if (flip && clen > 0)
        cipher[(size_t)p[0] * 131 % clen] ^= (uint8_t)(p[n > 1 ? 1 : 0] | 1);
    fl__rx_t rx;
    fl__rx_init(&rx, MAX_FRAME);
    size_t got_all = 0, cut_off = 0;
    bool cutting = true;
    int rc = FL_OK;
    for (size_t off = 0; off < clen && rc == FL_OK; off += chunk) {
        size_t k = clen - off < chunk ? clen - off : chunk;
        if (fl__tls_feed(s, cipher + off, k) != FL_OK)
            abort();
        size_t got;
        do {
            got = 0;
            rc = fl__tls_read(s, plain + got_all, n + 1 - got_all, &got);
            check_rc(s, rc);
            got_all += got;
            if (got_all > n)
                abort(); /* more plaintext than was sent */
        } while (rc == FL_OK && got > 0);
        if (cutting)
            cutting = cut(&rx, plain, got_all, &cut_off);
    }
    if (memcmp(plain, p, got_all) != 0)
        abort(); /* what came out is not what went in */
    if (!flip && (rc != FL_OK || got_all != n))
        abort();
    if (flip && clen > 0 && rc == FL_OK && got_all == n)
        abort(); /* a broken record was taken whole */
    free(cipher);
    free(plain);
    fl__tls_free(c);
    fl__tls_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ctx == NULL)
        setup();
    if (size < 2)
        return 0;
    int mode = data[0] & 3;
    size_t chunk = (size_t)data[1] * 67 % 20000 + 1;
    data += 2;
    size -= 2;
    if (mode < 2)
        hostile(mode == 1, chunk, data, size);
    else if (size > 0)
        session(mode == 3, chunk, data, size);
    return 0;
}
