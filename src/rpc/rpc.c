/*
 * rpc.c - RPC services, endpoints, gateways and calls, in-process.
 *
 * An endpoint is an actor whose state is the fl_rpc_endpoint_t; its
 * mailbox is the endpoint's main thread. Calls, control messages (start,
 * stop, terminate) and tasks all go through that mailbox, so the contract's
 * ordering and state checks (Flink's PekkoRpcActor, contract 2.2/2.3) are
 * made in one place, ep_receive(), on the main thread.
 *
 * A gateway is a ProtobufCService (first member) whose invoke packs the
 * request into an invocation message and tells or asks the endpoint's
 * actor. The reply travels back packed and is unpacked on the caller's
 * side: local calls copy, exactly like remote ones (remote.c).
 */
#include <fling/rpc.h>

#include "actor/future.h"
#include "actor/msg.h"
#include "actor/system.h"
#include "actor/timer.h"
#include "rpc/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 200
#define CALL_MAGIC 0x666c7263u /* "flrc" */

/*
 * A call being handled; closure_data of the handler. It lives on the
 * dispatcher's stack while the handler runs (no allocation per call);
 * fl_rpc_defer moves it to the heap, and the stack copy then forwards to
 * the heap one (`moved`). A heap call is held by the dispatcher until the
 * handler returns and by the deferred holder until it is answered.
 */
struct fl_rpc_call {
    uint32_t magic;
    bool heap;
    _Atomic bool answered;
    _Atomic int refs;          /* heap calls only */
    struct fl_rpc_call *moved; /* stack call: its heap copy */
    fl_rpc_endpoint_t *ep;
    fl_future_t *reply; /* the asker's future; NULL for a tell */
    /* A call from the wire: the connection its answer goes to (one
     * reference, given up when answered) and the correlation id. */
    fl__conn_t *conn;
    uint64_t corr;
    const ProtobufCMessageDescriptor *output;
    const char *method;
};

static _Thread_local int tls_last_err;
static _Thread_local char tls_last_msg[256];
static _Thread_local int64_t tls_next_timeout;

static void set_last(int err, const char *msg)
{
    tls_last_err = err;
    if (err == FL_OK && msg == NULL) {
        tls_last_msg[0] = '\0'; /* the common case: no formatting */
        return;
    }
    snprintf(tls_last_msg, sizeof tls_last_msg, "%s",
             msg != NULL && *msg ? msg : (err ? fl_strerror(err) : ""));
}

/*
 * A bump arena per worker thread for unpacking requests: a request lives
 * exactly as long as its handler runs, so its memory is released all at
 * once when the handler returns. Dispatches never nest on one thread.
 */
#define ARENA_SIZE 16384

typedef struct big_block {
    struct big_block *next;
    max_align_t align[];
} big_block_t;

typedef struct arena {
    size_t used;
    big_block_t *big;
    max_align_t buf[ARENA_SIZE / sizeof(max_align_t)];
} arena_t;

static _Thread_local arena_t *tls_arena;
static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void arena_destroy(void *p)
{
    fl__free(p);
}

static void arena_make_key(void)
{
    (void)pthread_key_create(&arena_key, arena_destroy);
}

static void *arena_alloc(void *data, size_t size)
{
    arena_t *a = data;
    size_t n = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    if (n <= ARENA_SIZE - a->used) {
        void *p = (char *)a->buf + a->used;
        a->used += n;
        return p;
    }
    big_block_t *b = fl__malloc(sizeof *b + size);
    if (b == NULL)
        return NULL;
    b->next = a->big;
    a->big = b;
    return b->align;
}

static void arena_free(void *data, void *p)
{
    (void)data;
    (void)p; /* released in arena_reset */
}

typedef struct arena_mark {
    size_t used;
    big_block_t *big;
} arena_mark_t;

static arena_mark_t arena_mark(const arena_t *a)
{
    arena_mark_t m = {a->used, a->big};
    return m;
}

/* Release everything allocated since m (uses may nest: a reply unpacked
 * inside a handler's dispatch on the same thread). */
static void arena_release(arena_t *a, arena_mark_t m)
{
    a->used = m.used;
    while (a->big != m.big) {
        big_block_t *next = a->big->next;
        fl__free(a->big);
        a->big = next;
    }
}

static arena_t *thread_arena(void)
{
    if (fl__unlikely(tls_arena == NULL)) {
        pthread_once(&arena_once, arena_make_key);
        tls_arena = fl__calloc(1, sizeof *tls_arena);
        if (tls_arena != NULL)
            (void)pthread_setspecific(arena_key, tls_arena);
    }
    return tls_arena;
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

static void token_hex(const fl_fencing_token_t *t, char out[33])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[t->bytes[i] >> 4];
        out[2 * i + 1] = hx[t->bytes[i] & 15];
    }
    out[32] = '\0';
}

void fl__rpc_free_message_cb(void *p)
{
    protobuf_c_message_free_unpacked((ProtobufCMessage *)p, NULL);
}

/* ---- endpoints: references
 * --------------------------------------------------- */

static void ep_release(fl_rpc_endpoint_t *ep)
{
    if (atomic_fetch_sub_explicit(&ep->refs, 1, memory_order_acq_rel) != 1)
        return;
    fl_future_release(ep->termination);
    fl__free(ep->services);
    fl__free(ep->id);
    fl__free(ep->address);
    fl__free(ep->term_msg);
    fl__free(ep);
}

void fl__rpc_ep_release(fl_rpc_endpoint_t *ep)
{
    ep_release(ep);
}

void fl_rpc_endpoint_free(fl_rpc_endpoint_t *ep)
{
    if (ep != NULL)
        ep_release(ep);
}

/* ---- replies (endpoint side) -----------------------------------------------
 */

/* Pack msg into a reply message. NULL when out of memory. */
static fl_msg_t *pack_reply(const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    fl_msg_t *m = fl_msg_alloc(RPC_REPLY, n);
    if (m != NULL)
        protobuf_c_message_pack(msg, fl_msg_data(m));
    return m;
}

static void call_release(fl_rpc_call_t *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    c->magic = 0;
    fl_future_release(c->reply);
    if (c->conn != NULL) /* unreachable: a heap call ends answered */
        fl__rpc_wire_fail(c->conn, c->corr, FL_ENOREPLY, "call dropped");
    ep_release(c->ep); /* taken by fl_rpc_defer */
    fl__free(c);
}

/* Claim the right to answer c; false if it was answered already. A stack
 * call is only touched by the main thread that dispatched it: no RMW. */
static bool call_claim(fl_rpc_call_t *c)
{
    if (!c->heap) {
        if (atomic_load_explicit(&c->answered, memory_order_relaxed))
            return false;
        atomic_store_explicit(&c->answered, true, memory_order_relaxed);
        return true;
    }
    bool expected = false;
    return atomic_compare_exchange_strong(&c->answered, &expected, true);
}

/* After answering: a deferred call drops the deferred holder's reference. */
static void call_answered(fl_rpc_call_t *c)
{
    if (c->heap)
        call_release(c);
}

/* True when c owes its caller an answer (an ask, local or from the wire). */
static bool call_asked(const fl_rpc_call_t *c)
{
    return c->reply != NULL || c->conn != NULL;
}

/* Take c's connection: whoever does answers on it. */
static fl__conn_t *call_take_conn(fl_rpc_call_t *c)
{
    fl__conn_t *conn = c->conn;
    c->conn = NULL;
    return conn;
}

static void call_fail(fl_rpc_call_t *c, int err, const char *msg)
{
    if (c->conn != NULL) {
        fl__rpc_wire_fail(call_take_conn(c), c->corr, err, msg);
    } else if (c->reply != NULL) {
        fl_future_fail(c->reply, err, "%s", msg);
    } else {
        FL_LOG(FL_LOG_WARN, "rpc: tell %s to endpoint %s failed: %s (%s)",
               c->method, c->ep->id, msg, fl_err_name(err));
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
static void reply_closure(const ProtobufCMessage *reply, void *data)
{
    fl_rpc_call_t *c = as_call(data);
    if (c == NULL || !call_claim(c))
        return;
    if (!call_asked(c) && reply != NULL && !c->heap)
        return; /* a tell's answer goes nowhere */
    if (reply == NULL) {
        call_fail(c, FL_EINTERNAL, "handler answered with a NULL reply");
    } else if (reply->descriptor != c->output) {
        char buf[200];
        snprintf(buf, sizeof buf, "handler of %s answered with a %s, not a %s",
                 c->method, reply->descriptor->name, c->output->name);
        call_fail(c, FL_EINVAL, buf);
    } else if (c->conn != NULL) {
        fl__rpc_wire_reply(call_take_conn(c), c->corr, reply);
    } else if (c->reply != NULL) {
        fl_msg_t *m = pack_reply(reply);
        if (m == NULL)
            fl_future_fail(c->reply, FL_ENOMEM, "could not pack the reply");
        else
            fl_future_complete(c->reply, m, fl_msg_free_cb);
    }
    call_answered(c);
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
    if (c == NULL || atomic_load(&c->answered))
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
    atomic_fetch_add(&c->ep->refs, 1);
    c->reply = NULL;
    c->conn = NULL;
    c->moved = h;
    return h;
}

int fl_rpc_fail(void *closure_data, int err, const char *fmt, ...)
{
    fl_rpc_call_t *c = as_call(closure_data);
    if (c == NULL || err == FL_OK)
        return FL_EINVAL;
    if (!call_claim(c))
        return FL_EALREADY;
    char buf[256];
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
    } else {
        snprintf(buf, sizeof buf, "%s", fl_strerror(err));
    }
    call_fail(c, err, buf);
    call_answered(c);
    return FL_OK;
}

static void on_reply_future(fl_future_t *f, void *p)
{
    fl_rpc_call_t *c = p;
    int err = fl_future_error(f);
    if (err == FL_OK)
        reply_closure(fl_future_value(f), c);
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
    if (atomic_load(&c->answered)) {
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

/* ---- the main thread: dispatch ----------------------------------------------
 */

typedef struct task_ctx {
    fl_rpc_endpoint_t *ep;
    fl_rpc_run_cb run;
    fl_rpc_callable_cb call;
    void *arg;
    fl_free_cb arg_free;
    fl_future_t *f; /* call_async */
} task_ctx_t;

static void endpoint_finish(fl_rpc_endpoint_t *ep, int err, const char *msg);

static void invoke_fail(fl_msg_t *msg, int err, const char *fmt, ...)
    FL_PRINTF(3, 4);

/* invoke_asked: the invocation msg (well formed) expects an answer, from
 * a local ask or from the wire. */
static bool invoke_asked(fl_msg_t *msg)
{
    const invoke_hdr_t *h = fl_msg_data(msg);
    return fl_msg_is_ask(msg) || h->conn != NULL;
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
    if (h->conn != NULL)
        fl__rpc_wire_settle(msg, err, buf); /* takes the connection */
    else
        fl_reply_error(msg, err, "%s", buf);
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
        FL_LOG(FL_LOG_INFO,
               "rpc: discard message %s, because the rpc endpoint %s has not "
               "been started yet",
               what, ep->address);
    }
}

static void handle_invoke(fl_rpc_endpoint_t *ep, fl_msg_t *msg)
{
    invoke_hdr_t *h = fl_msg_data(msg);
    if (fl_msg_size(msg) < sizeof *h || fl_msg_size(msg) - sizeof *h < h->len) {
        if (fl_msg_is_ask(msg))
            fl_reply_error(msg, FL_EDECODE, "malformed invocation");
        return;
    }
    if (h->service >= ep->nservices ||
        h->method >= ep->services[h->service]->descriptor->n_methods) {
        invoke_fail(msg, FL_ENOMETHOD,
                    "Could not find rpc method %u of service %u for "
                    "rpc invocation.",
                    h->method, h->service);
        return;
    }
    ProtobufCService *s = ep->services[h->service];
    const ProtobufCMethodDescriptor *md = &s->descriptor->methods[h->method];
    const char *state_desc = md->name;
    if (ep->st == EP_STOPPED) {
        reject_not_started(ep, msg, state_desc);
        return;
    }
    if (ep->fenced && h->fence != FENCE_SELF) {
        char want[33], got[33];
        token_hex(&ep->token, want);
        if (h->fence == FENCE_NONE) {
            invoke_fail(msg, FL_EFENCING,
                        "Fencing token not set: Ignoring message %s "
                        "because the fenced endpoint %s received it "
                        "without a fencing token.",
                        md->name, ep->id);
            return;
        }
        if (memcmp(&h->token, &ep->token, sizeof ep->token) != 0) {
            token_hex(&h->token, got);
            if (invoke_asked(msg))
                invoke_fail(msg, FL_EFENCING,
                            "Fencing token mismatch: Ignoring message %s "
                            "because the fencing token %s did not match "
                            "the expected fencing token %s.",
                            md->name, got, want);
            else
                FL_LOG(FL_LOG_INFO, "rpc: %s: fencing token mismatch (%s)",
                       ep->id, md->name);
            return;
        }
    }
    /* protobuf-c's own dispatch would call a NULL handler: check it. */
    typedef void (*handler_t)(ProtobufCService *, const ProtobufCMessage *,
                              ProtobufCClosure, void *);
    handler_t *handlers = (handler_t *)(s + 1);
    handler_t fn = handlers[h->method];
    if (fn == NULL) {
        invoke_fail(msg, FL_ENOMETHOD,
                    "Could not find rpc method %s for rpc invocation: "
                    "endpoint %s does not implement it.",
                    md->name, ep->id);
        return;
    }
    char why[160];
    if (h->wire && fl__rpc_check_wire(md->input, (const uint8_t *)(h + 1),
                                      h->len, why, sizeof why) != FL_OK) {
        invoke_fail(msg, FL_EDECODE,
                    "Could not decode the %s request of %s: %s",
                    md->input->name, md->name, why);
        return;
    }
    arena_t *arena = thread_arena();
    arena_mark_t mark = {0, NULL};
    if (arena != NULL)
        mark = arena_mark(arena);
    ProtobufCAllocator alloc = {arena_alloc, arena_free, arena};
    ProtobufCMessage *in = protobuf_c_message_unpack(
        md->input, arena ? &alloc : NULL, h->len, (const uint8_t *)(h + 1));
    if (in == NULL) {
        if (arena != NULL)
            arena_release(arena, mark);
        if (h->wire)
            fl__rpc_wire_why(md->input, (const uint8_t *)(h + 1), h->len, why,
                             sizeof why);
        else
            snprintf(why, sizeof why, ".");
        invoke_fail(msg, FL_EDECODE, "Could not decode the %s request of %s%s",
                    md->input->name, md->name, why);
        return;
    }
    fl_rpc_call_t c = {.magic = CALL_MAGIC,
                       .ep = ep,
                       .reply = fl_msg_take_reply(msg),
                       .conn = h->conn,
                       .corr = h->corr,
                       .output = md->output,
                       .method = md->name};
    h->conn = NULL; /* the call answers it now */
    fn(s, in, reply_closure, &c);
    /* The request is borrowed by the handler until it returns. */
    if (arena != NULL)
        arena_release(arena, mark);
    else
        protobuf_c_message_free_unpacked(in, NULL);
    if (c.moved != NULL) {
        call_release(c.moved); /* deferred: the holder answers */
    } else {
        if (!atomic_load(&c.answered) && call_claim(&c))
            call_fail(&c, FL_ENOREPLY,
                      "the handler returned without answering");
        fl_future_release(c.reply);
    }
    c.magic = 0;
}

static void do_start(fl_rpc_endpoint_t *ep)
{
    if (ep->st == EP_STARTED)
        return;
    if (ep->st != EP_STOPPED) {
        FL_LOG(FL_LOG_ERROR,
               "rpc: endpoint %s: start while terminating "
               "ignored",
               ep->id);
        return;
    }
    ep->st = EP_STARTED;
    ep->running = true;
    if (ep->on_start == NULL)
        return;
    int rc = ep->on_start(ep, ep->state);
    if (rc != FL_OK) {
        char buf[256];
        snprintf(buf, sizeof buf, "Could not start RpcEndpoint %s: %s", ep->id,
                 fl_strerror(rc));
        ep->running = false;
        ep->st = EP_DONE;
        endpoint_finish(ep, rc, buf);
    }
}

/* on_stop's future completed, on whatever thread: the endpoint stops right
 * now (what it is handling finishes; what is queued becomes dead letters),
 * not after the calls queued in front of a continuation (FLINK-11629). */
static void on_stop_done(fl_future_t *f, void *p)
{
    fl_rpc_endpoint_t *ep = p;
    int err = fl_future_error(f);
    endpoint_finish(ep, err, err ? fl_future_message(f) : NULL);
    fl_future_release(atomic_exchange(&ep->stop_future, NULL));
    ep_release(ep);
}

/* on_stop's future was freed without completing: the endpoint stays
 * terminating until the system stops it. */
static void on_stop_dropped(void *p)
{
    ep_release((fl_rpc_endpoint_t *)p);
}

static void do_terminate(fl_rpc_endpoint_t *ep)
{
    if (ep->st == EP_TERMINATING || ep->st == EP_DONE)
        return; /* on_stop runs once */
    if (ep->st == EP_STOPPED) {
        ep->st = EP_DONE;
        endpoint_finish(ep, FL_OK, NULL);
        return;
    }
    ep->st = EP_TERMINATING;
    fl_future_t *f = ep->on_stop ? ep->on_stop(ep, ep->state) : NULL;
    ep->running = false;
    if (f == NULL) {
        ep->st = EP_DONE;
        endpoint_finish(ep, FL_OK, NULL);
        return;
    }
    /* Serve on until f completes; the callback holds the endpoint. */
    atomic_fetch_add(&ep->refs, 1);
    atomic_store(&ep->stop_future, f);
    int rc = fl__future_on_complete_ex(f, on_stop_done, on_stop_dropped, ep);
    if (rc != FL_OK) {
        ep_release(ep);
        fl_future_release(atomic_exchange(&ep->stop_future, NULL));
        endpoint_finish(ep, rc, "could not wait for on_stop's future");
    }
}

static void ep_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                       fl_msg_t *msg)
{
    fl_rpc_endpoint_t *ep = state;
    switch (fl_msg_type(msg)) {
    case RPC_INVOKE:
        handle_invoke(ep, msg);
        break;
    case RPC_START:
        do_start(ep);
        break;
    case RPC_STOP:
        if (ep->st == EP_STARTED) {
            ep->st = EP_STOPPED;
            ep->running = false;
        } else if (ep->st == EP_TERMINATING) {
            FL_LOG(FL_LOG_ERROR,
                   "rpc: endpoint %s: stop while terminating "
                   "ignored",
                   ep->id);
        }
        break;
    case RPC_TERMINATE:
        do_terminate(ep);
        break;
    default:
        if (fl_msg_is_ask(msg))
            fl_reply_error(msg, FL_EINVAL, "unknown message type %u",
                           fl_msg_type(msg));
        break;
    }
}

/* Tasks: run_async / call_async / scheduled, via fl_actor_exec. */
static void task_free(void *p)
{
    task_ctx_t *t = p;
    if (t->arg_free != NULL)
        t->arg_free(t->arg);
    if (t->f != NULL) {
        fl_future_fail(t->f, FL_EUNREACHABLE,
                       "recipient unreachable: endpoint %s has terminated",
                       t->ep->id);
        fl_future_release(t->f);
    }
    ep_release(t->ep);
    fl__free(t);
}

static void task_exec(fl_system_t *sys, fl_actor_ref_t self, void *state,
                      void *p)
{
    task_ctx_t *t = p;
    fl_rpc_endpoint_t *ep = t->ep;
    bool ran = false;
    if (ep->st == EP_STOPPED || ep->st == EP_DONE) {
        if (t->f != NULL) {
            fl_future_fail(t->f, FL_ENOTSTARTED,
                           "Discard callable, because the rpc endpoint %s has "
                           "not been started yet.",
                           ep->address);
        } else {
            FL_LOG(FL_LOG_INFO,
                   "rpc: discard runnable, because the rpc "
                   "endpoint %s has not been started yet",
                   ep->address);
        }
    } else if (t->run != NULL) {
        ran = true;
        t->run(ep, ep->state, t->arg);
    } else {
        ran = true;
        void *out = NULL;
        fl_free_cb out_free = NULL;
        int rc = t->call(ep, ep->state, t->arg, &out, &out_free);
        if (rc == FL_OK)
            fl_future_complete(t->f, out, out_free);
        else
            fl_future_fail(t->f, rc, NULL);
    }
    /* The task owns arg once it ran; otherwise it is freed here. */
    if (!ran && t->arg_free != NULL)
        t->arg_free(t->arg);
    fl_future_release(t->f);
    ep_release(ep);
    fl__free(t);
}

static task_ctx_t *task_new(fl_rpc_endpoint_t *ep, void *arg,
                            fl_free_cb arg_free)
{
    task_ctx_t *t = fl__calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    atomic_fetch_add(&ep->refs, 1);
    t->ep = ep;
    t->arg = arg;
    t->arg_free = arg_free;
    return t;
}

int fl_rpc_run_async(fl_rpc_endpoint_t *ep, fl_rpc_run_cb fn, void *arg,
                     fl_free_cb arg_free)
{
    return fl_rpc_schedule_run_async(ep, fn, arg, arg_free, 0);
}

int fl_rpc_schedule_run_async(fl_rpc_endpoint_t *ep, fl_rpc_run_cb fn,
                              void *arg, fl_free_cb arg_free, int64_t delay_ms)
{
    if (ep == NULL || fn == NULL || delay_ms < 0) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_EINVAL;
    }
    task_ctx_t *t = task_new(ep, arg, arg_free);
    if (t == NULL) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_ENOMEM;
    }
    t->run = fn;
    if (delay_ms == 0)
        return fl_actor_exec(ep->svc->sys, ep->actor, task_exec, t, task_free);
    /* Delayed: an exec message delivered by the timer thread (dropped
     * timers and dead letters call task_free). */
    fl_msg_t *m = fl__msg_alloc_kind(FL__MSG_EXEC, 0, sizeof(fl__exec_t));
    if (m == NULL) {
        task_free(t);
        return FL_ENOMEM;
    }
    fl__exec_t *e = fl__msg_payload(m);
    e->fn = task_exec;
    e->arg = t;
    e->arg_free = task_free;
    return fl_timer_send(ep->svc->sys, ep->actor, m, delay_ms, 0, NULL);
}

int fl_rpc_call_async(fl_rpc_endpoint_t *ep, fl_rpc_callable_cb fn, void *arg,
                      fl_free_cb arg_free, int64_t timeout_ms,
                      fl_future_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (ep == NULL || fn == NULL || out == NULL || timeout_ms <= 0) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_EINVAL;
    }
    fl_future_t *f = fl_future_alloc();
    task_ctx_t *t = f ? task_new(ep, arg, arg_free) : NULL;
    if (t == NULL) {
        fl_future_release(f);
        if (arg_free != NULL)
            arg_free(arg);
        return FL_ENOMEM;
    }
    t->call = fn;
    t->f = fl_future_retain(f);
    int rc = fl_actor_exec(ep->svc->sys, ep->actor, task_exec, t, task_free);
    if (rc == FL_ECLOSED || rc == FL_ENOMEM || rc == FL_EINVAL) {
        fl_future_release(f);
        return rc;
    }
    /* FL_EUNREACHABLE: f already failed by task_free. */
    if (!fl_future_done(f))
        fl_future_set_timeout(ep->svc->sys, f, timeout_ms);
    *out = f;
    return FL_OK;
}

int fl_rpc_on_complete(fl_rpc_endpoint_t *ep, fl_future_t *f, fl_future_cb cb,
                       void *arg, fl_free_cb arg_free)
{
    if (ep == NULL) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_EINVAL;
    }
    return fl_future_on_complete_in(f, ep->svc->sys, ep->actor, cb, arg,
                                    arg_free);
}

bool fl_rpc_in_main_thread(const fl_rpc_endpoint_t *ep)
{
    return ep != NULL && fl_self().id == ep->actor.id &&
           fl_system_current() == ep->svc->sys;
}

void fl__rpc_assert_main_thread(const fl_rpc_endpoint_t *ep, const char *file,
                                int line)
{
    if (!fl_rpc_in_main_thread(ep)) {
        fl_log(FL_LOG_ERROR, "%s:%d: not on the main thread of endpoint %s",
               file, line, ep ? ep->id : "(null)");
        abort();
    }
}

bool fl_rpc_endpoint_is_running(const fl_rpc_endpoint_t *ep)
{
    return fl_rpc_in_main_thread(ep) && ep->running;
}

/* ---- termination
 * ---------------------------------------------------------------- */

/* Any thread, first call wins: record the result and stop the actor. Its
 * termination (observed in on_actor_gone) frees the id and completes the
 * termination future. The stop request publishes the result (acq_rel CAS
 * on the actor's state; the actor's termination is ordered after it). */
static bool finish_claim(fl_rpc_endpoint_t *ep, int err, const char *msg)
{
    int expected = FIN_OPEN;
    if (!atomic_compare_exchange_strong(&ep->finished, &expected, FIN_CLAIMED))
        return false;
    ep->term_err = err;
    if (err != FL_OK)
        ep->term_msg = fl__strdup(msg != NULL ? msg : fl_strerror(err));
    /* Pairs with the acquire loads in on_actor_gone. */
    atomic_store_explicit(&ep->finished, FIN_DONE, memory_order_release);
    return true;
}

static void endpoint_finish(fl_rpc_endpoint_t *ep, int err, const char *msg)
{
    if (finish_claim(ep, err, msg))
        fl_actor_stop(ep->svc->sys, ep->actor);
}

static void on_actor_gone(fl_future_t *f, void *p)
{
    fl_rpc_endpoint_t *ep = p;
    fl_rpc_service_t *svc = ep->svc;
    pthread_mutex_lock(&svc->mu);
    for (fl_rpc_endpoint_t **q = &svc->endpoints; *q != NULL; q = &(*q)->next) {
        if (*q == ep) {
            *q = ep->next;
            break;
        }
    }
    pthread_mutex_unlock(&svc->mu);
    /* The actor is gone. If nobody finished the endpoint, it was stopped
     * from outside (the system shut down): claim that result, so a late
     * on_stop completion does nothing. Otherwise wait for the finisher's
     * result to be published (it is a few stores away). */
    char buf[256];
    snprintf(buf, sizeof buf, "RpcEndpoint %s has not been properly stopped.",
             ep->id);
    if (!finish_claim(ep, FL_EUNREACHABLE, buf)) {
        while (atomic_load_explicit(&ep->finished, memory_order_acquire) !=
               FIN_DONE)
            fl__cpu_relax();
    }
    /* An on_stop future still pending will never matter now: let it go (if
     * nobody else holds it, its drop hook releases the endpoint). */
    fl_future_release(atomic_exchange(&ep->stop_future, NULL));
    if (ep->term_err == FL_OK)
        fl_future_complete(ep->termination, NULL, NULL);
    else
        fl_future_fail(ep->termination, ep->term_err, "%s",
                       ep->term_msg ? ep->term_msg : "");
    ep_release(ep);
}

/* ---- creating endpoints
 * ---------------------------------------------------------- */

static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

fl_rpc_endpoint_t *fl__rpc_find_ep(fl_rpc_service_t *svc, const char *id)
{
    for (fl_rpc_endpoint_t *e = svc->endpoints; e != NULL; e = e->next)
        if (strcmp(e->id, id) == 0)
            return e;
    return NULL;
}

static int send_control(fl_rpc_endpoint_t *ep, uint32_t type)
{
    fl_msg_t *m = fl_msg_alloc(type, 0);
    if (m == NULL)
        return FL_ENOMEM;
    return fl_tell(ep->svc->sys, ep->actor, m);
}

int fl_rpc_endpoint_create(fl_rpc_service_t *svc,
                           const fl_rpc_endpoint_opts_t *o,
                           fl_rpc_endpoint_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (svc == NULL || o == NULL || out == NULL || o->services == NULL ||
        o->nservices == 0 || (o->id != NULL && !id_ok(o->id)))
        return FL_EINVAL;
    for (size_t i = 0; i < o->nservices; i++)
        if (o->services[i] == NULL || o->services[i]->descriptor == NULL)
            return FL_EINVAL;
    fl_rpc_endpoint_t *ep = fl__calloc(1, sizeof *ep);
    if (ep == NULL)
        return FL_ENOMEM;
    atomic_init(&ep->refs, 2);
    ep->svc = svc;
    ep->services = fl__malloc(o->nservices * sizeof *ep->services);
    ep->termination = fl_future_alloc();
    if (ep->services == NULL || ep->termination == NULL)
        goto nomem;
    memcpy(ep->services, o->services, o->nservices * sizeof *ep->services);
    ep->nservices = o->nservices;
    ep->state = o->state;
    ep->on_start = o->on_start;
    ep->on_stop = o->on_stop;
    if (o->fencing_token != NULL) {
        ep->fenced = true;
        ep->token = *o->fencing_token;
    }

    pthread_mutex_lock(&svc->mu);
    int rc = FL_OK;
    char anon[48];
    if (svc->closed) {
        rc = FL_ECLOSED;
    } else if (o->id == NULL) {
        /* Skip names a caller chose explicitly. */
        do {
            snprintf(anon, sizeof anon, "endpoint_%llu",
                     (unsigned long long)svc->anon++);
        } while (fl__rpc_find_ep(svc, anon) != NULL);
        ep->id = fl__strdup(anon);
    } else if (fl__rpc_find_ep(svc, o->id) != NULL) {
        rc = FL_EEXIST;
    } else {
        ep->id = fl__strdup(o->id);
    }
    if (rc == FL_OK && ep->id != NULL)
        ep->address = fl__rpc_endpoint_address(svc, ep->id);
    if (rc == FL_OK && (ep->id == NULL || ep->address == NULL))
        rc = FL_ENOMEM;
    if (rc == FL_OK)
        rc = fl_actor_spawn(svc->sys, ep_receive, ep, NULL, &ep->actor);
    if (rc == FL_OK) {
        /* Registered (the id is taken) before anyone can observe its end. */
        ep->next = svc->endpoints;
        svc->endpoints = ep;
        atomic_fetch_add(&ep->refs, 1); /* ours, for the rest of create */
    }
    pthread_mutex_unlock(&svc->mu);
    if (rc != FL_OK)
        goto fail;

    /* Outside the lock: if the actor is already gone (a concurrent system
     * close), on_actor_gone runs right here and takes svc->mu itself. */
    fl_future_t *gone = NULL;
    rc = fl_actor_termination(svc->sys, ep->actor, &gone);
    if (rc == FL_OK)
        rc = fl_future_on_complete(gone, on_actor_gone, ep);
    fl_future_release(gone);
    if (rc != FL_OK) {
        /* Nothing will observe the actor's end (no memory, or the system
         * is past stopping its actors, so the actor is gone): stop it and
         * unregister now. The endpoint's own reference is kept (leaked) if
         * the actor might still run with it. */
        fl_actor_stop(svc->sys, ep->actor);
        pthread_mutex_lock(&svc->mu);
        for (fl_rpc_endpoint_t **q = &svc->endpoints; *q != NULL;
             q = &(*q)->next) {
            if (*q == ep) {
                *q = ep->next;
                break;
            }
        }
        pthread_mutex_unlock(&svc->mu);
        FL_LOG(FL_LOG_ERROR, "rpc: endpoint %s: cannot watch its actor: %s",
               ep->id, fl_strerror(rc));
        /* A concurrent service close may already wait on it. */
        fl_future_fail(ep->termination, rc,
                       "RpcEndpoint %s could not be started: %s", ep->id,
                       fl_strerror(rc));
        ep_release(ep); /* ours */
        ep_release(ep); /* the creator's: the call fails */
        return rc;
    }
    ep_release(ep); /* ours; the creator's and the endpoint's remain */
    *out = ep;
    return FL_OK;
nomem:
    rc = FL_ENOMEM;
fail:
    fl_future_release(ep->termination);
    fl__free(ep->services);
    fl__free(ep->id);
    fl__free(ep->address);
    fl__free(ep);
    return rc;
}

int fl_rpc_endpoint_start(fl_rpc_endpoint_t *ep)
{
    return ep ? send_control(ep, RPC_START) : FL_EINVAL;
}

int fl_rpc_endpoint_stop(fl_rpc_endpoint_t *ep)
{
    return ep ? send_control(ep, RPC_STOP) : FL_EINVAL;
}

fl_future_t *fl_rpc_endpoint_close(fl_rpc_endpoint_t *ep)
{
    if (ep == NULL)
        return NULL;
    (void)send_control(ep, RPC_TERMINATE); /* gone already: fine */
    return fl_future_retain(ep->termination);
}

fl_future_t *fl_rpc_endpoint_termination(fl_rpc_endpoint_t *ep)
{
    return ep ? fl_future_retain(ep->termination) : NULL;
}

const char *fl_rpc_endpoint_id(const fl_rpc_endpoint_t *ep)
{
    return ep ? ep->id : NULL;
}

const char *fl_rpc_endpoint_address(const fl_rpc_endpoint_t *ep)
{
    return ep ? ep->address : NULL;
}

void *fl_rpc_endpoint_state(const fl_rpc_endpoint_t *ep)
{
    return ep ? ep->state : NULL;
}

fl_rpc_service_t *fl_rpc_endpoint_service(fl_rpc_endpoint_t *ep)
{
    return ep ? ep->svc : NULL;
}

int fl_rpc_endpoint_fencing_token(const fl_rpc_endpoint_t *ep,
                                  fl_fencing_token_t *out)
{
    if (ep == NULL || out == NULL)
        return FL_EINVAL;
    if (!ep->fenced)
        return FL_ENOENT;
    *out = ep->token;
    return FL_OK;
}

/* ---- gateways
 * ------------------------------------------------------------------- */

fl_rpc_gateway_t *
fl__rpc_gw_alloc(fl_rpc_service_t *svc, const ProtobufCServiceDescriptor *desc,
                 const char *address, uint32_t service_index, uint8_t fence,
                 const fl_fencing_token_t *token, bool has_token)
{
    fl_rpc_gateway_t *gw = fl__calloc(1, sizeof *gw);
    if (gw == NULL || (gw->address = fl__strdup(address)) == NULL) {
        fl__free(gw);
        return NULL;
    }
    gw->base.descriptor = desc;
    gw->base.invoke = fl__rpc_gw_invoke;
    gw->base.destroy = NULL;
    gw->svc = svc;
    gw->service_index = service_index;
    gw->fence = fence;
    if (token != NULL) {
        gw->token = *token;
        gw->has_token = has_token;
    }
    gw->timeout_ms = svc->timeout_ms;
    return gw;
}

/* A gateway to a local endpoint's service_index-th service. */
static fl_rpc_gateway_t *gw_new(fl_rpc_service_t *svc, fl_rpc_endpoint_t *ep,
                                uint32_t service_index, uint8_t fence,
                                const fl_fencing_token_t *token)
{
    fl_rpc_gateway_t *gw = fl__rpc_gw_alloc(
        svc, ep->services[service_index]->descriptor, ep->address,
        service_index, fence, token, fence == FENCE_TOKEN || ep->fenced);
    if (gw != NULL)
        gw->actor = ep->actor;
    return gw;
}

void fl_rpc_gateway_free(fl_rpc_gateway_t *gw)
{
    if (gw == NULL)
        return;
    fl__free(gw->address);
    fl__free(gw->remote_id);
    fl__free(gw->host);
    if (gw->conn != NULL)
        fl__conn_release(gw->conn);
    fl__free(gw);
}

void fl__rpc_gw_free_cb(void *p)
{
    fl_rpc_gateway_free(p);
}

int fl__rpc_service_index(const fl_rpc_endpoint_t *ep, const char *name)
{
    for (size_t i = 0; i < ep->nservices; i++)
        if (strcmp(ep->services[i]->descriptor->name, name) == 0)
            return (int)i;
    return -1;
}

int fl_rpc_self_gateway(fl_rpc_endpoint_t *ep,
                        const ProtobufCServiceDescriptor *desc,
                        fl_rpc_gateway_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (ep == NULL || desc == NULL || out == NULL)
        return FL_EINVAL;
    int i = fl__rpc_service_index(ep, desc->name);
    if (i < 0)
        return FL_ENOTSUP;
    *out = gw_new(ep->svc, ep, (uint32_t)i, FENCE_SELF, &ep->token);
    return *out ? FL_OK : FL_ENOMEM;
}

int fl_rpc_connect(fl_rpc_service_t *svc, const char *address,
                   const ProtobufCServiceDescriptor *desc,
                   const fl_fencing_token_t *token, fl_future_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (svc == NULL || address == NULL || desc == NULL || out == NULL)
        return FL_EINVAL;
    fl_future_t *f = fl_future_alloc();
    if (f == NULL)
        return FL_ENOMEM;
    static const char tcp[] = "fling.tcp://";
    if (strncmp(address, tcp, sizeof tcp - 1) == 0) {
        pthread_mutex_lock(&svc->mu);
        bool closed = svc->closed;
        pthread_mutex_unlock(&svc->mu);
        if (closed) {
            fl_future_release(f);
            return FL_ECLOSED;
        }
        fl__rpc_remote_connect(svc, address, desc, token, f);
        *out = f;
        return FL_OK;
    }
    static const char prefix[] = "fling://local/";
    pthread_mutex_lock(&svc->mu);
    if (svc->closed) {
        pthread_mutex_unlock(&svc->mu);
        fl_future_release(f);
        return FL_ECLOSED;
    }
    fl_rpc_endpoint_t *ep = NULL;
    if (strncmp(address, prefix, sizeof prefix - 1) == 0)
        ep = fl__rpc_find_ep(svc, address + sizeof prefix - 1);
    int idx = ep ? fl__rpc_service_index(ep, desc->name) : -1;
    fl_rpc_gateway_t *gw = NULL;
    if (idx >= 0)
        gw = gw_new(svc, ep, (uint32_t)idx, token ? FENCE_TOKEN : FENCE_NONE,
                    token);
    pthread_mutex_unlock(&svc->mu);
    if (ep == NULL)
        fl_future_fail(f, FL_ECONNECT,
                       "Could not connect to rpc endpoint under address %s.",
                       address);
    else if (idx < 0)
        fl_future_fail(f, FL_EHANDSHAKE,
                       "The rpc endpoint does not support the gateway %s.",
                       desc->name);
    else if (gw == NULL)
        fl_future_fail(f, FL_ENOMEM, NULL);
    else
        fl_future_complete(f, gw, fl__rpc_gw_free_cb);
    *out = f;
    return FL_OK;
}

ProtobufCService *fl_rpc_gateway_service(fl_rpc_gateway_t *gw)
{
    return gw ? &gw->base : NULL;
}

const char *fl_rpc_gateway_address(const fl_rpc_gateway_t *gw)
{
    return gw ? gw->address : NULL;
}

const char *fl_rpc_gateway_hostname(const fl_rpc_gateway_t *gw)
{
    if (gw == NULL)
        return NULL;
    return gw->host ? gw->host : "localhost";
}

int fl_rpc_gateway_fencing_token(const fl_rpc_gateway_t *gw,
                                 fl_fencing_token_t *out)
{
    if (gw == NULL || out == NULL)
        return FL_EINVAL;
    if (!gw->has_token)
        return FL_ENOTSUP;
    *out = gw->token;
    return FL_OK;
}

int fl_rpc_gateway_set_timeout(fl_rpc_gateway_t *gw, int64_t timeout_ms)
{
    if (gw == NULL || timeout_ms <= 0)
        return FL_EINVAL;
    gw->timeout_ms = timeout_ms;
    return FL_OK;
}

int fl_rpc_method_index(const ProtobufCServiceDescriptor *desc,
                        const char *name)
{
    if (desc == NULL || name == NULL)
        return -1;
    for (unsigned i = 0; i < desc->n_methods; i++)
        if (strcmp(desc->methods[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- calling (caller side)
 * ------------------------------------------------------ */

/* Build the invocation message for method of gw with req packed in. */
static int build_invoke(fl_rpc_gateway_t *gw, unsigned method,
                        const ProtobufCMessage *req, fl_msg_t **out)
{
    *out = NULL;
    if (method >= gw->base.descriptor->n_methods || req == NULL ||
        req->descriptor != gw->base.descriptor->methods[method].input)
        return FL_EINVAL;
    size_t n = protobuf_c_message_get_packed_size(req);
    if (n > UINT32_MAX)
        return FL_EINVAL;
    fl_msg_t *m = fl_msg_alloc(RPC_INVOKE, sizeof(invoke_hdr_t) + n);
    if (m == NULL)
        return FL_ENOMEM;
    invoke_hdr_t *h = fl_msg_data(m);
    h->service = gw->service_index;
    h->method = method;
    h->len = (uint32_t)n;
    h->fence = gw->fence;
    h->wire = 0;
    h->token = gw->token;
    protobuf_c_message_pack(req, (uint8_t *)(h + 1));
    *out = m;
    return FL_OK;
}

/* Ask the gateway's endpoint, locally or over the wire: a future of the
 * packed reply. */
static int send_ask(fl_rpc_gateway_t *gw, unsigned method,
                    const ProtobufCMessage *req, int64_t timeout_ms,
                    fl_future_t **ask)
{
    *ask = NULL;
    if (gw->conn != NULL)
        return fl__rpc_remote_call(gw, method, req, timeout_ms, false, false,
                                   ask);
    fl_msg_t *m;
    int rc = build_invoke(gw, method, req, &m);
    if (rc != FL_OK)
        return rc;
    return fl_ask(gw->svc->sys, gw->actor, m, timeout_ms, ask);
}

/* A packed reply that came over the wire is checked before unpacking. */
static bool reply_ok(const ProtobufCMessageDescriptor *d, fl_msg_t *m)
{
    return fl_msg_type(m) != FL__MSG_ANSWER ||
           fl__rpc_check_wire(d, fl_msg_data(m), fl_msg_size(m), NULL, 0) ==
               FL_OK;
}

static int unpack_then(void *arg, void *value, void **out, fl_free_cb *out_free)
{
    const ProtobufCMessageDescriptor *d = arg;
    fl_msg_t *m = value;
    if (!reply_ok(d, m))
        return FL_EDECODE;
    ProtobufCMessage *r =
        protobuf_c_message_unpack(d, NULL, fl_msg_size(m), fl_msg_data(m));
    if (r == NULL)
        return FL_EDECODE;
    *out = r;
    *out_free = fl__rpc_free_message_cb;
    return FL_OK;
}

int fl_rpc_call(fl_rpc_gateway_t *gw, unsigned method,
                const ProtobufCMessage *req, int64_t timeout_ms,
                fl_future_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (gw == NULL || out == NULL || timeout_ms < 0)
        return FL_EINVAL;
    int64_t timeout = timeout_ms ? timeout_ms : gw->timeout_ms;
    if (gw->conn != NULL) /* the I/O thread unpacks the reply */
        return fl__rpc_remote_call(gw, method, req, timeout, false, true, out);
    fl_future_t *ask;
    int rc = send_ask(gw, method, req, timeout, &ask);
    if (rc != FL_OK)
        return rc;
    fl_future_t *f = fl_future_then(
        ask, unpack_then, (void *)gw->base.descriptor->methods[method].output);
    fl_future_release(ask);
    if (f == NULL)
        return FL_ENOMEM;
    *out = f;
    return FL_OK;
}

int fl_rpc_call_sync(fl_rpc_gateway_t *gw, unsigned method,
                     const ProtobufCMessage *req, int64_t timeout_ms,
                     ProtobufCMessage **reply)
{
    if (reply != NULL)
        *reply = NULL;
    int rc = FL_EINVAL;
    if (reply == NULL)
        goto refused;
    rc = FL_EDEADLK;
    if (fl_system_current() != NULL || fl__tls_no_block)
        goto refused;
    fl_future_t *f;
    rc = fl_rpc_call(gw, method, req, timeout_ms, &f);
    if (rc != FL_OK)
        goto refused;
    /* The call has its own timeout. A remote call's answer may be read
     * by this thread itself (fl__conn_await). */
    rc = gw->conn != NULL ? fl__conn_await(gw->conn, f)
                          : fl_future_wait(f, FL_INFINITE);
    if (rc == FL_OK)
        *reply = fl_future_take_value(f);
    set_last(rc, rc == FL_OK ? NULL : fl_future_message(f));
    fl_future_release(f);
    return rc;
refused:
    set_last(rc, NULL);
    return rc;
}

/* Closure-style asks: one allocation carries the closure from the call to
 * the reply, through the caller's mailbox when the caller is an actor. */
typedef struct closure_ctx {
    ProtobufCClosure closure;
    void *data;
    const ProtobufCMessageDescriptor *output;
    fl_system_t *sys; /* the caller's actor, or NULL: run where done */
    fl_actor_ref_t self;
    fl_future_t *f; /* held from completion until the closure ran */
} closure_ctx_t;

static void run_closure(fl_future_t *f, closure_ctx_t *c)
{
    int err = fl_future_error(f);
    if (err == FL_OK) {
        fl_msg_t *m = fl_future_value(f);
        arena_t *arena = thread_arena();
        arena_mark_t mark = {0, NULL};
        if (arena != NULL)
            mark = arena_mark(arena);
        ProtobufCAllocator alloc = {arena_alloc, arena_free, arena};
        ProtobufCMessage *r =
            reply_ok(c->output, m)
                ? protobuf_c_message_unpack(c->output, arena ? &alloc : NULL,
                                            fl_msg_size(m), fl_msg_data(m))
                : NULL;
        if (r == NULL) {
            char why[200];
            snprintf(why, sizeof why, "Could not decode the %.150s reply.",
                     c->output->name);
            set_last(FL_EDECODE, why);
            c->closure(NULL, c->data);
        } else {
            set_last(FL_OK, NULL);
            c->closure(r, c->data); /* the reply is borrowed */
            if (arena == NULL)
                protobuf_c_message_free_unpacked(r, NULL);
        }
        if (arena != NULL)
            arena_release(arena, mark);
    } else {
        set_last(err, fl_future_message(f));
        c->closure(NULL, c->data);
    }
}

static void closure_exec(fl_system_t *sys, fl_actor_ref_t self, void *state,
                         void *p)
{
    closure_ctx_t *c = p;
    run_closure(c->f, c);
    fl_future_release(c->f);
    fl__free(c);
}

static void closure_drop(void *p)
{
    closure_ctx_t *c = p;
    FL_LOG(FL_LOG_WARN, "rpc: reply dropped: the calling actor has stopped");
    fl_future_release(c->f);
    fl__free(c);
}

/* The ask completed (any thread). */
static void closure_done(fl_future_t *f, void *p)
{
    closure_ctx_t *c = p;
    if (c->sys == NULL) {
        run_closure(f, c);
        fl__free(c);
        return;
    }
    c->f = fl_future_retain(f);
    fl_actor_exec(c->sys, c->self, closure_exec, c, closure_drop);
}

void fl__rpc_gw_invoke(ProtobufCService *service, unsigned method,
                       const ProtobufCMessage *input, ProtobufCClosure closure,
                       void *closure_data)
{
    fl_rpc_gateway_t *gw = (fl_rpc_gateway_t *)service;
    int64_t timeout = tls_next_timeout ? tls_next_timeout : gw->timeout_ms;
    tls_next_timeout = 0;
    int rc;
    if (closure == NULL) {
        if (gw->conn != NULL) {
            rc = fl__rpc_remote_call(gw, method, input, 0, true, false, NULL);
        } else {
            fl_msg_t *m;
            rc = build_invoke(gw, method, input, &m);
            if (rc == FL_OK)
                rc = fl_tell(gw->svc->sys, gw->actor, m);
        }
        set_last(rc, NULL);
        return;
    }
    fl_future_t *ask = NULL;
    rc = send_ask(gw, method, input, timeout, &ask);
    closure_ctx_t *c = rc == FL_OK ? fl__malloc(sizeof *c) : NULL;
    if (rc == FL_OK && c == NULL)
        rc = FL_ENOMEM;
    if (rc != FL_OK) {
        fl_future_release(ask);
        set_last(rc, NULL);
        if (closure != NULL)
            closure(NULL, closure_data);
        return;
    }
    c->closure = closure;
    c->data = closure_data;
    c->output = gw->base.descriptor->methods[method].output;
    c->self = fl_self();
    c->sys = c->self.id != 0 ? fl_system_current() : NULL;
    c->f = NULL;
    /* The ask message holds the future until it is answered. */
    rc = fl_future_on_complete(ask, closure_done, c);
    fl_future_release(ask);
    if (rc != FL_OK) {
        fl__free(c);
        set_last(rc, "could not wait for the reply");
        closure(NULL, closure_data); /* the closure runs once, regardless */
        return;
    }
    set_last(FL_OK, NULL);
}

/* ---- the service
 * ------------------------------------------------------------------ */

struct task {
    fl_rpc_service_t *svc;
    fl_rpc_task_id_t id;
    fl_rpc_sched_cb fn;
    void *arg;
    int kind; /* 0 once, 1 fixed rate, 2 fixed delay */
    int64_t delay_ms;
    fl_timer_id_t timer;
    bool running, cancelled;
    task_t *next;
};

int fl_rpc_service_alloc(const fl_rpc_service_opts_t *o, fl_rpc_service_t **out)
{
    if (out == NULL)
        return FL_EINVAL;
    *out = NULL;
    fl_rpc_service_opts_t opts = {0};
    if (o != NULL)
        opts = *o;
    if (opts.default_timeout_ms < 0)
        return FL_EINVAL;
    fl_rpc_service_t *svc = fl__calloc(1, sizeof *svc);
    if (svc == NULL)
        return FL_ENOMEM;
    svc->timeout_ms = opts.default_timeout_ms ? opts.default_timeout_ms
                                              : FL_RPC_DEFAULT_TIMEOUT_MS;
    if (opts.system != NULL) {
        svc->sys = opts.system;
    } else {
        fl_system_opts_t so = {0};
        so.workers = opts.workers;
        int rc = fl_system_alloc(&so, &svc->sys);
        if (rc != FL_OK) {
            fl__free(svc);
            return rc;
        }
        svc->own_sys = true;
    }
    pthread_mutex_init(&svc->mu, NULL);
    pthread_cond_init(&svc->cv, NULL);
    char why[512] = "";
    int rc = fl__rpc_remote_init(svc, &opts, why, sizeof why);
    if (rc != FL_OK) {
        FL_LOG(FL_LOG_ERROR, "rpc: could not create the service: %s", why);
        set_last(rc, why);
        fl__rpc_remote_free(svc);
        if (svc->own_sys) {
            fl_system_shutdown(svc->sys);
            fl_system_free(svc->sys);
        }
        pthread_mutex_destroy(&svc->mu);
        pthread_cond_destroy(&svc->cv);
        fl__free(svc);
        return rc;
    }
    *out = svc;
    return FL_OK;
}

/* Completes dst when every input is done; fails with the first failure. */
typedef struct settle_ctx {
    _Atomic size_t left;
    _Atomic int first_err;
    pthread_mutex_t mu;
    char msg[256];
    fl_future_t *dst;
} settle_ctx_t;

static void on_settle(fl_future_t *f, void *p)
{
    settle_ctx_t *c = p;
    int err = fl_future_error(f);
    if (err != FL_OK) {
        int zero = FL_OK;
        if (atomic_compare_exchange_strong(&c->first_err, &zero, err)) {
            pthread_mutex_lock(&c->mu);
            snprintf(c->msg, sizeof c->msg, "%s", fl_future_message(f));
            pthread_mutex_unlock(&c->mu);
        }
    }
    if (atomic_fetch_sub(&c->left, 1) == 1) {
        int e = atomic_load(&c->first_err);
        if (e == FL_OK)
            fl_future_complete(c->dst, NULL, NULL);
        else
            fl_future_fail(c->dst, e, "%s", c->msg);
        fl_future_release(c->dst);
        pthread_mutex_destroy(&c->mu);
        fl__free(c);
    }
}

fl_future_t *fl_rpc_service_close(fl_rpc_service_t *svc)
{
    if (svc == NULL)
        return NULL;
    pthread_mutex_lock(&svc->mu);
    if (svc->close_future != NULL) {
        fl_future_t *f = fl_future_retain(svc->close_future);
        pthread_mutex_unlock(&svc->mu);
        return f;
    }
    svc->closed = true;
    fl_future_t *dst = fl_future_alloc();
    settle_ctx_t *c = fl__calloc(1, sizeof *c);
    size_t n = 0;
    for (fl_rpc_endpoint_t *e = svc->endpoints; e != NULL; e = e->next)
        n++;
    fl_rpc_endpoint_t **eps = fl__calloc(n + 1, sizeof *eps);
    if (dst == NULL || c == NULL || eps == NULL) {
        svc->closed = false;
        pthread_mutex_unlock(&svc->mu);
        fl_future_release(dst);
        fl__free(c);
        fl__free(eps);
        return NULL;
    }
    size_t i = 0;
    for (fl_rpc_endpoint_t *e = svc->endpoints; e != NULL; e = e->next) {
        atomic_fetch_add(&e->refs, 1);
        eps[i++] = e;
    }
    svc->close_future = fl_future_retain(dst);
    pthread_mutex_unlock(&svc->mu);

    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->left, n + 1);
    c->dst = fl_future_retain(dst);
    for (i = 0; i < n; i++) {
        fl_future_t *t = fl_rpc_endpoint_close(eps[i]);
        fl_future_on_complete(t, on_settle, c);
        fl_future_release(t);
        ep_release(eps[i]);
    }
    fl__free(eps);
    /* The +1: complete now if there were no endpoints. */
    fl_future_t *done = fl_future_alloc();
    if (done != NULL) {
        fl_future_complete(done, NULL, NULL);
        on_settle(done, c);
        fl_future_release(done);
    }
    return dst;
}

static void cancel_all_tasks(fl_rpc_service_t *svc);

int fl_rpc_service_shutdown(fl_rpc_service_t *svc)
{
    if (svc == NULL)
        return FL_EINVAL;
    if (fl_system_current() != NULL)
        return FL_EDEADLK;
    fl_future_t *f = fl_rpc_service_close(svc);
    if (f == NULL)
        return FL_ENOMEM;
    int rc = fl_future_wait(f, FL_INFINITE);
    fl_future_release(f);
    cancel_all_tasks(svc);
    fl__rpc_remote_stop(svc);
    pthread_mutex_lock(&svc->mu);
    bool first = !svc->shut_down;
    svc->shut_down = true;
    pthread_mutex_unlock(&svc->mu);
    if (first && svc->own_sys)
        fl_system_shutdown(svc->sys);
    return rc;
}

void fl_rpc_service_free(fl_rpc_service_t *svc)
{
    if (svc == NULL)
        return;
    if (fl_system_current() != NULL) {
        FL_LOG(FL_LOG_ERROR, "fl_rpc_service_free called on a runtime "
                             "thread: closing the service only (leaked)");
        fl_future_release(fl_rpc_service_close(svc));
        return;
    }
    fl_rpc_service_shutdown(svc);
    fl__rpc_remote_free(svc);
    if (svc->own_sys)
        fl_system_free(svc->sys);
    fl_future_release(svc->close_future);
    pthread_mutex_destroy(&svc->mu);
    pthread_cond_destroy(&svc->cv);
    fl__free(svc);
}

fl_system_t *fl_rpc_service_system(fl_rpc_service_t *svc)
{
    return svc ? svc->sys : NULL;
}

const char *fl_rpc_service_address(const fl_rpc_service_t *svc)
{
    if (svc == NULL)
        return NULL;
    return svc->host ? svc->host : "";
}

int fl_rpc_service_port(const fl_rpc_service_t *svc)
{
    return svc ? svc->port : -1;
}

int64_t fl_rpc_service_timeout(const fl_rpc_service_t *svc)
{
    return svc ? svc->timeout_ms : 0;
}

int fl_rpc_service_lookup(fl_rpc_service_t *svc, const char *id,
                          fl_rpc_endpoint_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (svc == NULL || id == NULL || out == NULL)
        return FL_EINVAL;
    pthread_mutex_lock(&svc->mu);
    fl_rpc_endpoint_t *ep = fl__rpc_find_ep(svc, id);
    pthread_mutex_unlock(&svc->mu);
    *out = ep;
    return ep ? FL_OK : FL_ENOENT;
}

/* ---- the scheduled executor
 * -------------------------------------------------------- */

/* Under svc->mu: unlink and free t. */
static void task_unlink(fl_rpc_service_t *svc, task_t *t)
{
    for (task_t **q = &svc->tasks; *q != NULL; q = &(*q)->next) {
        if (*q == t) {
            *q = t->next;
            break;
        }
    }
    fl__free(t);
}

static void task_fire(fl_system_t *sys, void *p)
{
    task_t *t = p;
    fl_rpc_service_t *svc = t->svc;
    pthread_mutex_lock(&svc->mu);
    if (t->cancelled) {
        task_unlink(svc, t);
        pthread_cond_broadcast(&svc->cv);
        pthread_mutex_unlock(&svc->mu);
        return;
    }
    t->running = true;
    pthread_mutex_unlock(&svc->mu);
    t->fn(svc, t->arg);
    pthread_mutex_lock(&svc->mu);
    t->running = false;
    if (t->cancelled || t->kind == 0) {
        task_unlink(svc, t);
    } else if (t->kind == 2) {
        /* Fixed delay: the next run starts delay_ms after this one ended. */
        if (fl_timer_start(sys, task_fire, t, t->delay_ms, 0, &t->timer) !=
            FL_OK)
            task_unlink(svc, t);
    }
    pthread_cond_broadcast(&svc->cv);
    pthread_mutex_unlock(&svc->mu);
}

static int schedule(fl_rpc_service_t *svc, fl_rpc_sched_cb fn, void *arg,
                    int kind, int64_t initial, int64_t period,
                    fl_rpc_task_id_t *out)
{
    if (svc == NULL || fn == NULL || initial < 0 || (kind != 0 && period <= 0))
        return FL_EINVAL;
    task_t *t = fl__calloc(1, sizeof *t);
    if (t == NULL)
        return FL_ENOMEM;
    t->svc = svc;
    t->fn = fn;
    t->arg = arg;
    t->kind = kind;
    t->delay_ms = period;
    pthread_mutex_lock(&svc->mu);
    if (svc->closed) {
        pthread_mutex_unlock(&svc->mu);
        fl__free(t);
        return FL_ECLOSED;
    }
    t->id = ++svc->next_task;
    /* Under the lock so a fast first run finds the task linked. */
    int rc = fl_timer_start(svc->sys, task_fire, t, initial,
                            kind == 1 ? period : 0, &t->timer);
    if (rc != FL_OK) {
        pthread_mutex_unlock(&svc->mu);
        fl__free(t);
        return rc;
    }
    t->next = svc->tasks;
    svc->tasks = t;
    if (out != NULL)
        *out = t->id;
    pthread_mutex_unlock(&svc->mu);
    return FL_OK;
}

int fl_rpc_schedule(fl_rpc_service_t *svc, fl_rpc_sched_cb fn, void *arg,
                    int64_t delay_ms, fl_rpc_task_id_t *out)
{
    return schedule(svc, fn, arg, 0, delay_ms, 0, out);
}

int fl_rpc_schedule_at_fixed_rate(fl_rpc_service_t *svc, fl_rpc_sched_cb fn,
                                  void *arg, int64_t initial_ms,
                                  int64_t period_ms, fl_rpc_task_id_t *out)
{
    return schedule(svc, fn, arg, 1, initial_ms, period_ms, out);
}

int fl_rpc_schedule_with_fixed_delay(fl_rpc_service_t *svc, fl_rpc_sched_cb fn,
                                     void *arg, int64_t initial_ms,
                                     int64_t delay_ms, fl_rpc_task_id_t *out)
{
    return schedule(svc, fn, arg, 2, initial_ms, delay_ms, out);
}

/* Under svc->mu. Returns FL_OK or FL_ENOENT. */
static int cancel_locked(fl_rpc_service_t *svc, task_t *t)
{
    if (t->cancelled)
        return FL_ENOENT;
    t->cancelled = true;
    bool firing = false;
    (void)fl__timer_cancel_id(svc->sys, t->timer, &firing);
    /* Whatever the timer answered (cancelled, already gone, or its thread
     * stopped), task_fire will not be called again unless a run is firing
     * right now; that run, or the one in progress, sees `cancelled` and
     * frees the task. Otherwise nobody else holds it: free it now. */
    if (!firing && !t->running)
        task_unlink(svc, t);
    return FL_OK;
}

int fl_rpc_cancel(fl_rpc_service_t *svc, fl_rpc_task_id_t id)
{
    if (svc == NULL)
        return FL_EINVAL;
    pthread_mutex_lock(&svc->mu);
    task_t *t = svc->tasks;
    while (t != NULL && t->id != id)
        t = t->next;
    int rc = t ? cancel_locked(svc, t) : FL_ENOENT;
    pthread_mutex_unlock(&svc->mu);
    return rc;
}

static void cancel_all_tasks(fl_rpc_service_t *svc)
{
    pthread_mutex_lock(&svc->mu);
    for (task_t *t = svc->tasks, *next; t != NULL; t = next) {
        next = t->next;
        if (!t->cancelled)
            cancel_locked(svc, t);
    }
    /* Runs in progress (or firing) free their cancelled task and signal. */
    while (svc->tasks != NULL)
        pthread_cond_wait(&svc->cv, &svc->mu);
    pthread_mutex_unlock(&svc->mu);
}
