/*
 * dispatch.c - an endpoint's main thread: its actor's receive function.
 * Calls, control messages (start, stop, terminate) and tasks all go
 * through the endpoint's mailbox, so the contract's ordering and state
 * checks (Flink's PekkoRpcActor, contract 2.2/2.3) are made in one place,
 * here. A call is checked (method, state, fencing, handler, bytes from the
 * wire), its request unpacked into the thread's arena, and its handler run
 * with a call record on the stack (answer.h).
 */
#include "rpc/dispatch.h"

#include "rpc/answer.h"
#include "rpc/arena.h"
#include "rpc/call.h"
#include "rpc/calllog.h"
#include "rpc/endpoint.h"
#include "rpc/fencing.h"
#include "rpc/service.h"
#include "rpc/tcp.h"

#include <stdio.h>
#include <string.h>

static void invoke_fail(fl_msg_t *msg, int err, const char *fmt, ...)
    FL_PRINTF(3, 4);

/* invoke_asked: the invocation msg (well formed) expects an answer: it is
 * an ask, or carries a target of its own (a call from the wire). */
static bool invoke_asked(fl_msg_t *msg)
{
    const invoke_hdr_t *h = fl__msg_payload(msg);
    return msg->reply != NULL || (h->wire && h->to != NULL);
}

/* invoke_fail answers the invocation msg (well formed) with an error if it
 * expects an answer. */
static void invoke_fail(fl_msg_t *msg, int err, const char *fmt, ...)
{
    invoke_hdr_t *h = fl_msg_data(msg);
    if (!invoke_asked(msg))
        return;
    char buf[FL__ERRMSG_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fl__rpc_sinks[h->sink]->fail_msg(msg, err, buf);
}

/* The peer a call from the wire came from; NULL for a local one. */
static const char *invoke_peer(const invoke_hdr_t *h)
{
    return h->wire && h->in_conn != NULL ? fl__conn_peer_name(h->in_conn)
                                         : NULL;
}

/* Log a tell of method m of ep's service sv, from peer (NULL: local), as
 * dropped for reason, why. */
static FL__COLD void tell_dropped_at(fl_rpc_endpoint_t *ep, unsigned sv,
                                     unsigned m, const char *peer,
                                     fl__rpc_drop_t reason, const char *why)
{
    if (!fl__log_on(FL_LOG_COMPONENT, FL_LOG_WARN))
        return;
    char name[FL__RPC_NAME_MAX];
    fl__rpc_ep_method_name(ep, sv, m, name, sizeof name);
    fl__rpc_tell_dropped(reason, ep->id, name, peer, "%s", why);
}

/* Log the tell msg (well formed) to ep as dropped for reason, why. */
static void tell_dropped(fl_rpc_endpoint_t *ep, fl_msg_t *msg,
                         fl__rpc_drop_t reason, const char *why)
{
    const invoke_hdr_t *h = fl_msg_data(msg);
    tell_dropped_at(ep, h->service, h->method, invoke_peer(h), reason, why);
}

static void reject_not_started(fl_rpc_endpoint_t *ep, fl_msg_t *msg,
                               const char *what)
{
    if (invoke_asked(msg)) {
        invoke_fail(msg, FL_ENOTSTARTED,
                    "Discard message %s, because the rpc endpoint %s has "
                    "not been started yet.",
                    what, ep->address);
    } else {
        tell_dropped(ep, msg, FL__DROP_NOT_STARTED,
                     "it has not been started yet");
    }
}

/* How often the drop of expired calls is logged, at most (debug). */
#define EXPIRED_LOG_NS 1000000000ull

/* True if the caller of the invocation msg (well formed) has stopped
 * waiting for it: then it is dropped (counted, logged at debug at most
 * once a second per service, answered FL_ETIMEDOUT, which the caller
 * drops too). The coarse clock: a call may be dropped late, never early. */
static bool invoke_expired(fl_rpc_endpoint_t *ep, fl_msg_t *msg)
{
    invoke_hdr_t *h = fl__msg_payload(msg);
    if (h->deadline_ns == 0)
        return false;
    uint64_t now = fl__clock_coarse_ns();
    if (now < h->deadline_ns)
        return false;
    fl_rpc_service_t *svc = ep->svc;
    uint64_t n =
        atomic_fetch_add_explicit(&svc->st_expired, 1, memory_order_relaxed) +
        1;
    uint64_t last =
        atomic_load_explicit(&svc->expired_logged_ns, memory_order_relaxed);
    if (fl__log_on(FL_LOG_COMPONENT, FL_LOG_DEBUG) &&
        (last == 0 || now - last >= EXPIRED_LOG_NS) &&
        atomic_compare_exchange_strong_explicit(&svc->expired_logged_ns, &last,
                                                now, memory_order_relaxed,
                                                memory_order_relaxed))
        FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("endpoint", ep->id)),
                  "%s: a call dropped, its caller's deadline passed %.1f ms "
                  "before it could start (%llu dropped so far)",
                  ep->id, (double)(now - h->deadline_ns) / 1e6,
                  (unsigned long long)n);
    invoke_fail(msg, FL_ETIMEDOUT,
                "the caller's deadline passed before the call started");
    return true;
}

/*
 * The request of the invocation msg to method m of service d could not be
 * decoded (`why`: ": the broken rule" or "."): answered FL_EDECODE naming
 * the method, the endpoint and the type; one from the wire is also logged
 * (warn, rate-limited) with its peer, since a tell's failure reaches
 * nobody else and an ask's names no sender.
 */
static void undecoded(const fl_rpc_endpoint_t *ep, fl_msg_t *msg,
                      const ProtobufCServiceDescriptor *d, unsigned m,
                      const char *why)
{
    const invoke_hdr_t *h = fl_msg_data(msg);
    char name[256], text[FL__ERRMSG_MAX + 1];
    fl__rpc_method_name(d, m, name, sizeof name);
    snprintf(text, sizeof text,
             "Could not decode the request of %s to %s: %s%s", name,
             ep->address, d->methods[m].input->name, why);
    if (h->wire && h->in_conn != NULL)
        FL_LOG_RATELIMITED_KV(
            FL_LOG_WARN, FL__LOG_BURST,
            FL_KV(FL_F("endpoint", ep->id), FL_F("method", name),
                  FL_F("peer", fl__conn_peer_name(h->in_conn))),
            "%s (%s from %s)", text, invoke_asked(msg) ? "an ask" : "a tell",
            fl__conn_peer_name(h->in_conn));
    invoke_fail(msg, FL_EDECODE, "%s", text);
}

/* A generated service's handler of method m: protobuf-c lays the
 * handlers out after the service's base, in the descriptor's order; NULL
 * when the endpoint does not implement it (protobuf-c's own dispatch
 * would call it). */
typedef void (*handler_t)(ProtobufCService *, const ProtobufCMessage *,
                          ProtobufCClosure, void *);

static inline handler_t handler_of(ProtobufCService *s, unsigned m)
{
    return ((handler_t *)(s + 1))[m];
}

/* Start the stack call c of method md on ep, its answer going to sink:
 * every field set by a store of its own. Not an initializer: gcc zeroes
 * the rest of one with unaligned 16-byte stores, two of which hold
 * `moved`, and every handler's first load of it (as_call, answer.c) then
 * waits for both to leave the store buffer, since a load is forwarded
 * from one store only (rpc.local_tell: 27 M -> 34 M tells/s). */
_Static_assert(sizeof(fl_rpc_call_t) == 80, "call_start sets every field");
static inline void call_start(fl_rpc_call_t *c, fl_rpc_endpoint_t *ep,
                              const fl__rpc_sink_t *sink,
                              const ProtobufCMethodDescriptor *md)
{
    c->magic = CALL_MAGIC;
    c->heap = false;
    atomic_init(&c->answered, false);
    atomic_init(&c->refs, 0);
    c->moved = NULL;
    c->ep = ep;
    c->sink = sink;
    c->to = NULL;
    c->corr = 0;
    c->output = md->output;
    c->method = md->name;
    c->recv_ns = 0;
}

/* An RPC_INVOKE: checked, refused or run. Out of line: a lean tell's
 * frame (tell_run) stays small. */
static __attribute__((noinline)) void handle_invoke(fl_rpc_endpoint_t *ep,
                                                    fl_msg_t *msg)
{
    invoke_hdr_t *h = fl__msg_payload(msg);
    if (msg->size < FL__RPC_LOCAL_HDR ||
        msg->size < fl__rpc_invoke_hdr_size(h) ||
        msg->size - fl__rpc_invoke_hdr_size(h) < h->len) {
        if (fl_msg_is_ask(msg))
            fl_reply_error(msg, FL_EDECODE, "malformed invocation");
        return;
    }
    if (invoke_expired(ep, msg))
        return;
    if (h->service >= ep->nservices ||
        h->method >= ep->services[h->service]->descriptor->n_methods) {
        if (!invoke_asked(msg))
            tell_dropped(ep, msg, FL__DROP_NO_HANDLER,
                         "the endpoint has no such method");
        invoke_fail(msg, FL_ENOMETHOD,
                    "Could not find rpc method %u of service %u for "
                    "rpc invocation.",
                    h->method, h->service);
        return;
    }
    ProtobufCService *s = ep->services[h->service];
    uint8_t *body = fl__rpc_invoke_body(h);
    const ProtobufCMethodDescriptor *md = &s->descriptor->methods[h->method];
    const char *state_desc = md->name;
    if (ep->st == EP_STOPPED) {
        reject_not_started(ep, msg, state_desc);
        return;
    }
    char fenced[FL__ERRMSG_MAX + 1];
    if (ep->fenced && h->fence != FENCE_SELF &&
        fl__rpc_fence_check(ep, h->fence, &h->token, md->name, fenced,
                            sizeof fenced) != FL_OK) {
        if (invoke_asked(msg))
            invoke_fail(msg, FL_EFENCING, "%s", fenced);
        else
            tell_dropped(ep, msg, FL__DROP_FENCING, fenced);
        return;
    }
    /* A NULL handler is refused, not called (handler_of). */
    handler_t fn = handler_of(s, h->method);
    if (fn == NULL) {
        if (!invoke_asked(msg))
            tell_dropped(ep, msg, FL__DROP_NO_HANDLER,
                         "the endpoint does not implement the method");
        invoke_fail(msg, FL_ENOMETHOD,
                    "Could not find rpc method %s for rpc invocation: "
                    "endpoint %s does not implement it.",
                    md->name, ep->id);
        return;
    }
    char why[160];
    if (h->wire) {
        /* ": the broken rule"; not an initializer, which would clear all
         * of why for every call. */
        why[0] = ':';
        why[1] = ' ';
        if (fl__rpc_check_wire(md->input, body, h->len, why + 2,
                               sizeof why - 2) != FL_OK) {
            undecoded(ep, msg, s->descriptor, h->method, why);
            return;
        }
    }
    /* A flat request (a local call's) is the target's copy already; it
     * lives in msg, as long as the handler runs. */
    arena_t *arena = NULL;
    arena_mark_t mark = {0, NULL};
    ProtobufCMessage *in;
    bool over = false;
    if (h->flat) {
        /* The sender copied it for this very descriptor (build_invoke). */
        in = !h->wire && h->len == md->input->sizeof_message
                 ? (ProtobufCMessage *)body
                 : NULL;
    } else {
        if ((arena = thread_arena()) != NULL)
            mark = arena_mark(arena);
        in = fl__rpc_unpack(md->input, arena, h->len, body, &over);
    }
    if (in == NULL) {
        if (arena != NULL)
            arena_release(arena, mark);
        if (over)
            fl__rpc_decode_over_why(h->len, why, sizeof why);
        else if (h->wire)
            fl__rpc_wire_why(md->input, body, h->len, why, sizeof why);
        else
            snprintf(why, sizeof why, ".");
        undecoded(ep, msg, s->descriptor, h->method, why);
        return;
    }
    /* The call answers now: it takes the target of an ask (a tell has
     * none, and costs no call to its sink). */
    const fl__rpc_sink_t *sink = fl__rpc_sinks[h->sink];
    fl_rpc_call_t c;
    call_start(&c, ep, sink, md);
    c.to = invoke_asked(msg) ? sink->take(msg) : NULL;
    if (h->wire) {
        c.corr = h->corr;
        c.recv_ns = h->recv_ns;
    }
    fn(s, in, fl__rpc_reply_closure, &c);
    /* The request is borrowed by the handler until it returns. */
    if (arena != NULL)
        arena_release(arena, mark);
    else if (in != (ProtobufCMessage *)body)
        protobuf_c_message_free_unpacked(in, NULL);
    if (c.moved != NULL) {
        fl__rpc_call_release(c.moved); /* deferred: the holder answers */
    } else {
        /* Relaxed: a stack call is this thread's alone (see
         * fl__rpc_call_claim). */
        if (!atomic_load_explicit(&c.answered, memory_order_relaxed) &&
            fl__rpc_call_claim(&c))
            fl__rpc_call_fail(&c, FL_ENOREPLY,
                              "the handler returned without answering");
        if (c.to != NULL) /* what the sink still holds */
            c.sink->release(&c);
    }
    c.magic = 0;
}

/* What a lean tell's handler left undone, as handle_invoke finishes it:
 * a deferred call let go of, or a call not answered failed (logged). Out
 * of line: handlers answer. */
static FL__COLD void tell_unanswered(fl_rpc_call_t *c)
{
    if (c->moved != NULL) {
        fl__rpc_call_release(c->moved); /* deferred: the holder answers */
        return;
    }
    if (fl__rpc_call_claim(c))
        fl__rpc_call_fail(c, FL_ENOREPLY,
                          "the handler returned without answering");
}

/*
 * An RPC_TELL (dispatch.h) the endpoint does not run: as handle_invoke
 * refuses the same tell as an RPC_INVOKE (the same log lines), in the
 * same order of checks. Out of line: tells are run.
 */
static FL__COLD void tell_refused(fl_rpc_endpoint_t *ep, fl_msg_t *msg)
{
    const tell_hdr_t *h = fl__msg_payload(msg);
    if (msg->reply != NULL || msg->size < sizeof *h) {
        if (fl_msg_is_ask(msg))
            fl_reply_error(msg, FL_EDECODE, "malformed invocation");
        return;
    }
    if (h->service >= ep->nservices ||
        h->method >= ep->services[h->service]->descriptor->n_methods) {
        tell_dropped_at(ep, h->service, h->method, NULL, FL__DROP_NO_HANDLER,
                        "the endpoint has no such method");
        return;
    }
    ProtobufCService *s = ep->services[h->service];
    const ProtobufCMethodDescriptor *md = &s->descriptor->methods[h->method];
    size_t pre = fl__rpc_tell_pre(h->fence);
    if (msg->size < pre)
        return; /* malformed: as a short RPC_INVOKE, dropped */
    if (ep->st == EP_STOPPED) {
        tell_dropped_at(ep, h->service, h->method, NULL, FL__DROP_NOT_STARTED,
                        "it has not been started yet");
        return;
    }
    char fenced[FL__ERRMSG_MAX + 1];
    fl_fencing_token_t token = {0};
    if (h->fence == FENCE_TOKEN)
        memcpy(&token, h + 1, sizeof token);
    if (ep->fenced && h->fence != FENCE_SELF &&
        fl__rpc_fence_check(ep, h->fence, &token, md->name, fenced,
                            sizeof fenced) != FL_OK) {
        tell_dropped_at(ep, h->service, h->method, NULL, FL__DROP_FENCING,
                        fenced);
        return;
    }
    if (handler_of(s, h->method) == NULL) {
        tell_dropped_at(ep, h->service, h->method, NULL, FL__DROP_NO_HANDLER,
                        "the endpoint does not implement the method");
        return;
    }
    /* Left: fields of another size than the method's request, which a
     * flat RPC_INVOKE's handle_invoke drops as undecodable (a tell: no
     * answer, and nothing logged for a local call). */
}

/*
 * Run the RPC_TELL msg (dispatch.h): a local tell of a plain request to a
 * method the endpoint has and implements, the endpoint not stopped and the
 * tell not fenced off (unfenced, from its self gateway, or with its current
 * token). The request is rebuilt on the stack from the method's descriptor
 * and the fields the message carries, and borrowed by the handler until it
 * returns, as handle_invoke's. Anything else: tell_refused.
 */
static inline void tell_run(fl_rpc_endpoint_t *ep, fl_msg_t *msg)
{
    const tell_hdr_t *h = fl__msg_payload(msg);
    if (msg->reply != NULL || msg->size < sizeof *h ||
        h->service >= ep->nservices)
        goto refused;
    const fl__rpc_tell_service_t *t = &ep->tells[h->service];
    if (h->method >= t->n)
        goto refused;
    const fl__rpc_tell_method_t *tm = &t->methods[h->method];
    /* A method too large for an RPC_TELL has fields UINT32_MAX, which no
     * message's size matches. */
    size_t pre = fl__rpc_tell_pre(h->fence);
    size_t n = tm->fields;
    if (msg->size != pre + n || ep->st == EP_STOPPED)
        goto refused;
    if (ep->fenced && h->fence != FENCE_SELF &&
        (h->fence != FENCE_TOKEN ||
         memcmp(h + 1, &ep->token, sizeof ep->token) != 0))
        goto refused;
    ProtobufCService *s = ep->services[h->service];
    handler_t fn = handler_of(s, h->method);
    if (fn == NULL)
        goto refused;
    const ProtobufCMethodDescriptor *md = tm->md;
    const ProtobufCMessageDescriptor *in = tm->in;
    union {
        ProtobufCMessage base;
        uint64_t words[FL__RPC_TELL_MAX / 8];
    } req;
    req.base.descriptor = in;
    req.base.n_unknown_fields = 0;
    req.base.unknown_fields = NULL;
    fl__rpc_tell_copy(&req.base + 1, (const char *)h + pre, n);
    fl_rpc_call_t c;
    call_start(&c, ep, fl__rpc_sinks[FL__RPC_SINK_LOCAL], md);
    fn(s, &req.base, fl__rpc_tell_closure, &c);
    /* Relaxed: a stack call is this thread's alone. c.to stays NULL: a
     * deferred tell's holder has nothing of the sink's to let go of. */
    if (fl__unlikely(c.moved != NULL ||
                     !atomic_load_explicit(&c.answered, memory_order_relaxed)))
        tell_unanswered(&c);
    c.magic = 0;
    return;
refused:
    tell_refused(ep, msg);
}

/* The endpoint's other messages: its life cycle's. Out of line: the
 * calls' path stays lean. */
static __attribute__((noinline)) void ep_control(fl_rpc_endpoint_t *ep,
                                                 fl_msg_t *msg)
{
    switch (msg->type) {
    case RPC_START:
        fl__rpc_ep_handle_start(ep);
        break;
    case RPC_STOP:
        fl__rpc_ep_handle_stop(ep);
        break;
    case RPC_TERMINATE:
        fl__rpc_ep_handle_terminate(ep);
        break;
    default:
        if (fl_msg_is_ask(msg))
            fl_reply_error(msg, FL_EINVAL, "unknown message type %u",
                           fl_msg_type(msg));
        break;
    }
}

void fl__rpc_ep_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                        fl_msg_t *msg)
{
    fl_rpc_endpoint_t *ep = state;
    if (fl__likely(msg->type == RPC_TELL)) {
        tell_run(ep, msg);
        return;
    }
    if (msg->type == RPC_INVOKE) {
        handle_invoke(ep, msg);
        return;
    }
    ep_control(ep, msg);
}
