/*
 * service_close_test.c - closing and shutting down the RPC service with
 * endpoints whose on_stop succeeds, fails or is pending.
 */
#include "service_fixture.h"

/* Three started endpoints; e[1]'s on_stop fails, e[2]'s returns pending
 * (completed by the test). */
typedef struct trio {
    tep_t st[3];
    fl_rpc_endpoint_t *ep[3];
    fl_future_t *term[3];
    fl_future_t *pending; /* e[2]'s on_stop future (test's reference) */
} trio_t;

static void trio_begin(trio_t *t, fl_rpc_service_t *svc, bool fail_one)
{
    static const char *ids[3] = {"e0", "e1", "e2"};
    for (int i = 0; i < 3; i++)
        tep_init(&t->st[i]);
    if (fail_one) {
        fl_future_t *f = fl_future_alloc();
        assert_fl_ok(fl_future_fail(f, FL_EUSER + 5, "stop %d failed", 1));
        t->st[1].stop_future = f;
    }
    t->pending = tep_pending_stop(&t->st[2]);
    for (int i = 0; i < 3; i++) {
        t->ep[i] = tep_create_started(svc, ids[i], &t->st[i], NULL);
        t->term[i] = fl_rpc_endpoint_termination(t->ep[i]);
        assert_non_null(t->term[i]);
    }
}

static void trio_end(trio_t *t)
{
    for (int i = 0; i < 3; i++) {
        fl_future_release(t->term[i]);
        fl_rpc_endpoint_free(t->ep[i]);
    }
    fl_future_release(t->pending);
    fl_test_latch_free(t->st[2].stopping);
}

/* ---- close and shutdown -------------------------------------------------- */

static void test_service_close_without_failures_succeeds(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st[2];
    tep_init(&st[0]);
    tep_init(&st[1]);
    fl_rpc_endpoint_t *e0 = tep_create_started(svc, "e0", &st[0], NULL);
    fl_rpc_endpoint_t *e1 = tep_create(svc, "e1", &st[1], NULL);

    fl_future_t *c = fl_rpc_service_close(svc);
    assert_fl_ok(future_code(c));
    assert_int_equal(1, atomic_load(&st[0].stops));
    assert_int_equal(0, atomic_load(&st[1].stops)); /* never started */
    fl_rpc_endpoint_t *found = NULL;
    assert_fl(FL_ENOENT, fl_rpc_service_lookup(svc, "e0", &found));
    assert_fl(FL_ENOENT, fl_rpc_service_lookup(svc, "e1", &found));
    assert_fl_ok(fl_rpc_service_shutdown(svc));

    fl_future_release(c);
    fl_rpc_endpoint_free(e0);
    fl_rpc_endpoint_free(e1);
    svc_free(svc);
}

static void test_service_close_waits_for_pending_on_stop_futures(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    trio_t t;
    trio_begin(&t, svc, false);

    fl_future_t *c = fl_rpc_service_close(svc);
    wait_latch(t.st[2].stopping);
    assert_fl_ok(future_code(t.term[0]));
    assert_fl_ok(future_code(t.term[1]));
    assert_false(fl_future_done(t.term[2]));
    assert_false(fl_future_done(c)); /* e2 has not terminated */

    assert_fl_ok(fl_future_complete(t.pending, NULL, NULL));
    assert_fl_ok(future_code(c));
    assert_fl_ok(future_code(t.term[2]));

    fl_future_release(c);
    trio_end(&t);
    svc_end(svc);
}

static void
test_service_close_reports_an_on_stop_failure_and_ends_all_others(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    trio_t t;
    trio_begin(&t, svc, true);

    fl_future_t *c = fl_rpc_service_close(svc);
    wait_latch(t.st[2].stopping);
    assert_fl(FL_EUSER + 5, future_code(t.term[1]));
    assert_false(fl_future_done(c));
    assert_fl_ok(fl_future_complete(t.pending, NULL, NULL));

    assert_fl(FL_EUSER + 5, future_code(c));
    assert_string_equal("stop 1 failed", fl_future_message(c));
    assert_fl_ok(future_code(t.term[0]));
    assert_fl_ok(future_code(t.term[2]));
    for (int i = 0; i < 3; i++)
        assert_int_equal(1, atomic_load(&t.st[i].stops));

    fl_future_release(c);
    trio_end(&t);
    assert_fl(FL_EUSER + 5, fl_rpc_service_shutdown(svc));
    svc_free(svc);
}

static void
test_service_shutdown_returns_the_first_termination_failure(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st[2];
    tep_init(&st[0]);
    tep_init(&st[1]);
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_fail(f, FL_EUSER + 6, "shutdown failure"));
    st[1].stop_future = f;
    fl_rpc_endpoint_t *e0 = tep_create_started(svc, "e0", &st[0], NULL);
    fl_rpc_endpoint_t *e1 = tep_create_started(svc, "e1", &st[1], NULL);

    assert_fl(FL_EUSER + 6, fl_rpc_service_shutdown(svc));
    assert_fl(FL_EUSER + 6, fl_rpc_service_shutdown(svc)); /* idempotent */
    assert_int_equal(1, atomic_load(&st[0].stops));
    assert_int_equal(1, atomic_load(&st[1].stops));

    fl_rpc_endpoint_free(e0);
    fl_rpc_endpoint_free(e1);
    svc_free(svc);
}

static void
test_service_close_is_idempotent_and_returns_the_same_future(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    fl_future_t *c1 = fl_rpc_service_close(fx.svc);
    fl_future_t *c2 = fl_rpc_service_close(fx.svc);
    assert_non_null(c1);
    assert_ptr_equal(c1, c2);
    assert_fl_ok(future_code(c1));
    assert_int_equal(1, atomic_load(&fx.st.stops));

    fl_future_release(c1);
    fl_future_release(c2);
    ep_fx_end_closed(&fx);
}

static void test_service_close_refuses_new_endpoints_with_eclosed(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    fl_future_t *c = fl_rpc_service_close(svc);
    assert_fl_ok(future_code(c));

    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_opts_t o = tep_opts("late", &st, NULL);
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl(FL_ECLOSED, fl_rpc_endpoint_create(svc, &o, &ep));

    fl_future_release(c);
    svc_end(svc);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_service_close_without_failures_succeeds),
        FL_TEST(test_service_close_waits_for_pending_on_stop_futures),
        FL_TEST(
            test_service_close_reports_an_on_stop_failure_and_ends_all_others),
        FL_TEST(test_service_shutdown_returns_the_first_termination_failure),
        FL_TEST(test_service_close_is_idempotent_and_returns_the_same_future),
        FL_TEST(test_service_close_refuses_new_endpoints_with_eclosed),
    };
    return FX_RUN(argc, argv, tests);
}
