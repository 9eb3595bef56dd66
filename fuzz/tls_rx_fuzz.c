/*
 * tls_rx_fuzz - libFuzzer target for the receiving side of a TLS
 * connection, where records become frames: two engines of src/remote/tls.h
 * (a client and a server with the test certificates, FL_TEST_CERTS) shake
 * hands once in memory, then the input plays a session on them. The
 * sending side writes plaintext, well-formed frames or any bytes, in
 * records of the sizes the input picks; the input cuts the ciphertext
 * into the deliveries the network would make and injects raw bytes of its
 * own as ciphertext; the receiving side decrypts what it is fed and runs
 * the plaintext through the frame decoder (fl__rx_next, the reassembly of
 * FRAGMENT frames) as a connection does.
 *
 * Checks: no crash, leak or sanitizer report, no hang (every loop is
 * bounded by the input); plaintext comes out whole and in order (the
 * bytes the receiver decrypts are exactly a prefix of those written, until
 * raw bytes were injected); a failure of the engine is FL_ETLS with a
 * reason or FL_ECLOSED, one of the decoder a documented code with a
 * reason; the decoder never asks for more than the maximum frame size.
 * A session the input broke is made again for the next input.
 *
 * Input: byte 0 picks the receiving side (bit 0: the client; else the
 * server). Then operations, each an opcode byte (low 2 bits) and its
 * operands, read until the input ends:
 *   0 BYTES   n (u16 LE, at most 4096), piece (u8): n bytes of the input
 *             written as plaintext, piece * 8 + 1 bytes a record
 *   1 FRAME   kind, flags (u16 LE), corr (u8), body length (u8), piece:
 *             a frame of that kind with metadata from the next input
 *             bytes, then the body, written as BYTES does
 *   2 DELIVER n (u8): up to (n + 1) * 8 bytes of the ciphertext waiting
 *             go to the receiver, which reads and decodes
 *   3 INJECT  n (u8): n bytes of the input fed to the receiver as
 *             ciphertext, which reads and decodes
 * At the end everything still waiting is delivered and decoded.
 *
 *   make fuzz        (clang; FUZZ_SECONDS each, default 60)
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "remote/fragment.h"
#include "remote/rx.h"
#include "remote/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAME 4096u
#define MAX_BYTES 4096u
/* Plaintext the sender writes in one input, at most (then BYTES and FRAME
 * write nothing more): bounds the work of one input. */
#define MAX_SENT (64u * 1024u)

/* The session: the engines and their contexts, made once and again after
 * an input broke it. */
static struct {
    fl__tls_ctx_t *cx, *sx;
    fl__tls_t *c, *s;
} S;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "tls_rx_fuzz: %s: %s\n", what, why);
    abort();
}

static fl__tls_ctx_t *ctx_of(const char *who)
{
    char cert[512], key[512];
    snprintf(cert, sizeof cert, "%s/%s.crt", FL_TEST_CERTS, who);
    snprintf(key, sizeof key, "%s/%s.key", FL_TEST_CERTS, who);
    fl_rpc_tls_opts_t o = {
        .cert_file = cert, .key_file = key, .ca_file = FL_TEST_CERTS "/ca.crt"};
    fl__tls_ctx_t *x = NULL;
    char why[512] = "";
    if (fl__tls_ctx_new(&o, &x, why, sizeof why) != FL_OK)
        die(who, why);
    return x;
}

/* Moves what `from` has to send into `to`; the bytes moved. */
static size_t pump(fl__tls_t *from, fl__tls_t *to, size_t max)
{
    uint8_t buf[4096];
    size_t total = 0, n;
    while (total < max &&
           (n = fl__tls_out_take(from, buf,
                                 max - total < sizeof buf ? max - total
                                                          : sizeof buf)) > 0) {
        if (fl__tls_feed(to, buf, n) != FL_OK)
            abort();
        total += n;
    }
    return total;
}

/* A fresh session: both engines through the handshake. */
static void session_new(void)
{
    fl__tls_free(S.c);
    fl__tls_free(S.s);
    if (S.cx == NULL) {
        S.cx = ctx_of("client");
        S.sx = ctx_of("server");
    }
    if (fl__tls_new(S.cx, true, "127.0.0.1", &S.c) != FL_OK ||
        fl__tls_new(S.sx, false, NULL, &S.s) != FL_OK)
        die("engine", "out of memory");
    int crc = fl__tls_handshake(S.c), src = FL_EPENDING;
    for (int round = 0; round < 20; round++) {
        size_t moved = pump(S.c, S.s, SIZE_MAX);
        if (src == FL_EPENDING)
            src = fl__tls_handshake(S.s);
        moved += pump(S.s, S.c, SIZE_MAX);
        if (crc == FL_EPENDING)
            crc = fl__tls_handshake(S.c);
        if (moved == 0)
            break;
    }
    if (crc != FL_OK || src != FL_OK)
        die("handshake", crc != FL_OK ? fl__tls_why(S.c) : fl__tls_why(S.s));
}

/* The input, read from the front. */
typedef struct in {
    const uint8_t *p;
    size_t n;
} in_t;

static uint8_t take8(in_t *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static uint16_t take16(in_t *in)
{
    uint16_t lo = take8(in);
    return (uint16_t)(lo | (uint16_t)take8(in) << 8);
}

/* Up to n bytes of the input (fewer at its end): *got of them at the
 * returned pointer. */
static const uint8_t *take(in_t *in, size_t n, size_t *got)
{
    const uint8_t *p = in->p;
    *got = n < in->n ? n : in->n;
    in->p += *got;
    in->n -= *got;
    return p;
}

/* The receiving side: its engine, what it decrypted (held until frames
 * are cut off the front), the decoder and the reassembly. */
typedef struct rx_side {
    fl__tls_t *t;
    uint8_t *buf;
    size_t len, off;
    fl__rx_t rx;
    fl__frag_t frag;
    bool over;     /* the connection would be closed: stop */
    bool broken;   /* the TLS session failed: make it again */
    bool injected; /* raw bytes were fed: plaintext may differ from sent */
    /* What the sender wrote, to compare with what arrives. */
    uint8_t *sent;
    size_t nsent, nrecv;
} rx_side_t;

/* An error that ends the connection: a documented code, with a reason. */
static void check_decode_error(int rc, const char *why)
{
    if (rc != FL_EPROTO && rc != FL_EHANDSHAKE && rc != FL_EMSGSIZE &&
        rc != FL_ENOMEM)
        abort();
    if (why[0] == '\0')
        abort();
}

/* A FRAGMENT frame, taken as the connection takes it (conn_read.c). */
static int take_fragment(rx_side_t *r, const fl__rx_frame_t *fr, char *why,
                         size_t why_len)
{
    uint8_t *whole = NULL;
    size_t len = 0, need = 0;
    int rc = fl__frag_put(&r->frag, fr, MAX_FRAME, &whole, &len, why, why_len);
    if (rc == FL_EPENDING)
        return FL_OK;
    if (rc != FL_OK)
        return rc;
    if (len > MAX_FRAME)
        abort();
    fl__rx_frame_t wf;
    rc = fl__rx_next(&r->rx, whole, len, &wf, &need, why, why_len);
    if (rc == FL_EPENDING || (rc == FL_OK && wf.size != len))
        abort();
    fl__free(whole);
    return rc;
}

/* Cuts the frames the plaintext held makes. */
static void decode(rx_side_t *r)
{
    char why[256];
    while (!r->over) {
        size_t avail = r->len - r->off;
        /* An exact-size copy: ASan catches any read past the bytes. */
        uint8_t *view = malloc(avail ? avail : 1);
        if (view == NULL)
            abort();
        memcpy(view, r->buf + r->off, avail);
        fl__rx_frame_t fr;
        size_t need = 0;
        why[0] = '\0';
        int rc = fl__rx_next(&r->rx, view, avail, &fr, &need, why, sizeof why);
        if (rc == FL_EPENDING) {
            free(view);
            if (need <= avail || need > MAX_FRAME)
                abort();
            return;
        }
        if (rc == FL_OK && (fr.size > avail || fr.size > MAX_FRAME))
            abort();
        if (rc == FL_OK && fr.h.kind == FL__K_FRAGMENT)
            rc = take_fragment(r, &fr, why, sizeof why);
        free(view);
        if (rc != FL_OK) {
            check_decode_error(rc, why);
            r->over = true;
            return;
        }
        r->off += fr.size;
    }
}

/* The receiver reads all it can decrypt and decodes it. */
static void receive(rx_side_t *r)
{
    while (!r->over) {
        uint8_t chunk[2048];
        size_t got = 0;
        int rc = fl__tls_read(r->t, chunk, sizeof chunk, &got);
        if (rc == FL_ETLS) {
            if (fl__tls_why(r->t)[0] == '\0')
                die("read", "FL_ETLS without a reason");
            r->over = r->broken = true;
            return;
        }
        if (rc == FL_ECLOSED) {
            r->over = r->broken = true;
            return;
        }
        if (rc != FL_OK)
            abort();
        if (got == 0)
            return;
        if (!r->injected && (r->nrecv + got > r->nsent ||
                             memcmp(r->sent + r->nrecv, chunk, got) != 0))
            die("read", "plaintext differs from what was written");
        r->nrecv += got;
        if (r->off > 0 && r->off == r->len)
            r->off = r->len = 0;
        uint8_t *nb = realloc(r->buf, r->len + got);
        if (nb == NULL)
            abort();
        r->buf = nb;
        memcpy(r->buf + r->len, chunk, got);
        r->len += got;
        decode(r);
    }
}

/* The sender writes p (n bytes) in records of `piece` bytes. */
static void send_bytes(fl__tls_t *from, rx_side_t *r, const uint8_t *p,
                       size_t n, size_t piece)
{
    if (r->nsent + n > MAX_SENT)
        return;
    for (size_t off = 0; off < n; off += piece) {
        size_t k = n - off < piece ? n - off : piece;
        int rc = fl__tls_write(from, p + off, k);
        if (rc == FL_ETLS) {
            r->over = r->broken = true;
            return;
        }
        if (rc != FL_OK)
            abort();
    }
    uint8_t *ns = realloc(r->sent, r->nsent + n);
    if (ns == NULL && r->nsent + n > 0)
        abort();
    r->sent = ns;
    if (n > 0)
        memcpy(r->sent + r->nsent, p, n);
    r->nsent += n;
}

/* A string of the frame's metadata: up to `cap` bytes of the input. */
static fl__str_t take_str(in_t *in, size_t cap)
{
    size_t n = take8(in) % (cap + 1), got;
    const uint8_t *p = take(in, n, &got);
    fl__str_t s = {(const char *)p, (uint16_t)got};
    return s;
}

/* A frame whose header and metadata the input picks (the encoder's
 * limits hold: a frame it cannot encode goes without metadata). */
static void send_frame(in_t *in, fl__tls_t *from, rx_side_t *r)
{
    uint8_t kind = take8(in) % 12;
    uint16_t flags = take16(in);
    uint64_t corr = take8(in);
    size_t body_len = take8(in);
    size_t piece = (size_t)take8(in) * 8 + 1;
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.max_frame = (uint32_t)take16(in) << 4;
    m.service_name = take_str(in, 32);
    m.endpoint = take_str(in, 32);
    m.gateway = take_str(in, 32);
    m.service_index = take8(in);
    m.method_index = take8(in);
    m.instance = take8(in);
    m.incarnation = take8(in);
    m.deadline_ms = take16(in);
    m.code = take8(in);
    m.message = take_str(in, 32);
    static uint8_t frame[FL__FRAME_HDR + 1024 + 256];
    size_t meta_len =
        fl__frame_encode_meta(kind, flags, &m, frame + FL__FRAME_HDR, 1024);
    size_t got;
    const uint8_t *body = take(in, body_len, &got);
    memcpy(frame + FL__FRAME_HDR + meta_len, body, got);
    fl__frame_hdr_t h = {FL__PROTO_VERSION,  kind,         flags, corr,
                         (uint32_t)meta_len, (uint32_t)got};
    fl__frame_encode_hdr(frame, &h);
    send_bytes(from, r, frame, FL__FRAME_HDR + meta_len + got, piece);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (S.c == NULL)
        session_new();
    in_t in = {data, size};
    bool client_receives = take8(&in) & 1;
    fl__tls_t *from = client_receives ? S.s : S.c;
    rx_side_t r;
    memset(&r, 0, sizeof r);
    r.t = client_receives ? S.c : S.s;
    fl__rx_init(&r.rx, MAX_FRAME);

    while (in.n > 0 && !r.over) {
        uint8_t op = take8(&in);
        switch (op & 3) {
        case 0: {
            size_t n = take16(&in) % (MAX_BYTES + 1);
            size_t piece = (size_t)take8(&in) * 8 + 1, got;
            const uint8_t *p = take(&in, n, &got);
            send_bytes(from, &r, p, got, piece);
            break;
        }
        case 1:
            send_frame(&in, from, &r);
            break;
        case 2:
            pump(from, r.t, ((size_t)take8(&in) + 1) * 8);
            receive(&r);
            break;
        default: {
            size_t got;
            const uint8_t *p = take(&in, take8(&in), &got);
            if (got > 0) {
                if (fl__tls_feed(r.t, p, got) != FL_OK)
                    abort();
                r.injected = true;
            }
            receive(&r);
            break;
        }
        }
    }
    /* The rest, as the network would deliver it. */
    if (!r.over) {
        pump(from, r.t, SIZE_MAX);
        receive(&r);
    }
    /* A session left healthy goes on with nothing in flight: both sides
     * drained (this input's decoder is done with it). */
    bool renew = r.broken || r.injected;
    if (!renew) {
        pump(from, r.t, SIZE_MAX);
        uint8_t sink[2048];
        size_t got = 0;
        int rc;
        do
            rc = fl__tls_read(r.t, sink, sizeof sink, &got);
        while (rc == FL_OK && got > 0);
        renew = rc != FL_OK || fl__tls_out_len(r.t) != 0 ||
                fl__tls_out_len(from) != 0 || fl__tls_pending(r.t) != 0;
    }
    fl__frag_reset(&r.frag);
    free(r.buf);
    free(r.sent);
    if (renew)
        session_new();
    return 0;
}
