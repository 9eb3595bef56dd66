/*
 * apps/jobmanager/jobstore.h - the JobManager's store of submitted jobs
 * (Flink's JobGraphStore): a Dispatcher puts
 * each job it takes and removes it once the job reached a globally
 * terminal state (FINISHED, FAILED, CANCELED); the next Dispatcher of the
 * process (a new leadership after a revoke) recovers what is left. A
 * suspended job is not terminal: it stays. With a folder
 * (high-availability.storageDir) each job is also a file there
 * (jobstore_file.c), and a JobManager started again recovers them.
 *
 * Shared by every Dispatcher of the process, so each call takes the
 * store's mutex: any thread; with a folder, a call blocks on its file.
 */
#ifndef FLING_APPS_JOBMANAGER_JOBSTORE_H
#define FLING_APPS_JOBMANAGER_JOBSTORE_H

#include <stdbool.h>
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

/*
 * jm_jobstore_open makes a store, in memory only when dir is NULL, else
 * kept in the folder dir too (made if missing) and holding the jobs its
 * files describe (a file that cannot be read or is not a job file is left
 * there, logged and skipped). Returns FL_OK (the caller owns *out: release
 * with jm_jobstore_free), FL_ENOMEM, or FL_ESYSTEM/FL_EINVAL with why (the
 * folder). Any thread; blocks on the folder's reading.
 */
int jm_jobstore_open(const char *dir, jm_jobstore_t **out, char *err,
                     size_t errlen);

/* jm_jobstore_free releases s and its jobs. NULL: no-op. */
void jm_jobstore_free(jm_jobstore_t *s);

/*
 * jm_jobstore_put stores the job (the strings are copied), replacing one
 * of the same id. Returns FL_OK, FL_ENOMEM (the store is unchanged), or
 * FL_ESYSTEM/FL_EINVAL with why when its file could not be written (it is
 * kept in memory). With a folder it blocks until the file and the folder
 * are on the disk (two fsyncs: 0.3 ms median here, 7 ms when others load
 * the disk; the Dispatcher calls it on its main thread).
 */
int jm_jobstore_put(jm_jobstore_t *s, const jm_stored_job_t *job, char *err,
                    size_t errlen);

/* jm_jobstore_remove drops the job job_id (and its file, the folder
 * flushed: blocks on the disk; a failure is logged); no-op if it is not
 * stored. */
void jm_jobstore_remove(jm_jobstore_t *s, const char *job_id);

/*
 * jm_jobstore_list copies the stored jobs, oldest first (by submitted_ms,
 * then by id; the ones recovered from the folder too), into *out (*n of
 * them; *out NULL when there is none). Returns FL_OK or FL_ENOMEM. The
 * caller owns the copies: release with jm_stored_jobs_free.
 */
int jm_jobstore_list(jm_jobstore_t *s, jm_stored_job_t **out, size_t *n);

/* jm_stored_jobs_free releases n copies of jm_jobstore_list. */
void jm_stored_jobs_free(jm_stored_job_t *jobs, size_t n);

/* ---- jobstore_file.c: a job as a file --------------------------------- */

/*
 * jm_jobfile_parse reads the len bytes of a job file (untrusted). Returns
 * FL_OK (*out's strings are the caller's), FL_EINVAL with why (the field
 * that is wrong) or FL_ENOMEM. Any thread.
 */
int jm_jobfile_parse(const char *buf, size_t len, jm_stored_job_t *out,
                     char *err, size_t errlen);

/* jm_jobfile_write writes j as dir/<id>.job through a temporary file,
 * flushed (fsync) and renamed, then flushes dir: FL_OK, or
 * FL_ESYSTEM/FL_EINVAL with why. Blocks on the disk (two fsyncs). */
int jm_jobfile_write(const char *dir, const jm_stored_job_t *j, char *err,
                     size_t errlen);

/* jm_jobfile_remove deletes dir/<job_id>.job if there is one, then flushes
 * dir: FL_OK, or FL_ESYSTEM with why. Blocks on the disk. */
int jm_jobfile_remove(const char *dir, const char *job_id, char *err,
                      size_t errlen);

/* What jm_jobfile_load found in one file at path: the job (the callback
 * takes its strings), or NULL and why. */
typedef void (*jm_jobfile_cb)(void *arg, const char *path, jm_stored_job_t *job,
                              const char *why);

/* jm_jobfile_load calls fn for each file <32 hex>.job in dir, in the
 * folder's order; one that is not a regular file (a FIFO, a symbolic
 * link, a folder) comes with why and is not opened for reading. FL_OK, or
 * FL_ESYSTEM with why when dir cannot be read. Blocks. */
int jm_jobfile_load(const char *dir, jm_jobfile_cb fn, void *arg, char *err,
                    size_t errlen);

/* jm_jobfile_mkdirs makes dir and its parents (mode 0700) when missing:
 * FL_OK, or FL_ESYSTEM/FL_EINVAL with why. Blocks. */
int jm_jobfile_mkdirs(const char *dir, char *err, size_t errlen);

#endif
