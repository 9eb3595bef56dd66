/*
 * ops.c - the table of operator types (spec.h lists them) and lookups.
 */
#include <string.h>

#include "job/ops.h"
#include "job/util.h"

static const fj_param_def_t path_only[] = {{"path", FJ_PARAM_TEXT}};
static const fj_param_def_t from_to[] = {{"from", FJ_PARAM_INT},
                                         {"to", FJ_PARAM_INT}};
static const fj_param_def_t pattern_only[] = {{"pattern", FJ_PARAM_TEXT}};
static const fj_param_def_t function_only[] = {{"function", FJ_PARAM_TEXT}};

#define PARAMS(a) a, sizeof a / sizeof a[0]

static const fj_op_type_t types[] = {
    {"source.text", FJ_OP_SOURCE, "Source", PARAMS(path_only)},
    {"source.sequence", FJ_OP_SOURCE, "Source", PARAMS(from_to)},
    {"map", FJ_OP_TRANSFORM, "Map", PARAMS(function_only)},
    {"flatmap", FJ_OP_TRANSFORM, "Flat Map", PARAMS(function_only)},
    {"filter", FJ_OP_TRANSFORM, "Filter", PARAMS(function_only)},
    {"filter.contains", FJ_OP_TRANSFORM, "Filter", PARAMS(pattern_only)},
    {"sink.text", FJ_OP_SINK, "Sink", PARAMS(path_only)},
};

#define N_TYPES (sizeof types / sizeof types[0])

const fj_op_type_t *fj_op_types(size_t *n)
{
    *n = N_TYPES;
    return types;
}

const fj_op_type_t *fj_op_type_find(const char *name)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (strcmp(types[i].name, name) == 0)
            return &types[i];
    return NULL;
}

const char *fj_op_type_nearest(const char *name)
{
    const char *names[N_TYPES];
    for (size_t i = 0; i < N_TYPES; i++)
        names[i] = types[i].name;
    return fj_nearest(name, names, N_TYPES);
}
