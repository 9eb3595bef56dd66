/*
 * cluster_util.c - the helpers of the cluster.* benchmarks that run the
 * cluster's programs (cluster_util.h).
 */
#include "cluster_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The contracts are in cluster_util.h. */

/* Reads the next line of r into line (without '\n') before deadline_ns:
 * true, or false at EOF, an error or the deadline. */
bool next_line(line_reader_t *r, char *line, size_t cap, uint64_t deadline_ns)
{
    for (;;) {
        char *nl = memchr(r->buf, '\n', r->len);
        if (nl != NULL) {
            size_t n = (size_t)(nl - r->buf);
            size_t k = n < cap - 1 ? n : cap - 1;
            memcpy(line, r->buf, k);
            line[k] = '\0';
            r->len -= n + 1;
            memmove(r->buf, nl + 1, r->len);
            return true;
        }
        if (r->len == sizeof r->buf) /* a line too long: drop it */
            r->len = 0;
        uint64_t now = fl_clock_now_ns();
        if (now >= deadline_ns)
            return false;
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        int wait_ms = (int)((deadline_ns - now) / 1000000u) + 1;
        int pr = poll(&p, 1, wait_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return false;
        ssize_t got = read(r->fd, r->buf + r->len, sizeof r->buf - r->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        r->len += (size_t)got;
    }
}

/* The time of a log record, "2026-12-05T02:51:58.461481Z ...", in ns
 * since the epoch (CLOCK_REALTIME's), or 0. */
uint64_t record_ns(const char *line)
{
    struct tm tm = {0};
    unsigned us = 0;
    if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%6uZ", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &us) != 7)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    return (uint64_t)t * 1000000000u + (uint64_t)us * 1000u;
}

uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double ms_since(uint64_t t0)
{
    return (double)(fl_clock_now_ns() - t0) / 1e6;
}

/* Spawns prog with argv, stdout on out_fd and stderr on err_fd, the child
 * killed when this thread ends. fork, not posix_spawn: the child must set
 * PR_SET_PDEATHSIG before exec; only async-signal-safe calls in it. */
int spawn_proc(const char *prog, char *const argv[], int out_fd, int err_fd,
               pid_t *pid)
{
    int ep[2]; /* the child's errno if exec fails; EOF if it succeeds */
    if (pipe2(ep, O_CLOEXEC) != 0)
        return errno;
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        int e = errno;
        close(ep[0]);
        close(ep[1]);
        return e;
    }
    if (child == 0) {
        int e = 0;
        /* Our parent may have died before prctl: then nothing kills us. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        int in = open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0 || dup2(out_fd, 1) < 0 ||
            dup2(err_fd, 2) < 0 || fcntl(1, F_SETFD, 0) < 0 ||
            fcntl(2, F_SETFD, 0) < 0)
            e = errno;
        else
            execvp(prog, argv);
        e = e != 0 ? e : errno;
        (void)!write(ep[1], &e, sizeof e);
        _exit(127);
    }
    close(ep[1]);
    int e = 0;
    ssize_t got;
    while ((got = read(ep[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;
    close(ep[0]);
    if (got == (ssize_t)sizeof e) {
        waitpid(child, NULL, 0);
        return e;
    }
    *pid = child;
    return 0;
}

/* The namespace the signal handler deletes ("" when none), and the
 * script. Written only while the handler is not installed. */
static char cleanup_ns[32];
static const char *cleanup_script;
static const int cleanup_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define N_CLEANUP (sizeof cleanup_signals / sizeof cleanup_signals[0])

/* Deletes cleanup_ns (async-signal-safe calls only), then lets sig end
 * the process; the children die with it (PR_SET_PDEATHSIG). */
static void on_fatal(int sig)
{
    pid_t pid = fork();
    if (pid == 0) {
        char *const argv[] = {(char *)cleanup_script, (char *)"delete",
                              cleanup_ns, NULL};
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 1);
        execv(cleanup_script, argv);
        _exit(127);
    }
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    signal(sig, SIG_DFL);
    raise(sig);
}

void netns_guard(const char *script, const char *ns)
{
    for (size_t i = 0; i < N_CLEANUP; i++)
        signal(cleanup_signals[i], SIG_DFL);
    if (ns == NULL) {
        cleanup_ns[0] = '\0';
        return;
    }
    cleanup_script = script;
    snprintf(cleanup_ns, sizeof cleanup_ns, "%s", ns);
    for (size_t i = 0; i < N_CLEANUP; i++)
        signal(cleanup_signals[i], on_fatal);
}

void kill_all(pid_t *pids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGKILL);
    for (size_t i = 0; i < n; i++)
        if (pids[i] > 0)
            waitpid(pids[i], NULL, 0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median and spread of v (n values) as figures <prefix><name> and, when
 * spread, <prefix><name minus "_ms">_spread_pct. */
void emit_stat(const bench_ctx_t *ctx, const char *prefix, const char *name,
               double *v, size_t n, int decimals, const char *unit, bool spread)
{
    double lo = v[0], hi = v[0];
    for (size_t i = 1; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    double med = median(v, n);
    char m[96];
    snprintf(m, sizeof m, "%s%s", prefix, name);
    emit(ctx, m, med, decimals, unit);
    if (!spread)
        return;
    size_t k = strlen(name);
    if (k > 3 && strcmp(name + k - 3, "_ms") == 0)
        k -= 3;
    snprintf(m, sizeof m, "%s%.*s_spread_pct", prefix, (int)k, name);
    emit(ctx, m, med > 0 ? 100 * (hi - lo) / med : 0, 1, "%");
}
