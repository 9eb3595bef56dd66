/*
 * jobstore.c - the in-memory store of submitted jobs (jobstore.h): an
 * array under a mutex, in submission order.
 */
#include "jobstore.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <fling/common.h>

struct jm_jobstore {
    pthread_mutex_t mu;
    jm_stored_job_t *jobs;
    size_t n;
};

jm_jobstore_t *jm_jobstore_alloc(void)
{
    jm_jobstore_t *s = calloc(1, sizeof *s);
    if (s != NULL)
        pthread_mutex_init(&s->mu, NULL);
    return s;
}

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

int jm_jobstore_put(jm_jobstore_t *s, const jm_stored_job_t *job)
{
    jm_stored_job_t c;
    if (job_copy(&c, job) != FL_OK)
        return FL_ENOMEM;
    pthread_mutex_lock(&s->mu);
    size_t i = find(s, job->job_id);
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

void jm_jobstore_remove(jm_jobstore_t *s, const char *job_id)
{
    pthread_mutex_lock(&s->mu);
    size_t i = find(s, job_id);
    if (i < s->n) {
        job_fini(&s->jobs[i]);
        memmove(&s->jobs[i], &s->jobs[i + 1],
                (s->n - i - 1) * sizeof s->jobs[0]);
        s->n--;
    }
    pthread_mutex_unlock(&s->mu);
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
