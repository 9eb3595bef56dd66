/*
 * plan.c - `fling plan JOBFILE [--dot] [-p N] [--KEY VALUE ...]`: loads a
 * job file, gives it the arguments, and prints its three graphs as text or
 * as one Graphviz digraph.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "job/graph.h"
#include "job/job.h"
#include "jobopts.h"

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

typedef struct opts {
    fc_job_opts_t job;
    bool dot;
} opts_t;

/* --dot. */
static int own_opts(void *ctx, int argc, char **argv, int *i)
{
    (void)argc;
    if (strcmp(argv[*i], "--dot") != 0)
        return 0;
    ((opts_t *)ctx)->dot = true;
    return 1;
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
    opts_t o = {.job = {.cmd = "plan", .usage = fc_plan_usage}};
    fj_job_t *job = NULL;
    int status = fc_job_opts_init(&o.job, argc);
    if (status == FC_EXIT_OK)
        status = fc_job_opts_parse(&o.job, argc, argv, own_opts, &o);
    if (status == FC_EXIT_OK)
        status = fc_job_opts_load(&o.job, &job);
    if (status == FC_EXIT_OK)
        status = plan(job, &o);
    if (status == -1) /* --help */
        status = FC_EXIT_OK;
    fj_job_free(job);
    fc_job_opts_free(&o.job);
    return status;
}
