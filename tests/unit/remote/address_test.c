/*
 * address_test - endpoint addresses and port ranges
 * (docs/wire-protocol.md, "Addresses"; docs/contract.md R1, R2).
 */
#include "fl_test.h"

#include "remote/address.h"

#include <stdio.h>
#include <string.h>

static void expect_tcp(const char *s, const char *host, unsigned port,
                       const char *ep)
{
    fl__address_t a;
    char why[256] = "";
    int rc = fl__address_parse(s, &a, why, sizeof why);
    if (rc != FL_OK)
        fail_msg("%s: %s (%s)", s, fl_err_name(rc), why);
    assert_int_equal(FL__ADDR_TCP, a.kind);
    assert_string_equal(host, a.host);
    assert_int_equal(port, a.port);
    assert_string_equal(ep, a.endpoint);
}

/* s must be refused with exactly this reason. */
static void expect_bad(const char *s, const char *reason)
{
    fl__address_t a;
    char why[1024] = "";
    int rc = fl__address_parse(s, &a, why, sizeof why);
    if (rc != FL_EINVAL)
        fail_msg("\"%s\": expected FL_EINVAL, got %s", s, fl_err_name(rc));
    if (strcmp(why, reason) != 0)
        fail_msg("\"%s\":\n  reason \"%s\"\n  want   \"%s\"", s, why, reason);
}

/* The end of every reason about a scheme. */
#define FORMS                                                                  \
    "fling://local/<id> for an endpoint in this process, "                     \
    "fling.tcp://<host>:<port>/<id> for one in another process"
#define IDS "ids are 1..200 bytes of [A-Za-z0-9_.-]"

static void test_tcp_addresses_parse_into_host_port_and_endpoint(void **st)
{
    expect_tcp("fling.tcp://127.0.0.1:6123/resourcemanager_0", "127.0.0.1",
               6123, "resourcemanager_0");
    expect_tcp("fling.tcp://jobmanager.example-1:1/a", "jobmanager.example-1",
               1, "a");
    expect_tcp("fling.tcp://h:65535/x.y-z_1", "h", 65535, "x.y-z_1");
}

static void test_ipv6_hosts_are_bracketed_and_stored_without_brackets(void **st)
{
    expect_tcp("fling.tcp://[::1]:6123/rm", "::1", 6123, "rm");
    expect_tcp("fling.tcp://[fe80::1:2]:80/e", "fe80::1:2", 80, "e");
}

static void test_local_addresses_parse(void **st)
{
    fl__address_t a;
    assert_fl_ok(fl__address_parse("fling://local/hello", &a, NULL, 0));
    assert_int_equal(FL__ADDR_LOCAL, a.kind);
    assert_string_equal("hello", a.endpoint);
}

static void test_malformed_addresses_are_refused_with_the_reason(void **st)
{
    expect_bad("pekko.tcp://flink@h:6123/user/rpc/x",
               "unknown scheme 'pekko.tcp://'; addresses are " FORMS);
    expect_bad("fling.tcp://h/x", "no :<port> after the host 'h' "
                                  "(fling.tcp://<host>:<port>/<id>)");
    expect_bad("fling.tcp://h:6123",
               "no /<id> after the port (fling.tcp://<host>:<port>/<id>)");
    expect_bad("fling.tcp://h:0/x", "the port must be 1..65535 (got '0')");
    expect_bad("fling.tcp://h:65536/x",
               "the port must be 1..65535 (got '65536')");
    expect_bad("fling.tcp://h:12a/x", "the port must be 1..65535 (got '12a')");
    expect_bad("fling.tcp://h:/x", "the port must be 1..65535 (got '')");
    expect_bad("fling.tcp://h:123456789012345678901234/x",
               "the port must be 1..65535 (got '12345678901234567890')");
    expect_bad("fling.tcp://:6123/x",
               "the host is empty (fling.tcp://<host>:<port>/<id>)");
    expect_bad("fling.tcp://h h:6123/x",
               "the host 'h h' has a bad character ' ' (a host is a DNS name "
               "or IPv4 address of [A-Za-z0-9._-], or an IPv6 address in [])");
    expect_bad("fling.tcp://h\th:6123/x",
               "the host 'h\th' has a bad character 0x09 (a host is a DNS "
               "name or IPv4 address of [A-Za-z0-9._-], or an IPv6 address in "
               "[])");
    expect_bad("fling.tcp://[::1:6123/x", "the IPv6 host has no closing ] "
                                          "(fling.tcp://[<IPv6>]:<port>/<id>)");
    expect_bad("fling.tcp://[::g]:6123/x",
               "bad IPv6 host '::g': only hex digits, : and . go between [ "
               "and ]");
    expect_bad("fling.tcp://[::1]6123/x", "no :<port> after the host '[::1]' "
                                          "(fling.tcp://<host>:<port>/<id>)");
    expect_bad("fling.tcp://h:6123/",
               "no endpoint id after the port (" IDS ")");
    expect_bad("fling.tcp://h:6123/a/b",
               "the endpoint id 'a/b' has a bad character '/' (" IDS
               "; a pattern may add *)");
    expect_bad("fling://local/",
               "no endpoint id after fling://local/ (" IDS ")");
    expect_bad("fling://local/with space",
               "the endpoint id 'with space' has a bad character ' ' (" IDS
               "; a pattern may add *)");
    assert_fl(FL_EINVAL, fl__address_parse(NULL, NULL, NULL, 0));
}

/* The three mistakes issue 15 met, each with what to write instead. */
static void test_a_missing_or_wrong_scheme_says_what_to_write(void **st)
{
    expect_bad("127.0.0.1:6123/greeter",
               "it has no scheme; did you mean "
               "fling.tcp://127.0.0.1:6123/greeter? Addresses are " FORMS);
    expect_bad("greeter", "it has no scheme; did you mean "
                          "fling://local/greeter? Addresses are " FORMS);
    expect_bad("", "it has no scheme; did you mean fling://local/? Addresses "
                   "are " FORMS);
    expect_bad("fling://otherhost/greeter",
               "fling:// addresses name an endpoint in this process and "
               "their host is always 'local' (got 'otherhost'); write "
               "fling://local/greeter, or fling.tcp://otherhost:<port>/greeter "
               "for an endpoint in another process");
    expect_bad("fling://greeter", "fling:// addresses are fling://local/<id>; "
                                  "did you mean fling://local/greeter?");
    expect_bad("fling:///greeter", "fling:// addresses are fling://local/<id>; "
                                   "did you mean fling://local/greeter?");
    expect_bad("FLING.TCP://h:1/x",
               "unknown scheme 'FLING.TCP://'; addresses are " FORMS);
    expect_bad("fling.tcp:/h:1/x", "its scheme is misspelt; addresses are "
                                   "" FORMS);
    expect_bad("fling:/local/x", "its scheme is misspelt; addresses are "
                                 "" FORMS);
    expect_bad("fling_worker", "it has no scheme; did you mean "
                               "fling://local/fling_worker? Addresses are "
                               "" FORMS);
}

static void test_patterns_parse_and_star_alone_is_refused(void **st)
{
    fl__address_t a;
    assert_fl_ok(fl__address_parse("fling://local/rm_*", &a, NULL, 0));
    assert_string_equal("rm_*", a.endpoint);
    assert_true(a.pattern);
    expect_tcp("fling.tcp://h:1/*_leader", "h", 1, "*_leader");
    assert_fl_ok(fl__address_parse("fling.tcp://h:1/a*b*c", &a, NULL, 0));
    assert_true(a.pattern);
    assert_fl_ok(fl__address_parse("fling://local/plain", &a, NULL, 0));
    assert_false(a.pattern);
    expect_bad("fling://local/*",
               "the pattern '*' would match any endpoint; name a part of the "
               "id, as in resourcemanager_*");
    expect_bad("fling.tcp://h:1/***",
               "the pattern '***' would match any endpoint; name a part of "
               "the id, as in resourcemanager_*");
    expect_bad("fling://local/rm_?",
               "the endpoint id 'rm_?' has a bad character '?' (" IDS
               "; a pattern may add *)");
}

static void test_id_match_is_a_glob_of_stars(void **st)
{
    const struct {
        const char *pattern, *id;
        bool match;
    } cases[] = {
        {"resourcemanager_*", "resourcemanager_0", true},
        {"resourcemanager_*", "resourcemanager_", true},
        {"resourcemanager_*", "resourcemanager", false},
        {"resourcemanager_*", "xresourcemanager_0", false},
        {"*_0", "resourcemanager_0", true},
        {"*_0", "resourcemanager_01", false},
        {"a*b*c", "abc", true},
        {"a*b*c", "a-b-b-c", true},
        {"a*b*c", "a-b-c-d", false},
        {"a*a*a", "aaaa", true},
        {"a*a*a", "aa", false},
        {"*x*", "x", true},
        {"*x*", "abc", false},
        {"exact", "exact", true},
        {"exact", "exact1", false},
        {"exact", "exac", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (fl__id_match(cases[i].pattern, cases[i].id) != cases[i].match)
            fail_msg("'%s' against '%s': want %s", cases[i].pattern,
                     cases[i].id, cases[i].match ? "a match" : "none");
}

static void test_hosts_and_ids_at_their_limits(void **st)
{
    char s[600], host[FL__HOST_MAX + 2], id[FL__ID_MAX + 2];
    memset(host, 'h', sizeof host);
    memset(id, 'i', sizeof id);
    host[FL__HOST_MAX] = '\0';
    id[FL__ID_MAX] = '\0';
    snprintf(s, sizeof s, "fling.tcp://%s:1/%s", host, id);
    expect_tcp(s, host, 1, id);
    host[FL__HOST_MAX] = 'h';
    host[FL__HOST_MAX + 1] = '\0';
    snprintf(s, sizeof s, "fling.tcp://%s:1/x", host);
    expect_bad(s, "the host is 254 bytes long, more than the 253 allowed");
    id[FL__ID_MAX] = 'i';
    id[FL__ID_MAX + 1] = '\0';
    snprintf(s, sizeof s, "fling://local/%s", id);
    expect_bad(s, "the endpoint id is 201 bytes long, more than the 200 "
                  "allowed");
    char longest[1100];
    memset(longest, 'a', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    expect_bad(longest, "the address is longer than 1023 bytes");
}

static void test_format_round_trips_every_kind(void **st)
{
    const char *in[] = {"fling.tcp://127.0.0.1:6123/resourcemanager_0",
                        "fling.tcp://[::1]:80/e", "fling://local/hello",
                        "fling.tcp://h:1/resourcemanager_*"};
    for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
        fl__address_t a;
        char out[300];
        assert_fl_ok(fl__address_parse(in[i], &a, NULL, 0));
        assert_fl_ok(fl__address_format(&a, out, sizeof out));
        assert_string_equal(in[i], out);
        assert_fl(FL_ELIMIT, fl__address_format(&a, out, 5));
    }
    fl__address_t bad = {.kind = FL__ADDR_TCP};
    char out[64];
    assert_fl(FL_EINVAL, fl__address_format(&bad, out, sizeof out));
}

static void expect_ports(const char *s, const unsigned *ports, uint32_t n)
{
    fl__port_range_t r;
    char why[256] = "";
    int rc = fl__port_range_parse(s, &r, why, sizeof why);
    if (rc != FL_OK)
        fail_msg("%s: %s (%s)", s, fl_err_name(rc), why);
    assert_int_equal(n, fl__port_range_count(&r));
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(ports[i], fl__port_range_at(&r, i));
}

static void test_port_ranges_list_ports_in_trying_order(void **st)
{
    const unsigned zero[] = {0}, one[] = {6123}, list[] = {6123, 6124},
                   range[] = {50100, 50101, 50102},
                   mix[] = {7000, 50100, 50101, 6123};
    expect_ports("0", zero, 1);
    expect_ports("6123", one, 1);
    expect_ports("6123,6124", list, 2);
    expect_ports("50100-50102", range, 3);
    expect_ports("7000,50100-50101,6123", mix, 4);
    fl__port_range_t r;
    assert_fl_ok(fl__port_range_parse("1-65535", &r, NULL, 0));
    assert_int_equal(65535, fl__port_range_count(&r));
    assert_int_equal(65535, fl__port_range_at(&r, 65534));
}

static void test_bad_port_ranges_are_refused_naming_the_definition(void **st)
{
    const char *bad[] = {"",
                         "abc",
                         "65536",
                         "6124-6123",
                         "0,6123",
                         "0-10",
                         "6123,",
                         ",6123",
                         "6123,,1",
                         "-5",
                         "5-",
                         "1-2-3",
                         "123456",
                         " 6123",
                         ("1,2,3,4,5,6,7,8,9,10,11,12,"
                          "13,14,15,16,17")};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fl__port_range_t r;
        char why[256] = "";
        int rc = fl__port_range_parse(bad[i], &r, why, sizeof why);
        if (rc != FL_EINVAL)
            fail_msg("\"%s\": expected FL_EINVAL, got %s", bad[i],
                     fl_err_name(rc));
        if (strncmp(why, "Invalid port range definition: ", 31) != 0)
            fail_msg("\"%s\": reason \"%s\"", bad[i], why);
        assert_int_equal(0, r.n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_tcp_addresses_parse_into_host_port_and_endpoint),
        FL_TEST(test_ipv6_hosts_are_bracketed_and_stored_without_brackets),
        FL_TEST(test_local_addresses_parse),
        FL_TEST(test_malformed_addresses_are_refused_with_the_reason),
        FL_TEST(test_a_missing_or_wrong_scheme_says_what_to_write),
        FL_TEST(test_patterns_parse_and_star_alone_is_refused),
        FL_TEST(test_id_match_is_a_glob_of_stars),
        FL_TEST(test_hosts_and_ids_at_their_limits),
        FL_TEST(test_format_round_trips_every_kind),
        FL_TEST(test_port_ranges_list_ports_in_trying_order),
        FL_TEST(test_bad_port_ranges_are_refused_naming_the_definition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
