/*
 * wildcard_connect_test.c - endpoint id patterns in addresses (issue 15),
 * as Flink's TaskManager finds ".../resourcemanager_*": fl_rpc_connect to
 * fling://local/<pattern> or fling.tcp://<host>:<port>/<pattern> binds the
 * gateway to the newest live endpoint whose id matches, started or not;
 * fl_rpc_gateway_address is that endpoint's address; once it terminates
 * the gateway's calls fail FL_EUNREACHABLE and a new connect with the
 * pattern finds the successor. Over both transports (remotely the server
 * resolves the pattern and its CONNECTED names the id).
 */
#include "rpc_fixture.h"

#define PREFIX "Could not connect to rpc endpoint under address "

/* Probe through gw must answer from the endpoint `id`. */
static void expect_reaches(fl_rpc_gateway_t *gw, const char *id)
{
    int bits = probe_bits(gw, id);
    assert_true(bits & PROBE_RUNNING);
}

/* A gateway from svc's caller to the pattern's address on svc, which must
 * be the address of endpoint `id`. */
static fl_rpc_gateway_t *connect_pattern(fl_rpc_service_t *svc,
                                         const char *pattern, const char *id,
                                         const fl_fencing_token_t *tok)
{
    fl_rpc_gateway_t *gw =
        gw_connect(cli_of(svc), tep_address(svc, pattern).s, TG, tok);
    assert_string_equal(tep_address(svc, id).s, fl_rpc_gateway_address(gw));
    assert_string_equal(tran_hostname(), fl_rpc_gateway_hostname(gw));
    return gw;
}

/* A connect from svc's caller to the pattern's address on svc fails with
 * code and the message `why`, after PREFIX "<address>: " for FL_ECONNECT
 * (a handshake refusal names no address). */
static void expect_connect_fails(fl_rpc_service_t *svc, const char *pattern,
                                 int code, const char *why)
{
    fx_addr_t at = tep_address(svc, pattern);
    char msg[FL_FUTURE_MESSAGE_MAX], want[FL_FUTURE_MESSAGE_MAX];
    assert_fl(code, gw_connect_error(cli_of(svc), at.s, TG, msg, sizeof msg));
    if (code == FL_ECONNECT)
        snprintf(want, sizeof want, PREFIX "%s: %s", at.s, why);
    else
        snprintf(want, sizeof want, "%s", why);
    assert_string_equal(want, msg);
}

static void test_a_pattern_connects_to_the_one_matching_endpoint(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t s1, s2, s3;
    tep_init(&s1);
    tep_init(&s2);
    tep_init(&s3);
    fl_rpc_endpoint_t *rm =
        tep_create_started(svc, "resourcemanager_0", &s1, NULL);
    fl_rpc_endpoint_t *a = tep_create_started(svc, "dispatcher", &s2, NULL);
    /* Created after the match, matching nothing: not a candidate. */
    fl_rpc_endpoint_t *b = tep_create_started(svc, "resource", &s3, NULL);

    fl_rpc_gateway_t *gw =
        connect_pattern(svc, "resourcemanager_*", "resourcemanager_0", NULL);
    expect_reaches(gw, "resourcemanager_0");
    expect_echo(gw, "through a pattern", 3);
    /* A * anywhere. */
    fl_rpc_gateway_t *mid =
        connect_pattern(svc, "dis*cher", "dispatcher", NULL);
    expect_reaches(mid, "dispatcher");
    fl_rpc_gateway_t *lead =
        connect_pattern(svc, "*_0", "resourcemanager_0", NULL);
    expect_reaches(lead, "resourcemanager_0");

    fl_rpc_gateway_free(gw);
    fl_rpc_gateway_free(mid);
    fl_rpc_gateway_free(lead);
    tep_end(rm);
    tep_end(a);
    tep_end(b);
    svc_end(svc);
}

/* Several match: the newest, the one created last, started or not (a new
 * leader is created, then started: connecting to it early gives a gateway
 * whose calls fail FL_ENOTSTARTED until it is). */
static void test_several_matches_give_the_newest_started_or_not(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t s1, s2, s3;
    tep_init(&s1);
    tep_init(&s2);
    tep_init(&s3);
    fl_rpc_endpoint_t *e1 = tep_create_started(svc, "rm_b", &s1, NULL);
    fl_rpc_endpoint_t *e2 = tep_create_started(svc, "rm_a", &s2, NULL);

    fl_rpc_gateway_t *gw = connect_pattern(svc, "rm_*", "rm_a", NULL);
    expect_reaches(gw, "rm_a");

    fl_rpc_endpoint_t *e3 = tep_create(svc, "rm_c", &s3, NULL);
    fl_rpc_gateway_t *newest = connect_pattern(svc, "rm_*", "rm_c", NULL);
    assert_fl(FL_ENOTSTARTED, echo_code(newest));
    tep_start(e3, &s3);
    expect_reaches(newest, "rm_c");
    /* The older gateway stays bound to its endpoint. */
    expect_reaches(gw, "rm_a");

    fl_rpc_gateway_free(gw);
    fl_rpc_gateway_free(newest);
    tep_end(e1);
    tep_end(e2);
    tep_end(e3);
    svc_end(svc);
}

/* OtherGateway only: a match that lacks TestGateway. */
static void og_ping(Fltest__OtherGateway_Service *svc, const Fltest__Empty *in,
                    Fltest__Empty_Closure closure, void *closure_data)
{
    (void)svc;
    (void)in;
    Fltest__Empty e = FLTEST__EMPTY__INIT;
    closure(&e, closure_data);
}

static Fltest__OtherGateway_Service other_impl =
    FLTEST__OTHER_GATEWAY__INIT(og_);

/* The newest match that implements the gateway wins: a newer match of
 * another service is passed over; with only such matches the connect
 * fails FL_EHANDSHAKE. */
static void test_a_pattern_passes_over_matches_of_another_gateway(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_t *rm = tep_create_started(svc, "rm_1", &st, NULL);
    static ProtobufCService *const other[1] = {&other_impl.base};
    fl_rpc_endpoint_opts_t o = {
        .id = "rm_stats", .services = other, .nservices = 1};
    fl_rpc_endpoint_t *stats = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(svc, &o, &stats));
    assert_fl_ok(fl_rpc_endpoint_start(stats));

    fl_rpc_gateway_t *gw = connect_pattern(svc, "rm_*", "rm_1", NULL);
    expect_reaches(gw, "rm_1");
    fl_rpc_gateway_free(gw);

    expect_connect_fails(
        svc, "rm_s*", FL_EHANDSHAKE,
        "The rpc endpoint does not support the gateway fltest.TestGateway.");

    fl_future_release(fl_rpc_endpoint_close(stats));
    fl_rpc_endpoint_free(stats);
    tep_end(rm);
    svc_end(svc);
}

/* A call through a pattern gateway that times out names the endpoint it
 * is bound to, not the pattern. */
static void test_a_timeout_through_a_pattern_names_the_endpoint(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_t *rm = tep_create_started(svc, "rm_7", &st, NULL);
    fl_rpc_gateway_t *gw = connect_pattern(svc, "rm_*", "rm_7", NULL);

    fl_test_latch_t *parked = fl_test_latch_alloc(1);
    st.blocked = parked;
    Fltest__EchoRequest req = echo_req("wait", 1);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_call(gw, M_BLOCK, &req.base, 50, &f));
    wait_latch(parked);
    st.blocked = NULL;
    fl_test_latch_free(parked);
    assert_fl(FL_ETIMEDOUT, fl_test_future_code(f));
    char want[512];
    snprintf(want, sizeof want,
             "Invocation of fltest.TestGateway.Block on %s timed out after "
             "50 ms%s",
             tep_address(svc, "rm_7").s, fx_remote ? " (request sent)" : "");
    assert_string_equal(want, fl_future_message(f));
    fl_future_release(f);

    tep_release_parked(&st, "late", 1);
    fl_rpc_gateway_free(gw);
    tep_end(rm);
    svc_end(svc);
}

static void test_no_match_fails_econnect_naming_what_there_is(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_t *a = tep_create(svc, "beta", &st, NULL);
    fl_rpc_endpoint_t *b = tep_create(svc, "alpha", &st, NULL);
    expect_connect_fails(
        svc, "rm_*", FL_ECONNECT,
        fx_remote ? "no endpoint of the service matches 'rm_*'; it has 2 "
                    "endpoints (ids are not disclosed to remote callers)"
                  : "no endpoint of the service matches 'rm_*'; its 2 "
                    "endpoints are alpha, beta");
    fl_rpc_endpoint_free(a);
    fl_rpc_endpoint_free(b);
    svc_end(svc);
}

/* "*" alone would bind to whatever was created last: refused before
 * anything is sent. */
static void test_a_pattern_of_star_alone_is_refused(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_t *ep = tep_create(svc, "any", &st, NULL);
    expect_connect_fails(svc, "*", FL_ECONNECT,
                         "the pattern '*' would match any endpoint; name a "
                         "part of the id, as in resourcemanager_*");
    fl_rpc_endpoint_free(ep);
    svc_end(svc);
}

/* The gateway is bound to the endpoint it found: when that terminates its
 * calls fail FL_EUNREACHABLE, also once a successor takes the same id; a
 * new connect with the pattern finds the successor. */
static void
test_the_bound_endpoint_ends_then_a_reconnect_finds_the_new(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t s1, s2, s3;
    tep_init(&s1);
    tep_init(&s2);
    tep_init(&s3);
    fl_rpc_endpoint_t *old = tep_create_started(svc, "leader_1", &s1, NULL);
    fl_rpc_gateway_t *gw = connect_pattern(svc, "leader_*", "leader_1", NULL);
    expect_reaches(gw, "leader_1");

    tep_end(old);
    assert_fl(FL_EUNREACHABLE, echo_code(gw));

    fl_rpc_endpoint_t *next = tep_create_started(svc, "leader_2", &s2, NULL);
    assert_fl(FL_EUNREACHABLE, echo_code(gw));
    fl_rpc_gateway_t *again =
        connect_pattern(svc, "leader_*", "leader_2", NULL);
    expect_reaches(again, "leader_2");

    /* A successor under the old id is not the old gateway's either. */
    fl_rpc_endpoint_t *same = tep_create_started(svc, "leader_1", &s3, NULL);
    assert_fl(FL_EUNREACHABLE, echo_code(gw));
    fl_rpc_gateway_t *third =
        connect_pattern(svc, "leader_*", "leader_1", NULL);
    expect_reaches(third, "leader_1");

    fl_rpc_gateway_free(gw);
    fl_rpc_gateway_free(again);
    fl_rpc_gateway_free(third);
    tep_end(next);
    tep_end(same);
    svc_end(svc);
}

/* A fenced gateway through a pattern: the token is checked on each call,
 * as through the id. */
static void test_a_fenced_gateway_through_a_pattern_is_fenced(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_fencing_token_t right = token_of(0x11), wrong = token_of(0x22);
    fl_rpc_endpoint_t *ep = tep_create_started(svc, "jobmaster_7", &st, &right);

    fl_rpc_gateway_t *ok =
        connect_pattern(svc, "jobmaster_*", "jobmaster_7", &right);
    expect_echo(ok, "fenced", 1);
    fl_fencing_token_t got;
    assert_fl_ok(fl_rpc_gateway_fencing_token(ok, &got));
    assert_memory_equal(right.bytes, got.bytes, sizeof got.bytes);
    fl_rpc_gateway_t *bad =
        connect_pattern(svc, "jobmaster_*", "jobmaster_7", &wrong);
    assert_fl(FL_EFENCING, echo_code(bad));

    fl_rpc_gateway_free(ok);
    fl_rpc_gateway_free(bad);
    tep_end(ep);
    svc_end(svc);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_a_pattern_connects_to_the_one_matching_endpoint),
        FL_TEST(test_several_matches_give_the_newest_started_or_not),
        FL_TEST(test_a_pattern_passes_over_matches_of_another_gateway),
        FL_TEST(test_a_timeout_through_a_pattern_names_the_endpoint),
        FL_TEST(test_no_match_fails_econnect_naming_what_there_is),
        FL_TEST(test_a_pattern_of_star_alone_is_refused),
        FL_TEST(test_the_bound_endpoint_ends_then_a_reconnect_finds_the_new),
        FL_TEST(test_a_fenced_gateway_through_a_pattern_is_fenced),
    };
    return FX_RUN(argc, argv, tests);
}
