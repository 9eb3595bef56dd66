/*
 * cluster_jobs.c - the cluster of the job benchmarks: processes, the
 * Dispatcher's client, the job, the watch of the JobManager's log
 * (cluster_jobs.h).
 */
#include "cluster_jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_types.pb-c.h"
#include "dispatcher.pb-c.h"

#define CJ_LINE 2048
/* One RPC of the client. */
#define CJ_CALL_MS 10000

#if defined(FLING_JM_PATH) && defined(FLING_TM_PATH) && defined(FLING_IDLE_UDF)

/* The contracts are in cluster_jobs.h. */

/* argv = prefix, then "-D" opt for each of the cluster's opts, then NULL;
 * the caller frees argv (not the strings). NULL when out of memory. */
static char **with_opts(const cj_cluster_t *c, char *const *prefix,
                        size_t nprefix)
{
    size_t nopts = 0;
    while (c->opts != NULL && c->opts[nopts] != NULL)
        nopts++;
    char **argv = calloc(nprefix + 2 * nopts + 1, sizeof *argv);
    if (argv == NULL)
        return NULL;
    memcpy(argv, prefix, nprefix * sizeof *argv);
    for (size_t i = 0; i < nopts; i++) {
        argv[nprefix + 2 * i] = "-D";
        argv[nprefix + 2 * i + 1] = (char *)c->opts[i];
    }
    return argv;
}

/* Reads the JobManager's next line before the deadline, and copies it to
 * the run's jm.log: true, or false at the deadline or the log's end. */
static bool read_line(cj_cluster_t *c, char *line, size_t cap,
                      uint64_t deadline)
{
    if (!next_line(&c->r, line, cap, deadline))
        return false;
    if (c->jm_copy != NULL)
        fprintf(c->jm_copy, "%s\n", line);
    return true;
}

/* Reads the JobManager's log until a record containing needle (and, unless
 * NULL, needle2 after it): FL_OK with the record in line, or FL_ETIMEDOUT
 * after saying what did not come. */
static int wait_record(const bench_ctx_t *ctx, cj_cluster_t *c,
                       const char *needle, const char *needle2, char *line,
                       size_t cap)
{
    for (;;) {
        if (!read_line(c, line, cap, c->deadline)) {
            note("%s: fling-jobmanager did not log \"%s%s\" in time", ctx->name,
                 needle, needle2 != NULL ? needle2 : "");
            return FL_ETIMEDOUT;
        }
        const char *p = strstr(line, needle);
        if (p != NULL && (needle2 == NULL || strstr(p, needle2) != NULL))
            return FL_OK;
    }
}

int cj_start(const bench_ctx_t *ctx, cj_cluster_t *c, const char *host,
             const char *const *opts, unsigned wait_ms)
{
    c->jm = -1;
    for (size_t i = 0; i < CJ_MAX_TMS; i++)
        c->tms[i] = -1;
    c->jm_err = c->tmlog = -1;
    c->opts = opts;
    snprintf(c->host, sizeof c->host, "%s", host);
    c->deadline = fl_clock_now_ns() + (uint64_t)wait_ms * 1000000u;
    snprintf(c->dir, sizeof c->dir, "/tmp/fling-bench-jobs.XXXXXX");
    if (mkdtemp(c->dir) == NULL) {
        c->dir[0] = '\0';
        note("%s: cannot make a scratch folder in /tmp: %s", ctx->name,
             strerror(errno));
        return FL_ESYSTEM;
    }
    char path[96];
    snprintf(path, sizeof path, "%s/tm.log", c->dir);
    c->tmlog = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    snprintf(path, sizeof path, "%s/jm.log", c->dir);
    c->jm_copy = fopen(path, "w");
    if (c->tmlog < 0 || c->jm_copy == NULL) {
        note("%s: cannot create the logs in %s: %s", ctx->name, c->dir,
             strerror(errno));
        return FL_ESYSTEM;
    }
    char addr[96];
    snprintf(addr, sizeof addr, "jobmanager.rpc.address=%s", host);
    char *prefix[] = {"fling-jobmanager", "-D", addr, "-D",
                      "jobmanager.rpc.port=0"};
    char **argv = with_opts(c, prefix, 5);
    int p[2];
    if (argv == NULL || pipe(p) != 0) {
        free(argv);
        note("%s: cannot start fling-jobmanager: %s", ctx->name,
             strerror(errno));
        return FL_ESYSTEM;
    }
    int devnull = open("/dev/null", O_WRONLY);
    int e = spawn_proc(FLING_JM_PATH, argv, devnull, p[1], &c->jm);
    free(argv);
    close(p[1]);
    if (devnull >= 0)
        close(devnull);
    c->jm_err = c->r.fd = p[0];
    if (e != 0) {
        c->jm = -1;
        note("%s: cannot start %s: %s", ctx->name, FLING_JM_PATH, strerror(e));
        return FL_ESYSTEM;
    }
    char line[CJ_LINE];
    int rc = wait_record(ctx, c, "app: fling-jobmanager listening on ", NULL,
                         line, sizeof line);
    if (rc != FL_OK)
        return rc;
    const char *colon = strrchr(strstr(line, "fling.tcp://") + 12, ':');
    c->port = colon != NULL ? atoi(colon + 1) : 0;
    if (c->port <= 0) {
        note("%s: no port in fling-jobmanager's record: %s", ctx->name, line);
        return FL_EDECODE;
    }
    return wait_record(ctx, c, "app: ResourceManager ",
                       " started with leader token ", line, sizeof line);
}

int cj_add_tm(const bench_ctx_t *ctx, cj_cluster_t *c, const char *id,
              unsigned slots, const char *tm_host, const char *netns,
              size_t *index)
{
    if (c->ntms == CJ_MAX_TMS) {
        note("%s: more than %d TaskManagers", ctx->name, CJ_MAX_TMS);
        return FL_ELIMIT;
    }
    char addr[96], port[48], host[96], rid[64], nslots[64];
    snprintf(addr, sizeof addr, "jobmanager.rpc.address=%s", c->host);
    snprintf(port, sizeof port, "jobmanager.rpc.port=%d", c->port);
    snprintf(host, sizeof host, "taskmanager.host=%s", tm_host);
    snprintf(rid, sizeof rid, "taskmanager.resource-id=%s", id);
    snprintf(nslots, sizeof nslots, "taskmanager.numberOfTaskSlots=%u", slots);
    char *prefix[] = {"ip", "netns", "exec", (char *)netns, FLING_TM_PATH,
                      "-D", addr,    "-D",   port,          "-D",
                      host, "-D",    rid,    "-D",          nslots};
    size_t skip = netns != NULL ? 0 : 4;
    char **argv =
        with_opts(c, prefix + skip, sizeof prefix / sizeof prefix[0] - skip);
    if (argv == NULL)
        return FL_ENOMEM;
    size_t k = c->ntms;
    int e = spawn_proc(argv[0], argv, c->tmlog, c->tmlog, &c->tms[k]);
    free(argv);
    if (e != 0) {
        c->tms[k] = -1;
        note("%s: cannot start TaskManager %s: %s", ctx->name, id, strerror(e));
        return FL_ESYSTEM;
    }
    snprintf(c->tm_ids[k], sizeof c->tm_ids[k], "%s", id);
    c->ntms++;
    *index = k;
    char needle[96], line[CJ_LINE];
    snprintf(needle, sizeof needle, "app: Slot report of TaskManager %s: ", id);
    return wait_record(ctx, c, needle, NULL, line, sizeof line);
}

/* Connects svc to address (token NULL: unfenced) within CJ_CALL_MS: the
 * gateway, or NULL after saying why. */
static fl_rpc_gateway_t *connect_to(const bench_ctx_t *ctx,
                                    fl_rpc_service_t *svc, const char *address,
                                    const ProtobufCServiceDescriptor *desc,
                                    const fl_fencing_token_t *token)
{
    fl_future_t *f = NULL;
    int rc = fl_rpc_connect(svc, address, desc, token, &f);
    if (rc != FL_OK) {
        note("%s: cannot connect to %s: %s", ctx->name, address,
             fl_rpc_last_message());
        return NULL;
    }
    fl_rpc_gateway_t *gw = NULL;
    if (fl_future_wait(f, CJ_CALL_MS) == FL_OK)
        gw = fl_future_take_value(f);
    else
        note("%s: cannot connect to %s: %s", ctx->name, address,
             fl_future_done(f) ? fl_future_message(f) : "no answer");
    fl_future_release(f);
    return gw;
}

int cj_connect(const bench_ctx_t *ctx, cj_cluster_t *c)
{
    int rc = fl_rpc_service_alloc(NULL, &c->svc);
    if (rc != FL_OK)
        return fail(ctx, "fl_rpc_service_alloc", rc);
    char address[160];
    snprintf(address, sizeof address, "fling.tcp://%s:%d/jobmanager", c->host,
             c->port);
    fl_rpc_gateway_t *pg =
        connect_to(ctx, c->svc, address,
                   &fling__cluster__process_gateway__descriptor, NULL);
    if (pg == NULL)
        return FL_ECONNECT;
    unsigned describe = (unsigned)fl_rpc_method_index(
        &fling__cluster__process_gateway__descriptor, "Describe");
    Fling__Cluster__ProcessInfo *info = NULL;
    while (info == NULL) {
        Fling__Cluster__Ack req = FLING__CLUSTER__ACK__INIT;
        rc = fl_rpc_call_sync(pg, describe, &req.base, CJ_CALL_MS,
                              (ProtobufCMessage **)&info);
        if (rc != FL_OK) {
            note("%s: Describe of %s failed: %s", ctx->name, address,
                 fl_rpc_last_message());
            fl_rpc_gateway_free(pg);
            return rc;
        }
        if (info->dispatcher_token.len == 16)
            break;
        protobuf_c_message_free_unpacked(&info->base, NULL);
        info = NULL;
        if (fl_clock_now_ns() >= c->deadline) {
            note("%s: no Dispatcher leads at %s", ctx->name, address);
            fl_rpc_gateway_free(pg);
            return FL_ETIMEDOUT;
        }
        usleep(10000); /* none leads yet: ask again, as the client does */
    }
    fl_fencing_token_t tok;
    memcpy(tok.bytes, info->dispatcher_token.data, 16);
    c->gw = connect_to(ctx, c->svc, info->dispatcher_address,
                       &fling__cluster__dispatcher_gateway__descriptor, &tok);
    protobuf_c_message_free_unpacked(&info->base, NULL);
    fl_rpc_gateway_free(pg);
    return c->gw != NULL ? FL_OK : FL_ECONNECT;
}

int cj_submit(const bench_ctx_t *ctx, cj_cluster_t *c, unsigned parallelism,
              uint64_t *sent_ns, char *id, size_t cap)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"name\": \"idle\", \"parallelism\": 1, \"library\": \"%s\","
             " \"operators\": ["
             "  {\"id\": \"n\", \"type\": \"source.sequence\","
             "   \"params\": {\"from\": \"1\", \"to\": \"1000000000000\"}},"
             "  {\"id\": \"idle\", \"type\": \"filter\","
             "   \"params\": {\"function\": \"idle\"}},"
             "  {\"id\": \"out\", \"type\": \"sink.text\","
             "   \"params\": {\"path\": \"%s/out\"}}]}",
             FLING_IDLE_UDF, c->dir);
    Fling__Cluster__SubmitJobRequest req =
        FLING__CLUSTER__SUBMIT_JOB_REQUEST__INIT;
    req.job_json = json;
    req.parallelism = parallelism;
    req.job_dir = "";
    ProtobufCMessage *reply = NULL;
    unsigned m = (unsigned)fl_rpc_method_index(
        &fling__cluster__dispatcher_gateway__descriptor, "SubmitJob");
    *sent_ns = realtime_ns();
    int rc = fl_rpc_call_sync(c->gw, m, &req.base, CJ_CALL_MS, &reply);
    if (rc != FL_OK) {
        note("%s: SubmitJob failed: %s", ctx->name, fl_rpc_last_message());
        return rc;
    }
    snprintf(id, cap, "%s", ((Fling__Cluster__SubmitJobReply *)reply)->job_id);
    protobuf_c_message_free_unpacked(reply, NULL);
    return FL_OK;
}

/* The first of marks[from..n) with want records, or n. */
static size_t reached(const cj_mark_t *marks, size_t n, size_t from,
                      unsigned want)
{
    while (from < n && marks[from].count < want)
        from++;
    return from;
}

int cj_watch(const bench_ctx_t *ctx, cj_cluster_t *c, cj_mark_t *marks,
             size_t n, size_t until, unsigned want, size_t *got)
{
    char line[CJ_LINE];
    while ((*got = reached(marks, n, until, want)) == n) {
        if (!read_line(c, line, sizeof line, c->deadline)) {
            note("%s: %u of %u records \"%s\" came in time", ctx->name,
                 marks[until].count, want, marks[until].needle);
            return FL_ETIMEDOUT;
        }
        for (size_t i = 0; i < n; i++) {
            const char *at = strstr(line, marks[i].needle);
            if (at == NULL)
                continue;
            uint64_t t = record_ns(line);
            if (marks[i].count++ == 0) {
                marks[i].first_ns = t;
                snprintf(marks[i].first_rest, sizeof marks[i].first_rest, "%s",
                         at + strlen(marks[i].needle));
            }
            marks[i].last_ns = t;
        }
    }
    return FL_OK;
}

void cj_stop(const bench_ctx_t *ctx, cj_cluster_t *c, bool keep_logs)
{
    if (c->gw != NULL)
        fl_rpc_gateway_free(c->gw);
    if (c->svc != NULL)
        fl_rpc_service_free(c->svc);
    c->gw = NULL;
    c->svc = NULL;
    kill_all(c->tms, CJ_MAX_TMS);
    kill_all(&c->jm, 1);
    char line[CJ_LINE];
    if (keep_logs && c->jm_err >= 0) /* what the JobManager wrote last */
        while (read_line(c, line, sizeof line, fl_clock_now_ns() + 1000000000u))
            ;
    if (c->jm_copy != NULL)
        fclose(c->jm_copy);
    c->jm_copy = NULL;
    if (keep_logs && c->dir[0] != '\0') {
        note("%s: the run's logs are kept in %s (jm.log, tm.log)", ctx->name,
             c->dir);
        c->dir[0] = '\0';
    }
    if (c->jm_err >= 0)
        close(c->jm_err);
    if (c->tmlog >= 0)
        close(c->tmlog);
    c->jm_err = c->tmlog = -1;
    if (c->dir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->dir);
        if (system(cmd) != 0)
            note("could not remove %s", c->dir);
        c->dir[0] = '\0';
    }
}

#endif
