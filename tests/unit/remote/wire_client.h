/*
 * wire_client.h - what the remote tests share (hostile_test.c,
 * backpressure_test.c, tests/stress/remote_conns_test.c):
 *
 * - the "calc" endpoint of hostile_gateways.proto (CalcGateway.Add and
 *   .Depth, SideGateway.Neg) and the setup of a server service on
 *   127.0.0.1, port 0;
 * - a well-behaved fling client that calls Add in a loop on its own thread
 *   and checks every reply, and the fixture that starts a server, its
 *   endpoint and that client together;
 * - a raw peer: a plain POSIX socket (blocking, with SO_RCVTIMEO and
 *   SO_SNDTIMEO so nothing hangs) that speaks docs/wire-protocol.md frame
 *   by frame, built and checked with the codec of src/remote/frame.h.
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
/* SO_RCVTIMEO / SO_SNDTIMEO of the raw sockets. */
#define IO_TIMEOUT_MS 10000
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

/* A listening service on 127.0.0.1, any free port, with 2 workers;
 * max_frame and max_queued 0 for the defaults. */
static inline int server_alloc(const char *name, uint32_t max_frame,
                               size_t max_queued, fl_rpc_service_t **out)
{
    fl_rpc_service_opts_t so = {0};
    so.workers = 2;
    so.bind_host = "127.0.0.1";
    so.port = "0";
    so.max_frame_size = max_frame;
    so.max_queued_bytes = max_queued;
    so.name = name;
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
 * fixture_start (fx zeroed by the caller) makes the server `name`
 * (max_frame and max_queued: 0 for the defaults) with endpoint `id`
 * implementing services[0..n), CalcGateway first, started; then a
 * local-only client service, its gateway to the endpoint's CalcGateway and
 * the good client's thread calling it. Returns 0, or -1 having printed
 * why; either way fixture_end ends it. Group setups: never asserts.
 */
static inline int fixture_start(fixture_t *fx, const char *name,
                                uint32_t max_frame, size_t max_queued,
                                const char *id,
                                ProtobufCService *const *services, size_t n)
{
    good_init(&fx->good);
    int rc = server_alloc(name, max_frame, max_queued, &fx->server);
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

/* ---- raw sockets --------------------------------------------------------- */

/* Raw sockets still open, so that a group teardown can close what a failed
 * case left open. */
#define RAW_MAX_FDS 16
typedef struct raw_fds {
    int fd[RAW_MAX_FDS];
    size_t n;
} raw_fds_t;

static inline raw_fds_t *raw_fds(void)
{
    static raw_fds_t fds;
    return &fds;
}

/* Closes fd and forgets it. -1 is a no-op. */
static inline void raw_fd_close(int fd)
{
    if (fd < 0)
        return;
    raw_fds_t *s = raw_fds();
    for (size_t i = 0; i < s->n; i++) {
        if (s->fd[i] == fd) {
            s->fd[i] = s->fd[--s->n];
            break;
        }
    }
    close(fd);
}

/* Closes every raw socket still open. */
static inline void raw_fd_close_all(void)
{
    raw_fds_t *s = raw_fds();
    while (s->n > 0)
        raw_fd_close(s->fd[0]);
}

/* Gives fd send and receive timeouts of IO_TIMEOUT_MS and remembers it. */
static inline void raw_fd_adopt(int fd)
{
    raw_fds_t *s = raw_fds();
    assert_true(s->n < RAW_MAX_FDS);
    s->fd[s->n++] = fd;
    struct timeval tv = {IO_TIMEOUT_MS / 1000, (IO_TIMEOUT_MS % 1000) * 1000};
    assert_int_equal(0,
                     setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    assert_int_equal(0,
                     setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
}

/* A TCP socket with timeouts; rcvbuf > 0 sets SO_RCVBUF (before connect or
 * listen, so that the window is small from the start). */
static inline int raw_socket(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        fail_msg("socket: %s", strerror(errno));
    raw_fd_adopt(fd);
    if (rcvbuf > 0)
        assert_int_equal(
            0, setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf));
    return fd;
}

static inline struct sockaddr_in loopback(int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

/* A raw connection to 127.0.0.1:port with timeouts and TCP_NODELAY. */
static inline int raw_connect(int port, int rcvbuf)
{
    int fd = raw_socket(rcvbuf);
    int one = 1;
    assert_int_equal(
        0, setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    struct sockaddr_in sa = loopback(port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        fail_msg("connect 127.0.0.1:%d: %s", port, strerror(errno));
    return fd;
}

/* A raw listening socket on 127.0.0.1, any free port (*port); rcvbuf as
 * raw_socket (accepted sockets inherit it). accept() on it is bounded by
 * its SO_RCVTIMEO. */
static inline int raw_listen(int rcvbuf, int *port)
{
    int fd = raw_socket(rcvbuf);
    struct sockaddr_in sa = loopback(0);
    assert_int_equal(0, bind(fd, (struct sockaddr *)&sa, sizeof sa));
    assert_int_equal(0, listen(fd, 4));
    socklen_t len = sizeof sa;
    assert_int_equal(0, getsockname(fd, (struct sockaddr *)&sa, &len));
    *port = ntohs(sa.sin_port);
    return fd;
}

/* The local port of a socket. */
static inline int raw_local_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    assert_int_equal(0, getsockname(fd, (struct sockaddr *)&sa, &len));
    return ntohs(sa.sin_port);
}

/* ---- the raw peer: frames ------------------------------------------------ */

/* One end of a raw connection and what its HELLOs say. */
typedef struct raw {
    int fd;
    bool hello_seen;    /* the peer's HELLO has been read */
    uint32_t max_frame; /* the maximum we announce in HELLO */
    const char *name;   /* the name we announce */
    uint32_t peer_max;  /* what the peer's HELLO must announce */
    const char *peer_name;
    const char *endpoint; /* where send_num and expect_usable call */
} raw_t;

/* A raw end on fd: we announce max_frame and name, the peer's HELLO must
 * announce peer_max and peer_name, calls go to endpoint. */
static inline raw_t raw_of(int fd, uint32_t max_frame, const char *name,
                           uint32_t peer_max, const char *peer_name,
                           const char *endpoint)
{
    raw_t r = {fd, false, max_frame, name, peer_max, peer_name, endpoint};
    return r;
}

static inline void raw_close(raw_t *r)
{
    raw_fd_close(r->fd);
    r->fd = -1;
}

typedef struct frame {
    fl__frame_hdr_t h;
    fl__frame_meta_t m; /* its strings point into meta */
    uint8_t *meta;      /* h.meta_len bytes */
    uint8_t *body;      /* h.body_len bytes */
} frame_t;

static inline void frame_clear(frame_t *f)
{
    free(f->meta);
    free(f->body);
    memset(f, 0, sizeof *f);
}

static inline fl__str_t str_of(const char *s)
{
    fl__str_t r = {s, (uint16_t)strlen(s)};
    return r;
}

/* Copies a frame string into buf as a C string. */
static inline const char *str_copy(fl__str_t s, char *buf, size_t n)
{
    snprintf(buf, n, "%.*s", (int)s.len, s.p ? s.p : "");
    return buf;
}

static inline const char *kind_name(unsigned k)
{
    static const char *const names[] = {
        "?",     "HELLO", "CONNECT", "CONNECTED", "INVOKE",
        "REPLY", "ERROR", "PING",    "PONG",      "BYE"};
    return k <= FL__K_BYE ? names[k] : "?";
}

/* A one-line description of a received frame, for failure messages. */
static inline const char *describe(const frame_t *f, char *buf, size_t n)
{
    if (f->h.kind == FL__K_ERROR) {
        char msg[FL__ERRMSG_MAX + 1];
        snprintf(buf, n, "ERROR %s (%u) corr %llu \"%s\"",
                 fl_err_name((int)f->m.code), (unsigned)f->m.code,
                 (unsigned long long)f->h.corr,
                 str_copy(f->m.message, msg, sizeof msg));
    } else {
        snprintf(buf, n, "%s corr %llu (meta %u, body %u bytes)",
                 kind_name(f->h.kind), (unsigned long long)f->h.corr,
                 (unsigned)f->h.meta_len, (unsigned)f->h.body_len);
    }
    return buf;
}

/* Sends all n bytes (fails the test on error or timeout). */
static inline void raw_send(raw_t *r, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t rc = send(r->fd, b, n, MSG_NOSIGNAL);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            fail_msg("send: %s", rc < 0 ? strerror(errno) : "sent nothing");
        b += rc;
        n -= (size_t)rc;
    }
}

/* Reads up to n bytes: returns n, or fewer if the peer closed first (EOF
 * or ECONNRESET). Fails the test on a timeout or another error. */
static inline size_t raw_recv_upto(raw_t *r, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t rc = recv(r->fd, buf + got, n - got, 0);
        if (rc > 0) {
            got += (size_t)rc;
            continue;
        }
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            fail_msg("nothing from the peer in %d ms (%zu of %zu bytes "
                     "read)",
                     IO_TIMEOUT_MS, got, n);
        if (rc < 0 && errno != ECONNRESET)
            fail_msg("recv: %s", strerror(errno));
        break;
    }
    return got;
}

enum { RD_FRAME = 1, RD_CLOSED = 2 };

/* Reads exactly n bytes. Returns RD_FRAME, or RD_CLOSED if the peer closed
 * (EOF or ECONNRESET) before the first byte and at_start; fails the test
 * on a timeout, another error, or a close inside the frame. */
static inline int read_exact(raw_t *r, uint8_t *buf, size_t n, bool at_start)
{
    size_t got = raw_recv_upto(r, buf, n);
    if (got == n)
        return RD_FRAME;
    if (got == 0 && at_start)
        return RD_CLOSED;
    fail_msg("the peer closed the connection inside a frame (%zu of %zu "
             "bytes)",
             got, n);
    return RD_CLOSED;
}

/* Reads one frame as it comes. The peer's frames must obey the protocol
 * (our maximum frame size included). */
static inline int read_frame(raw_t *r, frame_t *f)
{
    memset(f, 0, sizeof *f);
    uint8_t hdr[FL__FRAME_HDR];
    if (read_exact(r, hdr, sizeof hdr, true) == RD_CLOSED)
        return RD_CLOSED;
    char why[256] = "";
    int rc = fl__frame_decode_hdr(hdr, sizeof hdr, r->max_frame, &f->h, why,
                                  sizeof why);
    if (rc != FL_OK)
        fail_msg("the peer sent a bad header: %s (%s)", fl_err_name(rc), why);
    f->meta = malloc(f->h.meta_len ? f->h.meta_len : 1);
    f->body = malloc(f->h.body_len ? f->h.body_len : 1);
    assert_non_null(f->meta);
    assert_non_null(f->body);
    read_exact(r, f->meta, f->h.meta_len, false);
    read_exact(r, f->body, f->h.body_len, false);
    rc = fl__frame_decode_meta(&f->h, f->meta, &f->m, why, sizeof why);
    if (rc != FL_OK)
        fail_msg("the peer sent bad %s metadata: %s (%s)", kind_name(f->h.kind),
                 fl_err_name(rc), why);
    return RD_FRAME;
}

/* Builds a frame's bytes: header, metadata (m NULL: none), body. Caller
 * frees. */
static inline uint8_t *frame_bytes(uint8_t kind, uint16_t flags, uint64_t corr,
                                   const fl__frame_meta_t *m, const void *body,
                                   size_t body_len, size_t *out_len)
{
    static uint8_t meta[FL__META_MAX];
    size_t meta_len = 0;
    if (m != NULL) {
        meta_len = fl__frame_encode_meta(kind, flags, m, meta, sizeof meta);
        assert_true(meta_len > 0);
    }
    fl__frame_hdr_t h = {
        FL__PROTO_VERSION, kind, flags, corr, (uint32_t)meta_len,
        (uint32_t)body_len};
    size_t n = FL__FRAME_HDR + meta_len + body_len;
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    fl__frame_encode_hdr(buf, &h);
    if (meta_len != 0)
        memcpy(buf + FL__FRAME_HDR, meta, meta_len);
    if (body_len != 0)
        memcpy(buf + FL__FRAME_HDR + meta_len, body, body_len);
    *out_len = n;
    return buf;
}

static inline void send_frame(raw_t *r, uint8_t kind, uint16_t flags,
                              uint64_t corr, const fl__frame_meta_t *m,
                              const void *body, size_t body_len)
{
    size_t n;
    uint8_t *buf = frame_bytes(kind, flags, corr, m, body, body_len, &n);
    raw_send(r, buf, n);
    free(buf);
}

/* INVOKE metadata for endpoint/service/method (unfenced). */
static inline fl__frame_meta_t invoke_meta(const char *endpoint,
                                           uint32_t service, uint32_t method)
{
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.endpoint = str_of(endpoint);
    m.service_index = service;
    m.method_index = method;
    return m;
}

/* A packed Num; caller frees. */
static inline uint8_t *pack_num(int64_t v, const char *text, size_t *len)
{
    Flhostile__Num n = FLHOSTILE__NUM__INIT;
    n.v = v;
    n.text = (char *)text;
    *len = flhostile__num__get_packed_size(&n);
    uint8_t *b = malloc(*len ? *len : 1);
    assert_non_null(b);
    flhostile__num__pack(&n, b);
    return b;
}

/* The bytes of an INVOKE (flags, corr) of service/method on r->endpoint
 * carrying Num(v, text): *n bytes, of which the last *body_len are the
 * body (body_len may be NULL). Caller frees. */
static inline uint8_t *num_frame(const raw_t *r, uint16_t flags, uint64_t corr,
                                 uint32_t service, uint32_t method, int64_t v,
                                 const char *text, size_t *n, size_t *body_len)
{
    size_t len;
    uint8_t *body = pack_num(v, text, &len);
    fl__frame_meta_t m = invoke_meta(r->endpoint, service, method);
    uint8_t *buf = frame_bytes(FL__K_INVOKE, flags, corr, &m, body, len, n);
    free(body);
    if (body_len != NULL)
        *body_len = len;
    return buf;
}

/* Sends INVOKE (an ask with corr, or a tell with corr 0 and FL__F_TELL). */
static inline void send_invoke(raw_t *r, uint16_t flags, uint64_t corr,
                               const char *endpoint, uint32_t service,
                               uint32_t method, const void *body,
                               size_t body_len)
{
    fl__frame_meta_t m = invoke_meta(endpoint, service, method);
    send_frame(r, FL__K_INVOKE, flags, corr, &m, body, body_len);
}

/* Sends an ask INVOKE of service/method on r->endpoint with Num(v, text). */
static inline void send_num(raw_t *r, uint64_t corr, uint32_t service,
                            uint32_t method, int64_t v, const char *text)
{
    size_t n;
    uint8_t *buf = num_frame(r, 0, corr, service, method, v, text, &n, NULL);
    raw_send(r, buf, n);
    free(buf);
}

/* ---- the raw peer: the protocol ------------------------------------------ */

/* Checks the peer's HELLO: the maximum and name r expects. */
static inline void check_peer_hello(const raw_t *r, const frame_t *f)
{
    char name[FL__NAME_MAX + 1];
    assert_int_equal(FL__K_HELLO, f->h.kind);
    assert_int_equal(r->peer_max, f->m.max_frame);
    assert_string_equal(r->peer_name,
                        str_copy(f->m.service_name, name, sizeof name));
}

/* The next frame that is not the peer's (first) HELLO; a PING from the
 * peer is answered with PONG and skipped. Returns RD_FRAME or
 * RD_CLOSED. */
static inline int next_frame(raw_t *r, frame_t *f)
{
    for (;;) {
        if (read_frame(r, f) == RD_CLOSED)
            return RD_CLOSED;
        if (f->h.kind == FL__K_HELLO && !r->hello_seen) {
            check_peer_hello(r, f);
            r->hello_seen = true;
            frame_clear(f);
            continue;
        }
        if (f->h.kind == FL__K_HELLO)
            fail_msg("the peer sent a second HELLO");
        if (f->h.kind == FL__K_PING) {
            frame_clear(f);
            send_frame(r, FL__K_PONG, 0, 0, NULL, NULL, 0);
            continue;
        }
        return RD_FRAME;
    }
}

/* The next frame; fails the test, saying what was wanted (a `kind` with
 * corr), if the peer closed the connection instead. */
static inline void next_frame_or_fail(raw_t *r, frame_t *f, const char *kind,
                                      uint64_t corr)
{
    if (next_frame(r, f) == RD_CLOSED)
        fail_msg("want %s corr %llu, the peer closed the connection", kind,
                 (unsigned long long)corr);
}

/* Sends our HELLO (announcing r->max_frame and r->name) and reads the
 * peer's unless it has been read. */
static inline void raw_hello(raw_t *r)
{
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.max_frame = r->max_frame;
    m.service_name = str_of(r->name);
    send_frame(r, FL__K_HELLO, 0, 0, &m, NULL, 0);
    if (!r->hello_seen) {
        frame_t f;
        if (read_frame(r, &f) == RD_CLOSED)
            fail_msg("the peer closed the connection instead of HELLO");
        char d[1200];
        if (f.h.kind != FL__K_HELLO)
            fail_msg("want HELLO first, got %s", describe(&f, d, sizeof d));
        check_peer_hello(r, &f);
        r->hello_seen = true;
        frame_clear(&f);
    }
}

static inline void send_connect(raw_t *r, uint64_t corr, const char *endpoint,
                                const char *gateway)
{
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.endpoint = str_of(endpoint);
    m.gateway = str_of(gateway);
    send_frame(r, FL__K_CONNECT, 0, corr, &m, NULL, 0);
}

/* Checks that f is ERROR `code` with a message, and with `corr` unless
 * any_corr; copies the message into msg (may be NULL). */
static inline void check_error(const frame_t *f, int code, uint64_t corr,
                               bool any_corr, char *msg, size_t msg_len)
{
    char d[1200];
    if (f->h.kind != FL__K_ERROR || (int)f->m.code != code ||
        (!any_corr && f->h.corr != corr)) {
        if (any_corr)
            fail_msg("want ERROR %s, got %s", fl_err_name(code),
                     describe(f, d, sizeof d));
        else
            fail_msg("want ERROR %s corr %llu, got %s", fl_err_name(code),
                     (unsigned long long)corr, describe(f, d, sizeof d));
    }
    if (f->m.message.len == 0)
        fail_msg("ERROR %s without a message", fl_err_name(code));
    if (msg != NULL)
        str_copy(f->m.message, msg, msg_len);
}

/* The next frame must be ERROR `code` with `corr`; its message is copied
 * into msg (may be NULL). */
static inline void expect_error(raw_t *r, int code, uint64_t corr, char *msg,
                                size_t msg_len)
{
    frame_t f;
    if (next_frame(r, &f) == RD_CLOSED)
        fail_msg("want ERROR %s corr %llu, the peer closed the connection",
                 fl_err_name(code), (unsigned long long)corr);
    check_error(&f, code, corr, false, msg, msg_len);
    frame_clear(&f);
}

/* The peer must close the connection now: no further frame. */
static inline void expect_closed(raw_t *r)
{
    frame_t f;
    char d[1200];
    if (read_frame(r, &f) != RD_CLOSED)
        fail_msg("want the connection closed, got %s",
                 describe(&f, d, sizeof d));
}

/* A protocol or handshake error: ERROR `code` (any corr: the offending
 * frame may not have a usable one), then the peer closes. */
static inline void expect_error_then_close(raw_t *r, int code, char *msg,
                                           size_t msg_len)
{
    frame_t f;
    if (next_frame(r, &f) == RD_CLOSED)
        fail_msg("want ERROR %s, the peer closed the connection without it",
                 fl_err_name(code));
    check_error(&f, code, 0, true, msg, msg_len);
    frame_clear(&f);
    expect_closed(r);
}

static inline void expect_connected(raw_t *r, uint64_t corr, uint32_t index)
{
    frame_t f;
    char d[1200];
    next_frame_or_fail(r, &f, "CONNECTED", corr);
    if (f.h.kind != FL__K_CONNECTED || f.h.corr != corr ||
        f.m.service_index != index)
        fail_msg("want CONNECTED corr %llu index %u, got %s (index %u)",
                 (unsigned long long)corr, (unsigned)index,
                 describe(&f, d, sizeof d), (unsigned)f.m.service_index);
    frame_clear(&f);
}

/* CONNECT to r->endpoint's gateway with corr: CONNECTED with `index`. */
static inline void raw_attach(raw_t *r, uint64_t corr, const char *gateway,
                              uint32_t index)
{
    send_connect(r, corr, r->endpoint, gateway);
    expect_connected(r, corr, index);
}

/* Checks that f is a REPLY with corr carrying Num(v, text). */
static inline void check_num_reply(const frame_t *f, uint64_t corr, int64_t v,
                                   const char *text)
{
    char d[1200];
    if (f->h.kind != FL__K_REPLY || f->h.corr != corr)
        fail_msg("want REPLY corr %llu, got %s", (unsigned long long)corr,
                 describe(f, d, sizeof d));
    Flhostile__Num *n = flhostile__num__unpack(NULL, f->h.body_len, f->body);
    if (n == NULL)
        fail_msg("REPLY corr %llu: the body (%u bytes) is not a Num",
                 (unsigned long long)corr, (unsigned)f->h.body_len);
    assert_int_equal(v, n->v);
    assert_string_equal(text, n->text);
    flhostile__num__free_unpacked(n, NULL);
}

/* The next frame must be a REPLY with corr carrying Num(v, text). */
static inline void expect_num_reply(raw_t *r, uint64_t corr, int64_t v,
                                    const char *text)
{
    frame_t f;
    next_frame_or_fail(r, &f, "REPLY", corr);
    check_num_reply(&f, corr, v, text);
    frame_clear(&f);
}

/* The connection is still usable: Add(v) with corr is answered v + 1. */
static inline void expect_usable(raw_t *r, uint64_t corr, int64_t v)
{
    char text[32];
    snprintf(text, sizeof text, "raw-%lld", (long long)v);
    send_num(r, corr, CALC_INDEX, M_ADD, v, text);
    expect_num_reply(r, corr, v + 1, text);
}

#endif /* WIRE_CLIENT_H */
