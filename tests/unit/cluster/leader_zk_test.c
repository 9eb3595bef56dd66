/*
 * leader_zk_test.c - leader election and retrieval on a real ZooKeeper
 * server (leader_zk_fixture.h): two contenders, the leader killed, the
 * server stopped and restarted, a stale latch node of one's own.
 *
 * The program is also the second process of the "leader killed" case: run
 * as `leader_zk_test --contender PORT CLUSTER_ID` it contends, prints
 * "PID <pid>" and, once leader and confirmed, "LEADER <token hex>", and
 * waits to be killed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "leader_zk_fixture.h"

/* The session of the killed child: its expiry is what the case waits for. */
#define KILLED_SESSION_MS 4000

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
        FL_TEST(own_stale_latch_node_removed),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
