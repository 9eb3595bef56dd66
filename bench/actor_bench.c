/*
 * actor_bench.c - the actor benchmarks of fling_bench that tell: pingpong,
 * counting, fanin and threadring (messages per second), and spawn (actors
 * per second and the memory each one adds). Each is a row of the runner's
 * table (bench.h).
 */
#include "bench.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

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

int bench_pingpong(const bench_ctx_t *ctx)
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
    chunk_sender_t senders[FANIN_SENDERS];
    fl_actor_ref_t refs[FANIN_SENDERS];
    counter_t counter = {.n = total, .done = &done};
    fl_actor_ref_t to;
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
        if ((rc = fl_actor_spawn(sys, chunk_sender_receive, &senders[i], NULL,
                                 &refs[i])) != FL_OK) {
            fail(ctx, "fl_actor_spawn", rc);
            goto out;
        }
    }
    if ((rc = go_wait(ctx, sys, refs, nsenders, &done, &secs)) != FL_OK)
        goto out;
    note("%s: %" PRIu64 " messages from %u sender(s) in %.3f s", ctx->name,
         counter.count, nsenders, secs);
    emit(ctx, "rate", (double)counter.count / secs, 0, "msgs/s");
out:
    return end_run(ctx, rc, sys, &done);
}

int bench_counting(const bench_ctx_t *ctx)
{
    return run_senders(ctx, 1, COUNTING_MSGS);
}

int bench_fanin(const bench_ctx_t *ctx)
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

int bench_threadring(const bench_ctx_t *ctx)
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
 * fl_actor_spawn, and the resident anonymous memory each one adds. */

static void idle_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                         fl_msg_t *msg)
{
}

/* statm's resident pages (field 2), or those minus its shared, file-backed
 * ones (field 3): anonymous memory only. */
static long long statm_bytes(bool anon_only)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    unsigned long long size, resident, shared;
    int n = fscanf(f, "%llu %llu %llu", &size, &resident, &shared);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (n != 3 || page <= 0 || shared > resident)
        return -1;
    return (long long)((anon_only ? resident - shared : resident) *
                       (unsigned long long)page);
}

long long rss_bytes(void)
{
    return statm_bytes(false);
}

int bench_spawn(const bench_ctx_t *ctx)
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
    /* Anonymous memory: the first call of a function faults in its code
     * page and the kernel maps up to 16 pages of the binary around it,
     * which is not memory the actors take. */
    rss0 = statm_bytes(true);
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
    rss1 = statm_bytes(true);
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
    note("%s: %u actors in %.3f s; anonymous RSS %lld -> %lld bytes", ctx->name,
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
