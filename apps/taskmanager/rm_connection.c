/*
 * rm_connection.c - the TaskExecutor's connection to the ResourceManager
 * (taskexecutor_int.h): the leader, the registered connection and its
 * registration function, the registration timeout, the slot report after
 * success, heartbeats as the receiver, registering again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heartbeat_rpc.h"
#include "registration_call.h"
#include "resourcemanager.pb-c.h"
#include "taskexecutor_int.h"

/* What a successful registration answered. */
typedef struct success {
    char instance_id[64];
    char rm_hb_id[ADDR_MAX];
} success_t;

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
void tm__arm_timer(tm_te_t *te)
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

void tm__disarm_timer(tm_te_t *te)
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
fl_future_t *tm__tell_disconnect(tm_te_t *te, const char *cause)
{
    fl_rpc_gateway_t *gw = fl_registered_connection_gateway(te->conn);
    if (gw == NULL)
        return NULL;
    Fling__Cluster__DisconnectTaskManagerRequest req =
        FLING__CLUSTER__DISCONNECT_TASK_MANAGER_REQUEST__INIT;
    req.resource_id = te->resource_id;
    req.cause = (char *)cause;
    req.instance_id = te->instance_id;
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
        fl_future_release(tm__tell_disconnect(te, cause));
}

/* The ResourceManager is gone for this registration: register again. */
void tm__reconnect(tm_te_t *te, const char *why, bool tell)
{
    if (!te->registered)
        return;
    fl_log(FL_LOG_INFO, "ResourceManager %s lost: %s; registering again",
           te->rm_hb_id, why);
    unregister(te, why, tell);
    tm__arm_timer(te);
    fl_registered_connection_try_reconnect(te->conn);
}

static void report_sent(fl_future_t *f, void *arg)
{
    tm_te_t *te = arg;
    if (fl_future_error(f) != FL_OK && te->registered) {
        char why[FL_FUTURE_MESSAGE_MAX + 64];
        snprintf(why, sizeof why, "the slot report failed: %s",
                 fl_future_message(f));
        tm__reconnect(te, why, true);
    }
}

static void send_report(tm_te_t *te)
{
    report_buf_t b;
    if (tm__report_init(te, &b) != FL_OK)
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
    tm__report_fini(&b);
}

static fl_future_t *send_heartbeat(void *arg, const fl_heartbeat_msg_t *msg)
{
    tm_te_t *te = arg;
    fl_rpc_gateway_t *gw = fl_registered_connection_gateway(te->conn);
    if (!te->registered || gw == NULL)
        return NULL;
    return fg_heartbeat_send(gw, (unsigned)te->m_heartbeat, msg);
}

static void on_success(fl_registered_connection_t *c,
                       const fl_registration_response_t *resp, void *arg)
{
    tm_te_t *te = arg;
    const success_t *s = resp->payload;
    te->registered = true;
    snprintf(te->instance_id, sizeof te->instance_id, "%s", s->instance_id);
    snprintf(te->rm_hb_id, sizeof te->rm_hb_id, "%s", s->rm_hb_id);
    tm__disarm_timer(te);
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

static void on_failure(fl_registered_connection_t *c, int err,
                       const char *message, void *arg)
{
    (void)c;
    tm_te_t *te = arg;
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
    return fa_registration_out(resp, out, out_free);
}

static int invoke(fl_rpc_gateway_t *gw, const fl_fencing_token_t *token,
                  int64_t timeout_ms, void *arg, fl_future_t **out)
{
    (void)token;
    tm_te_t *te = arg;
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
    return fa_registration_call(gw, (unsigned)te->m_register, &req.base,
                                timeout_ms, map_reply, out);
}

static void connect_leader(tm_te_t *te);

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

void tm__leader_changed(fl_leader_retrieval_t *lr, const char *address,
                        const fl_fencing_token_t *token, void *arg)
{
    (void)lr;
    tm_te_t *te = arg;
    if (te->conn != NULL)
        fl_log(FL_LOG_INFO, "ResourceManager leader changed from %s to %s",
               te->rm_address, address ? address : "(none)");
    drop_connection(te, "ResourceManager leader changed");
    tm__arm_timer(te);
    if (address == NULL)
        return;
    snprintf(te->rm_address, sizeof te->rm_address, "%s", address);
    te->rm_token = *token;
    connect_leader(te);
}

/* Starts registering at the leader te->rm_address. */
static void connect_leader(tm_te_t *te)
{
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

/* Says which of the three it was: a refused heartbeat (FL_EINVAL, the two
 * timings cannot work together) is no unreachable peer, and gets the
 * heartbeat manager's reason. */
void tm__rm_silent(void *arg, const fl_heartbeat_event_t *ev)
{
    tm_te_t *te = arg;
    const char *why = ev->err == FL_ETIMEDOUT ? "heartbeat timed out"
                      : ev->err == FL_EUNREACHABLE
                          ? "heartbeat target unreachable"
                          : ev->message;
    tm__reconnect(te, why, true);
}

void tm__retrieve_payload(void *arg, const char *target, const void **data,
                          size_t *len)
{
    (void)target;
    tm_te_t *te = arg;
    report_buf_t b;
    if (tm__report_init(te, &b) != FL_OK)
        return;
    size_t n = fling__cluster__slot_report__get_packed_size(&b.r);
    if (n > te->payload_cap) {
        uint8_t *p = realloc(te->payload, n);
        if (p == NULL) {
            tm__report_fini(&b);
            return;
        }
        te->payload = p;
        te->payload_cap = n;
    }
    fling__cluster__slot_report__pack(&b.r, te->payload);
    tm__report_fini(&b);
    *data = te->payload;
    *len = n;
}
