/*
 * cluster_bench.c - cluster.heartbeat: what heartbeats cost at scale.
 *
 * One RPC service on its own system with two endpoints: "jm", whose
 * heartbeat sender monitors HB_TARGETS targets ("tm-0" ...), and "tms",
 * which stands in for all of them: it answers each RequestHeartbeat (the
 * gateway of bench/cluster_bench.proto) with a ReceiveHeartbeat tell back
 * to jm from the target the request was for, as a TaskManager's receiver
 * would. A round is every target requested and heard from: 2 x
 * HB_TARGETS local RPCs and the manager's work for each.
 *
 * After the first round (made when the targets are monitored: a sender
 * asks at once) it measures HB_ROUNDS rounds, at HB_INTERVAL_MS, and
 * prints the process CPU time (getrusage: every thread, the idle time
 * between rounds and the timeout checks included) per round and per
 * target per round:
 *
 *   cluster.heartbeat.round_cpu_ms <ms> ms
 *   cluster.heartbeat.target_cpu_us <us> us
 */
#include "rpc_bench.h"

#include <fling/heartbeat.h>

#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>

#include "cluster_bench.pb-c.h"

#define HB_TARGETS 10000u
#define HB_ROUNDS 5u
#define HB_INTERVAL_MS 200
#define HB_TIMEOUT_MS 30000

typedef struct hb_run {
    fl_rpc_service_t *svc;
    fl_rpc_endpoint_t *jm, *tms;
    fl_rpc_gateway_t *to_tms, *to_jm;
    fl_heartbeat_manager_t *m;
    /* Main thread of jm: responses heard; the future completes when it
     * reaches `want`. */
    uint64_t heard, want;
    fl_future_t *reached;
    _Atomic uint64_t timeouts;
} hb_run_t;

static hb_run_t *the_run; /* for the handlers (one run at a time) */

static void on_timeout(void *arg, const fl_heartbeat_event_t *ev)
{
    hb_run_t *r = arg;
    if (atomic_fetch_add(&r->timeouts, 1) == 0)
        note("cluster.heartbeat: %s", ev->message);
}

/* tms: answer for the target the request was for. */
static void hb_request_heartbeat(Hbbench__HeartbeatGateway_Service *s,
                                 const Hbbench__Heartbeat *in,
                                 Hbbench__Ack_Closure closure, void *cd)
{
    (void)s;
    Hbbench__Heartbeat resp = HBBENCH__HEARTBEAT__INIT;
    resp.origin = in->target;
    resp.target = in->origin;
    hbbench__heartbeat_gateway__receive_heartbeat(
        fl_rpc_gateway_service(the_run->to_jm), &resp, NULL, NULL);
    Hbbench__Ack ack = HBBENCH__ACK__INIT;
    closure(&ack, cd);
}

/* jm: a response for the manager. */
static void hb_receive_heartbeat(Hbbench__HeartbeatGateway_Service *s,
                                 const Hbbench__Heartbeat *in,
                                 Hbbench__Ack_Closure closure, void *cd)
{
    (void)s;
    hb_run_t *r = the_run;
    fl_heartbeat_msg_t msg = {.origin = in->origin};
    fl_heartbeat_receive_response(r->m, &msg, NULL, 0);
    if (++r->heard == r->want && r->reached != NULL)
        fl_future_complete(r->reached, NULL, NULL);
    Hbbench__Ack ack = HBBENCH__ACK__INIT;
    closure(&ack, cd);
}

static Hbbench__HeartbeatGateway_Service hb_impl =
    HBBENCH__HEARTBEAT_GATEWAY__INIT(hb_);

static fl_future_t *send_request(void *arg, const fl_heartbeat_msg_t *msg)
{
    hb_run_t *r = arg;
    Hbbench__Heartbeat req = HBBENCH__HEARTBEAT__INIT;
    req.origin = (char *)msg->origin;
    req.target = (char *)msg->target;
    fl_future_t *f = NULL;
    fl_rpc_call(r->to_tms, 0, &req.base, 0, &f);
    return f;
}

/* On jm: the manager and its targets; arms `reached` for round one. */
static int setup(fl_rpc_endpoint_t *ep, void *state, void *arg, void **out,
                 fl_free_cb *out_free)
{
    (void)state;
    (void)out;
    (void)out_free;
    hb_run_t *r = arg;
    fl_heartbeat_opts_t o = {.id = "jm",
                             .role = FL_HEARTBEAT_SENDER,
                             .interval_ms = HB_INTERVAL_MS,
                             .timeout_ms = HB_TIMEOUT_MS,
                             .on_timeout = on_timeout,
                             .arg = r};
    char why[256];
    int rc = fl_heartbeat_manager_alloc(ep, &o, &r->m, why, sizeof why);
    if (rc != FL_OK) {
        note("cluster.heartbeat: %s", why);
        return rc;
    }
    r->want = HB_TARGETS;
    for (unsigned i = 0; i < HB_TARGETS && rc == FL_OK; i++) {
        char id[32];
        snprintf(id, sizeof id, "tm-%u", i);
        rc = fl_heartbeat_monitor(r->m, id, send_request, r, NULL);
    }
    return rc;
}

/* On jm: wait for `rounds` more rounds through `reached`. */
static int arm(fl_rpc_endpoint_t *ep, void *state, void *arg, void **out,
               fl_free_cb *out_free)
{
    (void)ep;
    (void)state;
    (void)out;
    (void)out_free;
    hb_run_t *r = arg;
    r->want = r->heard + (uint64_t)HB_ROUNDS * HB_TARGETS;
    return FL_OK;
}

static int teardown(fl_rpc_endpoint_t *ep, void *state, void *arg, void **out,
                    fl_free_cb *out_free)
{
    (void)ep;
    (void)state;
    (void)out;
    (void)out_free;
    hb_run_t *r = arg;
    fl_heartbeat_manager_free(r->m);
    r->m = NULL;
    return FL_OK;
}

/* Runs fn on jm and waits for it. */
static int on_jm(const bench_ctx_t *ctx, hb_run_t *r, fl_rpc_callable_cb fn)
{
    fl_future_t *f = NULL;
    int rc = fl_rpc_call_async(r->jm, fn, r, NULL, HANG_TIMEOUT_MS, &f);
    if (rc != FL_OK)
        return fail(ctx, "fl_rpc_call_async", rc);
    rc = fl_future_wait(f, FL_INFINITE);
    if (rc != FL_OK)
        note("%s: %s", ctx->name, fl_future_message(f));
    fl_future_release(f);
    return rc;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static int endpoint(const bench_ctx_t *ctx, hb_run_t *r, const char *id,
                    fl_rpc_endpoint_t **out)
{
    ProtobufCService *const services[] = {&hb_impl.base};
    fl_rpc_endpoint_opts_t o = {
        .id = id, .services = services, .nservices = 1, .state = r};
    int rc = fl_rpc_endpoint_create(r->svc, &o, out);
    if (rc != FL_OK)
        return fail(ctx, "fl_rpc_endpoint_create", rc);
    if ((rc = fl_rpc_endpoint_start(*out)) != FL_OK)
        return fail(ctx, "fl_rpc_endpoint_start", rc);
    return FL_OK;
}

static int connect_to(const bench_ctx_t *ctx, hb_run_t *r,
                      fl_rpc_endpoint_t *ep, fl_rpc_gateway_t **out)
{
    fl_future_t *f = NULL;
    int rc = fl_rpc_connect(r->svc, fl_rpc_endpoint_address(ep),
                            &hbbench__heartbeat_gateway__descriptor, NULL, &f);
    if (rc != FL_OK)
        return fail(ctx, "fl_rpc_connect", rc);
    if ((rc = fl_future_wait(f, FL_INFINITE)) == FL_OK)
        *out = fl_future_take_value(f);
    else
        note("%s: connect: %s", ctx->name, fl_future_message(f));
    fl_future_release(f);
    return rc;
}

/* Waits for r->reached, then arms a new one. */
static int wait_reached(const bench_ctx_t *ctx, hb_run_t *r)
{
    int rc = fl_future_wait(r->reached, HANG_TIMEOUT_MS);
    if (rc != FL_OK)
        note("%s: rounds did not complete: %s", ctx->name,
             fl_future_message(r->reached));
    return rc;
}

int bench_cluster_heartbeat(const bench_ctx_t *ctx)
{
    hb_run_t r = {0};
    fl_system_t *sys = NULL;
    the_run = &r;
    int rc = sys_open(ctx, 0, &sys);
    if (rc != FL_OK)
        return rc;
    fl_rpc_service_opts_t so = {.system = sys};
    r.reached = fl_future_alloc();
    if ((rc = fl_rpc_service_alloc(&so, &r.svc)) != FL_OK) {
        fail(ctx, "fl_rpc_service_alloc", rc);
        goto out;
    }
    if ((rc = endpoint(ctx, &r, "jm", &r.jm)) != FL_OK ||
        (rc = endpoint(ctx, &r, "tms", &r.tms)) != FL_OK ||
        (rc = connect_to(ctx, &r, r.tms, &r.to_tms)) != FL_OK ||
        (rc = connect_to(ctx, &r, r.jm, &r.to_jm)) != FL_OK)
        goto out;
    uint64_t t0 = fl_clock_now_ns();
    if ((rc = on_jm(ctx, &r, setup)) != FL_OK ||
        (rc = wait_reached(ctx, &r)) != FL_OK)
        goto out;
    note("%s: %u targets monitored and heard from in %.1f ms", ctx->name,
         HB_TARGETS, (double)(fl_clock_now_ns() - t0) / 1e6);
    fl_future_release(r.reached);
    r.reached = fl_future_alloc();
    double c0 = cpu_seconds();
    t0 = fl_clock_now_ns();
    if ((rc = on_jm(ctx, &r, arm)) != FL_OK ||
        (rc = wait_reached(ctx, &r)) != FL_OK)
        goto out;
    double cpu = cpu_seconds() - c0;
    note("%s: %u rounds in %.1f ms, %.1f ms of CPU, %llu timeouts", ctx->name,
         HB_ROUNDS, (double)(fl_clock_now_ns() - t0) / 1e6, cpu * 1e3,
         (unsigned long long)atomic_load(&r.timeouts));
    emit(ctx, "round_cpu_ms", cpu * 1e3 / HB_ROUNDS, 1, "ms");
    emit(ctx, "target_cpu_us", cpu * 1e6 / HB_ROUNDS / HB_TARGETS, 1, "us");
    rc = on_jm(ctx, &r, teardown);
out:
    rc = service_shutdown(ctx, rc, r.svc);
    fl_rpc_gateway_free(r.to_tms);
    fl_rpc_gateway_free(r.to_jm);
    fl_rpc_endpoint_free(r.jm);
    fl_rpc_endpoint_free(r.tms);
    fl_rpc_service_free(r.svc);
    fl_future_release(r.reached);
    int rc2 = sys_close(ctx, sys);
    the_run = NULL;
    return rc != FL_OK ? rc : rc2;
}
