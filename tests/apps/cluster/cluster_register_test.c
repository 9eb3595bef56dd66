/*
 * cluster_register_test.c - fling-jobmanager and fling-taskmanager as
 * processes: registration and slot reports, a TaskManager killed with
 * kill -9 and started again, a TaskManager stopped with SIGTERM, one
 * without a JobManager, one whose configuration conflicts, a missing
 * configuration file. Synchronised on the programs' log lines (stderr
 * pipes), asserted exactly and in order.
 */
#include "cluster_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cluster_procs.h"
#include "cluster_types.pb-c.h"

/* Two TaskManagers register and report their slots; SIGTERM stops each
 * cleanly, the TaskManager saying goodbye to the ResourceManager. */
static void test_two_taskmanagers_register_and_leave(void **state)
{
    (void)state;
    static cf_proc_t jm, tm1, tm2;
    int port = start_jm(&jm, "0");
    start_tm(&tm1, &jm, "tm1", port);
    start_tm(&tm2, &jm, "tm2", port);

    cf_stop(&tm1, SIGTERM, 0);
    cf_expect_app(&jm, "TaskManager tm1 disconnected: TaskManager tm1 is "
                       "shutting down");
    cf_stop(&tm2, SIGINT, 0);
    cf_expect_app(&jm, "TaskManager tm2 disconnected: TaskManager tm2 is "
                       "shutting down");
    cf_stop(&jm, SIGTERM, 0);
    cf_expect_app(&jm, "fling-jobmanager stopping on SIGTERM");
    cf_expect_app(&jm, "fling-jobmanager stopped");
}

/* kill -9 of a TaskManager: the ResourceManager drops it at once (its
 * heartbeats find it unreachable), keeps the other, and takes it back
 * when it starts again. */
static void test_killed_taskmanager_is_dropped_and_comes_back(void **state)
{
    (void)state;
    static cf_proc_t jm, tm1, tm2, tm1b;
    int port = start_jm(&jm, "0");
    start_tm(&tm1, &jm, "tm1", port);
    start_tm(&tm2, &jm, "tm2", port);

    cf_kill9(&tm1);
    cf_expect_app(&jm, "TaskManager tm1 lost: heartbeat target unreachable");

    start_tm(&tm1b, &jm, "tm1", port);
    /* tm2 stayed registered all along: its goodbye finds it. */
    cf_stop(&tm2, SIGTERM, 0);
    cf_expect_app(&jm, "TaskManager tm2 disconnected: TaskManager tm2 is "
                       "shutting down");
    /* The JobManager's goodbye reaches the TaskManager left. */
    cf_stop(&jm, SIGTERM, 0);
    cf_expect_app(&tm1b,
                  "ResourceManager fling.tcp://127.0.0.1:%d/resourcemanager_1 "
                  "lost: it disconnected this TaskManager (the JobManager is "
                  "shutting down); registering again",
                  port);
    cf_stop(&tm1b, SIGTERM, 0);
}

/* A TaskManager whose JobManager never answers gives up after
 * taskmanager.registration.timeout: exit 1, the reason in the log and on
 * stderr. */
static void test_taskmanager_without_jobmanager_exits(void **state)
{
    (void)state;
    /* A port that is bound but does not listen: connects are refused. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(0, bind(s, (struct sockaddr *)&a, sizeof a));
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    int port = ntohs(a.sin_port);

    static cf_proc_t tm;
    start_tm_only(&tm, "tm1", port, "taskmanager.registration.timeout=1 s");
    char reason[512];
    snprintf(reason, sizeof reason,
             "TaskManager tm1 could not register at the ResourceManager "
             "fling.tcp://127.0.0.1:%d/resourcemanager_* within 1000 ms "
             "(taskmanager.registration.timeout); check that the JobManager "
             "runs and is reachable",
             port);
    cf_expect_app(&tm, "%s", reason);
    int ws = cf_wait_exit(&tm);
    assert_true(WIFEXITED(ws));
    assert_int_equal(1, WEXITSTATUS(ws));
    char last[1024], want[1024];
    last_stderr_line(&tm, last, sizeof last);
    snprintf(want, sizeof want, "fling-taskmanager: %s", reason);
    assert_string_equal(want, last);
    close(s);
}

/* A TaskManager whose heartbeat.timeout differs from the JobManager's is
 * refused at registration, for good, naming the key and both values. */
static void test_conflicting_configuration_is_refused(void **state)
{
    (void)state;
    static cf_proc_t jm, tm;
    int port = start_jm(&jm, "0");
    start_tm_only(&tm, "tm1", port, "heartbeat.timeout=4 s");
    const char *reason =
        "Registration of TaskManager tm1 refused: its heartbeat.timeout is "
        "4 s but the ResourceManager's is 3 s; give every process of the "
        "cluster the same heartbeat.timeout.";
    cf_expect_app(&jm, "%s", reason);
    cf_expect_app(&tm, "%s", reason);
    int ws = cf_wait_exit(&tm);
    assert_true(WIFEXITED(ws));
    assert_int_equal(1, WEXITSTATUS(ws));
    char last[1024], want[1024];
    last_stderr_line(&tm, last, sizeof last);
    snprintf(want, sizeof want, "fling-taskmanager: %s", reason);
    assert_string_equal(want, last);
    cf_stop(&jm, SIGTERM, 0);
}

/* The process endpoint "jobmanager" says what the process is. */
static void test_jobmanager_describes_itself(void **state)
{
    (void)state;
    static cf_proc_t jm;
    int port = start_jm(&jm, "0");
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(NULL, &svc));
    char address[128];
    snprintf(address, sizeof address, "fling.tcp://127.0.0.1:%d/jobmanager",
             port);
    fl_rpc_gateway_t *gw = fl_test_connect(
        svc, address, &fling__cluster__process_gateway__descriptor, NULL);
    Fling__Cluster__Ack req = FLING__CLUSTER__ACK__INIT;
    ProtobufCMessage *reply = NULL;
    assert_fl_ok(fl_rpc_call_sync(gw, 0, &req.base, 5000, &reply));
    Fling__Cluster__ProcessInfo *info = (Fling__Cluster__ProcessInfo *)reply;
    assert_string_equal("jobmanager", info->role);
    char want[64];
    snprintf(want, sizeof want, "fling.tcp://127.0.0.1:%d", port);
    assert_string_equal(want, info->address);
    protobuf_c_message_free_unpacked(reply, NULL);
    fl_rpc_gateway_free(gw);
    fl_rpc_service_free(svc);
    cf_stop(&jm, SIGTERM, 0);
}

/* A missing file name after -c, an unknown argument: exit 1 and say so. */
static void test_bad_command_lines(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        {"-c", NULL, "fling-taskmanager: -c needs a file name after it"},
        {"--port", NULL, "fling-taskmanager: unknown argument '--port'"},
    };
    for (size_t i = 0; i < 2; i++) {
        static cf_proc_t p;
        const char *args[] = {cases[i][0], NULL};
        cf_spawn(&p, "tm", TM_PATH, args);
        int ws = cf_wait_exit(&p);
        assert_true(WIFEXITED(ws));
        assert_int_equal(1, WEXITSTATUS(ws));
        char line[1024];
        assert_true(cf_next_line(&p, &p.err, line, sizeof line));
        assert_string_equal(cases[i][2], line);
        assert_true(cf_next_line(&p, &p.err, line, sizeof line));
        assert_string_equal("usage: fling-taskmanager [-c CONFIG] [-D "
                            "key=value]... [--log FILE]",
                            line);
        cf_release(&p);
    }
}

/* A configuration file that does not exist: exit 1 naming the path. */
static void test_missing_configuration_file(void **state)
{
    (void)state;
    static const char *const programs[][2] = {{JM_PATH, "fling-jobmanager"},
                                              {TM_PATH, "fling-taskmanager"}};
    for (size_t i = 0; i < 2; i++) {
        static cf_proc_t p;
        const char *args[] = {"-c", "/nonexistent/fling/config.yaml", NULL};
        cf_spawn(&p, programs[i][1], programs[i][0], args);
        int ws = cf_wait_exit(&p);
        assert_true(WIFEXITED(ws));
        assert_int_equal(1, WEXITSTATUS(ws));
        char last[1024], want[1024];
        last_stderr_line(&p, last, sizeof last);
        snprintf(want, sizeof want,
                 "%s: Cannot read configuration file "
                 "'/nonexistent/fling/config.yaml': No such file or directory.",
                 programs[i][1]);
        assert_string_equal(want, last);
        cf_release(&p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_two_taskmanagers_register_and_leave),
        CF_TEST(test_killed_taskmanager_is_dropped_and_comes_back),
        CF_TEST(test_taskmanager_without_jobmanager_exits),
        CF_TEST(test_conflicting_configuration_is_refused),
        CF_TEST(test_missing_configuration_file),
        CF_TEST(test_jobmanager_describes_itself),
        CF_TEST(test_bad_command_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
