/*
 * pbdepth_test - the nesting-depth bound on packed protobuf messages taken
 * from the wire (protobuf-c's decoder has none).
 */
#include "fl_test.h"

#include "remote/pbdepth.h"

#include "nesting.pb-c.h"

#include <stdlib.h>
#include <string.h>

/* Pack a chain of `depth` Nodes (depth 1 = one Node); caller frees. */
static uint8_t *pack_chain(unsigned depth, size_t *len)
{
    Fltest__Nesting__Node *nodes = calloc(depth, sizeof *nodes);
    assert_non_null(nodes);
    for (unsigned i = 0; i < depth; i++) {
        fltest__nesting__node__init(&nodes[i]);
        nodes[i].value = i;
        nodes[i].text = (char *)"x";
        if (i + 1 < depth)
            nodes[i].child = &nodes[i + 1];
    }
    *len = fltest__nesting__node__get_packed_size(&nodes[0]);
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    fltest__nesting__node__pack(&nodes[0], buf);
    free(nodes);
    return buf;
}

static void test_messages_up_to_the_limit_pass(void **st)
{
    for (unsigned depth = 1; depth <= 8; depth++) {
        size_t len;
        uint8_t *buf = pack_chain(depth, &len);
        assert_fl_ok(fl__pb_check_depth(&fltest__nesting__node__descriptor, buf,
                                        len, 8, NULL, 0));
        free(buf);
    }
}

static void test_one_level_too_deep_is_refused_with_edecode(void **st)
{
    size_t len;
    uint8_t *buf = pack_chain(9, &len);
    char why[128] = "";
    assert_fl(FL_EDECODE, fl__pb_check_depth(&fltest__nesting__node__descriptor,
                                             buf, len, 8, why, sizeof why));
    assert_non_null(strstr(why, "deeper than 8 levels"));
    free(buf);
}

/* Wrap buf[0..len) as field 1 of a new outer message, in place at the
 * front of out (which has room); returns the new length. */
static size_t wrap(uint8_t *out, const uint8_t *inner, size_t len)
{
    uint8_t hdr[11];
    size_t h = 0;
    hdr[h++] = 0x0a; /* field 1, wire type 2 */
    size_t v = len;
    do {
        hdr[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    memmove(out + h, inner, len);
    memcpy(out, hdr, h);
    return h + len;
}

static void
test_hostile_deep_nesting_is_refused_without_deep_recursion(void **st)
{
    /* 10,000 well-formed levels, far past the limit: the walk stops at
     * FL__PB_MAX_DEPTH (so it cannot exhaust the stack) and says why. */
    enum { LEVELS = 10000 };
    uint8_t *buf = calloc(LEVELS * 4 + 16, 1);
    assert_non_null(buf);
    size_t len = 0;
    for (unsigned i = 0; i < LEVELS; i++)
        len = wrap(buf, buf, len);
    char why[128] = "";
    assert_fl(FL_EDECODE,
              fl__pb_check_depth(&fltest__nesting__node__descriptor, buf, len,
                                 FL__PB_MAX_DEPTH, why, sizeof why));
    assert_non_null(strstr(why, "deeper than 64 levels"));
    /* The same bytes cut to 64 levels pass. */
    size_t len64 = 0;
    for (unsigned i = 0; i < 63; i++)
        len64 = wrap(buf, buf, len64);
    assert_fl_ok(fl__pb_check_depth(&fltest__nesting__node__descriptor, buf,
                                    len64, FL__PB_MAX_DEPTH, NULL, 0));
    free(buf);
}

static void test_broken_wire_format_is_refused(void **st)
{
    const ProtobufCMessageDescriptor *d = &fltest__nesting__node__descriptor;
    const uint8_t past_end[] = {0x0a, 0x05, 0x10, 0x01};
    const uint8_t long_varint[] = {0x10, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    const uint8_t group[] = {0x0b};                 /* field 1, start group */
    const uint8_t truncated_fixed[] = {0x11, 1, 2}; /* field 2, fixed64 */
    const uint8_t truncated_key[] = {0x80};
    assert_fl(FL_EDECODE,
              fl__pb_check_depth(d, past_end, sizeof past_end, 8, NULL, 0));
    assert_fl(FL_EDECODE, fl__pb_check_depth(d, long_varint, sizeof long_varint,
                                             8, NULL, 0));
    assert_fl(FL_EDECODE,
              fl__pb_check_depth(d, group, sizeof group, 8, NULL, 0));
    assert_fl(FL_EDECODE,
              fl__pb_check_depth(d, truncated_fixed, sizeof truncated_fixed, 8,
                                 NULL, 0));
    assert_fl(FL_EDECODE, fl__pb_check_depth(d, truncated_key,
                                             sizeof truncated_key, 8, NULL, 0));
}

static void test_unknown_fields_and_empty_messages_pass(void **st)
{
    const ProtobufCMessageDescriptor *d = &fltest__nesting__node__descriptor;
    /* field 99 (length-delimited, unknown) and field 2 as a varint */
    const uint8_t unknown[] = {0x9a, 0x06, 0x02, 0x0a, 0x00, 0x10, 0x05};
    assert_fl_ok(fl__pb_check_depth(d, unknown, sizeof unknown, 8, NULL, 0));
    assert_fl_ok(fl__pb_check_depth(d, NULL, 0, 8, NULL, 0));
    assert_fl(FL_EINVAL, fl__pb_check_depth(NULL, NULL, 0, 8, NULL, 0));
}

static void test_repeated_submessages_count_one_level_each(void **st)
{
    Fltest__Nesting__Node root = FLTEST__NESTING__NODE__INIT,
                          kids[3] = {FLTEST__NESTING__NODE__INIT,
                                     FLTEST__NESTING__NODE__INIT,
                                     FLTEST__NESTING__NODE__INIT};
    Fltest__Nesting__Node *more[3] = {&kids[0], &kids[1], &kids[2]};
    root.n_more = 3;
    root.more = more;
    uint8_t buf[64];
    size_t len = fltest__nesting__node__pack(&root, buf);
    assert_fl_ok(fl__pb_check_depth(&fltest__nesting__node__descriptor, buf,
                                    len, 2, NULL, 0));
    assert_fl(FL_EDECODE, fl__pb_check_depth(&fltest__nesting__node__descriptor,
                                             buf, len, 1, NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_messages_up_to_the_limit_pass),
        FL_TEST(test_one_level_too_deep_is_refused_with_edecode),
        FL_TEST(test_hostile_deep_nesting_is_refused_without_deep_recursion),
        FL_TEST(test_broken_wire_format_is_refused),
        FL_TEST(test_unknown_fields_and_empty_messages_pass),
        FL_TEST(test_repeated_submessages_count_one_level_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
