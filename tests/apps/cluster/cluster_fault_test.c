/*
 * cluster_fault_test.c - the cluster when a part of it goes away while a
 * job runs (issue 17, contract section 4): synchronised on the processes'
 * log lines.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "long_job.h"

/* The JobManager stopped (SIGTERM) while its job runs: the JobMaster
 * cancels the attempts and disconnects from the TaskManager, which frees
 * the slots at once (not a heartbeat timeout later); the tasks end
 * CANCELED and leave no part files. */
static void test_stopped_jobmanager_leaves_no_tasks(void **state)
{
    (void)state;
    static cf_proc_t jm, tm1;
    jc_t c = {0};
    long_job_t l;
    long_job_start(&l, &jm, &tm1, &c);
    jc_close(&c);
    cf_stop(&jm, SIGTERM, 0);

    cf_wait_stderr(&tm1, "(attempt #0) switched from RUNNING to CANCELING.",
                   2);
    char line[1200];
    for (int i = 0; i < 2; i++) {
        snprintf(line, sizeof line,
                 "Slot %d freed: the JobMaster of job %s is shutting down", i,
                 l.id);
        cf_wait_stderr(&tm1, line, 1);
    }
    cf_wait_stderr(&tm1, "(attempt #0) switched from CANCELING to CANCELED.",
                   2);
    long_job_assert_no_output(&l);
    cf_stop(&tm1, SIGTERM, 0);
    long_job_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_stopped_jobmanager_leaves_no_tasks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
