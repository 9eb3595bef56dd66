/*
 * plan.c - `fling plan JOBFILE [--dot] [-p N] [--KEY VALUE ...]`: loads a
 * job file, gives it the arguments, and prints its three graphs as text or
 * as one Graphviz digraph.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "job/graph.h"
#include "job/job.h"

void fc_plan_usage(FILE *f)
{
    fprintf(f,
            "usage: fling plan JOBFILE [--dot] [-p N] [--KEY VALUE ...]\n"
            "  --dot        print Graphviz dot instead of text\n"
            "  -p N         default parallelism (1 to %d)\n"
            "  --KEY VALUE  the value of job parameter KEY (also "
            "--KEY=VALUE)\n",
            FJ_PARALLELISM_MAX);
}

static int usage_error(const char *fmt, ...) FL_PRINTF(1, 2);

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fling plan: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fc_plan_usage(stderr);
    return FC_EXIT_USAGE;
}

/* One --KEY VALUE. */
typedef struct arg {
    char *key; /* owned */
    const char *value;
} arg_t;

typedef struct opts {
    const char *file;
    bool dot;
    int parallelism; /* 0: the job's */
    arg_t *args;
    size_t n_args;
} opts_t;

static int parse_opts(int argc, char **argv, opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--dot") == 0) {
            o->dot = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fc_plan_usage(stdout);
            return -1;
        } else if (strncmp(a, "-p", 2) == 0) {
            const char *v = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v)
                return usage_error("-p needs a number.");
            char *end;
            errno = 0;
            long p = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || errno || p < 1 ||
                p > FJ_PARALLELISM_MAX) {
                fprintf(stderr,
                        "fling plan: -p needs a whole number from 1 to %d, "
                        "not '%s'.\n",
                        FJ_PARALLELISM_MAX, v);
                fc_plan_usage(stderr);
                return FC_EXIT_USAGE;
            }
            o->parallelism = (int)p;
        } else if (strncmp(a, "--", 2) == 0 && a[2]) {
            const char *eq = strchr(a + 2, '=');
            size_t klen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || klen == 0)
                return usage_error("%s needs a value.", a);
            char *key = strndup(a + 2, klen);
            if (!key) {
                fprintf(stderr, "fling plan: out of memory.\n");
                return FC_EXIT_FAIL;
            }
            o->args[o->n_args].key = key;
            o->args[o->n_args++].value = v;
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

/* Prints the graphs of job; the exit status. */
static int plan(fj_job_t *job, const opts_t *o)
{
    char err[1024];
    fj_stream_graph_t *sg = NULL;
    fj_job_graph_t *jg = NULL;
    fj_exec_graph_t *eg = NULL;
    int rc = fj_stream_graph_build(job, &sg, err, sizeof err);
    if (rc != FL_OK) {
        fprintf(stderr, "fling plan: %s\n", err);
        return FC_EXIT_FAIL;
    }
    rc = fj_job_graph_build(sg, NULL, &jg);
    if (rc == FL_OK)
        rc = fj_exec_graph_build(jg, &eg);
    if (rc != FL_OK) {
        fprintf(stderr, "fling plan: planning job '%s' failed: %s.\n",
                fj_job_name(job), fl_strerror(rc));
    } else if (o->dot) {
        rc = fj_plan_print_dot(eg, stdout);
    } else {
        rc = fj_stream_graph_print(sg, stdout);
        if (rc == FL_OK && fputc('\n', stdout) != EOF)
            rc = fj_job_graph_print(jg, stdout);
        if (rc == FL_OK && fputc('\n', stdout) != EOF)
            rc = fj_exec_graph_print(eg, stdout);
        if (rc == FL_OK && fj_job_check_runnable(jg, err, sizeof err) != FL_OK)
            printf("\n%s\n", err);
    }
    if (rc == FL_OK && fflush(stdout) != 0)
        rc = FL_ESYSTEM;
    if (rc == FL_ESYSTEM)
        fprintf(stderr, "fling plan: cannot write the plan: %s.\n",
                strerror(errno));
    fj_exec_graph_free(eg);
    fj_job_graph_free(jg);
    fj_stream_graph_free(sg);
    return rc == FL_OK ? FC_EXIT_OK : FC_EXIT_FAIL;
}

int fc_plan_main(int argc, char **argv)
{
    opts_t o = {0};
    o.args = calloc((size_t)argc + 1, sizeof *o.args);
    if (!o.args) {
        fprintf(stderr, "fling plan: out of memory.\n");
        return FC_EXIT_FAIL;
    }
    int status = parse_opts(argc, argv, &o);
    fj_job_t *job = NULL;
    char err[1024];
    if (status == -1) {
        status = FC_EXIT_OK;
        goto out;
    }
    if (status != FC_EXIT_OK)
        goto out;
    if (fj_job_load(o.file, &job, err, sizeof err) != FL_OK) {
        fprintf(stderr, "fling plan: %s\n", err);
        status = FC_EXIT_FAIL;
        goto out;
    }
    for (size_t i = 0; i < o.n_args; i++) {
        int rc = fj_job_set_arg(job, o.args[i].key, o.args[i].value, err,
                                sizeof err);
        if (rc != FL_OK) {
            if (rc == FL_ENOENT)
                status = usage_error("%s", err);
            else {
                fprintf(stderr, "fling plan: out of memory.\n");
                status = FC_EXIT_FAIL;
            }
            goto out;
        }
    }
    if (o.parallelism && fj_job_set_parallelism(job, o.parallelism) != FL_OK) {
        status = FC_EXIT_FAIL;
        goto out;
    }
    status = plan(job, &o);
out:
    fj_job_free(job);
    for (size_t i = 0; i < o.n_args; i++)
        free(o.args[i].key);
    free(o.args);
    return status;
}
