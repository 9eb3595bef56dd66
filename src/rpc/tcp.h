/*
 * src/rpc/tcp.h - RPC over the transport of src/remote/ (TCP,
 * docs/wire-protocol.md). tcp.c sets the service's transport up and down
 * and checks bytes from the wire; tcp_server.c serves CONNECT and INVOKE
 * frames and answers them; tcp_client.c connects remote gateways and sends
 * their calls.
 */
#ifndef FL_RPC_TCP_H
#define FL_RPC_TCP_H

#include <fling/rpc.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor/msg.h"
#include "remote/net.h"
#include "rpc/tran.h"

/* ---- the service's transport (tcp.c) ------------------------------------ */

/* Set up the remoting part of a new service from its options (bind if
 * asked). On failure `why` says why; fl__rpc_tcp_free cleans up. */
int fl__rpc_tcp_init(fl_rpc_service_t *svc, const fl_rpc_service_opts_t *o,
                     char *why, size_t why_len);

/* The service's transport, started on first use by a local-only service
 * (FL_ECLOSED once the service is closed; `why` says why it failed). Any
 * thread; takes svc->mu. */
int fl__rpc_tcp_net(fl_rpc_service_t *svc, fl__net_t **out, char *why,
                    size_t why_len);

/* Stop the transport after the endpoints terminated: closes every
 * connection and joins the I/O thread. BLOCKS; not on a runtime thread. */
void fl__rpc_tcp_shutdown(fl_rpc_service_t *svc);

/* Free what fl__rpc_tcp_init made (after fl__rpc_tcp_shutdown). */
void fl__rpc_tcp_free(fl_rpc_service_t *svc);

/* The address of endpoint id on svc ("fling.tcp://..." or
 * "fling://local/..."), malloc'd; NULL when out of memory. */
char *fl__rpc_endpoint_address(const fl_rpc_service_t *svc, const char *id);

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

/* The net's name_call hook (tcp_client.c): "package.Service.Method" of
 * method idx of arg, a ProtobufCServiceDescriptor. Any thread. */
void fl__rpc_tcp_name_call(const void *arg, unsigned idx, char *buf,
                           size_t cap);

/* ---- server side (tcp_server.c) ----------------------------------------- */

/* The transport's hooks (fl__net_hooks_t, arg = the service), I/O thread:
 * a CONNECT is answered from the registry, an INVOKE becomes the
 * RPC_INVOKE a local gateway sends, and on_frames runs the endpoint turns
 * the read claimed. */
void fl__rpc_tcp_on_connect(void *arg, fl__conn_t *c, uint64_t corr,
                            const fl__frame_meta_t *m);
void fl__rpc_tcp_on_invoke(void *arg, fl__conn_t *c, const fl__frame_hdr_t *h,
                           const fl__frame_meta_t *m, const uint8_t *body);
void fl__rpc_tcp_on_frames(void *arg);

/* The sink of calls from the wire (tran.h): answers go back as REPLY or
 * ERROR frames with the call's correlation id. */
extern const fl__rpc_sink_t fl__rpc_sink_wire;

/* ---- client side (tcp_client.c) ----------------------------------------- */

/* The caller's side of TCP (tran.h): scheme "fling.tcp://"; a gateway
 * holds the connection to its peer (gw->conn, one reference). */
extern const fl__rpc_tran_t fl__rpc_tran_tcp;

/* The caller's side of TLS: the same ops, scheme "fling.ssl://" (TLS is
 * the connection's, src/remote/tls_io.c). fl_rpc_connect sends a service
 * with TLS here only, and one without never. */
extern const fl__rpc_tran_t fl__rpc_tran_tls;

#endif /* FL_RPC_TCP_H */
