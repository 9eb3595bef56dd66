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
 * every exit path, and exits by itself if this process dies. The _tls
 * ones do the same over mutual TLS (the server with the hidden option
 * --tls DIR, its certificates' folder).
 *
 * This file owns the command line, the table and output (declared in
 * bench.h); bench_run.c the system and the completion of a run. The
 * benchmarks live one family to a file: actor_bench.c, ask_bench.c,
 * flood_bench.c, rpc_local_bench.c and rpc_remote_bench.c (with bench_certs.c,
 * the test certificates of its _tls benchmarks).
 *
 * To add a benchmark: write an int bench_x(const bench_ctx_t *) in its
 * family's file that returns FL_OK or an error code and prints its figures
 * with emit(), declare it in bench.h, and add a row to the table.
 */
#include "bench.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A benchmark: returns FL_OK, or an error code after saying why on stderr. */
typedef int (*bench_fn)(const bench_ctx_t *ctx);

typedef struct bench {
    const char *name;
    bench_fn run;
    const char *what; /* one line for --list */
} bench_t;

/* ---- output -------------------------------------------------------------- */

/* The contracts of output are in bench.h; the system and completion are
 * bench_run.c's. */

void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fling_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void emit(const bench_ctx_t *ctx, const char *metric, double value,
          int decimals, const char *unit)
{
    printf("%s.%s %.*f %s\n", ctx->name, metric, decimals, value, unit);
    fflush(stdout);
}

int fail(const bench_ctx_t *ctx, const char *what, int err)
{
    note("%s: %s: %s (%s)", ctx->name, what, fl_strerror(err),
         fl_err_name(err));
    return err;
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
    {"actor.flood", bench_flood,
     "8 senders x 10,000,000 tells to one slow receiver, flow control on "
     "and off: peak memory, rates"},
    {"rpc.local_call", bench_rpc_call,
     "1,000,000 sequential RPC calls endpoint to endpoint (closure style)"},
    {"rpc.local_tell", bench_rpc_tell,
     "10,000,000 RPC tells (closure NULL) from one endpoint to another"},
    {"rpc.remote_call", bench_remote_call,
     "200,000 sequential remote calls (64-byte Blob each way), two processes "
     "on 127.0.0.1"},
    {"rpc.remote_pipelined", bench_remote_pipelined,
     "1,000,000 remote calls, 64 in flight, two processes on 127.0.0.1"},
    {"rpc.remote_call_tls", bench_remote_call_tls,
     "rpc.remote_call over mutual TLS 1.3 (fling.ssl://)"},
    {"rpc.remote_pipelined_tls", bench_remote_pipelined_tls,
     "rpc.remote_pipelined over mutual TLS 1.3 (fling.ssl://)"},
    {"rpc.remote_deadlines", bench_remote_deadlines,
     "100,000 remote calls pending, timeouts 1 s and 10 s interleaved: "
     "issue time, lateness of the 1 s ones"},
    {"rpc.remote_behind_large", bench_remote_behind_large,
     "100 small remote calls, each right behind an 8 MiB call to another "
     "endpoint on the same connection"},
    {"mem.idle_conn", bench_mem,
     "bytes held per idle connection (both ends), 200 connections"},
    {"mem.idle_endpoint", bench_mem,
     "bytes held per idle started endpoint, 10,000 endpoints"},
    {"mem.tell_flood", bench_mem,
     "8 x 1,000,000 tells queued at one endpoint: memory before, at the "
     "peak, after the drain"},
    {"cluster.heartbeat", bench_cluster_heartbeat,
     "CPU time of heartbeat rounds: one sender, 10,000 targets"},
    {"cluster.register", bench_cluster_register,
     "50 fling-taskmanager processes started at once: time until one "
     "fling-jobmanager has registered them all, jitter on and off"},
    {"cluster.deploy", bench_cluster_deploy,
     "a job submitted to fling-jobmanager: time until all its tasks run on "
     "two fling-taskmanager, parallelism 1, 16, 64"},
    {"cluster.failover", bench_cluster_failover,
     "one of two fling-taskmanager killed or cut off (network namespace) "
     "under a running job: time to detect, time to run again"},
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
    const char *mem = NULL, *alone = NULL;
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
        } else if (!opts_done && strcmp(a, "--mem") == 0 && i + 1 < argc) {
            /* Hidden: the process of a mem.* benchmark (mem_main). */
            mem = argv[++i];
        } else if (!opts_done && strcmp(a, "--alone") == 0 && i + 1 < argc) {
            /* Hidden: the process of actor.flood (flood_main). */
            alone = argv[++i];
        } else if (!opts_done && strcmp(a, "--serve") == 0) {
            /* Hidden: the server process of rpc.remote_*. */
            serve = true;
        } else if (!opts_done && strcmp(a, "--tls") == 0 && i + 1 < argc) {
            /* Hidden: the server of rpc.remote_*_tls, its certificates. */
            ctx.certs = argv[++i];
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
    if (mem != NULL) {
        free(sel);
        ctx.name = mem;
        return mem_main(&ctx) == FL_OK ? 0 : 1;
    }
    if (alone != NULL) {
        free(sel);
        if (strcmp(alone, "actor.flood") != 0) {
            note("--alone runs actor.flood only, not '%s'", alone);
            return 2;
        }
        ctx.name = alone;
        return flood_main(&ctx) == FL_OK ? 0 : 1;
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
