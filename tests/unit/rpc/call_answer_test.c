/*
 * call_answer_test.c - answering calls (reply, fail, defer, reply_future,
 * no answer), exact error propagation and request copying.
 */
#include "call_fixture.h"

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

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
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
    };
    return FX_RUN(argc, argv, tests);
}
