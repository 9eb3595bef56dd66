/*
 * fencing.c - fenced endpoints (Flink's FencedRpcEndpoint): the token
 * check a fenced endpoint makes of every call that does not come from its
 * own self gateway, and the tokens endpoints and gateways report.
 */
#include "rpc/fencing.h"

#include "rpc/endpoint.h"
#include "rpc/gateway.h"

#include "common/internal.h"

#include <stdio.h>
#include <string.h>

static void token_hex(const fl_fencing_token_t *t, char out[33])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[t->bytes[i] >> 4];
        out[2 * i + 1] = hx[t->bytes[i] & 15];
    }
    out[32] = '\0';
}

int fl__rpc_fence_check(const fl_rpc_endpoint_t *ep, uint8_t fence,
                        const fl_fencing_token_t *token, const char *method,
                        char *why, size_t why_len)
{
    if (!ep->fenced || fence == FENCE_SELF)
        return FL_OK;
    if (fence == FENCE_NONE) {
        snprintf(why, why_len,
                 "Fencing token not set: Ignoring message %s because the "
                 "fenced endpoint %s received it without a fencing token.",
                 method, ep->id);
        return FL_EFENCING;
    }
    if (memcmp(token, &ep->token, sizeof ep->token) == 0)
        return FL_OK;
    /* The caller learns the token it sent, never the current one: a
     * fencing token is not access control, but telling it to anyone who
     * can reach the port would let them act as the leader. The operator
     * reads both in the server's log, one line a window per burst. */
    char want[33], got[33];
    token_hex(&ep->token, want);
    token_hex(token, got);
    FL_LOG_RATELIMITED_KV(
        FL_LOG_WARN, 1, FL_KV(FL_F("endpoint", ep->id), FL_F("method", method)),
        "Fencing token mismatch at rpc endpoint '%s': ignored message %s "
        "carrying the fencing token %s; the current one is %s.",
        ep->id, method, got, want);
    snprintf(why, why_len,
             "Fencing token mismatch: Ignoring message %s because the "
             "fencing token %s is not the fenced endpoint %s's current one.",
             method, got, ep->id);
    return FL_EFENCING;
}

int fl_rpc_endpoint_fencing_token(const fl_rpc_endpoint_t *ep,
                                  fl_fencing_token_t *out)
{
    if (ep == NULL || out == NULL)
        return FL_EINVAL;
    if (!ep->fenced)
        return FL_ENOENT;
    *out = ep->token;
    return FL_OK;
}

int fl_rpc_gateway_fencing_token(const fl_rpc_gateway_t *gw,
                                 fl_fencing_token_t *out)
{
    if (gw == NULL || out == NULL)
        return FL_EINVAL;
    if (!gw->has_token)
        return FL_ENOTSUP;
    *out = gw->token;
    return FL_OK;
}
