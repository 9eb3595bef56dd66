/*
 * apps/common/registration_call.h - the call half of a registration's
 * invoke (fl_registration_spec_t): send the register request, map its
 * reply to a fl_registration_response_t. The JobMaster and the
 * TaskExecutor register at the ResourceManager through it, each with its
 * own request and reply mapping.
 */
#ifndef FLING_APPS_COMMON_REGISTRATION_CALL_H
#define FLING_APPS_COMMON_REGISTRATION_CALL_H

#include <stdint.h>

#include <fling/future.h>
#include <fling/registration.h>
#include <fling/rpc.h>

/*
 * fa_registration_call calls method m of gw with req (timeout_ms) and
 * puts into *out a future (the caller owns it) of the reply mapped by
 * map, which completes it with a fl_registration_response_t. Returns
 * FL_OK, the call's refusal, or FL_ENOMEM. req is only read during the
 * call. Any thread; does not block.
 */
int fa_registration_call(fl_rpc_gateway_t *gw, unsigned m,
                         const ProtobufCMessage *req, int64_t timeout_ms,
                         fl_then_cb map, fl_future_t **out);

/*
 * fa_registration_out hands resp out of a then-callback (map above):
 * *out takes it, *out_free frees it. Returns FL_OK, or FL_ENOMEM when
 * resp is NULL (its allocation failed).
 */
int fa_registration_out(fl_registration_response_t *resp, void **out,
                        fl_free_cb *out_free);

#endif
