/*
 * jobstore.c - the store of submitted jobs (jobstore.h): an array under a
 * mutex, oldest first (the put order; the jobs of the folder sorted), and
 * each job's file when there is a folder.
 */
#include "jobstore.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fling/common.h>

struct jm_jobstore {
    pthread_mutex_t mu;
    jm_stored_job_t *jobs;
    size_t n;
    char *dir; /* NULL: in memory only */
};

static void job_fini(jm_stored_job_t *j)
{
    free(j->json);
    free(j->job_dir);
}

void jm_stored_jobs_free(jm_stored_job_t *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        job_fini(&jobs[i]);
    free(jobs);
}

void jm_jobstore_free(jm_jobstore_t *s)
{
    if (s == NULL)
        return;
    jm_stored_jobs_free(s->jobs, s->n);
    pthread_mutex_destroy(&s->mu);
    free(s->dir);
    free(s);
}

static char *dup(const char *str)
{
    size_t n = strlen(str) + 1;
    char *c = malloc(n);
    if (c != NULL)
        memcpy(c, str, n);
    return c;
}

/* A deep copy of from into to: FL_OK or FL_ENOMEM (to holds nothing). */
static int job_copy(jm_stored_job_t *to, const jm_stored_job_t *from)
{
    *to = *from;
    to->json = dup(from->json);
    to->job_dir = dup(from->job_dir);
    if (to->json == NULL || to->job_dir == NULL) {
        job_fini(to);
        return FL_ENOMEM;
    }
    return FL_OK;
}

/* The index of job_id in s, or s->n. Under s->mu. */
static size_t find(const jm_jobstore_t *s, const char *job_id)
{
    size_t i = 0;
    while (i < s->n && strcmp(s->jobs[i].job_id, job_id) != 0)
        i++;
    return i;
}

/* Adds c (taken) to s, replacing a job of its id: FL_OK or FL_ENOMEM (c
 * freed). */
static int add(jm_jobstore_t *s, jm_stored_job_t c)
{
    pthread_mutex_lock(&s->mu);
    size_t i = find(s, c.job_id);
    if (i < s->n) {
        job_fini(&s->jobs[i]);
        s->jobs[i] = c;
        pthread_mutex_unlock(&s->mu);
        return FL_OK;
    }
    jm_stored_job_t *a = realloc(s->jobs, (s->n + 1) * sizeof *a);
    if (a == NULL) {
        pthread_mutex_unlock(&s->mu);
        job_fini(&c);
        return FL_ENOMEM;
    }
    s->jobs = a;
    s->jobs[s->n++] = c;
    pthread_mutex_unlock(&s->mu);
    return FL_OK;
}

int jm_jobstore_put(jm_jobstore_t *s, const jm_stored_job_t *job, char *err,
                    size_t errlen)
{
    jm_stored_job_t c;
    if (job_copy(&c, job) != FL_OK || add(s, c) != FL_OK) {
        snprintf(err, errlen, "out of memory");
        return FL_ENOMEM;
    }
    return s->dir != NULL ? jm_jobfile_write(s->dir, job, err, errlen) : FL_OK;
}

void jm_jobstore_remove(jm_jobstore_t *s, const char *job_id)
{
    pthread_mutex_lock(&s->mu);
    size_t i = find(s, job_id);
    if (i < s->n) {
        job_fini(&s->jobs[i]);
        memmove(&s->jobs[i], &s->jobs[i + 1],
                (s->n - i - 1) * sizeof s->jobs[0]);
        s->n--;
        char why[300];
        if (s->dir != NULL &&
            jm_jobfile_remove(s->dir, job_id, why, sizeof why) != FL_OK)
            fl_log(FL_LOG_WARN,
                   "Job %s left the job store, but its file may stay: %s",
                   job_id, why);
    }
    pthread_mutex_unlock(&s->mu);
}

/* A job file read at open: kept, or logged and skipped. */
static void loaded(void *arg, const char *path, jm_stored_job_t *job,
                   const char *why)
{
    jm_jobstore_t *s = arg;
    if (job == NULL)
        fl_log(FL_LOG_WARN, "Job store file %s skipped: %s", path, why);
    else if (add(s, *job) != FL_OK)
        fl_log(FL_LOG_WARN, "Job store file %s skipped: out of memory", path);
}

/* qsort's order of jobs: by submission time, then by id. */
static int older_first(const void *a, const void *b)
{
    const jm_stored_job_t *x = a, *y = b;
    if (x->submitted_ms != y->submitted_ms)
        return x->submitted_ms < y->submitted_ms ? -1 : 1;
    return strcmp(x->job_id, y->job_id);
}

int jm_jobstore_open(const char *dir, jm_jobstore_t **out, char *err,
                     size_t errlen)
{
    jm_jobstore_t *s = calloc(1, sizeof *s);
    if (s == NULL || (dir != NULL && (s->dir = dup(dir)) == NULL)) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return FL_ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    int rc = FL_OK;
    if (dir != NULL)
        rc = jm_jobfile_mkdirs(dir, err, errlen);
    if (rc == FL_OK && dir != NULL)
        rc = jm_jobfile_load(dir, loaded, s, err, errlen);
    /* The folder's order is no order: oldest first, as put keeps them. */
    if (rc == FL_OK && s->n > 1)
        qsort(s->jobs, s->n, sizeof s->jobs[0], older_first);
    if (rc != FL_OK) {
        jm_jobstore_free(s);
        return rc;
    }
    *out = s;
    return FL_OK;
}

int jm_jobstore_list(jm_jobstore_t *s, jm_stored_job_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->mu);
    if (s->n == 0) {
        pthread_mutex_unlock(&s->mu);
        return FL_OK;
    }
    jm_stored_job_t *a = calloc(s->n, sizeof *a);
    size_t k = 0;
    while (a != NULL && k < s->n && job_copy(&a[k], &s->jobs[k]) == FL_OK)
        k++;
    bool ok = a != NULL && k == s->n;
    pthread_mutex_unlock(&s->mu);
    if (!ok) {
        if (a != NULL)
            jm_stored_jobs_free(a, k);
        return FL_ENOMEM;
    }
    *out = a;
    *n = k;
    return FL_OK;
}
