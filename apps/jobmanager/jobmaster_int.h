/*
 * apps/jobmanager/jobmaster_int.h - the JobMaster's state and what its
 * files share: jobmaster.c (the endpoint, its gateway, its life),
 * jobmaster_rm.c (the ResourceManager connection), jobmaster_run.c (the
 * job's run: the record, deployment, the end, cancel, restarts, the slot
 * request timeout, the TaskExecutors' heartbeats and losses) and
 * jobmaster_reconcile.c (the TaskExecutors' deployment reports).
 * Everything here runs on the endpoint's main thread.
 */
#ifndef FLING_APPS_JOBMANAGER_JOBMASTER_INT_H
#define FLING_APPS_JOBMANAGER_JOBMASTER_INT_H

#include <stdbool.h>

#include "jobmaster.h"
#include "jobmaster.pb-c.h"
#include "taskexecutor.pb-c.h"

#define JS(x) FLING__CLUSTER__JOB_STATUS__STATE__##x
#define XS(x) FLING__CLUSTER__EXECUTION_STATE__STATE__##x

/* The cancels remembered per TaskExecutor, and the attempts a deployment
 * report may list (jobmaster_reconcile.c). */
#define JM_CANCELS 16
#define JM_REPORT_MAX 1024

/* A CancelTask sent for an attempt a TaskExecutor reported that this
 * JobMaster did not deploy there: sent again once wait more reports
 * listed it (the wait doubles), forgotten once a report lacks it. */
typedef struct jm_cancel {
    uint32_t vertex, attempt;
    uint32_t seen, wait;
} jm_cancel_t;

/* A TaskExecutor registered at this JobMaster. */
typedef struct jm_tm {
    char resource_id[256];
    char address[512];
    char session_id[64];  /* its process's; another one is a new process */
    fl_rpc_gateway_t *gw; /* unfenced TaskExecutorGateway */
    bool lost;
    /* Its SubmitTask calls in a row that failed FL_EUNREACHABLE (the
     * connection is gone). While > 0 its slots take no deployment; at
     * the heartbeat's unreachable threshold it is lost. An answer from it
     * (an acknowledged SubmitTask, a heartbeat) resets the count, if it
     * came half a heartbeat interval after the last failure: one sooner
     * may have crossed the closing connection. */
    int unreachable;
    uint64_t unreachable_ns;         /* fl_clock_now_ns of the last failure */
    uint64_t submitted;              /* SubmitTask calls made to it */
    jm_cancel_t cancels[JM_CANCELS]; /* oldest first */
    size_t ncancels;
    uint64_t warned_ns; /* fl_clock_now_ns of the last rate-limited warning */
} jm_tm_t;

/* An offered and accepted slot. */
typedef struct jm_slot {
    char alloc[33];
    size_t tm;   /* index in tms */
    long vertex; /* the execution vertex in it, or -1 */
    bool freed;
    /* The deployment into it: its number among its TaskExecutor's
     * SubmitTask calls, and whether that call was acknowledged. Until
     * both the acknowledgement and a report that counts it came, the
     * attempt is pending: no report can miss it. */
    uint64_t submit_seq;
    bool acked;
} jm_slot_t;

struct jm_jobmaster {
    fl_rpc_service_t *svc;
    const fl_config_t *cfg;
    jm_job_rec_t *rec;
    fj_job_t *job;
    fj_stream_graph_t *sg;
    fj_job_graph_t *jg;
    fj_exec_graph_t *eg;
    char *job_json, *job_dir;
    uint32_t parallelism;
    char rm_address[512];
    fl_fencing_token_t rm_token;
    /* The registered connection to the ResourceManager (jobmaster_rm.c);
     * rm is its gateway while registered (borrowed), else NULL. */
    fl_registered_connection_t *rm_conn;
    fl_registration_opts_t ropts;
    fl_rpc_gateway_t *rm;
    /* The job ended while a registration was under way: its outcome is
     * awaited (at most heartbeat.timeout, leave_timer) before the slots
     * are freed (jobmaster_rm.c). */
    bool leaving;
    fl_rpc_scheduled_t *leave_timer;
    void (*on_end)(void *arg, jm_jobmaster_t *jm);
    void *arg;
    fl_fencing_token_t token;
    fl_rpc_endpoint_t *ep;
    char id[64];
    int state; /* the job's */
    bool deployed, ended;
    size_t nv;   /* execution vertices */
    long *vslot; /* per vertex: its slot, or -1 */
    jm_tm_t *tms;
    size_t ntms;
    jm_slot_t *slots;
    size_t nslots;
    int64_t slot_timeout_ms;
    fl_rpc_scheduled_t *timer;
    int m_submit, m_cancel, m_free, m_disconnect_jm, m_heartbeat;
    fl_heartbeat_manager_t *hb;    /* sender towards the TaskExecutors */
    int failure_threshold;         /* heartbeat.rpc-failure-threshold */
    fl_heartbeat_manager_t *hb_rm; /* receiver of the ResourceManager's */
    char rm_hb_id[256];
    uint8_t probe[16]; /* a packed JobMasterHeartbeatPayload */
    /* The fixed-delay restart strategy. */
    int64_t restart_attempts, restart_delay_ms;
    uint32_t restarts;
    char restart_cause[1024];
};

/* A heartbeat target: the TaskExecutor of resource_id. */
typedef struct jm_hb_target {
    jm_jobmaster_t *jm;
    char resource_id[256];
} jm_hb_target_t;

/* ---- jobmaster_run.c -------------------------------------------------- */

/* The name of an ExecutionState and of a job state ("RUNNING";
 * static). */
const char *jm__exec_state_name(int s);
const char *jm__job_state_name(int s);

/* True for FINISHED, CANCELED and FAILED. */
bool jm__task_terminal(int s);

/* The job's and a task's state: the record first (under its mutex), then
 * the log line, so that a client that saw the line finds the state.
 * failure (may be NULL) is kept as the job's or the task's message. */
void jm__set_job_state(jm_jobmaster_t *jm, int state, const char *failure);
void jm__set_task_state(jm_jobmaster_t *jm, size_t v, int state,
                        const char *failure);
int jm__task_state(jm_jobmaster_t *jm, size_t v);

/* jm__release_all: the ResourceManager let the ended job go (or cannot
 * be told): frees the job's slots, stops the heartbeats, tells the
 * Dispatcher (on_end). Once per job. */
void jm__release_all(jm_jobmaster_t *jm);

/* jm__check_end ends the job once every task is terminal (FINISHED,
 * CANCELED or FAILED, or a restart when RESTARTING). */
void jm__check_end(jm_jobmaster_t *jm);

/* jm__cancel_all cancels every task not yet terminal, the job heading to
 * to (FAILING, CANCELLING or RESTARTING). */
void jm__cancel_all(jm_jobmaster_t *jm, int to, const char *failure);

/* jm__suspend: the JobMaster stops while its job runs (its JobManager
 * shuts down; Flink suspends the job). Asks the TaskExecutors to cancel
 * the job's attempts, then sends each DisconnectJobManager, which frees
 * the job's slots there; the job counts as ended. No-op once ended. */
void jm__suspend(jm_jobmaster_t *jm);

/* jm__task_failed: a task failed with why; the job restarts while the
 * fixed-delay strategy allows, else fails (jm__fail_job). */
void jm__task_failed(jm_jobmaster_t *jm, const char *why);
void jm__fail_job(jm_jobmaster_t *jm, const char *why);

/* The slots the job holds (used or not); deploys every task once there is
 * a free slot for each; (re)arms the slot request timeout. */
size_t jm__held_slots(const jm_jobmaster_t *jm);
void jm__try_deploy(jm_jobmaster_t *jm);
void jm__arm_slot_timer(jm_jobmaster_t *jm);

/* The heartbeat sender's send function (arg: a jm_hb_target_t) and
 * callbacks (arg: jm); a TaskExecutor lost: its tasks failed, its slots
 * are the job's no more, and, if tell, it is told so (jm__disconnect_tm;
 * not when it left on its own or a new process took its id). */
fl_future_t *jm__send_heartbeat(void *arg, const fl_heartbeat_msg_t *msg);
void jm__hb_timeout(void *arg, const fl_heartbeat_event_t *ev);
void jm__hb_unreachable(void *arg, const fl_heartbeat_event_t *ev);
void jm__hb_incompatible(void *arg, const fl_heartbeat_event_t *ev);
void jm__tm_lost(jm_jobmaster_t *jm, const char *resource_id, const char *how,
                 bool tell);

/* jm__disconnect_tm tells TaskExecutor i, best effort, that this JobMaster
 * counts it lost (Flink's disconnectTaskManager): it cancels the job's
 * tasks, frees the job's slots, and registers again when the
 * ResourceManager gives it a slot of the job. cause ends its log line
 * "Slot <i> freed: <cause>". */
void jm__disconnect_tm(jm_jobmaster_t *jm, size_t i, const char *cause);

/* jm__tm_answered: TaskExecutor i answered (a heartbeat): its slots take
 * deployments again, unless the answer came within half a heartbeat
 * interval of its last unreachable call (sent before it died, maybe). */
void jm__tm_answered(jm_jobmaster_t *jm, size_t i);

/* ---- jobmaster_rm.c --------------------------------------------------- */

/* jm__rm_start starts registering at the ResourceManager (retrying, as
 * cluster.registration.* says); after each success the job's slots are
 * declared. FL_OK, or the code with why. jm__rm_stop closes the
 * connection (no callback runs after it), jm__rm_free releases it. */
int jm__rm_start(jm_jobmaster_t *jm, char *why, size_t len);
void jm__rm_stop(jm_jobmaster_t *jm);
void jm__rm_free(jm_jobmaster_t *jm);

/* The ResourceManager's heartbeats stopped (arg: jm): register again. */
void jm__rm_silent(void *arg, const fl_heartbeat_event_t *ev);

/* Declares the job's slots to the ResourceManager (none while it is not
 * registered there): after each registration, and after a loss of slots,
 * which ends the ResourceManager's hold-offs for the job. Never blocks. */
void jm__rm_declare(jm_jobmaster_t *jm);

/* Sends DisconnectJobManager for the job's terminal state through rm (a
 * ResourceManager gateway, borrowed): the ResourceManager drops the job's
 * declaration. Returns the call's future (caller releases it), or NULL if
 * the call could not be made. Never blocks. */
fl_future_t *jm__rm_leave(jm_jobmaster_t *jm, fl_rpc_gateway_t *rm);

/* The job ended while not registered at the ResourceManager: if a
 * registration is under way, returns true and jm__release_all runs once
 * its outcome is known (after DisconnectJobManager on a success) or
 * after heartbeat.timeout; false: nothing is under way, release now. */
bool jm__rm_leave_later(jm_jobmaster_t *jm);

/* ---- jobmaster_reconcile.c -------------------------------------------- */

/* The heartbeat sender's payloads (arg: jm; Flink's
 * ExecutionDeploymentReconciler). jm__hb_probe gives the request to
 * TaskExecutor target its JobMasterHeartbeatPayload (borrowed until the
 * next call). jm__hb_report reconciles the DeploymentReport of TaskExecutor
 * origin's answer: an attempt deployed there, acknowledged and counted by
 * the report but absent from it fails (restart strategy); an attempt the
 * report has that is not the current one deployed there, or is terminal
 * here, is cancelled there. */
void jm__hb_probe(void *arg, const char *target, const void **data,
                  size_t *len);
void jm__hb_report(void *arg, const char *origin, const void *data, size_t len);

/* ---- jobmaster.c ------------------------------------------------------ */

/* The index of the TaskExecutor resource_id in jm->tms, or -1. */
long jm__tm_find(const jm_jobmaster_t *jm, const char *resource_id);

#endif
