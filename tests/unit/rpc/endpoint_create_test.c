/*
 * endpoint_create_test.c - creating endpoints and their accessors
 * (docs/contract.md E1-E3, E5, E9): ids and services checked, default ids, an
 * endpoint without hooks, closing from the main thread, the accessors.
 */
#include "rpc_fixture.h"

/* ---- creation and accessors ---------------------------------------------- */

static void
test_create_rejects_bad_ids_and_missing_services_with_einval(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_init(&fx);

    fl_rpc_endpoint_opts_t o = tep_opts("has/slash", &fx.st, NULL);
    assert_fl(FL_EINVAL, fl_rpc_endpoint_create(fx.svc, &o, &fx.ep));
    o = tep_opts("has space", &fx.st, NULL);
    assert_fl(FL_EINVAL, fl_rpc_endpoint_create(fx.svc, &o, &fx.ep));
    char longid[202];
    memset(longid, 'a', 201);
    longid[201] = '\0';
    o = tep_opts(longid, &fx.st, NULL);
    assert_fl(FL_EINVAL, fl_rpc_endpoint_create(fx.svc, &o, &fx.ep));
    o = tep_opts("fine", &fx.st, NULL);
    o.nservices = 0;
    assert_fl(FL_EINVAL, fl_rpc_endpoint_create(fx.svc, &o, &fx.ep));
    o = tep_opts("fine", &fx.st, NULL);
    o.services = NULL;
    assert_fl(FL_EINVAL, fl_rpc_endpoint_create(fx.svc, &o, &fx.ep));

    /* 200 bytes of the allowed characters is fine. */
    longid[200] = '\0';
    longid[0] = 'A';
    longid[1] = '9';
    longid[2] = '_';
    longid[3] = '.';
    longid[4] = '-';
    o = tep_opts(longid, &fx.st, NULL);
    assert_fl_ok(fl_rpc_endpoint_create(fx.svc, &o, &fx.ep));
    assert_string_equal(longid, fl_rpc_endpoint_id(fx.ep));
    ep_fx_end(&fx);
}

static void
test_default_id_is_endpoint_n_and_the_address_carries_it(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, NULL, 0);
    fl_rpc_endpoint_t *named = tep_create(fx.svc, "named.ep-1", &fx.st, NULL);

    const char *id = fl_rpc_endpoint_id(fx.ep);
    assert_non_null(id);
    assert_int_equal(0, strncmp(id, "endpoint_", 9));
    assert_true(strlen(id) > 9);
    for (const char *p = id + 9; *p; p++)
        assert_true(*p >= '0' && *p <= '9');
    assert_string_equal(tep_address(fx.svc, id).s,
                        fl_rpc_endpoint_address(fx.ep));
    assert_string_equal(tep_address(fx.svc, "named.ep-1").s,
                        fl_rpc_endpoint_address(named));

    tep_end(named);
    ep_fx_end(&fx);
}

static void test_default_ids_never_collide_with_live_ids(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    enum { TAKEN = 4 };
    fl_rpc_endpoint_t *named[TAKEN];
    for (int i = 0; i < TAKEN; i++) {
        char id[32];
        snprintf(id, sizeof id, "endpoint_%d", i);
        named[i] = tep_create(svc, id, &st, NULL);
    }

    /* Ids stay unique among live endpoints, generated or not. */
    fl_rpc_endpoint_t *anon[TAKEN];
    for (int i = 0; i < TAKEN; i++) {
        anon[i] = tep_create(svc, NULL, &st, NULL);
        const char *id = fl_rpc_endpoint_id(anon[i]);
        for (int j = 0; j < TAKEN; j++) {
            if (strcmp(id, fl_rpc_endpoint_id(named[j])) == 0)
                fail_msg("generated id %s is already taken", id);
            if (j < i && strcmp(id, fl_rpc_endpoint_id(anon[j])) == 0)
                fail_msg("generated id %s given twice", id);
        }
        fl_rpc_endpoint_t *found = NULL;
        assert_fl_ok(fl_rpc_service_lookup(svc, id, &found));
        assert_ptr_equal(anon[i], found);
    }

    for (int i = 0; i < TAKEN; i++) {
        tep_end(anon[i]);
        tep_end(named[i]);
    }
    svc_end(svc);
}

static void
test_endpoint_without_hooks_starts_serves_and_terminates(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_init(&fx);
    fl_rpc_endpoint_opts_t o = tep_opts("nohooks", &fx.st, NULL);
    o.on_start = NULL;
    o.on_stop = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(fx.svc, &o, &fx.ep));
    fx.gw = gw_to(fx.svc, fx.ep, NULL);

    assert_fl_ok(fl_rpc_endpoint_start(fx.ep));
    expect_echo(fx.gw, "no hooks", 1); /* after the start (FIFO per sender) */
    assert_true(probe_bits(fx.gw, "nohooks") & PROBE_RUNNING);

    ep_fx_end(&fx);
}

/* A run_async task that closes its own endpoint. */
static void close_self_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)state;
    (void)arg;
    fl_future_release(fl_rpc_endpoint_close(ep));
}

static void
test_close_from_the_main_thread_terminates_the_endpoint(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "selfclose", FX_START);
    fl_future_t *t = fl_rpc_endpoint_termination(fx.ep);

    assert_fl_ok(fl_rpc_run_async(fx.ep, close_self_task, NULL, NULL));
    assert_fl_ok(future_code(t));
    assert_int_equal(1, atomic_load(&fx.st.stops));
    assert_true(atomic_load(&fx.st.stop_main));

    fl_future_release(t);
    ep_fx_end_closed(&fx);
}

static void test_endpoint_accessors_return_state_and_service(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "acc", 0);

    assert_ptr_equal(&fx.st, fl_rpc_endpoint_state(fx.ep));
    assert_ptr_equal(fx.svc, fl_rpc_endpoint_service(fx.ep));
    fl_fencing_token_t tok;
    assert_fl(FL_ENOENT, fl_rpc_endpoint_fencing_token(fx.ep, &tok));

    ep_fx_end(&fx);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_create_rejects_bad_ids_and_missing_services_with_einval),
        FL_TEST(test_default_id_is_endpoint_n_and_the_address_carries_it),
        FL_TEST(test_default_ids_never_collide_with_live_ids),
        FL_TEST(test_endpoint_accessors_return_state_and_service),
        FL_TEST(test_endpoint_without_hooks_starts_serves_and_terminates),
        FL_TEST(test_close_from_the_main_thread_terminates_the_endpoint),
    };
    return FX_RUN(argc, argv, tests);
}
