/*
 * leader_zk_test.c - leader election and retrieval on a real ZooKeeper
 * server (scripts/zk-test-server.sh: 127.0.0.1, a free port, a temporary
 * data folder, stopped by its pid).
 *
 * The program is also the second process of the "leader killed" case: run
 * as `leader_zk_test --contender PORT CLUSTER_ID` it contends, prints
 * "PID <pid>" and, once leader and confirmed, "LEADER <token hex>", and
 * waits to be killed.
 */
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#include "leader_fixture.h"

/* The session timeout of the contenders that must not lose it: the
 * server's longest (20 ticks of 500 ms), so that a slow run (the
 * sanitizers) does not miss pings for 2/3 of it and revoke. */
#define SESSION_MS 10000
/* The session of the killed child: its expiry is what the case waits for. */
#define KILLED_SESSION_MS 4000

static char zk_dir[64];
static char zk_script[1024];
static int zk_port;
static char zk_quorum[64];

/* Runs the server script; returns its exit code, the port it printed in
 * *port (start). */
static int zk_script_run(const char *cmd, int *port)
{
    char line[1200];
    if (port != NULL && *port > 0)
        snprintf(line, sizeof line, "%s %s %s %d", zk_script, cmd, zk_dir,
                 *port);
    else
        snprintf(line, sizeof line, "%s %s %s", zk_script, cmd, zk_dir);
    FILE *p = popen(line, "r");
    if (p == NULL)
        return -1;
    char out[64] = "";
    if (fgets(out, sizeof out, p) != NULL && port != NULL)
        *port = atoi(out);
    return pclose(p);
}

static int group_setup(void **state)
{
    char here[1024];
    snprintf(here, sizeof here, "%s", __FILE__);
    snprintf(zk_script, sizeof zk_script,
             "%s/../../../scripts/zk-test-server.sh", dirname(here));
    snprintf(zk_dir, sizeof zk_dir, "/tmp/fl-zk-XXXXXX");
    if (mkdtemp(zk_dir) == NULL)
        return -1;
    zk_port = 0;
    if (zk_script_run("start", &zk_port) != 0 || zk_port <= 0) {
        fprintf(stderr, "could not start ZooKeeper with %s\n", zk_script);
        return -1;
    }
    snprintf(zk_quorum, sizeof zk_quorum, "127.0.0.1:%d", zk_port);
    return 0;
}

static int group_teardown(void **state)
{
    (void)zk_script_run("stop", NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", zk_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static fl_ha_opts_t zk_opts(const char *cluster_id, int64_t session_ms)
{
    fl_ha_opts_t o = {.mode = FL_HA_ZOOKEEPER,
                      .zk_quorum = zk_quorum,
                      .cluster_id = cluster_id,
                      .zk_session_timeout_ms = session_ms};
    return o;
}

/* Polls ZooKeeper (a client of the test's own) until the latch of
 * cluster_id's "rm" holds n contenders; fails the test after
 * FL_TEST_WAIT_MS. */
static void await_latch_size(const char *cluster_id, int n)
{
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    zhandle_t *zh = zookeeper_init(zk_quorum, NULL, 4000, NULL, NULL, 0);
    assert_non_null(zh);
    char path[256];
    snprintf(path, sizeof path, "/flink/%s/leader/rm/latch", cluster_id);
    int got = -1;
    for (int i = 0; i < FL_TEST_WAIT_MS / 10; i++) {
        struct String_vector kids = {0};
        if (zoo_get_children(zh, path, 0, &kids) == ZOK) {
            got = kids.count;
            deallocate_String_vector(&kids);
            if (got == n)
                break;
        }
        usleep(10 * 1000);
    }
    zookeeper_close(zh);
    if (got != n)
        fail_msg("latch %s holds %d contenders, not %d", path, got, n);
}

typedef struct fx {
    fl_rpc_service_t *svc;
} fx_t;

static void fx_begin(fx_t *fx)
{
    fl_rpc_service_opts_t so = {.workers = 2};
    assert_fl_ok(fl_rpc_service_alloc(&so, &fx->svc));
}

static void fx_end(fx_t *fx)
{
    assert_fl_ok(fl_rpc_service_shutdown(fx->svc));
    fl_rpc_service_free(fx->svc);
}

static void owner_end(fl_rpc_endpoint_t *ep)
{
    fl_future_t *f = fl_rpc_endpoint_close(ep);
    assert_fl_ok(fl_test_future_code(f));
    fl_future_release(f);
    fl_rpc_endpoint_free(ep);
}

static void contender_start(contender_t *c, fl_rpc_endpoint_t *ep,
                            const fl_ha_opts_t *o)
{
    char err[256] = "";
    rec_init(&c->rec);
    assert_fl_ok(fl_leader_election_alloc(ep, o, "rm", &contender_cbs, c,
                                          &c->le, err, sizeof err));
    assert_fl_ok(fl_leader_election_start(c->le, err, sizeof err));
}

static fl_leader_retrieval_t *retrieval_start(rec_t *r, fl_rpc_endpoint_t *ep,
                                              const fl_ha_opts_t *o)
{
    char err[256] = "";
    fl_leader_retrieval_t *lr = NULL;
    rec_init(r);
    assert_fl_ok(fl_leader_retrieval_alloc(ep, o, "rm", listener_cb, r, &lr,
                                           err, sizeof err));
    assert_fl_ok(fl_leader_retrieval_start(lr, err, sizeof err));
    return lr;
}

static void grant_line(char *buf, size_t n, const fl_fencing_token_t *t)
{
    char hex[33];
    snprintf(buf, n, "grant %s confirm FL_OK", fl_fencing_token_hex(t, hex));
}

static void leader_line(char *buf, size_t n, const char *addr,
                        const fl_fencing_token_t *t)
{
    char hex[33];
    snprintf(buf, n, "leader %s %s", addr, fl_fencing_token_hex(t, hex));
}

/* Waits for the retriever's lines from `from` on to end with want; those
 * before it may only be "none" or, when old is not NULL, old (after a
 * reconnection the previous leader's znode may be read once more before it
 * goes: its endpoints reject that token). */
static void assert_next_leader(rec_t *r, int from, const char *want,
                               const char *old)
{
    int n = from;
    for (;;) {
        REC_AWAIT(r, n + 1, FL_TEST_WAIT_MS);
        const char *l = rec_line(r, n);
        if (strcmp(l, want) == 0)
            break;
        if (strcmp(l, "none") != 0 && (old == NULL || strcmp(l, old) != 0))
            fail_msg("retriever line %d is '%s', expected 'none'%s%s or '%s'",
                     n, l, old != NULL ? ", " : "", old != NULL ? old : "",
                     want);
        n++;
    }
    assert_int_equal(n + 1, rec_count(r));
}

/* Two contenders, one leader; when it leaves, the other leads and the
 * retriever follows. */
static void two_contenders_one_leader(void **state)
{
    fx_t fx;
    fx_begin(&fx);
    fl_rpc_endpoint_t *ea = owner_start(fx.svc, "a");
    fl_rpc_endpoint_t *eb = owner_start(fx.svc, "b");
    fl_rpc_endpoint_t *er = owner_start(fx.svc, "r");
    fl_ha_opts_t o = zk_opts("two", SESSION_MS);
    contender_t a = {.address = "fling.tcp://10.0.0.1:6123/a"};
    contender_t b = {.address = "fling.tcp://10.0.0.2:6123/b"};
    char want[256];

    contender_start(&a, ea, &o);
    REC_AWAIT(&a.rec, 1, FL_TEST_WAIT_MS);
    fl_fencing_token_t ta = contender_token(&a, 0);
    grant_line(want, sizeof want, &ta);
    assert_string_equal(want, rec_line(&a.rec, 0));

    rec_t r;
    fl_leader_retrieval_t *lr = retrieval_start(&r, er, &o);
    REC_AWAIT(&r, 1, FL_TEST_WAIT_MS);
    leader_line(want, sizeof want, a.address, &ta);
    assert_string_equal(want, rec_line(&r, 0));

    contender_start(&b, eb, &o);
    await_latch_size("two", 2);
    /* b is in the latch, behind a: not leader. */
    assert_int_equal(0, rec_count(&b.rec));
    assert_int_equal(1, rec_count(&a.rec));

    on_main(ea, free_election, a.le);
    REC_AWAIT(&b.rec, 1, FL_TEST_WAIT_MS);
    fl_fencing_token_t tb = contender_token(&b, 0);
    grant_line(want, sizeof want, &tb);
    assert_string_equal(want, rec_line(&b.rec, 0));
    assert_true(memcmp(&ta, &tb, sizeof ta) != 0);
    leader_line(want, sizeof want, b.address, &tb);
    assert_next_leader(&r, 1, want, NULL);

    on_main(eb, free_election, b.le);
    on_main(er, free_retrieval, lr);
    assert_int_equal(1, rec_count(&a.rec));
    assert_int_equal(1, rec_count(&b.rec));
    rec_fini(&a.rec);
    rec_fini(&b.rec);
    rec_fini(&r);
    owner_end(ea);
    owner_end(eb);
    owner_end(er);
    fx_end(&fx);
}

/* The leader's process is killed (kill -9): after the session timeout the
 * other contender leads and the retriever sees its address and token. */
static void leader_killed_other_takes_over(void **state)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "exec /proc/%d/exe --contender %d killed",
             (int)getpid(), zk_port);
    FILE *child = popen(cmd, "r");
    assert_non_null(child);
    char line[128];
    int pid = 0;
    assert_non_null(fgets(line, sizeof line, child));
    assert_int_equal(1, sscanf(line, "PID %d", &pid));
    assert_non_null(fgets(line, sizeof line, child));
    char child_hex[33] = "";
    assert_int_equal(1, sscanf(line, "LEADER %32s", child_hex));

    fx_t fx;
    fx_begin(&fx);
    fl_rpc_endpoint_t *ep = owner_start(fx.svc, "p");
    fl_rpc_endpoint_t *er = owner_start(fx.svc, "r");
    fl_ha_opts_t o = zk_opts("killed", KILLED_SESSION_MS);
    char want[256], child_addr[64];
    snprintf(child_addr, sizeof child_addr, "fling://child/%d", pid);

    rec_t r;
    fl_leader_retrieval_t *lr = retrieval_start(&r, er, &o);
    REC_AWAIT(&r, 1, FL_TEST_WAIT_MS);
    snprintf(want, sizeof want, "leader %s %s", child_addr, child_hex);
    assert_string_equal(want, rec_line(&r, 0));

    contender_t p = {.address = "fling.tcp://10.0.0.3:6123/p"};
    contender_start(&p, ep, &o);
    await_latch_size("killed", 2);
    assert_int_equal(0, rec_count(&p.rec));

    uint64_t t0 = fl_clock_now_ns();
    assert_int_equal(0, kill(pid, SIGKILL));
    pclose(child);
    REC_AWAIT(&p.rec, 1, FL_TEST_WAIT_MS);
    /* The server expires the session KILLED_SESSION_MS after it last
     * heard from the child, which pinged every third of it: not before 2/3
     * of it from the kill (less a 500 ms tick), never at once. */
    fl_test_assert_elapsed("takeover after kill -9", fl_test_ms_since(t0),
                           KILLED_SESSION_MS * 2 / 3 - 500,
                           KILLED_SESSION_MS * 3);
    fl_fencing_token_t tp = contender_token(&p, 0);
    grant_line(want, sizeof want, &tp);
    assert_string_equal(want, rec_line(&p.rec, 0));
    leader_line(want, sizeof want, p.address, &tp);
    assert_next_leader(&r, 1, want, NULL);

    on_main(ep, free_election, p.le);
    on_main(er, free_retrieval, lr);
    rec_fini(&p.rec);
    rec_fini(&r);
    owner_end(ep);
    owner_end(er);
    fx_end(&fx);
}

/* The server stops: the leader revokes within the connection-loss
 * detection time and the retriever knows no leader; the server restarts:
 * one leader again, with a new token. */
static void server_stopped_leader_revokes(void **state)
{
    fx_t fx;
    fx_begin(&fx);
    fl_rpc_endpoint_t *ea = owner_start(fx.svc, "a");
    fl_rpc_endpoint_t *eb = owner_start(fx.svc, "b");
    fl_rpc_endpoint_t *er = owner_start(fx.svc, "r");
    const int64_t session_ms = SESSION_MS;
    fl_ha_opts_t o = zk_opts("stopped", session_ms);
    contender_t a = {.address = "fling.tcp://10.0.0.1:6123/a"};
    contender_t b = {.address = "fling.tcp://10.0.0.2:6123/b"};
    char want[256];

    contender_start(&a, ea, &o);
    REC_AWAIT(&a.rec, 1, FL_TEST_WAIT_MS);
    contender_start(&b, eb, &o);
    await_latch_size("stopped", 2);
    rec_t r;
    fl_leader_retrieval_t *lr = retrieval_start(&r, er, &o);
    REC_AWAIT(&r, 1, FL_TEST_WAIT_MS);
    fl_fencing_token_t first = contender_token(&a, 0);
    leader_line(want, sizeof want, a.address, &first);
    assert_string_equal(want, rec_line(&r, 0));

    uint64_t t0 = fl_clock_now_ns();
    assert_int_equal(0, zk_script_run("stop", NULL));
    REC_AWAIT(&a.rec, 2, FL_TEST_WAIT_MS);
    /* The client notices a silent connection after 2/3 of the session
     * timeout; a stopped server closes it at once. */
    fl_test_assert_elapsed("revoke after the server stopped",
                           fl_test_ms_since(t0), 0, session_ms * 2 / 3);
    assert_string_equal("revoke", rec_line(&a.rec, 1));
    REC_AWAIT(&r, 2, FL_TEST_WAIT_MS);
    assert_string_equal("none", rec_line(&r, 1));
    assert_int_equal(0, rec_count(&b.rec));

    int port = zk_port;
    assert_int_equal(0, zk_script_run("start", &port));
    assert_int_equal(zk_port, port);
    /* One of the two leads again, with a new token. */
    for (int i = 0; i < FL_TEST_WAIT_MS / 10; i++) {
        if (rec_count(&a.rec) == 3 || rec_count(&b.rec) == 1)
            break;
        usleep(10 * 1000);
    }
    contender_t *lead = rec_count(&a.rec) == 3 ? &a : &b;
    int idx = lead == &a ? 2 : 0;
    REC_AWAIT(&lead->rec, idx + 1, 1);
    fl_fencing_token_t tl = contender_token(lead, lead == &a ? 1 : 0);
    grant_line(want, sizeof want, &tl);
    assert_string_equal(want, rec_line(&lead->rec, idx));
    assert_true(memcmp(&first, &tl, sizeof first) != 0);
    leader_line(want, sizeof want, lead->address, &tl);
    char old[256];
    leader_line(old, sizeof old, a.address, &first);
    assert_next_leader(&r, 2, want, old);
    /* The other did not lead meanwhile. */
    assert_int_equal(lead == &a ? 0 : 2,
                     rec_count(lead == &a ? &b.rec : &a.rec));

    on_main(ea, free_election, a.le);
    on_main(eb, free_election, b.le);
    on_main(er, free_retrieval, lr);
    rec_fini(&a.rec);
    rec_fini(&b.rec);
    rec_fini(&r);
    owner_end(ea);
    owner_end(eb);
    owner_end(er);
    fx_end(&fx);
}

/* Creates an ephemeral sequential node named prefix under cluster_id's
 * latch with zh (the test's own session), retrying while zh connects. */
static void latch_create(zhandle_t *zh, const char *cluster_id,
                         const char *prefix)
{
    char path[256], made[256];
    snprintf(path, sizeof path, "/flink/%s/leader/rm/latch/%s", cluster_id,
             prefix);
    int rc = ZCONNECTIONLOSS;
    for (int i = 0; i < FL_TEST_WAIT_MS / 10 && rc != ZOK; i++) {
        rc = zoo_create(zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE,
                        ZOO_EPHEMERAL_SEQUENTIAL, made, sizeof made);
        if (rc != ZOK)
            usleep(10 * 1000);
    }
    if (rc != ZOK)
        fail_msg("could not create %s: %s", path, zerror(rc));
}

/* The name prefix ("latch-<guid>-") of the latest node of cluster_id's
 * latch, into buf. */
static void latch_last_prefix(zhandle_t *zh, const char *cluster_id, char *buf,
                              size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "/flink/%s/leader/rm/latch", cluster_id);
    struct String_vector kids = {0};
    assert_int_equal(ZOK, zoo_get_children(zh, path, 0, &kids));
    const char *last = NULL;
    for (int i = 0; i < kids.count; i++) {
        const char *k = kids.data[i];
        if (last == NULL ||
            strcmp(k + strlen(k) - 10, last + strlen(last) - 10) > 0)
            last = k;
    }
    assert_non_null(last);
    snprintf(buf, n, "%.*s", (int)(strlen(last) - 10), last);
    deallocate_String_vector(&kids);
}

/* A latch node of a contender's own session that it does not know of (a
 * create whose answer was lost with the connection) is recognised by its
 * name, stands in no one's way, and is removed at the next latch check. */
static void own_stale_latch_node_removed(void **state)
{
    fx_t fx;
    fx_begin(&fx);
    fl_rpc_endpoint_t *ea = owner_start(fx.svc, "a");
    fl_rpc_endpoint_t *eb = owner_start(fx.svc, "b");
    fl_ha_opts_t o = zk_opts("stale", SESSION_MS);
    contender_t a = {.address = "fling.tcp://10.0.0.1:6123/a"};
    contender_t b = {.address = "fling.tcp://10.0.0.2:6123/b"};
    char want[256], prefix[128];

    contender_start(&a, ea, &o);
    REC_AWAIT(&a.rec, 1, FL_TEST_WAIT_MS);
    contender_start(&b, eb, &o);
    await_latch_size("stale", 2);
    /* A node with b's name, after b's: as if b's create had been sent
     * again after a lost answer. */
    zhandle_t *zh = zookeeper_init(zk_quorum, NULL, SESSION_MS, NULL, NULL, 0);
    assert_non_null(zh);
    latch_last_prefix(zh, "stale", prefix, sizeof prefix);
    latch_create(zh, "stale", prefix);
    await_latch_size("stale", 3);

    /* a leaves: b leads, and removes the node with its name. */
    on_main(ea, free_election, a.le);
    REC_AWAIT(&b.rec, 1, FL_TEST_WAIT_MS);
    fl_fencing_token_t tb = contender_token(&b, 0);
    grant_line(want, sizeof want, &tb);
    assert_string_equal(want, rec_line(&b.rec, 0));
    await_latch_size("stale", 1);

    zookeeper_close(zh);
    on_main(eb, free_election, b.le);
    assert_int_equal(1, rec_count(&a.rec));
    assert_int_equal(1, rec_count(&b.rec));
    rec_fini(&a.rec);
    rec_fini(&b.rec);
    owner_end(ea);
    owner_end(eb);
    fx_end(&fx);
}

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
             "fencing token %s did not match the expected fencing token %s.",
             hex0, hex1);
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

/* ---- the second process ---------------------------------------------------
 */

static void child_grant(fl_leader_election_t *le,
                        const fl_fencing_token_t *token, void *arg)
{
    char err[256], hex[33];
    if (fl_leader_election_confirm(le, token, arg, err, sizeof err) != FL_OK) {
        fprintf(stderr, "child: %s\n", err);
        return;
    }
    printf("LEADER %s\n", fl_fencing_token_hex(token, hex));
    fflush(stdout);
}

static void child_revoke(fl_leader_election_t *le, void *arg) {}

static int child_main(int port, const char *cluster_id)
{
    char quorum[64], addr[64], err[256];
    /* Dies with the test, should the test fail before killing it. */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    snprintf(quorum, sizeof quorum, "127.0.0.1:%d", port);
    snprintf(addr, sizeof addr, "fling://child/%d", (int)getpid());
    printf("PID %d\n", (int)getpid());
    fflush(stdout);
    fl_rpc_service_opts_t so = {.workers = 1};
    fl_rpc_service_t *svc;
    fl_rpc_endpoint_t *ep;
    fl_rpc_endpoint_opts_t eo = {
        .id = "child", .services = probe_services, .nservices = 1};
    if (fl_rpc_service_alloc(&so, &svc) != FL_OK ||
        fl_rpc_endpoint_create(svc, &eo, &ep) != FL_OK ||
        fl_rpc_endpoint_start(ep) != FL_OK)
        return 1;
    fl_ha_opts_t o = {.mode = FL_HA_ZOOKEEPER,
                      .zk_quorum = quorum,
                      .cluster_id = cluster_id,
                      .zk_session_timeout_ms = KILLED_SESSION_MS};
    fl_leader_contender_t cbs = {child_grant, child_revoke};
    fl_leader_election_t *le;
    if (fl_leader_election_alloc(ep, &o, "rm", &cbs, addr, &le, err,
                                 sizeof err) != FL_OK ||
        fl_leader_election_start(le, err, sizeof err) != FL_OK) {
        fprintf(stderr, "child: %s\n", err);
        return 1;
    }
    for (;;)
        pause(); /* until killed */
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--contender") == 0)
        return child_main(atoi(argv[2]), argv[3]);
    const struct CMUnitTest tests[] = {
        FL_TEST(two_contenders_one_leader),
        FL_TEST(leader_killed_other_takes_over),
        FL_TEST(server_stopped_leader_revokes),
        FL_TEST(revoked_leader_rejects_old_token),
        FL_TEST(own_stale_latch_node_removed),
        FL_TEST(zk_out_of_memory),
        FL_TEST(free_with_requests_in_flight),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
