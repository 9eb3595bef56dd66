/*
 * frame_codec_test.c - the frame codec (src/remote/frame.c) checked against
 * docs/wire-protocol.md: round trips of every kind, the exact big-endian
 * layout, the encoder's limits and endpoint ids.
 */
#include "frame_fixture.h"

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
        /* encoder limits */
        FL_TEST(test_meta_size_is_0_for_strings_over_the_limits),
        FL_TEST(test_encode_meta_returns_0_when_cap_is_too_small),
        /* endpoint ids */
        FL_TEST(
            test_valid_endpoint_id_accepts_1_to_200_bytes_of_the_id_alphabet),
        FL_TEST(test_valid_endpoint_id_refuses_empty_long_and_other_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
