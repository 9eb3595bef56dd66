/*
 * apps/job/job_int.h - the insides of a job, shared by the files of the
 * job library (builder, checks, parser, writer, graphs). Internal.
 */
#ifndef FLING_APPS_JOB_JOB_INT_H
#define FLING_APPS_JOB_JOB_INT_H

#include <stdbool.h>

#include "job/job.h"
#include "job/spec.h"

/* One operator as written: params unsubstituted. */
typedef struct fj_op {
    char *id;
    char *type;
    char *input; /* NULL: the operator before it */
    int parallelism;
    bool has_parallelism;
    fj_param_t *params; /* keys and values owned (cast away const) */
    size_t n_params, cap_params;
    unsigned line; /* in the job file; 0 when built in C */
} fj_op_t;

/* One job parameter. */
typedef struct fj_jparam {
    char *name;
    char *def;   /* NULL: none */
    char *value; /* from fj_job_set_arg; NULL: none */
    unsigned line;
} fj_jparam_t;

struct fj_job {
    char *name;
    char *file; /* the job file's name, for messages; NULL when built */
    int parallelism;
    unsigned parallelism_line;
    char *library;
    fj_jparam_t *params;
    size_t n_params, cap_params;
    fj_op_t *ops;
    size_t n_ops, cap_ops;
};

/* fj__op_where writes " (FILE:LINE)" for an operator of a job file, or ""
 * for one built in C, into buf. Returns buf. */
const char *fj__op_where(const fj_job_t *job, const fj_op_t *op, char *buf,
                         size_t len);

/* fj__param_find returns the job parameter name (n bytes), or NULL. */
fj_jparam_t *fj__param_find(const fj_job_t *job, const char *name, size_t n);

/* fj__op_input returns the index of op i's input operator, -1 for none (a
 * source, or the first operator), -2 when its input names no operator. */
long fj__op_input(const fj_job_t *job, size_t i);

/* fj__op_inputs returns fj__op_input of every operator, as an array the
 * caller frees, or NULL when memory runs out. */
long *fj__op_inputs(const fj_job_t *job);

/* fj__substitute expands "${name}" (and "$$" to "$") in text for operator
 * op (NULL: the job's library), giving a value from each parameter's
 * argument or default. Returns the new string (caller frees) or NULL with
 * the reason in err: FL_EINVAL or FL_ENOMEM in *rc. With check_only, no
 * value is needed: only the names are checked, and NULL is returned with
 * *rc FL_OK. */
char *fj__substitute(const fj_job_t *job, const fj_op_t *op, const char *key,
                     const char *text, bool check_only, int *rc, char *err,
                     size_t errlen);

/* fj__add_param_raw adds param key=value to op (copied), replacing one
 * with the same key. */
int fj__op_set_param(fj_op_t *op, const char *key, const char *value);

#endif
