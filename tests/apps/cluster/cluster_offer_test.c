/*
 * cluster_offer_test.c - a TaskManager's slot offers to a JobMaster that
 * this test plays (issue 17, contract section 4 steps 14-17): the fake
 * JobMaster answers registrations and state updates, and holds the
 * offers back; synchronised on its calls and the TaskManager's log.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    bool hold;                /* hold the first offer back, else take it */
    bool lose_final;          /* fail the first final state update */
    fl_test_latch_t *finals;  /* two final state updates came */
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
    fake_jm_t *fj = fl_rpc_call_state(call);
    pthread_mutex_lock(&fj->mu);
    size_t n = fj->noffers++;
    pthread_mutex_unlock(&fj->mu);
    if (n == 0)
        fl_test_latch_count_down(fj->offered);
    if (!fj->hold) {
        Fling__Cluster__SlotOffers r = *req;
        closure(&r, call);
        return;
    }
    if (n == 0) {
        fj->offer = fl_rpc_defer(call);
        return;
    }
    fl_rpc_fail(call, FL_ESTATE, "one offer only");
}

static void
fake_update_task_execution_state(Fling__Cluster__JobMasterGateway_Service *svc,
                                 const Fling__Cluster__TaskExecutionState *req,
                                 Fling__Cluster__Ack_Closure closure,
                                 void *call)
{
    (void)svc;
    fake_jm_t *fj = fl_rpc_call_state(call);
    bool final = req->state == XS(FINISHED) || req->state == XS(FAILED) ||
                 req->state == XS(CANCELED);
    pthread_mutex_lock(&fj->mu);
    if (fj->nstates < 16)
        fj->states[fj->nstates++] = req->state;
    bool lose = final && fj->lose_final;
    if (lose)
        fj->lose_final = false;
    pthread_mutex_unlock(&fj->mu);
    fl_test_latch_count_down(fj->running);
    if (final)
        fl_test_latch_count_down(fj->finals);
    if (lose) {
        fl_rpc_fail(call, FL_EUNREACHABLE, "the test lost it");
        return;
    }
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

/* The test's processes, the fake JobMaster and a TaskExecutorGateway to
 * tm1. */
typedef struct offer_fx {
    cf_proc_t *jm, *tm1;
    fake_jm_t fj;
    fl_rpc_service_t *svc;
    fl_rpc_endpoint_t *ep;
    fl_rpc_gateway_t *gw;
    fl_fencing_token_t token;
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
    memset(&x->fj, 0, sizeof x->fj);
    x->fj.hold = hold;
    pthread_mutex_init(&x->fj.mu, NULL);
    x->fj.offered = fl_test_latch_alloc(1);
    x->fj.running = fl_test_latch_alloc(3);
    x->fj.finals = fl_test_latch_alloc(2);
    fl_rpc_service_opts_t so = {.bind_host = "127.0.0.1", .port = "0"};
    assert_fl_ok(fl_rpc_service_alloc(&so, &x->svc));
    static Fling__Cluster__JobMasterGateway_Service impl =
        FLING__CLUSTER__JOB_MASTER_GATEWAY__INIT(fake_);
    static ProtobufCService *const services[] = {&impl.base};
    memset(&x->token, 7, sizeof x->token);
    fl_rpc_endpoint_opts_t eo = {.id = "jobmaster_fake",
                                 .services = services,
                                 .nservices = 1,
                                 .state = &x->fj,
                                 .fencing_token = &x->token};
    assert_fl_ok(fl_rpc_endpoint_create(x->svc, &eo, &x->ep));
    assert_fl_ok(fl_rpc_endpoint_start(x->ep));
    char address[128];
    snprintf(address, sizeof address, "fling.tcp://127.0.0.1:%d/taskexecutor",
             tport);
    x->gw = fl_test_connect(x->svc, address, te_desc(), NULL);
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
    sr.jm_address = (char *)fl_rpc_endpoint_address(x->ep);
    sr.jm_token.data = x->token.bytes;
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
    if (x->fj.offer != NULL)
        fl_rpc_fail(x->fj.offer, FL_ECANCELED, "the test is over");
    fl_rpc_gateway_free(x->gw);
    fl_future_release(fl_rpc_endpoint_close(x->ep));
    fl_rpc_endpoint_free(x->ep);
    fl_rpc_service_free(x->svc);
    fl_test_latch_free(x->fj.offered);
    fl_test_latch_free(x->fj.running);
    fl_test_latch_free(x->fj.finals);
    pthread_mutex_destroy(&x->fj.mu);
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
    fl_test_latch_await(x.fj.running);
    /* The slot was still taken, by the running task, when the TaskManager
     * stopped. */
    cf_stop(x.tm1, SIGTERM, 0);
    cf_wait_stderr(x.tm1, "Slot 0 freed: the TaskManager is shutting down", 1);
    pthread_mutex_lock(&x.fj.mu);
    assert_int_equal(XS(DEPLOYING), x.fj.states[0]);
    assert_int_equal(XS(INITIALIZING), x.fj.states[1]);
    assert_int_equal(XS(RUNNING), x.fj.states[2]);
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
    char *dir = scratch();
    char *fifo = path_in(dir, "fifo"), *out = path_in(dir, "out");
    assert_int_equal(0, mkfifo(fifo, 0600));
    setenv("HOLD_FIFO", fifo, 1);
    fx_start(&x, NULL, false);
    unsetenv("HOLD_FIFO");
    char msg[1024];
    assert_fl_ok(fx_request_slot(&x, ALLOC, msg, sizeof msg));
    fl_test_latch_await(x.fj.offered);
    char job[2048];
    snprintf(job, sizeof job,
             "{\"name\": \"long\", \"parallelism\": 1,"
             " \"library\": \"%s\", \"operators\": ["
             "{\"id\": \"n\", \"type\": \"source.sequence\","
             " \"params\": {\"from\": \"1\", \"to\": \"10\"}},"
             "{\"id\": \"h\", \"type\": \"map\","
             " \"params\": {\"function\": \"hold\"}},"
             "{\"id\": \"out\", \"type\": \"sink.text\","
             " \"params\": {\"path\": \"%s\"}}]}",
             UDF_HOLD_LIB, out);
    fx_submit(&x, job);
    cf_wait_stderr(x.tm1,
                   "long (1/1) (attempt #0) switched from INITIALIZING "
                   "to RUNNING.",
                   1);
    /* Returns once hold_open opened the FIFO: it then reads until the
     * close below. */
    int fd = open(fifo, O_WRONLY);
    assert_true(fd >= 0);
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
    free(fifo);
    free(out);
    rm_scratch(dir);
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
    x.fj.lose_final = true;
    char job[1024];
    fx_slot_and_job(&x, "10", job, sizeof job);
    fx_submit(&x, job);
    cf_wait_stderr(x.tm1,
                   "State update FINISHED of long (1/1) (attempt #0) to the "
                   "JobMaster of job " JOB_ID " failed: the test lost it; "
                   "sending it again in 200 ms "
                   "(cluster.registration.error-delay)",
                   1);
    fl_test_latch_await(x.fj.finals);
    pthread_mutex_lock(&x.fj.mu);
    static const int want[] = {XS(DEPLOYING), XS(INITIALIZING), XS(RUNNING),
                               XS(FINISHED), XS(FINISHED)};
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
