/*
 * cluster_zk_test.c - fling-jobmanager with high-availability.type
 * zookeeper and one JobManager: its ResourceManager is elected through
 * ZooKeeper (a random leader token), publishes its address there, and a
 * TaskManager configured the same way finds it, registers and reports its
 * slots. Against a throw-away server of scripts/zk-test-server.sh (label
 * zookeeper, as the library's ZooKeeper cases: not under the sanitizers).
 */
#include "cluster_fixture.h"

#include <ctype.h>

static char zk_dir[64];
static char zk_quorum[64];
static char zk_script[512];

static int zk_run(const char *cmd, int *port)
{
    char line[700];
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
    (void)state;
    snprintf(zk_script, sizeof zk_script, "%s/scripts/zk-test-server.sh",
             FLING_SOURCE_DIR);
    snprintf(zk_dir, sizeof zk_dir, "/tmp/fl-zk-cluster-XXXXXX");
    if (mkdtemp(zk_dir) == NULL)
        return -1;
    int port = 0;
    if (zk_run("start", &port) != 0 || port <= 0) {
        fprintf(stderr, "could not start ZooKeeper with %s\n", zk_script);
        return -1;
    }
    snprintf(zk_quorum, sizeof zk_quorum,
             "high-availability.zookeeper.quorum=127.0.0.1:%d", port);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    (void)zk_run("stop", NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", zk_dir);
    return system(cmd) == 0 ? 0 : -1;
}

#define ZK_ARGS                                                                \
    "-D", "high-availability.type=zookeeper", "-D", zk_quorum, "-D",           \
        "high-availability.cluster-id=cluster_zk_test", "-D",                  \
        "high-availability.zookeeper.client.session-timeout=6 s"

static void test_one_jobmanager_on_zookeeper(void **state)
{
    (void)state;
    static cf_proc_t jm, tm;
    const char *jm_args[] = {"-D",    "jobmanager.rpc.address=127.0.0.1",
                             "-D",    "jobmanager.rpc.port=0",
                             CF_FAST, ZK_ARGS,
                             NULL};
    cf_spawn(&jm, "jm", JM_PATH, jm_args);
    char addr[256], line[1024];
    int port = cf_read_address(&jm, addr, sizeof addr);
    cf_expect_app(&jm, "fling-jobmanager listening on %s (pid %ld)", addr,
                  (long)jm.pid);
    /* The token is ZooKeeper's: random, 32 hex digits, not all zero. */
    cf_next_app(&jm, line, sizeof line);
    char prefix[512];
    snprintf(prefix, sizeof prefix,
             "ResourceManager %s/resourcemanager_1 started with leader token ",
             addr);
    assert_int_equal(0, strncmp(line, prefix, strlen(prefix)));
    const char *token = line + strlen(prefix);
    assert_int_equal(32, strlen(token));
    for (size_t i = 0; i < 32; i++)
        assert_true(isxdigit((unsigned char)token[i]));
    assert_string_not_equal("00000000000000000000000000000000", token);

    /* jobmanager.rpc.port is wrong on purpose: ZooKeeper says where. */
    const char *tm_args[] = {"-D",    "jobmanager.rpc.address=127.0.0.1",
                             "-D",    "jobmanager.rpc.port=1",
                             "-D",    "taskmanager.host=127.0.0.1",
                             "-D",    "taskmanager.resource-id=tm1",
                             CF_FAST, ZK_ARGS,
                             NULL};
    cf_spawn(&tm, "tm1", TM_PATH, tm_args);
    char tm_addr[256];
    int tm_port = cf_read_address(&tm, tm_addr, sizeof tm_addr);
    cf_expect_app(&tm, "fling-taskmanager listening on %s (pid %ld)", tm_addr,
                  (long)tm.pid);
    cf_expect_app(&tm,
                  "TaskExecutor %s/taskexecutor started as tm1 with 1 slots",
                  tm_addr);
    cf_expect_app(&tm,
                  "Registered at ResourceManager "
                  "fling.tcp://127.0.0.1:%d/resourcemanager_1 as tm1",
                  port);
    cf_expect_app(&jm,
                  "Registered TaskManager tm1 at "
                  "fling.tcp://127.0.0.1:%d/taskexecutor with 1 slots",
                  tm_port);
    cf_expect_app(&jm, "Slot report of TaskManager tm1: 1 slots, 1 free");

    cf_stop(&tm, SIGTERM, 0);
    cf_expect_app(&jm,
                  "TaskManager tm1 disconnected: TaskManager tm1 is shutting "
                  "down");
    cf_stop(&jm, SIGTERM, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_one_jobmanager_on_zookeeper),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
