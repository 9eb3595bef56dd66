/*
 * fencing_test.c - fenced endpoints (docs/contract.md F1-F6): only calls
 * stamped with the endpoint's token pass; wrong-token and unfenced gateways
 * connect but their calls fail with FL_EFENCING; the endpoint's own tasks and
 * self gateway always pass; the not-started check comes before fencing.
 */
#include "rpc_fixture.h"

/* ---- helpers ------------------------------------------------------------- */

static const uint8_t TOKEN_A = 0xA1;
static const uint8_t TOKEN_B = 0xB2;

/* A fenced endpoint "fenced" with token A, and the test's handles. */
typedef struct fixture {
    fl_rpc_service_t *svc;
    tep_t st;
    fl_fencing_token_t a, b;
    fl_rpc_endpoint_t *ep;
} fixture_t;

static void fx_begin(fixture_t *fx, bool start)
{
    fx->svc = svc_new(0);
    tep_init(&fx->st);
    fx->a = token_of(TOKEN_A);
    fx->b = token_of(TOKEN_B);
    fx->ep = tep_create(fx->svc, "fenced", &fx->st, &fx->a);
    if (start)
        tep_start(fx->ep, &fx->st);
}

static void fx_end(fixture_t *fx)
{
    tep_end(fx->ep);
    svc_end(fx->svc);
}

static void assert_token(const fl_fencing_token_t *want,
                         const fl_fencing_token_t *got)
{
    if (memcmp(want->bytes, got->bytes, sizeof want->bytes) != 0)
        fail_msg("token %02x.. , want %02x..", got->bytes[0], want->bytes[0]);
}

typedef struct task_ctx {
    atomic_int ran;
    atomic_int freed;
    fl_test_latch_t *done;
} task_ctx_t;

static void ctx_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    task_ctx_t *c = arg;
    atomic_fetch_add(&c->ran, 1);
    fl_test_latch_count_down(c->done);
}

/* A blocking Echo through gw must fail with code and leave the reply
 * NULL. */
static void expect_sync_echo_fails(fl_rpc_gateway_t *gw, int code)
{
    Fltest__EchoRequest req = echo_req("blocking", 2);
    ProtobufCMessage *reply = NULL;
    assert_fl(code, fl_rpc_call_sync(gw, M_ECHO, &req.base, 0, &reply));
    assert_null(reply);
}

/* Waits until c's task has run, checks it ran once and its arg was not
 * freed instead, then frees c's latch. */
static void ctx_expect_ran(task_ctx_t *c)
{
    wait_latch(c->done);
    assert_int_equal(1, atomic_load(&c->ran));
    assert_int_equal(0, atomic_load(&c->freed));
    fl_test_latch_free(c->done);
}

static void ctx_free(void *arg)
{
    task_ctx_t *c = arg;
    atomic_fetch_add(&c->freed, 1);
    fl_test_latch_count_down(c->done);
}

static int ctx_callable(fl_rpc_endpoint_t *ep, void *state, void *arg,
                        void **out, fl_free_cb *out_free)
{
    ctx_task(ep, state, arg);
    *out = NULL;
    *out_free = NULL;
    return FL_OK;
}

static void ctx_future_cb(fl_future_t *f, void *arg)
{
    (void)f;
    ctx_task(NULL, NULL, arg);
}

/* ---- gateways and tokens ------------------------------------------------- */

static void test_gateway_with_the_endpoints_token_is_served(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx, true);
    fl_rpc_gateway_t *gw = gw_to(fx.svc, fx.ep, &fx.a);

    expect_echo(gw, "right token", 1);
    Fltest__EchoRequest req = echo_req("blocking", 2);
    ProtobufCMessage *reply = NULL;
    assert_fl_ok(fl_rpc_call_sync(gw, M_ECHO, &req.base, 0, &reply));
    protobuf_c_message_free_unpacked(reply, NULL);

    fl_rpc_gateway_free(gw);
    fx_end(&fx);
}

static void
test_gateway_with_another_token_connects_but_calls_fail_efencing(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx, true);
    fl_rpc_gateway_t *gw = gw_to(fx.svc, fx.ep, &fx.b); /* connects fine */

    assert_fl(FL_EFENCING, echo_code(gw));
    expect_sync_echo_fails(gw, FL_EFENCING);

    fl_rpc_gateway_free(gw);
    fx_end(&fx);
}

static void test_tell_with_another_token_is_dropped(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx, true);
    fl_rpc_gateway_t *wrong = gw_to(fx.svc, fx.ep, &fx.b);
    fl_rpc_gateway_t *right = gw_to(fx.svc, fx.ep, &fx.a);

    tell_count(wrong, 0, 0);
    expect_echo(right, "after the tell", 1); /* same sender: handled after */
    assert_int_equal(0, atomic_load(&fx.st.counts));

    fl_rpc_gateway_free(wrong);
    fl_rpc_gateway_free(right);
    fx_end(&fx);
}

static void
test_unfenced_gateway_to_a_fenced_endpoint_fails_every_call(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx, true);
    fl_rpc_gateway_t *gw = gw_to(fx.svc, fx.ep, NULL);

    assert_fl(FL_EFENCING, echo_code(gw));
    Fltest__Empty e = FLTEST__EMPTY__INIT;
    assert_fl(FL_EFENCING, call_code(gw, M_PROBE, &e.base));
    expect_sync_echo_fails(gw, FL_EFENCING);

    fl_rpc_gateway_free(gw);
    fx_end(&fx);
}

static void test_unfenced_gateway_has_no_token_to_report(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx, true);
    fl_rpc_gateway_t *gw = gw_to(fx.svc, fx.ep, NULL);

    fl_fencing_token_t tok = token_of(0);
    assert_fl(FL_ENOTSUP, fl_rpc_gateway_fencing_token(gw, &tok));

    fl_rpc_gateway_free(gw);
    fx_end(&fx);
}

static void test_fenced_gateway_reports_the_token_it_stamps(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx, true);
    fl_rpc_gateway_t *ga = gw_to(fx.svc, fx.ep, &fx.a);
    fl_rpc_gateway_t *gb = gw_to(fx.svc, fx.ep, &fx.b);

    fl_fencing_token_t tok = token_of(0);
    assert_fl_ok(fl_rpc_gateway_fencing_token(ga, &tok));
    assert_token(&fx.a, &tok);
    assert_fl_ok(fl_rpc_gateway_fencing_token(gb, &tok));
    assert_token(&fx.b, &tok); /* its own, even though it is wrong */

    fl_rpc_gateway_free(ga);
    fl_rpc_gateway_free(gb);
    fx_end(&fx);
}

static void test_gateway_copies_the_token_at_connect(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx, true);
    fl_fencing_token_t tmp = fx.a;
    fl_rpc_gateway_t *gw = gw_to(fx.svc, fx.ep, &tmp);
    memset(&tmp, 0, sizeof tmp);

    expect_echo(gw, "copied token", 3);

    fl_rpc_gateway_free(gw);
    fx_end(&fx);
}

static void test_endpoint_reports_its_fencing_token(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx, false);

    fl_fencing_token_t tok = token_of(0);
    assert_fl_ok(fl_rpc_endpoint_fencing_token(fx.ep, &tok));
    assert_token(&fx.a, &tok);

    fx_end(&fx);
}

/* ---- the endpoint's own work passes -------------------------------------- */

static void test_run_async_passes_fencing(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx, true);

    task_ctx_t c = {.done = fl_test_latch_alloc(1)};
    assert_fl_ok(fl_rpc_run_async(fx.ep, ctx_task, &c, ctx_free));
    ctx_expect_ran(&c);

    fx_end(&fx);
}

static void test_call_async_passes_fencing(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx, true);

    task_ctx_t c = {.done = fl_test_latch_alloc(1)};
    fl_future_t *f = NULL;
    assert_fl_ok(
        fl_rpc_call_async(fx.ep, ctx_callable, &c, ctx_free, 5000, &f));
    assert_fl_ok(future_code(f));
    assert_int_equal(1, atomic_load(&c.ran));

    fl_future_release(f);
    fl_test_latch_free(c.done);
    fx_end(&fx);
}

static void test_scheduled_run_async_passes_fencing(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx, true);

    task_ctx_t c = {.done = fl_test_latch_alloc(1)};
    assert_fl_ok(
        fl_rpc_schedule_run_async(fx.ep, ctx_task, &c, ctx_free, 20, NULL));
    ctx_expect_ran(&c);

    fx_end(&fx);
}

static void test_on_complete_passes_fencing(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx, true);

    task_ctx_t c = {.done = fl_test_latch_alloc(1)};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_rpc_on_complete(fx.ep, f, ctx_future_cb, &c, ctx_free));
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    ctx_expect_ran(&c);

    fl_future_release(f);
    fx_end(&fx);
}

static void test_self_gateway_calls_pass_fencing(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx, true);
    fl_rpc_gateway_t *self = NULL;
    assert_fl_ok(fl_rpc_self_gateway(fx.ep, TG, &self));

    expect_echo(self, "self call", 4);
    fx.st.counted = fl_test_latch_alloc(1);
    tell_count(self, 0, 0);
    wait_latch(fx.st.counted);
    assert_int_equal(1, atomic_load(&fx.st.counts));

    fl_rpc_gateway_free(self);
    fx_end(&fx);
    fl_test_latch_free(fx.st.counted);
}

static void test_self_gateway_reports_the_endpoints_token(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx, true);
    fl_rpc_gateway_t *self = NULL;
    assert_fl_ok(fl_rpc_self_gateway(fx.ep, TG, &self));

    fl_fencing_token_t tok = token_of(0);
    assert_fl_ok(fl_rpc_gateway_fencing_token(self, &tok));
    assert_token(&fx.a, &tok);

    fl_rpc_gateway_free(self);
    fx_end(&fx);
}

static void test_self_gateway_of_an_unfenced_endpoint_has_no_token(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "plain", FX_START);
    fl_rpc_gateway_t *self = NULL;
    assert_fl_ok(fl_rpc_self_gateway(fx.ep, TG, &self));

    fl_fencing_token_t tok = token_of(0);
    assert_fl(FL_ENOTSUP, fl_rpc_gateway_fencing_token(self, &tok));

    fl_rpc_gateway_free(self);
    ep_fx_end(&fx);
}

/* ---- order of the checks ------------------------------------------------- */

static void test_not_started_check_comes_before_fencing(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx, false);
    fl_rpc_gateway_t *wrong = gw_to(fx.svc, fx.ep, &fx.b);
    fl_rpc_gateway_t *unfenced = gw_to(fx.svc, fx.ep, NULL);

    assert_fl(FL_ENOTSTARTED, echo_code(wrong));
    assert_fl(FL_ENOTSTARTED, echo_code(unfenced));
    tep_start(fx.ep, &fx.st);
    assert_fl(FL_EFENCING, echo_code(wrong));
    assert_fl(FL_EFENCING, echo_code(unfenced));

    fl_rpc_gateway_free(wrong);
    fl_rpc_gateway_free(unfenced);
    fx_end(&fx);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_gateway_with_the_endpoints_token_is_served),
        FL_TEST(
            test_gateway_with_another_token_connects_but_calls_fail_efencing),
        FL_TEST(test_tell_with_another_token_is_dropped),
        FL_TEST(test_unfenced_gateway_to_a_fenced_endpoint_fails_every_call),
        FL_TEST(test_unfenced_gateway_has_no_token_to_report),
        FL_TEST(test_fenced_gateway_reports_the_token_it_stamps),
        FL_TEST(test_gateway_copies_the_token_at_connect),
        FL_TEST(test_endpoint_reports_its_fencing_token),
        FL_TEST(test_run_async_passes_fencing),
        FL_TEST(test_call_async_passes_fencing),
        FL_TEST(test_scheduled_run_async_passes_fencing),
        FL_TEST(test_on_complete_passes_fencing),
        FL_TEST(test_self_gateway_calls_pass_fencing),
        FL_TEST(test_self_gateway_reports_the_endpoints_token),
        FL_TEST(test_self_gateway_of_an_unfenced_endpoint_has_no_token),
        FL_TEST(test_not_started_check_comes_before_fencing),
    };
    return FX_RUN(argc, argv, tests);
}
