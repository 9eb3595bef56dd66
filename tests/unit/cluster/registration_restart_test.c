/*
 * registration_restart_test.c - the retrying registration after an error
 * (include/fling/registration.h): the next attempt connects anew, so a
 * target restarted under the same address and id (a JobManager restart)
 * is reached; in-process and over TCP (registration_fixture.h).
 */
#include "registration_fixture.h"

/* Holds the owner's main thread (gate_task) until the test opens it. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool in, open;
} gate_t;

static void gate_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    gate_t *g = arg;
    struct timespec dl = fl_test_deadline(FL_TEST_WAIT_MS);
    pthread_mutex_lock(&g->mu);
    g->in = true;
    pthread_cond_broadcast(&g->cv);
    while (!g->open && pthread_cond_timedwait(&g->cv, &g->mu, &dl) == 0)
        ;
    pthread_mutex_unlock(&g->mu);
}

/* The target stops and starts again under the same id (a JobManager
 * restart) between attempts 1 and 2: attempt 2 fails on the gateway of
 * the old endpoint, attempt 3 connects anew and succeeds at the new one.
 * The owner's main thread is held while the target restarts, so attempt 1's
 * refusal and attempt 2 come after the restart. */
static void test_target_restarted(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    act_t script[] = {ACT_HOLD};
    target_reset(script, 1);
    invoker_t iv = {0};
    fl_registration_opts_t o = opts_of(10000, 10000, 60, 40, 0);
    fl_registration_t *reg = reg_start(&fx, &iv, &o);
    target_wait(1);
    gate_t g = {.mu = PTHREAD_MUTEX_INITIALIZER};
    fl_test_cond_init(&g.cv);
    assert_fl_ok(fl_rpc_run_async(fx.owner, gate_task, &g, NULL));
    struct timespec dl = fl_test_deadline(FL_TEST_WAIT_MS);
    pthread_mutex_lock(&g.mu);
    while (!g.in && pthread_cond_timedwait(&g.cv, &g.mu, &dl) == 0)
        ;
    pthread_mutex_unlock(&g.mu);
    assert_true(g.in);
    target_answer(0, FL_REGISTRATION_FAILURE);
    fl_test_endpoint_end(fx.target);
    fx_target(&fx);
    pthread_mutex_lock(&g.mu);
    g.open = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);

    result_ok(reg, FL_REGISTRATION_SUCCESS, 101);
    assert_int_equal(tg.n, 2);
    assert_int_equal(tg.timeout_ms[1], 10000);
    assert_invoker(&iv, 3);
    char gone[512];
    if (fx_remote)
        snprintf(gone, sizeof gone,
                 "recipient unreachable: no rpc endpoint %s here (it has "
                 "terminated or never existed)",
                 TARGET_ID);
    else
        snprintf(gone, sizeof gone,
                 "recipient unreachable: rpc endpoint '%s' has terminated "
                 "(flreg.Registrar.RegisterTaskManager not delivered)",
                 TARGET_ID);
    char want[3][1200];
    snprintf(want[0], sizeof want[0],
             "Registration at %s attempt 1 was refused for now: resource "
             "manager is starting; attempt 2 starts in 40 ms",
             fx.label);
    snprintf(want[1], sizeof want[1],
             "Registration at %s attempt 2 failed: %s; attempt 3 connects "
             "again in 60 ms",
             fx.label, gone);
    snprintf(want[2], sizeof want[2],
             "Registration at %s succeeded (attempt 3)", fx.label);
    /* Those three, in that order, and no other. */
    pthread_mutex_lock(&cap.mu);
    int k = 0;
    for (int i = 0; i < cap.n; i++) {
        if (strncmp(cap.r[i].message, "Registration at ", 16) != 0)
            continue;
        if (k < 3)
            assert_string_equal(cap.r[i].message, want[k]);
        k++;
    }
    pthread_mutex_unlock(&cap.mu);
    assert_int_equal(k, 3);
    fl_registration_free(reg);
    fx_end(&fx);
}

/* The registration function returns FL_EUNREACHABLE (its gateway refused
 * the call at once): an error of the attempt, so the next one connects
 * again after the error delay, and succeeds. */
static void test_invoke_unreachable(void **state)
{
    (void)state;
    fx_t fx;
    fx_init(&fx, true);
    target_reset(NULL, 0);
    invoker_t iv = {0};
    iv.refuse_once = FL_EUNREACHABLE;
    fl_registration_opts_t o = opts_of(1000, 1000, 30, 5000, 0);
    fl_registration_t *reg = reg_start(&fx, &iv, &o);
    result_ok(reg, FL_REGISTRATION_SUCCESS, 100);
    assert_int_equal(tg.n, 1);
    assert_invoker(&iv, 2);
    char want[1024];
    snprintf(want, sizeof want,
             "Registration at %s attempt 1 failed: the registration function "
             "returned FL_EUNREACHABLE (%s); attempt 2 connects again in 30 "
             "ms",
             fx.label, fl_strerror(FL_EUNREACHABLE));
    cap_rec_t r = cap_wait("Registration at ");
    assert_string_equal(r.message, want);
    assert_string_equal(r.next_in_ms, "30");
    snprintf(want, sizeof want, "Registration at %s succeeded (attempt 2)",
             fx.label);
    assert_string_equal(cap_wait(want).message, want);
    fl_registration_free(reg);
    fx_end(&fx);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_target_restarted),
        T_ONCE(test_invoke_unreachable),
    };
    return FX_RUN(argc, argv, tests);
}
