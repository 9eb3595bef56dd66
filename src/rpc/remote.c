/*
 * remote.c - RPC over the transport (docs/wire-protocol.md).
 *
 * Server side: the transport's hooks turn a CONNECT into a registry lookup
 * and a CONNECTED or ERROR, and an INVOKE into the very RPC_INVOKE message
 * a local gateway sends, asked of the endpoint's actor; the answer goes
 * back as REPLY or ERROR with the request's correlation id. So remote calls
 * pass the same checks, in the same order, with the same codes as local
 * ones (handle_invoke in rpc.c), plus a nesting-depth check of the bytes.
 *
 * Client side: a remote gateway holds the connection to its peer; a call
 * packs the request straight into an INVOKE frame (one copy), registers
 * the future under a correlation id and arms the call's timeout.
 */
#include "rpc/internal.h"

#include "actor/claim.h"
#include "actor/msg.h"
#include "common/internal.h"
#include "remote/address.h"
#include "remote/pbdepth.h"
#include "remote/rx.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- the service's transport -----------------------------------------------
 */

static void on_connect(void *arg, fl__conn_t *c, uint64_t corr,
                       const fl__frame_meta_t *m);
static void on_invoke(void *arg, fl__conn_t *c, const fl__frame_hdr_t *h,
                      const fl__frame_meta_t *m, const uint8_t *body);
static void on_frames(void *arg);

static bool wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
           strcmp(host, "[::]") == 0;
}

static fl__net_opts_t net_opts(fl_rpc_service_t *svc, const char *bind,
                               const char *port)
{
    fl__net_opts_t o = {.bind_host = bind,
                        .port = port,
                        .max_frame = svc->max_frame,
                        .max_queued = svc->max_queued,
                        .name = svc->name,
                        .hooks = {svc, on_connect, on_invoke, on_frames}};
    return o;
}

int fl__rpc_remote_init(fl_rpc_service_t *svc, const fl_rpc_service_opts_t *o,
                        char *why, size_t why_len)
{
    svc->port = -1;
    svc->max_frame =
        o->max_frame_size ? o->max_frame_size : FL__FRAME_DEFAULT_MAX;
    svc->max_queued =
        o->max_queued_bytes ? o->max_queued_bytes : FL__NET_DEFAULT_QUEUED;
    if (svc->max_frame < FL__FRAME_MIN_MAX) {
        fl__say(why, why_len, "max_frame_size %u is below the minimum of %u",
                svc->max_frame, FL__FRAME_MIN_MAX);
        return FL_EINVAL;
    }
    const char *name = o->name ? o->name : "fling";
    if (strlen(name) > FL__NAME_MAX) {
        fl__say(why, why_len, "service name of %zu bytes (limit %u)",
                strlen(name), FL__NAME_MAX);
        return FL_EINVAL;
    }
    svc->name = fl__strdup(name);
    if (svc->name == NULL)
        return FL_ENOMEM;
    svc->io_turns = !o->no_io_turns;
    if (o->bind_host != NULL && o->bind_host[0] == '\0') {
        fl__say(why, why_len,
                "bind_host is empty (NULL: a local-only "
                "service; \"0.0.0.0\": every interface)");
        return FL_EINVAL;
    }
    if (o->bind_host == NULL) {
        if (o->port != NULL || o->external_host != NULL) {
            fl__say(why, why_len,
                    "port or external_host given without "
                    "bind_host");
            return FL_EINVAL;
        }
        return FL_OK; /* local-only: the transport starts on demand */
    }
    char host[FL__HOST_MAX + 1];
    const char *ext = o->external_host;
    if (ext == NULL && wildcard(o->bind_host)) {
        if (gethostname(host, sizeof host) != 0) {
            fl__say(why, why_len, "could not get the host name");
            return FL_ESYSTEM;
        }
        host[sizeof host - 1] = '\0';
        ext = host;
    } else if (ext == NULL) {
        ext = o->bind_host;
    }
    /* The external host must make valid addresses. */
    fl__address_t a = {.kind = FL__ADDR_TCP, .port = 1};
    snprintf(a.endpoint, sizeof a.endpoint, "x");
    size_t elen = strlen(ext);
    if (elen >= 2 && ext[0] == '[' && ext[elen - 1] == ']')
        snprintf(a.host, sizeof a.host, "%.*s", (int)(elen - 2), ext + 1);
    else if (elen <= FL__HOST_MAX)
        snprintf(a.host, sizeof a.host, "%s", ext);
    char buf[FL__HOST_MAX + 64];
    fl__address_t back;
    if (elen == 0 || elen > FL__HOST_MAX + 2 ||
        fl__address_format(&a, buf, sizeof buf) != FL_OK ||
        fl__address_parse(buf, &back, NULL, 0) != FL_OK) {
        fl__say(why, why_len, "invalid external host '%s'", ext);
        return FL_EINVAL;
    }
    svc->host = fl__strdup(a.host);
    if (svc->host == NULL)
        return FL_ENOMEM;
    fl__net_opts_t no = net_opts(svc, o->bind_host, o->port);
    int rc = fl__net_start(&no, &svc->net, why, why_len);
    if (rc != FL_OK)
        return rc;
    svc->port = fl__net_port(svc->net);
    FL_LOG(FL_LOG_INFO,
           "rpc: service %s listening on %s:%d (addresses "
           "fling.tcp://%s:%d/...)",
           svc->name, o->bind_host, svc->port, svc->host, svc->port);
    return FL_OK;
}

/* The transport, started on first use by a local-only service. */
static int service_net(fl_rpc_service_t *svc, fl__net_t **out, char *why,
                       size_t why_len)
{
    pthread_mutex_lock(&svc->mu);
    int rc = FL_OK;
    if (svc->closed)
        rc = FL_ECLOSED;
    else if (svc->net == NULL) {
        fl__net_opts_t no = net_opts(svc, NULL, NULL);
        rc = fl__net_start(&no, &svc->net, why, why_len);
    }
    *out = svc->net;
    pthread_mutex_unlock(&svc->mu);
    return rc;
}

void fl__rpc_remote_stop(fl_rpc_service_t *svc)
{
    pthread_mutex_lock(&svc->mu);
    fl__net_t *n = svc->net;
    pthread_mutex_unlock(&svc->mu);
    fl__net_shutdown(n);
}

void fl__rpc_remote_free(fl_rpc_service_t *svc)
{
    fl__net_free(svc->net);
    svc->net = NULL;
    fl__free(svc->host);
    fl__free(svc->name);
}

char *fl__rpc_endpoint_address(const fl_rpc_service_t *svc, const char *id)
{
    size_t n = strlen(id) + (svc->host ? strlen(svc->host) : 0) + 40;
    char *s = fl__malloc(n);
    if (s == NULL)
        return NULL;
    if (svc->host == NULL) {
        snprintf(s, n, "fling://local/%s", id);
        return s;
    }
    fl__address_t a = {.kind = FL__ADDR_TCP, .port = (uint16_t)svc->port};
    snprintf(a.host, sizeof a.host, "%s", svc->host);
    snprintf(a.endpoint, sizeof a.endpoint, "%s", id);
    if (fl__address_format(&a, s, n) != FL_OK) {
        fl__free(s);
        return NULL;
    }
    return s;
}

/* A type none of whose fields is a message cannot nest: nothing to walk. */
static bool flat(const ProtobufCMessageDescriptor *d)
{
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
            return false;
    return true;
}

int fl__rpc_check_wire(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                       size_t len, char *why, size_t why_len)
{
    if (flat(d))
        return FL_OK;
    return fl__pb_check_depth(d, buf, len, FL__PB_MAX_DEPTH, why, why_len);
}

void fl__rpc_wire_why(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                      size_t len, char *why, size_t why_len)
{
    if (why_len < 3)
        return;
    memcpy(why, ": ", 3);
    if (fl__pb_check_depth(d, buf, len, FL__PB_MAX_DEPTH, why + 2,
                           why_len - 2) == FL_OK)
        memcpy(why, ".", 2);
}

/* ---- server side ------------------------------------------------------------
 */

static void str_copy(char *dst, size_t cap, fl__str_t s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    memcpy(dst, s.p, n);
    dst[n] = '\0';
}

static void on_connect(void *arg, fl__conn_t *c, uint64_t corr,
                       const fl__frame_meta_t *m)
{
    fl_rpc_service_t *svc = arg;
    char id[FL__ID_MAX + 1], gateway[FL__NAME_MAX + 1];
    str_copy(id, sizeof id, m->endpoint);
    str_copy(gateway, sizeof gateway, m->gateway);
    int idx = -1;
    pthread_mutex_lock(&svc->mu);
    fl_rpc_endpoint_t *ep = fl__rpc_find_ep(svc, id);
    if (ep != NULL)
        idx = fl__rpc_service_index(ep, gateway);
    pthread_mutex_unlock(&svc->mu);
    char msg[FL__ERRMSG_MAX + 100];
    if (ep == NULL) {
        char *addr = fl__rpc_endpoint_address(svc, id);
        snprintf(msg, sizeof msg,
                 "Could not connect to rpc endpoint under address %s.",
                 addr ? addr : id);
        fl__free(addr);
        fl__conn_answer_error(c, corr, FL_ECONNECT, msg);
    } else if (idx < 0) {
        snprintf(msg, sizeof msg,
                 "The rpc endpoint does not support the gateway %s.", gateway);
        fl__conn_answer_error(c, corr, FL_EHANDSHAKE, msg);
    } else {
        fl__conn_answer_connected(c, corr, (uint32_t)idx);
    }
}

void fl__rpc_wire_fail(fl__conn_t *c, uint64_t corr, int err, const char *msg)
{
    fl__conn_answer_error(c, corr, err, msg);
    fl__conn_release_turn(c);
}

void fl__rpc_wire_reply(fl__conn_t *c, uint64_t corr,
                        const ProtobufCMessage *reply)
{
    size_t n = protobuf_c_message_get_packed_size(reply);
    uint64_t total = (uint64_t)FL__FRAME_HDR + n;
    uint32_t max = fl__conn_peer_max(c);
    if (total > max) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "reply of %llu bytes exceeds the maximum frame size of %u "
                 "bytes",
                 (unsigned long long)total, max);
        fl__rpc_wire_fail(c, corr, FL_EMSGSIZE, msg);
        return;
    }
    uint8_t *body;
    fl__obuf_t *b = fl__obuf_frame(FL__K_REPLY, 0, corr, NULL, n, &body);
    if (b == NULL) {
        fl__rpc_wire_fail(c, corr, FL_ENOMEM,
                          "out of memory sending the reply");
        return;
    }
    protobuf_c_message_pack(reply, body);
    fl__conn_send(c, b);
    fl__conn_release_turn(c);
}

void fl__rpc_wire_settle(fl_msg_t *m, int err, const char *why)
{
    invoke_hdr_t *h = fl_msg_data(m);
    fl__conn_t *c = h->conn;
    if (c == NULL)
        return; /* answered */
    h->conn = NULL;
    if (err == FL_ECLOSED) {
        err = FL_EUNREACHABLE;
        why = "recipient unreachable: the rpc service is shutting down";
    }
    fl__rpc_wire_fail(c, h->corr, err, why ? why : fl_strerror(err));
}

/* The claim this read already holds on endpoint `id`, if any (I/O
 * thread): its calls join the claimed turn. */
static struct io_claim *held_claim(fl_rpc_service_t *svc, fl__str_t id)
{
    for (unsigned i = 0; i < svc->io_nclaims; i++) {
        struct io_claim *ic = &svc->io_claims[i];
        if (ic->id_len == id.len && memcmp(ic->ep->id, id.p, id.len) == 0)
            return ic;
    }
    return NULL;
}

static void on_invoke(void *arg, fl__conn_t *c, const fl__frame_hdr_t *h,
                      const fl__frame_meta_t *m, const uint8_t *body)
{
    fl_rpc_service_t *svc = arg;
    bool tell = (h->flags & FL__F_TELL) != 0;
    /* A call to an endpoint this read has claimed needs neither the
     * registry nor a reference: the claim holds one, and the endpoint
     * cannot run (so cannot stop) before on_frames runs its turn. */
    struct io_claim *held = held_claim(svc, m->endpoint);
    fl_rpc_endpoint_t *ep = held != NULL ? held->ep : NULL;
    bool claim = false;
    char id[FL__ID_MAX + 1];
    if (held == NULL) {
        str_copy(id, sizeof id, m->endpoint);
        pthread_mutex_lock(&svc->mu);
        ep = fl__rpc_find_ep(svc, id);
        /* May this thread run the endpoint's turn (see on_frames)? Then
         * the endpoint is held until it has: taken here, under the
         * registry's lock, because once that is let go the endpoint's
         * actor may stop on a worker and its last reference go before the
         * claim fails. */
        claim = ep != NULL && svc->io_turns && !ep->io_off &&
                svc->io_nclaims <
                    sizeof svc->io_claims / sizeof *svc->io_claims;
        if (claim)
            atomic_fetch_add_explicit(&ep->refs, 1, memory_order_relaxed);
        pthread_mutex_unlock(&svc->mu);
    }
    fl_actor_ref_t actor = ep ? ep->actor : (fl_actor_ref_t){0};
    if (ep == NULL) {
        if (tell) {
            FL_LOG(FL_LOG_INFO,
                   "rpc: tell from %s to unknown endpoint %s dropped",
                   fl__conn_peer_name(c), id);
            return;
        }
        char msg[FL__ID_MAX + 120];
        snprintf(msg, sizeof msg,
                 "recipient unreachable: no rpc endpoint %s here (it has "
                 "terminated or never existed)",
                 id);
        fl__conn_answer_error(c, h->corr, FL_EUNREACHABLE, msg);
        return;
    }
    fl_msg_t *msg =
        fl_msg_alloc(RPC_INVOKE, sizeof(invoke_hdr_t) + h->body_len);
    if (msg == NULL) {
        if (claim)
            fl__rpc_ep_release(ep);
        if (!tell)
            fl__conn_answer_error(c, h->corr, FL_ENOMEM,
                                  "out of memory receiving the call");
        return;
    }
    invoke_hdr_t *ih = fl_msg_data(msg);
    memset(ih, 0, sizeof *ih);
    ih->service = m->service_index;
    ih->method = m->method_index;
    ih->len = h->body_len;
    ih->wire = 1;
    if (h->flags & FL__F_FENCED) {
        ih->fence = FENCE_TOKEN;
        memcpy(ih->token.bytes, m->token, sizeof ih->token.bytes);
    } else {
        ih->fence = FENCE_NONE;
    }
    memcpy(ih + 1, body, h->body_len);
    if (!tell) {
        /* The message owes the caller an answer: handle_invoke hands it to
         * the call, and the runtime settles it if the message never gets
         * there (the endpoint stopped, the system closed). */
        ih->settle = fl__rpc_wire_settle;
        fl__conn_retain_io(c);
        ih->conn = c;
        ih->corr = h->corr;
        msg->flags |= FL__MF_SETTLE;
    }
    int rc;
    if (held != NULL) {
        rc = fl__tell_held(&held->claim, actor, msg);
    } else if (claim) {
        struct io_claim *ic = &svc->io_claims[svc->io_nclaims];
        rc = fl__tell_claim(svc->sys, actor, msg, &ic->claim);
        if (ic->claim.a != NULL) {
            ic->ep = ep;
            ic->id_len = strlen(ep->id);
            svc->io_nclaims++;
        } else {
            fl__rpc_ep_release(ep);
        }
    } else {
        rc = fl_tell(svc->sys, actor, msg);
    }
    if (rc != FL_OK && tell)
        FL_LOG(FL_LOG_INFO, "rpc: tell from %s to %s dropped: %s",
               fl__conn_peer_name(c), ep->id, fl_strerror(rc));
}

/*
 * The I/O thread runs the turns of the endpoints that calls of the read
 * at hand found idle: no worker is woken, the answers are queued on this
 * thread and written with the read's other frames. The endpoint's calls
 * stay serialized: a claimed endpoint runs nowhere else (actor/claim.h,
 * fl__tell_claim). A turn holds up every connection of the service, so it
 * ends at the first call that ends IO_TURN_SLOW_NS or more after it began
 * (the workers take the rest), and an endpoint whose turns end so
 * IO_TURN_STRIKES times in a row goes to the workers from then on.
 */
#define IO_TURN_SLOW_NS 1000000u
#define IO_TURN_STRIKES 2u

static void on_frames(void *arg)
{
    fl_rpc_service_t *svc = arg;
    for (unsigned i = 0; i < svc->io_nclaims; i++) {
        struct io_claim *ic = &svc->io_claims[i];
        fl_rpc_endpoint_t *ep = ic->ep;
        if (!fl__claim_run(&ic->claim, IO_TURN_SLOW_NS)) {
            ep->io_strikes = 0;
        } else if (++ep->io_strikes == IO_TURN_STRIKES) {
            ep->io_off = true;
            FL_LOG(FL_LOG_INFO,
                   "rpc: endpoint %s: %u turns in a row on the I/O thread "
                   "ran for %u us or more; its calls go to the worker "
                   "threads from now on",
                   ep->id, IO_TURN_STRIKES, IO_TURN_SLOW_NS / 1000u);
        }
        fl__rpc_ep_release(ep);
    }
    svc->io_nclaims = 0;
}

/* ---- client side ------------------------------------------------------------
 */

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
    uint32_t idx;
    memcpy(&idx, fl_msg_data(fl_future_value(raw)), sizeof idx);
    fl_rpc_gateway_t *gw = fl__rpc_gw_alloc(
        x->svc, x->desc, x->address, idx, x->fenced ? FENCE_TOKEN : FENCE_NONE,
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
    x->id = x->host = NULL;
    x->conn = NULL;
    fl_future_complete(x->dst, gw, fl__rpc_gw_free_cb);
    connect_ctx_free(x);
}

void fl__rpc_remote_connect(fl_rpc_service_t *svc, const char *address,
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
    int rc = service_net(svc, &net, why, sizeof why);
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

int fl__rpc_remote_call(fl_rpc_gateway_t *gw, unsigned method,
                        const ProtobufCMessage *req, int64_t timeout_ms,
                        bool tell, bool unpack, fl_future_t **out)
{
    if (method >= gw->base.descriptor->n_methods || req == NULL ||
        req->descriptor != gw->base.descriptor->methods[method].input)
        return FL_EINVAL;
    if (fl__conn_closed(gw->conn))
        return FL_ECLOSED;
    uint16_t flags = (uint16_t)((tell ? FL__F_TELL : 0) |
                                (gw->fence == FENCE_TOKEN ? FL__F_FENCED : 0));
    /* From a zero template, not an initializer: see fl__frame_decode_meta. */
    static const fl__frame_meta_t none;
    fl__frame_meta_t m = none;
    m.endpoint = (fl__str_t){gw->remote_id, (uint16_t)strlen(gw->remote_id)};
    m.service_index = gw->service_index;
    m.method_index = method;
    memcpy(m.token, gw->token.bytes, sizeof m.token);
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
    fl__obuf_t *b =
        meta != 0 ? fl__obuf_frame_sized(FL__K_INVOKE, flags, 0, &m, meta, n,
                                         &body)
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
