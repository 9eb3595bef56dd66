/*
 * rpc_bench.h - what the rpc.* benchmarks of fling_bench share, all of it
 * in rpc_local_bench.c: an endpoint's state, starting an endpoint that
 * implements BenchGateway (bench/bench.proto), and shutting a service down.
 */
#ifndef FL_BENCH_RPC_BENCH_H
#define FL_BENCH_RPC_BENCH_H

#include "bench.h"

#include <fling/fling.h>

#include <stdint.h>

/* Each side on its own cache line: the sender writes `sent` on every tell
 * and the receiver `count` on every message; sharing a line would make the
 * benchmark measure false sharing. */
typedef struct rpc_side {
    _Alignas(64)
        /* Driver: the stubs' service (the gateway to the target). */
        ProtobufCService *target;
    uint64_t n;     /* calls or tells to make / to receive */
    uint64_t sent;  /* driver: made so far */
    uint64_t count; /* caller: answers; counter: tells received */
    done_t *done;
} rpc_side_t;

/*
 * rpc_endpoint creates and starts an endpoint of svc with id and state s,
 * implementing BenchGateway, and BLOCKS until it serves (a call_async
 * queued after the start has run). FL_OK, or an error after saying why.
 * Once created, *out is the caller's, even when a later step fails: free
 * it with fl_rpc_endpoint_free after the service's shutdown. s must
 * outlive the endpoint. Main thread.
 */
int rpc_endpoint(const bench_ctx_t *ctx, fl_rpc_service_t *svc, const char *id,
                 rpc_side_t *s, fl_rpc_endpoint_t **out);

/* service_shutdown shuts svc down (NULL: nothing to do; BLOCKS) and returns
 * rc, or the shutdown's error if rc is FL_OK. Main thread. */
int service_shutdown(const bench_ctx_t *ctx, int rc, fl_rpc_service_t *svc);

#endif /* FL_BENCH_RPC_BENCH_H */
