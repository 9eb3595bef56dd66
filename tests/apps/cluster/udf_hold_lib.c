/*
 * tests/apps/cluster/udf_hold_lib.c - a user library whose task thread
 * outlives a cancel (libudf_hold_lib.so):
 *   hold  map  each record as it is; hold_open first opens the FIFO
 *              named by the environment's HOLD_FIFO (the test sets it
 *              for the TaskManager it starts; a map takes no params) and
 *              reads it to its end, which blocks (deaf to the cancel
 *              flag) until a writer opened and closed it
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <fling/udf.h>

FL_UDF_ABI;

FL_UDF_EXPORT int hold_open(fl_udf_context_t *ctx);
FL_UDF_EXPORT int hold(fl_udf_context_t *ctx, const fl_udf_record_t *in,
                       fl_udf_record_t *out);

int hold_open(fl_udf_context_t *ctx)
{
    const char *path = getenv("HOLD_FIFO");
    if (path == NULL)
        return fl_udf_fail(ctx, "no HOLD_FIFO in the environment");
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return fl_udf_fail(ctx, "cannot open the FIFO");
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
    return FL_UDF_OK;
}

int hold(fl_udf_context_t *ctx, const fl_udf_record_t *in, fl_udf_record_t *out)
{
    (void)ctx;
    *out = *in;
    return FL_UDF_OK;
}
