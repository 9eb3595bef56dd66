/*
 * apps/task/source_sequence.c - source.sequence: the numbers from..to
 * (inclusive) as decimal text; instance i of n takes the i-th contiguous
 * share, so the instances' outputs in order are the whole sequence.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <fling/common.h>

#include "task_int.h"

typedef struct seq_source {
    int64_t first;
    unsigned __int128 count; /* up to 2^64 */
} seq_source_t;

static int seq_finish(fj_op_t *op, int ok)
{
    free(op->impl);
    op->impl = NULL;
    return FL_OK;
}

static int seq_produce(fj_op_t *op)
{
    seq_source_t *s = op->impl;
    char num[24];
    for (unsigned __int128 k = 0; k < s->count; k++) {
        int64_t v = (int64_t)((uint64_t)s->first + k);
        int len = snprintf(num, sizeof(num), "%" PRId64, v);
        int rc = fj_source_emit(op, num, (size_t)len);
        if (rc != FL_OK)
            return rc;
    }
    return FL_OK;
}

/* Parses the whole of text as a decimal int64; fails op if it is not. */
static int parse_i64(fj_op_t *op, const char *key, const char *text,
                     int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE)
        return fj_op_fail(op, FL_EINVAL,
                          "has '%s' = '%s', which is not a 64-bit decimal "
                          "integer",
                          key, text);
    *out = (int64_t)v;
    return FL_OK;
}

int fj_source_sequence_setup(fj_op_t *op)
{
    const char *from_s = fj_op_param(op, "from");
    if (!from_s)
        return FL_EINVAL;
    const char *to_s = fj_op_param(op, "to");
    if (!to_s)
        return FL_EINVAL;
    int64_t from = 0, to = 0;
    int rc = parse_i64(op, "from", from_s, &from);
    if (rc == FL_OK)
        rc = parse_i64(op, "to", to_s, &to);
    if (rc != FL_OK)
        return rc;
    if (from > to)
        return fj_op_fail(op, FL_EINVAL,
                          "has 'from' = %" PRId64
                          " greater than 'to' = %" PRId64
                          "; write the smaller number first",
                          from, to);
    seq_source_t *s = malloc(sizeof(*s));
    if (!s)
        return fj_op_fail(op, FL_ENOMEM, "is out of memory");
    const fj_task_t *t = op->run->task;
    /* n numbers in all; 2^64 of them for the whole int64 range. */
    unsigned __int128 n =
        (unsigned __int128)((uint64_t)to - (uint64_t)from) + 1;
    unsigned __int128 lo = n * t->subtask / t->parallelism;
    unsigned __int128 hi = n * (t->subtask + 1) / t->parallelism;
    s->first = (int64_t)((uint64_t)from + lo);
    s->count = hi - lo;
    op->impl = s;
    op->produce = seq_produce;
    op->finish = seq_finish;
    return FL_OK;
}
