/*
 * src/rpc/tran.h - the transport interface of the RPC layer (nng's
 * nni_sp_tran): the ops a gateway's calls go through (fl__rpc_tran_t) and
 * the ops a call's answer goes through (fl__rpc_sink_t). The call path
 * (call.c, answer.c, dispatch.c) calls them and never asks which
 * transport is behind them.
 *
 * Transports: local.c (in-process: the gateway's target is the endpoint's
 * actor; fl__rpc_tran_local, fl__rpc_sink_local) and tcp_client.c /
 * tcp_server.c (TCP: the gateway holds a connection; fl__rpc_tran_tcp,
 * fl__rpc_sink_wire).
 *
 * A TLS transport plugs in as a third table, touching no call path: it
 * defines `const fl__rpc_tran_t fl__rpc_tran_tls` with its scheme
 * ("fling.ssl://") and its ops, adds it to the scheme list of
 * fl_rpc_connect (trans[] in gateway.c), keeps its per-gateway state in
 * the gateway's transport fields (gateway.h), and builds the RPC_INVOKE
 * messages of the calls it receives with the index of the sink their
 * answers go to (FL__RPC_SINK_WIRE if its connections are fl__conn_t's,
 * else its own, added to fl__rpc_sinks in tran.c).
 * The service's own set-up of a transport (listening, shutting down) is
 * service.c's and tcp.c's, not part of this table.
 */
#ifndef FL_RPC_TRAN_H
#define FL_RPC_TRAN_H

#include <fling/rpc.h>

#include <stdint.h>

/*
 * The caller's side of a transport. Every op is called from any thread,
 * never blocks (but await), and takes a gateway made by this transport
 * (its connect); method and req are unchecked: each op checks that method
 * exists and req is its input (FL_EINVAL).
 */
typedef struct fl__rpc_tran {
    /* The address prefix this transport serves ("fling.tcp://"). */
    const char *scheme;
    /* fl_rpc_connect: FL_ECLOSED when svc is closed (f untouched), else
     * FL_OK and f completes with a gateway (fl__rpc_gw_free_cb) or fails
     * (FL_ECONNECT, FL_EHANDSHAKE, ...). */
    int (*connect)(fl_rpc_service_t *svc, const char *address,
                   const ProtobufCServiceDescriptor *desc,
                   const fl_fencing_token_t *token, fl_future_t *f);
    /* A tell: fire and forget; the queueing result. */
    int (*tell)(fl_rpc_gateway_t *gw, unsigned method,
                const ProtobufCMessage *req);
    /* An ask: *out gets a future of the packed reply (an fl_msg_t: of type
     * RPC_REPLY, or FL__MSG_ANSWER from the wire, checked with
     * fl__rpc_check_wire before unpacking); the call's timeout is
     * timeout_ms. An error leaves *out NULL. */
    int (*ask)(fl_rpc_gateway_t *gw, unsigned method,
               const ProtobufCMessage *req, int64_t timeout_ms,
               fl_future_t **out);
    /* As ask, but the future's value is the unpacked reply (freed with
     * protobuf_c_message_free_unpacked). */
    int (*call)(fl_rpc_gateway_t *gw, unsigned method,
                const ProtobufCMessage *req, int64_t timeout_ms,
                fl_future_t **out);
    /* Wait for f, the future of a call this thread made through gw (it has
     * its own timeout): its result. BLOCKS; never on a runtime thread. */
    int (*await)(fl_rpc_gateway_t *gw, fl_future_t *f);
    /* Let go of gw's transport state (fl_rpc_gateway_free). */
    void (*gw_fini)(fl_rpc_gateway_t *gw);
} fl__rpc_tran_t;

/*
 * The answer's side: where the answer of a call being handled goes. The
 * sender of an RPC_INVOKE sets its sink's index in fl__rpc_sinks
 * (invoke_hdr_t.sink: a byte in its padding, so the header does not
 * grow); handle_invoke takes the call's target from the message into the call
 * record (fl_rpc_call_t.to, .corr) and every answer then goes through the
 * record's sink. Any thread; no op blocks.
 */
typedef struct fl__rpc_sink {
    /* The target of msg's call (asked: see invoke_asked), taken from msg
     * (which then owes nothing): the local asker's future, or the
     * connection (one reference). */
    void *(*take)(fl_msg_t *msg);
    /* Fail the call of msg (well formed, asked, target not taken) with
     * err and why. */
    void (*fail_msg)(fl_msg_t *msg, int err, const char *why);
    /* Answer c (claimed, c->to not NULL) with reply (borrowed, of the
     * method's output type) or with err and msg. The wire sink gives up
     * the target (c->to = NULL); the local one keeps the future until
     * release. */
    void (*reply)(fl_rpc_call_t *c, const ProtobufCMessage *reply);
    void (*fail)(fl_rpc_call_t *c, int err, const char *msg);
    /* c is done (its dispatch returned, or its last holder let go) and
     * c->to is not NULL: let go of what is left of its target (the local
     * future; a connection still held is failed "call dropped"). */
    void (*release)(fl_rpc_call_t *c);
} fl__rpc_sink_t;

/* The sinks by index (tran.c). A new transport's sink takes the next. */
enum { FL__RPC_SINK_LOCAL = 0, FL__RPC_SINK_WIRE = 1 };
extern const fl__rpc_sink_t *const fl__rpc_sinks[];

#endif /* FL_RPC_TRAN_H */
