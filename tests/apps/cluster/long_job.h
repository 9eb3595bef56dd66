/*
 * long_job.h - a job of two tasks that run until cancelled (a sequence
 * to 10^12 filtered to nothing, into part files under a scratch folder's
 * "out"), started on a JobManager and one TaskManager tm1.
 */
#ifndef CLUSTER_LONG_JOB_H
#define CLUSTER_LONG_JOB_H

#include "../task/task_fixture.h"
#include "cluster_procs.h"
#include "job_client.h"

typedef struct long_job {
    char *dir, *job, *out;
    char id[1024];
    int port; /* the JobManager's */
} long_job_t;

/* The job file's text (parallelism 2; its argument "output"). */
static const char long_job_text[] =
    "{\"name\": \"long\", \"parallelism\": 2,"
    " \"params\": {\"output\": null},"
    " \"operators\": ["
    "  {\"id\": \"n\", \"type\": \"source.sequence\","
    "   \"params\": {\"from\": \"1\", \"to\": \"1000000000000\"}},"
    "  {\"id\": \"none\", \"type\": \"filter.contains\","
    "   \"params\": {\"pattern\": \"x\"}},"
    "  {\"id\": \"out\", \"type\": \"sink.text\","
    "   \"params\": {\"path\": \"${output}\"}}]}";

/* Makes the scratch folder and writes the job file into it. */
static inline void long_job_write(long_job_t *l)
{
    l->dir = scratch();
    l->job = path_in(l->dir, "long.json");
    l->out = path_in(l->dir, "out");
    write_file(l->job, long_job_text, strlen(long_job_text));
}

/* Starts jm and tm1 (with the -D option extra unless NULL), opens c,
 * submits the job and waits until both tasks run. */
static inline void long_job_start(long_job_t *l, cf_proc_t *jm, cf_proc_t *tm1,
                                  jc_t *c, const char *extra)
{
    long_job_write(l);
    l->port = start_jm_opt(jm, "0", extra);
    start_tm_opt(tm1, jm, "tm1", l->port, extra);
    jc_open(c, l->port);
    const char *args[] = {"output", l->out, NULL};
    assert_fl_ok(jc_submit(c, l->job, args, 0, "", l->id, sizeof l->id));
    cf_wait_stderr(jm, "(attempt #0) switched from INITIALIZING to RUNNING.",
                   2);
}

/* Asserts that the job left no part files. */
static inline void long_job_assert_no_output(const long_job_t *l)
{
    tbuf_t names = {0};
    list_dir(l->out, &names);
    assert_string_equal("", names.data);
    tbuf_free(&names);
}

/* Removes the scratch folder and frees the paths. */
static inline void long_job_free(long_job_t *l)
{
    free(l->job);
    free(l->out);
    rm_scratch(l->dir);
}

#endif
