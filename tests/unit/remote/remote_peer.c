/*
 * remote_peer.c - the other process of the two-process RPC tests
 * (the remote_*_test.c programs). Not a test itself: they start it with
 * fork/exec (peer_process.h) and talk to it over TCP.
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
 *                    [--tls CERTDIR]
 *
 * --tls: the service speaks mutual TLS with CERTDIR's node.crt/node.key,
 * trusting CERTDIR/ca.crt (scripts/test-certs.sh); addresses fling.ssl://.
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
 *
 * The handlers of Echo, Fail, Block, Release, WaitParked, Count, WaitCount
 * and Size, which the test's own endpoints use too, are in remote_fixture.h.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <fling/fling.h>

#include "remote_fixture.h"

/* Call-back threads one peer runs over its life. */
#define MAX_THREADS 64

/*
 * The peer's state. Its endpoints share one rg_store_t (their state: the
 * parked calls, waits and count of remote_fixture.h). The call-back
 * threads come and go, so what is below `mu` is guarded by it.
 */
static struct {
    fl_rpc_service_t *svc;
    rg_store_t store;

    pthread_mutex_t mu;
    pthread_t threads[MAX_THREADS];
    size_t nthreads;
    bool stopping;
    fl_future_t *closing[8]; /* termination futures CloseEndpoint made */
    size_t nclosing;
} G = {.mu = PTHREAD_MUTEX_INITIALIZER};

static uint64_t now_ms(void)
{
    return fl_clock_now_ns() / 1000000u;
}

static void pb_free(void *p)
{
    protobuf_c_message_free_unpacked(p, NULL);
}

/* ---- RemoteGateway handlers of the peer only ---------------------------- */

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
 * the call the peer made saw. */
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
    rg_seen_t seen; /* a STYLE_CLOSURE call's closure writes it */
} job_t;

static void job_free(job_t *j)
{
    rg_seen_fini(&j->seen);
    free(j->address);
    free(j->text);
    free(j);
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

/* Records a reply of j->method (NULL: none) with code and message. */
static void saw_reply(job_t *j, int code, const char *message,
                      const ProtobufCMessage *reply)
{
    const Flremote__EchoReply *r = NULL;
    if (reply && j->method != M_COUNT)
        r = (const Flremote__EchoReply *)reply;
    rg_seen_set(&j->seen, code, message, reply != NULL, r ? r->n : 0,
                r ? r->text : NULL);
}

/* Makes the call of j in its style through gw and records the outcome in
 * j->seen. Returns FL_OK, or the code of a call that has no outcome to
 * report (message says why); *closure_pending: a closure that may still
 * run later, so j must outlive this thread. */
static int make_call(job_t *j, fl_rpc_gateway_t *gw,
                     const ProtobufCMessage *req, char *message,
                     size_t message_size, bool *closure_pending)
{
    ProtobufCService *service = fl_rpc_gateway_service(gw);
    switch (j->style) {
    case FLREMOTE__STYLE__STYLE_TELL:
        rg_stub_call(service, j->method, req, NULL);
        rg_seen_set(&j->seen, fl_rpc_last_error(), fl_rpc_last_message(), false,
                    0, NULL);
        return FL_OK;
    case FLREMOTE__STYLE__STYLE_CLOSURE:
        if (j->timeout_ms > 0)
            fl_rpc_next_timeout(j->timeout_ms);
        rg_stub_call(service, j->method, req, &j->seen);
        if (rg_seen_wait(&j->seen, j->timeout_ms + WAIT_MS))
            return FL_OK;
        *closure_pending = true;
        snprintf(message, message_size, "the closure never ran");
        return FL_EINTERNAL;
    case FLREMOTE__STYLE__STYLE_FUTURE: {
        fl_future_t *f = NULL;
        int rc = fl_rpc_call(gw, (unsigned)j->method, req, j->timeout_ms, &f);
        if (rc != FL_OK) {
            snprintf(message, message_size, "fl_rpc_call refused");
            return rc;
        }
        (void)fl_future_wait(f, j->timeout_ms + WAIT_MS);
        rc = FL_OK;
        if (fl_future_done(f)) {
            saw_reply(j, fl_future_error(f), fl_future_message(f),
                      fl_future_value(f));
        } else {
            rc = FL_EINTERNAL;
            snprintf(message, message_size, "the future never completed");
        }
        fl_future_release(f);
        return rc;
    }
    case FLREMOTE__STYLE__STYLE_SYNC: {
        ProtobufCMessage *reply = NULL;
        int rc = fl_rpc_call_sync(gw, (unsigned)j->method, req, j->timeout_ms,
                                  &reply);
        /* A blocking call gives only the code. */
        saw_reply(j, rc, NULL, reply);
        if (reply)
            protobuf_c_message_free_unpacked(reply, NULL);
        return FL_OK;
    }
    default:
        snprintf(message, message_size, "CallBack: bad style %d",
                 (int)j->style);
        return FL_EINVAL;
    }
}

/* The thread of one CallBack: connect, call, answer the CallBack. */
static void *call_back_main(void *arg)
{
    job_t *j = arg;
    Flremote__CallBackReply r = FLREMOTE__CALL_BACK_REPLY__INIT;
    char message[sizeof j->seen.message] = "";
    char textbuf[sizeof j->seen.text] = "";
    r.message = message;
    r.text = textbuf;
    bool keep_job = false;

    fl_future_t *cf = NULL;
    int rc = fl_rpc_connect(G.svc, j->address, RG, j->fenced ? &j->token : NULL,
                            &cf);
    if (rc == FL_OK) {
        rc = fl_future_wait(cf, WAIT_MS);
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
    uint64_t t0 = now_ms();
    r.code = make_call(j, gw, req, message, sizeof message, &keep_job);
    r.elapsed_ms = (int64_t)(now_ms() - t0);
    if (r.code == FL_OK) {
        rg_seen_t *s = &j->seen;
        pthread_mutex_lock(&s->mu);
        if (j->style == FLREMOTE__STYLE__STYLE_CLOSURE)
            r.closure_runs = s->runs;
        r.code = s->code;
        snprintf(message, sizeof message, "%s", s->message);
        r.n = s->n;
        r.text_len = s->text_len;
        snprintf(textbuf, sizeof textbuf, "%s", s->text);
        pthread_mutex_unlock(&s->mu);
    }

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
    rg_seen_init(&j->seen, NULL);
    j->answer = closure;
    j->address = strdup(in->address);
    if (in->text_size > 0 && in->text_size <= MAX_SIZE_REPLY)
        j->text = rg_text(in->text_size, 'A');
    else
        j->text = strdup(in->text);
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
                    "[--max-frame BYTES] [--tls CERTDIR]\n");
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
    o.state = &G.store;
    o.on_start = rg_on_start;
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

/* Refuses new CallBacks and fails every parked call and wait with
 * FL_ECANCELED (shutdown). */
static void cancel_parked(void)
{
    pthread_mutex_lock(&G.mu);
    G.stopping = true;
    pthread_mutex_unlock(&G.mu);
    rg_store_cancel(&G.store, FL_ECANCELED, "the peer is shutting down");
}

int main(int argc, char **argv)
{
    const char *port = "0";
    uint32_t max_frame = 0;
    const char *tls_dir = NULL;
    fl_fencing_token_t token;
    memset(token.bytes, 0x5A, sizeof token.bytes);
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--port") == 0)
            port = argv[++i];
        else if (strcmp(argv[i], "--tls") == 0)
            tls_dir = argv[++i];
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

    rg_store_init(&G.store);
    fl_rpc_service_opts_t o = {0};
    o.workers = 2;
    o.default_timeout_ms = 30000;
    o.bind_host = "127.0.0.1";
    o.port = port;
    o.max_frame_size = max_frame;
    o.name = "remote_peer";
    char cert[512], key[512], ca[512];
    fl_rpc_tls_opts_t tls = {.cert_file = cert, .key_file = key, .ca_file = ca};
    if (tls_dir != NULL) {
        snprintf(cert, sizeof cert, "%s/node.crt", tls_dir);
        snprintf(key, sizeof key, "%s/node.key", tls_dir);
        snprintf(ca, sizeof ca, "%s/ca.crt", tls_dir);
        o.tls = &tls;
    }
    int rc = fl_rpc_service_alloc(&o, &G.svc);
    if (rc != FL_OK) {
        printf("error %s %s\n", fl_err_name(rc), fl_rpc_last_message());
        fflush(stdout);
        close(sfd);
        rg_store_fini(&G.store);
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
        (void)rg_store_wait(&G.store, &G.store.started, 3, -1);
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
    rg_store_fini(&G.store);
    close(sfd);
    if (rc != FL_OK)
        return 2;
    return src == FL_OK ? 0 : 1;
}
