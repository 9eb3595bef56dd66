/*
 * call_test.c - the four call styles (tell, closure, future, blocking),
 * answering calls (reply, fail, defer, reply_future, no answer), exact error
 * propagation, request copying, timeouts (per call, next stub call, gateway)
 * and refused blocking calls on runtime threads.
 */
#include "rpc_fixture.h"

/* ---- helpers ------------------------------------------------------------- */

/* What a stub closure saw. */
typedef struct closure_ctx {
    atomic_int runs;
    bool got_reply;
    char text[128];
    int64_t n;
    int code;
    char message[256];
    fl_rpc_endpoint_t *caller; /* optional: the endpoint that called */
    bool on_caller;            /* fl_rpc_in_main_thread(caller) */
    fl_test_latch_t *done;
} closure_ctx_t;

static void echo_closure(const Fltest__EchoReply *reply, void *data)
{
    closure_ctx_t *c = data;
    c->got_reply = reply != NULL;
    if (reply) {
        snprintf(c->text, sizeof c->text, "%s", reply->text);
        c->n = reply->n;
    }
    c->code = fl_rpc_last_error();
    const char *m = fl_rpc_last_message();
    snprintf(c->message, sizeof c->message, "%s", m ? m : "(null)");
    if (c->caller)
        c->on_caller = fl_rpc_in_main_thread(c->caller);
    atomic_fetch_add(&c->runs, 1);
    fl_test_latch_count_down(c->done);
}

static Fltest__FailRequest fail_req(int code, const char *message)
{
    Fltest__FailRequest r = FLTEST__FAIL_REQUEST__INIT;
    r.code = code;
    r.message = (char *)message;
    return r;
}

/* A blocking call of method m with EchoRequest(text, n) through gw must
 * succeed with the same text and n (and, if type is not NULL, a reply of
 * that type). */
static void expect_sync_reply(fl_rpc_gateway_t *gw, unsigned m,
                              const char *text, int64_t n,
                              const ProtobufCMessageDescriptor *type)
{
    Fltest__EchoRequest req = echo_req(text, n);
    ProtobufCMessage *reply = NULL;
    assert_fl_ok(fl_rpc_call_sync(gw, m, &req.base, 0, &reply));
    assert_non_null(reply);
    if (type)
        assert_ptr_equal(type, reply->descriptor);
    Fltest__EchoReply *r = (Fltest__EchoReply *)reply;
    assert_string_equal(text, r->text);
    assert_int_equal(n, r->n);
    protobuf_c_message_free_unpacked(reply, NULL);
}

/* A run_async task making a stub call with a closure through gw. */
typedef struct call_from {
    fl_rpc_gateway_t *gw;
    closure_ctx_t *c;
} call_from_t;

static void call_from_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    call_from_t *cf = arg;
    Fltest__EchoRequest req = echo_req("from an endpoint", 91);
    fltest__test_gateway__echo(fl_rpc_gateway_service(cf->gw), &req,
                               echo_closure, cf->c);
}

/* ---- tell ---------------------------------------------------------------- */

static void test_tell_through_the_stub_runs_the_handler(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.counted = fl_test_latch_alloc(1);

    tell_count(fx.gw, 0, 0);
    assert_fl_ok(fl_rpc_last_error()); /* it could be queued */
    wait_latch(fx.st.counted);
    assert_int_equal(1, atomic_load(&fx.st.counts));

    ep_fx_end(&fx);
    fl_test_latch_free(fx.st.counted);
}

static void test_is_tell_is_true_only_for_tells(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.probed = fl_test_latch_alloc(1);

    Fltest__Empty e = FLTEST__EMPTY__INIT;
    fltest__test_gateway__probe(fl_rpc_gateway_service(fx.gw), &e, NULL, NULL);
    wait_latch(fx.st.probed);
    assert_true(atomic_load(&fx.st.probe_bits) & PROBE_TELL);
    assert_false(probe_bits(fx.gw, "ep") & PROBE_TELL);

    ep_fx_end(&fx);
    fl_test_latch_free(fx.st.probed);
}

/* ---- closure ------------------------------------------------------------- */

static void test_closure_call_delivers_the_reply(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    closure_ctx_t c = {.done = fl_test_latch_alloc(1)};

    Fltest__EchoRequest req = echo_req("closure reply", 21);
    fltest__test_gateway__echo(fl_rpc_gateway_service(fx.gw), &req,
                               echo_closure, &c);
    wait_latch(c.done);
    assert_int_equal(1, atomic_load(&c.runs));
    assert_true(c.got_reply);
    assert_string_equal("closure reply", c.text);
    assert_int_equal(21, c.n);

    fl_test_latch_free(c.done);
    ep_fx_end(&fx);
}

static void
test_closure_failure_gives_null_reply_and_exact_code_and_message(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    closure_ctx_t c = {.done = fl_test_latch_alloc(1)};

    Fltest__FailRequest req = fail_req(FL_EUSER + 5, "boom number 5");
    fltest__test_gateway__fail(fl_rpc_gateway_service(fx.gw), &req,
                               echo_closure, &c);
    wait_latch(c.done);
    assert_int_equal(1, atomic_load(&c.runs));
    assert_false(c.got_reply);
    assert_fl(FL_EUSER + 5, c.code);
    assert_string_equal("boom number 5", c.message);

    fl_test_latch_free(c.done);
    ep_fx_end(&fx);
}

static void test_closure_runs_on_the_calling_endpoints_main_thread(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    tep_t cst;
    tep_init(&cst);
    fl_rpc_endpoint_t *caller =
        tep_create_started(cli_of(fx.svc), "caller", &cst, NULL);
    closure_ctx_t c = {.done = fl_test_latch_alloc(1), .caller = caller};

    /* The call is made from caller's main thread (a run_async task). */
    call_from_t cf = {.gw = fx.gw, .c = &c};
    assert_fl_ok(fl_rpc_run_async(caller, call_from_task, &cf, NULL));
    wait_latch(c.done);
    assert_int_equal(1, atomic_load(&c.runs));
    assert_true(c.got_reply);
    assert_string_equal("from an endpoint", c.text);
    assert_true(c.on_caller);

    tep_end(caller);
    fl_test_latch_free(c.done);
    ep_fx_end(&fx);
}

static void
test_closure_call_to_a_terminated_endpoint_gets_unreachable(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fl_future_t *t = tep_close(fx.ep);
    closure_ctx_t c = {.done = fl_test_latch_alloc(1)};

    Fltest__EchoRequest req = echo_req("too late", 1);
    fltest__test_gateway__echo(fl_rpc_gateway_service(fx.gw), &req,
                               echo_closure, &c);
    wait_latch(c.done);
    assert_int_equal(1, atomic_load(&c.runs));
    assert_false(c.got_reply);
    assert_fl(FL_EUNREACHABLE, c.code);

    fl_test_latch_free(c.done);
    fl_future_release(t);
    ep_fx_end(&fx); /* closing again is fine */
}

/* ---- future and blocking ------------------------------------------------- */

static void test_future_call_completes_with_the_unpacked_reply(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    fl_future_t *f = call_echo(fx.gw, "future reply", 31);
    expect_reply_of("call", f, "future reply", 31);

    fl_future_release(f);
    ep_fx_end(&fx);
}

static void test_blocking_call_returns_the_reply(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    expect_sync_reply(fx.gw, M_ECHO, "blocking reply", 41,
                      &fltest__echo_reply__descriptor);

    ep_fx_end(&fx);
}

/* ---- answering ----------------------------------------------------------- */

static void test_fail_propagates_a_user_code_and_message_exactly(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    Fltest__FailRequest req = fail_req(FL_EUSER + 42, "custom failure: 42");
    fl_future_t *f = call_async_req(fx.gw, M_FAIL, &req.base, 0);
    assert_fl(FL_EUSER + 42, future_code(f));
    assert_string_equal("custom failure: 42", fl_future_message(f));
    assert_null(fl_future_value(f));

    fl_future_release(f);
    ep_fx_end(&fx);
}

static void test_fail_with_null_format_uses_the_strerror_message(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    Fltest__FailRequest req = fail_req(FL_ESTATE, "");
    fl_future_t *f = call_async_req(fx.gw, M_FAIL, &req.base, 0);
    assert_fl(FL_ESTATE, future_code(f));
    assert_string_equal(fl_strerror(FL_ESTATE), fl_future_message(f));

    fl_future_release(f);
    ep_fx_end(&fx);
}

static void test_blocking_call_returns_the_handlers_failure_code(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    Fltest__FailRequest req = fail_req(FL_EUSER + 43, "blocking failure");
    ProtobufCMessage *reply = (ProtobufCMessage *)&req; /* must become NULL */
    assert_fl(FL_EUSER + 43,
              fl_rpc_call_sync(fx.gw, M_FAIL, &req.base, 0, &reply));
    assert_null(reply);

    ep_fx_end(&fx);
}

static void
test_reply_future_with_a_failed_future_propagates_it_exactly(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    Fltest__FailRequest req = fail_req(FL_EUSER + 3, "failed inner future");
    fl_future_t *f = call_async_req(fx.gw, M_FROM_FUTURE, &req.base, 0);
    assert_fl(FL_EUSER + 3, future_code(f));
    assert_string_equal("failed inner future", fl_future_message(f));

    fl_future_release(f);
    ep_fx_end(&fx);
}

static void
test_reply_future_with_a_successful_future_delivers_its_value(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    Fltest__FailRequest req = fail_req(FL_OK, "inner future value");
    fl_future_t *f = call_async_req(fx.gw, M_FROM_FUTURE, &req.base, 0);
    expect_reply_of("call", f, "inner future value", 7);

    fl_future_release(f);
    ep_fx_end(&fx);
}

static void test_reply_future_completed_later_from_another_thread(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.blocked = fl_test_latch_alloc(1);

    Fltest__FailRequest req = fail_req(FROM_FUTURE_PENDING, "");
    fl_future_t *f = call_async_req(fx.gw, M_FROM_FUTURE, &req.base, 0);
    wait_latch(fx.st.blocked);
    assert_false(fl_future_done(f)); /* waits for the handler's future */

    Fltest__EchoReply *r = malloc(sizeof *r);
    assert_non_null(r);
    fltest__echo_reply__init(r);
    r->text = strdup("completed by the test thread");
    r->n = 111;
    assert_fl_ok(fl_future_complete(fx.st.parked_future, r, echo_reply_free));
    expect_reply_of("call", f, "completed by the test thread", 111);

    fl_future_release(fx.st.parked_future);
    fl_future_release(f);
    fl_test_latch_free(fx.st.blocked);
    ep_fx_end(&fx);
}

static void
test_reply_future_failed_later_propagates_code_and_message(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.blocked = fl_test_latch_alloc(1);

    Fltest__FailRequest req = fail_req(FROM_FUTURE_PENDING, "");
    fl_future_t *f = call_async_req(fx.gw, M_FROM_FUTURE, &req.base, 0);
    wait_latch(fx.st.blocked);
    assert_fl_ok(
        fl_future_fail(fx.st.parked_future, FL_EUSER + 112, "late %s", "no"));
    assert_fl(FL_EUSER + 112, future_code(f));
    assert_string_equal("late no", fl_future_message(f));

    fl_future_release(fx.st.parked_future);
    fl_future_release(f);
    fl_test_latch_free(fx.st.blocked);
    ep_fx_end(&fx);
}

static void
test_deferred_reply_from_another_thread_reaches_the_caller(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    expect_sync_reply(fx.gw, M_LATER, "later", 51, NULL);

    ep_fx_end(&fx);
}

static void test_deferred_call_answered_by_the_test_thread(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.blocked = fl_test_latch_alloc(1);

    Fltest__EchoRequest req = echo_req("ignored", 0);
    fl_future_t *f = call_async_req(fx.gw, M_BLOCK, &req.base, 0);
    wait_latch(fx.st.blocked);
    assert_false(fl_future_done(f)); /* open past the handler's return */
    tep_release_parked(&fx.st, "answered outside", 61);
    expect_reply_of("call", f, "answered outside", 61);

    fl_future_release(f);
    fl_test_latch_free(fx.st.blocked);
    ep_fx_end(&fx);
}

static void test_deferred_call_failed_from_another_thread(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.blocked = fl_test_latch_alloc(1);

    Fltest__EchoRequest req = echo_req("ignored", 0);
    fl_future_t *f = call_async_req(fx.gw, M_BLOCK, &req.base, 0);
    wait_latch(fx.st.blocked);
    void *call = fx.st.parked_call;
    fx.st.parked_call = NULL;
    assert_non_null(call);
    assert_fl_ok(fl_rpc_fail(call, FL_EUSER + 62, "failed from %s", "outside"));
    assert_fl(FL_EUSER + 62, future_code(f));
    assert_string_equal("failed from outside", fl_future_message(f));

    fl_future_release(f);
    fl_test_latch_free(fx.st.blocked);
    ep_fx_end(&fx);
}

static void
test_a_call_is_answered_once_and_later_answers_are_refused(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.twice_done = fl_test_latch_alloc(1);

    Fltest__EchoRequest req = echo_req("first answer", 71);
    fl_future_t *f = call_async_req(fx.gw, M_TWICE, &req.base, 0);
    expect_reply_of("call", f, "first answer", 71);
    wait_latch(fx.st.twice_done);
    assert_fl(FL_EINVAL, atomic_load(&fx.st.twice_fail_ok_rc));
    assert_fl(FL_EALREADY, atomic_load(&fx.st.twice_again_rc));
    assert_true(atomic_load(&fx.st.twice_defer_null));

    fl_future_release(f);
    fl_test_latch_free(fx.st.twice_done);
    ep_fx_end(&fx);
}

static void test_answering_functions_reject_what_is_not_a_call(void **state)
{
    (void)state;
    assert_fl(FL_EINVAL, fl_rpc_fail(NULL, FL_EUSER, "no call"));
    assert_null(fl_rpc_defer(NULL));
    assert_fl(FL_EINVAL, fl_rpc_reply_future(NULL, NULL));
    assert_null(fl_rpc_call_endpoint(NULL));
    assert_null(fl_rpc_call_state(NULL));
}

static void
test_large_request_and_reply_round_trip_in_a_future_call(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    char *text = big_text((size_t)1 << 20, 1); /* 1 MiB: no size limit */

    fl_future_t *f = call_echo(fx.gw, text, 101);
    expect_reply_of("call", f, text, 101);

    fl_future_release(f);
    free(text);
    ep_fx_end(&fx);
}

/* A closure that checks a big reply against the expected text. */
typedef struct big_closure {
    const char *want;
    atomic_int ok;
    atomic_int runs;
    fl_test_latch_t *done;
} big_closure_t;

static void big_closure(const Fltest__EchoReply *reply, void *data)
{
    big_closure_t *b = data;
    atomic_store(&b->ok, reply != NULL && strcmp(reply->text, b->want) == 0);
    atomic_fetch_add(&b->runs, 1);
    fl_test_latch_count_down(b->done);
}

static void
test_large_request_and_reply_round_trip_in_a_closure_call(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    char *text = big_text((size_t)1 << 20, 2);
    big_closure_t b = {.want = text, .done = fl_test_latch_alloc(1)};

    Fltest__EchoRequest req = echo_req(text, 102);
    fltest__test_gateway__echo(fl_rpc_gateway_service(fx.gw), &req, big_closure,
                               &b);
    wait_latch(b.done);
    assert_int_equal(1, atomic_load(&b.runs));
    assert_true(atomic_load(&b.ok));

    fl_test_latch_free(b.done);
    free(text);
    ep_fx_end(&fx);
}

static void
test_request_stays_valid_in_the_handler_after_it_answers(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.twice_done = fl_test_latch_alloc(1);
    /* Large enough to leave any small per-thread buffer, answered through
     * a closure that may run on the handler's thread before it returns. */
    char *text = big_text(64 * 1024, 3);
    big_closure_t b = {.want = text, .done = fl_test_latch_alloc(1)};

    Fltest__EchoRequest req = echo_req(text, 103);
    fltest__test_gateway__twice(fl_rpc_gateway_service(fx.gw), &req,
                                big_closure, &b);
    wait_latch(b.done);
    wait_latch(fx.st.twice_done);
    assert_true(atomic_load(&b.ok));
    assert_true(atomic_load(&fx.st.twice_request_intact));

    fl_test_latch_free(b.done);
    fl_test_latch_free(fx.st.twice_done);
    free(text);
    ep_fx_end(&fx);
}

static void
test_handler_returning_without_an_answer_fails_with_enoreply(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    Fltest__EchoRequest req = echo_req("forgotten", 1);
    assert_fl(FL_ENOREPLY, call_code(fx.gw, M_FORGET, &req.base));

    ep_fx_end(&fx);
}

static void test_handler_sees_its_endpoint_and_state(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    int bits = probe_bits(fx.gw, "ep");
    assert_true(bits & PROBE_STATE);
    assert_true(bits & PROBE_MAIN);

    ep_fx_end(&fx);
}

static void test_caller_may_free_the_request_right_after_the_call(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    static const char text[] = "a heap string the caller frees at once";

    /* Hold the main thread so the handler runs only after the free. */
    hold_t h = {fl_test_latch_alloc(1), fl_test_latch_alloc(1)};
    assert_fl_ok(fl_rpc_run_async(fx.ep, hold_task, &h, NULL));
    wait_latch(h.entered);

    Fltest__EchoRequest *req = malloc(sizeof *req);
    assert_non_null(req);
    fltest__echo_request__init(req);
    req->text = strdup(text);
    req->n = 81;
    fl_future_t *f = call_async_req(fx.gw, M_ECHO, &req->base, 0);
    memset(req->text, 'X', strlen(req->text));
    req->n = -1;
    protobuf_c_message_free_unpacked(&req->base, NULL);
    fl_test_latch_count_down(h.gate);

    expect_reply_of("call", f, text, 81);

    fl_future_release(f);
    fl_test_latch_free(h.entered);
    fl_test_latch_free(h.gate);
    ep_fx_end(&fx);
}

/* ---- timeouts ------------------------------------------------------------ */

static void
test_call_timeout_fails_with_etimedout_after_the_given_time(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.blocked = fl_test_latch_alloc(1);

    Fltest__EchoRequest req = echo_req("never answered", 1);
    uint64_t t0 = fl_clock_now_ns();
    fl_future_t *f = call_async_req(fx.gw, M_BLOCK, &req.base, 50);
    expect_timed_out(f, t0, 50);

    wait_latch(fx.st.blocked);
    tep_release_parked(&fx.st, "too late", 0); /* answer is discarded */
    fl_future_release(f);
    fl_test_latch_free(fx.st.blocked);
    ep_fx_end(&fx);
}

static void test_next_timeout_applies_to_the_next_stub_call_only(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    assert_fl_ok(fl_rpc_gateway_set_timeout(fx.gw, 400));
    Fltest__EchoRequest req = echo_req("blocked", 1);
    ProtobufCService *stub = fl_rpc_gateway_service(fx.gw);

    /* With fl_rpc_next_timeout(50): times out after 50 ms, not 400. */
    closure_ctx_t c1 = {.done = fl_test_latch_alloc(1)};
    fx.st.blocked = fl_test_latch_alloc(1);
    uint64_t t0 = fl_clock_now_ns();
    fl_rpc_next_timeout(50);
    fltest__test_gateway__block(stub, &req, echo_closure, &c1);
    wait_latch(c1.done);
    uint64_t el1 = ms_since(t0);
    assert_false(c1.got_reply);
    assert_fl(FL_ETIMEDOUT, c1.code);
    if (el1 < 50 || el1 >= 400)
        fail_msg("first call timed out after %llu ms, want [50, 400)",
                 (unsigned long long)el1);
    wait_latch(fx.st.blocked);
    tep_release_parked(&fx.st, "late", 0);
    fl_test_latch_free(fx.st.blocked);

    /* The next stub call falls back to the gateway's 400 ms. */
    closure_ctx_t c2 = {.done = fl_test_latch_alloc(1)};
    fx.st.blocked = fl_test_latch_alloc(1);
    t0 = fl_clock_now_ns();
    fltest__test_gateway__block(stub, &req, echo_closure, &c2);
    wait_latch(c2.done);
    uint64_t el2 = ms_since(t0);
    assert_fl(FL_ETIMEDOUT, c2.code);
    if (el2 < 400)
        fail_msg("second call timed out after %llu ms, want >= 400",
                 (unsigned long long)el2);
    wait_latch(fx.st.blocked);
    tep_release_parked(&fx.st, "late", 0);
    fl_test_latch_free(fx.st.blocked);

    fl_test_latch_free(c1.done);
    fl_test_latch_free(c2.done);
    ep_fx_end(&fx);
}

static void test_gateway_timeout_applies_to_calls_without_one(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.blocked = fl_test_latch_alloc(1);
    assert_fl_ok(fl_rpc_gateway_set_timeout(fx.gw, 50));

    Fltest__EchoRequest req = echo_req("blocked", 1);
    uint64_t t0 = fl_clock_now_ns();
    fl_future_t *f = call_async_req(fx.gw, M_BLOCK, &req.base, 0);
    expect_timed_out(f, t0, 50);

    wait_latch(fx.st.blocked);
    tep_release_parked(&fx.st, "late", 0);
    fl_future_release(f);
    fl_test_latch_free(fx.st.blocked);
    ep_fx_end(&fx);
}

static void
test_blocking_call_timeout_returns_etimedout_and_null_reply(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fx.st.blocked = fl_test_latch_alloc(1);

    Fltest__EchoRequest req = echo_req("blocked", 1);
    ProtobufCMessage *reply = (ProtobufCMessage *)&req; /* must become NULL */
    uint64_t t0 = fl_clock_now_ns();
    assert_fl(FL_ETIMEDOUT,
              fl_rpc_call_sync(fx.gw, M_BLOCK, &req.base, 50, &reply));
    uint64_t el = ms_since(t0);
    assert_null(reply);
    if (el < 50 || el >= 5000)
        fail_msg("timed out after %llu ms, want [50, 5000)",
                 (unsigned long long)el);

    wait_latch(fx.st.blocked);
    tep_release_parked(&fx.st, "late", 0);
    fl_test_latch_free(fx.st.blocked);
    ep_fx_end(&fx);
}

/* ---- blocking calls on runtime threads ----------------------------------- */

typedef struct sync_in_task {
    fl_rpc_gateway_t *gw;
    atomic_int rc;
    bool reply_null;
    uint64_t elapsed_ms;
    fl_test_latch_t *done;
} sync_in_task_t;

static void sync_call_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    sync_in_task_t *s = arg;
    Fltest__EchoRequest req = echo_req("from the main thread", 1);
    ProtobufCMessage *reply = (ProtobufCMessage *)&req;
    uint64_t t0 = fl_clock_now_ns();
    atomic_store(&s->rc,
                 fl_rpc_call_sync(s->gw, M_ECHO, &req.base, 2000, &reply));
    s->elapsed_ms = ms_since(t0);
    s->reply_null = reply == NULL;
    if (reply != NULL && reply != (ProtobufCMessage *)&req)
        protobuf_c_message_free_unpacked(reply, NULL);
    fl_test_latch_count_down(s->done);
}

static void
test_blocking_call_on_the_endpoints_own_thread_fails_edeadlk(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    fl_rpc_gateway_t *self = NULL;
    assert_fl_ok(fl_rpc_self_gateway(fx.ep, TG, &self));

    sync_in_task_t s = {.gw = self, .done = fl_test_latch_alloc(1)};
    atomic_init(&s.rc, -1);
    assert_fl_ok(fl_rpc_run_async(fx.ep, sync_call_task, &s, NULL));
    wait_latch(s.done);
    assert_fl(FL_EDEADLK, atomic_load(&s.rc));
    assert_true(s.reply_null);
    assert_true(s.elapsed_ms < 2000); /* refused, not timed out */

    fl_rpc_gateway_free(self);
    fl_test_latch_free(s.done);
    ep_fx_end(&fx);
}

static void
test_blocking_call_on_another_endpoints_thread_fails_edeadlk(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    tep_t cst;
    tep_init(&cst);
    fl_rpc_endpoint_t *caller =
        tep_create_started(cli_of(fx.svc), "caller", &cst, NULL);

    sync_in_task_t s = {.gw = fx.gw, .done = fl_test_latch_alloc(1)};
    atomic_init(&s.rc, -1);
    assert_fl_ok(fl_rpc_run_async(caller, sync_call_task, &s, NULL));
    wait_latch(s.done);
    assert_fl(FL_EDEADLK, atomic_load(&s.rc));
    assert_true(s.reply_null);

    tep_end(caller);
    fl_test_latch_free(s.done);
    ep_fx_end(&fx);
}

/* ---- bad arguments and method lookup ------------------------------------- */

static void test_call_with_a_bad_method_index_fails_with_einval(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    Fltest__EchoRequest req = echo_req("x", 1);
    fl_future_t *f = (fl_future_t *)&req; /* must become NULL */
    assert_fl(FL_EINVAL,
              fl_rpc_call(fx.gw, M_COUNT_OF_METHODS, &req.base, 0, &f));
    assert_null(f);
    f = (fl_future_t *)&req;
    assert_fl(FL_EINVAL, fl_rpc_call(fx.gw, 1000000u, &req.base, 0, &f));
    assert_null(f);

    ep_fx_end(&fx);
}

static void
test_call_with_a_request_of_the_wrong_type_fails_with_einval(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);

    Fltest__FailRequest req = fail_req(FL_EUSER, "wrong type for Echo");
    fl_future_t *f = (fl_future_t *)&req;
    assert_fl(FL_EINVAL, fl_rpc_call(fx.gw, M_ECHO, &req.base, 0, &f));
    assert_null(f);

    ep_fx_end(&fx);
}

static void
test_call_to_a_method_the_endpoint_leaves_null_fails_enomethod(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_init(&fx);
    /* TestGateway without an Echo handler. */
    static Fltest__TestGateway_Service partial;
    partial = *(Fltest__TestGateway_Service *)tep_services()[0];
    partial.echo = NULL;
    static ProtobufCService *const services[1] = {&partial.base};
    fl_rpc_endpoint_opts_t o = tep_opts("partial", &fx.st, NULL);
    o.services = services;
    assert_fl_ok(fl_rpc_endpoint_create(fx.svc, &o, &fx.ep));
    tep_start(fx.ep, &fx.st);
    fx.gw = gw_to(fx.svc, fx.ep, NULL);

    assert_fl(FL_ENOMETHOD, echo_code(fx.gw));
    assert_true(probe_bits(fx.gw, "partial") & PROBE_MAIN); /* others work */

    ep_fx_end(&fx);
}

static void test_method_index_finds_methods_by_their_proto_name(void **state)
{
    (void)state;
    assert_int_equal(M_ECHO, fl_rpc_method_index(TG, "Echo"));
    assert_int_equal(M_FAIL, fl_rpc_method_index(TG, "Fail"));
    assert_int_equal(M_FROM_FUTURE, fl_rpc_method_index(TG, "FromFuture"));
    assert_int_equal(M_TWICE, fl_rpc_method_index(TG, "Twice"));
    assert_int_equal(0, fl_rpc_method_index(OTHER, "Ping"));
    assert_int_equal(-1, fl_rpc_method_index(TG, "Ping"));
    assert_int_equal(-1, fl_rpc_method_index(TG, "NoSuchMethod"));
    assert_int_equal(-1, fl_rpc_method_index(TG, ""));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_tell_through_the_stub_runs_the_handler),
        FL_TEST(test_is_tell_is_true_only_for_tells),
        FL_TEST(test_closure_call_delivers_the_reply),
        FL_TEST(
            test_closure_failure_gives_null_reply_and_exact_code_and_message),
        FL_TEST(test_closure_runs_on_the_calling_endpoints_main_thread),
        FL_TEST(test_closure_call_to_a_terminated_endpoint_gets_unreachable),
        FL_TEST(test_future_call_completes_with_the_unpacked_reply),
        FL_TEST(test_blocking_call_returns_the_reply),
        FL_TEST(test_fail_propagates_a_user_code_and_message_exactly),
        FL_TEST(test_fail_with_null_format_uses_the_strerror_message),
        FL_TEST(test_blocking_call_returns_the_handlers_failure_code),
        FL_TEST(test_reply_future_with_a_failed_future_propagates_it_exactly),
        FL_TEST(test_reply_future_with_a_successful_future_delivers_its_value),
        FL_TEST(test_reply_future_completed_later_from_another_thread),
        FL_TEST(test_reply_future_failed_later_propagates_code_and_message),
        FL_TEST(test_deferred_reply_from_another_thread_reaches_the_caller),
        FL_TEST(test_deferred_call_answered_by_the_test_thread),
        FL_TEST(test_deferred_call_failed_from_another_thread),
        FL_TEST(test_a_call_is_answered_once_and_later_answers_are_refused),
        FL_TEST(test_answering_functions_reject_what_is_not_a_call),
        FL_TEST(test_handler_returning_without_an_answer_fails_with_enoreply),
        FL_TEST(test_handler_sees_its_endpoint_and_state),
        FL_TEST(test_large_request_and_reply_round_trip_in_a_future_call),
        FL_TEST(test_large_request_and_reply_round_trip_in_a_closure_call),
        FL_TEST(test_request_stays_valid_in_the_handler_after_it_answers),
        FL_TEST(test_caller_may_free_the_request_right_after_the_call),
        FL_TEST(test_call_timeout_fails_with_etimedout_after_the_given_time),
        FL_TEST(test_next_timeout_applies_to_the_next_stub_call_only),
        FL_TEST(test_gateway_timeout_applies_to_calls_without_one),
        FL_TEST(test_blocking_call_timeout_returns_etimedout_and_null_reply),
        FL_TEST(test_blocking_call_on_the_endpoints_own_thread_fails_edeadlk),
        FL_TEST(test_blocking_call_on_another_endpoints_thread_fails_edeadlk),
        FL_TEST(test_call_with_a_bad_method_index_fails_with_einval),
        FL_TEST(test_call_with_a_request_of_the_wrong_type_fails_with_einval),
        FL_TEST(test_call_to_a_method_the_endpoint_leaves_null_fails_enomethod),
        FL_TEST(test_method_index_finds_methods_by_their_proto_name),
    };
    return FX_RUN(argc, argv, tests);
}
