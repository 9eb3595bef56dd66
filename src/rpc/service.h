/*
 * src/rpc/service.h - the RPC service: its registry of endpoints, its
 * scheduled tasks and its transport's settings. service.c owns the
 * registry and the service's life; tasks.c its tasks; tcp*.c its
 * transport fields.
 */
#ifndef FL_RPC_SERVICE_H
#define FL_RPC_SERVICE_H

#include <fling/rpc.h>

#include <pthread.h>
#include <stdbool.h>

#include "actor/claim.h"
#include "remote/net.h"
#include "remote/tls.h"

struct fl__rpc_task; /* tasks.c */

struct fl_rpc_service {
    fl_system_t *sys;
    bool own_sys;
    int64_t timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a task finished running */
    /* Live (not yet terminated), NEWEST FIRST: a pattern resolves to the
     * first match (resolve.c). */
    fl_rpc_endpoint_t *endpoints;
    bool closed;
    bool shut_down;
    fl_future_t *close_future;
    uint64_t anon;
    struct fl__rpc_task *tasks;
    uint64_t next_task;

    /* Remoting (tcp.c). net: the transport, made by alloc when the
     * service listens, else by the first remote connect (under mu). */
    fl__net_t *net;
    /* TLS on every connection (opts.tls, read by alloc); NULL:
     * plaintext. */
    fl__tls_ctx_t *tls;
    char *host; /* external host; NULL for a local-only service */
    int port;   /* bound port, or -1 */
    char *name;
    uint32_t max_frame;
    size_t max_queued;
    /* This service's life among all (random, never 0): announced in
     * HELLO, and in its endpoints' wire instance ids (tcp_server.c). */
    uint64_t incarnation;
    /* The method tables of its endpoints' services, one per service
     * descriptor (endpoint.c; under mu, freed with the service). */
    struct fl__rpc_tell_table *tell_tables;
    int64_t handshake_ms;     /* 0: the transport's default */
    unsigned max_handshaking; /* 0: the transport's default */
    size_t max_inbound;
    /* Calls from the wire to an idle endpoint run on the I/O thread
     * (opts.no_io_turns false); the turns claimed while dispatching a read,
     * run by on_frames in tcp_server.c (I/O thread only). */
    bool io_turns;
    unsigned io_nclaims;
    struct io_claim {
        fl__claim_t claim;
        fl_rpc_endpoint_t *ep; /* one reference */
        size_t id_len;         /* strlen(ep->id) */
    } io_claims[16];

    /* Calls dropped because their caller's deadline had passed before
     * they started (dispatch.c), and when that was last logged
     * (fl__clock_coarse_ns). Relaxed: counters on their own. */
    _Atomic uint64_t st_expired;
    _Atomic uint64_t expired_logged_ns;
};

/* The registered, not yet terminated endpoint with this id, or NULL. The
 * caller holds svc->mu; the endpoint is not retained. */
fl_rpc_endpoint_t *fl__rpc_find_ep(fl_rpc_service_t *svc, const char *id);

#endif /* FL_RPC_SERVICE_H */
