/*
 * apps/taskmanager/taskexecutor_int.h - the TaskExecutor's state and what
 * its files share: taskexecutor.c (the endpoint, its gateway, its slots)
 * and rm_connection.c (the connection to the ResourceManager: leader,
 * registration, its timeout, heartbeats). Everything here runs on the
 * endpoint's main thread.
 */
#ifndef FLING_APPS_TASKMANAGER_TASKEXECUTOR_INT_H
#define FLING_APPS_TASKMANAGER_TASKEXECUTOR_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster_types.pb-c.h"
#include "taskexecutor.h"
#include "taskexecutor.pb-c.h"

/* A slot: free, reserved for a job (allocated, offered) or active (the
 * job's JobMaster accepted it); or RELEASING: freed while a task thread
 * of its last allocation still runs, neither given out nor said
 * available until that thread ended. */
typedef struct tm_slot {
    char alloc[33]; /* "" free */
    char job[33];
    bool active;
    char releasing[33], releasing_job[33]; /* "" not releasing */
} tm_slot_t;

struct tm_job;
struct tm_task;
struct final_update;

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
    /* The registration that holds, while registered. */
    bool registered;
    /* on_stop ran: calls still coming (while it says goodbye) are
     * refused rather than start what nothing would free. */
    bool stopping;
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
    /* Slots, jobs (the job leader service) and tasks (jobs.c, tasks.c). */
    tm_slot_t *slots;
    struct tm_job *jobs;
    fl_heartbeat_manager_t *hb_jm; /* receiver of the JobMasters' */
    /* A slot not active this long after its request is freed. */
    int64_t slot_timeout_ms;
    /* The cancellation watchdog (task.cancellation.interval and
     * .timeout; 0: no timeout). */
    int64_t cancel_interval_ms, cancel_timeout_ms;
    struct tm_task *tasks;
    /* Final states sent and not yet acknowledged (tasks.c). */
    struct final_update *finals;
    /* The packed deployment report of the last JobMaster heartbeat. */
    uint8_t *jm_payload;
    size_t jm_payload_cap;
};

/* A slot report built on the heap (nslots may be large). */
typedef struct report_buf {
    Fling__Cluster__SlotReport r;
    Fling__Cluster__SlotStatus *st;
    Fling__Cluster__SlotStatus **ptrs;
} report_buf_t;

/* tm__report_init builds te's slot report into b: FL_OK (release with
 * tm__report_fini) or FL_ENOMEM. */
int tm__report_init(const tm_te_t *te, report_buf_t *b);
void tm__report_fini(report_buf_t *b);

/* tm__arm_timer (re)starts the registration timeout, as Flink does on
 * every reconnect: when it fires unregistered the process ends
 * (fa_process_fatal). tm__disarm_timer stops it. */
void tm__arm_timer(tm_te_t *te);
void tm__disarm_timer(tm_te_t *te);

/* tm__tell_disconnect calls disconnectTaskManager(cause) on the
 * ResourceManager of the last registration: the call's future (the
 * caller's), or NULL if there is none. */
fl_future_t *tm__tell_disconnect(tm_te_t *te, const char *cause);

/* tm__reconnect ends the current registration (telling the
 * ResourceManager when tell), logs why and registers again. No-op when
 * not registered. */
void tm__reconnect(tm_te_t *te, const char *why, bool tell);

/* The leader retrieval's listener: drops the connection to the old
 * leader and registers at the new one (arg: te). */
void tm__leader_changed(fl_leader_retrieval_t *lr, const char *address,
                        const fl_fencing_token_t *token, void *arg);

/* The heartbeat receiver's callbacks (arg: te): the ResourceManager went
 * silent, unreachable or incompatible; the slot report to answer with. */
void tm__rm_silent(void *arg, const fl_heartbeat_event_t *ev);
void tm__retrieve_payload(void *arg, const char *target, const void **data,
                          size_t *len);

/* ---- jobs.c: slots and the job leader service ---- */

/* tm__free_slot frees slot i: it tells the ResourceManager it is available
 * and, when the job holds no other slot here, leaves the job's JobMaster. */
void tm__free_slot(tm_te_t *te, uint32_t i, const char *cause);

/* tm__job_token is the fencing token of the JobMaster job_id's slots
 * here were requested for (the job's incarnation: a recovered job's new
 * JobMaster has a new one), or NULL when the job holds none; borrowed
 * until the job is left. */
const fl_fencing_token_t *tm__job_token(const tm_te_t *te, const char *job_id);

/* tm__job_gateway is the fenced JobMasterGateway of job_id while the
 * TaskExecutor is registered at its JobMaster of fencing token token, or
 * NULL: the job has no JobMaster here, or another one (*other, when not
 * NULL, then says which). */
fl_rpc_gateway_t *tm__job_gateway(tm_te_t *te, const char *job_id,
                                  const fl_fencing_token_t *token, bool *other);

/* The JobMasters' heartbeat receiver's callback (arg: te): a JobMaster
 * went silent or unreachable; its job's slots are freed. */
void tm__jm_silent(void *arg, const fl_heartbeat_event_t *ev);

/* The JobMasters' heartbeat payloads (arg: te): tm__jm_probe takes the
 * `submitted` of a JobMaster's request; tm__jm_report gives the job's
 * packed DeploymentReport (jobmaster.proto) to answer it with, borrowed
 * until the next call. */
void tm__jm_probe(void *arg, const char *origin, const void *data, size_t len);
void tm__jm_report(void *arg, const char *target, const void **data,
                   size_t *len);

/* tm__slot_task_ended: the last task of allocation alloc ended (its
 * thread joined): a slot RELEASING it becomes free and the
 * ResourceManager hears it is available. */
void tm__slot_task_ended(tm_te_t *te, const char *alloc);

/* tm__jobs_stop frees every slot and forgets every job (shutdown). */
void tm__jobs_stop(tm_te_t *te);

/* ---- tasks.c: task threads ---- */

/* tm__cancel_slot_tasks sets the cancel flag of the tasks in allocation
 * (arming each one's cancellation watchdog) and returns how many there
 * are (their threads may still run). */
size_t tm__cancel_slot_tasks(tm_te_t *te, const char *alloc);

/* One attempt a TaskExecutor runs, for the deployment report; ending:
 * its final state waits for the JobMaster's acknowledgement. */
typedef struct tm_attempt {
    uint32_t vertex, attempt;
    bool ending;
} tm_attempt_t;

/* tm__job_attempts writes up to cap attempts of job_id deployed under
 * its JobMaster of fencing token token into out (its tasks, then its
 * unacknowledged final states) and returns how many there are, which may
 * exceed cap. An earlier JobMaster's attempts are not the current one's:
 * they share its attempt numbers. */
size_t tm__job_attempts(const tm_te_t *te, const char *job_id,
                        const fl_fencing_token_t *token, tm_attempt_t *out,
                        size_t cap);

/* tm__tasks_stop cancels every task and joins its thread: BLOCKS until
 * each saw its flag (within one record), or, for a thread stuck in a user
 * function, until task.cancellation.timeout ends the process (0: for
 * ever), logging it every task.cancellation.interval. */
void tm__tasks_stop(tm_te_t *te);

/* The slot and task handlers of the TaskExecutorGateway. */
void te_request_slot(Fling__Cluster__TaskExecutorGateway_Service *svc,
                     const Fling__Cluster__SlotRequest *req,
                     Fling__Cluster__Ack_Closure closure, void *call);
void te_free_slot(Fling__Cluster__TaskExecutorGateway_Service *svc,
                  const Fling__Cluster__FreeSlotRequest *req,
                  Fling__Cluster__Ack_Closure closure, void *call);
void te_disconnect_job_manager(
    Fling__Cluster__TaskExecutorGateway_Service *svc,
    const Fling__Cluster__DisconnectJobManagerFromTaskExecutor *req,
    Fling__Cluster__Ack_Closure closure, void *call);
void te_submit_task(Fling__Cluster__TaskExecutorGateway_Service *svc,
                    const Fling__Cluster__TaskDeploymentDescriptor *req,
                    Fling__Cluster__Ack_Closure closure, void *call);
void te_heartbeat_from_job_manager(
    Fling__Cluster__TaskExecutorGateway_Service *svc,
    const Fling__Cluster__Heartbeat *req, Fling__Cluster__Ack_Closure closure,
    void *call);
void te_cancel_task(Fling__Cluster__TaskExecutorGateway_Service *svc,
                    const Fling__Cluster__ExecutionAttempt *req,
                    Fling__Cluster__Ack_Closure closure, void *call);

#endif
