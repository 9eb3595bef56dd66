/*
 * apps/taskmanager/taskexecutor.h - the TaskExecutor endpoint of
 * fling-taskmanager (Flink's TaskExecutor, contract section 4 steps 4-8 and
 * 23): unfenced, with taskmanager.numberOfTaskSlots slots. It finds the
 * ResourceManager through leader retrieval, registers with the retrying
 * registration (cluster.registration.*), sends its slot report, answers
 * the ResourceManager's heartbeats with it, and registers again when the
 * ResourceManager disconnects it, goes silent or changes. Not registered
 * within taskmanager.registration.timeout, or refused for good, it ends
 * the process through fa_process_fatal.
 *
 * It also takes slots for jobs, registers at their JobMasters and runs
 * their tasks (jobs.c, tasks.c; contract section 4 steps 13-21).
 *
 * Its log lines (component app, level info):
 *   TaskExecutor <address> started as <id> with <n> slots
 *   Registered at ResourceManager <address> as <id>
 *   ResourceManager <address> lost: <why>     (then it registers again)
 *   Slot <i> allocated to job <id> (allocation <a>)
 *   Registered at the JobMaster of job <id>
 *   <task name> (attempt #<k>) switched from <A> to <B>.
 *   Task <name> (attempt #<k>) is still running after cancellation, <N> ms
 *   Slot <i> freed: <cause>
 *   JobMaster of job <id> lost: <why>
 */
#ifndef FLING_APPS_TASKMANAGER_TASKEXECUTOR_H
#define FLING_APPS_TASKMANAGER_TASKEXECUTOR_H

#include <fling/cluster.h>
#include <fling/rpc.h>

#include "process.h"

typedef struct tm_te tm_te_t;

/*
 * tm_te_start creates and starts the endpoint "taskexecutor" on svc for
 * process p (borrowed: p and its configuration outlive it), retrieving
 * the ResourceManager leader with ha (copied). Returns FL_OK (*out is the
 * caller's: tm_te_close, then tm_te_free) or an error with why in err.
 * Program's main thread; never blocks.
 */
int tm_te_start(fl_rpc_service_t *svc, fa_process_t *p, const fl_ha_opts_t *ha,
                tm_te_t **out, char *err, size_t errlen);

/*
 * tm_te_close stops the TaskExecutor: a registered one tells the
 * ResourceManager it leaves (disconnectTaskManager) and waits for its
 * answer, at most pekko.ask.timeout. Returns the termination future
 * (caller owns a reference). Any thread; never blocks.
 */
fl_future_t *tm_te_close(tm_te_t *te);

/* tm_te_free releases te once terminated. NULL: no-op. */
void tm_te_free(tm_te_t *te);

#endif
