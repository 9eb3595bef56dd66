/*
 * run.c - `fling run [-m HOST:PORT] [-p N] [-d] JOBFILE [--KEY VALUE ...]`:
 * loads and checks a job as `fling plan` does, submits it to the
 * JobManager's Dispatcher, prints its id, and unless -d follows it: each
 * state change of the job and of its tasks on a line of its own, until the
 * job ends. Exit status 0 only if the job FINISHED.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "conn.h"
#include "job/graph.h"
#include "job/job.h"

/* How often the job's status is asked for while it runs. */
#define POLL_MS 50

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

static int usage_error(const char *fmt, ...) FL_PRINTF(1, 2);

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fling run: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fc_run_usage(stderr);
    return FC_EXIT_USAGE;
}

typedef struct arg {
    char *key;   /* owned */
    char *value; /* owned */
} arg_t;

typedef struct opts {
    fc_where_t where;
    const char *file;
    bool detached;
    int parallelism; /* 0: the job's */
    arg_t *args;
    size_t n_args;
} opts_t;

/* value of --input or --output as an absolute path (malloc'd), others
 * copied. NULL when out of memory. */
static char *arg_value(const char *key, const char *v)
{
    bool path = strcmp(key, "input") == 0 || strcmp(key, "output") == 0;
    if (!path || v[0] == '/' || v[0] == '\0')
        return strdup(v);
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL)
        return strdup(v);
    char *abs = NULL;
    if (asprintf(&abs, "%s/%s", cwd, v) < 0)
        return NULL;
    return abs;
}

static int parse_opts(int argc, char **argv, opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int took = fc_where_take(&o->where, argc, argv, &i);
        if (took < 0) {
            fc_run_usage(stderr);
            return FC_EXIT_USAGE;
        }
        if (took > 0)
            continue;
        if (strcmp(a, "-d") == 0 || strcmp(a, "--detached") == 0) {
            o->detached = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fc_run_usage(stdout);
            return -1;
        } else if (strncmp(a, "-p", 2) == 0) {
            const char *v = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v)
                return usage_error("-p needs a number.");
            char *end;
            errno = 0;
            long p = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || errno || p < 1 ||
                p > FJ_PARALLELISM_MAX)
                return usage_error("-p needs a whole number from 1 to %d, "
                                   "not '%s'.",
                                   FJ_PARALLELISM_MAX, v);
            o->parallelism = (int)p;
        } else if (strncmp(a, "--", 2) == 0 && a[2]) {
            const char *eq = strchr(a + 2, '=');
            size_t klen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || klen == 0)
                return usage_error("%s needs a value.", a);
            arg_t *g = &o->args[o->n_args];
            g->key = strndup(a + 2, klen);
            g->value = g->key ? arg_value(g->key, v) : NULL;
            o->n_args++;
            if (!g->key || !g->value) {
                fprintf(stderr, "fling run: out of memory.\n");
                return FC_EXIT_FAIL;
            }
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option '%s'.", a);
        } else if (o->file) {
            return usage_error("one job file at a time; '%s' is a second.", a);
        } else {
            o->file = a;
        }
    }
    if (!o->file)
        return usage_error("%s", "which job file? Give its path.");
    return FC_EXIT_OK;
}

/* Loads the job with its arguments and checks that it can run, as
 * `fling plan` would; the job as JSON into *json. */
static int load_job(const opts_t *o, fj_job_t **job, char **json)
{
    char err[1024];
    if (fj_job_load(o->file, job, err, sizeof err) != FL_OK) {
        fprintf(stderr, "fling run: %s\n", err);
        return FC_EXIT_FAIL;
    }
    for (size_t i = 0; i < o->n_args; i++) {
        int rc = fj_job_set_arg(*job, o->args[i].key, o->args[i].value, err,
                                sizeof err);
        if (rc == FL_ENOENT)
            return usage_error("%s", err);
        if (rc != FL_OK) {
            fprintf(stderr, "fling run: out of memory.\n");
            return FC_EXIT_FAIL;
        }
    }
    if (o->parallelism && fj_job_set_parallelism(*job, o->parallelism) != FL_OK)
        return FC_EXIT_FAIL;
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

/* Polls the job's status until it ends; the exit status. */
static int follow(fc_conn_t *c, const char *job_id)
{
    Fling__Cluster__JobIdRequest req = FLING__CLUSTER__JOB_ID_REQUEST__INIT;
    req.job_id = (char *)job_id;
    seen_t seen = {.job_state = -1};
    char what[128];
    snprintf(what, sizeof what, "asking for the status of job %s", job_id);
    int status = FC_EXIT_FAIL;
    for (;;) {
        Fling__Cluster__JobStatusReply *st =
            (Fling__Cluster__JobStatusReply *)fc_call(c, "RequestJobStatus",
                                                      &req.base, what);
        if (st == NULL)
            break;
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
    req.parallelism = (uint32_t)o->parallelism;
    char *dir = job_dir(o->file);
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
    opts_t o = {.where = {.cmd = "run", .usage = fc_run_usage}};
    o.args = calloc((size_t)argc + 1, sizeof *o.args);
    o.where.defines = calloc((size_t)argc + 1, sizeof *o.where.defines);
    fj_job_t *job = NULL;
    char *json = NULL;
    int status;
    if (!o.args || !o.where.defines) {
        fprintf(stderr, "fling run: out of memory.\n");
        status = FC_EXIT_FAIL;
        goto out;
    }
    status = parse_opts(argc, argv, &o);
    if (status == -1) {
        status = FC_EXIT_OK;
        goto out;
    }
    if (status == FC_EXIT_OK)
        status = load_job(&o, &job, &json);
    if (status == FC_EXIT_OK)
        status = submit(&o, json);
out:
    free(json);
    fj_job_free(job);
    for (size_t i = 0; o.args && i < o.n_args; i++) {
        free(o.args[i].key);
        free(o.args[i].value);
    }
    free(o.args);
    free(o.where.defines);
    return status;
}
