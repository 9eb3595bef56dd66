/*
 * jobmaster_run.c - the run of a JobMaster's job (jobmaster_int.h): its
 * record, deployment, the end, cancel, fixed-delay restarts, the slot
 * request timeout, the TaskExecutors' heartbeats (sender) and losses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heartbeat_rpc.h"
#include "jobmaster_int.h"
#include "resourcemanager.pb-c.h"

static void schedule_restart(jm_jobmaster_t *jm);
static void job_end(jm_jobmaster_t *jm, int state, const char *failure);
static size_t free_slots(const jm_jobmaster_t *jm);

int64_t jm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *jm__job_state_name(int s)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &fling__cluster__job_status__state__descriptor, s);
    return v ? v->name : "?";
}

const char *jm__exec_state_name(int s)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &fling__cluster__execution_state__state__descriptor, s);
    return v ? v->name : "?";
}

bool jm__task_terminal(int s)
{
    return s == XS(FINISHED) || s == XS(CANCELED) || s == XS(FAILED);
}

/* ---- the record -----------------------------------------------------------
 */

void jm__set_job_state(jm_jobmaster_t *jm, int state, const char *failure)
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
           jm->rec->name, jm->rec->job_id, jm__job_state_name(old),
           jm__job_state_name(state));
}

int jm__task_state(jm_jobmaster_t *jm, size_t v)
{
    pthread_mutex_lock(&jm->rec->mu);
    int s = jm->rec->tasks[v].state;
    pthread_mutex_unlock(&jm->rec->mu);
    return s;
}

void jm__set_task_state(jm_jobmaster_t *jm, size_t v, int state,
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
               (unsigned)t->attempt, jm__exec_state_name(old),
               jm__exec_state_name(state));
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

void jm__release_all(jm_jobmaster_t *jm)
{
    char cause[300];
    snprintf(cause, sizeof cause, "Job %s reached state %s", jm->rec->job_id,
             jm__job_state_name(jm->state));
    for (size_t i = 0; i < jm->nslots; i++)
        free_slot(jm, &jm->slots[i], cause);
    if (jm->hb != NULL)
        fl_heartbeat_manager_stop(jm->hb);
    if (jm->hb_rm != NULL)
        fl_heartbeat_manager_stop(jm->hb_rm);
    if (jm->on_end != NULL)
        jm->on_end(jm->arg, jm);
}

static void rm_left(fl_future_t *f, void *arg)
{
    (void)f;
    jm__release_all(arg);
}

/* The job reached a terminal state: leave the ResourceManager, then
 * free the slots and tell the Dispatcher. The answer is awaited: a slot
 * freed before would come back available at the ResourceManager while
 * the job still declares it needs one, and be allocated to it again.
 * Not registered there while a registration is under way: its outcome
 * is awaited first, and a success leaves at once (jobmaster_rm.c). */
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
    jm__set_job_state(jm, state, failure);
    fl_future_t *f = jm->rm != NULL ? jm__rm_leave(jm, jm->rm) : NULL;
    if (f == NULL && jm__rm_leave_later(jm))
        return;
    if (f == NULL || fl_rpc_on_complete(jm->ep, f, rm_left, jm, NULL) != FL_OK)
        jm__release_all(jm);
    fl_future_release(f);
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
        jm__set_task_state(jm, v, XS(CREATED), NULL);
        jm__set_task_state(jm, v, XS(SCHEDULED), NULL);
    }
    jm->deployed = false;
    jm__set_job_state(jm, JS(RUNNING), NULL);
    jm__arm_slot_timer(jm);
    jm__try_deploy(jm);
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

void jm__check_end(jm_jobmaster_t *jm)
{
    size_t finished = 0;
    for (size_t v = 0; v < jm->nv; v++) {
        int s = jm__task_state(jm, v);
        if (!jm__task_terminal(s))
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

/* Asks the TaskExecutor of vertex v's slot to cancel its attempt. */
static void cancel_attempt(jm_jobmaster_t *jm, size_t v)
{
    const jm_slot_t *sl = &jm->slots[jm->vslot[v]];
    Fling__Cluster__ExecutionAttempt req =
        FLING__CLUSTER__EXECUTION_ATTEMPT__INIT;
    req.job_id = jm->rec->job_id;
    req.vertex = (uint32_t)v;
    req.attempt = jm->rec->tasks[v].attempt;
    fl_future_t *f = NULL;
    fl_rpc_call(jm->tms[sl->tm].gw, (unsigned)jm->m_cancel, &req.base, 0, &f);
    fl_future_release(f);
}

/* Cancels every task not yet terminal; heading to to (FAILING or
 * CANCELLING). */
void jm__cancel_all(jm_jobmaster_t *jm, int to, const char *failure)
{
    if (jm->ended || jm->state == JS(FAILING) || jm->state == JS(CANCELLING) ||
        (jm->state == JS(RESTARTING) && to == JS(RESTARTING)))
        return;
    jm__set_job_state(jm, to, failure);
    for (size_t v = 0; v < jm->nv; v++) {
        int s = jm__task_state(jm, v);
        if (jm__task_terminal(s))
            continue;
        if (jm->vslot[v] < 0) { /* never deployed */
            jm__set_task_state(jm, v, XS(CANCELED), NULL);
            continue;
        }
        jm_slot_t *sl = &jm->slots[jm->vslot[v]];
        if (jm->tms[sl->tm].lost) {
            jm__set_task_state(jm, v, XS(FAILED), NULL);
            continue;
        }
        jm__set_task_state(jm, v, XS(CANCELING), NULL);
        cancel_attempt(jm, v);
    }
    jm__check_end(jm);
}

void jm__suspend(jm_jobmaster_t *jm)
{
    if (jm->ended)
        return;
    jm->ended = true;
    char cause[300];
    snprintf(cause, sizeof cause, "the JobMaster of job %s is shutting down",
             jm->rec->job_id);
    fl_log(FL_LOG_INFO, "Job %s (%s) suspended: %s", jm->rec->name,
           jm->rec->job_id, cause);
    for (size_t v = 0; v < jm->nv; v++)
        if (jm->vslot[v] >= 0 && !jm__task_terminal(jm__task_state(jm, v)) &&
            !jm->tms[jm->slots[jm->vslot[v]].tm].lost)
            cancel_attempt(jm, v);
    Fling__Cluster__DisconnectJobManagerFromTaskExecutor req =
        FLING__CLUSTER__DISCONNECT_JOB_MANAGER_FROM_TASK_EXECUTOR__INIT;
    req.job_id = jm->rec->job_id;
    req.cause = cause;
    for (size_t i = 0; i < jm->ntms; i++) {
        if (jm->tms[i].lost)
            continue;
        fl_future_t *f = NULL;
        fl_rpc_call(jm->tms[i].gw, (unsigned)jm->m_disconnect_jm, &req.base, 0,
                    &f);
        fl_future_release(f);
    }
    /* Disconnected, each TaskExecutor frees the job's slots itself. */
    for (size_t i = 0; i < jm->nslots; i++)
        jm->slots[i].freed = true;
}

/* A task failed: the job restarts while the fixed-delay strategy allows,
 * else it fails. */
void jm__task_failed(jm_jobmaster_t *jm, const char *why)
{
    if (jm->ended || jm->state == JS(CANCELLING) || jm->state == JS(FAILING) ||
        jm->state == JS(RESTARTING))
        return;
    if ((int64_t)jm->restarts >= jm->restart_attempts) {
        jm__fail_job(jm, why);
        return;
    }
    snprintf(jm->restart_cause, sizeof jm->restart_cause, "%s", why);
    jm__cancel_all(jm, JS(RESTARTING), NULL);
}

void jm__fail_job(jm_jobmaster_t *jm, const char *why)
{
    if (jm->ended)
        return;
    fl_log(FL_LOG_WARN, "Job %s (%s) failed: %s", jm->rec->name,
           jm->rec->job_id, why);
    pthread_mutex_lock(&jm->rec->mu);
    if (jm->rec->failure[0] == '\0')
        snprintf(jm->rec->failure, sizeof jm->rec->failure, "%s", why);
    pthread_mutex_unlock(&jm->rec->mu);
    jm__cancel_all(jm, JS(FAILING), why);
}

/* ---- deployment -----------------------------------------------------------
 */

typedef struct submit_arg {
    jm_jobmaster_t *jm;
    size_t v;
    uint32_t attempt;
} submit_arg_t;

/* The SubmitTask of vertex a->v ended. A failure fails the task; one
 * that says the connection is gone (FL_EUNREACHABLE) also counts towards
 * the TaskExecutor's unreachable threshold, and its slots take no
 * deployment (no restart) until it answers again or is lost: a restart
 * that went back to a dead TaskManager would use up the restart
 * attempts before the heartbeats tell. */
static void submitted_body(fl_future_t *f, void *arg)
{
    submit_arg_t *a = arg;
    jm_jobmaster_t *jm = a->jm;
    if (jm->ended || jm->rec->tasks[a->v].attempt != a->attempt ||
        jm->vslot[a->v] < 0)
        return;
    jm_slot_t *sl = &jm->slots[jm->vslot[a->v]];
    jm_tm_t *tm = &jm->tms[sl->tm];
    if (fl_future_error(f) == FL_OK) { /* no longer pending */
        sl->acked = true;
        jm__tm_answered(jm, sl->tm);
        return;
    }
    bool unreachable = fl_future_error(f) == FL_EUNREACHABLE && !tm->lost;
    if (unreachable) {
        tm->unreachable++;
        tm->unreachable_ns = fl_clock_now_ns();
    }
    char why[700];
    snprintf(why, sizeof why, "Could not deploy %s: %s",
             jm->rec->tasks[a->v].name, fl_future_message(f));
    jm__set_task_state(jm, a->v, XS(FAILED), why);
    jm__task_failed(jm, why);
    if (unreachable && jm->failure_threshold > 0 &&
        tm->unreachable >= jm->failure_threshold) {
        char how[300];
        snprintf(how, sizeof how,
                 "%d calls in a row found it unreachable "
                 "(heartbeat.rpc-failure-threshold)",
                 tm->unreachable);
        char rid[256];
        memcpy(rid, tm->resource_id, sizeof rid);
        jm__tm_lost(jm, rid, how, true);
    }
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
    s->acked = false;
    s->submit_seq = ++jm->tms[s->tm].submitted;
    jm->vslot[v] = (long)slot;
    jm_task_rec_t *t = &jm->rec->tasks[v];
    pthread_mutex_lock(&jm->rec->mu);
    snprintf(t->tm, sizeof t->tm, "%s", jm->tms[s->tm].resource_id);
    pthread_mutex_unlock(&jm->rec->mu);
    jm__set_task_state(jm, v, XS(DEPLOYING), NULL);
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
        jm__set_task_state(jm, v, XS(FAILED), why);
        jm__fail_job(jm, why);
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
size_t jm__held_slots(const jm_jobmaster_t *jm)
{
    size_t n = 0;
    for (size_t i = 0; i < jm->nslots; i++)
        n += !jm->slots[i].freed;
    return n;
}

/* A slot held, empty, on a TaskExecutor not found unreachable. */
static bool slot_free(const jm_jobmaster_t *jm, size_t i)
{
    const jm_slot_t *s = &jm->slots[i];
    return !s->freed && s->vertex < 0 && jm->tms[s->tm].unreachable == 0;
}

static size_t free_slots(const jm_jobmaster_t *jm)
{
    size_t n = 0;
    for (size_t i = 0; i < jm->nslots; i++)
        n += slot_free(jm, i);
    return n;
}

/* Deploys every vertex once there is a slot for each (all at once, as
 * Flink's default scheduler does for a streaming job). */
void jm__try_deploy(jm_jobmaster_t *jm)
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
        while (!slot_free(jm, slot))
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
        jm__set_task_state(jm, v, XS(CANCELED), NULL);
    job_end(jm, JS(FAILED), why);
}

void jm__arm_slot_timer(jm_jobmaster_t *jm)
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

fl_future_t *jm__send_heartbeat(void *arg, const fl_heartbeat_msg_t *msg)
{
    jm_hb_target_t *t = arg;
    long i = jm__tm_find(t->jm, t->resource_id);
    if (i < 0)
        return NULL;
    return fg_heartbeat_send(t->jm->tms[i].gw, (unsigned)t->jm->m_heartbeat,
                             msg);
}

void jm__disconnect_tm(jm_jobmaster_t *jm, size_t i, const char *cause)
{
    Fling__Cluster__DisconnectJobManagerFromTaskExecutor req =
        FLING__CLUSTER__DISCONNECT_JOB_MANAGER_FROM_TASK_EXECUTOR__INIT;
    req.job_id = jm->rec->job_id;
    req.cause = (char *)cause;
    fl_future_t *f = NULL;
    fl_rpc_call(jm->tms[i].gw, (unsigned)jm->m_disconnect_jm, &req.base, 0, &f);
    fl_future_release(f);
}

void jm__tm_answered(jm_jobmaster_t *jm, size_t i)
{
    if (jm->tms[i].lost || jm->tms[i].unreachable == 0)
        return;
    uint64_t half_ns =
        (uint64_t)fl_heartbeat_manager_timing(jm->hb).interval_ms * 500000;
    if (fl_clock_now_ns() - jm->tms[i].unreachable_ns < half_ns)
        return;
    jm->tms[i].unreachable = 0;
    jm__try_deploy(jm);
}

/* A TaskManager is gone: the tasks that ran there failed, its slots are
 * the job's no more; told so if tell. */
void jm__tm_lost(jm_jobmaster_t *jm, const char *resource_id, const char *how,
                 bool tell)
{
    long i = jm__tm_find(jm, resource_id);
    if (i < 0 || jm->tms[i].lost)
        return;
    jm->tms[i].lost = true;
    fl_heartbeat_unmonitor(jm->hb, resource_id);
    if (tell) {
        char cause[700];
        snprintf(cause, sizeof cause,
                 "the JobMaster of job %s lost this TaskManager: %s",
                 jm->rec->job_id, how);
        jm__disconnect_tm(jm, (size_t)i, cause);
    }
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
    jm__rm_declare(jm); /* the RM's hold-offs for the job end */
    bool failed = false;
    for (size_t v = 0; v < jm->nv; v++) {
        long sl = jm->vslot[v];
        if (sl < 0 || jm->slots[sl].tm != (size_t)i ||
            jm__task_terminal(jm__task_state(jm, v)))
            continue;
        jm__set_task_state(jm, v, XS(FAILED), why);
        failed = true;
    }
    if (failed)
        jm__task_failed(jm, why);
    jm__check_end(jm);
}

void jm__hb_timeout(void *arg, const fl_heartbeat_event_t *ev)
{
    jm__tm_lost(arg, ev->target, "heartbeat timed out", true);
}

void jm__hb_unreachable(void *arg, const fl_heartbeat_event_t *ev)
{
    jm__tm_lost(arg, ev->target, "heartbeat target unreachable", true);
}

void jm__hb_incompatible(void *arg, const fl_heartbeat_event_t *ev)
{
    jm__tm_lost(arg, ev->target, ev->message, true);
}
