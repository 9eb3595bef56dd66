/*
 * src/rpc/resolve.h - what fl_rpc_connect looks up in a service's
 * registry: an endpoint id or a pattern (resourcemanager_*) resolved to a
 * live endpoint, and, when none is found, the reason a caller reads.
 * Local connects (local.c) and remote CONNECTs (tcp_server.c) both use it,
 * so the two transports resolve and refuse alike.
 */
#ifndef FL_RPC_RESOLVE_H
#define FL_RPC_RESOLVE_H

#include <fling/rpc.h>

#include <stdbool.h>
#include <stddef.h>

/* The ids a refusal lists at most, the smallest first. */
#define FL__RPC_RESOLVE_LIST 8

/*
 * fl__rpc_resolve finds the endpoint `id` names among svc's registered
 * (created, not yet terminated) endpoints. An id without * names the
 * endpoint with that id. A pattern (a *, fl__id_match) names the NEWEST
 * matching endpoint that implements `gateway` (a service's full name;
 * NULL: any), the one created last, started or not: the registry is kept
 * newest first (endpoint.c); when no match implements it, the newest
 * match (its caller then refuses the gateway). A pattern of * alone names
 * none.
 *
 * Returns the endpoint (not retained), or NULL with the reason in why
 * (cap bytes; not NULL). With `disclose` (a caller in this process) the
 * reason lists the service's ids, the first FL__RPC_RESOLVE_LIST sorted,
 * then "and N more"; without (a remote caller: ids are not told to other
 * processes) it gives their number, and for an id how many would match
 * the pattern <id>*. The caller holds svc->mu. Never blocks.
 */
fl_rpc_endpoint_t *fl__rpc_resolve(fl_rpc_service_t *svc, const char *id,
                                   const char *gateway, bool disclose,
                                   char *why, size_t cap);

#endif /* FL_RPC_RESOLVE_H */
