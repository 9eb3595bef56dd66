/*
 * cluster_procs.h - a JobManager and TaskManagers started the way the
 * cluster tests need them (loopback, fast heartbeats, 2 slots, resource
 * ids tm1, tm2 ...), with their first log lines checked.
 */
#ifndef CLUSTER_PROCS_H
#define CLUSTER_PROCS_H

#include "cluster_fixture.h"

#define ZERO_TOKEN "00000000000000000000000000000000"

/* Checks a JobManager's first lines (its address on stdout, then the
 * log's) and returns its port. */
static inline int expect_jm_started(cf_proc_t *jm, char *addr, size_t cap)
{
    int bound = cf_read_address(jm, addr, cap);
    cf_expect_app(jm, "fling-jobmanager listening on %s (pid %ld)", addr,
                  (long)jm->pid);
    cf_expect_app(jm,
                  "ResourceManager %s/resourcemanager_1 started with leader "
                  "token " ZERO_TOKEN,
                  addr);
    return bound;
}

/* Starts a JobManager on 127.0.0.1:port ("0": any), with one more -D
 * option after the fast ones unless extra is NULL, and checks its first
 * lines; returns its port. */
static inline int start_jm_opt(cf_proc_t *jm, const char *port,
                               const char *extra)
{
    char p[32];
    snprintf(p, sizeof p, "jobmanager.rpc.port=%s", port);
    const char *args[] = {"-D",    "jobmanager.rpc.address=127.0.0.1",
                          "-D",    p,
                          CF_FAST, extra ? "-D" : NULL,
                          extra,   NULL};
    cf_spawn(jm, "jm", JM_PATH, args);
    char addr[256];
    int bound = expect_jm_started(jm, addr, sizeof addr);
    if (strcmp(port, "0") != 0)
        assert_int_equal(atoi(port), bound);
    return bound;
}

static inline int start_jm(cf_proc_t *jm, const char *port)
{
    return start_jm_opt(jm, port, NULL);
}

/* Starts TaskManager id with 2 slots at the JobManager's port, the -D
 * options keys (NULL terminated, at most 8) after the fast ones; checks
 * its first lines. Returns its port; its scheme ("fling.tcp://", or
 * "fling.ssl://" with TLS on) into scheme (13 bytes) unless NULL. */
static inline int start_tm_scheme(cf_proc_t *tm, const char *id, int jm_port,
                                  const char *const *keys, char *scheme)
{
    static char ports[CF_MAX_PROCS][48], ids[CF_MAX_PROCS][64];
    static unsigned k;
    k = (k + 1) % CF_MAX_PROCS;
    snprintf(ports[k], sizeof ports[k], "jobmanager.rpc.port=%d", jm_port);
    snprintf(ids[k], sizeof ids[k], "taskmanager.resource-id=%s", id);
    const char *args[CF_MAX_ARGS] = {
        "-D", "jobmanager.rpc.address=127.0.0.1", "-D",   ports[k],
        "-D", "taskmanager.host=127.0.0.1",       "-D",   ids[k],
        "-D", "taskmanager.numberOfTaskSlots=2",  CF_FAST};
    size_t n = 0;
    while (args[n] != NULL)
        n++;
    for (size_t i = 0; keys[i] != NULL && i < 8; i++) {
        args[n++] = "-D";
        args[n++] = keys[i];
    }
    args[n] = NULL;
    cf_spawn(tm, id, TM_PATH, args);
    char addr[256];
    int port = cf_read_address(tm, addr, sizeof addr);
    cf_expect_app(tm, "fling-taskmanager listening on %s (pid %ld)", addr,
                  (long)tm->pid);
    cf_expect_app(tm, "TaskExecutor %s/taskexecutor started as %s with 2 slots",
                  addr, id);
    if (scheme != NULL)
        snprintf(scheme, 13, "%.12s", addr);
    return port;
}

/* start_tm_scheme without the scheme. */
static inline int start_tm_only_keys(cf_proc_t *tm, const char *id, int jm_port,
                                     const char *const *keys)
{
    return start_tm_scheme(tm, id, jm_port, keys, NULL);
}

/* start_tm_only_keys with one -D option, extra_key, unless NULL. */
static inline int start_tm_only(cf_proc_t *tm, const char *id, int jm_port,
                                const char *extra_key)
{
    const char *keys[] = {extra_key, NULL};
    return start_tm_only_keys(tm, id, jm_port, keys);
}

/* Starts TaskManager id (with the -D options keys, NULL terminated) and
 * waits until both sides say it registered, at the TaskManager's scheme
 * (fling.ssl:// when keys turn TLS on). */
static inline int start_tm_keys(cf_proc_t *tm, cf_proc_t *jm, const char *id,
                                int jm_port, const char *const *keys)
{
    char scheme[13];
    int port = start_tm_scheme(tm, id, jm_port, keys, scheme);
    cf_expect_app(tm,
                  "Registered at ResourceManager "
                  "%s127.0.0.1:%d/resourcemanager_1 as %s",
                  scheme, jm_port, id);
    cf_expect_app(jm,
                  "Registered TaskManager %s at "
                  "%s127.0.0.1:%d/taskexecutor with 2 slots",
                  id, scheme, port);
    cf_expect_app(jm, "Slot report of TaskManager %s: 2 slots, 2 free", id);
    return port;
}

/* start_tm_keys with one -D option, extra, unless NULL. */
static inline int start_tm_opt(cf_proc_t *tm, cf_proc_t *jm, const char *id,
                               int jm_port, const char *extra)
{
    const char *keys[] = {extra, NULL};
    return start_tm_keys(tm, jm, id, jm_port, keys);
}

static inline int start_tm(cf_proc_t *tm, cf_proc_t *jm, const char *id,
                           int jm_port)
{
    return start_tm_opt(tm, jm, id, jm_port, NULL);
}

/* The last line of p's stderr, once it has exited. */
static inline void last_stderr_line(cf_proc_t *p, char *line, size_t cap)
{
    char raw[1024];
    line[0] = '\0';
    while (cf_next_line(p, &p->err, raw, sizeof raw))
        memcpy(line, raw, cap < sizeof raw ? cap : sizeof raw);
    line[cap - 1] = '\0';
}

#endif
