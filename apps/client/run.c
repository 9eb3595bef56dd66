/*
 * run.c - `fling run [-m HOST:PORT] [-p N] [-d] JOBFILE [--KEY VALUE ...]`:
 * loads and checks a job as `fling plan` does, submits it to the
 * JobManager's Dispatcher, prints its id, and unless -d follows it: each
 * state change of the job and of its tasks on a line of its own, until the
 * job ends. Exit status 0 only if the job FINISHED.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "conn.h"
#include "job/graph.h"
#include "job/job.h"
#include "jobopts.h"

/* How often the job's status is asked for while it runs. */
#define POLL_MS 50

/* How many status requests in a row may fail for a reason that passes
 * (the JobManager busy, the connection made again) before giving up. */
#define POLL_TRIES 5

void fc_run_usage(FILE *f)
{
    fprintf(f,
            "usage: fling run [-m HOST:PORT] [-p N] [-d] JOBFILE "
            "[--KEY VALUE ...]\n"
            "  -p N         default parallelism (1 to %d)\n"
            "  -d           detached: return once the job is submitted\n"
            "  --KEY VALUE  the value of job parameter KEY (also "
            "--KEY=VALUE); --input and --output are made absolute\n",
            FJ_PARALLELISM_MAX);
    fc_where_usage(f);
}

typedef struct opts {
    fc_where_t where;
    fc_job_opts_t job;
    bool detached;
} opts_t;

/* -m, -c, -D and -d. */
static int own_opts(void *ctx, int argc, char **argv, int *i)
{
    opts_t *o = ctx;
    int took = fc_where_take(&o->where, argc, argv, i);
    if (took < 0) {
        fc_run_usage(stderr);
        return FC_EXIT_USAGE;
    }
    if (took > 0)
        return 1;
    if (strcmp(argv[*i], "-d") != 0 && strcmp(argv[*i], "--detached") != 0)
        return 0;
    o->detached = true;
    return 1;
}

/* Loads the job with its arguments and checks that it can run, as
 * `fling plan` would; the job as JSON into *json. */
static int load_job(const opts_t *o, fj_job_t **job, char **json)
{
    int status = fc_job_opts_load(&o->job, job);
    if (status != FC_EXIT_OK)
        return status;
    char err[1024];
    fj_stream_graph_t *sg = NULL;
    fj_job_graph_t *jg = NULL;
    int rc = fj_stream_graph_build(*job, &sg, err, sizeof err);
    if (rc == FL_OK) {
        rc = fj_job_graph_build(sg, NULL, &jg);
        if (rc != FL_OK)
            snprintf(err, sizeof err, "planning job '%s' failed: %s.",
                     fj_job_name(*job), fl_strerror(rc));
        else
            rc = fj_job_check_runnable(jg, err, sizeof err);
    }
    fj_job_graph_free(jg);
    fj_stream_graph_free(sg);
    if (rc == FL_OK) {
        size_t len;
        rc = fj_job_to_json(*job, json, &len);
        if (rc != FL_OK)
            snprintf(err, sizeof err, "out of memory.");
    }
    if (rc != FL_OK) {
        fprintf(stderr, "fling run: %s\n", err);
        return FC_EXIT_FAIL;
    }
    return FC_EXIT_OK;
}

/* What was last printed of a job: its state and its tasks' (-1: none). */
typedef struct seen {
    int job_state;
    int *task_states;
    uint32_t *attempts;
    size_t n_tasks;
} seen_t;

static void seen_free(seen_t *s)
{
    free(s->task_states);
    free(s->attempts);
}

/* Prints what changed since s; FL_ENOMEM when out of memory. */
static int print_changes(seen_t *s, const Fling__Cluster__JobStatusReply *st)
{
    if (st->n_tasks > s->n_tasks) {
        int *t = realloc(s->task_states, st->n_tasks * sizeof *t);
        if (t != NULL)
            s->task_states = t;
        uint32_t *n = realloc(s->attempts, st->n_tasks * sizeof *n);
        if (n != NULL)
            s->attempts = n;
        if (t == NULL || n == NULL)
            return FL_ENOMEM;
        for (size_t i = s->n_tasks; i < st->n_tasks; i++)
            t[i] = -1;
        s->n_tasks = st->n_tasks;
    }
    /* The tasks first: a job ends after its last task. */
    for (size_t i = 0; i < st->n_tasks; i++) {
        const Fling__Cluster__TaskStatus *t = st->tasks[i];
        if (s->task_states[i] == (int)t->state && s->attempts[i] == t->attempt)
            continue;
        s->task_states[i] = (int)t->state;
        s->attempts[i] = t->attempt;
        printf("Task %s (%u/%u)", t->vertex_name, t->subtask + 1,
               t->parallelism);
        if (t->attempt > 0)
            printf(" attempt %u", t->attempt + 1);
        if (t->task_manager[0] != '\0')
            printf(" on %s", t->task_manager);
        printf(" switched to %s", fc_exec_state_name(t->state));
        if (t->failure[0] != '\0')
            printf(": %s", t->failure);
        printf(".\n");
    }
    if (s->job_state != (int)st->state) {
        s->job_state = (int)st->state;
        printf("Job %s (%s) switched to %s.\n", st->name, st->job_id,
               fc_job_state_name(st->state));
    }
    fflush(stdout);
    return FL_OK;
}

static bool terminal(int state)
{
    return state == FLING__CLUSTER__JOB_STATUS__STATE__FINISHED ||
           state == FLING__CLUSTER__JOB_STATUS__STATE__FAILED ||
           state == FLING__CLUSTER__JOB_STATUS__STATE__CANCELED;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Polls the job's status until it ends; the exit status. A status request
 * that fails for a reason that passes is made again, POLL_TRIES times in a
 * row at most. */
static int follow(fc_conn_t *c, const char *job_id)
{
    Fling__Cluster__JobIdRequest req = FLING__CLUSTER__JOB_ID_REQUEST__INIT;
    req.job_id = (char *)job_id;
    seen_t seen = {.job_state = -1};
    char what[128];
    snprintf(what, sizeof what, "asking for the status of job %s", job_id);
    int status = FC_EXIT_FAIL, failed = 0;
    for (;;) {
        Fling__Cluster__JobStatusReply *st;
        char err[1024];
        int rc = fc_call_try(c, "RequestJobStatus", &req.base, what,
                             (ProtobufCMessage **)&st, err, sizeof err);
        if (rc != FL_OK && fc_call_transient(rc) && ++failed < POLL_TRIES) {
            sleep_ms(POLL_MS);
            continue;
        }
        if (rc != FL_OK) {
            fprintf(stderr, "%s\n", err);
            break;
        }
        failed = 0;
        if (print_changes(&seen, st) != FL_OK) {
            fprintf(stderr, "fling run: out of memory.\n");
            protobuf_c_message_free_unpacked(&st->base, NULL);
            break;
        }
        if (terminal(st->state)) {
            if (st->state == FLING__CLUSTER__JOB_STATUS__STATE__FINISHED) {
                printf("Job with JobID %s has finished.\n", job_id);
                status = FC_EXIT_OK;
            } else if (st->state ==
                       FLING__CLUSTER__JOB_STATUS__STATE__CANCELED) {
                fprintf(stderr, "fling run: job %s was canceled.\n", job_id);
            } else {
                fprintf(stderr, "fling run: job %s failed: %s\n", job_id,
                        st->failure[0] ? st->failure : "no reason given");
            }
            protobuf_c_message_free_unpacked(&st->base, NULL);
            break;
        }
        protobuf_c_message_free_unpacked(&st->base, NULL);
        sleep_ms(POLL_MS);
    }
    seen_free(&seen);
    return status;
}

/* The absolute folder of the job file (malloc'd), or NULL. */
static char *job_dir(const char *file)
{
    char *abs = realpath(file, NULL);
    if (abs == NULL)
        return NULL;
    char *slash = strrchr(abs, '/');
    if (slash != NULL)
        slash[slash == abs ? 1 : 0] = '\0';
    return abs;
}

static int submit(const opts_t *o, const char *json)
{
    fc_conn_t c;
    int status = fc_connect(&o->where, &c);
    if (status != FC_EXIT_OK) {
        fc_close(&c);
        return status;
    }
    Fling__Cluster__SubmitJobRequest req =
        FLING__CLUSTER__SUBMIT_JOB_REQUEST__INIT;
    req.job_json = (char *)json;
    req.parallelism = (uint32_t)o->job.parallelism;
    char *dir = job_dir(o->job.file);
    req.job_dir = dir ? dir : "";
    Fling__Cluster__SubmitJobReply *r =
        (Fling__Cluster__SubmitJobReply *)fc_call(&c, "SubmitJob", &req.base,
                                                  "submitting the job");
    free(dir);
    if (r == NULL) {
        fc_close(&c);
        return FC_EXIT_FAIL;
    }
    printf("Job has been submitted with JobID %s\n", r->job_id);
    fflush(stdout);
    status = o->detached ? FC_EXIT_OK : follow(&c, r->job_id);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    fc_close(&c);
    return status;
}

int fc_run_main(int argc, char **argv)
{
    fc_quiet_logs();
    opts_t o = {
        .job = {.cmd = "run", .usage = fc_run_usage, .abs_paths = true}};
    fj_job_t *job = NULL;
    char *json = NULL;
    int status = fc_job_opts_init(&o.job, argc);
    if (status == FC_EXIT_OK)
        status = fc_where_init(&o.where, "run", fc_run_usage, argc);
    if (status == FC_EXIT_OK)
        status = fc_job_opts_parse(&o.job, argc, argv, own_opts, &o);
    if (status == FC_EXIT_OK)
        status = load_job(&o, &job, &json);
    if (status == FC_EXIT_OK)
        status = submit(&o, json);
    if (status == -1) /* --help */
        status = FC_EXIT_OK;
    free(json);
    fj_job_free(job);
    fc_job_opts_free(&o.job);
    fc_where_free(&o.where);
    return status;
}
