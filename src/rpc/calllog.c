/*
 * calllog.c - the log lines of calls (calllog.h): dropped tells, and the
 * calls a service receives and answers at debug.
 */
#include "rpc/calllog.h"

#include "rpc/call.h"
#include "rpc/endpoint.h"

#include <stdio.h>

/* One line a window for each reason (fl__rpc_drop_t). */
static fl__ratelimit_t drop_rl[FL__DROP_COUNT] = {
    [FL__DROP_NOT_STARTED] = {.burst = 1},
    [FL__DROP_FENCING] = {.burst = 1},
    [FL__DROP_NO_HANDLER] = {.burst = 1},
    [FL__DROP_NO_ENDPOINT] = {.burst = 1},
    [FL__DROP_SEND] = {.burst = 1},
};

void fl__rpc_tell_dropped(fl__rpc_drop_t reason, const char *ep_id,
                          const char *method, const char *peer,
                          const char *why_fmt, ...)
{
    if (!fl__log_on(FL_LOG_COMPONENT, FL_LOG_WARN))
        return;
    char why[1100];
    va_list ap;
    va_start(ap, why_fmt);
    vsnprintf(why, sizeof why, why_fmt, ap);
    va_end(ap);
    fl__log_limited(&drop_rl[reason], FL_LOG_COMPONENT, FL_LOG_WARN,
                    FL_KV(FL_F("endpoint", ep_id), FL_F("method", method),
                          FL_F("peer", peer)),
                    "tell of %s to rpc endpoint '%s' dropped: %s", method,
                    ep_id, why);
}

const char *fl__rpc_ep_method_name(const fl_rpc_endpoint_t *ep, uint32_t s,
                                   uint32_t m, char *buf, size_t cap)
{
    const ProtobufCServiceDescriptor *d =
        ep != NULL && s < ep->nservices ? ep->services[s]->descriptor : NULL;
    return fl__rpc_method_name(d, m, buf, cap);
}

uint64_t fl__rpc_log_received(bool tell, const char *ep_id, const char *method,
                              uint64_t corr, const char *peer)
{
    if (tell)
        FL_LOG_KV(FL_LOG_DEBUG,
                  FL_KV(FL_F("endpoint", ep_id), FL_F("method", method),
                        FL_F("peer", peer)),
                  "tell received");
    else
        FL_LOG_KV(FL_LOG_DEBUG,
                  FL_KV(FL_F("endpoint", ep_id), FL_F("method", method),
                        FL_FU64("corr", corr), FL_F("peer", peer)),
                  "call received");
    return fl_clock_now_ns();
}

void fl__rpc_log_answered(const char *ep_id, uint64_t corr, const char *peer,
                          int code, uint64_t recv_ns)
{
    if (!fl__rpc_calls_traced())
        return;
    char ms[32] = "";
    if (recv_ns != 0) {
        uint64_t now = fl_clock_now_ns();
        snprintf(ms, sizeof ms, "%.3f",
                 (double)(now > recv_ns ? now - recv_ns : 0) / 1e6);
    }
    FL_LOG_KV(FL_LOG_DEBUG,
              FL_KV(FL_F("endpoint", ep_id), FL_FU64("corr", corr),
                    FL_F("peer", peer), FL_F("code", fl_err_name(code)),
                    FL_F("duration_ms", recv_ns != 0 ? ms : NULL)),
              "call answered");
}
