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

#include "../task/task_fixture.h"
#include "cluster_procs.h"
#include "jobmaster.pb-c.h"
#include "taskexecutor.pb-c.h"

#define XS(x) FLING__CLUSTER__EXECUTION_STATE__STATE__##x
#define JOB_ID "0123456789abcdef0123456789abcdef"
#define ALLOC "fedcba9876543210fedcba9876543210"

/* The fake JobMaster's state, on its endpoint's main thread but for the
 * fields under mu. */
typedef struct fake_jm {
    fl_test_latch_t *offered; /* the first OfferSlots arrived */
    fl_test_latch_t *running; /* three states came */
    fl_rpc_call_t *offer;     /* held back, answered at the end */
    pthread_mutex_t mu;
    int states[16]; /* the task's states, in the order they came */
    size_t nstates;
    size_t noffers;
} fake_jm_t;

static void fake_register_task_manager(
    Fling__Cluster__JobMasterGateway_Service *svc,
    const Fling__Cluster__TaskManagerRegistration *req,
    Fling__Cluster__TaskManagerRegistrationReply_Closure closure, void *call)
{
    (void)svc;
    (void)req;
    Fling__Cluster__TaskManagerRegistrationReply r =
        FLING__CLUSTER__TASK_MANAGER_REGISTRATION_REPLY__INIT;
    r.jm_resource_id = "jobmaster_fake";
    closure(&r, call);
}

static void fake_offer_slots(Fling__Cluster__JobMasterGateway_Service *svc,
                             const Fling__Cluster__SlotOffers *req,
                             Fling__Cluster__SlotOffers_Closure closure,
                             void *call)
{
    (void)svc;
    (void)closure;
    (void)req;
    fake_jm_t *fj = fl_rpc_call_state(call);
    pthread_mutex_lock(&fj->mu);
    size_t n = fj->noffers++;
    pthread_mutex_unlock(&fj->mu);
    if (n == 0) {
        fj->offer = fl_rpc_defer(call);
        fl_test_latch_count_down(fj->offered);
        return;
    }
    fl_rpc_fail(call, FL_ESTATE, "one offer only");
}

static void fake_update_task_execution_state(
    Fling__Cluster__JobMasterGateway_Service *svc,
    const Fling__Cluster__TaskExecutionState *req,
    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    fake_jm_t *fj = fl_rpc_call_state(call);
    pthread_mutex_lock(&fj->mu);
    if (fj->nstates < 16)
        fj->states[fj->nstates++] = req->state;
    pthread_mutex_unlock(&fj->mu);
    fl_test_latch_count_down(fj->running);
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
}

/* The calls this test does not expect are acknowledged. */
static void ack(Fling__Cluster__Ack_Closure closure, void *call)
{
    Fling__Cluster__Ack a = FLING__CLUSTER__ACK__INIT;
    closure(&a, call);
}

static void fake_disconnect_task_manager(
    Fling__Cluster__JobMasterGateway_Service *svc,
    const Fling__Cluster__DisconnectTaskManagerFromJobMaster *req,
    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    (void)req;
    ack(closure, call);
}

static void fake_cancel(Fling__Cluster__JobMasterGateway_Service *svc,
                        const Fling__Cluster__Ack *req,
                        Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    (void)req;
    ack(closure, call);
}

static void
fake_heartbeat_from_task_manager(Fling__Cluster__JobMasterGateway_Service *svc,
                                 const Fling__Cluster__Heartbeat *req,
                                 Fling__Cluster__Ack_Closure closure,
                                 void *call)
{
    (void)svc;
    (void)req;
    ack(closure, call);
}

static void fake_heartbeat_from_resource_manager(
    Fling__Cluster__JobMasterGateway_Service *svc,
    const Fling__Cluster__Heartbeat *req, Fling__Cluster__Ack_Closure closure,
    void *call)
{
    (void)svc;
    (void)req;
    ack(closure, call);
}

/* The offer of slot 0 times out (pekko.ask.timeout 1 s) after a task was
 * deployed into it: the TaskManager keeps the slot and its running task
 * and offers its inactive slots again (none); the task's states are
 * DEPLOYING, INITIALIZING, RUNNING, nothing more. */
static void test_timed_out_offer_keeps_the_running_task(void **state)
{
    (void)state;
    static cf_proc_t jm, tm1;
    char *dir = scratch();
    char *out = path_in(dir, "out");
    int port = start_jm(&jm, "0");
    int tport = start_tm_only(&tm1, "tm1", port, "pekko.ask.timeout=1 s");
    cf_wait_stderr(&jm, "Slot report of TaskManager tm1: 2 slots, 2 free", 1);

    static fake_jm_t fj;
    memset(&fj, 0, sizeof fj);
    pthread_mutex_init(&fj.mu, NULL);
    fj.offered = fl_test_latch_alloc(1);
    fj.running = fl_test_latch_alloc(3);
    fl_rpc_service_t *svc = NULL;
    fl_rpc_service_opts_t so = {.bind_host = "127.0.0.1", .port = "0"};
    assert_fl_ok(fl_rpc_service_alloc(&so, &svc));
    static Fling__Cluster__JobMasterGateway_Service impl =
        FLING__CLUSTER__JOB_MASTER_GATEWAY__INIT(fake_);
    static ProtobufCService *const services[] = {&impl.base};
    fl_fencing_token_t token = {{7}};
    fl_rpc_endpoint_opts_t eo = {.id = "jobmaster_fake",
                                 .services = services,
                                 .nservices = 1,
                                 .state = &fj,
                                 .fencing_token = &token};
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(svc, &eo, &ep));
    assert_fl_ok(fl_rpc_endpoint_start(ep));

    char address[128];
    snprintf(address, sizeof address, "fling.tcp://127.0.0.1:%d/taskexecutor",
             tport);
    const ProtobufCServiceDescriptor *d =
        &fling__cluster__task_executor_gateway__descriptor;
    fl_rpc_gateway_t *gw = fl_test_connect(svc, address, d, NULL);
    Fling__Cluster__SlotRequest sr = FLING__CLUSTER__SLOT_REQUEST__INIT;
    sr.slot_index = 0;
    sr.job_id = JOB_ID;
    sr.allocation_id = ALLOC;
    sr.jm_address = (char *)fl_rpc_endpoint_address(ep);
    sr.jm_token.data = token.bytes;
    sr.jm_token.len = 16;
    char msg[1024];
    assert_fl_ok(
        fl_test_call_code(gw, (unsigned)fl_rpc_method_index(d, "RequestSlot"),
                          &sr.base, 5000, msg, sizeof msg));
    fl_test_latch_await(fj.offered);

    /* The JobMaster took the slot and deploys into it; its answer to the
     * offer is late. */
    char job[1024];
    snprintf(job, sizeof job,
             "{\"name\": \"long\", \"parallelism\": 1, \"operators\": ["
             "{\"id\": \"n\", \"type\": \"source.sequence\","
             " \"params\": {\"from\": \"1\", \"to\": \"1000000000000\"}},"
             "{\"id\": \"none\", \"type\": \"filter.contains\","
             " \"params\": {\"pattern\": \"x\"}},"
             "{\"id\": \"out\", \"type\": \"sink.text\","
             " \"params\": {\"path\": \"%s\"}}]}",
             out);
    Fling__Cluster__TaskDeploymentDescriptor td =
        FLING__CLUSTER__TASK_DEPLOYMENT_DESCRIPTOR__INIT;
    td.job_id = JOB_ID;
    td.allocation_id = ALLOC;
    td.job_json = job;
    td.name = "long (1/1)";
    assert_fl_ok(
        fl_test_call_code(gw, (unsigned)fl_rpc_method_index(d, "SubmitTask"),
                          &td.base, 5000, msg, sizeof msg));
    cf_wait_stderr(&tm1, "long (1/1) (attempt #0) switched from INITIALIZING "
                         "to RUNNING.",
                   1);
    cf_wait_stderr(&tm1,
                   "Slot offer to the JobMaster of job " JOB_ID
                   " timed out; offering its inactive slots again",
                   1);
    fl_test_latch_await(fj.running);
    /* The slot was still taken, by the running task, when the TaskManager
     * stopped. */
    cf_stop(&tm1, SIGTERM, 0);
    cf_wait_stderr(&tm1, "Slot 0 freed: the TaskManager is shutting down", 1);
    pthread_mutex_lock(&fj.mu);
    assert_int_equal(XS(DEPLOYING), fj.states[0]);
    assert_int_equal(XS(INITIALIZING), fj.states[1]);
    assert_int_equal(XS(RUNNING), fj.states[2]);
    assert_int_equal(1, fj.noffers);
    pthread_mutex_unlock(&fj.mu);

    fl_rpc_fail(fj.offer, FL_ECANCELED, "the test is over");
    fl_rpc_gateway_free(gw);
    fl_future_release(fl_rpc_endpoint_close(ep));
    fl_rpc_endpoint_free(ep);
    fl_rpc_service_free(svc);
    fl_test_latch_free(fj.offered);
    fl_test_latch_free(fj.running);
    cf_stop(&jm, SIGTERM, 0);
    free(out);
    rm_scratch(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_timed_out_offer_keeps_the_running_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
