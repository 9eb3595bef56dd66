/*
 * remote_peer.c - the other process of the two-process RPC tests
 * (remote_test.c). Not a test itself: remote_test.c starts it with
 * fork/exec and talks to it over TCP.
 *
 * It runs a real fling RPC service listening on 127.0.0.1 with four
 * endpoints implementing flremote.RemoteGateway (remote_gateways.proto):
 *
 *   plain   unfenced, started
 *   fenced  fenced with the --token token, started
 *   idle    created but NOT started (calls fail with FL_ENOTSTARTED)
 *   doomed  unfenced, started; CloseEndpoint("doomed") terminates it
 *
 * Usage: remote_peer [--port RANGE] [--token HEX32] [--max-frame BYTES]
 *
 * Once serving it prints ONE line on stdout:
 *
 *   ready port=<port> plain=<addr> fenced=<addr> idle=<addr> doomed=<addr>
 *
 * or, if the service could not be created, "error <FL_NAME> <message>" and
 * exits with status 2. It serves until stdin reaches end of file (the test
 * closed its end, or died) or SIGTERM/SIGINT arrives, then answers the calls
 * still parked with FL_ECANCELED, joins its call-back threads, shuts the
 * service down and exits 0 (1 if the shutdown reported a failure).
 *
 * CallBack makes the peer a client too: from a thread of its own it
 * connects to an address the test gives (an endpoint of the test process)
 * and calls it in the style asked for, then answers with what it saw.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <fling/fling.h>

#include "remote_gateways.pb-c.h"

#define RG (&flremote__remote_gateway__descriptor)

/* How long a call-back thread waits for a connect or a closure beyond the
 * call's own timeout. */
#define PEER_WAIT_MS 20000

/* Call-back threads one peer runs over its life. */
#define MAX_THREADS 64

/* Largest Size reply the peer builds. */
#define MAX_SIZE_REPLY ((int64_t)64 << 20)

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

/* A Block call waiting for Release (or the peer's shutdown). */
typedef struct parked {
    fl_rpc_call_t *call;
    Flremote__EchoReply_Closure closure;
    int64_t tag;
} parked_t;

/* A WaitParked or WaitCount call waiting for its condition. */
typedef struct waiter {
    fl_rpc_call_t *call;
    Flremote__CountReply_Closure closure;
    bool on_count; /* WaitCount: count >= want; else parked[tag] >= want */
    int64_t tag;
    int64_t want;
} waiter_t;

/* An answer collected under the lock and given after it is dropped. */
typedef struct answer {
    fl_rpc_call_t *call;
    Flremote__CountReply_Closure closure;
    int64_t count;
} answer_t;

/*
 * The peer's shared state. Handlers of different endpoints run on
 * different threads and call-back threads come and go, so everything below
 * `mu` is guarded by it; calls are answered after it is released (answering
 * may run code of fling's that must not run under our lock).
 */
static struct {
    fl_rpc_service_t *svc;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started; /* endpoints whose on_start ran */
    parked_t *parked;
    size_t nparked, capparked;
    waiter_t *waiters;
    size_t nwaiters, capwaiters;
    int64_t count;
    pthread_t threads[MAX_THREADS];
    size_t nthreads;
    bool stopping;
    fl_future_t *closing[8]; /* termination futures CloseEndpoint made */
    size_t nclosing;
} G = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static uint64_t now_ms(void)
{
    return fl_clock_now_ns() / 1000000u;
}

static void pb_free(void *p)
{
    protobuf_c_message_free_unpacked(p, NULL);
}

/* Grows a G array by one element; false when out of memory. Under mu. */
static bool grow(void **items, size_t *cap, size_t n, size_t size)
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

static int64_t parked_with_tag(int64_t tag)
{
    int64_t n = 0;
    for (size_t i = 0; i < G.nparked; i++)
        if (G.parked[i].tag == tag)
            n++;
    return n;
}

/*
 * Moves the waiters whose condition now holds into out (room for
 * G.nwaiters entries) and returns how many. Under mu.
 */
static size_t take_ready_waiters(answer_t *out)
{
    size_t n = 0, keep = 0;
    for (size_t i = 0; i < G.nwaiters; i++) {
        waiter_t *w = &G.waiters[i];
        int64_t have = w->on_count ? G.count : parked_with_tag(w->tag);
        if (have >= w->want) {
            out[n].call = w->call;
            out[n].closure = w->closure;
            out[n].count = have;
            n++;
        } else {
            G.waiters[keep++] = *w;
        }
    }
    G.nwaiters = keep;
    return n;
}

static void answer_count(fl_rpc_call_t *call,
                         Flremote__CountReply_Closure closure, int64_t count)
{
    Flremote__CountReply r = FLREMOTE__COUNT_REPLY__INIT;
    r.count = count;
    closure(&r, call);
}

/* Answers the waiters whose condition holds now. Not under mu. */
static void wake_waiters(void)
{
    pthread_mutex_lock(&G.mu);
    answer_t *ready = G.nwaiters ? calloc(G.nwaiters, sizeof *ready) : NULL;
    size_t n = ready ? take_ready_waiters(ready) : 0;
    pthread_mutex_unlock(&G.mu);
    for (size_t i = 0; i < n; i++)
        answer_count(ready[i].call, ready[i].closure, ready[i].count);
    free(ready);
}

/* ---- endpoint hooks ------------------------------------------------------ */

static int on_start(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    (void)state;
    pthread_mutex_lock(&G.mu);
    G.started++;
    pthread_cond_broadcast(&G.cv);
    pthread_mutex_unlock(&G.mu);
    return FL_OK;
}

/* ---- RemoteGateway handlers ---------------------------------------------- */

static void rg_echo(Flremote__RemoteGateway_Service *svc,
                    const Flremote__EchoRequest *in,
                    Flremote__EchoReply_Closure closure, void *closure_data)
{
    (void)svc;
    Flremote__EchoReply r = FLREMOTE__ECHO_REPLY__INIT;
    r.text = in->text;
    r.n = in->n;
    closure(&r, closure_data);
}

static void rg_fail(Flremote__RemoteGateway_Service *svc,
                    const Flremote__FailRequest *in,
                    Flremote__EchoReply_Closure closure, void *closure_data)
{
    (void)svc;
    (void)closure;
    if (in->message[0] == '\0')
        fl_rpc_fail(closure_data, in->code, NULL);
    else
        fl_rpc_fail(closure_data, in->code, "%s", in->message);
}

static void rg_block(Flremote__RemoteGateway_Service *svc,
                     const Flremote__EchoRequest *in,
                     Flremote__EchoReply_Closure closure, void *closure_data)
{
    (void)svc;
    fl_rpc_call_t *call = fl_rpc_defer(closure_data);
    if (!call) {
        fl_rpc_fail(closure_data, FL_ENOMEM, "Block: could not defer");
        return;
    }
    pthread_mutex_lock(&G.mu);
    bool ok =
        grow((void **)&G.parked, &G.capparked, G.nparked, sizeof *G.parked);
    if (ok)
        G.parked[G.nparked++] = (parked_t){call, closure, in->n};
    pthread_mutex_unlock(&G.mu);
    if (!ok) {
        fl_rpc_fail(call, FL_ENOMEM, "Block: no room to park");
        return;
    }
    wake_waiters();
}

static void rg_release(Flremote__RemoteGateway_Service *svc,
                       const Flremote__TagRequest *in,
                       Flremote__CountReply_Closure closure, void *closure_data)
{
    (void)svc;
    pthread_mutex_lock(&G.mu);
    parked_t *out = G.nparked ? calloc(G.nparked, sizeof *out) : NULL;
    size_t n = 0, keep = 0;
    for (size_t i = 0; out && i < G.nparked; i++) {
        if (G.parked[i].tag == in->tag)
            out[n++] = G.parked[i];
        else
            G.parked[keep++] = G.parked[i];
    }
    if (out)
        G.nparked = keep;
    pthread_mutex_unlock(&G.mu);
    for (size_t i = 0; i < n; i++) {
        Flremote__EchoReply r = FLREMOTE__ECHO_REPLY__INIT;
        r.text = "released";
        r.n = out[i].tag;
        out[i].closure(&r, out[i].call);
    }
    free(out);
    answer_count(closure_data, closure, (int64_t)n);
}

/* Parks a WaitParked/WaitCount call, or answers it now if it holds. */
static void wait_for(void *closure_data, Flremote__CountReply_Closure closure,
                     bool on_count, int64_t tag, int64_t want)
{
    pthread_mutex_lock(&G.mu);
    int64_t have = on_count ? G.count : parked_with_tag(tag);
    if (have >= want) {
        pthread_mutex_unlock(&G.mu);
        answer_count(closure_data, closure, have);
        return;
    }
    fl_rpc_call_t *call = fl_rpc_defer(closure_data);
    bool ok = call && grow((void **)&G.waiters, &G.capwaiters, G.nwaiters,
                           sizeof *G.waiters);
    if (ok)
        G.waiters[G.nwaiters++] =
            (waiter_t){call, closure, on_count, tag, want};
    pthread_mutex_unlock(&G.mu);
    if (!ok)
        fl_rpc_fail(call ? (void *)call : closure_data, FL_ENOMEM,
                    "could not park the wait");
}

static void rg_wait_parked(Flremote__RemoteGateway_Service *svc,
                           const Flremote__TagRequest *in,
                           Flremote__CountReply_Closure closure,
                           void *closure_data)
{
    (void)svc;
    wait_for(closure_data, closure, false, in->tag, in->want);
}

static void rg_count(Flremote__RemoteGateway_Service *svc,
                     const Flremote__CountRequest *in,
                     Flremote__Empty_Closure closure, void *closure_data)
{
    (void)svc;
    pthread_mutex_lock(&G.mu);
    G.count += in->n;
    pthread_mutex_unlock(&G.mu);
    Flremote__Empty e = FLREMOTE__EMPTY__INIT;
    closure(&e, closure_data);
    wake_waiters();
}

static void rg_wait_count(Flremote__RemoteGateway_Service *svc,
                          const Flremote__CountRequest *in,
                          Flremote__CountReply_Closure closure,
                          void *closure_data)
{
    (void)svc;
    wait_for(closure_data, closure, true, 0, in->n);
}

static void rg_size(Flremote__RemoteGateway_Service *svc,
                    const Flremote__SizeRequest *in,
                    Flremote__EchoReply_Closure closure, void *closure_data)
{
    (void)svc;
    if (in->size < 0 || in->size > MAX_SIZE_REPLY) {
        fl_rpc_fail(closure_data, FL_EINVAL, "Size: %" PRId64 " out of range",
                    in->size);
        return;
    }
    char *text = malloc((size_t)in->size + 1);
    if (!text) {
        fl_rpc_fail(closure_data, FL_ENOMEM, "Size: no memory");
        return;
    }
    for (int64_t i = 0; i < in->size; i++)
        text[i] = (char)('a' + i % 26);
    text[in->size] = '\0';
    Flremote__EchoReply r = FLREMOTE__ECHO_REPLY__INIT;
    r.text = text;
    r.n = in->size;
    closure(&r, closure_data);
    free(text);
}

/* fl_then_cb: a termination future's success becomes an Empty reply. */
static int to_empty(void *arg, void *value, void **out, fl_free_cb *out_free)
{
    (void)arg;
    (void)value;
    Flremote__Empty *e = malloc(sizeof *e);
    if (!e)
        return FL_ENOMEM;
    flremote__empty__init(e);
    *out = e;
    *out_free = pb_free;
    return FL_OK;
}

static void rg_close_endpoint(Flremote__RemoteGateway_Service *svc,
                              const Flremote__CloseRequest *in,
                              Flremote__Empty_Closure closure,
                              void *closure_data)
{
    (void)svc;
    (void)closure;
    fl_rpc_endpoint_t *ep = NULL;
    int rc = fl_rpc_service_lookup(G.svc, in->id, &ep);
    if (rc != FL_OK) {
        fl_rpc_fail(closure_data, rc, "no live endpoint %s", in->id);
        return;
    }
    if (ep == fl_rpc_call_endpoint(closure_data)) {
        fl_rpc_fail(closure_data, FL_EINVAL,
                    "an endpoint cannot wait for "
                    "its own termination");
        return;
    }
    fl_future_t *t = fl_rpc_endpoint_close(ep);
    fl_future_t *e = t ? fl_future_then(t, to_empty, NULL) : NULL;
    pthread_mutex_lock(&G.mu);
    bool kept = t && G.nclosing < sizeof G.closing / sizeof G.closing[0];
    if (kept)
        G.closing[G.nclosing++] = t;
    pthread_mutex_unlock(&G.mu);
    if (!kept)
        fl_future_release(t);
    if (!e) {
        fl_rpc_fail(closure_data, FL_ENOMEM, "CloseEndpoint: no memory");
        return;
    }
    (void)fl_rpc_reply_future(closure_data, e);
}

/* ---- CallBack: the peer as a client ---------------------------------------
 */

/* One CallBack: the request's fields (copied), the deferred call, and what
 * the closure of a STYLE_CLOSURE call saw. */
typedef struct job {
    fl_rpc_call_t *call;
    Flremote__CallBackReply_Closure answer;
    char *address;
    bool fenced;
    fl_fencing_token_t token;
    Flremote__Style style;
    int method;
    char *text;
    int64_t n;
    int code;
    int64_t timeout_ms;

    /* Written by the closure (on fling's thread), read under done_mu. */
    pthread_mutex_t done_mu;
    pthread_cond_t done_cv;
    int closure_runs;
    int closure_code;
    char closure_message[1100];
    bool closure_reply;
    int64_t closure_n;
    char *closure_text;
} job_t;

static void job_free(job_t *j)
{
    pthread_mutex_destroy(&j->done_mu);
    pthread_cond_destroy(&j->done_cv);
    free(j->address);
    free(j->text);
    free(j->closure_text);
    free(j);
}

/* Records a closure's outcome and wakes the call-back thread. */
static void closure_saw(job_t *j, bool got, int64_t n, const char *text)
{
    const char *m = fl_rpc_last_message();
    pthread_mutex_lock(&j->done_mu);
    j->closure_runs++;
    j->closure_code = fl_rpc_last_error();
    snprintf(j->closure_message, sizeof j->closure_message, "%s", m ? m : "");
    j->closure_reply = got;
    j->closure_n = n;
    free(j->closure_text);
    j->closure_text = text ? strdup(text) : NULL;
    pthread_cond_broadcast(&j->done_cv);
    pthread_mutex_unlock(&j->done_mu);
}

static void echo_reply_closure(const Flremote__EchoReply *reply, void *data)
{
    closure_saw(data, reply != NULL, reply ? reply->n : 0,
                reply ? reply->text : NULL);
}

static void empty_closure(const Flremote__Empty *reply, void *data)
{
    closure_saw(data, reply != NULL, 0, NULL);
}

/* Fills the reply's n, text_len and text from a reply's n and text. */
static void report_text(Flremote__CallBackReply *r, int64_t n, const char *text,
                        char *buf, size_t buf_size)
{
    r->n = n;
    r->text_len = text ? (int64_t)strlen(text) : 0;
    snprintf(buf, buf_size, "%s", text ? text : "");
    r->text = buf;
}

/* The request CallBack asks for, by method. */
typedef union any_req {
    Flremote__EchoRequest echo;
    Flremote__FailRequest fail;
    Flremote__CountRequest count;
    Flremote__SizeRequest size;
} any_req_t;

static const ProtobufCMessage *build_request(const job_t *j, any_req_t *u)
{
    switch (j->method) {
    case M_ECHO:
    case M_BLOCK:
        flremote__echo_request__init(&u->echo);
        u->echo.text = j->text;
        u->echo.n = j->n;
        return &u->echo.base;
    case M_FAIL:
        flremote__fail_request__init(&u->fail);
        u->fail.code = j->code;
        u->fail.message = j->text;
        return &u->fail.base;
    case M_COUNT:
        flremote__count_request__init(&u->count);
        u->count.n = j->n;
        return &u->count.base;
    case M_SIZE:
        flremote__size_request__init(&u->size);
        u->size.size = j->n;
        return &u->size.base;
    default:
        return NULL;
    }
}

/* A stub call of j->method through service with closure (NULL: a tell). */
static void stub_call(ProtobufCService *service, job_t *j,
                      const ProtobufCMessage *req, bool with_closure)
{
    void *data = with_closure ? j : NULL;
    switch (j->method) {
    case M_ECHO:
        flremote__remote_gateway__echo(
            service, (const Flremote__EchoRequest *)req,
            with_closure ? echo_reply_closure : NULL, data);
        break;
    case M_FAIL:
        flremote__remote_gateway__fail(
            service, (const Flremote__FailRequest *)req,
            with_closure ? echo_reply_closure : NULL, data);
        break;
    case M_BLOCK:
        flremote__remote_gateway__block(
            service, (const Flremote__EchoRequest *)req,
            with_closure ? echo_reply_closure : NULL, data);
        break;
    case M_COUNT:
        flremote__remote_gateway__count(
            service, (const Flremote__CountRequest *)req,
            with_closure ? empty_closure : NULL, data);
        break;
    case M_SIZE:
        flremote__remote_gateway__size(
            service, (const Flremote__SizeRequest *)req,
            with_closure ? echo_reply_closure : NULL, data);
        break;
    default:
        break;
    }
}

/* Takes n and text out of a reply of j->method. */
static void reply_fields(const job_t *j, const ProtobufCMessage *reply,
                         int64_t *n, const char **text)
{
    *n = 0;
    *text = NULL;
    if (reply && j->method != M_COUNT) {
        const Flremote__EchoReply *r = (const Flremote__EchoReply *)reply;
        *n = r->n;
        *text = r->text;
    }
}

/* The thread of one CallBack: connect, call, answer the CallBack. */
static void *call_back_main(void *arg)
{
    job_t *j = arg;
    Flremote__CallBackReply r = FLREMOTE__CALL_BACK_REPLY__INIT;
    char message[1100] = "";
    char textbuf[128] = "";
    r.message = message;
    r.text = textbuf;
    bool keep_job = false;

    fl_future_t *cf = NULL;
    int rc = fl_rpc_connect(G.svc, j->address, RG, j->fenced ? &j->token : NULL,
                            &cf);
    if (rc == FL_OK) {
        rc = fl_future_wait(cf, PEER_WAIT_MS);
        if (!fl_future_done(cf))
            snprintf(message, sizeof message, "connect did not complete");
        else if (rc != FL_OK)
            snprintf(message, sizeof message, "%s", fl_future_message(cf));
    }
    r.connect_code = rc;
    fl_rpc_gateway_t *gw = rc == FL_OK ? fl_future_take_value(cf) : NULL;
    fl_future_release(cf);
    if (!gw) {
        r.code = rc;
        goto answer;
    }

    any_req_t u;
    const ProtobufCMessage *req = build_request(j, &u);
    if (!req) {
        r.code = FL_EINVAL;
        snprintf(message, sizeof message, "CallBack: bad method %d", j->method);
        goto answer;
    }
    ProtobufCService *service = fl_rpc_gateway_service(gw);
    uint64_t t0 = now_ms();
    switch (j->style) {
    case FLREMOTE__STYLE__STYLE_TELL: {
        stub_call(service, j, req, false);
        r.code = fl_rpc_last_error();
        const char *m = fl_rpc_last_message();
        snprintf(message, sizeof message, "%s", m ? m : "");
        break;
    }
    case FLREMOTE__STYLE__STYLE_CLOSURE: {
        if (j->timeout_ms > 0)
            fl_rpc_next_timeout(j->timeout_ms);
        stub_call(service, j, req, true);
        int64_t limit = j->timeout_ms + PEER_WAIT_MS;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(limit / 1000);
        pthread_mutex_lock(&j->done_mu);
        while (j->closure_runs == 0) {
            if (pthread_cond_timedwait(&j->done_cv, &j->done_mu, &ts) ==
                ETIMEDOUT)
                break;
        }
        r.closure_runs = j->closure_runs;
        if (j->closure_runs == 0) {
            /* The closure may still run later: leave it the job. */
            keep_job = true;
            r.code = FL_EINTERNAL;
            snprintf(message, sizeof message, "the closure never ran");
        } else {
            r.code = j->closure_code;
            snprintf(message, sizeof message, "%s", j->closure_message);
            report_text(&r, j->closure_n,
                        j->closure_reply ? j->closure_text : NULL, textbuf,
                        sizeof textbuf);
        }
        pthread_mutex_unlock(&j->done_mu);
        break;
    }
    case FLREMOTE__STYLE__STYLE_FUTURE: {
        fl_future_t *f = NULL;
        rc = fl_rpc_call(gw, (unsigned)j->method, req, j->timeout_ms, &f);
        if (rc != FL_OK) {
            r.code = rc;
            snprintf(message, sizeof message, "fl_rpc_call refused");
            break;
        }
        (void)fl_future_wait(f, j->timeout_ms + PEER_WAIT_MS);
        if (!fl_future_done(f)) {
            r.code = FL_EINTERNAL;
            snprintf(message, sizeof message, "the future never completed");
        } else {
            r.code = fl_future_error(f);
            snprintf(message, sizeof message, "%s", fl_future_message(f));
            int64_t n;
            const char *text;
            reply_fields(j, fl_future_value(f), &n, &text);
            report_text(&r, n, text, textbuf, sizeof textbuf);
        }
        fl_future_release(f);
        break;
    }
    case FLREMOTE__STYLE__STYLE_SYNC: {
        ProtobufCMessage *reply = NULL;
        r.code = fl_rpc_call_sync(gw, (unsigned)j->method, req, j->timeout_ms,
                                  &reply);
        int64_t n;
        const char *text;
        reply_fields(j, reply, &n, &text);
        report_text(&r, n, text, textbuf, sizeof textbuf);
        if (reply)
            protobuf_c_message_free_unpacked(reply, NULL);
        break;
    }
    default:
        r.code = FL_EINVAL;
        snprintf(message, sizeof message, "CallBack: bad style %d",
                 (int)j->style);
        break;
    }
    r.elapsed_ms = (int64_t)(now_ms() - t0);

answer:
    j->answer(&r, j->call);
    fl_rpc_gateway_free(gw);
    if (!keep_job)
        job_free(j);
    return NULL;
}

static void rg_call_back(Flremote__RemoteGateway_Service *svc,
                         const Flremote__CallBackRequest *in,
                         Flremote__CallBackReply_Closure closure,
                         void *closure_data)
{
    (void)svc;
    if (in->token.len != 0 && in->token.len != 16) {
        fl_rpc_fail(closure_data, FL_EINVAL, "token of %zu bytes",
                    in->token.len);
        return;
    }
    job_t *j = calloc(1, sizeof *j);
    if (!j) {
        fl_rpc_fail(closure_data, FL_ENOMEM, "CallBack: no memory");
        return;
    }
    pthread_mutex_init(&j->done_mu, NULL);
    pthread_cond_init(&j->done_cv, NULL);
    j->answer = closure;
    j->address = strdup(in->address);
    if (in->text_size > 0 && in->text_size <= MAX_SIZE_REPLY) {
        j->text = malloc((size_t)in->text_size + 1);
        if (j->text) {
            for (int64_t i = 0; i < in->text_size; i++)
                j->text[i] = (char)('A' + i % 26);
            j->text[in->text_size] = '\0';
        }
    } else {
        j->text = strdup(in->text);
    }
    j->fenced = in->token.len == 16;
    if (j->fenced)
        memcpy(j->token.bytes, in->token.data, 16);
    j->style = in->style;
    j->method = in->method;
    j->n = in->n;
    j->code = in->code;
    j->timeout_ms = in->timeout_ms;
    j->call = fl_rpc_defer(closure_data);
    if (!j->address || !j->text || !j->call) {
        fl_rpc_fail(j->call ? (void *)j->call : closure_data, FL_ENOMEM,
                    "CallBack: no memory");
        job_free(j);
        return;
    }
    int rc = FL_ELIMIT;
    pthread_mutex_lock(&G.mu);
    if (G.stopping)
        rc = FL_ECLOSED;
    else if (G.nthreads < MAX_THREADS)
        rc = pthread_create(&G.threads[G.nthreads], NULL, call_back_main, j)
                 ? FL_ESYSTEM
                 : FL_OK;
    if (rc == FL_OK)
        G.nthreads++;
    pthread_mutex_unlock(&G.mu);
    if (rc != FL_OK) {
        fl_rpc_fail(j->call, rc, "CallBack: no thread");
        job_free(j);
    }
}

/* ---- main ---------------------------------------------------------------- */

static Flremote__RemoteGateway_Service impl =
    FLREMOTE__REMOTE_GATEWAY__INIT(rg_);
static ProtobufCService *const services[1] = {&impl.base};

static int parse_token(const char *hex, fl_fencing_token_t *out)
{
    if (strlen(hex) != 32)
        return -1;
    for (int i = 0; i < 16; i++) {
        unsigned b;
        if (sscanf(hex + 2 * i, "%2x", &b) != 1)
            return -1;
        out->bytes[i] = (uint8_t)b;
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: remote_peer [--port RANGE] [--token HEX32] "
                    "[--max-frame BYTES]\n");
    return 64;
}

/* Creates endpoint id (fenced with tok if not NULL) and starts it unless
 * start is false. Returns FL_OK or the failing code (printed). */
static int make_endpoint(const char *id, const fl_fencing_token_t *tok,
                         bool start, fl_rpc_endpoint_t **out)
{
    fl_rpc_endpoint_opts_t o = {0};
    o.id = id;
    o.services = services;
    o.nservices = 1;
    o.on_start = on_start;
    o.fencing_token = tok;
    int rc = fl_rpc_endpoint_create(G.svc, &o, out);
    if (rc == FL_OK && start)
        rc = fl_rpc_endpoint_start(*out);
    if (rc != FL_OK)
        printf("error %s endpoint %s\n", fl_err_name(rc), id);
    return rc;
}

/* Waits until stdin reaches end of file or sfd reports a signal. */
static void serve_until_told(int sfd)
{
    struct pollfd p[2] = {{.fd = 0, .events = POLLIN},
                          {.fd = sfd, .events = POLLIN}};
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (p[1].revents)
            return;
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
            char buf[256];
            ssize_t n = read(0, buf, sizeof buf);
            if (n <= 0 && !(n < 0 && errno == EINTR))
                return;
        }
    }
}

/* Fails every parked call and wait with FL_ECANCELED (shutdown). */
static void cancel_parked(void)
{
    pthread_mutex_lock(&G.mu);
    G.stopping = true;
    parked_t *parked = G.parked;
    size_t nparked = G.nparked;
    waiter_t *waiters = G.waiters;
    size_t nwaiters = G.nwaiters;
    G.parked = NULL;
    G.nparked = G.capparked = 0;
    G.waiters = NULL;
    G.nwaiters = G.capwaiters = 0;
    pthread_mutex_unlock(&G.mu);
    for (size_t i = 0; i < nparked; i++)
        fl_rpc_fail(parked[i].call, FL_ECANCELED, "the peer is shutting down");
    for (size_t i = 0; i < nwaiters; i++)
        fl_rpc_fail(waiters[i].call, FL_ECANCELED, "the peer is shutting down");
    free(parked);
    free(waiters);
}

int main(int argc, char **argv)
{
    const char *port = "0";
    uint32_t max_frame = 0;
    fl_fencing_token_t token;
    memset(token.bytes, 0x5A, sizeof token.bytes);
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--port") == 0)
            port = argv[++i];
        else if (strcmp(argv[i], "--max-frame") == 0)
            max_frame = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--token") == 0) {
            if (parse_token(argv[++i], &token) != 0)
                return usage();
        } else
            return usage();
    }

    /* SIGTERM and SIGINT are taken through a signalfd; blocked before any
     * thread exists so that every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    if (sfd < 0) {
        printf("error FL_ESYSTEM signalfd: %s\n", strerror(errno));
        return 2;
    }

    fl_rpc_service_opts_t o = {0};
    o.workers = 2;
    o.default_timeout_ms = 30000;
    o.bind_host = "127.0.0.1";
    o.port = port;
    o.max_frame_size = max_frame;
    o.name = "remote_peer";
    int rc = fl_rpc_service_alloc(&o, &G.svc);
    if (rc != FL_OK) {
        printf("error %s %s\n", fl_err_name(rc), fl_rpc_last_message());
        fflush(stdout);
        close(sfd);
        return 2;
    }

    fl_rpc_endpoint_t *plain = NULL, *fenced = NULL, *idle = NULL,
                      *doomed = NULL;
    rc = make_endpoint("plain", NULL, true, &plain);
    if (rc == FL_OK)
        rc = make_endpoint("fenced", &token, true, &fenced);
    if (rc == FL_OK)
        rc = make_endpoint("idle", NULL, false, &idle);
    if (rc == FL_OK)
        rc = make_endpoint("doomed", NULL, true, &doomed);
    if (rc == FL_OK) {
        /* Serve only once the three started endpoints have run on_start. */
        pthread_mutex_lock(&G.mu);
        while (G.started < 3)
            pthread_cond_wait(&G.cv, &G.mu);
        pthread_mutex_unlock(&G.mu);
        printf("ready port=%d plain=%s fenced=%s idle=%s doomed=%s\n",
               fl_rpc_service_port(G.svc), fl_rpc_endpoint_address(plain),
               fl_rpc_endpoint_address(fenced), fl_rpc_endpoint_address(idle),
               fl_rpc_endpoint_address(doomed));
        fflush(stdout);
        serve_until_told(sfd);
    }
    fflush(stdout);

    cancel_parked();
    pthread_mutex_lock(&G.mu);
    size_t nthreads = G.nthreads;
    pthread_mutex_unlock(&G.mu);
    for (size_t i = 0; i < nthreads; i++)
        pthread_join(G.threads[i], NULL);

    int src = fl_rpc_service_shutdown(G.svc);
    if (src != FL_OK)
        fprintf(stderr, "remote_peer: shutdown: %s\n", fl_err_name(src));
    fl_rpc_endpoint_free(plain);
    fl_rpc_endpoint_free(fenced);
    fl_rpc_endpoint_free(idle);
    fl_rpc_endpoint_free(doomed);
    for (size_t i = 0; i < G.nclosing; i++)
        fl_future_release(G.closing[i]);
    fl_rpc_service_free(G.svc);
    close(sfd);
    if (rc != FL_OK)
        return 2;
    return src == FL_OK ? 0 : 1;
}
