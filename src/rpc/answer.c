/*
 * answer.c - answering a call, on the endpoint's side: the closure a
 * handler answers through, fl_rpc_fail, fl_rpc_defer and
 * fl_rpc_reply_future. Whoever claims a call first answers it, exactly
 * once, through the call's sink (tran.h): to the local asker's future, or
 * in a frame on the connection the call came from; a tell's answer goes
 * nowhere.
 */
#include "rpc/answer.h"

#include "rpc/dispatch.h"
#include "rpc/endpoint.h"

#include <stdio.h>

void fl__rpc_call_release(fl_rpc_call_t *c)
{
    /* acq_rel: the last holder sees the other holder's writes (pairs with
     * the other holder's fetch_sub). */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    c->magic = 0;
    if (c->to != NULL) /* a heap call ends answered: a future at most */
        c->sink->release(c);
    fl__rpc_ep_release(c->ep); /* taken by fl_rpc_defer */
    fl__free(c);
}

/* After answering: a deferred call drops the deferred holder's reference. */
static void call_answered(fl_rpc_call_t *c)
{
    if (c->heap)
        fl__rpc_call_release(c);
}

/* True when c owes its caller an answer (an ask, local or from the wire). */
static bool call_asked(const fl_rpc_call_t *c)
{
    return c->to != NULL;
}

void fl__rpc_call_fail(fl_rpc_call_t *c, int err, const char *msg)
{
    if (c->to != NULL) {
        c->sink->fail(c, err, msg);
    } else {
        FL_LOG_KV(FL_LOG_WARN,
                  FL_KV(FL_F("endpoint", c->ep->id), FL_F("method", c->method)),
                  "tell %s to endpoint %s failed: %s (%s)", c->method,
                  c->ep->id, msg, fl_err_name(err));
    }
}

static fl_rpc_call_t *as_call(const void *data)
{
    fl_rpc_call_t *c = (fl_rpc_call_t *)data;
    if (c == NULL || c->magic != CALL_MAGIC)
        return NULL;
    return c->moved != NULL ? c->moved : c;
}

/* The closure fling hands to handlers. */
void fl__rpc_reply_closure(const ProtobufCMessage *reply, void *data)
{
    fl_rpc_call_t *c = as_call(data);
    if (c == NULL || !fl__rpc_call_claim(c))
        return;
    if (!call_asked(c) && reply != NULL && !c->heap)
        return; /* a tell's answer goes nowhere */
    if (reply == NULL) {
        fl__rpc_call_fail(c, FL_EINTERNAL,
                          "handler answered with a NULL reply");
    } else if (reply->descriptor != c->output) {
        char buf[200];
        snprintf(buf, sizeof buf, "handler of %s answered with a %s, not a %s",
                 c->method, reply->descriptor->name, c->output->name);
        fl__rpc_call_fail(c, FL_EINVAL, buf);
    } else if (c->to != NULL) {
        c->sink->reply(c, reply);
    }
    call_answered(c);
}

void fl__rpc_tell_closure(const ProtobufCMessage *reply, void *data)
{
    fl_rpc_call_t *c = data;
    /* The common case: the handler answers its own tell on the stack, not
     * deferred, once; claimed, the answer goes nowhere. */
    if (fl__likely(c != NULL && c->magic == CALL_MAGIC && c->moved == NULL &&
                   !c->heap && c->to == NULL && reply != NULL)) {
        atomic_store_explicit(&c->answered, true, memory_order_relaxed);
        return;
    }
    fl__rpc_reply_closure(reply, data);
}

fl_rpc_endpoint_t *fl_rpc_call_endpoint(const void *closure_data)
{
    fl_rpc_call_t *c = as_call(closure_data);
    return c ? c->ep : NULL;
}

void *fl_rpc_call_state(const void *closure_data)
{
    fl_rpc_call_t *c = as_call(closure_data);
    return c ? c->ep->state : NULL;
}

bool fl_rpc_call_is_tell(const void *closure_data)
{
    fl_rpc_call_t *c = as_call(closure_data);
    return c != NULL && !call_asked(c);
}

fl_rpc_call_t *fl_rpc_defer(void *closure_data)
{
    fl_rpc_call_t *c = as_call(closure_data);
    /* Acquire: pairs with fl__rpc_call_claim's CAS on another holder. */
    if (c == NULL || atomic_load_explicit(&c->answered, memory_order_acquire))
        return NULL;
    if (c->heap)
        return c;
    /* Move the stack call to the heap: held by the dispatcher until the
     * handler returns and by the deferred holder until answered. */
    fl_rpc_call_t *h = fl__malloc(sizeof *h);
    if (h == NULL)
        return NULL;
    *h = *c;
    h->heap = true;
    atomic_init(&h->answered, false);
    atomic_init(&h->refs, 2);
    h->moved = NULL;
    /* The endpoint may terminate and be freed before the answer comes. */
    fl__rpc_ep_retain(c->ep);
    c->to = NULL;
    c->moved = h;
    return h;
}

int fl_rpc_fail(void *closure_data, int err, const char *fmt, ...)
{
    fl_rpc_call_t *c = as_call(closure_data);
    if (c == NULL || err == FL_OK)
        return FL_EINVAL;
    if (!fl__rpc_call_claim(c))
        return FL_EALREADY;
    char buf[FL_FUTURE_MESSAGE_MAX];
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
    } else {
        snprintf(buf, sizeof buf, "%s", fl_strerror(err));
    }
    fl__rpc_call_fail(c, err, buf);
    call_answered(c);
    return FL_OK;
}

static void on_reply_future(fl_future_t *f, void *p)
{
    fl_rpc_call_t *c = p;
    int err = fl_future_error(f);
    if (err == FL_OK)
        fl__rpc_reply_closure(fl_future_value(f), c);
    else
        fl_rpc_fail(c, err, "%s", fl_future_message(f));
    fl_future_release(f);
}

int fl_rpc_reply_future(void *closure_data, fl_future_t *f)
{
    fl_rpc_call_t *c = as_call(closure_data);
    if (c == NULL || f == NULL) {
        fl_future_release(f);
        return FL_EINVAL;
    }
    /* Acquire: pairs with fl__rpc_call_claim's CAS on another holder. */
    if (atomic_load_explicit(&c->answered, memory_order_acquire)) {
        fl_future_release(f);
        return FL_EALREADY;
    }
    fl_rpc_call_t *h = fl_rpc_defer(c);
    if (h == NULL) {
        fl_rpc_fail(c, FL_ENOMEM, "could not defer the call");
        fl_future_release(f);
        return FL_ENOMEM;
    }
    int rc = fl_future_on_complete(f, on_reply_future, h);
    if (rc != FL_OK) {
        fl_rpc_fail(h, rc, "could not watch the reply future");
        fl_future_release(f);
    }
    return FL_OK;
}
