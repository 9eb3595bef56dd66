/*
 * cluster_slot_table_test.c - the ResourceManager's slot table against a
 * TaskExecutor and a JobMaster that this test plays (issue 17, contract
 * section 4 steps 11-13 and 19-21): the slot reports of the heartbeats
 * win over the table but for a RequestSlot in flight or just granted, a
 * report that displaces a request has the job asked for another slot, and
 * a slot that comes back free holds the next requests for its job off
 * until a report shows it held, the job declares again or the
 * TaskExecutor is dropped; only the allocations requested for the job's
 * current JobMaster count toward its slots. Synchronised on the fake
 * TaskExecutor's calls and the JobManager's log (its app component at debug,
 * FLING_TRACE=app).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster_procs.h"
#include "jobmaster.pb-c.h"
#include "resourcemanager.pb-c.h"
#include "taskexecutor.pb-c.h"

#define JOB "0123456789abcdef0123456789abcdef"
#define OTHER_JOB "ffffffffffffffffffffffffffffffff"
#define ALLOC_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ALLOC_D "dddddddddddddddddddddddddddddddd"

/* heartbeat.interval of the JobManager and the fake: a granted slot is
 * kept from reports showing it free for twice that. Long enough that the
 * test's report right after a grant is well inside that grace. */
#define INTERVAL_MS 2000
#define GRACE_MS (2 * INTERVAL_MS)

/* The RequestSlots that came to the fake TaskExecutor, on its main thread
 * but for the test thread's reads under mu. */
typedef struct fake_te {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool hold; /* hold the requests back, else acknowledge them */
    struct {
        char alloc[33];
        char jm_address[128];
        uint32_t index;
        uint64_t at_ms; /* when it came (monotonic clock) */
        fl_rpc_call_t *held;
        Fling__Cluster__Ack_Closure closure;
    } req[16];
    size_t nreq;
} fake_te_t;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void ack(Fling__Cluster__Ack_Closure closure, void *call)
{
    Fling__Cluster__Ack a = FLING__CLUSTER__ACK__INIT;
    closure(&a, call);
}

static void te_request_slot(Fling__Cluster__TaskExecutorGateway_Service *svc,
                            const Fling__Cluster__SlotRequest *req,
                            Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    fake_te_t *te = fl_rpc_call_state(call);
    pthread_mutex_lock(&te->mu);
    size_t n = te->nreq;
    if (n < 16) {
        snprintf(te->req[n].alloc, sizeof te->req[n].alloc, "%s",
                 req->allocation_id);
        snprintf(te->req[n].jm_address, sizeof te->req[n].jm_address, "%s",
                 req->jm_address);
        te->req[n].index = req->slot_index;
        te->req[n].at_ms = mono_ms();
        te->req[n].closure = closure;
        te->req[n].held = te->hold ? fl_rpc_defer(call) : NULL;
        te->nreq++;
    }
    pthread_cond_broadcast(&te->cv);
    pthread_mutex_unlock(&te->mu);
    if (n >= 16)
        fl_rpc_fail(call, FL_ESTATE, "the fake takes 16 requests");
    else if (!te->hold)
        ack(closure, call);
}

/* The calls this test does not expect are refused; the heartbeats are
 * acknowledged (the test sends the reports itself). */
static void te_heartbeat_from_resource_manager(
    Fling__Cluster__TaskExecutorGateway_Service *svc,
    const Fling__Cluster__Heartbeat *req, Fling__Cluster__Ack_Closure closure,
    void *call)
{
    (void)svc;
    (void)req;
    ack(closure, call);
}

#define REFUSE(prefix, svc_t, method, req_t)                                   \
    static void prefix##method(svc_t *svc, const req_t *req,                   \
                               Fling__Cluster__Ack_Closure closure,            \
                               void *call)                                     \
    {                                                                          \
        (void)svc;                                                             \
        (void)req;                                                             \
        (void)closure;                                                         \
        fl_rpc_fail(call, FL_ESTATE, "the fake does not take " #method);       \
    }

#define TE_SVC Fling__Cluster__TaskExecutorGateway_Service
REFUSE(te_, TE_SVC, disconnect_resource_manager,
       Fling__Cluster__DisconnectResourceManagerRequest)
REFUSE(te_, TE_SVC, submit_task, Fling__Cluster__TaskDeploymentDescriptor)
REFUSE(te_, TE_SVC, cancel_task, Fling__Cluster__ExecutionAttempt)
REFUSE(te_, TE_SVC, free_slot, Fling__Cluster__FreeSlotRequest)
REFUSE(te_, TE_SVC, disconnect_job_manager,
       Fling__Cluster__DisconnectJobManagerFromTaskExecutor)
REFUSE(te_, TE_SVC, heartbeat_from_job_manager, Fling__Cluster__Heartbeat)

#define JM_SVC Fling__Cluster__JobMasterGateway_Service
REFUSE(jm_, JM_SVC, update_task_execution_state,
       Fling__Cluster__TaskExecutionState)
REFUSE(jm_, JM_SVC, disconnect_task_manager,
       Fling__Cluster__DisconnectTaskManagerFromJobMaster)
REFUSE(jm_, JM_SVC, cancel, Fling__Cluster__Ack)
REFUSE(jm_, JM_SVC, heartbeat_from_task_manager, Fling__Cluster__Heartbeat)

static void jm_register_task_manager(
    JM_SVC *svc, const Fling__Cluster__TaskManagerRegistration *req,
    Fling__Cluster__TaskManagerRegistrationReply_Closure closure, void *call)
{
    (void)svc;
    (void)req;
    (void)closure;
    fl_rpc_fail(call, FL_ESTATE, "the fake takes no TaskManager");
}

static void jm_offer_slots(JM_SVC *svc, const Fling__Cluster__SlotOffers *req,
                           Fling__Cluster__SlotOffers_Closure closure,
                           void *call)
{
    (void)svc;
    (void)req;
    (void)closure;
    fl_rpc_fail(call, FL_ESTATE, "the fake takes no offer");
}

static void jm_heartbeat_from_resource_manager(
    JM_SVC *svc, const Fling__Cluster__Heartbeat *req,
    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    (void)req;
    ack(closure, call);
}

/* The JobManager, the fakes and the test's ResourceManagerGateway. */
typedef struct table_fx {
    cf_proc_t *jm;
    fake_te_t te;
    fl_rpc_service_t *svc;
    fl_rpc_endpoint_t *te_ep, *jm_ep;
    fl_rpc_endpoint_t *jm2_ep; /* a second JobMaster of JOB, or NULL */
    fl_rpc_gateway_t *rm;
    fl_fencing_token_t jm_token;
    char instance_id[64];
    char rm_hb_id[256];
} table_fx_t;

static const ProtobufCServiceDescriptor *rm_desc(void)
{
    return &fling__cluster__resource_manager_gateway__descriptor;
}

/* Makes the call method of the ResourceManagerGateway, which must
 * succeed; returns its reply (the caller frees it with
 * protobuf_c_message_free_unpacked). */
static ProtobufCMessage *rm_call(table_fx_t *x, const char *method,
                                 const ProtobufCMessage *req)
{
    ProtobufCMessage *reply = NULL;
    int rc = fl_rpc_call_sync(x->rm,
                              (unsigned)fl_rpc_method_index(rm_desc(), method),
                              req, 20000, &reply);
    if (rc != FL_OK)
        fail_msg("%s: %s (%s)", method, fl_strerror(rc), fl_rpc_last_message());
    return reply;
}

static void rm_call_ack(table_fx_t *x, const char *method,
                        const ProtobufCMessage *req)
{
    protobuf_c_message_free_unpacked(rm_call(x, method, req), NULL);
}

/* Starts a JobManager whose heartbeats time out after 60 s (the fakes
 * send none), sent each INTERVAL_MS, and waits for its ResourceManager and
 * Dispatcher. */
static int start_table_jm(cf_proc_t *jm)
{
    const char *args[] = {"-D",
                          "jobmanager.rpc.address=127.0.0.1",
                          "-D",
                          "jobmanager.rpc.port=0",
                          CF_FAST,
                          "-D",
                          "heartbeat.timeout=60 s",
                          "-D",
                          "heartbeat.interval=2000 ms",
                          NULL};
    setenv("FLING_TRACE", "app", 1);
    cf_spawn(jm, "jm", JM_PATH, args);
    unsetenv("FLING_TRACE");
    char addr[256], line[2048];
    int port = cf_read_address(jm, addr, sizeof addr);
    bool rm = false, disp = false;
    while (!rm || !disp) {
        cf_next_app(jm, line, sizeof line);
        rm = rm || strstr(line, "ResourceManager ") == line;
        disp = disp || strstr(line, "Dispatcher ") == line;
    }
    return port;
}

/* Registers the fake TaskExecutor (tmx, 2 slots) from the process
 * session and sends its first report: both slots free. A registration
 * before it (from another session) is dropped. */
static void fx_register(table_fx_t *x, const char *session)
{
    bool again = x->instance_id[0] != '\0';
    Fling__Cluster__TaskExecutorRegistration reg =
        FLING__CLUSTER__TASK_EXECUTOR_REGISTRATION__INIT;
    reg.address = (char *)fl_rpc_endpoint_address(x->te_ep);
    reg.resource_id = "tmx";
    reg.session_id = (char *)session;
    reg.num_slots = 2;
    /* The cluster-wide keys (apps/common/process.c) as the JobManager has
     * them. */
    static const char *const keys[] = {
        FL_CONFIG_RPC_FRAMESIZE, FL_CONFIG_HEARTBEAT_INTERVAL,
        FL_CONFIG_HEARTBEAT_TIMEOUT, FL_CONFIG_HA_CLUSTER_ID};
    fl_config_t *cfg = fl_config_alloc();
    assert_non_null(cfg);
    assert_fl_ok(
        fl_config_set(cfg, FL_CONFIG_HEARTBEAT_INTERVAL, "2000 ms", NULL, 0));
    assert_fl_ok(
        fl_config_set(cfg, FL_CONFIG_HEARTBEAT_TIMEOUT, "60 s", NULL, 0));
    char values[4][256];
    Fling__Cluster__ConfigEntry entries[4], *eptrs[4];
    for (size_t i = 0; i < 4; i++) {
        fl_config_get_text(cfg, keys[i], values[i], sizeof values[i]);
        fling__cluster__config_entry__init(&entries[i]);
        entries[i].key = (char *)keys[i];
        entries[i].value = values[i];
        eptrs[i] = &entries[i];
    }
    fl_config_free(cfg);
    reg.n_cluster_config = 4;
    reg.cluster_config = eptrs;
    Fling__Cluster__TaskExecutorRegistrationReply *r =
        (Fling__Cluster__TaskExecutorRegistrationReply *)rm_call(
            x, "RegisterTaskExecutor", &reg.base);
    if (r->outcome !=
        FLING__CLUSTER__TASK_EXECUTOR_REGISTRATION_REPLY__OUTCOME__SUCCESS)
        fail_msg("registration of tmx refused: %s", r->reason);
    snprintf(x->instance_id, sizeof x->instance_id, "%s", r->instance_id);
    snprintf(x->rm_hb_id, sizeof x->rm_hb_id, "%s", r->rm_resource_id);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    if (again)
        cf_expect_app(x->jm, "TaskManager tmx registers again from a new "
                             "process; its old registration is dropped");
    cf_expect_app(x->jm, "Registered TaskManager tmx at %s with 2 slots",
                  reg.address);
    Fling__Cluster__SlotStatus s0 = FLING__CLUSTER__SLOT_STATUS__INIT,
                               s1 = FLING__CLUSTER__SLOT_STATUS__INIT;
    s1.index = 1;
    Fling__Cluster__SlotStatus *slots[] = {&s0, &s1};
    Fling__Cluster__SlotReport report = FLING__CLUSTER__SLOT_REPORT__INIT;
    report.n_slots = 2;
    report.slots = slots;
    Fling__Cluster__SlotReportRequest sr =
        FLING__CLUSTER__SLOT_REPORT_REQUEST__INIT;
    sr.resource_id = "tmx";
    sr.instance_id = x->instance_id;
    sr.report = &report;
    rm_call_ack(x, "SendSlotReport", &sr.base);
    cf_expect_app(x->jm, "Slot report of TaskManager tmx: 2 slots, 2 free");
}

/* Starts a fake JobMaster endpoint id fenced by token (which must outlive
 * it) in x's service. */
static fl_rpc_endpoint_t *fx_jobmaster(table_fx_t *x, const char *id,
                                       const fl_fencing_token_t *token)
{
    static Fling__Cluster__JobMasterGateway_Service jm_impl =
        FLING__CLUSTER__JOB_MASTER_GATEWAY__INIT(jm_);
    static ProtobufCService *const jm_services[] = {&jm_impl.base};
    fl_rpc_endpoint_opts_t jo = {.id = id,
                                 .services = jm_services,
                                 .nservices = 1,
                                 .fencing_token = token};
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(x->svc, &jo, &ep));
    assert_fl_ok(fl_rpc_endpoint_start(ep));
    return ep;
}

/* Starts the JobManager and the fakes, registers the fake TaskExecutor
 * (tmx, 2 slots, both free as its first report shows) and the fake
 * JobMaster of JOB; hold: the fake holds the RequestSlots back. */
static void fx_start(table_fx_t *x, bool hold)
{
    static cf_proc_t jm;
    memset(x, 0, sizeof *x);
    x->jm = &jm;
    int port = start_table_jm(&jm);
    pthread_mutex_init(&x->te.mu, NULL);
    pthread_cond_init(&x->te.cv, NULL);
    x->te.hold = hold;
    fl_rpc_service_opts_t so = {.bind_host = "127.0.0.1", .port = "0"};
    assert_fl_ok(fl_rpc_service_alloc(&so, &x->svc));
    static Fling__Cluster__TaskExecutorGateway_Service te_impl =
        FLING__CLUSTER__TASK_EXECUTOR_GATEWAY__INIT(te_);
    static ProtobufCService *const te_services[] = {&te_impl.base};
    fl_rpc_endpoint_opts_t eo = {.id = "taskexecutor",
                                 .services = te_services,
                                 .nservices = 1,
                                 .state = &x->te};
    assert_fl_ok(fl_rpc_endpoint_create(x->svc, &eo, &x->te_ep));
    assert_fl_ok(fl_rpc_endpoint_start(x->te_ep));
    memset(&x->jm_token, 7, sizeof x->jm_token);
    x->jm_ep = fx_jobmaster(x, "jobmaster_fake", &x->jm_token);
    char address[128];
    snprintf(address, sizeof address,
             "fling.tcp://127.0.0.1:%d/resourcemanager_1", port);
    fl_fencing_token_t zero = {{0}};
    x->rm = fl_test_connect(x->svc, address, rm_desc(), &zero);
    fx_register(x, "session1");

    Fling__Cluster__JobMasterRegistration jr =
        FLING__CLUSTER__JOB_MASTER_REGISTRATION__INIT;
    jr.job_id = JOB;
    jr.address = (char *)fl_rpc_endpoint_address(x->jm_ep);
    jr.token.data = x->jm_token.bytes;
    jr.token.len = 16;
    rm_call_ack(x, "RegisterJobMaster", &jr.base);
    cf_expect_app(&jm, "Registered JobMaster of job " JOB " at %s", jr.address);
}

/* The fake JobMaster needs n slots. */
static void fx_declare(table_fx_t *x, uint32_t n)
{
    Fling__Cluster__ResourceRequirements rr =
        FLING__CLUSTER__RESOURCE_REQUIREMENTS__INIT;
    rr.job_id = JOB;
    rr.slots = n;
    rm_call_ack(x, "DeclareRequiredResources", &rr.base);
}

/* The heartbeat of tmx carrying a report of its two slots: each free
 * (NULL) or taken by allocation a[i] of job j[i]. */
static void fx_heartbeat_report(table_fx_t *x, const char *a0, const char *j0,
                                const char *a1, const char *j1)
{
    Fling__Cluster__SlotStatus s0 = FLING__CLUSTER__SLOT_STATUS__INIT,
                               s1 = FLING__CLUSTER__SLOT_STATUS__INIT;
    s0.allocation_id = a0 ? (char *)a0 : "";
    s0.job_id = j0 ? (char *)j0 : "";
    s1.index = 1;
    s1.allocation_id = a1 ? (char *)a1 : "";
    s1.job_id = j1 ? (char *)j1 : "";
    Fling__Cluster__SlotStatus *slots[] = {&s0, &s1};
    Fling__Cluster__SlotReport report = FLING__CLUSTER__SLOT_REPORT__INIT;
    report.n_slots = 2;
    report.slots = slots;
    uint8_t payload[512];
    assert_true(fling__cluster__slot_report__get_packed_size(&report) <=
                sizeof payload);
    Fling__Cluster__Heartbeat hb = FLING__CLUSTER__HEARTBEAT__INIT;
    hb.origin = "tmx";
    hb.target = x->rm_hb_id;
    hb.payload.data = payload;
    hb.payload.len = fling__cluster__slot_report__pack(&report, payload);
    rm_call_ack(x, "HeartbeatFromTaskManager", &hb.base);
}

/* Waits until the fake has had n RequestSlots (at most 20 s). */
static void fx_await_requests(table_fx_t *x, size_t n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    pthread_mutex_lock(&x->te.mu);
    int rc = 0;
    while (x->te.nreq < n && rc == 0)
        rc = pthread_cond_timedwait(&x->te.cv, &x->te.mu, &dl);
    size_t got = x->te.nreq;
    pthread_mutex_unlock(&x->te.mu);
    if (got < n)
        fail_msg("the fake TaskExecutor had %zu slot requests, not %zu", got,
                 n);
}

/* Expects the next line: the request of slot i for JOB; returns its
 * allocation (in alloc, 33 bytes) once the fake has it as its n-th. */
static void fx_expect_request(table_fx_t *x, uint32_t i, size_t n, char *alloc)
{
    char line[2048], want[256];
    int len = snprintf(want, sizeof want,
                       "Requested slot %u of TaskManager tmx for job " JOB
                       " (allocation ",
                       (unsigned)i);
    cf_next_app(x->jm, line, sizeof line);
    if (strncmp(line, want, (size_t)len) != 0)
        fail_msg("expected the line\n  %s...\ngot\n  %s", want, line);
    snprintf(alloc, 33, "%.32s", line + len);
    assert_string_equal(")", line + len + 32);
    fx_await_requests(x, n);
    pthread_mutex_lock(&x->te.mu);
    assert_string_equal(alloc, x->te.req[n - 1].alloc);
    assert_int_equal(i, x->te.req[n - 1].index);
    pthread_mutex_unlock(&x->te.mu);
}

static void fx_expect_granted(table_fx_t *x, const char *alloc)
{
    cf_expect_app(
        x->jm, "Slot request %s to TaskManager tmx for job " JOB " succeeded",
        alloc);
}

/* Takes the call of the fake's request i, held back, for the test to
 * answer; its closure into *closure unless NULL. */
static fl_rpc_call_t *fx_take_held(table_fx_t *x, size_t i,
                                   Fling__Cluster__Ack_Closure *closure)
{
    pthread_mutex_lock(&x->te.mu);
    fl_rpc_call_t *held = x->te.req[i].held;
    x->te.req[i].held = NULL;
    if (closure != NULL)
        *closure = x->te.req[i].closure;
    pthread_mutex_unlock(&x->te.mu);
    assert_non_null(held);
    return held;
}

/* Asserts that the fake's request i named the JobMaster at address. */
static void fx_expect_jm_address(table_fx_t *x, size_t i, const char *address)
{
    char got[128];
    pthread_mutex_lock(&x->te.mu);
    snprintf(got, sizeof got, "%s", x->te.req[i].jm_address);
    pthread_mutex_unlock(&x->te.mu);
    assert_string_equal(address, got);
}

static void fx_end(table_fx_t *x)
{
    cf_stop(x->jm, SIGTERM, 0);
    pthread_mutex_lock(&x->te.mu);
    for (size_t i = 0; i < x->te.nreq; i++)
        if (x->te.req[i].held != NULL)
            fl_rpc_fail(x->te.req[i].held, FL_ECANCELED, "the test is over");
    pthread_mutex_unlock(&x->te.mu);
    fl_rpc_gateway_free(x->rm);
    fl_test_endpoint_end(x->te_ep);
    fl_test_endpoint_end(x->jm_ep);
    if (x->jm2_ep != NULL)
        fl_test_endpoint_end(x->jm2_ep);
    fl_rpc_service_free(x->svc);
    pthread_cond_destroy(&x->te.cv);
    pthread_mutex_destroy(&x->te.mu);
}

/* The heartbeat's report disagrees with the table (once a report has
 * shown the granted slot held, which ends its grace): the slot the
 * ResourceManager gave the job is free there, the one it thinks free is
 * taken by an allocation of the job it did not request (an earlier
 * JobMaster's), which counts for no one: the job is asked for the freed
 * slot after the hold-off. Then both are taken (one by a job it does not
 * know, displacing that request), then both are free: the job is asked
 * at once, its hold-off being over. */
static void test_heartbeat_report_overrides_the_table(void **state)
{
    (void)state;
    static table_fx_t x;
    fx_start(&x, false);
    fx_declare(&x, 1);
    char a[33], c[33], e[33];
    fx_expect_request(&x, 0, 1, a);
    fx_expect_granted(&x, a);
    fx_heartbeat_report(&x, a, JOB, NULL, NULL);
    cf_expect_app(x.jm, "Slot report of TaskManager tmx: 2 slots, 1 free");

    /* Within the grace, but the slot was shown held since. */
    fx_heartbeat_report(&x, NULL, NULL, ALLOC_B, JOB);
    cf_expect_app(x.jm, "Slot 1 of TaskManager tmx is allocated to job " JOB
                        " (allocation " ALLOC_B ") as its report shows");
    cf_expect_app(x.jm,
                  "Slot 0 of TaskManager tmx is free as its report shows "
                  "(allocation %s of job " JOB " is forgotten)",
                  a);
    cf_expect_app(x.jm,
                  "Slot 0 of TaskManager tmx came back free while job " JOB
                  " needs slots; asking that TaskManager for the job "
                  "again in 100 ms");
    /* Still 1 free: no report line. */
    fx_expect_request(&x, 0, 2, c);
    fx_expect_granted(&x, c);

    /* The job has its slot taken: nothing to ask for before these lines. */
    fx_heartbeat_report(&x, ALLOC_D, OTHER_JOB, ALLOC_B, JOB);
    cf_expect_app(x.jm,
                  "Slot 0 of TaskManager tmx is allocated to job " OTHER_JOB
                  " (allocation " ALLOC_D ") as its report shows");
    cf_expect_app(x.jm, "Slot report of TaskManager tmx: 2 slots, 0 free");

    fx_heartbeat_report(&x, NULL, NULL, NULL, NULL);
    cf_expect_app(x.jm,
                  "Slot 0 of TaskManager tmx is free as its report shows "
                  "(allocation " ALLOC_D " of job " OTHER_JOB " is forgotten)");
    cf_expect_app(x.jm, "Slot 1 of TaskManager tmx is free as its report shows "
                        "(allocation " ALLOC_B " of job " JOB " is forgotten)");
    cf_expect_app(x.jm, "Slot report of TaskManager tmx: 2 slots, 2 free");
    fx_expect_request(&x, 0, 3, e);
    assert_string_not_equal(a, c);
    assert_string_not_equal(c, e);
    fx_end(&x);
}

/* A report shows slot 0 held by an allocation of the job that this
 * ResourceManager did not request (the earlier run's, as after a
 * leadership change): it occupies the slot but does not count, and the
 * job is asked for slot 1 at once. */
static void test_allocation_of_an_earlier_run_does_not_count(void **state)
{
    (void)state;
    static table_fx_t x;
    fx_start(&x, false);
    fx_heartbeat_report(&x, ALLOC_B, JOB, NULL, NULL);
    cf_expect_app(x.jm, "Slot 0 of TaskManager tmx is allocated to job " JOB
                        " (allocation " ALLOC_B ") as its report shows");
    cf_expect_app(x.jm, "Slot report of TaskManager tmx: 2 slots, 1 free");
    fx_declare(&x, 1);
    char c[33];
    fx_expect_request(&x, 1, 1, c);
    fx_end(&x);
}

/* A new JobMaster of the job (another token) registers while slot 0 is
 * held by the allocation requested for the earlier one: that slot stays
 * occupied but no longer counts, so slot 1 is requested for the new
 * JobMaster at once; slot 0 is not requested until a report shows it
 * free (and then only when the job needs it). */
static void test_new_jobmaster_does_not_count_the_earlier_slots(void **state)
{
    (void)state;
    static table_fx_t x;
    fx_start(&x, false);
    fx_declare(&x, 1);
    char a[33], c[33], e[33];
    fx_expect_request(&x, 0, 1, a);
    fx_expect_granted(&x, a);
    fx_heartbeat_report(&x, a, JOB, NULL, NULL);
    cf_expect_app(x.jm, "Slot report of TaskManager tmx: 2 slots, 1 free");

    static fl_fencing_token_t token2;
    memset(&token2, 9, sizeof token2);
    x.jm2_ep = fx_jobmaster(&x, "jobmaster_fake2", &token2);
    const char *addr1 = fl_rpc_endpoint_address(x.jm_ep);
    const char *addr2 = fl_rpc_endpoint_address(x.jm2_ep);
    Fling__Cluster__JobMasterRegistration jr =
        FLING__CLUSTER__JOB_MASTER_REGISTRATION__INIT;
    jr.job_id = JOB;
    jr.address = (char *)addr2;
    jr.token.data = token2.bytes;
    jr.token.len = 16;
    rm_call_ack(&x, "RegisterJobMaster", &jr.base);
    cf_expect_app(x.jm,
                  "JobMaster of job " JOB " at %s replaces the one at %s; the "
                  "slots of the earlier one no longer count for the job",
                  addr2, addr1);
    cf_expect_app(x.jm, "Registered JobMaster of job " JOB " at %s", addr2);
    fx_declare(&x, 1);
    fx_expect_request(&x, 1, 2, c);
    fx_expect_jm_address(&x, 1, addr2);
    fx_expect_granted(&x, c);

    /* Slot 0 still held: nothing requested before the next line. */
    fx_heartbeat_report(&x, a, JOB, c, JOB);
    cf_expect_app(x.jm, "Slot report of TaskManager tmx: 2 slots, 0 free");
    fx_heartbeat_report(&x, NULL, NULL, c, JOB);
    cf_expect_app(x.jm,
                  "Slot 0 of TaskManager tmx is free as its report shows "
                  "(allocation %s of job " JOB " is forgotten)",
                  a);
    cf_expect_app(x.jm, "Slot report of TaskManager tmx: 2 slots, 1 free");
    /* The job has its slot: slot 0 is requested when it needs two. */
    fx_declare(&x, 2);
    fx_expect_request(&x, 0, 3, e);
    fx_expect_jm_address(&x, 2, addr2);
    fx_end(&x);
}

/* A report showing the slot free while its RequestSlot is in flight, or
 * within GRACE_MS of its reply, may predate the request: the slot stays
 * the job's. Once the grace has passed, the same report frees it. */
static void test_report_keeps_a_slot_requested(void **state)
{
    (void)state;
    static table_fx_t x;
    fx_start(&x, true);
    fx_declare(&x, 1);
    char a[33], c[33];
    fx_expect_request(&x, 0, 1, a);

    fx_heartbeat_report(&x, NULL, NULL, NULL, NULL);
    /* Nothing logged for it: the next lines are the next report's. */
    fx_heartbeat_report(&x, NULL, NULL, ALLOC_D, OTHER_JOB);
    cf_expect_app(x.jm,
                  "Slot 1 of TaskManager tmx is allocated to job " OTHER_JOB
                  " (allocation " ALLOC_D ") as its report shows");
    cf_expect_app(x.jm, "Slot report of TaskManager tmx: 2 slots, 1 free");

    Fling__Cluster__Ack_Closure closure;
    fl_rpc_call_t *held = fx_take_held(&x, 0, &closure);
    ack(closure, held);
    fx_expect_granted(&x, a);
    /* The grant was logged before the test read it: the grace ends after
     * granted_ms + GRACE_MS at the earliest. */
    uint64_t granted_ms = mono_ms();

    /* The reply came on the ResourceManager's connection, this report on
     * the TaskExecutor's: it may have been built before the request. */
    fx_heartbeat_report(&x, NULL, NULL, ALLOC_D, OTHER_JOB);
    /* Nothing logged for it: the next lines are the next report's. */
    fx_heartbeat_report(&x, NULL, NULL, NULL, NULL);
    cf_expect_app(x.jm,
                  "Slot 1 of TaskManager tmx is free as its report shows "
                  "(allocation " ALLOC_D " of job " OTHER_JOB " is forgotten)");
    cf_expect_app(x.jm, "Slot report of TaskManager tmx: 2 slots, 2 free");
    uint64_t kept_ms = mono_ms();
    if (kept_ms - granted_ms >= GRACE_MS)
        fail_msg("the reports came %llu ms after the grant, not within its "
                 "grace of %d ms (the machine is too slow for this test)",
                 (unsigned long long)(kept_ms - granted_ms), GRACE_MS);

    /* The grace is a duration: wait it out (plus a margin). */
    uint64_t end = granted_ms + GRACE_MS + 100;
    struct timespec ts = {.tv_sec = (time_t)((end - kept_ms) / 1000),
                          .tv_nsec = (long)((end - kept_ms) % 1000) * 1000000};
    nanosleep(&ts, NULL);
    fx_heartbeat_report(&x, NULL, NULL, NULL, NULL);
    cf_expect_app(x.jm,
                  "Slot 0 of TaskManager tmx is free as its report shows "
                  "(allocation %s of job " JOB " is forgotten)",
                  a);
    cf_expect_app(x.jm,
                  "Slot 0 of TaskManager tmx came back free while job " JOB
                  " needs slots; asking that TaskManager for the job "
                  "again in 100 ms");
    fx_expect_request(&x, 0, 2, c);
    assert_string_not_equal(a, c);
    fx_end(&x);
}

/* A report shows the slot of the job's RequestSlot in flight taken by
 * another job's allocation and the other slot free: the job has no slot
 * any more and is asked for the free one at once; the refusal of the
 * displaced request changes nothing. */
static void test_report_displacing_a_request_asks_again(void **state)
{
    (void)state;
    static table_fx_t x;
    fx_start(&x, true);
    fx_declare(&x, 1);
    char a[33], c[33];
    fx_expect_request(&x, 0, 1, a);

    fx_heartbeat_report(&x, ALLOC_D, OTHER_JOB, NULL, NULL);
    cf_expect_app(x.jm,
                  "Slot 0 of TaskManager tmx is allocated to job " OTHER_JOB
                  " (allocation " ALLOC_D ") as its report shows");
    cf_expect_app(x.jm, "Slot report of TaskManager tmx: 2 slots, 1 free");
    fx_expect_request(&x, 1, 2, c);

    fl_rpc_call_t *held = fx_take_held(&x, 0, NULL);
    fl_rpc_fail(held, FL_ESTATE, "slot 0 is taken");
    cf_expect_app(x.jm,
                  "Slot request %s to TaskManager tmx for job " JOB
                  " failed: slot 0 is taken",
                  a);
    /* Slot 1 is the job's: a report showing it held is the next line. */
    fx_heartbeat_report(&x, ALLOC_D, OTHER_JOB, c, JOB);
    cf_expect_app(x.jm, "Slot report of TaskManager tmx: 2 slots, 0 free");
    fx_end(&x);
}

/* The fake TaskExecutor says slot 0 is available again right after each
 * request, as after a JobMaster declined it: the next request waits 100,
 * 200, 400 then 800 ms; a report showing the slot held resets the
 * hold-off to 100 ms, and so do the job declaring its needs again and the
 * TaskExecutor registering again from a new process. */
static void test_declined_slot_backs_off(void **state)
{
    (void)state;
    static table_fx_t x;
    fx_start(&x, false);
    fx_declare(&x, 1);
    char a[33];
    size_t n = 1;
    fx_expect_request(&x, 0, n, a);
    fx_expect_granted(&x, a);
    enum { HELD = 0, DECLARED = -1, REGISTERED = -2 };
    static const int64_t waits[] = {100, 200,        400,      800, HELD,
                                    100, 200,        DECLARED, 100, 200,
                                    400, REGISTERED, 100};
    for (size_t k = 0; k < sizeof waits / sizeof waits[0]; k++) {
        if (waits[k] == HELD) { /* the hold-off is reset */
            fx_heartbeat_report(&x, a, JOB, NULL, NULL);
            cf_expect_app(x.jm,
                          "Slot report of TaskManager tmx: 2 slots, 1 free");
            continue;
        }
        if (waits[k] == DECLARED) { /* as after the loss of a TaskManager */
            fx_declare(&x, 1);
            continue;
        }
        if (waits[k] == REGISTERED) { /* a new process under the same id */
            fx_register(&x, "session2");
            fx_expect_request(&x, 0, ++n, a);
            fx_expect_granted(&x, a);
            continue;
        }
        Fling__Cluster__SlotAvailable sa = FLING__CLUSTER__SLOT_AVAILABLE__INIT;
        sa.resource_id = "tmx";
        sa.instance_id = x.instance_id;
        sa.slot_index = 0;
        sa.allocation_id = a;
        uint64_t t0 = mono_ms();
        rm_call_ack(&x, "NotifySlotAvailable", &sa.base);
        cf_expect_app(x.jm, "Slot 0 of TaskManager tmx is available again");
        cf_expect_app(x.jm,
                      "Slot 0 of TaskManager tmx came back free while job " JOB
                      " needs slots; asking that TaskManager for the job "
                      "again in %lld ms",
                      (long long)waits[k]);
        fx_expect_request(&x, 0, ++n, a);
        fx_expect_granted(&x, a);
        pthread_mutex_lock(&x.te.mu);
        uint64_t waited = x.te.req[n - 1].at_ms - t0;
        pthread_mutex_unlock(&x.te.mu);
        if (waited < (uint64_t)waits[k])
            fail_msg("request %zu came %llu ms after the slot was free, "
                     "before its hold-off of %lld ms",
                     n, (unsigned long long)waited, (long long)waits[k]);
    }
    fx_end(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_heartbeat_report_overrides_the_table),
        CF_TEST(test_report_keeps_a_slot_requested),
        CF_TEST(test_report_displacing_a_request_asks_again),
        CF_TEST(test_declined_slot_backs_off),
        CF_TEST(test_allocation_of_an_earlier_run_does_not_count),
        CF_TEST(test_new_jobmaster_does_not_count_the_earlier_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
