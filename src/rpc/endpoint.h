/*
 * src/rpc/endpoint.h - the RPC endpoint: an actor whose state is the
 * fl_rpc_endpoint_t and whose mailbox is its main thread. endpoint.c owns
 * its references, its creation, its life cycle (start, stop, terminate)
 * and its termination; dispatch.c runs its main thread.
 */
#ifndef FL_RPC_ENDPOINT_H
#define FL_RPC_ENDPOINT_H

#include <fling/rpc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The life cycle, as the main thread sees it (ep->st). */
enum { EP_STOPPED = 0, EP_STARTED = 1, EP_TERMINATING = 2, EP_DONE = 3 };
/* The termination result (ep->finished): see finish_claim in endpoint.c. */
enum { FIN_OPEN = 0, FIN_CLAIMED = 1, FIN_DONE = 2 };

/* What an RPC_TELL's one pass (dispatch.c) reads of a method, found once
 * at the endpoint's creation: a short chain of loads instead of the walk
 * from the service to its descriptors. */
typedef struct fl__rpc_tell_method {
    const ProtobufCMethodDescriptor *md;
    const ProtobufCMessageDescriptor *in; /* md->input */
    /* in when its requests make an RPC_TELL, else NULL: the sender's one
     * compare (call.c); 32 bytes an entry. */
    const ProtobufCMessageDescriptor *tell_in;
    /* The bytes of the request's fields in an RPC_TELL (dispatch.h);
     * UINT32_MAX when no RPC_TELL carries them (not plain, or too large).
     * Read by the endpoint's one pass and by its local gateways' senders
     * (gateway.h). */
    uint32_t fields;
} fl__rpc_tell_method_t;

/* A service's methods in that table. */
typedef struct fl__rpc_tell_service {
    const fl__rpc_tell_method_t *methods;
    uint32_t n;
} fl__rpc_tell_service_t;

struct fl_rpc_endpoint {
    _Atomic int refs; /* the creator's handle + the endpoint's own life */
    fl_rpc_service_t *svc;
    char *id;
    char *address;
    fl_actor_ref_t actor;
    ProtobufCService **services;
    size_t nservices;
    /* Per service (nservices), its methods' table: the service's, shared
     * by every endpoint of svc with that service (svc->tell_tables). */
    fl__rpc_tell_service_t *tells;
    void *state;
    fl_rpc_start_cb on_start;
    fl_rpc_stop_cb on_stop;
    bool fenced;
    fl_fencing_token_t token;
    fl_future_t *termination;     /* completed after the id is free */
    struct fl_rpc_endpoint *next; /* in svc->endpoints (under svc->mu) */

    /* Main thread only. */
    int st;
    bool running;
    bool in_on_start; /* on_start is running: fl_rpc_start_fail is valid */
    char *start_msg;  /* fl_rpc_start_fail's message, until on_start returns */

    /* on_stop's pending future (the reference on_stop gave us); taken with
     * an exchange by whoever lets it go: its completion or the endpoint's
     * end from outside. */
    _Atomic(fl_future_t *) stop_future;

    /* The termination result: claimed once (FIN_OPEN -> FIN_CLAIMED),
     * written, then published (FIN_DONE, release); read after that. */
    _Atomic int finished;
    int term_err;
    char *term_msg;

    /* Turns on the service's I/O thread (tcp_server.c; that thread only):
     * consecutive ones that took longer than IO_TURN_SLOW_NS, and whether
     * the endpoint's calls go to the workers for good. */
    uint8_t io_strikes;
    bool io_off;

    /* Tasks scheduled on the main thread with a handle (scheduled.c),
     * under sched_lk: the live ones, whether the termination future is
     * watched for them, and whether it has completed (no new task). */
    _Atomic bool sched_lk;
    struct fl_rpc_scheduled *sched;
    bool sched_watched, sched_closed;
};

/* Take a reference to ep; the caller already holds one (or svc->mu with ep
 * registered). Any thread. Relaxed: a new reference orders nothing; the
 * last fl__rpc_ep_release's acq_rel fetch_sub pairs with every release. */
static inline void fl__rpc_ep_retain(fl_rpc_endpoint_t *ep)
{
    atomic_fetch_add_explicit(&ep->refs, 1, memory_order_relaxed);
}

/* Drop a reference to ep (the last one frees it). Any thread. */
void fl__rpc_ep_release(fl_rpc_endpoint_t *ep);

/* Frees svc's method tables (svc->tell_tables) once no endpoint or
 * gateway of svc is left. */
void fl__rpc_tell_tables_free(fl_rpc_service_t *svc);

/* Index among ep's services of the one with this full protobuf name
 * ("pkg.Gateway"), or -1. Local connects, self gateways and remote
 * CONNECTs all decide by name. Any thread; ep's services never change. */
int fl__rpc_service_index(const fl_rpc_endpoint_t *ep, const char *name);

/* The control messages of the life cycle, handled on ep's main thread
 * (dispatch.c's ep_receive): RPC_START runs on_start once, RPC_STOP stops
 * serving calls, RPC_TERMINATE runs on_stop once and ends the endpoint
 * when its future completes. None blocks. */
void fl__rpc_ep_handle_start(fl_rpc_endpoint_t *ep);
void fl__rpc_ep_handle_stop(fl_rpc_endpoint_t *ep);
void fl__rpc_ep_handle_terminate(fl_rpc_endpoint_t *ep);

#endif /* FL_RPC_ENDPOINT_H */
