/*
 * apps/task/task.h - the task runner: one parallel instance of a chain of
 * operators (apps/job/spec.h), source to sink, on the calling thread.
 *
 * A chain is a source (source.text, source.sequence), then any number of
 * transforms (filter.contains, map, flatmap, filter), then a sink
 * (sink.text). Records pass from one operator to the next by direct calls,
 * without copies: a source hands out lines in place in its read buffer,
 * and only the sink copies bytes, into its write buffer.
 */
#ifndef FLING_APPS_TASK_TASK_H
#define FLING_APPS_TASK_TASK_H

#include <stdatomic.h>
#include <stdint.h>

#include "job/spec.h"

/* The longest chain the runner takes. */
#define FJ_TASK_MAX_OPS 32

/* Records in and out of one operator of the chain. A source's in counts
 * the records it produced, like its out; a sink's out counts those it
 * wrote, like its in. */
typedef struct fj_op_stats {
    uint64_t in;
    uint64_t out;
} fj_op_stats_t;

/* The progress of a task: one entry per operator of the chain, in order. */
typedef struct fj_task_stats {
    size_t n_ops;
    fj_op_stats_t ops[FJ_TASK_MAX_OPS];
} fj_task_stats_t;

/* A progress report: stats is borrowed for the call. Called on the task's
 * thread, between two records; must not block for long. */
typedef void (*fj_task_progress_cb)(void *arg, const fj_task_stats_t *stats);

/* One parallel instance of a chain, as fj_task_run takes it. Every
 * pointer is borrowed for the run. */
typedef struct fj_task {
    const fj_op_spec_t *chain; /* n_ops operators, source first, sink last */
    size_t n_ops;
    uint32_t subtask;     /* this instance, 0 .. parallelism - 1 */
    uint32_t parallelism; /* at least 1 */
    uint32_t attempt;     /* the execution attempt: names the sink's
                             temporary file */
    /* Path of the job's user library, or NULL. A name without '/' is
     * searched as dlopen(3) does (LD_LIBRARY_PATH, the system's folders):
     * give an absolute path to load one file for sure. */
    const char *library;
    /* Set to true from any thread to cancel the run (NULL: no cancel). */
    const atomic_bool *cancel;
    fj_task_progress_cb progress; /* NULL: no reports */
    void *progress_arg;
    /* Source records between two progress reports (0: 65536). */
    uint64_t progress_every;
} fj_task_t;

/*
 * fj_task_run runs task on the calling thread until its source is done,
 * and blocks until then. It returns
 *   FL_OK          the sink's part file is in place (renamed from its
 *                  temporary name), stats holds the final counts;
 *   FL_ECANCELED   *task->cancel was seen set: checked before each source
 *                  record, so the run stops within one record, and once
 *                  more before the sink renames its part file;
 *   FL_EINVAL      a chain of the wrong shape, an unknown operator type,
 *                  a missing or bad parameter, a user library of another
 *                  ABI version, or a user function that failed;
 *   FL_ENOENT      a missing input file, user library or function;
 *   FL_ESYSTEM     an input file that cannot be read, an output folder
 *                  that cannot be made or written;
 *   FL_ENOMEM      out of memory.
 * On every failure err holds one sentence saying which operator failed
 * and why, and no part file of this attempt is left behind (its temporary
 * file is removed). stats may be NULL; err may be NULL with errlen 0.
 * Progress reports go to task->progress, on this thread. Any thread; the
 * user library is opened (dlopen) for the run and released after it.
 */
int fj_task_run(const fj_task_t *task, fj_task_stats_t *stats, char *err,
                size_t errlen);

#endif
