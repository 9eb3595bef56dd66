/*
 * apps/task/task_int.h - the insides of the task runner: one operator of a
 * running chain, and what every operator file offers the runner.
 *
 * A running chain is an array of fj_op_t, source first. Each operator
 * passes a record to the next by calling its push: direct calls, no queue
 * and no copy. A push returns FL_OK to go on, or the fl_err code that
 * stops the run, after writing the message into the run's err.
 */
#ifndef FLING_APPS_TASK_INT_H
#define FLING_APPS_TASK_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <fling/common.h>
#include <fling/udf.h>

#include "task.h"

typedef struct fj_op fj_op_t;
typedef struct fj_udf_lib fj_udf_lib_t;

/* The state of one run, shared by its operators. */
typedef struct fj_run {
    const fj_task_t *task;
    fj_task_stats_t stats;
    fj_udf_lib_t *lib; /* the user library, NULL if the job has none */
    char *err;
    size_t errlen;
    uint64_t next_report; /* source records at the next progress report */
    uint64_t report_every;
} fj_run_t;

/* Takes one record; see the file comment. */
typedef int (*fj_push_fn)(fj_op_t *op, const char *data, size_t len);

/* The kinds of operator. */
typedef enum fj_op_kind {
    FJ_OP_SOURCE,
    FJ_OP_TRANSFORM,
    FJ_OP_SINK
} fj_op_kind_t;

struct fj_op {
    /* FIRST: a flatmap's collector is the operator itself (emit pushes to
     * next). */
    fl_udf_collector_t collector;
    fj_push_fn push;
    fj_op_t *next;
    fj_op_stats_t *stats;
    const fj_op_spec_t *spec;
    fj_run_t *run;
    /* Produces every record of a source into next; NULL for the others. */
    int (*produce)(fj_op_t *op);
    /* Ends the operator: ok is 1 when the whole chain succeeded. Returns
     * FL_OK or the code of a failure to finish (the sink's rename); may be
     * NULL. Called once for every operator whose setup succeeded. */
    int (*finish)(fj_op_t *op, int ok);
    void *impl; /* the operator's own state, freed by finish */
};

/*
 * fj_op_fail writes "Operator '<id>' (<type>) <what>" into the run's err
 * and returns code. Task thread.
 */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int fj_op_fail(fj_op_t *op, int code, const char *fmt, ...);

/* fj_run_fail writes fmt into the run's err and returns code. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int fj_run_fail(fj_run_t *run, int code, const char *fmt, ...);

/*
 * fj_source_emit hands one record of a source to the next operator,
 * after the cancel check, and counts it (and reports progress). Returns
 * FL_OK, FL_ECANCELED or the next operator's code. Task thread.
 */
int fj_source_emit(fj_op_t *src, const char *data, size_t len);

/* fj_op_param returns op's param key, or fails the op with FL_EINVAL
 * ("has no parameter 'key'") and returns NULL. */
const char *fj_op_param(fj_op_t *op, const char *key);

/*
 * The setups of the built-in operators, one per type. Each checks op's
 * spec (params), sets push / produce / finish / impl, and returns FL_OK or
 * a code with the message written. A setup that fails leaves nothing to
 * finish.
 */
int fj_source_text_setup(fj_op_t *op);
int fj_source_sequence_setup(fj_op_t *op);
int fj_filter_contains_setup(fj_op_t *op);
int fj_udf_op_setup(fj_op_t *op); /* map, flatmap, filter */
int fj_sink_text_setup(fj_op_t *op);

/* For tests: the first size of source.text's read buffer, in bytes (it
 * grows for longer lines); 0 restores the default. Not thread-safe: call
 * before any run. */
void fj_source_text_set_buffer(size_t bytes);

/* For tests: the longest line source.text takes, in bytes (default 1 GiB;
 * 0 restores it). A longer line fails the task with FL_EINVAL. Not
 * thread-safe: call before any run. */
void fj_source_text_set_max_line(size_t bytes);

/* ---- the user library (udf_lib.c) -------------------------------------- */

/*
 * fj_udf_lib_open loads the user library at path (dlopen RTLD_NOW |
 * RTLD_LOCAL) and checks its ABI version. Returns FL_OK with *out set
 * (release with fj_udf_lib_close), FL_ENOENT for a path that does not
 * exist, FL_EINVAL for one that does not load or exports another ABI
 * version (or none); err says which, with the path. Any thread; blocks
 * while the library loads.
 */
int fj_udf_lib_open(const char *path, fj_udf_lib_t **out, char *err,
                    size_t errlen);

/* fj_udf_lib_sym returns the address of the function name defined by the
 * library itself (not by a library it depends on), or NULL. */
void *fj_udf_lib_sym(fj_udf_lib_t *lib, const char *name);

/* fj_udf_lib_path returns the path the library was opened with. */
const char *fj_udf_lib_path(const fj_udf_lib_t *lib);

/* fj_udf_lib_close releases the library (dlclose); NULL is a no-op. */
void fj_udf_lib_close(fj_udf_lib_t *lib);

/* ---- built-in user functions (builtin.c) -------------------------------- */

/* A built-in function: its name, the one of map, flatmap, filter it is
 * (the others NULL), and its close (may be NULL). */
typedef struct fj_builtin {
    const char *name;
    fl_udf_map_fn map;
    fl_udf_flatmap_fn flatmap;
    fl_udf_filter_fn filter;
    fl_udf_close_fn close;
} fj_builtin_t;

/* fj_builtin_find returns the built-in function name, or NULL. */
const fj_builtin_t *fj_builtin_find(const char *name);

#endif
