/*
 * frame_resolved_test - endpoint patterns in the codec
 * (docs/wire-protocol.md, Kinds and Handshake): a CONNECT may name a
 * pattern, an INVOKE never; a CONNECTED with flag RESOLVED (0x0040) ends
 * with the id the pattern resolved to, a str16 after the instance.
 */
#include "frame_fixture.h"

#define RESOLVED 0x0040u

static void test_the_resolved_flag_is_bit_6(void **state)
{
    (void)state;
    assert_int_equal(RESOLVED, FL__F_RESOLVED);
}

static void test_connected_with_the_resolved_id_round_trips(void **state)
{
    (void)state;
    fl__frame_meta_t in = {0};
    in.service_index = 1;
    in.instance = 0x0102030405060708ull;
    in.endpoint = str_of("resourcemanager_7");
    dec_t d;
    round_trip(FL__K_CONNECTED, FL__F_INSTANCE | RESOLVED, 42, &in, NULL, 0,
               &d);
    assert_int_equal(4 + 8 + 2 + 17, d.h.meta_len);
    assert_int_equal(1, d.m.service_index);
    assert_true(d.m.instance == 0x0102030405060708ull);
    assert_str("resourcemanager_7", 17, d.m.endpoint, d.meta, d.h.meta_len);
    dec_free(&d);
}

/* The bytes, as the specification lays them out: u32, u64, str16. */
static void test_the_resolved_id_ends_the_connected_metadata(void **state)
{
    (void)state;
    fl__frame_meta_t m = {0};
    m.service_index = 0x01020304u;
    m.instance = 0x1112131415161718ull;
    m.endpoint = str_of("rm_2");
    static const uint8_t want[] = {0x01, 0x02, 0x03, 0x04, 0x11, 0x12,
                                   0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
                                   0x00, 0x04, 'r',  'm',  '_',  '2'};
    assert_int_equal(
        sizeof want,
        fl__frame_meta_size(FL__K_CONNECTED, FL__F_INSTANCE | RESOLVED, &m));
    uint8_t out[sizeof want];
    assert_int_equal(sizeof want,
                     fl__frame_encode_meta(FL__K_CONNECTED,
                                           FL__F_INSTANCE | RESOLVED, &m, out,
                                           sizeof out));
    assert_memory_equal(want, out, sizeof want);
    /* An id over the limit does not fit. */
    char id[FL__ID_MAX + 1];
    memset(id, 'i', sizeof id);
    m.endpoint.p = id;
    m.endpoint.len = FL__ID_MAX + 1;
    assert_int_equal(0, fl__frame_meta_size(FL__K_CONNECTED, RESOLVED, &m));
}

/* The flag is CONNECTED's only, and its metadata is then at least the
 * fixed part and an empty str16, no longer exact. */
static void test_the_resolved_flag_belongs_to_connected(void **state)
{
    (void)state;
    for (uint8_t k = FL__K_HELLO; k <= FL__K_FRAGMENT; k++) {
        raw_hdr_t r = valid_hdr(k);
        r.flags = RESOLVED;
        r.meta_len += 2;
        expect_hdr(k == FL__K_CONNECTED ? FL_OK : FL_EPROTO, &r, DEFAULT_MAX);
    }
    raw_hdr_t r = valid_hdr(FL__K_CONNECTED);
    r.flags = FL__F_INSTANCE | RESOLVED;
    r.meta_len = 4 + 8 + 2 + 200;
    expect_hdr(FL_OK, &r, DEFAULT_MAX);
    r.meta_len = 4 + 8 + 1; /* no room for the str16's length */
    expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
    /* Without the flag CONNECTED stays exact. */
    r.flags = FL__F_INSTANCE;
    r.meta_len = 4 + 8 + 2;
    expect_hdr(FL_EPROTO, &r, DEFAULT_MAX);
}

/* The resolved id must be an endpoint id: not a pattern, not empty, of
 * the id characters; truncated or trailing bytes are refused too. */
static void test_a_bad_resolved_id_is_a_protocol_error(void **state)
{
    (void)state;
    const char *bad[] = {"", "rm_*", "a/b", "a b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mbuf_t m = {0};
        m_u32(&m, 0);
        m_cstr(&m, bad[i]);
        dec_t d;
        assert_fl(FL_EPROTO,
                  decode_meta_bytes(FL__K_CONNECTED, RESOLVED, 9, &m, &d));
        char want[100];
        snprintf(want, sizeof want,
                 "CONNECTED names an invalid resolved endpoint id (%zu bytes)",
                 strlen(bad[i]));
        assert_string_equal(want, d.why);
        dec_free(&d);
    }
    mbuf_t m = {0};
    m_u32(&m, 0);
    m_len(&m, 5);
    m_raw(&m, "rm_", 3);
    expect_meta(FL_EPROTO, FL__K_CONNECTED, RESOLVED, 9, &m);
    m.n = 0;
    m_u32(&m, 0);
    m_cstr(&m, "rm_0");
    m_raw(&m, "x", 1);
    expect_meta(FL_EPROTO, FL__K_CONNECTED, RESOLVED, 9, &m);
}

/* A CONNECT may name a pattern (the server resolves it); an INVOKE may
 * not (its gateway learned the id). */
static void test_connect_may_name_a_pattern_invoke_may_not(void **state)
{
    (void)state;
    const char *patterns[] = {"rm_*", "*_0", "a*b*c", "*"};
    for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++) {
        mbuf_t m = {0};
        m_cstr(&m, patterns[i]);
        m_cstr(&m, "g.G");
        expect_meta(FL_OK, FL__K_CONNECT, 0, 9, &m);
        m.n = 0;
        m_cstr(&m, patterns[i]);
        m_u32(&m, 0);
        m_u32(&m, 0);
        dec_t d;
        assert_fl(FL_EPROTO, decode_meta_bytes(FL__K_INVOKE, 0, 9, &m, &d));
        char want[100];
        snprintf(want, sizeof want,
                 "INVOKE names an invalid endpoint id (%zu bytes)",
                 strlen(patterns[i]));
        assert_string_equal(want, d.why);
        dec_free(&d);
    }
    mbuf_t m = {0};
    m_cstr(&m, "rm_?");
    m_cstr(&m, "g.G");
    expect_meta(FL_EPROTO, FL__K_CONNECT, 0, 9, &m);
    assert_true(fl__valid_endpoint_pattern("rm_*", 4));
    assert_false(fl__valid_endpoint_pattern("", 0));
    assert_false(fl__valid_endpoint_pattern("rm/*", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_the_resolved_flag_is_bit_6),
        FL_TEST(test_connected_with_the_resolved_id_round_trips),
        FL_TEST(test_the_resolved_id_ends_the_connected_metadata),
        FL_TEST(test_the_resolved_flag_belongs_to_connected),
        FL_TEST(test_a_bad_resolved_id_is_a_protocol_error),
        FL_TEST(test_connect_may_name_a_pattern_invoke_may_not),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
