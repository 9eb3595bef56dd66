/*
 * jobmaster.c - the JobMaster endpoint of one job (jobmaster.h): its
 * gateway and its life; the job's run is jobmaster_run.c, the connection
 * to the ResourceManager jobmaster_rm.c.
 *
 * All state lives on the endpoint's main thread (handlers, connect and
 * call completions, the slot request timer); the job's record is shared
 * with the Dispatcher under its mutex.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heartbeat_rpc.h"
#include "jobmaster_int.h"
#include "process.h"
#include "resourcemanager.pb-c.h"

static void
jm_heartbeat_from_task_manager(Fling__Cluster__JobMasterGateway_Service *svc,
                               const Fling__Cluster__Heartbeat *req,
                               Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    jm_jobmaster_t *jm = fl_rpc_call_state(call);
    fg_heartbeat_answer(jm->hb, false, req, closure, call);
}

/* ---- the gateway ----------------------------------------------------------
 */

long jm__tm_find(const jm_jobmaster_t *jm, const char *resource_id)
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
    char session_id[64];
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
    long i = jm__tm_find(jm, a->resource_id);
    /* A new process under the old id before its loss was noticed: the
     * old one's slots and tasks are lost, not inherited. */
    if (i >= 0 && strcmp(jm->tms[i].session_id, a->session_id) != 0)
        jm__tm_lost(jm, a->resource_id,
                    "it registered again from a new process", false);
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
        snprintf(t[i].session_id, sizeof t[i].session_id, "%s", a->session_id);
        t[i].gw = gw;
        t[i].lost = false;
        t[i].unreachable = 0;
        t[i].submitted = 0;
        t[i].ncancels = 0;
        t[i].warned_ns = 0;
        jm_hb_target_t *h = malloc(sizeof *h);
        if (h != NULL) {
            h->jm = jm;
            snprintf(h->resource_id, sizeof h->resource_id, "%s",
                     a->resource_id);
            fl_heartbeat_monitor(jm->hb, a->resource_id, jm__send_heartbeat, h,
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
    snprintf(a->session_id, sizeof a->session_id, "%s", req->session_id);
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
    long tm = jm__tm_find(jm, req->resource_id);
    /* A lost TaskManager's registration has ended: its late offers (sent
     * before a partition, say) are refused as an unknown one's, and it is
     * told again it was lost, so that it frees the job's slots and
     * registers again instead of offering them over and over. */
    if (tm >= 0 && jm->tms[tm].lost) {
        char cause[300];
        snprintf(cause, sizeof cause,
                 "the JobMaster of job %s lost this TaskManager earlier; "
                 "register again",
                 jm->rec->job_id);
        jm__disconnect_tm(jm, (size_t)tm, cause);
        tm = -1;
    }
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
        if (jm->ended || jm__held_slots(jm) >= jm->nv)
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
    jm__try_deploy(jm);
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
        /* Logged too: a late update of an old attempt (a TaskManager
         * back from a partition) is seen at the JobManager. */
        char why[600];
        snprintf(why, sizeof why,
                 "State update %s of task %u attempt #%u of job %s from "
                 "TaskManager %s refused: not a current attempt of this "
                 "JobMaster's job",
                 jm__exec_state_name(req->state), (unsigned)req->vertex,
                 (unsigned)req->attempt, req->job_id, req->resource_id);
        fl_log(FL_LOG_WARN, "%s", why);
        fl_rpc_fail(call, FL_ESTATE, "%s", why);
        return;
    }
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
    size_t v = req->vertex;
    int old = jm__task_state(jm, v);
    if (jm__task_terminal(old))
        return;
    int s = req->state;
    /* Once cancelling, only the end of the attempt counts. */
    if (old == XS(CANCELING) && !jm__task_terminal(s))
        return;
    jm__set_task_state(jm, v, s, s == XS(FAILED) ? req->message : NULL);
    if (s == XS(FAILED)) {
        int before = jm->state;
        jm__task_failed(jm, req->message);
        /* Failed while the job was already cancelling or restarting: its
         * end may be the last one awaited. */
        if (jm->state == before)
            jm__check_end(jm);
    } else if (s == XS(CANCELED) && jm->state == JS(RUNNING))
        jm__fail_job(jm, "a task was cancelled outside the JobMaster");
    else if (jm__task_terminal(s))
        jm__check_end(jm);
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
    jm__tm_lost(jm, req->resource_id, how, false);
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
        jm__cancel_all(jm, JS(CANCELLING), NULL);
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
}

static void jm_heartbeat_from_resource_manager(
    Fling__Cluster__JobMasterGateway_Service *svc,
    const Fling__Cluster__Heartbeat *req, Fling__Cluster__Ack_Closure closure,
    void *call);

static Fling__Cluster__JobMasterGateway_Service jm_impl =
    FLING__CLUSTER__JOB_MASTER_GATEWAY__INIT(jm_);

/* ---- the ResourceManager --------------------------------------------------
 */

static void jm_heartbeat_from_resource_manager(
    Fling__Cluster__JobMasterGateway_Service *svc,
    const Fling__Cluster__Heartbeat *req, Fling__Cluster__Ack_Closure closure,
    void *call)
{
    (void)svc;
    jm_jobmaster_t *jm = fl_rpc_call_state(call);
    fg_heartbeat_answer(jm->hb_rm, true, req, closure, call);
}

/* ---- life -----------------------------------------------------------------
 */

static int jm_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    jm_jobmaster_t *jm = state;
    fl_heartbeat_opts_t ho = {
        .id = jm->id,
        .role = FL_HEARTBEAT_SENDER,
        .on_timeout = jm__hb_timeout,
        .on_unreachable = jm__hb_unreachable,
        .on_incompatible = jm__hb_incompatible,
        .retrieve_payload = jm__hb_probe,
        .report_payload = jm__hb_report,
        .arg = jm,
    };
    char hwhy[512];
    if (fl_cluster_heartbeat_opts(jm->cfg, &ho, hwhy, sizeof hwhy) != FL_OK ||
        fl_heartbeat_manager_alloc(ep, &ho, &jm->hb, hwhy, sizeof hwhy) !=
            FL_OK)
        return fl_rpc_start_fail(ep, FL_EINVAL, "%s", hwhy);
    jm->failure_threshold = ho.failure_threshold == 0
                                ? FL_HEARTBEAT_DEFAULT_FAILURE_THRESHOLD
                                : ho.failure_threshold;
    fl_heartbeat_opts_t hr = ho;
    hr.role = FL_HEARTBEAT_RECEIVER;
    hr.on_timeout = jm__rm_silent;
    hr.on_unreachable = jm__rm_silent;
    hr.on_incompatible = jm__rm_silent;
    hr.retrieve_payload = NULL;
    hr.report_payload = NULL;
    if (fl_heartbeat_manager_alloc(ep, &hr, &jm->hb_rm, hwhy, sizeof hwhy) !=
        FL_OK)
        return fl_rpc_start_fail(ep, FL_EINVAL, "%s", hwhy);
    for (size_t v = 0; v < jm->nv; v++)
        jm__set_task_state(jm, v, XS(SCHEDULED), NULL);
    jm__set_job_state(jm, JS(RUNNING), NULL);
    jm__arm_slot_timer(jm);
    char why[512];
    if (jm__rm_start(jm, why, sizeof why) != FL_OK) {
        char msg[1200];
        snprintf(msg, sizeof msg,
                 "Could not register the JobMaster at the ResourceManager "
                 "%s: %s",
                 jm->rm_address, why);
        jm__fail_job(jm, msg);
    }
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
    jm__suspend(jm);
    jm__rm_stop(jm);
    fl_heartbeat_manager_free(jm->hb);
    jm->hb = NULL;
    fl_heartbeat_manager_free(jm->hb_rm);
    jm->hb_rm = NULL;
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
        jm__cancel_all(jm, JS(CANCELLING), NULL);
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
    jm__rm_free(jm);
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
