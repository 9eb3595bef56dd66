/*
 * leader_zk_fixture.h - what the ZooKeeper leader election tests share: a
 * real server for the program (scripts/zk-test-server.sh: 127.0.0.1, a
 * free port, a temporary data folder, stopped by its pid; started by
 * group_setup, stopped by group_teardown), options for it, owners,
 * contenders and retrievers that log, and the lines they log.
 */
#ifndef LEADER_ZK_FIXTURE_H
#define LEADER_ZK_FIXTURE_H

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static char zk_dir[64];
static char zk_script[1024];
static int zk_port;
static char zk_quorum[64];

/* Runs the server script; returns its exit code, the port it printed in
 * *port (start). */
static inline int zk_script_run(const char *cmd, int *port)
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

static inline int group_setup(void **state)
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

static inline int group_teardown(void **state)
{
    (void)zk_script_run("stop", NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", zk_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static inline fl_ha_opts_t zk_opts(const char *cluster_id, int64_t session_ms)
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
static inline void await_latch_size(const char *cluster_id, int n)
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

static inline void fx_begin(fx_t *fx)
{
    fl_rpc_service_opts_t so = {.workers = 2};
    assert_fl_ok(fl_rpc_service_alloc(&so, &fx->svc));
}

static inline void fx_end(fx_t *fx)
{
    assert_fl_ok(fl_rpc_service_shutdown(fx->svc));
    fl_rpc_service_free(fx->svc);
}

static inline void owner_end(fl_rpc_endpoint_t *ep)
{
    fl_future_t *f = fl_rpc_endpoint_close(ep);
    assert_fl_ok(fl_test_future_code(f));
    fl_future_release(f);
    fl_rpc_endpoint_free(ep);
}

static inline void contender_start(contender_t *c, fl_rpc_endpoint_t *ep,
                                   const fl_ha_opts_t *o)
{
    char err[256] = "";
    rec_init(&c->rec);
    assert_fl_ok(fl_leader_election_alloc(ep, o, "rm", &contender_cbs, c,
                                          &c->le, err, sizeof err));
    assert_fl_ok(fl_leader_election_start(c->le, err, sizeof err));
}

static inline fl_leader_retrieval_t *
retrieval_start(rec_t *r, fl_rpc_endpoint_t *ep, const fl_ha_opts_t *o)
{
    char err[256] = "";
    fl_leader_retrieval_t *lr = NULL;
    rec_init(r);
    assert_fl_ok(fl_leader_retrieval_alloc(ep, o, "rm", listener_cb, r, &lr,
                                           err, sizeof err));
    assert_fl_ok(fl_leader_retrieval_start(lr, err, sizeof err));
    return lr;
}

static inline void grant_line(char *buf, size_t n, const fl_fencing_token_t *t)
{
    char hex[33];
    snprintf(buf, n, "grant %s confirm FL_OK", fl_fencing_token_hex(t, hex));
}

static inline void leader_line(char *buf, size_t n, const char *addr,
                               const fl_fencing_token_t *t)
{
    char hex[33];
    snprintf(buf, n, "leader %s %s", addr, fl_fencing_token_hex(t, hex));
}

/* Waits for the retriever's lines from `from` on to end with want; those
 * before it may only be "none" or, when old is not NULL, old (after a
 * reconnection the previous leader's znode may be read once more before it
 * goes: its endpoints reject that token). */
static inline void assert_next_leader(rec_t *r, int from, const char *want,
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

#endif
