/*
 * resourcemanager.c - the ResourceManager endpoint (resourcemanager.h).
 *
 * All state lives on the endpoint's main thread: the handlers, the
 * heartbeat callbacks and the connect-back completions run there, so
 * nothing here takes a lock.
 */
#include "rm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heartbeat_rpc.h"
#include "process.h"
#include "resourcemanager.pb-c.h"
#include "taskexecutor.pb-c.h"

char *rm__dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c != NULL)
        memcpy(c, s, n);
    return c;
}

/* ---- workers --------------------------------------------------------------
 */

worker_t *rm__find(const jm_rm_t *rm, const char *resource_id)
{
    for (size_t i = 0; i < rm->n; i++)
        if (strcmp(rm->workers[i]->resource_id, resource_id) == 0)
            return rm->workers[i];
    return NULL;
}

static void worker_free(worker_t *w)
{
    if (w == NULL)
        return;
    fl_rpc_gateway_free(w->gw);
    free(w->resource_id);
    free(w->session_id);
    free(w->instance_id);
    free(w->address);
    free(w->alloc);
    free(w);
}

/* Removes w from the table and the heartbeats, tells it cause when cause
 * is not NULL, and frees it. Returns the future of that call (the
 * caller's), or NULL. */
static fl_future_t *drop(jm_rm_t *rm, worker_t *w, const char *cause)
{
    for (size_t i = 0; i < rm->n; i++)
        if (rm->workers[i] == w) {
            rm->workers[i] = rm->workers[--rm->n];
            break;
        }
    if (rm->hb != NULL)
        fl_heartbeat_unmonitor(rm->hb, w->resource_id);
    rm__slots_gone(rm, w);
    if (cause != NULL) {
        Fling__Cluster__DisconnectResourceManagerRequest req =
            FLING__CLUSTER__DISCONNECT_RESOURCE_MANAGER_REQUEST__INIT;
        req.instance_id = w->instance_id;
        req.cause = (char *)cause;
        fl_future_t *f = NULL;
        fl_rpc_call(w->gw, (unsigned)rm->m_disconnect, &req.base, 0, &f);
        worker_free(w);
        return f;
    }
    worker_free(w);
    return NULL;
}

/* ---- heartbeats -----------------------------------------------------------
 */

typedef struct hb_target {
    jm_rm_t *rm;
    char resource_id[];
} hb_target_t;

static fl_future_t *send_heartbeat(void *arg, const fl_heartbeat_msg_t *msg)
{
    hb_target_t *t = arg;
    worker_t *w = rm__find(t->rm, t->resource_id);
    if (w == NULL)
        return NULL;
    return fg_heartbeat_send(w->gw, (unsigned)t->rm->m_heartbeat, msg);
}

static void lost(jm_rm_t *rm, const fl_heartbeat_event_t *ev, const char *how)
{
    worker_t *w = rm__find(rm, ev->target);
    if (w == NULL) {
        rm__job_lost(rm, ev->target, how);
        return;
    }
    /* The cause it is told is the line logged here; the heartbeat
     * manager has logged the details (timings) already. */
    char cause[512];
    snprintf(cause, sizeof cause, "TaskManager %s lost: %s", w->resource_id,
             how);
    fl_log(FL_LOG_INFO, "%s", cause);
    fl_future_release(drop(rm, w, cause));
}

static void on_timeout(void *arg, const fl_heartbeat_event_t *ev)
{
    lost(arg, ev, "heartbeat timed out");
}

static void on_unreachable(void *arg, const fl_heartbeat_event_t *ev)
{
    lost(arg, ev, "heartbeat target unreachable");
}

static void on_incompatible(void *arg, const fl_heartbeat_event_t *ev)
{
    lost(arg, ev, ev->message);
}

static void log_report(const worker_t *w, size_t nslots, int free_slots)
{
    fl_log(FL_LOG_INFO, "Slot report of TaskManager %s: %zu slots, %d free",
           w->resource_id, nslots, free_slots);
}

/* Takes a report in: the slot table follows it (a TaskExecutor registered
 * again keeps its slots; a slot it shows free is free unless its
 * RequestSlot is in flight or just granted); logs it when the number of
 * free slots changed; after the first report, and whenever it lowered a
 * job's count (freed a slot or showed it taken by another allocation),
 * the free slots are offered to the jobs. */
static void take_report(jm_rm_t *rm, worker_t *w,
                        const Fling__Cluster__SlotReport *r)
{
    int free_slots = 0;
    bool lowered = false;
    /* The slots taken first: a job that got a slot elsewhere in this
     * report does not back off for the one it lost. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < r->n_slots; i++) {
            const Fling__Cluster__SlotStatus *s = r->slots[i];
            bool is_free = s->allocation_id[0] == '\0';
            if (is_free != (pass == 1))
                continue;
            free_slots += is_free;
            if (rm__slot_reported(rm, w, s->index, s->allocation_id, s->job_id))
                lowered = true;
        }
    bool first = w->free_slots < 0;
    if (free_slots != w->free_slots)
        log_report(w, r->n_slots, free_slots);
    w->free_slots = free_slots;
    if (first || lowered)
        rm__allocate(rm);
}

static void report_payload(void *arg, const char *origin, const void *data,
                           size_t len)
{
    jm_rm_t *rm = arg;
    worker_t *w = rm__find(rm, origin);
    if (w == NULL)
        return;
    Fling__Cluster__SlotReport *r =
        fling__cluster__slot_report__unpack(NULL, len, data);
    if (r == NULL) {
        fl_log(FL_LOG_WARN,
               "Heartbeat of TaskManager %s carried a slot report that does "
               "not decode (%zu bytes); ignored",
               origin, len);
        return;
    }
    take_report(rm, w, r);
    fling__cluster__slot_report__free_unpacked(r, NULL);
}

/* ---- registration ---------------------------------------------------------
 */

/* A registration waiting for its connect back. */
typedef struct pending {
    jm_rm_t *rm;
    fl_rpc_call_t *call;
    Fling__Cluster__TaskExecutorRegistrationReply_Closure closure;
    char *resource_id, *session_id, *address;
    uint32_t nslots;
} pending_t;

static void pending_free(void *arg)
{
    pending_t *p = arg;
    if (p->call != NULL) /* never answered: the endpoint ended first */
        fl_rpc_fail(p->call, FL_EUNREACHABLE,
                    "ResourceManager stopped before TaskManager %s was "
                    "registered",
                    p->resource_id);
    free(p->resource_id);
    free(p->session_id);
    free(p->address);
    free(p);
}

static void reply(pending_t *p,
                  Fling__Cluster__TaskExecutorRegistrationReply *r)
{
    p->closure(r, p->call);
    p->call = NULL;
}

static void reply_success(pending_t *p, const worker_t *w)
{
    Fling__Cluster__TaskExecutorRegistrationReply r =
        FLING__CLUSTER__TASK_EXECUTOR_REGISTRATION_REPLY__INIT;
    r.outcome =
        FLING__CLUSTER__TASK_EXECUTOR_REGISTRATION_REPLY__OUTCOME__SUCCESS;
    r.instance_id = w->instance_id;
    r.rm_resource_id = (char *)fl_heartbeat_manager_id(p->rm->hb);
    reply(p, &r);
}

static void connected(fl_future_t *f, void *arg)
{
    pending_t *p = arg;
    jm_rm_t *rm = p->rm;
    if (fl_future_error(f) != FL_OK) {
        char why[FL_REGISTRATION_REASON_MAX];
        snprintf(why, sizeof why,
                 "Could not connect back to TaskManager %s at %s: %s",
                 p->resource_id, p->address, fl_future_message(f));
        fl_log(FL_LOG_WARN, "%s", why);
        Fling__Cluster__TaskExecutorRegistrationReply r =
            FLING__CLUSTER__TASK_EXECUTOR_REGISTRATION_REPLY__INIT;
        r.outcome =
            FLING__CLUSTER__TASK_EXECUTOR_REGISTRATION_REPLY__OUTCOME__FAILURE;
        r.reason = why;
        reply(p, &r);
        pending_free(p);
        return;
    }
    fl_rpc_gateway_t *gw = fl_future_take_value(f);
    if (rm->stopping) { /* connected back after the stop began */
        fl_rpc_gateway_free(gw);
        fl_rpc_fail(p->call, FL_EUNREACHABLE,
                    "ResourceManager stopped before TaskManager %s was "
                    "registered",
                    p->resource_id);
        p->call = NULL;
        pending_free(p);
        return;
    }
    worker_t *old = rm__find(rm, p->resource_id);
    if (old != NULL && strcmp(old->session_id, p->session_id) == 0) {
        /* An earlier attempt of the same process got through first. */
        fl_rpc_gateway_free(gw);
        reply_success(p, old);
        pending_free(p);
        return;
    }
    if (old != NULL) {
        fl_log(FL_LOG_INFO,
               "TaskManager %s registers again from a new process; its old "
               "registration is dropped",
               old->resource_id);
        fl_future_release(drop(rm, old, NULL));
    }
    worker_t *w = calloc(1, sizeof *w);
    char iid[33];
    fa_random_hex(iid, 16);
    if (w != NULL) {
        w->gw = gw;
        w->resource_id = rm__dup(p->resource_id);
        w->session_id = rm__dup(p->session_id);
        w->address = rm__dup(p->address);
        w->instance_id = rm__dup(iid);
        w->nslots = p->nslots;
        w->free_slots = -1;
        w->alloc = calloc(p->nslots ? p->nslots : 1, sizeof *w->alloc);
    }
    if (rm->n == rm->cap) {
        size_t cap = rm->cap ? 2 * rm->cap : 8;
        worker_t **ws = w ? realloc(rm->workers, cap * sizeof *ws) : NULL;
        if (ws != NULL) {
            rm->workers = ws;
            rm->cap = cap;
        }
    }
    hb_target_t *t = NULL;
    if (w != NULL && w->resource_id && w->session_id && w->address &&
        w->instance_id && w->alloc && rm->n < rm->cap)
        t = malloc(sizeof *t + strlen(p->resource_id) + 1);
    if (t == NULL) {
        if (w != NULL)
            worker_free(w);
        else
            fl_rpc_gateway_free(gw);
        fl_rpc_fail(p->call, FL_ENOMEM,
                    "ResourceManager out of memory registering TaskManager %s",
                    p->resource_id);
        p->call = NULL;
        pending_free(p);
        return;
    }
    t->rm = rm;
    strcpy(t->resource_id, p->resource_id);
    rm->workers[rm->n++] = w;
    fl_heartbeat_monitor(rm->hb, w->resource_id, send_heartbeat, t, free);
    fl_log(FL_LOG_INFO, "Registered TaskManager %s at %s with %u slots",
           w->resource_id, w->address, (unsigned)w->nslots);
    reply_success(p, w);
    pending_free(p);
    /* Its slots are asked for once its first report says which are free. */
}

static void rm_register_task_executor(
    Fling__Cluster__ResourceManagerGateway_Service *svc,
    const Fling__Cluster__TaskExecutorRegistration *req,
    Fling__Cluster__TaskExecutorRegistrationReply_Closure closure, void *call)
{
    (void)svc;
    jm_rm_t *rm = fl_rpc_call_state(call);
    const char *keys[16], *values[16];
    size_t n = 0;
    for (size_t i = 0; i < req->n_cluster_config && n < 16; i++, n++) {
        keys[n] = req->cluster_config[i]->key;
        values[n] = req->cluster_config[i]->value;
    }
    char why[FL_REGISTRATION_REASON_MAX];
    if (fa_cluster_conflict(rm->cfg, req->resource_id, keys, values, n, why,
                            sizeof why)) {
        fl_log(FL_LOG_WARN, "%s", why);
        Fling__Cluster__TaskExecutorRegistrationReply r =
            FLING__CLUSTER__TASK_EXECUTOR_REGISTRATION_REPLY__INIT;
        r.outcome =
            FLING__CLUSTER__TASK_EXECUTOR_REGISTRATION_REPLY__OUTCOME__REJECTION;
        r.reason = why;
        closure(&r, call);
        return;
    }
    pending_t *p = calloc(1, sizeof *p);
    if (p != NULL) {
        p->rm = rm;
        p->closure = closure;
        p->resource_id = rm__dup(req->resource_id);
        p->session_id = rm__dup(req->session_id);
        p->address = rm__dup(req->address);
        p->nslots = req->num_slots;
    }
    if (p == NULL || !p->resource_id || !p->session_id || !p->address) {
        if (p != NULL)
            pending_free(p);
        fl_rpc_fail(call, FL_ENOMEM,
                    "ResourceManager out of memory registering TaskManager %s",
                    req->resource_id);
        return;
    }
    worker_t *old = rm__find(rm, p->resource_id);
    if (old != NULL && strcmp(old->session_id, p->session_id) == 0) {
        /* A retry of an attempt whose answer was lost. */
        p->call = call;
        reply_success(p, old);
        pending_free(p);
        return;
    }
    p->call = fl_rpc_defer(call);
    fl_future_t *f = NULL;
    int rc = fl_rpc_connect(rm->svc, p->address,
                            &fling__cluster__task_executor_gateway__descriptor,
                            NULL, &f);
    if (rc != FL_OK) {
        fl_rpc_fail(p->call, rc,
                    "Could not connect back to TaskManager %s "
                    "at %s: %s",
                    p->resource_id, p->address, fl_rpc_last_message());
        p->call = NULL;
        pending_free(p);
        return;
    }
    fl_rpc_on_complete(rm->ep, f, connected, p, pending_free);
    fl_future_release(f);
}

static void
rm_send_slot_report(Fling__Cluster__ResourceManagerGateway_Service *svc,
                    const Fling__Cluster__SlotReportRequest *req,
                    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    jm_rm_t *rm = fl_rpc_call_state(call);
    worker_t *w = rm__find(rm, req->resource_id);
    if (w == NULL || strcmp(w->instance_id, req->instance_id) != 0) {
        fl_rpc_fail(call, FL_ESTATE,
                    "Slot report of TaskManager %s refused: it is not "
                    "registered under instance id %s; register again",
                    req->resource_id, req->instance_id);
        return;
    }
    if (req->report != NULL)
        take_report(rm, w, req->report);
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
}

static void rm_heartbeat_from_task_manager(
    Fling__Cluster__ResourceManagerGateway_Service *svc,
    const Fling__Cluster__Heartbeat *req, Fling__Cluster__Ack_Closure closure,
    void *call)
{
    (void)svc;
    jm_rm_t *rm = fl_rpc_call_state(call);
    fg_heartbeat_answer(rm->hb, false, req, closure, call);
}

static void rm_disconnect_task_manager(
    Fling__Cluster__ResourceManagerGateway_Service *svc,
    const Fling__Cluster__DisconnectTaskManagerRequest *req,
    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    jm_rm_t *rm = fl_rpc_call_state(call);
    worker_t *w = rm__find(rm, req->resource_id);
    /* A late disconnect of an older registration leaves the current one. */
    if (w != NULL && strcmp(w->instance_id, req->instance_id) != 0) {
        fl_rpc_fail(call, FL_ESTATE,
                    "Disconnect of TaskManager %s refused: it is not "
                    "registered under instance id %s",
                    req->resource_id, req->instance_id);
        return;
    }
    if (w != NULL) {
        fl_log(FL_LOG_INFO, "TaskManager %s disconnected: %s", w->resource_id,
               req->cause);
        fl_future_release(drop(rm, w, NULL));
    }
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
}

static Fling__Cluster__ResourceManagerGateway_Service rm_impl =
    FLING__CLUSTER__RESOURCE_MANAGER_GATEWAY__INIT(rm_);

/* ---- life -----------------------------------------------------------------
 */

static int rm_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    jm_rm_t *rm = state;
    fl_heartbeat_opts_t o = {
        .role = FL_HEARTBEAT_SENDER,
        .on_timeout = on_timeout,
        .on_unreachable = on_unreachable,
        .on_incompatible = on_incompatible,
        .report_payload = report_payload,
        .arg = rm,
    };
    char why[512];
    int rc = fl_cluster_heartbeat_opts(rm->cfg, &o, why, sizeof why);
    /* A report built before a granted RequestSlot comes within about two
     * heartbeats of its reply (rm__slot_reported). */
    rm->grant_grace_ms =
        2 *
        (o.interval_ms > 0 ? o.interval_ms : FL_HEARTBEAT_DEFAULT_INTERVAL_MS);
    if (rc == FL_OK)
        rc = fl_heartbeat_manager_alloc(ep, &o, &rm->hb, why, sizeof why);
    if (rc != FL_OK)
        return fl_rpc_start_fail(ep, rc, "%s", why);
    char hex[33];
    fl_log(FL_LOG_INFO, "ResourceManager %s started with leader token %s",
           fl_rpc_endpoint_address(ep), fl_fencing_token_hex(&rm->token, hex));
    return FL_OK;
}

/* Completes done (its reference taken) whatever the goodbyes' outcome. */
static void goodbyes_done(fl_future_t *f, void *arg)
{
    (void)f;
    fl_future_complete(arg, NULL, NULL);
    fl_future_release(arg);
}

/* Tells every TaskExecutor it is disconnected and stops the heartbeats;
 * done once every TaskExecutor answered (or its call failed), so that the
 * goodbyes are delivered before the service shuts down. */
static fl_future_t *rm_on_stop(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    jm_rm_t *rm = state;
    rm->stopping = true;
    size_t n = 0;
    fl_future_t **fs = calloc(rm->n ? rm->n : 1, sizeof *fs);
    while (rm->n > 0) {
        fl_future_t *f = drop(rm, rm->workers[rm->n - 1], rm->cause);
        if (f != NULL && fs != NULL)
            fs[n++] = f;
        else
            fl_future_release(f);
    }
    fl_heartbeat_manager_free(rm->hb);
    rm->hb = NULL;
    fl_future_t *all = n > 0 ? fl_future_all(fs, n) : NULL;
    for (size_t i = 0; i < n; i++)
        fl_future_release(fs[i]);
    free(fs);
    if (all == NULL)
        return NULL;
    fl_future_t *done = fl_future_alloc();
    if (done == NULL ||
        fl_future_on_complete(all, goodbyes_done, fl_future_retain(done)) !=
            FL_OK) {
        fl_future_release(done); /* the retained reference */
        fl_future_release(done);
        done = NULL;
    }
    fl_future_release(all);
    return done;
}

int jm_rm_start(fl_rpc_service_t *svc, const fl_config_t *cfg,
                const fl_fencing_token_t *token, unsigned n, jm_rm_t **out,
                char *err, size_t errlen)
{
    jm_rm_t *rm = calloc(1, sizeof *rm);
    if (rm == NULL) {
        snprintf(err, errlen, "out of memory");
        return FL_ENOMEM;
    }
    rm->svc = svc;
    rm->cfg = cfg;
    rm->token = *token;
    const ProtobufCServiceDescriptor *te =
        &fling__cluster__task_executor_gateway__descriptor;
    rm->m_heartbeat = fl_rpc_method_index(te, "HeartbeatFromResourceManager");
    rm->m_disconnect = fl_rpc_method_index(te, "DisconnectResourceManager");
    rm->m_request_slot = fl_rpc_method_index(te, "RequestSlot");
    snprintf(rm->id, sizeof rm->id, "resourcemanager_%u", n);
    snprintf(rm->cause, sizeof rm->cause, "ResourceManager stopped");
    static ProtobufCService *const services[] = {&rm_impl.base};
    fl_rpc_endpoint_opts_t o = {
        .id = rm->id,
        .services = services,
        .nservices = 1,
        .state = rm,
        .on_start = rm_on_start,
        .on_stop = rm_on_stop,
        .fencing_token = &rm->token,
    };
    int rc = fl_rpc_endpoint_create(svc, &o, &rm->ep);
    if (rc == FL_OK)
        rc = fl_rpc_endpoint_start(rm->ep);
    if (rc != FL_OK) {
        snprintf(err, errlen, "Could not start the ResourceManager: %s",
                 fl_rpc_last_message());
        if (rm->ep != NULL) {
            fl_future_release(fl_rpc_endpoint_close(rm->ep));
            fl_rpc_endpoint_free(rm->ep);
        }
        free(rm);
        return rc;
    }
    *out = rm;
    return FL_OK;
}

const char *jm_rm_address(const jm_rm_t *rm)
{
    return fl_rpc_endpoint_address(rm->ep);
}

typedef struct cause_arg {
    char cause[256];
} cause_arg_t;

static void set_cause(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    jm_rm_t *rm = state;
    snprintf(rm->cause, sizeof rm->cause, "%s", ((cause_arg_t *)arg)->cause);
    free(arg);
}

fl_future_t *jm_rm_close(jm_rm_t *rm, const char *cause)
{
    cause_arg_t *a = malloc(sizeof *a);
    if (a != NULL) {
        snprintf(a->cause, sizeof a->cause, "%s", cause);
        fl_rpc_run_async(rm->ep, set_cause, a, free);
    }
    return fl_rpc_endpoint_close(rm->ep);
}

void jm_rm_free(jm_rm_t *rm)
{
    if (rm == NULL)
        return;
    fl_rpc_endpoint_free(rm->ep);
    for (size_t i = 0; i < rm->n; i++) /* none, unless the stop failed */
        worker_free(rm->workers[i]);
    free(rm->workers);
    rm__jobs_free(rm);
    free(rm);
}
