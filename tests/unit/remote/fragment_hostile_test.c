/*
 * fragment_hostile_test.c - FRAGMENT frames against a fling server
 * (docs/wire-protocol.md, Fragments): fragments a raw client puts on the
 * wire are put together and served, interleaved with whole frames and with
 * each other; a server's reply above FL__FRAG_SIZE comes in fragments; and
 * every broken fragment sequence gets its own protocol error (code and
 * message), then the close, while a well-behaved fling client is served
 * on another connection all along (wire_client.h's good client).
 *
 * The frames a hostile sequence carries hold Num(POISON): the endpoint
 * counts any that reaches it, and none may.
 */
#include "wire_raw.h"

#define SERVER_MAX (1024u * 1024u)
#define CLIENT_MAX (1024u * 1024u)
#define SERVER_NAME "frag-server"
#define CLIENT_NAME "frag-client"
#define EP_ID "calc"
#define GOOD_PER_CASE 10

static int setup(void **state)
{
    return raw_fixture_setup(state, SERVER_NAME, SERVER_MAX, "calc");
}

/* A raw connection through HELLO and CONNECT (calc, CalcGateway). */
static raw_t session(const fixture_t *fx)
{
    raw_t r = raw_of(raw_connect(fx->port, 0), CLIENT_MAX, CLIENT_NAME,
                     SERVER_MAX, SERVER_NAME, EP_ID);
    raw_hello(&r);
    raw_attach(&r, 1, CALC_NAME, CALC_INDEX);
    return r;
}

/* A text of n bytes, all c; caller frees. */
static char *text_of(size_t n, char c)
{
    char *t = malloc(n + 1);
    assert_non_null(t);
    memset(t, c, n);
    t[n] = '\0';
    return t;
}

/* An Add INVOKE (corr, Num(v, a text of text_len bytes)) as bytes: *n of
 * them; caller frees. */
static uint8_t *add_frame(const raw_t *r, uint64_t corr, int64_t v,
                          size_t text_len, size_t *n)
{
    char *text = text_of(text_len, 'f');
    uint8_t *b = num_frame(r, 0, corr, CALC_INDEX, M_ADD, v, text, n, NULL);
    free(text);
    return b;
}

/* Sends FRAGMENT (stream, flags) carrying the n bytes at p; the first of
 * a stream (first) carries its frame's header as metadata. */
static void send_fragment(raw_t *r, uint64_t stream, uint16_t flags, bool first,
                          const uint8_t *p, size_t n)
{
    uint32_t meta = first ? FL__FRAME_HDR : 0;
    assert_true(n >= meta);
    fl__frame_hdr_t h = {.kind = FL__K_FRAGMENT,
                         .flags = flags,
                         .corr = stream,
                         .meta_len = meta,
                         .body_len = (uint32_t)(n - meta)};
    uint8_t hdr[FL__FRAME_HDR];
    fl__frame_encode_hdr(hdr, &h);
    raw_send(r, hdr, sizeof hdr);
    raw_send(r, p, n);
}

/* Sends frame b (n bytes) as fragments of stream carrying `piece` bytes
 * each, the last with LAST. */
static void send_in_fragments(raw_t *r, uint64_t stream, const uint8_t *b,
                              size_t n, size_t piece)
{
    for (size_t off = 0; off < n; off += piece) {
        size_t k = n - off < piece ? n - off : piece;
        send_fragment(r, stream, off + k == n ? FL__F_LAST : 0, off == 0,
                      b + off, k);
    }
}

/* The next frame is ERROR `code` (corr 0) with exactly `want`, then the
 * server closes; then the good client made GOOD_PER_CASE more calls since
 * mark, no poisoned request ran, and a fresh session is served. */
static void expect_refused(fixture_t *fx, raw_t *r, uint64_t mark, int code,
                           const char *want)
{
    char msg[FL__ERRMSG_MAX + 1];
    expect_error_then_close(r, code, msg, sizeof msg);
    assert_string_equal(want, msg);
    raw_close(r);
    good_wait(&fx->good, mark + GOOD_PER_CASE, WAIT_MS);
    good_wait(&fx->good, good_done(&fx->good) + 2, WAIT_MS);
    assert_int_equal(0, atomic_load(&fx->calc.poison_hits));
    raw_t again = session(fx);
    expect_usable(&again, 900, 41);
    raw_close(&again);
}

/* A refused case: the fixture, the good client's count when it began, and
 * its raw session. */
typedef struct hcase {
    fixture_t *fx;
    uint64_t mark;
    raw_t r;
} hcase_t;

static hcase_t hcase_start(void **state)
{
    hcase_t h = {.fx = *state};
    h.mark = good_done(&h.fx->good);
    h.r = session(h.fx);
    return h;
}

/* An Add(POISON) frame with a text of text_len bytes: *n bytes; caller
 * frees. */
static uint8_t *poison_frame(const hcase_t *h, size_t text_len, size_t *n)
{
    return add_frame(&h->r, 2, POISON, text_len, n);
}

/* ---- served -------------------------------------------------------------- */

/* Two fragmented Adds, their fragments interleaved with each other and
 * with a whole Add, are all answered (the whole one first: it was
 * complete first), with their texts intact. */
static void test_interleaved_fragments_are_put_together_and_served(void **st)
{
    fixture_t *fx = *st;
    raw_t r = session(fx);
    size_t n1, n2;
    uint8_t *a = add_frame(&r, 2, 10, 40000, &n1);
    uint8_t *b = add_frame(&r, 3, 20, 30000, &n2);
    send_fragment(&r, 7, 0, true, a, 10000);
    send_fragment(&r, 9, 0, true, b, 5000);
    send_num(&r, 4, CALC_INDEX, M_ADD, 30, "whole");
    send_fragment(&r, 7, 0, false, a + 10000, 20000);
    send_fragment(&r, 9, FL__F_LAST, false, b + 5000, n2 - 5000);
    send_fragment(&r, 7, FL__F_LAST, false, a + 30000, n1 - 30000);
    expect_num_reply(&r, 4, 31, "whole");
    char *t2 = text_of(30000, 'f'), *t1 = text_of(40000, 'f');
    expect_num_reply(&r, 3, 21, t2);
    expect_num_reply(&r, 2, 11, t1);
    expect_usable(&r, 5, 50);
    free(t1);
    free(t2);
    free(a);
    free(b);
    raw_close(&r);
}

/* A reply above FL__FRAG_SIZE comes as FRAGMENTs of at most FL__FRAG_SIZE
 * bytes, one stream, LAST on the last only, the first carrying the
 * REPLY's header; put together it is the reply. */
static void test_a_large_reply_comes_in_fragments(void **st)
{
    fixture_t *fx = *st;
    raw_t r = session(fx);
    char *text = text_of(300000, 'q');
    send_num(&r, 2, CALC_INDEX, M_ADD, 7, text);
    r.keep_fragments = true;
    unsigned n = 0;
    uint64_t stream = 0;
    size_t total = 0;
    for (;;) {
        frame_t f;
        next_frame_or_fail(&r, &f, "FRAGMENT", 2);
        assert_int_equal(FL__K_FRAGMENT, f.h.kind);
        assert_true(FL__FRAME_HDR + f.h.meta_len + f.h.body_len <=
                    FL__FRAG_SIZE);
        if (n == 0) {
            assert_int_equal(FL__FRAME_HDR, f.h.meta_len);
            assert_int_equal(FL__K_REPLY, f.meta[5]);
            stream = f.h.corr;
        } else {
            assert_int_equal(0, f.h.meta_len);
            assert_int_equal(stream, f.h.corr);
        }
        total += f.h.meta_len + f.h.body_len;
        n++;
        bool last = (f.h.flags & FL__F_LAST) != 0;
        fl__rx_frame_t fr = {.h = f.h, .body = f.meta + f.h.meta_len};
        uint8_t *whole = NULL;
        size_t len = 0;
        char why[256];
        int rc = fl__frag_put(&r.frag, &fr, r.max_frame, &whole, &len, why,
                              sizeof why);
        frame_clear(&f);
        if (!last) {
            assert_fl(FL_EPENDING, rc);
            continue;
        }
        assert_fl_ok(rc);
        assert_int_equal(total, len);
        fl__frame_hdr_t h;
        assert_fl_ok(
            fl__frame_decode_hdr(whole, len, r.max_frame, &h, why, sizeof why));
        assert_int_equal(2, h.corr);
        Flhostile__Num *got = flhostile__num__unpack(
            NULL, h.body_len, whole + FL__FRAME_HDR + h.meta_len);
        assert_non_null(got);
        assert_int_equal(8, got->v);
        assert_string_equal(text, got->text);
        flhostile__num__free_unpacked(got, NULL);
        fl__free(whole);
        break;
    }
    size_t room = FL__FRAG_SIZE - FL__FRAME_HDR;
    assert_int_equal((total + room - 1) / room, n);
    r.keep_fragments = false;
    expect_usable(&r, 3, 1);
    free(text);
    raw_close(&r);
}

/* ---- refused ------------------------------------------------------------- */

static void test_a_fragment_of_an_unknown_stream_is_refused(void **st)
{
    hcase_t h = hcase_start(st);
    uint8_t bytes[100] = {0};
    send_fragment(&h.r, 5, FL__F_LAST, false, bytes, sizeof bytes);
    expect_refused(h.fx, &h.r, h.mark, FL_EPROTO,
                   "FRAGMENT of unknown stream 5");
}

static void test_a_stream_started_twice_is_refused(void **st)
{
    hcase_t h = hcase_start(st);
    size_t n;
    uint8_t *a = poison_frame(&h, 5000, &n);
    send_fragment(&h.r, 5, 0, true, a, 1000);
    send_fragment(&h.r, 5, 0, true, a, 1000);
    free(a);
    expect_refused(h.fx, &h.r, h.mark, FL_EPROTO,
                   "FRAGMENT starts stream 5 twice");
}

static void test_a_fifth_stream_in_progress_is_refused(void **st)
{
    hcase_t h = hcase_start(st);
    size_t n;
    uint8_t *a = poison_frame(&h, 5000, &n);
    for (uint64_t s = 1; s <= FL__FRAG_STREAMS + 1; s++)
        send_fragment(&h.r, s, 0, true, a, 1000);
    free(a);
    char want[160];
    snprintf(want, sizeof want,
             "FRAGMENT starts stream %u while %u fragmented frames are in "
             "progress (limit %u)",
             FL__FRAG_STREAMS + 1, FL__FRAG_STREAMS, FL__FRAG_STREAMS);
    expect_refused(h.fx, &h.r, h.mark, FL_EPROTO, want);
}

/* The first fragment's header decides, before anything is allocated: a
 * frame over the maximum is refused from its 24 bytes. */
static void test_a_fragmented_frame_over_the_maximum_is_refused(void **st)
{
    hcase_t h = hcase_start(st);
    fl__frame_hdr_t fh = {.kind = FL__K_INVOKE,
                          .corr = 2,
                          .meta_len = 11,
                          .body_len = SERVER_MAX - FL__FRAME_HDR - 10};
    uint8_t hdr[FL__FRAME_HDR];
    fl__frame_encode_hdr(hdr, &fh);
    send_fragment(&h.r, 3, 0, true, hdr, sizeof hdr);
    char want[200];
    snprintf(want, sizeof want,
             "FRAGMENT stream 3: INVOKE frame of %u bytes exceeds the maximum "
             "frame size of %u bytes",
             SERVER_MAX + 1, SERVER_MAX);
    expect_refused(h.fx, &h.r, h.mark, FL_EMSGSIZE, want);
}

/* Streams in progress together announce at most one maximum frame. */
static void test_streams_over_the_maximum_together_are_refused(void **st)
{
    hcase_t h = hcase_start(st);
    size_t n;
    uint8_t *a = poison_frame(&h, SERVER_MAX / 2, &n);
    send_fragment(&h.r, 1, 0, true, a, 1000);
    send_fragment(&h.r, 2, 0, true, a, 1000);
    free(a);
    char want[200];
    snprintf(want, sizeof want,
             "FRAGMENT stream 2: the fragmented frames in progress would "
             "announce %zu bytes together, over the maximum frame size of %u "
             "bytes",
             2 * n, SERVER_MAX);
    expect_refused(h.fx, &h.r, h.mark, FL_EMSGSIZE, want);
}

static void test_fragments_of_a_kind_never_cut_are_refused(void **st)
{
    hcase_t h = hcase_start(st);
    size_t n;
    uint8_t *ping = frame_bytes(FL__K_PING, 0, 4, NULL, NULL, 0, &n);
    send_fragment(&h.r, 1, FL__F_LAST, true, ping, n);
    free(ping);
    expect_refused(h.fx, &h.r, h.mark, FL_EPROTO,
                   "FRAGMENT stream 1 carries a frame of kind 7 (only INVOKE "
                   "and REPLY are cut)");
}

static void test_a_first_fragment_without_a_frame_header_is_refused(void **st)
{
    hcase_t h = hcase_start(st);
    uint8_t junk[FL__FRAME_HDR + 8];
    memset(junk, 'x', sizeof junk);
    send_fragment(&h.r, 1, 0, true, junk, sizeof junk);
    expect_refused(h.fx, &h.r, h.mark, FL_EPROTO,
                   "FRAGMENT stream 1: bad magic 0x78787878 (want 0x464c4e47)");
}

/* A stream of an n-byte frame whose second and last fragment carries
 * n - 1000 + extra bytes with `flags`: too many, too few, or all of them
 * without LAST. */
static void test_streams_whose_sizes_do_not_add_up_are_refused(void **st)
{
    /* Bytes more (or fewer) than the frame's rest, and the flags. */
    static const struct {
        long extra;
        uint16_t flags;
    } rows[] = {{100, FL__F_LAST}, {-1, FL__F_LAST}, {0, 0}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        hcase_t h = hcase_start(st);
        size_t n;
        uint8_t *a = poison_frame(&h, 3000, &n);
        uint8_t *b = calloc(1, n + 100);
        assert_non_null(b);
        memcpy(b, a, n);
        size_t second = (size_t)((long)n - 1000 + rows[i].extra);
        send_fragment(&h.r, 1, 0, true, b, 1000);
        send_fragment(&h.r, 1, rows[i].flags, false, b + 1000, second);
        free(a);
        free(b);
        char want[160];
        if (i == 0)
            snprintf(want, sizeof want,
                     "FRAGMENT stream 1 runs 100 bytes past its frame of %zu "
                     "bytes",
                     n);
        else if (i == 1)
            snprintf(want, sizeof want,
                     "FRAGMENT stream 1 ends (LAST) at %zu of its %zu bytes",
                     n - 1, n);
        else
            snprintf(want, sizeof want,
                     "FRAGMENT stream 1 fills its frame without the LAST "
                     "flag");
        expect_refused(h.fx, &h.r, h.mark, FL_EPROTO, want);
    }
}

/* The frame put together is checked like any frame: metadata that does
 * not parse is refused, and nothing of it runs. */
static void test_a_put_together_frame_with_bad_metadata_is_refused(void **st)
{
    hcase_t h = hcase_start(st);
    size_t n;
    uint8_t *a = poison_frame(&h, 3000, &n);
    a[FL__FRAME_HDR + 1] = 200; /* the endpoint id runs past the metadata */
    send_in_fragments(&h.r, 1, a, n, 1000);
    free(a);
    expect_refused(h.fx, &h.r, h.mark, FL_EPROTO,
                   "INVOKE metadata truncated (14 bytes)");
}

/* The header rules of the FRAGMENT frame itself. */
static void test_fragment_headers_that_break_the_rules_are_refused(void **st)
{
    static const struct {
        uint16_t flags;
        uint64_t corr;
        uint32_t meta;
        const char *want;
    } rows[] = {
        {0, 1, 12, "FRAGMENT frame with 12 bytes of metadata (want 0 or 24)"},
        {0, 0, 0, "FRAGMENT frame without a correlation id"},
        {FL__F_TELL, 1, 0, "FRAGMENT frame with unknown flags 0x0001"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        hcase_t h = hcase_start(st);
        fl__frame_hdr_t fh = {.kind = FL__K_FRAGMENT,
                              .flags = rows[i].flags,
                              .corr = rows[i].corr,
                              .meta_len = rows[i].meta,
                              .body_len = 4};
        uint8_t b[FL__FRAME_HDR + 16] = {0};
        fl__frame_encode_hdr(b, &fh);
        raw_send(&h.r, b, FL__FRAME_HDR + rows[i].meta + 4);
        expect_refused(h.fx, &h.r, h.mark, FL_EPROTO, rows[i].want);
    }
}

static void test_after_the_session_no_poisoned_request_ran(void **st)
{
    raw_session_end(*st, GOOD_PER_CASE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_interleaved_fragments_are_put_together_and_served),
        FL_TEST(test_a_large_reply_comes_in_fragments),
        FL_TEST(test_a_fragment_of_an_unknown_stream_is_refused),
        FL_TEST(test_a_stream_started_twice_is_refused),
        FL_TEST(test_a_fifth_stream_in_progress_is_refused),
        FL_TEST(test_a_fragmented_frame_over_the_maximum_is_refused),
        FL_TEST(test_streams_over_the_maximum_together_are_refused),
        FL_TEST(test_fragments_of_a_kind_never_cut_are_refused),
        FL_TEST(test_a_first_fragment_without_a_frame_header_is_refused),
        FL_TEST(test_streams_whose_sizes_do_not_add_up_are_refused),
        FL_TEST(test_a_put_together_frame_with_bad_metadata_is_refused),
        FL_TEST(test_fragment_headers_that_break_the_rules_are_refused),
        FL_TEST(test_after_the_session_no_poisoned_request_ran),
    };
    return cmocka_run_group_tests(tests, setup, raw_fixture_teardown);
}
