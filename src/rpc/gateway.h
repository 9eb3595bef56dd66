/*
 * src/rpc/gateway.h - the gateway: a ProtobufCService (first member) that
 * turns the generated stubs' calls into invocations of one endpoint's
 * service through a transport (tran.h). gateway.c owns its life and
 * connecting.
 */
#ifndef FL_RPC_GATEWAY_H
#define FL_RPC_GATEWAY_H

#include <fling/rpc.h>

#include <stdbool.h>
#include <stdint.h>

#include "remote/address.h"
#include "remote/net.h"
#include "rpc/dispatch.h"
#include "rpc/endpoint.h"
#include "rpc/tran.h"

struct fl_rpc_gateway {
    ProtobufCService base; /* first: the generated stubs see this */
    fl_rpc_service_t *svc;
    const fl__rpc_tran_t *tran; /* every call goes through it */
    /* The target, the transport's own: a local gateway's actor, and its
     * endpoint (one reference: the names in its calls' failures). */
    fl_actor_ref_t actor;
    fl_rpc_endpoint_t *ep;
    /* A local gateway's: how each method's request copies (flat.h), one
     * fl__rpc_flat_t per method of base.descriptor. */
    uint8_t *flat_in;
    /* A local gateway's lean tells (RPC_TELL, dispatch.h; call.c): its
     * service's row of the endpoint's method table (endpoint.h), which
     * says per method whether a request makes one, and its ntells
     * methods (0 when none may: indexes wider than the header's 16 bits).
     * And the header of its tells, but for the method. */
    const fl__rpc_tell_method_t *tells;
    uint32_t ntells;
    tell_hdr_t tell_hdr;
    uint32_t service_index;
    uint8_t fence;  /* FENCE_* (fencing.h) */
    bool has_token; /* fenced gateway, or self gateway of a fenced endpoint */
    fl_fencing_token_t token;
    int64_t timeout_ms;
    char *address;
    /* A remote gateway's target (TCP's own): the connection, the
     * endpoint's id and host, and the instance its CONNECTED named (its
     * calls reach that endpoint only, never a successor under its id, nor
     * one of a restarted peer: peer_inc).
     * host is NULL for a local gateway. */
    fl__conn_t *conn;
    /* address as conn keeps it (fl__conn_intern), for the messages of
     * its calls; NULL: the connection's peer name stands in. */
    const char *wire_address;
    char *remote_id;
    char *host;
    bool has_instance;
    uint64_t instance;
    /* The incarnation of the peer service it connected to (its HELLO); 0:
     * the peer announced none. */
    uint64_t peer_inc;
};

/*
 * A gateway of svc for desc at address (copied), calling through tran:
 * the parts every transport's gateways share; the transport adds its
 * target (actor, or connection) and lets go of it in its gw_fini. token
 * (may be NULL) is copied, has_token says whether it is reported. NULL when
 * out of memory. Any thread.
 */
fl_rpc_gateway_t *
fl__rpc_gw_alloc(fl_rpc_service_t *svc, const fl__rpc_tran_t *tran,
                 const ProtobufCServiceDescriptor *desc, const char *address,
                 uint32_t service_index, uint8_t fence,
                 const fl_fencing_token_t *token, bool has_token);

/*
 * fl__rpc_connect_parse parses a connect's address into *a: true, or false
 * with f failed FL_ECONNECT "Could not connect to rpc endpoint under
 * address <address>: <what is wrong with it>", whose hints name
 * fling.ssl:// when ssl (the service speaks TLS). Every transport's
 * connect starts with it. Any thread.
 */
bool fl__rpc_connect_parse(const char *address, bool ssl, fl__address_t *a,
                           fl_future_t *f);

/* Releases a gateway (fl_rpc_gateway_free as an fl_free_cb). */
void fl__rpc_gw_free_cb(void *gw);

#endif /* FL_RPC_GATEWAY_H */
