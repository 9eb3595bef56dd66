/*
 * remote_fixture.h - what the two processes of the remote RPC tests share:
 * remote_peer.c (the peer program) and the remote_*_test.c programs (the
 * tests, whose own endpoints the peer calls back; peer_calls.h).
 *
 * Both serve flremote.RemoteGateway (remote_gateways.proto) with the
 * handlers below, which keep their state in the rg_store_t given as the
 * endpoint's state: the calls Block parked, the WaitParked and WaitCount
 * calls waiting, the Count total and how many endpoints have started. And
 * both make stub calls whose closure records what it saw in an rg_seen_t.
 *
 * Header-only (static inline) because each program is built from one file;
 * no cmocka here, the peer is not a test.
 */
#ifndef REMOTE_FIXTURE_H
#define REMOTE_FIXTURE_H

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fling/fling.h>

#include "fl_cond.h"
#include "remote_gateways.pb-c.h"

/* How long anything that should happen is waited for, in ms. */
#define WAIT_MS 20000

/* Largest Size reply (and CallBack text_size) built. */
#define MAX_SIZE_REPLY ((int64_t)64 << 20)

#define RG (&flremote__remote_gateway__descriptor)
#define OTHER (&flremote__other_gateway__descriptor)

/* RemoteGateway method indices: the order of the .proto. */
enum {
    M_ECHO = 0,
    M_FAIL = 1,
    M_BLOCK = 2,
    M_RELEASE = 3,
    M_WAIT_PARKED = 4,
    M_COUNT = 5,
    M_WAIT_COUNT = 6,
    M_SIZE = 7,
    M_CLOSE_ENDPOINT = 8,
    M_CALL_BACK = 9
};

/* ---- small helpers ------------------------------------------------------- */

/* A heap string of n letters running from `first` through the alphabet
 * ('a' or 'A'), again and again; NULL when out of memory. The caller frees
 * it. */
static inline char *rg_text(int64_t n, char first)
{
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    for (int64_t i = 0; i < n; i++)
        s[i] = (char)(first + i % 26);
    s[n] = '\0';
    return s;
}

/* ---- what a stub call's closure saw -------------------------------------- */

/*
 * The outcome of one call, written by its closure (on one of fling's
 * threads, or the caller's) or by the caller itself, and read by the
 * thread that waits for it. Everything below `cv` is guarded by `mu`.
 */
typedef struct rg_seen {
    fl_rpc_endpoint_t *caller; /* optional, set by rg_seen_init */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int runs;           /* rg_seen_set calls (closure runs) */
    bool on_caller;     /* the closure ran in caller's main thread */
    bool got_reply;     /* a reply came (not a failure) */
    int code;           /* the call's code */
    char message[1100]; /* the call's message ("" if none) */
    int64_t n;          /* the reply's n */
    int64_t text_len;   /* the length of the reply's text */
    char text[128];     /* its first bytes */
} rg_seen_t;

/* caller (may be NULL): the endpoint whose main thread the closure is
 * expected on. Release with rg_seen_fini(). */
static inline void rg_seen_init(rg_seen_t *s, fl_rpc_endpoint_t *caller)
{
    memset(s, 0, sizeof *s);
    s->caller = caller;
    pthread_mutex_init(&s->mu, NULL);
    fl_test_cond_init(&s->cv);
}

static inline void rg_seen_fini(rg_seen_t *s)
{
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

/* Records an outcome: the code and its message (NULL: none), whether a
 * reply came, and the reply's n and text (NULL: none). Wakes the waiter.
 * Any thread. */
static inline void rg_seen_set(rg_seen_t *s, int code, const char *message,
                               bool got, int64_t n, const char *text)
{
    pthread_mutex_lock(&s->mu);
    s->runs++;
    if (s->caller)
        s->on_caller = fl_rpc_in_main_thread(s->caller);
    s->got_reply = got;
    s->code = code;
    snprintf(s->message, sizeof s->message, "%s", message ? message : "");
    s->n = n;
    s->text_len = text ? (int64_t)strlen(text) : 0;
    snprintf(s->text, sizeof s->text, "%s", text ? text : "");
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* The closure of an EchoReply stub call; data is its rg_seen_t. */
static inline void rg_echo_seen(const Flremote__EchoReply *reply, void *data)
{
    rg_seen_set(data, fl_rpc_last_error(), fl_rpc_last_message(), reply != NULL,
                reply ? reply->n : 0, reply ? reply->text : NULL);
}

/* The closure of an Empty stub call; data is its rg_seen_t. */
static inline void rg_empty_seen(const Flremote__Empty *reply, void *data)
{
    rg_seen_set(data, fl_rpc_last_error(), fl_rpc_last_message(), reply != NULL,
                0, NULL);
}

/* Waits up to timeout_ms for the first rg_seen_set; true once it came.
 * Blocks: not for fling's threads. */
static inline bool rg_seen_wait(rg_seen_t *s, int64_t timeout_ms)
{
    struct timespec ts = fl_test_deadline(timeout_ms);
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (s->runs == 0 && rc == 0)
        rc = pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    bool ran = s->runs > 0;
    pthread_mutex_unlock(&s->mu);
    return ran;
}

/*
 * A stub call of method (Echo, Fail, Block, Count or Size) through service
 * with the request req of that method. seen NULL: a tell (closure NULL);
 * else the closure records into seen. False for another method (nothing is
 * sent).
 */
static inline bool rg_stub_call(ProtobufCService *service, int method,
                                const ProtobufCMessage *req, rg_seen_t *seen)
{
    Flremote__EchoReply_Closure echo = seen ? rg_echo_seen : NULL;
    switch (method) {
    case M_ECHO:
        flremote__remote_gateway__echo(
            service, (const Flremote__EchoRequest *)req, echo, seen);
        return true;
    case M_FAIL:
        flremote__remote_gateway__fail(
            service, (const Flremote__FailRequest *)req, echo, seen);
        return true;
    case M_BLOCK:
        flremote__remote_gateway__block(
            service, (const Flremote__EchoRequest *)req, echo, seen);
        return true;
    case M_COUNT:
        flremote__remote_gateway__count(service,
                                        (const Flremote__CountRequest *)req,
                                        seen ? rg_empty_seen : NULL, seen);
        return true;
    case M_SIZE:
        flremote__remote_gateway__size(
            service, (const Flremote__SizeRequest *)req, echo, seen);
        return true;
    default:
        return false;
    }
}

/* ---- the RemoteGateway server's state ------------------------------------ */

/* A Block call waiting for Release (or rg_store_release/_cancel). */
typedef struct rg_parked {
    fl_rpc_call_t *call;
    Flremote__EchoReply_Closure closure;
    int64_t tag;
} rg_parked_t;

/* A WaitParked or WaitCount call waiting for its condition. */
typedef struct rg_waiter {
    fl_rpc_call_t *call;
    Flremote__CountReply_Closure closure;
    bool on_count; /* WaitCount: count >= want; else parked[tag] >= want */
    int64_t tag;
    int64_t want;
} rg_waiter_t;

/*
 * The state of the endpoints that serve RemoteGateway with the rg_
 * handlers (their endpoint state). Handlers of different endpoints run on
 * different threads, so everything below `cv` is guarded by `mu`; calls
 * are answered after it is released (answering may run code of fling's
 * that must not run under our lock).
 */
typedef struct rg_store {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast when started or count grows */
    int64_t started;   /* endpoints whose on_start (rg_on_start) ran */
    int64_t count;     /* the sum of the Count tells */
    rg_parked_t *parked;
    size_t nparked, capparked;
    rg_waiter_t *waiters;
    size_t nwaiters, capwaiters;
} rg_store_t;

/* Release with rg_store_fini() once no endpoint uses s. */
static inline void rg_store_init(rg_store_t *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    fl_test_cond_init(&s->cv);
}

/* Frees s's arrays; the calls still in them are left to the service's
 * shutdown. */
static inline void rg_store_fini(rg_store_t *s)
{
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->parked);
    free(s->waiters);
}

/*
 * Waits until *field (s->started or s->count) is at least want, or
 * timeout_ms passes (negative: no limit); returns its value then. Blocks:
 * not for fling's threads.
 */
static inline int64_t rg_store_wait(rg_store_t *s, const int64_t *field,
                                    int64_t want, int64_t timeout_ms)
{
    struct timespec ts = fl_test_deadline(timeout_ms < 0 ? 0 : timeout_ms);
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (*field < want && rc == 0)
        rc = timeout_ms < 0 ? pthread_cond_wait(&s->cv, &s->mu)
                            : pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    int64_t have = *field;
    pthread_mutex_unlock(&s->mu);
    return have;
}

/* Grows an array of s by one element; false when out of memory. Under mu. */
static inline bool rg_grow(void **items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*items, ncap * size);
    if (!p)
        return false;
    *items = p;
    *cap = ncap;
    return true;
}

/* Calls parked under tag. Under mu. */
static inline int64_t rg_parked_with_tag(const rg_store_t *s, int64_t tag)
{
    int64_t n = 0;
    for (size_t i = 0; i < s->nparked; i++)
        if (s->parked[i].tag == tag)
            n++;
    return n;
}

static inline void
rg_answer_count(void *call, Flremote__CountReply_Closure closure, int64_t count)
{
    Flremote__CountReply r = FLREMOTE__COUNT_REPLY__INIT;
    r.count = count;
    closure(&r, call);
}

/* Answers the waiters whose condition holds now. Not under mu. */
static inline void rg_wake_waiters(rg_store_t *s)
{
    /* The answers, collected under mu and given after it is dropped. */
    struct {
        fl_rpc_call_t *call;
        Flremote__CountReply_Closure closure;
        int64_t count;
    } *ready = NULL;
    size_t n = 0, keep = 0;
    pthread_mutex_lock(&s->mu);
    if (s->nwaiters)
        ready = calloc(s->nwaiters, sizeof *ready);
    for (size_t i = 0; ready && i < s->nwaiters; i++) {
        rg_waiter_t *w = &s->waiters[i];
        int64_t have = w->on_count ? s->count : rg_parked_with_tag(s, w->tag);
        if (have >= w->want) {
            ready[n].call = w->call;
            ready[n].closure = w->closure;
            ready[n++].count = have;
        } else {
            s->waiters[keep++] = *w;
        }
    }
    if (ready)
        s->nwaiters = keep;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++)
        rg_answer_count(ready[i].call, ready[i].closure, ready[i].count);
    free(ready);
}

/* Parks a WaitParked/WaitCount call, or answers it now if it holds. */
static inline void rg_wait_for(rg_store_t *s, void *closure_data,
                               Flremote__CountReply_Closure closure,
                               bool on_count, int64_t tag, int64_t want)
{
    pthread_mutex_lock(&s->mu);
    int64_t have = on_count ? s->count : rg_parked_with_tag(s, tag);
    if (have >= want) {
        pthread_mutex_unlock(&s->mu);
        rg_answer_count(closure_data, closure, have);
        return;
    }
    fl_rpc_call_t *call = fl_rpc_defer(closure_data);
    bool ok = call && rg_grow((void **)&s->waiters, &s->capwaiters, s->nwaiters,
                              sizeof *s->waiters);
    if (ok)
        s->waiters[s->nwaiters++] =
            (rg_waiter_t){call, closure, on_count, tag, want};
    pthread_mutex_unlock(&s->mu);
    if (!ok)
        fl_rpc_fail(call ? (void *)call : closure_data, FL_ENOMEM,
                    "could not park the wait");
}

/* Answers the parked calls tagged tag (all of them if `all`) with text
 * "released" and n = their tag; returns how many. Not under mu. */
static inline size_t rg_store_release(rg_store_t *s, bool all, int64_t tag)
{
    pthread_mutex_lock(&s->mu);
    rg_parked_t *out = s->nparked ? calloc(s->nparked, sizeof *out) : NULL;
    size_t n = 0, keep = 0;
    for (size_t i = 0; out && i < s->nparked; i++) {
        if (all || s->parked[i].tag == tag)
            out[n++] = s->parked[i];
        else
            s->parked[keep++] = s->parked[i];
    }
    if (out)
        s->nparked = keep;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        Flremote__EchoReply r = FLREMOTE__ECHO_REPLY__INIT;
        r.text = "released";
        r.n = out[i].tag;
        out[i].closure(&r, out[i].call);
    }
    free(out);
    return n;
}

/* Fails every parked call and waiting call with code and message. Not
 * under mu. */
static inline void rg_store_cancel(rg_store_t *s, int code, const char *message)
{
    pthread_mutex_lock(&s->mu);
    rg_parked_t *parked = s->parked;
    size_t nparked = s->nparked;
    rg_waiter_t *waiters = s->waiters;
    size_t nwaiters = s->nwaiters;
    s->parked = NULL;
    s->nparked = s->capparked = 0;
    s->waiters = NULL;
    s->nwaiters = s->capwaiters = 0;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < nparked; i++)
        fl_rpc_fail(parked[i].call, code, "%s", message);
    for (size_t i = 0; i < nwaiters; i++)
        fl_rpc_fail(waiters[i].call, code, "%s", message);
    free(parked);
    free(waiters);
}

/* ---- endpoint hook and RemoteGateway handlers ---------------------------- */

/* on_start of the endpoints whose state is an rg_store_t: counts them. */
static inline int rg_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    rg_store_t *s = state;
    pthread_mutex_lock(&s->mu);
    s->started++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return FL_OK;
}

static inline void rg_echo(Flremote__RemoteGateway_Service *svc,
                           const Flremote__EchoRequest *in,
                           Flremote__EchoReply_Closure closure,
                           void *closure_data)
{
    (void)svc;
    Flremote__EchoReply r = FLREMOTE__ECHO_REPLY__INIT;
    r.text = in->text;
    r.n = in->n;
    closure(&r, closure_data);
}

static inline void rg_fail(Flremote__RemoteGateway_Service *svc,
                           const Flremote__FailRequest *in,
                           Flremote__EchoReply_Closure closure,
                           void *closure_data)
{
    (void)svc;
    (void)closure;
    if (in->message[0] == '\0')
        fl_rpc_fail(closure_data, in->code, NULL);
    else
        fl_rpc_fail(closure_data, in->code, "%s", in->message);
}

static inline void rg_block(Flremote__RemoteGateway_Service *svc,
                            const Flremote__EchoRequest *in,
                            Flremote__EchoReply_Closure closure,
                            void *closure_data)
{
    (void)svc;
    rg_store_t *s = fl_rpc_call_state(closure_data);
    fl_rpc_call_t *call = fl_rpc_defer(closure_data);
    if (!call) {
        fl_rpc_fail(closure_data, FL_ENOMEM, "Block: could not defer");
        return;
    }
    pthread_mutex_lock(&s->mu);
    bool ok = rg_grow((void **)&s->parked, &s->capparked, s->nparked,
                      sizeof *s->parked);
    if (ok)
        s->parked[s->nparked++] = (rg_parked_t){call, closure, in->n};
    pthread_mutex_unlock(&s->mu);
    if (!ok) {
        fl_rpc_fail(call, FL_ENOMEM, "Block: no room to park");
        return;
    }
    rg_wake_waiters(s);
}

static inline void rg_release(Flremote__RemoteGateway_Service *svc,
                              const Flremote__TagRequest *in,
                              Flremote__CountReply_Closure closure,
                              void *closure_data)
{
    (void)svc;
    size_t n =
        rg_store_release(fl_rpc_call_state(closure_data), false, in->tag);
    rg_answer_count(closure_data, closure, (int64_t)n);
}

static inline void rg_wait_parked(Flremote__RemoteGateway_Service *svc,
                                  const Flremote__TagRequest *in,
                                  Flremote__CountReply_Closure closure,
                                  void *closure_data)
{
    (void)svc;
    rg_wait_for(fl_rpc_call_state(closure_data), closure_data, closure, false,
                in->tag, in->want);
}

static inline void rg_count(Flremote__RemoteGateway_Service *svc,
                            const Flremote__CountRequest *in,
                            Flremote__Empty_Closure closure, void *closure_data)
{
    (void)svc;
    rg_store_t *s = fl_rpc_call_state(closure_data);
    pthread_mutex_lock(&s->mu);
    s->count += in->n;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    Flremote__Empty e = FLREMOTE__EMPTY__INIT;
    closure(&e, closure_data);
    rg_wake_waiters(s);
}

static inline void rg_wait_count(Flremote__RemoteGateway_Service *svc,
                                 const Flremote__CountRequest *in,
                                 Flremote__CountReply_Closure closure,
                                 void *closure_data)
{
    (void)svc;
    rg_wait_for(fl_rpc_call_state(closure_data), closure_data, closure, true, 0,
                in->n);
}

static inline void rg_size(Flremote__RemoteGateway_Service *svc,
                           const Flremote__SizeRequest *in,
                           Flremote__EchoReply_Closure closure,
                           void *closure_data)
{
    (void)svc;
    if (in->size < 0 || in->size > MAX_SIZE_REPLY) {
        fl_rpc_fail(closure_data, FL_EINVAL, "Size: %" PRId64 " out of range",
                    in->size);
        return;
    }
    char *text = rg_text(in->size, 'a');
    if (!text) {
        fl_rpc_fail(closure_data, FL_ENOMEM, "Size: no memory");
        return;
    }
    Flremote__EchoReply r = FLREMOTE__ECHO_REPLY__INIT;
    r.text = text;
    r.n = in->size;
    closure(&r, closure_data);
    free(text);
}

#endif /* REMOTE_FIXTURE_H */
