/*
 * frame_hello_test.c - HELLO's INCARNATION flag (src/remote/frame.c,
 * docs/wire-protocol.md "Kinds"): the 8-byte incarnation after the
 * service name, encoded and decoded exactly, refused when cut or on
 * another kind.
 */
#include "fl_test.h"

#include "remote/frame.h"

#include <string.h>

#define WHY_LEN 256

/* HELLO (max 4096, name "svc") with flags: its metadata into meta. */
static size_t hello_meta(uint16_t flags, uint64_t inc, uint8_t *meta,
                         size_t cap)
{
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.max_frame = 4096;
    m.service_name = (fl__str_t){"svc", 3};
    m.incarnation = inc;
    return fl__frame_encode_meta(FL__K_HELLO, flags, &m, meta, cap);
}

static void test_the_incarnation_follows_the_name(void **state)
{
    (void)state;
    uint8_t meta[64];
    const uint64_t inc = 0x0123456789abcdefull;
    size_t n = hello_meta(FL__F_INCARNATION, inc, meta, sizeof meta);
    assert_int_equal(4 + 2 + 3 + 8, n);
    static const uint8_t want[] = {0x00, 0x00, 0x10, 0x00, 0x00, 0x03,
                                   's',  'v',  'c',  0x01, 0x23, 0x45,
                                   0x67, 0x89, 0xab, 0xcd, 0xef};
    assert_memory_equal(want, meta, sizeof want);
    fl__frame_hdr_t h = {
        FL__PROTO_VERSION, FL__K_HELLO, FL__F_INCARNATION, 0, (uint32_t)n, 0};
    fl__frame_meta_t m;
    char why[WHY_LEN] = "";
    assert_fl_ok(fl__frame_decode_meta(&h, meta, &m, why, sizeof why));
    assert_true(m.incarnation == inc);
    assert_int_equal(4096, m.max_frame);
    /* Without the flag: no incarnation, 0. */
    n = hello_meta(0, inc, meta, sizeof meta);
    assert_int_equal(4 + 2 + 3, n);
    h.flags = 0;
    h.meta_len = (uint32_t)n;
    assert_fl_ok(fl__frame_decode_meta(&h, meta, &m, why, sizeof why));
    assert_true(m.incarnation == 0);
}

static void test_a_cut_incarnation_is_a_protocol_error(void **state)
{
    (void)state;
    uint8_t meta[64];
    size_t n = hello_meta(FL__F_INCARNATION, 42, meta, sizeof meta);
    fl__frame_hdr_t h = {FL__PROTO_VERSION, FL__K_HELLO,
                         FL__F_INCARNATION, 0,
                         (uint32_t)(n - 3), 0};
    fl__frame_meta_t m;
    char why[WHY_LEN] = "";
    assert_fl(FL_EPROTO, fl__frame_decode_meta(&h, meta, &m, why, sizeof why));
    assert_string_equal("HELLO metadata truncated (14 bytes)", why);
}

static void test_the_flag_is_hellos_only(void **state)
{
    (void)state;
    uint8_t hdr[FL__FRAME_HDR];
    fl__frame_hdr_t h = {
        FL__PROTO_VERSION, FL__K_HELLO, FL__F_INCARNATION, 0, 4 + 2 + 8, 0};
    fl__frame_encode_hdr(hdr, &h);
    fl__frame_hdr_t out;
    char why[WHY_LEN] = "";
    assert_fl_ok(
        fl__frame_decode_hdr(hdr, sizeof hdr, 1u << 20, &out, why, sizeof why));
    assert_int_equal(FL__F_INCARNATION, out.flags);
    /* Its smallest metadata is 8 bytes more. */
    h.meta_len = 4 + 2 + 7;
    fl__frame_encode_hdr(hdr, &h);
    assert_fl(FL_EPROTO, fl__frame_decode_hdr(hdr, sizeof hdr, 1u << 20, &out,
                                              why, sizeof why));
    assert_string_equal("HELLO frame with 13 bytes of metadata (want at least "
                        "14)",
                        why);
    h = (fl__frame_hdr_t){
        FL__PROTO_VERSION, FL__K_PING, FL__F_INCARNATION, 0, 0, 0};
    fl__frame_encode_hdr(hdr, &h);
    assert_fl(FL_EPROTO, fl__frame_decode_hdr(hdr, sizeof hdr, 1u << 20, &out,
                                              why, sizeof why));
    assert_string_equal("PING frame with unknown flags 0x0010", why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_incarnation_follows_the_name),
        cmocka_unit_test(test_a_cut_incarnation_is_a_protocol_error),
        cmocka_unit_test(test_the_flag_is_hellos_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
