/*
 * fling/udf.h - user functions for fling jobs: the C ABI between a user
 * library (Flink's user jar, in C) and the task runner that loads it.
 *
 * A user library is a shared object built against this header alone (it
 * needs no fling library). It declares the ABI it was built for once, with
 * FL_UDF_ABI, and exports one symbol per function, named as the job names
 * it (params "function": "square"):
 *
 *   #include <fling/udf.h>
 *   FL_UDF_ABI;
 *
 *   FL_UDF_EXPORT int square(fl_udf_context_t *ctx, const fl_udf_record_t *in,
 *                            fl_udf_record_t *out) { ... }
 *
 * The operator's type says which kind a symbol is (map, flatmap, filter);
 * the runner trusts it. Two optional symbols per function, <name>_open and
 * <name>_close, run before the first record and after the last one of
 * each parallel instance (also after a failure or a cancel, if open
 * succeeded).
 *
 * Threads: each parallel instance runs on a thread of its own, and several
 * instances of one function may run at the same time in one process, so a
 * function keeps its state in ctx->state, never in globals. All calls of
 * one instance are made on one thread, one at a time.
 *
 * Every function returns FL_UDF_OK (0) to go on, or anything else to fail
 * the task; fl_udf_fail() writes the message the task fails with.
 */
#ifndef FLING_UDF_H
#define FLING_UDF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version of this header. A user library exports the version it
 * was built with (FL_UDF_ABI); the loader refuses any other one. Raised
 * when a struct or a function type below changes. */
#define FL_UDF_ABI_VERSION 1u

/* The symbol that holds a library's ABI version. */
#define FL_UDF_ABI_SYMBOL "fl_udf_abi_version"

/* Exports a symbol from a user library, even one built with
 * -fvisibility=hidden. */
#if defined(__GNUC__)
#define FL_UDF_EXPORT __attribute__((visibility("default")))
#else
#define FL_UDF_EXPORT
#endif

/* Write FL_UDF_ABI; once, at file scope, in one source of the library. */
#ifdef __cplusplus
#define FL_UDF_ABI                                                             \
    extern "C" FL_UDF_EXPORT const uint32_t fl_udf_abi_version;                \
    const uint32_t fl_udf_abi_version = FL_UDF_ABI_VERSION
#else
#define FL_UDF_ABI                                                             \
    FL_UDF_EXPORT extern const uint32_t fl_udf_abi_version;                    \
    const uint32_t fl_udf_abi_version = FL_UDF_ABI_VERSION
#endif

/* What a function returns to go on. */
#define FL_UDF_OK 0

/* A record: len bytes at data (a line without its newline; not
 * NUL-terminated). The bytes are borrowed: valid during the call only. */
typedef struct fl_udf_record {
    const char *data;
    size_t len;
} fl_udf_record_t;

/* One parameter of the operator, as the job file gives it. */
typedef struct fl_udf_param {
    const char *key;
    const char *value;
} fl_udf_param_t;

/*
 * What a function knows of the parallel instance it runs in. The runner
 * owns it; it lives from open to close. Fields are read-only to the
 * function except state, which is the function's own (NULL at open).
 */
typedef struct fl_udf_context {
    const char *op_id;    /* the operator's id in the job: "squares" */
    const char *function; /* the function's name: "square" */
    const fl_udf_param_t *params;
    size_t n_params;
    uint32_t subtask;     /* this instance, 0 .. parallelism - 1 */
    uint32_t parallelism; /* the number of instances */
    uint32_t attempt;     /* the execution attempt, 0 for the first one */
    void *state;          /* the function's own, for open to set */
    char *err;            /* fl_udf_fail() writes here */
    size_t errlen;
} fl_udf_context_t;

/*
 * The collector of a flatmap: fl_udf_emit() hands it one record. Its
 * emit returns FL_UDF_OK, or not 0 when the task must stop (a later
 * operator failed, or the task was canceled): the flatmap then returns
 * that value at once.
 */
typedef struct fl_udf_collector fl_udf_collector_t;
struct fl_udf_collector {
    int (*emit)(fl_udf_collector_t *self, const void *data, size_t len);
};

/*
 * A map: one record in, exactly one out. The function sets out->data and
 * out->len; the bytes must stay valid until it is called again or closed
 * (they may point into in, or into memory held in ctx->state). data may
 * be NULL only when len is 0; anything else fails the task.
 */
typedef int (*fl_udf_map_fn)(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                             fl_udf_record_t *out);

/* A flatmap: one record in, any number out through fl_udf_emit(out, ...),
 * which copies nothing: later operators use the bytes during the call. */
typedef int (*fl_udf_flatmap_fn)(fl_udf_context_t *ctx,
                                 const fl_udf_record_t *in,
                                 fl_udf_collector_t *out);

/* A filter: sets *keep to 1 to pass the record on, 0 to drop it. */
typedef int (*fl_udf_filter_fn)(fl_udf_context_t *ctx,
                                const fl_udf_record_t *in, int *keep);

/* Optional: <name>_open, before the first record; a failure fails the
 * task (close is then not called). */
typedef int (*fl_udf_open_fn)(fl_udf_context_t *ctx);

/* Optional: <name>_close, after the last record, a failure or a cancel;
 * frees what open set in ctx->state. */
typedef void (*fl_udf_close_fn)(fl_udf_context_t *ctx);

/* fl_udf_emit hands len bytes at data to the collector; returns what the
 * rest of the chain returned (see fl_udf_collector_t). */
static inline int fl_udf_emit(fl_udf_collector_t *out, const void *data,
                              size_t len)
{
    return out->emit(out, data, len);
}

/* fl_udf_param returns the value of the operator's parameter key, or NULL
 * if it has none. */
static inline const char *fl_udf_param(const fl_udf_context_t *ctx,
                                       const char *key)
{
    for (size_t i = 0; i < ctx->n_params; i++)
        if (strcmp(ctx->params[i].key, key) == 0)
            return ctx->params[i].value;
    return NULL;
}

/* fl_udf_fail writes the message the task fails with (printf format, cut
 * to fit) and returns -1, for `return fl_udf_fail(ctx, ...);`. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static inline int
fl_udf_fail(fl_udf_context_t *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (ctx->errlen > 0)
        vsnprintf(ctx->err, ctx->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

#ifdef __cplusplus
}
#endif

#endif
