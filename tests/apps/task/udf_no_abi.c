/*
 * tests/apps/task/udf_no_abi.c - a user library without FL_UDF_ABI,
 * which the loader must refuse.
 */
#include <fling/udf.h>

FL_UDF_EXPORT int square(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                         fl_udf_record_t *out);

int square(fl_udf_context_t *ctx, const fl_udf_record_t *in,
           fl_udf_record_t *out)
{
    *out = *in;
    return FL_UDF_OK;
}
