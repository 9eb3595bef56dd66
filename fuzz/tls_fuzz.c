/*
 * tls_fuzz - libFuzzer target for the TLS engine (src/remote/tls.h) and the
 * receiving side of a TLS connection, where records become frames. The
 * engines use the test certificates (FL_TEST_CERTS, scripts/test-certs.sh).
 * Byte 0 picks the mode (its low 2 bits):
 *
 * 0, 1 HOSTILE: byte 1 picks the size of each read; the rest is what a
 *   hostile peer sends to a fresh server (0) or to a fresh client that
 *   sent its ClientHello (1), before any handshake: the record parser,
 *   the plaintext-magic check. The engine answers FL_OK, FL_ETLS with a
 *   reason, or FL_ECLOSED, and never crashes.
 * 2, 3 SESSION: a client and a server that shook hands in memory play a
 *   session; the server receives (2) or the client (3). The sending side
 *   writes plaintext, well-formed frames or any bytes, in records of the
 *   sizes the input picks; the input cuts the ciphertext into the
 *   deliveries the network would make, injects raw bytes of its own as
 *   ciphertext, or flips a byte of a delivery; the receiving side decrypts
 *   what it is fed and runs the plaintext through the frame decoder
 *   (fl__rx_next, the reassembly of FRAGMENT frames) as a connection does.
 *   Operations, each an opcode byte and its operands, read until the
 *   input ends (opcode & 7 is 4: CORRUPT; else opcode & 3):
 *     0 BYTES   n (u16 LE, at most 4096), piece (u8): n bytes of the input
 *               written as plaintext, piece * 8 + 1 bytes a record
 *     1 FRAME   kind, flags (u16 LE), corr (u8), body length (u8), piece:
 *               a frame of that kind with metadata from the next input
 *               bytes, then the body, written as BYTES does
 *     2 DELIVER n (u8): up to (n + 1) * 8 bytes of the ciphertext waiting
 *               go to the receiver, which reads and decodes
 *     3 INJECT  n (u8): n bytes of the input fed to the receiver as
 *               ciphertext, which reads and decodes
 *     4 CORRUPT at (u16 LE), mask (u8): the next delivery that moves bytes
 *               has its byte at % its length xored with mask | 1
 *   At the end everything still waiting is delivered and decoded.
 *
 * Checks: no crash, leak or sanitizer report, no hang (every loop is
 * bounded by the input); a failure of the engine is FL_ETLS with a reason
 * or FL_ECLOSED, one of the decoder a documented code with a reason; the
 * decoder never asks for more than the maximum frame size. Until raw
 * bytes were injected, the plaintext the receiver decrypts is a prefix of
 * what was written, and all of it once everything was delivered, unless
 * the session failed; after a flipped byte, never all of it (the broken
 * record fails, or waits for bytes that never come). Once the decoder
 * refused the stream (where a connection would close) the receiver goes
 * on decrypting, undecoded, so that those checks still hold.
 *
 * The session is kept across inputs (a handshake per input would be most
 * of the time spent): it is made again after an input that broke it,
 * injected or flipped bytes, or left bytes in flight, and every
 * RENEW_EVERY inputs. A finding may so depend on the inputs before it: if
 * the crash file alone does not reproduce it, run it after the corpus.
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

#include "fuzz_rx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAME 4096u
#define MAX_BYTES 4096u
/* Plaintext the sender writes in one input, at most (then BYTES and FRAME
 * write nothing more): bounds the work of one input. */
#define MAX_SENT (64u * 1024u)
/* Inputs one session serves at most before it is made again. */
#define RENEW_EVERY 64

/* The contexts, made once, and the session: the engines, made again
 * after an input broke it and every RENEW_EVERY inputs. */
static struct {
    fl__tls_ctx_t *cx, *sx;
    fl__tls_t *c, *s;
    unsigned served;
} S;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "tls_fuzz: %s: %s\n", what, why);
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

/* CORRUPT's byte to flip in the next delivery. */
typedef struct flip {
    bool armed;     /* flip a byte of the next delivery */
    bool corrupted; /* a byte was flipped: never all plaintext arrives */
    size_t at;
    uint8_t mask;
} flip_t;

/* Moves up to max bytes of what `from` has to send into `to`, a byte
 * flipped if flip (NULL: none) is armed; the bytes moved. */
static size_t pump(fl__tls_t *from, fl__tls_t *to, size_t max, flip_t *flip)
{
    uint8_t buf[4096];
    size_t total = 0, n;
    while (total < max &&
           (n = fl__tls_out_take(from, buf,
                                 max - total < sizeof buf ? max - total
                                                          : sizeof buf)) > 0) {
        if (flip != NULL && flip->armed) {
            buf[flip->at % n] ^= flip->mask;
            flip->armed = false;
            flip->corrupted = true;
        }
        if (fl__tls_feed(to, buf, n) != FL_OK)
            abort();
        total += n;
    }
    return total;
}

/* A fresh session: both engines through the handshake. */
static void contexts(void)
{
    if (S.cx == NULL) {
        S.cx = ctx_of("client");
        S.sx = ctx_of("server");
    }
}

static void session_new(void)
{
    fl__tls_free(S.c);
    fl__tls_free(S.s);
    contexts();
    S.served = 0;
    if (fl__tls_new(S.cx, true, "127.0.0.1", &S.c) != FL_OK ||
        fl__tls_new(S.sx, false, NULL, &S.s) != FL_OK)
        die("engine", "out of memory");
    int crc = fl__tls_handshake(S.c), src = FL_EPENDING;
    for (int round = 0; round < 20; round++) {
        size_t moved = pump(S.c, S.s, SIZE_MAX, NULL);
        if (src == FL_EPENDING)
            src = fl__tls_handshake(S.s);
        moved += pump(S.s, S.c, SIZE_MAX, NULL);
        if (crc == FL_EPENDING)
            crc = fl__tls_handshake(S.c);
        if (moved == 0)
            break;
    }
    if (crc != FL_OK || src != FL_OK)
        die("handshake", crc != FL_OK ? fl__tls_why(S.c) : fl__tls_why(S.s));
}

/* An outcome of the engine: documented, and FL_ETLS with a reason. */
static void check_rc(fl__tls_t *t, int rc)
{
    if (rc != FL_OK && rc != FL_EPENDING && rc != FL_ETLS && rc != FL_ECLOSED)
        abort();
    if (rc == FL_ETLS && fl__tls_why(t)[0] == '\0')
        die("hostile", "FL_ETLS without a reason");
}

/* Modes 0 and 1: a hostile peer's bytes p (n) to a fresh server or client,
 * in reads of `chunk` bytes. */
static void hostile(bool client, size_t chunk, const uint8_t *p, size_t n)
{
    fl__tls_t *t = NULL;
    if (fl__tls_new(client ? S.cx : S.sx, client, client ? "localhost" : NULL,
                    &t) != FL_OK)
        die("engine", "out of memory");
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
    /* The decoder refused the stream (a connection would close): decoding
     * stops, decrypting goes on so that the plaintext is still checked. */
    bool refused;
    bool broken;   /* the TLS session failed: stop; make it again */
    bool injected; /* raw bytes were fed: plaintext may differ from sent */
    flip_t flip;   /* CORRUPT */
    /* What the sender wrote, to compare with what arrives. */
    uint8_t *sent;
    size_t nsent, nrecv;
} rx_side_t;

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
    while (!r->refused) {
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
            fuzz_check_rx_error(rc, why);
            r->refused = true;
            return;
        }
        r->off += fr.size;
    }
}

/* The receiver reads all it can decrypt and decodes it. */
static void receive(rx_side_t *r)
{
    while (!r->broken) {
        uint8_t chunk[2048];
        size_t got = 0;
        int rc = fl__tls_read(r->t, chunk, sizeof chunk, &got);
        if (rc == FL_ETLS) {
            if (fl__tls_why(r->t)[0] == '\0')
                die("read", "FL_ETLS without a reason");
            r->broken = true;
            return;
        }
        if (rc == FL_ECLOSED) {
            r->broken = true;
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
        if (r->refused)
            continue;
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

/* Up to max bytes of what `from` has to send go to the receiver, a byte
 * flipped if CORRUPT asked; then it reads and decodes. */
static void deliver(fl__tls_t *from, rx_side_t *r, size_t max)
{
    pump(from, r->t, max, &r->flip);
    receive(r);
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
            r->broken = true;
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

/* Modes 2 and 3: the operations on the session. */
static void session(bool client_receives, in_t *in)
{
    if (S.c == NULL || S.served >= RENEW_EVERY)
        session_new();
    S.served++;
    fl__tls_t *from = client_receives ? S.s : S.c;
    rx_side_t r;
    memset(&r, 0, sizeof r);
    r.t = client_receives ? S.c : S.s;
    fl__rx_init(&r.rx, MAX_FRAME);

    while (in->n > 0 && !r.broken) {
        uint8_t op = take8(in);
        if ((op & 7) == 4) {
            r.flip.at = take16(in);
            r.flip.mask = take8(in) | 1;
            r.flip.armed = true;
            continue;
        }
        switch (op & 3) {
        case 0: {
            size_t n = take16(in) % (MAX_BYTES + 1);
            size_t piece = (size_t)take8(in) * 8 + 1, got;
            const uint8_t *p = take(in, n, &got);
            send_bytes(from, &r, p, got, piece);
            break;
        }
        case 1:
            send_frame(in, from, &r);
            break;
        case 2:
            deliver(from, &r, ((size_t)take8(in) + 1) * 8);
            break;
        default: {
            size_t got;
            const uint8_t *p = take(in, take8(in), &got);
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
    if (!r.broken)
        deliver(from, &r, SIZE_MAX);
    if (!r.injected && !r.flip.corrupted && !r.broken && r.nrecv != r.nsent)
        die("end", "not all the plaintext written came out");
    if (!r.injected && r.flip.corrupted && r.nrecv == r.nsent)
        die("end", "a record with a flipped byte was taken whole");
    /* A session left healthy goes on with nothing in flight: both sides
     * drained (this input's decoder is done with it). */
    bool renew = r.broken || r.injected || r.flip.corrupted;
    if (!renew) {
        pump(from, r.t, SIZE_MAX, NULL);
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    contexts();
    in_t in = {data, size};
    uint8_t mode = take8(&in) & 3;
    if (mode < 2) {
        size_t chunk = (size_t)take8(&in) * 67 % 20000 + 1;
        hostile(mode == 1, chunk, in.p, in.n);
    } else {
        session(mode == 3, &in);
    }
    return 0;
}
