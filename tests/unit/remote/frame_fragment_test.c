/*
 * frame_fragment_test.c - the FRAGMENT kind in the codec and the cutting
 * and putting together of fragments (src/remote/fragment.c), without I/O:
 * the header rules of FRAGMENT, the fragments fl__frag_cut makes of
 * frames of several sizes (sizes, flags, metadata, count), and that
 * fl__frag_put gives the frame back byte for byte, with interleaved
 * streams freeing their slots as they complete. The broken sequences are
 * refused on the wire in fragment_hostile_test.c.
 */
#include "frame_fixture.h"

#include "common/internal.h"
#include "remote/fragment.h"

/* ---- the header ---------------------------------------------------------- */

static void test_fragment_headers_follow_the_kinds_rules(void **state)
{
    (void)state;
    raw_hdr_t r = {MAGIC, 1, FL__K_FRAGMENT, 0, 9, 0, 1000};
    expect_hdr(FL_OK, &r, DEFAULT_MAX); /* a later fragment */
    r.meta_len = FL__FRAME_HDR;
    expect_hdr(FL_OK, &r, DEFAULT_MAX); /* a first fragment */
    r.flags = FL__F_LAST;
    expect_hdr(FL_OK, &r, DEFAULT_MAX);
    r.body_len = 0;
    expect_hdr(FL_OK, &r, DEFAULT_MAX);
    /* Metadata is the carried frame's header or nothing. */
    const uint32_t metas[] = {1, 23, 25, 48};
    for (size_t i = 0; i < sizeof metas / sizeof metas[0]; i++) {
        r.meta_len = metas[i];
        expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
    }
    r.meta_len = 0;
    /* A stream id is required; the only flag is LAST. */
    r.corr = 0;
    expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
    r.corr = 9;
    const uint16_t flags[] = {FL__F_TELL, FL__F_FENCED, FL__F_INSTANCE,
                              0x0008,     0x0010,       0x8000};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        r.flags = flags[i];
        expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
    }
    /* A fragment is a frame: bounded by the maximum like any other. */
    r.flags = 0;
    r.body_len = 2000 - FL__FRAME_HDR + 1;
    expect_hdr(FL_EMSGSIZE, &r, 2000);
    /* LAST is FRAGMENT's only. */
    raw_hdr_t inv = valid_hdr(FL__K_INVOKE);
    inv.flags = FL__F_LAST;
    expect_hdr(FL_EPROTO, &inv, DEFAULT_MAX);
}

/* ---- cutting and putting together ---------------------------------------- */

/* A frame of len bytes: an INVOKE header for it, then a pattern. Caller
 * frees. */
static uint8_t *big_frame(size_t len, uint64_t corr)
{
    uint8_t *b = malloc(len);
    assert_non_null(b);
    raw_hdr_t r = {MAGIC,
                   1,
                   FL__K_INVOKE,
                   0,
                   corr,
                   11,
                   (uint32_t)(len - FL__FRAME_HDR - 11)};
    raw_bytes(b, &r);
    /* str16 "e", service 0, method 0 */
    static const uint8_t meta[11] = {0, 1, 'e', 0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(b + FL__FRAME_HDR, meta, sizeof meta);
    for (size_t i = FL__FRAME_HDR + 11; i < len; i++)
        b[i] = (uint8_t)(i * 31 + corr);
    return b;
}

/* The next fragment of frame b (len bytes) from *off on, of stream:
 * checked, taken by fl__frag_put into fs; returns its code. */
static int cut_and_put(fl__frag_t *fs, const uint8_t *b, size_t len,
                       size_t *off, uint64_t stream, uint8_t **whole,
                       size_t *whole_len)
{
    uint8_t hdr[FL__FRAME_HDR];
    size_t n = fl__frag_cut(len, *off, stream, hdr);
    fl__frame_hdr_t h;
    char why[WHY_LEN] = "";
    assert_fl_ok(fl__frame_decode_hdr(hdr, sizeof hdr, FL__FRAG_SIZE, &h, why,
                                      sizeof why));
    assert_int_equal(FL__K_FRAGMENT, h.kind);
    assert_int_equal(stream, h.corr);
    assert_int_equal(*off == 0 ? FL__FRAME_HDR : 0, h.meta_len);
    assert_int_equal(n, h.meta_len + h.body_len);
    assert_true(FL__FRAME_HDR + n <= FL__FRAG_SIZE);
    assert_int_equal(*off + n == len ? FL__F_LAST : 0, h.flags);
    /* The fragment's bytes, exactly, on the heap. */
    uint8_t *copy = malloc(n);
    assert_non_null(copy);
    memcpy(copy, b + *off, n);
    fl__rx_frame_t fr = {.h = h, .body = copy + h.meta_len};
    int rc =
        fl__frag_put(fs, &fr, DEFAULT_MAX, whole, whole_len, why, sizeof why);
    free(copy);
    *off += n;
    return rc;
}

static void test_frames_are_cut_and_put_back_byte_for_byte(void **state)
{
    (void)state;
    size_t room = FL__FRAG_SIZE - FL__FRAME_HDR;
    const size_t sizes[] = {FL__FRAG_SIZE + 1, 2 * room, 2 * room + 1, MiB + 3,
                            DEFAULT_MAX};
    fl__frag_t fs;
    memset(&fs, 0, sizeof fs);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *b = big_frame(sizes[i], i + 1);
        size_t off = 0, count = 0, len = 0;
        uint8_t *whole = NULL;
        int rc;
        while ((rc = cut_and_put(&fs, b, sizes[i], &off, 40 + i, &whole,
                                 &len)) == FL_EPENDING)
            count++;
        assert_fl_ok(rc);
        count++;
        assert_int_equal((sizes[i] + room - 1) / room, count);
        assert_int_equal(sizes[i], len);
        assert_memory_equal(b, whole, len);
        assert_int_equal(0, fs.n);
        assert_int_equal(0, fs.held);
        fl__free(whole);
        free(b);
    }
}

/* Four streams at once, their fragments interleaved; each completes on
 * its LAST and gives its slot back, so four more fit afterwards. */
static void test_interleaved_streams_complete_and_free_their_slots(void **st)
{
    (void)st;
    fl__frag_t fs;
    memset(&fs, 0, sizeof fs);
    for (int round = 0; round < 2; round++) {
        uint8_t *b[FL__FRAG_STREAMS];
        size_t off[FL__FRAG_STREAMS] = {0}, len = 3 * FL__FRAG_SIZE;
        for (unsigned k = 0; k < FL__FRAG_STREAMS; k++)
            b[k] = big_frame(len, k + 1);
        unsigned done = 0;
        while (done < FL__FRAG_STREAMS) {
            for (unsigned k = 0; k < FL__FRAG_STREAMS; k++) {
                if (off[k] == len)
                    continue;
                uint8_t *whole = NULL;
                size_t n = 0;
                int rc =
                    cut_and_put(&fs, b[k], len, &off[k], 100 + k, &whole, &n);
                if (off[k] < len) {
                    assert_fl(FL_EPENDING, rc);
                    continue;
                }
                assert_fl_ok(rc);
                assert_memory_equal(b[k], whole, len);
                fl__free(whole);
                done++;
            }
        }
        assert_int_equal(0, fs.n);
        for (unsigned k = 0; k < FL__FRAG_STREAMS; k++)
            free(b[k]);
    }
}

/* A reset frees the frames in progress (the sanitizer build checks). */
static void test_a_reset_frees_frames_in_progress(void **state)
{
    (void)state;
    fl__frag_t fs;
    memset(&fs, 0, sizeof fs);
    uint8_t *b = big_frame(MiB, 1);
    size_t off = 0, len = 0;
    uint8_t *whole = NULL;
    assert_fl(FL_EPENDING, cut_and_put(&fs, b, MiB, &off, 5, &whole, &len));
    assert_int_equal(1, fs.n);
    assert_int_equal(MiB, fs.held);
    fl__frag_reset(&fs);
    assert_int_equal(0, fs.n);
    assert_int_equal(0, fs.held);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_fragment_headers_follow_the_kinds_rules),
        FL_TEST(test_frames_are_cut_and_put_back_byte_for_byte),
        FL_TEST(test_interleaved_streams_complete_and_free_their_slots),
        FL_TEST(test_a_reset_frees_frames_in_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
