/*
 * cluster_idle_udf.c - the user library of cluster.deploy and
 * cluster.failover (libfling_bench_idle.so):
 *   idle  filter  drops every record, each after a 20 ms sleep
 * A task of their job (source.sequence -> idle -> sink.text) so stays
 * RUNNING for days, wakes 50 times a second, burns no CPU to speak of
 * (the benchmarks run up to 64 such tasks on 2 cores), writes nothing, and
 * sees a cancel within a record (the runner checks between records).
 */
#include <time.h>

#include <fling/udf.h>

FL_UDF_ABI;

FL_UDF_EXPORT int idle(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                       int *keep);

int idle(fl_udf_context_t *ctx, const fl_udf_record_t *in, int *keep)
{
    (void)ctx;
    (void)in;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    *keep = 0;
    return FL_UDF_OK;
}
