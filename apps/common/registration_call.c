/*
 * apps/common/registration_call.c - the register call and its reply's
 * hand-over; see registration_call.h.
 */
#include "registration_call.h"

int fa_registration_call(fl_rpc_gateway_t *gw, unsigned m,
                         const ProtobufCMessage *req, int64_t timeout_ms,
                         fl_then_cb map, fl_future_t **out)
{
    fl_future_t *f = NULL;
    int rc = fl_rpc_call(gw, m, req, timeout_ms, &f);
    if (rc != FL_OK)
        return rc;
    *out = fl_future_then(f, map, NULL);
    fl_future_release(f);
    return *out != NULL ? FL_OK : FL_ENOMEM;
}

int fa_registration_out(fl_registration_response_t *resp, void **out,
                        fl_free_cb *out_free)
{
    if (resp == NULL)
        return FL_ENOMEM;
    *out = resp;
    *out_free = fl_registration_response_free;
    return FL_OK;
}
