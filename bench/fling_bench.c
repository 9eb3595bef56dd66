/*
 * fling_bench - the benchmark runner.
 *
 *   fling_bench [--workers N] [name...]
 *
 * Runs the named benchmarks (all of them when none is named), in the order
 * of the table at the bottom of this file, and prints one line per figure to
 * stdout:
 *
 *   <benchmark>.<metric> <value> <unit>
 *
 * with the value a plain number (an integer, or one decimal). The Erlang
 * peers under bench/peers/ print the same keys, and scripts/bench.sh puts
 * both side by side. Diagnostics (elapsed time, counts, errors) go to
 * stderr. Exit status: 0 when every benchmark ran, 1 when one failed, 2 for
 * a bad command line (an unknown benchmark name, for one).
 *
 * Every benchmark creates its own system (default options; --workers sets
 * the worker count), shuts it down and frees it. The clock starts just
 * before the first message is sent and stops when the actor that finishes
 * the work records the time and completes a future that the main thread
 * waits on. Nothing here measures setup or teardown, except actor.spawn,
 * whose subject is the setup itself.
 *
 * The rpc.* benchmarks run an RPC service on such a system, with endpoints
 * implementing the BenchGateway of bench/bench.proto (compiled by protoc-c
 * at build time: fling_protobuf_generate in bench/CMakeLists.txt). The
 * rpc.remote_* ones run the server in a second process: this program run
 * again with the hidden option --serve (see serve_main). Their clocks start
 * after the connection is made and a warm-up is done, and each call is
 * timed from the main thread (rpc.remote_call) or the run from its first
 * call to its last reply (rpc.remote_pipelined). The server is reaped on
 * every exit path, and exits by itself if this process dies.
 *
 * To add a benchmark: write a static int fn(const bench_ctx_t *) that
 * returns FL_OK or an error code, prints its figures with emit(), and add a
 * row to the table.
 */
#include <fling/fling.h>

#include "bench.pb-c.h"
#include "latency.h"

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
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* ---- sizes --------------------------------------------------------------- */

#define PINGPONG_ROUND_TRIPS 1000000u
#define COUNTING_MSGS 10000000u
#define FANIN_SENDERS 4u
#define FANIN_MSGS 10000000u
#define THREADRING_ACTORS 503u
#define THREADRING_HOPS 10000000u
#define SPAWN_ACTORS 1000000u
#define ASK_ASKS 1000000u
/* The timeout of every ask: the realistic default, so each ask pays for its
 * timer. */
#define ASK_TIMEOUT_MS 10000
#define RPC_CALLS 1000000u
#define RPC_TELLS 10000000u
#define REMOTE_CALLS 200000u
#define REMOTE_WARMUP 10000u
#define REMOTE_DEPTH 64u
#define REMOTE_PIPELINED_CALLS 1000000u
#define REMOTE_PIPELINED_WARMUP 20000u
/* Messages a sender sends per turn before it yields (tells itself to go on),
 * so that it never holds a worker for the whole run. */
#define SEND_CHUNK 1000u
/* How long the main thread waits for a benchmark before calling it hung. */
#define HANG_TIMEOUT_MS 600000

/* User message types. */
enum msg_type {
    MSG_GO = 1, /* from the main thread: start */
    MSG_CONT,   /* from a sender to itself: send the next chunk */
    MSG_PING,
    MSG_PONG,
    MSG_DATA,
    MSG_TOKEN,
    MSG_ASK,
    MSG_ANSWER
};

/* What every benchmark gets from the command line. */
typedef struct bench_ctx {
    const char *name; /* the benchmark's name, the prefix of its figures */
    unsigned workers; /* worker threads; 0 = the system's default */
} bench_ctx_t;

/* A benchmark: returns FL_OK, or an error code after saying why on stderr. */
typedef int (*bench_fn)(const bench_ctx_t *ctx);

typedef struct bench {
    const char *name;
    bench_fn run;
    const char *what; /* one line for --list */
} bench_t;

/* ---- output -------------------------------------------------------------- */

static void note(const char *fmt, ...) FL_PRINTF(1, 2);

/* note writes one diagnostic line to stderr. */
static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fling_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/*
 * emit prints one figure, "<bench>.<metric> <value> <unit>", with the value
 * rounded to an integer (decimals 0) or to one decimal (decimals 1), and
 * flushes so that the lines of a run that later fails are not lost.
 */
static void emit(const bench_ctx_t *ctx, const char *metric, double value,
                 int decimals, const char *unit)
{
    printf("%s.%s %.*f %s\n", ctx->name, metric, decimals, value, unit);
    fflush(stdout);
}

/* fail reports a failed call of a benchmark and returns its code. */
static int fail(const bench_ctx_t *ctx, const char *what, int err)
{
    note("%s: %s: %s (%s)", ctx->name, what, fl_strerror(err),
         fl_err_name(err));
    return err;
}

/* ---- the system ---------------------------------------------------------- */

/* sys_open creates a system with the default options but the worker count
 * asked for on the command line (and max_actors, when not 0). */
static int sys_open(const bench_ctx_t *ctx, uint32_t max_actors,
                    fl_system_t **out)
{
    fl_system_opts_t opts = {0};
    opts.workers = ctx->workers;
    opts.max_actors = max_actors;
    int rc = fl_system_alloc(&opts, out);
    if (rc != FL_OK)
        return fail(ctx, "fl_system_alloc", rc);
    return FL_OK;
}

/* sys_close shuts sys down (blocks) and frees it; NULL is a no-op. */
static int sys_close(const bench_ctx_t *ctx, fl_system_t *sys)
{
    if (sys == NULL)
        return FL_OK;
    int rc = fl_system_shutdown(sys);
    fl_system_free(sys);
    if (rc != FL_OK)
        return fail(ctx, "fl_system_shutdown", rc);
    return FL_OK;
}

/* ---- completion ---------------------------------------------------------- */

/*
 * The end of a run: the actor that finishes the work stores the time and
 * completes f; the main thread waits for f. A failing actor fails f with
 * the reason instead.
 */
typedef struct done {
    fl_future_t *f;
    /* Written once by the finishing actor before it completes f; the
     * release store pairs with the acquire load in done_wait(). */
    _Atomic uint64_t t_end;
} done_t;

static int done_init(const bench_ctx_t *ctx, done_t *d)
{
    atomic_init(&d->t_end, 0);
    d->f = fl_future_alloc();
    if (d->f == NULL)
        return fail(ctx, "fl_future_alloc", FL_ENOMEM);
    return FL_OK;
}

static void done_fini(done_t *d)
{
    fl_future_release(d->f);
    d->f = NULL;
}

/* done_finish stops the clock and completes the run. Actor thread. */
static void done_finish(done_t *d)
{
    atomic_store_explicit(&d->t_end, fl_clock_now_ns(), memory_order_release);
    fl_future_complete(d->f, NULL, NULL);
}

/* done_fail ends the run with an error. Actor thread. */
static void done_fail(done_t *d, const char *what, int err)
{
    fl_future_fail(d->f, err, "%s: %s", what, fl_strerror(err));
}

/*
 * done_wait BLOCKS the main thread until the run completes and returns its
 * result; on FL_OK *secs is the time since t0. A run that does not finish
 * within HANG_TIMEOUT_MS ends the process (exit status 1): a hung system
 * could not be shut down either.
 */
static int done_wait(const bench_ctx_t *ctx, done_t *d, uint64_t t0,
                     double *secs)
{
    int rc = fl_future_wait(d->f, HANG_TIMEOUT_MS);
    if (rc == FL_ETIMEDOUT && !fl_future_done(d->f)) {
        note("%s: HUNG: not finished after %d s; giving up", ctx->name,
             HANG_TIMEOUT_MS / 1000);
        fflush(stdout);
        _exit(1);
    }
    if (rc != FL_OK) {
        note("%s: failed: %s", ctx->name, fl_future_message(d->f));
        return rc;
    }
    uint64_t t1 = atomic_load_explicit(&d->t_end, memory_order_acquire);
    *secs = (double)(t1 - t0) / 1e9;
    if (*secs <= 0)
        *secs = 1e-9;
    return FL_OK;
}

/*
 * end_run ends a benchmark: shuts the system down (so that no actor runs
 * any more and the benchmark's state, often on its stack, may go), then
 * releases the completion future. Returns rc, or the shutdown's error if
 * rc is FL_OK.
 */
static int end_run(const bench_ctx_t *ctx, int rc, fl_system_t *sys, done_t *d)
{
    int rc2 = sys_close(ctx, sys);
    done_fini(d);
    return rc != FL_OK ? rc : rc2;
}

/* ---- messages ------------------------------------------------------------ */

/* send_u64 tells `to` a message of the given type carrying v; returns
 * fl_tell's result (FL_ENOMEM if the message could not be allocated). */
static int send_u64(fl_system_t *sys, fl_actor_ref_t to, uint32_t type,
                    uint64_t v)
{
    fl_msg_t *m = fl_msg_alloc(type, sizeof v);
    if (m == NULL)
        return FL_ENOMEM;
    memcpy(fl_msg_data(m), &v, sizeof v);
    return fl_tell(sys, to, m);
}

/* msg_u64 reads the value send_u64 put in m (0 if m carries none). */
static uint64_t msg_u64(fl_msg_t *m)
{
    uint64_t v = 0;
    if (fl_msg_size(m) >= sizeof v)
        memcpy(&v, fl_msg_data(m), sizeof v);
    return v;
}

/* ---- actor.pingpong ------------------------------------------------------ */

/* Two actors, one ping and one pong per round trip; the ponger answers
 * whoever sent the ping (fl_msg_sender). */

typedef struct pinger {
    _Alignas(64) /* own cache line: no false sharing between actors */
        fl_actor_ref_t ponger;
    uint64_t n, count;
    done_t *done;
} pinger_t;

static void pinger_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                           fl_msg_t *msg)
{
    pinger_t *s = state;
    if (fl_msg_type(msg) == MSG_PONG && ++s->count == s->n) {
        done_finish(s->done);
        return;
    }
    int rc = send_u64(sys, s->ponger, MSG_PING, s->count);
    if (rc != FL_OK)
        done_fail(s->done, "ping", rc);
}

static void ponger_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                           fl_msg_t *msg)
{
    done_t *done = state;
    int rc = send_u64(sys, fl_msg_sender(msg), MSG_PONG, msg_u64(msg));
    if (rc != FL_OK)
        done_fail(done, "pong", rc);
}

static int bench_pingpong(const bench_ctx_t *ctx)
{
    fl_system_t *sys = NULL;
    done_t done = {0};
    pinger_t pinger = {.n = PINGPONG_ROUND_TRIPS, .done = &done};
    fl_actor_ref_t a;
    uint64_t t0;
    double secs;
    int rc;
    if ((rc = sys_open(ctx, 0, &sys)) != FL_OK ||
        (rc = done_init(ctx, &done)) != FL_OK)
        goto out;
    if ((rc = fl_actor_spawn(sys, ponger_receive, &done, NULL,
                             &pinger.ponger)) != FL_OK ||
        (rc = fl_actor_spawn(sys, pinger_receive, &pinger, NULL, &a)) !=
            FL_OK) {
        fail(ctx, "fl_actor_spawn", rc);
        goto out;
    }
    t0 = fl_clock_now_ns();
    if ((rc = send_u64(sys, a, MSG_GO, 0)) != FL_OK) {
        fail(ctx, "fl_tell", rc);
        goto out;
    }
    if ((rc = done_wait(ctx, &done, t0, &secs)) != FL_OK)
        goto out;
    note("%s: %" PRIu64 " round trips in %.3f s", ctx->name, pinger.count,
         secs);
    emit(ctx, "rate", (double)pinger.count / secs, 0, "round_trips/s");
out:
    return end_run(ctx, rc, sys, &done);
}

/* ---- actor.counting and actor.fanin -------------------------------------- */

/* Senders send `left` messages to one counter, SEND_CHUNK per turn; the
 * counter finishes the run when it has seen them all. */

typedef struct sender {
    _Alignas(64) /* own cache line: no false sharing between actors */
        fl_actor_ref_t to;
    uint64_t left;
    done_t *done;
} sender_t;

static void sender_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                           fl_msg_t *msg)
{
    sender_t *s = state;
    uint64_t k = s->left < SEND_CHUNK ? s->left : SEND_CHUNK;
    for (uint64_t i = 0; i < k; i++) {
        int rc = send_u64(sys, s->to, MSG_DATA, i);
        if (rc != FL_OK) {
            done_fail(s->done, "send", rc);
            return;
        }
    }
    s->left -= k;
    if (s->left > 0) {
        int rc = send_u64(sys, self, MSG_CONT, 0);
        if (rc != FL_OK)
            done_fail(s->done, "continue", rc);
    }
}

typedef struct counter {
    _Alignas(64) /* own cache line: no false sharing between actors */
        uint64_t n,
        count;
    done_t *done;
} counter_t;

static void counter_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                            fl_msg_t *msg)
{
    counter_t *s = state;
    if (++s->count == s->n)
        done_finish(s->done);
}

/* run_senders: nsenders actors send total messages (split evenly) to one
 * counter; prints <name>.rate in msgs/s. */
static int run_senders(const bench_ctx_t *ctx, unsigned nsenders,
                       uint64_t total)
{
    fl_system_t *sys = NULL;
    done_t done = {0};
    sender_t senders[FANIN_SENDERS];
    fl_actor_ref_t refs[FANIN_SENDERS];
    counter_t counter = {.n = total, .done = &done};
    fl_actor_ref_t to;
    uint64_t t0;
    double secs;
    int rc = FL_EINVAL;
    if (nsenders == 0 || nsenders > FANIN_SENDERS) {
        fail(ctx, "run_senders", rc);
        goto out;
    }
    if ((rc = sys_open(ctx, 0, &sys)) != FL_OK ||
        (rc = done_init(ctx, &done)) != FL_OK)
        goto out;
    if ((rc = fl_actor_spawn(sys, counter_receive, &counter, NULL, &to)) !=
        FL_OK) {
        fail(ctx, "fl_actor_spawn", rc);
        goto out;
    }
    for (unsigned i = 0; i < nsenders; i++) {
        senders[i].to = to;
        senders[i].left = total / nsenders + (i < total % nsenders ? 1 : 0);
        senders[i].done = &done;
        if ((rc = fl_actor_spawn(sys, sender_receive, &senders[i], NULL,
                                 &refs[i])) != FL_OK) {
            fail(ctx, "fl_actor_spawn", rc);
            goto out;
        }
    }
    t0 = fl_clock_now_ns();
    for (unsigned i = 0; i < nsenders; i++) {
        if ((rc = send_u64(sys, refs[i], MSG_GO, 0)) != FL_OK) {
            fail(ctx, "fl_tell", rc);
            goto out;
        }
    }
    if ((rc = done_wait(ctx, &done, t0, &secs)) != FL_OK)
        goto out;
    note("%s: %" PRIu64 " messages from %u sender(s) in %.3f s", ctx->name,
         counter.count, nsenders, secs);
    emit(ctx, "rate", (double)counter.count / secs, 0, "msgs/s");
out:
    return end_run(ctx, rc, sys, &done);
}

static int bench_counting(const bench_ctx_t *ctx)
{
    return run_senders(ctx, 1, COUNTING_MSGS);
}

static int bench_fanin(const bench_ctx_t *ctx)
{
    return run_senders(ctx, FANIN_SENDERS, FANIN_MSGS);
}

/* ---- actor.threadring ---------------------------------------------------- */

/* THREADRING_ACTORS actors in a ring pass a token that carries the hops
 * still to go; the actor that receives it at 0 finishes the run. */

typedef struct ring_node {
    fl_actor_ref_t next;
    done_t *done;
} ring_node_t;

static void ring_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                         fl_msg_t *msg)
{
    ring_node_t *s = state;
    uint64_t hops = msg_u64(msg);
    if (hops == 0) {
        done_finish(s->done);
        return;
    }
    int rc = send_u64(sys, s->next, MSG_TOKEN, hops - 1);
    if (rc != FL_OK)
        done_fail(s->done, "pass the token", rc);
}

static int bench_threadring(const bench_ctx_t *ctx)
{
    fl_system_t *sys = NULL;
    done_t done = {0};
    ring_node_t *nodes = calloc(THREADRING_ACTORS, sizeof *nodes);
    fl_actor_ref_t *refs = calloc(THREADRING_ACTORS, sizeof *refs);
    uint64_t t0;
    double secs;
    int rc = FL_ENOMEM;
    if (nodes == NULL || refs == NULL) {
        fail(ctx, "calloc", rc);
        goto out;
    }
    if ((rc = sys_open(ctx, 0, &sys)) != FL_OK ||
        (rc = done_init(ctx, &done)) != FL_OK)
        goto out;
    for (unsigned i = 0; i < THREADRING_ACTORS; i++) {
        nodes[i].done = &done;
        if ((rc = fl_actor_spawn(sys, ring_receive, &nodes[i], NULL,
                                 &refs[i])) != FL_OK) {
            fail(ctx, "fl_actor_spawn", rc);
            goto out;
        }
    }
    /* Written before any message: the tells below publish them. */
    for (unsigned i = 0; i < THREADRING_ACTORS; i++)
        nodes[i].next = refs[(i + 1) % THREADRING_ACTORS];
    t0 = fl_clock_now_ns();
    if ((rc = send_u64(sys, refs[0], MSG_TOKEN, THREADRING_HOPS)) != FL_OK) {
        fail(ctx, "fl_tell", rc);
        goto out;
    }
    if ((rc = done_wait(ctx, &done, t0, &secs)) != FL_OK)
        goto out;
    note("%s: %u hops around %u actors in %.3f s", ctx->name, THREADRING_HOPS,
         THREADRING_ACTORS, secs);
    emit(ctx, "rate", (double)THREADRING_HOPS / secs, 0, "hops/s");
out:
    rc = end_run(ctx, rc, sys, &done);
    free(nodes);
    free(refs);
    return rc;
}

/* ---- actor.spawn --------------------------------------------------------- */

/* SPAWN_ACTORS idle actors, spawned from the main thread: the rate of
 * fl_actor_spawn, and the resident memory each one adds. */

static void idle_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                         fl_msg_t *msg)
{
}

/* rss_bytes returns the resident set size of this process, or -1. */
static long long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    unsigned long long size, resident;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (n != 2 || page <= 0)
        return -1;
    return (long long)(resident * (unsigned long long)page);
}

static int bench_spawn(const bench_ctx_t *ctx)
{
    fl_system_t *sys = NULL;
    done_t done = {0}; /* unused: the main thread does all the work */
    fl_system_stats_t st;
    long long rss0, rss1;
    uint64_t t0, t1, s0;
    double secs;
    int rc;
    if ((rc = sys_open(ctx, SPAWN_ACTORS + 4096u, &sys)) != FL_OK)
        goto out;
#if defined(__GLIBC__)
    /* Hand memory freed by earlier benchmarks back to the kernel, so that
     * actor slots cannot come from pages that are already resident and
     * escape the count. */
    malloc_trim(0);
#endif
    rss0 = rss_bytes();
    t0 = fl_clock_now_ns();
    for (uint32_t i = 0; i < SPAWN_ACTORS; i++) {
        fl_actor_ref_t ref;
        if ((rc = fl_actor_spawn(sys, idle_receive, NULL, NULL, &ref)) !=
            FL_OK) {
            note("%s: spawn %" PRIu32 " of %u failed", ctx->name, i,
                 SPAWN_ACTORS);
            fail(ctx, "fl_actor_spawn", rc);
            goto out;
        }
    }
    t1 = fl_clock_now_ns();
    rss1 = rss_bytes();
    if ((rc = fl_system_stats(sys, &st)) != FL_OK) {
        fail(ctx, "fl_system_stats", rc);
        goto out;
    }
    if (st.actors_live != SPAWN_ACTORS) {
        note("%s: %" PRIu64 " actors live, expected %u", ctx->name,
             st.actors_live, SPAWN_ACTORS);
        rc = FL_EINTERNAL;
        goto out;
    }
    if (rss0 < 0 || rss1 < 0) {
        note("%s: cannot read /proc/self/statm", ctx->name);
        rc = FL_ESYSTEM;
        goto out;
    }
    secs = (double)(t1 - t0) / 1e9;
    if (secs <= 0)
        secs = 1e-9;
    note("%s: %u actors in %.3f s; RSS %lld -> %lld bytes", ctx->name,
         SPAWN_ACTORS, secs, rss0, rss1);
    emit(ctx, "rate", (double)SPAWN_ACTORS / secs, 0, "actors/s");
    emit(ctx, "bytes_per_actor", (double)(rss1 - rss0) / SPAWN_ACTORS, 1,
         "bytes");
out:
    s0 = fl_clock_now_ns();
    rc = end_run(ctx, rc, sys, &done);
    note("%s: shutdown and free took %.3f s (not measured)", ctx->name,
         (double)(fl_clock_now_ns() - s0) / 1e9);
    return rc;
}

/* ---- actor.ask ----------------------------------------------------------- */

/* One actor asks another, one ask at a time: fl_ask with a timeout, the
 * answer handled back on the asker (fl_future_on_complete_in), which then
 * asks again. */

typedef struct asker {
    _Alignas(64) /* own cache line: no false sharing between actors */
        fl_system_t *sys;
    fl_actor_ref_t self, responder;
    uint64_t n, count;
    done_t *done;
} asker_t;

static void ask_next(asker_t *s);

/* Runs on the asker's thread once the answer is in. */
static void on_answer(fl_future_t *f, void *arg)
{
    asker_t *s = arg;
    int rc = fl_future_error(f);
    if (rc != FL_OK) {
        fl_future_fail(s->done->f, rc, "ask %" PRIu64 ": %s", s->count,
                       fl_future_message(f));
        return;
    }
    fl_msg_t *answer = fl_future_value(f);
    if (fl_msg_type(answer) != MSG_ANSWER || msg_u64(answer) != s->count) {
        fl_future_fail(
            s->done->f, FL_EINTERNAL,
            "ask %" PRIu64 ": wrong answer (type %u, value %" PRIu64 ")",
            s->count, (unsigned)fl_msg_type(answer), msg_u64(answer));
        return;
    }
    if (++s->count == s->n) {
        done_finish(s->done);
        return;
    }
    ask_next(s);
}

static void ask_next(asker_t *s)
{
    fl_msg_t *m = fl_msg_alloc(MSG_ASK, sizeof s->count);
    if (m == NULL) {
        done_fail(s->done, "fl_msg_alloc", FL_ENOMEM);
        return;
    }
    memcpy(fl_msg_data(m), &s->count, sizeof s->count);
    fl_future_t *f;
    int rc = fl_ask(s->sys, s->responder, m, ASK_TIMEOUT_MS, &f);
    if (rc != FL_OK) {
        done_fail(s->done, "fl_ask", rc);
        return;
    }
    rc = fl_future_on_complete_in(f, s->sys, s->self, on_answer, s, NULL);
    fl_future_release(f);
    if (rc != FL_OK)
        done_fail(s->done, "fl_future_on_complete_in", rc);
}

static void asker_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                          fl_msg_t *msg)
{
    ask_next(state);
}

static void responder_receive(fl_system_t *sys, fl_actor_ref_t self,
                              void *state, fl_msg_t *msg)
{
    fl_msg_t *r = fl_msg_alloc(MSG_ANSWER, sizeof(uint64_t));
    if (r == NULL) {
        fl_reply_error(msg, FL_ENOMEM, NULL);
        return;
    }
    uint64_t v = msg_u64(msg);
    memcpy(fl_msg_data(r), &v, sizeof v);
    /* A failure here (the ask timed out) shows up on the asker. */
    (void)fl_reply(msg, r);
}

static int bench_ask(const bench_ctx_t *ctx)
{
    fl_system_t *sys = NULL;
    done_t done = {0};
    asker_t asker = {.n = ASK_ASKS, .done = &done};
    uint64_t t0;
    double secs;
    int rc;
    if ((rc = sys_open(ctx, 0, &sys)) != FL_OK ||
        (rc = done_init(ctx, &done)) != FL_OK)
        goto out;
    asker.sys = sys;
    if ((rc = fl_actor_spawn(sys, responder_receive, NULL, NULL,
                             &asker.responder)) != FL_OK ||
        (rc = fl_actor_spawn(sys, asker_receive, &asker, NULL, &asker.self)) !=
            FL_OK) {
        fail(ctx, "fl_actor_spawn", rc);
        goto out;
    }
    t0 = fl_clock_now_ns();
    if ((rc = send_u64(sys, asker.self, MSG_GO, 0)) != FL_OK) {
        fail(ctx, "fl_tell", rc);
        goto out;
    }
    if ((rc = done_wait(ctx, &done, t0, &secs)) != FL_OK)
        goto out;
    note("%s: %" PRIu64 " asks (timeout %d ms) in %.3f s", ctx->name,
         asker.count, ASK_TIMEOUT_MS, secs);
    emit(ctx, "rate", (double)asker.count / secs, 0, "asks/s");
out:
    return end_run(ctx, rc, sys, &done);
}

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

/* rpc_endpoint creates and starts an endpoint with state s, and waits
 * until it serves (a call_async queued after the start has run). */
static int rpc_endpoint(const bench_ctx_t *ctx, fl_rpc_service_t *svc,
                        const char *id, rpc_side_t *s, fl_rpc_endpoint_t **out)
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

/* service_shutdown shuts svc down (NULL: nothing to do) and returns rc, or
 * the shutdown's error if rc is FL_OK. */
static int service_shutdown(const bench_ctx_t *ctx, int rc,
                            fl_rpc_service_t *svc)
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

static int bench_rpc_call(const bench_ctx_t *ctx)
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

static int bench_rpc_tell(const bench_ctx_t *ctx)
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
 */

#define REMOTE_ENDPOINT "bench"
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
 * server_start runs `/proc/self/exe --serve [--workers N]` with its stdin
 * and stdout on two pipes and reads its port. FL_OK, or FL_ESYSTEM after
 * saying why, with no server left running.
 */
static int server_start(const bench_ctx_t *ctx, server_t *srv)
{
    int port_pipe[2] = {-1, -1}, ctl_pipe[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    bool have_fa = false;
    char workers[16];
    char *argv[] = {"fling_bench", "--serve", NULL, NULL, NULL};
    int err;
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
        argv[2] = "--workers";
        argv[3] = workers;
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

/* The server's endpoint state: its handler uses none. */
static rpc_side_t serve_state;

/*
 * serve_main is the server process (--serve): see above. Returns FL_OK
 * after a clean shutdown. BLOCKS until its stdin reads end-of-file.
 */
static int serve_main(const bench_ctx_t *ctx)
{
    fl_system_t *sys = NULL;
    fl_rpc_service_t *svc = NULL;
    fl_rpc_endpoint_t *ep = NULL;
    int rc;
    if ((rc = sys_open(ctx, 0, &sys)) != FL_OK)
        goto out;
    fl_rpc_service_opts_t so = {.system = sys,
                                .bind_host = "127.0.0.1",
                                .port = "0",
                                .name = "fling_bench-server"};
    if ((rc = fl_rpc_service_alloc(&so, &svc)) != FL_OK) {
        note("%s: %s", ctx->name, fl_rpc_last_message());
        fail(ctx, "fl_rpc_service_alloc", rc);
        goto out;
    }
    if ((rc = rpc_endpoint(ctx, svc, REMOTE_ENDPOINT, &serve_state, &ep)) !=
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
    fl_rpc_service_free(svc);
    int rc3 = sys_close(ctx, sys);
    return rc != FL_OK ? rc : rc3;
}

/* The client: the server process, a local-only service on its own system
 * and the gateway to the server's endpoint. */
typedef struct remote {
    server_t srv;
    fl_system_t *sys;
    fl_rpc_service_t *svc;
    fl_rpc_gateway_t *gw;
    unsigned method; /* EchoBlob's index */
} remote_t;

/* remote_open starts the server and connects the client's gateway. On
 * failure, remote_close still cleans up. */
static int remote_open(const bench_ctx_t *ctx, remote_t *r)
{
    char addr[64];
    fl_future_t *f;
    int rc;
    r->srv.pid = -1;
    r->srv.ctl_fd = -1;
    int m = fl_rpc_method_index(&bench__bench_gateway__descriptor, "EchoBlob");
    if (m < 0)
        return fail(ctx, "fl_rpc_method_index", FL_EINTERNAL);
    r->method = (unsigned)m;
    if ((rc = server_start(ctx, &r->srv)) != FL_OK ||
        (rc = sys_open(ctx, 0, &r->sys)) != FL_OK)
        return rc;
    fl_rpc_service_opts_t so = {.system = r->sys, .name = "fling_bench-client"};
    if ((rc = fl_rpc_service_alloc(&so, &r->svc)) != FL_OK)
        return fail(ctx, "fl_rpc_service_alloc", rc);
    snprintf(addr, sizeof addr, "fling.tcp://127.0.0.1:%d/%s", r->srv.port,
             REMOTE_ENDPOINT);
    if ((rc = fl_rpc_connect(r->svc, addr, &bench__bench_gateway__descriptor,
                             NULL, &f)) != FL_OK)
        return fail(ctx, "fl_rpc_connect", rc);
    rc = fl_future_wait(f, SERVER_TIMEOUT_MS);
    if (rc == FL_OK)
        r->gw = fl_future_take_value(f);
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
    fl_rpc_service_free(r->svc);
    int rc3 = sys_close(ctx, r->sys);
    if (rc == FL_OK)
        rc = rc3;
    int rc4 = server_stop(ctx, &r->srv, rc == FL_OK);
    return rc != FL_OK ? rc : rc4;
}

/* remote_calls makes n sequential blocking calls numbered from first; when
 * lat is not NULL, stores each one's time in ns. */
static int remote_calls(const bench_ctx_t *ctx, remote_t *r, uint64_t first,
                        uint64_t n, uint64_t *lat)
{
    uint8_t buf[BLOB_DATA];
    Bench__Blob req;
    for (uint64_t i = 0; i < n; i++) {
        ProtobufCMessage *reply;
        blob_init(&req, buf, first + i);
        uint64_t t0 = fl_clock_now_ns();
        int rc = fl_rpc_call_sync(r->gw, r->method, &req.base, 0, &reply);
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


static int bench_remote_call(const bench_ctx_t *ctx)
{
    remote_t r = {0};
    uint64_t *lat = malloc(REMOTE_CALLS * sizeof *lat);
    int rc = FL_ENOMEM;
    if (lat == NULL) {
        fail(ctx, "malloc", rc);
        goto out;
    }
    if ((rc = remote_open(ctx, &r)) != FL_OK ||
        (rc = remote_calls(ctx, &r, 0, REMOTE_WARMUP, NULL)) != FL_OK)
        goto out;
    uint64_t t0 = fl_clock_now_ns();
    if ((rc = remote_calls(ctx, &r, REMOTE_WARMUP, REMOTE_CALLS, lat)) != FL_OK)
        goto out;
    double secs = (double)(fl_clock_now_ns() - t0) / 1e9;
    qsort(lat, REMOTE_CALLS, sizeof *lat, cmp_u64);
    note("%s: %u sequential calls (fl_rpc_call_sync) in %.3f s, after %u "
         "for warm-up",
         ctx->name, REMOTE_CALLS, secs, REMOTE_WARMUP);
    emit(ctx, "p50_us", percentile_us(lat, REMOTE_CALLS, 50), 1, "us");
    emit(ctx, "p99_us", percentile_us(lat, REMOTE_CALLS, 99), 1, "us");
    emit(ctx, "rate", REMOTE_CALLS / secs, 0, "calls/s");
out:
    free(lat);
    return remote_close(ctx, rc, &r);
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

static int bench_remote_pipelined(const bench_ctx_t *ctx)
{
    remote_t r = {0};
    pipe_run_t *warm = calloc(1, sizeof *warm);
    pipe_run_t *run = calloc(1, sizeof *run);
    double secs;
    int rc = FL_ENOMEM;
    if (warm == NULL || run == NULL) {
        fail(ctx, "calloc", rc);
        goto out;
    }
    if ((rc = remote_open(ctx, &r)) != FL_OK ||
        (rc = pipe_run(ctx, &r, warm, 0, REMOTE_PIPELINED_WARMUP, &secs)) !=
            FL_OK ||
        (rc = pipe_run(ctx, &r, run, REMOTE_PIPELINED_WARMUP,
                       REMOTE_PIPELINED_CALLS, &secs)) != FL_OK)
        goto out;
    note("%s: %u calls (fl_rpc_call), %u in flight, in %.3f s, after %u for "
         "warm-up",
         ctx->name, REMOTE_PIPELINED_CALLS, REMOTE_DEPTH, secs,
         REMOTE_PIPELINED_WARMUP);
    emit(ctx, "rate", REMOTE_PIPELINED_CALLS / secs, 0, "calls/s");
out:
    rc = remote_close(ctx, rc, &r);
    /* Only now: no callback can be running any more. */
    if (warm != NULL)
        done_fini(&warm->done);
    if (run != NULL)
        done_fini(&run->done);
    free(warm);
    free(run);
    return rc;
}

/* ---- the table and main -------------------------------------------------- */

static const bench_t benches[] = {
    {"actor.pingpong", bench_pingpong,
     "two actors, 1,000,000 ping/pong round trips (fl_tell)"},
    {"actor.counting", bench_counting,
     "one sender, one receiver, 10,000,000 messages"},
    {"actor.fanin", bench_fanin,
     "4 senders, one receiver, 10,000,000 messages in total"},
    {"actor.threadring", bench_threadring,
     "503 actors in a ring, a token passed 10,000,000 hops"},
    {"actor.spawn", bench_spawn,
     "1,000,000 idle actors spawned: rate and resident bytes per actor"},
    {"actor.ask", bench_ask,
     "1,000,000 sequential asks (10 s timeout), answers back on the asker"},
    {"rpc.local_call", bench_rpc_call,
     "1,000,000 sequential RPC calls endpoint to endpoint (closure style)"},
    {"rpc.local_tell", bench_rpc_tell,
     "10,000,000 RPC tells (closure NULL) from one endpoint to another"},
    {"rpc.remote_call", bench_remote_call,
     "200,000 sequential remote calls (64-byte Blob each way), two processes "
     "on 127.0.0.1"},
    {"rpc.remote_pipelined", bench_remote_pipelined,
     "1,000,000 remote calls, 64 in flight, two processes on 127.0.0.1"},
};
#define NBENCHES (sizeof benches / sizeof benches[0])

static const bench_t *find_bench(const char *name)
{
    for (size_t i = 0; i < NBENCHES; i++)
        if (strcmp(benches[i].name, name) == 0)
            return &benches[i];
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: fling_bench [--workers N] [--list] [name...]\n"
                 "Runs the named benchmarks (default: all) and prints\n"
                 "'<benchmark>.<metric> <value> <unit>' lines to stdout.\n"
                 "  --workers N  worker threads of every system (1..256;\n"
                 "               default: online cores)\n"
                 "  --list       print the benchmark names and exit\n");
}

/* parse_workers accepts 1..256. */
static int parse_workers(const char *s, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || v < 1 || v > 256)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int main(int argc, char **argv)
{
    bench_ctx_t ctx = {0};
    const bench_t **sel = calloc((size_t)argc + NBENCHES, sizeof *sel);
    size_t nsel = 0;
    if (sel == NULL) {
        note("out of memory");
        return 1;
    }
    bool opts_done = false, serve = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && strcmp(a, "--") == 0) {
            opts_done = true;
        } else if (!opts_done &&
                   (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            usage(stdout);
            free(sel);
            return 0;
        } else if (!opts_done && strcmp(a, "--list") == 0) {
            for (size_t k = 0; k < NBENCHES; k++)
                printf("%-20s %s\n", benches[k].name, benches[k].what);
            free(sel);
            return 0;
        } else if (!opts_done && (strcmp(a, "--workers") == 0 ||
                                  strncmp(a, "--workers=", 10) == 0)) {
            const char *v =
                a[9] == '=' ? a + 10 : (i + 1 < argc ? argv[++i] : NULL);
            if (v == NULL || parse_workers(v, &ctx.workers) != 0) {
                note("--workers needs a number from 1 to 256");
                usage(stderr);
                free(sel);
                return 2;
            }
        } else if (!opts_done && strcmp(a, "--serve") == 0) {
            /* Hidden: the server process of rpc.remote_*. */
            serve = true;
        } else if (!opts_done && a[0] == '-') {
            note("unknown option '%s'", a);
            usage(stderr);
            free(sel);
            return 2;
        } else {
            const bench_t *b = find_bench(a);
            if (b == NULL) {
                note("unknown benchmark '%s'; known:", a);
                for (size_t k = 0; k < NBENCHES; k++)
                    fprintf(stderr, "  %s\n", benches[k].name);
                free(sel);
                return 2;
            }
            sel[nsel++] = b;
        }
    }
    if (serve) {
        free(sel);
        ctx.name = "rpc.server";
        return serve_main(&ctx) == FL_OK ? 0 : 1;
    }
    if (nsel == 0)
        for (size_t k = 0; k < NBENCHES; k++)
            sel[nsel++] = &benches[k];

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    note("fling %s, %u worker(s) per system (%s), %ld online core(s)",
         FLING_VERSION_STRING, ctx.workers ? ctx.workers : (unsigned)cores,
         ctx.workers ? "--workers" : "default", cores);
    int failed = 0;
    for (size_t k = 0; k < nsel; k++) {
        ctx.name = sel[k]->name;
        int rc = sel[k]->run(&ctx);
        if (rc != FL_OK) {
            note("%s: FAILED (%s)", ctx.name, fl_err_name(rc));
            failed++;
        }
    }
    free(sel);
    if (failed > 0) {
        note("%d benchmark(s) failed", failed);
        return 1;
    }
    return 0;
}
