/*
 * src/rpc/internal.h - what the RPC layer's two halves share: rpc.c (the
 * in-process model: services, endpoints, gateways, calls) and remote.c
 * (the same over the transport of src/remote/net.c).
 */
#ifndef FL_RPC_INTERNAL_H
#define FL_RPC_INTERNAL_H

#include <fling/rpc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "actor/claim.h"
#include "actor/msg.h"
#include "remote/net.h"

#define ID_MAX 200

/* Message types on an endpoint's mailbox. */
enum {
    RPC_INVOKE = 0x52500001u,
    RPC_START,
    RPC_STOP,
    RPC_TERMINATE,
    RPC_REPLY /* a packed reply travelling back to the caller */
};

/* How a call is fenced. */
enum { FENCE_NONE = 0, FENCE_TOKEN = 1, FENCE_SELF = 2 };

/* Header of an RPC_INVOKE payload; the packed request follows. */
typedef struct invoke_hdr {
    /* A call from the wire that expects an answer (FL__MF_SETTLE): settle
     * is fl__rpc_wire_settle, conn (one reference) and corr say where the
     * answer goes; handle_invoke takes them (conn = NULL). Unused (NULL)
     * otherwise. */
    fl__settle_fn settle;
    fl__conn_t *conn;
    uint64_t corr;
    uint32_t service;
    uint32_t method;
    uint32_t len;
    uint8_t fence;
    uint8_t wire; /* the request came over the network: check it first */
    uint8_t pad[2];
    fl_fencing_token_t token;
} invoke_hdr_t;

enum { EP_STOPPED = 0, EP_STARTED = 1, EP_TERMINATING = 2, EP_DONE = 3 };
enum { FIN_OPEN = 0, FIN_CLAIMED = 1, FIN_DONE = 2 };

struct fl_rpc_endpoint {
    _Atomic int refs; /* the creator's handle + the endpoint's own life */
    fl_rpc_service_t *svc;
    char *id;
    char *address;
    fl_actor_ref_t actor;
    ProtobufCService **services;
    size_t nservices;
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

    /* on_stop's pending future (the reference on_stop gave us); taken with
     * an exchange by whoever lets it go: its completion or the endpoint's
     * end from outside. */
    _Atomic(fl_future_t *) stop_future;

    /* The termination result: claimed once (FIN_OPEN -> FIN_CLAIMED),
     * written, then published (FIN_DONE, release); read after that. */
    _Atomic int finished;
    int term_err;
    char *term_msg;

    /* Turns on the service's I/O thread (remote.c; that thread only):
     * consecutive ones that took longer than IO_TURN_SLOW_NS, and whether
     * the endpoint's calls go to the workers for good. */
    uint8_t io_strikes;
    bool io_off;
};

typedef struct task task_t;

struct fl_rpc_service {
    fl_system_t *sys;
    bool own_sys;
    int64_t timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;            /* a task finished running */
    fl_rpc_endpoint_t *endpoints; /* live (not yet terminated) */
    bool closed;
    bool shut_down;
    fl_future_t *close_future;
    uint64_t anon;
    task_t *tasks;
    uint64_t next_task;

    /* Remoting (remote.c). net: the transport, made by alloc when the
     * service listens, else by the first remote connect (under mu). */
    fl__net_t *net;
    char *host; /* external host; NULL for a local-only service */
    int port;   /* bound port, or -1 */
    char *name;
    uint32_t max_frame;
    size_t max_queued;
    /* Calls from the wire to an idle endpoint run on the I/O thread
     * (opts.no_io_turns false); the turns claimed while dispatching a read,
     * run by on_frames (I/O thread only). */
    bool io_turns;
    unsigned io_nclaims;
    struct io_claim {
        fl__claim_t claim;
        fl_rpc_endpoint_t *ep; /* one reference */
        size_t id_len;         /* strlen(ep->id) */
    } io_claims[16];
};

struct fl_rpc_gateway {
    ProtobufCService base; /* first: the generated stubs see this */
    fl_rpc_service_t *svc;
    fl_actor_ref_t actor;
    uint32_t service_index;
    uint8_t fence;
    bool has_token; /* fenced gateway, or self gateway of a fenced endpoint */
    fl_fencing_token_t token;
    int64_t timeout_ms;
    char *address;
    /* A remote gateway: the connection, the endpoint's id and host. */
    fl__conn_t *conn;
    char *remote_id;
    char *host;
};

/* ---- shared by rpc.c and remote.c ---------------------------------------- */

/* Drop a reference to ep (the last one frees it). Any thread. */
void fl__rpc_ep_release(fl_rpc_endpoint_t *ep);

/* The registered, not yet terminated endpoint with this id (svc->mu held). */
fl_rpc_endpoint_t *fl__rpc_find_ep(fl_rpc_service_t *svc, const char *id);

/* Index among ep's services of the one with this full protobuf name
 * ("pkg.Gateway"), or -1. Local connects, self gateways and remote
 * CONNECTs all decide by name. */
int fl__rpc_service_index(const fl_rpc_endpoint_t *ep, const char *name);

/*
 * A gateway of svc for desc at address (copied): the parts local and remote
 * gateways share; the caller adds the target (actor, or connection). token
 * (may be NULL) is copied, has_token says whether it is reported. NULL when
 * out of memory.
 */
fl_rpc_gateway_t *
fl__rpc_gw_alloc(fl_rpc_service_t *svc, const ProtobufCServiceDescriptor *desc,
                 const char *address, uint32_t service_index, uint8_t fence,
                 const fl_fencing_token_t *token, bool has_token);

/* Releases a gateway (fl_rpc_gateway_free as an fl_free_cb). */
void fl__rpc_gw_free_cb(void *gw);

/* gw_invoke, the gateways' ProtobufCService invoke. */
void fl__rpc_gw_invoke(ProtobufCService *service, unsigned method,
                       const ProtobufCMessage *input, ProtobufCClosure closure,
                       void *closure_data);

/* remote.c: set up the remoting part of a new service from its options
 * (bind if asked). On failure `why` says why. */
int fl__rpc_remote_init(fl_rpc_service_t *svc, const fl_rpc_service_opts_t *o,
                        char *why, size_t why_len);

/* remote.c: stop the transport (after the endpoints terminated) / free. */
void fl__rpc_remote_stop(fl_rpc_service_t *svc);
void fl__rpc_remote_free(fl_rpc_service_t *svc);

/* remote.c: the address of endpoint id on svc ("fling.tcp://..." or
 * "fling://local/..."), malloc'd; NULL when out of memory. */
char *fl__rpc_endpoint_address(const fl_rpc_service_t *svc, const char *id);

/* remote.c: fl_rpc_connect for a fling.tcp:// address: completes f. */
void fl__rpc_remote_connect(fl_rpc_service_t *svc, const char *address,
                            const ProtobufCServiceDescriptor *desc,
                            const fl_fencing_token_t *token, fl_future_t *f);

/*
 * remote.c: send a call through a remote gateway. tell: fire and forget
 * (returns the queueing result, *out untouched). Otherwise *out gets a
 * future of the reply, already failed for a too large request or a refused
 * queue; returns FL_OK then. The reply is the unpacked message (freed with
 * protobuf_c_message_free_unpacked) when `unpack`, else the packed bytes
 * (an fl_msg_t of type FL__MSG_ANSWER). FL_EINVAL (bad method or request
 * type), FL_ENOMEM leave *out NULL.
 */
int fl__rpc_remote_call(fl_rpc_gateway_t *gw, unsigned method,
                        const ProtobufCMessage *req, int64_t timeout_ms,
                        bool tell, bool unpack, fl_future_t **out);

/* Frees an unpacked protobuf message (an fl_free_cb). */
void fl__rpc_free_message_cb(void *msg);

/*
 * remote.c: answer a call from the wire. fl__rpc_wire_reply packs reply
 * straight into a REPLY frame (FL_EMSGSIZE, naming both sizes, if it
 * exceeds the caller's frame limit); fl__rpc_wire_fail sends an ERROR with
 * err and msg. Both consume the reference to c. Any thread.
 */
void fl__rpc_wire_reply(fl__conn_t *c, uint64_t corr,
                        const ProtobufCMessage *reply);
void fl__rpc_wire_fail(fl__conn_t *c, uint64_t corr, int err, const char *msg);

/* remote.c: the settle function of calls from the wire (FL__MF_SETTLE):
 * answers m's call with err and why if its connection is still held, and
 * lets go of it. Also how handle_invoke fails a call from the wire. */
void fl__rpc_wire_settle(fl_msg_t *m, int err, const char *why);

/* Check a packed message from the wire before unpacking it: FL_OK or
 * FL_EDECODE (too deeply nested, broken) with `why`. A type without
 * message fields cannot nest and is not looked at (FL_OK): protobuf-c's
 * unpack finds what is broken in it, and fl__rpc_wire_why says what. */
int fl__rpc_check_wire(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                       size_t len, char *why, size_t why_len);

/* Why protobuf-c could not unpack buf as a d: ": <the broken rule>", or
 * "." when the wire format is sound (a field of the wrong type, say); for
 * a message that ends "Could not decode the <type> ...". */
void fl__rpc_wire_why(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                      size_t len, char *why, size_t why_len);

#endif /* FL_RPC_INTERNAL_H */
