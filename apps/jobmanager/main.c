/*
 * fling-jobmanager - the JobManager process of a fling cluster.
 *
 *   fling-jobmanager [-c CONFIG] [-D key=value]... [--log FILE]
 *
 * One RPC service on jobmanager.rpc.address:jobmanager.rpc.port (port 0:
 * any free one; the first line of stdout is the bound address). Its
 * process endpoint "jobmanager" runs the ResourceManager's leader election
 * (high-availability.type: NONE or zookeeper); each grant starts a fenced
 * ResourceManager endpoint "resourcemanager_<n>" with the leader token,
 * each revoke closes it. SIGINT or SIGTERM stops it cleanly (exit 0); a
 * bad command line or configuration exits 1 saying why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fling/cluster.h>
#include <fling/rpc.h>

#include "cluster_types.pb-c.h"
#include "dispatcher.h"
#include "process.h"
#include "resourcemanager.h"

typedef struct jm {
    fa_process_t *proc;
    fl_rpc_service_t *svc;
    fl_rpc_endpoint_t *ep;
    fl_ha_opts_t ha;
    fl_leader_election_t *le;
    jm_rm_t *rm;   /* the leading ResourceManager, or NULL */
    jm_rm_t **old; /* closed ones, freed at the end */
    size_t nold;
    jm_dispatcher_t *disp; /* the leading Dispatcher, or NULL */
    jm_dispatcher_t **dold;
    size_t ndold;
    fl_future_t **dterm;  /* closed Dispatchers' terminations */
    unsigned next_n;      /* the number of the next resourcemanager_<n> */
    jm_jobstore_t *store; /* the jobs every Dispatcher recovers */
} jm_t;

static void jm_describe(Fling__Cluster__ProcessGateway_Service *svc,
                        const Fling__Cluster__Ack *req,
                        Fling__Cluster__ProcessInfo_Closure closure, void *call)
{
    (void)svc;
    (void)req;
    jm_t *jm = fl_rpc_call_state(call);
    char addr[300];
    snprintf(addr, sizeof addr, "%s%s:%d", fl_cluster_rpc_scheme(jm->proc->cfg),
             fl_rpc_service_address(jm->svc), fl_rpc_service_port(jm->svc));
    Fling__Cluster__ProcessInfo info = FLING__CLUSTER__PROCESS_INFO__INIT;
    info.role = "jobmanager";
    info.address = addr;
    if (jm->disp != NULL) {
        info.dispatcher_address = (char *)jm_dispatcher_address(jm->disp);
        info.dispatcher_token.data =
            (uint8_t *)jm_dispatcher_token(jm->disp)->bytes;
        info.dispatcher_token.len = 16;
    }
    closure(&info, call);
}

static Fling__Cluster__ProcessGateway_Service jm_impl =
    FLING__CLUSTER__PROCESS_GATEWAY__INIT(jm_);

/* Closes the leading Dispatcher and keeps it to free at the end. */
static void close_dispatcher(jm_t *jm)
{
    if (jm->disp == NULL)
        return;
    fl_future_t *f = jm_dispatcher_close(jm->disp);
    jm_dispatcher_t **o = realloc(jm->dold, (jm->ndold + 1) * sizeof *o);
    fl_future_t **t = realloc(jm->dterm, (jm->ndold + 1) * sizeof *t);
    if (t != NULL)
        jm->dterm = t;
    if (o != NULL && t != NULL) {
        jm->dold = o;
        jm->dold[jm->ndold] = jm->disp;
        jm->dterm[jm->ndold++] = f;
    } else { /* leaked rather than freed while it may still run */
        if (o != NULL)
            jm->dold = o;
        fl_future_release(f);
    }
    jm->disp = NULL;
}

/* Closes the leading ResourceManager and keeps it to free at the end. */
static void close_rm(jm_t *jm, const char *cause)
{
    close_dispatcher(jm);
    if (jm->rm == NULL)
        return;
    fl_future_release(jm_rm_close(jm->rm, cause));
    jm_rm_t **o = realloc(jm->old, (jm->nold + 1) * sizeof *o);
    if (o != NULL) {
        jm->old = o;
        jm->old[jm->nold++] = jm->rm;
    } /* else: leaked rather than freed while it may still run */
    jm->rm = NULL;
}

static void grant(fl_leader_election_t *le, const fl_fencing_token_t *token,
                  void *arg)
{
    jm_t *jm = arg;
    close_rm(jm, "ResourceManager leadership changed");
    char err[512];
    int rc = jm_rm_start(jm->svc, jm->proc->cfg, token, ++jm->next_n, &jm->rm,
                         err, sizeof err);
    if (rc != FL_OK) {
        fa_process_fatal(jm->proc, "%s", err);
        return;
    }
    /* The Dispatcher leads with the ResourceManager: one election, as
     * standalone Flink grants both the same session id. */
    jm_dispatcher_opts_t d = {
        .svc = jm->svc,
        .cfg = jm->proc->cfg,
        .token = token,
        .n = jm->next_n,
        .rm_address = jm_rm_address(jm->rm),
        .rm_token = token,
        .store = jm->store,
        .after = jm->ndold > 0 ? jm->dterm[jm->ndold - 1] : NULL,
    };
    rc = jm_dispatcher_start(&d, &jm->disp, err, sizeof err);
    if (rc != FL_OK) {
        fa_process_fatal(jm->proc, "%s", err);
        return;
    }
    rc = fl_leader_election_confirm(le, token, jm_rm_address(jm->rm), err,
                                    sizeof err);
    if (rc != FL_OK)
        fl_log(FL_LOG_WARN,
               "ResourceManager %s could not confirm its leadership: %s",
               jm_rm_address(jm->rm), err);
}

static void revoke(fl_leader_election_t *le, void *arg)
{
    (void)le;
    jm_t *jm = arg;
    if (jm->rm != NULL)
        fl_log(FL_LOG_INFO, "ResourceManager %s lost its leadership",
               jm_rm_address(jm->rm));
    close_rm(jm, "ResourceManager lost its leadership");
}

static int jm_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    jm_t *jm = state;
    static const fl_leader_contender_t contender = {grant, revoke};
    char why[512];
    int rc = fl_leader_election_alloc(ep, &jm->ha, "resourcemanager",
                                      &contender, jm, &jm->le, why, sizeof why);
    if (rc == FL_OK)
        rc = fl_leader_election_start(jm->le, why, sizeof why);
    if (rc != FL_OK)
        return fl_rpc_start_fail(ep, rc, "%s", why);
    return FL_OK;
}

/* Leaves the election, then stops the ResourceManager; done once it has
 * terminated. */
static fl_future_t *jm_on_stop(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    jm_t *jm = state;
    fl_leader_election_free(jm->le);
    jm->le = NULL;
    close_dispatcher(jm);
    if (jm->rm == NULL)
        return NULL;
    fl_future_t *f = jm_rm_close(jm->rm, "the JobManager is shutting down");
    jm_rm_t **o = realloc(jm->old, (jm->nold + 1) * sizeof *o);
    if (o != NULL) {
        jm->old = o;
        jm->old[jm->nold++] = jm->rm;
    }
    jm->rm = NULL;
    return f;
}

/* Opens the job store: in high-availability.storageDir/jobs with
 * ZooKeeper and a storageDir, else in memory. FL_OK or the code with
 * why. */
static int open_store(jm_t *jm, char *why, size_t len)
{
    const char *dir = "";
    fl_config_get_string(jm->proc->cfg, FL_CONFIG_HA_STORAGE_DIR, &dir);
    char path[4096], err[512];
    bool files = jm->ha.mode == FL_HA_ZOOKEEPER && dir[0] != '\0';
    if (files)
        snprintf(path, sizeof path, "%s/jobs", dir);
    int rc = jm_jobstore_open(files ? path : NULL, &jm->store, err, sizeof err);
    if (rc != FL_OK)
        snprintf(why, len, "Could not open the job store: %s", err);
    return rc;
}

/* The process endpoint failed to start (the election): end the process. */
static void jm_ended(fl_future_t *f, void *arg)
{
    if (fl_future_error(f) != FL_OK)
        fa_process_fatal(arg, "%s", fl_future_message(f));
}

int main(int argc, char **argv)
{
    fa_process_t proc;
    int rc = fa_process_init(&proc, "fling-jobmanager", argc, argv);
    if (rc != FL_OK)
        return rc == FL_ECANCELED ? 0 : 1;
    jm_t jm = {.proc = &proc};
    char why[600];
    rc = fl_cluster_ha_opts(proc.cfg, &jm.ha, why, sizeof why);
    if (rc == FL_OK)
        rc = open_store(&jm, why, sizeof why);
    if (rc != FL_OK) {
        fprintf(stderr, "fling-jobmanager: %s\n", why);
        fa_process_fini(&proc);
        return 1;
    }
    const char *host = "localhost";
    int64_t port = 0;
    fl_config_get_string(proc.cfg, FL_CONFIG_JOBMANAGER_RPC_ADDRESS, &host);
    fl_config_get_int(proc.cfg, FL_CONFIG_JOBMANAGER_RPC_PORT, &port);
    char ports[16];
    snprintf(ports, sizeof ports, "%lld", (long long)port);
    if (fa_process_service(&proc, host, ports, &jm.svc) != FL_OK) {
        jm_jobstore_free(jm.store);
        fa_process_fini(&proc);
        return 1;
    }
    static ProtobufCService *const services[] = {&jm_impl.base};
    fl_rpc_endpoint_opts_t o = {
        .id = "jobmanager",
        .services = services,
        .nservices = 1,
        .state = &jm,
        .on_start = jm_on_start,
        .on_stop = jm_on_stop,
    };
    rc = fl_rpc_endpoint_create(jm.svc, &o, &jm.ep);
    if (rc == FL_OK)
        rc = fl_rpc_endpoint_start(jm.ep);
    fl_future_t *term = rc == FL_OK ? fl_rpc_endpoint_termination(jm.ep) : NULL;
    if (rc != FL_OK || term == NULL ||
        fl_future_on_complete(term, jm_ended, &proc) != FL_OK) {
        fprintf(stderr, "fling-jobmanager: could not start: %s\n",
                fl_rpc_last_message());
        rc = FL_EINTERNAL;
    }
    int status = rc == FL_OK ? fa_process_wait(&proc) : 1;
    if (jm.ep != NULL) {
        fl_future_t *f = fl_rpc_endpoint_close(jm.ep);
        fl_future_wait(f, FL_INFINITE);
        fl_future_release(f);
    }
    fl_rpc_service_shutdown(jm.svc);
    fl_log(FL_LOG_INFO, "fling-jobmanager stopped");
    fl_future_release(term);
    fl_rpc_endpoint_free(jm.ep);
    for (size_t i = 0; i < jm.nold; i++)
        jm_rm_free(jm.old[i]);
    free(jm.old);
    for (size_t i = 0; i < jm.ndold; i++) {
        fl_future_wait(jm.dterm[i], FL_INFINITE);
        fl_future_release(jm.dterm[i]);
        jm_dispatcher_free(jm.dold[i]);
    }
    free(jm.dold);
    free(jm.dterm);
    fl_rpc_service_free(jm.svc);
    jm_jobstore_free(jm.store);
    /* The reason last, where a user looks first. */
    if (status != 0 && proc.reason[0] != '\0')
        fprintf(stderr, "fling-jobmanager: %s\n", proc.reason);
    fa_process_fini(&proc);
    return status;
}
