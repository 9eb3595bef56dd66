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

/*
 * Answer a call from the wire. fl__rpc_wire_reply packs reply straight
 * into a REPLY frame (FL_EMSGSIZE, naming both sizes, if it exceeds the
 * caller's frame limit); fl__rpc_wire_fail sends an ERROR with err and
 * msg. Both consume the reference to c. Any thread.
 */
void fl__rpc_wire_reply(fl__conn_t *c, uint64_t corr,
                        const ProtobufCMessage *reply);
void fl__rpc_wire_fail(fl__conn_t *c, uint64_t corr, int err, const char *msg);

/* The settle function of calls from the wire (FL__MF_SETTLE): answers m's
 * call with err and why if its connection is still held, and lets go of
 * it. Also how handle_invoke fails a call from the wire. Any thread. */
void fl__rpc_wire_settle(fl_msg_t *m, int err, const char *why);

/* ---- client side (tcp_client.c) ----------------------------------------- */

/* fl_rpc_connect for a fling.tcp:// address: completes f with a remote
 * gateway or fails it. Any thread; never blocks. */
void fl__rpc_tcp_connect(fl_rpc_service_t *svc, const char *address,
                         const ProtobufCServiceDescriptor *desc,
                         const fl_fencing_token_t *token, fl_future_t *f);

/*
 * Send a call through a remote gateway. tell: fire and forget (returns
 * the queueing result, *out untouched). Otherwise *out gets a future of
 * the reply, already failed for a too large request or a refused queue;
 * returns FL_OK then. The reply is the unpacked message (freed with
 * protobuf_c_message_free_unpacked) when `unpack`, else the packed bytes
 * (an fl_msg_t of type FL__MSG_ANSWER). FL_EINVAL (bad method or request
 * type), FL_ENOMEM leave *out NULL. Any thread; never blocks.
 */
int fl__rpc_tcp_call(fl_rpc_gateway_t *gw, unsigned method,
                     const ProtobufCMessage *req, int64_t timeout_ms, bool tell,
                     bool unpack, fl_future_t **out);

#endif /* FL_RPC_TCP_H */
