/*
 * netns_fixture.h - a network namespace for a test of tests/apps/cluster/
 * (scripts/netns-pair.sh): named flpart<pid>, on a /30 the script finds
 * free on the host, deleted by the teardown and also on the case's alarm
 * (SIGABRT, which rings before ctest's SIGKILL), SIGTERM, SIGINT and
 * SIGHUP; namespaces of runs that are gone are deleted at the start.
 * Include after cluster_fixture.h (its children are killed on a signal).
 * Needs FLING_SOURCE_DIR and CTEST_TIMEOUT_S (the test's ctest TIMEOUT).
 */
#ifndef NETNS_FIXTURE_H
#define NETNS_FIXTURE_H

#include <stdarg.h>
#include <sys/wait.h>

#include "../../../bench/netns_stale.h"
#include "cluster_fixture.h"

#define NETNS_PAIR FLING_SOURCE_DIR "/scripts/netns-pair.sh"
#ifndef CTEST_TIMEOUT_S
#error "CTEST_TIMEOUT_S must be this test's ctest TIMEOUT"
#endif
/* ctest ends a test past its TIMEOUT with SIGKILL, which no cleanup
 * survives: the case's alarm (fl_test_arm: 60 s, 180 s under the
 * sanitizers) is cut to ring 20 s before it. */
#define PART_ALARM_S (CTEST_TIMEOUT_S - 20)

static char ns[32], host[32], ns_addr[32];
static const char *ip_prog;

/* Runs the shell command fmt; asserts it exits 0. */
static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("'%s' failed (status %d)", cmd, st);
}

/* Deletes the namespaces flpart<pid> of runs that are gone. */
static void delete_stale_namespaces(void)
{
    netns_delete_stale(NETNS_PAIR, "flpart");
}

/* The signals that end the test with its namespace in place unless
 * on_fatal deletes it. */
static const int fatal_signals[] = {SIGABRT, SIGTERM, SIGINT, SIGHUP};
#define N_FATAL (sizeof fatal_signals / sizeof fatal_signals[0])

/* The alarm's abort, and a SIGTERM, SIGINT or SIGHUP, skip the teardown:
 * the children are killed and the namespace deleted here
 * (async-signal-safe calls only), then the signal ends the test. */
static void on_fatal(int sig)
{
    for (size_t i = 0; i < CF_MAX_PROCS; i++)
        if (cf_procs[i] != NULL && !cf_procs[i]->reaped)
            kill(cf_procs[i]->pid, SIGKILL);
    pid_t pid = fork();
    if (pid == 0) {
        char *const argv[] = {(char *)NETNS_PAIR, (char *)"delete", ns, NULL};
        execv(NETNS_PAIR, argv);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The case's alarm: fl_test_arm's, cut to PART_ALARM_S. */
static unsigned part_alarm_s(void)
{
    unsigned s = fl_test_timeout_s();
    return s < PART_ALARM_S ? s : PART_ALARM_S;
}

/* Names the namespace flpart<pid> (ns_create makes it), arms the alarm
 * and the cleanup on a fatal signal. */
static int ns_setup(void **state)
{
    fl_test_arm(state);
    alarm(part_alarm_s());
    static const char *const ips[] = {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip",
                                      "/bin/ip"};
    ip_prog = NULL;
    for (size_t i = 0; i < sizeof ips / sizeof ips[0]; i++)
        if (access(ips[i], X_OK) == 0)
            ip_prog = ips[i];
    snprintf(ns, sizeof ns, "flpart%ld", (long)getpid());
    host[0] = ns_addr[0] = '\0';
    for (size_t i = 0; i < N_FATAL; i++)
        signal(fatal_signals[i], on_fatal);
    return 0;
}

/* Fails the case unless it runs as root with iproute2's ip. */
static void need_root(void)
{
    if (geteuid() != 0)
        fail_msg("cluster_partition_test needs root (uid 0, it is %ld) for "
                 "ip netns and veth links; run the suite as root",
                 (long)geteuid());
    if (ip_prog == NULL)
        fail_msg("cluster_partition_test needs iproute2's ip; install "
                 "iproute2");
}

/* Creates the namespace ns on a /30 that netns-pair.sh picks free; its
 * two addresses into host and ns_addr. */
static void ns_create(void)
{
    char cmd[512], line[128] = "";
    snprintf(cmd, sizeof cmd, "%s create %s", NETNS_PAIR, ns);
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        fail_msg("cannot run '%s'", cmd);
    bool got = fgets(line, sizeof line, f) != NULL;
    int st = pclose(f);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || !got ||
        sscanf(line, "%31s %31s", host, ns_addr) != 2)
        fail_msg("'%s' failed (status %d, output '%s')", cmd, st, line);
}

static int ns_teardown(void **state)
{
    for (size_t i = 0; i < N_FATAL; i++)
        signal(fatal_signals[i], SIG_DFL);
    cf_teardown(state);
    if (geteuid() == 0 && ip_prog != NULL) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s delete %s", NETNS_PAIR, ns);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot delete namespace %s\n", ns);
    }
    return 0;
}

/* True while pid runs (a zombie does not). */
static bool runs(pid_t pid)
{
    char path[64], stat[512] = "";
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    bool got = fgets(stat, sizeof stat, f) != NULL;
    fclose(f);
    const char *paren = strrchr(stat, ')');
    return got && paren != NULL && paren[1] == ' ' && paren[2] != 'Z';
}

#endif
