/*
 * src/rpc/calllog.h - the log lines of calls: dropped tells (warn, one
 * line a second per reason) and, at debug, each call a service receives
 * and answers. Every function is for a log site whose level check
 * passed or that makes its own; none blocks beyond the log sink.
 */
#ifndef FL_RPC_CALLLOG_H
#define FL_RPC_CALLLOG_H

#include <fling/rpc.h>

#include <stddef.h>
#include <stdint.h>

#include "common/internal.h"

/* Room for "package.Service.Method" in a log line. */
#define FL__RPC_NAME_MAX 256

/* Why a tell was dropped: each reason is rate-limited apart. */
typedef enum fl__rpc_drop {
    FL__DROP_NOT_STARTED, /* the endpoint has not been started */
    FL__DROP_FENCING,     /* no fencing token, or another one */
    FL__DROP_NO_HANDLER,  /* the endpoint does not implement the method */
    FL__DROP_NO_ENDPOINT, /* no endpoint of that id (remote) */
    FL__DROP_SEND,        /* the endpoint's actor refused it (terminated) */
    FL__DROP_COUNT
} fl__rpc_drop_t;

/*
 * Log that a tell of `method` ("package.Service.Method") to endpoint
 * ep_id (from peer, NULL if local) was dropped, at warn, at most one line
 * per FL__LOG_WINDOW_NS for each reason, the next one carrying the count
 * suppressed: "tell of M to rpc endpoint 'X' dropped: <why>", with the
 * fields endpoint, method and peer. Any thread.
 */
void fl__rpc_tell_dropped(fl__rpc_drop_t reason, const char *ep_id,
                          const char *method, const char *peer,
                          const char *why_fmt, ...) FL_PRINTF(5, 6);

/*
 * The name of method m of service s of ep, "package.Service.Method", into
 * buf (cap bytes); "?#m" for a service index out of range. Returns buf.
 */
const char *fl__rpc_ep_method_name(const fl_rpc_endpoint_t *ep, uint32_t s,
                                   uint32_t m, char *buf, size_t cap);

/* Whether the debug lines of calls are on: one load. */
static inline bool fl__rpc_calls_traced(void)
{
    return fl__log_on(FL_LOGC_RPC, FL_LOG_DEBUG);
}

/*
 * At debug: a call (or tell) received from peer for endpoint ep_id,
 * method, corr. Returns the time it was received (fl_clock_now_ns) for
 * fl__rpc_log_answered. Call only if fl__rpc_calls_traced().
 */
uint64_t fl__rpc_log_received(bool tell, const char *ep_id, const char *method,
                              uint64_t corr, const char *peer);

/*
 * At debug: the call corr of endpoint ep_id (NULL if none) from peer was
 * answered with code (FL_OK for a reply), recv_ns (0: unknown) after it
 * was received. Checks the level itself.
 */
void fl__rpc_log_answered(const char *ep_id, uint64_t corr, const char *peer,
                          int code, uint64_t recv_ns);

#endif /* FL_RPC_CALLLOG_H */
