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
#include "rpc/arena.h"
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
    char *id; /* as the address names it: an id, or a pattern */
    char *host;
    uint16_t port;
    fl__addr_kind_t kind; /* FL__ADDR_TCP or FL__ADDR_SSL */
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
    if (err == FL_ETIMEDOUT) {
        /* The connect's own timeout came first (the service's default
         * timeout is below its handshake timeout): say where, and how
         * far it got. */
        fl_future_fail(x->dst, err,
                       "Could not connect to rpc endpoint under address %s: "
                       "%s%s",
                       x->address, fl_future_message(raw),
                       fl__conn_peer_incarnation(x->conn) == 0
                           ? " (no handshake yet)"
                           : "");
        connect_ctx_free(x);
        return;
    }
    if (err != FL_OK) {
        fl_future_fail(x->dst, err, "%s", fl_future_message(raw));
        connect_ctx_free(x);
        return;
    }
    fl__connected_t cd;
    memcpy(&cd, fl_msg_data(fl_future_value(raw)), sizeof cd);
    /* A pattern's gateway is bound to the endpoint the server resolved it
     * to: its id (for the INVOKEs) and its address (for the user). */
    char concrete[FL__HOST_MAX + FL__ID_MAX + 40];
    const char *address = x->address;
    if (strchr(x->id, '*') != NULL) {
        fl__address_t a = {.kind = x->kind, .port = x->port};
        snprintf(a.host, sizeof a.host, "%s", x->host);
        snprintf(a.endpoint, sizeof a.endpoint, "%s", cd.resolved);
        if (cd.resolved[0] == '\0' || !fl__id_match(x->id, cd.resolved) ||
            fl__address_format(&a, concrete, sizeof concrete) != FL_OK) {
            fl_future_fail(x->dst, FL_EPROTO,
                           "Could not connect to rpc endpoint under address "
                           "%s: the peer answered the pattern with %s%s%s",
                           x->address,
                           cd.resolved[0] ? "the id " : "no endpoint id",
                           cd.resolved[0] ? cd.resolved : "",
                           cd.resolved[0] ? ", which does not match it" : "");
            connect_ctx_free(x);
            return;
        }
        char *id = fl__strdup(cd.resolved);
        if (id == NULL) {
            fl_future_fail(x->dst, FL_ENOMEM, NULL);
            connect_ctx_free(x);
            return;
        }
        fl__free(x->id);
        x->id = id;
        address = concrete;
    }
    fl_rpc_gateway_t *gw = fl__rpc_gw_alloc(
        x->svc, x->kind == FL__ADDR_SSL ? &fl__rpc_tran_tls : &fl__rpc_tran_tcp,
        x->desc, address, cd.service_index,
        x->fenced ? FENCE_TOKEN : FENCE_NONE, x->fenced ? &x->token : NULL,
        x->fenced);
    if (gw == NULL) {
        fl_future_fail(x->dst, FL_ENOMEM, NULL);
        connect_ctx_free(x);
        return;
    }
    /* The target: the connection and the endpoint's id there. */
    gw->remote_id = x->id;
    gw->host = x->host;
    gw->conn = x->conn;
    gw->wire_address = fl__conn_intern(x->conn, address);
    gw->has_instance = cd.has_instance;
    gw->instance = cd.instance;
    /* The HELLO came before the CONNECTED on this connection. */
    gw->peer_inc = fl__conn_peer_incarnation(x->conn);
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
    char why[768];
    fl__address_t a;
    if (!fl__rpc_connect_parse(address, svc->tls != NULL, &a, f))
        return;
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
    x->port = a.port;
    x->kind = a.kind;
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
        fl__conn_request(conn, b, raw, FL__REQ_CONNECT, address, NULL,
                         svc->timeout_ms);
    }
    fl_future_release(raw);
}

void fl__rpc_tcp_name_call(const void *arg, unsigned idx, char *buf, size_t cap)
{
    fl__rpc_method_name(arg, idx, buf, cap);
}

/* The message of a reply to call that could not be decoded: the method,
 * where it came from, the type and why ("<why>" is ": the rule" or "."). */
static void say_undecoded(char *buf, size_t cap, const fl__req_call_t *call,
                          const char *type, const char *why)
{
    char method[256];
    fl__rpc_method_name(call->arg, call->idx, method, sizeof method);
    snprintf(buf, cap, "Could not decode the reply of %s from %s: %s%s", method,
             call->address, type, why);
}

/* A reply from the wire to call, checked, then unpacked (the I/O thread,
 * or the caller reading its own answer). */
static int decode_reply(const fl__req_call_t *call, const uint8_t *body,
                        size_t len, void **value, fl_free_cb *value_free,
                        char *why, size_t why_len)
{
    const ProtobufCServiceDescriptor *sd = call->arg;
    const ProtobufCMessageDescriptor *d = sd->methods[call->idx].output;
    char depth[160] = ": ";
    if (fl__rpc_check_wire(d, body, len, depth + 2, sizeof depth - 2) !=
        FL_OK) {
        say_undecoded(why, why_len, call, d->name, depth);
        return FL_EDECODE;
    }
    bool over;
    ProtobufCMessage *m = fl__rpc_unpack(d, NULL, len, body, &over);
    if (m == NULL) {
        if (over)
            fl__rpc_decode_over_why(len, depth, sizeof depth);
        else
            fl__rpc_wire_why(d, body, len, depth, sizeof depth);
        say_undecoded(why, why_len, call, d->name, depth);
        return FL_EDECODE;
    }
    *value = m;
    *value_free = fl__rpc_free_message_cb;
    return FL_OK;
}

/* ---- a restarted peer ---------------------------------------------------- */

/* The failure of a call to endpoint id at peer `name` whose service
 * restarted: its incarnation was `was` when the gateway connected and is
 * `now`. */
static void say_restarted(char *buf, size_t cap, const char *id,
                          const char *name, uint64_t was, uint64_t now)
{
    snprintf(buf, cap,
             "recipient unreachable: rpc endpoint %s at %s restarted "
             "(incarnation %016llx, now %016llx): connect again to reach "
             "the new one",
             id, name, (unsigned long long)was, (unsigned long long)now);
}

/* A call made while the gateway's connection had no peer (reconnecting):
 * the answer says whether the peer it reached is the gateway's. */
typedef struct watch {
    fl_future_t *f;   /* the caller's */
    fl__conn_t *conn; /* a reference */
    uint64_t was;     /* the gateway's peer incarnation */
    bool unpack;      /* the value's kind, for its free function */
    char id[FL__ID_MAX + 1];
} watch_t;

/* The watched call's answer (whatever thread completes raw): passed on
 * to the caller's future, a refusal from a restarted peer said so. */
static void on_watched(fl_future_t *raw, void *p)
{
    watch_t *w = p;
    int err = fl_future_error(raw);
    uint64_t now = fl__conn_peer_incarnation(w->conn);
    if (err == FL_OK) {
        fl_future_complete(w->f, fl_future_take_value(raw),
                           w->unpack ? fl__rpc_free_message_cb
                                     : fl_msg_free_cb);
    } else if (err == FL_EUNREACHABLE && now != 0 && now != w->was) {
        char msg[FL__ID_MAX + FL__HOST_MAX + 160];
        say_restarted(msg, sizeof msg, w->id, fl__conn_peer_name(w->conn),
                      w->was, now);
        fl_future_fail(w->f, FL_EUNREACHABLE, "%s", msg);
    } else {
        fl_future_fail(w->f, err, "%s", fl_future_message(raw));
    }
    fl_future_release(w->f);
    fl__conn_release(w->conn);
    fl__free(w);
}

/*
 * Send b (consumed) as a request of gw whose connection has no peer
 * (reconnecting), watching which peer answers: the caller's future (out)
 * completes from the request's. FL_OK, or FL_ENOMEM with nothing sent.
 */
static int send_watched(fl_rpc_gateway_t *gw, fl__obuf_t *b, bool unpack,
                        const fl__req_call_t *call, int64_t timeout_ms,
                        fl_future_t **out)
{
    watch_t *w = fl__malloc(sizeof *w);
    fl_future_t *f = fl_future_alloc();
    fl_future_t *raw = fl_future_alloc();
    if (w == NULL || f == NULL || raw == NULL ||
        fl_future_on_complete(raw, on_watched, w) != FL_OK) {
        fl__free(w);
        fl_future_release(f);
        fl_future_release(raw);
        fl__obuf_free(b);
        return FL_ENOMEM;
    }
    w->f = fl_future_retain(f);
    w->conn = gw->conn;
    fl__conn_retain(gw->conn);
    w->was = gw->peer_inc;
    w->unpack = unpack;
    snprintf(w->id, sizeof w->id, "%s", gw->remote_id);
    fl__conn_request(gw->conn, b, raw, FL__REQ_INVOKE, NULL, call, timeout_ms);
    fl_future_release(raw);
    *out = f;
    return FL_OK;
}

/* A call refused before it is sent, with code and msg: a tell is dropped
 * and logged (returns code); an ask gets a failed future in *out (returns
 * FL_OK, or FL_ENOMEM). */
static int refuse(bool tell, int code, const char *msg, fl_future_t **out)
{
    if (tell) {
        FL_LOG_RATELIMITED(FL_LOG_WARN, "tell dropped: %s", msg);
        return code;
    }
    fl_future_t *f = fl_future_alloc();
    if (f == NULL)
        return FL_ENOMEM;
    fl_future_fail(f, code, "%s", msg);
    *out = f;
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
    int rc = fl__rpc_check_request(gw->base.descriptor, method, req);
    if (rc != FL_OK)
        return rc;
    if (fl__conn_closed(gw->conn))
        return FL_ECLOSED;
    /* The peer's incarnation now: another than the gateway's is a
     * restarted peer (refused here); none (reconnecting) is known only
     * when the answer comes (send_watched). */
    uint64_t inc = gw->peer_inc != 0 ? fl__conn_peer_incarnation(gw->conn) : 0;
    if (inc != 0 && inc != gw->peer_inc) {
        char msg[FL__ID_MAX + FL__HOST_MAX + 160];
        say_restarted(msg, sizeof msg, gw->remote_id,
                      fl__conn_peer_name(gw->conn), gw->peer_inc, inc);
        return refuse(tell, FL_EUNREACHABLE, msg, out);
    }
    /* An ask tells the server how long its caller waits: a timeout too
     * large for the u32 is as good as none. */
    bool deadline =
        !tell && timeout_ms != FL_INFINITE && timeout_ms < (int64_t)UINT32_MAX;
    uint16_t flags = (uint16_t)((tell ? FL__F_TELL : 0) |
                                (gw->fence == FENCE_TOKEN ? FL__F_FENCED : 0) |
                                (gw->has_instance ? FL__F_INSTANCE : 0) |
                                (deadline ? FL__F_DEADLINE : 0));
    /* From a zero template, not an initializer: see fl__frame_decode_meta. */
    static const fl__frame_meta_t none;
    fl__frame_meta_t m = none;
    m.endpoint = (fl__str_t){gw->remote_id, (uint16_t)strlen(gw->remote_id)};
    m.service_index = gw->service_index;
    m.method_index = method;
    memcpy(m.token, gw->token.bytes, sizeof m.token);
    m.instance = gw->instance;
    m.deadline_ms = deadline ? (uint32_t)timeout_ms : 0;
    size_t n = protobuf_c_message_get_packed_size(req);
    size_t meta = fl__frame_meta_size(FL__K_INVOKE, flags, &m);
    uint64_t total = (uint64_t)FL__FRAME_HDR + meta + n;
    uint32_t max = fl__conn_peer_max(gw->conn);
    if (total > max) {
        char msg[FL__HOST_MAX + 400], name[256];
        fl__rpc_method_name(gw->base.descriptor, method, name, sizeof name);
        snprintf(msg, sizeof msg,
                 "Request of %s is %llu bytes, over the %u-byte frame limit "
                 "of the service at %s (its max_frame_size)",
                 name, (unsigned long long)total, max,
                 fl__conn_peer_name(gw->conn));
        return refuse(tell, FL_EMSGSIZE, msg, out);
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
    fl__req_call_t call = {.decode = unpack ? decode_reply : NULL,
                           .arg = gw->base.descriptor,
                           .address = gw->wire_address,
                           .idx = method};
    if (gw->peer_inc != 0 && inc == 0)
        return send_watched(gw, b, unpack, &call, timeout_ms, out);
    fl_future_t *f = fl_future_alloc();
    if (f == NULL) {
        fl__obuf_free(b);
        return FL_ENOMEM;
    }
    fl__conn_request(gw->conn, b, f, FL__REQ_INVOKE, NULL, &call, timeout_ms);
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

/* TLS is below the frames, in the connection (src/remote/tls_io.c): the
 * same ops under their own scheme. */
const fl__rpc_tran_t fl__rpc_tran_tls = {
    .scheme = "fling.ssl://",
    .connect = tcp_connect,
    .tell = tcp_tell,
    .ask = tcp_ask,
    .call = tcp_call,
    .await = tcp_await,
    .gw_fini = tcp_gw_fini,
};
