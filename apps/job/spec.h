/*
 * apps/job/spec.h - one operator of a job, as the job model hands it to the
 * task runner: the meeting point of apps/job/ (which parses job files and
 * builds the graphs) and apps/task/ (which runs operators).
 *
 * Operator types are strings, so a job file names them as a user writes
 * them. The built-in types of this version:
 *   source.text      params: path      lines of a text file; parallel
 *                                      instance i of n reads the i-th byte
 *                                      range and owns the lines that start
 *                                      in it
 *   source.sequence  params: from, to  the numbers from..to (inclusive) as
 *                                      decimal text; instance i of n takes
 *                                      its contiguous share
 *   filter.contains  params: pattern   keeps the records that contain the
 *                                      fixed string, as grep -F does
 *   map, flatmap, filter               params: function (a symbol of the
 *                                      job's user library, or a built-in
 *                                      function of apps/task/)
 *   sink.text        params: path      a folder; instance i writes the part
 *                                      file part-<i>, under a temporary name
 *                                      renamed when the task finishes
 * Records are byte strings (a line without its newline).
 *
 * Every string is owned by whoever built the spec (the job model); the
 * runner copies what it keeps.
 */
#ifndef FLING_APPS_JOB_SPEC_H
#define FLING_APPS_JOB_SPEC_H

#include <stddef.h>
#include <string.h>

/* One parameter of an operator: "path" = "/tmp/in.txt". */
typedef struct fj_param {
    const char *key;
    const char *value;
} fj_param_t;

/* One operator, with its parameters after job parameter substitution
 * ("${input}" already replaced by the value of --input). */
typedef struct fj_op_spec {
    const char *id;   /* unique in the job: "lines" */
    const char *type; /* "source.text", "map", ... */
    const fj_param_t *params;
    size_t n_params;
} fj_op_spec_t;

/* fj_spec_param returns the value of key in op, or NULL if op has none. */
static inline const char *fj_spec_param(const fj_op_spec_t *op, const char *key)
{
    for (size_t i = 0; i < op->n_params; i++)
        if (strcmp(op->params[i].key, key) == 0)
            return op->params[i].value;
    return NULL;
}

#endif
