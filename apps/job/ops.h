/*
 * apps/job/ops.h - the one table of the operator types a job may use (the
 * types of spec.h), with the params each requires. The job file parser,
 * the builder and the task runner all read it, so they agree on what an
 * operator is.
 */
#ifndef FLING_APPS_JOB_OPS_H
#define FLING_APPS_JOB_OPS_H

#include <stddef.h>

/* Where an operator sits in a flow. */
typedef enum fj_op_kind {
    FJ_OP_SOURCE,    /* no input; starts a flow */
    FJ_OP_TRANSFORM, /* one input, one output */
    FJ_OP_SINK       /* one input; ends a flow */
} fj_op_kind_t;

/* What a param's value must be, once job parameters are substituted. */
typedef enum fj_param_kind {
    FJ_PARAM_TEXT, /* any string */
    FJ_PARAM_INT   /* a decimal integer (a sign allowed), as 64 bits */
} fj_param_kind_t;

/* One param an operator type requires. */
typedef struct fj_param_def {
    const char *key;
    fj_param_kind_t kind;
} fj_param_def_t;

/* An operator type: "filter.contains", a filter, named "Filter" in graphs
 * (as Flink names its operators), requiring "pattern". */
typedef struct fj_op_type {
    const char *name;
    fj_op_kind_t kind;
    const char *display;
    const fj_param_def_t *params;
    size_t n_params;
} fj_op_type_t;

/* fj_op_types returns the table (static, never freed) and its length in
 * *n. Any thread. */
const fj_op_type_t *fj_op_types(size_t *n);

/* fj_op_type_find returns the type named name, or NULL if none is. Any
 * thread. */
const fj_op_type_t *fj_op_type_find(const char *name);

/* fj_op_type_nearest returns the known type name nearest to name (a
 * static string), or NULL if none is near enough to suggest. Any thread. */
const char *fj_op_type_nearest(const char *name);

#endif
