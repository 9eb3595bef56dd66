/*
 * tcp_server.c - the serving side of RPC over TCP. The transport's hooks
 * turn a CONNECT into a registry lookup and a CONNECTED or ERROR, and an
 * INVOKE into the very RPC_INVOKE message a local gateway sends, asked of
 * the endpoint's actor; the answer goes back as REPLY or ERROR with the
 * request's correlation id. So remote calls pass the same checks, in the
 * same order, with the same codes as local ones (handle_invoke in
 * dispatch.c), plus a nesting-depth check of the bytes. Calls to an idle
 * endpoint may run their turn on the I/O thread (on_frames). A call that
 * leaves its endpoint's mailbox over its bound stops the reading of its
 * connection until the mailbox drains (remote/inbound.c).
 */
#include "rpc/tcp.h"

#include "actor/claim.h"
#include "actor/flow.h"
#include "actor/msg.h"
#include "remote/rx.h"
#include "rpc/answer.h"
#include "rpc/call.h"
#include "rpc/calllog.h"
#include "rpc/dispatch.h"
#include "rpc/endpoint.h"
#include "rpc/fencing.h"
#include "rpc/resolve.h"
#include "rpc/service.h"

#include <stdio.h>
#include <string.h>

static void str_copy(char *dst, size_t cap, fl__str_t s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    memcpy(dst, s.p, n);
    dst[n] = '\0';
}

/* The instance id of ep on the wire (CONNECTED, INVOKE): unique to the
 * endpoint among those of every life of every service under the
 * address, so that a gateway never reaches a successor, not even one of
 * a restarted process (whose refs repeat the old one's). */
static uint64_t wire_instance(const fl_rpc_service_t *svc,
                              const fl_rpc_endpoint_t *ep)
{
    /* Within one life the ids differ as the refs do (a xor with one
     * value); across lives they differ as the random incarnations do. */
    return ep->actor.id ^ svc->incarnation;
}

void fl__rpc_tcp_on_connect(void *arg, fl__conn_t *c, uint64_t corr,
                            const fl__frame_meta_t *m)
{
    fl_rpc_service_t *svc = arg;
    char id[FL__ID_MAX + 1], gateway[FL__NAME_MAX + 1];
    str_copy(id, sizeof id, m->endpoint);
    str_copy(gateway, sizeof gateway, m->gateway);
    /* A pattern (the decoder let a * through in a CONNECT) resolves to
     * one endpoint, whose id the CONNECTED tells the client: its INVOKEs
     * name that id (and its instance). */
    bool pattern = strchr(id, '*') != NULL;
    char resolved[FL__ID_MAX + 1];
    char why[FL__ERRMSG_MAX];
    int idx = -1;
    uint64_t instance = 0;
    pthread_mutex_lock(&svc->mu);
    /* A refusal tells a remote caller how many endpoints there are, not
     * their ids. */
    fl_rpc_endpoint_t *ep =
        fl__rpc_resolve(svc, id, gateway, false, why, sizeof why);
    if (ep != NULL) {
        idx = fl__rpc_service_index(ep, gateway);
        instance = wire_instance(svc, ep);
        snprintf(resolved, sizeof resolved, "%s", ep->id);
    }
    pthread_mutex_unlock(&svc->mu);
    FL_LOG_KV(FL_LOG_DEBUG,
              FL_KV(FL_F("endpoint", id), FL_F("gateway", gateway),
                    FL_FU64("corr", corr), FL_F("peer", fl__conn_peer_name(c)),
                    FL_F("code", fl_err_name(ep == NULL ? FL_ECONNECT
                                             : idx < 0  ? FL_EHANDSHAKE
                                                        : FL_OK))),
              "gateway connect received");
    /* The why and an address of up to 480 bytes; the wire cuts it at
     * FL__ERRMSG_MAX. */
    char msg[2 * FL__ERRMSG_MAX];
    if (ep == NULL) {
        char *addr = fl__rpc_endpoint_address(svc, id);
        snprintf(msg, sizeof msg,
                 "Could not connect to rpc endpoint under address %s: %s",
                 addr ? addr : id, why);
        fl__free(addr);
        fl__conn_answer_error(c, corr, FL_ECONNECT, msg);
    } else if (idx < 0) {
        snprintf(msg, sizeof msg,
                 "The rpc endpoint does not support the gateway %s.", gateway);
        fl__conn_answer_error(c, corr, FL_EHANDSHAKE, msg);
    } else {
        fl__conn_answer_connected(c, corr, (uint32_t)idx, instance,
                                  pattern ? resolved : NULL);
    }
}

/* Answer a call from the wire with an ERROR of err and msg; consumes the
 * reference to c. Any thread. */
static void wire_fail(fl__conn_t *c, uint64_t corr, int err, const char *msg)
{
    fl__conn_answer_error(c, corr, err, msg);
    fl__conn_release_turn(c);
}

/* Take c's connection: whoever does answers on it. */
static fl__conn_t *call_take_conn(fl_rpc_call_t *c)
{
    fl__conn_t *conn = c->to;
    c->to = NULL;
    return conn;
}

/* "package.Service.Method" of call k into buf: its service is the one of
 * k's endpoint whose method descriptor gave k its name (handle_invoke);
 * k's method name as it is otherwise. For messages only. */
static const char *call_name(const fl_rpc_call_t *k, char *buf, size_t cap)
{
    const fl_rpc_endpoint_t *ep = k->ep;
    for (size_t i = 0; i < ep->nservices; i++) {
        const ProtobufCServiceDescriptor *d = ep->services[i]->descriptor;
        for (unsigned m = 0; m < d->n_methods; m++)
            if (d->methods[m].name == k->method)
                return fl__rpc_method_name(d, m, buf, cap);
    }
    snprintf(buf, cap, "%s", k->method);
    return buf;
}

/* The debug line of call c answered with code on conn (before the
 * answer goes: it consumes conn's reference). */
static void log_answered(const fl_rpc_call_t *c, const fl__conn_t *conn,
                         int code)
{
    fl__rpc_log_answered(c->ep->id, c->corr, fl__conn_peer_name(conn), code,
                         c->recv_ns);
}

/* Answer call k from the wire: its reply packed straight into a REPLY
 * frame; or, if that exceeds the caller's frame limit, ERROR FL_EMSGSIZE
 * naming the method, both sizes and whose limit it is, and a warning here
 * (rate-limited). Consumes k's connection and the reference to it. Any
 * thread. */
static void wire_reply(fl_rpc_call_t *k, const ProtobufCMessage *reply)
{
    fl__conn_t *c = call_take_conn(k);
    uint64_t corr = k->corr;
    size_t n = protobuf_c_message_get_packed_size(reply);
    uint64_t total = (uint64_t)FL__FRAME_HDR + n;
    uint32_t max = fl__conn_peer_max(c);
    if (fl__rpc_calls_traced())
        log_answered(k, c, total > max ? FL_EMSGSIZE : FL_OK);
    if (total > max) {
        char msg[FL__ERRMSG_MAX + 1], name[256];
        call_name(k, name, sizeof name);
        snprintf(msg, sizeof msg,
                 "Reply of %s is %llu bytes, over the caller's %u-byte frame "
                 "limit (its max_frame_size): rpc endpoint %s refused to send "
                 "it",
                 name, (unsigned long long)total, max, k->ep->address);
        FL_LOG_RATELIMITED_KV(
            FL_LOG_WARN, FL__LOG_BURST,
            FL_KV(FL_F("endpoint", k->ep->id), FL_F("method", name),
                  FL_FU64("corr", corr), FL_F("peer", fl__conn_peer_name(c))),
            "endpoint %s: reply of %s to %s refused: %llu bytes, over the "
            "caller's %u-byte frame limit (its max_frame_size)",
            k->ep->id, name, fl__conn_peer_name(c), (unsigned long long)total,
            max);
        wire_fail(c, corr, FL_EMSGSIZE, msg);
        return;
    }
    uint8_t *body;
    fl__obuf_t *b = fl__obuf_frame(FL__K_REPLY, 0, corr, NULL, n, &body);
    if (b == NULL) {
        wire_fail(c, corr, FL_ENOMEM, "out of memory sending the reply");
        return;
    }
    protobuf_c_message_pack(reply, body);
    fl__conn_send(c, b);
    fl__conn_release_turn(c);
}

/* The settle function of calls from the wire (FL__MF_SETTLE): answers m's
 * call with err and why if its connection is still held, and lets go of
 * it; then reports the call done to its connection's inbound budget (the
 * runtime settles every message it is done with: handled, dropped, dead).
 * Also how handle_invoke fails a call from the wire (the wire sink's
 * fail_msg). Any thread. */
static void wire_settle(fl_msg_t *m, int err, const char *why)
{
    invoke_hdr_t *h = fl_msg_data(m);
    fl__conn_t *c = h->to;
    if (c != NULL) {
        h->to = NULL;
        if (err == FL_ECLOSED) {
            err = FL_EUNREACHABLE;
            why = "recipient unreachable: the rpc service is shutting down";
        }
        fl__rpc_log_answered(NULL, h->corr, fl__conn_peer_name(c), err,
                             h->recv_ns);
        wire_fail(c, h->corr, err, why ? why : fl_strerror(err));
    }
    if (h->in_conn != NULL) {
        fl__conn_t *in = h->in_conn;
        h->in_conn = NULL;
        fl__conn_inbound_done(in, h->in_bytes);
    }
}

/* ---- the wire sink (tran.h): answers in frames on the connection ------- */

static void *sink_take(fl_msg_t *msg)
{
    invoke_hdr_t *h = fl_msg_data(msg);
    void *c = h->to;
    h->to = NULL;
    return c;
}

static void sink_reply(fl_rpc_call_t *c, const ProtobufCMessage *reply)
{
    wire_reply(c, reply);
}

static void sink_fail(fl_rpc_call_t *c, int err, const char *msg)
{
    fl__conn_t *conn = call_take_conn(c);
    log_answered(c, conn, err);
    wire_fail(conn, c->corr, err, msg);
}

static void sink_release(fl_rpc_call_t *c)
{
    /* Unreachable: a call from the wire ends answered. */
    fl__conn_t *conn = call_take_conn(c);
    log_answered(c, conn, FL_ENOREPLY);
    wire_fail(conn, c->corr, FL_ENOREPLY, "call dropped");
}

const fl__rpc_sink_t fl__rpc_sink_wire = {
    .take = sink_take,
    .fail_msg = wire_settle,
    .reply = sink_reply,
    .fail = sink_fail,
    .release = sink_release,
};

/* ---- serving frames (the transport's hooks) ----------------------------- */

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

/* Whether an INVOKE is for ep: the instance its gateway connected to,
 * when it names one (FL__F_INSTANCE). */
static bool same_instance(const fl_rpc_service_t *svc, const fl__frame_hdr_t *h,
                          const fl__frame_meta_t *m,
                          const fl_rpc_endpoint_t *ep)
{
    return !(h->flags & FL__F_INSTANCE) ||
           m->instance == wire_instance(svc, ep);
}

/* A call whose body is larger never runs on the I/O thread: decoding it
 * would hold up every other connection of the service (a 64 KiB body of
 * 2-byte fields takes about 1 ms to scan, the budget of an I/O turn). */
#define IO_TURN_MAX_BODY (64u << 10)

/* The debug line of an INVOKE received on c for ep (NULL: none of that
 * id); returns when it was received. */
static uint64_t log_received(fl__conn_t *c, const fl__frame_hdr_t *h,
                             const fl__frame_meta_t *m,
                             const fl_rpc_endpoint_t *ep)
{
    char id[FL__ID_MAX + 1], name[FL__RPC_NAME_MAX];
    str_copy(id, sizeof id, m->endpoint);
    fl__rpc_ep_method_name(ep, m->service_index, m->method_index, name,
                           sizeof name);
    return fl__rpc_log_received((h->flags & FL__F_TELL) != 0, id, name, h->corr,
                                fl__conn_peer_name(c));
}

/* Log a tell from c to the endpoint m names (ep; NULL: none) dropped. */
static void tell_dropped(fl__conn_t *c, const fl__frame_meta_t *m,
                         const fl_rpc_endpoint_t *ep, fl__rpc_drop_t reason,
                         const char *why)
{
    if (!fl__log_on(FL_LOG_COMPONENT, FL_LOG_WARN))
        return;
    char id[FL__ID_MAX + 1], name[FL__RPC_NAME_MAX];
    str_copy(id, sizeof id, m->endpoint);
    fl__rpc_ep_method_name(ep, m->service_index, m->method_index, name,
                           sizeof name);
    fl__rpc_tell_dropped(reason, id, name, fl__conn_peer_name(c), "%s", why);
}

void fl__rpc_tcp_on_invoke(void *arg, fl__conn_t *c, const fl__frame_hdr_t *h,
                           const fl__frame_meta_t *m, const uint8_t *body)
{
    fl_rpc_service_t *svc = arg;
    bool tell = (h->flags & FL__F_TELL) != 0;
    bool big = h->body_len > IO_TURN_MAX_BODY;
    /* A call to an endpoint this read has claimed needs neither the
     * registry nor a reference: the claim holds one, and the endpoint
     * cannot run (so cannot stop) before on_frames runs its turn. */
    struct io_claim *held = held_claim(svc, m->endpoint);
    if (held != NULL && big) {
        /* The calls before it run first (the order of the endpoint's
         * calls), then the claims end: it goes to the workers. */
        fl__rpc_tcp_on_frames(svc);
        held = NULL;
    }
    fl_rpc_endpoint_t *ep = held != NULL ? held->ep : NULL;
    bool claim = false;
    if (held != NULL && !same_instance(svc, h, m, ep)) {
        held = NULL;
        ep = NULL;
    } else if (held == NULL) {
        char id[FL__ID_MAX + 1];
        str_copy(id, sizeof id, m->endpoint);
        pthread_mutex_lock(&svc->mu);
        ep = fl__rpc_find_ep(svc, id);
        if (ep != NULL && !same_instance(svc, h, m, ep))
            ep = NULL; /* a successor under the gateway's id */
        /* May this thread run the endpoint's turn (see on_frames)? Then
         * the endpoint is held until it has: taken here, under the
         * registry's lock, because once that is let go the endpoint's
         * actor may stop on a worker and its last reference go before the
         * claim fails. */
        claim =
            ep != NULL && svc->io_turns && !ep->io_off && !big &&
            svc->io_nclaims < sizeof svc->io_claims / sizeof *svc->io_claims;
        if (claim)
            fl__rpc_ep_retain(ep);
        pthread_mutex_unlock(&svc->mu);
    }
    fl_actor_ref_t actor = ep ? ep->actor : (fl_actor_ref_t){0};
    uint64_t recv_ns = 0;
    if (fl__rpc_calls_traced())
        recv_ns = log_received(c, h, m, ep);
    if (ep == NULL) {
        if (tell) {
            tell_dropped(c, m, NULL, FL__DROP_NO_ENDPOINT,
                         "no rpc endpoint of that id here (it has terminated "
                         "or never existed)");
            return;
        }
        fl__rpc_log_answered(NULL, h->corr, fl__conn_peer_name(c),
                             FL_EUNREACHABLE, recv_ns);
        char msg[FL__ID_MAX + 120];
        snprintf(msg, sizeof msg,
                 "recipient unreachable: no rpc endpoint %.*s here (it has "
                 "terminated or never existed)",
                 (int)m->endpoint.len, m->endpoint.p);
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
    ih->sink = FL__RPC_SINK_WIRE;
    ih->recv_ns = recv_ns;
    if (h->flags & FL__F_DEADLINE)
        ih->deadline_ns = fl__rpc_deadline_of(m->deadline_ms);
    if (h->flags & FL__F_FENCED) {
        ih->fence = FENCE_TOKEN;
        memcpy(ih->token.bytes, m->token, sizeof ih->token.bytes);
    } else {
        ih->fence = FENCE_NONE;
    }
    memcpy(fl__rpc_invoke_body(ih), body, h->body_len); /* ih->wire set above */
    /* Its bytes count against c's inbound budget until the runtime is done
     * with the message (wire_settle). */
    ih->settle = wire_settle;
    msg->flags |= FL__MF_SETTLE;
    ih->in_conn = c;
    ih->in_bytes = fl__conn_inbound_keep(c);
    if (!tell) {
        /* The message owes the caller an answer: handle_invoke hands it to
         * the call, and the runtime settles it if the message never gets
         * there (the endpoint stopped, the system closed). */
        fl__conn_retain_io(c);
        ih->to = c;
        ih->corr = h->corr;
    }
    int rc;
    bool unclaimed = false;
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
            unclaimed = true;
        }
    } else {
        rc = fl_tell(svc->sys, actor, msg);
    }
    if (rc != FL_OK && tell)
        tell_dropped(c, m, ep, FL__DROP_SEND,
                     rc == FL_EUNREACHABLE || rc == FL_ECLOSED
                         ? "it has terminated"
                         : fl_strerror(rc));
    /* Only after tell_dropped has read ep's method names. */
    if (unclaimed)
        fl__rpc_ep_release(ep);
    /* A mailbox over its bound stops reading c as the budget does
     * (docs/wire-protocol.md, "Flow control"): TCP pushes back. */
    if (rc == FL_OK)
        fl__conn_inbound_over_bound(c, svc->sys, actor.id);
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

void fl__rpc_tcp_on_frames(void *arg)
{
    fl_rpc_service_t *svc = arg;
    for (unsigned i = 0; i < svc->io_nclaims; i++) {
        struct io_claim *ic = &svc->io_claims[i];
        fl_rpc_endpoint_t *ep = ic->ep;
        if (!fl__claim_run(&ic->claim, IO_TURN_SLOW_NS)) {
            ep->io_strikes = 0;
        } else if (++ep->io_strikes == IO_TURN_STRIKES) {
            ep->io_off = true;
            FL_LOG_KV(FL_LOG_INFO, FL_KV(FL_F("endpoint", ep->id)),
                      "endpoint %s: %u turns in a row on the I/O thread "
                      "ran for %u us or more; its calls go to the worker "
                      "threads from now on",
                      ep->id, IO_TURN_STRIKES, IO_TURN_SLOW_NS / 1000u);
        }
        fl__rpc_ep_release(ep);
    }
    svc->io_nclaims = 0;
}
