/*
 * leader_test.c - leader election and retrieval in standalone mode
 * (FL_HA_NONE), and the refusals of the interface.
 */
#include <stdio.h>
#include <string.h>

#include "leader_fixture.h"

typedef struct fx {
    fl_rpc_service_t *svc;
    fl_rpc_endpoint_t *ep;
} fx_t;

static void fx_begin(fx_t *fx)
{
    fl_rpc_service_opts_t so = {.workers = 2};
    assert_fl_ok(fl_rpc_service_alloc(&so, &fx->svc));
    fx->ep = owner_start(fx->svc, "owner");
}

static void fx_end(fx_t *fx)
{
    fl_future_t *f = fl_rpc_endpoint_close(fx->ep);
    assert_fl_ok(fl_test_future_code(f));
    fl_future_release(f);
    fl_rpc_endpoint_free(fx->ep);
    assert_fl_ok(fl_rpc_service_shutdown(fx->svc));
    fl_rpc_service_free(fx->svc);
}

static const char zero_hex[] = "00000000000000000000000000000000";

typedef struct confirm_args {
    fl_leader_election_t *le;
    fl_fencing_token_t token;
    int rc;
    bool held;
    char err[256];
} confirm_args_t;

static void confirm_on_main(void *arg)
{
    confirm_args_t *a = arg;
    a->held = fl_leader_election_has_leadership(a->le, &a->token);
    a->rc = fl_leader_election_confirm(a->le, &a->token, "fling://local/x",
                                       a->err, sizeof a->err);
}

/* Standalone: granted at once with the all-zero token, confirmed; another
 * token is not held and cannot be confirmed. */
static void standalone_election_grants_zero_token(void **state)
{
    fx_t fx;
    fx_begin(&fx);
    contender_t c = {.address = "fling://local/owner"};
    rec_init(&c.rec);
    fl_ha_opts_t o = {.mode = FL_HA_NONE};
    char err[256] = "";
    assert_fl_ok(fl_leader_election_alloc(fx.ep, &o, "resourcemanager",
                                          &contender_cbs, &c, &c.le, err,
                                          sizeof err));
    assert_fl_ok(fl_leader_election_start(c.le, err, sizeof err));
    REC_AWAIT(&c.rec, 1, FL_TEST_WAIT_MS);
    char want[128];
    snprintf(want, sizeof want, "grant %s confirm FL_OK", zero_hex);
    assert_string_equal(want, rec_line(&c.rec, 0));

    confirm_args_t a = {.le = c.le};
    on_main(fx.ep, confirm_on_main, &a);
    assert_true(a.held);
    assert_fl_ok(a.rc);

    a.token = fl_test_token(7);
    on_main(fx.ep, confirm_on_main, &a);
    assert_false(a.held);
    assert_fl(FL_ESTATE, a.rc);
    assert_string_equal("Could not confirm leadership of 'resourcemanager' "
                        "with token 07070707070707070707070707070707: that "
                        "leadership is not held (revoked or never granted); "
                        "wait for the next grant",
                        a.err);

    /* Started twice: refused. */
    assert_fl(FL_ESTATE, fl_leader_election_start(c.le, err, sizeof err));
    assert_string_equal(
        "The leader election of 'resourcemanager' is started already", err);

    on_main(fx.ep, free_election, c.le);
    assert_int_equal(1, rec_count(&c.rec));
    rec_fini(&c.rec);
    fx_end(&fx);
}

/* Standalone retrieval: the configured address with the zero token, once. */
static void standalone_retrieval_reports_address(void **state)
{
    fx_t fx;
    fx_begin(&fx);
    rec_t r;
    rec_init(&r);
    fl_ha_opts_t o = {.mode = FL_HA_NONE,
                      .standalone_address =
                          "fling.tcp://10.0.0.1:6123/resourcemanager"};
    fl_leader_retrieval_t *lr = NULL;
    char err[256] = "";
    assert_fl_ok(fl_leader_retrieval_alloc(
        fx.ep, &o, "resourcemanager", listener_cb, &r, &lr, err, sizeof err));
    assert_fl_ok(fl_leader_retrieval_start(lr, err, sizeof err));
    REC_AWAIT(&r, 1, FL_TEST_WAIT_MS);
    char want[160];
    snprintf(want, sizeof want,
             "leader fling.tcp://10.0.0.1:6123/resourcemanager %s", zero_hex);
    assert_string_equal(want, rec_line(&r, 0));
    on_main(fx.ep, free_retrieval, lr);
    assert_int_equal(1, rec_count(&r));
    rec_fini(&r);
    fx_end(&fx);
}

/* Bad options are refused with the reason, and nothing is allocated. */
static void refusals_name_the_problem(void **state)
{
    fx_t fx;
    fx_begin(&fx);
    rec_t r;
    rec_init(&r);
    char err[256];
    fl_leader_retrieval_t *lr = (fl_leader_retrieval_t *)&r;
    fl_leader_election_t *le = (fl_leader_election_t *)&r;

    fl_ha_opts_t o = {.mode = FL_HA_NONE};
    assert_fl(FL_EINVAL,
              fl_leader_retrieval_alloc(fx.ep, &o, "resourcemanager",
                                        listener_cb, &r, &lr, err, sizeof err));
    assert_null(lr);
    assert_string_equal("Could not create the leader retrieval of "
                        "'resourcemanager': standalone mode needs the "
                        "leader's address (standalone_address)",
                        err);

    o.mode = FL_HA_ZOOKEEPER;
    assert_fl(FL_EINVAL,
              fl_leader_election_alloc(fx.ep, &o, "dispatcher", &contender_cbs,
                                       &r, &le, err, sizeof err));
    assert_null(le);
    assert_string_equal("Could not create the leader election of "
                        "'dispatcher': ZooKeeper mode needs "
                        "high-availability.zookeeper.quorum (zk_quorum), e.g. "
                        "'host:2181'",
                        err);

    o.zk_quorum = "127.0.0.1:2181";
    o.zk_root = "flink/";
    assert_fl(FL_EINVAL,
              fl_leader_election_alloc(fx.ep, &o, "dispatcher", &contender_cbs,
                                       &r, &le, err, sizeof err));
    assert_string_equal("Could not create the leader election of "
                        "'dispatcher': high-availability.zookeeper.path.root "
                        "'flink/' must start with '/' and not end with one, "
                        "e.g. '/flink'",
                        err);

    o.zk_root = NULL;
    o.cluster_id = "a/b";
    assert_fl(FL_EINVAL,
              fl_leader_election_alloc(fx.ep, &o, "dispatcher", &contender_cbs,
                                       &r, &le, err, sizeof err));
    assert_string_equal("Could not create the leader election of "
                        "'dispatcher': high-availability.cluster-id 'a/b' is "
                        "not a name; use letters, digits, '_', '-' and '.'",
                        err);

    o.cluster_id = NULL;
    assert_fl(FL_EINVAL,
              fl_leader_election_alloc(fx.ep, &o, "../x", &contender_cbs, &r,
                                       &le, err, sizeof err));
    assert_string_equal("Could not create the leader election: component "
                        "'../x' is not a name; use letters, digits, '_', '-' "
                        "and '.'",
                        err);

    o.mode = (fl_ha_mode_t)7;
    assert_fl(FL_EINVAL,
              fl_leader_election_alloc(fx.ep, &o, "dispatcher", &contender_cbs,
                                       &r, &le, err, sizeof err));
    assert_string_equal("Could not create the leader election of "
                        "'dispatcher': unknown mode 7; use FL_HA_NONE or "
                        "FL_HA_ZOOKEEPER",
                        err);

    o.mode = FL_HA_ZOOKEEPER;
    o.zk_session_timeout_ms = -1;
    assert_fl(FL_EINVAL,
              fl_leader_election_alloc(fx.ep, &o, "dispatcher", &contender_cbs,
                                       &r, &le, err, sizeof err));
    assert_string_equal("Could not create the leader election of "
                        "'dispatcher': session timeout -1 ms is out of range; "
                        "give 0 (60000 ms) or a positive number of ms",
                        err);
    assert_int_equal(0, rec_count(&r));
    rec_fini(&r);
    fx_end(&fx);
}

/* Out of memory at each allocation of the standalone election's and
 * retrieval's alloc and start: FL_ENOMEM with its reason, nothing leaked
 * (the sanitizer builds check). */
static void standalone_out_of_memory(void **state)
{
    fx_t fx;
    fx_begin(&fx);
    fl_ha_opts_t o = {.mode = FL_HA_NONE,
                      .standalone_address = "fling://local/resourcemanager"};
    int in_alloc, in_start;
    /* alloc: the object and four strings (component, standalone_address,
     * zk_root and cluster_id with their defaults). start: the task it
     * posts, one or two allocations as the RPC layer's pool has a free
     * block or not. */
    oom_each_allocation(fx.ep, &o, true, "resourcemanager", &in_alloc,
                        &in_start);
    assert_int_equal(5, in_alloc);
    assert_in_range(in_start, 1, 2);
    oom_each_allocation(fx.ep, &o, false, "resourcemanager", &in_alloc,
                        &in_start);
    assert_int_equal(5, in_alloc);
    assert_in_range(in_start, 1, 2);
    fx_end(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(standalone_election_grants_zero_token),
        FL_TEST(standalone_retrieval_reports_address),
        FL_TEST(refusals_name_the_problem),
        FL_TEST(standalone_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
