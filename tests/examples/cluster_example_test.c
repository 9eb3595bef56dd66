/*
 * cluster_example_test.c - examples/cluster standalone, as processes: a
 * leader and two workers register and heartbeat; one worker is killed
 * (kill -9) and the leader logs its heartbeat timeout with the heartbeat
 * layer's message; the others stop cleanly on SIGTERM. A configuration
 * they cannot run with stops them, naming the key. Synchronised on
 * the programs' log lines; heartbeats of 200 ms with a 1 s timeout.
 */
#include "proc_fixture.h"

#include <inttypes.h>
#include <time.h>

#define ZERO_TOKEN "00000000000000000000000000000000"

/* The -D options every program of the test gets, after the file's. */
#define FAST_OPTIONS                                                           \
    "-D", "jobmanager.rpc.address=127.0.0.1", "-D",                            \
        "heartbeat.interval=200 ms", "-D", "heartbeat.timeout=1 s", "-D",      \
        "cluster.registration.error-delay=100 ms", "-D",                       \
        "cluster.registration.refused-registration-delay=100 ms"

static proc_t leader, w1, w2;

/* Wall-clock time in ms since the epoch, as heartbeats are stamped. */
static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start_worker(proc_t *p, const char *name, const char *port)
{
    char portopt[64];
    snprintf(portopt, sizeof portopt, "jobmanager.rpc.port=%s", port);
    char *const argv[] = {CLUSTER_WORKER_PATH,
                          "-c",
                          EXAMPLE_DIR "/standalone.yaml",
                          FAST_OPTIONS,
                          "-D",
                          portopt,
                          "--name",
                          (char *)name,
                          NULL};
    proc_start(p, name, argv);
}

/* "last heard from S ms ago (at T)" of the heartbeat layer, for a wall
 * clock time in ms. */
static void format_time(char *buf, size_t len, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", day, (int)(ms % 1000));
}

/* A worker registers at the leader and they heartbeat: the lines of
 * both, in order. Returns the worker's address. */
static void worker_joins(proc_t *w, const char *name, const char *port,
                         char *address, size_t cap)
{
    char line[2048], want[2048];
    start_worker(w, name, port);
    proc_next(w, "Worker '", line, sizeof line);
    const char *at = strstr(line, " at fling.tcp://127.0.0.1:");
    assert_non_null(at);
    int wport = atoi(at + strlen(" at fling.tcp://127.0.0.1:"));
    snprintf(address, cap, "fling.tcp://127.0.0.1:%d/worker", wport);
    snprintf(want, sizeof want,
             "Worker '%s' at %s follows the leader of 'coordinator' "
             "(standalone)",
             name, address);
    assert_string_equal(want, line);

    /* Standalone: the configured address, the coordinators' pattern. */
    proc_next(w, "Leader is ", line, sizeof line);
    snprintf(want, sizeof want,
             "Leader is fling.tcp://127.0.0.1:%s/coordinator_* with token "
             "%s",
             port, ZERO_TOKEN);
    assert_string_equal(want, line);
    proc_next(w, "Registered at ", line, sizeof line);
    snprintf(want, sizeof want,
             "Registered at fling.tcp://127.0.0.1:%s/coordinator_1 with "
             "token %s as '%s'",
             port, ZERO_TOKEN, name);
    assert_string_equal(want, line);
    proc_next(w, "First heartbeat request ", line, sizeof line);
    assert_string_equal("First heartbeat request from 'coordinator_1'", line);

    proc_next(&leader, "Worker ", line, sizeof line);
    snprintf(want, sizeof want, "Worker '%s' registered from %s", name,
             address);
    assert_string_equal(want, line);
    proc_next(&leader, "First heartbeat ", line, sizeof line);
    snprintf(want, sizeof want, "First heartbeat from worker '%s'", name);
    assert_string_equal(want, line);
}

static void standalone_register_heartbeat_and_timeout(void **state)
{
    (void)state;
    char line[2048], want[2048], port[16];
    /* Any free port: the workers learn it from the leader's first line.
     * A failure threshold of -1: a dead worker times out (else its
     * refused connection would make it unreachable first). */
    char *const largv[] = {CLUSTER_LEADER_PATH,
                           "-c",
                           EXAMPLE_DIR "/standalone.yaml",
                           FAST_OPTIONS,
                           "-D",
                           "jobmanager.rpc.port=0",
                           "-D",
                           "heartbeat.rpc-failure-threshold=-1",
                           "--name",
                           "a",
                           NULL};
    proc_start(&leader, "cluster_leader", largv);
    proc_next(&leader, "Leader 'a' at ", line, sizeof line);
    int p = 0;
    assert_int_equal(
        1, sscanf(line, "Leader 'a' at fling.tcp://127.0.0.1:%d/", &p));
    snprintf(port, sizeof port, "%d", p);
    snprintf(want, sizeof want,
             "Leader 'a' at fling.tcp://127.0.0.1:%s/elector contends for "
             "'coordinator' (standalone)",
             port);
    assert_string_equal(want, line);
    proc_next(&leader, "Leading ", line, sizeof line);
    snprintf(want, sizeof want,
             "Leading with token %s at fling.tcp://127.0.0.1:%s/coordinator_1",
             ZERO_TOKEN, port);
    assert_string_equal(want, line);

    char a1[128], a2[128];
    worker_joins(&w1, "w1", port, a1, sizeof a1);
    int64_t joined_ms = wall_ms();
    worker_joins(&w2, "w2", port, a2, sizeof a2);

    /* w1 dies without a word: after heartbeat.timeout the leader says so,
     * in the heartbeat layer's words, and drops it. */
    int64_t kill_ms = wall_ms();
    proc_kill(&w1);
    proc_next(&leader, "Worker 'w1' lost ", line, sizeof line);
    int64_t last = 0, silent = 0;
    const char *fields = strstr(line, " last_heartbeat_ms=");
    assert_non_null(fields);
    assert_int_equal(
        2, sscanf(fields, " last_heartbeat_ms=%" SCNd64 " silent_ms=%" SCNd64,
                  &last, &silent));
    char at[48];
    format_time(at, sizeof at, last);
    snprintf(want, sizeof want,
             "Worker 'w1' lost (FL_ETIMEDOUT): Heartbeat of 'w1' timed out: "
             "last heard from %" PRId64 " ms ago (at %s), the timeout is "
             "1000 ms; check that it is alive and reachable, or raise "
             "heartbeat.timeout last_heartbeat_ms=%" PRId64
             " silent_ms=%" PRId64,
             silent, at, last, silent);
    assert_string_equal(want, line);
    /* Heard from while it lived, silent for the timeout at least. */
    assert_true(last >= joined_ms - 1000 && last <= kill_ms + 1000);
    assert_true(silent >= 1000);

    /* w2 is still registered and heartbeating: it stops cleanly, and so
     * does the leader. */
    proc_assert_no_line(&leader, "Worker 'w2' lost");
    proc_stop_cleanly(&w2, "Worker 'w2' stopped");
    proc_stop_cleanly(&leader, "Leader 'a' stopped");
    proc_end(&w1);
}

/* A configuration the programs cannot run with stops them at once, exit
 * status 2, with the configuration's message naming the key or file. */
static void bad_configuration_is_named(void **state)
{
    (void)state;
    char *const quorum[] = {CLUSTER_WORKER_PATH,
                            "-c",
                            EXAMPLE_DIR "/standalone.yaml",
                            "-D",
                            "high-availability.type=zookeeper",
                            "-D",
                            "high-availability.zookeeper.quorum=zk1",
                            NULL};
    proc_start(&w1, "cluster_worker", quorum);
    proc_expect_exit(&w1, 2,
                     "cluster_worker: Bad value 'zk1' for "
                     "'high-availability.zookeeper.quorum' (-D): server 'zk1' "
                     "is not host:port; write each server as host:port, e.g. "
                     "zk1:2181.");
    char *const port0[] = {CLUSTER_WORKER_PATH, "-D", "jobmanager.rpc.port=0",
                           NULL};
    proc_start(&w2, "cluster_worker", port0);
    proc_expect_exit(&w2, 2,
                     "cluster_worker: Bad value '0' for 'jobmanager.rpc.port' "
                     "(-D): port 0 lets the JobManager listen on any port, so "
                     "no address of it can be known beforehand; set the port "
                     "it listens on, e.g. 6123.");
    char *const missing[] = {CLUSTER_LEADER_PATH, "-c",
                             EXAMPLE_DIR "/no-such.yaml", NULL};
    proc_start(&leader, "cluster_leader", missing);
    proc_expect_exit(
        &leader, 2,
        "cluster_leader: Cannot read configuration file '" EXAMPLE_DIR
        "/no-such.yaml': No such file or directory.");
}

static int teardown(void **state)
{
    proc_end(&w1);
    proc_end(&w2);
    proc_end(&leader);
    return fl_test_disarm(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            standalone_register_heartbeat_and_timeout, fl_test_arm, teardown),
        cmocka_unit_test_setup_teardown(bad_configuration_is_named, fl_test_arm,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
