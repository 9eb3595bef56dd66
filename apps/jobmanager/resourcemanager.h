/*
 * apps/jobmanager/resourcemanager.h - the ResourceManager endpoint of
 * fling-jobmanager (Flink's ResourceManager, contract section 4 steps 2,
 * 5-8 and 23): fenced with the leader token it was granted, it registers
 * TaskExecutors (connecting back to each), keeps their slot reports and
 * heartbeats them as the sender; a TaskExecutor that times out or becomes
 * unreachable is dropped and told so. JobMasters register at it and get
 * slots through its slot manager (slot_manager.c).
 *
 * Its log lines (component app, level info), one per event:
 *   ResourceManager <address> started with leader token <32 hex digits>
 *   Registered TaskManager <id> at <address> with <n> slots
 *   Slot report of TaskManager <id>: <n> slots, <k> free
 *   TaskManager <id> lost: heartbeat timed out | heartbeat target unreachable
 *   TaskManager <id> disconnected: <cause>
 *   Registration of TaskManager <id> refused: ... (warn; the rejection)
 */
#ifndef FLING_APPS_JOBMANAGER_RESOURCEMANAGER_H
#define FLING_APPS_JOBMANAGER_RESOURCEMANAGER_H

#include <fling/cluster.h>
#include <fling/rpc.h>

typedef struct jm_rm jm_rm_t;

/*
 * jm_rm_start creates and starts the ResourceManager endpoint
 * "resourcemanager_<n>" on svc, fenced with token, configured by cfg
 * (borrowed: must outlive it). Returns FL_OK (*out is the caller's: close
 * with jm_rm_close, then jm_rm_free) or the endpoint's error, with why in
 * err. Any thread; never blocks.
 */
int jm_rm_start(fl_rpc_service_t *svc, const fl_config_t *cfg,
                const fl_fencing_token_t *token, unsigned n, jm_rm_t **out,
                char *err, size_t errlen);

/* The endpoint's address ("fling.tcp://host:port/resourcemanager_1";
 * fling.ssl:// with TLS). */
const char *jm_rm_address(const jm_rm_t *rm);

/*
 * jm_rm_close stops the ResourceManager: every TaskExecutor is told
 * disconnectResourceManager with cause, the heartbeats stop, the endpoint
 * terminates. Returns its termination future (caller owns a reference).
 * Any thread; never blocks.
 */
fl_future_t *jm_rm_close(jm_rm_t *rm, const char *cause);

/* jm_rm_free releases rm once its termination future has completed. NULL:
 * no-op. */
void jm_rm_free(jm_rm_t *rm);

#endif
