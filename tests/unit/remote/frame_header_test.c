/*
 * frame_header_test.c - every MUST rule of the frame header
 * (docs/wire-protocol.md) with its error code, and the size limits in
 * 64 bits.
 */
#include "frame_fixture.h"

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
    const uint8_t kinds[] = {0, 11, 255};
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
    for (unsigned bit = 4; bit < 16; bit++) {
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_the_instance_flag_on_other_kinds_is_a_protocol_error),
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
