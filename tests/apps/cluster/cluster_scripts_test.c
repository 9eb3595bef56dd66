/*
 * cluster_scripts_test.c - scripts/start-cluster.sh starts a JobManager and
 * two TaskManagers from a configuration file and returns once both are
 * registered; scripts/stop-cluster.sh stops them by their pids, and each
 * exits 0. The test is the processes' subreaper, so it reaps them and
 * sees their exit status.
 */
#include "cluster_fixture.h"

#include <sys/prctl.h>
#include <sys/stat.h>

#define SCRIPTS FLING_SOURCE_DIR "/scripts"

static void test_start_and_stop_cluster(void **state)
{
    (void)state;
    assert_int_equal(0, prctl(PR_SET_CHILD_SUBREAPER, 1));
    char dir[] = "/tmp/fling_scripts_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char conf[256], logs[256];
    snprintf(conf, sizeof conf, "%s/config.yaml", dir);
    snprintf(logs, sizeof logs, "%s/log", dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fputs("jobmanager.rpc.address: 127.0.0.1\n"
          "jobmanager.rpc.port: 0\n"
          "taskmanager:\n"
          "  host: 127.0.0.1\n"
          "  numberOfTaskSlots: 3\n"
          "heartbeat: {interval: 200 ms, timeout: 3 s}\n",
          f);
    fclose(f);
    /* The two programs live in two build folders: link them into one. */
    char jm_link[300], tm_link[300];
    snprintf(jm_link, sizeof jm_link, "%s/fling-jobmanager", dir);
    snprintf(tm_link, sizeof tm_link, "%s/fling-taskmanager", dir);
    assert_int_equal(0, symlink(JM_PATH, jm_link));
    assert_int_equal(0, symlink(TM_PATH, tm_link));
    setenv("FLING_BIN_DIR", dir, 1);
    setenv("FLING_LOG_DIR", logs, 1);
    setenv("FLING_PID_DIR", dir, 1);
    setenv("FLING_START_TIMEOUT", "30", 1);
    unsetenv("FLING_CONF_DIR");

    static cf_proc_t start;
    const char *args[] = {"-c", conf, "2", NULL};
    cf_spawn(&start, "start-cluster.sh", SCRIPTS "/start-cluster.sh", args);
    int ws = cf_wait_exit(&start);
    assert_true(WIFEXITED(ws));
    assert_int_equal(0, WEXITSTATUS(ws));

    /* The pid file: the JobManager, then the TaskManagers. */
    char pidfile[300];
    snprintf(pidfile, sizeof pidfile, "%s/cluster.pid", dir);
    f = fopen(pidfile, "r");
    assert_non_null(f);
    char role[3][32];
    long pid[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(2, fscanf(f, "%31s %ld", role[i], &pid[i]));
    fclose(f);
    assert_string_equal("jobmanager", role[0]);
    assert_string_equal("taskmanager", role[1]);
    assert_string_equal("taskmanager", role[2]);

    /* What start-cluster.sh said, line by line. */
    char host[256], user[128];
    gethostname(host, sizeof host);
    snprintf(user, sizeof user, "%s", getenv("USER") ? getenv("USER") : "root");
    char line[1024], want[1024], address[256];
    assert_true(cf_next_line(&start, &start.out, line, sizeof line));
    int n = sscanf(line, "Started the JobManager: pid %*d, %255[^,]", address);
    assert_int_equal(1, n);
    snprintf(want, sizeof want,
             "Started the JobManager: pid %ld, %s, log "
             "%s/fling-%s-jobmanager-0-%s.log",
             pid[0], address, logs, user, host);
    assert_string_equal(want, line);
    for (int i = 1; i <= 2; i++) {
        assert_true(cf_next_line(&start, &start.out, line, sizeof line));
        snprintf(want, sizeof want,
                 "Started TaskManager %d: pid %ld, log "
                 "%s/fling-%s-taskexecutor-%d-%s.log",
                 i, pid[i], logs, user, i, host);
        assert_string_equal(want, line);
    }
    assert_true(cf_next_line(&start, &start.out, line, sizeof line));
    snprintf(want, sizeof want,
             "Cluster up: JobManager %s with 2 TaskManagers registered",
             address);
    assert_string_equal(want, line);
    cf_release(&start);

    static cf_proc_t stop;
    const char *none[] = {NULL};
    cf_spawn(&stop, "stop-cluster.sh", SCRIPTS "/stop-cluster.sh", none);
    ws = cf_wait_exit(&stop);
    assert_true(WIFEXITED(ws));
    assert_int_equal(0, WEXITSTATUS(ws));
    static const char *const names[] = {"JobManager", "TaskManager",
                                        "TaskManager"};
    for (int i = 2; i >= 0; i--) {
        assert_true(cf_next_line(&stop, &stop.out, line, sizeof line));
        snprintf(want, sizeof want, "Stopping the %s (pid %ld)", names[i],
                 pid[i]);
        assert_string_equal(want, line);
    }
    cf_release(&stop);
    /* Each stopped cleanly: reaped here, the subreaper, with status 0. */
    for (int i = 0; i < 3; i++) {
        int st = 0;
        assert_int_equal(pid[i], waitpid((pid_t)pid[i], &st, 0));
        assert_true(WIFEXITED(st));
        assert_int_equal(0, WEXITSTATUS(st));
    }
    assert_int_equal(-1, access(pidfile, F_OK));
    char rm[300];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    assert_int_equal(0, system(rm));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_start_and_stop_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
