/*
 * apps/jobmanager/jobmaster.h - the JobMaster of one job (Flink's
 * JobMaster, contract section 4 steps 10-21): a fenced endpoint
 * "jobmaster_<job id>" with a token of its own. It registers at the
 * ResourceManager (the retrying registration of cluster.registration.*)
 * and declares the slots the job needs (one per execution vertex); when
 * the ResourceManager's heartbeats stop or it refuses the declaration, it
 * registers and declares again while the tasks keep running. It takes
 * the slots TaskExecutors offer, deploys each execution vertex into one
 * (submitTask), follows the tasks' transitions, and at the end disconnects
 * from the ResourceManager and, once it answered, frees the slots. A job
 * that does not get its slots within slot.request.timeout fails.
 *
 * It heartbeats the TaskExecutors of its job; one lost while the job
 * runs fails its tasks and the job restarts by the fixed-delay strategy
 * (restart-strategy.fixed-delay.attempts, .delay) on the slots left.
 * Their heartbeat answers carry deployment reports: an attempt missing
 * from one fails, an unknown one is cancelled (jobmaster_reconcile.c).
 *
 * Its log lines (component app, level info):
 *   Job <name> (<id>) switched from state <A> to <B>.
 *   JobMaster of job <id> registered at ResourceManager <address> (leader
 *     token <hex>)
 *   <task name> (attempt #<k>) switched from <A> to <B>.
 *   Deploying <task name> (attempt #<k>) to TaskManager <id>
 *   Registered TaskManager <id> at the JobMaster of job <id>
 *   TaskManager <id> lost: <why>
 *   Restarting job <name> (<id>) in <ms> ms (restart <n> of <m>): <why>
 *   Job <name> (<id>) failed: <why>      (the job's failure, warn)
 *   JobMaster of job <id> lost its ResourceManager <address>: <why>;
 *     registering again                   (warn)
 *   and the deployment reports' lines (jobmaster_reconcile.c).
 */
#ifndef FLING_APPS_JOBMANAGER_JOBMASTER_H
#define FLING_APPS_JOBMANAGER_JOBMASTER_H

#include <pthread.h>
#include <stdint.h>

#include <fling/cluster.h>
#include <fling/rpc.h>

#include "job/graph.h"

/* One execution vertex as the Dispatcher shows it. */
typedef struct jm_task_rec {
    char *name; /* "Source: lines -> Sink: out (2/4)" */
    char vertex_name[256];
    uint32_t vertex_id; /* index in the JobGraph */
    uint32_t subtask, parallelism, attempt;
    int state; /* Fling__Cluster__ExecutionState__State */
    char tm[256];
    char failure[512];
} jm_task_rec_t;

/* A job's record: what the Dispatcher answers about it. The JobMaster
 * writes it, the Dispatcher reads it, both under mu. */
typedef struct jm_job_rec {
    pthread_mutex_t mu;
    char job_id[33];
    char *name;
    int state; /* Fling__Cluster__JobStatus__State */
    int64_t start_ms, end_ms;
    jm_task_rec_t *tasks;
    size_t ntasks;
    char failure[1024];
    uint32_t restarts;
} jm_job_rec_t;

typedef struct jm_jobmaster jm_jobmaster_t;

/* What a JobMaster is started with. The graphs and the job become the
 * JobMaster's (freed by jm_jobmaster_free); the strings are copied; rec
 * and cfg are borrowed and outlive it. */
typedef struct jm_jobmaster_opts {
    fl_rpc_service_t *svc;
    const fl_config_t *cfg;
    jm_job_rec_t *rec;
    fj_job_t *job;
    fj_stream_graph_t *sg;
    fj_job_graph_t *jg;
    fj_exec_graph_t *eg;
    const char *job_json;
    uint32_t parallelism;
    const char *job_dir;
    const char *rm_address;
    fl_fencing_token_t rm_token;
    /* Called once on the JobMaster's main thread when the job reached a
     * terminal state and its slots are freed. */
    void (*on_end)(void *arg, jm_jobmaster_t *jm);
    void *arg;
} jm_jobmaster_opts_t;

/*
 * jm_jobmaster_start creates and starts the JobMaster endpoint. Returns
 * FL_OK (*out is the caller's: jm_jobmaster_close, then jm_jobmaster_free;
 * the graphs are its own even on failure) or the endpoint's error with why
 * in err. Any thread; never blocks.
 */
int jm_jobmaster_start(const jm_jobmaster_opts_t *o, jm_jobmaster_t **out,
                       char *err, size_t errlen);

/* The JobMasterGateway's address and fencing token. */
const char *jm_jobmaster_address(const jm_jobmaster_t *jm);

/* jm_jobmaster_cancel cancels the job (every task is cancelled). Any
 * thread; never blocks. */
void jm_jobmaster_cancel(jm_jobmaster_t *jm);

/* jm_jobmaster_close stops the endpoint: the termination future (the
 * caller's reference). Any thread; never blocks. */
fl_future_t *jm_jobmaster_close(jm_jobmaster_t *jm);

/* jm_jobmaster_free releases jm once terminated. NULL: no-op. */
void jm_jobmaster_free(jm_jobmaster_t *jm);

/* jm_now_ms is the wall clock in ms since the Unix epoch. */
int64_t jm_now_ms(void);

#endif
