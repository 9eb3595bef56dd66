/*
 * cluster_deploy_bench.c - cluster.deploy: the time from a job's
 * submission (SubmitJob on the DispatcherGateway, as `fling run` makes it)
 * to all its tasks RUNNING, for parallelism 1, 16 and 64 on two
 * TaskManagers of 32 slots each (cluster_jobs.h: the processes, the job,
 * the log).
 *
 * Every run starts a fresh cluster (a fling-jobmanager and tm1, tm2 on
 * 127.0.0.1, each registered and its slots reported), connects to the
 * Dispatcher, then submits; runs of the parallelisms are interleaved (1,
 * 16, 64, 1, 16, 64 ...). RUNNING is read from the JobMaster's log: a task
 * is RUNNING at the time of its record "... (attempt #0) switched from
 * INITIALIZING to RUNNING." (the JobMaster took the TaskExecutor's
 * UpdateTaskExecutionState; the record's time has microseconds, the
 * submit's is taken just before the call on the same CLOCK_REALTIME).
 * The bench does not poll: no RequestJobStatus competes with the
 * deployment.
 *
 * Figures per parallelism P, medians over the runs (with
 * p<P>_all_running_spread_pct = (max - min) / median): p<P>_all_running_ms
 * (submit -> the last task RUNNING) and its breakdown: p<P>_received_ms
 * (submit -> the Dispatcher's "Received job"), p<P>_slots_requested_ms
 * (-> the ResourceManager's last "Requested slot"), p<P>_deploying_ms (->
 * the JobMaster's last "Deploying"), p<P>_first_running_ms (-> the first
 * task RUNNING).
 */
#include "cluster_jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEP_RUNS 5
#define DEP_SLOTS 32
/* One run: the cluster's start, the job, its deployment. */
#define DEP_WAIT_MS 120000

#if defined(FLING_JM_PATH) && defined(FLING_TM_PATH) && defined(FLING_IDLE_UDF)

/* The records of a run, in the order they come. */
enum { M_RECEIVED, M_REQUESTED, M_DEPLOYING, M_RUNNING, M_COUNT };

/* One run's figures, in ms from the submit. */
typedef struct dep_run {
    double received, requested, deploying, first, all;
} dep_run_t;

static int one_run(const bench_ctx_t *ctx, unsigned par, dep_run_t *out)
{
    cj_cluster_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return FL_ENOMEM;
    size_t k;
    int rc = cj_start(ctx, c, "127.0.0.1", NULL, DEP_WAIT_MS);
    if (rc == FL_OK)
        rc = cj_add_tm(ctx, c, "tm1", DEP_SLOTS, "127.0.0.1", NULL, &k);
    if (rc == FL_OK)
        rc = cj_add_tm(ctx, c, "tm2", DEP_SLOTS, "127.0.0.1", NULL, &k);
    if (rc == FL_OK)
        rc = cj_connect(ctx, c);
    uint64_t t0 = 0;
    char id[128];
    if (rc == FL_OK)
        rc = cj_submit(ctx, c, par, &t0, id, sizeof id);
    cj_mark_t m[M_COUNT] = {
        [M_RECEIVED] = {.needle = "app: Received job idle ("},
        [M_REQUESTED] = {.needle = "app: Requested slot "},
        [M_DEPLOYING] = {.needle = "app: Deploying "},
        [M_RUNNING] = {.needle = "(attempt #0) switched from INITIALIZING to "
                                 "RUNNING."},
    };
    size_t got;
    if (rc == FL_OK)
        rc = cj_watch(ctx, c, m, M_COUNT, M_RUNNING, par, &got);
    if (rc == FL_OK &&
        (m[M_REQUESTED].count != par || m[M_DEPLOYING].count != par ||
         m[M_RECEIVED].count != 1)) {
        note("%s: p=%u: %u slot requests, %u deployments, %u jobs received",
             ctx->name, par, m[M_REQUESTED].count, m[M_DEPLOYING].count,
             m[M_RECEIVED].count);
        rc = FL_EPROTO;
    }
    if (rc == FL_OK) {
        out->received = cj_ms(t0, m[M_RECEIVED].first_ns);
        out->requested = cj_ms(t0, m[M_REQUESTED].last_ns);
        out->deploying = cj_ms(t0, m[M_DEPLOYING].last_ns);
        out->first = cj_ms(t0, m[M_RUNNING].first_ns);
        out->all = cj_ms(t0, m[M_RUNNING].last_ns);
    }
    cj_stop(ctx, c, rc != FL_OK);
    free(c);
    return rc;
}

int cluster_deploy_run(const bench_ctx_t *ctx, const unsigned *pars,
                       size_t npars, unsigned runs)
{
    if (npars > CLUSTER_DEPLOY_MAX_PARS || runs > CLUSTER_DEPLOY_MAX_RUNS ||
        runs == 0)
        return FL_EINVAL;
    static double v[CLUSTER_DEPLOY_MAX_PARS][5][CLUSTER_DEPLOY_MAX_RUNS];
    for (unsigned r = 0; r < runs; r++)
        for (size_t i = 0; i < npars; i++) {
            dep_run_t d;
            int rc = one_run(ctx, pars[i], &d);
            if (rc != FL_OK)
                return rc;
            note("%s: p=%u run %u: received %.1f, slots requested %.1f, "
                 "deploying %.1f, first running %.1f, all running %.1f ms",
                 ctx->name, pars[i], r + 1, d.received, d.requested,
                 d.deploying, d.first, d.all);
            v[i][0][r] = d.all;
            v[i][1][r] = d.received;
            v[i][2][r] = d.requested;
            v[i][3][r] = d.deploying;
            v[i][4][r] = d.first;
        }
    static const char *const names[] = {"all_running_ms", "received_ms",
                                        "slots_requested_ms", "deploying_ms",
                                        "first_running_ms"};
    for (size_t i = 0; i < npars; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "p%u_", pars[i]);
        for (size_t f = 0; f < 5; f++)
            emit_stat(ctx, prefix, names[f], v[i][f], runs, 1, "ms", f == 0);
    }
    return FL_OK;
}

int bench_cluster_deploy(const bench_ctx_t *ctx)
{
    static const unsigned pars[] = {1, 16, 64};
    return cluster_deploy_run(ctx, pars, 3, DEP_RUNS);
}

#else

int cluster_deploy_run(const bench_ctx_t *ctx, const unsigned *pars,
                       size_t npars, unsigned runs)
{
    note("%s: built without fling-jobmanager and fling-taskmanager "
         "(FLING_BUILD_APPS=OFF)",
         ctx->name);
    return FL_ENOTSUP;
}

int bench_cluster_deploy(const bench_ctx_t *ctx)
{
    return cluster_deploy_run(ctx, NULL, 0, 0);
}

#endif
