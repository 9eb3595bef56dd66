/*
 * rpc_local_bench.c - rpc.local_call and rpc.local_tell of fling_bench:
 * two endpoints of one local RPC service. It also owns what every rpc.*
 * benchmark shares (rpc_bench.h): the BenchGateway the endpoints implement,
 * starting an endpoint, and shutting a service down.
 */
#include "bench.h"
#include "rpc_bench.h"

#include "bench.pb-c.h"

#include <inttypes.h>

/* ---- rpc.local_call and rpc.local_tell ----------------------------------- */

/*
 * Two endpoints of one local RPC service, both implementing BenchGateway:
 * a driver (the caller or the sender) and a target (the responder or the
 * counter), and a gateway to the target, connected by address, that the
 * driver calls through the generated stubs. Every call packs its request
 * into the invocation and the target unpacks it (local calls copy); a call
 * (not a tell) also arms the service's default timeout (10 s, like
 * actor.ask) and packs and unpacks its reply.
 */

/* Echo: answers with the seq it was sent. Target's main thread. */
static void bench_ep_echo(Bench__BenchGateway_Service *service,
                          const Bench__Ping *in, Bench__Ping_Closure closure,
                          void *call)
{
    Bench__Ping out = BENCH__PING__INIT;
    out.seq = in->seq;
    closure(&out, call);
}

/* Count: counts tells, checks they arrive in the order sent, finishes the
 * run at the last one. Target's main thread. */
static void bench_ep_count(Bench__BenchGateway_Service *service,
                           const Bench__Ping *in, Bench__Empty_Closure closure,
                           void *call)
{
    rpc_side_t *s = fl_rpc_call_state(call);
    /* Every call is answered; a tell's answer is discarded. */
    Bench__Empty out = BENCH__EMPTY__INIT;
    closure(&out, call);
    if (in->seq != s->count)
        fl_future_fail(s->done->f, FL_EINTERNAL,
                       "tell %" PRIu64 " arrived as number %" PRIu64,
                       (uint64_t)in->seq, s->count);
    if (++s->count == s->n)
        done_finish(s->done);
}

/* EchoBlob: answers with the Blob it was sent (rpc.remote_*). The server's
 * main thread. */
static void bench_ep_echo_blob(Bench__BenchGateway_Service *service,
                               const Bench__Blob *in,
                               Bench__Blob_Closure closure, void *call)
{
    Bench__Blob out = BENCH__BLOB__INIT;
    out.data = in->data;
    closure(&out, call);
}

/* Every endpoint implements it; the drivers are never called. */
static Bench__BenchGateway_Service bench_impl =
    BENCH__BENCH_GATEWAY__INIT(bench_ep_);

/* rpc.local_call: the caller calls Echo, and its closure, which runs on the
 * caller's main thread, checks the answer and makes the next call. */

static void call_next(rpc_side_t *s);

static void on_echo(const Bench__Ping *reply, void *data)
{
    rpc_side_t *s = data;
    if (reply == NULL) {
        fl_future_fail(s->done->f, fl_rpc_last_error(), "call %" PRIu64 ": %s",
                       s->count, fl_rpc_last_message());
        return;
    }
    if (reply->seq != s->count) {
        fl_future_fail(s->done->f, FL_EINTERNAL,
                       "call %" PRIu64 ": wrong answer %" PRIu64, s->count,
                       (uint64_t)reply->seq);
        return;
    }
    if (++s->count == s->n) {
        done_finish(s->done);
        return;
    }
    call_next(s);
}

static void call_next(rpc_side_t *s)
{
    Bench__Ping p = BENCH__PING__INIT;
    p.seq = s->sent++;
    /* If the call cannot be made, on_echo runs with NULL and says why. */
    bench__bench_gateway__echo(s->target, &p, on_echo, s);
}

static void caller_go(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    call_next(state);
}

/* rpc.local_tell: the sender tells Count SEND_CHUNK times per turn, then
 * continues itself with run_async so that it never holds a worker for the
 * whole run. */
static void tell_chunk(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    rpc_side_t *s = state;
    uint64_t k = s->n - s->sent < SEND_CHUNK ? s->n - s->sent : SEND_CHUNK;
    Bench__Ping p = BENCH__PING__INIT;
    for (uint64_t i = 0; i < k; i++) {
        p.seq = s->sent++;
        bench__bench_gateway__count(s->target, &p, NULL, NULL);
        int rc = fl_rpc_last_error();
        if (rc != FL_OK) {
            done_fail(s->done, "tell", rc);
            return;
        }
    }
    if (s->sent < s->n) {
        int rc = fl_rpc_run_async(ep, tell_chunk, NULL, NULL);
        if (rc != FL_OK)
            done_fail(s->done, "fl_rpc_run_async", rc);
    }
}

/* An RPC service on its own system, its two endpoints and the gateway. */
typedef struct rpc_run {
    fl_system_t *sys;
    fl_rpc_service_t *svc;
    fl_rpc_endpoint_t *driver, *target;
    fl_rpc_gateway_t *gw;
    done_t done;
} rpc_run_t;

static int started_cb(fl_rpc_endpoint_t *ep, void *state, void *arg, void **out,
                      fl_free_cb *out_free)
{
    *out = NULL;
    return FL_OK;
}

/* Shared with rpc.remote_*: the contract is in rpc_bench.h. */
int rpc_endpoint(const bench_ctx_t *ctx, fl_rpc_service_t *svc, const char *id,
                 rpc_side_t *s, fl_rpc_endpoint_t **out)
{
    ProtobufCService *const services[] = {&bench_impl.base};
    fl_rpc_endpoint_opts_t o = {
        .id = id, .services = services, .nservices = 1, .state = s};
    fl_future_t *f;
    int rc = fl_rpc_endpoint_create(svc, &o, out);
    if (rc != FL_OK)
        return fail(ctx, "fl_rpc_endpoint_create", rc);
    if ((rc = fl_rpc_endpoint_start(*out)) != FL_OK)
        return fail(ctx, "fl_rpc_endpoint_start", rc);
    if ((rc = fl_rpc_call_async(*out, started_cb, NULL, NULL, ASK_TIMEOUT_MS,
                                &f)) != FL_OK)
        return fail(ctx, "fl_rpc_call_async", rc);
    rc = fl_future_wait(f, FL_INFINITE);
    if (rc != FL_OK)
        note("%s: starting %s: %s", ctx->name, id, fl_future_message(f));
    fl_future_release(f);
    return rc;
}

/* rpc_open sets up the service, the target and the driver (both started)
 * and connects the driver's gateway to the target. */
static int rpc_open(const bench_ctx_t *ctx, rpc_run_t *r, rpc_side_t *driver,
                    rpc_side_t *target)
{
    int rc;
    fl_future_t *f;
    if ((rc = sys_open(ctx, 0, &r->sys)) != FL_OK ||
        (rc = done_init(ctx, &r->done)) != FL_OK)
        return rc;
    fl_rpc_service_opts_t so = {.system = r->sys};
    if ((rc = fl_rpc_service_alloc(&so, &r->svc)) != FL_OK)
        return fail(ctx, "fl_rpc_service_alloc", rc);
    if ((rc = rpc_endpoint(ctx, r->svc, "target", target, &r->target)) !=
            FL_OK ||
        (rc = rpc_endpoint(ctx, r->svc, "driver", driver, &r->driver)) != FL_OK)
        return rc;
    if ((rc = fl_rpc_connect(r->svc, fl_rpc_endpoint_address(r->target),
                             &bench__bench_gateway__descriptor, NULL, &f)) !=
        FL_OK)
        return fail(ctx, "fl_rpc_connect", rc);
    if ((rc = fl_future_wait(f, FL_INFINITE)) == FL_OK)
        r->gw = fl_future_take_value(f);
    else
        note("%s: connect: %s", ctx->name, fl_future_message(f));
    fl_future_release(f);
    if (rc != FL_OK)
        return rc;
    /* Published to the driver by the run_async that starts the run. */
    driver->target = fl_rpc_gateway_service(r->gw);
    driver->done = target->done = &r->done;
    return FL_OK;
}

/* Shared with rpc.remote_*: the contract is in rpc_bench.h. */
int service_shutdown(const bench_ctx_t *ctx, int rc, fl_rpc_service_t *svc)
{
    if (svc == NULL)
        return rc;
    int rc2 = fl_rpc_service_shutdown(svc);
    if (rc2 != FL_OK)
        fail(ctx, "fl_rpc_service_shutdown", rc2);
    return rc != FL_OK ? rc : rc2;
}

/* rpc_close shuts the service down (every endpoint terminates: nothing
 * runs any more), frees everything, and returns rc or the first error. */
static int rpc_close(const bench_ctx_t *ctx, int rc, rpc_run_t *r)
{
    rc = service_shutdown(ctx, rc, r->svc);
    fl_rpc_gateway_free(r->gw);
    fl_rpc_endpoint_free(r->driver);
    fl_rpc_endpoint_free(r->target);
    fl_rpc_service_free(r->svc);
    return end_run(ctx, rc, r->sys, &r->done);
}

/* rpc_run starts the driver with go and waits for the run; on FL_OK *secs
 * is its time. */
static int rpc_run(const bench_ctx_t *ctx, rpc_run_t *r, fl_rpc_run_cb go,
                   double *secs)
{
    uint64_t t0 = fl_clock_now_ns();
    int rc = fl_rpc_run_async(r->driver, go, NULL, NULL);
    if (rc != FL_OK)
        return fail(ctx, "fl_rpc_run_async", rc);
    return done_wait(ctx, &r->done, t0, secs);
}

int bench_rpc_call(const bench_ctx_t *ctx)
{
    rpc_run_t r = {0};
    rpc_side_t caller = {.n = RPC_CALLS}, responder = {0};
    double secs;
    int rc;
    if ((rc = rpc_open(ctx, &r, &caller, &responder)) != FL_OK ||
        (rc = rpc_run(ctx, &r, caller_go, &secs)) != FL_OK)
        goto out;
    note("%s: %" PRIu64 " calls (timeout %" PRId64 " ms) in %.3f s", ctx->name,
         caller.count, fl_rpc_service_timeout(r.svc), secs);
    emit(ctx, "rate", (double)caller.count / secs, 0, "calls/s");
out:
    return rpc_close(ctx, rc, &r);
}

int bench_rpc_tell(const bench_ctx_t *ctx)
{
    rpc_run_t r = {0};
    rpc_side_t sender = {.n = RPC_TELLS}, counter = {.n = RPC_TELLS};
    double secs;
    int rc;
    if ((rc = rpc_open(ctx, &r, &sender, &counter)) != FL_OK ||
        (rc = rpc_run(ctx, &r, tell_chunk, &secs)) != FL_OK)
        goto out;
    note("%s: %" PRIu64 " tells in %.3f s", ctx->name, counter.count, secs);
    emit(ctx, "rate", (double)counter.count / secs, 0, "msgs/s");
out:
    return rpc_close(ctx, rc, &r);
}
