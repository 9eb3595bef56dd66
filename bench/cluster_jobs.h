/*
 * cluster_jobs.h - a cluster for the job benchmarks (cluster.deploy,
 * cluster.failover): one fling-jobmanager and a few fling-taskmanager
 * processes of the same build, a client of the JobManager's
 * DispatcherGateway (as `fling run` finds and calls it), the benchmarks'
 * job, and the JobManager's log watched for records.
 *
 * The JobManager's stderr (its log, one record a line, each with its time
 * to the microsecond) is a pipe the bench reads as it waits, and copies
 * to jm.log in the run's scratch folder; the TaskManagers' logs go to
 * tm.log there. A failed run keeps the folder. Each record is timed by
 * the time it carries (CLOCK_REALTIME, one clock for all on one machine),
 * so reading it late costs nothing. Everything runs on the caller's thread
 * (fling_bench's main thread); the functions BLOCK, each at most until
 * the cluster's deadline.
 */
#ifndef FL_BENCH_CLUSTER_JOBS_H
#define FL_BENCH_CLUSTER_JOBS_H

#include "cluster_util.h"

#include <fling/fling.h>

#include <stdio.h>

#define CJ_MAX_TMS 4

/* A cluster. Caller memory, zeroed, then cj_start; end with cj_stop. */
typedef struct cj_cluster {
    pid_t jm, tms[CJ_MAX_TMS];
    char tm_ids[CJ_MAX_TMS][32];
    size_t ntms;
    int jm_err, tmlog; /* the JobManager's stderr (read end); the TMs' log */
    line_reader_t r;   /* over jm_err */
    FILE *jm_copy;     /* every line read from jm_err */
    char host[64];     /* jobmanager.rpc.address */
    int port;          /* the JobManager's */
    const char *const *opts; /* -D KEY=VALUE for every process, NULL-ended */
    uint64_t deadline;       /* fl_clock_now_ns() of the run's end */
    char dir[64]; /* scratch folder: the job's output, jm.log, tm.log */
    fl_rpc_service_t *svc;
    fl_rpc_gateway_t *gw; /* the Dispatcher, fenced */
} cj_cluster_t;

/* One kind of record the watch looks for: the records of the JobManager
 * whose text contains needle, how many came, the times of the first and
 * the last (realtime ns), and what followed the needle in the first. */
typedef struct cj_mark {
    const char *needle;
    unsigned count;
    uint64_t first_ns, last_ns;
    char first_rest[256];
} cj_mark_t;

/*
 * cj_start starts fling-jobmanager on host (port 0) with opts (NULL-ended
 * "KEY=VALUE" strings, each passed as -D to it and every TaskManager; NULL
 * for none), and waits for its ResourceManager; the run may last wait_ms
 * from now (c->deadline). FL_OK, or an error after saying why; cj_stop
 * in both cases.
 */
int cj_start(const bench_ctx_t *ctx, cj_cluster_t *c, const char *host,
             const char *const *opts, unsigned wait_ms);

/*
 * cj_add_tm starts TaskManager id with slots slots, on tm_host, inside the
 * network namespace netns unless it is NULL (through `ip netns exec`), and
 * waits until the JobManager logged its first slot report. FL_OK, or an
 * error after saying why. *index is its index in c->tms.
 */
int cj_add_tm(const bench_ctx_t *ctx, cj_cluster_t *c, const char *id,
              unsigned slots, const char *tm_host, const char *netns,
              size_t *index);

/* cj_connect finds the leading Dispatcher through the JobManager's
 * "jobmanager" endpoint (ProcessGateway.Describe) and connects to it with
 * its token, as the client does. FL_OK, or an error after saying why. */
int cj_connect(const bench_ctx_t *ctx, cj_cluster_t *c);

/*
 * cj_submit submits the benchmarks' job with parallelism (SubmitJob): a
 * source.sequence to 10^12, each record dropped by the filter idle of
 * libfling_bench_idle.so after 20 ms, into a sink.text under c->dir; each
 * task stays RUNNING until cancelled or killed. *sent_ns is the realtime
 * just before the call. FL_OK with the job id in id, or an error after
 * saying why.
 */
int cj_submit(const bench_ctx_t *ctx, cj_cluster_t *c, unsigned parallelism,
              uint64_t *sent_ns, char *id, size_t cap);

/*
 * cj_watch reads the JobManager's log, counting the records of each mark
 * (a record counts for every mark it matches), until one of marks[until
 * .. n - 1] has want records: FL_OK with its index in *got, or
 * FL_ETIMEDOUT at c->deadline (or at the log's end) after saying which
 * count was short.
 */
int cj_watch(const bench_ctx_t *ctx, cj_cluster_t *c, cj_mark_t *marks,
             size_t n, size_t until, unsigned want, size_t *got);

/* cj_stop SIGKILLs every process of c (their shutdown is not what is
 * measured), frees the client, closes the logs and removes c->dir; with
 * keep_logs (a failed run) it keeps c->dir, with the JobManager's log
 * (jm.log, read to its end) and the TaskManagers' (tm.log), and says so. */
void cj_stop(const bench_ctx_t *ctx, cj_cluster_t *c, bool keep_logs);

/* cj_ms is b - a, two realtime ns, in ms. */
static inline double cj_ms(uint64_t a, uint64_t b)
{
    return ((double)b - (double)a) / 1e6;
}

#endif /* FL_BENCH_CLUSTER_JOBS_H */
