/*
 * registration_test.c - the retrying registration
 * (include/fling/registration.h) against a real target endpoint, in-process
 * and over TCP: success, timeouts doubling, the error and refused delays,
 * rejection, cancellation, jitter and the options.
 */
#include "registration_fixture.h"

#include "oom_fixture.h"

#include "common/internal.h"

/* ---- registration ----------------------------------------------------- */

static void test_success(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    target_reset(NULL, 0);
    invoker_t iv = {0};
    fl_registration_t *reg = reg_start(&fx, &iv, NULL);
    fl_future_t *f = fl_registration_future(reg);
    fl_registration_response_t *r =
        result_ok(reg, FL_REGISTRATION_SUCCESS, 100);
    assert_ptr_equal(fl_registration_future(reg), f);
    assert_non_null(r->gateway);
    assert_string_equal(fl_rpc_gateway_address(r->gateway), fx.address);
    fl_fencing_token_t t;
    assert_fl_ok(fl_rpc_gateway_fencing_token(r->gateway, &t));
    assert_memory_equal(t.bytes, fx.token.bytes, 16);
    assert_string_equal(r->reason, "");
    assert_int_equal(tg.n, 1);
    assert_int_equal(tg.timeout_ms[0], FL_REGISTRATION_INITIAL_TIMEOUT_MS);
    assert_invoker(&iv, 1);
    char want[1024];
    snprintf(want, sizeof want, "Registration at %s succeeded (attempt 1)",
             fx.label);
    assert_string_equal(cap_wait("Registration at").message, want);
    fl_registration_free(reg);
    fx_end(&fx);
}

/* Four attempts time out: their timeouts double from 50 ms up to the
 * 200 ms maximum, each next attempt starting as the last one times out. */
static void test_timeouts_double(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    act_t script[] = {ACT_HOLD, ACT_HOLD, ACT_HOLD, ACT_HOLD};
    target_reset(script, 4);
    invoker_t iv = {0};
    fl_registration_opts_t o = opts_of(50, 200, 10000, 10000, 0.2);
    fl_registration_t *reg = reg_start(&fx, &iv, &o);
    result_ok(reg, FL_REGISTRATION_SUCCESS, 104);
    assert_int_equal(tg.n, 5);
    const int64_t want[5] = {50, 100, 200, 200, 200};
    for (int i = 0; i < 5; i++)
        assert_int_equal(tg.timeout_ms[i], want[i]);
    for (int i = 0; i < 4; i++)
        assert_gap(&iv, i, want[i]);
    assert_invoker(&iv, 5);
    char msg[1024];
    snprintf(msg, sizeof msg,
             "Registration at %s attempt 1 timed out after 50 ms; attempt 2 "
             "starts now with a timeout of 100 ms",
             fx.label);
    cap_rec_t r = cap_wait("Registration at ");
    assert_string_equal(r.message, msg);
    assert_string_equal(r.next_in_ms, "0");
    snprintf(msg, sizeof msg,
             "Registration at %s attempt 4 timed out after 200 ms; attempt 5 "
             "starts now with a timeout of 200 ms",
             fx.label);
    assert_string_equal(cap_wait(msg).message, msg);
    fl_registration_free(reg);
    fx_end(&fx);
}

/* The target does not exist yet: the connect fails, is logged, and the
 * next one comes after the error delay (jitter off). The owner's main
 * thread logs the failure before it arms the retry: held at that record
 * until the target is up, so the retry finds it however late this thread
 * runs (a loaded test thread once started it after attempts 2 to 4 had
 * failed to connect: 1256 ms). */
static void test_connect_failure(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, false);
    target_reset(NULL, 0);
    char cmsg[FL_FUTURE_MESSAGE_MAX];
    assert_fl(FL_ECONNECT, fl_test_connect_error(fx.osvc, fx.address, REG, cmsg,
                                                 sizeof cmsg));
    invoker_t iv = {0};
    fl_registration_opts_t o = opts_of(100, 1000, 300, 10000, 0);
    fl_test_latch_t *gate = fl_test_latch_alloc(1);
    cap_hold("Registration at ", gate);
    fl_registration_t *reg = reg_start(&fx, &iv, &o);
    char want[FL_FUTURE_MESSAGE_MAX + 400];
    snprintf(want, sizeof want,
             "Registration at %s attempt 1 could not connect: %s; attempt 2 "
             "starts in 300 ms",
             fx.label, cmsg);
    cap_rec_t r = cap_wait("Registration at ");
    assert_string_equal(r.message, want);
    assert_string_equal(r.next_in_ms, "300");
    fx_target(&fx);
    uint64_t open_ns = fl_clock_now_ns(); /* the retry is armed after */
    fl_test_latch_count_down(gate);
    result_ok(reg, FL_REGISTRATION_SUCCESS, 100);
    uint64_t gap = (tg.at_ns[0] - open_ns) / 1000000u;
    fl_test_assert_elapsed("the error delay after the connect failure", gap,
                           295, 700);
    assert_invoker(&iv, 1);
    snprintf(want, sizeof want, "Registration at %s succeeded (attempt 2)",
             fx.label);
    assert_string_equal(cap_wait(want).message, want);
    fl_registration_free(reg);
    fx_end(&fx);
    fl_test_latch_free(gate);
}

/* A timeout, then an error: the next attempt comes after the error delay
 * (not the refused delay) and starts again from the initial timeout. */
static void test_error_delay(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    act_t script[] = {ACT_HOLD, ACT_ERROR};
    target_reset(script, 2);
    invoker_t iv = {0};
    fl_registration_opts_t o = opts_of(50, 1000, 250, 5000, 0);
    fl_registration_t *reg = reg_start(&fx, &iv, &o);
    result_ok(reg, FL_REGISTRATION_SUCCESS, 102);
    assert_int_equal(tg.n, 3);
    assert_int_equal(tg.timeout_ms[0], 50);
    assert_int_equal(tg.timeout_ms[1], 100);
    assert_int_equal(tg.timeout_ms[2], 50);
    assert_gap(&iv, 0, 50);
    assert_gap(&iv, 1, 250);
    char want[1024];
    snprintf(want, sizeof want,
             "Registration at %s attempt 2 failed: registry busy; attempt 3 "
             "connects again in 250 ms",
             fx.label);
    cap_rec_t r = cap_wait(want);
    assert_string_equal(r.next_in_ms, "250");
    assert_invoker(&iv, 3);
    fl_registration_free(reg);
    fx_end(&fx);
}

/* Waits for the first retry record, and checks it says that attempt 1 was
 * refused for now and attempt 2 starts in delay_ms. */
static void expect_first_refusal(const fx_t *fx, int64_t delay_ms)
{
    char want[1024];
    snprintf(want, sizeof want,
             "Registration at %s attempt 1 was refused for now: resource "
             "manager is starting; attempt 2 starts in %lld ms",
             fx->label, (long long)delay_ms);
    assert_string_equal(cap_wait("Registration at ").message, want);
}

/* A failure answer: the next attempt comes after the refused delay. */
static void test_refused_delay(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    act_t script[] = {ACT_FAILURE};
    target_reset(script, 1);
    invoker_t iv = {0};
    fl_registration_opts_t o = opts_of(100, 1000, 5000, 250, 0);
    fl_registration_t *reg = reg_start(&fx, &iv, &o);
    result_ok(reg, FL_REGISTRATION_SUCCESS, 101);
    assert_int_equal(tg.n, 2);
    assert_int_equal(tg.timeout_ms[0], 100);
    assert_int_equal(tg.timeout_ms[1], 100);
    assert_gap(&iv, 0, 250);
    expect_first_refusal(&fx, 250);
    assert_invoker(&iv, 2);
    fl_registration_free(reg);
    fx_end(&fx);
}

/* A rejection ends the registration: no retry even with zero delays. */
static void test_rejection_stops(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    act_t script[] = {ACT_REJECT};
    target_reset(script, 1);
    invoker_t iv = {0};
    fl_registration_opts_t o = opts_of(100, 1000, 0, 0, 0);
    fl_registration_t *reg = reg_start(&fx, &iv, &o);
    fl_registration_response_t *r =
        result_ok(reg, FL_REGISTRATION_REJECTION, 200);
    assert_string_equal(r->reason, "no slots for you");
    assert_null(r->gateway);
    assert_no_more_attempts(&fx, 1);
    assert_invoker(&iv, 1);
    char want[1024];
    snprintf(want, sizeof want,
             "Registration at %s was rejected (attempt 1); not retrying",
             fx.label);
    assert_string_equal(cap_wait("Registration at ").message, want);
    fl_registration_free(reg);
    fx_end(&fx);
}

/* A registration (10 s timeouts, no delays) whose first attempt the
 * target holds, once the target has it. */
static fl_registration_t *reg_held(fx_t *fx, invoker_t *iv)
{
    act_t script[] = {ACT_HOLD};
    target_reset(script, 1);
    fl_registration_opts_t o = opts_of(10000, 10000, 0, 0, 0);
    fl_registration_t *reg = reg_start(fx, iv, &o);
    target_wait(1);
    assert_false(fl_registration_is_cancelled(reg));
    return reg;
}

/* Cancelled while an attempt is under way: the result fails at once, the
 * late answer is ignored, nothing more is tried. */
static void test_cancel_ignores_late_answer(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    invoker_t iv = {0};
    fl_registration_t *reg = reg_held(&fx, &iv);
    fl_future_t *f = fl_registration_future(reg);
    fl_registration_cancel(reg);
    assert_true(fl_registration_is_cancelled(reg));
    assert_fl(FL_ECANCELED, fl_test_future_code(f));
    char cancelled[1024];
    snprintf(cancelled, sizeof cancelled, "Registration at %s was cancelled",
             fx.label);
    assert_string_equal(fl_future_message(f), cancelled);
    target_answer(0, FL_REGISTRATION_SUCCESS);
    expect_answer_ignored(&fx, 1);
    assert_no_more_attempts(&fx, 1);
    assert_ptr_equal(fl_registration_future(reg), f);
    assert_fl(FL_ECANCELED, fl_future_error(f));
    fl_registration_cancel(reg); /* idempotent */
    assert_string_equal(fl_future_message(f), cancelled);
    assert_invoker(&iv, 1);
    fl_registration_free(reg);
    fx_end(&fx);
}

/* Cancelled during a 60 s refused delay: the result fails at once, not
 * when the delay ends. */
static void test_cancel_during_delay(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    act_t script[] = {ACT_FAILURE};
    target_reset(script, 1);
    invoker_t iv = {0};
    fl_registration_opts_t o = opts_of(100, 1000, 60000, 60000, 0);
    fl_registration_t *reg = reg_start(&fx, &iv, &o);
    expect_first_refusal(&fx, 60000);
    fl_registration_cancel(reg);
    fl_future_t *f = fl_registration_future(reg);
    assert_fl(FL_ECANCELED, fl_test_future_code(f));
    char want[1024];
    snprintf(want, sizeof want, "Registration at %s was cancelled", fx.label);
    assert_string_equal(fl_future_message(f), want);
    fl_registration_free(reg);
    assert_int_equal(tg.n, 1);
    assert_invoker(&iv, 1);
    fx_end(&fx);
}

/* Cancelling the result future cancels the registration: the answer to
 * the attempt under way is ignored. */
static void test_cancel_through_the_future(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    invoker_t iv = {0};
    fl_registration_t *reg = reg_held(&fx, &iv);
    fl_future_t *f = fl_registration_future(reg);
    assert_fl_ok(fl_future_cancel(f));
    assert_true(fl_registration_is_cancelled(reg));
    assert_fl(FL_ECANCELED, fl_future_error(f));
    target_answer(0, FL_REGISTRATION_SUCCESS);
    expect_answer_ignored(&fx, 1);
    assert_no_more_attempts(&fx, 1);
    fl_registration_free(reg);
    fx_end(&fx);
}

/* The registration function refuses: the result fails with its code. */
static void test_invoke_refusal(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    target_reset(NULL, 0);
    invoker_t iv = {0};
    iv.refuse = FL_EUSER + 1;
    fl_registration_t *reg = reg_start(&fx, &iv, NULL);
    fl_future_t *f = fl_registration_future(reg);
    assert_fl(FL_EUSER + 1, fl_test_future_code(f));
    char want[1024];
    snprintf(want, sizeof want,
             "Registration at %s failed: the registration function returned "
             "FL_EUSER (application error) on attempt 1",
             fx.label);
    assert_string_equal(fl_future_message(f), want);
    assert_int_equal(tg.n, 0);
    assert_fl(FL_ESTATE, fl_registration_start(reg));
    fl_registration_free(reg);
    fx_end(&fx);
}

/* The owner stops during a delay: the attempt due then is dropped with the
 * owner's other tasks, and the result says so instead of staying pending. */
static void test_owner_stopped(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    act_t script[] = {ACT_FAILURE};
    target_reset(script, 1);
    invoker_t iv = {0};
    fl_registration_opts_t o = opts_of(100, 1000, 5000, 1000, 0);
    fl_registration_t *reg = reg_start(&fx, &iv, &o);
    cap_wait("Registration at ");
    assert_fl_ok(fl_rpc_endpoint_stop(fx.owner));
    fl_future_t *f = fl_registration_future(reg);
    assert_fl(FL_EUNREACHABLE, fl_test_future_code(f));
    char want[1024];
    snprintf(want, sizeof want,
             "Registration at %s stopped: its owner endpoint 'reg_owner' is "
             "no longer running",
             fx.label);
    assert_string_equal(fl_future_message(f), want);
    assert_int_equal(tg.n, 1);
    assert_invoker(&iv, 1);
    fl_registration_free(reg);
    fx_end(&fx);
}

/* Out of memory at each allocation of fl_registration_alloc and
 * fl_registered_connection_alloc: FL_ENOMEM, nothing leaked (the sanitizer
 * builds check), and the reason. */
static void test_alloc_out_of_memory(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, false);
    invoker_t iv = {0};
    fl_registration_spec_t s = spec_of(&fx, &iv, NULL);
    char want[512];
    snprintf(want, sizeof want, "out of memory making the registration at %s",
             fx.address);
    int failed = 0;
    for (uint64_t n = 1;; n++) {
        fl_registration_t *reg = NULL;
        char why[512] = "";
        fl__alloc_fail_after(n, false);
        int rc = fl_registration_alloc(fx.owner, &s, &reg, why, sizeof why);
        fl__alloc_fail_after(0, false);
        if (rc == FL_OK) {
            fl_registration_free(reg);
            break;
        }
        assert_fl(FL_ENOMEM, rc);
        assert_null(reg);
        assert_string_equal(why, want);
        failed++;
    }
    /* Four allocations of our own; the result future comes from a block
     * pool that allocates only when it has no free block. */
    assert_in_range(failed, 4, 5);
    /* The connection checks its spec with a registration first: the
     * registration's reason, then the connection's own. Every allocation
     * in turn until one run meets none (a failure may also be absorbed,
     * as in freeing that registration's result to its pool). */
    char conn_want[512];
    snprintf(conn_want, sizeof conn_want,
             "out of memory making the connection to %s", fx.address);
    int reg_failed = 0, conn_failed = 0;
    bool hit = true;
    for (uint64_t n = 1; hit && n <= OOM_MAX_RUNS; n++) {
        fl_registered_connection_t *c = NULL;
        char why[512] = "";
        oom_arm(n);
        int rc = fl_registered_connection_alloc(fx.owner, &s, NULL, NULL, &c,
                                                why, sizeof why);
        hit = oom_disarm();
        if (rc == FL_OK) {
            assert_string_equal(why, "");
            fl_registered_connection_free(c);
            continue;
        }
        assert_fl(FL_ENOMEM, rc);
        assert_null(c);
        if (conn_failed == 0 && strcmp(why, want) == 0) {
            reg_failed++;
        } else {
            assert_string_equal(why, conn_want);
            conn_failed++;
        }
    }
    assert_false(hit);
    assert_in_range(reg_failed, 4, 5);
    assert_int_equal(conn_failed, 2); /* the handle, the address */
    fx_end(&fx);
}

/* The result of a registration at fx's target that met out of memory
 * once: a success, or FL_ENOMEM with the message of the step it stopped
 * at. Returns which: 0 success, 1 refused at the start, 2 stopped later. */
static int expect_oom_outcome(fx_t *fx, fl_registration_t *reg, int start_rc)
{
    fl_future_t *f = fl_registration_future(reg);
    int err = fl_test_future_code(f);
    if (err == FL_OK) {
        assert_fl_ok(start_rc);
        fl_registration_response_t *r = fl_future_value(f);
        assert_int_equal(r->outcome, FL_REGISTRATION_SUCCESS);
        return 0;
    }
    assert_fl(FL_ENOMEM, err);
    int step = oom_step_of(fx, fl_future_message(f));
    assert_fl(step == 1 ? FL_ENOMEM : FL_OK, start_rc);
    return step;
}

/* Out of memory at each allocation from the start to the result (the
 * start, the connect, the attempts in flight, the delays between them,
 * the target's answers), in turn until a run meets none: the
 * registration still succeeds (the failed step is retried) or its result
 * fails FL_ENOMEM saying which step stopped it; never a hang, a crash or
 * a leak (the sanitizer builds check), and the owner registers again at
 * once. */
static void test_start_out_of_memory(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    fl_registration_opts_t o = opts_of(100, 400, 0, 0, 0);
    const act_t scripts[2][2] = {{ACT_SUCCESS}, {ACT_FAILURE, ACT_ERROR}};
    for (int sc = 0; sc < 2; sc++) {
        int seen[3] = {0, 0, 0}, last = -1;
        bool hit = true;
        uint64_t n = 1;
        for (; hit && n <= OOM_MAX_RUNS; n++) {
            target_reset(scripts[sc], 2);
            invoker_t iv = {0};
            fl_registration_spec_t s = spec_of(&fx, &iv, &o);
            fl_registration_t *reg = NULL;
            assert_fl_ok(fl_registration_alloc(fx.owner, &s, &reg, NULL, 0));
            oom_arm(n);
            int rc = fl_registration_start(reg);
            fl_test_future_code(fl_registration_future(reg));
            hit = oom_disarm();
            last = expect_oom_outcome(&fx, reg, rc);
            seen[last]++;
            fl_registration_free(reg);
        }
        assert_false(hit); /* the last run met no failure, and succeeded */
        assert_int_equal(last, 0);
        /* It succeeded, and the failures reached both the start and the
         * steps after it. */
        assert_true(seen[0] >= 1);
        assert_true(seen[1] >= 1);
        assert_true(seen[2] >= 1);
    }
    fx_end(&fx);
}

/* ---- jitter ------------------------------------------------------------ */

static uint64_t fixed_random(void *arg)
{
    return *(uint64_t *)arg;
}

/* splitmix64 with a seed: a deterministic random source. */
static uint64_t seeded_random(void *arg)
{
    uint64_t *s = arg;
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void test_jitter_bounds(void **state)
{
    (void)state;
    fl_registration_opts_t o;
    fl_registration_opts_default(&o);
    uint64_t v = 0;
    o.random = fixed_random;
    o.random_arg = &v;
    assert_int_equal(fl_registration_jitter(&o, 10000), 8000);
    v = UINT64_MAX;
    assert_int_equal(fl_registration_jitter(&o, 10000), 12000);
    v = 1ull << 63;
    assert_int_equal(fl_registration_jitter(&o, 10000), 10000);
    assert_int_equal(fl_registration_jitter(&o, 0), 0);
    o.jitter = 0;
    v = 0;
    assert_int_equal(fl_registration_jitter(&o, 10000), 10000);
    o.jitter = 0.2;
    /* Seeded: every draw within +-20%, and they spread over the range. */
    uint64_t seed = 42;
    o.random = seeded_random;
    o.random_arg = &seed;
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 10000; i++) {
        int64_t d = fl_registration_jitter(&o, 10000);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_in_range(lo, 8000, 8010);
    assert_in_range(hi, 11990, 12000);
}

/* A delay drawn from the injected source: factor 0.8 of 250 ms. */
static void test_jitter_applied(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    act_t script[] = {ACT_FAILURE};
    target_reset(script, 1);
    invoker_t iv = {0};
    uint64_t v = 0;
    fl_registration_opts_t o = opts_of(100, 1000, 5000, 250, 0.2);
    o.random = fixed_random;
    o.random_arg = &v;
    fl_registration_t *reg = reg_start(&fx, &iv, &o);
    result_ok(reg, FL_REGISTRATION_SUCCESS, 101);
    assert_gap(&iv, 0, 200);
    expect_first_refusal(&fx, 200);
    fl_registration_free(reg);
    fx_end(&fx);
}

/* The internal random source, jitter 0.5 on a 200 ms refused delay: each
 * delay is drawn from [100, 300) ms, the owner's calls are spaced by the
 * same delays, and the draws differ. The first attempt is not delayed: it
 * is made sooner than the shortest jittered delay. */
static void test_jitter_default_source(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    act_t script[] = {ACT_FAILURE, ACT_FAILURE, ACT_FAILURE};
    target_reset(script, 3);
    invoker_t iv = {0};
    fl_registration_opts_t o = opts_of(100, 1000, 5000, 200, 0.5);
    uint64_t t0 = fl_clock_now_ns();
    fl_registration_t *reg = reg_start(&fx, &iv, &o);
    result_ok(reg, FL_REGISTRATION_SUCCESS, 103);
    fl_test_assert_elapsed("the first attempt", (iv.sent_ns[0] - t0) / 1000000u,
                           0, 100);
    cap_rec_t recs[256];
    pthread_mutex_lock(&cap.mu);
    int n = cap.n;
    memcpy(recs, cap.r, sizeof recs);
    pthread_mutex_unlock(&cap.mu);
    int delays = 0;
    long drawn[3];
    for (int i = 0; i < n; i++) {
        if (strstr(recs[i].message, "was refused for now") == NULL)
            continue;
        long d = strtol(recs[i].next_in_ms, NULL, 10);
        assert_in_range(d, 100, 299);
        assert_gap(&iv, delays, d);
        drawn[delays++] = d;
    }
    assert_int_equal(delays, 3);
    bool differ = false;
    for (int i = 1; i < 3; i++)
        differ = differ || drawn[i] != drawn[0];
    assert_true(differ);
    fl_registration_free(reg);
    fx_end(&fx);
}

/* ---- options ------------------------------------------------------------ */

static void expect_invalid(const fl_registration_opts_t *o, const char *want)
{
    char why[256] = "";
    assert_fl(FL_EINVAL, fl_registration_opts_validate(o, why, sizeof why));
    assert_string_equal(why, want);
}

static void test_opts(void **state)
{
    (void)state;
    fl_registration_opts_t o;
    fl_registration_opts_default(&o);
    assert_int_equal(o.initial_timeout_ms, 100);
    assert_int_equal(o.max_timeout_ms, 30000);
    assert_int_equal(o.error_delay_ms, 10000);
    assert_int_equal(o.refused_delay_ms, 30000);
    assert_true(o.jitter == 0.2);
    assert_null(o.random);
    assert_fl_ok(fl_registration_opts_validate(&o, NULL, 0));
    fl_registration_opts_t b = o;
    b.initial_timeout_ms = 0;
    expect_invalid(&b, "initial_timeout_ms "
                       "(cluster.registration.initial-timeout) must be > 0 "
                       "ms, got 0 ms");
    b = o;
    b.max_timeout_ms = -3;
    expect_invalid(&b, "max_timeout_ms (cluster.registration.max-timeout) "
                       "must be > 0 ms, got -3 ms");
    b = o;
    b.error_delay_ms = -1;
    expect_invalid(&b, "error_delay_ms (cluster.registration.error-delay) "
                       "must be >= 0 ms, got -1 ms");
    b = o;
    b.refused_delay_ms = -2;
    expect_invalid(&b, "refused_delay_ms "
                       "(cluster.registration.refused-registration-delay) "
                       "must be >= 0 ms, got -2 ms");
    b = o;
    b.jitter = 1.5;
    expect_invalid(&b, "jitter (cluster.registration.jitter) must be between "
                       "0 and 1, got 1.5");
    b = o;
    b.jitter = NAN;
    expect_invalid(&b, "jitter (cluster.registration.jitter) must be between "
                       "0 and 1, got nan");
    b = o;
    b.error_delay_ms = 0;
    b.refused_delay_ms = 0;
    b.jitter = 0;
    assert_fl_ok(fl_registration_opts_validate(&b, NULL, 0));
    b.jitter = 1;
    assert_fl_ok(fl_registration_opts_validate(&b, NULL, 0));
}

static void test_alloc_refusals(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, false);
    invoker_t iv = {0};
    fl_registration_opts_t o = opts_of(0, 1000, 0, 0, 0);
    fl_registration_spec_t s = spec_of(&fx, &iv, &o);
    fl_registration_t *reg = (fl_registration_t *)&s;
    char why[256] = "";
    assert_fl(FL_EINVAL,
              fl_registration_alloc(fx.owner, &s, &reg, why, sizeof why));
    assert_null(reg);
    assert_string_equal(why, "initial_timeout_ms "
                             "(cluster.registration.initial-timeout) must be "
                             "> 0 ms, got 0 ms");
    s.opts = NULL;
    s.address = NULL;
    assert_fl(FL_EINVAL,
              fl_registration_alloc(fx.owner, &s, &reg, why, sizeof why));
    assert_string_equal(why, "spec->address must not be NULL");
    s.address = fx.address;
    s.invoke = NULL;
    assert_fl(FL_EINVAL,
              fl_registration_alloc(fx.owner, &s, &reg, why, sizeof why));
    assert_string_equal(why, "spec->invoke must not be NULL");
    s.invoke = reg_invoke;
    assert_fl(FL_EINVAL,
              fl_registration_alloc(NULL, &s, &reg, why, sizeof why));
    assert_string_equal(why, "owner must not be NULL");
    fl_registered_connection_t *c = NULL;
    s.desc = NULL;
    assert_fl(FL_EINVAL, fl_registered_connection_alloc(
                             fx.owner, &s, NULL, NULL, &c, why, sizeof why));
    assert_null(c);
    assert_string_equal(why, "spec->desc must not be NULL");
    fx_end(&fx);
}

int main(int argc, char **argv)
{
    oom_install();
    const struct CMUnitTest tests[] = {
        T_ONCE(test_opts),
        T_ONCE(test_alloc_refusals),
        T_ONCE(test_alloc_out_of_memory),
        T_ONCE(test_start_out_of_memory),
        T_ONCE(test_jitter_bounds),
        T(test_success),
        T(test_timeouts_double),
        T(test_connect_failure),
        T(test_error_delay),
        T_ONCE(test_refused_delay),
        T_ONCE(test_rejection_stops),
        T_ONCE(test_cancel_ignores_late_answer),
        T_ONCE(test_cancel_during_delay),
        T_ONCE(test_cancel_through_the_future),
        T_ONCE(test_invoke_refusal),
        T_ONCE(test_owner_stopped),
        T_ONCE(test_jitter_applied),
        T_ONCE(test_jitter_default_source),
    };
    return FX_RUN(argc, argv, tests);
}
