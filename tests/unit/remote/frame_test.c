/*
 * frame_test.c - the wire protocol's frame codec (src/remote/frame.c)
 * checked against its specification, docs/wire-protocol.md: round trips of
 * every kind, the exact big-endian layout, every MUST rule of the header
 * and the metadata with its error code, the size limits in 64 bits, the
 * encoder's limits, endpoint ids, and a deterministic garbage run.
 *
 * Frames under test are built byte by byte from the specification (not with
 * the encoder), and every buffer handed to the decoder is a heap copy of
 * exactly the bytes it may read, so ASan builds catch any read past it.
 */
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

static void be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void be64(uint8_t *p, uint64_t v)
{
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

static uint32_t rd32(const uint8_t *p)
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

static void raw_bytes(uint8_t out[24], const raw_hdr_t *r)
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
static raw_hdr_t valid_hdr(uint8_t kind)
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

static void check_why(int rc, const char *why)
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
static int decode_raw_why(const raw_hdr_t *r, uint64_t max_frame,
                          fl__frame_hdr_t *out, char *why, size_t why_len)
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

static void expect_hdr(int expected, const raw_hdr_t *r, uint64_t max_frame)
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

static void m_u32(mbuf_t *m, uint32_t v)
{
    assert_true(m->n + 4 <= sizeof m->b);
    be32(m->b + m->n, v);
    m->n += 4;
}

static void m_len(mbuf_t *m, uint16_t v)
{
    assert_true(m->n + 2 <= sizeof m->b);
    be16(m->b + m->n, v);
    m->n += 2;
}

static void m_raw(mbuf_t *m, const void *p, size_t n)
{
    assert_true(m->n + n <= sizeof m->b);
    if (n != 0)
        memcpy(m->b + m->n, p, n);
    m->n += n;
}

/* A str16: its length, then its bytes. */
static void m_str(mbuf_t *m, const void *p, size_t n)
{
    m_len(m, (uint16_t)n);
    m_raw(m, p, n);
}

static void m_cstr(mbuf_t *m, const char *s)
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

static void dec_free(dec_t *d)
{
    free(d->meta);
    d->meta = NULL;
}

/* Decode metadata bytes mb of a frame of kind/flags/corr; the header must
 * be accepted (decode_meta's precondition). Returns decode_meta's code. */
static int decode_meta_bytes(uint8_t kind, uint16_t flags, uint64_t corr,
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

static void expect_meta(int expected, uint8_t kind, uint16_t flags,
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

static fl__str_t str_of(const char *s)
{
    fl__str_t v = {s, (uint16_t)strlen(s)};
    return v;
}

/* A decoded string equals want and lies inside the metadata buffer. */
static void assert_str(const char *want, size_t want_len, fl__str_t got,
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
static void round_trip(uint8_t kind, uint16_t flags, uint64_t corr,
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

/* ---- round trips of every kind ------------------------------------------ */

static void test_hello_round_trips(void **state)
{
    (void)state;
    fl__frame_meta_t in = {0};
    in.max_frame = DEFAULT_MAX;
    in.service_name = str_of("flink-jobmanager");
    dec_t d;
    round_trip(FL__K_HELLO, 0, 0, &in, NULL, 0, &d);
    assert_int_equal(4 + 2 + 16, d.h.meta_len);
    assert_int_equal(DEFAULT_MAX, d.m.max_frame);
    assert_str("flink-jobmanager", 16, d.m.service_name, d.meta, d.h.meta_len);
    dec_free(&d);
}

static void test_connect_round_trips(void **state)
{
    (void)state;
    fl__frame_meta_t in = {0};
    in.endpoint = str_of("resourcemanager_0");
    in.gateway = str_of("flink.rpc.ResourceManagerGateway");
    dec_t d;
    round_trip(FL__K_CONNECT, 0, 42, &in, NULL, 0, &d);
    assert_int_equal(2 + 17 + 2 + 32, d.h.meta_len);
    assert_str("resourcemanager_0", 17, d.m.endpoint, d.meta, d.h.meta_len);
    assert_str("flink.rpc.ResourceManagerGateway", 32, d.m.gateway, d.meta,
               d.h.meta_len);
    dec_free(&d);
}

static void test_connected_round_trips(void **state)
{
    (void)state;
    fl__frame_meta_t in = {0};
    in.service_index = 0xA1B2C3D4u;
    dec_t d;
    round_trip(FL__K_CONNECTED, 0, 42, &in, NULL, 0, &d);
    assert_int_equal(4, d.h.meta_len);
    assert_int_equal(0xA1B2C3D4u, d.m.service_index);
    dec_free(&d);
}

static void test_connected_with_the_instance_round_trips(void **state)
{
    (void)state;
    fl__frame_meta_t in = {0};
    in.service_index = 3;
    in.instance = 0x0102030405060708ull;
    dec_t d;
    round_trip(FL__K_CONNECTED, FL__F_INSTANCE, 42, &in, NULL, 0, &d);
    assert_int_equal(FL__F_INSTANCE, d.h.flags);
    assert_int_equal(4 + 8, d.h.meta_len);
    assert_int_equal(3, d.m.service_index);
    assert_true(d.m.instance == 0x0102030405060708ull);
    dec_free(&d);
}

static void test_invoke_ask_round_trips(void **state)
{
    (void)state;
    fl__frame_meta_t in = {0};
    in.endpoint = str_of("taskexecutor-3.a");
    in.service_index = 2;
    in.method_index = 0x01020304u;
    const uint8_t body[] = {0x08, 0x96, 0x01, 0x12, 0x03, 'a', 'b', 'c'};
    dec_t d;
    round_trip(FL__K_INVOKE, 0, 0xFEDCBA9876543210ull, &in, body, sizeof body,
               &d);
    assert_int_equal(2 + 16 + 4 + 4, d.h.meta_len);
    assert_str("taskexecutor-3.a", 16, d.m.endpoint, d.meta, d.h.meta_len);
    assert_int_equal(2, d.m.service_index);
    assert_int_equal(0x01020304u, d.m.method_index);
    dec_free(&d);
}

static void test_invoke_tell_round_trips(void **state)
{
    (void)state;
    fl__frame_meta_t in = {0};
    in.endpoint = str_of("dispatcher");
    in.service_index = 0;
    in.method_index = 7;
    const uint8_t body[] = {0x0A, 0x00};
    dec_t d;
    round_trip(FL__K_INVOKE, FL__F_TELL, 0, &in, body, sizeof body, &d);
    assert_int_equal(FL__F_TELL, d.h.flags);
    assert_true(d.h.corr == 0);
    assert_int_equal(2 + 10 + 4 + 4, d.h.meta_len);
    assert_str("dispatcher", 10, d.m.endpoint, d.meta, d.h.meta_len);
    assert_int_equal(0, d.m.service_index);
    assert_int_equal(7, d.m.method_index);
    dec_free(&d);
}

static void test_invoke_fenced_round_trips_with_its_16_byte_token(void **state)
{
    (void)state;
    fl__frame_meta_t in = {0};
    in.endpoint = str_of("jobmaster_1");
    in.service_index = 1;
    in.method_index = 9;
    for (int i = 0; i < 16; i++)
        in.token[i] = (uint8_t)(0xF0 - i * 7);
    const uint8_t body[] = {1, 2, 3};
    dec_t d;
    round_trip(FL__K_INVOKE, FL__F_FENCED, 5, &in, body, sizeof body, &d);
    assert_int_equal(FL__F_FENCED, d.h.flags);
    assert_int_equal(2 + 11 + 4 + 4 + 16, d.h.meta_len);
    assert_str("jobmaster_1", 11, d.m.endpoint, d.meta, d.h.meta_len);
    assert_int_equal(1, d.m.service_index);
    assert_int_equal(9, d.m.method_index);
    assert_memory_equal(in.token, d.m.token, 16);
    dec_free(&d);

    /* A fenced tell carries the token too. */
    round_trip(FL__K_INVOKE, FL__F_FENCED | FL__F_TELL, 0, &in, NULL, 0, &d);
    assert_int_equal(FL__F_FENCED | FL__F_TELL, d.h.flags);
    assert_memory_equal(in.token, d.m.token, 16);
    dec_free(&d);
}

static void test_invoke_with_the_instance_round_trips(void **state)
{
    (void)state;
    fl__frame_meta_t in = {0};
    in.endpoint = str_of("tm");
    in.service_index = 1;
    in.method_index = 2;
    in.instance = 0xFEDCBA9876543210ull;
    for (int i = 0; i < 16; i++)
        in.token[i] = (uint8_t)i;
    const uint16_t flags[] = {FL__F_INSTANCE, FL__F_INSTANCE | FL__F_FENCED,
                              FL__F_INSTANCE | FL__F_TELL,
                              FL__F_INSTANCE | FL__F_FENCED | FL__F_TELL};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        bool tell = (flags[i] & FL__F_TELL) != 0;
        bool fenced = (flags[i] & FL__F_FENCED) != 0;
        dec_t d;
        round_trip(FL__K_INVOKE, flags[i], tell ? 0 : 9, &in, NULL, 0, &d);
        assert_int_equal(flags[i], d.h.flags);
        assert_int_equal(2 + 2 + 4 + 4 + (fenced ? 16 : 0) + 8, d.h.meta_len);
        assert_str("tm", 2, d.m.endpoint, d.meta, d.h.meta_len);
        assert_true(d.m.instance == 0xFEDCBA9876543210ull);
        if (fenced)
            assert_memory_equal(in.token, d.m.token, 16);
        dec_free(&d);
    }
}

static void test_reply_with_a_body_round_trips(void **state)
{
    (void)state;
    fl__frame_meta_t in = {0};
    uint8_t body[300];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 31 + 1);
    dec_t d;
    round_trip(FL__K_REPLY, 0, 99, &in, body, sizeof body, &d);
    assert_int_equal(0, d.h.meta_len);
    assert_int_equal(sizeof body, d.h.body_len);
    dec_free(&d);
}

static void test_error_round_trips(void **state)
{
    (void)state;
    fl__frame_meta_t in = {0};
    in.code = FL_ECONNECT;
    in.message = str_of("Could not connect to rpc endpoint under address "
                        "fling.tcp://[::1]:6123/resourcemanager_0.");
    size_t len = in.message.len;
    dec_t d;
    round_trip(FL__K_ERROR, 0, 77, &in, NULL, 0, &d);
    assert_int_equal(4 + 2 + len, d.h.meta_len);
    assert_int_equal(FL_ECONNECT, d.m.code);
    assert_str(in.message.p, len, d.m.message, d.meta, d.h.meta_len);
    dec_free(&d);

    /* An application code (>= FL_EUSER) and an empty message. */
    in.code = FL_EUSER + 17;
    in.message = str_of("");
    round_trip(FL__K_ERROR, 0, 0, &in, NULL, 0, &d);
    assert_int_equal(FL_EUSER + 17, d.m.code);
    assert_int_equal(0, d.m.message.len);
    dec_free(&d);
}

static void round_trip_empty(uint8_t kind)
{
    fl__frame_meta_t in = {0};
    dec_t d;
    round_trip(kind, 0, 0, &in, NULL, 0, &d);
    assert_int_equal(0, d.h.meta_len);
    assert_int_equal(0, d.h.body_len);
    dec_free(&d);
}

static void test_ping_round_trips(void **state)
{
    (void)state;
    round_trip_empty(FL__K_PING);
}

static void test_pong_round_trips(void **state)
{
    (void)state;
    round_trip_empty(FL__K_PONG);
}

static void test_bye_round_trips(void **state)
{
    (void)state;
    round_trip_empty(FL__K_BYE);
}

/* ---- exact byte layout --------------------------------------------------- */

static void
test_header_layout_is_big_endian_at_the_specified_offsets(void **state)
{
    (void)state;
    fl__frame_hdr_t h = {FL__PROTO_VERSION,     FL__K_INVOKE, FL__F_FENCED,
                         0x0102030405060708ull, 0x0000A1B2u,  0xC3D4E5F6u};
    uint8_t out[24];
    memset(out, 0xEE, sizeof out);
    fl__frame_encode_hdr(out, &h);
    static const uint8_t want[24] = {
        0x46, 0x4C, 0x4E, 0x47,                         /* magic "FLNG" */
        0x01,                                           /* version */
        0x04,                                           /* kind INVOKE */
        0x00, 0x02,                                     /* flags FENCED */
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* corr */
        0x00, 0x00, 0xA1, 0xB2,                         /* meta_len */
        0xC3, 0xD4, 0xE5, 0xF6,                         /* body_len */
    };
    assert_memory_equal(want, out, sizeof want);
    assert_memory_equal("FLNG", out, 4);
}

static void
test_encode_hdr_writes_protocol_version_1_whatever_h_says(void **state)
{
    (void)state;
    fl__frame_hdr_t h = {7, FL__K_PING, 0, 0, 0, 0};
    uint8_t out[24];
    fl__frame_encode_hdr(out, &h);
    assert_int_equal(1, out[4]);
    assert_int_equal(MAGIC, rd32(out));
}

static void expect_meta_bytes(uint8_t kind, uint16_t flags,
                              const fl__frame_meta_t *m, const uint8_t *want,
                              size_t want_len)
{
    assert_int_equal(want_len, fl__frame_meta_size(kind, flags, m));
    uint8_t *out = malloc(want_len);
    assert_non_null(out);
    assert_int_equal(want_len,
                     fl__frame_encode_meta(kind, flags, m, out, want_len));
    assert_memory_equal(want, out, want_len);
    free(out);
}

static void test_hello_metadata_layout_is_u32_then_str16(void **state)
{
    (void)state;
    fl__frame_meta_t m = {0};
    m.max_frame = DEFAULT_MAX;
    m.service_name = str_of("jm");
    static const uint8_t want[] = {0x00, 0xA0, 0x00, 0x00,
                                   0x00, 0x02, 'j',  'm'};
    expect_meta_bytes(FL__K_HELLO, 0, &m, want, sizeof want);
}

static void test_connect_metadata_layout_is_two_str16(void **state)
{
    (void)state;
    fl__frame_meta_t m = {0};
    m.endpoint = str_of("e");
    m.gateway = str_of("a.B");
    static const uint8_t want[] = {0x00, 0x01, 'e', 0x00, 0x03, 'a', '.', 'B'};
    expect_meta_bytes(FL__K_CONNECT, 0, &m, want, sizeof want);
}

static void test_connected_metadata_layout_is_one_u32(void **state)
{
    (void)state;
    fl__frame_meta_t m = {0};
    m.service_index = 0x01020304u;
    static const uint8_t want[] = {0x01, 0x02, 0x03, 0x04};
    expect_meta_bytes(FL__K_CONNECTED, 0, &m, want, sizeof want);
}

static void test_invoke_fenced_metadata_layout_ends_with_the_token(void **state)
{
    (void)state;
    fl__frame_meta_t m = {0};
    m.endpoint = str_of("abc");
    m.service_index = 2;
    m.method_index = 0x0102;
    for (int i = 0; i < 16; i++)
        m.token[i] = (uint8_t)i;
    static const uint8_t want[] = {
        0x00, 0x03, 'a',  'b',  'c',               /* endpoint */
        0x00, 0x00, 0x00, 0x02,                    /* service_index */
        0x00, 0x00, 0x01, 0x02,                    /* method_index */
        0,    1,    2,    3,    4,   5,  6,  7, 8, /* token */
        9,    10,   11,   12,   13,  14, 15,
    };
    expect_meta_bytes(FL__K_INVOKE, FL__F_FENCED, &m, want, sizeof want);
    /* Unfenced: no token bytes. */
    expect_meta_bytes(FL__K_INVOKE, 0, &m, want, 13);
}

static void test_the_instance_ends_the_metadata_big_endian(void **state)
{
    (void)state;
    fl__frame_meta_t m = {0};
    m.service_index = 0x01020304u;
    m.instance = 0x1112131415161718ull;
    static const uint8_t connected[] = {0x01, 0x02, 0x03, 0x04, 0x11, 0x12,
                                        0x13, 0x14, 0x15, 0x16, 0x17, 0x18};
    expect_meta_bytes(FL__K_CONNECTED, FL__F_INSTANCE, &m, connected,
                      sizeof connected);
    m.endpoint = str_of("a");
    m.service_index = 2;
    m.method_index = 3;
    for (int i = 0; i < 16; i++)
        m.token[i] = (uint8_t)(0xA0 + i);
    static const uint8_t invoke[] = {
        0x00, 0x01, 'a',  0x00, 0x00, 0x00, 0x02,       /* endpoint, service */
        0x00, 0x00, 0x00, 0x03,                         /* method */
        0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, /* token */
        0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF, /* ... */
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, /* instance */
    };
    expect_meta_bytes(FL__K_INVOKE, FL__F_FENCED | FL__F_INSTANCE, &m, invoke,
                      sizeof invoke);
}

static void test_error_metadata_layout_is_u32_code_then_str16(void **state)
{
    (void)state;
    fl__frame_meta_t m = {0};
    m.code = 0x00000102u;
    m.message = str_of("no");
    static const uint8_t want[] = {0x00, 0x00, 0x01, 0x02,
                                   0x00, 0x02, 'n',  'o'};
    expect_meta_bytes(FL__K_ERROR, 0, &m, want, sizeof want);
}

/* ---- header rules -------------------------------------------------------- */

static void test_fewer_than_24_bytes_is_pending(void **state)
{
    (void)state;
    raw_hdr_t r = valid_hdr(FL__K_PING);
    uint8_t full[24];
    raw_bytes(full, &r);
    for (size_t len = 0; len < FL__FRAME_HDR; len++) {
        /* Exactly len bytes on the heap: nothing past them may be read. */
        uint8_t *b = malloc(len ? len : 1);
        assert_non_null(b);
        memcpy(b, full, len);
        fl__frame_hdr_t h;
        char why[WHY_LEN] = "";
        int rc = fl__frame_decode_hdr(b, len, DEFAULT_MAX, &h, why, sizeof why);
        free(b);
        if (rc != FL_EPENDING)
            fail_msg("%zu bytes: expected FL_EPENDING, got %s (%s)", len,
                     fl_err_name(rc), why);
    }
    /* And 24 of them is a frame. */
    expect_hdr(FL_OK, &r, DEFAULT_MAX);
}

static void test_bad_magic_is_a_protocol_error(void **state)
{
    (void)state;
    const uint32_t bad[] = {
        0,          0xFFFFFFFFu,         0x474E4C46u /* little-endian */,
        MAGIC ^ 1u, MAGIC ^ 0x80000000u, 0x464C4E48u};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        raw_hdr_t r = valid_hdr(FL__K_HELLO);
        r.magic = bad[i];
        expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
    }
}

static void expect_version_mismatch(uint8_t version)
{
    raw_hdr_t r = valid_hdr(FL__K_HELLO);
    r.version = version;
    fl__frame_hdr_t h;
    char why[WHY_LEN];
    int rc = decode_raw_why(&r, DEFAULT_MAX, &h, why, sizeof why);
    if (rc != FL_EHANDSHAKE)
        fail_msg("version %u: expected FL_EHANDSHAKE, got %s (%s)",
                 (unsigned)version, fl_err_name(rc), why);
    const char *parts[] = {
        "Version mismatch between source (",
        ") and target (",
        (") rpc component. Please verify that all components have the same "
         "version."),
    };
    for (size_t i = 0; i < 3; i++)
        if (strstr(why, parts[i]) == NULL)
            fail_msg("version %u: `why` lacks \"%s\": %s", (unsigned)version,
                     parts[i], why);
    /* Both versions are named, in either role. */
    char theirs[16], ours[16];
    snprintf(theirs, sizeof theirs, "(%u)", (unsigned)version);
    snprintf(ours, sizeof ours, "(%u)", 1u);
    if (strstr(why, theirs) == NULL || strstr(why, ours) == NULL)
        fail_msg("version %u: `why` does not name both versions: %s",
                 (unsigned)version, why);
}

static void
test_another_version_is_a_handshake_failure_naming_both(void **state)
{
    (void)state;
    expect_version_mismatch(0);
    expect_version_mismatch(2);
    expect_version_mismatch(255);
}

static void test_unknown_kind_is_a_protocol_error(void **state)
{
    (void)state;
    const uint8_t kinds[] = {0, 10, 255};
    for (size_t i = 0; i < sizeof kinds; i++) {
        raw_hdr_t r = {MAGIC, 1, kinds[i], 0, 0, 0, 0};
        expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
        r.corr = 1;
        expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
    }
}

static void test_unknown_flag_bits_on_invoke_are_a_protocol_error(void **state)
{
    (void)state;
    for (unsigned bit = 3; bit < 16; bit++) {
        raw_hdr_t r = valid_hdr(FL__K_INVOKE); /* an ask, corr 7 */
        r.flags = (uint16_t)(1u << bit);
        expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
        /* Next to the known bits, too. */
        r.flags = (uint16_t)((1u << bit) | FL__F_FENCED);
        r.meta_len += 16;
        expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
        r.flags = (uint16_t)((1u << bit) | FL__F_TELL);
        r.corr = 0;
        r.meta_len -= 16;
        expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
    }
}

static void test_invoke_flags_on_other_kinds_are_a_protocol_error(void **state)
{
    (void)state;
    const uint16_t flags[] = {FL__F_TELL, FL__F_FENCED,
                              FL__F_TELL | FL__F_FENCED, 0x0008, 0x8000};
    for (uint8_t k = FL__K_HELLO; k <= FL__K_BYE; k++) {
        if (k == FL__K_INVOKE)
            continue;
        raw_hdr_t r = valid_hdr(k);
        expect_hdr(FL_OK, &r, DEFAULT_MAX);
        for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
            r.flags = flags[i];
            expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
        }
    }
}

/* FL__F_INSTANCE is defined for CONNECTED and INVOKE only, and adds
 * exactly 8 bytes of metadata. */
static void
test_the_instance_flag_on_other_kinds_is_a_protocol_error(void **state)
{
    (void)state;
    for (uint8_t k = FL__K_HELLO; k <= FL__K_BYE; k++) {
        raw_hdr_t r = valid_hdr(k);
        r.flags = FL__F_INSTANCE;
        r.meta_len += 8;
        bool defined = k == FL__K_CONNECTED || k == FL__K_INVOKE;
        expect_hdr(defined ? FL_OK : FL_EPROTO, &r, DEFAULT_MAX);
    }
    /* CONNECTED's metadata is exact: without the 8 bytes, or with them
     * and no flag, it is refused. */
    raw_hdr_t r = valid_hdr(FL__K_CONNECTED);
    r.flags = FL__F_INSTANCE;
    expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
    r.flags = 0;
    r.meta_len += 8;
    expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
}

static void expect_msgsize(const raw_hdr_t *r, uint64_t max_frame,
                           uint64_t total)
{
    fl__frame_hdr_t h;
    char why[WHY_LEN];
    int rc = decode_raw_why(r, max_frame, &h, why, sizeof why);
    if (rc != FL_EMSGSIZE)
        fail_msg("meta %u body %u max %llu: expected FL_EMSGSIZE, got %s (%s)",
                 (unsigned)r->meta_len, (unsigned)r->body_len,
                 (unsigned long long)max_frame, fl_err_name(rc), why);
    char t[32], m[32];
    snprintf(t, sizeof t, "%llu", (unsigned long long)total);
    snprintf(m, sizeof m, "%llu", (unsigned long long)max_frame);
    if (strstr(why, t) == NULL || strstr(why, m) == NULL)
        fail_msg("`why` does not name both sizes (%s and %s): %s", t, m, why);
}

static void
test_frame_over_max_frame_is_emsgsize_naming_both_sizes(void **state)
{
    (void)state;
    raw_hdr_t r = valid_hdr(FL__K_INVOKE);
    r.meta_len = 100;
    r.body_len = 1000;
    expect_msgsize(&r, 1000, 1124);
    expect_msgsize(&r, 1123, 1124);
    r.body_len = 20 * MiB;
    expect_msgsize(&r, DEFAULT_MAX, 24 + 100 + 20ull * MiB);
    /* Kinds without a body: the size rule is decided on the header alone. */
    raw_hdr_t reply = valid_hdr(FL__K_REPLY);
    reply.body_len = DEFAULT_MAX;
    expect_msgsize(&reply, DEFAULT_MAX, 24ull + DEFAULT_MAX);
}

static void test_4_gib_lengths_do_not_overflow_and_are_emsgsize(void **state)
{
    (void)state;
    raw_hdr_t r = valid_hdr(FL__K_INVOKE);
    r.meta_len = 0xFFFFFFFFu;
    r.body_len = 0xFFFFFFFFu;
    expect_msgsize(&r, DEFAULT_MAX, 24ull + 2ull * 0xFFFFFFFFull);
    /* Sums that would wrap a 32-bit total to something small. */
    expect_msgsize(&r, 0xFFFFFFFFull, 24ull + 2ull * 0xFFFFFFFFull);
    r.meta_len = 0xFFFFFFE8u; /* 24 + this = 2^32 */
    r.body_len = 0;
    expect_msgsize(&r, DEFAULT_MAX, 0x100000000ull);
    r.meta_len = 10;
    r.body_len = 0xFFFFFFF0u; /* 24 + 10 + this = 2^32 + 18 */
    expect_msgsize(&r, DEFAULT_MAX, 0x100000012ull);
    expect_msgsize(&r, 0xFFFFFFFFull, 0x100000012ull);
    r.body_len = 0xFFFFFFFFu;
    expect_msgsize(&r, DEFAULT_MAX, 24ull + 10 + 0xFFFFFFFFull);
}

static void test_exactly_max_frame_is_accepted_one_more_is_refused(void **state)
{
    (void)state;
    raw_hdr_t r = valid_hdr(FL__K_INVOKE);
    r.flags = FL__F_FENCED;
    r.meta_len = 2 + 10 + 4 + 4 + 16;
    r.body_len = DEFAULT_MAX - 24 - r.meta_len;
    expect_hdr(FL_OK, &r, DEFAULT_MAX);
    r.body_len++;
    expect_msgsize(&r, DEFAULT_MAX, DEFAULT_MAX + 1ull);

    /* The same at a small maximum, growing the metadata instead. */
    raw_hdr_t h = valid_hdr(FL__K_HELLO);
    h.meta_len = 1024 - 24;
    expect_hdr(FL_OK, &h, 1024);
    h.meta_len++;
    expect_msgsize(&h, 1024, 1025);
}

static void test_meta_len_over_65535_is_a_protocol_error(void **state)
{
    (void)state;
    raw_hdr_t r = valid_hdr(FL__K_INVOKE);
    r.meta_len = 65535;
    expect_hdr(FL_OK, &r, 24 + 65535);
    r.meta_len = 65536;
    expect_hdr(FL_EPROTO, &r, 24 + 65536);
    expect_hdr(FL_EPROTO, &r, UINT64_MAX);
    r.meta_len = 0xFFFFFFFFu;
    r.body_len = 0xFFFFFFFFu;
    expect_hdr(FL_EPROTO, &r, UINT64_MAX);
    raw_hdr_t e = valid_hdr(FL__K_ERROR);
    e.meta_len = 65536;
    expect_hdr(FL_EPROTO, &e, DEFAULT_MAX);
}

static void
test_meta_len_below_the_kinds_minimum_is_a_protocol_error(void **state)
{
    (void)state;
    /* Fixed parts with empty strings (the spec's kinds table). */
    const struct {
        uint8_t kind;
        uint16_t flags;
        uint64_t corr;
        uint32_t min;
    } rows[] = {
        {FL__K_HELLO, 0, 0, 4 + 2},
        {FL__K_CONNECT, 0, 1, 2 + 2},
        {FL__K_CONNECTED, 0, 1, 4},
        {FL__K_INVOKE, 0, 1, 2 + 4 + 4},
        {FL__K_INVOKE, FL__F_TELL, 0, 2 + 4 + 4},
        {FL__K_INVOKE, FL__F_FENCED, 1, 2 + 4 + 4 + 16},
        {FL__K_INVOKE, FL__F_FENCED | FL__F_TELL, 0, 2 + 4 + 4 + 16},
        {FL__K_ERROR, 0, 0, 4 + 2},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        raw_hdr_t r = {
            MAGIC,       1, rows[i].kind, rows[i].flags, rows[i].corr,
            rows[i].min, 0};
        expect_hdr(FL_OK, &r, DEFAULT_MAX);
        for (uint32_t n = 0; n < rows[i].min; n++) {
            r.meta_len = n;
            expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
        }
    }
}

static void
test_fixed_size_kinds_with_extra_metadata_are_a_protocol_error(void **state)
{
    (void)state;
    const uint8_t kinds[] = {FL__K_CONNECTED, FL__K_REPLY, FL__K_PING,
                             FL__K_PONG, FL__K_BYE};
    const uint32_t extra[] = {1, 2, 16, 65535};
    for (size_t i = 0; i < sizeof kinds; i++) {
        raw_hdr_t r = valid_hdr(kinds[i]);
        uint32_t exact = r.meta_len;
        for (size_t j = 0; j < sizeof extra / sizeof extra[0]; j++) {
            r.meta_len = exact + extra[j] > 65535 ? 65535 : exact + extra[j];
            expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
        }
    }
}

static void test_body_on_kinds_without_one_is_a_protocol_error(void **state)
{
    (void)state;
    const uint8_t kinds[] = {FL__K_HELLO, FL__K_CONNECT, FL__K_CONNECTED,
                             FL__K_ERROR, FL__K_PING,    FL__K_PONG,
                             FL__K_BYE};
    for (size_t i = 0; i < sizeof kinds; i++) {
        raw_hdr_t r = valid_hdr(kinds[i]);
        r.body_len = 1;
        expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
        r.body_len = 1000;
        expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
    }
    /* INVOKE and REPLY carry one. */
    raw_hdr_t inv = valid_hdr(FL__K_INVOKE);
    inv.body_len = 1000;
    expect_hdr(FL_OK, &inv, DEFAULT_MAX);
    raw_hdr_t rep = valid_hdr(FL__K_REPLY);
    rep.body_len = 1000;
    expect_hdr(FL_OK, &rep, DEFAULT_MAX);
}

static void
test_invoke_tell_with_a_correlation_id_is_a_protocol_error(void **state)
{
    (void)state;
    raw_hdr_t r = valid_hdr(FL__K_INVOKE);
    r.flags = FL__F_TELL;
    r.corr = 0;
    expect_hdr(FL_OK, &r, DEFAULT_MAX);
    r.corr = 1;
    expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
    r.corr = UINT64_MAX;
    expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
    r.flags = FL__F_TELL | FL__F_FENCED;
    r.meta_len += 16;
    expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
}

static void
test_invoke_ask_without_a_correlation_id_is_a_protocol_error(void **state)
{
    (void)state;
    raw_hdr_t r = valid_hdr(FL__K_INVOKE);
    r.corr = 1;
    expect_hdr(FL_OK, &r, DEFAULT_MAX);
    r.corr = 0;
    expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
    r.flags = FL__F_FENCED;
    r.meta_len += 16;
    expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
}

static void
test_connect_connected_reply_without_corr_are_a_protocol_error(void **state)
{
    (void)state;
    const uint8_t kinds[] = {FL__K_CONNECT, FL__K_CONNECTED, FL__K_REPLY};
    for (size_t i = 0; i < sizeof kinds; i++) {
        raw_hdr_t r = valid_hdr(kinds[i]);
        expect_hdr(FL_OK, &r, DEFAULT_MAX);
        r.corr = 0;
        expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
    }
}

static void test_decode_hdr_accepts_a_null_why(void **state)
{
    (void)state;
    raw_hdr_t r = valid_hdr(FL__K_HELLO);
    uint8_t *b = malloc(FL__FRAME_HDR);
    assert_non_null(b);
    fl__frame_hdr_t h;
    r.magic = 0;
    raw_bytes(b, &r);
    assert_fl(FL_EPROTO,
              fl__frame_decode_hdr(b, FL__FRAME_HDR, DEFAULT_MAX, &h, NULL, 0));
    r = valid_hdr(FL__K_HELLO);
    r.version = 2;
    raw_bytes(b, &r);
    assert_fl(FL_EHANDSHAKE,
              fl__frame_decode_hdr(b, FL__FRAME_HDR, DEFAULT_MAX, &h, NULL, 0));
    r = valid_hdr(FL__K_REPLY);
    r.body_len = DEFAULT_MAX;
    raw_bytes(b, &r);
    assert_fl(FL_EMSGSIZE,
              fl__frame_decode_hdr(b, FL__FRAME_HDR, DEFAULT_MAX, &h, NULL, 0));
    free(b);
}

/* ---- metadata rules ------------------------------------------------------ */

static void test_truncated_strings_are_a_protocol_error(void **state)
{
    (void)state;
    mbuf_t m;

    /* HELLO: the name says 10 bytes, 5 follow. */
    m = (mbuf_t){.n = 0};
    m_u32(&m, DEFAULT_MAX);
    m_len(&m, 10);
    m_raw(&m, "abcde", 5);
    expect_meta(FL_EPROTO, FL__K_HELLO, 0, 0, &m);
    /* ... and a length of 0xFFFF with nothing after it. */
    m = (mbuf_t){.n = 0};
    m_u32(&m, DEFAULT_MAX);
    m_len(&m, 0xFFFF);
    expect_meta(FL_EPROTO, FL__K_HELLO, 0, 0, &m);

    /* CONNECT: the endpoint runs past the metadata. */
    m = (mbuf_t){.n = 0};
    m_len(&m, 40);
    m_raw(&m, "endpoint", 8);
    expect_meta(FL_EPROTO, FL__K_CONNECT, 0, 1, &m);
    /* CONNECT: the gateway runs past it by one byte. */
    m = (mbuf_t){.n = 0};
    m_cstr(&m, "endpoint");
    m_len(&m, 4);
    m_raw(&m, "a.B", 3);
    expect_meta(FL_EPROTO, FL__K_CONNECT, 0, 1, &m);
    /* CONNECT: the gateway's length itself is cut. */
    m = (mbuf_t){.n = 0};
    m_cstr(&m, "endpoint");
    m_raw(&m, "\x00", 1);
    expect_meta(FL_EPROTO, FL__K_CONNECT, 0, 1, &m);

    /* INVOKE: the endpoint swallows the indexes. */
    m = (mbuf_t){.n = 0};
    m_len(&m, 9);
    m_raw(&m, "abcdefgh", 8);
    expect_meta(FL_EPROTO, FL__K_INVOKE, 0, 1, &m);
    /* INVOKE: a valid endpoint, then the method index is cut short. */
    m = (mbuf_t){.n = 0};
    m_cstr(&m, "a");
    m_u32(&m, 1);
    m_raw(&m, "\x00\x00\x00", 3);
    expect_meta(FL_EPROTO, FL__K_INVOKE, 0, 1, &m);
    /* INVOKE fenced: the token is 15 bytes. */
    m = (mbuf_t){.n = 0};
    m_cstr(&m, "a");
    m_u32(&m, 1);
    m_u32(&m, 2);
    m_raw(&m, "0123456789abcde", 15);
    expect_meta(FL_EPROTO, FL__K_INVOKE, FL__F_FENCED, 1, &m);

    /* ERROR: the message says 3, 2 follow. */
    m = (mbuf_t){.n = 0};
    m_u32(&m, FL_ETIMEDOUT);
    m_len(&m, 3);
    m_raw(&m, "ab", 2);
    expect_meta(FL_EPROTO, FL__K_ERROR, 0, 0, &m);
}

static void test_trailing_metadata_bytes_are_a_protocol_error(void **state)
{
    (void)state;
    mbuf_t m;

    m = (mbuf_t){.n = 0};
    m_u32(&m, DEFAULT_MAX);
    m_cstr(&m, "svc");
    expect_meta(FL_OK, FL__K_HELLO, 0, 0, &m);
    m_raw(&m, "\x00", 1);
    expect_meta(FL_EPROTO, FL__K_HELLO, 0, 0, &m);

    m = (mbuf_t){.n = 0};
    m_cstr(&m, "ep");
    m_cstr(&m, "pkg.Gw");
    expect_meta(FL_OK, FL__K_CONNECT, 0, 1, &m);
    m_raw(&m, "x", 1);
    expect_meta(FL_EPROTO, FL__K_CONNECT, 0, 1, &m);

    m = (mbuf_t){.n = 0};
    m_cstr(&m, "ep");
    m_u32(&m, 1);
    m_u32(&m, 2);
    expect_meta(FL_OK, FL__K_INVOKE, 0, 1, &m);
    m_raw(&m, "\x00\x00\x00\x00", 4);
    expect_meta(FL_EPROTO, FL__K_INVOKE, 0, 1, &m);

    m = (mbuf_t){.n = 0};
    m_cstr(&m, "ep");
    m_u32(&m, 1);
    m_u32(&m, 2);
    m_raw(&m, "0123456789abcdef", 16);
    expect_meta(FL_OK, FL__K_INVOKE, FL__F_FENCED, 1, &m);
    m_raw(&m, "\xff", 1);
    expect_meta(FL_EPROTO, FL__K_INVOKE, FL__F_FENCED, 1, &m);
    /* A token where none is flagged is trailing bytes too. */
    m.n -= 1;
    expect_meta(FL_EPROTO, FL__K_INVOKE, 0, 1, &m);
    /* The flagged instance after the token: 8 bytes, no more, no fewer. */
    m_raw(&m, "\x01\x02\x03\x04\x05\x06\x07", 7);
    expect_meta(FL_EPROTO, FL__K_INVOKE, FL__F_FENCED | FL__F_INSTANCE, 1, &m);
    m_raw(&m, "\x08", 1);
    expect_meta(FL_OK, FL__K_INVOKE, FL__F_FENCED | FL__F_INSTANCE, 1, &m);
    m_raw(&m, "\x09", 1);
    expect_meta(FL_EPROTO, FL__K_INVOKE, FL__F_FENCED | FL__F_INSTANCE, 1, &m);

    m = (mbuf_t){.n = 0};
    m_u32(&m, FL_EINVAL);
    m_cstr(&m, "bad");
    expect_meta(FL_OK, FL__K_ERROR, 0, 0, &m);
    m_raw(&m, "\x00", 1);
    expect_meta(FL_EPROTO, FL__K_ERROR, 0, 0, &m);
}

static void connect_meta(mbuf_t *m, const void *ep, size_t ep_len)
{
    *m = (mbuf_t){.n = 0};
    m_str(m, ep, ep_len);
    m_cstr(m, "pkg.Gateway");
}

static void invoke_meta(mbuf_t *m, const void *ep, size_t ep_len)
{
    *m = (mbuf_t){.n = 0};
    m_str(m, ep, ep_len);
    m_u32(m, 0);
    m_u32(m, 1);
}

static void test_invalid_endpoint_ids_are_a_protocol_error(void **state)
{
    (void)state;
    char id[256];
    memset(id, 'a', sizeof id);
    const struct {
        const char *p;
        size_t n;
    } bad[] = {
        {"", 0},     {id, 201},  {"a/b", 3},       {"user/rpc", 8},
        {"a b", 3},  {" a", 2},  {"a\0b", 3},      {"\0", 1},
        {"ab\0", 3}, {"a:b", 3}, {"a\xc3\xa9", 3},
    };
    mbuf_t m;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        connect_meta(&m, bad[i].p, bad[i].n);
        expect_meta(FL_EPROTO, FL__K_CONNECT, 0, 1, &m);
        invoke_meta(&m, bad[i].p, bad[i].n);
        expect_meta(FL_EPROTO, FL__K_INVOKE, 0, 1, &m);
        invoke_meta(&m, bad[i].p, bad[i].n);
        m_raw(&m, "0123456789abcdef", 16);
        expect_meta(FL_EPROTO, FL__K_INVOKE, FL__F_FENCED, 1, &m);
    }
    /* The bounds themselves are valid: 1 and 200 bytes. */
    connect_meta(&m, id, 200);
    expect_meta(FL_OK, FL__K_CONNECT, 0, 1, &m);
    invoke_meta(&m, id, 1);
    expect_meta(FL_OK, FL__K_INVOKE, 0, 1, &m);
    invoke_meta(&m, "Az09_.-", 7);
    expect_meta(FL_OK, FL__K_INVOKE, FL__F_TELL, 0, &m);
}

static void test_error_with_code_0_is_a_protocol_error(void **state)
{
    (void)state;
    mbuf_t m = {.n = 0};
    m_u32(&m, 0);
    m_cstr(&m, "no error");
    expect_meta(FL_EPROTO, FL__K_ERROR, 0, 0, &m);
    m = (mbuf_t){.n = 0};
    m_u32(&m, 0);
    m_len(&m, 0);
    expect_meta(FL_EPROTO, FL__K_ERROR, 0, 5, &m);
}

static void error_meta(mbuf_t *m, size_t msg_len)
{
    *m = (mbuf_t){.n = 0};
    m_u32(m, FL_EHANDSHAKE);
    m_len(m, (uint16_t)msg_len);
    for (size_t i = 0; i < msg_len; i++)
        m->b[m->n++] = (uint8_t)('a' + i % 26);
}

static void test_error_message_over_1024_bytes_is_a_protocol_error(void **state)
{
    (void)state;
    mbuf_t m;
    error_meta(&m, 1024);
    expect_meta(FL_OK, FL__K_ERROR, 0, 3, &m);
    error_meta(&m, 1025);
    expect_meta(FL_EPROTO, FL__K_ERROR, 0, 3, &m);
    error_meta(&m, 4000);
    expect_meta(FL_EPROTO, FL__K_ERROR, 0, 3, &m);
}

static void
test_error_message_over_1024_bytes_is_cut_there_on_encode(void **state)
{
    (void)state;
    char msg[2000];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('A' + i % 26);
    fl__frame_meta_t in = {0};
    in.code = FL_EUSER + 1;
    in.message.p = msg;
    in.message.len = sizeof msg;
    size_t n = fl__frame_meta_size(FL__K_ERROR, 0, &in);
    assert_int_equal(4 + 2 + 1024, n);
    uint8_t *out = malloc(n);
    assert_non_null(out);
    assert_int_equal(n, fl__frame_encode_meta(FL__K_ERROR, 0, &in, out, n));
    assert_int_equal(FL_EUSER + 1, rd32(out));
    assert_int_equal(0x04, out[4]); /* str16 length 1024 = 0x0400 */
    assert_int_equal(0x00, out[5]);
    assert_memory_equal(msg, out + 6, 1024);

    /* What was cut decodes: the first 1,024 bytes, same code. */
    mbuf_t m = {.n = 0};
    m_raw(&m, out, n);
    free(out);
    dec_t d;
    assert_fl_ok(decode_meta_bytes(FL__K_ERROR, 0, 3, &m, &d));
    assert_int_equal(FL_EUSER + 1, d.m.code);
    assert_str(msg, 1024, d.m.message, d.meta, d.h.meta_len);
    dec_free(&d);

    /* 1,025 bytes are cut too; 1,024 are kept whole. */
    in.message.len = 1025;
    assert_int_equal(4 + 2 + 1024, fl__frame_meta_size(FL__K_ERROR, 0, &in));
    in.message.len = 1024;
    assert_int_equal(4 + 2 + 1024, fl__frame_meta_size(FL__K_ERROR, 0, &in));
}

static void test_hello_max_frame_under_1024_is_a_protocol_error(void **state)
{
    (void)state;
    const uint32_t bad[] = {0, 1, 24, 1023};
    mbuf_t m;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = (mbuf_t){.n = 0};
        m_u32(&m, bad[i]);
        m_cstr(&m, "svc");
        expect_meta(FL_EPROTO, FL__K_HELLO, 0, 0, &m);
    }
    m = (mbuf_t){.n = 0};
    m_u32(&m, 1024);
    m_cstr(&m, "svc");
    expect_meta(FL_OK, FL__K_HELLO, 0, 0, &m);
    m = (mbuf_t){.n = 0};
    m_u32(&m, 0xFFFFFFFFu);
    m_len(&m, 0);
    expect_meta(FL_OK, FL__K_HELLO, 0, 0, &m);
}

/* ---- encoder limits ------------------------------------------------------ */

static void test_meta_size_is_0_for_strings_over_the_limits(void **state)
{
    (void)state;
    static char big[2000];
    memset(big, 'a', sizeof big);
    fl__frame_meta_t m = {0};

    m.max_frame = DEFAULT_MAX;
    m.service_name = (fl__str_t){big, FL__NAME_MAX};
    assert_int_equal(4 + 2 + FL__NAME_MAX,
                     fl__frame_meta_size(FL__K_HELLO, 0, &m));
    m.service_name.len = FL__NAME_MAX + 1;
    assert_int_equal(0, fl__frame_meta_size(FL__K_HELLO, 0, &m));

    m = (fl__frame_meta_t){0};
    m.endpoint = (fl__str_t){big, 200};
    m.gateway = (fl__str_t){big, FL__NAME_MAX};
    assert_int_equal(2 + 200 + 2 + FL__NAME_MAX,
                     fl__frame_meta_size(FL__K_CONNECT, 0, &m));
    m.endpoint.len = 201;
    assert_int_equal(0, fl__frame_meta_size(FL__K_CONNECT, 0, &m));
    m.endpoint.len = 200;
    m.gateway.len = FL__NAME_MAX + 1;
    assert_int_equal(0, fl__frame_meta_size(FL__K_CONNECT, 0, &m));

    m = (fl__frame_meta_t){0};
    m.endpoint = (fl__str_t){big, 200};
    assert_int_equal(2 + 200 + 4 + 4, fl__frame_meta_size(FL__K_INVOKE, 0, &m));
    assert_int_equal(2 + 200 + 4 + 4 + 16,
                     fl__frame_meta_size(FL__K_INVOKE, FL__F_FENCED, &m));
    m.endpoint.len = 201;
    assert_int_equal(0, fl__frame_meta_size(FL__K_INVOKE, 0, &m));
    assert_int_equal(0, fl__frame_meta_size(FL__K_INVOKE, FL__F_FENCED, &m));
    m.endpoint.len = 0xFFFF;
    assert_int_equal(0, fl__frame_meta_size(FL__K_INVOKE, 0, &m));

    /* Kinds without metadata need none. */
    m = (fl__frame_meta_t){0};
    assert_int_equal(4, fl__frame_meta_size(FL__K_CONNECTED, 0, &m));
    assert_int_equal(0, fl__frame_meta_size(FL__K_REPLY, 0, &m));
    assert_int_equal(0, fl__frame_meta_size(FL__K_PING, 0, &m));
    assert_int_equal(0, fl__frame_meta_size(FL__K_PONG, 0, &m));
    assert_int_equal(0, fl__frame_meta_size(FL__K_BYE, 0, &m));
}

static void check_encode_cap(uint8_t kind, uint16_t flags,
                             const fl__frame_meta_t *m)
{
    size_t n = fl__frame_meta_size(kind, flags, m);
    assert_true(n > 0);
    for (size_t cap = 0; cap <= n; cap++) {
        /* Exactly cap bytes on the heap: nothing may be written past. */
        uint8_t *out = malloc(cap ? cap : 1);
        assert_non_null(out);
        size_t w = fl__frame_encode_meta(kind, flags, m, out, cap);
        free(out);
        if (w != (cap < n ? 0 : n))
            fail_msg("kind %u, %zu bytes of metadata, cap %zu: wrote %zu",
                     (unsigned)kind, n, cap, w);
    }
}

static void test_encode_meta_returns_0_when_cap_is_too_small(void **state)
{
    (void)state;
    fl__frame_meta_t m = {0};
    m.max_frame = DEFAULT_MAX;
    m.service_name = str_of("svc");
    check_encode_cap(FL__K_HELLO, 0, &m);

    m = (fl__frame_meta_t){0};
    m.endpoint = str_of("ep");
    m.gateway = str_of("pkg.Gw");
    check_encode_cap(FL__K_CONNECT, 0, &m);

    m = (fl__frame_meta_t){0};
    m.service_index = 3;
    check_encode_cap(FL__K_CONNECTED, 0, &m);

    m = (fl__frame_meta_t){0};
    m.endpoint = str_of("ep");
    check_encode_cap(FL__K_INVOKE, 0, &m);
    check_encode_cap(FL__K_INVOKE, FL__F_FENCED, &m);

    m = (fl__frame_meta_t){0};
    m.code = FL_EINVAL;
    m.message = str_of("message");
    check_encode_cap(FL__K_ERROR, 0, &m);

    /* A string over the limits is refused whatever the cap. */
    static char big[300];
    memset(big, 'a', sizeof big);
    m = (fl__frame_meta_t){0};
    m.endpoint = (fl__str_t){big, 201};
    uint8_t out[1024];
    assert_int_equal(
        0, fl__frame_encode_meta(FL__K_INVOKE, 0, &m, out, sizeof out));
}

/* ---- endpoint ids -------------------------------------------------------- */

static int valid_id(const char *s, size_t len)
{
    /* A heap copy of exactly len bytes, not terminated. */
    char *b = malloc(len ? len : 1);
    assert_non_null(b);
    if (len != 0)
        memcpy(b, s, len);
    int v = fl__valid_endpoint_id(b, len);
    free(b);
    return v;
}

static void
test_valid_endpoint_id_accepts_1_to_200_bytes_of_the_id_alphabet(void **state)
{
    (void)state;
    assert_true(valid_id("resourcemanager_0", 17));
    assert_true(valid_id("a", 1));
    assert_true(valid_id("-", 1));
    assert_true(valid_id(".", 1));
    assert_true(valid_id("_", 1));
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789_.-";
    assert_true(valid_id(alpha, strlen(alpha)));
    char id[201];
    memset(id, 'Z', sizeof id);
    assert_true(valid_id(id, 200));
    /* Only len bytes count: a prefix of an invalid string is valid. */
    assert_true(valid_id("ab/cd", 2));
}

static void
test_valid_endpoint_id_refuses_empty_long_and_other_bytes(void **state)
{
    (void)state;
    assert_false(valid_id("", 0));
    char id[256];
    memset(id, 'a', sizeof id);
    assert_false(valid_id(id, 201));
    assert_false(valid_id(id, 256));
    /* Every byte outside [A-Za-z0-9_.-], alone and inside an id. */
    for (int c = 0; c < 256; c++) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        char one[1] = {(char)c};
        char mid[3] = {'a', (char)c, 'b'};
        if (valid_id(one, 1) != ok || valid_id(mid, 3) != ok)
            fail_msg("byte 0x%02x: expected %s", c, ok ? "valid" : "invalid");
    }
}

/* ---- garbage ------------------------------------------------------------- */

static uint64_t xs_state;

static uint64_t xorshift64(void)
{
    uint64_t x = xs_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return xs_state = x;
}

/* Whether the spec accepts this header (every MUST of the header table,
 * the kinds table and the flags table), independent of the codec. */
static bool spec_accepts(const uint8_t b[24], uint64_t max_frame)
{
    uint32_t magic = rd32(b);
    uint8_t version = b[4], kind = b[5];
    uint16_t flags = (uint16_t)((b[6] << 8) | b[7]);
    uint64_t corr = ((uint64_t)rd32(b + 8) << 32) | rd32(b + 12);
    uint32_t meta = rd32(b + 16), body = rd32(b + 20);
    if (magic != MAGIC || version != 1 || kind < 1 || kind > 9)
        return false;
    uint16_t known = 0;
    if (kind == FL__K_INVOKE)
        known = FL__F_TELL | FL__F_FENCED | FL__F_INSTANCE;
    else if (kind == FL__K_CONNECTED)
        known = FL__F_INSTANCE;
    if (flags & ~known)
        return false;
    unsigned inst = (flags & FL__F_INSTANCE) ? 8u : 0u;
    if (meta > 65535 || 24ull + meta + body > max_frame)
        return false;
    switch (kind) {
    case FL__K_HELLO:
        return meta >= 6 && body == 0;
    case FL__K_CONNECT:
        return meta >= 4 && body == 0 && corr != 0;
    case FL__K_CONNECTED:
        return meta == 4 + inst && body == 0 && corr != 0;
    case FL__K_INVOKE:
        return meta >= 10u + ((flags & FL__F_FENCED) ? 16u : 0u) + inst &&
               ((flags & FL__F_TELL) != 0) == (corr == 0);
    case FL__K_REPLY:
        return meta == 0 && corr != 0;
    case FL__K_ERROR:
        return meta >= 6 && body == 0;
    default: /* PING, PONG, BYE */
        return meta == 0 && body == 0;
    }
}

/* Random headers, most of them steered close to valid so that every rule
 * is reached; all from a fixed seed, so every run sees the same ones. */
static void garbage_header(uint8_t b[24], unsigned i)
{
    uint64_t r0 = xorshift64(), r1 = xorshift64(), r2 = xorshift64();
    for (int k = 0; k < 8; k++) {
        b[k] = (uint8_t)(r0 >> (8 * k));
        b[8 + k] = (uint8_t)(r1 >> (8 * k));
        b[16 + k] = (uint8_t)(r2 >> (8 * k));
    }
    if (i % 4 == 0)
        return; /* wholly random */
    uint64_t s = xorshift64();
    be32(b, MAGIC);
    if ((s & 15) != 0)
        b[4] = 1;
    b[5] = (uint8_t)((s >> 4) % 11); /* 0..10: the kinds and their neighbours */
    if (((s >> 8) & 7) != 0)
        be16(b + 6, (uint16_t)((s >> 11) & 3));
    if (((s >> 13) & 1) != 0)
        be64(b + 8, 0);
    if (((s >> 14) & 3) != 0)
        be32(b + 16, (uint32_t)((s >> 16) % 64));
    else if (((s >> 16) & 1) != 0)
        be32(b + 16, (uint32_t)((s >> 17) & 0x1FFFF));
    if (((s >> 34) & 3) != 0)
        be32(b + 20, 0);
    else if (((s >> 36) & 1) != 0)
        be32(b + 20, (uint32_t)((s >> 37) & 0xFFFFF));
}

/* Half of the random metadata gets its str16 lengths set so that the
 * fields fill meta_len exactly, and endpoint bytes mostly from the id
 * alphabet: random bytes alone almost never parse. */
static void steer_meta(const fl__frame_hdr_t *h, uint8_t *meta)
{
    static const char alpha[] = "abcXYZ019_.-";
    uint32_t n = h->meta_len;
    uint64_t s = xorshift64();
    uint32_t ep_at = 0, ep_len = 0;
    switch (h->kind) {
    case FL__K_HELLO:
        be16(meta + 4, (uint16_t)(n - 6));
        break;
    case FL__K_CONNECT:
        ep_at = 2;
        ep_len = (uint32_t)(s % (n - 3)); /* 0..n-4 */
        be16(meta, (uint16_t)ep_len);
        be16(meta + 2 + ep_len, (uint16_t)(n - 4 - ep_len));
        break;
    case FL__K_INVOKE:
        ep_at = 2;
        ep_len = n - 10 - ((h->flags & FL__F_FENCED) ? 16 : 0);
        be16(meta, (uint16_t)ep_len);
        break;
    case FL__K_ERROR:
        be16(meta + 4, (uint16_t)(n - 6));
        break;
    default:
        return;
    }
    for (uint32_t k = 0; k < ep_len; k++)
        if (((s >> 20) & 15) != 0)
            meta[ep_at + k] = (uint8_t)alpha[xorshift64() % (sizeof alpha - 1)];
}

static void
test_garbage_headers_and_metadata_get_only_documented_codes(void **state)
{
    (void)state;
    const uint64_t maxes[] = {DEFAULT_MAX, 1024, 64 * 1024, UINT64_MAX};
    unsigned seen[4] = {0}; /* OK, EPROTO, EHANDSHAKE, EMSGSIZE */
    unsigned meta_ok = 0, meta_proto = 0;
    xs_state = 0x2545F4914F6CDD1Dull;
    for (unsigned i = 0; i < 100000; i++) {
        uint64_t max_frame = maxes[i % 4];
        /* Exactly 24 bytes on the heap. */
        uint8_t *b = malloc(FL__FRAME_HDR);
        assert_non_null(b);
        garbage_header(b, i / 4);
        fl__frame_hdr_t h;
        memset(&h, 0, sizeof h);
        char why[WHY_LEN] = "";
        int rc = fl__frame_decode_hdr(b, FL__FRAME_HDR, max_frame, &h, why,
                                      sizeof why);
        bool spec_ok = spec_accepts(b, max_frame);
        if (rc != FL_OK && rc != FL_EPROTO && rc != FL_EHANDSHAKE &&
            rc != FL_EMSGSIZE)
            fail_msg("header %u: undocumented code %s", i, fl_err_name(rc));
        check_why(rc, why);
        if ((rc == FL_OK) != spec_ok)
            fail_msg("header %u (kind %u flags 0x%04x meta %u body %u max "
                     "%llu): codec says %s, the spec %s (%s)",
                     i, b[5], (unsigned)((b[6] << 8) | b[7]), rd32(b + 16),
                     rd32(b + 20), (unsigned long long)max_frame,
                     fl_err_name(rc), spec_ok ? "accepts" : "refuses", why);
        seen[rc == FL_OK           ? 0
             : rc == FL_EPROTO     ? 1
             : rc == FL_EHANDSHAKE ? 2
                                   : 3]++;
        if (rc != FL_OK) {
            free(b);
            continue;
        }
        /* The accepted header reads back as its bytes. */
        assert_int_equal(1, h.version);
        assert_int_equal(b[5], h.kind);
        assert_int_equal((b[6] << 8) | b[7], h.flags);
        assert_int_equal(rd32(b + 16), h.meta_len);
        assert_int_equal(rd32(b + 20), h.body_len);
        free(b);

        /* Random metadata of exactly meta_len bytes; sometimes the leading
         * str16 length is steered small so that strings can fit. */
        uint8_t *meta = malloc(h.meta_len ? h.meta_len : 1);
        assert_non_null(meta);
        for (uint32_t k = 0; k < h.meta_len; k++)
            meta[k] = (uint8_t)xorshift64();
        if ((xorshift64() & 1) != 0)
            steer_meta(&h, meta);
        fl__frame_meta_t m;
        why[0] = '\0';
        rc = fl__frame_decode_meta(&h, meta, &m, why, sizeof why);
        if (rc != FL_OK && rc != FL_EPROTO)
            fail_msg("metadata %u: undocumented code %s", i, fl_err_name(rc));
        check_why(rc, why);
        if (rc == FL_OK) {
            meta_ok++;
            /* Decoded strings lie inside the metadata. */
            const fl__str_t *strs[] = {&m.service_name, &m.endpoint, &m.gateway,
                                       &m.message};
            for (size_t k = 0; k < 4; k++)
                if (strs[k]->len != 0)
                    assert_true((const uint8_t *)strs[k]->p >= meta &&
                                (const uint8_t *)strs[k]->p + strs[k]->len <=
                                    meta + h.meta_len);
            /* What was accepted re-encodes to the same bytes. */
            size_t n = fl__frame_meta_size(h.kind, h.flags, &m);
            assert_int_equal(h.meta_len, n);
            if (n != 0) {
                uint8_t *again = malloc(n);
                assert_non_null(again);
                assert_int_equal(
                    n, fl__frame_encode_meta(h.kind, h.flags, &m, again, n));
                assert_memory_equal(meta, again, n);
                free(again);
            }
        } else {
            meta_proto++;
        }
        free(meta);
    }
    /* The generator reached every outcome (deterministic: fixed seed). */
    for (int k = 0; k < 4; k++)
        assert_true(seen[k] > 0);
    assert_true(meta_ok > 0);
    assert_true(meta_proto > 0);
    print_message("garbage: %u accepted, %u EPROTO, %u EHANDSHAKE, "
                  "%u EMSGSIZE; metadata %u OK, %u EPROTO\n",
                  seen[0], seen[1], seen[2], seen[3], meta_ok, meta_proto);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* round trips */
        FL_TEST(test_hello_round_trips),
        FL_TEST(test_connect_round_trips),
        FL_TEST(test_connected_round_trips),
        FL_TEST(test_connected_with_the_instance_round_trips),
        FL_TEST(test_invoke_with_the_instance_round_trips),
        FL_TEST(test_the_instance_ends_the_metadata_big_endian),
        FL_TEST(test_the_instance_flag_on_other_kinds_is_a_protocol_error),
        FL_TEST(test_invoke_ask_round_trips),
        FL_TEST(test_invoke_tell_round_trips),
        FL_TEST(test_invoke_fenced_round_trips_with_its_16_byte_token),
        FL_TEST(test_reply_with_a_body_round_trips),
        FL_TEST(test_error_round_trips),
        FL_TEST(test_ping_round_trips),
        FL_TEST(test_pong_round_trips),
        FL_TEST(test_bye_round_trips),
        /* layout */
        FL_TEST(test_header_layout_is_big_endian_at_the_specified_offsets),
        FL_TEST(test_encode_hdr_writes_protocol_version_1_whatever_h_says),
        FL_TEST(test_hello_metadata_layout_is_u32_then_str16),
        FL_TEST(test_connect_metadata_layout_is_two_str16),
        FL_TEST(test_connected_metadata_layout_is_one_u32),
        FL_TEST(test_invoke_fenced_metadata_layout_ends_with_the_token),
        FL_TEST(test_error_metadata_layout_is_u32_code_then_str16),
        /* header rules */
        FL_TEST(test_fewer_than_24_bytes_is_pending),
        FL_TEST(test_bad_magic_is_a_protocol_error),
        FL_TEST(test_another_version_is_a_handshake_failure_naming_both),
        FL_TEST(test_unknown_kind_is_a_protocol_error),
        FL_TEST(test_unknown_flag_bits_on_invoke_are_a_protocol_error),
        FL_TEST(test_invoke_flags_on_other_kinds_are_a_protocol_error),
        FL_TEST(test_frame_over_max_frame_is_emsgsize_naming_both_sizes),
        FL_TEST(test_4_gib_lengths_do_not_overflow_and_are_emsgsize),
        FL_TEST(test_exactly_max_frame_is_accepted_one_more_is_refused),
        FL_TEST(test_meta_len_over_65535_is_a_protocol_error),
        FL_TEST(test_meta_len_below_the_kinds_minimum_is_a_protocol_error),
        FL_TEST(test_fixed_size_kinds_with_extra_metadata_are_a_protocol_error),
        FL_TEST(test_body_on_kinds_without_one_is_a_protocol_error),
        FL_TEST(test_invoke_tell_with_a_correlation_id_is_a_protocol_error),
        FL_TEST(test_invoke_ask_without_a_correlation_id_is_a_protocol_error),
        FL_TEST(test_connect_connected_reply_without_corr_are_a_protocol_error),
        FL_TEST(test_decode_hdr_accepts_a_null_why),
        /* metadata rules */
        FL_TEST(test_truncated_strings_are_a_protocol_error),
        FL_TEST(test_trailing_metadata_bytes_are_a_protocol_error),
        FL_TEST(test_invalid_endpoint_ids_are_a_protocol_error),
        FL_TEST(test_error_with_code_0_is_a_protocol_error),
        FL_TEST(test_error_message_over_1024_bytes_is_a_protocol_error),
        FL_TEST(test_error_message_over_1024_bytes_is_cut_there_on_encode),
        FL_TEST(test_hello_max_frame_under_1024_is_a_protocol_error),
        /* encoder limits */
        FL_TEST(test_meta_size_is_0_for_strings_over_the_limits),
        FL_TEST(test_encode_meta_returns_0_when_cap_is_too_small),
        /* endpoint ids */
        FL_TEST(
            test_valid_endpoint_id_accepts_1_to_200_bytes_of_the_id_alphabet),
        FL_TEST(test_valid_endpoint_id_refuses_empty_long_and_other_bytes),
        /* garbage */
        FL_TEST(test_garbage_headers_and_metadata_get_only_documented_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
