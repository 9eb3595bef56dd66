/*
 * registration_conn_test.c - the registered connection
 * (include/fling/registration.h): start once, reconnect only after a
 * success with the old gateway serving until the next one, close, and the
 * callbacks on the owner's main thread, in-process and over TCP.
 */
#include "registration_fixture.h"

#include "oom_fixture.h"

/* ---- registered connection ---------------------------------------------- */

typedef struct seen {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fx_t *fx;
    int successes, rejections, failures, off_main;
    int64_t last_id;
    fl_rpc_gateway_t *last_gw;
    char reason[FL_REGISTRATION_REASON_MAX];
    int err;
    char message[FL_FUTURE_MESSAGE_MAX];
} seen_t;

static void seen_init(seen_t *s, fx_t *fx)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    fl_test_cond_init(&s->cv);
    s->fx = fx;
}

static void seen_mark(seen_t *s, fl_registered_connection_t *c)
{
    if (!fl_rpc_in_main_thread(s->fx->owner))
        s->off_main++;
    /* The gateway as the owner sees it in the callback. */
    s->last_gw = fl_registered_connection_gateway(c);
    pthread_cond_broadcast(&s->cv);
}

static void on_success(fl_registered_connection_t *c,
                       const fl_registration_response_t *r, void *arg)
{
    seen_t *s = arg;
    pthread_mutex_lock(&s->mu);
    s->successes++;
    s->last_id = (intptr_t)r->payload;
    seen_mark(s, c);
    pthread_mutex_unlock(&s->mu);
}

static void on_rejection(fl_registered_connection_t *c,
                         const fl_registration_response_t *r, void *arg)
{
    seen_t *s = arg;
    pthread_mutex_lock(&s->mu);
    s->rejections++;
    s->last_id = (intptr_t)r->payload;
    snprintf(s->reason, sizeof s->reason, "%s", r->reason);
    seen_mark(s, c);
    pthread_mutex_unlock(&s->mu);
}

static void on_failure(fl_registered_connection_t *c, int err,
                       const char *message, void *arg)
{
    seen_t *s = arg;
    pthread_mutex_lock(&s->mu);
    s->failures++;
    s->err = err;
    snprintf(s->message, sizeof s->message, "%s", message);
    seen_mark(s, c);
    pthread_mutex_unlock(&s->mu);
}

static const fl_registered_connection_cbs_t cbs = {on_success, on_rejection,
                                                   on_failure};

/* Waits until *counter (a field of s) reaches n. */
static void seen_wait(seen_t *s, const int *counter, int n)
{
    struct timespec dl = fl_test_deadline(FL_TEST_WAIT_MS);
    pthread_mutex_lock(&s->mu);
    while (*counter < n)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) != 0)
            break;
    int got = *counter;
    pthread_mutex_unlock(&s->mu);
    if (got < n)
        fail_msg("callback count %d, want %d", got, n);
}

/* A connection of fx's owner to its target, with options o (NULL: the
 * defaults). */
static fl_registered_connection_t *
conn_alloc_opts(fx_t *fx, invoker_t *iv, seen_t *s,
                const fl_registration_opts_t *o)
{
    fl_registration_spec_t sp = spec_of(fx, iv, o);
    fl_registered_connection_t *c = NULL;
    char why[256] = "";
    assert_fl_ok(fl_registered_connection_alloc(fx->owner, &sp, &cbs, s, &c,
                                                why, sizeof why));
    assert_string_equal(why, "");
    return c;
}

static fl_registered_connection_t *conn_alloc(fx_t *fx, invoker_t *iv,
                                              seen_t *s)
{
    return conn_alloc_opts(fx, iv, s, NULL);
}

/* Start once; reconnect only after a success; the old gateway serves until
 * the new success; close. */
static void test_conn_life(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    act_t script[] = {ACT_HOLD, ACT_HOLD};
    target_reset(script, 2);
    invoker_t iv = {0};
    seen_t s;
    seen_init(&s, &fx);
    fl_registered_connection_t *c = conn_alloc(&fx, &iv, &s);
    assert_string_equal(fl_registered_connection_address(c), fx.address);
    fl_fencing_token_t t;
    assert_true(fl_registered_connection_token(c, &t));
    assert_memory_equal(t.bytes, fx.token.bytes, 16);
    assert_false(fl_registered_connection_is_connected(c));
    assert_false(fl_registered_connection_is_closed(c));
    assert_fl(FL_ESTATE, fl_registered_connection_try_reconnect(c));

    assert_fl_ok(fl_registered_connection_start(c));
    assert_fl(FL_ESTATE, fl_registered_connection_start(c));
    target_wait(1);
    assert_fl(FL_ESTATE, fl_registered_connection_try_reconnect(c));
    assert_null(fl_registered_connection_gateway(c));
    target_answer(0, FL_REGISTRATION_SUCCESS);
    seen_wait(&s, &s.successes, 1);
    assert_int_equal(s.last_id, 100);
    fl_rpc_gateway_t *g1 = fl_registered_connection_gateway(c);
    assert_non_null(g1);
    assert_ptr_equal(s.last_gw, g1);
    assert_string_equal(fl_rpc_gateway_address(g1), fx.address);
    assert_true(fl_registered_connection_is_connected(c));

    assert_fl_ok(fl_registered_connection_try_reconnect(c));
    target_wait(2);
    /* The new registration waits; the old gateway still serves. */
    assert_ptr_equal(fl_registered_connection_gateway(c), g1);
    assert_true(fl_registered_connection_is_connected(c));
    Flreg__RegisterRequest probe = FLREG__REGISTER_REQUEST__INIT;
    probe.caller = "probe";
    assert_fl_ok(fl_test_call_code(g1, 0, &probe.base, 0, NULL, 0));
    target_answer(1, FL_REGISTRATION_SUCCESS);
    seen_wait(&s, &s.successes, 2);
    assert_int_equal(s.last_id, 101);
    fl_rpc_gateway_t *g2 = fl_registered_connection_gateway(c);
    assert_non_null(g2);
    assert_ptr_not_equal(g2, g1);
    assert_ptr_equal(s.last_gw, g2);
    assert_fl_ok(fl_test_call_code(g2, 0, &probe.base, 0, NULL, 0));

    fl_registered_connection_close(c);
    assert_true(fl_registered_connection_is_closed(c));
    assert_false(fl_registered_connection_is_connected(c));
    assert_fl(FL_ECLOSED, fl_registered_connection_try_reconnect(c));
    assert_fl(FL_ECLOSED, fl_registered_connection_start(c));
    fl_registered_connection_close(c);
    assert_int_equal(s.off_main, 0);
    assert_int_equal(s.rejections + s.failures, 0);
    assert_int_equal(tg.n, 2);
    assert_invoker(&iv, 2);
    fl_registered_connection_free(c);
    fx_end(&fx);
}

static void test_conn_rejection(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    act_t script[] = {ACT_REJECT};
    target_reset(script, 1);
    invoker_t iv = {0};
    seen_t s;
    seen_init(&s, &fx);
    fl_registered_connection_t *c = conn_alloc(&fx, &iv, &s);
    assert_fl_ok(fl_registered_connection_start(c));
    seen_wait(&s, &s.rejections, 1);
    assert_int_equal(s.last_id, 200);
    assert_string_equal(s.reason, "no slots for you");
    assert_null(s.last_gw);
    assert_false(fl_registered_connection_is_connected(c));
    assert_fl(FL_ESTATE, fl_registered_connection_try_reconnect(c));
    assert_int_equal(s.successes + s.failures + s.off_main, 0);
    fl_registered_connection_free(c);
    fx_end(&fx);
}

static void test_conn_failure(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    target_reset(NULL, 0);
    invoker_t iv = {0};
    iv.refuse = FL_EUSER + 1;
    seen_t s;
    seen_init(&s, &fx);
    fl_registered_connection_t *c = conn_alloc(&fx, &iv, &s);
    assert_fl_ok(fl_registered_connection_start(c));
    seen_wait(&s, &s.failures, 1);
    assert_fl(FL_EUSER + 1, s.err);
    char want[1024];
    snprintf(want, sizeof want,
             "Registration at %s failed: the registration function returned "
             "FL_EUSER (application error) on attempt 1",
             fx.label);
    assert_string_equal(s.message, want);
    assert_int_equal(s.successes + s.rejections + s.off_main, 0);
    fl_registered_connection_free(c);
    fx_end(&fx);
}

/* Closed while registering: the late success reaches no callback. */
static void test_conn_close_pending(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    act_t script[] = {ACT_HOLD};
    target_reset(script, 1);
    invoker_t iv = {0};
    seen_t s;
    seen_init(&s, &fx);
    fl_registered_connection_t *c = conn_alloc(&fx, &iv, &s);
    assert_fl_ok(fl_registered_connection_start(c));
    target_wait(1);
    fl_registered_connection_close(c);
    target_answer(0, FL_REGISTRATION_SUCCESS);
    expect_answer_ignored(&fx, 1);
    assert_no_more_attempts(&fx, 1);
    assert_int_equal(s.successes + s.rejections + s.failures, 0);
    assert_null(fl_registered_connection_gateway(c));
    fl_registered_connection_free(c);
    fx_end(&fx);
}

/* A reconnect while the last one is pending replaces it: the replaced
 * registration's cancellation reaches no callback, its late answer is
 * ignored, and the newest registration's success is the one reported. */
static void test_conn_reconnect_replaces_pending(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    act_t script[] = {ACT_SUCCESS, ACT_HOLD, ACT_HOLD};
    target_reset(script, 3);
    invoker_t iv = {0};
    seen_t s;
    seen_init(&s, &fx);
    fl_registered_connection_t *c = conn_alloc(&fx, &iv, &s);
    assert_fl_ok(fl_registered_connection_start(c));
    seen_wait(&s, &s.successes, 1);
    fl_rpc_gateway_t *g1 = fl_registered_connection_gateway(c);
    assert_fl_ok(fl_registered_connection_try_reconnect(c));
    target_wait(2);
    assert_fl_ok(fl_registered_connection_try_reconnect(c));
    target_wait(3);
    target_answer(1, FL_REGISTRATION_SUCCESS);
    expect_answer_ignored(&fx, 1);
    assert_ptr_equal(fl_registered_connection_gateway(c), g1);
    target_answer(2, FL_REGISTRATION_SUCCESS);
    seen_wait(&s, &s.successes, 2);
    assert_int_equal(s.last_id, 102);
    assert_ptr_not_equal(fl_registered_connection_gateway(c), g1);
    assert_int_equal(s.successes, 2);
    assert_int_equal(s.rejections + s.failures + s.off_main, 0);
    assert_invoker(&iv, 3);
    fl_registered_connection_free(c);
    fx_end(&fx);
}

/* Waits until c's registration had an outcome (any callback). */
static void seen_wait_any(seen_t *s)
{
    struct timespec dl = fl_test_deadline(FL_TEST_WAIT_MS);
    pthread_mutex_lock(&s->mu);
    while (s->successes + s->rejections + s->failures == 0)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) != 0)
            break;
    int got = s->successes + s->rejections + s->failures;
    pthread_mutex_unlock(&s->mu);
    if (got == 0)
        fail_msg("no callback within %d ms", FL_TEST_WAIT_MS);
}

/* Out of memory at each allocation from the start to the outcome, in turn
 * until a run meets none. A start refused says so (FL_ENOMEM), reaches no
 * callback and may be made again; a registration stopped later reaches
 * on_failure with FL_ENOMEM and its step; otherwise it succeeds. */
static void test_conn_start_out_of_memory(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    /* No delays: a step that met out of memory is retried at once. */
    fl_registration_opts_t o = opts_of(100, 400, 0, 0, 0);
    int refused = 0, stopped = 0, last = -1;
    bool hit = true;
    for (uint64_t n = 1; hit && n <= OOM_MAX_RUNS; n++) {
        target_reset(NULL, 0);
        invoker_t iv = {0};
        seen_t s;
        seen_init(&s, &fx);
        fl_registered_connection_t *c = conn_alloc_opts(&fx, &iv, &s, &o);
        oom_arm(n);
        int rc = fl_registered_connection_start(c);
        if (rc == FL_OK)
            seen_wait_any(&s);
        hit = oom_disarm();
        if (rc != FL_OK) {
            assert_fl(FL_ENOMEM, rc);
            assert_false(fl_registered_connection_is_connected(c));
            /* Nothing was tried, and no callback came before the
             * sentinel's call left the owner's main thread. */
            assert_no_more_attempts(&fx, 0);
            assert_int_equal(s.successes + s.failures + s.rejections, 0);
            /* Refused, not started: a second start goes through, and its
             * success is the only callback. */
            assert_fl_ok(fl_registered_connection_start(c));
            seen_wait(&s, &s.successes, 1);
            assert_no_more_attempts(&fx, 2);
            assert_int_equal(s.failures + s.rejections, 0);
            refused++;
            last = 1;
        } else if (s.failures != 0) {
            assert_fl(FL_ENOMEM, s.err);
            assert_int_equal(oom_step_of(&fx, s.message), 2);
            assert_int_equal(s.successes + s.rejections, 0);
            assert_false(fl_registered_connection_is_connected(c));
            stopped++;
            last = 2;
        } else {
            assert_int_equal(s.successes, 1);
            assert_true(fl_registered_connection_is_connected(c));
            last = 0;
        }
        assert_int_equal(s.off_main, 0);
        fl_registered_connection_free(c);
    }
    assert_false(hit); /* the last run met no failure, and succeeded */
    assert_int_equal(last, 0);
    assert_true(refused >= 1);
    assert_true(stopped >= 1);
    fx_end(&fx);
}

/* Out of memory at each allocation of a reconnect in turn, after a
 * success: a refused reconnect (FL_ENOMEM) reaches no callback and leaves
 * the connection as it was (connected, the same gateway, the pending
 * registration not replaced), and the next one goes through. */
static void test_conn_reconnect_out_of_memory(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    fl_registration_opts_t o = opts_of(100, 400, 0, 0, 0);
    int refused = 0;
    bool hit = true;
    for (uint64_t n = 1; hit && n <= OOM_MAX_RUNS; n++) {
        target_reset(NULL, 0);
        invoker_t iv = {0};
        seen_t s;
        seen_init(&s, &fx);
        fl_registered_connection_t *c = conn_alloc_opts(&fx, &iv, &s, &o);
        assert_fl_ok(fl_registered_connection_start(c));
        seen_wait(&s, &s.successes, 1);
        fl_rpc_gateway_t *g1 = fl_registered_connection_gateway(c);
        oom_arm(n);
        int rc = fl_registered_connection_try_reconnect(c);
        hit = oom_disarm();
        if (rc != FL_OK) {
            assert_fl(FL_ENOMEM, rc);
            assert_no_more_attempts(&fx, 1);
            assert_int_equal(s.successes, 1);
            assert_int_equal(s.failures + s.rejections, 0);
            assert_true(fl_registered_connection_is_connected(c));
            assert_ptr_equal(fl_registered_connection_gateway(c), g1);
            assert_fl_ok(fl_registered_connection_try_reconnect(c));
            refused++;
        }
        /* The reconnect (or the one after the refusal) succeeds; a step
         * that met out of memory was retried or failed it. */
        struct timespec dl = fl_test_deadline(FL_TEST_WAIT_MS);
        pthread_mutex_lock(&s.mu);
        while (s.successes + s.failures < 2)
            if (pthread_cond_timedwait(&s.cv, &s.mu, &dl) != 0)
                break;
        pthread_mutex_unlock(&s.mu);
        if (s.failures == 0) {
            assert_int_equal(s.successes, 2);
            assert_ptr_not_equal(fl_registered_connection_gateway(c), g1);
        } else {
            assert_fl(FL_ENOMEM, s.err);
            assert_int_equal(oom_step_of(&fx, s.message), 2);
        }
        assert_int_equal(s.off_main, 0);
        fl_registered_connection_free(c);
    }
    assert_false(hit);
    assert_true(refused >= 2); /* the registration, the outcome's hop */
    fx_end(&fx);
}

int main(int argc, char **argv)
{
    oom_install();
    const struct CMUnitTest tests[] = {
        T(test_conn_life),
        T_ONCE(test_conn_rejection),
        T_ONCE(test_conn_failure),
        T_ONCE(test_conn_close_pending),
        T_ONCE(test_conn_reconnect_replaces_pending),
        T_ONCE(test_conn_start_out_of_memory),
        T_ONCE(test_conn_reconnect_out_of_memory),
    };
    return FX_RUN(argc, argv, tests);
}
