/*
 * apps/jobmanager/dispatcher.h - the Dispatcher endpoint of
 * fling-jobmanager (Flink's Dispatcher, contract section 4 steps 3, 9 and
 * 22): fenced with the leader token it was granted, id "dispatcher_<n>"
 * (apps/gateways/dispatcher.proto). It takes jobs (parsed, checked, their
 * three graphs built), starts one JobMaster per job (jobmaster.h) and
 * keeps every job's status and result for the clients.
 *
 * Its log lines (component app, level info):
 *   Received job <name> (<id>) with <n> tasks
 *   Job submission refused: <why>                     (warn)
 *   Cancelling job <name> (<id>)
 *   Job <name> (<id>) reached its terminal state <STATE>.
 * and at level debug (its order against the ResourceManager's start line
 * is not fixed): Dispatcher <address> started with leader token <hex>
 */
#ifndef FLING_APPS_JOBMANAGER_DISPATCHER_H
#define FLING_APPS_JOBMANAGER_DISPATCHER_H

#include <fling/cluster.h>
#include <fling/rpc.h>

typedef struct jm_dispatcher jm_dispatcher_t;

/*
 * jm_dispatcher_start creates and starts "dispatcher_<n>" on svc, fenced
 * with token, its JobMasters registering at the ResourceManager at
 * rm_address with rm_token (copied); cfg is borrowed and outlives it.
 * Returns FL_OK (*out is the caller's: jm_dispatcher_close, then
 * jm_dispatcher_free) or the endpoint's error with why in err. Any thread;
 * never blocks.
 */
int jm_dispatcher_start(fl_rpc_service_t *svc, const fl_config_t *cfg,
                        const fl_fencing_token_t *token, unsigned n,
                        const char *rm_address,
                        const fl_fencing_token_t *rm_token,
                        jm_dispatcher_t **out, char *err, size_t errlen);

/* The endpoint's address ("fling.tcp://host:port/dispatcher_1") and token. */
const char *jm_dispatcher_address(const jm_dispatcher_t *d);
const fl_fencing_token_t *jm_dispatcher_token(const jm_dispatcher_t *d);

/*
 * jm_dispatcher_close stops the Dispatcher and the JobMasters of its
 * running jobs. Returns its termination future (caller owns a reference),
 * complete once the JobMasters have stopped too. Any thread; never blocks.
 */
fl_future_t *jm_dispatcher_close(jm_dispatcher_t *d);

/* jm_dispatcher_free releases d and its jobs once terminated. NULL: no-op. */
void jm_dispatcher_free(jm_dispatcher_t *d);

#endif
