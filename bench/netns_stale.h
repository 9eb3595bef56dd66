/*
 * netns_stale.h - whether a network namespace is listed, and deleting
 * the namespaces that runs ended by SIGKILL left behind (a ctest timeout,
 * a kill -9: no handler runs), for the cluster benchmarks
 * (bench/cluster_failover_bench.c) and their tests: the cluster tests
 * (tests/apps/cluster/netns_fixture.h) and the benchmarks' smoke test
 * (tests/bench/cluster_bench_smoke_test.c). Header-only: the tests do not
 * link the benchmarks' code. Uses only the C library and POSIX.
 */
#ifndef FL_BENCH_NETNS_STALE_H
#define FL_BENCH_NETNS_STALE_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* netns_delete_stale deletes, through script (scripts/netns-pair.sh), the
 * namespaces named <prefix><pid> whose pid no longer runs, this process's
 * own aside. Each name must be the namespace's whole name. BLOCKS on
 * `ip netns`; errors are ignored (nothing to delete, or not root). */
static inline void netns_delete_stale(const char *script, const char *prefix)
{
    FILE *f = popen("ip netns list 2>/dev/null", "r");
    if (f == NULL)
        return;
    char line[256];
    size_t n = strlen(prefix);
    while (fgets(line, sizeof line, f) != NULL) {
        char *end = NULL;
        if (strncmp(line, prefix, n) != 0)
            continue;
        long pid = strtol(line + n, &end, 10);
        if (end == line + n || (*end != ' ' && *end != '\n') || pid <= 0 ||
            pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s delete %s%ld >/dev/null 2>&1", script,
                 prefix, pid);
        (void)!system(cmd);
    }
    pclose(f);
}

/* netns_listed says whether `ip netns list` lists the namespace name
 * (its whole name): 1 if it does, 0 if not, -1 if ip could not be run or
 * failed, so that a test of a namespace's absence cannot pass without
 * looking. BLOCKS on `ip netns`. */
static inline int netns_listed(const char *name)
{
    FILE *f = popen("ip netns list 2>/dev/null", "r");
    if (f == NULL)
        return -1;
    char line[256];
    int found = 0;
    size_t n = strlen(name);
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, name, n) == 0 && (line[n] == ' ' || line[n] == '\n'))
            found = 1;
    int st = pclose(f);
    return st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ? -1 : found;
}

#endif /* FL_BENCH_NETNS_STALE_H */
