/*
 * cluster_jm_rm_test.c - a JobMaster that loses its ResourceManager
 * registers there again and declares its slots again (Flink's
 * ResourceManagerConnection): a job that waits for a slot still gets it
 * from a TaskManager that comes later.
 */
#include "../task/task_fixture.h"
#include "cluster_procs.h"
#include "job_client.h"
#include "small_job.h"

/* A job waits for a slot (no TaskManager yet); the JobManager stopped
 * (SIGSTOP) for longer than heartbeat.timeout, then continued: the
 * ResourceManager and the JobMaster each find the other silent, the
 * JobMaster registers again, and a TaskManager started then runs the
 * job, which FINISHES with its exact output. */
static void test_jobmaster_registers_again(void **state)
{
    (void)state;
    static cf_proc_t jm, tm;
    char *dir = scratch();
    char *job = small_job_write(dir), *out = path_in(dir, "out");
    int port = start_jm(&jm, "0");
    jc_t c = {0};
    jc_open(&c, port);
    const char *args[] = {"output", out, NULL};
    char id[256], line[700];
    assert_fl_ok(jc_submit(&c, job, args, 0, "", id, sizeof id));
    snprintf(
        line, sizeof line,
        "JobMaster of job %s registered at ResourceManager "
        "fling.tcp://127.0.0.1:%d/resourcemanager_1 (leader token " ZERO_TOKEN
        ")",
        id, port);
    cf_wait_stderr(&jm, line, 1);

    /* The fault itself lasts longer than heartbeat.timeout (3 s,
     * CF_FAST); what follows waits on log lines. */
    kill(jm.pid, SIGSTOP);
    struct timespec ts = {4, 0};
    while (nanosleep(&ts, &ts) != 0) {
    }
    kill(jm.pid, SIGCONT);
    cf_wait_stderr(&jm, line, 1);

    start_tm(&tm, &jm, "tm1", port);
    char done[400];
    snprintf(done, sizeof done,
             "Job small (%s) switched from state RUNNING to FINISHED.", id);
    cf_wait_stderr(&jm, done, 1);
    small_job_assert_output(out);
    jc_close(&c);
    cf_stop(&tm, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
    free(job);
    free(out);
    rm_scratch(dir);
}

/* slot.request.timeout 1 ms: the job fails about when its JobMaster's
 * registration at the ResourceManager is answered, before or after it
 * (a race the test does not control). Either way the ResourceManager
 * gets DisconnectJobManager and keeps no JobMaster whose job is over:
 * after the answer, the JobMaster disconnects at once; before it, it
 * waits for the answer, then disconnects. */
static void test_job_ended_before_registration_leaves(void **state)
{
    (void)state;
    static cf_proc_t jm;
    char *dir = scratch();
    char *job = small_job_write(dir), *out = path_in(dir, "out");
    int port = start_jm_opt(&jm, "0", "slot.request.timeout=1 ms");
    jc_t c = {0};
    jc_open(&c, port);
    const char *args[] = {"output", out, NULL};
    char id[256], line[700];
    assert_fl_ok(jc_submit(&c, job, args, 0, "", id, sizeof id));
    snprintf(line, sizeof line,
             "JobMaster of job %s disconnected: FAILED: Job %s reached state "
             "FAILED",
             id, id);
    cf_wait_stderr(&jm, line, 1);
    jc_close(&c);
    cf_stop(&jm, SIGTERM, 0);
    free(job);
    free(out);
    rm_scratch(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_jobmaster_registers_again),
        CF_TEST(test_job_ended_before_registration_leaves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
