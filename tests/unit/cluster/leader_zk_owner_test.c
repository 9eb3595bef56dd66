/*
 * leader_zk_owner_test.c - what the owner of a ZooKeeper leader election
 * sees (leader_zk_fixture.h): a revoked leader's fenced endpoint and the
 * old token refused, out of memory in alloc and start, and a free with
 * requests in flight.
 */
#include <stdio.h>
#include <string.h>

#include "leader_zk_fixture.h"

/* ---- a leader that serves a fenced endpoint -------------------------------
 *
 * The guide's pattern: on grant, start the component's endpoint fenced with
 * the token and confirm its address; on revoke, close it (the next grant
 * starts it again, with the new token). Callbacks on the owner's main
 * thread; what the test reads is under rec.mu.
 */

typedef struct fenced_leader {
    contender_t c;
    fl_rpc_service_t *svc;
    fl_rpc_endpoint_t *rm; /* main thread: the endpoint serving, or NULL */
    rec_t serving;         /* "serving <token hex>" as each one starts */
    /* Under c.rec.mu: the endpoint closed by the last revoke, its close. */
    fl_rpc_endpoint_t *old;
    fl_future_t *closing;
} fenced_leader_t;

static int fenced_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    fenced_leader_t *f = state;
    fl_fencing_token_t t;
    char hex[33];
    int rc = fl_rpc_endpoint_fencing_token(ep, &t);
    rec_add(&f->serving, "serving %s",
            rc == FL_OK ? fl_fencing_token_hex(&t, hex) : fl_err_name(rc));
    return FL_OK;
}

static void fenced_grant(fl_leader_election_t *le,
                         const fl_fencing_token_t *token, void *arg)
{
    fenced_leader_t *f = arg;
    char hex[33];
    pthread_mutex_lock(&f->c.rec.mu);
    f->c.grants[f->c.ngrants++] = *token;
    pthread_mutex_unlock(&f->c.rec.mu);
    fl_rpc_endpoint_opts_t eo = {.id = "rm",
                                 .services = probe_services,
                                 .nservices = 1,
                                 .state = f,
                                 .on_start = fenced_on_start,
                                 .fencing_token = token};
    f->rm = NULL;
    int rc = fl_rpc_endpoint_create(f->svc, &eo, &f->rm);
    if (rc == FL_OK)
        rc = fl_rpc_endpoint_start(f->rm);
    if (rc == FL_OK)
        rc = fl_leader_election_confirm(
            le, token, fl_rpc_endpoint_address(f->rm), f->c.confirm_err,
            sizeof f->c.confirm_err);
    rec_add(&f->c.rec, "grant %s serve %s", fl_fencing_token_hex(token, hex),
            fl_err_name(rc));
}

static void fenced_revoke(fl_leader_election_t *le, void *arg)
{
    fenced_leader_t *f = arg;
    fl_future_t *closing = f->rm != NULL ? fl_rpc_endpoint_close(f->rm) : NULL;
    pthread_mutex_lock(&f->c.rec.mu);
    f->old = f->rm;
    f->closing = closing;
    pthread_mutex_unlock(&f->c.rec.mu);
    f->rm = NULL;
    rec_add(&f->c.rec, "revoke");
}

static const fl_leader_contender_t fenced_cbs = {fenced_grant, fenced_revoke};

/* Waits for the endpoint the last revoke closed to terminate; frees it. */
static void fenced_reap(fenced_leader_t *f)
{
    pthread_mutex_lock(&f->c.rec.mu);
    fl_rpc_endpoint_t *old = f->old;
    fl_future_t *closing = f->closing;
    f->old = NULL;
    f->closing = NULL;
    pthread_mutex_unlock(&f->c.rec.mu);
    assert_non_null(closing);
    assert_fl_ok(fl_test_future_code(closing));
    fl_future_release(closing);
    fl_rpc_endpoint_free(old);
}

static fl_rpc_gateway_t *probe_connect(fl_rpc_service_t *svc,
                                       const fl_fencing_token_t *token)
{
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_connect(svc, "fling://local/rm",
                                &leadertest__leader_probe__descriptor, token,
                                &f));
    assert_fl_ok(fl_test_future_code(f));
    fl_rpc_gateway_t *gw = fl_future_take_value(f);
    fl_future_release(f);
    return gw;
}

/* Calls LeaderProbe.Nothing through gw; returns the code, the message in
 * msg. */
static int probe_call(fl_rpc_gateway_t *gw, char *msg, size_t n)
{
    Leadertest__LeaderNothing req = LEADERTEST__LEADER_NOTHING__INIT;
    ProtobufCMessage *reply = NULL;
    int rc = fl_rpc_call_sync(gw, 0, &req.base, FL_TEST_WAIT_MS, &reply);
    if (reply != NULL)
        protobuf_c_message_free_unpacked(reply, NULL);
    snprintf(msg, n, "%s", rc == FL_OK ? "" : fl_rpc_last_message());
    return rc;
}

/* A revoked leader's endpoints reject calls with its token: the server
 * stops, the leader revokes and closes its fenced endpoint; the server
 * comes back, the leader is granted a new token and serves it: a caller
 * that still holds the old token is refused with FL_EFENCING. */
static void revoked_leader_rejects_old_token(void **state)
{
    fx_t fx;
    fx_begin(&fx);
    fl_rpc_endpoint_t *ea = owner_start(fx.svc, "a");
    fl_ha_opts_t o = zk_opts("fenced", SESSION_MS);
    fenced_leader_t f = {.c = {.address = "fling://local/rm"}, .svc = fx.svc};
    char err[256] = "", want[512], msg[512], hex0[33], hex1[33];
    rec_init(&f.c.rec);
    rec_init(&f.serving);
    assert_fl_ok(fl_leader_election_alloc(ea, &o, "rm", &fenced_cbs, &f,
                                          &f.c.le, err, sizeof err));
    assert_fl_ok(fl_leader_election_start(f.c.le, err, sizeof err));
    REC_AWAIT(&f.c.rec, 1, FL_TEST_WAIT_MS);
    fl_fencing_token_t t0 = contender_token(&f.c, 0);
    snprintf(want, sizeof want, "grant %s serve FL_OK",
             fl_fencing_token_hex(&t0, hex0));
    assert_string_equal(want, rec_line(&f.c.rec, 0));
    REC_AWAIT(&f.serving, 1, FL_TEST_WAIT_MS);
    snprintf(want, sizeof want, "serving %s", hex0);
    assert_string_equal(want, rec_line(&f.serving, 0));

    /* A caller with the leader's token is served. */
    fl_rpc_gateway_t *gw = probe_connect(fx.svc, &t0);
    assert_fl_ok(probe_call(gw, msg, sizeof msg));

    /* The server stops: revoke; the owner closes the fenced endpoint. */
    assert_int_equal(0, zk_script_run("stop", NULL));
    REC_AWAIT(&f.c.rec, 2, FL_TEST_WAIT_MS);
    assert_string_equal("revoke", rec_line(&f.c.rec, 1));
    fenced_reap(&f);
    assert_fl(FL_EUNREACHABLE, probe_call(gw, msg, sizeof msg));
    assert_string_equal("recipient unreachable: rpc endpoint 'rm' has "
                        "terminated (leadertest.LeaderProbe.Nothing not "
                        "delivered)",
                        msg);

    /* The server comes back: a new grant, a new token, the endpoint again
     * under the same address. */
    int port = zk_port;
    assert_int_equal(0, zk_script_run("start", &port));
    REC_AWAIT(&f.c.rec, 3, FL_TEST_WAIT_MS);
    fl_fencing_token_t t1 = contender_token(&f.c, 1);
    snprintf(want, sizeof want, "grant %s serve FL_OK",
             fl_fencing_token_hex(&t1, hex1));
    assert_string_equal(want, rec_line(&f.c.rec, 2));
    assert_true(memcmp(&t0, &t1, sizeof t0) != 0);
    REC_AWAIT(&f.serving, 2, FL_TEST_WAIT_MS);
    snprintf(want, sizeof want, "serving %s", hex1);
    assert_string_equal(want, rec_line(&f.serving, 1));

    /* The caller still holding the old token: refused by fencing. */
    fl_rpc_gateway_t *stale = probe_connect(fx.svc, &t0);
    assert_fl(FL_EFENCING, probe_call(stale, msg, sizeof msg));
    snprintf(want, sizeof want,
             "Fencing token mismatch: Ignoring message Nothing because the "
             "fencing token %s is not the fenced endpoint rm's current one.",
             hex0);
    assert_string_equal(want, msg);
    /* With the new token: served. */
    fl_rpc_gateway_t *fresh = probe_connect(fx.svc, &t1);
    assert_fl_ok(probe_call(fresh, msg, sizeof msg));

    fl_rpc_gateway_free(gw);
    fl_rpc_gateway_free(stale);
    fl_rpc_gateway_free(fresh);
    on_main(ea, free_election, f.c.le);
    assert_int_equal(3, rec_count(&f.c.rec));
    fl_future_t *closing = fl_rpc_endpoint_close(f.rm);
    assert_fl_ok(fl_test_future_code(closing));
    fl_future_release(closing);
    fl_rpc_endpoint_free(f.rm);
    rec_fini(&f.c.rec);
    rec_fini(&f.serving);
    owner_end(ea);
    fx_end(&fx);
}

/* ---- out of memory, and free with requests in flight -----------------------
 */

/* Out of memory at each allocation of the ZooKeeper election's and
 * retrieval's alloc and start: FL_ENOMEM with its reason, nothing leaked;
 * the last of each is freed right after its start. */
static void zk_out_of_memory(void **state)
{
    fx_t fx;
    fx_begin(&fx);
    fl_rpc_endpoint_t *ep = owner_start(fx.svc, "p");
    fl_ha_opts_t o = zk_opts("oom", SESSION_MS);
    int in_alloc, in_start;
    /* alloc: the object and four strings (component, zk_quorum, zk_root
     * and cluster_id). start: the state, three paths, then the task it
     * posts (one or two allocations, as the RPC layer's pool has a free
     * block or not). */
    oom_each_allocation(ep, &o, true, "rm", &in_alloc, &in_start);
    assert_int_equal(5, in_alloc);
    assert_in_range(in_start, 5, 6);
    oom_each_allocation(ep, &o, false, "rm", &in_alloc, &in_start);
    assert_int_equal(5, in_alloc);
    assert_in_range(in_start, 5, 6);
    owner_end(ep);
    fx_end(&fx);
}

/* Confirms (a request in flight), then frees the election from its own
 * grant callback. */
static void grant_then_free(fl_leader_election_t *le,
                            const fl_fencing_token_t *token, void *arg)
{
    char err[256] = "";
    int rc = fl_leader_election_confirm(le, token, "fling://local/gone", err,
                                        sizeof err);
    fl_leader_election_free(le);
    rec_add(arg, "grant confirm %s, freed", fl_err_name(rc));
}

static void revoke_logs(fl_leader_election_t *le, void *arg)
{
    rec_add(arg, "revoke");
}

/* Frees the retrieval from its own listener, reads in flight or not. */
static void listener_then_free(fl_leader_retrieval_t *lr, const char *address,
                               const fl_fencing_token_t *token, void *arg)
{
    fl_leader_retrieval_free(lr);
    rec_add(arg, "%s, freed", address != NULL ? address : "none");
}

/* Freeing with requests in flight is safe (ASan checks for a use after
 * free and leaks): right after start, before the session opens or while
 * it joins the latch; from the grant callback with the confirmation in
 * flight; from the listener. No callback runs after the free. */
static void free_with_requests_in_flight(void **state)
{
    fx_t fx;
    fx_begin(&fx);
    fl_rpc_endpoint_t *ep = owner_start(fx.svc, "p");
    fl_ha_opts_t o = zk_opts("inflight", SESSION_MS);
    char err[256] = "";
    for (int i = 0; i < 4; i++) {
        contender_t c = {.address = "fling://local/early"};
        contender_start(&c, ep, &o);
        on_main(ep, free_election, c.le);
        rec_t r;
        fl_leader_retrieval_t *lr = retrieval_start(&r, ep, &o);
        on_main(ep, free_retrieval, lr);
        rec_fini(&c.rec);
        rec_fini(&r);
    }

    rec_t g;
    rec_init(&g);
    fl_leader_contender_t cbs = {grant_then_free, revoke_logs};
    fl_leader_election_t *le = NULL;
    assert_fl_ok(
        fl_leader_election_alloc(ep, &o, "rm", &cbs, &g, &le, err, sizeof err));
    assert_fl_ok(fl_leader_election_start(le, err, sizeof err));
    REC_AWAIT(&g, 1, FL_TEST_WAIT_MS);
    assert_string_equal("grant confirm FL_OK, freed", rec_line(&g, 0));

    /* The session closed with the free: its latch node went with it. */
    await_latch_size("inflight", 0);

    /* A leader for the retrieval to report. */
    contender_t k = {.address = "fling://local/k"};
    contender_start(&k, ep, &o);
    REC_AWAIT(&k.rec, 1, FL_TEST_WAIT_MS);
    rec_t l;
    rec_init(&l);
    fl_leader_retrieval_t *lr = NULL;
    assert_fl_ok(fl_leader_retrieval_alloc(ep, &o, "rm", listener_then_free, &l,
                                           &lr, err, sizeof err));
    assert_fl_ok(fl_leader_retrieval_start(lr, err, sizeof err));
    REC_AWAIT(&l, 1, FL_TEST_WAIT_MS);
    char want[256];
    snprintf(want, sizeof want, "%s, freed", k.address);
    assert_string_equal(want, rec_line(&l, 0));
    on_main(ep, free_election, k.le);
    owner_end(ep); /* every task of the owner ran */
    assert_int_equal(1, rec_count(&g));
    assert_int_equal(1, rec_count(&l));
    assert_int_equal(1, rec_count(&k.rec));
    rec_fini(&k.rec);
    rec_fini(&g);
    rec_fini(&l);
    fx_end(&fx);
}

/* The longest base path is 967 bytes: its latch nodes, base +
 * "/latch/latch-" + 32 hex digits + "-" + 10 digits, take ZooKeeper's
 * 1,023 bytes. Base = root + "/long/leader/rm" (15 bytes): a root of 952
 * bytes is elected and confirmed, one of 953 refused at start. */
static void longest_path(void **state)
{
    fx_t fx;
    fx_begin(&fx);
    fl_rpc_endpoint_t *ep = owner_start(fx.svc, "long");
    char root[960];
    root[0] = '/';
    memset(root + 1, 'r', 951);
    root[952] = '\0';
    fl_ha_opts_t o = zk_opts("long", SESSION_MS);
    o.zk_root = root;
    contender_t c = {.address = "fling://local/c"};
    contender_start(&c, ep, &o);
    REC_AWAIT(&c.rec, 1, FL_TEST_WAIT_MS);
    fl_fencing_token_t t = contender_token(&c, 0);
    char line[128];
    grant_line(line, sizeof line, &t);
    assert_string_equal(line, rec_line(&c.rec, 0));
    on_main(ep, free_election, c.le);
    rec_fini(&c.rec);

    root[952] = 'r';
    root[953] = '\0';
    fl_leader_election_t *le = NULL;
    char err[2048] = "";
    assert_fl_ok(fl_leader_election_alloc(ep, &o, "rm", &contender_cbs, &c, &le,
                                          err, sizeof err));
    assert_int_equal(FL_EINVAL, fl_leader_election_start(le, err, sizeof err));
    char msg[2048];
    snprintf(msg, sizeof msg,
             "Could not start the leader election of 'rm': its ZooKeeper "
             "path %s/long/leader/rm is longer than 967 bytes",
             root);
    assert_string_equal(msg, err);
    fl_leader_election_free(le);
    owner_end(ep);
    fx_end(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(revoked_leader_rejects_old_token),
        FL_TEST(zk_out_of_memory),
        FL_TEST(free_with_requests_in_flight),
        FL_TEST(longest_path),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
