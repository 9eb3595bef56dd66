/*
 * fake_te.h - a TaskExecutor that a test plays with the gateways, for the
 * JobMaster's side of deployments and heartbeats: it registers at a
 * JobManager's ResourceManager with one slot, takes a slot request,
 * registers at the job's JobMaster and offers the slot there, records the
 * SubmitTask and CancelTask calls, and answers both heartbeats, the
 * JobMaster's with a DeploymentReport the test shapes (report_mode_t).
 * It runs no task. Its handlers run on its endpoint's main thread; the
 * fields under mu are read by the test thread.
 */
#ifndef FAKE_TE_H
#define FAKE_TE_H

#include <pthread.h>

#include "cluster_procs.h"
#include "jobmaster.pb-c.h"
#include "resourcemanager.pb-c.h"
#include "taskexecutor.pb-c.h"

#define FT_ID "fake"
#define FT_MAX 16
#define FT_HUGE 1025

/* What the fake's deployment reports say. */
typedef enum report_mode {
    /* The last attempt submitted, and the count of the request. */
    REPORT_HONEST,
    /* No attempt. */
    REPORT_NONE,
    /* REPORT_HONEST and attempt 7 of vertex 0, which nobody deployed. */
    REPORT_EXTRA,
    /* Bytes that are no DeploymentReport. */
    REPORT_GARBAGE,
    /* FT_HUGE times attempt 7 of vertex 0, nothing else. */
    REPORT_HUGE,
} report_mode_t;

typedef struct fake_te {
    fl_rpc_service_t *svc;
    fl_rpc_endpoint_t *ep;
    fl_rpc_gateway_t *rm;
    char instance_id[64];
    pthread_mutex_t mu;
    report_mode_t mode;
    /* Counted one behind the request's when true (a stale report). */
    bool lag;
    /* The last attempt is reported ending (its final state unsent). */
    bool ending;
    /* Hold the next SubmitTask's answer back (answered by ft_release). */
    bool hold_submit;
    fl_rpc_call_t *held;
    Fling__Cluster__Ack_Closure held_closure;
    fl_rpc_gateway_t *jm; /* the JobMaster's, once registered */
    char job_id[33], alloc[33], jm_address[256];
    fl_fencing_token_t jm_token;
    uint64_t submitted;         /* of the JobMaster's last request */
    uint32_t attempts[FT_MAX];  /* of vertex 0, as submitted */
    char names[FT_MAX][128];    /* their task names */
    size_t nsubmits;            /* SubmitTask calls */
    uint32_t cancelled[FT_MAX]; /* CancelTask's attempts */
    size_t ncancels;
    fl_test_latch_t *requested; /* the RequestSlot came */
    fl_test_latch_t *submit[4]; /* the first, second ... SubmitTask came */
    fl_test_latch_t *cancel;    /* a CancelTask came */
    fl_test_latch_t *reports;   /* ft_await_reports: counts them */
    /* The JobMaster's heartbeats are acknowledged, never answered. */
    bool silent;
    char disconnects[2][1024]; /* DisconnectJobManager: job id, cause */
    size_t ndisconnects;
    fl_test_latch_t *disconnect[2]; /* the first, second came */
} fake_te_t;

static void ft_ack(Fling__Cluster__Ack_Closure closure, void *call)
{
    Fling__Cluster__Ack a = FLING__CLUSTER__ACK__INIT;
    closure(&a, call);
}

/* Sends a heartbeat answer through gw's method (payload may be NULL). */
static void ft_beat(fl_rpc_gateway_t *gw, const ProtobufCServiceDescriptor *d,
                    const char *target, const uint8_t *payload, size_t len)
{
    Fling__Cluster__Heartbeat hb = FLING__CLUSTER__HEARTBEAT__INIT;
    hb.origin = FT_ID;
    hb.target = (char *)target;
    hb.payload.data = (uint8_t *)payload;
    hb.payload.len = len;
    fl_future_t *f = NULL;
    fl_rpc_call(gw,
                (unsigned)fl_rpc_method_index(d, "HeartbeatFromTaskManager"),
                &hb.base, 0, &f);
    fl_future_release(f);
}

static void ft_heartbeat_from_resource_manager(
    Fling__Cluster__TaskExecutorGateway_Service *svc,
    const Fling__Cluster__Heartbeat *req, Fling__Cluster__Ack_Closure closure,
    void *call)
{
    (void)svc;
    fake_te_t *t = fl_rpc_call_state(call);
    ft_ack(closure, call);
    ft_beat(t->rm, &fling__cluster__resource_manager_gateway__descriptor,
            req->origin, NULL, 0);
}

static void ft_disconnect_resource_manager(
    Fling__Cluster__TaskExecutorGateway_Service *svc,
    const Fling__Cluster__DisconnectResourceManagerRequest *req,
    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    (void)req;
    ft_ack(closure, call);
}

static void ft_request_slot(Fling__Cluster__TaskExecutorGateway_Service *svc,
                            const Fling__Cluster__SlotRequest *req,
                            Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    fake_te_t *t = fl_rpc_call_state(call);
    pthread_mutex_lock(&t->mu);
    snprintf(t->job_id, sizeof t->job_id, "%s", req->job_id);
    snprintf(t->alloc, sizeof t->alloc, "%s", req->allocation_id);
    snprintf(t->jm_address, sizeof t->jm_address, "%s", req->jm_address);
    memcpy(t->jm_token.bytes, req->jm_token.data, 16);
    pthread_mutex_unlock(&t->mu);
    ft_ack(closure, call);
    fl_test_latch_count_down(t->requested);
}

static void ft_submit_task(Fling__Cluster__TaskExecutorGateway_Service *svc,
                           const Fling__Cluster__TaskDeploymentDescriptor *req,
                           Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    fake_te_t *t = fl_rpc_call_state(call);
    pthread_mutex_lock(&t->mu);
    size_t n = t->nsubmits;
    if (n < FT_MAX) {
        t->attempts[n] = req->attempt;
        snprintf(t->names[n], sizeof t->names[n], "%s", req->name);
        t->nsubmits++;
    }
    bool hold = t->hold_submit;
    if (hold) {
        t->held = fl_rpc_defer(call);
        t->held_closure = closure;
    }
    pthread_mutex_unlock(&t->mu);
    if (!hold)
        ft_ack(closure, call);
    if (n < 4)
        fl_test_latch_count_down(t->submit[n]);
}

static void ft_cancel_task(Fling__Cluster__TaskExecutorGateway_Service *svc,
                           const Fling__Cluster__ExecutionAttempt *req,
                           Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    fake_te_t *t = fl_rpc_call_state(call);
    pthread_mutex_lock(&t->mu);
    if (t->ncancels < FT_MAX && req->vertex == 0 &&
        strcmp(req->job_id, t->job_id) == 0)
        t->cancelled[t->ncancels++] = req->attempt;
    pthread_mutex_unlock(&t->mu);
    ft_ack(closure, call);
    fl_test_latch_count_down(t->cancel);
}

static void ft_free_slot(Fling__Cluster__TaskExecutorGateway_Service *svc,
                         const Fling__Cluster__FreeSlotRequest *req,
                         Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    (void)req;
    ft_ack(closure, call);
}

static void ft_disconnect_job_manager(
    Fling__Cluster__TaskExecutorGateway_Service *svc,
    const Fling__Cluster__DisconnectJobManagerFromTaskExecutor *req,
    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    fake_te_t *t = fl_rpc_call_state(call);
    pthread_mutex_lock(&t->mu);
    size_t n = t->ndisconnects;
    if (n < 2) {
        snprintf(t->disconnects[n], sizeof t->disconnects[n], "%s: %s",
                 req->job_id, req->cause);
        t->ndisconnects++;
    }
    pthread_mutex_unlock(&t->mu);
    ft_ack(closure, call);
    if (n < 2)
        fl_test_latch_count_down(t->disconnect[n]);
}

/* Takes the request's count, then answers with the report of t->mode. */
static void
ft_heartbeat_from_job_manager(Fling__Cluster__TaskExecutorGateway_Service *svc,
                              const Fling__Cluster__Heartbeat *req,
                              Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    fake_te_t *t = fl_rpc_call_state(call);
    Fling__Cluster__JobMasterHeartbeatPayload *p =
        fling__cluster__job_master_heartbeat_payload__unpack(
            NULL, req->payload.len, req->payload.data);
    ft_ack(closure, call);
    pthread_mutex_lock(&t->mu);
    if (p != NULL)
        t->submitted = p->submitted;
    Fling__Cluster__DeployedAttempt a[2] = {
        FLING__CLUSTER__DEPLOYED_ATTEMPT__INIT,
        FLING__CLUSTER__DEPLOYED_ATTEMPT__INIT};
    Fling__Cluster__DeployedAttempt **pa = calloc(FT_HUGE, sizeof *pa);
    uint8_t *buf = malloc(16 * FT_HUGE);
    assert_non_null(pa);
    assert_non_null(buf);
    pa[0] = &a[0];
    for (size_t i = 1; i < FT_HUGE; i++)
        pa[i] = &a[1];
    Fling__Cluster__DeploymentReport r =
        FLING__CLUSTER__DEPLOYMENT_REPORT__INIT;
    r.job_id = t->job_id;
    r.submitted = t->lag && t->submitted > 0 ? t->submitted - 1 : t->submitted;
    r.attempts = pa;
    if (t->mode != REPORT_NONE && t->mode != REPORT_HUGE && t->nsubmits > 0) {
        a[r.n_attempts].ending = t->ending;
        a[r.n_attempts++].attempt = t->attempts[t->nsubmits - 1];
    }
    if (t->mode == REPORT_EXTRA || t->mode == REPORT_HUGE)
        a[r.n_attempts++].attempt = 7;
    if (t->mode == REPORT_HUGE) {
        a[1] = a[0];
        r.n_attempts = FT_HUGE;
    }
    size_t len = fling__cluster__deployment_report__pack(&r, buf);
    if (t->mode == REPORT_GARBAGE) /* a field 0: never valid */
        len = (size_t)snprintf((char *)buf, 16, "%c%c", 0x00, 0x01);
    fl_rpc_gateway_t *jm = t->silent ? NULL : t->jm;
    pthread_mutex_unlock(&t->mu);
    free(pa);
    if (p != NULL)
        fling__cluster__job_master_heartbeat_payload__free_unpacked(p, NULL);
    if (jm != NULL)
        ft_beat(jm, &fling__cluster__job_master_gateway__descriptor,
                req->origin, buf, len);
    free(buf);
    if (jm == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    if (t->reports != NULL)
        fl_test_latch_count_down(t->reports);
    pthread_mutex_unlock(&t->mu);
}

/* Calls method of d on gw and returns the reply (the caller frees it with
 * protobuf_c_message_free_unpacked); fails the test on a failure. */
static ProtobufCMessage *ft_call(fl_rpc_gateway_t *gw,
                                 const ProtobufCServiceDescriptor *d,
                                 const char *method,
                                 const ProtobufCMessage *req)
{
    ProtobufCMessage *reply = NULL;
    int rc = fl_rpc_call_sync(gw, (unsigned)fl_rpc_method_index(d, method), req,
                              5000, &reply);
    if (rc != FL_OK)
        fail_msg("%s failed: %s", method, fl_rpc_last_message());
    return reply;
}

/*
 * ft_start starts the fake on its own service and registers it at the
 * ResourceManager of the JobManager jm on 127.0.0.1:port with one free
 * slot; returns once jm said so.
 */
static void ft_start(fake_te_t *t, cf_proc_t *jm, int port, report_mode_t mode)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    t->mode = mode;
    t->requested = fl_test_latch_alloc(1);
    for (size_t i = 0; i < 4; i++)
        t->submit[i] = fl_test_latch_alloc(1);
    t->cancel = fl_test_latch_alloc(1);
    for (size_t i = 0; i < 2; i++)
        t->disconnect[i] = fl_test_latch_alloc(1);
    fl_rpc_service_opts_t so = {.bind_host = "127.0.0.1", .port = "0"};
    assert_fl_ok(fl_rpc_service_alloc(&so, &t->svc));
    static Fling__Cluster__TaskExecutorGateway_Service impl =
        FLING__CLUSTER__TASK_EXECUTOR_GATEWAY__INIT(ft_);
    static ProtobufCService *const services[] = {&impl.base};
    fl_rpc_endpoint_opts_t eo = {
        .id = "taskexecutor", .services = services, .nservices = 1, .state = t};
    assert_fl_ok(fl_rpc_endpoint_create(t->svc, &eo, &t->ep));
    assert_fl_ok(fl_rpc_endpoint_start(t->ep));
    char rm[128];
    snprintf(rm, sizeof rm, "fling.tcp://127.0.0.1:%d/resourcemanager_1", port);
    fl_fencing_token_t zero = fl_test_token(0);
    t->rm = fl_test_connect(
        t->svc, rm, &fling__cluster__resource_manager_gateway__descriptor,
        &zero);
    const ProtobufCServiceDescriptor *d =
        &fling__cluster__resource_manager_gateway__descriptor;
    Fling__Cluster__TaskExecutorRegistration reg =
        FLING__CLUSTER__TASK_EXECUTOR_REGISTRATION__INIT;
    reg.address = (char *)fl_rpc_endpoint_address(t->ep);
    reg.resource_id = FT_ID;
    reg.session_id = "0123456789abcdef0123456789abcdef";
    reg.num_slots = 1;
    /* The keys that must agree, with the values of CF_FAST. */
    static const char *const fast[] = {"heartbeat.interval=200 ms",
                                       "heartbeat.timeout=3 s"};
    static const char *const keys[] = {
        FL_CONFIG_RPC_FRAMESIZE, FL_CONFIG_HEARTBEAT_INTERVAL,
        FL_CONFIG_HEARTBEAT_TIMEOUT, FL_CONFIG_HA_CLUSTER_ID};
    fl_config_t *cfg = fl_config_alloc();
    char err[256], values[4][128];
    assert_fl_ok(fl_config_apply_overrides(cfg, fast, 2, err, sizeof err));
    Fling__Cluster__ConfigEntry e[4], *pe[4];
    for (size_t i = 0; i < 4; i++) {
        fl_config_get_text(cfg, keys[i], values[i], sizeof values[i]);
        Fling__Cluster__ConfigEntry x = FLING__CLUSTER__CONFIG_ENTRY__INIT;
        x.key = (char *)keys[i];
        x.value = values[i];
        e[i] = x;
        pe[i] = &e[i];
    }
    fl_config_free(cfg);
    reg.cluster_config = pe;
    reg.n_cluster_config = 4;
    Fling__Cluster__TaskExecutorRegistrationReply *rr =
        (Fling__Cluster__TaskExecutorRegistrationReply *)ft_call(
            t->rm, d, "RegisterTaskExecutor", &reg.base);
    if (rr->outcome !=
        FLING__CLUSTER__TASK_EXECUTOR_REGISTRATION_REPLY__OUTCOME__SUCCESS)
        fail_msg("the fake's registration was refused: %s", rr->reason);
    snprintf(t->instance_id, sizeof t->instance_id, "%s", rr->instance_id);
    protobuf_c_message_free_unpacked(&rr->base, NULL);
    cf_expect_app(jm, "Registered TaskManager " FT_ID " at %s with 1 slots",
                  fl_rpc_endpoint_address(t->ep));
    Fling__Cluster__SlotStatus st = FLING__CLUSTER__SLOT_STATUS__INIT;
    Fling__Cluster__SlotStatus *pst = &st;
    Fling__Cluster__SlotReport rep = FLING__CLUSTER__SLOT_REPORT__INIT;
    rep.slots = &pst;
    rep.n_slots = 1;
    Fling__Cluster__SlotReportRequest sr =
        FLING__CLUSTER__SLOT_REPORT_REQUEST__INIT;
    sr.resource_id = FT_ID;
    sr.instance_id = t->instance_id;
    sr.report = &rep;
    protobuf_c_message_free_unpacked(
        ft_call(t->rm, d, "SendSlotReport", &sr.base), NULL);
    cf_expect_app(jm, "Slot report of TaskManager " FT_ID ": 1 slots, 1 free");
}

/*
 * ft_take_slot waits for the slot request of a submitted job, registers
 * at its JobMaster and offers the slot, which must be accepted; returns
 * once the first SubmitTask came.
 */
static void ft_take_slot(fake_te_t *t)
{
    fl_test_latch_await(t->requested);
    const ProtobufCServiceDescriptor *d =
        &fling__cluster__job_master_gateway__descriptor;
    fl_rpc_gateway_t *jm =
        fl_test_connect(t->svc, t->jm_address, d, &t->jm_token);
    Fling__Cluster__TaskManagerRegistration reg =
        FLING__CLUSTER__TASK_MANAGER_REGISTRATION__INIT;
    reg.job_id = t->job_id;
    reg.address = (char *)fl_rpc_endpoint_address(t->ep);
    reg.resource_id = FT_ID;
    reg.session_id = "0123456789abcdef0123456789abcdef";
    protobuf_c_message_free_unpacked(
        ft_call(jm, d, "RegisterTaskManager", &reg.base), NULL);
    pthread_mutex_lock(&t->mu);
    t->jm = jm;
    pthread_mutex_unlock(&t->mu);
    Fling__Cluster__SlotOffer o = FLING__CLUSTER__SLOT_OFFER__INIT;
    o.allocation_id = t->alloc;
    Fling__Cluster__SlotOffer *po = &o;
    Fling__Cluster__SlotOffers offers = FLING__CLUSTER__SLOT_OFFERS__INIT;
    offers.resource_id = FT_ID;
    offers.offers = &po;
    offers.n_offers = 1;
    Fling__Cluster__SlotOffers *acc = (Fling__Cluster__SlotOffers *)ft_call(
        jm, d, "OfferSlots", &offers.base);
    assert_int_equal(1, acc->n_offers);
    protobuf_c_message_free_unpacked(&acc->base, NULL);
    fl_test_latch_await(t->submit[0]);
}

/* ft_release answers the SubmitTask held back, and holds no more. */
static inline void ft_release(fake_te_t *t)
{
    pthread_mutex_lock(&t->mu);
    fl_rpc_call_t *call = t->held;
    t->held = NULL;
    t->hold_submit = false;
    pthread_mutex_unlock(&t->mu);
    ft_ack(t->held_closure, call);
}

/* ft_await_reports returns once n more reports went to the JobMaster
 * (each after the request it answers was handled). */
static inline void ft_await_reports(fake_te_t *t, uint64_t n)
{
    fl_test_latch_t *l = fl_test_latch_alloc(n);
    pthread_mutex_lock(&t->mu);
    fl_test_latch_t *old = t->reports;
    t->reports = l;
    pthread_mutex_unlock(&t->mu);
    fl_test_latch_free(old);
    fl_test_latch_await(l);
}

/* ft_end stops the fake and frees it. */
static void ft_end(fake_te_t *t)
{
    if (t->held != NULL)
        fl_rpc_fail(t->held, FL_ECANCELED, "the test is over");
    /* Ended first: its handlers call through the gateways. */
    fl_test_endpoint_end(t->ep);
    fl_rpc_gateway_free(t->rm);
    fl_rpc_gateway_free(t->jm);
    fl_rpc_service_free(t->svc);
    fl_test_latch_free(t->requested);
    for (size_t i = 0; i < 4; i++)
        fl_test_latch_free(t->submit[i]);
    fl_test_latch_free(t->cancel);
    for (size_t i = 0; i < 2; i++)
        fl_test_latch_free(t->disconnect[i]);
    fl_test_latch_free(t->reports);
    pthread_mutex_destroy(&t->mu);
}

#endif
