/*
 * rpc_deadline_bench.c - rpc.remote_deadlines of fling_bench: 100,000
 * calls pending on one connection with two interleaved timeouts (1 s and
 * 10 s), against a server that never answers: how long issuing them takes
 * and how late the 1 s timeouts fire. It owns that silent server (a thread
 * with a raw socket that answers the handshake, then reads and drops).
 */
#include "bench.h"
#include "latency.h"
#include "rpc_bench.h"

#include "bench.pb-c.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DL_CALLS 100000u
#define DL_SHORT_MS 1000
#define DL_LONG_MS 10000
/* How long the short timeouts may take to fire before the run fails. */
#define DL_WAIT_MS 30000

/* ---- the silent server ----------------------------------------------------
 */

typedef struct silent {
    int lfd, fd;
    int port;
    pthread_t thread;
} silent_t;

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* A frame header of docs/wire-protocol.md (version 1). */
static void frame_hdr(uint8_t h[24], uint8_t kind, const uint8_t corr[8],
                      uint32_t meta_len)
{
    put32(h, 0x464C4E47u);
    h[4] = 1;
    h[5] = kind;
    h[6] = h[7] = 0;
    if (corr != NULL)
        memcpy(h + 8, corr, 8);
    else
        memset(h + 8, 0, 8);
    put32(h + 16, meta_len);
    put32(h + 20, 0);
}

static bool read_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t rc = read(fd, p, n);
        if (rc <= 0)
            return false;
        p += rc;
        n -= (size_t)rc;
    }
    return true;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t rc = send(fd, p, n, MSG_NOSIGNAL);
        if (rc <= 0)
            return false;
        p += rc;
        n -= (size_t)rc;
    }
    return true;
}

/* Accept one connection, say HELLO, answer its CONNECT with CONNECTED
 * (service index 0), then read and drop everything until it closes. */
static void *silent_main(void *arg)
{
    silent_t *s = arg;
    s->fd = accept(s->lfd, NULL, NULL);
    if (s->fd < 0)
        return NULL;
    uint8_t out[64];
    frame_hdr(out, 1, NULL, 4 + 2 + 6);
    put32(out + 24, 10u << 20);
    out[28] = 0;
    out[29] = 6;
    memcpy(out + 30, "silent", 6);
    if (!write_all(s->fd, out, 36))
        return NULL;
    static uint8_t buf[1 << 16];
    bool connected = false;
    for (;;) {
        uint8_t h[24];
        if (!read_all(s->fd, h, sizeof h))
            break;
        size_t rest = (size_t)get32(h + 16) + get32(h + 20);
        while (rest > 0) {
            size_t k = rest < sizeof buf ? rest : sizeof buf;
            if (!read_all(s->fd, buf, k))
                return NULL;
            rest -= k;
        }
        if (!connected && h[5] == 2) {
            frame_hdr(out, 3, h + 8, 4);
            put32(out + 24, 0);
            if (!write_all(s->fd, out, 28))
                break;
            connected = true;
        }
    }
    return NULL;
}

static int silent_start(const bench_ctx_t *ctx, silent_t *s)
{
    s->fd = -1;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(s->lfd, 1) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&sa, &len) != 0) {
        note("%s: the silent server could not listen", ctx->name);
        return FL_ESYSTEM;
    }
    s->port = ntohs(sa.sin_port);
    if (pthread_create(&s->thread, NULL, silent_main, s) != 0) {
        note("%s: the silent server's thread", ctx->name);
        return FL_ESYSTEM;
    }
    return FL_OK;
}

/* After the client closed its connection: the thread ends on EOF. */
static void silent_stop(silent_t *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    if (s->fd >= 0)
        close(s->fd);
    close(s->lfd);
}

/* ---- rpc.remote_deadlines --------------------------------------------------
 */

static uint64_t dl_due[DL_CALLS / 2];  /* short calls: made at + 1 s */
static uint64_t dl_late[DL_CALLS / 2]; /* when they fired, minus that */
static atomic_uint dl_fired, dl_wrong, dl_early;

static void dl_on_fired(fl_future_t *f, void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    uint64_t now = fl_clock_now_ns();
    if (fl_future_error(f) != FL_ETIMEDOUT)
        atomic_fetch_add(&dl_wrong, 1);
    else if (now < dl_due[i])
        atomic_fetch_add(&dl_early, 1);
    dl_late[i] = now > dl_due[i] ? now - dl_due[i] : 0;
    atomic_fetch_add_explicit(&dl_fired, 1, memory_order_release);
}

int bench_remote_deadlines(const bench_ctx_t *ctx)
{
    silent_t s;
    fl_system_t *sys = NULL;
    fl_rpc_service_t *svc = NULL;
    fl_rpc_gateway_t *gw = NULL;
    fl_future_t *f = NULL;
    int rc = silent_start(ctx, &s);
    if (rc != FL_OK)
        return rc;
    if ((rc = sys_open(ctx, 0, &sys)) != FL_OK)
        goto out;
    fl_rpc_service_opts_t so = {.system = sys, .name = "fling_bench-client"};
    if ((rc = fl_rpc_service_alloc(&so, &svc)) != FL_OK) {
        rc = fail(ctx, "fl_rpc_service_alloc", rc);
        goto out;
    }
    char addr[64];
    snprintf(addr, sizeof addr, "fling.tcp://127.0.0.1:%d/silent", s.port);
    rc = fl_rpc_connect(svc, addr, &bench__bench_gateway__descriptor, NULL, &f);
    if (rc == FL_OK)
        rc = fl_future_wait(f, DL_WAIT_MS);
    if (rc != FL_OK) {
        rc = fail(ctx, "fl_rpc_connect", rc);
        goto out;
    }
    gw = fl_future_take_value(f);
    int m = fl_rpc_method_index(&bench__bench_gateway__descriptor, "EchoBlob");
    uint8_t data[62] = {0};
    Bench__Blob req = BENCH__BLOB__INIT;
    req.data.data = data;
    req.data.len = sizeof data;
    atomic_store(&dl_fired, 0);
    atomic_store(&dl_wrong, 0);
    atomic_store(&dl_early, 0);
    uint64_t t0 = fl_clock_now_ns();
    for (uint32_t i = 0; i < DL_CALLS && rc == FL_OK; i++) {
        bool shrt = i % 2 == 0;
        int64_t ms = shrt ? DL_SHORT_MS : DL_LONG_MS;
        fl_future_t *c = NULL;
        if (shrt)
            dl_due[i / 2] = fl_clock_now_ns() + (uint64_t)ms * 1000000u;
        rc = fl_rpc_call(gw, (unsigned)m, &req.base, ms, &c);
        if (rc == FL_OK && shrt)
            rc = fl_future_on_complete(c, dl_on_fired,
                                       (void *)(uintptr_t)(i / 2));
        fl_future_release(c);
    }
    double issue = (double)(fl_clock_now_ns() - t0) / 1e6;
    if (rc != FL_OK) {
        rc = fail(ctx, "fl_rpc_call", rc);
        goto out;
    }
    uint64_t give_up = fl_clock_now_ns() + (uint64_t)DL_WAIT_MS * 1000000u;
    while (atomic_load_explicit(&dl_fired, memory_order_acquire) <
               DL_CALLS / 2 &&
           fl_clock_now_ns() < give_up)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    if (atomic_load(&dl_fired) < DL_CALLS / 2 || atomic_load(&dl_wrong) != 0 ||
        atomic_load(&dl_early) != 0) {
        note("%s: %u of %u short timeouts fired, %u with another code than "
             "FL_ETIMEDOUT, %u early",
             ctx->name, atomic_load(&dl_fired), DL_CALLS / 2,
             atomic_load(&dl_wrong), atomic_load(&dl_early));
        rc = FL_EINTERNAL;
        goto out;
    }
    qsort(dl_late, DL_CALLS / 2, sizeof *dl_late, cmp_u64);
    emit(ctx, "issue_ms", issue, 1, "ms");
    emit(ctx, "late_p50_ms", percentile_us(dl_late, DL_CALLS / 2, 50) / 1e3, 1,
         "ms");
    emit(ctx, "late_p99_ms", percentile_us(dl_late, DL_CALLS / 2, 99) / 1e3, 1,
         "ms");
    emit(ctx, "late_max_ms", (double)dl_late[DL_CALLS / 2 - 1] / 1e6, 1, "ms");
out:
    /* The 10 s calls fail with FL_ECLOSED here. */
    rc = service_shutdown(ctx, rc, svc);
    fl_rpc_gateway_free(gw);
    fl_rpc_service_free(svc);
    fl_future_release(f);
    int rc2 = sys_close(ctx, sys);
    silent_stop(&s);
    return rc != FL_OK ? rc : rc2;
}
