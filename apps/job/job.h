/*
 * apps/job/job.h - a job: its name, default parallelism, user library, job
 * parameters and operators in order. Made from a job file (JSON or YAML,
 * docs/jobs.md) or by the builder below; both give the same description,
 * and fj_job_to_json writes it back as a job file.
 *
 * Every function returns an fl_err code (FL_OK, FL_EINVAL for a NULL or
 * empty argument, FL_ENOMEM) unless it says otherwise. A job is not
 * thread-safe: one thread at a time. Nothing blocks except fj_job_load,
 * which reads a file.
 *
 * The builder records what it is given; the rules of a job (known types,
 * unique ids, inputs, no cycles, parallelism >= 1, ...) are checked by
 * fj_job_check, which the parser runs on every file and which
 * fj_stream_graph_build (graph.h) runs again.
 */
#ifndef FLING_APPS_JOB_JOB_H
#define FLING_APPS_JOB_JOB_H

#include <stddef.h>

#include <fling/common.h>

typedef struct fj_job fj_job_t;

/* The highest parallelism a job or an operator may have (Flink's upper
 * bound of max parallelism, 2^15). */
#define FJ_PARALLELISM_MAX 32768

/* The most operators a job may have, and the most subtasks (the sum of
 * its operators' parallelism): far above any real job, low enough that a
 * hostile job file cannot make planning slow or huge. */
#define FJ_OPERATORS_MAX 1024
#define FJ_SUBTASKS_MAX 65536

/* fj_job_new returns an empty job named name (copied), parallelism 1, or
 * NULL when name is NULL or empty or memory runs out. Caller frees with
 * fj_job_free. */
fj_job_t *fj_job_new(const char *name);

/* fj_job_free frees job and all it holds; NULL is a no-op. */
void fj_job_free(fj_job_t *job);

/* fj_job_set_parallelism sets the default parallelism of the operators
 * that do not set their own (fling plan/run -p). Any value is recorded;
 * fj_job_check refuses one below 1. */
int fj_job_set_parallelism(fj_job_t *job, int parallelism);

/* fj_job_set_library sets the path of the user library whose functions
 * the operators name (copied; job parameters are substituted in it). */
int fj_job_set_library(fj_job_t *job, const char *path);

/* fj_job_declare_param declares the job parameter name, used in values as
 * "${name}", with a default value def (copied), or none if def is NULL
 * (then a value must be given). Declaring it again replaces the default. */
int fj_job_declare_param(fj_job_t *job, const char *name, const char *def);

/* fj_job_set_arg gives the declared parameter name the value value (the
 * command line's --name value), which wins over its default. Returns
 * FL_ENOENT, with a message in err naming the job's parameters, when name
 * is not declared. */
int fj_job_set_arg(fj_job_t *job, const char *name, const char *value,
                   char *err, size_t errlen);

/* fj_job_add_op appends the operator id of type type (both copied). Its
 * input is the operator named input, or if input is NULL the operator
 * added before it. */
int fj_job_add_op(fj_job_t *job, const char *id, const char *type,
                  const char *input);

/* fj_job_set_op_param sets param key of the operator id (the last one
 * added with that id) to value (copied; may hold "${name}"). Returns
 * FL_ENOENT when no operator has that id. */
int fj_job_set_op_param(fj_job_t *job, const char *id, const char *key,
                        const char *value);

/* fj_job_set_op_parallelism gives the operator id its own parallelism.
 * FL_ENOENT when no operator has that id. */
int fj_job_set_op_parallelism(fj_job_t *job, const char *id, int parallelism);

/* Shorthands: fj_job_add_op then its params, input the previous operator
 * (sources have none). */
int fj_job_source_text(fj_job_t *job, const char *id, const char *path);
int fj_job_source_sequence(fj_job_t *job, const char *id, const char *from,
                           const char *to);
int fj_job_map(fj_job_t *job, const char *id, const char *function);
int fj_job_flatmap(fj_job_t *job, const char *id, const char *function);
int fj_job_filter(fj_job_t *job, const char *id, const char *function);
int fj_job_filter_contains(fj_job_t *job, const char *id, const char *pattern);
int fj_job_sink_text(fj_job_t *job, const char *id, const char *path);

/* fj_job_name returns the job's name (borrowed, lives as long as job). */
const char *fj_job_name(const fj_job_t *job);

/* fj_job_library returns the user library path as written (before
 * substitution), or NULL. Borrowed. */
const char *fj_job_library(const fj_job_t *job);

/* fj_job_check checks the rules of a job that need no parameter value:
 * FL_OK, or FL_EINVAL with the first broken rule said in err (docs/jobs.md
 * lists them). Job parameter values are checked by fj_stream_graph_build. */
int fj_job_check(const fj_job_t *job, char *err, size_t errlen);

/* fj_job_parse parses the job file text (len bytes, JSON or YAML; name is
 * how messages call it, e.g. its path) and checks it with fj_job_check.
 * On FL_OK *out is the job (caller frees with fj_job_free); otherwise
 * FL_EINVAL (or FL_ENOMEM), the reason in err, and *out is NULL. */
int fj_job_parse(const char *text, size_t len, const char *name, fj_job_t **out,
                 char *err, size_t errlen);

/* fj_job_load reads the file at path and parses it as fj_job_parse does;
 * FL_ENOENT or FL_ESYSTEM when it cannot be read. Blocks on the read. */
int fj_job_load(const char *path, fj_job_t **out, char *err, size_t errlen);

/* fj_job_to_json writes job as a JSON job file that fj_job_parse reads
 * back to the same job; arguments given with fj_job_set_arg travel as the
 * parameters' defaults. On FL_OK *out is a NUL-terminated string of *len
 * bytes the caller frees with free(). */
int fj_job_to_json(const fj_job_t *job, char **out, size_t *len);

#endif
