/*
 * tests/apps/task/udf_test_lib.c - a user library for the task runner's
 * tests (libudf_test_lib.so):
 *   tag      map      "<tag>/<subtask>/<attempt>:<record>", the tag from
 *                     the param "tag" read in tag_open
 *   fail_on  filter   keeps every record, fails on the one equal to the
 *                     param "bad"
 *   twice    flatmap  each record twice
 *   mute     map      fails with 7 and no message
 *   deaf     flatmap  each record twice, ignoring what emit returns
 *   hollow   map      gives 3 bytes at NULL
 *   hollowf  flatmap  emits 4 bytes at NULL
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fling/udf.h>

FL_UDF_ABI;

typedef struct tag_state {
    char prefix[64];
    size_t plen;
    char *buf;
    size_t cap;
} tag_state_t;

FL_UDF_EXPORT int tag_open(fl_udf_context_t *ctx);
FL_UDF_EXPORT void tag_close(fl_udf_context_t *ctx);
FL_UDF_EXPORT int tag(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                      fl_udf_record_t *out);
FL_UDF_EXPORT int fail_on(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                          int *keep);
FL_UDF_EXPORT int twice(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                        fl_udf_collector_t *out);
FL_UDF_EXPORT int deaf(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                       fl_udf_collector_t *out);
FL_UDF_EXPORT int hollow(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                         fl_udf_record_t *out);
FL_UDF_EXPORT int hollowf(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                          fl_udf_collector_t *out);
FL_UDF_EXPORT int mute(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                       fl_udf_record_t *out);

int tag_open(fl_udf_context_t *ctx)
{
    const char *t = fl_udf_param(ctx, "tag");
    if (!t)
        return fl_udf_fail(ctx, "no param 'tag'");
    tag_state_t *st = calloc(1, sizeof(*st));
    if (!st)
        return fl_udf_fail(ctx, "out of memory");
    st->plen = (size_t)snprintf(st->prefix, sizeof(st->prefix), "%s/%u/%u:", t,
                                (unsigned)ctx->subtask, (unsigned)ctx->attempt);
    ctx->state = st;
    return FL_UDF_OK;
}

void tag_close(fl_udf_context_t *ctx)
{
    tag_state_t *st = ctx->state;
    free(st->buf);
    free(st);
    ctx->state = NULL;
}

int tag(fl_udf_context_t *ctx, const fl_udf_record_t *in, fl_udf_record_t *out)
{
    tag_state_t *st = ctx->state;
    size_t need = st->plen + in->len;
    if (need > st->cap) {
        char *nb = realloc(st->buf, need);
        if (!nb)
            return fl_udf_fail(ctx, "out of memory");
        st->buf = nb;
        st->cap = need;
    }
    memcpy(st->buf, st->prefix, st->plen);
    memcpy(st->buf + st->plen, in->data, in->len);
    out->data = st->buf;
    out->len = need;
    return FL_UDF_OK;
}

int fail_on(fl_udf_context_t *ctx, const fl_udf_record_t *in, int *keep)
{
    const char *bad = fl_udf_param(ctx, "bad");
    if (bad && strlen(bad) == in->len && memcmp(bad, in->data, in->len) == 0)
        return fl_udf_fail(ctx, "record '%s' is bad", bad);
    *keep = 1;
    return FL_UDF_OK;
}

int twice(fl_udf_context_t *ctx, const fl_udf_record_t *in,
          fl_udf_collector_t *out)
{
    int r = fl_udf_emit(out, in->data, in->len);
    if (r != FL_UDF_OK)
        return r;
    return fl_udf_emit(out, in->data, in->len);
}

int mute(fl_udf_context_t *ctx, const fl_udf_record_t *in, fl_udf_record_t *out)
{
    return 7;
}

int deaf(fl_udf_context_t *ctx, const fl_udf_record_t *in,
         fl_udf_collector_t *out)
{
    fl_udf_emit(out, in->data, in->len);
    fl_udf_emit(out, in->data, in->len);
    return FL_UDF_OK;
}

int hollow(fl_udf_context_t *ctx, const fl_udf_record_t *in,
           fl_udf_record_t *out)
{
    out->data = NULL;
    out->len = 3;
    return FL_UDF_OK;
}

int hollowf(fl_udf_context_t *ctx, const fl_udf_record_t *in,
            fl_udf_collector_t *out)
{
    return fl_udf_emit(out, NULL, 4);
}
