/*
 * frame_fixture.h - what the frame_*_test.c programs share: big-endian
 * bytes and raw headers written from docs/wire-protocol.md independently
 * of the codec (src/remote/frame.c), metadata buffers, and the decode,
 * expect and round-trip checks.
 *
 * Frames under test are built byte by byte from the specification (not with
 * the encoder), and every buffer handed to the decoder is a heap copy of
 * exactly the bytes it may read, so ASan builds catch any read past it.
 *
 * Header-only (static inline) because each program is built from one file.
 */
#ifndef FRAME_FIXTURE_H
#define FRAME_FIXTURE_H

#include "fl_test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote/frame.h"

#define MAGIC 0x464C4E47u
#define MiB (1024u * 1024u)
#define DEFAULT_MAX (10u * MiB)
#define WHY_LEN 512

/* ---- helpers: big-endian bytes, written independently of the codec ------ */

static inline void be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void be64(uint8_t *p, uint64_t v)
{
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

static inline uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* A raw 24-byte header, field by field, as the table in the spec lays out. */
typedef struct raw_hdr {
    uint32_t magic;
    uint8_t version;
    uint8_t kind;
    uint16_t flags;
    uint64_t corr;
    uint32_t meta_len;
    uint32_t body_len;
} raw_hdr_t;

static inline void raw_bytes(uint8_t out[24], const raw_hdr_t *r)
{
    be32(out, r->magic);
    out[4] = r->version;
    out[5] = r->kind;
    be16(out + 6, r->flags);
    be64(out + 8, r->corr);
    be32(out + 16, r->meta_len);
    be32(out + 20, r->body_len);
}

/* A valid version-1 header of `kind` (no body, smallest metadata, a corr
 * that suits the kind); tests then break one field. */
static inline raw_hdr_t valid_hdr(uint8_t kind)
{
    raw_hdr_t r = {MAGIC, 1, kind, 0, 0, 0, 0};
    switch (kind) {
    case FL__K_HELLO:
        r.meta_len = 4 + 2 + 3;
        break;
    case FL__K_CONNECT:
        r.meta_len = 2 + 1 + 2 + 1;
        r.corr = 7;
        break;
    case FL__K_CONNECTED:
        r.meta_len = 4;
        r.corr = 7;
        break;
    case FL__K_INVOKE:
        r.meta_len = 2 + 1 + 4 + 4;
        r.corr = 7;
        break;
    case FL__K_REPLY:
        r.corr = 7;
        break;
    case FL__K_ERROR:
        r.meta_len = 4 + 2;
        break;
    default:
        break;
    }
    return r;
}

static inline void check_why(int rc, const char *why)
{
    if (rc == FL_OK || rc == FL_EPENDING)
        return;
    /* "a one-line reason naming the rule" */
    if (why[0] == '\0')
        fail_msg("%s without a reason in `why`", fl_err_name(rc));
    if (strchr(why, '\n') != NULL)
        fail_msg("`why` is not one line: %s", why);
}

/* Decode the header bytes from a heap buffer of exactly 24 bytes. */
static inline int decode_raw_why(const raw_hdr_t *r, uint64_t max_frame,
                                 fl__frame_hdr_t *out, char *why,
                                 size_t why_len)
{
    uint8_t *b = malloc(FL__FRAME_HDR);
    assert_non_null(b);
    raw_bytes(b, r);
    why[0] = '\0';
    int rc =
        fl__frame_decode_hdr(b, FL__FRAME_HDR, max_frame, out, why, why_len);
    free(b);
    check_why(rc, why);
    return rc;
}

static inline void expect_hdr(int expected, const raw_hdr_t *r,
                              uint64_t max_frame)
{
    fl__frame_hdr_t h;
    char why[WHY_LEN];
    int rc = decode_raw_why(r, max_frame, &h, why, sizeof why);
    if (rc != expected)
        fail_msg("header kind %u flags 0x%04x corr %llu meta %u body %u "
                 "(max %llu): expected %s, got %s (%s)",
                 (unsigned)r->kind, (unsigned)r->flags,
                 (unsigned long long)r->corr, (unsigned)r->meta_len,
                 (unsigned)r->body_len, (unsigned long long)max_frame,
                 fl_err_name(expected), fl_err_name(rc), why);
}

/* Metadata, built byte by byte. */
typedef struct mbuf {
    uint8_t b[4096];
    size_t n;
} mbuf_t;

static inline void m_u32(mbuf_t *m, uint32_t v)
{
    assert_true(m->n + 4 <= sizeof m->b);
    be32(m->b + m->n, v);
    m->n += 4;
}

static inline void m_len(mbuf_t *m, uint16_t v)
{
    assert_true(m->n + 2 <= sizeof m->b);
    be16(m->b + m->n, v);
    m->n += 2;
}

static inline void m_raw(mbuf_t *m, const void *p, size_t n)
{
    assert_true(m->n + n <= sizeof m->b);
    if (n != 0)
        memcpy(m->b + m->n, p, n);
    m->n += n;
}

/* A str16: its length, then its bytes. */
static inline void m_str(mbuf_t *m, const void *p, size_t n)
{
    m_len(m, (uint16_t)n);
    m_raw(m, p, n);
}

static inline void m_cstr(mbuf_t *m, const char *s)
{
    m_str(m, s, strlen(s));
}

/* A decoded frame: the header from its own 24 bytes, the metadata from a
 * heap buffer of exactly meta_len bytes (kept: decoded strings point in). */
typedef struct dec {
    fl__frame_hdr_t h;
    fl__frame_meta_t m;
    uint8_t *meta;
    char why[WHY_LEN];
} dec_t;

static inline void dec_free(dec_t *d)
{
    free(d->meta);
    d->meta = NULL;
}

/* Decode metadata bytes mb of a frame of kind/flags/corr; the header must
 * be accepted (decode_meta's precondition). Returns decode_meta's code. */
static inline int decode_meta_bytes(uint8_t kind, uint16_t flags, uint64_t corr,
                                    const mbuf_t *mb, dec_t *d)
{
    raw_hdr_t r = {MAGIC, 1, kind, flags, corr, (uint32_t)mb->n, 0};
    memset(d, 0, sizeof *d);
    int rc = decode_raw_why(&r, DEFAULT_MAX, &d->h, d->why, sizeof d->why);
    if (rc != FL_OK)
        fail_msg("header of the metadata test refused: %s (%s)",
                 fl_err_name(rc), d->why);
    d->meta = malloc(mb->n ? mb->n : 1);
    assert_non_null(d->meta);
    if (mb->n != 0)
        memcpy(d->meta, mb->b, mb->n);
    d->why[0] = '\0';
    rc = fl__frame_decode_meta(&d->h, d->meta, &d->m, d->why, sizeof d->why);
    check_why(rc, d->why);
    return rc;
}

static inline void expect_meta(int expected, uint8_t kind, uint16_t flags,
                               uint64_t corr, const mbuf_t *mb)
{
    dec_t d;
    int rc = decode_meta_bytes(kind, flags, corr, mb, &d);
    dec_free(&d);
    if (rc != expected)
        fail_msg("metadata of kind %u (%zu bytes): expected %s, got %s (%s)",
                 (unsigned)kind, mb->n, fl_err_name(expected), fl_err_name(rc),
                 d.why);
}

static inline fl__str_t str_of(const char *s)
{
    fl__str_t v = {s, (uint16_t)strlen(s)};
    return v;
}

/* A decoded string equals want and lies inside the metadata buffer. */
static inline void assert_str(const char *want, size_t want_len, fl__str_t got,
                              const uint8_t *meta, size_t meta_len)
{
    assert_int_equal(want_len, got.len);
    if (want_len == 0)
        return;
    assert_non_null(got.p);
    assert_true((const uint8_t *)got.p >= meta);
    assert_true((const uint8_t *)got.p + got.len <= meta + meta_len);
    assert_memory_equal(want, got.p, want_len);
}

/*
 * Encode a whole frame with the codec (header + metadata + body), then
 * decode it: header from its 24 bytes, metadata from exactly meta_len
 * bytes. Checks every header field and that the body bytes follow intact.
 */
static inline void round_trip(uint8_t kind, uint16_t flags, uint64_t corr,
                              const fl__frame_meta_t *in, const uint8_t *body,
                              uint32_t body_len, dec_t *d)
{
    memset(d, 0, sizeof *d);
    size_t ms = fl__frame_meta_size(kind, flags, in);
    size_t total = FL__FRAME_HDR + ms + body_len;
    uint8_t *frame = malloc(total);
    assert_non_null(frame);
    size_t w = ms ? fl__frame_encode_meta(kind, flags, in, frame + 24, ms) : 0;
    assert_int_equal(ms, w);
    fl__frame_hdr_t eh = {FL__PROTO_VERSION, kind,    flags, corr,
                          (uint32_t)ms,      body_len};
    fl__frame_encode_hdr(frame, &eh);
    if (body_len != 0)
        memcpy(frame + 24 + ms, body, body_len);

    uint8_t *hb = malloc(FL__FRAME_HDR);
    assert_non_null(hb);
    memcpy(hb, frame, FL__FRAME_HDR);
    int rc = fl__frame_decode_hdr(hb, FL__FRAME_HDR, DEFAULT_MAX, &d->h, d->why,
                                  sizeof d->why);
    free(hb);
    if (rc != FL_OK)
        fail_msg("round trip of kind %u: header refused: %s (%s)",
                 (unsigned)kind, fl_err_name(rc), d->why);
    assert_int_equal(1, d->h.version);
    assert_int_equal(kind, d->h.kind);
    assert_int_equal(flags, d->h.flags);
    assert_true(corr == d->h.corr);
    assert_int_equal(ms, d->h.meta_len);
    assert_int_equal(body_len, d->h.body_len);

    d->meta = malloc(ms ? ms : 1);
    assert_non_null(d->meta);
    if (ms != 0)
        memcpy(d->meta, frame + 24, ms);
    rc = fl__frame_decode_meta(&d->h, d->meta, &d->m, d->why, sizeof d->why);
    if (rc != FL_OK)
        fail_msg("round trip of kind %u: metadata refused: %s (%s)",
                 (unsigned)kind, fl_err_name(rc), d->why);
    if (body_len != 0)
        assert_memory_equal(body, frame + 24 + d->h.meta_len, body_len);
    free(frame);
}

#endif /* FRAME_FIXTURE_H */
