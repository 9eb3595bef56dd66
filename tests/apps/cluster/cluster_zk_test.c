/*
 * cluster_zk_test.c - fling-jobmanager with high-availability.type
 * zookeeper and one JobManager: its ResourceManager is elected through
 * ZooKeeper (a random leader token), publishes its address there, and a
 * TaskManager configured the same way finds it, registers and reports its
 * slots. Against a throw-away server of scripts/zk-test-server.sh (label
 * zookeeper, as the library's ZooKeeper cases: not under the sanitizers).
 */
#include <ctype.h>

#include "../task/task_fixture.h"
#include "cluster_fixture.h"
#include "held_job.h"
#include "job_client.h"

static char zk_dir[64];
static char zk_quorum[64];
static char zk_script[512];
static int zk_port;

/* Runs the script's cmd on zk_dir (start: on zk_port once known). */
static int zk_run(const char *cmd, int *port)
{
    char line[700];
    snprintf(line, sizeof line, "%s %s %s", zk_script, cmd, zk_dir);
    if (strcmp(cmd, "start") == 0 && zk_port > 0)
        snprintf(line, sizeof line, "%s start %s %d", zk_script, zk_dir,
                 zk_port);
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
    zk_port = port;
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

/* Spawns a JobManager called name on ZooKeeper, with one more -D option
 * (extra) unless NULL; its address into addr. Returns its port. */
static int zk_spawn_jm(cf_proc_t *jm, const char *name, const char *extra,
                       char addr[static 256])
{
    const char *args[] = {"-D",
                          "jobmanager.rpc.address=127.0.0.1",
                          "-D",
                          "jobmanager.rpc.port=0",
                          CF_FAST,
                          ZK_ARGS,
                          extra ? "-D" : NULL,
                          extra,
                          NULL};
    cf_spawn(jm, name, JM_PATH, args);
    return cf_read_address(jm, addr, 256);
}

static void test_one_jobmanager_on_zookeeper(void **state)
{
    (void)state;
    static cf_proc_t jm, tm;
    char addr[256], line[1024];
    int port = zk_spawn_jm(&jm, "jm", NULL, addr);
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

/* Reads jm's app lines up to the start of resourcemanager_<n> at addr
 * and, unless also is NULL, the line also (the Dispatcher's lines and the
 * ResourceManager's start come in any order); the leader token (32 hex
 * digits) into token. */
static void wait_rm_start(cf_proc_t *jm, const char *addr, int n,
                          char token[33], const char *also)
{
    char prefix[512], line[1024];
    snprintf(prefix, sizeof prefix,
             "ResourceManager %s/resourcemanager_%d started with leader token ",
             addr, n);
    bool started = false, seen = also == NULL;
    while (!started || !seen) {
        cf_next_app(jm, line, sizeof line);
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            snprintf(token, 33, "%s", line + strlen(prefix));
            started = true;
        } else if (also != NULL && strcmp(line, also) == 0) {
            seen = true;
        }
    }
    assert_int_equal(32, strlen(token));
}

/* Spawns TaskManager tm1 (2 slots) on ZooKeeper, its hold_open reading
 * h's FIFO (jobmanager.rpc.port wrong on purpose: ZooKeeper says where),
 * and waits for its slot report at jm. */
static void zk_spawn_held_tm(cf_proc_t *tm, cf_proc_t *jm, const held_job_t *h)
{
    const char *args[] = {"-D",    "jobmanager.rpc.address=127.0.0.1",
                          "-D",    "jobmanager.rpc.port=1",
                          "-D",    "taskmanager.host=127.0.0.1",
                          "-D",    "taskmanager.resource-id=tm1",
                          "-D",    "taskmanager.numberOfTaskSlots=2",
                          CF_FAST, ZK_ARGS,
                          NULL};
    setenv("HOLD_FIFO", h->fifo, 1);
    cf_spawn(tm, "tm1", TM_PATH, args);
    unsetenv("HOLD_FIFO");
    cf_wait_stderr(jm, "Slot report of TaskManager tm1: 2 slots, 2 free", 1);
}

/* Submits h's job to the JobManager at port; its id into id. */
static void zk_submit(int port, const held_job_t *h, char id[static 256])
{
    jc_t c = {0};
    jc_open(&c, port);
    const char *args[] = {NULL};
    assert_fl_ok(jc_submit(&c, h->job, args, 0, "", id, 256));
    jc_close(&c);
}

/* Expects the JobMaster of job id registered at jm's
 * resourcemanager_<n> at addr under token, and its task deployed. */
static void zk_expect_deployed(cf_proc_t *jm, const char *addr, int n,
                               const char *id, const char *token)
{
    char line[1024];
    snprintf(line, sizeof line,
             "JobMaster of job %s registered at ResourceManager "
             "%s/resourcemanager_%d (leader token %s)",
             id, addr, n, token);
    cf_wait_stderr(jm, line, 1);
    cf_wait_stderr(jm, "Deploying Source: n -> Map: h -> Sink: out (1/1)", 1);
}

/* Expects h's job id recovered by jm as its resourcemanager_<n> at addr
 * starts under a leader token other than old, and deployed; lets the
 * task go on and expects the job FINISHED with its exact output. */
static void zk_expect_recovered(cf_proc_t *jm, const char *addr, int n,
                                const char *id, const char *old,
                                const held_job_t *h)
{
    char line[1024], token[33];
    snprintf(line, sizeof line, "Recovered job held (%s) with 1 tasks", id);
    wait_rm_start(jm, addr, n, token, line);
    assert_string_not_equal(old, token);
    zk_expect_deployed(jm, addr, n, id, token);
    held_job_release(h);
    snprintf(line, sizeof line,
             "Job held (%s) switched from state RUNNING to FINISHED.", id);
    cf_wait_stderr(jm, line, 1);
    tbuf_t got = {0};
    concat_parts(h->out, 1, &got);
    assert_int_equal(6, got.len);
    assert_memory_equal("1\n2\n3\n", got.data, 6);
    tbuf_free(&got);
}

/* A job runs when ZooKeeper goes away long enough for the JobManager to
 * lose its leadership: its JobMaster suspends it (the task cancelled),
 * and once ZooKeeper is back and the leadership granted again (a new
 * token), the new Dispatcher recovers the job under its id, its JobMaster
 * registers at the new ResourceManager with the new token, and the job
 * FINISHES with its exact output. */
static void test_job_survives_a_leadership_change(void **state)
{
    (void)state;
    static cf_proc_t jm, tm;
    held_job_t h;
    held_job_write(&h, "held", "3");

    char addr[256], token1[33];
    int port = zk_spawn_jm(&jm, "jm", NULL, addr);
    wait_rm_start(&jm, addr, 1, token1, NULL);
    zk_spawn_held_tm(&tm, &jm, &h);

    char id[256], line[1024];
    zk_submit(port, &h, id);
    zk_expect_deployed(&jm, addr, 1, id, token1);

    /* ZooKeeper gone: the connection is suspended after 2/3 of the 6 s
     * session, the leadership revoked, the job suspended. */
    assert_int_equal(0, zk_run("stop", NULL));
    snprintf(line, sizeof line,
             "Job held (%s) suspended: the JobMaster of job %s is shutting "
             "down",
             id, id);
    cf_wait_stderr(&jm, line, 1);
    /* The cancelled attempt ends once its hold_open returns. */
    held_job_release(&h);
    cf_wait_stderr(&tm, "Slot 0 released: the task of allocation", 1);

    /* ZooKeeper back: a new leadership, the job recovered. */
    assert_int_equal(0, zk_run("start", NULL));
    zk_expect_recovered(&jm, addr, 2, id, token1, &h);

    cf_stop(&tm, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
    held_job_free(&h);
}

/* With high-availability.storageDir, a JobManager killed (kill -9) while
 * a job runs and started again recovers the job from its file there: the
 * job FINISHES with its exact output, under its id. */
static void test_restarted_jobmanager_recovers_its_jobs(void **state)
{
    (void)state;
    static cf_proc_t jm1, jm2, tm;
    held_job_t h;
    held_job_write(&h, "held", "3");
    char *ha = path_in(h.dir, "ha");
    char storage[600];
    snprintf(storage, sizeof storage, "high-availability.storageDir=%s", ha);
    char addr1[256], addr2[256], token1[33];
    int port1 = zk_spawn_jm(&jm1, "jm1", storage, addr1);
    wait_rm_start(&jm1, addr1, 1, token1, NULL);
    zk_spawn_held_tm(&tm, &jm1, &h);
    char id[256], line[1024];
    zk_submit(port1, &h, id);
    /* Running: its hold_open is then on its way to the FIFO. */
    cf_wait_stderr(&tm, "(attempt #0) switched from INITIALIZING to RUNNING.",
                   1);

    /* The JobManager killed: its TaskManager cancels the task once the
     * JobMaster is silent; the attempt ends once its hold_open returns. */
    cf_kill9(&jm1);
    cf_wait_stderr(&tm, "Slot 0 freed: ", 1);
    held_job_release(&h);
    cf_wait_stderr(&tm, "Slot 0 released: the task of allocation", 1);

    /* A new JobManager on the same storageDir: leader once the killed
     * one's ZooKeeper session expired. */
    zk_spawn_jm(&jm2, "jm2", storage, addr2);
    zk_expect_recovered(&jm2, addr2, 1, id, token1, &h);
    /* Ended: its file is gone. */
    snprintf(line, sizeof line,
             "Job held (%s) archived: its JobMaster is freed", id);
    cf_wait_stderr(&jm2, line, 1);
    char *jobs = path_in(ha, "jobs");
    tbuf_t names = {0};
    list_dir(jobs, &names);
    assert_string_equal("", names.data);
    tbuf_free(&names);

    cf_stop(&tm, SIGTERM, 0);
    cf_stop(&jm2, SIGTERM, 0);
    free(jobs);
    free(ha);
    held_job_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_one_jobmanager_on_zookeeper),
        CF_TEST(test_job_survives_a_leadership_change),
        CF_TEST(test_restarted_jobmanager_recovers_its_jobs),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
