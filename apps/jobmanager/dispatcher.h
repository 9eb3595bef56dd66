/*
 * apps/jobmanager/dispatcher.h - the Dispatcher endpoint of
 * fling-jobmanager (Flink's Dispatcher, contract section 4 steps 3, 9 and
 * 22): fenced with the leader token it was granted, id "dispatcher_<n>"
 * (apps/gateways/dispatcher.proto). It takes jobs (parsed, checked, their
 * three graphs built), starts one JobMaster per job (jobmaster.h) and
 * keeps every job's status and result for the clients. A job that reached
 * a terminal state loses its JobMaster (endpoint closed, memory freed)
 * and is kept as its record: the newest jobstore.max-capacity of them,
 * each for jobstore.expiration-time after its end. A job not terminal when
 * the Dispatcher stops (its leadership revoked) is suspended, and the next
 * Dispatcher of the process starts it again under its id.
 *
 * Its log lines (component app, level info):
 *   Received job <name> (<id>) with <n> tasks
 *   Recovered job <name> (<id>) with <n> tasks
 *   Could not recover job <id>: <why>                 (warn)
 *   Job submission refused: <why>                     (warn)
 *   Cancelling job <name> (<id>)
 *   Job <name> (<id>) reached its terminal state <STATE>.
 *   Job <name> (<id>) archived: its JobMaster is freed
 * and at level debug (its order against the ResourceManager's start line
 * is not fixed): Dispatcher <address> started with leader token <hex>
 */
#ifndef FLING_APPS_JOBMANAGER_DISPATCHER_H
#define FLING_APPS_JOBMANAGER_DISPATCHER_H

#include <fling/cluster.h>
#include <fling/rpc.h>

#include "jobstore.h"

typedef struct jm_dispatcher jm_dispatcher_t;

/* What a Dispatcher is started with; everything is borrowed, except
 * after, of which the Dispatcher takes a reference of its own. */
typedef struct jm_dispatcher_opts {
    fl_rpc_service_t *svc;
    const fl_config_t *cfg; /* outlives the Dispatcher */
    const fl_fencing_token_t *token;
    unsigned n; /* "dispatcher_<n>" */
    /* Where its JobMasters register (copied). */
    const char *rm_address;
    const fl_fencing_token_t *rm_token;
    /* The process's job store (jobstore.h), outlives the Dispatcher: the
     * jobs it takes go in, and the jobs in it at start are recovered. */
    jm_jobstore_t *store;
    /* The former Dispatcher's termination, or NULL: the jobs are recovered
     * once it completed (a JobMaster's id is its job's). */
    fl_future_t *after;
} jm_dispatcher_opts_t;

/*
 * jm_dispatcher_start creates and starts "dispatcher_<n>" on o->svc,
 * fenced with o->token, and recovers the jobs of o->store. Returns FL_OK
 * (*out is the caller's: jm_dispatcher_close, then jm_dispatcher_free) or
 * the endpoint's error with why in err. Any thread; never blocks.
 */
int jm_dispatcher_start(const jm_dispatcher_opts_t *o, jm_dispatcher_t **out,
                        char *err, size_t errlen);

/* The endpoint's address ("fling.tcp://host:port/dispatcher_1";
 * fling.ssl:// with TLS) and token. */
const char *jm_dispatcher_address(const jm_dispatcher_t *d);
const fl_fencing_token_t *jm_dispatcher_token(const jm_dispatcher_t *d);

/*
 * jm_dispatcher_close stops the Dispatcher and the JobMasters of its
 * running jobs (which suspend them: they stay in the store). Returns its
 * termination future (caller owns a reference), complete once the JobMasters
 * have stopped too. Any thread; never blocks.
 */
fl_future_t *jm_dispatcher_close(jm_dispatcher_t *d);

/* jm_dispatcher_free releases d and its jobs once terminated. NULL: no-op. */
void jm_dispatcher_free(jm_dispatcher_t *d);

#endif
