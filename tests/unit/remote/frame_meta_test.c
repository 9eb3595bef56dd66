/*
 * frame_meta_test.c - every MUST rule of the frame metadata
 * (docs/wire-protocol.md) with its error code.
 */
#include "frame_fixture.h"

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

/* FL__F_DEADLINE on INVOKE: a u32 of milliseconds after the instance,
 * encoded and decoded; 4 bytes, no more, no fewer. */
static void test_the_deadline_ends_the_invoke_metadata(void **state)
{
    (void)state;
    const uint16_t flags = FL__F_FENCED | FL__F_INSTANCE | FL__F_DEADLINE;
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.endpoint = str_of("ep");
    m.service_index = 1;
    m.method_index = 2;
    memset(m.token, 0x5a, sizeof m.token);
    m.instance = 0x0102030405060708ull;
    m.deadline_ms = 0xfedcba98u;
    uint8_t buf[128];
    size_t n = fl__frame_encode_meta(FL__K_INVOKE, flags, &m, buf, sizeof buf);
    assert_int_equal(2 + 2 + 4 + 4 + 16 + 8 + 4, n);
    assert_memory_equal("\xfe\xdc\xba\x98", buf + n - 4, 4);
    fl__frame_hdr_t h = {
        FL__PROTO_VERSION, FL__K_INVOKE, flags, 1, (uint32_t)n, 0};
    fl__frame_meta_t out;
    char why[128] = "";
    assert_fl_ok(fl__frame_decode_meta(&h, buf, &out, why, sizeof why));
    assert_int_equal(0xfedcba98u, out.deadline_ms);
    assert_true(out.instance == m.instance);
    h.meta_len = (uint32_t)n - 1;
    assert_fl(FL_EPROTO, fl__frame_decode_meta(&h, buf, &out, why, sizeof why));
    assert_string_equal("INVOKE metadata truncated (39 bytes)", why);
    /* Without the flag the 4 bytes are trailing bytes. */
    h.flags = FL__F_FENCED | FL__F_INSTANCE;
    h.meta_len = (uint32_t)n;
    assert_fl(FL_EPROTO, fl__frame_decode_meta(&h, buf, &out, why, sizeof why));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* metadata rules */
        FL_TEST(test_truncated_strings_are_a_protocol_error),
        FL_TEST(test_trailing_metadata_bytes_are_a_protocol_error),
        FL_TEST(test_invalid_endpoint_ids_are_a_protocol_error),
        FL_TEST(test_error_with_code_0_is_a_protocol_error),
        FL_TEST(test_error_message_over_1024_bytes_is_a_protocol_error),
        FL_TEST(test_error_message_over_1024_bytes_is_cut_there_on_encode),
        FL_TEST(test_hello_max_frame_under_1024_is_a_protocol_error),
        FL_TEST(test_the_deadline_ends_the_invoke_metadata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
