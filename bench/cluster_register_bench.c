/*
 * cluster_register_bench.c - cluster.register: how long REG_TMS
 * fling-taskmanager processes started at once take to be registered with
 * the ResourceManager of one fling-jobmanager, with the registration's
 * jitter on and off.
 *
 * Every process runs with its defaults, Flink's (registration initial
 * timeout 100 ms, max 30 s, error delay 10 s, refused delay 30 s), on
 * 127.0.0.1; TaskManagers tm0 ... with 2 slots each. The JobManager's log
 * (its stderr, one record a line) is read as it comes: a TaskManager is
 * registered at the time its "Registered TaskManager <id>" record carries
 * (one clock for all, CLOCK_REALTIME; reading the pipe late costs nothing).
 * The TaskManagers' logs go to one temporary file, where their first
 * failures and retries are counted. Every process is then ended with
 * SIGKILL (their shutdown is not what is measured).
 *
 * Two scenarios, each with the jitter on (the default) and off
 * (cluster.registration.jitter=false, prefix "nojitter_"):
 *
 *   JobManager first (REG_RUNS runs): the JobManager on port 0; once its
 *   ResourceManager has started, the TaskManagers are spawned in a loop;
 *   times from just before the first spawn.
 *   JobManager late (prefix "late_", REG_LATE_RUNS runs; as after a
 *   JobManager restart): the TaskManagers first, at a free port where
 *   nothing listens; once each has logged its first failed connect (and
 *   waits the error delay), the JobManager starts on that port; times from
 *   its ResourceManager's start.
 *
 * Figures, medians over the runs: all_ms (the last registration; with
 * all_spread_pct, (max - min) / median), first_ms, tm_p50_ms (the run's
 * median TaskManager), window_ms (last - first), peak_per_100ms (most
 * registrations in any 100 ms), retries (retries the TaskManagers logged,
 * a late run's forced first failure not counted), spawn_ms (the loop of
 * spawns, JobManager first only).
 *
 * The programs' paths are compiled in (bench/CMakeLists.txt: the build's
 * fling-jobmanager and fling-taskmanager).
 */
#include "cluster_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REG_TMS 50
#define REG_RUNS 5
/* Runs of a "late" mode: each waits out the 10 s error delay. */
#define REG_LATE_RUNS 3
/* The window of peak_per_100ms. */
#define REG_PEAK_MS 100
/* How long one run may take before it is called failed. */
#define REG_WAIT_MS 120000
#define REG_LINE 2048

#if defined(FLING_JM_PATH) && defined(FLING_TM_PATH)

/* One run's figures. */
typedef struct reg_run {
    double first_ms, all_ms, tm_p50_ms, spawn_ms, peak;
    unsigned retries;
} reg_run_t;

/* Occurrences of what in the file fd (one a record at most). Reads with
 * pread: the TaskManagers share fd's file offset, so a read through it
 * would skip what they append meanwhile. */
static unsigned count_lines(int fd, const char *what)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0)
        return 0;
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (buf == NULL)
        return 0;
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, buf + got, n - got, (off_t)got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    buf[got] = '\0';
    unsigned count = 0;
    for (const char *p = buf; (p = strstr(p, what)) != NULL; p += strlen(what))
        count++;
    free(buf);
    return count;
}

/* A port free on 127.0.0.1 now, below the ephemeral range (which starts at
 * 32768 by default), or 0: the JobManager of a "late" run binds it after
 * its TaskManagers have started, and they (and every other program on the
 * machine asking for port 0) take their ports from the ephemeral range. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    int port = 0;
    unsigned seed = (unsigned)fl_clock_now_ns();
    for (int i = 0; i < 100 && port == 0; i++) {
        int p = 20000 + (int)(rand_r(&seed) % 12000u);
        struct sockaddr_in a = {.sin_family = AF_INET};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)p);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0)
            port = p;
    }
    close(fd);
    return port;
}

/* The processes and streams of a run. */
typedef struct run_io {
    pid_t jm, tms[REG_TMS];
    int jo[2], je[2], devnull, tmlog;
    line_reader_t r;
    char jit[48];
    char port[48]; /* "jobmanager.rpc.port=<n>" */
    uint64_t deadline;
    uint64_t rm_started; /* the record's time (record_ns) */
} run_io_t;

/* Starts fling-jobmanager on io->port and reads up to its ResourceManager's
 * start; its stderr stays in io->r. */
static int start_jm(const bench_ctx_t *ctx, run_io_t *io)
{
    char *argv[] = {"fling-jobmanager",
                    "-D",
                    "jobmanager.rpc.address=127.0.0.1",
                    "-D",
                    io->port,
                    "-D",
                    io->jit,
                    NULL};
    if (pipe(io->jo) != 0 || pipe(io->je) != 0) {
        note("%s: pipe: %s", ctx->name, strerror(errno));
        return FL_ESYSTEM;
    }
    int e = spawn_proc(FLING_JM_PATH, argv, io->jo[1], io->je[1], &io->jm);
    close(io->jo[1]);
    close(io->je[1]);
    io->jo[1] = io->je[1] = -1;
    if (e != 0) {
        io->jm = -1;
        note("%s: cannot start %s: %s", ctx->name, FLING_JM_PATH, strerror(e));
        return FL_ESYSTEM;
    }
    char line[REG_LINE];
    io->r.fd = io->jo[0];
    if (!next_line(&io->r, line, sizeof line, io->deadline) ||
        strncmp(line, "fling.tcp://", 12) != 0) {
        io->r.fd = io->je[0];
        io->r.len = 0;
        if (!next_line(&io->r, line, sizeof line, io->deadline))
            line[0] = '\0';
        note("%s: fling-jobmanager (%s) printed no address; its log: %s",
             ctx->name, io->port, line);
        return FL_ESYSTEM;
    }
    snprintf(io->port, sizeof io->port, "jobmanager.rpc.port=%s",
             strrchr(line, ':') + 1);
    io->r.fd = io->je[0];
    io->r.len = 0;
    for (;;) {
        if (!next_line(&io->r, line, sizeof line, io->deadline)) {
            note("%s: fling-jobmanager's ResourceManager did not start",
                 ctx->name);
            return FL_ESYSTEM;
        }
        if (strstr(line, "app: ResourceManager ") != NULL &&
            strstr(line, " started with leader token ") != NULL) {
            io->rm_started = record_ns(line);
            return FL_OK;
        }
    }
}

/* Spawns the REG_TMS TaskManagers at io->port, stderr into io->tmlog. */
static int start_tms(const bench_ctx_t *ctx, run_io_t *io)
{
    for (size_t i = 0; i < REG_TMS; i++) {
        char id[48];
        snprintf(id, sizeof id, "taskmanager.resource-id=tm%zu", i);
        char *argv[] = {"fling-taskmanager",
                        "-D",
                        "jobmanager.rpc.address=127.0.0.1",
                        "-D",
                        io->port,
                        "-D",
                        "taskmanager.host=127.0.0.1",
                        "-D",
                        id,
                        "-D",
                        "taskmanager.numberOfTaskSlots=2",
                        "-D",
                        io->jit,
                        NULL};
        int e = spawn_proc(FLING_TM_PATH, argv, io->devnull, io->tmlog,
                           &io->tms[i]);
        if (e != 0) {
            io->tms[i] = -1;
            note("%s: cannot start %s: %s", ctx->name, FLING_TM_PATH,
                 strerror(e));
            return FL_ESYSTEM;
        }
    }
    return FL_OK;
}

/* Reads the JobManager's log until every TaskManager's "Registered
 * TaskManager tm<i>" line has come: at[] the times of those records since
 * t0 (realtime_ns), in ms, in the order they came. */
static int wait_registered(const bench_ctx_t *ctx, run_io_t *io, uint64_t t0,
                           double *at)
{
    static const char key[] = "app: Registered TaskManager tm";
    bool seen[REG_TMS] = {false};
    size_t n = 0;
    char line[REG_LINE];
    while (n < REG_TMS) {
        if (!next_line(&io->r, line, sizeof line, io->deadline)) {
            note("%s: %zu of %d TaskManagers registered within %d ms",
                 ctx->name, n, REG_TMS, REG_WAIT_MS);
            return FL_ETIMEDOUT;
        }
        const char *p = strstr(line, key);
        if (p == NULL)
            continue;
        unsigned long k = strtoul(p + strlen(key), NULL, 10);
        uint64_t ns = record_ns(line);
        if (ns == 0) {
            note("%s: a record without its time: %s", ctx->name, line);
            return FL_EDECODE;
        }
        if (k < REG_TMS && !seen[k]) {
            seen[k] = true;
            at[n++] = ((double)ns - (double)t0) / 1e6;
        }
    }
    return FL_OK;
}

/* The most registrations within any REG_PEAK_MS (at[] ascending). */
static double peak_of(const double *at)
{
    size_t best = 0;
    for (size_t i = 0, j = 0; i < REG_TMS; i++) {
        while (at[i] - at[j] >= REG_PEAK_MS)
            j++;
        if (i - j + 1 > best)
            best = i - j + 1;
    }
    return (double)best;
}

/*
 * One run: late = false: the JobManager first, then the TaskManagers all
 * at once, t0 just before the first spawn. late = true: the TaskManagers
 * first, at a port where nothing listens yet; once each has failed its
 * first connect (and waits the error delay), the JobManager starts there,
 * t0 when its ResourceManager has started. FL_OK and *out, or an error
 * after saying why.
 */
static int one_run(const bench_ctx_t *ctx, bool jitter, bool late,
                   reg_run_t *out)
{
    run_io_t *io = calloc(1, sizeof *io);
    if (io == NULL)
        return FL_ENOMEM;
    int rc = FL_ESYSTEM;
    io->jm = -1;
    for (size_t i = 0; i < REG_TMS; i++)
        io->tms[i] = -1;
    io->jo[0] = io->jo[1] = io->je[0] = io->je[1] = -1;
    snprintf(io->jit, sizeof io->jit, "cluster.registration.jitter=%s",
             jitter ? "true" : "false");
    snprintf(io->port, sizeof io->port, "jobmanager.rpc.port=%d",
             late ? free_port() : 0);
    io->deadline = fl_clock_now_ns() + (uint64_t)REG_WAIT_MS * 1000000u;
    char tmlog_path[] = "/tmp/fling-bench-register.XXXXXX";
    io->devnull = open("/dev/null", O_WRONLY);
    io->tmlog = mkstemp(tmlog_path);
    if (io->devnull < 0 || io->tmlog < 0) {
        note("%s: cannot set up a run: %s", ctx->name, strerror(errno));
        goto out;
    }
    unlink(tmlog_path);
    fcntl(io->tmlog, F_SETFL, O_APPEND);
    double at[REG_TMS];
    uint64_t t0;
    if (!late) {
        if ((rc = start_jm(ctx, io)) != FL_OK)
            goto out;
        t0 = realtime_ns();
        uint64_t s0 = fl_clock_now_ns();
        if ((rc = start_tms(ctx, io)) != FL_OK)
            goto out;
        out->spawn_ms = ms_since(s0);
    } else {
        uint64_t s0 = fl_clock_now_ns();
        if ((rc = start_tms(ctx, io)) != FL_OK)
            goto out;
        out->spawn_ms = ms_since(s0);
        /* A bench may poll: each TaskManager's first failure is a line in
         * the file. */
        while (count_lines(io->tmlog, " attempt 1 could not connect: ") <
               REG_TMS) {
            if (fl_clock_now_ns() >= io->deadline) {
                note("%s: the TaskManagers did not all fail to connect",
                     ctx->name);
                rc = FL_ETIMEDOUT;
                goto out;
            }
            usleep(5000);
        }
        if ((rc = start_jm(ctx, io)) != FL_OK)
            goto out;
        t0 = io->rm_started;
    }
    if ((rc = wait_registered(ctx, io, t0, at)) != FL_OK)
        goto out;
    out->first_ms = at[0];
    out->all_ms = at[REG_TMS - 1];
    out->peak = peak_of(at);
    double sorted[REG_TMS];
    memcpy(sorted, at, sizeof sorted);
    out->tm_p50_ms = median(sorted, REG_TMS);
    kill_all(io->tms, REG_TMS);
    /* Each retry is one record: "... starts in", "starts now", "connects
     * again in"; a late run's first failure is not one of those counted
     * against it (every TaskManager had it by design). */
    out->retries = count_lines(io->tmlog, "; attempt ") - (late ? REG_TMS : 0);
    rc = FL_OK;
out:
    kill_all(io->tms, REG_TMS);
    kill_all(&io->jm, 1);
    int fds[] = {io->jo[0], io->jo[1],   io->je[0],
                 io->je[1], io->devnull, io->tmlog};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(io);
    return rc;
}

/* runs runs in one mode; emits its figures with the prefix. */
static int mode(const bench_ctx_t *ctx, bool jitter, bool late, int runs,
                const char *prefix)
{
    double all[REG_RUNS], first[REG_RUNS], p50[REG_RUNS], spawn_ms[REG_RUNS],
        retries[REG_RUNS], peak[REG_RUNS], window[REG_RUNS];
    for (int i = 0; i < runs; i++) {
        reg_run_t run = {0};
        int rc = one_run(ctx, jitter, late, &run);
        if (rc != FL_OK)
            return rc;
        note("%s: %s, jitter %s, run %d: first %.1f ms, median %.1f ms, "
             "all %.1f ms, peak %.0f per %d ms, %u retries",
             ctx->name, late ? "JobManager late" : "JobManager first",
             jitter ? "on" : "off", i + 1, run.first_ms, run.tm_p50_ms,
             run.all_ms, run.peak, REG_PEAK_MS, run.retries);
        all[i] = run.all_ms;
        first[i] = run.first_ms;
        p50[i] = run.tm_p50_ms;
        spawn_ms[i] = run.spawn_ms;
        retries[i] = run.retries;
        peak[i] = run.peak;
        window[i] = run.all_ms - run.first_ms;
    }
    size_t n = (size_t)runs;
    emit_stat(ctx, prefix, "all_ms", all, n, 1, "ms", true);
    emit_stat(ctx, prefix, "first_ms", first, n, 1, "ms", false);
    emit_stat(ctx, prefix, "tm_p50_ms", p50, n, 1, "ms", false);
    emit_stat(ctx, prefix, "window_ms", window, n, 1, "ms", false);
    emit_stat(ctx, prefix, "peak_per_100ms", peak, n, 0, "registrations",
              false);
    emit_stat(ctx, prefix, "retries", retries, n, 0, "retries", false);
    if (!late)
        emit_stat(ctx, prefix, "spawn_ms", spawn_ms, n, 1, "ms", false);
    return FL_OK;
}

int bench_cluster_register(const bench_ctx_t *ctx)
{
    int rc = mode(ctx, true, false, REG_RUNS, "");
    if (rc == FL_OK)
        rc = mode(ctx, false, false, REG_RUNS, "nojitter_");
    if (rc == FL_OK)
        rc = mode(ctx, true, true, REG_LATE_RUNS, "late_");
    if (rc == FL_OK)
        rc = mode(ctx, false, true, REG_LATE_RUNS, "late_nojitter_");
    return rc;
}

#else

int bench_cluster_register(const bench_ctx_t *ctx)
{
    note("%s: built without fling-jobmanager and fling-taskmanager "
         "(FLING_BUILD_APPS=OFF)",
         ctx->name);
    return FL_ENOTSUP;
}

#endif
