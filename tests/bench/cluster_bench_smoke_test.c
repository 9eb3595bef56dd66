/*
 * cluster_bench_smoke_test.c - one small run of cluster.deploy (p=1, one
 * run) and of the kill case of cluster.failover (p=2, one run), through
 * the benchmarks' own code (bench/cluster_deploy_bench.c,
 * cluster_failover_bench.c), with this file as their runner: note() to
 * stderr, emit() into a buffer. Asserts that each ran and printed its
 * figures in order, well-formed, in the order of the events they time;
 * never how fast. And that a bench ended by SIGTERM mid-run leaves none of
 * its processes running.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_CAPTURE_OWN_NOTE
#include "bench_capture.h"
#include "netns_stale.h"

/* In the bench forked by test_sigterm_leaves_no_process: the pipe that
 * note() tells, by one byte, that the cluster runs, after which it waits
 * for the signal; -1 elsewhere. */
static int hold_fd = -1;
/* The note that holds it (its case's "tma lost"). */
static const char *hold_on;
/* The forked bench while it may run, for the teardown; else 0. */
static pid_t held;

void note(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fling_bench: %s\n", msg);
    /* After the restart, before cj_stop: the cluster runs. */
    if (hold_fd >= 0 && strstr(msg, hold_on) != NULL) {
        (void)!write(hold_fd, "r", 1);
        for (;;)
            pause();
    }
}

/* One decimal (a time, a spread) or none (a count), as emit() writes it. */
static double take1(const char **p, const char *name, const char *unit)
{
    return take(p, name, unit, strcmp(unit, "restarts") == 0 ? 0 : 1);
}

static void test_deploy_p1(void **state)
{
    (void)state;
    reset_out();
    bench_ctx_t ctx = {.name = "cluster.deploy"};
    static const unsigned pars[] = {1};
    assert_fl_ok(cluster_deploy_run(&ctx, pars, 1, 1));
    const char *p = out;
    double all = take1(&p, "cluster.deploy.p1_all_running_ms", "ms");
    /* One run: no spread. */
    assert_true(take1(&p, "cluster.deploy.p1_all_running_spread_pct", "%") ==
                0);
    double received = take1(&p, "cluster.deploy.p1_received_ms", "ms");
    double requested = take1(&p, "cluster.deploy.p1_slots_requested_ms", "ms");
    double deploying = take1(&p, "cluster.deploy.p1_deploying_ms", "ms");
    double first = take1(&p, "cluster.deploy.p1_first_running_ms", "ms");
    assert_string_equal("", p);
    /* The events in their order; the clock is CLOCK_REALTIME, so a step
     * of it could break this, never a slow machine. */
    assert_true(0 <= received && received <= requested);
    assert_true(requested <= deploying && deploying <= first);
    assert_true(first == all && all > 0);
}

static void test_failover_kill_p2(void **state)
{
    (void)state;
    reset_out();
    bench_ctx_t ctx = {.name = "cluster.failover"};
    assert_fl_ok(cluster_failover_run(&ctx, 2, 1, false, false));
    const char *p = out;
    double running = take1(&p, "cluster.failover.kill_running_ms", "ms");
    assert_true(take1(&p, "cluster.failover.kill_running_spread_pct", "%") ==
                0);
    double detect = take1(&p, "cluster.failover.kill_detect_ms", "ms");
    double restarting = take1(&p, "cluster.failover.kill_restarting_ms", "ms");
    double redeploy = take1(&p, "cluster.failover.kill_redeploy_ms", "ms");
    double restarts = take1(&p, "cluster.failover.kill_restarts", "restarts");
    assert_string_equal("", p);
    assert_true(0 < detect && detect <= restarting);
    /* A restart waits its fixed delay, 1000 ms. */
    assert_true(restarting + 1000 <= running);
    assert_true(0 < redeploy && redeploy < running);
    /* redeploy = running - the last restart's record - 1000, the first
     * one's when there was one, each figure rounded to 0.1. */
    double d = redeploy - (running - restarting - 1000.0);
    assert_true(d < 0.2);
    assert_true(restarts >= 1 && restarts <= 10);
    if (restarts == 1)
        assert_true(-0.2 < d);
}

/* The pids whose parent is parent, into pids (at most cap), in /proc's
 * order: how many. */
static size_t children(pid_t parent, pid_t *pids, size_t cap)
{
    size_t n = 0;
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < cap) {
        char path[300], stat[512] = "";
        long pid = atol(e->d_name), ppid = 0;
        if (pid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        bool got = fgets(stat, sizeof stat, f) != NULL;
        fclose(f);
        const char *paren = strrchr(stat, ')');
        if (got && paren != NULL && sscanf(paren + 1, " %*c %ld", &ppid) == 1 &&
            ppid == (long)parent)
            pids[n++] = (pid_t)pid;
    }
    closedir(d);
    return n;
}

/* Runs one case of cluster.failover (partition: the silent one) in a
 * child of this process, made a subreaper, and sends it SIGTERM once the
 * job ran again: its nprocs processes must end with it within 30 s, and
 * its namespace flb<pid> must be gone. */
static void sigterm_mid_run(bool partition, size_t nprocs)
{
    assert_int_equal(0, prctl(PR_SET_CHILD_SUBREAPER, 1));
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    assert_int_equal(0, sigprocmask(SIG_BLOCK, &chld, &old));
    int p[2];
    assert_int_equal(0, pipe(p));
    pid_t bench = fork();
    assert_true(bench >= 0);
    if (bench == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        close(p[0]);
        hold_fd = p[1];
        hold_on = partition ? ": partition: tma lost: " : ": kill: tma lost: ";
        bench_ctx_t ctx = {.name = "cluster.failover"};
        int rc = cluster_failover_run(&ctx, 2, 1, partition, false);
        note("the bench ended (%s) before it was held", fl_strerror(rc));
        _exit(3);
    }
    held = bench;
    close(p[1]);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    assert_int_equal(1, poll(&pf, 1, 100000));
    char b = 0;
    assert_int_equal(1, read(p[0], &b, 1));
    close(p[0]);
    char ns[32];
    snprintf(ns, sizeof ns, "flb%ld", (long)bench);
    assert_int_equal(partition ? 1 : 0, netns_listed(ns));
    /* The bench's processes, before the signal. */
    pid_t before[8], gone[8];
    assert_int_equal(nprocs, children(bench, before, 8));
    assert_int_equal(0, kill(bench, SIGTERM));
    int st = 0;
    assert_int_equal(bench, waitpid(bench, &st, 0));
    held = 0;
    assert_true(WIFSIGNALED(st));
    assert_int_equal(SIGTERM, WTERMSIG(st));
    /* Its orphans are ours now: reap them as they end. */
    size_t n = 0;
    struct timespec bound = {.tv_sec = 30};
    for (;;) {
        pid_t r = waitpid(-1, NULL, WNOHANG);
        if (r > 0 && n < 8) {
            gone[n++] = r;
            continue;
        }
        if (r < 0 && errno == ECHILD)
            break;
        if (r == 0 && sigtimedwait(&chld, NULL, &bound) < 0 &&
            errno == EAGAIN) {
            pid_t left[8];
            size_t k = children(getpid(), left, 8);
            for (size_t i = 0; i < k; i++) {
                kill(left[i], SIGKILL);
                waitpid(left[i], NULL, 0);
            }
            fail_msg("%zu process(es) of the bench still ran 30 s after its "
                     "SIGTERM (first pid %ld)",
                     k, k > 0 ? (long)left[0] : 0L);
        }
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    assert_int_equal(0, prctl(PR_SET_CHILD_SUBREAPER, 0));
    assert_int_equal(nprocs, n);
    for (size_t i = 0; i < nprocs; i++) {
        size_t j = 0;
        while (j < n && gone[j] != before[i])
            j++;
        assert_true(j < n);
    }
    assert_int_equal(0, netns_listed(ns));
}

/* Ends a bench a failed case left held (its processes die with it),
 * then fl_test_disarm. */
static int sigterm_teardown(void **state)
{
    if (held > 0) {
        kill(held, SIGKILL);
        waitpid(held, NULL, 0);
        held = 0;
    }
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    return fl_test_disarm(state);
}

/* The kill case: the JobManager and tmb run (tma was killed and reaped
 * by the bench); without PR_SET_PDEATHSIG they would run on. */
static void test_sigterm_leaves_no_process(void **state)
{
    (void)state;
    sigterm_mid_run(false, 2);
}

/* The partition case (needs root): the JobManager, tma (partitioned, in
 * the namespace) and tmb end, and the bench's handler deletes the
 * namespace. */
static void test_sigterm_in_partition_deletes_namespace(void **state)
{
    (void)state;
    if (geteuid() != 0)
        fail_msg("the partition case needs root (uid 0, it is %ld) for ip "
                 "netns and veth links; run the suite as root",
                 (long)geteuid());
    sigterm_mid_run(true, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigterm_leaves_no_process,
                                        fl_test_arm, sigterm_teardown),
        cmocka_unit_test_setup_teardown(
            test_sigterm_in_partition_deletes_namespace, fl_test_arm,
            sigterm_teardown),
        FL_TEST(test_deploy_p1),
        FL_TEST(test_failover_kill_p2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
