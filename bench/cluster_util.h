/*
 * cluster_util.h - what the cluster.* benchmarks that run the cluster's
 * programs share (cluster_register_bench.c, cluster_deploy_bench.c,
 * cluster_failover_bench.c): spawning and ending processes, reading a
 * program's log line by line, the times of its records, and the medians
 * and spreads of the figures, and a network namespace's cleanup. Every
 * function runs on the caller's thread (the main thread of fling_bench);
 * only netns_guard holds state.
 */
#ifndef FL_BENCH_CLUSTER_UTIL_H
#define FL_BENCH_CLUSTER_UTIL_H

#include "bench.h"
#include "netns_stale.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A stream of log lines (a pipe), read as it comes. Caller memory; fd is
 * the caller's. */
typedef struct line_reader {
    int fd;
    char buf[65536];
    size_t len;
} line_reader_t;

/* next_line reads the next line of r into line (without '\n', cut to cap -
 * 1 bytes) before deadline_ns (fl_clock_now_ns): true, or false at EOF, an
 * error or the deadline. BLOCKS in poll(2). A line longer than r->buf is
 * dropped. */
bool next_line(line_reader_t *r, char *line, size_t cap, uint64_t deadline_ns);

/* record_ns is the time of a log record, "2026-12-05T02:51:58.461481Z
 * ...", in ns since the epoch (CLOCK_REALTIME's), or 0 if line does not
 * start with one. */
uint64_t record_ns(const char *line);

/* realtime_ns is CLOCK_REALTIME now, in ns: the clock of the records. */
uint64_t realtime_ns(void);

/* ms_since is the time since t0 (fl_clock_now_ns), in ms. */
double ms_since(uint64_t t0);

/* spawn_proc starts prog (a path, or a name looked up in PATH) with argv
 * (environ), stdin from /dev/null, stdout on out_fd and stderr on err_fd:
 * 0 with *pid, or an errno (the exec's too). The child gets SIGKILL when
 * the calling thread ends (PR_SET_PDEATHSIG), so a bench killed by any
 * signal, SIGKILL included, leaves no process behind. */
int spawn_proc(const char *prog, char *const argv[], int out_fd, int err_fd,
               pid_t *pid);

/* kill_all sends SIGKILL to each pid > 0 of pids and reaps it. BLOCKS
 * until they are gone. */
void kill_all(pid_t *pids, size_t n);

/* netns_guard makes SIGINT, SIGTERM and SIGHUP delete the network
 * namespace ns (through script, scripts/netns-pair.sh) before they end
 * the process; ns NULL restores their default. Not thread-safe: call it
 * while no such signal is handled. */
void netns_guard(const char *script, const char *ns);

/* median sorts v (n > 0 values) and returns its median. */
double median(double *v, size_t n);

/* emit_stat emits the median of v (n > 0 values, sorted in place) as the
 * figure <prefix><name> and, when spread, (max - min) / median in % as
 * <prefix><name minus a trailing "_ms">_spread_pct. */
void emit_stat(const bench_ctx_t *ctx, const char *prefix, const char *name,
               double *v, size_t n, int decimals, const char *unit,
               bool spread);

#endif /* FL_BENCH_CLUSTER_UTIL_H */
