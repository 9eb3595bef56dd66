/*
 * examples/jobs/udf/udf_example.c - an example user library for fling
 * jobs, built as libfling_udf_example.so against <fling/udf.h> only:
 *   square  map      a decimal integer to its square ("12" -> "144")
 *   words   flatmap  a line to its words, split on spaces and tabs
 * examples/jobs/sequence.json runs a number sequence through square.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fling/udf.h>

FL_UDF_ABI;

/* The text of square's last output: lives until the next call. */
typedef struct square_state {
    char out[24];
} square_state_t;

FL_UDF_EXPORT int square_open(fl_udf_context_t *ctx);
FL_UDF_EXPORT void square_close(fl_udf_context_t *ctx);
FL_UDF_EXPORT int square(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                         fl_udf_record_t *out);
FL_UDF_EXPORT int words(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                        fl_udf_collector_t *out);

int square_open(fl_udf_context_t *ctx)
{
    ctx->state = calloc(1, sizeof(square_state_t));
    return ctx->state ? FL_UDF_OK : fl_udf_fail(ctx, "out of memory");
}

void square_close(fl_udf_context_t *ctx)
{
    free(ctx->state);
    ctx->state = NULL;
}

/* square fails on a record that is not a decimal integer, and on one
 * whose square does not fit 64 bits. */
int square(fl_udf_context_t *ctx, const fl_udf_record_t *in,
           fl_udf_record_t *out)
{
    square_state_t *st = ctx->state;
    char text[24];
    if (in->len == 0 || in->len >= sizeof(text))
        return fl_udf_fail(ctx, "'%.*s' is not a decimal integer",
                           (int)(in->len > 40 ? 40 : in->len), in->data);
    memcpy(text, in->data, in->len);
    text[in->len] = '\0';
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (*end != '\0' || end == text || errno == ERANGE)
        return fl_udf_fail(ctx, "'%s' is not a decimal integer", text);
    long long sq;
    if (__builtin_mul_overflow(v, v, &sq))
        return fl_udf_fail(ctx, "the square of %lld does not fit 64 bits", v);
    int n = snprintf(st->out, sizeof(st->out), "%lld", sq);
    out->data = st->out;
    out->len = (size_t)n;
    return FL_UDF_OK;
}

int words(fl_udf_context_t *ctx, const fl_udf_record_t *in,
          fl_udf_collector_t *out)
{
    (void)ctx; /* words needs no state */
    size_t i = 0;
    while (i < in->len) {
        while (i < in->len && (in->data[i] == ' ' || in->data[i] == '\t'))
            i++;
        size_t start = i;
        while (i < in->len && in->data[i] != ' ' && in->data[i] != '\t')
            i++;
        if (i > start) {
            int r = fl_udf_emit(out, in->data + start, i - start);
            if (r != FL_UDF_OK)
                return r;
        }
    }
    return FL_UDF_OK;
}
