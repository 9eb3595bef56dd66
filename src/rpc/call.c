/*
 * call.c - calls on the caller's side: a gateway's invoke (tell, or ask
 * with a closure), fl_rpc_call and fl_rpc_call_sync, and the thread's
 * last-call status. Every call goes through the gateway's transport
 * (tran.h: local.c, tcp_client.c); a packed reply (an ask's, a closure's)
 * is checked and unpacked here.
 */
#include "rpc/call.h"

#include "actor/system.h"
#include "common/pool.h"
#include "rpc/arena.h"
#include "rpc/dispatch.h"
#include "rpc/gateway.h"
#include "rpc/local.h"
#include "rpc/service.h"
#include "rpc/tcp.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local int tls_last_err;
static _Thread_local char tls_last_msg[1024];
static _Thread_local int64_t tls_next_timeout;
/* Refusals made on this thread (fl__rpc_refuse): a caller that gets an
 * error back from a transport sees whether it already said why. */
static _Thread_local unsigned tls_refusals;

void fl__rpc_set_last(int err, const char *msg)
{
    tls_last_err = err;
    if (err == FL_OK && msg == NULL) {
        tls_last_msg[0] = '\0'; /* the common case: no formatting */
        return;
    }
    snprintf(tls_last_msg, sizeof tls_last_msg, "%s",
             msg != NULL && *msg ? msg : (err ? fl_strerror(err) : ""));
}

int fl__rpc_refuse(int err, const char *fmt, ...)
{
    char msg[sizeof tls_last_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fl__rpc_set_last(err, msg);
    tls_refusals++;
    return err;
}

/* Set the last error to rc (not FL_OK) unless a refusal since `before`
 * (tls_refusals) already said why. */
static int keep_or_set(int rc, unsigned before)
{
    if (tls_refusals == before || tls_last_err != rc)
        fl__rpc_set_last(rc, NULL);
    return rc;
}

const char *fl__rpc_say_methods(const ProtobufCServiceDescriptor *d, char *buf,
                                size_t cap)
{
    if (cap == 0)
        return buf;
    size_t n = (size_t)snprintf(buf, cap, "%s has %u method%s (", d->name,
                                d->n_methods, d->n_methods == 1 ? "" : "s");
    for (unsigned i = 0; i < d->n_methods && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "",
                              d->methods[i].name);
    if (n < cap)
        snprintf(buf + n, cap - n, ")");
    return buf;
}

FL__COLD int fl__rpc_refuse_request(const ProtobufCServiceDescriptor *d,
                                    unsigned m, const ProtobufCMessage *req)
{
    char name[256], methods[600];
    if (m >= d->n_methods)
        return fl__rpc_refuse(FL_EINVAL, "method index %u out of range: %s", m,
                              fl__rpc_say_methods(d, methods, sizeof methods));
    const ProtobufCMessageDescriptor *want = d->methods[m].input;
    if (req == NULL)
        return fl__rpc_refuse(FL_EINVAL,
                              "Invocation of %s refused: the request is NULL; "
                              "pass a %s",
                              fl__rpc_method_name(d, m, name, sizeof name),
                              want->name);
    if (req->descriptor != want)
        return fl__rpc_refuse(
            FL_EINVAL,
            "Invocation of %s refused: the request is a %s; the method "
            "takes a %s",
            fl__rpc_method_name(d, m, name, sizeof name),
            req->descriptor != NULL ? req->descriptor->name : "(no descriptor)",
            want->name);
    return FL_OK;
}

const char *fl__rpc_method_name(const ProtobufCServiceDescriptor *d, unsigned m,
                                char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    if (d == NULL)
        snprintf(buf, cap, "?#%u", m);
    else if (m >= d->n_methods)
        snprintf(buf, cap, "%s#%u", d->name, m);
    else
        snprintf(buf, cap, "%s.%s", d->name, d->methods[m].name);
    return buf;
}

int fl_rpc_last_error(void)
{
    return tls_last_err;
}

const char *fl_rpc_last_message(void)
{
    return tls_last_msg;
}

void fl_rpc_next_timeout(int64_t timeout_ms)
{
    tls_next_timeout = timeout_ms > 0 ? timeout_ms : 0;
}

void fl__rpc_free_message_cb(void *p)
{
    protobuf_c_message_free_unpacked((ProtobufCMessage *)p, NULL);
}

/* A packed reply that came over the wire is checked before unpacking:
 * false with why (": the broken rule") when it fails the check. */
static bool reply_ok(const ProtobufCMessageDescriptor *d, fl_msg_t *m,
                     char *why, size_t why_len)
{
    if (fl_msg_type(m) != FL__MSG_ANSWER)
        return true;
    char rule[160];
    if (fl__rpc_check_wire(d, fl_msg_data(m), fl_msg_size(m), rule,
                           sizeof rule) == FL_OK)
        return true;
    if (why_len > 0)
        snprintf(why, why_len, ": %s", rule);
    return false;
}

int fl_rpc_call(fl_rpc_gateway_t *gw, unsigned method,
                const ProtobufCMessage *req, int64_t timeout_ms,
                fl_future_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (gw == NULL)
        return fl__rpc_refuse(FL_EINVAL, "fl_rpc_call refused: gw is NULL");
    if (out == NULL)
        return fl__rpc_refuse(FL_EINVAL, "fl_rpc_call refused: out is NULL");
    if (timeout_ms < 0)
        return fl__rpc_refuse(FL_EINVAL,
                              "fl_rpc_call refused: timeout_ms is %lld; pass "
                              "a timeout > 0, or 0 for the gateway's",
                              (long long)timeout_ms);
    int64_t timeout = timeout_ms ? timeout_ms : gw->timeout_ms;
    unsigned before = tls_refusals;
    int rc = gw->tran->call(gw, method, req, timeout, out);
    return rc == FL_OK ? rc : keep_or_set(rc, before);
}

int fl_rpc_call_sync(fl_rpc_gateway_t *gw, unsigned method,
                     const ProtobufCMessage *req, int64_t timeout_ms,
                     ProtobufCMessage **reply)
{
    if (reply != NULL)
        *reply = NULL;
    if (reply == NULL)
        return fl__rpc_refuse(FL_EINVAL,
                              "fl_rpc_call_sync refused: reply is NULL");
    if (fl_system_current() != NULL || fl__tls_no_block)
        return fl__rpc_refuse(
            FL_EDEADLK,
            "fl_rpc_call_sync refused: it would block a runtime thread (an "
            "actor's, an endpoint's or the service's I/O thread); use "
            "fl_rpc_call there");
    fl_future_t *f;
    /* A refusal says why itself. */
    int rc = fl_rpc_call(gw, method, req, timeout_ms, &f);
    if (rc != FL_OK)
        return rc;
    /* The call has its own timeout. A TCP call's answer may be read by
     * this thread itself (fl__conn_await). */
    rc = gw->tran->await(gw, f);
    if (rc == FL_OK)
        *reply = fl_future_take_value(f);
    fl__rpc_set_last(rc, rc == FL_OK ? NULL : fl_future_message(f));
    fl_future_release(f);
    return rc;
}

/* Closure-style asks: one allocation carries the closure from the call to
 * the reply, through the caller's mailbox when the caller is an actor. A
 * local call's lives in its ask's future (fl__future_room), which the
 * closure holds until it has run; a remote one's is a pool block
 * (fl__block_alloc): made on the caller's thread, freed on another at a
 * high rate. */
typedef struct closure_ctx {
    size_t size; /* of the block; 0: in the future, goes with it */
    ProtobufCClosure closure;
    void *data;
    /* The method called (its messages name it) and its reply's type. */
    const ProtobufCServiceDescriptor *desc;
    unsigned method;
    const ProtobufCMessageDescriptor *output;
    fl_system_t *sys; /* the caller's actor, or NULL: run where done */
    fl_actor_ref_t self;
    fl_future_t *f; /* held from completion until the closure ran */
    /* A remote gateway's address, copied (it may be freed first); "" for
     * a local one, whose replies are protobuf-c's own bytes: they fail to
     * unpack only on the bound or out of memory, and the method names the
     * call well enough, without a copy per call. */
    char address[];
} closure_ctx_t;

/* The last message of a closure whose reply m could not be unpacked:
 * the method, the address, the type and why. */
static void closure_undecoded(const closure_ctx_t *c, fl_msg_t *m, bool over,
                              const char *checked)
{
    char name[256], rest[256] = ".";
    fl__rpc_method_name(c->desc, c->method, name, sizeof name);
    if (checked[0] != '\0')
        snprintf(rest, sizeof rest, "%s", checked);
    else if (over)
        fl__rpc_decode_over_why(fl_msg_size(m), rest, sizeof rest);
    else if (fl_msg_type(m) == FL__MSG_ANSWER)
        fl__rpc_wire_why(c->output, fl_msg_data(m), fl_msg_size(m), rest,
                         sizeof rest);
    char why[FL_FUTURE_MESSAGE_MAX];
    if (c->address[0] != '\0')
        snprintf(why, sizeof why,
                 "Could not decode the reply of %s from %s: %s%s", name,
                 c->address, c->output->name, rest);
    else
        snprintf(why, sizeof why, "Could not decode the reply of %s: %s%s",
                 name, c->output->name, rest);
    fl__rpc_set_last(FL_EDECODE, why);
}

static void ctx_free(closure_ctx_t *c)
{
    if (c->size != 0)
        fl__block_free(c, c->size);
}

static void run_closure(fl_future_t *f, closure_ctx_t *c)
{
    int err = fl_future_error(f);
    if (err != FL_OK) {
        fl__rpc_set_last(err, fl_future_message(f));
        c->closure(NULL, c->data);
        return;
    }
    fl_msg_t *m = fl_future_value(f);
    if (fl_msg_type(m) == RPC_REPLY_FLAT) {
        /* A c->output (see on_local_reply), borrowed from the future: no
         * arena, nothing to unpack or free. */
        fl__rpc_set_last(FL_OK, NULL);
        c->closure(fl_msg_data(m), c->data);
        return;
    }
    arena_t *arena = thread_arena();
    arena_mark_t mark = {0, NULL};
    if (arena != NULL)
        mark = arena_mark(arena);
    bool over = false;
    char checked[192];
    checked[0] = '\0'; /* not an initializer: it would clear all 192 */
    ProtobufCMessage *r = reply_ok(c->output, m, checked, sizeof checked)
                              ? fl__rpc_unpack(c->output, arena, fl_msg_size(m),
                                               fl_msg_data(m), &over)
                              : NULL;
    if (r == NULL) {
        closure_undecoded(c, m, over, checked);
        c->closure(NULL, c->data);
    } else {
        fl__rpc_set_last(FL_OK, NULL);
        c->closure(r, c->data); /* the reply is borrowed */
        if (arena == NULL)
            protobuf_c_message_free_unpacked(r, NULL);
    }
    if (arena != NULL)
        arena_release(arena, mark);
}

static void closure_exec(fl_system_t *sys, fl_actor_ref_t self, void *state,
                         void *p)
{
    closure_ctx_t *c = p;
    fl_future_t *f = c->f; /* c may live in f: let go of f last */
    run_closure(f, c);
    ctx_free(c);
    fl_future_release(f);
}

static void closure_drop(void *p)
{
    closure_ctx_t *c = p;
    FL_LOG(FL_LOG_WARN, "reply dropped: the calling actor has stopped");
    fl_future_t *f = c->f; /* as in closure_exec */
    ctx_free(c);
    fl_future_release(f);
}

/* The ask completed (any thread). */
static void closure_done(fl_future_t *f, void *p)
{
    closure_ctx_t *c = p;
    if (c->sys == NULL) {
        run_closure(f, c);
        ctx_free(c);
        return;
    }
    c->f = fl_future_retain(f);
    fl_actor_exec(c->sys, c->self, closure_exec, c, closure_drop);
}

/* The ask of fl__rpc_gw_invoke (closure not NULL). Out of line: a tell's
 * frame stays small. */
static __attribute__((noinline)) void
gw_ask(fl_rpc_gateway_t *gw, unsigned method, const ProtobufCMessage *input,
       ProtobufCClosure closure, void *closure_data)
{
    int rc;
    /* A transport's refusal says why itself (fl__rpc_refuse). */
    unsigned before = tls_refusals;
    int64_t timeout = tls_next_timeout ? tls_next_timeout : gw->timeout_ms;
    tls_next_timeout = 0;
    bool local = gw->tran == &fl__rpc_tran_local;
    size_t alen = local ? 1 : strlen(gw->address) + 1;
    fl_future_t *made = NULL;
    closure_ctx_t *c;
    if (local) {
        made = fl__future_alloc_timed(sizeof *c + alen);
        c = made != NULL ? fl__future_room(made) : NULL;
    } else {
        c = fl__block_alloc(sizeof *c + alen);
    }
    if (c == NULL) {
        fl__rpc_set_last(FL_ENOMEM, NULL);
        closure(NULL, closure_data);
        return;
    }
    c->size = local ? 0 : sizeof *c + alen;
    c->closure = closure;
    c->data = closure_data;
    c->desc = gw->base.descriptor;
    c->method = method;
    /* The transport checks method (the ask is refused out of range). */
    c->output = method < gw->base.descriptor->n_methods
                    ? gw->base.descriptor->methods[method].output
                    : NULL;
    if (alen > 1)
        memcpy(c->address, gw->address, alen);
    else
        c->address[0] = '\0';
    c->self = fl_self();
    c->sys = c->self.id != 0 ? fl_system_current() : NULL;
    c->f = NULL;
    fl_future_t *ask = NULL;
    if (local) {
        /* The reply is waited for from before the call goes (no lock). */
        const fl__ask_then_t then = {closure_done, NULL, c, made};
        rc = fl__rpc_local_ask(gw, method, input, timeout, &then, &ask);
        if (rc != FL_OK) {
            /* made, and c in it, are gone. */
            keep_or_set(rc, before);
            closure(NULL, closure_data);
            return;
        }
    } else {
        rc = gw->tran->ask(gw, method, input, timeout, &ask);
        /* The ask message holds the future until it is answered. */
        if (rc == FL_OK && fl_future_on_complete(ask, closure_done, c) != FL_OK)
            rc = -1; /* the call is under way; its reply cannot be waited for */
    }
    fl_future_release(ask);
    if (rc == -1) {
        ctx_free(c);
        fl__rpc_set_last(FL_ENOMEM, "could not wait for the reply");
        closure(NULL, closure_data); /* the closure runs once, regardless */
        return;
    }
    if (rc != FL_OK) {
        ctx_free(c);
        keep_or_set(rc, before);
        closure(NULL, closure_data);
        return;
    }
    fl__rpc_set_last(FL_OK, NULL);
}

/* The tell of fl__rpc_gw_invoke (closure NULL) through gw's transport. */
static __attribute__((noinline)) void
gw_tell(fl_rpc_gateway_t *gw, unsigned method, const ProtobufCMessage *input)
{
    unsigned before = tls_refusals;
    int rc = gw->tran->tell(gw, method, input);
    if (fl__likely(rc == FL_OK))
        fl__rpc_set_last(rc, NULL);
    else
        keep_or_set(rc, before); /* unless the transport said why */
}

/* The runtime refused a lean tell with rc: as fl__rpc_local_tell fails. */
static FL__COLD void lean_refused(fl_rpc_gateway_t *gw, unsigned method, int rc)
{
    unsigned before = tls_refusals;
    if (rc == FL_EUNREACHABLE || rc == FL_ECLOSED)
        rc = fl__rpc_local_tell_refused(gw, method, rc);
    keep_or_set(rc, before);
}

/*
 * The RPC_TELL (dispatch.h) of a local tell of method with req: a request
 * of the method's own type with no unknown fields, when the endpoint's
 * method table (gw->tells) says it makes one. NULL for any other request,
 * or out of memory: then the transport's tell takes it (an RPC_INVOKE).
 */
static inline fl_msg_t *lean_tell(fl_rpc_gateway_t *gw, unsigned method,
                                  const ProtobufCMessage *req)
{
    if (method >= gw->ntells || req == NULL ||
        req->descriptor != gw->tells[method].tell_in ||
        req->n_unknown_fields != 0)
        return NULL;
    size_t pre = fl__rpc_tell_pre(gw->tell_hdr.fence);
    size_t n = gw->tells[method].fields;
    fl_msg_t *m = fl_msg_alloc(RPC_TELL, pre + n);
    if (m == NULL)
        return NULL;
    tell_hdr_t *h = fl__msg_payload(m);
    *h = gw->tell_hdr;
    h->method = (uint16_t)method;
    if (pre != sizeof *h)
        memcpy(h + 1, &gw->token, sizeof gw->token);
    fl__rpc_tell_copy((char *)h + pre, req + 1, n);
    return m;
}

void fl__rpc_gw_invoke(ProtobufCService *service, unsigned method,
                       const ProtobufCMessage *input, ProtobufCClosure closure,
                       void *closure_data)
{
    fl_rpc_gateway_t *gw = (fl_rpc_gateway_t *)service;
    if (closure != NULL) {
        gw_ask(gw, method, input, closure, closure_data);
        return;
    }
    tls_next_timeout = 0; /* a tell has none */
    fl_msg_t *m;
    if (fl__likely(gw->tran == &fl__rpc_tran_local &&
                   (m = lean_tell(gw, method, input)) != NULL)) {
        int rc = fl_tell(gw->svc->sys, gw->actor, m);
        if (fl__likely(rc == FL_OK))
            fl__rpc_set_last(FL_OK, NULL);
        else
            lean_refused(gw, method, rc);
        return;
    }
    gw_tell(gw, method, input);
}
