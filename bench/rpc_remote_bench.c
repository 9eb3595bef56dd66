/*
 * rpc_remote_bench.c - rpc.remote_call, rpc.remote_pipelined, their _tls
 * twins and rpc.remote_behind_large of fling_bench: a client here and a
 * server in a second process (this program run again with --serve:
 * serve_main), over TCP or mutual TLS on 127.0.0.1. It owns the server
 * process (start, stop, serve_main), the client's connection, and the
 * benchmarks (rows of the runner's table, bench.h).
 */
#include "bench.h"
#include "latency.h"
#include "rpc_bench.h"

#include "bench.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- rpc.remote_call and rpc.remote_pipelined ---------------------------- */

/*
 * Client and server in two processes on 127.0.0.1. The server is this
 * program run again with the hidden option --serve (serve_main): an RPC
 * service on its own system, listening on 127.0.0.1 port 0, with one
 * started endpoint, "bench", implementing BenchGateway. It writes its port
 * to its stdout, a pipe, and serves until its stdin, another pipe, reads
 * end-of-file: the client closes that pipe when done, and the kernel does
 * if the client dies. The client, a local-only service on its own system,
 * connects a gateway to fling.tcp://127.0.0.1:<port>/bench and calls
 * EchoBlob, a 64-byte Blob each way (bench.proto), with the gateway's
 * default timeout (10 s) armed on every call. Setup, warm-up and teardown
 * are not measured.
 *
 * The _tls benchmarks run the same code with TLS on both services (the
 * server started with --tls DIR): mutual authentication with the test
 * certificates of bench_certs (server.* on the server, client.* on the
 * client, ca.crt trusted by both), TLS 1.3, OpenSSL's default suites, the
 * host name checked, and the address fling.ssl://127.0.0.1:<port>/bench.
 */

#define REMOTE_ENDPOINT "bench"
/* rpc.remote_behind_large's small calls go to a second endpoint: calls to
 * one endpoint keep their order (docs/wire-protocol.md, Fragments). */
#define REMOTE_ENDPOINT2 "bench2"
/* The Blob's data: with its tag and length, 64 bytes packed. */
#define BLOB_DATA 62u
/* How long the client waits for the server to start, to connect, and to
 * exit once told to. */
#define SERVER_TIMEOUT_MS 30000

/* The server process as the client sees it. */
typedef struct server {
    pid_t pid;  /* -1: none */
    int ctl_fd; /* the write end of the server's stdin; -1: closed */
    int port;
    const char *certs; /* TLS: the certificates' folder (--tls); NULL: TCP */
} server_t;

/* blob_init points b at buf, filled with seq in its first 8 bytes and a
 * constant after them. */
static void blob_init(Bench__Blob *b, uint8_t buf[BLOB_DATA], uint64_t seq)
{
    memset(buf, 0x5a, BLOB_DATA);
    memcpy(buf, &seq, sizeof seq);
    bench__blob__init(b);
    b->data.data = buf;
    b->data.len = BLOB_DATA;
}

/* blob_ok: m is a Blob exactly as blob_init made it for seq. */
static bool blob_ok(const ProtobufCMessage *m, uint64_t seq)
{
    uint8_t want[BLOB_DATA];
    Bench__Blob b;
    if (m == NULL || m->descriptor != &bench__blob__descriptor)
        return false;
    const Bench__Blob *got = (const Bench__Blob *)m;
    blob_init(&b, want, seq);
    return got->data.len == BLOB_DATA &&
           memcmp(got->data.data, want, BLOB_DATA) == 0;
}

/* read_port reads the server's "<port>\n" from fd, waiting at most
 * SERVER_TIMEOUT_MS in all. Returns the port, or -1. */
static int read_port(int fd)
{
    char line[16];
    size_t len = 0;
    uint64_t deadline = fl_clock_now_ns() + SERVER_TIMEOUT_MS * 1000000ull;
    while (len < sizeof line - 1) {
        uint64_t now = fl_clock_now_ns();
        if (now >= deadline)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        ssize_t k = read(fd, line + len, sizeof line - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1; /* the server exited before telling */
        len += (size_t)k;
        line[len] = '\0';
        char *nl = strchr(line, '\n');
        if (nl != NULL) {
            char *end;
            long port = strtol(line, &end, 10);
            return end == nl && end != line && port > 0 && port < 65536
                       ? (int)port
                       : -1;
        }
    }
    return -1;
}

/*
 * server_stop ends the server. graceful: closes its stdin and waits up to
 * SERVER_TIMEOUT_MS for it to shut down and exit, then kills it; otherwise
 * kills it at once. Always reaps it. Returns FL_OK if it exited by itself
 * with status 0 (or was never started), FL_ESYSTEM otherwise. BLOCKS.
 */
static int server_stop(const bench_ctx_t *ctx, server_t *srv, bool graceful)
{
    int status = 0, rc = FL_OK;
    if (srv->ctl_fd >= 0)
        close(srv->ctl_fd);
    srv->ctl_fd = -1;
    if (srv->pid <= 0)
        return FL_OK;
    if (!graceful)
        kill(srv->pid, SIGKILL);
    uint64_t deadline = fl_clock_now_ns() + SERVER_TIMEOUT_MS * 1000000ull;
    for (;;) {
        pid_t w = waitpid(srv->pid, &status, graceful ? WNOHANG : 0);
        if (w == srv->pid)
            break;
        if (w < 0 && errno != EINTR) {
            note("%s: waitpid: %s", ctx->name, strerror(errno));
            srv->pid = -1;
            return FL_ESYSTEM;
        }
        if (w == 0 && fl_clock_now_ns() >= deadline) {
            note("%s: the server did not exit within %d ms; killing it",
                 ctx->name, SERVER_TIMEOUT_MS);
            kill(srv->pid, SIGKILL);
            graceful = false;
            rc = FL_ESYSTEM;
        } else if (w == 0) {
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    srv->pid = -1;
    if (rc == FL_OK && graceful &&
        !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        note("%s: the server ended with status 0x%x", ctx->name, status);
        rc = FL_ESYSTEM;
    }
    return graceful ? rc : FL_ESYSTEM;
}

/*
 * server_start runs `/proc/self/exe --serve [--workers N] [--tls DIR]`
 * (--tls when srv->certs is set) with its stdin and stdout on two pipes
 * and reads its port. FL_OK, or FL_ESYSTEM after saying why, with no
 * server left running.
 */
static int server_start(const bench_ctx_t *ctx, server_t *srv)
{
    int port_pipe[2] = {-1, -1}, ctl_pipe[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    bool have_fa = false;
    char workers[16];
    char *argv[] = {"fling_bench", "--serve", NULL, NULL, NULL, NULL, NULL};
    int argc = 2, err;
    srv->pid = -1;
    srv->ctl_fd = -1;
    srv->port = -1;
    /* Close-on-exec: only the dup2'ed copies reach the server, so that
     * closing ctl_fd here is the end-of-file it waits for. */
    if (pipe2(port_pipe, O_CLOEXEC) != 0 || pipe2(ctl_pipe, O_CLOEXEC) != 0) {
        note("%s: pipe2: %s", ctx->name, strerror(errno));
        goto fail;
    }
    if ((err = posix_spawn_file_actions_init(&fa)) != 0)
        goto spawn_failed;
    have_fa = true;
    if ((err = posix_spawn_file_actions_adddup2(&fa, ctl_pipe[0],
                                                STDIN_FILENO)) != 0 ||
        (err = posix_spawn_file_actions_adddup2(&fa, port_pipe[1],
                                                STDOUT_FILENO)) != 0)
        goto spawn_failed;
    if (ctx->workers != 0) {
        snprintf(workers, sizeof workers, "%u", ctx->workers);
        argv[argc++] = "--workers";
        argv[argc++] = workers;
    }
    if (srv->certs != NULL) {
        argv[argc++] = "--tls";
        argv[argc++] = (char *)srv->certs;
    }
    if ((err = posix_spawn(&srv->pid, "/proc/self/exe", &fa, NULL, argv,
                           environ)) != 0) {
        srv->pid = -1;
        goto spawn_failed;
    }
    posix_spawn_file_actions_destroy(&fa);
    have_fa = false;
    close(ctl_pipe[0]);
    close(port_pipe[1]);
    ctl_pipe[0] = port_pipe[1] = -1;
    srv->ctl_fd = ctl_pipe[1];
    ctl_pipe[1] = -1;
    srv->port = read_port(port_pipe[0]);
    close(port_pipe[0]);
    port_pipe[0] = -1;
    if (srv->port < 0) {
        note("%s: the server (pid %d) did not tell its port", ctx->name,
             (int)srv->pid);
        goto fail;
    }
    return FL_OK;
spawn_failed:
    note("%s: starting the server: %s", ctx->name, strerror(err));
fail:
    if (have_fa)
        posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 2; i++) {
        if (port_pipe[i] >= 0)
            close(port_pipe[i]);
        if (ctl_pipe[i] >= 0)
            close(ctl_pipe[i]);
    }
    server_stop(ctx, srv, false);
    return FL_ESYSTEM;
}

/* The server's endpoints' state: their handler uses none. */
static rpc_side_t serve_state, serve_state2;

/* serve_main is the server process (--serve): its protocol is above, its
 * contract in bench.h. */
int serve_main(const bench_ctx_t *ctx)
{
    fl_system_t *sys = NULL;
    fl_rpc_service_t *svc = NULL;
    fl_rpc_endpoint_t *ep = NULL, *ep2 = NULL;
    /* Large: static, not on the stack. */
    static bench_tls_t tls;
    int rc;
    if (ctx->certs != NULL &&
        (rc = bench_tls_opts(ctx, ctx->certs, true, &tls)) != FL_OK)
        return rc;
    if ((rc = sys_open(ctx, 0, &sys)) != FL_OK)
        goto out;
    fl_rpc_service_opts_t so = {.system = sys,
                                .bind_host = "127.0.0.1",
                                .port = "0",
                                .name = "fling_bench-server",
                                .tls = ctx->certs != NULL ? &tls.opts : NULL};
    if ((rc = fl_rpc_service_alloc(&so, &svc)) != FL_OK) {
        note("%s: %s", ctx->name, fl_rpc_last_message());
        fail(ctx, "fl_rpc_service_alloc", rc);
        goto out;
    }
    if ((rc = rpc_endpoint(ctx, svc, REMOTE_ENDPOINT, &serve_state, &ep)) !=
            FL_OK ||
        (rc = rpc_endpoint(ctx, svc, REMOTE_ENDPOINT2, &serve_state2, &ep2)) !=
            FL_OK)
        goto out;
    printf("%d\n", fl_rpc_service_port(svc));
    fflush(stdout);
    /* Nothing else goes to the client's pipe. */
    dup2(STDERR_FILENO, STDOUT_FILENO);
    char c;
    ssize_t n;
    while ((n = read(STDIN_FILENO, &c, 1)) > 0 || (n < 0 && errno == EINTR))
        ;
out:
    if (svc != NULL) {
        int rc2 = fl_rpc_service_shutdown(svc);
        if (rc2 != FL_OK)
            fail(ctx, "fl_rpc_service_shutdown", rc2);
        if (rc == FL_OK)
            rc = rc2;
    }
    fl_rpc_endpoint_free(ep);
    fl_rpc_endpoint_free(ep2);
    fl_rpc_service_free(svc);
    int rc3 = sys_close(ctx, sys);
    return rc != FL_OK ? rc : rc3;
}

/* The client: the server process, a local-only service on its own system
 * and the gateway to the server's endpoint. */
typedef struct remote {
    bool tls; /* TLS on both sides (the _tls benchmarks); else TCP */
    bench_tls_t tls_opts; /* the client's, when tls */
    server_t srv;
    fl_system_t *sys;
    fl_rpc_service_t *svc;
    fl_rpc_gateway_t *gw;
    fl_rpc_gateway_t *gw2; /* to REMOTE_ENDPOINT2 (remote_connect2) */
    unsigned method;       /* EchoBlob's index */
} remote_t;

/* remote_open starts the server and connects the client's gateway, over
 * TLS when tls. On failure, remote_close still cleans up. */
static int remote_connect(const bench_ctx_t *ctx, remote_t *r, const char *id,
                          fl_rpc_gateway_t **gw);

static int remote_open(const bench_ctx_t *ctx, remote_t *r, bool tls)
{
    int rc;
    r->tls = tls;
    r->srv.pid = -1;
    r->srv.ctl_fd = -1;
    int m = fl_rpc_method_index(&bench__bench_gateway__descriptor, "EchoBlob");
    if (m < 0)
        return fail(ctx, "fl_rpc_method_index", FL_EINTERNAL);
    r->method = (unsigned)m;
    if (tls) {
        if ((r->srv.certs = bench_certs(ctx)) == NULL)
            return FL_ESYSTEM;
        if ((rc = bench_tls_opts(ctx, r->srv.certs, false, &r->tls_opts)) !=
            FL_OK)
            return rc;
    }
    if ((rc = server_start(ctx, &r->srv)) != FL_OK ||
        (rc = sys_open(ctx, 0, &r->sys)) != FL_OK)
        return rc;
    fl_rpc_service_opts_t so = {.system = r->sys,
                                .name = "fling_bench-client",
                                .tls = tls ? &r->tls_opts.opts : NULL};
    if ((rc = fl_rpc_service_alloc(&so, &r->svc)) != FL_OK) {
        note("%s: %s", ctx->name, fl_rpc_last_message());
        return fail(ctx, "fl_rpc_service_alloc", rc);
    }
    return remote_connect(ctx, r, REMOTE_ENDPOINT, &r->gw);
}

/* remote_connect connects a gateway of r's client to endpoint id of the
 * server into *gw. */
static int remote_connect(const bench_ctx_t *ctx, remote_t *r, const char *id,
                          fl_rpc_gateway_t **gw)
{
    char addr[64];
    fl_future_t *f;
    int rc;
    snprintf(addr, sizeof addr, "%s://127.0.0.1:%d/%s",
             r->tls ? "fling.ssl" : "fling.tcp", r->srv.port, id);
    if ((rc = fl_rpc_connect(r->svc, addr, &bench__bench_gateway__descriptor,
                             NULL, &f)) != FL_OK)
        return fail(ctx, "fl_rpc_connect", rc);
    rc = fl_future_wait(f, SERVER_TIMEOUT_MS);
    if (rc == FL_OK)
        *gw = fl_future_take_value(f);
    else if (!fl_future_done(f))
        note("%s: connect to %s: no answer within %d ms", ctx->name, addr,
             SERVER_TIMEOUT_MS);
    else
        note("%s: connect to %s: %s", ctx->name, addr, fl_future_message(f));
    fl_future_release(f);
    return rc;
}

/* remote_close shuts the client down (no callback runs any more), stops
 * the server (killing it unless rc is FL_OK) and returns rc or the first
 * error of the teardown. */
static int remote_close(const bench_ctx_t *ctx, int rc, remote_t *r)
{
    rc = service_shutdown(ctx, rc, r->svc);
    fl_rpc_gateway_free(r->gw);
    fl_rpc_gateway_free(r->gw2);
    fl_rpc_service_free(r->svc);
    int rc3 = sys_close(ctx, r->sys);
    if (rc == FL_OK)
        rc = rc3;
    int rc4 = server_stop(ctx, &r->srv, rc == FL_OK);
    return rc != FL_OK ? rc : rc4;
}

/* remote_calls makes n sequential blocking calls through gw (r->gw when
 * NULL) numbered from first; when lat is not NULL, stores each one's time
 * in ns. */
static int remote_calls(const bench_ctx_t *ctx, remote_t *r,
                        fl_rpc_gateway_t *gw, uint64_t first, uint64_t n,
                        uint64_t *lat)
{
    uint8_t buf[BLOB_DATA];
    Bench__Blob req;
    for (uint64_t i = 0; i < n; i++) {
        ProtobufCMessage *reply;
        blob_init(&req, buf, first + i);
        uint64_t t0 = fl_clock_now_ns();
        int rc = fl_rpc_call_sync(gw != NULL ? gw : r->gw, r->method, &req.base,
                                  0, &reply);
        if (lat != NULL)
            lat[i] = fl_clock_now_ns() - t0;
        if (rc != FL_OK) {
            note("%s: call %" PRIu64 ": %s (%s)", ctx->name, first + i,
                 fl_strerror(rc), fl_err_name(rc));
            return rc;
        }
        bool ok = blob_ok(reply, first + i);
        protobuf_c_message_free_unpacked(reply, NULL);
        if (!ok) {
            note("%s: call %" PRIu64 ": wrong reply", ctx->name, first + i);
            return FL_EINTERNAL;
        }
    }
    return FL_OK;
}

/* emit_latency sorts the n call times in lat (ns) and emits their p50
 * and p99. */
static void emit_latency(const bench_ctx_t *ctx, uint64_t *lat, size_t n)
{
    qsort(lat, n, sizeof *lat, cmp_u64);
    emit(ctx, "p50_us", percentile_us(lat, n, 50), 1, "us");
    emit(ctx, "p99_us", percentile_us(lat, n, 99), 1, "us");
}

int remote_call_run(const bench_ctx_t *ctx, bool tls, uint32_t warmup,
                    uint32_t calls)
{
    /* Large (the TLS options' paths): on the heap. */
    remote_t *r = calloc(1, sizeof *r);
    uint64_t *lat = malloc(calls * sizeof *lat);
    int rc = FL_ENOMEM;
    if (r == NULL || lat == NULL) {
        fail(ctx, "malloc", rc);
        free(r);
        free(lat);
        return rc;
    }
    if ((rc = remote_open(ctx, r, tls)) != FL_OK ||
        (rc = remote_calls(ctx, r, NULL, 0, warmup, NULL)) != FL_OK)
        goto out;
    uint64_t t0 = fl_clock_now_ns();
    if ((rc = remote_calls(ctx, r, NULL, warmup, calls, lat)) != FL_OK)
        goto out;
    double secs = (double)(fl_clock_now_ns() - t0) / 1e9;
    note("%s: %u sequential calls (fl_rpc_call_sync) over %s in %.3f s, "
         "after %u for warm-up",
         ctx->name, calls, tls ? "TLS" : "TCP", secs, warmup);
    emit_latency(ctx, lat, calls);
    emit(ctx, "rate", calls / secs, 0, "calls/s");
out:
    free(lat);
    rc = remote_close(ctx, rc, r);
    free(r);
    return rc;
}

int bench_remote_call(const bench_ctx_t *ctx)
{
    return remote_call_run(ctx, false, REMOTE_WARMUP, REMOTE_CALLS);
}

int bench_remote_call_tls(const bench_ctx_t *ctx)
{
    return remote_call_run(ctx, true, REMOTE_WARMUP, REMOTE_CALLS);
}

/*
 * rpc.remote_pipelined: REMOTE_DEPTH slots, each with one call in flight
 * (fl_rpc_call); the completion callback of a call, on the client
 * service's I/O thread, checks the reply and makes the slot's next call.
 */

typedef struct pipe_run pipe_run_t;

typedef struct pipe_slot {
    pipe_run_t *run;
    uint64_t seq; /* the slot's call in flight */
    uint8_t buf[BLOB_DATA];
} pipe_slot_t;

struct pipe_run {
    fl_rpc_gateway_t *gw;
    unsigned method;
    uint64_t end; /* calls numbered below end are made */
    _Atomic uint64_t next;
    /* Calls made and not yet ended, plus one held by the starter while it
     * fills the window: whoever brings it to 0 ends the run. */
    _Atomic uint64_t in_flight;
    /* The first failure (FL_OK: none); why is written once, by the call
     * that set err, before it releases its count. */
    _Atomic int err;
    char why[200];
    done_t done;
    pipe_slot_t slots[REMOTE_DEPTH];
};

static void pipe_failed(pipe_run_t *p, int err, const char *fmt, ...)
    FL_PRINTF(3, 4);

/* pipe_failed records the run's first failure; later ones are dropped. */
static void pipe_failed(pipe_run_t *p, int err, const char *fmt, ...)
{
    int none = FL_OK;
    if (!atomic_compare_exchange_strong_explicit(
            &p->err, &none, err, memory_order_relaxed, memory_order_relaxed))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
}

/* pipe_release ends one call (or the starter's hold); the last one ends
 * the run, with its first failure if there was one. */
static void pipe_release(pipe_run_t *p)
{
    /* acq_rel: the last release sees every earlier one's writes (why). */
    if (atomic_fetch_sub_explicit(&p->in_flight, 1, memory_order_acq_rel) != 1)
        return;
    int err = atomic_load_explicit(&p->err, memory_order_relaxed);
    if (err == FL_OK)
        done_finish(&p->done);
    else
        fl_future_fail(p->done.f, err, "%s", p->why);
}

static void pipe_call(pipe_slot_t *s);

/* A call of slot s ended. The client's I/O thread (or the caller's, if it
 * ended before the callback was registered). */
static void pipe_on_reply(fl_future_t *f, void *arg)
{
    pipe_slot_t *s = arg;
    pipe_run_t *p = s->run;
    int rc = fl_future_error(f);
    if (rc != FL_OK)
        pipe_failed(p, rc, "call %" PRIu64 ": %s", s->seq,
                    fl_future_message(f));
    else if (!blob_ok(fl_future_value(f), s->seq))
        pipe_failed(p, FL_EINTERNAL, "call %" PRIu64 ": wrong reply", s->seq);
    fl_future_release(f);
    pipe_call(s);
    pipe_release(p);
}

/* pipe_call makes slot s's next call, unless every call has been made or
 * one failed. */
static void pipe_call(pipe_slot_t *s)
{
    pipe_run_t *p = s->run;
    Bench__Blob req;
    fl_future_t *f;
    if (atomic_load_explicit(&p->err, memory_order_relaxed) != FL_OK)
        return;
    uint64_t seq = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
    if (seq >= p->end)
        return;
    s->seq = seq;
    blob_init(&req, s->buf, seq);
    atomic_fetch_add_explicit(&p->in_flight, 1, memory_order_relaxed);
    int rc = fl_rpc_call(p->gw, p->method, &req.base, 0, &f);
    if (rc != FL_OK) {
        pipe_failed(p, rc, "fl_rpc_call %" PRIu64 ": %s", seq, fl_strerror(rc));
        pipe_release(p);
        return;
    }
    if ((rc = fl_future_on_complete(f, pipe_on_reply, s)) != FL_OK) {
        pipe_failed(p, rc, "fl_future_on_complete: %s", fl_strerror(rc));
        fl_future_release(f);
        pipe_release(p);
    }
}

/*
 * pipe_run makes n calls numbered from first, REMOTE_DEPTH in flight, and
 * BLOCKS until every call has ended; on FL_OK *secs is the run's time. p
 * must stay alive until the client service has shut down (the last
 * callback may still be returning when this returns).
 */
static int pipe_run(const bench_ctx_t *ctx, remote_t *r, pipe_run_t *p,
                    uint64_t first, uint64_t n, double *secs)
{
    int rc;
    p->gw = r->gw;
    p->method = r->method;
    p->end = first + n;
    atomic_init(&p->next, first);
    atomic_init(&p->in_flight, 1);
    atomic_init(&p->err, FL_OK);
    if ((rc = done_init(ctx, &p->done)) != FL_OK)
        return rc;
    for (unsigned i = 0; i < REMOTE_DEPTH; i++)
        p->slots[i].run = p;
    uint64_t t0 = fl_clock_now_ns();
    for (unsigned i = 0; i < REMOTE_DEPTH; i++)
        pipe_call(&p->slots[i]);
    pipe_release(p);
    return done_wait(ctx, &p->done, t0, secs);
}

int remote_pipelined_run(const bench_ctx_t *ctx, bool tls, uint32_t warmup,
                         uint32_t calls)
{
    remote_t *r = calloc(1, sizeof *r);
    pipe_run_t *warm = calloc(1, sizeof *warm);
    pipe_run_t *run = calloc(1, sizeof *run);
    double secs;
    int rc = FL_ENOMEM;
    if (r == NULL || warm == NULL || run == NULL) {
        fail(ctx, "calloc", rc);
        free(r);
        free(warm);
        free(run);
        return rc;
    }
    if ((rc = remote_open(ctx, r, tls)) != FL_OK ||
        (rc = pipe_run(ctx, r, warm, 0, warmup, &secs)) != FL_OK ||
        (rc = pipe_run(ctx, r, run, warmup, calls, &secs)) != FL_OK)
        goto out;
    note("%s: %u calls (fl_rpc_call) over %s, %u in flight, in %.3f s, "
         "after %u for warm-up",
         ctx->name, calls, tls ? "TLS" : "TCP", REMOTE_DEPTH, secs, warmup);
    emit(ctx, "rate", calls / secs, 0, "calls/s");
out:
    rc = remote_close(ctx, rc, r);
    free(r);
    /* Only now: no callback can be running any more. */
    if (warm != NULL)
        done_fini(&warm->done);
    if (run != NULL)
        done_fini(&run->done);
    free(warm);
    free(run);
    return rc;
}

int bench_remote_pipelined(const bench_ctx_t *ctx)
{
    return remote_pipelined_run(ctx, false, REMOTE_PIPELINED_WARMUP,
                                REMOTE_PIPELINED_CALLS);
}

int bench_remote_pipelined_tls(const bench_ctx_t *ctx)
{
    return remote_pipelined_run(ctx, true, REMOTE_PIPELINED_WARMUP,
                                REMOTE_PIPELINED_CALLS);
}

/*
 * rpc.remote_behind_large: a small call (64-byte Blob, fl_rpc_call_sync)
 * to one endpoint made right after an 8 MiB EchoBlob to another endpoint
 * of the same server (fl_rpc_call, not waited for) on the same
 * connection; its latency, then the large call is waited for. Before
 * fragments the small call waited behind the whole large request.
 */
int bench_remote_behind_large(const bench_ctx_t *ctx)
{
    remote_t r = {0};
    uint64_t lat[LARGE_ROUNDS], whole[LARGE_ROUNDS];
    uint8_t *big = malloc(LARGE_BYTES);
    int rc = FL_ENOMEM;
    if (big == NULL) {
        fail(ctx, "malloc", rc);
        goto out;
    }
    memset(big, 0x3c, LARGE_BYTES);
    if ((rc = remote_open(ctx, &r, false)) != FL_OK ||
        (rc = remote_connect(ctx, &r, REMOTE_ENDPOINT2, &r.gw2)) != FL_OK)
        goto out;
    for (unsigned i = 0; i < LARGE_WARMUP + LARGE_ROUNDS && rc == FL_OK; i++) {
        Bench__Blob req;
        bench__blob__init(&req);
        req.data.data = big;
        req.data.len = LARGE_BYTES;
        fl_future_t *f = NULL;
        uint64_t t0 = fl_clock_now_ns();
        if ((rc = fl_rpc_call(r.gw, r.method, &req.base, 0, &f)) != FL_OK) {
            fail(ctx, "fl_rpc_call", rc);
            break;
        }
        uint64_t t = 0;
        rc = remote_calls(ctx, &r, r.gw2, i, 1, &t);
        if (i >= LARGE_WARMUP)
            lat[i - LARGE_WARMUP] = t;
        int rc2 = fl_future_wait(f, SERVER_TIMEOUT_MS);
        if (i >= LARGE_WARMUP)
            whole[i - LARGE_WARMUP] = fl_clock_now_ns() - t0;
        const Bench__Blob *got = fl_future_value(f);
        if (rc2 == FL_OK && (got == NULL || got->data.len != LARGE_BYTES))
            rc2 = FL_EINTERNAL;
        if (rc2 != FL_OK)
            note("%s: large call %u: %s", ctx->name, i,
                 fl_future_done(f) ? fl_future_message(f) : "no answer");
        fl_future_release(f);
        if (rc == FL_OK)
            rc = rc2;
    }
    if (rc != FL_OK)
        goto out;
    qsort(whole, LARGE_ROUNDS, sizeof *whole, cmp_u64);
    note("%s: %u small calls, each made right after an %u-byte call to "
         "another endpoint on the same connection, after %u for warm-up",
         ctx->name, LARGE_ROUNDS, LARGE_BYTES, LARGE_WARMUP);
    emit_latency(ctx, lat, LARGE_ROUNDS);
    /* The large call itself, packing to reply: what fragments cost it. */
    emit(ctx, "large_p50_us", percentile_us(whole, LARGE_ROUNDS, 50), 0, "us");
out:
    free(big);
    return remote_close(ctx, rc, &r);
}
