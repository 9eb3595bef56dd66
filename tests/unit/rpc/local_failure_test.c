/*
 * local_failure_test.c - what the runtime's own failures of local calls
 * say (issue 15): a timeout names the method, the endpoint's address and
 * the timeout (fl_rpc_call, fl_rpc_call_sync, a stub's closure,
 * fl_rpc_call_async); a call or tell to a terminated endpoint names the
 * endpoint and the method, not an actor id; a failing on_start gives its
 * own message (fl_rpc_start_fail). Calls go through local gateways
 * ("fling://local/<id>") in both runs: over the tcp run the service
 * listens, so the endpoint's address is its fling.tcp:// one.
 */
#include "rpc_fixture.h"

#define SHORT_MS 50

/* A gateway of svc to its own endpoint `id`, through the local transport. */
static fl_rpc_gateway_t *local_gw(fl_rpc_service_t *svc, const char *id)
{
    char addr[256];
    snprintf(addr, sizeof addr, "fling://local/%s", id);
    return gw_connect(svc, addr, TG, NULL);
}

/* The timeout text of method m of TestGateway on ep after ms. */
static void timeout_text(char *buf, size_t cap, const char *method,
                         fl_rpc_endpoint_t *ep, int ms)
{
    snprintf(buf, cap,
             "Invocation of fltest.TestGateway.%s on %s timed out after %d ms",
             method, fl_rpc_endpoint_address(ep), ms);
}

/* Parks a Block call (timeout SHORT_MS) and waits until the handler has
 * parked it: the call can then only time out. Returns its future. */
static fl_future_t *blocked_call(ep_fx_t *fx, fl_rpc_gateway_t *gw)
{
    fl_test_latch_t *l = fl_test_latch_alloc(1);
    fx->st.blocked = l;
    Fltest__EchoRequest req = echo_req("wait", 1);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_call(gw, M_BLOCK, &req.base, SHORT_MS, &f));
    wait_latch(l);
    fx->st.blocked = NULL;
    fl_test_latch_free(l);
    return f;
}

/* ---- timeouts ------------------------------------------------------------ */

static void test_call_timeout_names_method_endpoint_and_timeout(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "greeter", FX_START);
    fl_rpc_gateway_t *gw = local_gw(fx.svc, "greeter");

    fl_future_t *f = blocked_call(&fx, gw);
    assert_fl(FL_ETIMEDOUT, future_code(f));
    char want[512];
    timeout_text(want, sizeof want, "Block", fx.ep, SHORT_MS);
    assert_string_equal(want, fl_future_message(f));
    fl_future_release(f);

    tep_release_parked(&fx.st, "late", 1);
    fl_rpc_gateway_free(gw);
    ep_fx_end(&fx);
}

static void test_call_sync_timeout_sets_the_named_last_message(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "greeter", FX_START);
    fl_rpc_gateway_t *gw = local_gw(fx.svc, "greeter");

    /* Park the main thread so that the call stays queued past its time. */
    hold_t h = {fl_test_latch_alloc(1), fl_test_latch_alloc(1)};
    assert_fl_ok(fl_rpc_run_async(fx.ep, hold_task, &h, NULL));
    wait_latch(h.entered);
    Fltest__EchoRequest req = echo_req("ping", 1);
    ProtobufCMessage *reply = NULL;
    assert_fl(FL_ETIMEDOUT,
              fl_rpc_call_sync(gw, M_ECHO, &req.base, SHORT_MS, &reply));
    assert_null(reply);
    char want[512];
    timeout_text(want, sizeof want, "Echo", fx.ep, SHORT_MS);
    assert_fl(FL_ETIMEDOUT, fl_rpc_last_error());
    assert_string_equal(want, fl_rpc_last_message());
    fl_test_latch_count_down(h.gate);

    expect_echo(gw, "after", 2); /* the endpoint serves on */
    fl_test_latch_free(h.entered);
    fl_test_latch_free(h.gate);
    fl_rpc_gateway_free(gw);
    ep_fx_end(&fx);
}

static void test_stub_closure_timeout_names_the_call(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "greeter", FX_START);
    fl_rpc_gateway_t *gw = local_gw(fx.svc, "greeter");

    fl_test_latch_t *parked = fl_test_latch_alloc(1);
    fx.st.blocked = parked;
    seen_t s = {.done = fl_test_latch_alloc(1)};
    Fltest__EchoRequest req = echo_req("wait", 1);
    fl_rpc_next_timeout(SHORT_MS);
    fltest__test_gateway__block(fl_rpc_gateway_service(gw), &req, seen_closure,
                                &s);
    assert_fl_ok(fl_rpc_last_error());
    wait_latch(s.done);
    assert_false(s.got_reply);
    assert_fl(FL_ETIMEDOUT, s.err);
    char want[512];
    timeout_text(want, sizeof want, "Block", fx.ep, SHORT_MS);
    assert_string_equal(want, s.msg);

    wait_latch(parked);
    fx.st.blocked = NULL;
    tep_release_parked(&fx.st, "late", 1);
    fl_test_latch_free(parked);
    fl_test_latch_free(s.done);
    fl_rpc_gateway_free(gw);
    ep_fx_end(&fx);
}

static int never_called(fl_rpc_endpoint_t *ep, void *state, void *arg,
                        void **out, fl_free_cb *out_free)
{
    (void)ep;
    (void)state;
    (void)out;
    (void)out_free;
    atomic_fetch_add((atomic_int *)arg, 1);
    return FL_OK;
}

static void test_call_async_timeout_names_the_endpoint(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "greeter", FX_START);
    hold_t h = {fl_test_latch_alloc(1), fl_test_latch_alloc(1)};
    assert_fl_ok(fl_rpc_run_async(fx.ep, hold_task, &h, NULL));
    wait_latch(h.entered);

    atomic_int ran = 0;
    fl_future_t *f = NULL;
    assert_fl_ok(
        fl_rpc_call_async(fx.ep, never_called, &ran, NULL, SHORT_MS, &f));
    assert_fl(FL_ETIMEDOUT, future_code(f));
    char want[512];
    snprintf(want, sizeof want,
             "Invocation of a callable on %s timed out after %d ms",
             fl_rpc_endpoint_address(fx.ep), SHORT_MS);
    assert_string_equal(want, fl_future_message(f));
    fl_future_release(f);

    fl_test_latch_count_down(h.gate);
    /* The endpoint ends after the hold and the callable (in that order):
     * only then are the latches and `ran` free. */
    ep_fx_end(&fx);
    assert_int_equal(1, atomic_load(&ran));
    fl_test_latch_free(h.entered);
    fl_test_latch_free(h.gate);
}

/* ---- a terminated endpoint ----------------------------------------------- */

#define GONE_ECHO                                                              \
    "recipient unreachable: rpc endpoint 'gone' has terminated "               \
    "(fltest.TestGateway.Echo not delivered)"

static void
test_call_to_terminated_endpoint_names_endpoint_and_method(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "gone", FX_START);
    fl_rpc_gateway_t *gw = local_gw(fx.svc, "gone");
    fl_future_release(tep_close(fx.ep));

    /* fl_rpc_call: the future fails. */
    fl_future_t *f = call_echo(gw, "late", 1);
    assert_fl(FL_EUNREACHABLE, future_code(f));
    assert_string_equal(GONE_ECHO, fl_future_message(f));
    fl_future_release(f);

    /* fl_rpc_call_sync: the last message says the same. */
    Fltest__EchoRequest req = echo_req("late", 2);
    ProtobufCMessage *reply = NULL;
    assert_fl(FL_EUNREACHABLE,
              fl_rpc_call_sync(gw, M_ECHO, &req.base, 0, &reply));
    assert_string_equal(GONE_ECHO, fl_rpc_last_message());

    /* A stub's closure. */
    seen_t s = {.done = fl_test_latch_alloc(1)};
    fltest__test_gateway__echo(fl_rpc_gateway_service(gw), &req, seen_closure,
                               &s);
    wait_latch(s.done);
    assert_false(s.got_reply);
    assert_fl(FL_EUNREACHABLE, s.err);
    assert_string_equal(GONE_ECHO, s.msg);
    fl_test_latch_free(s.done);

    /* A tell: the last error and message. */
    tell_count(gw, 0, 1);
    assert_fl(FL_EUNREACHABLE, fl_rpc_last_error());
    assert_string_equal("recipient unreachable: rpc endpoint 'gone' has "
                        "terminated (fltest.TestGateway.Count not delivered)",
                        fl_rpc_last_message());

    /* fl_rpc_call_async, start and stop. */
    atomic_int ran = 0;
    assert_fl_ok(fl_rpc_call_async(fx.ep, never_called, &ran, NULL, 1000, &f));
    assert_fl(FL_EUNREACHABLE, future_code(f));
    assert_string_equal(
        "recipient unreachable: rpc endpoint 'gone' has terminated",
        fl_future_message(f));
    fl_future_release(f);
    assert_fl(FL_EUNREACHABLE, fl_rpc_endpoint_start(fx.ep));
    assert_string_equal(
        "recipient unreachable: rpc endpoint 'gone' has terminated",
        fl_rpc_last_message());
    assert_fl(FL_EUNREACHABLE, fl_rpc_endpoint_stop(fx.ep));
    assert_fl(FL_EUNREACHABLE, fl_rpc_last_error());
    assert_int_equal(0, atomic_load(&ran));

    fl_rpc_gateway_free(gw);
    ep_fx_end_closed(&fx);
}

/* A call queued when its endpoint ends becomes a dead letter: it names the
 * endpoint too (the endpoint's memory is still the call's). */
static void test_call_queued_when_endpoint_ends_names_it(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_init(&fx);
    fl_future_t *stop = tep_pending_stop(&fx.st);
    ep_fx_open(&fx, "gone", FX_START);
    fl_rpc_gateway_t *gw = local_gw(fx.svc, "gone");
    fl_future_t *term = fl_rpc_endpoint_close(fx.ep);
    wait_latch(fx.st.stopping); /* on_stop ran: serving until stop completes */

    hold_t h = {fl_test_latch_alloc(1), fl_test_latch_alloc(1)};
    assert_fl_ok(fl_rpc_run_async(fx.ep, hold_task, &h, NULL));
    wait_latch(h.entered);
    fl_future_t *f = call_echo(gw, "queued", 1);        /* behind the hold */
    assert_fl_ok(fl_future_complete(stop, NULL, NULL)); /* the end, now */
    fl_test_latch_count_down(h.gate);

    assert_fl(FL_EUNREACHABLE, future_code(f));
    assert_string_equal(GONE_ECHO, fl_future_message(f));
    fl_future_release(f);
    assert_fl_ok(future_code(term));
    fl_future_release(term);
    fl_future_release(stop);
    fl_test_latch_free(fx.st.stopping);
    fl_test_latch_free(h.entered);
    fl_test_latch_free(h.gate);
    fl_rpc_gateway_free(gw);
    ep_fx_end_closed(&fx);
}

/* ---- on_start failing with a message --------------------------------------
 */

typedef struct starter {
    int code;              /* what on_start returns through fl_rpc_start_fail */
    const char *path;      /* named in the message */
    atomic_int outside_rc; /* fl_rpc_start_fail from a task: FL_ESTATE */
} starter_t;

static int starter_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    starter_t *s = state;
    if (s->code == FL_OK) {
        /* Said, then succeeded: nothing failed. */
        (void)fl_rpc_start_fail(ep, FL_EUSER, "never shown");
        return FL_OK;
    }
    return fl_rpc_start_fail(ep, s->code, "cannot open %s", s->path);
}

static fl_rpc_endpoint_t *starter_create(fl_rpc_service_t *svc, const char *id,
                                         starter_t *s)
{
    fl_rpc_endpoint_opts_t o = tep_opts(id, NULL, NULL);
    o.state = s;
    o.on_start = starter_on_start;
    o.on_stop = NULL;
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(svc, &o, &ep));
    return ep;
}

static void test_on_start_fails_with_its_own_message(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    starter_t s = {.code = FL_EUSER + 1, .path = "/x"};
    fl_rpc_endpoint_t *ep = starter_create(svc, "starter", &s);
    assert_fl_ok(fl_rpc_endpoint_start(ep));
    fl_future_t *term = fl_rpc_endpoint_termination(ep);
    assert_fl(FL_EUSER + 1, future_code(term));
    assert_string_equal("Could not start RpcEndpoint starter: cannot open /x",
                        fl_future_message(term));
    fl_future_release(term);
    fl_rpc_endpoint_free(ep);
    svc_end_any(svc);
}

static void outside_start(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    starter_t *s = state;
    atomic_store(&s->outside_rc,
                 fl_rpc_start_fail(ep, FL_EUSER, "too late %d", 1));
    fl_test_latch_count_down(arg);
}

static void test_start_fail_outside_on_start_is_estate(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    starter_t s = {.code = FL_OK};
    fl_rpc_endpoint_t *ep = starter_create(svc, "starter", &s);
    assert_fl_ok(fl_rpc_endpoint_start(ep));

    /* On the main thread, but not in on_start. */
    fl_test_latch_t *l = fl_test_latch_alloc(1);
    assert_fl_ok(fl_rpc_run_async(ep, outside_start, l, NULL));
    wait_latch(l);
    fl_test_latch_free(l);
    assert_fl(FL_ESTATE, atomic_load(&s.outside_rc));
    /* Off the main thread: the caller's last message says why. */
    assert_fl(FL_ESTATE, fl_rpc_start_fail(ep, FL_EUSER, "no"));
    assert_string_equal("fl_rpc_start_fail refused: not called from on_start "
                        "of rpc endpoint 'starter'",
                        fl_rpc_last_message());
    assert_fl(FL_EINVAL, fl_rpc_start_fail(NULL, FL_EUSER, "no"));
    assert_string_equal("fl_rpc_start_fail refused: ep is NULL",
                        fl_rpc_last_message());

    /* on_start said something and returned FL_OK: the endpoint runs and
     * terminates cleanly. */
    fl_future_t *term = fl_rpc_endpoint_close(ep);
    assert_fl_ok(future_code(term));
    fl_future_release(term);
    fl_rpc_endpoint_free(ep);
    svc_end(svc);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_call_timeout_names_method_endpoint_and_timeout),
        FL_TEST(test_call_sync_timeout_sets_the_named_last_message),
        FL_TEST(test_stub_closure_timeout_names_the_call),
        FL_TEST(test_call_async_timeout_names_the_endpoint),
        FL_TEST(test_call_to_terminated_endpoint_names_endpoint_and_method),
        FL_TEST(test_call_queued_when_endpoint_ends_names_it),
        FL_TEST(test_on_start_fails_with_its_own_message),
        FL_TEST(test_start_fail_outside_on_start_is_estate),
    };
    return FX_RUN(argc, argv, tests);
}
