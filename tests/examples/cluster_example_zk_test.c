/*
 * cluster_example_zk_test.c - examples/cluster with ZooKeeper, as
 * processes: two leaders contend, one leads; a worker registers at it;
 * the leader is killed (kill -9) and, once its session has expired, the
 * other leads with a new token and the worker registers there. The
 * ZooKeeper server is the tests' own (scripts/zk-test-server.sh: a free
 * port, a temporary folder, stopped by its pid). Synchronised on the
 * programs' log lines.
 */
#include "proc_fixture.h"

static char zk_dir[256];
static char quorum_opt[128];
static char cluster_opt[128];

static proc_t a, b, w;

/* Runs the server script with cmd; returns its exit code and the port it
 * printed (start) in *port. */
static int zk_script(const char *cmd, int *port)
{
    char line[1024];
    snprintf(line, sizeof line, "%s %s %s", ZK_TEST_SERVER, cmd, zk_dir);
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
    snprintf(zk_dir, sizeof zk_dir, "/tmp/fl-cxzk-XXXXXX");
    if (mkdtemp(zk_dir) == NULL)
        return -1;
    int port = 0;
    if (zk_script("start", &port) != 0 || port <= 0) {
        fprintf(stderr, "could not start ZooKeeper with %s\n", ZK_TEST_SERVER);
        return -1;
    }
    snprintf(quorum_opt, sizeof quorum_opt,
             "high-availability.zookeeper.quorum=127.0.0.1:%d", port);
    /* A cluster of this run's own, should the server be shared. */
    snprintf(cluster_opt, sizeof cluster_opt,
             "high-availability.cluster-id=/example-%d", (int)getpid());
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    (void)zk_script("stop", NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", zk_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Starts a program of the example with zookeeper.yaml, this test's
 * server and cluster, and short timeouts. */
static void start(proc_t *p, const char *path, const char *name)
{
    char *const argv[] = {
        (char *)path,
        "-c",
        EXAMPLE_DIR "/zookeeper.yaml",
        "-D",
        quorum_opt,
        "-D",
        cluster_opt,
        "-D",
        "high-availability.zookeeper.client.session-timeout=2 s",
        "-D",
        "heartbeat.interval=200 ms",
        "-D",
        "heartbeat.timeout=1 s",
        "-D",
        "cluster.registration.error-delay=100 ms",
        "-D",
        "cluster.registration.refused-registration-delay=100 ms",
        "--name",
        (char *)name,
        NULL,
    };
    proc_start(p, name, argv);
}

/* The next line of p must be "<who> '<name>' at fling.tcp://127.0.0.1:
 * <port>/<id> <rest>", whatever the port; the address into addr. */
static void expect_start_line(proc_t *p, const char *who, const char *name,
                              const char *id, const char *rest, char *addr,
                              size_t cap)
{
    char line[2048], prefix[256], want[2048];
    snprintf(prefix, sizeof prefix, "%s '%s' at fling.tcp://127.0.0.1:", who,
             name);
    proc_next(p, prefix, line, sizeof line);
    int port = atoi(line + strlen(prefix));
    snprintf(want, sizeof want, "%s%d/%s %s", prefix, port, id, rest);
    assert_string_equal(want, line);
    snprintf(addr, cap, "fling.tcp://127.0.0.1:%d/%s", port, id);
}

/* Waits for leader p's "Leading" line: its token and address. */
static void await_leading(proc_t *p, char *token, char *address)
{
    char line[2048];
    proc_next(p, "Leading with token ", line, sizeof line);
    assert_int_equal(
        2, sscanf(line, "Leading with token %32s at %255s", token, address));
    char want[2048];
    snprintf(want, sizeof want, "Leading with token %s at %s", token, address);
    assert_string_equal(want, line);
    assert_int_equal(32, strlen(token));
}

/* Worker w (at wa) registers at leader p (leading at addr with token):
 * the lines of both, in order. */
static void registers_at(proc_t *p, const char *addr, const char *token,
                         const char *wa)
{
    char line[2048], want[2048];
    proc_next(&w, "Registered at ", line, sizeof line);
    snprintf(want, sizeof want, "Registered at %s with token %s as 'w1'", addr,
             token);
    assert_string_equal(want, line);
    proc_next(p, "Worker 'w1' registered from ", line, sizeof line);
    snprintf(want, sizeof want, "Worker 'w1' registered from %s", wa);
    assert_string_equal(want, line);
    proc_next(p, "First heartbeat from worker 'w1'", line, sizeof line);
    assert_string_equal("First heartbeat from worker 'w1'", line);
}

static void zookeeper_worker_follows_the_new_leader(void **state)
{
    (void)state;
    char line[2048], want[2048];
    char ta[33], tb[33], aa[256], ab[256], el[256], wa[256];

    start(&a, CLUSTER_LEADER_PATH, "a");
    expect_start_line(&a, "Leader", "a", "elector",
                      "contends for 'coordinator' (zookeeper)", el, sizeof el);
    await_leading(&a, ta, aa);

    start(&b, CLUSTER_LEADER_PATH, "b");
    expect_start_line(&b, "Leader", "b", "elector",
                      "contends for 'coordinator' (zookeeper)", el, sizeof el);

    start(&w, CLUSTER_WORKER_PATH, "w1");
    expect_start_line(&w, "Worker", "w1", "worker",
                      "follows the leader of 'coordinator' (zookeeper)", wa,
                      sizeof wa);
    proc_next(&w, "Leader is ", line, sizeof line);
    snprintf(want, sizeof want, "Leader is %s with token %s", aa, ta);
    assert_string_equal(want, line);
    registers_at(&a, aa, ta, wa);

    /* One leader at a time: b has not led. */
    proc_assert_no_line(&b, "Leading");
    proc_kill(&a);

    /* After a's session expires b leads, with a token of its own, and the
     * worker follows it there. */
    await_leading(&b, tb, ab);
    assert_string_not_equal(ta, tb);
    proc_find(&w, "Leader is fling", line, sizeof line);
    snprintf(want, sizeof want, "Leader is %s with token %s", ab, tb);
    assert_string_equal(want, line);
    registers_at(&b, ab, tb, wa);

    proc_stop_cleanly(&w, "Worker 'w1' stopped");
    proc_stop_cleanly(&b, "Leader 'b' stopped");
}

static int teardown(void **state)
{
    proc_end(&w);
    proc_end(&b);
    proc_end(&a);
    return fl_test_disarm(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(zookeeper_worker_follows_the_new_leader,
                                        fl_test_arm, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
