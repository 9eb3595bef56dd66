/*
 * service_test.c - the RPC service: connecting (handshake, errors), self
 * gateways and lookup.
 */
#include "service_fixture.h"

/* ---- helpers ------------------------------------------------------------- */

/* OtherGateway, for an endpoint implementing two services. */
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

/* ---- connect ------------------------------------------------------------- */

static void
test_connect_to_an_existing_endpoint_gives_a_working_gateway(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "target", FX_START);

    fl_rpc_gateway_t *gw =
        gw_connect(cli_of(fx.svc), tep_address(fx.svc, "target").s, TG, NULL);
    assert_string_equal(fl_rpc_endpoint_address(fx.ep),
                        fl_rpc_gateway_address(gw));
    assert_string_equal(tran_hostname(), fl_rpc_gateway_hostname(gw));
    assert_non_null(fl_rpc_gateway_service(gw));
    assert_ptr_equal(TG, fl_rpc_gateway_service(gw)->descriptor);
    expect_echo(gw, "connected", 1);

    fl_rpc_gateway_free(gw);
    ep_fx_end(&fx);
}

static void
test_connect_to_a_missing_id_fails_econnect_naming_the_address(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);

    char msg[512];
    fx_addr_t nobody = tep_address(svc, "nobody");
    assert_fl(FL_ECONNECT,
              gw_connect_error(cli_of(svc), nobody.s, TG, msg, sizeof msg));
    if (!strstr(msg, nobody.s))
        fail_msg("message \"%s\" does not name the address", msg);

    svc_end(svc);
}

static void test_connect_to_a_malformed_address_fails_econnect(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);

    char msg[512];
    assert_fl(FL_ECONNECT, gw_connect_error(cli_of(svc), "not-an-address", TG,
                                            msg, sizeof msg));
    if (!strstr(msg, "not-an-address"))
        fail_msg("message \"%s\" does not name the address", msg);

    svc_end(svc);
}

static void
test_connect_with_a_service_the_endpoint_lacks_fails_ehandshake(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "target", FX_START);

    char msg[512];
    assert_fl(FL_EHANDSHAKE,
              gw_connect_error(fx.svc, fl_rpc_endpoint_address(fx.ep), OTHER,
                               msg, sizeof msg));
    if (!strstr(msg, "The rpc endpoint does not support the gateway ") ||
        !strstr(msg, "OtherGateway"))
        fail_msg("unexpected handshake message \"%s\"", msg);

    ep_fx_end(&fx);
}

static void
test_connect_to_a_created_endpoint_succeeds_calls_not_started(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "created", FX_GW);

    assert_fl(FL_ENOTSTARTED, echo_code(fx.gw));
    char msg[512];
    assert_fl(FL_EHANDSHAKE,
              gw_connect_error(fx.svc, fl_rpc_endpoint_address(fx.ep), OTHER,
                               msg, sizeof msg));

    ep_fx_end(&fx);
}

static void
test_connect_to_an_endpoint_with_two_services_reaches_both(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    static ProtobufCService *two[2];
    two[0] = tep_services()[0];
    two[1] = &other_impl.base;
    fl_rpc_endpoint_opts_t o = tep_opts("two", &st, NULL);
    o.services = two;
    o.nservices = 2;
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(svc, &o, &ep));
    tep_start(ep, &st);

    fx_addr_t two_at = tep_address(svc, "two");
    fl_rpc_gateway_t *tg = gw_connect(cli_of(svc), two_at.s, TG, NULL);
    fl_rpc_gateway_t *og = gw_connect(cli_of(svc), two_at.s, OTHER, NULL);
    expect_echo(tg, "first service", 1);
    Fltest__Empty e = FLTEST__EMPTY__INIT;
    assert_fl_ok(call_code(og, 0, &e.base));

    fl_rpc_gateway_free(tg);
    fl_rpc_gateway_free(og);
    tep_end(ep);
    svc_end(svc);
}

static void
test_create_with_a_service_without_descriptor_fails_einval(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    static ProtobufCService bare; /* descriptor NULL */
    static ProtobufCService *const services[1] = {&bare};
    fl_rpc_endpoint_opts_t o = tep_opts("bare", &st, NULL);
    o.services = services;
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl(FL_EINVAL, fl_rpc_endpoint_create(svc, &o, &ep));

    svc_end(svc);
}

static void
test_connect_after_shutdown_fails_eclosed_and_leaves_out_null(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    fx_addr_t x = tep_address(svc, "x");
    assert_fl_ok(svc_shutdown(svc));

    fl_future_t *f = fl_future_alloc(); /* a non-NULL value to overwrite */
    fl_future_t *keep = f;
    assert_fl(FL_ECLOSED, fl_rpc_connect(cli_of(svc), x.s, TG, NULL, &f));
    assert_null(f);

    fl_future_release(keep);
    svc_free(svc);
}

/* ---- self gateway -------------------------------------------------------- */

static void
test_self_gateway_for_an_unimplemented_service_is_enotsup(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "self", FX_START);

    fl_rpc_gateway_t *gw = NULL;
    assert_fl(FL_ENOTSUP, fl_rpc_self_gateway(fx.ep, OTHER, &gw));

    ep_fx_end(&fx);
}

static void test_self_gateway_reaches_the_endpoint(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "self", FX_START);

    fl_rpc_gateway_t *gw = NULL;
    assert_fl_ok(fl_rpc_self_gateway(fx.ep, TG, &gw));
    assert_non_null(gw);
    assert_string_equal(fl_rpc_endpoint_address(fx.ep),
                        fl_rpc_gateway_address(gw));
    expect_echo(gw, "self", 1);

    fl_rpc_gateway_free(gw);
    ep_fx_end(&fx);
}

/* ---- lookup -------------------------------------------------------------- */

static void test_lookup_finds_a_live_endpoint_by_id(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st1, st2;
    tep_init(&st1);
    tep_init(&st2);
    fl_rpc_endpoint_t *e1 = tep_create(svc, "one", &st1, NULL);
    fl_rpc_endpoint_t *e2 = tep_create_started(svc, "two", &st2, NULL);

    fl_rpc_endpoint_t *found = NULL;
    assert_fl_ok(fl_rpc_service_lookup(svc, "one", &found));
    assert_ptr_equal(e1, found);
    assert_fl_ok(fl_rpc_service_lookup(svc, "two", &found));
    assert_ptr_equal(e2, found);
    assert_fl(FL_ENOENT, fl_rpc_service_lookup(svc, "three", &found));
    assert_fl(FL_EINVAL, fl_rpc_service_lookup(svc, NULL, &found));

    tep_end(e1);
    tep_end(e2);
    svc_end(svc);
}

static void test_lookup_after_termination_is_enoent(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "gone", FX_START);
    tep_end(fx.ep);

    fl_rpc_endpoint_t *found = NULL;
    assert_fl(FL_ENOENT, fl_rpc_service_lookup(fx.svc, "gone", &found));

    svc_end(fx.svc);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_connect_to_an_existing_endpoint_gives_a_working_gateway),
        FL_TEST(test_connect_to_a_missing_id_fails_econnect_naming_the_address),
        FL_TEST(test_connect_to_a_malformed_address_fails_econnect),
        FL_TEST(
            test_connect_with_a_service_the_endpoint_lacks_fails_ehandshake),
        FL_TEST(test_connect_to_a_created_endpoint_succeeds_calls_not_started),
        FL_TEST(test_connect_to_an_endpoint_with_two_services_reaches_both),
        FL_TEST(test_create_with_a_service_without_descriptor_fails_einval),
        FL_TEST(test_connect_after_shutdown_fails_eclosed_and_leaves_out_null),
        FL_TEST(test_self_gateway_for_an_unimplemented_service_is_enotsup),
        FL_TEST(test_self_gateway_reaches_the_endpoint),
        FL_TEST(test_lookup_finds_a_live_endpoint_by_id),
        FL_TEST(test_lookup_after_termination_is_enoent),
    };
    return FX_RUN(argc, argv, tests);
}
