/*
 * jobmaster.c - the JobMaster endpoint of one job (jobmaster.h).
 *
 * All state lives on the endpoint's main thread (handlers, connect and
 * call completions, the slot request timer); the job's record is shared
 * with the Dispatcher under its mutex.
 */
#include "jobmaster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobmaster.pb-c.h"
#include "process.h"
#include "resourcemanager.pb-c.h"
#include "taskexecutor.pb-c.h"

#define JS(x) FLING__CLUSTER__JOB_STATUS__STATE__##x
#define XS(x) FLING__CLUSTER__EXECUTION_STATE__STATE__##x

/* A TaskExecutor registered at this JobMaster. */
typedef struct jm_tm {
    char resource_id[256];
    char address[512];
    fl_rpc_gateway_t *gw; /* unfenced TaskExecutorGateway */
    bool lost;
} jm_tm_t;

/* An offered and accepted slot. */
typedef struct jm_slot {
    char alloc[33];
    size_t tm;   /* index in tms */
    long vertex; /* the execution vertex in it, or -1 */
    bool freed;
} jm_slot_t;

struct jm_jobmaster {
    fl_rpc_service_t *svc;
    const fl_config_t *cfg;
    jm_job_rec_t *rec;
    fj_job_t *job;
    fj_stream_graph_t *sg;
    fj_job_graph_t *jg;
    fj_exec_graph_t *eg;
    char *job_json, *job_dir;
    uint32_t parallelism;
    char rm_address[512];
    fl_fencing_token_t rm_token;
    fl_rpc_gateway_t *rm; /* fenced ResourceManagerGateway, once connected */
    void (*on_end)(void *arg, jm_jobmaster_t *jm);
    void *arg;
    fl_fencing_token_t token;
    fl_rpc_endpoint_t *ep;
    char id[64];
    int state; /* the job's */
    bool deployed, ended;
    size_t nv;   /* execution vertices */
    long *vslot; /* per vertex: its slot, or -1 */
    jm_tm_t *tms;
    size_t ntms;
    jm_slot_t *slots;
    size_t nslots;
    int64_t slot_timeout_ms;
    fl_rpc_scheduled_t *timer;
    int m_submit, m_cancel, m_free, m_disconnect_jm, m_heartbeat;
    fl_heartbeat_manager_t *hb; /* sender towards the TaskExecutors */
    /* The fixed-delay restart strategy. */
    int64_t restart_attempts, restart_delay_ms;
    uint32_t restarts;
    char restart_cause[1024];
};

static void try_deploy(jm_jobmaster_t *jm);
static void arm_slot_timer(jm_jobmaster_t *jm);

int64_t jm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *job_state_name(int s)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &fling__cluster__job_status__state__descriptor, s);
    return v ? v->name : "?";
}

static const char *exec_state_name(int s)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &fling__cluster__execution_state__state__descriptor, s);
    return v ? v->name : "?";
}

static bool task_terminal(int s)
{
    return s == XS(FINISHED) || s == XS(CANCELED) || s == XS(FAILED);
}

/* ---- the record -----------------------------------------------------------
 */

static void set_job_state(jm_jobmaster_t *jm, int state, const char *failure)
{
    if (jm->state == state)
        return;
    int old = jm->state;
    jm->state = state;
    /* The record first: a client that saw the line finds the state. */
    pthread_mutex_lock(&jm->rec->mu);
    jm->rec->state = state;
    if (failure != NULL && jm->rec->failure[0] == '\0')
        snprintf(jm->rec->failure, sizeof jm->rec->failure, "%s", failure);
    if (state == JS(FINISHED) || state == JS(FAILED) || state == JS(CANCELED))
        jm->rec->end_ms = jm_now_ms();
    pthread_mutex_unlock(&jm->rec->mu);
    fl_log(FL_LOG_INFO, "Job %s (%s) switched from state %s to %s.",
           jm->rec->name, jm->rec->job_id, job_state_name(old),
           job_state_name(state));
}

static int task_state(jm_jobmaster_t *jm, size_t v)
{
    pthread_mutex_lock(&jm->rec->mu);
    int s = jm->rec->tasks[v].state;
    pthread_mutex_unlock(&jm->rec->mu);
    return s;
}

static void set_task_state(jm_jobmaster_t *jm, size_t v, int state,
                           const char *failure)
{
    jm_task_rec_t *t = &jm->rec->tasks[v];
    pthread_mutex_lock(&jm->rec->mu);
    int old = t->state;
    t->state = state;
    if (failure != NULL)
        snprintf(t->failure, sizeof t->failure, "%s", failure);
    pthread_mutex_unlock(&jm->rec->mu);
    if (old != state)
        fl_log(FL_LOG_INFO, "%s (attempt #%u) switched from %s to %s.", t->name,
               (unsigned)t->attempt, exec_state_name(old),
               exec_state_name(state));
}

/* ---- the end --------------------------------------------------------------
 */

static void free_slot(jm_jobmaster_t *jm, jm_slot_t *s, const char *cause)
{
    if (s->freed)
        return;
    s->freed = true;
    if (jm->tms[s->tm].lost)
        return;
    Fling__Cluster__FreeSlotRequest req =
        FLING__CLUSTER__FREE_SLOT_REQUEST__INIT;
    req.allocation_id = s->alloc;
    req.cause = (char *)cause;
    fl_future_t *f = NULL;
    fl_rpc_call(jm->tms[s->tm].gw, (unsigned)jm->m_free, &req.base, 0, &f);
    fl_future_release(f);
}

/* The job reached a terminal state: free the slots, leave the
 * ResourceManager, tell the Dispatcher. */
static void job_end(jm_jobmaster_t *jm, int state, const char *failure)
{
    if (jm->ended)
        return;
    jm->ended = true;
    if (jm->timer != NULL) {
        fl_rpc_scheduled_cancel(jm->timer);
        fl_rpc_scheduled_free(jm->timer);
        jm->timer = NULL;
    }
    if (failure != NULL)
        fl_log(FL_LOG_WARN, "Job %s (%s) failed: %s", jm->rec->name,
               jm->rec->job_id, failure);
    set_job_state(jm, state, failure);
    char cause[300];
    snprintf(cause, sizeof cause, "Job %s reached state %s", jm->rec->job_id,
             job_state_name(state));
    for (size_t i = 0; i < jm->nslots; i++)
        free_slot(jm, &jm->slots[i], cause);
    if (jm->rm != NULL) {
        Fling__Cluster__DisconnectJobManagerRequest req =
            FLING__CLUSTER__DISCONNECT_JOB_MANAGER_REQUEST__INIT;
        req.job_id = jm->rec->job_id;
        req.state = (Fling__Cluster__JobStatus__State)state;
        req.cause = cause;
        fl_future_t *f = NULL;
        fl_rpc_call(jm->rm,
                    (unsigned)fl_rpc_method_index(
                        &fling__cluster__resource_manager_gateway__descriptor,
                        "DisconnectJobManager"),
                    &req.base, 0, &f);
        fl_future_release(f);
    }
    if (jm->hb != NULL)
        fl_heartbeat_manager_stop(jm->hb);
    if (jm->on_end != NULL)
        jm->on_end(jm->arg, jm);
}

/* Restarts the job: every vertex gets a new attempt, in the slots the job
 * still holds and those the ResourceManager gives for the lost ones. */
static void restart(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)arg;
    jm_jobmaster_t *jm = state;
    if (jm->ended || jm->state != JS(RESTARTING))
        return;
    jm->restarts++;
    pthread_mutex_lock(&jm->rec->mu);
    jm->rec->restarts = jm->restarts;
    for (size_t v = 0; v < jm->nv; v++) {
        jm->rec->tasks[v].attempt++;
        jm->rec->tasks[v].tm[0] = '\0';
        jm->rec->tasks[v].failure[0] = '\0';
    }
    pthread_mutex_unlock(&jm->rec->mu);
    for (size_t i = 0; i < jm->nslots; i++)
        jm->slots[i].vertex = -1;
    for (size_t v = 0; v < jm->nv; v++) {
        jm->vslot[v] = -1;
        set_task_state(jm, v, XS(CREATED), NULL);
        set_task_state(jm, v, XS(SCHEDULED), NULL);
    }
    jm->deployed = false;
    set_job_state(jm, JS(RUNNING), NULL);
    arm_slot_timer(jm);
    try_deploy(jm);
}

static void schedule_restart(jm_jobmaster_t *jm)
{
    fl_log(FL_LOG_INFO,
           "Restarting job %s (%s) in %lld ms (restart %u of %lld): %s",
           jm->rec->name, jm->rec->job_id, (long long)jm->restart_delay_ms,
           (unsigned)jm->restarts + 1, (long long)jm->restart_attempts,
           jm->restart_cause);
    fl_rpc_schedule_run_async(jm->ep, restart, NULL, NULL, jm->restart_delay_ms,
                              NULL);
}

/* Ends the job once every task is terminal: FINISHED when all finished,
 * else the state the job is heading to. */
static void schedule_restart(jm_jobmaster_t *jm);

static void check_end(jm_jobmaster_t *jm)
{
    size_t finished = 0;
    for (size_t v = 0; v < jm->nv; v++) {
        int s = task_state(jm, v);
        if (!task_terminal(s))
            return;
        if (s == XS(FINISHED))
            finished++;
    }
    if (finished == jm->nv)
        job_end(jm, JS(FINISHED), NULL);
    else if (jm->state == JS(RESTARTING))
        schedule_restart(jm);
    else if (jm->state == JS(CANCELLING))
        job_end(jm, JS(CANCELED), NULL);
    else
        job_end(jm, JS(FAILED), NULL);
}

/* Cancels every task not yet terminal; heading to to (FAILING or
 * CANCELLING). */
static void cancel_all(jm_jobmaster_t *jm, int to, const char *failure)
{
    if (jm->ended || jm->state == JS(FAILING) || jm->state == JS(CANCELLING) ||
        (jm->state == JS(RESTARTING) && to == JS(RESTARTING)))
        return;
    set_job_state(jm, to, failure);
    for (size_t v = 0; v < jm->nv; v++) {
        int s = task_state(jm, v);
        if (task_terminal(s))
            continue;
        if (jm->vslot[v] < 0) { /* never deployed */
            set_task_state(jm, v, XS(CANCELED), NULL);
            continue;
        }
        jm_slot_t *sl = &jm->slots[jm->vslot[v]];
        if (jm->tms[sl->tm].lost) {
            set_task_state(jm, v, XS(FAILED), NULL);
            continue;
        }
        set_task_state(jm, v, XS(CANCELING), NULL);
        Fling__Cluster__ExecutionAttempt req =
            FLING__CLUSTER__EXECUTION_ATTEMPT__INIT;
        req.job_id = jm->rec->job_id;
        req.vertex = (uint32_t)v;
        req.attempt = jm->rec->tasks[v].attempt;
        fl_future_t *f = NULL;
        fl_rpc_call(jm->tms[sl->tm].gw, (unsigned)jm->m_cancel, &req.base, 0,
                    &f);
        fl_future_release(f);
    }
    check_end(jm);
}

static void fail_job(jm_jobmaster_t *jm, const char *why);

/* A task failed: the job restarts while the fixed-delay strategy allows,
 * else it fails. */
static void task_failed(jm_jobmaster_t *jm, const char *why)
{
    if (jm->ended || jm->state == JS(CANCELLING) || jm->state == JS(FAILING) ||
        jm->state == JS(RESTARTING))
        return;
    if ((int64_t)jm->restarts >= jm->restart_attempts) {
        fail_job(jm, why);
        return;
    }
    snprintf(jm->restart_cause, sizeof jm->restart_cause, "%s", why);
    cancel_all(jm, JS(RESTARTING), NULL);
}

static void fail_job(jm_jobmaster_t *jm, const char *why)
{
    if (jm->ended)
        return;
    fl_log(FL_LOG_WARN, "Job %s (%s) failed: %s", jm->rec->name,
           jm->rec->job_id, why);
    pthread_mutex_lock(&jm->rec->mu);
    if (jm->rec->failure[0] == '\0')
        snprintf(jm->rec->failure, sizeof jm->rec->failure, "%s", why);
    pthread_mutex_unlock(&jm->rec->mu);
    cancel_all(jm, JS(FAILING), why);
}

/* ---- deployment -----------------------------------------------------------
 */

typedef struct submit_arg {
    jm_jobmaster_t *jm;
    size_t v;
    uint32_t attempt;
} submit_arg_t;

static void submitted_body(fl_future_t *f, void *arg)
{
    submit_arg_t *a = arg;
    jm_jobmaster_t *jm = a->jm;
    if (fl_future_error(f) == FL_OK || jm->ended ||
        jm->rec->tasks[a->v].attempt != a->attempt)
        return;
    char why[700];
    snprintf(why, sizeof why, "Could not deploy %s: %s",
             jm->rec->tasks[a->v].name, fl_future_message(f));
    set_task_state(jm, a->v, XS(FAILED), why);
    task_failed(jm, why);
}

/* fl_rpc_on_complete hands arg over to the callback when it runs. */
static void submitted(fl_future_t *f, void *arg)
{
    submitted_body(f, arg);
    free(arg);
}

static void deploy(jm_jobmaster_t *jm, size_t v, size_t slot)
{
    jm_slot_t *s = &jm->slots[slot];
    s->vertex = (long)v;
    jm->vslot[v] = (long)slot;
    jm_task_rec_t *t = &jm->rec->tasks[v];
    pthread_mutex_lock(&jm->rec->mu);
    snprintf(t->tm, sizeof t->tm, "%s", jm->tms[s->tm].resource_id);
    pthread_mutex_unlock(&jm->rec->mu);
    set_task_state(jm, v, XS(DEPLOYING), NULL);
    Fling__Cluster__TaskDeploymentDescriptor d =
        FLING__CLUSTER__TASK_DEPLOYMENT_DESCRIPTOR__INIT;
    d.job_id = jm->rec->job_id;
    d.allocation_id = s->alloc;
    d.job_json = jm->job_json;
    d.parallelism = jm->parallelism;
    d.job_dir = jm->job_dir;
    d.vertex = (uint32_t)v;
    d.name = t->name;
    d.attempt = t->attempt;
    fl_log(FL_LOG_INFO, "Deploying %s (attempt #%u) to TaskManager %s", t->name,
           (unsigned)t->attempt, jm->tms[s->tm].resource_id);
    fl_future_t *f = NULL;
    if (fl_rpc_call(jm->tms[s->tm].gw, (unsigned)jm->m_submit, &d.base, 0,
                    &f) != FL_OK) {
        char why[700];
        snprintf(why, sizeof why, "Could not deploy %s: %s", t->name,
                 fl_rpc_last_message());
        set_task_state(jm, v, XS(FAILED), why);
        fail_job(jm, why);
        return;
    }
    submit_arg_t *a = malloc(sizeof *a);
    if (a != NULL) {
        a->jm = jm;
        a->v = v;
        a->attempt = t->attempt;
        fl_rpc_on_complete(jm->ep, f, submitted, a, free);
    }
    fl_future_release(f);
}

/* The slots the job holds (in use or not). */
static size_t held_slots(const jm_jobmaster_t *jm)
{
    size_t n = 0;
    for (size_t i = 0; i < jm->nslots; i++)
        n += !jm->slots[i].freed;
    return n;
}

static size_t free_slots(const jm_jobmaster_t *jm)
{
    size_t n = 0;
    for (size_t i = 0; i < jm->nslots; i++)
        if (!jm->slots[i].freed && jm->slots[i].vertex < 0)
            n++;
    return n;
}

/* Deploys every vertex once there is a slot for each (all at once, as
 * Flink's default scheduler does for a streaming job). */
static void try_deploy(jm_jobmaster_t *jm)
{
    if (jm->deployed || jm->ended || jm->state != JS(RUNNING))
        return;
    if (free_slots(jm) < jm->nv)
        return;
    jm->deployed = true;
    if (jm->timer != NULL) {
        fl_rpc_scheduled_cancel(jm->timer);
        fl_rpc_scheduled_free(jm->timer);
        jm->timer = NULL;
    }
    size_t slot = 0;
    for (size_t v = 0; v < jm->nv && !jm->ended; v++) {
        while (jm->slots[slot].freed || jm->slots[slot].vertex >= 0)
            slot++;
        deploy(jm, v, slot);
    }
}

static void slot_timeout(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)arg;
    jm_jobmaster_t *jm = state;
    if (jm->deployed || jm->ended)
        return;
    char why[600];
    snprintf(why, sizeof why,
             "Job %s (%s) could not get the slots it needs within %lld ms "
             "(slot.request.timeout): it has %zu and needs %zu; start more "
             "TaskManagers or lower the parallelism",
             jm->rec->name, jm->rec->job_id, (long long)jm->slot_timeout_ms,
             free_slots(jm), jm->nv);
    pthread_mutex_lock(&jm->rec->mu);
    snprintf(jm->rec->failure, sizeof jm->rec->failure, "%s", why);
    pthread_mutex_unlock(&jm->rec->mu);
    for (size_t v = 0; v < jm->nv; v++)
        set_task_state(jm, v, XS(CANCELED), NULL);
    job_end(jm, JS(FAILED), why);
}

static void arm_slot_timer(jm_jobmaster_t *jm)
{
    if (jm->timer != NULL) {
        fl_rpc_scheduled_cancel(jm->timer);
        fl_rpc_scheduled_free(jm->timer);
        jm->timer = NULL;
    }
    fl_rpc_schedule_run_async(jm->ep, slot_timeout, NULL, NULL,
                              jm->slot_timeout_ms, &jm->timer);
}

/* ---- heartbeats with the TaskExecutors (sender) ---------------------------
 */

typedef struct hb_target {
    jm_jobmaster_t *jm;
    char resource_id[256];
} hb_target_t;

static long tm_find(const jm_jobmaster_t *jm, const char *resource_id);

static fl_future_t *send_heartbeat(void *arg, const fl_heartbeat_msg_t *msg)
{
    hb_target_t *t = arg;
    long i = tm_find(t->jm, t->resource_id);
    if (i < 0)
        return NULL;
    Fling__Cluster__Heartbeat req = FLING__CLUSTER__HEARTBEAT__INIT;
    Fling__Cluster__HeartbeatTiming tm = FLING__CLUSTER__HEARTBEAT_TIMING__INIT;
    req.origin = (char *)msg->origin;
    req.target = (char *)msg->target;
    if (msg->timing != NULL) {
        tm.interval_ms = msg->timing->interval_ms;
        tm.timeout_ms = msg->timing->timeout_ms;
        req.timing = &tm;
    }
    fl_future_t *f = NULL;
    fl_rpc_call(t->jm->tms[i].gw, (unsigned)t->jm->m_heartbeat, &req.base, 0,
                &f);
    return f;
}

/* A TaskManager is gone: the tasks that ran there failed, its slots are
 * the job's no more. */
static void tm_lost(jm_jobmaster_t *jm, const char *resource_id,
                    const char *how)
{
    long i = tm_find(jm, resource_id);
    if (i < 0 || jm->tms[i].lost)
        return;
    jm->tms[i].lost = true;
    fl_heartbeat_unmonitor(jm->hb, resource_id);
    size_t held = 0;
    for (size_t k = 0; k < jm->nslots; k++)
        if (jm->slots[k].tm == (size_t)i && !jm->slots[k].freed) {
            jm->slots[k].freed = true;
            held++;
        }
    /* One that only had declined offers, or the job is over: quiet. */
    if (jm->ended || held == 0)
        return;
    char why[700];
    snprintf(why, sizeof why, "TaskManager %s lost: %s", resource_id, how);
    fl_log(FL_LOG_INFO, "%s", why);
    bool failed = false;
    for (size_t v = 0; v < jm->nv; v++) {
        long sl = jm->vslot[v];
        if (sl < 0 || jm->slots[sl].tm != (size_t)i ||
            task_terminal(task_state(jm, v)))
            continue;
        set_task_state(jm, v, XS(FAILED), why);
        failed = true;
    }
    if (failed)
        task_failed(jm, why);
    check_end(jm);
}

static void hb_timeout(void *arg, const fl_heartbeat_event_t *ev)
{
    tm_lost(arg, ev->target, "heartbeat timed out");
}

static void hb_unreachable(void *arg, const fl_heartbeat_event_t *ev)
{
    tm_lost(arg, ev->target, "heartbeat target unreachable");
}

static void hb_incompatible(void *arg, const fl_heartbeat_event_t *ev)
{
    tm_lost(arg, ev->target, ev->message);
}

static void
jm_heartbeat_from_task_manager(Fling__Cluster__JobMasterGateway_Service *svc,
                               const Fling__Cluster__Heartbeat *req,
                               Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    jm_jobmaster_t *jm = fl_rpc_call_state(call);
    fl_heartbeat_timing_t tm;
    fl_heartbeat_msg_t msg = {
        .origin = req->origin,
        .target = req->target,
        .payload = req->payload.data,
        .payload_len = req->payload.len,
    };
    if (req->timing != NULL) {
        tm.interval_ms = req->timing->interval_ms;
        tm.timeout_ms = req->timing->timeout_ms;
        msg.timing = &tm;
    }
    char why[512];
    int rc = fl_heartbeat_receive_response(jm->hb, &msg, why, sizeof why);
    if (rc == FL_EINVAL) {
        fl_rpc_fail(call, rc, "%s", why);
        return;
    }
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
}

/* ---- the gateway ----------------------------------------------------------
 */

static long tm_find(const jm_jobmaster_t *jm, const char *resource_id)
{
    for (size_t i = 0; i < jm->ntms; i++)
        if (strcmp(jm->tms[i].resource_id, resource_id) == 0)
            return (long)i;
    return -1;
}

typedef struct reg_arg {
    jm_jobmaster_t *jm;
    fl_rpc_call_t *call;
    Fling__Cluster__TaskManagerRegistrationReply_Closure closure;
    char resource_id[256];
    char address[512];
} reg_arg_t;

static void reg_arg_free(void *p)
{
    reg_arg_t *a = p;
    if (a->call != NULL)
        fl_rpc_fail(a->call, FL_EUNREACHABLE,
                    "JobMaster stopped before TaskManager %s was registered",
                    a->resource_id);
    free(a);
}

static void tm_connected_body(fl_future_t *f, void *arg)
{
    reg_arg_t *a = arg;
    jm_jobmaster_t *jm = a->jm;
    if (fl_future_error(f) != FL_OK) {
        fl_rpc_fail(a->call, fl_future_error(f),
                    "JobMaster of job %s could not connect back to "
                    "TaskManager %s at %s: %s",
                    jm->rec->job_id, a->resource_id, a->address,
                    fl_future_message(f));
        a->call = NULL;
        return;
    }
    fl_rpc_gateway_t *gw = fl_future_take_value(f);
    long i = tm_find(jm, a->resource_id);
    if (i >= 0 && jm->tms[i].lost) {      /* a new process under the old id */
        jm->tms[i].resource_id[0] = '\0'; /* never matches again */
        i = -1;
    }
    if (i >= 0) { /* registered again: the newest gateway wins */
        fl_rpc_gateway_free(jm->tms[i].gw);
        jm->tms[i].gw = gw;
    } else {
        jm_tm_t *t = realloc(jm->tms, (jm->ntms + 1) * sizeof *t);
        if (t == NULL) {
            fl_rpc_gateway_free(gw);
            fl_rpc_fail(a->call, FL_ENOMEM,
                        "JobMaster out of memory registering TaskManager %s",
                        a->resource_id);
            a->call = NULL;
            return;
        }
        jm->tms = t;
        i = (long)jm->ntms++;
        snprintf(t[i].resource_id, sizeof t[i].resource_id, "%s",
                 a->resource_id);
        snprintf(t[i].address, sizeof t[i].address, "%s", a->address);
        t[i].gw = gw;
        t[i].lost = false;
        hb_target_t *h = malloc(sizeof *h);
        if (h != NULL) {
            h->jm = jm;
            snprintf(h->resource_id, sizeof h->resource_id, "%s",
                     a->resource_id);
            fl_heartbeat_monitor(jm->hb, a->resource_id, send_heartbeat, h,
                                 free);
        }
    }
    fl_log(FL_LOG_INFO, "Registered TaskManager %s at the JobMaster of job %s",
           a->resource_id, jm->rec->job_id);
    Fling__Cluster__TaskManagerRegistrationReply r =
        FLING__CLUSTER__TASK_MANAGER_REGISTRATION_REPLY__INIT;
    r.jm_resource_id = jm->id;
    a->closure(&r, a->call);
    a->call = NULL;
}

/* fl_rpc_on_complete hands arg over to the callback when it runs. */
static void tm_connected(fl_future_t *f, void *arg)
{
    tm_connected_body(f, arg);
    reg_arg_free(arg);
}

static void jm_register_task_manager(
    Fling__Cluster__JobMasterGateway_Service *svc,
    const Fling__Cluster__TaskManagerRegistration *req,
    Fling__Cluster__TaskManagerRegistrationReply_Closure closure, void *call)
{
    (void)svc;
    jm_jobmaster_t *jm = fl_rpc_call_state(call);
    if (strcmp(req->job_id, jm->rec->job_id) != 0) {
        fl_rpc_fail(call, FL_ESTATE,
                    "Registration of TaskManager %s refused: this JobMaster "
                    "runs job %s, not %s",
                    req->resource_id, jm->rec->job_id, req->job_id);
        return;
    }
    reg_arg_t *a = calloc(1, sizeof *a);
    if (a == NULL) {
        fl_rpc_fail(call, FL_ENOMEM, "JobMaster out of memory");
        return;
    }
    a->jm = jm;
    a->closure = closure;
    snprintf(a->resource_id, sizeof a->resource_id, "%s", req->resource_id);
    snprintf(a->address, sizeof a->address, "%s", req->address);
    a->call = fl_rpc_defer(call);
    fl_future_t *f = NULL;
    int rc = fl_rpc_connect(jm->svc, req->address,
                            &fling__cluster__task_executor_gateway__descriptor,
                            NULL, &f);
    if (rc != FL_OK) {
        fl_rpc_fail(a->call, rc,
                    "JobMaster could not connect back to TaskManager %s at "
                    "%s: %s",
                    req->resource_id, req->address, fl_rpc_last_message());
        a->call = NULL;
        free(a);
        return;
    }
    fl_rpc_on_complete(jm->ep, f, tm_connected, a, reg_arg_free);
    fl_future_release(f);
}

static void jm_offer_slots(Fling__Cluster__JobMasterGateway_Service *svc,
                           const Fling__Cluster__SlotOffers *req,
                           Fling__Cluster__SlotOffers_Closure closure,
                           void *call)
{
    (void)svc;
    jm_jobmaster_t *jm = fl_rpc_call_state(call);
    long tm = tm_find(jm, req->resource_id);
    Fling__Cluster__SlotOffer **acc =
        calloc(req->n_offers ? req->n_offers : 1, sizeof *acc);
    if (tm < 0 || acc == NULL) {
        free(acc);
        fl_rpc_fail(call, tm < 0 ? FL_ESTATE : FL_ENOMEM,
                    "Slot offers of TaskManager %s refused: it is not "
                    "registered at the JobMaster of job %s; register first",
                    req->resource_id, jm->rec->job_id);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < req->n_offers; i++) {
        /* Enough slots taken, or the job is over: the rest are declined. */
        if (jm->ended || held_slots(jm) >= jm->nv)
            break;
        bool known = false;
        for (size_t k = 0; k < jm->nslots; k++)
            if (strcmp(jm->slots[k].alloc, req->offers[i]->allocation_id) == 0)
                known = true;
        if (!known) {
            jm_slot_t *s = realloc(jm->slots, (jm->nslots + 1) * sizeof *s);
            if (s == NULL)
                break;
            jm->slots = s;
            jm_slot_t *ns = &s[jm->nslots++];
            memset(ns, 0, sizeof *ns);
            snprintf(ns->alloc, sizeof ns->alloc, "%s",
                     req->offers[i]->allocation_id);
            ns->tm = (size_t)tm;
            ns->vertex = -1;
        }
        acc[n++] = req->offers[i];
    }
    Fling__Cluster__SlotOffers r = FLING__CLUSTER__SLOT_OFFERS__INIT;
    r.resource_id = jm->id;
    r.offers = acc;
    r.n_offers = n;
    closure(&r, call);
    free(acc);
    try_deploy(jm);
}

static void
jm_update_task_execution_state(Fling__Cluster__JobMasterGateway_Service *svc,
                               const Fling__Cluster__TaskExecutionState *req,
                               Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    jm_jobmaster_t *jm = fl_rpc_call_state(call);
    if (strcmp(req->job_id, jm->rec->job_id) != 0 || req->vertex >= jm->nv ||
        req->attempt != jm->rec->tasks[req->vertex].attempt) {
        fl_rpc_fail(call, FL_ESTATE,
                    "State update %s of task %u attempt #%u of job %s "
                    "refused: not a current attempt of this JobMaster's job",
                    exec_state_name(req->state), (unsigned)req->vertex,
                    (unsigned)req->attempt, req->job_id);
        return;
    }
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
    size_t v = req->vertex;
    int old = task_state(jm, v);
    if (task_terminal(old))
        return;
    int s = req->state;
    /* Once cancelling, only the end of the attempt counts. */
    if (old == XS(CANCELING) && !task_terminal(s))
        return;
    set_task_state(jm, v, s, s == XS(FAILED) ? req->message : NULL);
    if (s == XS(FAILED))
        task_failed(jm, req->message);
    else if (s == XS(CANCELED) && jm->state == JS(RUNNING))
        fail_job(jm, "a task was cancelled outside the JobMaster");
    else if (task_terminal(s))
        check_end(jm);
}

static void jm_disconnect_task_manager(
    Fling__Cluster__JobMasterGateway_Service *svc,
    const Fling__Cluster__DisconnectTaskManagerFromJobMaster *req,
    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    jm_jobmaster_t *jm = fl_rpc_call_state(call);
    char how[600];
    snprintf(how, sizeof how, "it disconnected (%s)", req->cause);
    tm_lost(jm, req->resource_id, how);
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
}

static void jm_cancel(Fling__Cluster__JobMasterGateway_Service *svc,
                      const Fling__Cluster__Ack *req,
                      Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    (void)req;
    jm_jobmaster_t *jm = fl_rpc_call_state(call);
    if (!jm->ended)
        cancel_all(jm, JS(CANCELLING), NULL);
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
}

static Fling__Cluster__JobMasterGateway_Service jm_impl =
    FLING__CLUSTER__JOB_MASTER_GATEWAY__INIT(jm_);

/* ---- the ResourceManager --------------------------------------------------
 */

static void declared(fl_future_t *f, void *arg)
{
    jm_jobmaster_t *jm = arg;
    if (fl_future_error(f) != FL_OK) {
        char why[700];
        snprintf(why, sizeof why,
                 "Could not declare the job's slots at the ResourceManager "
                 "%s: %s",
                 jm->rm_address, fl_future_message(f));
        fail_job(jm, why);
    }
}

static void rm_registered(fl_future_t *f, void *arg)
{
    jm_jobmaster_t *jm = arg;
    if (fl_future_error(f) != FL_OK) {
        char why[700];
        snprintf(why, sizeof why,
                 "Could not register the JobMaster at the ResourceManager "
                 "%s: %s",
                 jm->rm_address, fl_future_message(f));
        fail_job(jm, why);
        return;
    }
    Fling__Cluster__ResourceRequirements req =
        FLING__CLUSTER__RESOURCE_REQUIREMENTS__INIT;
    req.job_id = jm->rec->job_id;
    req.slots = (uint32_t)jm->nv;
    fl_future_t *d = NULL;
    if (fl_rpc_call(jm->rm,
                    (unsigned)fl_rpc_method_index(
                        &fling__cluster__resource_manager_gateway__descriptor,
                        "DeclareRequiredResources"),
                    &req.base, 0, &d) == FL_OK) {
        fl_rpc_on_complete(jm->ep, d, declared, jm, NULL);
        fl_future_release(d);
    }
}

static void rm_connected(fl_future_t *f, void *arg)
{
    jm_jobmaster_t *jm = arg;
    if (fl_future_error(f) != FL_OK) {
        char why[700];
        snprintf(why, sizeof why,
                 "Could not connect to the ResourceManager %s: %s",
                 jm->rm_address, fl_future_message(f));
        fail_job(jm, why);
        return;
    }
    jm->rm = fl_future_take_value(f);
    Fling__Cluster__JobMasterRegistration req =
        FLING__CLUSTER__JOB_MASTER_REGISTRATION__INIT;
    req.job_id = jm->rec->job_id;
    req.address = (char *)fl_rpc_endpoint_address(jm->ep);
    req.token.data = jm->token.bytes;
    req.token.len = sizeof jm->token.bytes;
    fl_future_t *r = NULL;
    if (fl_rpc_call(jm->rm,
                    (unsigned)fl_rpc_method_index(
                        &fling__cluster__resource_manager_gateway__descriptor,
                        "RegisterJobMaster"),
                    &req.base, 0, &r) == FL_OK) {
        fl_rpc_on_complete(jm->ep, r, rm_registered, jm, NULL);
        fl_future_release(r);
    }
}

/* ---- life -----------------------------------------------------------------
 */

static int jm_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    jm_jobmaster_t *jm = state;
    fl_heartbeat_opts_t ho = {
        .id = jm->id,
        .role = FL_HEARTBEAT_SENDER,
        .on_timeout = hb_timeout,
        .on_unreachable = hb_unreachable,
        .on_incompatible = hb_incompatible,
        .arg = jm,
    };
    char hwhy[512];
    if (fl_cluster_heartbeat_opts(jm->cfg, &ho, hwhy, sizeof hwhy) != FL_OK ||
        fl_heartbeat_manager_alloc(ep, &ho, &jm->hb, hwhy, sizeof hwhy) !=
            FL_OK)
        return fl_rpc_start_fail(ep, FL_EINVAL, "%s", hwhy);
    for (size_t v = 0; v < jm->nv; v++)
        set_task_state(jm, v, XS(SCHEDULED), NULL);
    set_job_state(jm, JS(RUNNING), NULL);
    arm_slot_timer(jm);
    fl_future_t *f = NULL;
    int rc =
        fl_rpc_connect(jm->svc, jm->rm_address,
                       &fling__cluster__resource_manager_gateway__descriptor,
                       &jm->rm_token, &f);
    if (rc != FL_OK) {
        char why[700];
        snprintf(why, sizeof why,
                 "Could not connect to the ResourceManager %s: %s",
                 jm->rm_address, fl_rpc_last_message());
        fail_job(jm, why);
        return FL_OK;
    }
    fl_rpc_on_complete(ep, f, rm_connected, jm, NULL);
    fl_future_release(f);
    return FL_OK;
}

static fl_future_t *jm_on_stop(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    jm_jobmaster_t *jm = state;
    if (jm->timer != NULL) {
        fl_rpc_scheduled_cancel(jm->timer);
        fl_rpc_scheduled_free(jm->timer);
        jm->timer = NULL;
    }
    fl_heartbeat_manager_free(jm->hb);
    jm->hb = NULL;
    return NULL;
}

static char *dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c != NULL)
        memcpy(c, s, n);
    return c;
}

static void graphs_free(const jm_jobmaster_opts_t *o)
{
    fj_exec_graph_free(o->eg);
    fj_job_graph_free(o->jg);
    fj_stream_graph_free(o->sg);
    fj_job_free(o->job);
}

int jm_jobmaster_start(const jm_jobmaster_opts_t *o, jm_jobmaster_t **out,
                       char *err, size_t errlen)
{
    jm_jobmaster_t *jm = calloc(1, sizeof *jm);
    if (jm != NULL) {
        jm->job_json = dup(o->job_json);
        jm->job_dir = dup(o->job_dir);
        jm->vslot = calloc(o->eg->n_vertices ? o->eg->n_vertices : 1,
                           sizeof *jm->vslot);
    }
    if (jm == NULL || jm->job_json == NULL || jm->job_dir == NULL ||
        jm->vslot == NULL) {
        if (jm != NULL) {
            free(jm->job_json);
            free(jm->job_dir);
            free(jm->vslot);
            free(jm);
        }
        graphs_free(o);
        snprintf(err, errlen, "out of memory");
        return FL_ENOMEM;
    }
    jm->svc = o->svc;
    jm->cfg = o->cfg;
    jm->rec = o->rec;
    jm->job = o->job;
    jm->sg = o->sg;
    jm->jg = o->jg;
    jm->eg = o->eg;
    jm->parallelism = o->parallelism;
    snprintf(jm->rm_address, sizeof jm->rm_address, "%s", o->rm_address);
    jm->rm_token = o->rm_token;
    jm->on_end = o->on_end;
    jm->arg = o->arg;
    jm->nv = o->eg->n_vertices;
    for (size_t v = 0; v < jm->nv; v++)
        jm->vslot[v] = -1;
    jm->state = JS(CREATED);
    jm->slot_timeout_ms = 300000;
    fl_config_get_duration_ms(o->cfg, FL_CONFIG_SLOT_REQUEST_TIMEOUT,
                              &jm->slot_timeout_ms);
    jm->restart_attempts = 1;
    jm->restart_delay_ms = 1000;
    fl_config_get_int(o->cfg, FL_CONFIG_RESTART_ATTEMPTS,
                      &jm->restart_attempts);
    fl_config_get_duration_ms(o->cfg, FL_CONFIG_RESTART_DELAY,
                              &jm->restart_delay_ms);
    char hex[33];
    fa_random_hex(hex, 16);
    for (int i = 0; i < 16; i++) {
        unsigned b;
        sscanf(hex + 2 * i, "%2x", &b);
        jm->token.bytes[i] = (uint8_t)b;
    }
    snprintf(jm->id, sizeof jm->id, "jobmaster_%s", o->rec->job_id);
    const ProtobufCServiceDescriptor *te =
        &fling__cluster__task_executor_gateway__descriptor;
    jm->m_submit = fl_rpc_method_index(te, "SubmitTask");
    jm->m_cancel = fl_rpc_method_index(te, "CancelTask");
    jm->m_free = fl_rpc_method_index(te, "FreeSlot");
    jm->m_disconnect_jm = fl_rpc_method_index(te, "DisconnectJobManager");
    jm->m_heartbeat = fl_rpc_method_index(te, "HeartbeatFromJobManager");
    static ProtobufCService *const services[] = {&jm_impl.base};
    fl_rpc_endpoint_opts_t eo = {
        .id = jm->id,
        .services = services,
        .nservices = 1,
        .state = jm,
        .on_start = jm_on_start,
        .on_stop = jm_on_stop,
        .fencing_token = &jm->token,
    };
    int rc = fl_rpc_endpoint_create(o->svc, &eo, &jm->ep);
    if (rc == FL_OK)
        rc = fl_rpc_endpoint_start(jm->ep);
    if (rc != FL_OK) {
        snprintf(err, errlen, "Could not start the JobMaster of job %s: %s",
                 o->rec->job_id, fl_rpc_last_message());
        if (jm->ep != NULL) {
            fl_future_release(fl_rpc_endpoint_close(jm->ep));
            fl_rpc_endpoint_free(jm->ep);
            jm->ep = NULL;
        }
        jm_jobmaster_free(jm);
        return rc;
    }
    *out = jm;
    return FL_OK;
}

const char *jm_jobmaster_address(const jm_jobmaster_t *jm)
{
    return fl_rpc_endpoint_address(jm->ep);
}

static void do_cancel(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)arg;
    jm_jobmaster_t *jm = state;
    if (!jm->ended)
        cancel_all(jm, JS(CANCELLING), NULL);
}

void jm_jobmaster_cancel(jm_jobmaster_t *jm)
{
    fl_rpc_run_async(jm->ep, do_cancel, NULL, NULL);
}

fl_future_t *jm_jobmaster_close(jm_jobmaster_t *jm)
{
    return fl_rpc_endpoint_close(jm->ep);
}

void jm_jobmaster_free(jm_jobmaster_t *jm)
{
    if (jm == NULL)
        return;
    fl_rpc_endpoint_free(jm->ep);
    fl_rpc_scheduled_free(jm->timer);
    fl_rpc_gateway_free(jm->rm);
    for (size_t i = 0; i < jm->ntms; i++)
        fl_rpc_gateway_free(jm->tms[i].gw);
    free(jm->tms);
    free(jm->slots);
    free(jm->vslot);
    free(jm->job_json);
    free(jm->job_dir);
    fj_exec_graph_free(jm->eg);
    fj_job_graph_free(jm->jg);
    fj_stream_graph_free(jm->sg);
    fj_job_free(jm->job);
    free(jm);
}
