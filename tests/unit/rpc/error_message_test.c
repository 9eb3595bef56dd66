/*
 * error_message_test.c - every refusal of the RPC API says why (issue 15):
 * the code returned, and fl_rpc_last_error() / fl_rpc_last_message() on
 * the calling thread naming the argument and what was expected. Calls go
 * through local gateways ("fling://local/<id>") in both runs.
 */
#include "rpc_fixture.h"

/* The last error and message must be exactly these. */
static void expect_last(int err, const char *msg)
{
    assert_fl(err, fl_rpc_last_error());
    assert_string_equal(msg, fl_rpc_last_message());
}

static fl_rpc_gateway_t *local_gw(fl_rpc_service_t *svc, const char *id)
{
    char addr[256];
    snprintf(addr, sizeof addr, "fling://local/%s", id);
    return gw_connect(svc, addr, TG, NULL);
}

/* TestGateway's methods, as the messages list them. */
#define TG_METHODS                                                             \
    "fltest.TestGateway has 9 methods (Echo, Fail, Later, Block, Count, "      \
    "Forget, FromFuture, Probe, Twice)"

/* ---- calls --------------------------------------------------------------- */

static void test_call_refusals_name_the_argument(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "greeter", FX_START);
    fl_rpc_gateway_t *gw = local_gw(fx.svc, "greeter");
    Fltest__EchoRequest echo = echo_req("x", 1);
    Fltest__FailRequest fail = FLTEST__FAIL_REQUEST__INIT;
    fl_future_t *f = NULL;

    assert_fl(FL_EINVAL,
              fl_rpc_call(gw, 7 + M_COUNT_OF_METHODS, &echo.base, 0, &f));
    assert_null(f);
    expect_last(FL_EINVAL, "method index 16 out of range: " TG_METHODS);

    assert_fl(FL_EINVAL, fl_rpc_call(gw, M_ECHO, &fail.base, 0, &f));
    expect_last(FL_EINVAL,
                "Invocation of fltest.TestGateway.Echo refused: the request "
                "is a fltest.FailRequest; the method takes a "
                "fltest.EchoRequest");

    assert_fl(FL_EINVAL, fl_rpc_call(gw, M_FAIL, NULL, 0, &f));
    expect_last(FL_EINVAL, "Invocation of fltest.TestGateway.Fail refused: "
                           "the request is NULL; pass a fltest.FailRequest");

    assert_fl(FL_EINVAL, fl_rpc_call(NULL, M_ECHO, &echo.base, 0, &f));
    expect_last(FL_EINVAL, "fl_rpc_call refused: gw is NULL");
    assert_fl(FL_EINVAL, fl_rpc_call(gw, M_ECHO, &echo.base, 0, NULL));
    expect_last(FL_EINVAL, "fl_rpc_call refused: out is NULL");
    assert_fl(FL_EINVAL, fl_rpc_call(gw, M_ECHO, &echo.base, -5, &f));
    expect_last(FL_EINVAL, "fl_rpc_call refused: timeout_ms is -5; pass a "
                           "timeout > 0, or 0 for the gateway's");

    /* A call that succeeds leaves the last refusal alone. */
    expect_echo(gw, "fine", 3);
    expect_last(FL_EINVAL, "fl_rpc_call refused: timeout_ms is -5; pass a "
                           "timeout > 0, or 0 for the gateway's");

    /* fl_rpc_call_sync passes fl_rpc_call's refusal on, and has its own. */
    ProtobufCMessage *reply = NULL;
    assert_fl(FL_EINVAL, fl_rpc_call_sync(gw, M_ECHO, &fail.base, 0, &reply));
    assert_null(reply);
    expect_last(FL_EINVAL,
                "Invocation of fltest.TestGateway.Echo refused: the request "
                "is a fltest.FailRequest; the method takes a "
                "fltest.EchoRequest");
    assert_fl(FL_EINVAL, fl_rpc_call_sync(gw, M_ECHO, &echo.base, 0, NULL));
    expect_last(FL_EINVAL, "fl_rpc_call_sync refused: reply is NULL");

    fl_rpc_gateway_free(gw);
    ep_fx_end(&fx);
}

/* What fl_rpc_call_sync said on the endpoint's own main thread. */
typedef struct on_main {
    fl_rpc_gateway_t *gw;
    fl_test_latch_t *done;
    int rc, last;
    char msg[FL_FUTURE_MESSAGE_MAX];
} on_main_t;

static void sync_on_main(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    on_main_t *m = arg;
    Fltest__EchoRequest echo = echo_req("x", 1);
    ProtobufCMessage *reply = NULL;
    m->rc = fl_rpc_call_sync(m->gw, M_ECHO, &echo.base, 0, &reply);
    m->last = fl_rpc_last_error();
    snprintf(m->msg, sizeof m->msg, "%s", fl_rpc_last_message());
    fl_test_latch_count_down(m->done);
}

static void test_call_sync_on_a_runtime_thread_says_why(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "greeter", FX_START);
    on_main_t m = {.gw = local_gw(fx.svc, "greeter"),
                   .done = fl_test_latch_alloc(1)};
    assert_fl_ok(fl_rpc_run_async(fx.ep, sync_on_main, &m, NULL));
    wait_latch(m.done);
    assert_fl(FL_EDEADLK, m.rc);
    assert_fl(FL_EDEADLK, m.last);
    assert_string_equal("fl_rpc_call_sync refused: it would block a runtime "
                        "thread (an actor's, an endpoint's or the service's "
                        "I/O thread); use fl_rpc_call there",
                        m.msg);
    fl_test_latch_free(m.done);
    fl_rpc_gateway_free(m.gw);
    ep_fx_end(&fx);
}

static void closure_null(const ProtobufCMessage *r, void *data)
{
    *(int *)data = r == NULL ? 1 : 2;
}

static void test_stub_refusals_set_the_last_message(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "greeter", FX_START);
    /* Through the transport under test: the stubs of a remote gateway
     * refuse with the same words. */
    fl_rpc_gateway_t *gw = gw_to(fx.svc, fx.ep, NULL);
    ProtobufCService *s = fl_rpc_gateway_service(gw);
    Fltest__FailRequest fail = FLTEST__FAIL_REQUEST__INIT;

    /* A closure call of a method that does not exist: the closure runs at
     * once with NULL. */
    int ran = 0;
    s->invoke(s, M_COUNT_OF_METHODS, &fail.base, closure_null, &ran);
    assert_int_equal(1, ran);
    expect_last(FL_EINVAL, "method index 9 out of range: " TG_METHODS);

    /* A tell of the wrong request type. */
    s->invoke(s, M_COUNT, &fail.base, NULL, NULL);
    expect_last(FL_EINVAL,
                "Invocation of fltest.TestGateway.Count refused: the request "
                "is a fltest.FailRequest; the method takes a "
                "fltest.CountRequest");

    /* A tell that is queued clears it. */
    tell_count(gw, 0, 0);
    expect_last(FL_OK, "");

    fl_rpc_gateway_free(gw);
    ep_fx_end(&fx);
}

/* ---- method names, gateways ---------------------------------------------- */

static void test_method_index_of_unknown_name_lists_the_methods(void **state)
{
    (void)state;
    assert_int_equal(M_TWICE, fl_rpc_method_index(TG, "Twice"));
    assert_int_equal(-1, fl_rpc_method_index(TG, "SayHi"));
    expect_last(FL_EINVAL, "no method SayHi: " TG_METHODS);
    assert_int_equal(-1, fl_rpc_method_index(TG, NULL));
    expect_last(FL_EINVAL, "fl_rpc_method_index refused: name is NULL");
    assert_int_equal(-1, fl_rpc_method_index(NULL, "Echo"));
    expect_last(FL_EINVAL, "fl_rpc_method_index refused: desc is NULL");
}

static void test_gateway_refusals_say_why(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "greeter", FX_START);
    fl_rpc_gateway_t *gw = NULL;

    assert_fl(FL_ENOTSUP, fl_rpc_self_gateway(fx.ep, OTHER, &gw));
    assert_null(gw);
    expect_last(FL_ENOTSUP, "rpc endpoint 'greeter' does not implement "
                            "fltest.OtherGateway: it implements "
                            "fltest.TestGateway");
    assert_fl(FL_EINVAL, fl_rpc_self_gateway(NULL, TG, &gw));
    expect_last(FL_EINVAL, "fl_rpc_self_gateway refused: ep is NULL");
    assert_fl(FL_EINVAL, fl_rpc_self_gateway(fx.ep, TG, NULL));
    expect_last(FL_EINVAL, "fl_rpc_self_gateway refused: out is NULL");

    assert_fl_ok(fl_rpc_self_gateway(fx.ep, TG, &gw));
    assert_fl(FL_EINVAL, fl_rpc_gateway_set_timeout(gw, 0));
    expect_last(FL_EINVAL, "fl_rpc_gateway_set_timeout refused: timeout_ms "
                           "is 0; a gateway's timeout must be > 0");
    assert_fl(FL_EINVAL, fl_rpc_gateway_set_timeout(NULL, 10));
    expect_last(FL_EINVAL, "fl_rpc_gateway_set_timeout refused: gw is NULL");
    assert_fl_ok(fl_rpc_gateway_set_timeout(gw, 10));
    expect_last(FL_EINVAL, "fl_rpc_gateway_set_timeout refused: gw is NULL");

    fl_rpc_gateway_free(gw);
    ep_fx_end(&fx);
}

/* ---- endpoints and services ---------------------------------------------- */

static void test_endpoint_create_refusals_say_why(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "taken", 0);
    fl_rpc_endpoint_t *ep = NULL;

    fl_rpc_endpoint_opts_t o = tep_opts("has/slash", &fx.st, NULL);
    assert_fl(FL_EINVAL, fl_rpc_endpoint_create(fx.svc, &o, &ep));
    assert_null(ep);
    expect_last(FL_EINVAL, "fl_rpc_endpoint_create refused: id 'has/slash' "
                           "has '/' at offset 3; an id is made of "
                           "[A-Za-z0-9_.-]");
    o = tep_opts("has space", &fx.st, NULL);
    assert_fl(FL_EINVAL, fl_rpc_endpoint_create(fx.svc, &o, &ep));
    expect_last(FL_EINVAL, "fl_rpc_endpoint_create refused: id 'has space' "
                           "has 0x20 at offset 3; an id is made of "
                           "[A-Za-z0-9_.-]");
    o = tep_opts("", &fx.st, NULL);
    assert_fl(FL_EINVAL, fl_rpc_endpoint_create(fx.svc, &o, &ep));
    expect_last(FL_EINVAL, "fl_rpc_endpoint_create refused: the id is "
                           "empty; pass NULL for a generated one");
    char longid[202];
    memset(longid, 'a', 201);
    longid[201] = '\0';
    o = tep_opts(longid, &fx.st, NULL);
    assert_fl(FL_EINVAL, fl_rpc_endpoint_create(fx.svc, &o, &ep));
    expect_last(FL_EINVAL, "fl_rpc_endpoint_create refused: the id is 201 "
                           "bytes long, over the 200 allowed");

    o = tep_opts("fine", &fx.st, NULL);
    o.nservices = 0;
    assert_fl(FL_EINVAL, fl_rpc_endpoint_create(fx.svc, &o, &ep));
    expect_last(FL_EINVAL, "fl_rpc_endpoint_create refused: no services "
                           "(opts.services set, opts.nservices 0); an "
                           "endpoint implements at least one");
    ProtobufCService *none[1] = {NULL};
    o.services = none;
    o.nservices = 1;
    assert_fl(FL_EINVAL, fl_rpc_endpoint_create(fx.svc, &o, &ep));
    expect_last(FL_EINVAL,
                "fl_rpc_endpoint_create refused: opts.services[0] is NULL");
    ProtobufCService blank = {0};
    ProtobufCService *blanks[1] = {&blank};
    o.services = blanks;
    assert_fl(FL_EINVAL, fl_rpc_endpoint_create(fx.svc, &o, &ep));
    expect_last(FL_EINVAL,
                "fl_rpc_endpoint_create refused: opts.services[0] has no "
                "descriptor (initialise it with the generated ..._INIT "
                "macro)");
    assert_fl(FL_EINVAL, fl_rpc_endpoint_create(fx.svc, NULL, &ep));
    expect_last(FL_EINVAL, "fl_rpc_endpoint_create refused: opts is NULL");

    o = tep_opts("taken", &fx.st, NULL);
    assert_fl(FL_EEXIST, fl_rpc_endpoint_create(fx.svc, &o, &ep));
    assert_null(ep);
    expect_last(FL_EEXIST, "fl_rpc_endpoint_create refused: id 'taken' is "
                           "taken by a live endpoint; it is free again once "
                           "that one has terminated");

    assert_fl(FL_EINVAL, fl_rpc_endpoint_start(NULL));
    expect_last(FL_EINVAL, "fl_rpc_endpoint_start refused: ep is NULL");
    assert_fl(FL_EINVAL, fl_rpc_endpoint_stop(NULL));
    expect_last(FL_EINVAL, "fl_rpc_endpoint_stop refused: ep is NULL");

    /* A closed service. */
    fl_future_t *closing = fl_rpc_service_close(fx.svc);
    o = tep_opts("late", &fx.st, NULL);
    assert_fl(FL_ECLOSED, fl_rpc_endpoint_create(fx.svc, &o, &ep));
    expect_last(FL_ECLOSED,
                "fl_rpc_endpoint_create refused: the rpc service is closed");
    assert_fl_ok(future_code(closing));
    fl_future_release(closing);
    ep_fx_end(&fx);
}

static void test_service_alloc_refusals_say_why(void **state)
{
    (void)state;
    fl_rpc_service_opts_t o = {0};
    o.default_timeout_ms = -1;
    fl_rpc_service_t *svc = NULL;
    assert_fl(FL_EINVAL, fl_rpc_service_alloc(&o, &svc));
    assert_null(svc);
    expect_last(FL_EINVAL, "fl_rpc_service_alloc refused: default_timeout_ms "
                           "is -1; pass a timeout > 0, or 0 for 10000 ms");
    assert_fl(FL_EINVAL, fl_rpc_service_alloc(NULL, NULL));
    expect_last(FL_EINVAL, "fl_rpc_service_alloc refused: out is NULL");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_call_refusals_name_the_argument),
        FL_TEST(test_call_sync_on_a_runtime_thread_says_why),
        FL_TEST(test_stub_refusals_set_the_last_message),
        FL_TEST(test_method_index_of_unknown_name_lists_the_methods),
        FL_TEST(test_gateway_refusals_say_why),
        FL_TEST(test_endpoint_create_refusals_say_why),
        FL_TEST(test_service_alloc_refusals_say_why),
    };
    return FX_RUN(argc, argv, tests);
}
