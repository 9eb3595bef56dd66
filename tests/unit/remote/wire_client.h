/*
 * wire_client.h - what the remote tests share (hostile_test.c,
 * backpressure_test.c, tests/stress/remote_conns_test.c):
 *
 * - the "calc" endpoint of hostile_gateways.proto (CalcGateway.Add and
 *   .Depth, SideGateway.Neg) and the setup of a server service on
 *   127.0.0.1, port 0;
 * - a well-behaved fling client that calls Add in a loop on its own thread
 *   and checks every reply, and the fixture that starts a server, its
 *   endpoint and that client together.
 *
 * The raw peer that speaks the protocol frame by frame is wire_raw.h's.
 *
 * Header-only (static inline), like tests/unit/rpc/rpc_fixture.h, because
 * every test is its own program. Helpers whose names start with calc_,
 * server_, service_ and gw_ return codes (group setups may not assert);
 * the others fail the test on anything unexpected and belong to the test's
 * thread.
 */
#ifndef WIRE_CLIENT_H
#define WIRE_CLIENT_H

#include "fl_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "hostile_gateways.pb-c.h"
#include "remote/frame.h"

/* How long a test waits for anything that should happen. */
#define WAIT_MS 20000
/* Timeout of each of the good client's calls. */
#define GOOD_CALL_MS 10000

#define CALC_NAME "flhostile.CalcGateway"
#define SIDE_NAME "flhostile.SideGateway"
#define CALC_INDEX 0u
#define SIDE_INDEX 1u
#define M_ADD 0u   /* CalcGateway.Add */
#define M_DEPTH 1u /* CalcGateway.Depth */
#define M_NEG 0u   /* SideGateway.Neg */

/* A request value a server must never hand to a handler (sent only inside
 * frames it has to reject). */
#define POISON (-777777)

/* ---- the calc endpoint --------------------------------------------------- */

/* The endpoint's state, also each call's (fl_rpc_call_state). */
typedef struct calc {
    atomic_long adds;         /* Add calls handled */
    atomic_int poison_hits;   /* Add or Neg calls that carried POISON */
    fl_test_latch_t *started; /* counted down by on_start */
} calc_t;

/* Add: replies v + 1 and the same text. */
static inline void calc_add(Flhostile__CalcGateway_Service *svc,
                            const Flhostile__Num *in,
                            Flhostile__Num_Closure closure, void *closure_data)
{
    (void)svc;
    calc_t *st = fl_rpc_call_state(closure_data);
    atomic_fetch_add(&st->adds, 1);
    if (in->v == POISON)
        atomic_fetch_add(&st->poison_hits, 1);
    Flhostile__Num r = FLHOSTILE__NUM__INIT;
    r.v = in->v + 1;
    r.text = in->text;
    closure(&r, closure_data);
}

/* Depth: replies v = the number of nested Chain messages. */
static inline void calc_depth(Flhostile__CalcGateway_Service *svc,
                              const Flhostile__Chain *in,
                              Flhostile__Num_Closure closure,
                              void *closure_data)
{
    (void)svc;
    int64_t n = 0;
    for (const Flhostile__Chain *c = in; c != NULL; c = c->next)
        n++;
    Flhostile__Num r = FLHOSTILE__NUM__INIT;
    r.v = n;
    closure(&r, closure_data);
}

/* Neg: replies -v and the same text. */
static inline void side_neg(Flhostile__SideGateway_Service *svc,
                            const Flhostile__Num *in,
                            Flhostile__Num_Closure closure, void *closure_data)
{
    (void)svc;
    calc_t *st = fl_rpc_call_state(closure_data);
    if (in->v == POISON)
        atomic_fetch_add(&st->poison_hits, 1);
    Flhostile__Num r = FLHOSTILE__NUM__INIT;
    r.v = -in->v;
    r.text = in->text;
    closure(&r, closure_data);
}

static inline int calc_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    calc_t *st = state;
    fl_test_latch_count_down(st->started);
    return FL_OK;
}

/* CalcGateway (service index 0) and SideGateway (1). Static: they must
 * outlive the endpoint. */
static inline ProtobufCService *const *calc_services(void)
{
    static Flhostile__CalcGateway_Service calc =
        FLHOSTILE__CALC_GATEWAY__INIT(calc_);
    static Flhostile__SideGateway_Service side =
        FLHOSTILE__SIDE_GATEWAY__INIT(side_);
    static ProtobufCService *const services[2] = {&calc.base, &side.base};
    return services;
}

/*
 * calc_start creates endpoint `id` on svc implementing services[0..n) with
 * state st (zeroed by the caller), starts it and waits (WAIT_MS) until its
 * on_start ran. FL_OK (the caller ends *out with calc_end), or the failing
 * code (FL_ETIMEDOUT: on_start did not run).
 */
static inline int calc_start(fl_rpc_service_t *svc, const char *id, calc_t *st,
                             ProtobufCService *const *services, size_t n,
                             fl_rpc_endpoint_t **out)
{
    st->started = fl_test_latch_alloc(1);
    fl_rpc_endpoint_opts_t eo = {0};
    eo.id = id;
    eo.services = services;
    eo.nservices = n;
    eo.state = st;
    eo.on_start = calc_on_start;
    int rc = fl_rpc_endpoint_create(svc, &eo, out);
    if (rc == FL_OK)
        rc = fl_rpc_endpoint_start(*out);
    if (rc == FL_OK && fl_test_latch_wait(st->started, WAIT_MS) != 0)
        rc = FL_ETIMEDOUT;
    fl_test_latch_free(st->started);
    st->started = NULL;
    return rc;
}

/* Closes ep, waits (WAIT_MS) for its termination and frees it. Returns the
 * termination's code. NULL: FL_OK. */
static inline int calc_end(fl_rpc_endpoint_t *ep)
{
    if (ep == NULL)
        return FL_OK;
    fl_future_t *t = fl_rpc_endpoint_close(ep);
    int rc = t != NULL ? fl_future_wait(t, WAIT_MS) : FL_ENOMEM;
    fl_future_release(t);
    fl_rpc_endpoint_free(ep);
    return rc;
}

/* The options of a listening service on 127.0.0.1, any free port, with 2
 * workers; max_frame and max_queued 0 for the defaults. */
static inline fl_rpc_service_opts_t
server_opts(const char *name, uint32_t max_frame, size_t max_queued)
{
    fl_rpc_service_opts_t so = {0};
    so.workers = 2;
    so.bind_host = "127.0.0.1";
    so.port = "0";
    so.max_frame_size = max_frame;
    so.max_queued_bytes = max_queued;
    so.name = name;
    return so;
}

/* A service with server_opts(name, max_frame, max_queued). */
static inline int server_alloc(const char *name, uint32_t max_frame,
                               size_t max_queued, fl_rpc_service_t **out)
{
    fl_rpc_service_opts_t so = server_opts(name, max_frame, max_queued);
    return fl_rpc_service_alloc(&so, out);
}

/* Shuts svc down and frees it; returns the shutdown's code. NULL: FL_OK. */
static inline int service_end(fl_rpc_service_t *svc)
{
    if (svc == NULL)
        return FL_OK;
    int rc = fl_rpc_service_shutdown(svc);
    fl_rpc_service_free(svc);
    return rc;
}

/* A gateway of svc to the desc service of `address`, connected within
 * WAIT_MS: FL_OK and *out (the caller's), or the code, printed with why. */
static inline int gw_connect(fl_rpc_service_t *svc, const char *address,
                             const ProtobufCServiceDescriptor *desc,
                             fl_rpc_gateway_t **out)
{
    *out = NULL;
    fl_future_t *f = NULL;
    int rc = fl_rpc_connect(svc, address, desc, NULL, &f);
    if (rc == FL_OK) {
        rc = fl_future_wait(f, WAIT_MS);
        if (rc == FL_OK)
            *out = fl_future_take_value(f);
        else
            print_error("connect %s: %s (%s)\n", address, fl_err_name(rc),
                        fl_future_done(f) ? fl_future_message(f)
                                          : "not completed");
        fl_future_release(f);
    }
    return rc;
}

/* ---- the well-behaved client --------------------------------------------- */

typedef struct good {
    fl_rpc_gateway_t *gw; /* the good client's; freed by good_fini */
    pthread_t thread;
    bool running;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Under mu. */
    uint64_t done;     /* calls answered correctly */
    uint64_t failures; /* calls that failed or were answered wrongly */
    char first_failure[512];
} good_t;

/* Readies g (zeroed by the caller) for good_start and good_fini. */
static inline void good_init(good_t *g)
{
    pthread_mutex_init(&g->mu, NULL);
    fl_test_cond_init(&g->cv);
}

static inline void good_record(good_t *g, bool ok, const char *fmt, ...)
    FL_PRINTF(3, 4);

/* Counts one call (correct or not) and wakes waiters. Good thread. */
static inline void good_record(good_t *g, bool ok, const char *fmt, ...)
{
    pthread_mutex_lock(&g->mu);
    if (ok) {
        g->done++;
    } else if (g->failures++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g->first_failure, sizeof g->first_failure, fmt, ap);
        va_end(ap);
    }
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* The good client: Add(i) in a loop until told to stop, checking every
 * reply. Runs on its own thread; records, never asserts (cmocka's asserts
 * belong to the test's thread). */
static inline void *good_main(void *arg)
{
    good_t *g = arg;
    for (int64_t i = 0; !atomic_load(&g->stop); i++) {
        char text[64];
        snprintf(text, sizeof text, "good-%lld", (long long)i);
        Flhostile__Num req = FLHOSTILE__NUM__INIT;
        req.v = i;
        req.text = text;
        ProtobufCMessage *out = NULL;
        int rc = fl_rpc_call_sync(g->gw, M_ADD, &req.base, GOOD_CALL_MS, &out);
        if (rc != FL_OK) {
            good_record(g, false, "call %lld failed: %s (%s)", (long long)i,
                        fl_err_name(rc), fl_rpc_last_message());
            continue;
        }
        const Flhostile__Num *r = (const Flhostile__Num *)out;
        bool right =
            r->v == i + 1 && r->text != NULL && strcmp(r->text, text) == 0;
        good_record(g, right, "call %lld answered v=%lld text=%s", (long long)i,
                    (long long)r->v, r->text ? r->text : "(null)");
        protobuf_c_message_free_unpacked(out, NULL);
    }
    return NULL;
}

/* Starts the good client's thread on g->gw. 0, or -1 if it could not. */
static inline int good_start(good_t *g)
{
    if (pthread_create(&g->thread, NULL, good_main, g) != 0)
        return -1;
    g->running = true;
    return 0;
}

/* Stops the good client's thread and waits for it. Idempotent. */
static inline void good_stop(good_t *g)
{
    if (!g->running)
        return;
    atomic_store(&g->stop, true);
    pthread_join(g->thread, NULL);
    g->running = false;
}

/* Stops the thread, frees the gateway and what good_init made. */
static inline void good_fini(good_t *g)
{
    good_stop(g);
    fl_rpc_gateway_free(g->gw);
    g->gw = NULL;
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

/* The good client's count of correct answers. */
static inline uint64_t good_done(good_t *g)
{
    pthread_mutex_lock(&g->mu);
    uint64_t n = g->done;
    pthread_mutex_unlock(&g->mu);
    return n;
}

/* Waits (at most wait_ms) until the good client has answered `target`
 * calls correctly, failing the test otherwise or on any wrong answer. */
static inline void good_wait(good_t *g, uint64_t target, int wait_ms)
{
    struct timespec ts = fl_test_deadline(wait_ms);
    pthread_mutex_lock(&g->mu);
    int rc = 0;
    while (g->done < target && g->failures == 0 && rc == 0)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    uint64_t done = g->done, failures = g->failures;
    char first[sizeof g->first_failure];
    memcpy(first, g->first_failure, sizeof first);
    pthread_mutex_unlock(&g->mu);
    if (failures != 0)
        fail_msg("the good client got %llu wrong answers; first: %s",
                 (unsigned long long)failures, first);
    if (done < target)
        fail_msg("the good client completed %llu calls, want %llu within %d "
                 "ms",
                 (unsigned long long)done, (unsigned long long)target, wait_ms);
}

/* ---- the fixture: a server, its calc endpoint, a good client ------------- */

typedef struct fixture {
    fl_rpc_service_t *server;
    fl_rpc_endpoint_t *ep;
    int port;
    calc_t calc;              /* the endpoint's state */
    fl_rpc_service_t *client; /* the good client's service */
    good_t good;
    /* Set before fixture_start_opts: the good client's TLS (NULL: none). */
    const fl_rpc_tls_opts_t *client_tls;
} fixture_t;

/* Ends what fixture_start made (after fixture_start, also a failed one):
 * the good client, its service, the endpoint, the server. */
static inline void fixture_end(fixture_t *fx)
{
    good_fini(&fx->good);
    (void)service_end(fx->client);
    (void)calc_end(fx->ep);
    (void)service_end(fx->server);
}

/*
 * fixture_start_opts (fx zeroed by the caller) makes the server with
 * options so (server_opts, and more) with endpoint `id`
 * implementing services[0..n), CalcGateway first, started; then a
 * local-only client service (with fx->client_tls), its gateway to the
 * endpoint's CalcGateway and the good client's thread calling it. Returns 0, or
 * -1 having printed why; either way fixture_end ends it. Group setups: never
 * asserts.
 */
static inline int
fixture_start_opts(fixture_t *fx, const fl_rpc_service_opts_t *so,
                   const char *id, ProtobufCService *const *services, size_t n)
{
    good_init(&fx->good);
    int rc = fl_rpc_service_alloc(so, &fx->server);
    if (rc != FL_OK) {
        print_error("server: fl_rpc_service_alloc: %s (%s)\n", fl_err_name(rc),
                    fl_rpc_last_message());
        return -1;
    }
    fx->port = fl_rpc_service_port(fx->server);
    if (fx->port <= 0 || fx->port > 65535) {
        print_error("server: fl_rpc_service_port gave %d\n", fx->port);
        return -1;
    }
    rc = calc_start(fx->server, id, &fx->calc, services, n, &fx->ep);
    if (rc != FL_OK) {
        print_error("endpoint: %s\n", fl_err_name(rc));
        return -1;
    }
    fl_rpc_service_opts_t co = {0};
    co.workers = 2;
    co.name = "good-client";
    co.tls = fx->client_tls;
    rc = fl_rpc_service_alloc(&co, &fx->client);
    if (rc != FL_OK) {
        print_error("client: fl_rpc_service_alloc: %s\n", fl_err_name(rc));
        return -1;
    }
    rc = gw_connect(fx->client, fl_rpc_endpoint_address(fx->ep),
                    &flhostile__calc_gateway__descriptor, &fx->good.gw);
    if (rc != FL_OK || good_start(&fx->good) != 0)
        return -1;
    return 0;
}

/* fixture_start_opts with server_opts(name, max_frame, max_queued). */
static inline int fixture_start(fixture_t *fx, const char *name,
                                uint32_t max_frame, size_t max_queued,
                                const char *id,
                                ProtobufCService *const *services, size_t n)
{
    fl_rpc_service_opts_t so = server_opts(name, max_frame, max_queued);
    return fixture_start_opts(fx, &so, id, services, n);
}

#endif /* WIRE_CLIENT_H */
