/*
 * tran.c - the table of answer sinks (tran.h) by the index an RPC_INVOKE
 * message carries: one entry per transport that receives calls.
 */
#include "rpc/tran.h"

#include "rpc/local.h"
#include "rpc/tcp.h"

const fl__rpc_sink_t *const fl__rpc_sinks[] = {
    [FL__RPC_SINK_LOCAL] = &fl__rpc_sink_local,
    [FL__RPC_SINK_WIRE] = &fl__rpc_sink_wire,
};
