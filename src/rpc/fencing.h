/*
 * src/rpc/fencing.h - fenced endpoints (Flink's FencedRpcEndpoint): how a
 * call is fenced, and the check a fenced endpoint makes of it (fencing.c).
 */
#ifndef FL_RPC_FENCING_H
#define FL_RPC_FENCING_H

#include <fling/rpc.h>

#include <stddef.h>
#include <stdint.h>

/* How a call is fenced. */
enum { FENCE_NONE = 0, FENCE_TOKEN = 1, FENCE_SELF = 2 };

/*
 * Whether a call fenced as `fence` with `token` may run on ep: FL_OK (ep is
 * not fenced, the call comes from its self gateway, or the tokens match),
 * else FL_EFENCING with why (naming `method`). Main thread of ep.
 */
int fl__rpc_fence_check(const fl_rpc_endpoint_t *ep, uint8_t fence,
                        const fl_fencing_token_t *token, const char *method,
                        char *why, size_t why_len);

#endif /* FL_RPC_FENCING_H */
