/*
 * apps/jobmanager/jobstore.h - the JobManager's store of submitted jobs
 * (Flink's JobGraphStore, kept in the process's memory): a Dispatcher puts
 * each job it takes and removes it once the job reached a globally
 * terminal state (FINISHED, FAILED, CANCELED); the next Dispatcher of the
 * process (a new leadership after a revoke) recovers what is left. A
 * suspended job is not terminal: it stays.
 *
 * Shared by every Dispatcher of the process, so each call takes the
 * store's mutex: any thread, never blocks beyond it.
 */
#ifndef FLING_APPS_JOBMANAGER_JOBSTORE_H
#define FLING_APPS_JOBMANAGER_JOBSTORE_H

#include <stddef.h>
#include <stdint.h>

/* One stored job: what resubmits it under the same id. */
typedef struct jm_stored_job {
    char job_id[33];
    char *json; /* the job written back as JSON */
    uint32_t parallelism;
    char *job_dir;
    int64_t submitted_ms;
} jm_stored_job_t;

typedef struct jm_jobstore jm_jobstore_t;

/* jm_jobstore_alloc makes an empty store: NULL when out of memory. The
 * caller owns it; release with jm_jobstore_free. */
jm_jobstore_t *jm_jobstore_alloc(void);

/* jm_jobstore_free releases s and its jobs. NULL: no-op. */
void jm_jobstore_free(jm_jobstore_t *s);

/*
 * jm_jobstore_put stores the job (the strings are copied), replacing one
 * of the same id. Returns FL_OK or FL_ENOMEM (the store is unchanged).
 */
int jm_jobstore_put(jm_jobstore_t *s, const jm_stored_job_t *job);

/* jm_jobstore_remove drops the job job_id; no-op if it is not stored. */
void jm_jobstore_remove(jm_jobstore_t *s, const char *job_id);

/*
 * jm_jobstore_list copies the stored jobs, oldest first, into *out (*n of
 * them; *out NULL when there is none). Returns FL_OK or FL_ENOMEM. The
 * caller owns the copies: release with jm_stored_jobs_free.
 */
int jm_jobstore_list(jm_jobstore_t *s, jm_stored_job_t **out, size_t *n);

/* jm_stored_jobs_free releases n copies of jm_jobstore_list. */
void jm_stored_jobs_free(jm_stored_job_t *jobs, size_t n);

#endif
