/*
 * bench.h - what every benchmark of fling_bench shares: the sizes, the
 * message types, the context the runner passes, and the helpers of a run.
 * Output is the runner's (fling_bench.c), the system and completion
 * bench_run.c's; the helpers on a benchmark's hot path (finishing a run, small
 * messages) are inline here so that they cost what they cost in one file. Each
 * family of benchmarks has its own file; the functions at the bottom are the
 * rows of the runner's table.
 */
#ifndef FL_BENCH_BENCH_H
#define FL_BENCH_BENCH_H

#include <fling/fling.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- sizes --------------------------------------------------------------- */

#define PINGPONG_ROUND_TRIPS 1000000u
#define COUNTING_MSGS 10000000u
#define FANIN_SENDERS 4u
#define FANIN_MSGS 10000000u
#define THREADRING_ACTORS 503u
#define THREADRING_HOPS 10000000u
#define SPAWN_ACTORS 1000000u
#define ASK_ASKS 1000000u
#define FLOOD_SENDERS 8u
#define FLOOD_MSGS 10000000u /* per sender */
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
#define LARGE_BYTES (8u * 1024u * 1024u)
#define LARGE_ROUNDS 100u
#define LARGE_WARMUP 5u
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
    /* The server process of rpc.remote_* (--serve --tls DIR): the folder
     * of its test certificates, which turns TLS on; NULL: plaintext. */
    const char *certs;
} bench_ctx_t;

/* ---- output (fling_bench.c) ---------------------------------------------- */

/* note writes one diagnostic line, "fling_bench: <text>", to stderr. Any
 * thread. */
void note(const char *fmt, ...) FL_PRINTF(1, 2);

/*
 * emit prints one figure, "<bench>.<metric> <value> <unit>", with the value
 * rounded to an integer (decimals 0) or to one decimal (decimals 1), and
 * flushes so that the lines of a run that later fails are not lost. The
 * main thread.
 */
void emit(const bench_ctx_t *ctx, const char *metric, double value,
          int decimals, const char *unit);

/* fail reports a failed call of a benchmark (note) and returns its code. */
int fail(const bench_ctx_t *ctx, const char *what, int err);

/* The resident set of this process in bytes, or -1 (actor_bench.c). */
long long rss_bytes(void);

/* ---- the system (bench_run.c) -------------------------------------------- */

/* sys_open creates a system with the default options but the worker count
 * asked for on the command line (and max_actors, when not 0). FL_OK, or an
 * error after saying why; the caller owns *out (sys_close). Main thread. */
int sys_open(const bench_ctx_t *ctx, uint32_t max_actors, fl_system_t **out);

/* sys_close shuts sys down (BLOCKS) and frees it; NULL is a no-op. Returns
 * the shutdown's result, after saying why it failed. Main thread. */
int sys_close(const bench_ctx_t *ctx, fl_system_t *sys);

/* ---- completion (bench_run.c) -------------------------------------------- */

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

/* done_init readies d (caller memory) for a run: FL_OK, or FL_ENOMEM after
 * saying why. Main thread. */
int done_init(const bench_ctx_t *ctx, done_t *d);

/* done_fini releases d's future. No actor may touch d any more. */
void done_fini(done_t *d);

/* done_finish stops the clock and completes the run. Actor thread. */
static inline void done_finish(done_t *d)
{
    atomic_store_explicit(&d->t_end, fl_clock_now_ns(), memory_order_release);
    fl_future_complete(d->f, NULL, NULL);
}

/* done_fail ends the run with an error. Actor thread. */
static inline void done_fail(done_t *d, const char *what, int err)
{
    fl_future_fail(d->f, err, "%s: %s", what, fl_strerror(err));
}

/*
 * done_wait BLOCKS the main thread until the run completes and returns its
 * result; on FL_OK *secs is the time since t0. A run that does not finish
 * within HANG_TIMEOUT_MS ends the process (exit status 1): a hung system
 * could not be shut down either.
 */
int done_wait(const bench_ctx_t *ctx, done_t *d, uint64_t t0, double *secs);

/*
 * A sender actor (state chunk_sender_t, its receive chunk_sender_receive):
 * on MSG_GO or MSG_CONT it tells `to` SEND_CHUNK MSG_DATA messages (fewer
 * at the end), then, while `left` is not 0, tells itself MSG_CONT, so that
 * it never holds a worker for the whole run. Fails `done` on an error.
 */
typedef struct chunk_sender {
    _Alignas(64) /* own cache line: no false sharing between actors */
        fl_actor_ref_t to;
    uint64_t left;
    done_t *done;
} chunk_sender_t;

void chunk_sender_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                          fl_msg_t *msg);

/*
 * go_wait starts a run: tells each of the n actors of refs MSG_GO, then
 * waits as done_wait from just before the first tell. FL_OK with *secs,
 * or the error (said). BLOCKS; main thread.
 */
int go_wait(const bench_ctx_t *ctx, fl_system_t *sys,
            const fl_actor_ref_t *refs, unsigned n, done_t *d, double *secs);

/*
 * end_run ends a benchmark: shuts the system down (so that no actor runs
 * any more and the benchmark's state, often on its stack, may go), then
 * releases the completion future. Returns rc, or the shutdown's error if
 * rc is FL_OK. BLOCKS; main thread.
 */
int end_run(const bench_ctx_t *ctx, int rc, fl_system_t *sys, done_t *d);

/* ---- messages ------------------------------------------------------------ */

/* send_u64 tells `to` a message of the given type carrying v; returns
 * fl_tell's result (FL_ENOMEM if the message could not be allocated). */
static inline int send_u64(fl_system_t *sys, fl_actor_ref_t to, uint32_t type,
                           uint64_t v)
{
    fl_msg_t *m = fl_msg_alloc(type, sizeof v);
    if (m == NULL)
        return FL_ENOMEM;
    memcpy(fl_msg_data(m), &v, sizeof v);
    return fl_tell(sys, to, m);
}

/* msg_u64 reads the value send_u64 put in m (0 if m carries none). */
static inline uint64_t msg_u64(fl_msg_t *m)
{
    uint64_t v = 0;
    if (fl_msg_size(m) >= sizeof v)
        memcpy(&v, fl_msg_data(m), sizeof v);
    return v;
}

/* ---- TLS certificates (bench_certs.c) ------------------------------------ */

/*
 * bench_certs returns the folder of the test certificates of the *_tls
 * benchmarks (scripts/test-certs.sh's set: ca.crt, server.*, client.*):
 * $FLING_BENCH_CERTS when set (scripts/bench.sh makes one set per run, the
 * same for every side), else a scratch folder under $TMPDIR (default /tmp)
 * made on the first call by bench_certs_make and removed when this process
 * exits. The string lives until the exit. NULL after saying why. Main
 * thread; BLOCKS while the script runs (about a second).
 */
const char *bench_certs(const bench_ctx_t *ctx);

/*
 * bench_certs_make runs scripts/test-certs.sh (its path compiled in:
 * FLING_TEST_CERTS_SCRIPT) to write a certificate set into dir. FL_OK;
 * FL_ENOENT when openssl is not in $PATH; FL_ESYSTEM when the script
 * cannot run or fails (its own message is on stderr); each after saying
 * why. BLOCKS until the script ends.
 */
int bench_certs_make(const bench_ctx_t *ctx, const char *dir);

#define BENCH_PATH_MAX 4096

/* The TLS options of one side, with the paths they point to: opts points
 * into this struct, which must not be copied once filled. */
typedef struct bench_tls {
    fl_rpc_tls_opts_t opts;
    char cert[BENCH_PATH_MAX];
    char key[BENCH_PATH_MAX];
    char ca[BENCH_PATH_MAX];
} bench_tls_t;

/*
 * bench_tls_opts fills out with the certificates of dir for one side:
 * server.crt/key when server (it only accepts), else client.crt/key (it
 * only dials); ca.crt trusted; TLS 1.3, OpenSSL's default suites, the
 * host name checked. FL_OK, or FL_EINVAL (a path too long) after saying
 * why. Any thread.
 */
int bench_tls_opts(const bench_ctx_t *ctx, const char *dir, bool server,
                   bench_tls_t *out);

/* ---- the benchmarks ------------------------------------------------------ */

/*
 * One function per row of the runner's table, each described in its file.
 * Each runs on the main thread and BLOCKS until its run is over and all it
 * made is freed; it prints its figures with emit() and returns FL_OK, or
 * an error code after saying why on stderr.
 */

/* actor_bench.c: actor.pingpong, actor.counting, actor.fanin,
 * actor.threadring, actor.spawn. */
int bench_pingpong(const bench_ctx_t *ctx);
int bench_counting(const bench_ctx_t *ctx);
int bench_fanin(const bench_ctx_t *ctx);
int bench_threadring(const bench_ctx_t *ctx);
int bench_spawn(const bench_ctx_t *ctx);

/* ask_bench.c: actor.ask. */
int bench_ask(const bench_ctx_t *ctx);

/*
 * flood_bench.c: actor.flood. bench_flood runs it in a process of its own
 * (run_alone, "--alone"): its peak memory is counted above a fresh
 * process's, not above the pages earlier benchmarks left to the
 * allocator. flood_main is that process's body; flood_run is it with
 * other sizes (the smoke test's): senders (> 0) actors tell per_sender
 * (> 0) messages each to one slow receiver, once with the default mailbox
 * bound and once with FL_MAILBOX_UNBOUNDED, each in a system of its own.
 * FL_OK after emitting peak_rss_mib, rate, unbounded_rate and
 * unbounded_peak_rss_mib, or an error after saying why. Reads
 * /proc/self/status and writes /proc/self/clear_refs (Linux). BLOCKS for
 * the runs; main thread.
 */
int bench_flood(const bench_ctx_t *ctx);
int flood_main(const bench_ctx_t *ctx);
int flood_run(const bench_ctx_t *ctx, unsigned senders, uint64_t per_sender);

/*
 * run_alone runs the benchmark ctx->name in a process of its own: this
 * program again (/proc/self/exe) with the hidden option opt and the name,
 * and --workers as given; its figures go straight to the shared stdout.
 * FL_OK when it exits 0, or an error after saying why. BLOCKS until it
 * ends.
 */
int run_alone(const bench_ctx_t *ctx, const char *opt);

/* rpc_local_bench.c: rpc.local_call, rpc.local_tell. */
int bench_rpc_call(const bench_ctx_t *ctx);
int bench_rpc_tell(const bench_ctx_t *ctx);

/* rpc_remote_bench.c: rpc.remote_call, rpc.remote_pipelined, over TCP
 * and over mutual TLS (the _tls ones), and rpc.remote_behind_large. */
int bench_remote_call(const bench_ctx_t *ctx);
int bench_remote_call_tls(const bench_ctx_t *ctx);
int bench_remote_pipelined(const bench_ctx_t *ctx);
int bench_remote_pipelined_tls(const bench_ctx_t *ctx);
int bench_remote_behind_large(const bench_ctx_t *ctx);

/*
 * remote_call_run and remote_pipelined_run are the bodies of
 * rpc.remote_call[_tls] and rpc.remote_pipelined[_tls] with other sizes
 * (the smoke test's): `calls` (> 0) measured calls after `warmup`
 * (pipelined: REMOTE_DEPTH in flight), over TLS when tls (both
 * services, the certificates of bench_certs), else TCP. FL_OK after
 * emitting the figures, or an error after saying why. BLOCKS for the run.
 */
int remote_call_run(const bench_ctx_t *ctx, bool tls, uint32_t warmup,
                    uint32_t calls);
int remote_pipelined_run(const bench_ctx_t *ctx, bool tls, uint32_t warmup,
                         uint32_t calls);

/* rpc_deadline_bench.c: rpc.remote_deadlines. */
int bench_remote_deadlines(const bench_ctx_t *ctx);

/*
 * serve_main is the server process of rpc.remote_* (the hidden option
 * --serve, with --tls DIR for the _tls ones: ctx->certs; rpc_remote_bench.c).
 * Returns FL_OK after a clean shutdown. BLOCKS until its stdin reads
 * end-of-file.
 */
int serve_main(const bench_ctx_t *ctx);

/* mem.* (mem_bench.c): bench_mem runs the benchmark ctx->name in a process
 * of its own (run_alone, "--mem") and waits for it; mem_main is
 * that process: it makes the counting allocator fling's, then runs it.
 * FL_OK or an error after saying why. */
int bench_mem(const bench_ctx_t *ctx);
int mem_main(const bench_ctx_t *ctx);

/* cluster.* (cluster_bench.c). */
int bench_cluster_heartbeat(const bench_ctx_t *ctx);

/* cluster.register (cluster_register_bench.c): spawns fling-jobmanager and
 * 50 fling-taskmanager processes per run. FL_OK or an error after saying
 * why. BLOCKS for the runs (tens of seconds). */
int bench_cluster_register(const bench_ctx_t *ctx);

/*
 * cluster.deploy (cluster_deploy_bench.c): submit -> all tasks RUNNING
 * for parallelism 1, 16 and 64, 5 runs each, a fresh JobManager and two
 * TaskManagers per run. cluster_deploy_run is its body with other sizes
 * (npars <= CLUSTER_DEPLOY_MAX_PARS parallelisms, 1 to
 * CLUSTER_DEPLOY_MAX_RUNS runs of each; the smoke test runs one of p=1).
 * FL_OK after emitting the figures, or an error after saying why. BLOCKS
 * for the runs (seconds each).
 */
#define CLUSTER_DEPLOY_MAX_PARS 8
#define CLUSTER_DEPLOY_MAX_RUNS 50
int bench_cluster_deploy(const bench_ctx_t *ctx);
int cluster_deploy_run(const bench_ctx_t *ctx, const unsigned *pars,
                       size_t npars, unsigned runs);

/*
 * cluster.failover (cluster_failover_bench.c): a job of parallelism 4 on
 * two TaskManagers, one of them killed (SIGKILL) or cut off (a network
 * namespace's link down; root only): time to detect and to run again.
 * cluster_failover_run is its body with other sizes: parallelism par (even,
 * >= 2), runs (1 to CLUSTER_FAILOVER_MAX_RUNS) of the kill case, of the
 * partition case too when partition, and one run of each with Flink's
 * heartbeat defaults when flink. FL_OK after emitting the figures, or an
 * error after saying why. BLOCKS for the runs (seconds each, about a
 * minute for a Flink-default partition).
 */
#define CLUSTER_FAILOVER_MAX_RUNS 50
int bench_cluster_failover(const bench_ctx_t *ctx);
int cluster_failover_run(const bench_ctx_t *ctx, unsigned par, unsigned runs,
                         bool partition, bool flink);

#endif /* FL_BENCH_BENCH_H */
