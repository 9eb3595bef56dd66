/*
 * local.c - the in-process transport (tran.h). A local gateway's target
 * is the endpoint's actor: a call packs its request into an RPC_INVOKE
 * message and tells or asks it; the reply travels back packed (RPC_REPLY)
 * and is unpacked on the caller's side, so local calls copy exactly like
 * remote ones. Its sink answers a local ask's future. Connecting finds the
 * endpoint in the service's registry.
 */
#include "rpc/local.h"

#include "actor/future.h"
#include "common/pool.h"
#include "remote/address.h"
#include "rpc/answer.h"
#include "rpc/arena.h"
#include "rpc/call.h"
#include "rpc/calllog.h"
#include "rpc/dispatch.h"
#include "rpc/endpoint.h"
#include "rpc/fencing.h"
#include "rpc/flat.h"
#include "rpc/gateway.h"
#include "rpc/resolve.h"
#include "rpc/service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the caller's side -------------------------------------------------- */

fl_rpc_gateway_t *fl__rpc_local_gw(fl_rpc_service_t *svc, fl_rpc_endpoint_t *ep,
                                   uint32_t service_index, uint8_t fence,
                                   const fl_fencing_token_t *token)
{
    fl_rpc_gateway_t *gw = fl__rpc_gw_alloc(
        svc, &fl__rpc_tran_local, ep->services[service_index]->descriptor,
        ep->address, service_index, fence, token,
        fence == FENCE_TOKEN || ep->fenced);
    if (gw == NULL)
        return NULL;
    /* How each method's request copies, found once (flat.h). The gateway
     * has the endpoint's own descriptor, so both sides know the request
     * by the same struct. */
    const ProtobufCServiceDescriptor *d = gw->base.descriptor;
    gw->flat_in = fl__calloc(d->n_methods ? d->n_methods : 1, 1);
    if (gw->flat_in == NULL) {
        fl_rpc_gateway_free(gw);
        return NULL;
    }
    for (unsigned i = 0; i < d->n_methods; i++)
        gw->flat_in[i] = (uint8_t)fl__rpc_flat_kind(d->methods[i].input);
    /* The requests its tells send as an RPC_TELL (dispatch.h, call.c):
     * the endpoint's table says which. The header's fields are 16-bit:
     * wider indexes take RPC_INVOKE. */
    gw->tells = ep->tells[service_index].methods;
    gw->ntells = service_index <= UINT16_MAX && d->n_methods <= UINT16_MAX + 1u
                     ? ep->tells[service_index].n
                     : 0;
    gw->actor = ep->actor;
    gw->ep = ep;
    gw->tell_hdr =
        (tell_hdr_t){.service = (uint16_t)service_index, .fence = fence};
    fl__rpc_ep_retain(ep);
    return gw;
}

/* ---- what a local call's runtime failures say --------------------------- */

const char *fl__rpc_say_terminated(char *buf, size_t cap, const char *id,
                                   const char *method)
{
    if (method != NULL)
        snprintf(buf, cap,
                 "recipient unreachable: rpc endpoint '%s' has terminated "
                 "(%s not delivered)",
                 id, method);
    else
        snprintf(buf, cap,
                 "recipient unreachable: rpc endpoint '%s' has terminated", id);
    return buf;
}

/* The namer of a local call's ask (actor/future.h): ctx the endpoint (one
 * reference), aux the service's descriptor, word the method. Formats only
 * when the timeout or a dead letter fails the call. */
static void say_call(void *ctx, const void *aux, uint64_t word, int err,
                     int64_t timeout_ms, char *buf, size_t cap)
{
    const fl_rpc_endpoint_t *ep = ctx;
    char name[256];
    fl__rpc_method_name(aux, (unsigned)word, name, sizeof name);
    if (err == FL_ETIMEDOUT)
        snprintf(buf, cap, "Invocation of %s on %s timed out after %lld ms",
                 name, ep->address, (long long)timeout_ms);
    else
        fl__rpc_say_terminated(buf, cap, ep->id, name);
}

/* The namer of fl_rpc_call_async's future: ctx the endpoint. */
static void say_callable(void *ctx, const void *aux, uint64_t word, int err,
                         int64_t timeout_ms, char *buf, size_t cap)
{
    const fl_rpc_endpoint_t *ep = ctx;
    (void)aux;
    (void)word;
    if (err == FL_ETIMEDOUT)
        snprintf(buf, cap,
                 "Invocation of a callable on %s timed out after %lld ms",
                 ep->address, (long long)timeout_ms);
    else
        fl__rpc_say_terminated(buf, cap, ep->id, NULL);
}

static void release_ep(void *ctx)
{
    fl__rpc_ep_release(ctx);
}

static const fl__namer_t call_namer = {say_call, release_ep};
static const fl__namer_t callable_namer = {say_callable, release_ep};

void fl__rpc_name_callable(fl_future_t *f, fl_rpc_endpoint_t *ep)
{
    fl__rpc_ep_retain(ep);
    fl__future_set_namer(f, &callable_namer, ep, NULL, 0);
}

/* FL_EINVAL for a request of n bytes, over what a call carries. Out of
 * line: its buffer stays off build_invoke's frame. */
static FL__COLD int refuse_too_large(const fl_rpc_gateway_t *gw,
                                     unsigned method, size_t n)
{
    char name[256];
    return fl__rpc_refuse(
        FL_EINVAL,
        "Invocation of %s refused: its request packs to %zu bytes, over the "
        "4294967295 a call can carry",
        fl__rpc_method_name(gw->base.descriptor, method, name, sizeof name), n);
}

/* Build the invocation message for method of gw with req in it, packed or
 * flat (dispatch.h). */
static int build_invoke(fl_rpc_gateway_t *gw, unsigned method,
                        const ProtobufCMessage *req, fl_msg_t **out)
{
    *out = NULL;
    int rc = fl__rpc_check_request(gw->base.descriptor, method, req);
    if (rc != FL_OK)
        return rc;
    /* A flat request is copied struct to struct: the target gets what
     * unpacking the packed bytes would give it, at a tenth of the cost. */
    fl__rpc_flat_t flat =
        req->n_unknown_fields == 0 ? gw->flat_in[method] : FL__FLAT_NO;
    size_t n = flat != FL__FLAT_NO ? req->descriptor->sizeof_message
                                   : protobuf_c_message_get_packed_size(req);
    if (n > UINT32_MAX)
        return refuse_too_large(gw, method, n);
    fl_msg_t *m = fl_msg_alloc(RPC_INVOKE, FL__RPC_LOCAL_HDR + n);
    if (m == NULL)
        return FL_ENOMEM;
    invoke_hdr_t *h = fl__msg_payload(m);
    h->deadline_ns = 0;
    h->service = gw->service_index;
    h->method = method;
    h->len = (uint32_t)n;
    h->fence = gw->fence;
    h->wire = 0;
    h->flat = flat != FL__FLAT_NO;
    h->token = gw->token;
    h->sink = FL__RPC_SINK_LOCAL;
    if (flat != FL__FLAT_NO)
        fl__rpc_flat_copy(flat, req, fl__rpc_invoke_body(h));
    else
        protobuf_c_message_pack(req, fl__rpc_invoke_body(h));
    *out = m;
    return FL_OK;
}

FL__COLD int fl__rpc_local_tell_refused(fl_rpc_gateway_t *gw, unsigned method,
                                        int rc)
{
    char name[FL__RPC_NAME_MAX];
    fl__rpc_method_name(gw->base.descriptor, method, name, sizeof name);
    if (fl__log_on(FL_LOG_COMPONENT, FL_LOG_WARN))
        fl__rpc_tell_dropped(FL__DROP_SEND, gw->ep->id, name, NULL,
                             "it has terminated");
    if (rc == FL_EUNREACHABLE) {
        char why[512];
        return fl__rpc_refuse(
            rc, "%s",
            fl__rpc_say_terminated(why, sizeof why, gw->ep->id, name));
    }
    return rc;
}

int fl__rpc_local_tell(fl_rpc_gateway_t *gw, unsigned method,
                       const ProtobufCMessage *req)
{
    fl_msg_t *m;
    int rc = build_invoke(gw, method, req, &m);
    if (rc != FL_OK)
        return rc;
    rc = fl_tell(gw->svc->sys, gw->actor, m);
    if (fl__likely(rc != FL_EUNREACHABLE && rc != FL_ECLOSED))
        return rc;
    return fl__rpc_local_tell_refused(gw, method, rc);
}

int fl__rpc_local_ask(fl_rpc_gateway_t *gw, unsigned method,
                      const ProtobufCMessage *req, int64_t timeout_ms,
                      const fl__ask_then_t *then, fl_future_t **ask)
{
    *ask = NULL;
    fl_msg_t *m;
    int rc = build_invoke(gw, method, req, &m);
    if (rc != FL_OK) {
        if (then != NULL)
            fl_future_release(then->f); /* consumed, as by fl__ask_named */
        return rc;
    }
    /* The endpoint drops the call if it is still queued when the ask
     * times out. */
    if (timeout_ms != FL_INFINITE) {
        invoke_hdr_t *h = fl_msg_data(m);
        h->deadline_ns = fl__rpc_deadline_of(timeout_ms);
    }
    /* The ask's future names the call if the runtime fails it (timeout,
     * dead letter); it holds the endpoint until it completes. */
    fl__rpc_ep_retain(gw->ep);
    return fl__ask_named(gw->svc->sys, gw->actor, m, timeout_ms, &call_namer,
                         gw->ep, gw->base.descriptor, method, then, ask);
}

static int local_ask(fl_rpc_gateway_t *gw, unsigned method,
                     const ProtobufCMessage *req, int64_t timeout_ms,
                     fl_future_t **ask)
{
    return fl__rpc_local_ask(gw, method, req, timeout_ms, NULL, ask);
}

/* A local fl_rpc_call waiting for its packed reply: unpacked into dst on
 * the thread that completes the ask. desc is static (protoc-c's). */
typedef struct local_reply {
    fl_future_t *dst;
    const ProtobufCServiceDescriptor *desc;
    unsigned method;
} local_reply_t;

static void on_local_reply(fl_future_t *ask, void *p)
{
    local_reply_t *r = p;
    int err = fl_future_error(ask);
    if (err != FL_OK) {
        fl_future_fail(r->dst, err, "%s", fl_future_message(ask));
    } else {
        const ProtobufCMessageDescriptor *d =
            r->desc->methods[r->method].output;
        fl_msg_t *m = fl_future_value(ask);
        bool over = false;
        ProtobufCMessage *reply;
        if (fl_msg_type(m) == RPC_REPLY_FLAT) {
            /* The future's value is the caller's own copy, freed as an
             * unpacked message (with free). The reply is a d: the gateway
             * has the endpoint's descriptor. */
            if ((reply = malloc(d->sizeof_message)) != NULL)
                memcpy(reply, fl_msg_data(m), d->sizeof_message);
        } else {
            reply =
                fl__rpc_unpack(d, NULL, fl_msg_size(m), fl_msg_data(m), &over);
        }
        if (reply != NULL) {
            fl_future_complete(r->dst, reply, fl__rpc_free_message_cb);
        } else {
            /* The bytes are protobuf-c's own, of the checked type: only
             * the memory bound or the allocator can refuse them. */
            char name[FL__RPC_NAME_MAX], why[256] = ": out of memory";
            if (over)
                fl__rpc_decode_over_why(fl_msg_size(m), why, sizeof why);
            fl_future_fail(
                r->dst, FL_EDECODE, "Could not decode the reply of %s: %s%s",
                fl__rpc_method_name(r->desc, r->method, name, sizeof name),
                d->name, why);
        }
    }
    fl_future_release(r->dst);
    fl__block_free(r, sizeof *r);
}

/* The ask was freed unanswered (it never is: a dropped call fails it). */
static void drop_local_reply(void *p)
{
    local_reply_t *r = p;
    fl_future_fail(r->dst, FL_ENOREPLY, NULL);
    fl_future_release(r->dst);
    fl__block_free(r, sizeof *r);
}

static int local_call(fl_rpc_gateway_t *gw, unsigned method,
                      const ProtobufCMessage *req, int64_t timeout_ms,
                      fl_future_t **out)
{
    local_reply_t *r = fl__block_alloc(sizeof *r);
    fl_future_t *f = fl_future_alloc();
    if (r == NULL || f == NULL) {
        fl__block_free(r, sizeof *r);
        fl_future_release(f);
        return FL_ENOMEM;
    }
    r->dst = fl_future_retain(f); /* the reply may come before we return */
    r->desc = gw->base.descriptor;
    r->method = method;
    /* The reply is waited for from before the call goes (no lock). */
    const fl__ask_then_t then = {on_local_reply, drop_local_reply, r, NULL};
    fl_future_t *ask;
    int rc = fl__rpc_local_ask(gw, method, req, timeout_ms, &then, &ask);
    if (rc != FL_OK) {
        fl_future_release(r->dst);
        fl__block_free(r, sizeof *r);
        fl_future_release(f);
        return rc;
    }
    fl_future_release(ask);
    *out = f;
    return FL_OK;
}

static int local_await(fl_rpc_gateway_t *gw, fl_future_t *f)
{
    (void)gw;
    return fl_future_wait(f, FL_INFINITE);
}

static void local_gw_fini(fl_rpc_gateway_t *gw)
{
    /* The actor is a reference by id; the endpoint's memory is held. */
    fl__free(gw->flat_in);
    if (gw->ep != NULL)
        fl__rpc_ep_release(gw->ep);
}

/* An address of no transport's scheme comes here too (gateway.c): the
 * parser says what is wrong with it (FL_ECONNECT). A pattern resolves to
 * the newest matching endpoint (resolve.h); the gateway is bound to that
 * endpoint (its actor) and carries its concrete address. */
static int local_connect(fl_rpc_service_t *svc, const char *address,
                         const ProtobufCServiceDescriptor *desc,
                         const fl_fencing_token_t *token, fl_future_t *f)
{
    pthread_mutex_lock(&svc->mu);
    bool closed = svc->closed;
    pthread_mutex_unlock(&svc->mu);
    if (closed)
        return FL_ECLOSED;
    char why[768];
    fl__address_t a;
    if (!fl__rpc_connect_parse(address, svc->tls != NULL, &a, f))
        return FL_OK;
    pthread_mutex_lock(&svc->mu);
    fl_rpc_endpoint_t *ep =
        fl__rpc_resolve(svc, a.endpoint, desc->name, true, why, sizeof why);
    int idx = ep ? fl__rpc_service_index(ep, desc->name) : -1;
    fl_rpc_gateway_t *gw = NULL;
    if (idx >= 0)
        gw = fl__rpc_local_gw(svc, ep, (uint32_t)idx,
                              token ? FENCE_TOKEN : FENCE_NONE, token);
    pthread_mutex_unlock(&svc->mu);
    if (ep == NULL)
        fl_future_fail(
            f, FL_ECONNECT,
            "Could not connect to rpc endpoint under address %.300s: "
            "%s",
            address, why);
    else if (idx < 0)
        fl_future_fail(f, FL_EHANDSHAKE,
                       "The rpc endpoint does not support the gateway %s.",
                       desc->name);
    else if (gw == NULL)
        fl_future_fail(f, FL_ENOMEM, NULL);
    else
        fl_future_complete(f, gw, fl__rpc_gw_free_cb);
    return FL_OK;
}

const fl__rpc_tran_t fl__rpc_tran_local = {
    .scheme = FL__RPC_LOCAL_SCHEME,
    .connect = local_connect,
    .tell = fl__rpc_local_tell,
    .ask = local_ask,
    .call = local_call,
    .await = local_await,
    .gw_fini = local_gw_fini,
};

/* ---- the answer's side: a local ask's future ---------------------------- */

/* Pack msg into a reply message (RPC_REPLY), or copy it flat
 * (RPC_REPLY_FLAT, flat.h). NULL when out of memory. */
static fl_msg_t *pack_reply(const ProtobufCMessage *msg)
{
    /* The kind of the last descriptor replied on this thread: an endpoint
     * answers the same method over and over, and the walk of the fields
     * (fl__rpc_flat_kind) showed in rpc.local_call. */
    static _Thread_local const ProtobufCMessageDescriptor *last_d;
    static _Thread_local fl__rpc_flat_t last_kind;
    if (msg->descriptor != last_d) {
        last_kind = fl__rpc_flat_kind(msg->descriptor);
        last_d = msg->descriptor;
    }
    fl__rpc_flat_t flat = msg->n_unknown_fields != 0 ? FL__FLAT_NO : last_kind;
    if (flat != FL__FLAT_NO) {
        fl_msg_t *m =
            fl_msg_alloc(RPC_REPLY_FLAT, msg->descriptor->sizeof_message);
        if (m != NULL)
            fl__rpc_flat_copy(flat, msg, fl_msg_data(m));
        return m;
    }
    size_t n = protobuf_c_message_get_packed_size(msg);
    fl_msg_t *m = fl_msg_alloc(RPC_REPLY, n);
    if (m != NULL)
        protobuf_c_message_pack(msg, fl_msg_data(m));
    return m;
}

static void *sink_take(fl_msg_t *msg)
{
    return fl_msg_take_reply(msg);
}

static void sink_fail_msg(fl_msg_t *msg, int err, const char *why)
{
    fl_reply_error(msg, err, "%s", why);
}

static void sink_reply(fl_rpc_call_t *c, const ProtobufCMessage *reply)
{
    fl_msg_t *m = pack_reply(reply);
    if (m == NULL)
        fl_future_fail(c->to, FL_ENOMEM, "could not pack the reply");
    else
        fl_future_complete(c->to, m, fl_msg_free_cb);
}

static void sink_fail(fl_rpc_call_t *c, int err, const char *msg)
{
    fl_future_fail(c->to, err, "%s", msg);
}

static void sink_release(fl_rpc_call_t *c)
{
    fl_future_release(c->to);
}

const fl__rpc_sink_t fl__rpc_sink_local = {
    .take = sink_take,
    .fail_msg = sink_fail_msg,
    .reply = sink_reply,
    .fail = sink_fail,
    .release = sink_release,
};
