/*
 * taskexecutor.c - the TaskExecutor endpoint (taskexecutor.h).
 *
 * All state lives on the endpoint's main thread: handlers, the leader
 * listener, the registration's callbacks, heartbeat callbacks and timers
 * all run there, so nothing here takes a lock.
 */
#include "taskexecutor.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resourcemanager.pb-c.h"
#include "taskexecutor.pb-c.h"

#define ADDR_MAX 512
#define VALUE_MAX 128
#define NKEYS_MAX 8

struct tm_te {
    fl_rpc_service_t *svc;
    fa_process_t *proc;
    const fl_config_t *cfg;
    fl_rpc_endpoint_t *ep;
    /* Leader retrieval of the ResourceManager, with its options' strings. */
    fl_ha_opts_t ha;
    char ha_address[ADDR_MAX], ha_quorum[ADDR_MAX], ha_root[ADDR_MAX],
        ha_cluster[ADDR_MAX];
    fl_leader_retrieval_t *lr;
    /* The current leader and the connection to it. */
    char rm_address[ADDR_MAX];
    fl_fencing_token_t rm_token;
    fl_registered_connection_t *conn;
    fl_registration_opts_t ropts;
    /* A gateway whose last attempt found its endpoint gone, and the
     * generation of the pending new connection (see invoke). */
    const fl_rpc_gateway_t *stale_gw;
    uintptr_t conn_gen;
    /* The registration that holds, while registered. */
    bool registered;
    char instance_id[64];
    char rm_hb_id[ADDR_MAX];
    fl_heartbeat_manager_t *hb;
    /* The registration timeout: the task and its generation. */
    fl_rpc_scheduled_t *timer;
    uintptr_t timer_gen;
    int64_t reg_timeout_ms;
    /* Who we are. */
    char resource_id[256];
    char session_id[33];
    uint32_t nslots;
    char values[NKEYS_MAX][VALUE_MAX];
    /* The packed slot report of the last heartbeat. */
    uint8_t *payload;
    size_t payload_cap;
    int m_register, m_report, m_heartbeat, m_disconnect;
};

/* What a successful registration answered. */
typedef struct success {
    char instance_id[64];
    char rm_hb_id[ADDR_MAX];
} success_t;

/* ---- slot report ----------------------------------------------------------
 */

/* The report: every slot free in this version (no jobs yet). Fills the
 * caller's arrays of nslots. */
static void slot_report(const tm_te_t *te, Fling__Cluster__SlotReport *r,
                        Fling__Cluster__SlotStatus *st,
                        Fling__Cluster__SlotStatus **ptrs)
{
    for (uint32_t i = 0; i < te->nslots; i++) {
        Fling__Cluster__SlotStatus s = FLING__CLUSTER__SLOT_STATUS__INIT;
        s.index = i;
        st[i] = s;
        ptrs[i] = &st[i];
    }
    r->n_slots = te->nslots;
    r->slots = ptrs;
}

/* Calls fn with the report built on the heap (nslots may be large). */
typedef struct report_buf {
    Fling__Cluster__SlotReport r;
    Fling__Cluster__SlotStatus *st;
    Fling__Cluster__SlotStatus **ptrs;
} report_buf_t;

static int report_init(const tm_te_t *te, report_buf_t *b)
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

static void report_fini(report_buf_t *b)
{
    free(b->st);
    free(b->ptrs);
}

/* ---- the registration timeout ---------------------------------------------
 */

static void timer_fired(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    tm_te_t *te = state;
    if ((uintptr_t)arg != te->timer_gen || te->registered)
        return;
    fa_process_fatal(
        te->proc,
        "TaskManager %s could not register at the ResourceManager %s within "
        "%lld ms (taskmanager.registration.timeout); check that the "
        "JobManager runs and is reachable",
        te->resource_id,
        te->rm_address[0] ? te->rm_address : "(no leader known)",
        (long long)te->reg_timeout_ms);
}

/* (Re)arms the timeout, as Flink does on every reconnect. */
static void arm_timer(tm_te_t *te)
{
    if (te->timer != NULL) {
        fl_rpc_scheduled_cancel(te->timer);
        fl_rpc_scheduled_free(te->timer);
        te->timer = NULL;
    }
    te->timer_gen++;
    if (fl_rpc_schedule_run_async(te->ep, timer_fired, (void *)te->timer_gen,
                                  NULL, te->reg_timeout_ms,
                                  &te->timer) != FL_OK)
        fl_log(FL_LOG_WARN,
               "TaskManager %s could not arm its registration "
               "timeout: %s",
               te->resource_id, fl_rpc_last_message());
}

static void disarm_timer(tm_te_t *te)
{
    te->timer_gen++;
    if (te->timer != NULL) {
        fl_rpc_scheduled_cancel(te->timer);
        fl_rpc_scheduled_free(te->timer);
        te->timer = NULL;
    }
}

/* ---- connection to the ResourceManager ------------------------------------
 */

/* Tells the ResourceManager we leave it; returns the call's future, or NULL. */
static fl_future_t *tell_disconnect(tm_te_t *te, const char *cause)
{
    fl_rpc_gateway_t *gw = fl_registered_connection_gateway(te->conn);
    if (gw == NULL)
        return NULL;
    Fling__Cluster__DisconnectTaskManagerRequest req =
        FLING__CLUSTER__DISCONNECT_TASK_MANAGER_REQUEST__INIT;
    req.resource_id = te->resource_id;
    req.cause = (char *)cause;
    fl_future_t *f = NULL;
    fl_rpc_call(gw, (unsigned)te->m_disconnect, &req.base, 0, &f);
    return f;
}

/* Ends the current registration; tell: say so to the ResourceManager. */
static void unregister(tm_te_t *te, const char *cause, bool tell)
{
    if (!te->registered)
        return;
    te->registered = false;
    if (te->hb != NULL)
        fl_heartbeat_unmonitor(te->hb, te->rm_hb_id);
    if (tell)
        fl_future_release(tell_disconnect(te, cause));
}

/* The ResourceManager is gone for this registration: register again. */
static void reconnect(tm_te_t *te, const char *why, bool tell)
{
    if (!te->registered)
        return;
    fl_log(FL_LOG_INFO, "ResourceManager %s lost: %s; registering again",
           te->rm_hb_id, why);
    unregister(te, why, tell);
    arm_timer(te);
    fl_registered_connection_try_reconnect(te->conn);
}

static void report_sent(fl_future_t *f, void *arg)
{
    tm_te_t *te = arg;
    if (fl_future_error(f) != FL_OK && te->registered) {
        char why[FL_FUTURE_MESSAGE_MAX + 64];
        snprintf(why, sizeof why, "the slot report failed: %s",
                 fl_future_message(f));
        reconnect(te, why, true);
    }
}

static void send_report(tm_te_t *te)
{
    report_buf_t b;
    if (report_init(te, &b) != FL_OK)
        return;
    Fling__Cluster__SlotReportRequest req =
        FLING__CLUSTER__SLOT_REPORT_REQUEST__INIT;
    req.resource_id = te->resource_id;
    req.instance_id = te->instance_id;
    req.report = &b.r;
    fl_future_t *f = NULL;
    if (fl_rpc_call(fl_registered_connection_gateway(te->conn),
                    (unsigned)te->m_report, &req.base, 0, &f) == FL_OK) {
        fl_rpc_on_complete(te->ep, f, report_sent, te, NULL);
        fl_future_release(f);
    }
    report_fini(&b);
}

static fl_future_t *send_heartbeat(void *arg, const fl_heartbeat_msg_t *msg)
{
    tm_te_t *te = arg;
    fl_rpc_gateway_t *gw = fl_registered_connection_gateway(te->conn);
    if (!te->registered || gw == NULL)
        return NULL;
    Fling__Cluster__Heartbeat req = FLING__CLUSTER__HEARTBEAT__INIT;
    Fling__Cluster__HeartbeatTiming tm = FLING__CLUSTER__HEARTBEAT_TIMING__INIT;
    req.origin = (char *)msg->origin;
    req.target = (char *)msg->target;
    req.payload.data = (uint8_t *)msg->payload;
    req.payload.len = msg->payload_len;
    if (msg->timing != NULL) {
        tm.interval_ms = msg->timing->interval_ms;
        tm.timeout_ms = msg->timing->timeout_ms;
        req.timing = &tm;
    }
    fl_future_t *f = NULL;
    fl_rpc_call(gw, (unsigned)te->m_heartbeat, &req.base, 0, &f);
    return f;
}

static void on_success(fl_registered_connection_t *c,
                       const fl_registration_response_t *resp, void *arg)
{
    tm_te_t *te = arg;
    const success_t *s = resp->payload;
    te->registered = true;
    snprintf(te->instance_id, sizeof te->instance_id, "%s", s->instance_id);
    snprintf(te->rm_hb_id, sizeof te->rm_hb_id, "%s", s->rm_hb_id);
    disarm_timer(te);
    fl_log(FL_LOG_INFO, "Registered at ResourceManager %s as %s",
           fl_rpc_gateway_address(fl_registered_connection_gateway(c)),
           te->resource_id);
    fl_heartbeat_unmonitor(te->hb, te->rm_hb_id);
    fl_heartbeat_monitor(te->hb, te->rm_hb_id, send_heartbeat, te, NULL);
    send_report(te);
}

static void on_rejection(fl_registered_connection_t *c,
                         const fl_registration_response_t *resp, void *arg)
{
    (void)c;
    tm_te_t *te = arg;
    fa_process_fatal(te->proc, "%s", resp->reason);
}

static void connect_leader(tm_te_t *te);

/* A fresh connection to the leader, after the error delay (c's own
 * callback must not free it). */
static void connect_again(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    tm_te_t *te = state;
    if ((uintptr_t)arg != te->conn_gen || te->rm_address[0] == '\0')
        return;
    if (te->conn != NULL) {
        fl_registered_connection_close(te->conn);
        fl_registered_connection_free(te->conn);
        te->conn = NULL;
    }
    connect_leader(te);
}

static void on_failure(fl_registered_connection_t *c, int err,
                       const char *message, void *arg)
{
    (void)c;
    tm_te_t *te = arg;
    if (err == FL_EUNREACHABLE && te->rm_address[0] != '\0') {
        /* invoke gave up on a gateway whose endpoint is gone (a
         * JobManager that restarted): the registration retries on the
         * gateway it has, so connect anew. */
        fl_log(FL_LOG_DEBUG, "Registration at %s: %s; connecting again",
               te->rm_address, message);
        fl_rpc_schedule_run_async(te->ep, connect_again, (void *)++te->conn_gen,
                                  NULL, te->ropts.error_delay_ms, NULL);
        return;
    }
    fa_process_fatal(te->proc,
                     "TaskManager %s could not register at the "
                     "ResourceManager %s: %s (%s)",
                     te->resource_id, te->rm_address, message,
                     fl_err_name(err));
}

/* Maps the RegisterTaskExecutor reply to a registration response; on the
 * thread that completes the call, touching no TaskExecutor state. */
static int map_reply(void *arg, void *value, void **out, fl_free_cb *out_free)
{
    (void)arg;
    const Fling__Cluster__TaskExecutorRegistrationReply *r = value;
    fl_registration_response_t *resp = NULL;
    switch (r->outcome) {
    case FLING__CLUSTER__TASK_EXECUTOR_REGISTRATION_REPLY__OUTCOME__SUCCESS: {
        success_t *s = calloc(1, sizeof *s);
        if (s == NULL)
            return FL_ENOMEM;
        snprintf(s->instance_id, sizeof s->instance_id, "%s", r->instance_id);
        snprintf(s->rm_hb_id, sizeof s->rm_hb_id, "%s", r->rm_resource_id);
        resp = fl_registration_response_alloc(FL_REGISTRATION_SUCCESS, s, free,
                                              NULL);
        break;
    }
    case FLING__CLUSTER__TASK_EXECUTOR_REGISTRATION_REPLY__OUTCOME__REJECTION:
        resp = fl_registration_response_alloc(FL_REGISTRATION_REJECTION, NULL,
                                              NULL, "%s", r->reason);
        break;
    default:
        resp = fl_registration_response_alloc(FL_REGISTRATION_FAILURE, NULL,
                                              NULL, "%s", r->reason);
        break;
    }
    if (resp == NULL)
        return FL_ENOMEM;
    *out = resp;
    *out_free = fl_registration_response_free;
    return FL_OK;
}

/* The gateway of one attempt, to learn whether its endpoint is gone. */
typedef struct attempt {
    tm_te_t *te;
    const fl_rpc_gateway_t *gw;
} attempt_t;

static void attempt_done(fl_future_t *f, void *arg)
{
    attempt_t *a = arg;
    if (fl_future_error(f) == FL_EUNREACHABLE)
        a->te->stale_gw = a->gw;
    free(a);
}

static int invoke(fl_rpc_gateway_t *gw, const fl_fencing_token_t *token,
                  int64_t timeout_ms, void *arg, fl_future_t **out)
{
    (void)token;
    tm_te_t *te = arg;
    if (gw == te->stale_gw) {
        /* Its endpoint is gone: end this registration (on_failure then
         * connects anew) rather than retry through it for ever. */
        te->stale_gw = NULL;
        return FL_EUNREACHABLE;
    }
    Fling__Cluster__ConfigEntry entries[NKEYS_MAX];
    Fling__Cluster__ConfigEntry *eptrs[NKEYS_MAX];
    size_t n = fa_cluster_key_count();
    for (size_t i = 0; i < n && i < NKEYS_MAX; i++) {
        Fling__Cluster__ConfigEntry e = FLING__CLUSTER__CONFIG_ENTRY__INIT;
        e.key = (char *)fa_cluster_key_at(i);
        e.value = te->values[i];
        entries[i] = e;
        eptrs[i] = &entries[i];
    }
    Fling__Cluster__TaskExecutorRegistration req =
        FLING__CLUSTER__TASK_EXECUTOR_REGISTRATION__INIT;
    req.address = (char *)fl_rpc_endpoint_address(te->ep);
    req.resource_id = te->resource_id;
    req.session_id = te->session_id;
    req.num_slots = te->nslots;
    req.n_cluster_config = n < NKEYS_MAX ? n : NKEYS_MAX;
    req.cluster_config = eptrs;
    fl_future_t *f = NULL;
    int rc =
        fl_rpc_call(gw, (unsigned)te->m_register, &req.base, timeout_ms, &f);
    if (rc != FL_OK)
        return rc;
    attempt_t *a = malloc(sizeof *a);
    if (a != NULL) {
        a->te = te;
        a->gw = gw;
        fl_rpc_on_complete(te->ep, f, attempt_done, a, free);
    }
    *out = fl_future_then(f, map_reply, NULL);
    fl_future_release(f);
    return *out != NULL ? FL_OK : FL_ENOMEM;
}

/* Drops the connection to the current leader (telling it when registered). */
static void drop_connection(tm_te_t *te, const char *cause)
{
    unregister(te, cause, true);
    if (te->conn != NULL) {
        fl_registered_connection_close(te->conn);
        fl_registered_connection_free(te->conn);
        te->conn = NULL;
    }
    te->rm_address[0] = '\0';
}

static void leader_changed(fl_leader_retrieval_t *lr, const char *address,
                           const fl_fencing_token_t *token, void *arg)
{
    (void)lr;
    tm_te_t *te = arg;
    if (te->conn != NULL)
        fl_log(FL_LOG_INFO, "ResourceManager leader changed from %s to %s",
               te->rm_address, address ? address : "(none)");
    drop_connection(te, "ResourceManager leader changed");
    arm_timer(te);
    if (address == NULL)
        return;
    snprintf(te->rm_address, sizeof te->rm_address, "%s", address);
    te->rm_token = *token;
    connect_leader(te);
}

/* Starts registering at the leader te->rm_address. */
static void connect_leader(tm_te_t *te)
{
    te->stale_gw = NULL;
    te->conn_gen++;
    fl_registered_connection_cbs_t cbs = {on_success, on_rejection, on_failure};
    fl_registration_spec_t spec = {
        .target_name = "resourcemanager",
        .address = te->rm_address,
        .desc = &fling__cluster__resource_manager_gateway__descriptor,
        .token = &te->rm_token,
        .invoke = invoke,
        .arg = te,
        .opts = &te->ropts,
    };
    char why[512];
    int rc = fl_registered_connection_alloc(te->ep, &spec, &cbs, te, &te->conn,
                                            why, sizeof why);
    if (rc == FL_OK)
        rc = fl_registered_connection_start(te->conn);
    if (rc != FL_OK)
        fa_process_fatal(te->proc,
                         "TaskManager %s could not start registering at %s: "
                         "%s",
                         te->resource_id, te->rm_address,
                         rc == FL_EINVAL ? why : fl_strerror(rc));
}

/* ---- heartbeats -----------------------------------------------------------
 */

static void rm_silent(void *arg, const fl_heartbeat_event_t *ev)
{
    tm_te_t *te = arg;
    reconnect(te,
              ev->err == FL_ETIMEDOUT ? "heartbeat timed out"
                                      : "heartbeat target unreachable",
              true);
}

static void retrieve_payload(void *arg, const char *target, const void **data,
                             size_t *len)
{
    (void)target;
    tm_te_t *te = arg;
    report_buf_t b;
    if (report_init(te, &b) != FL_OK)
        return;
    size_t n = fling__cluster__slot_report__get_packed_size(&b.r);
    if (n > te->payload_cap) {
        uint8_t *p = realloc(te->payload, n);
        if (p == NULL) {
            report_fini(&b);
            return;
        }
        te->payload = p;
        te->payload_cap = n;
    }
    fling__cluster__slot_report__pack(&b.r, te->payload);
    report_fini(&b);
    *data = te->payload;
    *len = n;
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
    int rc = fl_heartbeat_receive_request(te->hb, &msg, why, sizeof why);
    if (rc == FL_EINVAL) {
        fl_rpc_fail(call, rc, "%s", why);
        return;
    }
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
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
        reconnect(te, why, false);
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
        .on_timeout = rm_silent,
        .on_unreachable = rm_silent,
        .on_incompatible = rm_silent,
        .retrieve_payload = retrieve_payload,
        .arg = te,
    };
    char why[512];
    int rc = fl_cluster_heartbeat_opts(te->cfg, &o, why, sizeof why);
    if (rc == FL_OK)
        rc = fl_heartbeat_manager_alloc(ep, &o, &te->hb, why, sizeof why);
    if (rc == FL_OK)
        rc = fl_leader_retrieval_alloc(ep, &te->ha, "resourcemanager",
                                       leader_changed, te, &te->lr, why,
                                       sizeof why);
    if (rc == FL_OK)
        rc = fl_leader_retrieval_start(te->lr, why, sizeof why);
    if (rc != FL_OK)
        return fl_rpc_start_fail(ep, rc, "%s", why);
    fl_log(FL_LOG_INFO, "TaskExecutor %s started as %s with %u slots",
           fl_rpc_endpoint_address(ep), te->resource_id, (unsigned)te->nslots);
    arm_timer(te);
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
    disarm_timer(te);
    fl_leader_retrieval_free(te->lr);
    te->lr = NULL;
    fl_future_t *bye = NULL;
    if (te->registered) {
        char cause[300];
        snprintf(cause, sizeof cause, "TaskManager %s is shutting down",
                 te->resource_id);
        bye = tell_disconnect(te, cause);
        te->registered = false;
    }
    fl_heartbeat_manager_free(te->hb);
    te->hb = NULL;
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
    fl_config_get_duration_ms(te->cfg,
                              FL_CONFIG_TASKMANAGER_REGISTRATION_TIMEOUT,
                              &te->reg_timeout_ms);
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
    free(te);
}
