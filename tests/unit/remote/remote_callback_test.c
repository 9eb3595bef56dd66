/*
 * remote_callback_test.c - calls from remote_peer back to this test
 * process (docs/contract.md C1-C2, F2, T1): tells, every call style, timeouts,
 * errors, and fenced and idle endpoints of the test process.
 */
#include "peer_calls.h"

/* ---- calls from the peer to the test process --------------------------------
 */

static void test_peer_tells_the_test_process(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    Flremote__CallBackReply *r = call_back_expect(
        &fx,
        &(cb_args_t){
            .style = FLREMOTE__STYLE__STYLE_TELL, .method = M_COUNT, .n = 5},
        FL_OK);
    cb_free(r);
    assert_int_equal(5, rg_store_wait(&fx.back, &fx.back.count, 1, WAIT_MS));

    fx_end(&fx);
}

static void test_peer_calls_the_test_process_in_every_style(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    for (size_t i = 0; i < N_ANSWERED_STYLES; i++) {
        Flremote__CallBackReply *r =
            call_back_expect(&fx,
                             &(cb_args_t){.style = ANSWERED_STYLES[i],
                                          .method = M_ECHO,
                                          .text = "from the peer",
                                          .n = 100 + (int64_t)i},
                             FL_OK);
        assert_int_equal(100 + i, r->n);
        assert_string_equal("from the peer", r->text);
        if (ANSWERED_STYLES[i] == FLREMOTE__STYLE__STYLE_CLOSURE)
            assert_int_equal(1, r->closure_runs);
        cb_free(r);
    }

    /* A large reply from us to the peer. */
    Flremote__CallBackReply *r =
        call_back_expect(&fx,
                         &(cb_args_t){.style = FLREMOTE__STYLE__STYLE_FUTURE,
                                      .method = M_SIZE,
                                      .n = 1 << 20},
                         FL_OK);
    assert_int_equal(1 << 20, r->n);
    assert_int_equal(1 << 20, r->text_len);
    cb_free(r);

    fx_end(&fx);
}

static void test_peer_call_timeouts_to_the_test_process(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    /* closure: fl_rpc_next_timeout; future: fl_rpc_call; sync. */
    for (size_t i = 0; i < N_ANSWERED_STYLES; i++) {
        Flremote__CallBackReply *r =
            call_back_expect(&fx,
                             &(cb_args_t){.style = ANSWERED_STYLES[i],
                                          .method = M_BLOCK,
                                          .text = "never answered in time",
                                          .timeout_ms = SHORT_MS},
                             FL_ETIMEDOUT);
        fl_test_assert_elapsed("the peer's call timeout",
                               (uint64_t)r->elapsed_ms, SHORT_MS,
                               SHORT_MS + PROMPT_MS);
        cb_free(r);
    }

    /* Late answers to the three reach the peer after its timeouts; the
     * peer's next call is served. */
    assert_int_equal(3, rg_store_release(&fx.back, true, 0));
    Flremote__CallBackReply *r =
        call_back_expect(&fx,
                         &(cb_args_t){.style = FLREMOTE__STYLE__STYLE_SYNC,
                                      .method = M_ECHO,
                                      .text = "after late answers",
                                      .n = 8},
                         FL_OK);
    assert_int_equal(8, r->n);
    cb_free(r);

    fx_end(&fx);
}

static void test_peer_gets_the_test_processs_errors_intact(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    for (size_t i = 0; i < N_ANSWERED_STYLES; i++) {
        int code = FL_EUSER + 77 + (int)i;
        Flremote__CallBackReply *r =
            call_back_expect(&fx,
                             &(cb_args_t){.style = ANSWERED_STYLES[i],
                                          .method = M_FAIL,
                                          .code = code,
                                          .text = "from the test process"},
                             code);
        /* A blocking call returns only the code. */
        if (ANSWERED_STYLES[i] != FLREMOTE__STYLE__STYLE_SYNC)
            assert_string_equal("from the test process", r->message);
        cb_free(r);
    }

    Flremote__CallBackReply *r =
        call_back_expect(&fx,
                         &(cb_args_t){.style = FLREMOTE__STYLE__STYLE_FUTURE,
                                      .method = M_FAIL,
                                      .code = FL_ESTATE},
                         FL_ESTATE);
    assert_string_equal(fl_strerror(FL_ESTATE), r->message);
    cb_free(r);

    fx_end(&fx);
}

static void test_peer_calls_fenced_and_idle_test_endpoints(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    const char *fenced = fl_rpc_endpoint_address(fx.backf_ep);
    fl_fencing_token_t right = fl_test_token(TEST_TOKEN_BYTE);
    fl_fencing_token_t wrong = fl_test_token(WRONG_TOKEN_BYTE);

    /* The right token is served; a wrong one and none connect (tokens are
     * not checked then), but the call fails with FL_EFENCING. Not started:
     * the connect succeeds, the call fails. */
    const struct {
        cb_args_t args;
        int want;
    } cases[] = {
        {{.address = fenced,
          .token = &right,
          .style = FLREMOTE__STYLE__STYLE_FUTURE,
          .method = M_ECHO,
          .text = "right token",
          .n = 1},
         FL_OK},
        {{.address = fenced,
          .token = &wrong,
          .style = FLREMOTE__STYLE__STYLE_SYNC,
          .method = M_ECHO,
          .text = "wrong token"},
         FL_EFENCING},
        {{.address = fenced,
          .style = FLREMOTE__STYLE__STYLE_CLOSURE,
          .method = M_ECHO,
          .text = "no token"},
         FL_EFENCING},
        {{.address = fl_rpc_endpoint_address(fx.backidle_ep),
          .style = FLREMOTE__STYLE__STYLE_FUTURE,
          .method = M_ECHO,
          .text = "too early"},
         FL_ENOTSTARTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Flremote__CallBackReply *r =
            call_back_expect(&fx, &cases[i].args, cases[i].want);
        if (cases[i].want == FL_OK)
            assert_int_equal(cases[i].args.n, r->n);
        cb_free(r);
    }

    /* An id the test process does not have: the connect fails. */
    char address[300];
    format_address(address, sizeof address, fl_rpc_service_port(fx.svc),
                   "nobody");
    Flremote__CallBackReply *r =
        call_back(&fx, &(cb_args_t){.address = address,
                                    .style = FLREMOTE__STYLE__STYLE_FUTURE,
                                    .method = M_ECHO});
    assert_fl(FL_ECONNECT, r->connect_code);
    if (!strstr(r->message, address))
        fail_msg("message \"%s\" does not name %s", r->message, address);
    cb_free(r);

    fx_end(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        REMOTE_TEST(test_peer_tells_the_test_process),
        REMOTE_TEST(test_peer_calls_the_test_process_in_every_style),
        REMOTE_TEST(test_peer_call_timeouts_to_the_test_process),
        REMOTE_TEST(test_peer_gets_the_test_processs_errors_intact),
        REMOTE_TEST(test_peer_calls_fenced_and_idle_test_endpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
