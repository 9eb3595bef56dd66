/*
 * tests/apps/task/udf_bad_abi.c - a user library built for another ABI
 * version (999), which the loader must refuse.
 */
#include <fling/udf.h>

FL_UDF_EXPORT extern const uint32_t fl_udf_abi_version;
const uint32_t fl_udf_abi_version = 999;

FL_UDF_EXPORT int square(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                         fl_udf_record_t *out);

int square(fl_udf_context_t *ctx, const fl_udf_record_t *in,
           fl_udf_record_t *out)
{
    *out = *in;
    return FL_UDF_OK;
}
