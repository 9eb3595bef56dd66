/*
 * jobs.c - the TaskExecutor's slots and job leader service
 * (taskexecutor_int.h; contract section 4 steps 13-15, 19-20): the
 * ResourceManager gives a slot to a job (requestSlot); the TaskExecutor
 * reserves it, registers at the job's JobMaster with its token (the
 * retrying registration, once per job) and offers the slot; accepted slots
 * become active, declined ones are freed, and so is a slot still inactive
 * after pekko.ask.timeout (Flink's taskmanager.slot.timeout default). A
 * freed slot is reported available to the ResourceManager; a job without
 * slots here is left (disconnectTaskManager). Its heartbeat answers to a
 * JobMaster carry the job's deployment report (step 16).
 *
 * A job's JobMaster here is the one of the fencing token its slots were
 * requested with. A slot request with another token (the job recovered
 * under a new JobMaster, whose attempts count from #0 again) first frees
 * the earlier one's slots and leaves it; the states of its tasks still
 * ending are dropped, never sent to the new one (tasks.c).
 *
 * Its log lines (component app, level info):
 *   Slot <i> allocated to job <id> (allocation <a>)
 *   Registered at the JobMaster of job <id>
 *   Slot <i> freed: <cause>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heartbeat_rpc.h"
#include "jobmaster.pb-c.h"
#include "resourcemanager.pb-c.h"
#include "taskexecutor_int.h"

typedef struct tm_job {
    struct tm_job *next;
    char job_id[33];
    char address[ADDR_MAX];
    fl_fencing_token_t token;
    fl_rpc_gateway_t *gw; /* once connected */
    bool registered;
    fl_registration_t *reg; /* the registration at the JobMaster */
    struct jreg_arg {
        tm_te_t *te;
        uint64_t gen;
    } rarg;             /* the registration's arg, as long as the job */
    char jm_id[256];    /* the JobMaster's heartbeat id, once registered */
    uint64_t submitted; /* of the JobMaster's last heartbeat request */
    uint64_t gen; /* tells this job entry's callbacks from a removed one's */
} tm_job_t;

static uint64_t next_gen = 1;

static tm_job_t *job_find(const tm_te_t *te, const char *job_id)
{
    for (tm_job_t *j = te->jobs; j != NULL; j = j->next)
        if (strcmp(j->job_id, job_id) == 0)
            return j;
    return NULL;
}

static tm_job_t *job_by_gen(const tm_te_t *te, uint64_t gen)
{
    for (tm_job_t *j = te->jobs; j != NULL; j = j->next)
        if (j->gen == gen)
            return j;
    return NULL;
}

const fl_fencing_token_t *tm__job_token(const tm_te_t *te, const char *job_id)
{
    const tm_job_t *j = job_find(te, job_id);
    return j != NULL ? &j->token : NULL;
}

fl_rpc_gateway_t *tm__job_gateway(tm_te_t *te, const char *job_id,
                                  const fl_fencing_token_t *token, bool *other)
{
    tm_job_t *j = job_find(te, job_id);
    bool same = j != NULL &&
                memcmp(j->token.bytes, token->bytes, sizeof token->bytes) == 0;
    if (other != NULL)
        *other = j != NULL && !same;
    return same && j->registered ? j->gw : NULL;
}

static void job_remove(tm_te_t *te, tm_job_t *job, const char *cause)
{
    for (tm_job_t **p = &te->jobs; *p != NULL; p = &(*p)->next)
        if (*p == job) {
            *p = job->next;
            break;
        }
    if (job->gw != NULL && job->registered && cause != NULL) {
        Fling__Cluster__DisconnectTaskManagerFromJobMaster req =
            FLING__CLUSTER__DISCONNECT_TASK_MANAGER_FROM_JOB_MASTER__INIT;
        req.resource_id = te->resource_id;
        req.cause = (char *)cause;
        fl_future_t *f = NULL;
        fl_rpc_call(job->gw,
                    (unsigned)fl_rpc_method_index(
                        &fling__cluster__job_master_gateway__descriptor,
                        "DisconnectTaskManager"),
                    &req.base, 0, &f);
        fl_future_release(f);
    }
    if (job->jm_id[0] != '\0' && te->hb_jm != NULL)
        fl_heartbeat_unmonitor(te->hb_jm, job->jm_id);
    fl_registration_free(job->reg);
    fl_rpc_gateway_free(job->gw);
    free(job);
}

/* Tells the ResourceManager slot i (of allocation alloc) is available. */
static void notify_available(tm_te_t *te, uint32_t i, const char *alloc)
{
    fl_rpc_gateway_t *rm = fl_registered_connection_gateway(te->conn);
    if (te->registered && rm != NULL) {
        Fling__Cluster__SlotAvailable req =
            FLING__CLUSTER__SLOT_AVAILABLE__INIT;
        req.resource_id = te->resource_id;
        req.instance_id = te->instance_id;
        req.slot_index = i;
        req.allocation_id = (char *)alloc;
        fl_future_t *f = NULL;
        fl_rpc_call(rm,
                    (unsigned)fl_rpc_method_index(
                        &fling__cluster__resource_manager_gateway__descriptor,
                        "NotifySlotAvailable"),
                    &req.base, 0, &f);
        fl_future_release(f);
    }
}

void tm__slot_task_ended(tm_te_t *te, const char *alloc)
{
    for (uint32_t i = 0; i < te->nslots; i++) {
        tm_slot_t *s = &te->slots[i];
        if (s->releasing[0] == '\0' || strcmp(s->releasing, alloc) != 0)
            continue;
        s->releasing[0] = '\0';
        s->releasing_job[0] = '\0';
        fl_log(FL_LOG_INFO, "Slot %u released: the task of allocation %s ended",
               (unsigned)i, alloc);
        notify_available(te, i, alloc);
    }
}

void tm__free_slot(tm_te_t *te, uint32_t i, const char *cause)
{
    tm_slot_t *s = &te->slots[i];
    if (s->alloc[0] == '\0')
        return;
    char alloc[33], job[33];
    memcpy(alloc, s->alloc, sizeof alloc);
    memcpy(job, s->job, sizeof job);
    size_t running = tm__cancel_slot_tasks(te, alloc);
    s->alloc[0] = '\0';
    s->job[0] = '\0';
    s->active = false;
    fl_log(FL_LOG_INFO, "Slot %u freed: %s", (unsigned)i, cause);
    if (running > 0) { /* RELEASING until its task thread ended */
        memcpy(s->releasing, alloc, sizeof alloc);
        memcpy(s->releasing_job, job, sizeof job);
    } else {
        notify_available(te, i, alloc);
    }
    for (uint32_t k = 0; k < te->nslots; k++)
        if (strcmp(te->slots[k].job, job) == 0)
            return;
    tm_job_t *j = job_find(te, job);
    if (j != NULL) {
        char why[sizeof te->resource_id + sizeof job + 64];
        snprintf(why, sizeof why,
                 "TaskManager %s holds no more slots of job %s",
                 te->resource_id, job);
        job_remove(te, j, why);
    }
}

/* Frees every slot of job_id (the job could not be reached). */
static void free_job_slots(tm_te_t *te, const char *job_id, const char *cause)
{
    for (uint32_t i = 0; i < te->nslots; i++)
        if (strcmp(te->slots[i].job, job_id) == 0)
            tm__free_slot(te, i, cause);
}

/* ---- offering -------------------------------------------------------------
 */

typedef struct offer_arg {
    tm_te_t *te;
    uint64_t gen;
    char job_id[33];
    size_t n;
    char (*allocs)[33];
} offer_arg_t;

static void offer_arg_free(void *p)
{
    offer_arg_t *a = p;
    free(a->allocs);
    free(a);
}

static long slot_of(const tm_te_t *te, const char *alloc)
{
    for (uint32_t i = 0; i < te->nslots; i++)
        if (strcmp(te->slots[i].alloc, alloc) == 0)
            return (long)i;
    return -1;
}

static void offer(tm_te_t *te, tm_job_t *j);

/* The JobMaster's answer to an offer. A timeout says nothing of what it
 * did (it may run a task in a slot already): the slots still inactive
 * are offered again (Flink), and the slot timeout frees those it never
 * takes. A slot a task activated meanwhile is in use: never freed here. */
static void offered_body(fl_future_t *f, void *arg)
{
    offer_arg_t *a = arg;
    tm_te_t *te = a->te;
    tm_job_t *j = job_by_gen(te, a->gen);
    if (fl_future_error(f) == FL_ETIMEDOUT && j != NULL) {
        fl_log(FL_LOG_INFO,
               "Slot offer to the JobMaster of job %s timed out; offering its "
               "inactive slots again",
               a->job_id);
        offer(te, j);
        return;
    }
    Fling__Cluster__SlotOffers *r =
        fl_future_error(f) == FL_OK ? fl_future_value(f) : NULL;
    for (size_t k = 0; k < a->n; k++) {
        long i = slot_of(te, a->allocs[k]);
        if (i < 0 || te->slots[i].active)
            continue;
        bool accepted = false;
        for (size_t m = 0; r != NULL && m < r->n_offers; m++)
            if (strcmp(r->offers[m]->allocation_id, a->allocs[k]) == 0)
                accepted = true;
        if (accepted) {
            te->slots[i].active = true;
        } else {
            char why[FL_FUTURE_MESSAGE_MAX + 64];
            if (r == NULL)
                snprintf(why, sizeof why, "the slot offer failed: %s",
                         fl_future_message(f));
            else
                snprintf(why, sizeof why, "the JobMaster of job %s declined it",
                         a->job_id);
            tm__free_slot(te, (uint32_t)i, why);
        }
    }
}

/* fl_rpc_on_complete hands arg over to the callback when it runs. */
static void offered(fl_future_t *f, void *arg)
{
    offered_body(f, arg);
    offer_arg_free(arg);
}

/* Offers the job's reserved, not yet active slots to its JobMaster. */
static void offer(tm_te_t *te, tm_job_t *j)
{
    size_t n = 0;
    for (uint32_t i = 0; i < te->nslots; i++)
        if (strcmp(te->slots[i].job, j->job_id) == 0 && !te->slots[i].active)
            n++;
    if (n == 0)
        return;
    offer_arg_t *a = calloc(1, sizeof *a);
    Fling__Cluster__SlotOffer *o = calloc(n, sizeof *o);
    Fling__Cluster__SlotOffer **po = calloc(n, sizeof *po);
    if (a != NULL)
        a->allocs = calloc(n, sizeof *a->allocs);
    if (a == NULL || a->allocs == NULL || o == NULL || po == NULL) {
        if (a != NULL)
            offer_arg_free(a);
        free(o);
        free(po);
        return;
    }
    a->te = te;
    a->gen = j->gen;
    memcpy(a->job_id, j->job_id, sizeof a->job_id);
    for (uint32_t i = 0; i < te->nslots; i++)
        if (strcmp(te->slots[i].job, j->job_id) == 0 && !te->slots[i].active) {
            Fling__Cluster__SlotOffer x = FLING__CLUSTER__SLOT_OFFER__INIT;
            memcpy(a->allocs[a->n], te->slots[i].alloc, 33);
            x.allocation_id = a->allocs[a->n];
            x.slot_index = i;
            o[a->n] = x;
            po[a->n] = &o[a->n];
            a->n++;
        }
    Fling__Cluster__SlotOffers req = FLING__CLUSTER__SLOT_OFFERS__INIT;
    req.resource_id = te->resource_id;
    req.offers = po;
    req.n_offers = a->n;
    fl_future_t *f = NULL;
    if (fl_rpc_call(
            j->gw,
            (unsigned)fl_rpc_method_index(
                &fling__cluster__job_master_gateway__descriptor, "OfferSlots"),
            &req.base, 0, &f) == FL_OK) {
        fl_rpc_on_complete(te->ep, f, offered, a, offer_arg_free);
        fl_future_release(f);
    } else {
        offer_arg_free(a);
    }
    free(o);
    free(po);
}

/* ---- registering at a JobMaster -------------------------------------------
 */

typedef struct jreg_arg jreg_arg_t;

/* The job's JobMaster could not be reached: its slots are freed. */
static void job_unreachable(tm_te_t *te, tm_job_t *j, const char *what,
                            fl_future_t *f,
                            const fl_registration_response_t *resp)
{
    char why[FL_FUTURE_MESSAGE_MAX + 600];
    snprintf(why, sizeof why, "%s the JobMaster of job %s at %s failed: %s",
             what, j->job_id, j->address,
             resp != NULL ? resp->reason : fl_future_message(f));
    fl_log(FL_LOG_WARN, "%s", why);
    char job[33];
    memcpy(job, j->job_id, sizeof job);
    job_remove(te, j, NULL);
    free_job_slots(te, job, why);
}

/* ---- heartbeats with the JobMasters (receiver) ---------------------------
 */

typedef struct jhb {
    tm_te_t *te;
    uint64_t gen;
} jhb_t;

static fl_future_t *send_jm_heartbeat(void *arg, const fl_heartbeat_msg_t *msg)
{
    jhb_t *h = arg;
    tm_job_t *j = job_by_gen(h->te, h->gen);
    if (j == NULL || j->gw == NULL)
        return NULL;
    return fg_heartbeat_send(
        j->gw,
        (unsigned)fl_rpc_method_index(
            &fling__cluster__job_master_gateway__descriptor,
            "HeartbeatFromTaskManager"),
        msg);
}

void tm__jm_silent(void *arg, const fl_heartbeat_event_t *ev)
{
    tm_te_t *te = arg;
    for (tm_job_t *j = te->jobs; j != NULL; j = j->next)
        if (strcmp(j->jm_id, ev->target) == 0) {
            char why[600];
            snprintf(why, sizeof why, "JobMaster of job %s lost: %s", j->job_id,
                     ev->message);
            fl_log(FL_LOG_INFO, "%s", why);
            char job[33];
            memcpy(job, j->job_id, sizeof job);
            job_remove(te, j, NULL);
            free_job_slots(te, job, why);
            return;
        }
}

static tm_job_t *job_by_jm(const tm_te_t *te, const char *jm_id)
{
    for (tm_job_t *j = te->jobs; j != NULL; j = j->next)
        if (j->registered && strcmp(j->jm_id, jm_id) == 0)
            return j;
    return NULL;
}

void tm__jm_probe(void *arg, const char *origin, const void *data, size_t len)
{
    tm_job_t *j = job_by_jm(arg, origin);
    Fling__Cluster__JobMasterHeartbeatPayload *p =
        j != NULL ? fling__cluster__job_master_heartbeat_payload__unpack(
                        NULL, len, data)
                  : NULL;
    if (p == NULL) /* not ours, or not one: the report says 0 */
        return;
    j->submitted = p->submitted;
    fling__cluster__job_master_heartbeat_payload__free_unpacked(p, NULL);
}

/* The job's attempts here, and the `submitted` of the request being
 * answered: the JobMaster finds what it deployed and is missing, and
 * what runs here unknown to it (Flink's ExecutionDeploymentReport). */
void tm__jm_report(void *arg, const char *target, const void **data,
                   size_t *len)
{
    tm_te_t *te = arg;
    tm_job_t *j = job_by_jm(te, target);
    if (j == NULL)
        return;
    size_t n = tm__job_attempts(te, j->job_id, &j->token, NULL, 0);
    tm_attempt_t *at = calloc(n ? n : 1, sizeof *at);
    Fling__Cluster__DeployedAttempt *d = calloc(n ? n : 1, sizeof *d);
    Fling__Cluster__DeployedAttempt **pd = calloc(n ? n : 1, sizeof *pd);
    Fling__Cluster__DeploymentReport r =
        FLING__CLUSTER__DEPLOYMENT_REPORT__INIT;
    size_t size = 0;
    if (at != NULL && d != NULL && pd != NULL) {
        n = tm__job_attempts(te, j->job_id, &j->token, at, n);
        for (size_t k = 0; k < n; k++) {
            Fling__Cluster__DeployedAttempt x =
                FLING__CLUSTER__DEPLOYED_ATTEMPT__INIT;
            x.vertex = at[k].vertex;
            x.attempt = at[k].attempt;
            x.ending = at[k].ending;
            d[k] = x;
            pd[k] = &d[k];
        }
        r.job_id = j->job_id;
        r.submitted = j->submitted;
        r.attempts = pd;
        r.n_attempts = n;
        size = fling__cluster__deployment_report__get_packed_size(&r);
    }
    if (size > te->jm_payload_cap) {
        uint8_t *p = realloc(te->jm_payload, size);
        if (p != NULL) {
            te->jm_payload = p;
            te->jm_payload_cap = size;
        }
    }
    /* Out of memory: no report, which the JobMaster ignores. */
    if (size > 0 && size <= te->jm_payload_cap) {
        fling__cluster__deployment_report__pack(&r, te->jm_payload);
        *data = te->jm_payload;
        *len = size;
    }
    free(at);
    free(d);
    free(pd);
}

void te_heartbeat_from_job_manager(
    Fling__Cluster__TaskExecutorGateway_Service *svc,
    const Fling__Cluster__Heartbeat *req, Fling__Cluster__Ack_Closure closure,
    void *call)
{
    (void)svc;
    tm_te_t *te = fl_rpc_call_state(call);
    fg_heartbeat_answer(te->hb_jm, true, req, closure, call);
}

/* Maps a RegisterTaskManager reply to a registration response whose
 * payload is the JobMaster's heartbeat id; on the thread that completes
 * the call, touching no TaskExecutor state. */
static int map_reply(void *arg, void *value, void **out, fl_free_cb *out_free)
{
    (void)arg;
    const Fling__Cluster__TaskManagerRegistrationReply *r = value;
    size_t n = strlen(r->jm_resource_id) + 1;
    char *id = malloc(n);
    if (id == NULL)
        return FL_ENOMEM;
    memcpy(id, r->jm_resource_id, n);
    fl_registration_response_t *resp =
        fl_registration_response_alloc(FL_REGISTRATION_SUCCESS, id, free, NULL);
    if (resp == NULL)
        return FL_ENOMEM;
    *out = resp;
    *out_free = fl_registration_response_free;
    return FL_OK;
}

/* One attempt of the registration at a job's JobMaster (arg: the job's
 * jreg_arg_t). A job gone meanwhile ends the registration. */
static int jm_invoke(fl_rpc_gateway_t *gw, const fl_fencing_token_t *token,
                     int64_t timeout_ms, void *arg, fl_future_t **out)
{
    (void)token;
    jreg_arg_t *a = arg;
    tm_job_t *j = job_by_gen(a->te, a->gen);
    if (j == NULL)
        return FL_ECANCELED;
    Fling__Cluster__TaskManagerRegistration req =
        FLING__CLUSTER__TASK_MANAGER_REGISTRATION__INIT;
    req.job_id = j->job_id;
    req.address = (char *)fl_rpc_endpoint_address(a->te->ep);
    req.resource_id = a->te->resource_id;
    req.session_id = a->te->session_id;
    fl_future_t *f = NULL;
    int rc = fl_rpc_call(gw,
                         (unsigned)fl_rpc_method_index(
                             &fling__cluster__job_master_gateway__descriptor,
                             "RegisterTaskManager"),
                         &req.base, timeout_ms, &f);
    if (rc != FL_OK)
        return rc;
    *out = fl_future_then(f, map_reply, NULL);
    fl_future_release(f);
    return *out != NULL ? FL_OK : FL_ENOMEM;
}

/* The registration's result, on the main thread (arg: a jreg_arg_t). */
static void jm_registered_body(fl_future_t *f, void *arg)
{
    jreg_arg_t *a = arg;
    tm_job_t *j = job_by_gen(a->te, a->gen);
    if (j == NULL)
        return;
    fl_registration_response_t *resp =
        fl_future_error(f) == FL_OK ? fl_future_value(f) : NULL;
    if (resp == NULL || resp->outcome != FL_REGISTRATION_SUCCESS) {
        job_unreachable(a->te, j, "Registering at", f, resp);
        return;
    }
    j->gw = resp->gateway;
    resp->gateway = NULL; /* ours now */
    j->registered = true;
    snprintf(j->jm_id, sizeof j->jm_id, "%s", (const char *)resp->payload);
    jhb_t *h = malloc(sizeof *h);
    if (h != NULL) {
        h->te = a->te;
        h->gen = j->gen;
        fl_heartbeat_monitor(a->te->hb_jm, j->jm_id, send_jm_heartbeat, h,
                             free);
    }
    fl_log(FL_LOG_INFO, "Registered at the JobMaster of job %s", j->job_id);
    offer(a->te, j);
}

/* fl_rpc_on_complete hands arg over to the callback when it runs. */
static void jm_registered(fl_future_t *f, void *arg)
{
    jm_registered_body(f, arg);
    free(arg);
}

/* Starts the job's retrying registration at its JobMaster (the job
 * leader service); FL_OK or why not. */
static int register_at_jm(tm_te_t *te, tm_job_t *j)
{
    fl_registration_spec_t spec = {
        .target_name = "jobmaster",
        .address = j->address,
        .desc = &fling__cluster__job_master_gateway__descriptor,
        .token = &j->token,
        .invoke = jm_invoke,
        .arg = &j->rarg,
        .opts = &te->ropts,
    };
    j->rarg.te = te;
    j->rarg.gen = j->gen;
    char why[256];
    int rc = fl_registration_alloc(te->ep, &spec, &j->reg, why, sizeof why);
    jreg_arg_t *a = rc == FL_OK ? malloc(sizeof *a) : NULL;
    if (a == NULL)
        return rc == FL_OK ? FL_ENOMEM : rc;
    *a = j->rarg;
    rc = fl_rpc_on_complete(te->ep, fl_registration_future(j->reg),
                            jm_registered, a, free);
    if (rc == FL_OK)
        rc = fl_registration_start(j->reg);
    return rc;
}

/* A slot still inactive after pekko.ask.timeout is freed (Flink's
 * taskmanager.slot.timeout, whose default that is): its job's JobMaster
 * never took it. */
typedef struct slot_timer {
    uint32_t index;
    char alloc[33];
} slot_timer_t;

static void slot_timed_out(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    tm_te_t *te = state;
    slot_timer_t *t = arg;
    tm_slot_t *s = &te->slots[t->index];
    if (strcmp(s->alloc, t->alloc) == 0 && !s->active) {
        char why[200];
        snprintf(why, sizeof why,
                 "it did not become active within %lld ms "
                 "(pekko.ask.timeout)",
                 (long long)te->slot_timeout_ms);
        tm__free_slot(te, t->index, why);
    }
    free(t);
}

void te_request_slot(Fling__Cluster__TaskExecutorGateway_Service *svc,
                     const Fling__Cluster__SlotRequest *req,
                     Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    tm_te_t *te = fl_rpc_call_state(call);
    if (te->stopping) {
        fl_rpc_fail(call, FL_ECLOSED,
                    "Slot request %s refused: TaskManager %s is shutting down",
                    req->allocation_id, te->resource_id);
        return;
    }
    if (req->slot_index >= te->nslots || strlen(req->job_id) != 32 ||
        strlen(req->allocation_id) != 32 || req->jm_token.len != 16) {
        fl_rpc_fail(call, FL_EINVAL,
                    "Slot request %s refused: TaskManager %s has slots 0 to "
                    "%u, and a job or allocation id has 32 hex digits",
                    req->allocation_id, te->resource_id,
                    (unsigned)te->nslots - 1);
        return;
    }
    tm_slot_t *s = &te->slots[req->slot_index];
    if (strcmp(s->alloc, req->allocation_id) == 0) { /* a retry */
        Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
        closure(&ack, call);
        return;
    }
    bool releasing = s->releasing[0] != '\0';
    if (releasing || s->alloc[0] != '\0') {
        fl_rpc_fail(call, FL_ESTATE,
                    "Slot request %s refused: slot %u of TaskManager %s is "
                    "%s allocation %s%s",
                    req->allocation_id, (unsigned)req->slot_index,
                    te->resource_id, releasing ? "releasing" : "taken by",
                    releasing ? s->releasing : s->alloc,
                    releasing ? ", whose task has not ended yet" : "");
        return;
    }
    tm_job_t *j = job_find(te, req->job_id);
    if (j != NULL && memcmp(j->token.bytes, req->jm_token.data, 16) != 0) {
        /* The job has a new JobMaster (it was recovered): the earlier
         * one's slots are freed, its tasks cancelled, and it is left. */
        char why[ADDR_MAX + 120];
        snprintf(why, sizeof why,
                 "job %s has a new JobMaster at %s, with another fencing "
                 "token",
                 req->job_id, req->jm_address);
        free_job_slots(te, req->job_id, why);
        j = job_find(te, req->job_id);
        if (j != NULL)
            job_remove(te, j, why);
        j = NULL;
    }
    if (j == NULL) {
        j = calloc(1, sizeof *j);
        if (j == NULL) {
            fl_rpc_fail(call, FL_ENOMEM, "TaskManager %s out of memory",
                        te->resource_id);
            return;
        }
        memcpy(j->job_id, req->job_id, 33);
        snprintf(j->address, sizeof j->address, "%s", req->jm_address);
        memcpy(j->token.bytes, req->jm_token.data, 16);
        j->gen = next_gen++;
        j->next = te->jobs;
        te->jobs = j;
    }
    memcpy(s->alloc, req->allocation_id, 33);
    memcpy(s->job, req->job_id, 33);
    s->active = false;
    fl_log(FL_LOG_INFO, "Slot %u allocated to job %s (allocation %s)",
           (unsigned)req->slot_index, req->job_id, req->allocation_id);
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
    slot_timer_t *t = malloc(sizeof *t);
    if (t != NULL) {
        t->index = req->slot_index;
        memcpy(t->alloc, req->allocation_id, 33);
        fl_rpc_schedule_run_async(te->ep, slot_timed_out, t, free,
                                  te->slot_timeout_ms, NULL);
    }
    if (j->registered) {
        offer(te, j);
        return;
    }
    if (j->reg != NULL)
        return; /* registering: the offer follows its success */
    if (register_at_jm(te, j) != FL_OK)
        free_job_slots(te, req->job_id,
                       "its JobMaster's registration could not start");
}

void te_free_slot(Fling__Cluster__TaskExecutorGateway_Service *svc,
                  const Fling__Cluster__FreeSlotRequest *req,
                  Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    tm_te_t *te = fl_rpc_call_state(call);
    long i = slot_of(te, req->allocation_id);
    if (i >= 0 && req->allocation_id[0] != '\0')
        tm__free_slot(te, (uint32_t)i, req->cause);
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
}

void te_disconnect_job_manager(
    Fling__Cluster__TaskExecutorGateway_Service *svc,
    const Fling__Cluster__DisconnectJobManagerFromTaskExecutor *req,
    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    tm_te_t *te = fl_rpc_call_state(call);
    free_job_slots(te, req->job_id, req->cause);
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
}

void tm__jobs_stop(tm_te_t *te)
{
    for (uint32_t i = 0; i < te->nslots; i++)
        tm__free_slot(te, i, "the TaskManager is shutting down");
    while (te->jobs != NULL)
        job_remove(te, te->jobs, NULL);
}
