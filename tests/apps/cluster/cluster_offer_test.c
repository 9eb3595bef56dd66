/*
 * cluster_offer_test.c - a TaskManager's slot offers to a JobMaster that
 * this test plays (issue 17, contract section 4 steps 14-17): the fake
 * JobMaster answers registrations and state updates, and holds the
 * offers back; synchronised on its calls and the TaskManager's log.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../task/task_fixture.h"
#include "cluster_procs.h"
#include "fake_jm.h"
#include "held_job.h"
#include "taskexecutor.pb-c.h"

#define JOB_ID "0123456789abcdef0123456789abcdef"
#define ALLOC "fedcba9876543210fedcba9876543210"

/* The test's processes, the fake JobMaster and a TaskExecutorGateway to
 * tm1. */
typedef struct offer_fx {
    cf_proc_t *jm, *tm1;
    fake_jm_t fj;
    fl_rpc_gateway_t *gw;
    char *dir;
} offer_fx_t;

static const ProtobufCServiceDescriptor *te_desc(void)
{
    return &fling__cluster__task_executor_gateway__descriptor;
}

/* Starts a JobManager and tm1 (tm_extra: one more -D option, or NULL),
 * the fake JobMaster (hold: it holds the first offer back) and the
 * gateway. */
static void fx_start(offer_fx_t *x, const char *tm_extra, bool hold)
{
    static cf_proc_t jm, tm1;
    x->jm = &jm;
    x->tm1 = &tm1;
    x->dir = scratch();
    int port = start_jm(&jm, "0");
    int tport = start_tm_only(&tm1, "tm1", port, tm_extra);
    cf_wait_stderr(&jm, "Slot report of TaskManager tm1: 2 slots, 2 free", 1);
    fj_start_opts(&x->fj, 9, hold);
    char address[128];
    snprintf(address, sizeof address, "fling.tcp://127.0.0.1:%d/taskexecutor",
             tport);
    x->gw = fl_test_connect(x->fj.svc, address, te_desc(), NULL);
}

/* Calls method of tm1's TaskExecutorGateway; its code, why in msg. */
static int fx_call(offer_fx_t *x, const char *method,
                   const ProtobufCMessage *req, char *msg, size_t cap)
{
    return fl_test_call_code(x->gw,
                             (unsigned)fl_rpc_method_index(te_desc(), method),
                             req, 5000, msg, cap);
}

/* Asks tm1 for slot 0 as allocation alloc of the job, for the fake. */
static int fx_request_slot(offer_fx_t *x, const char *alloc, char *msg,
                           size_t cap)
{
    Fling__Cluster__SlotRequest sr = FLING__CLUSTER__SLOT_REQUEST__INIT;
    sr.slot_index = 0;
    sr.job_id = JOB_ID;
    sr.allocation_id = (char *)alloc;
    sr.jm_address = (char *)fl_rpc_endpoint_address(x->fj.ep);
    sr.jm_token.data = x->fj.token.bytes;
    sr.jm_token.len = 16;
    return fx_call(x, "RequestSlot", &sr.base, msg, cap);
}

/* Deploys "long (1/1)" of job_json into allocation ALLOC of tm1. */
static void fx_submit(offer_fx_t *x, const char *job_json)
{
    Fling__Cluster__TaskDeploymentDescriptor td =
        FLING__CLUSTER__TASK_DEPLOYMENT_DESCRIPTOR__INIT;
    td.job_id = JOB_ID;
    td.allocation_id = ALLOC;
    td.job_json = (char *)job_json;
    td.name = "long (1/1)";
    char msg[1024];
    assert_fl_ok(fx_call(x, "SubmitTask", &td.base, msg, sizeof msg));
}

/* Gets slot 0 of tm1 as allocation ALLOC for the fake (its offer came),
 * and writes into job (cap bytes) a job of one task: the numbers 1 to
 * `to`, none kept, into part files under the scratch folder's "out". */
static void fx_slot_and_job(offer_fx_t *x, const char *to, char *job,
                            size_t cap)
{
    char msg[1024];
    assert_fl_ok(fx_request_slot(x, ALLOC, msg, sizeof msg));
    fl_test_latch_await(x->fj.offered);
    char *out = path_in(x->dir, "out");
    snprintf(job, cap,
             "{\"name\": \"long\", \"parallelism\": 1, \"operators\": ["
             "{\"id\": \"n\", \"type\": \"source.sequence\","
             " \"params\": {\"from\": \"1\", \"to\": \"%s\"}},"
             "{\"id\": \"none\", \"type\": \"filter.contains\","
             " \"params\": {\"pattern\": \"x\"}},"
             "{\"id\": \"out\", \"type\": \"sink.text\","
             " \"params\": {\"path\": \"%s\"}}]}",
             to, out);
    free(out);
}

/* Ends the fake (failing an offer it holds) and the JobManager (tm1 has
 * been stopped). */
static void fx_end(offer_fx_t *x)
{
    fl_rpc_gateway_free(x->gw);
    fj_end(&x->fj);
    cf_stop(x->jm, SIGTERM, 0);
    rm_scratch(x->dir);
}

/* The offer of slot 0 times out (pekko.ask.timeout 1 s) after a task was
 * deployed into it: the TaskManager keeps the slot and its running task
 * and offers its inactive slots again (none); the task's states are
 * DEPLOYING, INITIALIZING, RUNNING, nothing more. */
static void test_timed_out_offer_keeps_the_running_task(void **state)
{
    (void)state;
    static offer_fx_t x;
    fx_start(&x, "pekko.ask.timeout=1 s", true);
    /* The JobMaster takes the slot and deploys into it; its answer to the
     * offer is late. */
    char job[1024];
    fx_slot_and_job(&x, "1000000000000", job, sizeof job);
    fx_submit(&x, job);
    cf_wait_stderr(x.tm1,
                   "long (1/1) (attempt #0) switched from INITIALIZING "
                   "to RUNNING.",
                   1);
    cf_wait_stderr(x.tm1,
                   "Slot offer to the JobMaster of job " JOB_ID
                   " timed out; offering its inactive slots again",
                   1);
    fl_test_latch_await(x.fj.three_states);
    /* The slot was still taken, by the running task, when the TaskManager
     * stopped. */
    cf_stop(x.tm1, SIGTERM, 0);
    cf_wait_stderr(x.tm1, "Slot 0 freed: the TaskManager is shutting down", 1);
    pthread_mutex_lock(&x.fj.mu);
    assert_int_equal(FJ_XS(DEPLOYING), x.fj.states[0]);
    assert_int_equal(FJ_XS(INITIALIZING), x.fj.states[1]);
    assert_int_equal(FJ_XS(RUNNING), x.fj.states[2]);
    assert_int_equal(1, x.fj.noffers);
    pthread_mutex_unlock(&x.fj.mu);
    fx_end(&x);
}

#define ALLOC2 "00112233445566778899aabbccddeeff"

/* A slot freed while its task thread still runs (a user function deaf to
 * the cancel flag) stays RELEASING: a request for it is refused until the
 * thread ended, then it is free again. */
static void test_freed_slot_waits_for_its_task(void **state)
{
    (void)state;
    static offer_fx_t x;
    held_job_t h;
    held_job_write(&h, "long", "10");
    setenv("HOLD_FIFO", h.fifo, 1);
    fx_start(&x, NULL, false);
    unsetenv("HOLD_FIFO");
    char msg[1024];
    assert_fl_ok(fx_request_slot(&x, ALLOC, msg, sizeof msg));
    fl_test_latch_await(x.fj.offered);
    fx_submit(&x, h.text);
    cf_wait_stderr(x.tm1,
                   "long (1/1) (attempt #0) switched from INITIALIZING "
                   "to RUNNING.",
                   1);
    /* Returns once hold_open opened the FIFO: it then reads until the
     * close below. */
    int fd = held_job_open(&h);
    Fling__Cluster__FreeSlotRequest fr =
        FLING__CLUSTER__FREE_SLOT_REQUEST__INIT;
    fr.allocation_id = ALLOC;
    fr.cause = "the test frees it";
    assert_fl_ok(fx_call(&x, "FreeSlot", &fr.base, msg, sizeof msg));
    assert_int_equal(FL_ESTATE, fx_request_slot(&x, ALLOC2, msg, sizeof msg));
    assert_string_equal("Slot request " ALLOC2 " refused: slot 0 of "
                        "TaskManager tm1 is releasing allocation " ALLOC
                        ", whose task has not ended yet",
                        msg);
    /* hold_open reads the end: the task ends, cancelled. */
    close(fd);
    cf_wait_stderr(
        x.tm1, "Slot 0 released: the task of allocation " ALLOC " ended", 1);
    assert_fl_ok(fx_request_slot(&x, ALLOC2, msg, sizeof msg));
    cf_stop(x.tm1, SIGTERM, 0);
    held_job_free(&h);
    fx_end(&x);
}

/* The JobMaster loses the task's FINISHED (the call fails): the
 * TaskManager sends it again after cluster.registration.error-delay, until
 * it is acknowledged. */
static void test_lost_final_state_is_sent_again(void **state)
{
    (void)state;
    static offer_fx_t x;
    fx_start(&x, NULL, false);
    x.fj.lose_finals = 1;
    char job[1024];
    fx_slot_and_job(&x, "10", job, sizeof job);
    fx_submit(&x, job);
    cf_wait_stderr(x.tm1,
                   "State update FINISHED of long (1/1) (attempt #0) to the "
                   "JobMaster of job " JOB_ID " failed: the test lost it; "
                   "sending it again in 200 ms "
                   "(cluster.registration.error-delay)",
                   1);
    fl_test_latch_await(x.fj.two_finals);
    pthread_mutex_lock(&x.fj.mu);
    static const int want[] = {FJ_XS(DEPLOYING), FJ_XS(INITIALIZING),
                               FJ_XS(RUNNING), FJ_XS(FINISHED),
                               FJ_XS(FINISHED)};
    assert_int_equal(5, x.fj.nstates);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(want[i], x.fj.states[i]);
    pthread_mutex_unlock(&x.fj.mu);
    cf_stop(x.tm1, SIGTERM, 0);
    fx_end(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_timed_out_offer_keeps_the_running_task),
        CF_TEST(test_freed_slot_waits_for_its_task),
        CF_TEST(test_lost_final_state_is_sent_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
