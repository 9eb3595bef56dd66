/*
 * connect_errors_test.c - fl_rpc_connect says why it failed (issue 15):
 * an unknown id names what the service has instead (locally its ids, to a
 * remote caller their number only), a malformed address says what to
 * write, the remote scheme a service does not speak (TLS or plaintext) is
 * refused, and refused arguments set fl_rpc_last_message. Every message is
 * asserted whole, over every transport.
 */
#include "rpc_fixture.h"

#define PREFIX "Could not connect to rpc endpoint under address "
/* The remote scheme of this run's services, which the hints name. */
#define RSCHEME (fx_tls ? "fling.ssl://" : "fling.tcp://")
/* How a user writes the two kinds of address (printf: RSCHEME). */
#define FORMS                                                                  \
    "fling://local/<id> for an endpoint in this process, "                     \
    "%s<host>:<port>/<id> for one in another process"
#define IDS "ids are 1..200 bytes of [A-Za-z0-9_.-]"
#define HIDDEN " (ids are not disclosed to remote callers)"

/* Creates (not starts) endpoints with these ids on svc, in this order;
 * their handles go to eps. */
static void create_all(fl_rpc_service_t *svc, const char *const *ids, size_t n,
                       fl_rpc_endpoint_t **eps, tep_t *st)
{
    for (size_t i = 0; i < n; i++)
        eps[i] = tep_create(svc, ids[i], st, NULL);
}

static void free_all(fl_rpc_endpoint_t **eps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fl_rpc_endpoint_free(eps[i]);
}

/* Connecting to address from svc's caller must fail FL_ECONNECT with
 * exactly want. */
static void expect_connect_msg(fl_rpc_service_t *svc, const char *address,
                               const char *want)
{
    char msg[FL_FUTURE_MESSAGE_MAX];
    int rc = gw_connect_error(cli_of(svc), address, TG, msg, sizeof msg);
    if (rc != FL_ECONNECT)
        fail_msg("%s: expected FL_ECONNECT, got %s (%s)", address,
                 fl_err_name(rc), msg);
    if (strcmp(msg, want) != 0)
        fail_msg("%s:\n  message \"%s\"\n  want    \"%s\"", address, msg, want);
}

/* The message for address, whose id the service lacks: locally `local`,
 * remotely `remote` (each after "<address>: "). */
static void expect_unknown(fl_rpc_service_t *svc, const char *id,
                           const char *local, const char *remote)
{
    fx_addr_t a = tep_address(svc, id);
    char want[FL_FUTURE_MESSAGE_MAX];
    snprintf(want, sizeof want, PREFIX "%s: %s", a.s,
             fx_remote ? remote : local);
    expect_connect_msg(svc, a.s, want);
}

/* ---- an unknown id ---------------------------------------------------- */

static void test_an_unknown_id_names_the_ids_or_their_number(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    const char *ids[] = {"gamma", "alpha", "beta"};
    fl_rpc_endpoint_t *eps[3];
    create_all(svc, ids, 3, eps, &st);

    expect_unknown(svc, "nobody",
                   "the service has no endpoint 'nobody'; its 3 endpoints "
                   "are alpha, beta, gamma",
                   "the service has no endpoint 'nobody'; it has 3 endpoints, "
                   "none matching 'nobody*'" HIDDEN);
    /* A left-out suffix: a remote caller learns that the pattern would
     * find one, not which. */
    expect_unknown(svc, "alph",
                   "the service has no endpoint 'alph'; its 3 endpoints are "
                   "alpha, beta, gamma",
                   "the service has no endpoint 'alph'; it has 3 endpoints, 1 "
                   "matching 'alph*'" HIDDEN);

    free_all(eps, 3);
    svc_end(svc);
}

static void test_one_endpoint_is_named_in_the_singular(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_t *ep = tep_create(svc, "solo", &st, NULL);

    expect_unknown(svc, "s",
                   "the service has no endpoint 's'; its endpoint is solo",
                   "the service has no endpoint 's'; it has 1 endpoint, 1 "
                   "matching 's*'" HIDDEN);

    fl_rpc_endpoint_free(ep);
    svc_end(svc);
}

/* Past FL__RPC_RESOLVE_LIST (8) ids: the first 8 sorted, then the rest
 * counted. They are created out of order. */
static void test_many_ids_are_listed_sorted_then_counted(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    const char *ids[] = {"ep_10", "ep_03", "ep_07", "ep_00", "ep_09", "ep_01",
                         "ep_05", "ep_08", "ep_02", "ep_06", "ep_04"};
    enum { N = sizeof ids / sizeof *ids };
    fl_rpc_endpoint_t *eps[N];
    create_all(svc, ids, N, eps, &st);

    expect_unknown(svc, "nobody",
                   "the service has no endpoint 'nobody'; its 11 endpoints "
                   "are ep_00, ep_01, ep_02, ep_03, ep_04, ep_05, ep_06, "
                   "ep_07 and 3 more",
                   "the service has no endpoint 'nobody'; it has 11 "
                   "endpoints, none matching 'nobody*'" HIDDEN);

    free_all(eps, N);
    svc_end(svc);
}

static void test_a_service_without_endpoints_says_so(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);

    const char *none =
        "the service has no endpoint 'nobody'; it has no endpoints at all";
    expect_unknown(svc, "nobody", none, none);

    svc_end(svc);
}

/* A terminated endpoint is no longer the service's: its id is unknown. */
static void test_a_terminated_endpoint_is_unknown(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_t *keep = tep_create(svc, "keep", &st, NULL);
    tep_end(tep_create_started(svc, "gone", &st, NULL));

    expect_unknown(svc, "gone",
                   "the service has no endpoint 'gone'; its endpoint is keep",
                   "the service has no endpoint 'gone'; it has 1 endpoint, "
                   "none matching 'gone*'" HIDDEN);

    fl_rpc_endpoint_free(keep);
    svc_end(svc);
}

/* ---- malformed addresses (the caller's side, either transport) -------- */

static void test_an_address_without_a_scheme_says_what_to_write(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);

    char want[600];
    snprintf(want, sizeof want,
             PREFIX "127.0.0.1:6123/greeter: it has no scheme; did you mean "
                    "%s127.0.0.1:6123/greeter? Addresses are " FORMS,
             RSCHEME, RSCHEME);
    expect_connect_msg(svc, "127.0.0.1:6123/greeter", want);
    snprintf(want, sizeof want,
             PREFIX "greeter: it has no scheme; did you mean "
                    "fling://local/greeter? Addresses are " FORMS,
             RSCHEME);
    expect_connect_msg(svc, "greeter", want);
    snprintf(want, sizeof want,
             PREFIX "pekko.tcp://flink@h:6123/user/rpc/x: unknown scheme "
                    "'pekko.tcp://'; addresses are " FORMS,
             RSCHEME);
    expect_connect_msg(svc, "pekko.tcp://flink@h:6123/user/rpc/x", want);

    svc_end(svc);
}

static void test_the_local_scheme_with_a_host_says_what_to_write(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);

    char want[600];
    snprintf(want, sizeof want,
             PREFIX "fling://otherhost/greeter: fling:// addresses name an "
                    "endpoint in this process and their host is always "
                    "'local' (got 'otherhost'); write fling://local/greeter, "
                    "or %sotherhost:<port>/greeter for an endpoint in another "
                    "process",
             RSCHEME);
    expect_connect_msg(svc, "fling://otherhost/greeter", want);
    expect_connect_msg(svc, "fling://greeter",
                       PREFIX "fling://greeter: fling:// addresses are "
                              "fling://local/<id>; did you mean "
                              "fling://local/greeter?");

    svc_end(svc);
}

static void test_bad_ids_and_ports_each_say_what_is_wrong(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);

    expect_connect_msg(svc, "fling://local/",
                       PREFIX "fling://local/: no endpoint id after "
                              "fling://local/ (" IDS ")");
    /* Remote addresses in the caller's scheme (tran_scheme: fling.ssl://
     * from a TLS service, which refuses fling.tcp:// before parsing). */
    const char *sch = tran_scheme();
    char address[300], want[600], id[202];
    snprintf(address, sizeof address, "%s127.0.0.1:6123/", sch);
    snprintf(want, sizeof want,
             PREFIX "%s: no endpoint id after the port (" IDS ")", address);
    expect_connect_msg(svc, address, want);
    expect_connect_msg(svc, "fling://local/hello world",
                       PREFIX "fling://local/hello world: the endpoint id "
                              "'hello world' has a bad character ' ' (" IDS
                              "; a pattern may add *)");
    snprintf(address, sizeof address, "%s127.0.0.1:0/x", sch);
    snprintf(want, sizeof want,
             PREFIX "%s: the port must be 1..65535 (got '0')", address);
    expect_connect_msg(svc, address, want);
    snprintf(address, sizeof address, "%s127.0.0.1/x", sch);
    snprintf(want, sizeof want,
             PREFIX "%s: no :<port> after the host '127.0.0.1' "
                    "(%s<host>:<port>/<id>)",
             address, sch);
    expect_connect_msg(svc, address, want);
    memset(id, 'i', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    snprintf(address, sizeof address, "fling://local/%s", id);
    snprintf(want, sizeof want,
             PREFIX "%s: the endpoint id is 201 bytes long, more than the 200 "
                    "allowed",
             address);
    expect_connect_msg(svc, address, want);

    svc_end(svc);
}

/* ---- the other remote scheme ------------------------------------------- */

/* There is no fallback between TLS and plaintext: a TLS service refuses a
 * fling.tcp:// address, a plaintext one (local, tcp) a fling.ssl:// one,
 * at once (FL_EINVAL, the last message saying what to do). */
static void test_the_other_remote_scheme_is_refused_at_once(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    fl_rpc_service_t *cli = cli_of(svc);
    char address[300], want[600];
    snprintf(address, sizeof address, "%s127.0.0.1:6123/greeter",
             fx_tls ? "fling.tcp://" : "fling.ssl://");
    if (fx_tls)
        snprintf(want, sizeof want,
                 PREFIX "%s: this service uses TLS "
                        "(fl_rpc_service_opts_t.tls) and connects to "
                        "fling.ssl:// addresses only; there is no plaintext "
                        "fallback",
                 address);
    else
        snprintf(want, sizeof want,
                 PREFIX "%s: this service has no TLS configured "
                        "(fl_rpc_service_opts_t.tls, or "
                        "security.ssl.internal.enabled)",
                 address);
    fl_future_t *f = (fl_future_t *)1;
    assert_fl(FL_EINVAL, fl_rpc_connect(cli, address, TG, NULL, &f));
    assert_null(f);
    assert_fl(FL_EINVAL, fl_rpc_last_error());
    assert_string_equal(want, fl_rpc_last_message());
    svc_end(svc);
}

/* ---- refused arguments -------------------------------------------------- */

static void expect_refused(int code, int rc, const char *want)
{
    assert_fl(code, rc);
    assert_fl(code, fl_rpc_last_error());
    assert_string_equal(want, fl_rpc_last_message());
}

static void test_refused_arguments_say_which_in_the_last_message(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    fl_future_t *f = (fl_future_t *)1;
    const char *a = "fling://local/x";

    expect_refused(FL_EINVAL, fl_rpc_connect(NULL, a, TG, NULL, &f),
                   "fl_rpc_connect: svc is NULL; pass the service to connect "
                   "from");
    assert_null(f);
    char hint[200];
    snprintf(hint, sizeof hint,
             "fl_rpc_connect: address is NULL; pass an endpoint's address, "
             "fling://local/<id> or %s<host>:<port>/<id>",
             RSCHEME);
    expect_refused(FL_EINVAL, fl_rpc_connect(svc, NULL, TG, NULL, &f), hint);
    expect_refused(FL_EINVAL, fl_rpc_connect(svc, a, NULL, NULL, &f),
                   "fl_rpc_connect: desc is NULL; pass the gateway's "
                   "generated service descriptor");
    expect_refused(FL_EINVAL, fl_rpc_connect(svc, a, TG, NULL, NULL),
                   "fl_rpc_connect: out is NULL; pass where to put the "
                   "connect future");

    /* A closed service: refused at once, over either transport. */
    fl_rpc_service_t *cli = cli_of(svc);
    fl_future_release(fl_rpc_service_close(cli));
    fx_addr_t to = tep_address(svc, "x");
    char want[400];
    snprintf(want, sizeof want, PREFIX "%s: the rpc service is closed", to.s);
    expect_refused(FL_ECLOSED, fl_rpc_connect(cli, to.s, TG, NULL, &f), want);
    assert_null(f);

    svc_end(svc);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_an_unknown_id_names_the_ids_or_their_number),
        FL_TEST(test_one_endpoint_is_named_in_the_singular),
        FL_TEST(test_many_ids_are_listed_sorted_then_counted),
        FL_TEST(test_a_service_without_endpoints_says_so),
        FL_TEST(test_a_terminated_endpoint_is_unknown),
        FL_TEST(test_an_address_without_a_scheme_says_what_to_write),
        FL_TEST(test_the_local_scheme_with_a_host_says_what_to_write),
        FL_TEST(test_bad_ids_and_ports_each_say_what_is_wrong),
        FL_TEST(test_the_other_remote_scheme_is_refused_at_once),
        FL_TEST(test_refused_arguments_say_which_in_the_last_message),
    };
    return FX_RUN(argc, argv, tests);
}
