/*
 * flood_bench.c - actor.flood: FLOOD_SENDERS sender actors tell one slow
 * receiver FLOOD_MSGS each, as fast as they can. With flow control on
 * (the default mailbox bound) the senders are muted while the receiver's
 * mailbox is over its bound; with it off (FL_MAILBOX_UNBOUNDED) the
 * mailbox holds whatever the senders are ahead. Figures: the resident
 * memory the bounded run adds at its peak, and the rate of each run.
 * A row of the runner's table (bench.h); the smoke test runs flood_run
 * small.
 */
#include "bench.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* The receiver's work per message: a multiply chain over this many bytes
 * of its own (about 40 ns), so that the senders outrun it. */
#define FLOOD_WORK_WORDS 32u

typedef struct flood_receiver {
    _Alignas(64) /* own cache line: no false sharing between actors */
        uint64_t n,
        count, hash;
    uint64_t work[FLOOD_WORK_WORDS];
    done_t *done;
} flood_receiver_t;

static void flood_receiver_receive(fl_system_t *sys, fl_actor_ref_t self,
                                   void *state, fl_msg_t *msg)
{
    flood_receiver_t *r = state;
    uint64_t h = r->hash ^ msg_u64(msg);
    for (unsigned i = 0; i < FLOOD_WORK_WORDS; i++)
        h = (h ^ r->work[i]) * 0x100000001b3u;
    r->hash = h;
    if (++r->count == r->n)
        done_finish(r->done);
}

/* ---- resident memory ------------------------------------------------------
 */

/* The "<key>: <n> kB" line of /proc/self/status in bytes, or -1. */
static long long status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long long v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            v = strtoll(line + n + 1, NULL, 10) * 1024;
            break;
        }
    fclose(f);
    return v;
}

/* Resets the peak resident set (VmHWM) to the current one; FL_OK or
 * FL_ESYSTEM. */
static int reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f == NULL)
        return FL_ESYSTEM;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? FL_OK : FL_ESYSTEM;
}

/* ---- a run ------------------------------------------------------------------
 */

/* One run: senders x per_sender messages to one receiver in a system of
 * mailbox bound `bound`. On FL_OK *rate is in msgs/s and *peak the bytes
 * the process's resident set grew by at its peak. */
static int flood_once(const bench_ctx_t *ctx, uint32_t bound, unsigned senders,
                      uint64_t per_sender, double *rate, long long *peak)
{
    fl_system_t *sys = NULL;
    done_t done = {0};
    chunk_sender_t *s = NULL;
    fl_actor_ref_t *refs = NULL;
    flood_receiver_t *r = NULL;
    fl_actor_ref_t to;
    fl_system_opts_t opts = {0};
    fl_system_stats_t st;
    long long rss0, hwm;
    double secs;
    int rc = FL_ENOMEM;
    opts.workers = ctx->workers;
    opts.mailbox_bound = bound;
    s = aligned_alloc(64, sizeof *s * senders);
    refs = calloc(senders, sizeof *refs);
    r = aligned_alloc(64, sizeof *r);
    if (s == NULL || refs == NULL || r == NULL) {
        fail(ctx, "malloc", rc);
        goto out;
    }
    if ((rc = fl_system_alloc(&opts, &sys)) != FL_OK) {
        fail(ctx, "fl_system_alloc", rc);
        goto out;
    }
    if ((rc = done_init(ctx, &done)) != FL_OK)
        goto out;
    memset(r, 0, sizeof *r);
    r->n = (uint64_t)senders * per_sender;
    r->done = &done;
    for (unsigned i = 0; i < FLOOD_WORK_WORDS; i++)
        r->work[i] = 0x9e3779b97f4a7c15u * (i + 1);
    if ((rc = fl_actor_spawn(sys, flood_receiver_receive, r, NULL, &to)) !=
        FL_OK) {
        fail(ctx, "fl_actor_spawn", rc);
        goto out;
    }
    for (unsigned i = 0; i < senders; i++) {
        memset(&s[i], 0, sizeof s[i]);
        s[i].to = to;
        s[i].left = per_sender;
        s[i].done = &done;
        if ((rc = fl_actor_spawn(sys, chunk_sender_receive, &s[i], NULL,
                                 &refs[i])) != FL_OK) {
            fail(ctx, "fl_actor_spawn", rc);
            goto out;
        }
    }
#if defined(__GLIBC__)
    /* Memory an earlier run freed goes back to the kernel: the idle
     * process is measured without it. */
    malloc_trim(0);
#endif
    rss0 = status_bytes("VmRSS");
    if (rss0 < 0 || (rc = reset_peak()) != FL_OK) {
        note("%s: cannot read /proc/self/status or write "
             "/proc/self/clear_refs",
             ctx->name);
        rc = FL_ESYSTEM;
        goto out;
    }
    if ((rc = go_wait(ctx, sys, refs, senders, &done, &secs)) != FL_OK)
        goto out;
    hwm = status_bytes("VmHWM");
    if (hwm < 0) {
        note("%s: cannot read /proc/self/status", ctx->name);
        rc = FL_ESYSTEM;
        goto out;
    }
    if ((rc = fl_system_stats(sys, &st)) != FL_OK) {
        fail(ctx, "fl_system_stats", rc);
        goto out;
    }
    *rate = (double)r->count / secs;
    *peak = hwm > rss0 ? hwm - rss0 : 0;
    note("%s: %" PRIu64 " messages from %u senders in %.3f s, bound %s, "
         "%" PRIu64 " mutes, peak %.1f MiB above %.1f MiB",
         ctx->name, r->count, senders, secs,
         bound == FL_MAILBOX_UNBOUNDED ? "none" : "default", st.mutes,
         (double)*peak / 1048576, (double)rss0 / 1048576);
out:
    rc = end_run(ctx, rc, sys, &done);
    free(s);
    free(refs);
    free(r);
    return rc;
}

int flood_run(const bench_ctx_t *ctx, unsigned senders, uint64_t per_sender)
{
    double rate, unbounded_rate;
    long long peak, unbounded_peak;
    if (senders == 0 || per_sender == 0)
        return fail(ctx, "flood_run", FL_EINVAL);
    int rc = flood_once(ctx, 0, senders, per_sender, &rate, &peak);
    if (rc != FL_OK)
        return rc;
    rc = flood_once(ctx, FL_MAILBOX_UNBOUNDED, senders, per_sender,
                    &unbounded_rate, &unbounded_peak);
    if (rc != FL_OK)
        return rc;
    emit(ctx, "peak_rss_mib", (double)peak / 1048576, 1, "MiB");
    emit(ctx, "rate", rate, 0, "msgs/s");
    emit(ctx, "unbounded_rate", unbounded_rate, 0, "msgs/s");
    emit(ctx, "unbounded_peak_rss_mib", (double)unbounded_peak / 1048576, 1,
         "MiB");
    return FL_OK;
}

int bench_flood(const bench_ctx_t *ctx)
{
    return run_alone(ctx, "--alone");
}

int flood_main(const bench_ctx_t *ctx)
{
    return flood_run(ctx, FLOOD_SENDERS, FLOOD_MSGS);
}
