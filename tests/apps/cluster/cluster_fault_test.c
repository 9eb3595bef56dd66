/*
 * cluster_fault_test.c - the cluster when a part of it goes away while a
 * job runs, and late messages of a part that went away (issue 17,
 * contract section 4): synchronised on the processes' log lines.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "long_job.h"
#include "resourcemanager.pb-c.h"
#include "sevens_job.h"

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
    long_job_start(&l, &jm, &tm1, &c, NULL);
    jc_close(&c);
    cf_stop(&jm, SIGTERM, 0);

    cf_wait_stderr(&tm1, "(attempt #0) switched from RUNNING to CANCELING.", 2);
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

/* TaskManager tm1 frozen (SIGSTOP) with the job's two tasks, and a new
 * process started under the same resource id: the ResourceManager asks
 * it for slots and it registers at the JobMaster before the JobMaster's
 * heartbeat (20 s here) notices the old one; the JobMaster takes it for a
 * new process (another session id), so the old one's slots and tasks are
 * lost, not inherited. */
static void test_taskmanager_restarted_under_its_id_is_a_new_one(void **state)
{
    (void)state;
    static cf_proc_t jm, tm1, tm1b;
    jc_t c = {0};
    long_job_t l;
    long_job_start(&l, &jm, &tm1, &c, "heartbeat.timeout=20 s");
    kill(tm1.pid, SIGSTOP);
    start_tm_only(&tm1b, "tm1", l.port, "heartbeat.timeout=20 s");
    cf_wait_stderr(&jm,
                   "TaskManager tm1 lost: it registered again from a new "
                   "process",
                   1);
    char line[1400];
    snprintf(line, sizeof line,
             "Job long (%s) switched from state RUNNING to RESTARTING.", l.id);
    cf_wait_stderr(&jm, line, 1);
    jc_close(&c);
    cf_kill9(&tm1);
    cf_stop(&tm1b, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
    long_job_free(&l);
}

/* A DisconnectTaskManager of an older registration of tm1 (another
 * instance id) is refused and leaves the current one registered: the
 * next disconnect the ResourceManager logs is tm1's own. */
static void test_stale_disconnect_is_refused(void **state)
{
    (void)state;
    static cf_proc_t jm, tm1;
    int port = start_jm(&jm, "0");
    start_tm(&tm1, &jm, "tm1", port);
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(NULL, &svc));
    char address[128];
    snprintf(address, sizeof address,
             "fling.tcp://127.0.0.1:%d/resourcemanager_1", port);
    fl_fencing_token_t zero = {{0}};
    const ProtobufCServiceDescriptor *d =
        &fling__cluster__resource_manager_gateway__descriptor;
    fl_rpc_gateway_t *gw = fl_test_connect(svc, address, d, &zero);
    Fling__Cluster__DisconnectTaskManagerRequest req =
        FLING__CLUSTER__DISCONNECT_TASK_MANAGER_REQUEST__INIT;
    req.resource_id = "tm1";
    req.instance_id = "00000000000000000000000000000000";
    req.cause = "a late one";
    char msg[1024];
    assert_int_equal(
        FL_ESTATE,
        fl_test_call_code(
            gw, (unsigned)fl_rpc_method_index(d, "DisconnectTaskManager"),
            &req.base, 5000, msg, sizeof msg));
    assert_string_equal("Disconnect of TaskManager tm1 refused: it is not "
                        "registered under instance id "
                        "00000000000000000000000000000000",
                        msg);
    fl_rpc_gateway_free(gw);
    fl_rpc_service_free(svc);
    cf_stop(&tm1, SIGTERM, 0);
    cf_expect_app(&jm, "TaskManager tm1 disconnected: TaskManager tm1 is "
                       "shutting down");
    cf_stop(&jm, SIGTERM, 0);
}

#define JS(x) FLING__CLUSTER__JOB_STATUS__STATE__##x
#define XS(x) FLING__CLUSTER__EXECUTION_STATE__STATE__##x

/* How many of job id's tasks run (or ran) on TaskManager tm in attempt. */
static int tasks_on(jc_t *c, const char *id, const char *tm, uint32_t attempt)
{
    Fling__Cluster__JobStatusReply *r = jc_status(c, id);
    int n = 0;
    for (size_t i = 0; i < r->n_tasks; i++)
        n += strcmp(r->tasks[i]->task_manager, tm) == 0 &&
             r->tasks[i]->attempt == attempt;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return n;
}

/* A TaskManager started again after a kill -9 of tm1 (as fresh_id: "tm1"
 * again or a new id) registers and is used: the long job (parallelism 4
 * on tm1 and tm2) restarts, waits for slots, and runs two tasks of its
 * next attempt on the fresh one; after its cancel, a second job of
 * parallelism 4 runs two tasks there too and FINISHES with its exact
 * output. */
static void fresh_taskmanager_is_used(const char *fresh_id)
{
    static cf_proc_t jm, tm1, tm2, fresh;
    jc_t c = {0};
    long_job_t l;
    long_job_write(&l);
    int port =
        start_jm_opt(&jm, "0", "restart-strategy.fixed-delay.delay=100 ms");
    start_tm(&tm1, &jm, "tm1", port);
    start_tm(&tm2, &jm, "tm2", port);
    jc_open(&c, port);
    const char *args[] = {"output", l.out, NULL};
    assert_fl_ok(jc_submit(&c, l.job, args, 4, "", l.id, sizeof l.id));
    cf_wait_stderr(&jm, "(attempt #0) switched from INITIALIZING to RUNNING.",
                   4);
    assert_int_equal(2, tasks_on(&c, l.id, "tm1", 0));
    cf_kill9(&tm1);
    char line[1400];
    snprintf(line, sizeof line,
             "Job long (%s) switched from state RUNNING to RESTARTING.", l.id);
    cf_wait_stderr(&jm, line, 1);
    start_tm_only(&fresh, fresh_id, port, NULL);
    cf_wait_stderr(&fresh,
                   "(attempt #1) switched from INITIALIZING to RUNNING.", 2);
    assert_int_equal(2, tasks_on(&c, l.id, fresh_id, 1));
    assert_int_equal(2, tasks_on(&c, l.id, "tm2", 1));
    assert_int_equal(JS(CANCELLING), jc_cancel(&c, l.id));
    snprintf(line, sizeof line,
             "Job long (%s) switched from state CANCELLING to CANCELED.", l.id);
    cf_wait_stderr(&jm, line, 1);

    /* The second job: the numbers 1..200000 that hold "77". */
    char *job = sevens_job_write(l.dir, 4), *out = path_in(l.dir, "b");
    const char *args2[] = {"output", out, NULL};
    char id[1024];
    assert_fl_ok(jc_submit(&c, job, args2, 0, "", id, sizeof id));
    snprintf(line, sizeof line,
             "Job sevens (%s) switched from state RUNNING to FINISHED.", id);
    cf_wait_stderr(&jm, line, 1);
    cf_wait_stderr(&fresh, "(attempt #0) switched from RUNNING to FINISHED.",
                   2);
    assert_int_equal(2, tasks_on(&c, id, fresh_id, 0));
    sevens_job_assert_output(out, 4);
    jc_close(&c);
    cf_stop(&fresh, SIGTERM, 0);
    cf_stop(&tm2, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
    free(job);
    free(out);
    long_job_free(&l);
}

static void test_fresh_taskmanager_with_a_new_id_is_used(void **state)
{
    (void)state;
    fresh_taskmanager_is_used("tm3");
}

static void test_fresh_taskmanager_with_the_same_id_is_used(void **state)
{
    (void)state;
    fresh_taskmanager_is_used("tm1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_stopped_jobmanager_leaves_no_tasks),
        CF_TEST(test_stale_disconnect_is_refused),
        CF_TEST(test_taskmanager_restarted_under_its_id_is_a_new_one),
        CF_TEST(test_fresh_taskmanager_with_a_new_id_is_used),
        CF_TEST(test_fresh_taskmanager_with_the_same_id_is_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
