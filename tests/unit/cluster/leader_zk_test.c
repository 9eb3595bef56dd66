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
    fl_ha_opts_t o = zk_opts("two", 4000);
    contender_t a = {.address = "fling.tcp://10.0.0.1:6123/a"};
    contender_t b = {.address = "fling.tcp://10.0.0.2:6123/b"};
    char want[256];

    contender_start(&a, ea, &o);
    REC_AWAIT(&a.rec, 1, FL_TEST_WAIT_MS);
    grant_line(want, sizeof want, &a.token);
    assert_string_equal(want, rec_line(&a.rec, 0));

    rec_t r;
    fl_leader_retrieval_t *lr = retrieval_start(&r, er, &o);
    REC_AWAIT(&r, 1, FL_TEST_WAIT_MS);
    leader_line(want, sizeof want, a.address, &a.token);
    assert_string_equal(want, rec_line(&r, 0));

    contender_start(&b, eb, &o);
    await_latch_size("two", 2);
    /* b is in the latch, behind a: not leader. */
    assert_int_equal(0, rec_count(&b.rec));
    assert_int_equal(1, rec_count(&a.rec));

    on_main(ea, free_election, a.le);
    REC_AWAIT(&b.rec, 1, FL_TEST_WAIT_MS);
    grant_line(want, sizeof want, &b.token);
    assert_string_equal(want, rec_line(&b.rec, 0));
    assert_true(memcmp(&a.token, &b.token, sizeof a.token) != 0);
    leader_line(want, sizeof want, b.address, &b.token);
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
    fl_ha_opts_t o = zk_opts("killed", 2000);
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
    /* The server expires the session 2000 ms after it last heard from
     * the child, which pinged every 2000 / 3 ms: not before 1333 ms from
     * the kill (give or take a 500 ms tick), never at once. */
    fl_test_assert_elapsed("takeover after kill -9", fl_test_ms_since(t0), 1000,
                           8000);
    grant_line(want, sizeof want, &p.token);
    assert_string_equal(want, rec_line(&p.rec, 0));
    leader_line(want, sizeof want, p.address, &p.token);
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
    const int64_t session_ms = 3000;
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
    leader_line(want, sizeof want, a.address, &a.token);
    assert_string_equal(want, rec_line(&r, 0));
    fl_fencing_token_t first = a.token;

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
    grant_line(want, sizeof want, &lead->token);
    assert_string_equal(want, rec_line(&lead->rec, idx));
    assert_true(memcmp(&first, &lead->token, sizeof first) != 0);
    leader_line(want, sizeof want, lead->address, &lead->token);
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
                      .zk_session_timeout_ms = 2000};
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
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
