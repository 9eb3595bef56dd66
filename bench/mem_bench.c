/*
 * mem_bench.c - the mem.* benchmarks of fling_bench: the memory fling
 * holds, as the bytes it has allocated and not freed (counted through
 * fl_replace_allocator with the counting allocator of tests/fl_alloc.h)
 * and as the process's resident set (VmRSS):
 *
 *   mem.idle_conn      per idle connection (both of its ends)
 *   mem.idle_endpoint  per idle, started endpoint
 *   mem.tell_flood     before, at the peak of and after a flood of tells
 *
 * The allocator must be fling's from the first allocation on, so each
 * runs in a process of its own: this program run again with the hidden
 * option --mem NAME (mem_main), which the table's row (bench_mem) starts
 * and waits for; its figures go straight to the shared stdout.
 */
#include "bench.h"
#include "rpc_bench.h"

#include "bench.pb-c.h"
#include "fl_alloc.h"

#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IDLE_CONNS 200u
#define IDLE_ENDPOINTS 10000u
#define FLOOD_SENDERS 8u
#define FLOOD_TELLS 1000000u /* per sender */
/* What the block pool keeps after a burst, at most (common/pool.h: 4 MiB
 * a size class, a little in each thread's cache). */
#define FLOOD_KEPT ((int64_t)16 << 20)

/* ---- the parent's side --------------------------------------------------- */

int bench_mem(const bench_ctx_t *ctx)
{
    return run_alone(ctx, "--mem");
}

/* ---- measuring ----------------------------------------------------------- */

typedef struct mark {
    int64_t live;
    long long rss;
} mark_t;

/* What fling holds and the resident set now; glibc's free memory goes
 * back first when `trim`, so that the resident set counts what is used. */
static mark_t mark_now(bool trim)
{
    if (trim)
        malloc_trim(0);
    return (mark_t){fl_alloc_live(), rss_bytes()};
}

/* The growth from a to b per item, as two figures. */
static void emit_per(const bench_ctx_t *ctx, const char *what, mark_t a,
                     mark_t b, unsigned n)
{
    char metric[64];
    snprintf(metric, sizeof metric, "live_bytes_per_%s", what);
    emit(ctx, metric, (double)(b.live - a.live) / n, 0, "bytes");
    snprintf(metric, sizeof metric, "rss_bytes_per_%s", what);
    emit(ctx, metric, (double)(b.rss - a.rss) / n, 0, "bytes");
}

/* ---- the endpoint the benchmarks use ------------------------------------- */

typedef struct flood {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;      /* the gate: tells are counted once it is */
    uint64_t count; /* the endpoint's alone */
    uint64_t want;
    fl_future_t *drained; /* completed at the last tell */
} flood_t;

static void mem_ep_echo(Bench__BenchGateway_Service *service,
                        const Bench__Ping *in, Bench__Ping_Closure closure,
                        void *call)
{
    Bench__Ping out = BENCH__PING__INIT;
    out.seq = in->seq;
    closure(&out, call);
}

/* Count: the first tell waits at the gate (a flood piles up behind it),
 * the last completes `drained`. */
static void mem_ep_count(Bench__BenchGateway_Service *service,
                         const Bench__Ping *in, Bench__Empty_Closure closure,
                         void *call)
{
    flood_t *fl = fl_rpc_call_state(call);
    Bench__Empty out = BENCH__EMPTY__INIT;
    closure(&out, call); /* a tell's answer goes nowhere */
    if (fl == NULL)
        return;
    if (fl->count == 0) {
        pthread_mutex_lock(&fl->mu);
        while (!fl->open)
            pthread_cond_wait(&fl->cv, &fl->mu);
        pthread_mutex_unlock(&fl->mu);
    }
    if (++fl->count == fl->want)
        fl_future_complete(fl->drained, NULL, NULL);
}

static void mem_ep_echo_blob(Bench__BenchGateway_Service *service,
                             const Bench__Blob *in, Bench__Blob_Closure closure,
                             void *call)
{
    closure(in, call);
}

static Bench__BenchGateway_Service mem_impl =
    BENCH__BENCH_GATEWAY__INIT(mem_ep_);

/* Endpoint `id` of svc implementing mem_impl with state st, started. */
static int mem_endpoint(const bench_ctx_t *ctx, fl_rpc_service_t *svc,
                        const char *id, void *st, fl_rpc_endpoint_t **out)
{
    ProtobufCService *const services[] = {&mem_impl.base};
    fl_rpc_endpoint_opts_t o = {
        .id = id, .services = services, .nservices = 1, .state = st};
    int rc = fl_rpc_endpoint_create(svc, &o, out);
    if (rc != FL_OK)
        return fail(ctx, "fl_rpc_endpoint_create", rc);
    if ((rc = fl_rpc_endpoint_start(*out)) != FL_OK)
        return fail(ctx, "fl_rpc_endpoint_start", rc);
    return FL_OK;
}

/* A gateway of svc to `address` (BenchGateway), connected. */
static int mem_connect(const bench_ctx_t *ctx, fl_rpc_service_t *svc,
                       const char *address, fl_rpc_gateway_t **out)
{
    fl_future_t *f;
    int rc = fl_rpc_connect(svc, address, &bench__bench_gateway__descriptor,
                            NULL, &f);
    if (rc != FL_OK)
        return fail(ctx, "fl_rpc_connect", rc);
    rc = fl_future_wait(f, HANG_TIMEOUT_MS);
    if (rc == FL_OK)
        *out = fl_future_take_value(f);
    else
        note("%s: connect %s: %s", ctx->name, address, fl_future_message(f));
    fl_future_release(f);
    return rc;
}

/* ---- mem.idle_endpoint --------------------------------------------------- */

/* IDLE_ENDPOINTS endpoints of one local service, created and started. */
static int mem_idle_endpoint(const bench_ctx_t *ctx, fl_system_t *sys)
{
    fl_rpc_service_opts_t so = {.system = sys};
    fl_rpc_service_t *svc = NULL;
    fl_rpc_endpoint_t **eps = calloc(IDLE_ENDPOINTS + 1, sizeof *eps);
    rpc_side_t side = {0};
    int rc = eps ? fl_rpc_service_alloc(&so, &svc) : FL_ENOMEM;
    /* One first, so that what the first endpoint makes once is not
     * counted. */
    if (rc == FL_OK)
        rc = rpc_endpoint(ctx, svc, "first", &side, &eps[IDLE_ENDPOINTS]);
    mark_t m0 = mark_now(true);
    /* Each answers a call before the next is made: started and idle. */
    for (unsigned i = 0; i < IDLE_ENDPOINTS && rc == FL_OK; i++) {
        char id[32];
        snprintf(id, sizeof id, "idle-%u", i);
        rc = rpc_endpoint(ctx, svc, id, &side, &eps[i]);
    }
    if (rc == FL_OK) {
        mark_t m1 = mark_now(true);
        note("%s: %u endpoints: live %+" PRId64 " bytes, RSS %+lld bytes",
             ctx->name, IDLE_ENDPOINTS, m1.live - m0.live, m1.rss - m0.rss);
        emit_per(ctx, "endpoint", m0, m1, IDLE_ENDPOINTS);
    }
    rc = service_shutdown(ctx, rc, svc);
    for (unsigned i = 0; eps != NULL && i <= IDLE_ENDPOINTS; i++)
        fl_rpc_endpoint_free(eps[i]);
    fl_rpc_service_free(svc);
    free(eps);
    return rc;
}

/* ---- mem.idle_conn ------------------------------------------------------- */

/*
 * IDLE_CONNS client services (one system) connect to one server service
 * on 127.0.0.1: a connection each, both of its ends in this process. Each
 * client first connects to a warm-up server, so that its transport (I/O
 * thread, loop) is there before the count starts; the gateways are freed
 * at once (the connections stay, idle).
 */
static int mem_idle_conn(const bench_ctx_t *ctx, fl_system_t *sys)
{
    fl_rpc_service_t *srv[2] = {NULL, NULL};
    fl_rpc_endpoint_t *ep[2] = {NULL, NULL};
    fl_rpc_service_t **cli = calloc(IDLE_CONNS, sizeof *cli);
    int rc = cli != NULL ? FL_OK : FL_ENOMEM;
    for (int s = 0; s < 2 && rc == FL_OK; s++) {
        fl_rpc_service_opts_t so = {
            .system = sys, .bind_host = "127.0.0.1", .port = "0"};
        rc = fl_rpc_service_alloc(&so, &srv[s]);
        if (rc != FL_OK)
            fail(ctx, "fl_rpc_service_alloc", rc);
        else
            rc = mem_endpoint(ctx, srv[s], "ep", NULL, &ep[s]);
    }
    for (unsigned i = 0; i < IDLE_CONNS && rc == FL_OK; i++) {
        fl_rpc_service_opts_t co = {.system = sys};
        fl_rpc_gateway_t *gw = NULL;
        rc = fl_rpc_service_alloc(&co, &cli[i]);
        if (rc != FL_OK)
            fail(ctx, "fl_rpc_service_alloc", rc);
        else if ((rc = mem_connect(ctx, cli[i], fl_rpc_endpoint_address(ep[0]),
                                   &gw)) == FL_OK)
            fl_rpc_gateway_free(gw);
    }
    mark_t m0 = mark_now(true);
    for (unsigned i = 0; i < IDLE_CONNS && rc == FL_OK; i++) {
        fl_rpc_gateway_t *gw = NULL;
        if ((rc = mem_connect(ctx, cli[i], fl_rpc_endpoint_address(ep[1]),
                              &gw)) == FL_OK)
            fl_rpc_gateway_free(gw);
    }
    if (rc == FL_OK) {
        mark_t m1 = mark_now(true);
        note("%s: %u connections: live %+" PRId64 " bytes, RSS %+lld bytes",
             ctx->name, IDLE_CONNS, m1.live - m0.live, m1.rss - m0.rss);
        emit_per(ctx, "conn", m0, m1, IDLE_CONNS);
    }
    for (unsigned i = 0; cli != NULL && i < IDLE_CONNS; i++) {
        rc = service_shutdown(ctx, rc, cli[i]);
        fl_rpc_service_free(cli[i]);
    }
    for (int s = 0; s < 2; s++) {
        rc = service_shutdown(ctx, rc, srv[s]);
        fl_rpc_endpoint_free(ep[s]);
        fl_rpc_service_free(srv[s]);
    }
    free(cli);
    return rc;
}

/* ---- mem.tell_flood ------------------------------------------------------ */

typedef struct sender {
    pthread_t thread;
    ProtobufCService *target;
    int rc;
} sender_t;

static void *sender_main(void *arg)
{
    sender_t *s = arg;
    Bench__Ping p = BENCH__PING__INIT;
    for (unsigned i = 0; i < FLOOD_TELLS && s->rc == FL_OK; i++) {
        p.seq = i;
        bench__bench_gateway__count(s->target, &p, NULL, NULL);
        s->rc = fl_rpc_last_error();
    }
    return NULL;
}

/*
 * FLOOD_SENDERS threads tell FLOOD_TELLS each to one endpoint of a local
 * service, which holds its first tell until all are queued, then drains
 * them. Before, at the peak and after the drain (once the workers gave
 * the pool's surplus back): what fling holds and the resident set, the
 * latter also once glibc gave its free memory back (malloc_trim).
 */
static int mem_tell_flood(const bench_ctx_t *ctx, fl_system_t *sys)
{
    flood_t fl = {.want = (uint64_t)FLOOD_SENDERS * FLOOD_TELLS};
    pthread_mutex_init(&fl.mu, NULL);
    pthread_cond_init(&fl.cv, NULL);
    fl_rpc_service_opts_t so = {.system = sys};
    fl_rpc_service_t *svc = NULL;
    fl_rpc_endpoint_t *ep = NULL;
    fl_rpc_gateway_t *gw = NULL;
    sender_t senders[FLOOD_SENDERS];
    unsigned started = 0;
    fl.drained = fl_future_alloc();
    int rc = fl.drained ? fl_rpc_service_alloc(&so, &svc) : FL_ENOMEM;
    if (rc == FL_OK)
        rc = mem_endpoint(ctx, svc, "sink", &fl, &ep);
    if (rc == FL_OK)
        rc = mem_connect(ctx, svc, fl_rpc_endpoint_address(ep), &gw);
    mark_t m0 = mark_now(true);
    for (; started < FLOOD_SENDERS && rc == FL_OK; started++) {
        senders[started] =
            (sender_t){.target = fl_rpc_gateway_service(gw), .rc = FL_OK};
        if (pthread_create(&senders[started].thread, NULL, sender_main,
                           &senders[started]) != 0)
            rc = FL_ESYSTEM;
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(senders[i].thread, NULL);
        if (rc == FL_OK && senders[i].rc != FL_OK)
            rc = fail(ctx, "tell", senders[i].rc);
    }
    mark_t m1 = mark_now(false);
    pthread_mutex_lock(&fl.mu);
    fl.open = true;
    pthread_cond_broadcast(&fl.cv);
    pthread_mutex_unlock(&fl.mu);
    if (rc == FL_OK &&
        (rc = fl_future_wait(fl.drained, HANG_TIMEOUT_MS)) != FL_OK)
        note("%s: the drain: %s", ctx->name, fl_err_name(rc));
    /* Idle workers give the pool's surplus back once no more is taken
     * (common/pool.h): wait for that to be over (the count steady for
     * 200 ms), a few seconds at most. */
    uint64_t t0 = fl_clock_now_ns();
    int64_t last = -1;
    for (int steady = 0;
         rc == FL_OK && steady < 20 && fl_clock_now_ns() - t0 < 5000000000u;) {
        int64_t now = fl_alloc_live();
        steady = now == last && now - m0.live <= FLOOD_KEPT ? steady + 1 : 0;
        last = now;
        usleep(10000);
    }
    if (rc == FL_OK) {
        note("%s: the pool's surplus went back within %.0f ms", ctx->name,
             (double)(fl_clock_now_ns() - t0) / 1e6);
        mark_t m2 = mark_now(false), m3 = mark_now(true);
        note("%s: %" PRIu64 " tells; live %" PRId64 " -> %" PRId64
             " -> %" PRId64 " bytes; RSS %lld -> %lld -> %lld bytes, %lld "
             "after malloc_trim",
             ctx->name, fl.want, m0.live, m1.live, m2.live, m0.rss, m1.rss,
             m2.rss, m3.rss);
        emit(ctx, "live_before", (double)m0.live / 1048576, 1, "MiB");
        emit(ctx, "live_peak", (double)m1.live / 1048576, 1, "MiB");
        emit(ctx, "live_after", (double)m2.live / 1048576, 1, "MiB");
        emit(ctx, "rss_before", (double)m0.rss / 1048576, 1, "MiB");
        emit(ctx, "rss_peak", (double)m1.rss / 1048576, 1, "MiB");
        emit(ctx, "rss_after", (double)m2.rss / 1048576, 1, "MiB");
        emit(ctx, "rss_after_trim", (double)m3.rss / 1048576, 1, "MiB");
    }
    rc = service_shutdown(ctx, rc, svc);
    fl_rpc_gateway_free(gw);
    fl_rpc_endpoint_free(ep);
    fl_rpc_service_free(svc);
    fl_future_release(fl.drained);
    pthread_mutex_destroy(&fl.mu);
    pthread_cond_destroy(&fl.cv);
    return rc;
}

/* ---- the child process --------------------------------------------------- */

int mem_main(const bench_ctx_t *ctx)
{
    if (fl_alloc_install() != FL_OK) {
        note("%s: fl_replace_allocator refused", ctx->name);
        return FL_ESTATE;
    }
    fl_system_t *sys = NULL;
    int rc = sys_open(ctx, 0, &sys);
    if (rc != FL_OK)
        return rc;
    if (strcmp(ctx->name, "mem.idle_conn") == 0)
        rc = mem_idle_conn(ctx, sys);
    else if (strcmp(ctx->name, "mem.idle_endpoint") == 0)
        rc = mem_idle_endpoint(ctx, sys);
    else if (strcmp(ctx->name, "mem.tell_flood") == 0)
        rc = mem_tell_flood(ctx, sys);
    else
        rc = FL_EINVAL;
    int rc2 = sys_close(ctx, sys);
    return rc != FL_OK ? rc : rc2;
}
