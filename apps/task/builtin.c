/*
 * apps/task/builtin.c - the built-in user functions, written against
 * <fling/udf.h> like a user library's:
 *   upper     map      ASCII letters to upper case
 *   words     flatmap  a line to its words (runs of bytes other than
 *                      space, tab, '\r')
 *   nonempty  filter   keeps the records of at least one byte
 */
#include <stdlib.h>
#include <string.h>

#include "task_int.h"

/* upper keeps its output in a buffer of its own, grown as needed. */
typedef struct upper_state {
    char *buf;
    size_t cap;
} upper_state_t;

static int upper(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                 fl_udf_record_t *out)
{
    upper_state_t *st = ctx->state;
    if (!st) {
        st = calloc(1, sizeof(*st));
        if (!st)
            return fl_udf_fail(ctx, "out of memory");
        ctx->state = st;
    }
    if (in->len > st->cap) {
        size_t cap = in->len < 256 ? 256 : in->len;
        char *nb = realloc(st->buf, cap);
        if (!nb)
            return fl_udf_fail(ctx, "out of memory for a record of %zu bytes",
                               in->len);
        st->buf = nb;
        st->cap = cap;
    }
    for (size_t i = 0; i < in->len; i++) {
        char c = in->data[i];
        st->buf[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    out->data = st->buf;
    out->len = in->len;
    return FL_UDF_OK;
}

static void upper_close(fl_udf_context_t *ctx)
{
    upper_state_t *st = ctx->state;
    if (st)
        free(st->buf);
    free(st);
    ctx->state = NULL;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static int words(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                 fl_udf_collector_t *out)
{
    size_t i = 0;
    while (i < in->len) {
        while (i < in->len && is_space(in->data[i]))
            i++;
        size_t start = i;
        while (i < in->len && !is_space(in->data[i]))
            i++;
        if (i > start) {
            int r = fl_udf_emit(out, in->data + start, i - start);
            if (r != FL_UDF_OK)
                return r;
        }
    }
    return FL_UDF_OK;
}

static int nonempty(fl_udf_context_t *ctx, const fl_udf_record_t *in, int *keep)
{
    *keep = in->len > 0;
    return FL_UDF_OK;
}

static const fj_builtin_t builtins[] = {
    {"upper", upper, NULL, NULL, upper_close},
    {"words", NULL, words, NULL, NULL},
    {"nonempty", NULL, NULL, nonempty, NULL},
};

const fj_builtin_t *fj_builtin_find(const char *name)
{
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}
