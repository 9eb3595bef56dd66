/*
 * cluster_recover_test.c - a TaskManager between two JobMasters of the
 * same job (a recovered job: a new JobMaster, a new fencing token, the
 * attempts counted from #0 again), both played by the test (fake_jm.h):
 * an attempt of the earlier JobMaster slow to end is neither in the new
 * JobMaster's deployment reports nor sends it its final state.
 * Synchronised on the fakes' calls and the TaskManager's log.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../task/task_fixture.h"
#include "fake_jm.h"
#include "held_job.h"
#include "taskexecutor.pb-c.h"

#define JOB "0123456789abcdef0123456789abcdef"
#define ALLOC_OLD "fedcba9876543210fedcba9876543210"
#define ALLOC_NEW "00112233445566778899aabbccddeeff"

static const ProtobufCServiceDescriptor *const te_desc =
    &fling__cluster__task_executor_gateway__descriptor;

/* Calls method of the TaskExecutorGateway te and returns the reply (free
 * it with protobuf_c_message_free_unpacked); fails the test on a failure. */
static ProtobufCMessage *call(fl_rpc_gateway_t *te, const char *method,
                              const ProtobufCMessage *req)
{
    ProtobufCMessage *reply = NULL;
    int rc = fl_rpc_call_sync(
        te, (unsigned)fl_rpc_method_index(te_desc, method), req, 5000, &reply);
    if (rc != FL_OK)
        fail_msg("%s failed: %s", method, fl_rpc_last_message());
    return reply;
}

/* The job of attempt "long (1/1)": it counts to 10^12 (runs until
 * cancelled); its sink writes out.long. */
static void endless_job(char *buf, size_t cap, const char *out)
{
    snprintf(buf, cap,
             "{\"name\": \"long\", \"parallelism\": 1, \"operators\": ["
             "{\"id\": \"n\", \"type\": \"source.sequence\","
             " \"params\": {\"from\": \"1\", \"to\": \"1000000000000\"}},"
             "{\"id\": \"out\", \"type\": \"sink.text\","
             " \"params\": {\"path\": \"%s.long\"}}]}",
             out);
}

/* Gives slot i of tm1 (gateway te) to JOB as f's JobMaster, waits for the
 * offer, and deploys attempt #0 of vertex 0 (name) of job_json there. */
static void deploy(fake_jm_t *f, fl_rpc_gateway_t *te, uint32_t i,
                   const char *alloc, const char *name, char *job_json)
{
    Fling__Cluster__SlotRequest sr = FLING__CLUSTER__SLOT_REQUEST__INIT;
    sr.job_id = JOB;
    sr.allocation_id = (char *)alloc;
    sr.slot_index = i;
    sr.jm_address = (char *)fl_rpc_endpoint_address(f->ep);
    sr.jm_token.data = f->token.bytes;
    sr.jm_token.len = 16;
    protobuf_c_message_free_unpacked(call(te, "RequestSlot", &sr.base), NULL);
    fl_test_latch_await(f->offered);
    Fling__Cluster__TaskDeploymentDescriptor td =
        FLING__CLUSTER__TASK_DEPLOYMENT_DESCRIPTOR__INIT;
    td.job_id = JOB;
    td.allocation_id = (char *)alloc;
    td.job_json = job_json;
    td.name = (char *)name;
    protobuf_c_message_free_unpacked(call(te, "SubmitTask", &td.base), NULL);
}

/* Asks tm1 (gateway te) for a heartbeat as f's JobMaster; returns the
 * deployment report of its answer (f's). */
static const Fling__Cluster__DeploymentReport *beat(fake_jm_t *f,
                                                    fl_rpc_gateway_t *te)
{
    Fling__Cluster__JobMasterHeartbeatPayload p =
        FLING__CLUSTER__JOB_MASTER_HEARTBEAT_PAYLOAD__INIT;
    p.submitted = 1;
    uint8_t buf[16];
    Fling__Cluster__Heartbeat hb = FLING__CLUSTER__HEARTBEAT__INIT;
    hb.origin = FJ_ID;
    hb.target = "tm1";
    hb.payload.data = buf;
    hb.payload.len =
        fling__cluster__job_master_heartbeat_payload__pack(&p, buf);
    fj_arm_report(f);
    protobuf_c_message_free_unpacked(
        call(te, "HeartbeatFromJobManager", &hb.base), NULL);
    return fj_await_report(f);
}

/* What both cases share: a JobManager, TaskManager tm1 whose hold_open
 * waits on the held job's FIFO, its TaskExecutor's address, the two jobs
 * ("held (1/1)" of held_job.h, "long (1/1)"). Static in a case (the
 * fixture kills the processes on a failure). */
typedef struct recover {
    cf_proc_t jm, tm1;
    held_job_t h;
    char address[128];
    char endless[1024];
} recover_t;

/* Starts x's JobManager and tm1, and waits for tm1's slot report. */
static void recover_start(recover_t *x)
{
    held_job_write(&x->h, "held", "3");
    int port = start_jm(&x->jm, "0");
    setenv("HOLD_FIFO", x->h.fifo, 1);
    int tport = start_tm_only(&x->tm1, "tm1", port, NULL);
    unsetenv("HOLD_FIFO");
    cf_wait_stderr(&x->jm, "Slot report of TaskManager tm1: 2 slots, 2 free",
                   1);
    snprintf(x->address, sizeof x->address,
             "fling.tcp://127.0.0.1:%d/taskexecutor", tport);
    endless_job(x->endless, sizeof x->endless, x->h.out);
}

/* Waits until tm1 says attempt #0 of name runs. */
static void wait_running(recover_t *x, const char *name)
{
    char line[256];
    snprintf(line, sizeof line,
             "%s (attempt #0) switched from INITIALIZING to RUNNING.", name);
    cf_wait_stderr(&x->tm1, line, 1);
}

/* Asserts that tm1's deployment report to cur (gateway te) holds cur's
 * attempt #0 of vertex 0 only, not ending. */
static void assert_own_attempt_only(fake_jm_t *cur, fl_rpc_gateway_t *te)
{
    const Fling__Cluster__DeploymentReport *r = beat(cur, te);
    assert_string_equal(JOB, r->job_id);
    assert_int_equal(1, r->n_attempts);
    assert_int_equal(0, r->attempts[0]->vertex);
    assert_int_equal(0, r->attempts[0]->attempt);
    assert_false(r->attempts[0]->ending);
}

/* Lets the earlier JobMaster's attempt end (its hold_open returns), and
 * waits until tm1 dropped its CANCELED state and released its slot. */
static void release_held(recover_t *x)
{
    held_job_release(&x->h);
    cf_wait_stderr(
        &x->tm1,
        "State update CANCELED of held (1/1) (attempt #0) "
        "dropped: it was deployed by an earlier JobMaster of job " JOB,
        1);
    cf_wait_stderr(
        &x->tm1, "Slot 0 released: the task of allocation " ALLOC_OLD " ended",
        1);
}

/* Stops x's JobManager (tm1 is stopped by then) and removes its files. */
static void recover_end(recover_t *x)
{
    cf_stop(&x->jm, SIGTERM, 0);
    held_job_free(&x->h);
}

/* The earlier JobMaster (token 9s) runs attempt #0 in slot 0, then frees
 * the slot; its task, deaf to the cancel, keeps running. The new one
 * (token 8s) runs its own attempt #0 in slot 1: its reports show that
 * one only, and once the old attempt ends CANCELED, that state is
 * dropped with a log line instead of reaching it. */
static void test_earlier_jobmasters_attempt_is_not_the_new_ones(void **state)
{
    (void)state;
    static recover_t x;
    static fake_jm_t old, cur;
    recover_start(&x);
    fj_start(&old); /* token 9s */
    fl_rpc_gateway_t *te = fl_test_connect(old.svc, x.address, te_desc, NULL);
    deploy(&old, te, 0, ALLOC_OLD, "held (1/1)", x.h.text);
    wait_running(&x, "held (1/1)");
    Fling__Cluster__FreeSlotRequest fr =
        FLING__CLUSTER__FREE_SLOT_REQUEST__INIT;
    fr.allocation_id = ALLOC_OLD;
    fr.cause = "the JobMaster is shutting down";
    protobuf_c_message_free_unpacked(call(te, "FreeSlot", &fr.base), NULL);
    cf_wait_stderr(&x.tm1, "Slot 0 freed: the JobMaster is shutting down", 1);
    fl_rpc_gateway_free(te);
    fj_end(&old);

    fj_start_token(&cur, 8);
    te = fl_test_connect(cur.svc, x.address, te_desc, NULL);
    deploy(&cur, te, 1, ALLOC_NEW, "long (1/1)", x.endless);
    wait_running(&x, "long (1/1)");
    assert_own_attempt_only(&cur, te);
    release_held(&x);
    assert_own_attempt_only(&cur, te);

    cf_stop(&x.tm1, SIGTERM, 0);
    fl_rpc_gateway_free(te);
    fj_end(&cur);
    recover_end(&x);
}

/* The earlier JobMaster (token 9s) still holds slot 0, running attempt
 * #0, when a slot is requested for the job under a new one (token 8s),
 * as after a JobManager killed and started again: the earlier one's slot
 * is freed (its task cancelled), and the new one gets the new slot's
 * offer, and reports of its own attempt only. */
static void
test_new_jobmasters_slot_request_frees_the_earlier_ones(void **state)
{
    (void)state;
    static recover_t x;
    static fake_jm_t old, cur;
    recover_start(&x);
    fj_start(&old); /* token 9s */
    fj_start_token(&cur, 8);
    fl_rpc_gateway_t *te = fl_test_connect(cur.svc, x.address, te_desc, NULL);
    deploy(&old, te, 0, ALLOC_OLD, "held (1/1)", x.h.text);
    wait_running(&x, "held (1/1)");

    deploy(&cur, te, 1, ALLOC_NEW, "long (1/1)", x.endless);
    char line[512];
    snprintf(line, sizeof line,
             "Slot 0 freed: job " JOB " has a new JobMaster at %s, with "
             "another fencing token",
             fl_rpc_endpoint_address(cur.ep));
    cf_wait_stderr(&x.tm1, line, 1);
    wait_running(&x, "long (1/1)");
    assert_own_attempt_only(&cur, te);
    release_held(&x);

    cf_stop(&x.tm1, SIGTERM, 0);
    fl_rpc_gateway_free(te);
    fj_end(&old);
    fj_end(&cur);
    recover_end(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_earlier_jobmasters_attempt_is_not_the_new_ones),
        CF_TEST(test_new_jobmasters_slot_request_frees_the_earlier_ones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
