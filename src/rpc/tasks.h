/*
 * src/rpc/tasks.h - the service's scheduled executor (tasks.c): the
 * fl_rpc_schedule family, run by the actor system's timer.
 */
#ifndef FL_RPC_TASKS_H
#define FL_RPC_TASKS_H

#include <fling/rpc.h>

/*
 * Cancels every task of svc and waits until none is running. Called by
 * fl_rpc_service_shutdown once the endpoints terminated. BLOCKS on
 * svc->cv; never from a runtime thread.
 */
void fl__rpc_tasks_shutdown(fl_rpc_service_t *svc);

#endif /* FL_RPC_TASKS_H */
