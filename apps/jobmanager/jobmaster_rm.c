/*
 * jobmaster_rm.c - the JobMaster's connection to the ResourceManager
 * (jobmaster_int.h; Flink's ResourceManagerConnection): the retrying
 * registration of the cluster layer (cluster.registration.*), the slot
 * declaration after each success, the ResourceManager's heartbeats as the
 * receiver, and registering again when they stop or the ResourceManager
 * refuses the declaration (it lost this JobMaster). Running tasks keep
 * running meanwhile. A job that ends while a registration is under way
 * waits for its outcome (heartbeat.timeout at most) before it frees its
 * slots, and a success leaves at once (DisconnectJobManager): else the
 * ResourceManager would keep the job's declaration and give the freed
 * slots to it again. Everything runs on the JobMaster's main thread.
 *
 * Limit: the JobMaster registers at the one ResourceManager address and
 * fencing token it was started with (jm_jobmaster_opts_t); it does not
 * follow leader retrieval to a new ResourceManager. That is correct only
 * because a JobManager that gains the leadership starts a new Dispatcher,
 * which starts new JobMasters with the new leader's address and token,
 * and one that loses it stops its Dispatcher and every JobMaster. A
 * ResourceManager that moved without its Dispatcher would leave the
 * JobMaster registering at the old address (retrying as
 * cluster.registration.* says) for as long as it runs, and its job would
 * get no new slot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heartbeat_rpc.h"
#include "jobmaster_int.h"
#include "registration_call.h"
#include "resourcemanager.pb-c.h"

static int method(const char *name)
{
    return fl_rpc_method_index(
        &fling__cluster__resource_manager_gateway__descriptor, name);
}

static fl_future_t *send_rm_heartbeat(void *arg, const fl_heartbeat_msg_t *msg)
{
    jm_jobmaster_t *jm = arg;
    if (jm->rm == NULL)
        return NULL;
    return fg_heartbeat_send(jm->rm,
                             (unsigned)method("HeartbeatFromJobManager"), msg);
}

/* This registration is over (why): register again, for as long as it
 * takes; the job's tasks keep running. */
static void register_again(jm_jobmaster_t *jm, const char *why)
{
    if (jm->ended || jm->rm == NULL)
        return;
    fl_log(FL_LOG_WARN,
           "JobMaster of job %s lost its ResourceManager %s: %s; registering "
           "again",
           jm->rec->job_id, jm->rm_address, why);
    jm->rm = NULL;
    fl_heartbeat_unmonitor(jm->hb_rm, jm->rm_hb_id);
    fl_registered_connection_try_reconnect(jm->rm_conn);
}

void jm__rm_silent(void *arg, const fl_heartbeat_event_t *ev)
{
    register_again(arg, ev->message);
}

static void declared(fl_future_t *f, void *arg)
{
    jm_jobmaster_t *jm = arg;
    if (fl_future_error(f) == FL_OK)
        return;
    char why[1100];
    snprintf(why, sizeof why, "the declaration of the job's slots failed: %s",
             fl_future_message(f));
    register_again(jm, why);
}

fl_future_t *jm__rm_leave(jm_jobmaster_t *jm, fl_rpc_gateway_t *rm)
{
    char cause[300];
    snprintf(cause, sizeof cause, "Job %s reached state %s", jm->rec->job_id,
             jm__job_state_name(jm->state));
    Fling__Cluster__DisconnectJobManagerRequest req =
        FLING__CLUSTER__DISCONNECT_JOB_MANAGER_REQUEST__INIT;
    req.job_id = jm->rec->job_id;
    req.state = (Fling__Cluster__JobStatus__State)jm->state;
    req.cause = cause;
    fl_future_t *f = NULL;
    if (fl_rpc_call(rm, (unsigned)method("DisconnectJobManager"), &req.base, 0,
                    &f) != FL_OK)
        return NULL;
    return f;
}

/* The wait of jm__rm_leave_later is over: free the slots. */
static void leave_done(jm_jobmaster_t *jm)
{
    if (!jm->leaving)
        return;
    jm->leaving = false;
    if (jm->leave_timer != NULL) {
        fl_rpc_scheduled_cancel(jm->leave_timer);
        fl_rpc_scheduled_free(jm->leave_timer);
        jm->leave_timer = NULL;
    }
    jm__release_all(jm);
}

static void left(fl_future_t *f, void *arg)
{
    (void)f;
    leave_done(arg);
}

static void leave_timeout(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)arg;
    jm_jobmaster_t *jm = state;
    if (!jm->leaving)
        return;
    fl_log(FL_LOG_WARN,
           "JobMaster of job %s stops waiting for its registration at "
           "ResourceManager %s after heartbeat.timeout; the ResourceManager "
           "drops it when its heartbeats go unanswered",
           jm->rec->job_id, jm->rm_address);
    fl_registered_connection_close(jm->rm_conn);
    leave_done(jm);
}

bool jm__rm_leave_later(jm_jobmaster_t *jm)
{
    if (jm->rm != NULL || jm->rm_conn == NULL ||
        fl_registered_connection_is_closed(jm->rm_conn))
        return false;
    int64_t ms = 50000;
    fl_config_get_duration_ms(jm->cfg, FL_CONFIG_HEARTBEAT_TIMEOUT, &ms);
    if (fl_rpc_schedule_run_async(jm->ep, leave_timeout, NULL, NULL, ms,
                                  &jm->leave_timer) != FL_OK)
        return false;
    jm->leaving = true;
    return true;
}

static void on_success(fl_registered_connection_t *c,
                       const fl_registration_response_t *resp, void *arg)
{
    jm_jobmaster_t *jm = arg;
    if (jm->ended) {
        /* The job ended while this registration was under way: the
         * ResourceManager drops the job's declaration, then the slots are
         * freed (left). */
        fl_log(FL_LOG_INFO,
               "JobMaster of job %s registered at ResourceManager %s after "
               "its job ended; disconnecting",
               jm->rec->job_id, jm->rm_address);
        fl_future_t *f = jm__rm_leave(jm, fl_registered_connection_gateway(c));
        fl_registered_connection_close(c);
        if (f == NULL || fl_rpc_on_complete(jm->ep, f, left, jm, NULL) != FL_OK)
            leave_done(jm);
        fl_future_release(f);
        return;
    }
    jm->rm = fl_registered_connection_gateway(c);
    /* The old id first: the new one may differ (another ResourceManager
     * process). */
    fl_heartbeat_unmonitor(jm->hb_rm, jm->rm_hb_id);
    snprintf(jm->rm_hb_id, sizeof jm->rm_hb_id, "%s",
             (const char *)resp->payload);
    /* Heartbeats with the ResourceManager (step 11): it requests, we
     * answer. Monitored before the line below is logged: a reader of the
     * line knows the timeout runs (a pause of the process from then on
     * is a timeout). */
    fl_heartbeat_monitor(jm->hb_rm, jm->rm_hb_id, send_rm_heartbeat, jm, NULL);
    char hex[33];
    fl_log(FL_LOG_INFO,
           "JobMaster of job %s registered at ResourceManager %s (leader "
           "token %s)",
           jm->rec->job_id, jm->rm_address,
           fl_fencing_token_hex(&jm->rm_token, hex));
    jm__rm_declare(jm);
}

void jm__rm_declare(jm_jobmaster_t *jm)
{
    if (jm->ended || jm->rm == NULL)
        return;
    Fling__Cluster__ResourceRequirements req =
        FLING__CLUSTER__RESOURCE_REQUIREMENTS__INIT;
    req.job_id = jm->rec->job_id;
    req.slots = (uint32_t)jm->nv;
    fl_future_t *d = NULL;
    if (fl_rpc_call(jm->rm, (unsigned)method("DeclareRequiredResources"),
                    &req.base, 0, &d) == FL_OK) {
        fl_rpc_on_complete(jm->ep, d, declared, jm, NULL);
        fl_future_release(d);
    }
}

static void on_rejection(fl_registered_connection_t *c,
                         const fl_registration_response_t *resp, void *arg)
{
    (void)c;
    jm_jobmaster_t *jm = arg;
    if (jm->ended) {
        leave_done(jm);
        return;
    }
    char why[1100];
    snprintf(why, sizeof why,
             "The ResourceManager %s refused the JobMaster's registration: "
             "%s",
             jm->rm_address, resp->reason);
    jm__fail_job(jm, why);
}

static void on_failure(fl_registered_connection_t *c, int err,
                       const char *message, void *arg)
{
    (void)c;
    jm_jobmaster_t *jm = arg;
    if (jm->ended) {
        leave_done(jm);
        return;
    }
    char why[1100];
    snprintf(why, sizeof why,
             "Could not register the JobMaster at the ResourceManager %s: "
             "%s (%s)",
             jm->rm_address, message, fl_err_name(err));
    jm__fail_job(jm, why);
}

/* Maps the RegisterJobMaster reply to a success whose payload is the
 * ResourceManager's heartbeat id; on the thread that completes the call. */
static int map_reply(void *arg, void *value, void **out, fl_free_cb *out_free)
{
    (void)arg;
    const Fling__Cluster__JobMasterRegistrationReply *r = value;
    size_t n = strlen(r->rm_resource_id) + 1;
    char *id = malloc(n);
    if (id == NULL)
        return FL_ENOMEM;
    memcpy(id, r->rm_resource_id, n);
    return fa_registration_out(
        fl_registration_response_alloc(FL_REGISTRATION_SUCCESS, id, free, NULL),
        out, out_free);
}

static int invoke(fl_rpc_gateway_t *gw, const fl_fencing_token_t *token,
                  int64_t timeout_ms, void *arg, fl_future_t **out)
{
    (void)token;
    jm_jobmaster_t *jm = arg;
    Fling__Cluster__JobMasterRegistration req =
        FLING__CLUSTER__JOB_MASTER_REGISTRATION__INIT;
    req.job_id = jm->rec->job_id;
    req.address = (char *)fl_rpc_endpoint_address(jm->ep);
    req.token.data = jm->token.bytes;
    req.token.len = sizeof jm->token.bytes;
    return fa_registration_call(gw, (unsigned)method("RegisterJobMaster"),
                                &req.base, timeout_ms, map_reply, out);
}

int jm__rm_start(jm_jobmaster_t *jm, char *why, size_t len)
{
    int rc = fl_cluster_registration_opts(jm->cfg, &jm->ropts, why, len);
    if (rc != FL_OK)
        return rc;
    fl_registered_connection_cbs_t cbs = {on_success, on_rejection, on_failure};
    fl_registration_spec_t spec = {
        .target_name = "resourcemanager",
        .address = jm->rm_address,
        .desc = &fling__cluster__resource_manager_gateway__descriptor,
        .token = &jm->rm_token,
        .invoke = invoke,
        .arg = jm,
        .opts = &jm->ropts,
    };
    rc = fl_registered_connection_alloc(jm->ep, &spec, &cbs, jm, &jm->rm_conn,
                                        why, len);
    if (rc == FL_OK)
        rc = fl_registered_connection_start(jm->rm_conn);
    if (rc != FL_OK && rc != FL_EINVAL)
        snprintf(why, len, "%s", fl_strerror(rc));
    return rc;
}

void jm__rm_stop(jm_jobmaster_t *jm)
{
    jm->rm = NULL;
    if (jm->leave_timer != NULL) {
        fl_rpc_scheduled_cancel(jm->leave_timer);
        fl_rpc_scheduled_free(jm->leave_timer);
        jm->leave_timer = NULL;
    }
    if (jm->rm_conn != NULL)
        fl_registered_connection_close(jm->rm_conn);
}

void jm__rm_free(jm_jobmaster_t *jm)
{
    fl_registered_connection_free(jm->rm_conn);
    jm->rm_conn = NULL;
}
