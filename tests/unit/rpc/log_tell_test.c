/*
 * log_tell_test.c - dropped tells are logged (src/rpc/calllog.c): a tell
 * to a method with no handler, one refused by fencing (no token, or
 * another), one to an endpoint not started and one to a terminated
 * endpoint each give exactly one warn line of component rpc per window
 * of the rate limit, naming the endpoint, the method and, over TCP, the
 * peer; the next window's line carries the count suppressed meanwhile.
 * The same with a plain request (Count's), which a local tell sends as an
 * RPC_TELL (src/rpc/dispatch.h); and a tell whose handler does not answer
 * is logged.
 *
 * Synchronisation: an ask through the same gateway after the tells is
 * answered after they were handled (one endpoint's calls keep their
 * order; over TCP, one connection's too). The rate limits run on a clock
 * the test moves (fl__log_set_clock). Over TCP the peer the server names
 * is the address of the caller's connection, read from the server's
 * debug line "connection from <peer> accepted" (remote traced).
 */
#include "rpc_fixture.h"

#include "log_capture.h"

/* What the server calls the caller's connection ("" for local). */
static char peer[64];

/* After the gateway to svc's endpoint is connected: learn the peer. */
static void learn_peer(void)
{
    peer[0] = '\0';
    if (!fx_remote)
        return;
    cap_rec_t r;
    cap_wait("remote", "connection from ", &r);
    cap_field(&r, "peer", peer, sizeof peer);
    assert_true(peer[0] != '\0');
}

/* The fields a drop line has: endpoint, method, and the peer over TCP. */
static void drop_fields(char *out, size_t cap_len, const char *ep,
                        const char *method)
{
    if (fx_remote)
        snprintf(out, cap_len, "endpoint=%s method=%s peer=%s", ep, method,
                 peer);
    else
        snprintf(out, cap_len, "endpoint=%s method=%s", ep, method);
}

static void tell_echo(fl_rpc_gateway_t *gw)
{
    Fltest__EchoRequest req = echo_req("t", 1);
    fltest__test_gateway__echo(fl_rpc_gateway_service(gw), &req, NULL, NULL);
}

static void tell_forget(fl_rpc_gateway_t *gw)
{
    Fltest__EchoRequest req = echo_req("t", 1);
    fltest__test_gateway__forget(fl_rpc_gateway_service(gw), &req, NULL, NULL);
}

/* A tell of a plain request (CountRequest: numbers only), which a local
 * gateway sends as an RPC_TELL (src/rpc/call.c, dispatch.c). */
static void tell_count1(fl_rpc_gateway_t *gw)
{
    tell_count(gw, 0, 0);
}

/* Asserts the warn lines captured: exactly n (any component), the last
 * one of rpc with msg and fields (then " suppressed=K" if suppressed). */
static void expect_warns(int n, const char *msg, const char *fields,
                         uint32_t suppressed)
{
    cap_rec_t r[8];
    int got = cap_select(FL_LOG_WARN, NULL, r, 8);
    if (got != n) {
        for (int i = 0; i < got && i < 8; i++)
            print_message("warn line %d: %s: %s %s\n", i, r[i].component,
                          r[i].message, r[i].fields);
        fail_msg("%d warn lines, want %d", got, n);
    }
    const cap_rec_t *last = &r[n - 1];
    assert_int_equal(FL_LOG_WARN, last->level);
    assert_string_equal("rpc", last->component);
    assert_string_equal(msg, last->message);
    char want[600];
    if (suppressed != 0)
        snprintf(want, sizeof want, "%s suppressed=%u", fields,
                 (unsigned)suppressed);
    else
        snprintf(want, sizeof want, "%s", fields);
    assert_string_equal(want, last->fields);
    assert_int_equal(suppressed, last->suppressed);
}

/*
 * Three tells in one window, then one in the next, each round synced by
 * an Echo ask through gw answered with sync_code: one line, then one with
 * suppressed=2.
 */
static void check_drops_n(fl_rpc_gateway_t *gw,
                          void (*tell)(fl_rpc_gateway_t *), int sync_code,
                          const char *msg, const char *fields, int others)
{
    cap_advance(100); /* a fresh window for the site */
    cap_clear();
    for (int i = 0; i < 3; i++)
        tell(gw);
    assert_fl(sync_code, echo_code(gw));
    expect_warns(1 + others, msg, fields, 0);
    cap_advance(1);
    tell(gw);
    assert_fl(sync_code, echo_code(gw));
    expect_warns(2 + 2 * others, msg, fields, 2);
}

/* check_drops_n where the drop is the only warn line of a round. */
static void check_drops(fl_rpc_gateway_t *gw, void (*tell)(fl_rpc_gateway_t *),
                        int sync_code, const char *msg, const char *fields)
{
    check_drops_n(gw, tell, sync_code, msg, fields, 0);
}

static int setup(void **state)
{
    fl_log_set_level(FL_LOG_WARN);
    assert_fl_ok(fl_log_set_trace(fx_remote ? "remote" : ""));
    fl__log_set_clock(cap_clock);
    fl_log_set_handler(cap_handler, NULL);
    cap_clear();
    return fl_test_arm(state);
}

static int teardown(void **state)
{
    fl_log_set_handler(NULL, NULL);
    fl__log_set_clock(NULL);
    assert_fl_ok(fl_log_set_trace(""));
    return fl_test_disarm(state);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* TestGateway with no Forget handler. */
static ProtobufCService *const *no_forget_services(void)
{
    static Fltest__TestGateway_Service impl = FLTEST__TEST_GATEWAY__INIT(tg_);
    static ProtobufCService *const services[1] = {&impl.base};
    impl.forget = NULL;
    return services;
}

static void test_a_tell_to_a_method_with_no_handler(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_opts_t o = tep_opts("nohandler", &st, NULL);
    o.services = no_forget_services();
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(svc, &o, &ep));
    tep_start(ep, &st);
    fl_rpc_gateway_t *gw = gw_to(svc, ep, NULL);
    learn_peer();
    char fields[300];
    drop_fields(fields, sizeof fields, "nohandler",
                "fltest.TestGateway.Forget");
    check_drops(gw, tell_forget, FL_OK,
                "tell of fltest.TestGateway.Forget to rpc endpoint "
                "'nohandler' dropped: the endpoint does not implement the "
                "method",
                fields);
    fl_rpc_gateway_free(gw);
    tep_end(ep);
    svc_end(svc);
}

static void test_a_tell_refused_by_fencing(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_fencing_token_t a = token_of(0xA1), b = token_of(0xB2);
    fl_rpc_endpoint_t *ep = tep_create_started(svc, "fenced", &st, &a);
    char fields[300];

    fl_rpc_gateway_t *gw = gw_to(svc, ep, &b);
    learn_peer();
    drop_fields(fields, sizeof fields, "fenced", "fltest.TestGateway.Echo");
    /* Each round also logs the mismatch's detail once (its own site). */
    check_drops_n(gw, tell_echo, FL_EFENCING,
                  "tell of fltest.TestGateway.Echo to rpc endpoint 'fenced' "
                  "dropped: Fencing token mismatch: Ignoring message Echo "
                  "because the fencing token "
                  "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2 is not the fenced "
                  "endpoint fenced's current one.",
                  fields, 1);
    fl_rpc_gateway_free(gw);

    gw = gw_to(svc, ep, NULL);
    check_drops(gw, tell_echo, FL_EFENCING,
                "tell of fltest.TestGateway.Echo to rpc endpoint 'fenced' "
                "dropped: Fencing token not set: Ignoring message Echo "
                "because the fenced endpoint fenced received it without a "
                "fencing token.",
                fields);
    fl_rpc_gateway_free(gw);
    tep_end(ep);
    svc_end(svc);
}

/* An ask with a stale token: the caller is told the token it sent and
 * not the current one; the server logs both, once a window per burst. */
static void test_a_mismatch_tells_the_caller_no_token(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_fencing_token_t a = token_of(0xC3), b = token_of(0xD4);
    fl_rpc_endpoint_t *ep = tep_create_started(svc, "fencedask", &st, &a);
    fl_rpc_gateway_t *gw = gw_to(svc, ep, &b);
    learn_peer();
    const char *said = "Fencing token mismatch: Ignoring message Echo "
                       "because the fencing token "
                       "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4 is not the fenced "
                       "endpoint fencedask's current one.";
    const char *logged =
        "Fencing token mismatch at rpc endpoint 'fencedask': ignored "
        "message Echo carrying the fencing token "
        "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4; the current one is "
        "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3.";
    /* The site may owe a count from a test before: say it in a window of
     * its own, so that the burst below starts clean. */
    cap_advance(100);
    assert_fl(FL_EFENCING, echo_code(gw));
    cap_advance(1);
    cap_clear();
    for (int i = 0; i < 3; i++) {
        fl_future_t *f = call_echo(gw, "x", 1);
        assert_fl(FL_EFENCING, future_code(f));
        assert_string_equal(said, fl_future_message(f));
        assert_null(strstr(fl_future_message(f), "c3c3"));
        fl_future_release(f);
    }
    expect_warns(1, logged, "endpoint=fencedask method=Echo", 0);
    cap_advance(1);
    assert_fl(FL_EFENCING, echo_code(gw));
    expect_warns(2, logged, "endpoint=fencedask method=Echo", 2);
    fl_rpc_gateway_free(gw);
    tep_end(ep);
    svc_end(svc);
}

static void test_a_tell_to_an_endpoint_not_started(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_t *ep = tep_create(svc, "idle", &st, NULL);
    fl_rpc_gateway_t *gw = gw_to(svc, ep, NULL);
    learn_peer();
    char fields[300];
    drop_fields(fields, sizeof fields, "idle", "fltest.TestGateway.Echo");
    check_drops(gw, tell_echo, FL_ENOTSTARTED,
                "tell of fltest.TestGateway.Echo to rpc endpoint 'idle' "
                "dropped: it has not been started yet",
                fields);
    fl_rpc_gateway_free(gw);
    tep_end(ep);
    svc_end(svc);
}

static void test_a_tell_to_a_terminated_endpoint(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_t *ep = tep_create_started(svc, "gone", &st, NULL);
    fl_rpc_gateway_t *gw = gw_to(svc, ep, NULL);
    learn_peer();
    tep_end(ep);
    char fields[300];
    if (fx_remote) {
        /* The server no longer knows the endpoint, so neither its
         * methods: the method is named by its index. */
        drop_fields(fields, sizeof fields, "gone", "?#0");
        check_drops(gw, tell_echo, FL_EUNREACHABLE,
                    "tell of ?#0 to rpc endpoint 'gone' dropped: no rpc "
                    "endpoint of that id here (it has terminated or never "
                    "existed)",
                    fields);
    } else {
        drop_fields(fields, sizeof fields, "gone", "fltest.TestGateway.Echo");
        check_drops(gw, tell_echo, FL_EUNREACHABLE,
                    "tell of fltest.TestGateway.Echo to rpc endpoint 'gone' "
                    "dropped: it has terminated",
                    fields);
    }
    fl_rpc_gateway_free(gw);
    svc_end(svc);
}

/* TestGateway with no Count handler (Count's request is flat). */
static ProtobufCService *const *no_count_services(void)
{
    static Fltest__TestGateway_Service impl = FLTEST__TEST_GATEWAY__INIT(tg_);
    static ProtobufCService *const services[1] = {&impl.base};
    impl.count = NULL;
    return services;
}

/* A Count handler that returns without answering. */
static void count_unanswered(Fltest__TestGateway_Service *svc,
                             const Fltest__CountRequest *in,
                             Fltest__Empty_Closure closure, void *closure_data)
{
    (void)svc;
    (void)in;
    (void)closure;
    (void)closure_data;
}

/* TestGateway whose Count handler never answers. */
static ProtobufCService *const *quiet_count_services(void)
{
    static Fltest__TestGateway_Service impl = FLTEST__TEST_GATEWAY__INIT(tg_);
    static ProtobufCService *const services[1] = {&impl.base};
    impl.count = count_unanswered;
    return services;
}

/* The drops of an RPC_TELL are those of the same tell as an RPC_INVOKE
 * (dispatch.c's tell_refused mirrors handle_invoke). */
static void test_a_flat_tell_to_a_method_with_no_handler(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_opts_t o = tep_opts("nocount", &st, NULL);
    o.services = no_count_services();
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(svc, &o, &ep));
    tep_start(ep, &st);
    fl_rpc_gateway_t *gw = gw_to(svc, ep, NULL);
    learn_peer();
    char fields[300];
    drop_fields(fields, sizeof fields, "nocount", "fltest.TestGateway.Count");
    check_drops(gw, tell_count1, FL_OK,
                "tell of fltest.TestGateway.Count to rpc endpoint 'nocount' "
                "dropped: the endpoint does not implement the method",
                fields);
    fl_rpc_gateway_free(gw);
    tep_end(ep);
    svc_end(svc);
}

static void test_a_flat_tell_refused_by_fencing(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_fencing_token_t a = token_of(0xA5), b = token_of(0xB6);
    fl_rpc_endpoint_t *ep = tep_create_started(svc, "fencedflat", &st, &a);
    char fields[300];

    fl_rpc_gateway_t *gw = gw_to(svc, ep, &b);
    learn_peer();
    drop_fields(fields, sizeof fields, "fencedflat",
                "fltest.TestGateway.Count");
    check_drops_n(gw, tell_count1, FL_EFENCING,
                  "tell of fltest.TestGateway.Count to rpc endpoint "
                  "'fencedflat' dropped: Fencing token mismatch: Ignoring "
                  "message Count because the fencing token "
                  "b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6 is not the fenced "
                  "endpoint fencedflat's current one.",
                  fields, 1);
    fl_rpc_gateway_free(gw);

    gw = gw_to(svc, ep, NULL);
    check_drops(gw, tell_count1, FL_EFENCING,
                "tell of fltest.TestGateway.Count to rpc endpoint "
                "'fencedflat' dropped: Fencing token not set: Ignoring "
                "message Count because the fenced endpoint fencedflat "
                "received it without a fencing token.",
                fields);
    fl_rpc_gateway_free(gw);
    assert_int_equal(0, atomic_load(&st.counts));

    /* With the current token it runs, answered: no line at all. */
    gw = gw_to(svc, ep, &a);
    cap_clear();
    tell_count1(gw);
    assert_fl_ok(echo_code(gw));
    assert_int_equal(1, atomic_load(&st.counts));
    cap_rec_t r[4];
    assert_int_equal(0, cap_select(FL_LOG_WARN, NULL, r, 4));
    fl_rpc_gateway_free(gw);
    tep_end(ep);
    svc_end(svc);
}

static void test_a_flat_tell_to_an_endpoint_not_started(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_t *ep = tep_create(svc, "idleflat", &st, NULL);
    fl_rpc_gateway_t *gw = gw_to(svc, ep, NULL);
    learn_peer();
    char fields[300];
    drop_fields(fields, sizeof fields, "idleflat", "fltest.TestGateway.Count");
    check_drops(gw, tell_count1, FL_ENOTSTARTED,
                "tell of fltest.TestGateway.Count to rpc endpoint 'idleflat' "
                "dropped: it has not been started yet",
                fields);
    assert_int_equal(0, atomic_load(&st.counts));
    fl_rpc_gateway_free(gw);
    tep_end(ep);
    svc_end(svc);
}

static void test_a_flat_tell_to_a_terminated_endpoint(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_t *ep = tep_create_started(svc, "goneflat", &st, NULL);
    fl_rpc_gateway_t *gw = gw_to(svc, ep, NULL);
    learn_peer();
    tep_end(ep);
    char fields[300];
    if (fx_remote) {
        drop_fields(fields, sizeof fields, "goneflat", "?#4");
        check_drops(gw, tell_count1, FL_EUNREACHABLE,
                    "tell of ?#4 to rpc endpoint 'goneflat' dropped: no rpc "
                    "endpoint of that id here (it has terminated or never "
                    "existed)",
                    fields);
    } else {
        drop_fields(fields, sizeof fields, "goneflat",
                    "fltest.TestGateway.Count");
        check_drops(gw, tell_count1, FL_EUNREACHABLE,
                    "tell of fltest.TestGateway.Count to rpc endpoint "
                    "'goneflat' dropped: it has terminated",
                    fields);
        /* The refusal says why, as any call's. */
        tell_count1(gw);
        assert_fl(FL_EUNREACHABLE, fl_rpc_last_error());
        assert_string_equal("recipient unreachable: rpc endpoint 'goneflat' "
                            "has terminated (fltest.TestGateway.Count not "
                            "delivered)",
                            fl_rpc_last_message());
    }
    fl_rpc_gateway_free(gw);
    svc_end(svc);
}

/* A tell whose handler returns without answering: one warn line each
 * (not rate-limited), naming the method and the endpoint. */
static void test_a_flat_tell_left_unanswered(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_opts_t o = tep_opts("quiet", &st, NULL);
    o.services = quiet_count_services();
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(svc, &o, &ep));
    tep_start(ep, &st);
    fl_rpc_gateway_t *gw = gw_to(svc, ep, NULL);
    learn_peer();
    cap_clear();
    for (int i = 0; i < 2; i++)
        tell_count1(gw);
    assert_fl_ok(echo_code(gw));
    char msg[300];
    snprintf(msg, sizeof msg,
             "tell Count to endpoint quiet failed: the handler returned "
             "without answering (%s)",
             fl_err_name(FL_ENOREPLY));
    expect_warns(2, msg, "endpoint=quiet method=Count", 0);
    fl_rpc_gateway_free(gw);
    tep_end(ep);
    svc_end(svc);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_a_tell_to_a_method_with_no_handler),
        T(test_a_tell_refused_by_fencing),
        T(test_a_mismatch_tells_the_caller_no_token),
        T(test_a_tell_to_an_endpoint_not_started),
        T(test_a_tell_to_a_terminated_endpoint),
        T(test_a_flat_tell_to_a_method_with_no_handler),
        T(test_a_flat_tell_refused_by_fencing),
        T(test_a_flat_tell_to_an_endpoint_not_started),
        T(test_a_flat_tell_to_a_terminated_endpoint),
        T(test_a_flat_tell_left_unanswered),
    };
    return FX_RUN(argc, argv, tests);
}
