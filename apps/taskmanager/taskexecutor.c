/*
 * taskexecutor.c - the TaskExecutor endpoint (taskexecutor.h): its slots,
 * its gateway and its life; the connection to the ResourceManager is
 * rm_connection.c.
 *
 * All state lives on the endpoint's main thread: handlers, the leader
 * listener, the registration's callbacks, heartbeat callbacks and timers
 * all run there, so nothing here takes a lock.
 */
#include "taskexecutor_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heartbeat_rpc.h"
#include "resourcemanager.pb-c.h"

/* ---- slot report ----------------------------------------------------------
 */

/* The report: each slot with its allocation and job ("" when free). Fills
 * the caller's arrays of nslots. */
static void slot_report(const tm_te_t *te, Fling__Cluster__SlotReport *r,
                        Fling__Cluster__SlotStatus *st,
                        Fling__Cluster__SlotStatus **ptrs)
{
    for (uint32_t i = 0; i < te->nslots; i++) {
        Fling__Cluster__SlotStatus s = FLING__CLUSTER__SLOT_STATUS__INIT;
        s.index = i;
        if (te->slots != NULL && te->slots[i].releasing[0] != '\0') {
            s.allocation_id = (char *)te->slots[i].releasing;
            s.job_id = (char *)te->slots[i].releasing_job;
        } else if (te->slots != NULL) {
            s.allocation_id = (char *)te->slots[i].alloc;
            s.job_id = (char *)te->slots[i].job;
        }
        st[i] = s;
        ptrs[i] = &st[i];
    }
    r->n_slots = te->nslots;
    r->slots = ptrs;
}

int tm__report_init(const tm_te_t *te, report_buf_t *b)
{
    Fling__Cluster__SlotReport r = FLING__CLUSTER__SLOT_REPORT__INIT;
    b->r = r;
    b->st = calloc(te->nslots, sizeof *b->st);
    b->ptrs = calloc(te->nslots, sizeof *b->ptrs);
    if (b->st == NULL || b->ptrs == NULL) {
        free(b->st);
        free(b->ptrs);
        return FL_ENOMEM;
    }
    slot_report(te, &b->r, b->st, b->ptrs);
    return FL_OK;
}

void tm__report_fini(report_buf_t *b)
{
    free(b->st);
    free(b->ptrs);
}

/* ---- the gateway ----------------------------------------------------------
 */

static void te_heartbeat_from_resource_manager(
    Fling__Cluster__TaskExecutorGateway_Service *svc,
    const Fling__Cluster__Heartbeat *req, Fling__Cluster__Ack_Closure closure,
    void *call)
{
    (void)svc;
    tm_te_t *te = fl_rpc_call_state(call);
    fg_heartbeat_answer(te->hb, true, req, closure, call);
}

static void te_disconnect_resource_manager(
    Fling__Cluster__TaskExecutorGateway_Service *svc,
    const Fling__Cluster__DisconnectResourceManagerRequest *req,
    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    tm_te_t *te = fl_rpc_call_state(call);
    if (te->registered && strcmp(req->instance_id, te->instance_id) == 0) {
        char why[600];
        snprintf(why, sizeof why, "it disconnected this TaskManager (%s)",
                 req->cause);
        tm__reconnect(te, why, false);
    }
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
}

static Fling__Cluster__TaskExecutorGateway_Service te_impl =
    FLING__CLUSTER__TASK_EXECUTOR_GATEWAY__INIT(te_);

/* ---- life -----------------------------------------------------------------
 */

static int te_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    tm_te_t *te = state;
    fl_heartbeat_opts_t o = {
        .id = te->resource_id,
        .role = FL_HEARTBEAT_RECEIVER,
        .on_timeout = tm__rm_silent,
        .on_unreachable = tm__rm_silent,
        .on_incompatible = tm__rm_silent,
        .retrieve_payload = tm__retrieve_payload,
        .arg = te,
    };
    char why[512];
    int rc = fl_cluster_heartbeat_opts(te->cfg, &o, why, sizeof why);
    if (rc == FL_OK)
        rc = fl_heartbeat_manager_alloc(ep, &o, &te->hb, why, sizeof why);
    fl_heartbeat_opts_t oj = o;
    oj.on_timeout = tm__jm_silent;
    oj.on_unreachable = tm__jm_silent;
    oj.on_incompatible = tm__jm_silent;
    oj.retrieve_payload = tm__jm_report;
    oj.report_payload = tm__jm_probe;
    if (rc == FL_OK)
        rc = fl_heartbeat_manager_alloc(ep, &oj, &te->hb_jm, why, sizeof why);
    if (rc == FL_OK)
        rc = fl_leader_retrieval_alloc(ep, &te->ha, "resourcemanager",
                                       tm__leader_changed, te, &te->lr, why,
                                       sizeof why);
    if (rc == FL_OK)
        rc = fl_leader_retrieval_start(te->lr, why, sizeof why);
    if (rc != FL_OK)
        return fl_rpc_start_fail(ep, rc, "%s", why);
    fl_log(FL_LOG_INFO, "TaskExecutor %s started as %s with %u slots",
           fl_rpc_endpoint_address(ep), te->resource_id, (unsigned)te->nslots);
    tm__arm_timer(te);
    return FL_OK;
}

/* Completes done once the goodbye call has an answer, whatever it is. */
static void goodbye_done(fl_future_t *f, void *arg)
{
    (void)f;
    fl_future_complete(arg, NULL, NULL);
    fl_future_release(arg);
}

static fl_future_t *te_on_stop(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    tm_te_t *te = state;
    te->stopping = true;
    tm__disarm_timer(te);
    tm__tasks_stop(te);
    tm__jobs_stop(te);
    fl_leader_retrieval_free(te->lr);
    te->lr = NULL;
    fl_future_t *bye = NULL;
    if (te->registered) {
        char cause[300];
        snprintf(cause, sizeof cause, "TaskManager %s is shutting down",
                 te->resource_id);
        bye = tm__tell_disconnect(te, cause);
        te->registered = false;
    }
    fl_heartbeat_manager_free(te->hb);
    te->hb = NULL;
    fl_heartbeat_manager_free(te->hb_jm);
    te->hb_jm = NULL;
    if (te->conn != NULL)
        fl_registered_connection_close(te->conn);
    if (bye == NULL)
        return NULL;
    fl_future_t *done = fl_future_alloc();
    if (done == NULL ||
        fl_future_on_complete(bye, goodbye_done, fl_future_retain(done)) !=
            FL_OK) {
        fl_future_release(bye);
        fl_future_release(done); /* the retained reference */
        fl_future_release(done);
        return NULL;
    }
    fl_future_release(bye);
    return done;
}

/* The endpoint ended with an error (it could not start): end the process. */
static void te_ended(fl_future_t *f, void *arg)
{
    if (fl_future_error(f) != FL_OK)
        fa_process_fatal(arg, "%s", fl_future_message(f));
    fl_future_release(f); /* the reference tm_te_start took */
}

int tm_te_start(fl_rpc_service_t *svc, fa_process_t *p, const fl_ha_opts_t *ha,
                tm_te_t **out, char *err, size_t errlen)
{
    tm_te_t *te = calloc(1, sizeof *te);
    if (te == NULL) {
        snprintf(err, errlen, "out of memory");
        return FL_ENOMEM;
    }
    te->svc = svc;
    te->proc = p;
    te->cfg = p->cfg;
    te->ha = *ha;
#define COPY(field, buf)                                                       \
    if (ha->field != NULL) {                                                   \
        snprintf(te->buf, sizeof te->buf, "%s", ha->field);                    \
        te->ha.field = te->buf;                                                \
    }
    COPY(standalone_address, ha_address)
    COPY(zk_quorum, ha_quorum)
    COPY(zk_root, ha_root)
    COPY(cluster_id, ha_cluster)
#undef COPY
    int64_t slots = 1;
    fl_config_get_int(te->cfg, FL_CONFIG_TASKMANAGER_SLOTS, &slots);
    te->nslots = (uint32_t)slots;
    te->slots = calloc(te->nslots, sizeof *te->slots);
    if (te->slots == NULL) {
        free(te);
        snprintf(err, errlen, "out of memory");
        return FL_ENOMEM;
    }
    fl_config_get_duration_ms(te->cfg,
                              FL_CONFIG_TASKMANAGER_REGISTRATION_TIMEOUT,
                              &te->reg_timeout_ms);
    fl_config_get_duration_ms(te->cfg, FL_CONFIG_TASK_CANCELLATION_INTERVAL,
                              &te->cancel_interval_ms);
    fl_config_get_duration_ms(te->cfg, FL_CONFIG_TASK_CANCELLATION_TIMEOUT,
                              &te->cancel_timeout_ms);
    te->slot_timeout_ms = FL_RPC_DEFAULT_TIMEOUT_MS;
    fl_config_get_duration_ms(te->cfg, FL_CONFIG_RPC_ASK_TIMEOUT,
                              &te->slot_timeout_ms);
    const char *rid = "";
    fl_config_get_string(te->cfg, FL_CONFIG_TASKMANAGER_RESOURCE_ID, &rid);
    if (rid[0] != '\0')
        snprintf(te->resource_id, sizeof te->resource_id, "%s", rid);
    else
        snprintf(te->resource_id, sizeof te->resource_id, "%s:%d",
                 fl_rpc_service_address(svc), fl_rpc_service_port(svc));
    fa_random_hex(te->session_id, 16);
    for (size_t i = 0; i < fa_cluster_key_count() && i < NKEYS_MAX; i++)
        fl_config_get_text(te->cfg, fa_cluster_key_at(i), te->values[i],
                           VALUE_MAX);
    const ProtobufCServiceDescriptor *rm =
        &fling__cluster__resource_manager_gateway__descriptor;
    te->m_register = fl_rpc_method_index(rm, "RegisterTaskExecutor");
    te->m_report = fl_rpc_method_index(rm, "SendSlotReport");
    te->m_heartbeat = fl_rpc_method_index(rm, "HeartbeatFromTaskManager");
    te->m_disconnect = fl_rpc_method_index(rm, "DisconnectTaskManager");
    int rc = fl_cluster_registration_opts(te->cfg, &te->ropts, err, errlen);
    if (rc != FL_OK) {
        free(te->slots);
        free(te);
        return rc;
    }
    static ProtobufCService *const services[] = {&te_impl.base};
    fl_rpc_endpoint_opts_t o = {
        .id = "taskexecutor",
        .services = services,
        .nservices = 1,
        .state = te,
        .on_start = te_on_start,
        .on_stop = te_on_stop,
    };
    rc = fl_rpc_endpoint_create(svc, &o, &te->ep);
    if (rc == FL_OK)
        rc = fl_rpc_endpoint_start(te->ep);
    if (rc != FL_OK) {
        snprintf(err, errlen, "Could not start the TaskExecutor: %s",
                 fl_rpc_last_message());
        if (te->ep != NULL) {
            fl_future_release(fl_rpc_endpoint_close(te->ep));
            fl_rpc_endpoint_free(te->ep);
        }
        free(te->slots);
        free(te);
        return rc;
    }
    fl_future_t *term = fl_rpc_endpoint_termination(te->ep);
    if (term != NULL && fl_future_on_complete(term, te_ended, p) != FL_OK)
        fl_future_release(term);
    *out = te;
    return FL_OK;
}

fl_future_t *tm_te_close(tm_te_t *te)
{
    return fl_rpc_endpoint_close(te->ep);
}

void tm_te_free(tm_te_t *te)
{
    if (te == NULL)
        return;
    fl_registered_connection_free(te->conn);
    fl_rpc_scheduled_free(te->timer);
    fl_rpc_endpoint_free(te->ep);
    free(te->payload);
    free(te->jm_payload);
    free(te->slots);
    free(te);
}
