/*
 * cluster_failover_bench.c - cluster.failover: how long a running job
 * takes to run again after one of its two TaskManagers goes away, and how
 * much of that is the detection (cluster_jobs.h: the processes, the job,
 * the log).
 *
 * A run: a fling-jobmanager and two TaskManagers, tma with P/2 slots
 * (registered first, so the ResourceManager fills it first) and tmb with
 * P; the job with parallelism P (P = 4) runs half on each, every task
 * RUNNING. Then tma goes:
 *   kill       SIGKILL (its connections close at once);
 *   partition  silently: tma runs in a network namespace joined to the
 *              host by a veth pair (scripts/netns-pair.sh), whose end in
 *              the namespace is taken down: packets vanish, no RST, no
 *              ICMP.
 * The job restarts (fixed delay, restart-strategy.fixed-delay.delay 1 s,
 * one attempt: Flink's defaults) on tmb, which has the slots. The times come
 * from the JobManager's log (records timed to the microsecond, CLOCK_REALTIME,
 * the clock of the kill or cut too): detect_ms (-> the JobMaster fails the
 * first task of tma: "switched from RUNNING to FAILED"), restarting_ms (->
 * "Restarting job ... in 1000 ms": the survivors are cancelled),
 * running_ms (-> the last task RUNNING again, of the attempt that got
 * there; with running_spread_pct), redeploy_ms (the last restart's
 * firing, its record + the delay, -> the last task RUNNING), restarts (how
 * many the job needed: 1, or the run fails). The cut comes right after
 * the last task RUNNING, when a kill can still lose a SubmitTask's
 * reply: the JobMaster must keep the restart off tma's slots.
 *
 * Heartbeats: heartbeat.interval 1 s, heartbeat.timeout 5 s (runs
 * interleaved, kill then partition, CF_RUNS each); then one run of each
 * case with Flink's defaults, 10 s and 50 s (figures flink_kill_*,
 * flink_partition_*). The partition case needs root (ip netns).
 */
#include "cluster_jobs.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CF_RUNS 5
#define CF_PAR 4
/* One run, the Flink-default ones included (50 s to detect). */
#define CF_WAIT_MS 180000

#if defined(FLING_JM_PATH) && defined(FLING_TM_PATH) &&                        \
    defined(FLING_IDLE_UDF) && defined(FLING_NETNS_SCRIPT)

/* The records of a run after the cut, in the order they come; the
 * tasks RUNNING again, of the first restart's attempt or a later one's,
 * last. */
enum { M_FAILED, M_LOST, M_RESTARTING, M_RUNNING1 };

/* The restarted attempts watched: #1 .. #CF_ATTEMPTS, far more than a
 * run makes (its restarts are counted, and a run needs 1 or fails). */
#define CF_ATTEMPTS 64

/* The prefix of the bench's namespaces: flb<pid> (at most 13 characters,
 * scripts/netns-pair.sh's limit, for any pid up to 2^22). */
#define CF_NS_PREFIX "flb"

/* One run's figures, in ms from the kill or the cut, and the restarts. */
typedef struct cf_run {
    double detect, restarting, running, redeploy, restarts;
} cf_run_t;

/* The settings of a run: "-D" values for every process (the heartbeats;
 * the restart strategy is the default, one attempt 1 s later). */
typedef struct cf_setting {
    const char *opts[3];
} cf_setting_t;

static const cf_setting_t fast_hb = {
    {"heartbeat.interval=1 s", "heartbeat.timeout=5 s", NULL}};
static const cf_setting_t flink_hb = {
    {"heartbeat.interval=10 s", "heartbeat.timeout=50 s", NULL}};

/* Runs scripts/netns-pair.sh with cmd and name, its stderr on ours and
 * its stdout into out (cap bytes, one line, '\n' cut; NULL: on stderr).
 * FL_OK, or FL_ESYSTEM after saying why. */
static int netns(const bench_ctx_t *ctx, const char *cmd, const char *name,
                 char *out, size_t cap)
{
    char *argv[] = {FLING_NETNS_SCRIPT, (char *)cmd, (char *)name, NULL};
    int p[2] = {-1, -1};
    if (out != NULL && pipe(p) != 0) {
        note("%s: cannot make a pipe: %s", ctx->name, strerror(errno));
        return FL_ESYSTEM;
    }
    pid_t pid;
    int e =
        spawn_proc(FLING_NETNS_SCRIPT, argv, out != NULL ? p[1] : 2, 2, &pid);
    if (out != NULL) {
        close(p[1]);
        size_t len = 0;
        ssize_t got;
        while (e == 0 && len + 1 < cap &&
               ((got = read(p[0], out + len, cap - 1 - len)) > 0 ||
                (got < 0 && errno == EINTR)))
            len += got > 0 ? (size_t)got : 0;
        out[len] = '\0';
        out[strcspn(out, "\n")] = '\0';
        close(p[0]);
    }
    int status = 0;
    if (e == 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
        WEXITSTATUS(status) == 0)
        return FL_OK;
    note("%s: %s %s %s failed (%s); the partition case needs root and "
         "iproute2",
         ctx->name, FLING_NETNS_SCRIPT, cmd, name,
         e != 0 ? strerror(e) : "see above");
    return FL_ESYSTEM;
}

/* Creates the namespace ns on a /30 that netns-pair.sh picks free, its
 * addresses into host and tma_host, and deletes it on SIGINT, SIGTERM or
 * SIGHUP. FL_OK, or an error after saying why. */
static int ns_create(const bench_ctx_t *ctx, const char *ns, char host[32],
                     char tma_host[32])
{
    netns_delete_stale(FLING_NETNS_SCRIPT, CF_NS_PREFIX);
    char line[128];
    int rc = netns(ctx, "create", ns, line, sizeof line);
    if (rc == FL_OK && sscanf(line, "%31s %31s", host, tma_host) != 2) {
        note("%s: %s create %s printed '%s', not \"ADDR_HOST ADDR_NS\"",
             ctx->name, FLING_NETNS_SCRIPT, ns, line);
        netns(ctx, "delete", ns, NULL, 0);
        return FL_EPROTO;
    }
    if (rc == FL_OK)
        netns_guard(FLING_NETNS_SCRIPT, ns);
    return rc;
}

/* Starts the cluster and the job, and waits until every task runs, half
 * on tma (index *tma): FL_OK or an error after saying why. */
static int start(const bench_ctx_t *ctx, cj_cluster_t *c, unsigned par,
                 const char *host, const char *ns, const char *const *hb,
                 const char *tma_host, size_t *tma)
{
    size_t k;
    int rc = cj_start(ctx, c, host, hb, CF_WAIT_MS);
    if (rc == FL_OK)
        rc = cj_add_tm(ctx, c, "tma", par / 2, tma_host, ns, tma);
    if (rc == FL_OK)
        rc = cj_add_tm(ctx, c, "tmb", par, host, NULL, &k);
    if (rc == FL_OK)
        rc = cj_connect(ctx, c);
    uint64_t t0;
    char id[128];
    if (rc == FL_OK)
        rc = cj_submit(ctx, c, par, &t0, id, sizeof id);
    cj_mark_t m[] = {
        {.needle = "(attempt #0) to TaskManager tma"},
        {.needle = "(attempt #0) switched from INITIALIZING to RUNNING."},
    };
    size_t got;
    if (rc == FL_OK)
        rc = cj_watch(ctx, c, m, 2, 1, par, &got);
    if (rc == FL_OK && m[0].count != par / 2) {
        note("%s: %u of the %u tasks went to tma, not %u", ctx->name,
             m[0].count, par, par / 2);
        rc = FL_EPROTO;
    }
    return rc;
}

/* One run; partition: the silent case. FL_OK with *out, or an error after
 * saying why. */
static int one_run(const bench_ctx_t *ctx, unsigned par, bool partition,
                   const cf_setting_t *set, cf_run_t *out)
{
    cj_cluster_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return FL_ENOMEM;
    char ns[16] = "", host[32] = "127.0.0.1", tma_host[32] = "127.0.0.1";
    int rc = FL_OK;
    if (partition) {
        snprintf(ns, sizeof ns, CF_NS_PREFIX "%ld", (long)getpid());
        rc = ns_create(ctx, ns, host, tma_host);
        if (rc != FL_OK) {
            free(c);
            return rc;
        }
    }
    size_t tma = 0;
    rc = start(ctx, c, par, host, partition ? ns : NULL, set->opts, tma_host,
               &tma);
    uint64_t t_cut = 0;
    if (rc == FL_OK) {
        /* At once: a kill may lose the reply of a SubmitTask, which the
         * JobMaster must survive with its single restart. */
        t_cut = realtime_ns();
        if (partition) {
            rc = netns(ctx, "down", ns, NULL, 0);
        } else {
            kill(c->tms[tma], SIGKILL);
            waitpid(c->tms[tma], NULL, 0);
            c->tms[tma] = -1;
        }
    }
    cj_mark_t m[M_RUNNING1 + CF_ATTEMPTS] = {
        [M_FAILED] = {.needle = "(attempt #0) switched from RUNNING to "
                                "FAILED"},
        [M_LOST] = {.needle = "app: TaskManager tma lost: "},
        [M_RESTARTING] = {.needle = "app: Restarting job idle ("},
    };
    static char running[CF_ATTEMPTS][64];
    for (size_t a = 0; a < CF_ATTEMPTS; a++) {
        snprintf(running[a], sizeof running[a],
                 "(attempt #%zu) switched from INITIALIZING to RUNNING.",
                 a + 1);
        m[M_RUNNING1 + a].needle = running[a];
    }
    size_t got = 0;
    if (rc == FL_OK)
        rc = cj_watch(ctx, c, m, M_RUNNING1 + CF_ATTEMPTS, M_RUNNING1, par,
                      &got);
    if (rc == FL_OK) {
        out->detect = cj_ms(t_cut, m[M_FAILED].first_ns);
        out->restarting = cj_ms(t_cut, m[M_RESTARTING].first_ns);
        out->running = cj_ms(t_cut, m[got].last_ns);
        out->restarts = m[M_RESTARTING].count;
        /* "... in 1000 ms (restart 1 of 1): ...": the last restart fired
         * its delay after its record. */
        const char *in = strstr(m[M_RESTARTING].first_rest, ") in ");
        double delay = in != NULL ? atof(in + 5) : 0;
        out->redeploy =
            out->running - cj_ms(t_cut, m[M_RESTARTING].last_ns) - delay;
        note("%s: %s: tma lost: %s", ctx->name,
             partition ? "partition" : "kill", m[M_LOST].first_rest);
    }
    cj_stop(ctx, c, rc != FL_OK);
    free(c);
    if (partition) {
        netns(ctx, "delete", ns, NULL, 0);
        netns_guard(FLING_NETNS_SCRIPT, NULL);
    }
    return rc;
}

int cluster_failover_run(const bench_ctx_t *ctx, unsigned par, unsigned runs,
                         bool partition, bool flink)
{
    if (runs == 0 || runs > CLUSTER_FAILOVER_MAX_RUNS || par < 2)
        return FL_EINVAL;
    /* [case][figure][run]: case 0 kill, 1 partition. */
    static double v[2][5][CLUSTER_FAILOVER_MAX_RUNS];
    static const char *const cases[] = {"kill", "partition"};
    unsigned ncases = partition ? 2 : 1;
    for (unsigned r = 0; r < runs; r++)
        for (unsigned k = 0; k < ncases; k++) {
            cf_run_t f;
            int rc = one_run(ctx, par, k == 1, &fast_hb, &f);
            if (rc != FL_OK)
                return rc;
            note("%s: %s run %u: detected %.1f, restarting %.1f, running "
                 "%.1f ms (redeploy %.1f ms, %.0f restart(s))",
                 ctx->name, cases[k], r + 1, f.detect, f.restarting, f.running,
                 f.redeploy, f.restarts);
            v[k][0][r] = f.running;
            v[k][1][r] = f.detect;
            v[k][2][r] = f.restarting;
            v[k][3][r] = f.redeploy;
            v[k][4][r] = f.restarts;
        }
    static const char *const names[] = {"running_ms", "detect_ms",
                                        "restarting_ms", "redeploy_ms"};
    for (unsigned k = 0; k < ncases; k++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "%s_", cases[k]);
        for (size_t i = 0; i < 4; i++)
            emit_stat(ctx, prefix, names[i], v[k][i], runs, 1, "ms", i == 0);
        emit_stat(ctx, prefix, "restarts", v[k][4], runs, 0, "restarts", false);
    }
    for (unsigned k = 0; flink && k < ncases; k++) {
        cf_run_t f;
        int rc = one_run(ctx, par, k == 1, &flink_hb, &f);
        if (rc != FL_OK)
            return rc;
        char prefix[32];
        snprintf(prefix, sizeof prefix, "flink_%s_", cases[k]);
        emit_stat(ctx, prefix, "running_ms", &f.running, 1, 1, "ms", false);
        emit_stat(ctx, prefix, "detect_ms", &f.detect, 1, 1, "ms", false);
    }
    return FL_OK;
}

int bench_cluster_failover(const bench_ctx_t *ctx)
{
    return cluster_failover_run(ctx, CF_PAR, CF_RUNS, true, true);
}

#else

int cluster_failover_run(const bench_ctx_t *ctx, unsigned par, unsigned runs,
                         bool partition, bool flink)
{
    note("%s: built without fling-jobmanager and fling-taskmanager "
         "(FLING_BUILD_APPS=OFF)",
         ctx->name);
    return FL_ENOTSUP;
}

int bench_cluster_failover(const bench_ctx_t *ctx)
{
    return cluster_failover_run(ctx, 0, 0, false, false);
}

#endif
