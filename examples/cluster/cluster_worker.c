/*
 * cluster_worker - a component that follows the coordinator's leader,
 * registers at it and heartbeats with it (the way a Flink TaskManager
 * follows its ResourceManager).
 *
 *   cluster_worker [-c FILE] [-D key=value ...] [--name NAME] [--host HOST]
 *
 * It serves the Worker gateway of cluster.proto as the endpoint "worker"
 * on HOST (default 127.0.0.1), any free port. On that endpoint's main
 * thread, so with no lock:
 *   - a leader retrieval (high-availability.*) tells it the leader's
 *     address and token: standalone, the configured JobManager address
 *     (jobmanager.rpc.address, jobmanager.rpc.port, endpoint
 *     coordinator_*) with the all-zero token; with ZooKeeper, whoever won
 *     the election, and each change;
 *   - for each leader it opens a registered connection (retrying
 *     registration, cluster.registration.*) that calls
 *     Coordinator.RegisterWorker with the leader's token;
 *   - a heartbeat receiver (heartbeat.*) answers the coordinator's
 *     requests; when the leader stays silent for heartbeat.timeout, the
 *     worker registers again.
 * Each event is one log line (fl_log, on stderr). SIGINT or SIGTERM stops
 * it cleanly.
 */
#include "cluster_common.h"

#include "cluster.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The worker's state: touched only on its endpoint's main thread. */
typedef struct worker {
    const char *name;
    fl_rpc_endpoint_t *ep;
    fl_ha_opts_t ha;
    fl_registration_opts_t reg;
    fl_heartbeat_opts_t hb_opts;

    fl_leader_retrieval_t *retrieval;
    fl_heartbeat_manager_t *hb;
    fl_registered_connection_t *conn; /* at the current leader, or NULL */
    char *leader_hb_id; /* the leader's heartbeat id once registered */
    bool heard;         /* a heartbeat request came since registering */
} worker_t;

/* ---- registration -------------------------------------------------------- */

/* Turns a RegisterReply into the registration's response; a success
 * carries the leader's heartbeat id as its payload. */
static int to_response(void *arg, void *value, void **out, fl_free_cb *out_free)
{
    (void)arg;
    const Clusterex__RegisterReply *r = value;
    if (r->accepted) {
        char *id = cx_strdup(r->leader_id);
        *out = id == NULL ? NULL
                          : fl_registration_response_alloc(
                                FL_REGISTRATION_SUCCESS, id, free, NULL);
    } else {
        *out = fl_registration_response_alloc(FL_REGISTRATION_FAILURE, NULL,
                                              NULL, "%s", r->reason);
    }
    *out_free = fl_registration_response_free;
    return *out != NULL ? FL_OK : FL_ENOMEM;
}

/* The registration function, one attempt: Coordinator.RegisterWorker through gw
 * (which stamps the leader's token on the call). */
static int register_at(fl_rpc_gateway_t *gw, const fl_fencing_token_t *token,
                       int64_t timeout_ms, void *arg, fl_future_t **out)
{
    (void)token;
    worker_t *w = arg;
    Clusterex__RegisterRequest req = CLUSTEREX__REGISTER_REQUEST__INIT;
    req.worker_id = (char *)w->name;
    req.address = (char *)fl_rpc_endpoint_address(w->ep);
    fl_future_t *f = NULL;
    int rc = fl_rpc_call(gw, 0 /* RegisterWorker */, &req.base, timeout_ms, &f);
    if (rc != FL_OK)
        return rc;
    *out = fl_future_then(f, to_response, NULL);
    fl_future_release(f);
    return *out != NULL ? FL_OK : FL_ENOMEM;
}

/* The heartbeat receiver's send function: carries a heartbeat response to
 * the leader, Coordinator.ReceiveHeartbeat through the registered
 * connection's gateway. */
static fl_future_t *send_to_leader(void *arg, const fl_heartbeat_msg_t *msg)
{
    worker_t *w = arg;
    fl_rpc_gateway_t *gw =
        w->conn != NULL ? fl_registered_connection_gateway(w->conn) : NULL;
    if (gw == NULL)
        return NULL;
    Clusterex__Heartbeat hb;
    Clusterex__Timing tm;
    cx_heartbeat_pack(msg, &hb, &tm);
    fl_future_t *f = NULL;
    (void)fl_rpc_call(gw, 1 /* ReceiveHeartbeat */, &hb.base, 0, &f);
    return f; /* NULL: not sent */
}

/* Stops heartbeating the leader registered at, if any. */
static void forget_leader(worker_t *w)
{
    if (w->leader_hb_id != NULL) {
        (void)fl_heartbeat_unmonitor(w->hb, w->leader_hb_id);
        free(w->leader_hb_id);
        w->leader_hb_id = NULL;
    }
}

static void on_registered(fl_registered_connection_t *c,
                          const fl_registration_response_t *resp, void *arg)
{
    worker_t *w = arg;
    fl_fencing_token_t token = {{0}};
    (void)fl_registered_connection_token(c, &token);
    /* The gateway's address is the endpoint's own, also when the leader's
     * address is a pattern (standalone: coordinator_*). */
    fl_rpc_gateway_t *gw = fl_registered_connection_gateway(c);
    char hex[33];
    fl_log(FL_LOG_INFO, "Registered at %s with token %s as '%s'",
           gw != NULL ? fl_rpc_gateway_address(gw)
                      : fl_registered_connection_address(c),
           cx_hex(&token, hex), w->name);
    forget_leader(w);
    w->heard = false;
    w->leader_hb_id = cx_strdup(resp->payload != NULL ? resp->payload : "");
    int rc = w->leader_hb_id != NULL
                 ? fl_heartbeat_monitor(w->hb, w->leader_hb_id, send_to_leader,
                                        w, NULL)
                 : FL_ENOMEM;
    if (rc != FL_OK)
        fl_log(FL_LOG_ERROR, "Cannot heartbeat with the leader: %s",
               fl_err_name(rc));
}

static void on_rejected(fl_registered_connection_t *c,
                        const fl_registration_response_t *resp, void *arg)
{
    (void)arg;
    fl_log(FL_LOG_ERROR, "Registration at %s rejected: %s",
           fl_registered_connection_address(c), resp->reason);
}

static void on_failed(fl_registered_connection_t *c, int err,
                      const char *message, void *arg)
{
    (void)arg;
    fl_log(FL_LOG_ERROR, "Registration at %s failed: %s (%s)",
           fl_registered_connection_address(c), message, fl_err_name(err));
}

/* Drops the connection to the previous leader and, if address is not
 * NULL, registers at address with token. */
static void follow(worker_t *w, const char *address,
                   const fl_fencing_token_t *token)
{
    forget_leader(w);
    fl_registered_connection_free(w->conn);
    w->conn = NULL;
    if (address == NULL)
        return;
    fl_registration_spec_t spec = {
        .target_name = CX_COMPONENT,
        .address = address,
        .desc = &clusterex__coordinator__descriptor,
        .token = token,
        .invoke = register_at,
        .arg = w,
        .opts = &w->reg,
    };
    fl_registered_connection_cbs_t cbs = {on_registered, on_rejected,
                                          on_failed};
    char why[512];
    int rc = fl_registered_connection_alloc(w->ep, &spec, &cbs, w, &w->conn,
                                            why, sizeof why);
    if (rc != FL_OK) {
        fl_log(FL_LOG_ERROR, "Cannot register at %s: %s", address, why);
        return;
    }
    rc = fl_registered_connection_start(w->conn);
    if (rc != FL_OK)
        fl_log(FL_LOG_ERROR, "Cannot register at %s: %s", address,
               fl_err_name(rc));
}

/* The leader retrieval's listener: each new leader, or none. */
static void on_leader(fl_leader_retrieval_t *lr, const char *address,
                      const fl_fencing_token_t *token, void *arg)
{
    (void)lr;
    worker_t *w = arg;
    char hex[33];
    if (address == NULL)
        fl_log(FL_LOG_WARN, "No leader known now");
    else
        fl_log(FL_LOG_INFO, "Leader is %s with token %s", address,
               cx_hex(token, hex));
    follow(w, address, token);
}

/* ---- heartbeats ---------------------------------------------------------- */

/* The leader went silent (timeout), unreachable, or refused our timing:
 * register again at the same leader; a new leader comes through
 * on_leader. */
static void leader_lost(void *arg, const fl_heartbeat_event_t *ev)
{
    worker_t *w = arg;
    fl_log(FL_LOG_WARN, "Leader lost: %s; registering again", ev->message);
    forget_leader(w);
    if (w->conn != NULL &&
        fl_registered_connection_try_reconnect(w->conn) != FL_OK)
        fl_log(FL_LOG_ERROR, "Cannot register again at %s",
               fl_registered_connection_address(w->conn));
}

/* Worker.RequestHeartbeat: the coordinator asks; the heartbeat manager
 * answers through send_to_leader. */
static void worker_request_heartbeat(Clusterex__Worker_Service *service,
                                     const Clusterex__Heartbeat *in,
                                     Clusterex__Ack_Closure closure, void *call)
{
    (void)service;
    worker_t *w = fl_rpc_call_state(call);
    fl_heartbeat_timing_t timing;
    fl_heartbeat_msg_t msg;
    cx_heartbeat_unpack(in, &msg, &timing);
    char why[512];
    int rc = fl_heartbeat_receive_request(w->hb, &msg, why, sizeof why);
    if (rc != FL_OK) {
        fl_rpc_fail(call, rc, "%s", why);
        return;
    }
    if (!w->heard && w->leader_hb_id != NULL &&
        strcmp(in->origin, w->leader_hb_id) == 0) {
        w->heard = true;
        fl_log(FL_LOG_INFO, "First heartbeat request from '%s'", in->origin);
    }
    Clusterex__Ack ack = CLUSTEREX__ACK__INIT;
    closure(&ack, call);
}

static Clusterex__Worker_Service worker_impl = CLUSTEREX__WORKER__INIT(worker_);

/* ---- the endpoint -------------------------------------------------------- */

static int worker_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    worker_t *w = state;
    w->ep = ep;
    char why[512];
    w->hb_opts.id = w->name;
    w->hb_opts.role = FL_HEARTBEAT_RECEIVER;
    w->hb_opts.on_timeout = leader_lost;
    w->hb_opts.on_unreachable = leader_lost;
    w->hb_opts.on_incompatible = leader_lost;
    w->hb_opts.arg = w;
    int rc =
        fl_heartbeat_manager_alloc(ep, &w->hb_opts, &w->hb, why, sizeof why);
    if (rc != FL_OK)
        return fl_rpc_start_fail(ep, rc, "%s", why);
    rc = fl_leader_retrieval_alloc(ep, &w->ha, CX_COMPONENT, on_leader, w,
                                   &w->retrieval, why, sizeof why);
    if (rc == FL_OK)
        rc = fl_leader_retrieval_start(w->retrieval, why, sizeof why);
    if (rc != FL_OK)
        return fl_rpc_start_fail(ep, rc, "%s", why);
    fl_log(FL_LOG_INFO, "Worker '%s' at %s follows the leader of '%s' (%s)",
           w->name, fl_rpc_endpoint_address(ep), CX_COMPONENT,
           w->ha.mode == FL_HA_ZOOKEEPER ? "zookeeper" : "standalone");
    return FL_OK;
}

/* Lets go of everything on the main thread: no callback runs after. */
static fl_future_t *worker_on_stop(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    worker_t *w = state;
    fl_leader_retrieval_free(w->retrieval);
    w->retrieval = NULL;
    forget_leader(w);
    fl_registered_connection_free(w->conn);
    w->conn = NULL;
    fl_heartbeat_manager_free(w->hb);
    w->hb = NULL;
    return NULL;
}

int main(int argc, char **argv)
{
    /* FIRST, before fling starts a thread (fling/signals.h). */
    if (fl_signals_block(cx_stop_signals, 2) != FL_OK)
        return 1;
    cx_args_t args;
    fl_config_t *cfg = cx_setup("cluster_worker", argc, argv, true, &args);
    if (cfg == NULL)
        return 2;
    char default_name[32];
    snprintf(default_name, sizeof default_name, "worker-%d", (int)getpid());
    worker_t w = {.name = args.name != NULL ? args.name : default_name};

    /* The options of the three utilities, from the configuration. The
     * standalone leader is the configured JobManager's address, with the
     * pattern of the coordinator endpoints. */
    char why[512], standalone[512];
    if (fl_cluster_ha_opts(cfg, &w.ha, why, sizeof why) != FL_OK ||
        fl_cluster_registration_opts(cfg, &w.reg, why, sizeof why) != FL_OK ||
        fl_cluster_heartbeat_opts(cfg, &w.hb_opts, why, sizeof why) != FL_OK ||
        (w.ha.mode == FL_HA_NONE &&
         fl_cluster_jobmanager_address(cfg, CX_COORDINATOR_PATTERN, standalone,
                                       sizeof standalone, why,
                                       sizeof why) != FL_OK)) {
        fprintf(stderr, "cluster_worker: %s\n", why);
        fl_config_free(cfg);
        return 2;
    }
    if (w.ha.mode == FL_HA_NONE)
        w.ha.standalone_address = standalone;

    fl_rpc_service_opts_t so = {
        .bind_host = args.host != NULL ? args.host : "127.0.0.1",
        .port = "0",
        .name = "cluster_worker",
    };
    ProtobufCService *const services[] = {&worker_impl.base};
    fl_rpc_endpoint_opts_t eo = {
        .id = "worker",
        .services = services,
        .nservices = 1,
        .state = &w,
        .on_start = worker_on_start,
        .on_stop = worker_on_stop,
    };
    /* The worker's on_stop lets go of the utilities; the config outlives
     * them, as w.ha's strings need. */
    int status = cx_serve("cluster_worker", &so, &eo);
    fl_config_free(cfg);
    if (status == 0)
        fl_log(FL_LOG_INFO, "Worker '%s' stopped", w.name);
    return status;
}
