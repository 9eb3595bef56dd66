/*
 * fake_jm.h - a JobMaster that a test plays with the gateways: it answers
 * a TaskExecutor's registration as "jobmaster_fake", accepts every slot
 * offer (or, with hold, holds the first one back and refuses the others),
 * records the state updates (and fails the next lose_finals final ones),
 * keeps the last DeploymentReport of a heartbeat answer, and takes the
 * ResourceManager's heartbeat requests without ever answering them. Its
 * handlers run on its endpoint's main thread; the fields under mu are read by
 * the test thread.
 */
#ifndef FAKE_JM_H
#define FAKE_JM_H

#include <limits.h>
#include <pthread.h>

#include "cluster_procs.h"
#include "jobmaster.pb-c.h"

#define FJ_ID "jobmaster_fake"
#define FJ_XS(x) FLING__CLUSTER__EXECUTION_STATE__STATE__##x

typedef struct fake_jm {
    fl_rpc_service_t *svc;
    fl_rpc_endpoint_t *ep;
    fl_fencing_token_t token;
    bool hold;            /* hold the first offer back, refuse the others */
    fl_rpc_call_t *offer; /* the offer held back, failed by fj_end */
    pthread_mutex_t mu;
    unsigned lose_finals; /* fail this many final updates (UINT_MAX: all) */
    int states[16];       /* the states updated, in the order they came */
    size_t nstates;
    size_t noffers;
    Fling__Cluster__DeploymentReport *report; /* the last one */
    fl_test_latch_t *offered;                 /* an OfferSlots came */
    fl_test_latch_t *acked_final;             /* a final state was taken */
    fl_test_latch_t *three_states;            /* three state updates came */
    fl_test_latch_t *two_finals;              /* two final updates came */
    fl_test_latch_t *rm_beats;                /* the RM asked a heartbeat */
    fl_test_latch_t *reports;                 /* fj_await_report */
} fake_jm_t;

static void fj_ack(Fling__Cluster__Ack_Closure closure, void *call)
{
    Fling__Cluster__Ack a = FLING__CLUSTER__ACK__INIT;
    closure(&a, call);
}

static void fj_register_task_manager(
    Fling__Cluster__JobMasterGateway_Service *svc,
    const Fling__Cluster__TaskManagerRegistration *req,
    Fling__Cluster__TaskManagerRegistrationReply_Closure closure, void *call)
{
    (void)svc;
    (void)req;
    Fling__Cluster__TaskManagerRegistrationReply r =
        FLING__CLUSTER__TASK_MANAGER_REGISTRATION_REPLY__INIT;
    r.jm_resource_id = FJ_ID;
    closure(&r, call);
}

static void fj_offer_slots(Fling__Cluster__JobMasterGateway_Service *svc,
                           const Fling__Cluster__SlotOffers *req,
                           Fling__Cluster__SlotOffers_Closure closure,
                           void *call)
{
    (void)svc;
    fake_jm_t *f = fl_rpc_call_state(call);
    pthread_mutex_lock(&f->mu);
    size_t n = f->noffers++;
    pthread_mutex_unlock(&f->mu);
    if (n == 0)
        fl_test_latch_count_down(f->offered);
    if (!f->hold) {
        Fling__Cluster__SlotOffers r = *req;
        closure(&r, call);
    } else if (n == 0) {
        f->offer = fl_rpc_defer(call);
    } else {
        fl_rpc_fail(call, FL_ESTATE, "one offer only");
    }
}

static void
fj_update_task_execution_state(Fling__Cluster__JobMasterGateway_Service *svc,
                               const Fling__Cluster__TaskExecutionState *req,
                               Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    fake_jm_t *f = fl_rpc_call_state(call);
    bool final = req->state == FJ_XS(FINISHED) || req->state == FJ_XS(FAILED) ||
                 req->state == FJ_XS(CANCELED);
    pthread_mutex_lock(&f->mu);
    if (f->nstates < 16)
        f->states[f->nstates++] = req->state;
    bool lose = final && f->lose_finals > 0;
    if (lose && f->lose_finals != UINT_MAX)
        f->lose_finals--;
    pthread_mutex_unlock(&f->mu);
    fl_test_latch_count_down(f->three_states);
    if (final)
        fl_test_latch_count_down(f->two_finals);
    if (lose) {
        fl_rpc_fail(call, FL_EUNREACHABLE, "the test lost it");
        return;
    }
    fj_ack(closure, call);
    if (final)
        fl_test_latch_count_down(f->acked_final);
}

static void fj_disconnect_task_manager(
    Fling__Cluster__JobMasterGateway_Service *svc,
    const Fling__Cluster__DisconnectTaskManagerFromJobMaster *req,
    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    (void)req;
    fj_ack(closure, call);
}

static void fj_cancel(Fling__Cluster__JobMasterGateway_Service *svc,
                      const Fling__Cluster__Ack *req,
                      Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    (void)req;
    fj_ack(closure, call);
}

static void
fj_heartbeat_from_task_manager(Fling__Cluster__JobMasterGateway_Service *svc,
                               const Fling__Cluster__Heartbeat *req,
                               Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    fake_jm_t *f = fl_rpc_call_state(call);
    Fling__Cluster__DeploymentReport *r =
        fling__cluster__deployment_report__unpack(NULL, req->payload.len,
                                                  req->payload.data);
    fj_ack(closure, call);
    pthread_mutex_lock(&f->mu);
    if (f->report != NULL)
        fling__cluster__deployment_report__free_unpacked(f->report, NULL);
    f->report = r;
    if (f->reports != NULL)
        fl_test_latch_count_down(f->reports);
    pthread_mutex_unlock(&f->mu);
}

static void fj_heartbeat_from_resource_manager(
    Fling__Cluster__JobMasterGateway_Service *svc,
    const Fling__Cluster__Heartbeat *req, Fling__Cluster__Ack_Closure closure,
    void *call)
{
    (void)svc;
    (void)req;
    fake_jm_t *f = fl_rpc_call_state(call);
    fj_ack(closure, call); /* and never answered */
    fl_test_latch_count_down(f->rm_beats);
}

/* fj_start_opts starts the fake on a service of its own, its fencing
 * token all bytes b (another JobMaster of the same job: another b); hold:
 * it holds the first offer back. */
static inline void fj_start_opts(fake_jm_t *f, uint8_t b, bool hold)
{
    memset(f, 0, sizeof *f);
    f->hold = hold;
    pthread_mutex_init(&f->mu, NULL);
    f->offered = fl_test_latch_alloc(1);
    f->acked_final = fl_test_latch_alloc(1);
    f->three_states = fl_test_latch_alloc(3);
    f->two_finals = fl_test_latch_alloc(2);
    f->rm_beats = fl_test_latch_alloc(1);
    f->token = fl_test_token(b);
    fl_rpc_service_opts_t so = {.bind_host = "127.0.0.1", .port = "0"};
    assert_fl_ok(fl_rpc_service_alloc(&so, &f->svc));
    static Fling__Cluster__JobMasterGateway_Service impl =
        FLING__CLUSTER__JOB_MASTER_GATEWAY__INIT(fj_);
    static ProtobufCService *const services[] = {&impl.base};
    fl_rpc_endpoint_opts_t eo = {.id = FJ_ID,
                                 .services = services,
                                 .nservices = 1,
                                 .state = f,
                                 .fencing_token = &f->token};
    assert_fl_ok(fl_rpc_endpoint_create(f->svc, &eo, &f->ep));
    assert_fl_ok(fl_rpc_endpoint_start(f->ep));
}

/* fj_start_token starts the fake with the token all bytes b. */
static inline void fj_start_token(fake_jm_t *f, uint8_t b)
{
    fj_start_opts(f, b, false);
}

/* fj_start starts the fake with the token all 9s. */
static inline void fj_start(fake_jm_t *f)
{
    fj_start_opts(f, 9, false);
}

/* fj_arm_report makes fj_await_report wait for the next report; call it
 * before what causes that report. */
static inline void fj_arm_report(fake_jm_t *f)
{
    fl_test_latch_t *l = fl_test_latch_alloc(1);
    pthread_mutex_lock(&f->mu);
    fl_test_latch_t *old = f->reports;
    f->reports = l;
    pthread_mutex_unlock(&f->mu);
    fl_test_latch_free(old);
}

/* fj_await_report waits for the report armed and returns it (f's: valid
 * until the next report; the TaskExecutor answers only the requests). */
static inline const Fling__Cluster__DeploymentReport *
fj_await_report(fake_jm_t *f)
{
    pthread_mutex_lock(&f->mu);
    fl_test_latch_t *l = f->reports;
    pthread_mutex_unlock(&f->mu);
    fl_test_latch_await(l);
    pthread_mutex_lock(&f->mu);
    const Fling__Cluster__DeploymentReport *r = f->report;
    pthread_mutex_unlock(&f->mu);
    if (r == NULL)
        fail_msg("the heartbeat answer carried no DeploymentReport");
    return r;
}

/* fj_end stops the fake (failing an offer it holds) and frees it. */
static inline void fj_end(fake_jm_t *f)
{
    if (f->offer != NULL)
        fl_rpc_fail(f->offer, FL_ECANCELED, "the test is over");
    fl_test_endpoint_end(f->ep);
    fl_rpc_service_free(f->svc);
    if (f->report != NULL)
        fling__cluster__deployment_report__free_unpacked(f->report, NULL);
    fl_test_latch_free(f->offered);
    fl_test_latch_free(f->acked_final);
    fl_test_latch_free(f->three_states);
    fl_test_latch_free(f->two_finals);
    fl_test_latch_free(f->rm_beats);
    fl_test_latch_free(f->reports);
    pthread_mutex_destroy(&f->mu);
}

#endif
