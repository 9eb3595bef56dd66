/*
 * tcp_client.c - the calling side of RPC over TCP: fl_rpc_connect's
 * handshake (CONNECT, then a remote gateway holding the connection), and
 * calls through a remote gateway: the request packed straight into an
 * INVOKE frame (one copy), the future registered under a correlation id
 * with the call's timeout, and the REPLY checked and unpacked on the I/O
 * thread.
 */
#include "rpc/tcp.h"

#include "remote/address.h"
#include "rpc/call.h"
#include "rpc/fencing.h"
#include "rpc/gateway.h"
#include "rpc/service.h"

#include <stdio.h>
#include <string.h>

typedef struct connect_ctx {
    fl_rpc_service_t *svc;
    fl__conn_t *conn;
    const ProtobufCServiceDescriptor *desc;
    bool fenced;
    fl_fencing_token_t token;
    char *address;
    char *id;
    char *host;
    fl_future_t *dst;
} connect_ctx_t;

static void connect_ctx_free(connect_ctx_t *x)
{
    if (x->conn != NULL)
        fl__conn_release(x->conn);
    fl_future_release(x->dst);
    fl__free(x->address);
    fl__free(x->id);
    fl__free(x->host);
    fl__free(x);
}

/* The handshake's answer (I/O thread, or a timer on timeout). */
static void on_connected(fl_future_t *raw, void *p)
{
    connect_ctx_t *x = p;
    int err = fl_future_error(raw);
    if (err != FL_OK) {
        fl_future_fail(x->dst, err, "%s", fl_future_message(raw));
        connect_ctx_free(x);
        return;
    }
    fl__connected_t cd;
    memcpy(&cd, fl_msg_data(fl_future_value(raw)), sizeof cd);
    fl_rpc_gateway_t *gw =
        fl__rpc_gw_alloc(x->svc, &fl__rpc_tran_tcp, x->desc, x->address,
                         cd.service_index, x->fenced ? FENCE_TOKEN : FENCE_NONE,
                         x->fenced ? &x->token : NULL, x->fenced);
    if (gw == NULL) {
        fl_future_fail(x->dst, FL_ENOMEM, NULL);
        connect_ctx_free(x);
        return;
    }
    /* The target: the connection and the endpoint's id there. */
    gw->remote_id = x->id;
    gw->host = x->host;
    gw->conn = x->conn;
    gw->has_instance = cd.has_instance;
    gw->instance = cd.instance;
    x->id = x->host = NULL;
    x->conn = NULL;
    fl_future_complete(x->dst, gw, fl__rpc_gw_free_cb);
    connect_ctx_free(x);
}

/* The handshake: CONNECT to the address's endpoint; f completes in
 * on_connected, or fails here. */
static void connect_remote(fl_rpc_service_t *svc, const char *address,
                           const ProtobufCServiceDescriptor *desc,
                           const fl_fencing_token_t *token, fl_future_t *f)
{
    char why[FL__HOST_MAX + 200];
    fl__address_t a;
    if (fl__address_parse(address, &a, why, sizeof why) != FL_OK) {
        fl_future_fail(f, FL_ECONNECT,
                       "Could not connect to rpc endpoint under address %.*s: "
                       "%s",
                       300, address, why);
        return;
    }
    if (strlen(desc->name) > FL__NAME_MAX) {
        fl_future_fail(f, FL_EINVAL, "gateway name longer than %u bytes",
                       FL__NAME_MAX);
        return;
    }
    fl__net_t *net;
    int rc = fl__rpc_tcp_net(svc, &net, why, sizeof why);
    if (rc != FL_OK) {
        fl_future_fail(f, rc, "could not start the rpc transport: %s", why);
        return;
    }
    connect_ctx_t *x = fl__calloc(1, sizeof *x);
    fl_future_t *raw = fl_future_alloc();
    if (x == NULL || raw == NULL) {
        fl__free(x);
        fl_future_release(raw);
        fl_future_fail(f, FL_ENOMEM, NULL);
        return;
    }
    x->svc = svc;
    x->desc = desc;
    x->fenced = token != NULL;
    if (token != NULL)
        x->token = *token;
    x->dst = fl_future_retain(f);
    x->address = fl__strdup(address);
    x->id = fl__strdup(a.endpoint);
    x->host = fl__strdup(a.host);
    rc = x->address && x->id && x->host
             ? fl__net_peer(net, a.host, a.port, &x->conn)
             : FL_ENOMEM;
    if (rc != FL_OK) {
        fl_future_fail(f, rc,
                       rc == FL_ECLOSED ? "rpc service shut down" : NULL);
        connect_ctx_free(x);
        fl_future_release(raw);
        return;
    }
    fl__frame_meta_t m = {
        .endpoint = {a.endpoint, (uint16_t)strlen(a.endpoint)},
        .gateway = {desc->name, (uint16_t)strlen(desc->name)}};
    fl__obuf_t *b = fl__obuf_frame(FL__K_CONNECT, 0, 0, &m, 0, NULL);
    fl__conn_t *conn = x->conn;
    if (fl_future_on_complete(raw, on_connected, x) != FL_OK) {
        fl__obuf_free(b);
        fl_future_fail(f, FL_ENOMEM, NULL);
        connect_ctx_free(x);
        fl_future_release(raw);
        return;
    }
    /* From here x belongs to on_connected. */
    if (b == NULL) {
        fl_future_fail(raw, FL_ENOMEM, NULL);
    } else {
        /* The handshake is bounded like a call. */
        fl__conn_request(conn, b, raw, FL__REQ_CONNECT, address, NULL, NULL,
                         svc->timeout_ms);
    }
    fl_future_release(raw);
}

/* A reply from the wire, checked, then unpacked (the I/O thread). */
static int decode_reply(const void *arg, const uint8_t *body, size_t len,
                        void **value, fl_free_cb *value_free, char *why,
                        size_t why_len)
{
    const ProtobufCMessageDescriptor *d = arg;
    char depth[160];
    if (fl__rpc_check_wire(d, body, len, depth, sizeof depth) != FL_OK) {
        snprintf(why, why_len, "Could not decode the %s reply: %s", d->name,
                 depth);
        return FL_EDECODE;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, body);
    if (m == NULL) {
        fl__rpc_wire_why(d, body, len, depth, sizeof depth);
        snprintf(why, why_len, "Could not decode the %s reply%s", d->name,
                 depth);
        return FL_EDECODE;
    }
    *value = m;
    *value_free = fl__rpc_free_message_cb;
    return FL_OK;
}

/*
 * Send a call through a remote gateway. tell: fire and forget (returns
 * the queueing result, *out untouched). Otherwise *out gets a future of
 * the reply, already failed for a too large request or a refused queue;
 * returns FL_OK then. The reply is the unpacked message when `unpack`
 * (the I/O thread unpacks it), else the packed bytes (an fl_msg_t of type
 * FL__MSG_ANSWER). FL_EINVAL (bad method or request type), FL_ENOMEM
 * leave *out NULL.
 */
static int tcp_send(fl_rpc_gateway_t *gw, unsigned method,
                    const ProtobufCMessage *req, int64_t timeout_ms, bool tell,
                    bool unpack, fl_future_t **out)
{
    if (method >= gw->base.descriptor->n_methods || req == NULL ||
        req->descriptor != gw->base.descriptor->methods[method].input)
        return FL_EINVAL;
    if (fl__conn_closed(gw->conn))
        return FL_ECLOSED;
    uint16_t flags = (uint16_t)((tell ? FL__F_TELL : 0) |
                                (gw->fence == FENCE_TOKEN ? FL__F_FENCED : 0) |
                                (gw->has_instance ? FL__F_INSTANCE : 0));
    /* From a zero template, not an initializer: see fl__frame_decode_meta. */
    static const fl__frame_meta_t none;
    fl__frame_meta_t m = none;
    m.endpoint = (fl__str_t){gw->remote_id, (uint16_t)strlen(gw->remote_id)};
    m.service_index = gw->service_index;
    m.method_index = method;
    memcpy(m.token, gw->token.bytes, sizeof m.token);
    m.instance = gw->instance;
    size_t n = protobuf_c_message_get_packed_size(req);
    size_t meta = fl__frame_meta_size(FL__K_INVOKE, flags, &m);
    uint64_t total = (uint64_t)FL__FRAME_HDR + meta + n;
    uint32_t max = fl__conn_peer_max(gw->conn);
    if (total > max) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "request of %llu bytes exceeds the maximum frame size of %u "
                 "bytes of %s (%s.%s)",
                 (unsigned long long)total, max, fl__conn_peer_name(gw->conn),
                 gw->base.descriptor->name,
                 gw->base.descriptor->methods[method].name);
        if (tell) {
            FL_LOG(FL_LOG_WARN, "rpc: tell dropped: %s", msg);
            return FL_EMSGSIZE;
        }
        fl_future_t *f = fl_future_alloc();
        if (f == NULL)
            return FL_ENOMEM;
        fl_future_fail(f, FL_EMSGSIZE, "%s", msg);
        *out = f;
        return FL_OK;
    }
    uint8_t *body;
    fl__obuf_t *b = meta != 0 ? fl__obuf_frame_sized(FL__K_INVOKE, flags, 0, &m,
                                                     meta, n, &body)
                              : NULL;
    if (b == NULL)
        return FL_ENOMEM;
    protobuf_c_message_pack(req, body);
    if (tell)
        return fl__conn_send(gw->conn, b);
    fl_future_t *f = fl_future_alloc();
    if (f == NULL) {
        fl__obuf_free(b);
        return FL_ENOMEM;
    }
    const ProtobufCMessageDescriptor *output =
        gw->base.descriptor->methods[method].output;
    fl__conn_request(gw->conn, b, f, FL__REQ_INVOKE, NULL,
                     unpack ? decode_reply : NULL, output, timeout_ms);
    *out = f;
    return FL_OK;
}

/* ---- the transport's ops (tran.h) --------------------------------------- */

static int tcp_connect(fl_rpc_service_t *svc, const char *address,
                       const ProtobufCServiceDescriptor *desc,
                       const fl_fencing_token_t *token, fl_future_t *f)
{
    pthread_mutex_lock(&svc->mu);
    bool closed = svc->closed;
    pthread_mutex_unlock(&svc->mu);
    if (closed)
        return FL_ECLOSED;
    connect_remote(svc, address, desc, token, f);
    return FL_OK;
}

static int tcp_tell(fl_rpc_gateway_t *gw, unsigned method,
                    const ProtobufCMessage *req)
{
    return tcp_send(gw, method, req, 0, true, false, NULL);
}

static int tcp_ask(fl_rpc_gateway_t *gw, unsigned method,
                   const ProtobufCMessage *req, int64_t timeout_ms,
                   fl_future_t **out)
{
    *out = NULL;
    return tcp_send(gw, method, req, timeout_ms, false, false, out);
}

static int tcp_call(fl_rpc_gateway_t *gw, unsigned method,
                    const ProtobufCMessage *req, int64_t timeout_ms,
                    fl_future_t **out)
{
    return tcp_send(gw, method, req, timeout_ms, false, true, out);
}

static int tcp_await(fl_rpc_gateway_t *gw, fl_future_t *f)
{
    return fl__conn_await(gw->conn, f);
}

static void tcp_gw_fini(fl_rpc_gateway_t *gw)
{
    fl__conn_release(gw->conn);
}

const fl__rpc_tran_t fl__rpc_tran_tcp = {
    .scheme = "fling.tcp://",
    .connect = tcp_connect,
    .tell = tcp_tell,
    .ask = tcp_ask,
    .call = tcp_call,
    .await = tcp_await,
    .gw_fini = tcp_gw_fini,
};
