/*
 * cluster_leader - a contender for the leadership of the "coordinator"
 * component; while it leads, a fenced coordinator endpoint accepts the
 * workers' registrations and heartbeats with them (the way a Flink
 * ResourceManager does with its TaskManagers).
 *
 *   cluster_leader [-c FILE] [-D key=value ...] [--name NAME]
 *
 * It listens on jobmanager.rpc.address:jobmanager.rpc.port (port 0: any
 * free one, for a second contender on the same machine) and serves:
 *   - "elector" (Elector gateway, unfenced): owns the leader election
 *     (high-availability.*). Standalone it is granted at once with the
 *     all-zero token; with ZooKeeper when it wins the latch.
 *   - "coordinator_<n>" (Coordinator gateway), one per leadership, fenced
 *     with its token: made on each grant, published (confirmed) once it
 *     runs, closed on revoke. It accepts registrations (connecting back to
 *     each worker) and runs a heartbeat sender (heartbeat.*) that asks
 *     every registered worker each interval; a worker silent for
 *     heartbeat.timeout is dropped.
 * Each event is one log line (fl_log, on stderr). SIGINT or SIGTERM stops
 * it cleanly.
 */
#include "cluster_common.h"

#include "cluster.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 64

/* ---- the coordinator: one leadership ------------------------------------- */

typedef struct worker_ref {
    char *id;
    fl_rpc_gateway_t *gw; /* to its Worker endpoint */
    bool heard;           /* a heartbeat came back since it registered */
} worker_ref_t;

/* A coordinator's state: touched on its endpoint's main thread only,
 * then freed once the endpoint has terminated. */
typedef struct coordinator {
    fl_rpc_endpoint_t *ep;
    fl_rpc_endpoint_t *elector;
    fl_fencing_token_t token;
    unsigned gen;
    fl_heartbeat_opts_t hb_opts;
    fl_heartbeat_manager_t *hb;
    worker_ref_t workers[MAX_WORKERS];
    size_t nworkers;
} coordinator_t;

static worker_ref_t *find_worker(coordinator_t *c, const char *id)
{
    for (size_t i = 0; i < c->nworkers; i++)
        if (strcmp(c->workers[i].id, id) == 0)
            return &c->workers[i];
    return NULL;
}

/* Forgets worker id: stops its heartbeats, frees its gateway. */
static void drop_worker(coordinator_t *c, const char *id)
{
    worker_ref_t *r = find_worker(c, id);
    if (r == NULL)
        return;
    if (c->hb != NULL)
        (void)fl_heartbeat_unmonitor(c->hb, r->id);
    fl_rpc_gateway_free(r->gw);
    free(r->id);
    *r = c->workers[--c->nworkers];
}

/* The heartbeat sender's send function: Worker.RequestHeartbeat. */
static fl_future_t *request_heartbeat(void *arg, const fl_heartbeat_msg_t *msg)
{
    fl_rpc_gateway_t *gw = arg;
    Clusterex__Heartbeat hb;
    Clusterex__Timing tm;
    cx_heartbeat_pack(msg, &hb, &tm);
    fl_future_t *f = NULL;
    (void)fl_rpc_call(gw, 0 /* RequestHeartbeat */, &hb.base, 0, &f);
    return f;
}

/* A worker timed out, became unreachable or refused our timing. The
 * event's fields come with the line, so a reader can check the message. */
static void worker_lost(void *arg, const fl_heartbeat_event_t *ev)
{
    coordinator_t *c = arg;
    char last[24], silent[24];
    snprintf(last, sizeof last, "%lld", (long long)ev->last_heartbeat_ms);
    snprintf(silent, sizeof silent, "%lld", (long long)ev->silent_ms);
    fl_log_field_t f[] = {{"last_heartbeat_ms", last}, {"silent_ms", silent}};
    fl_log_kv(FL_LOGC_APP, FL_LOG_WARN, f, 2, "Worker '%s' lost (%s): %s",
              ev->target, fl_err_name(ev->err), ev->message);
    drop_worker(c, ev->target);
}

/* A registration waiting for its connection back to the worker. */
typedef struct pending {
    coordinator_t *c;
    fl_rpc_call_t *call; /* deferred RegisterWorker call */
    Clusterex__RegisterReply_Closure closure;
    char *worker_id;
    char *address;
    bool answered;
} pending_t;

static void pending_free(void *arg)
{
    pending_t *p = arg;
    if (!p->answered) /* the coordinator terminated first */
        fl_rpc_fail(p->call, FL_EUNREACHABLE,
                    "the coordinator stopped during the registration");
    free(p->worker_id);
    free(p->address);
    free(p);
}

static void answer(pending_t *p, bool accepted, const char *reason,
                   const char *leader_id)
{
    Clusterex__RegisterReply reply = CLUSTEREX__REGISTER_REPLY__INIT;
    reply.accepted = accepted;
    reply.reason = (char *)reason;
    reply.leader_id = (char *)leader_id;
    p->closure(&reply, p->call);
    p->answered = true;
}

/* The connection back to a registering worker completed (main thread).
 * Owns p: arg_free runs only when this does not. */
static void on_worker_connected(fl_future_t *f, void *arg)
{
    pending_t *p = arg;
    coordinator_t *c = p->c;
    char reason[512];
    if (fl_future_error(f) != FL_OK) {
        snprintf(reason, sizeof reason, "cannot connect back to %s: %s",
                 p->address, fl_future_message(f));
        answer(p, false, reason, "");
    } else if (find_worker(c, p->worker_id) == NULL &&
               c->nworkers == MAX_WORKERS) {
        snprintf(reason, sizeof reason, "%d workers are registered already",
                 MAX_WORKERS);
        answer(p, false, reason, "");
    } else {
        drop_worker(c, p->worker_id); /* registered again: the new one */
        worker_ref_t *r = &c->workers[c->nworkers++];
        r->id = p->worker_id;
        p->worker_id = NULL;
        r->gw = fl_future_take_value(f);
        r->heard = false;
        int rc =
            fl_heartbeat_monitor(c->hb, r->id, request_heartbeat, r->gw, NULL);
        fl_log(FL_LOG_INFO, "Worker '%s' registered from %s", r->id,
               p->address);
        if (rc != FL_OK)
            fl_log(FL_LOG_ERROR, "Cannot heartbeat with worker '%s': %s", r->id,
                   fl_err_name(rc));
        answer(p, true, "", fl_heartbeat_manager_id(c->hb));
    }
    pending_free(p);
}

/* Coordinator.RegisterWorker: connect back to the worker, then answer. */
static void
coordinator_register_worker(Clusterex__Coordinator_Service *service,
                            const Clusterex__RegisterRequest *in,
                            Clusterex__RegisterReply_Closure closure,
                            void *call)
{
    (void)service;
    coordinator_t *c = fl_rpc_call_state(call);
    if (in->worker_id[0] == '\0' || in->address[0] == '\0') {
        fl_rpc_fail(call, FL_EINVAL,
                    "RegisterWorker needs the worker's id and address");
        return;
    }
    pending_t *p = calloc(1, sizeof *p);
    if (p == NULL || (p->worker_id = cx_strdup(in->worker_id)) == NULL ||
        (p->address = cx_strdup(in->address)) == NULL ||
        (p->call = fl_rpc_defer(call)) == NULL) {
        if (p != NULL) {
            free(p->worker_id);
            free(p->address);
        }
        free(p);
        fl_rpc_fail(call, FL_ENOMEM, "out of memory registering '%s'",
                    in->worker_id);
        return;
    }
    p->c = c;
    p->closure = closure;
    fl_future_t *f = NULL;
    int rc = fl_rpc_connect(fl_rpc_endpoint_service(c->ep), p->address,
                            &clusterex__worker__descriptor, NULL, &f);
    if (rc != FL_OK) {
        char reason[512];
        snprintf(reason, sizeof reason, "cannot connect back to %s: %s",
                 p->address, fl_rpc_last_message());
        answer(p, false, reason, "");
        pending_free(p);
        return;
    }
    /* pending_free answers the call if the coordinator ends first. */
    (void)fl_rpc_on_complete(c->ep, f, on_worker_connected, p, pending_free);
    fl_future_release(f);
}

/* Coordinator.ReceiveHeartbeat: a worker's answer to our request. */
static void
coordinator_receive_heartbeat(Clusterex__Coordinator_Service *service,
                              const Clusterex__Heartbeat *in,
                              Clusterex__Ack_Closure closure, void *call)
{
    (void)service;
    coordinator_t *c = fl_rpc_call_state(call);
    fl_heartbeat_timing_t timing;
    fl_heartbeat_msg_t msg;
    cx_heartbeat_unpack(in, &msg, &timing);
    char why[512];
    int rc = fl_heartbeat_receive_response(c->hb, &msg, why, sizeof why);
    if (rc != FL_OK) {
        fl_rpc_fail(call, rc, "%s", why);
        return;
    }
    worker_ref_t *r = find_worker(c, in->origin);
    if (r != NULL && !r->heard) {
        r->heard = true;
        fl_log(FL_LOG_INFO, "First heartbeat from worker '%s'", r->id);
    }
    Clusterex__Ack ack = CLUSTEREX__ACK__INIT;
    closure(&ack, call);
}

static Clusterex__Coordinator_Service coordinator_impl =
    CLUSTEREX__COORDINATOR__INIT(coordinator_);

/* ---- the elector: the leader election ------------------------------------ */

/* The elector's state: touched on its endpoint's main thread only. */
typedef struct elector {
    const char *name;
    fl_rpc_endpoint_t *ep;
    fl_ha_opts_t ha;
    fl_heartbeat_opts_t hb_opts; /* interval, timeout, threshold */
    fl_leader_election_t *election;
    unsigned gen;               /* leaderships granted so far */
    fl_rpc_endpoint_t *leading; /* the current coordinator, or NULL */
    fl_fencing_token_t token;   /* its token */
} elector_t;

/* What a started coordinator asks its elector: confirm leadership gen. */
typedef struct confirm_req {
    unsigned gen;
    fl_fencing_token_t token;
    char address[512];
} confirm_req_t;

/* On the elector's main thread: publishes the coordinator's address if
 * leadership gen is still held (it may have been revoked meanwhile). */
static void confirm_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    elector_t *e = state;
    confirm_req_t *q = arg;
    char hex[33], err[512];
    if (q->gen == e->gen && e->election != NULL &&
        fl_leader_election_has_leadership(e->election, &q->token)) {
        if (fl_leader_election_confirm(e->election, &q->token, q->address, err,
                                       sizeof err) == FL_OK)
            fl_log(FL_LOG_INFO, "Leading with token %s at %s",
                   cx_hex(&q->token, hex), q->address);
        else
            fl_log(FL_LOG_ERROR, "%s", err);
    }
    free(q);
}

static int coordinator_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    coordinator_t *c = state;
    char why[512];
    c->hb_opts.id = fl_rpc_endpoint_id(ep);
    c->hb_opts.role = FL_HEARTBEAT_SENDER;
    c->hb_opts.on_timeout = worker_lost;
    c->hb_opts.on_unreachable = worker_lost;
    c->hb_opts.on_incompatible = worker_lost;
    c->hb_opts.arg = c;
    int rc =
        fl_heartbeat_manager_alloc(ep, &c->hb_opts, &c->hb, why, sizeof why);
    if (rc != FL_OK)
        return fl_rpc_start_fail(ep, rc, "%s", why);
    /* Running: now its address may be published. */
    confirm_req_t *q = calloc(1, sizeof *q);
    if (q == NULL)
        return fl_rpc_start_fail(ep, FL_ENOMEM, "out of memory");
    q->gen = c->gen;
    q->token = c->token;
    snprintf(q->address, sizeof q->address, "%s", fl_rpc_endpoint_address(ep));
    return fl_rpc_run_async(c->elector, confirm_task, q, free) == FL_OK
               ? FL_OK
               : fl_rpc_start_fail(ep, FL_EUNREACHABLE,
                                   "the elector has stopped");
}

static fl_future_t *coordinator_on_stop(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    coordinator_t *c = state;
    (void)fl_heartbeat_manager_stop(c->hb); /* no callback after this */
    return NULL;
}

/* Once the coordinator has terminated, nothing else touches its state. */
static void coordinator_free(fl_future_t *f, void *arg)
{
    (void)f;
    coordinator_t *c = arg;
    fl_heartbeat_manager_free(c->hb);
    for (size_t i = 0; i < c->nworkers; i++) {
        fl_rpc_gateway_free(c->workers[i].gw);
        free(c->workers[i].id);
    }
    free(c);
}

/* Closes the current coordinator, if any; its state goes once it has
 * terminated. */
static void stop_leading(elector_t *e)
{
    if (e->leading == NULL)
        return;
    fl_log(FL_LOG_INFO, "Closing %s", fl_rpc_endpoint_address(e->leading));
    fl_future_t *term = fl_rpc_endpoint_close(e->leading);
    fl_future_release(term);
    fl_rpc_endpoint_free(e->leading);
    e->leading = NULL;
}

/* Leadership granted with token: a coordinator fenced with it. */
static void on_grant(fl_leader_election_t *le, const fl_fencing_token_t *token,
                     void *arg)
{
    (void)le;
    elector_t *e = arg;
    stop_leading(e);
    e->gen++;
    e->token = *token;
    coordinator_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        fl_log(FL_LOG_ERROR, "Out of memory for the coordinator");
        return;
    }
    c->elector = e->ep;
    c->token = *token;
    c->gen = e->gen;
    c->hb_opts = e->hb_opts;
    char id[64];
    snprintf(id, sizeof id, "coordinator_%u", e->gen);
    ProtobufCService *const services[] = {&coordinator_impl.base};
    fl_rpc_endpoint_opts_t eo = {
        .id = id,
        .services = services,
        .nservices = 1,
        .state = c,
        .on_start = coordinator_on_start,
        .on_stop = coordinator_on_stop,
        .fencing_token = token,
    };
    int rc =
        fl_rpc_endpoint_create(fl_rpc_endpoint_service(e->ep), &eo, &c->ep);
    if (rc != FL_OK) {
        fl_log(FL_LOG_ERROR, "Cannot create %s: %s", id, fl_rpc_last_message());
        free(c);
        return;
    }
    e->leading = c->ep;
    fl_future_t *term = fl_rpc_endpoint_termination(c->ep);
    if (term == NULL ||
        fl_future_on_complete(term, coordinator_free, c) != FL_OK)
        fl_log(FL_LOG_ERROR, "Cannot watch %s; its state will leak", id);
    fl_future_release(term);
    if (fl_rpc_endpoint_start(c->ep) != FL_OK)
        fl_log(FL_LOG_ERROR, "Cannot start %s: %s", id, fl_rpc_last_message());
}

static void on_revoke(fl_leader_election_t *le, void *arg)
{
    (void)le;
    elector_t *e = arg;
    char hex[33];
    fl_log(FL_LOG_WARN, "Leadership with token %s revoked",
           cx_hex(&e->token, hex));
    stop_leading(e);
}

/* Elector.Status. */
static void elector_status(Clusterex__Elector_Service *service,
                           const Clusterex__StatusRequest *in,
                           Clusterex__StatusReply_Closure closure, void *call)
{
    (void)service;
    (void)in;
    elector_t *e = fl_rpc_call_state(call);
    Clusterex__StatusReply reply = CLUSTEREX__STATUS_REPLY__INIT;
    char hex[33] = "";
    if (e->leading != NULL && e->election != NULL &&
        fl_leader_election_has_leadership(e->election, &e->token)) {
        reply.leading = true;
        reply.token = (char *)cx_hex(&e->token, hex);
        reply.coordinator = (char *)fl_rpc_endpoint_address(e->leading);
    }
    closure(&reply, call);
}

static Clusterex__Elector_Service elector_impl =
    CLUSTEREX__ELECTOR__INIT(elector_);

static int elector_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    elector_t *e = state;
    e->ep = ep;
    fl_leader_contender_t contender = {on_grant, on_revoke};
    char why[512];
    int rc = fl_leader_election_alloc(ep, &e->ha, CX_COMPONENT, &contender, e,
                                      &e->election, why, sizeof why);
    if (rc == FL_OK)
        rc = fl_leader_election_start(e->election, why, sizeof why);
    if (rc != FL_OK)
        return fl_rpc_start_fail(ep, rc, "%s", why);
    fl_log(FL_LOG_INFO, "Leader '%s' at %s contends for '%s' (%s)", e->name,
           fl_rpc_endpoint_address(ep), CX_COMPONENT,
           e->ha.mode == FL_HA_ZOOKEEPER ? "zookeeper" : "standalone");
    return FL_OK;
}

/* Leaves the election (no callback after), then closes the coordinator. */
static fl_future_t *elector_on_stop(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    elector_t *e = state;
    fl_leader_election_free(e->election);
    e->election = NULL;
    stop_leading(e);
    return NULL;
}

int main(int argc, char **argv)
{
    /* FIRST, before fling starts a thread (fling/signals.h). */
    if (fl_signals_block(cx_stop_signals, 2) != FL_OK)
        return 1;
    cx_args_t args;
    fl_config_t *cfg = cx_setup("cluster_leader", argc, argv, false, &args);
    if (cfg == NULL)
        return 2;
    elector_t e = {.name = args.name != NULL ? args.name : "leader"};
    char why[512];
    const char *host = "";
    int64_t port = 0;
    if (fl_cluster_ha_opts(cfg, &e.ha, why, sizeof why) != FL_OK ||
        fl_cluster_heartbeat_opts(cfg, &e.hb_opts, why, sizeof why) != FL_OK) {
        fprintf(stderr, "cluster_leader: %s\n", why);
        fl_config_free(cfg);
        return 2;
    }
    (void)fl_config_get_string(cfg, FL_CONFIG_JOBMANAGER_RPC_ADDRESS, &host);
    (void)fl_config_get_int(cfg, FL_CONFIG_JOBMANAGER_RPC_PORT, &port);
    char ports[16];
    snprintf(ports, sizeof ports, "%lld", (long long)port);

    fl_rpc_service_opts_t so = {
        .bind_host = host,
        .port = ports,
        .name = "cluster_leader",
    };
    ProtobufCService *const services[] = {&elector_impl.base};
    fl_rpc_endpoint_opts_t eo = {
        .id = "elector",
        .services = services,
        .nservices = 1,
        .state = &e,
        .on_start = elector_on_start,
        .on_stop = elector_on_stop,
    };
    /* The elector's on_stop leaves the election and closes the
     * coordinator; the config outlives them, as e.ha's strings need. */
    int status = cx_serve("cluster_leader", &so, &eo);
    fl_config_free(cfg);
    if (status == 0)
        fl_log(FL_LOG_INFO, "Leader '%s' stopped", e.name);
    return status;
}
