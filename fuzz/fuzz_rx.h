/*
 * fuzz_rx.h - checks shared by the fuzz targets that run a connection's
 * receiving side (stream_fuzz.c, tls_fuzz.c).
 */
#ifndef FL_FUZZ_RX_H
#define FL_FUZZ_RX_H

#include <stdlib.h>

#include "common/internal.h"

/* An error that ends the connection: a documented code, with a reason.
 * Anything else aborts (the fuzzer's finding). */
static inline void fuzz_check_rx_error(int rc, const char *why)
{
    if (rc != FL_EPROTO && rc != FL_EHANDSHAKE && rc != FL_EMSGSIZE &&
        rc != FL_ENOMEM)
        abort();
    if (why[0] == '\0')
        abort();
}

#endif
