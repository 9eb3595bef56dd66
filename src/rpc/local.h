/*
 * src/rpc/local.h - the in-process transport (local.c): its caller's ops,
 * the sink of local asks, and local gateways.
 */
#ifndef FL_RPC_LOCAL_H
#define FL_RPC_LOCAL_H

#include <fling/rpc.h>

#include <stdint.h>

#include "actor/future.h"
#include "rpc/tran.h"

#define FL__RPC_LOCAL_SCHEME "fling://local/"

extern const fl__rpc_tran_t fl__rpc_tran_local;
extern const fl__rpc_sink_t fl__rpc_sink_local;

/*
 * A gateway to a local endpoint's service_index-th service, fenced as
 * `fence` with token (may be NULL; copied). NULL when out of memory. Any
 * thread; ep is held by the caller (or svc->mu).
 */
fl_rpc_gateway_t *fl__rpc_local_gw(fl_rpc_service_t *svc, fl_rpc_endpoint_t *ep,
                                   uint32_t service_index, uint8_t fence,
                                   const fl_fencing_token_t *token);

/*
 * The tell of method with req through the local gateway gw (its
 * transport's tell op): FL_OK once queued at the endpoint; else the code,
 * a refusal saying why (fl__rpc_refuse), and a tell the endpoint can no
 * longer take logged as dropped. Any thread; never blocks; req is
 * borrowed (copied).
 */
int fl__rpc_local_tell(fl_rpc_gateway_t *gw, unsigned method,
                       const ProtobufCMessage *req);

/* The tell of method to gw's endpoint was refused by the runtime with rc
 * (FL_EUNREACHABLE: the endpoint has terminated; FL_ECLOSED: its system
 * closed): logged as dropped, and for FL_EUNREACHABLE a refusal says why.
 * Returns rc. Any thread. */
int fl__rpc_local_tell_refused(fl_rpc_gateway_t *gw, unsigned method, int rc);

/*
 * The local transport's ask (tran.h), with then (may be NULL) registered
 * on the ask's future before the call goes (fl__ask_named): on FL_OK the
 * future owns it; on an error it never runs and *ask is NULL (then->f,
 * the future the caller made, is consumed either way). Any thread.
 */
int fl__rpc_local_ask(fl_rpc_gateway_t *gw, unsigned method,
                      const ProtobufCMessage *req, int64_t timeout_ms,
                      const fl__ask_then_t *then, fl_future_t **ask);

/*
 * The text of a call to endpoint id that it can no longer take:
 * "recipient unreachable: rpc endpoint '<id>' has terminated", then
 * " (<method> not delivered)" when method (package.Service.Method) is not
 * NULL. Written into buf (cap bytes, terminated); returns buf.
 */
const char *fl__rpc_say_terminated(char *buf, size_t cap, const char *id,
                                   const char *method);

/*
 * fl__rpc_refuse_task says why a task for ep (a run_async, call_async,
 * on_complete or scheduled task) was refused with rc, through
 * fl__rpc_refuse, and returns rc: FL_EUNREACHABLE as
 * fl__rpc_say_terminated, FL_ECLOSED "the actor system of rpc endpoint
 * '<id>' has closed", otherwise "could not <what> rpc endpoint '<id>':
 * <fl_strerror(rc)>" (what: "queue a task to", "schedule a task on").
 */
int fl__rpc_refuse_task(const fl_rpc_endpoint_t *ep, int rc, const char *what);

/* Give f, the future of a callable run on ep (fl_rpc_call_async), the
 * names its timeout fails with: "Invocation of a callable on <address>
 * timed out after N ms". Takes a reference to ep. f is new: not yet seen
 * by another thread. */
void fl__rpc_name_callable(fl_future_t *f, fl_rpc_endpoint_t *ep);

#endif /* FL_RPC_LOCAL_H */
