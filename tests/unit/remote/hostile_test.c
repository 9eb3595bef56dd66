/*
 * hostile_test.c - a fling RPC server against a hostile client
 * (docs/wire-protocol.md; issue 4, "Tests").
 *
 * One in-process RPC service listens on 127.0.0.1, port 0, with one
 * endpoint ("calc") implementing flhostile.CalcGateway and
 * flhostile.SideGateway. For the whole session a well-behaved fling client
 * (a second RPC service in the same process, connected with fl_rpc_connect
 * to the endpoint's address) makes calls in a loop on its own thread and
 * checks every reply. Each case is one hostile step on its own raw socket
 * (plain POSIX, blocking, with SO_RCVTIMEO/SO_SNDTIMEO so nothing hangs),
 * and asserts exactly what the protocol document says comes back:
 *
 * - framing errors (garbage, a 4 GiB body, unknown flag bits, broken
 *   metadata, a REPLY or ERROR whose corr matches nothing): ERROR with the
 *   code (FL_EPROTO, FL_EMSGSIZE), then the server closes the connection;
 * - handshake errors (a wrong version in HELLO, another frame first): ERROR
 *   FL_EHANDSHAKE, then close;
 * - per-request errors (CONNECT to an unknown endpoint or with an
 *   unsupported gateway; INVOKE to an unknown endpoint, method or service,
 *   with a body that does not decode or nests too deep): ERROR with the
 *   code and the request's corr, and the connection stays usable (the next
 *   INVOKE is answered with a REPLY).
 *
 * After every step the good client must have completed GOOD_PER_STEP more
 * calls, all correct, a fresh raw connection must still get through the
 * handshake and a call, and no request marked POISON (sent only inside
 * frames the server must reject) may have reached the handler. The cases
 * share the server and the good client (one hostile session) and run in
 * order; the last one stops the good client and terminates the endpoint,
 * then checks again that no poisoned request ever ran.
 */
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

/* How long the test waits for anything that should happen. */
#define WAIT_MS 20000
/* SO_RCVTIMEO / SO_SNDTIMEO of the raw sockets. */
#define IO_TIMEOUT_MS 10000
/* Timeout of each of the good client's calls. */
#define GOOD_CALL_MS 10000
/* Calls the good client must complete after each hostile step begins. */
#define GOOD_PER_STEP 20

/* The server's and the raw client's maximum frame sizes. */
#define SERVER_MAX (1024u * 1024u)
#define CLIENT_MAX (1024u * 1024u)
#define SERVER_NAME "hostile-server"
#define CLIENT_NAME "hostile-client"

#define EP_ID "calc"
#define CALC_NAME "flhostile.CalcGateway"
#define SIDE_NAME "flhostile.SideGateway"
#define CALC_INDEX 0u
#define SIDE_INDEX 1u
#define M_ADD 0u   /* CalcGateway.Add */
#define M_DEPTH 1u /* CalcGateway.Depth */
#define M_NEG 0u   /* SideGateway.Neg */

/* A request value the server must never hand to a handler. */
#define POISON (-777777)

/* The nesting depth the server accepts from the wire
 * (docs/wire-protocol.md, "Protocol errors"; src/remote/pbdepth.h). */
#define MAX_DEPTH 64u

/* Requests whose frames the server must reject but which reached Add. */
static atomic_int poison_hits;

/* ---- the endpoint -------------------------------------------------------- */

static void calc_add(Flhostile__CalcGateway_Service *svc,
                     const Flhostile__Num *in, Flhostile__Num_Closure closure,
                     void *closure_data)
{
    (void)svc;
    if (in->v == POISON)
        atomic_fetch_add(&poison_hits, 1);
    Flhostile__Num r = FLHOSTILE__NUM__INIT;
    r.v = in->v + 1;
    r.text = in->text;
    closure(&r, closure_data);
}

static void calc_depth(Flhostile__CalcGateway_Service *svc,
                       const Flhostile__Chain *in,
                       Flhostile__Num_Closure closure, void *closure_data)
{
    (void)svc;
    int64_t n = 0;
    for (const Flhostile__Chain *c = in; c != NULL; c = c->next)
        n++;
    Flhostile__Num r = FLHOSTILE__NUM__INIT;
    r.v = n;
    closure(&r, closure_data);
}

static void side_neg(Flhostile__SideGateway_Service *svc,
                     const Flhostile__Num *in, Flhostile__Num_Closure closure,
                     void *closure_data)
{
    (void)svc;
    if (in->v == POISON)
        atomic_fetch_add(&poison_hits, 1);
    Flhostile__Num r = FLHOSTILE__NUM__INIT;
    r.v = -in->v;
    r.text = in->text;
    closure(&r, closure_data);
}

static int calc_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    fl_test_latch_count_down(state);
    return FL_OK;
}

/* The endpoint's services (static: they must outlive the endpoint). */
static ProtobufCService *const *calc_services(void)
{
    static Flhostile__CalcGateway_Service calc =
        FLHOSTILE__CALC_GATEWAY__INIT(calc_);
    static Flhostile__SideGateway_Service side =
        FLHOSTILE__SIDE_GATEWAY__INIT(side_);
    static ProtobufCService *const services[2] = {&calc.base, &side.base};
    return services;
}

/* ---- the well-behaved client --------------------------------------------- */

typedef struct good {
    fl_rpc_gateway_t *gw;
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

static void good_record(good_t *g, bool ok, const char *fmt, ...)
    FL_PRINTF(3, 4);

/* Counts one call (correct or not) and wakes waiters. Good thread. */
static void good_record(good_t *g, bool ok, const char *fmt, ...)
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
static void *good_main(void *arg)
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

/* The good client's count of correct answers. */
static uint64_t good_done(good_t *g)
{
    pthread_mutex_lock(&g->mu);
    uint64_t n = g->done;
    pthread_mutex_unlock(&g->mu);
    return n;
}

/* Waits (at most WAIT_MS) until the good client has answered `target`
 * calls correctly, failing the test otherwise or on any wrong answer. */
static void good_wait(good_t *g, uint64_t target)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += WAIT_MS / 1000;
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
                 (unsigned long long)done, (unsigned long long)target, WAIT_MS);
}

/* ---- the fixture: server, endpoint, good client -------------------------- */

typedef struct fixture {
    fl_rpc_service_t *server;
    fl_rpc_endpoint_t *ep;
    int port;
    fl_rpc_service_t *client;
    good_t good;
} fixture_t;

/* Raw sockets still open (closed by the group teardown if a case failed
 * before closing its own). */
#define MAX_OPEN_FDS 16
static int open_fds[MAX_OPEN_FDS];
static size_t n_open_fds;

static void fixture_free(fixture_t *fx)
{
    if (fx->good.running) {
        atomic_store(&fx->good.stop, true);
        pthread_join(fx->good.thread, NULL);
        fx->good.running = false;
    }
    fl_rpc_gateway_free(fx->good.gw);
    if (fx->client != NULL) {
        (void)fl_rpc_service_shutdown(fx->client);
        fl_rpc_service_free(fx->client);
    }
    if (fx->ep != NULL) {
        fl_future_t *t = fl_rpc_endpoint_close(fx->ep);
        if (t != NULL)
            (void)fl_future_wait(t, WAIT_MS);
        fl_future_release(t);
        fl_rpc_endpoint_free(fx->ep);
    }
    if (fx->server != NULL) {
        (void)fl_rpc_service_shutdown(fx->server);
        fl_rpc_service_free(fx->server);
    }
    pthread_mutex_destroy(&fx->good.mu);
    pthread_cond_destroy(&fx->good.cv);
    free(fx);
}

/* Group setup: the server, its started endpoint, the good client and its
 * thread. Returns 0, or -1 (printing why) if any of it fails. */
static int fixture_setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    pthread_mutex_init(&fx->good.mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&fx->good.cv, &a);
    pthread_condattr_destroy(&a);

    fl_rpc_service_opts_t so = {0};
    so.workers = 2;
    so.bind_host = "127.0.0.1";
    so.port = "0";
    so.max_frame_size = SERVER_MAX;
    so.name = SERVER_NAME;
    int rc = fl_rpc_service_alloc(&so, &fx->server);
    if (rc != FL_OK) {
        print_error("server: fl_rpc_service_alloc: %s (%s)\n", fl_err_name(rc),
                    fl_rpc_last_message());
        goto fail;
    }
    fx->port = fl_rpc_service_port(fx->server);
    if (fx->port <= 0 || fx->port > 65535) {
        print_error("server: fl_rpc_service_port gave %d\n", fx->port);
        goto fail;
    }

    fl_test_latch_t *started = fl_test_latch_alloc(1);
    fl_rpc_endpoint_opts_t eo = {0};
    eo.id = EP_ID;
    eo.services = calc_services();
    eo.nservices = 2;
    eo.state = started;
    eo.on_start = calc_on_start;
    rc = fl_rpc_endpoint_create(fx->server, &eo, &fx->ep);
    if (rc == FL_OK)
        rc = fl_rpc_endpoint_start(fx->ep);
    if (rc == FL_OK && fl_test_latch_wait(started, WAIT_MS) != 0)
        rc = FL_ETIMEDOUT;
    fl_test_latch_free(started);
    if (rc != FL_OK) {
        print_error("endpoint: %s\n", fl_err_name(rc));
        goto fail;
    }

    fl_rpc_service_opts_t co = {0};
    co.workers = 2;
    co.name = "good-client";
    rc = fl_rpc_service_alloc(&co, &fx->client);
    if (rc != FL_OK) {
        print_error("client: fl_rpc_service_alloc: %s\n", fl_err_name(rc));
        goto fail;
    }
    fl_future_t *f = NULL;
    rc = fl_rpc_connect(fx->client, fl_rpc_endpoint_address(fx->ep),
                        &flhostile__calc_gateway__descriptor, NULL, &f);
    if (rc == FL_OK) {
        rc = fl_future_wait(f, WAIT_MS);
        if (rc == FL_OK)
            fx->good.gw = fl_future_take_value(f);
        else
            print_error("connect %s: %s (%s)\n",
                        fl_rpc_endpoint_address(fx->ep), fl_err_name(rc),
                        fl_future_done(f) ? fl_future_message(f)
                                          : "not completed");
        fl_future_release(f);
    }
    if (rc != FL_OK)
        goto fail;
    if (pthread_create(&fx->good.thread, NULL, good_main, &fx->good) != 0)
        goto fail;
    fx->good.running = true;
    *state = fx;
    return 0;

fail:
    fixture_free(fx);
    return -1;
}

/* Group teardown: closes what a failed case left open, ends the good
 * client and the server. (The session's verdict is the last case's: cmocka
 * 1.1 does not fail the run for a failed group teardown.) */
static int fixture_teardown(void **state)
{
    for (size_t i = 0; i < n_open_fds; i++)
        close(open_fds[i]);
    n_open_fds = 0;
    if (*state != NULL)
        fixture_free(*state);
    return 0;
}

/* ---- the raw client: bytes ------------------------------------------------
 */

typedef struct raw {
    int fd;
    bool hello_seen;    /* the server's HELLO has been read */
    uint32_t max_frame; /* the maximum we announce in HELLO */
} raw_t;

typedef struct frame {
    fl__frame_hdr_t h;
    fl__frame_meta_t m; /* its strings point into meta */
    uint8_t *meta;      /* h.meta_len bytes */
    uint8_t *body;      /* h.body_len bytes */
} frame_t;

static void frame_clear(frame_t *f)
{
    free(f->meta);
    free(f->body);
    memset(f, 0, sizeof *f);
}

static fl__str_t str_of(const char *s)
{
    fl__str_t r = {s, (uint16_t)strlen(s)};
    return r;
}

/* Copies a frame string into buf as a C string. */
static const char *str_copy(fl__str_t s, char *buf, size_t n)
{
    snprintf(buf, n, "%.*s", (int)s.len, s.p ? s.p : "");
    return buf;
}

static const char *kind_name(unsigned k)
{
    static const char *const names[] = {
        "?",     "HELLO", "CONNECT", "CONNECTED", "INVOKE",
        "REPLY", "ERROR", "PING",    "PONG",      "BYE"};
    return k <= FL__K_BYE ? names[k] : "?";
}

/* A one-line description of a received frame, for failure messages. */
static const char *describe(const frame_t *f, char *buf, size_t n)
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

/* Opens a raw connection to the server with send and receive timeouts. */
static raw_t raw_open(const fixture_t *fx)
{
    raw_t r = {-1, false, CLIENT_MAX};
    r.fd = socket(AF_INET, SOCK_STREAM, 0);
    if (r.fd < 0)
        fail_msg("socket: %s", strerror(errno));
    assert_true(n_open_fds < MAX_OPEN_FDS);
    open_fds[n_open_fds++] = r.fd;
    struct timeval tv = {IO_TIMEOUT_MS / 1000, (IO_TIMEOUT_MS % 1000) * 1000};
    assert_int_equal(0,
                     setsockopt(r.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    assert_int_equal(0,
                     setsockopt(r.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
    int one = 1;
    assert_int_equal(
        0, setsockopt(r.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)fx->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(r.fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        fail_msg("connect 127.0.0.1:%d: %s", fx->port, strerror(errno));
    return r;
}

static void raw_close(raw_t *r)
{
    if (r->fd < 0)
        return;
    for (size_t i = 0; i < n_open_fds; i++) {
        if (open_fds[i] == r->fd) {
            open_fds[i] = open_fds[--n_open_fds];
            break;
        }
    }
    close(r->fd);
    r->fd = -1;
}

/* Sends all n bytes (fails the test on error or timeout). */
static void raw_send(raw_t *r, const void *p, size_t n)
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

enum { RD_FRAME = 1, RD_CLOSED = 2 };

/* Reads exactly n bytes. Returns RD_FRAME, or RD_CLOSED if the server
 * closed (EOF or ECONNRESET) before the first byte and at_start; fails the
 * test on a timeout, another error, or a close inside the frame. */
static int read_exact(raw_t *r, uint8_t *buf, size_t n, bool at_start)
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
            fail_msg("nothing from the server in %d ms (%zu of %zu bytes "
                     "read)",
                     IO_TIMEOUT_MS, got, n);
        if (rc < 0 && errno != ECONNRESET)
            fail_msg("recv: %s", strerror(errno));
        if (got == 0 && at_start)
            return RD_CLOSED;
        fail_msg("the server closed the connection inside a frame (%zu of "
                 "%zu bytes)",
                 got, n);
    }
    return RD_FRAME;
}

/* Reads one frame as it comes. The server's frames must obey the protocol
 * (our maximum frame size included). */
static int read_frame(raw_t *r, frame_t *f)
{
    memset(f, 0, sizeof *f);
    uint8_t hdr[FL__FRAME_HDR];
    if (read_exact(r, hdr, sizeof hdr, true) == RD_CLOSED)
        return RD_CLOSED;
    char why[256] = "";
    int rc = fl__frame_decode_hdr(hdr, sizeof hdr, r->max_frame, &f->h, why,
                                  sizeof why);
    if (rc != FL_OK)
        fail_msg("the server sent a bad header: %s (%s)", fl_err_name(rc), why);
    f->meta = malloc(f->h.meta_len ? f->h.meta_len : 1);
    f->body = malloc(f->h.body_len ? f->h.body_len : 1);
    assert_non_null(f->meta);
    assert_non_null(f->body);
    read_exact(r, f->meta, f->h.meta_len, false);
    read_exact(r, f->body, f->h.body_len, false);
    rc = fl__frame_decode_meta(&f->h, f->meta, &f->m, why, sizeof why);
    if (rc != FL_OK)
        fail_msg("the server sent bad %s metadata: %s (%s)",
                 kind_name(f->h.kind), fl_err_name(rc), why);
    return RD_FRAME;
}

/* Builds a frame's bytes: header, metadata (m NULL: none), body. Caller
 * frees. */
static uint8_t *frame_bytes(uint8_t kind, uint16_t flags, uint64_t corr,
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

static void send_frame(raw_t *r, uint8_t kind, uint16_t flags, uint64_t corr,
                       const fl__frame_meta_t *m, const void *body,
                       size_t body_len)
{
    size_t n;
    uint8_t *buf = frame_bytes(kind, flags, corr, m, body, body_len, &n);
    raw_send(r, buf, n);
    free(buf);
}

/* INVOKE metadata for endpoint/service/method (unfenced). */
static fl__frame_meta_t invoke_meta(const char *endpoint, uint32_t service,
                                    uint32_t method)
{
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.endpoint = str_of(endpoint);
    m.service_index = service;
    m.method_index = method;
    return m;
}

/* A packed Num; caller frees. */
static uint8_t *pack_num(int64_t v, const char *text, size_t *len)
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

/* A packed Chain of `depth` nested messages (depth 1: just the request);
 * caller frees. */
static uint8_t *pack_chain(unsigned depth, size_t *len)
{
    Flhostile__Chain *c = calloc(depth, sizeof *c);
    assert_non_null(c);
    for (unsigned i = 0; i < depth; i++) {
        flhostile__chain__init(&c[i]);
        c[i].v = i;
        if (i + 1 < depth)
            c[i].next = &c[i + 1];
    }
    *len = flhostile__chain__get_packed_size(&c[0]);
    uint8_t *b = malloc(*len ? *len : 1);
    assert_non_null(b);
    flhostile__chain__pack(&c[0], b);
    free(c);
    return b;
}

/*
 * A packed Chain nested `depth` levels deep, built from the inside out
 * without recursion (protobuf-c's packer recurses, and this is deeper than
 * any stack should take): v = 1 innermost, then field 1 (next) wrapped
 * around it depth - 1 times. Caller frees.
 */
static uint8_t *deep_chain(unsigned depth, size_t *len)
{
    size_t cap = (size_t)depth * 6 + 16;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    size_t at = cap;
    buf[--at] = 0x01; /* v = 1 */
    buf[--at] = 0x10; /* field 2, varint */
    for (unsigned i = 1; i < depth; i++) {
        size_t inner = cap - at;
        uint8_t v[10];
        size_t n = 0;
        do {
            v[n] = (uint8_t)(inner & 0x7f);
            inner >>= 7;
            if (inner != 0)
                v[n] |= 0x80;
            n++;
        } while (inner != 0);
        at -= n;
        memcpy(buf + at, v, n);
        buf[--at] = 0x0a; /* field 1, length-delimited */
    }
    *len = cap - at;
    memmove(buf, buf + at, *len);
    return buf;
}

/* Sends INVOKE (an ask with corr, or a tell with corr 0 and FL__F_TELL). */
static void send_invoke(raw_t *r, uint16_t flags, uint64_t corr,
                        const char *endpoint, uint32_t service, uint32_t method,
                        const void *body, size_t body_len)
{
    fl__frame_meta_t m = invoke_meta(endpoint, service, method);
    send_frame(r, FL__K_INVOKE, flags, corr, &m, body, body_len);
}

/* Sends an ask INVOKE of service/method on "calc" with Num(v, text). */
static void send_num(raw_t *r, uint64_t corr, uint32_t service, uint32_t method,
                     int64_t v, const char *text)
{
    size_t len;
    uint8_t *body = pack_num(v, text, &len);
    send_invoke(r, 0, corr, EP_ID, service, method, body, len);
    free(body);
}

/* ---- the raw client: the protocol -----------------------------------------
 */

/* Checks the server's HELLO: our configured maximum and name. */
static void check_server_hello(const frame_t *f)
{
    char name[FL__NAME_MAX + 1];
    assert_int_equal(FL__K_HELLO, f->h.kind);
    assert_int_equal(SERVER_MAX, f->m.max_frame);
    assert_string_equal(SERVER_NAME,
                        str_copy(f->m.service_name, name, sizeof name));
}

/* The next frame that is not the server's (first) HELLO; a PING from the
 * server is answered with PONG and skipped. Returns RD_FRAME or
 * RD_CLOSED. */
static int next_frame(raw_t *r, frame_t *f)
{
    for (;;) {
        if (read_frame(r, f) == RD_CLOSED)
            return RD_CLOSED;
        if (f->h.kind == FL__K_HELLO && !r->hello_seen) {
            check_server_hello(f);
            r->hello_seen = true;
            frame_clear(f);
            continue;
        }
        if (f->h.kind == FL__K_HELLO)
            fail_msg("the server sent a second HELLO");
        if (f->h.kind == FL__K_PING) {
            frame_clear(f);
            send_frame(r, FL__K_PONG, 0, 0, NULL, NULL, 0);
            continue;
        }
        return RD_FRAME;
    }
}

/* Sends our HELLO (announcing r->max_frame) and reads the server's. */
static void raw_hello(raw_t *r)
{
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.max_frame = r->max_frame;
    m.service_name = str_of(CLIENT_NAME);
    send_frame(r, FL__K_HELLO, 0, 0, &m, NULL, 0);
    if (!r->hello_seen) {
        frame_t f;
        if (read_frame(r, &f) == RD_CLOSED)
            fail_msg("the server closed the connection instead of HELLO");
        char d[1200];
        if (f.h.kind != FL__K_HELLO)
            fail_msg("want HELLO first, got %s", describe(&f, d, sizeof d));
        check_server_hello(&f);
        r->hello_seen = true;
        frame_clear(&f);
    }
}

static void send_connect(raw_t *r, uint64_t corr, const char *endpoint,
                         const char *gateway)
{
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.endpoint = str_of(endpoint);
    m.gateway = str_of(gateway);
    send_frame(r, FL__K_CONNECT, 0, corr, &m, NULL, 0);
}

/* The next frame must be ERROR `code` with `corr`; its message is copied
 * into msg (may be NULL). */
static void expect_error(raw_t *r, int code, uint64_t corr, char *msg,
                         size_t msg_len)
{
    frame_t f;
    char d[1200];
    if (next_frame(r, &f) == RD_CLOSED)
        fail_msg("want ERROR %s corr %llu, the server closed the connection",
                 fl_err_name(code), (unsigned long long)corr);
    if (f.h.kind != FL__K_ERROR || (int)f.m.code != code || f.h.corr != corr)
        fail_msg("want ERROR %s corr %llu, got %s", fl_err_name(code),
                 (unsigned long long)corr, describe(&f, d, sizeof d));
    if (f.m.message.len == 0)
        fail_msg("ERROR %s without a message", fl_err_name(code));
    if (msg != NULL)
        str_copy(f.m.message, msg, msg_len);
    frame_clear(&f);
}

/* The server must close the connection now: no further frame. */
static void expect_closed(raw_t *r)
{
    frame_t f;
    char d[1200];
    if (read_frame(r, &f) != RD_CLOSED)
        fail_msg("want the connection closed, got %s",
                 describe(&f, d, sizeof d));
}

/* A protocol or handshake error: ERROR `code` (any corr: the offending
 * frame may not have a usable one), then the server closes. */
static void expect_error_then_close(raw_t *r, int code, char *msg,
                                    size_t msg_len)
{
    frame_t f;
    char d[1200];
    if (next_frame(r, &f) == RD_CLOSED)
        fail_msg("want ERROR %s, the server closed the connection without it",
                 fl_err_name(code));
    if (f.h.kind != FL__K_ERROR || (int)f.m.code != code)
        fail_msg("want ERROR %s, got %s", fl_err_name(code),
                 describe(&f, d, sizeof d));
    if (f.m.message.len == 0)
        fail_msg("ERROR %s without a message", fl_err_name(code));
    if (msg != NULL)
        str_copy(f.m.message, msg, msg_len);
    frame_clear(&f);
    expect_closed(r);
}

static void expect_connected(raw_t *r, uint64_t corr, uint32_t index)
{
    frame_t f;
    char d[1200];
    if (next_frame(r, &f) == RD_CLOSED)
        fail_msg("want CONNECTED corr %llu, the server closed the connection",
                 (unsigned long long)corr);
    if (f.h.kind != FL__K_CONNECTED || f.h.corr != corr ||
        f.m.service_index != index)
        fail_msg("want CONNECTED corr %llu index %u, got %s (index %u)",
                 (unsigned long long)corr, (unsigned)index,
                 describe(&f, d, sizeof d), (unsigned)f.m.service_index);
    frame_clear(&f);
}

/* Checks that f is a REPLY with corr carrying Num(v, text). */
static void check_num_reply(const frame_t *f, uint64_t corr, int64_t v,
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
static void expect_num_reply(raw_t *r, uint64_t corr, int64_t v,
                             const char *text)
{
    frame_t f;
    if (next_frame(r, &f) == RD_CLOSED)
        fail_msg("want REPLY corr %llu, the server closed the connection",
                 (unsigned long long)corr);
    check_num_reply(&f, corr, v, text);
    frame_clear(&f);
}

/* The connection is still usable: Add(v) with corr is answered v + 1. */
static void expect_usable(raw_t *r, uint64_t corr, int64_t v)
{
    char text[32];
    snprintf(text, sizeof text, "raw-%lld", (long long)v);
    send_num(r, corr, CALC_INDEX, M_ADD, v, text);
    expect_num_reply(r, corr, v + 1, text);
}

/* A raw connection through HELLO and CONNECT (calc, CalcGateway). */
static raw_t raw_session(const fixture_t *fx)
{
    raw_t r = raw_open(fx);
    raw_hello(&r);
    send_connect(&r, 1, EP_ID, CALC_NAME);
    expect_connected(&r, 1, CALC_INDEX);
    return r;
}

/* ---- steps -----------------------------------------------------------------
 */

/* Every case starts with this: the good client's count so far. */
static uint64_t step_begin(fixture_t *fx)
{
    return good_done(&fx->good);
}

/*
 * Every case ends with this: the good client completed GOOD_PER_STEP more
 * calls since `mark`, all correct; then one more call, made after
 * everything the hostile step sent was answered or refused, so that any
 * poisoned request the server wrongly dispatched has run by now (the
 * endpoint's mailbox is FIFO); no poisoned request ran; and a fresh raw
 * connection still gets through the handshake and a call.
 */
static void step_end(fixture_t *fx, uint64_t mark)
{
    good_wait(&fx->good, mark + GOOD_PER_STEP);
    good_wait(&fx->good, good_done(&fx->good) + 2);
    assert_int_equal(0, atomic_load(&poison_hits));
    raw_t r = raw_session(fx);
    expect_usable(&r, 900, 41);
    raw_close(&r);
}

/* ---- cases ------------------------------------------------------------------
 */

static void test_endpoint_address_and_good_client(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    char want[128];
    snprintf(want, sizeof want, "fling.tcp://127.0.0.1:%d/" EP_ID, fx->port);
    assert_string_equal(want, fl_rpc_endpoint_address(fx->ep));
    step_end(fx, mark);
}

static void test_garbage_http_request_is_a_protocol_error(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_open(fx);
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "User-Agent: hostile\r\n\r\n";
    raw_send(&r, req, sizeof req - 1);
    expect_error_then_close(&r, FL_EPROTO, NULL, 0);
    raw_close(&r);
    step_end(fx, mark);
}

static void test_garbage_bytes_are_a_protocol_error(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_open(fx);
    uint8_t junk[256];
    uint32_t x = 0x9e3779b9u;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1664525u + 1013904223u;
        junk[i] = (uint8_t)(x >> 24);
    }
    junk[0] = 0x00; /* not 'F': the magic is wrong from the first byte */
    raw_send(&r, junk, sizeof junk);
    expect_error_then_close(&r, FL_EPROTO, NULL, 0);
    raw_close(&r);
    step_end(fx, mark);
}

/* A frame cut inside its header, then a full close: nothing can come back;
 * the server must drop the connection (and the half frame) and serve on. */
static void test_truncated_header_then_close(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    size_t len, n;
    uint8_t *body = pack_num(POISON, "truncated", &len);
    fl__frame_meta_t m = invoke_meta(EP_ID, CALC_INDEX, M_ADD);
    uint8_t *buf = frame_bytes(FL__K_INVOKE, 0, 7, &m, body, len, &n);
    raw_send(&r, buf, FL__FRAME_HDR / 2);
    raw_close(&r);
    free(buf);
    free(body);
    step_end(fx, mark);
}

/* A frame cut inside its body, then a full close. */
static void test_truncated_body_then_close(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    size_t len, n;
    uint8_t *body = pack_num(POISON, "truncated body", &len);
    fl__frame_meta_t m = invoke_meta(EP_ID, CALC_INDEX, M_ADD);
    uint8_t *buf = frame_bytes(FL__K_INVOKE, 0, 7, &m, body, len, &n);
    raw_send(&r, buf, n - len / 2);
    raw_close(&r);
    free(buf);
    free(body);
    step_end(fx, mark);
}

/*
 * A frame cut inside its body, then a half close (our side stops sending,
 * still reads): the server must close the connection. The document leaves
 * open whether it still sends ERROR FL_EPROTO first ("when it still can"),
 * so one ERROR is allowed, and if it comes it must be FL_EPROTO.
 */
static void test_truncated_frame_then_half_close(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    size_t len, n;
    uint8_t *body = pack_num(POISON, "half closed", &len);
    fl__frame_meta_t m = invoke_meta(EP_ID, CALC_INDEX, M_ADD);
    uint8_t *buf = frame_bytes(FL__K_INVOKE, 0, 7, &m, body, len, &n);
    raw_send(&r, buf, n - 3);
    assert_int_equal(0, shutdown(r.fd, SHUT_WR));
    frame_t f;
    char d[1200];
    if (next_frame(&r, &f) == RD_FRAME) {
        if (f.h.kind != FL__K_ERROR || f.m.code != FL_EPROTO)
            fail_msg("want the connection closed (or ERROR FL_EPROTO), got "
                     "%s",
                     describe(&f, d, sizeof d));
        frame_clear(&f);
        expect_closed(&r);
    }
    raw_close(&r);
    free(buf);
    free(body);
    step_end(fx, mark);
}

/* A header announcing a body of 4 GiB - 1 bytes (the largest body_len):
 * refused from the header alone, before the server allocates for it. */
static void test_four_gib_body_length_is_refused(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    fl__frame_meta_t m = invoke_meta(EP_ID, CALC_INDEX, M_ADD);
    uint8_t meta[64];
    size_t meta_len =
        fl__frame_encode_meta(FL__K_INVOKE, 0, &m, meta, sizeof meta);
    assert_true(meta_len > 0);
    fl__frame_hdr_t h = {FL__PROTO_VERSION,  FL__K_INVOKE, 0, 5,
                         (uint32_t)meta_len, UINT32_MAX};
    uint8_t hdr[FL__FRAME_HDR];
    fl__frame_encode_hdr(hdr, &h);
    raw_send(&r, hdr, sizeof hdr);
    expect_error_then_close(&r, FL_EMSGSIZE, NULL, 0);
    raw_close(&r);
    step_end(fx, mark);
}

/* The packed Num of Add(1, text) whose INVOKE frame to "calc" is exactly
 * `total` bytes; caller frees. */
static uint8_t *num_for_frame_size(size_t total, size_t *len, char **text)
{
    fl__frame_meta_t m = invoke_meta(EP_ID, CALC_INDEX, M_ADD);
    size_t meta_len = fl__frame_meta_size(FL__K_INVOKE, 0, &m);
    size_t body = total - FL__FRAME_HDR - meta_len;
    /* Num: v=1 is 2 bytes; text is a tag, a 3-byte length, the bytes. */
    size_t n = body - 2 - 1 - 3;
    *text = malloc(n + 1);
    assert_non_null(*text);
    for (size_t i = 0; i < n; i++)
        (*text)[i] = (char)('a' + i % 26);
    (*text)[n] = '\0';
    uint8_t *b = pack_num(1, *text, len);
    assert_int_equal(body, *len);
    return b;
}

/* A frame of exactly the server's maximum is accepted and answered. */
static void test_frame_of_exactly_the_maximum_is_served(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    size_t len;
    char *text;
    uint8_t *body = num_for_frame_size(SERVER_MAX, &len, &text);
    send_invoke(&r, 0, 3, EP_ID, CALC_INDEX, M_ADD, body, len);
    expect_num_reply(&r, 3, 2, text);
    expect_usable(&r, 4, 10);
    raw_close(&r);
    free(body);
    free(text);
    step_end(fx, mark);
}

/* One byte more than the server's maximum: refused from the header. */
static void test_frame_one_byte_over_the_maximum_is_refused(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    size_t len, n;
    char *text;
    uint8_t *body = num_for_frame_size(SERVER_MAX + 1, &len, &text);
    fl__frame_meta_t m = invoke_meta(EP_ID, CALC_INDEX, M_ADD);
    uint8_t *buf = frame_bytes(FL__K_INVOKE, 0, 3, &m, body, len, &n);
    raw_send(&r, buf, FL__FRAME_HDR); /* the header decides */
    expect_error_then_close(&r, FL_EMSGSIZE, NULL, 0);
    raw_close(&r);
    free(buf);
    free(body);
    free(text);
    step_end(fx, mark);
}

/* A reply larger than the maximum the caller announced: ERROR FL_EMSGSIZE
 * naming that maximum, instead of the reply; the connection stays usable. */
static void test_reply_over_the_callers_maximum_is_emsgsize(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_open(fx);
    r.max_frame = 1024; /* the smallest a HELLO may announce */
    raw_hello(&r);
    send_connect(&r, 1, EP_ID, CALC_NAME);
    expect_connected(&r, 1, CALC_INDEX);
    char *text = malloc(2001);
    assert_non_null(text);
    memset(text, 'r', 2000);
    text[2000] = '\0';
    send_num(&r, 2, CALC_INDEX, M_ADD, 1, text);
    free(text);
    char msg[FL__ERRMSG_MAX + 1];
    expect_error(&r, FL_EMSGSIZE, 2, msg, sizeof msg);
    if (strstr(msg, "1024") == NULL)
        fail_msg("the FL_EMSGSIZE message does not name the maximum of 1024 "
                 "bytes: %s",
                 msg);
    expect_usable(&r, 3, 20);
    raw_close(&r);
    step_end(fx, mark);
}

static void test_wrong_version_in_hello_fails_the_handshake(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_open(fx);
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.max_frame = CLIENT_MAX;
    m.service_name = str_of(CLIENT_NAME);
    size_t n;
    uint8_t *buf = frame_bytes(FL__K_HELLO, 0, 0, &m, NULL, 0, &n);
    buf[4] = 2; /* version */
    raw_send(&r, buf, n);
    free(buf);
    char msg[FL__ERRMSG_MAX + 1];
    expect_error_then_close(&r, FL_EHANDSHAKE, msg, sizeof msg);
    assert_string_equal("Version mismatch between source (2) and target (1) "
                        "rpc component. Please verify that all components "
                        "have the same version.",
                        msg);
    raw_close(&r);
    step_end(fx, mark);
}

/* A valid INVOKE before HELLO: refused, and never dispatched. */
static void test_invoke_before_hello_fails_the_handshake(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_open(fx);
    send_num(&r, 9, CALC_INDEX, M_ADD, POISON, "before hello");
    expect_error_then_close(&r, FL_EHANDSHAKE, NULL, 0);
    raw_close(&r);
    step_end(fx, mark);
}

/* A valid CONNECT before HELLO. */
static void test_connect_before_hello_fails_the_handshake(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_open(fx);
    send_connect(&r, 9, EP_ID, CALC_NAME);
    expect_error_then_close(&r, FL_EHANDSHAKE, NULL, 0);
    raw_close(&r);
    step_end(fx, mark);
}

static void test_connect_to_an_unknown_endpoint_fails_that_request(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_open(fx);
    raw_hello(&r);
    send_connect(&r, 11, "nobody", CALC_NAME);
    char msg[FL__ERRMSG_MAX + 1];
    expect_error(&r, FL_ECONNECT, 11, msg, sizeof msg);
    static const char prefix[] =
        "Could not connect to rpc endpoint under address ";
    if (strncmp(msg, prefix, sizeof prefix - 1) != 0 ||
        strstr(msg, "/nobody.") == NULL)
        fail_msg("unexpected FL_ECONNECT message: %s", msg);
    /* The connection stays usable. */
    send_connect(&r, 12, EP_ID, CALC_NAME);
    expect_connected(&r, 12, CALC_INDEX);
    expect_usable(&r, 13, 100);
    raw_close(&r);
    step_end(fx, mark);
}

static void
test_connect_with_an_unsupported_gateway_fails_that_request(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_open(fx);
    raw_hello(&r);
    send_connect(&r, 21, EP_ID, "flhostile.NoSuchGateway");
    char msg[FL__ERRMSG_MAX + 1];
    expect_error(&r, FL_EHANDSHAKE, 21, msg, sizeof msg);
    assert_string_equal("The rpc endpoint does not support the gateway "
                        "flhostile.NoSuchGateway.",
                        msg);
    /* The connection stays usable, for either service of the endpoint. */
    send_connect(&r, 22, EP_ID, SIDE_NAME);
    expect_connected(&r, 22, SIDE_INDEX);
    send_num(&r, 23, SIDE_INDEX, M_NEG, 5, "side");
    expect_num_reply(&r, 23, -5, "side");
    send_connect(&r, 24, EP_ID, CALC_NAME);
    expect_connected(&r, 24, CALC_INDEX);
    expect_usable(&r, 25, 200);
    raw_close(&r);
    step_end(fx, mark);
}

static void test_invoke_to_an_unknown_endpoint_is_unreachable(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    size_t len;
    uint8_t *body = pack_num(1, "to nobody", &len);
    send_invoke(&r, 0, 31, "nobody", CALC_INDEX, M_ADD, body, len);
    expect_error(&r, FL_EUNREACHABLE, 31, NULL, 0);
    expect_usable(&r, 32, 300);
    /* A tell to nobody: nothing comes back, the next ask's REPLY is the
     * next frame. */
    send_invoke(&r, FL__F_TELL, 0, "nobody", CALC_INDEX, M_ADD, body, len);
    expect_usable(&r, 33, 301);
    free(body);
    raw_close(&r);
    step_end(fx, mark);
}

static void test_invoke_of_an_unknown_method_is_enomethod(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    send_num(&r, 41, CALC_INDEX, 2, POISON, "method 2"); /* Calc has 2 */
    expect_error(&r, FL_ENOMETHOD, 41, NULL, 0);
    expect_usable(&r, 42, 400);
    send_num(&r, 43, SIDE_INDEX, 1, POISON, "method 1"); /* Side has 1 */
    expect_error(&r, FL_ENOMETHOD, 43, NULL, 0);
    send_num(&r, 44, CALC_INDEX, UINT32_MAX, POISON, "method max");
    expect_error(&r, FL_ENOMETHOD, 44, NULL, 0);
    expect_usable(&r, 45, 401);
    raw_close(&r);
    step_end(fx, mark);
}

static void test_invoke_of_an_unknown_service_is_enomethod(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    send_num(&r, 51, 2, M_ADD, POISON, "service 2"); /* calc has 2 */
    expect_error(&r, FL_ENOMETHOD, 51, NULL, 0);
    expect_usable(&r, 52, 500);
    send_num(&r, 53, UINT32_MAX, M_ADD, POISON, "service max");
    expect_error(&r, FL_ENOMETHOD, 53, NULL, 0);
    expect_usable(&r, 54, 501);
    raw_close(&r);
    step_end(fx, mark);
}

static void test_invoke_whose_body_does_not_decode_is_edecode(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    /* text (field 2) announcing 16 bytes, carrying 1. */
    static const uint8_t short_string[] = {0x12, 0x10, 'x'};
    send_invoke(&r, 0, 61, EP_ID, CALC_INDEX, M_ADD, short_string,
                sizeof short_string);
    expect_error(&r, FL_EDECODE, 61, NULL, 0);
    expect_usable(&r, 62, 600);
    /* v (field 1) as a varint that never ends. */
    static const uint8_t endless_varint[] = {0x08, 0xff, 0xff, 0xff};
    send_invoke(&r, 0, 63, EP_ID, CALC_INDEX, M_ADD, endless_varint,
                sizeof endless_varint);
    expect_error(&r, FL_EDECODE, 63, NULL, 0);
    expect_usable(&r, 64, 601);
    raw_close(&r);
    step_end(fx, mark);
}

/* The nesting bound: MAX_DEPTH levels are served, one more is FL_EDECODE
 * for that call only. */
static void test_invoke_nested_too_deep_is_edecode(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    size_t len;
    uint8_t *body = pack_chain(MAX_DEPTH, &len);
    send_invoke(&r, 0, 71, EP_ID, CALC_INDEX, M_DEPTH, body, len);
    free(body);
    expect_num_reply(&r, 71, MAX_DEPTH, "");
    /* The same depth built by hand: the builder is right. */
    body = deep_chain(MAX_DEPTH, &len);
    send_invoke(&r, 0, 70, EP_ID, CALC_INDEX, M_DEPTH, body, len);
    free(body);
    expect_num_reply(&r, 70, MAX_DEPTH, "");
    body = pack_chain(MAX_DEPTH + 1, &len);
    send_invoke(&r, 0, 72, EP_ID, CALC_INDEX, M_DEPTH, body, len);
    free(body);
    expect_error(&r, FL_EDECODE, 72, NULL, 0);
    /* Deep enough to exhaust a thread's stack if it were unpacked. */
    body = deep_chain(100000, &len);
    assert_true(FL__FRAME_HDR + 14 + len <= SERVER_MAX);
    send_invoke(&r, 0, 73, EP_ID, CALC_INDEX, M_DEPTH, body, len);
    free(body);
    expect_error(&r, FL_EDECODE, 73, NULL, 0);
    expect_usable(&r, 74, 700);
    raw_close(&r);
    step_end(fx, mark);
}

/* Asks and failing asks in one burst: every answer carries its own corr. */
static void test_burst_of_good_and_bad_asks_is_answered_by_corr(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    enum { BURST = 16, FIRST = 100 };
    uint8_t *all = NULL;
    size_t all_len = 0;
    for (uint64_t c = FIRST; c < FIRST + BURST; c++) {
        char text[32];
        snprintf(text, sizeof text, "burst-%llu", (unsigned long long)c);
        size_t len, n;
        uint8_t *body = pack_num((int64_t)c * 10, text, &len);
        /* Odd corrs name a method CalcGateway does not have. */
        fl__frame_meta_t m =
            invoke_meta(EP_ID, CALC_INDEX, (c & 1) ? 7 : M_ADD);
        uint8_t *buf = frame_bytes(FL__K_INVOKE, 0, c, &m, body, len, &n);
        all = realloc(all, all_len + n);
        assert_non_null(all);
        memcpy(all + all_len, buf, n);
        all_len += n;
        free(buf);
        free(body);
    }
    raw_send(&r, all, all_len); /* one write: many calls in flight */
    free(all);
    bool seen[BURST] = {false};
    for (int i = 0; i < BURST; i++) {
        frame_t f;
        char d[1200];
        if (next_frame(&r, &f) == RD_CLOSED)
            fail_msg("the server closed the connection after %d answers", i);
        uint64_t c = f.h.corr;
        if (c < FIRST || c >= FIRST + BURST || seen[c - FIRST])
            fail_msg("answer %d: unexpected %s", i, describe(&f, d, sizeof d));
        seen[c - FIRST] = true;
        if (c & 1) {
            if (f.h.kind != FL__K_ERROR || f.m.code != FL_ENOMETHOD)
                fail_msg("corr %llu: want ERROR FL_ENOMETHOD, got %s",
                         (unsigned long long)c, describe(&f, d, sizeof d));
        } else {
            char text[32];
            snprintf(text, sizeof text, "burst-%llu", (unsigned long long)c);
            check_num_reply(&f, c, (int64_t)c * 10 + 1, text);
        }
        frame_clear(&f);
    }
    expect_usable(&r, 200, 800);
    raw_close(&r);
    step_end(fx, mark);
}

static void test_ping_is_answered_with_pong(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    send_frame(&r, FL__K_PING, 0, 0, NULL, NULL, 0);
    frame_t f;
    char d[1200];
    if (next_frame(&r, &f) == RD_CLOSED)
        fail_msg("want PONG, the server closed the connection");
    if (f.h.kind != FL__K_PONG)
        fail_msg("want PONG, got %s", describe(&f, d, sizeof d));
    frame_clear(&f);
    expect_usable(&r, 81, 810);
    raw_close(&r);
    step_end(fx, mark);
}

static void test_reply_matching_no_call_is_a_protocol_error(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    size_t len;
    uint8_t *body = pack_num(1, "stray", &len);
    send_frame(&r, FL__K_REPLY, 0, 0x5151, NULL, body, len);
    free(body);
    expect_error_then_close(&r, FL_EPROTO, NULL, 0);
    raw_close(&r);
    step_end(fx, mark);
}

static void test_error_matching_no_call_is_a_protocol_error(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.code = FL_EUSER;
    m.message = str_of("stray error");
    send_frame(&r, FL__K_ERROR, 0, 0x5252, &m, NULL, 0);
    expect_error_then_close(&r, FL_EPROTO, NULL, 0);
    raw_close(&r);
    step_end(fx, mark);
}

static void test_unknown_flag_bits_are_a_protocol_error(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    /* On INVOKE: bit 2 is not defined. */
    raw_t r = raw_session(fx);
    size_t len;
    uint8_t *body = pack_num(POISON, "flag 4", &len);
    send_invoke(&r, 0x0004, 91, EP_ID, CALC_INDEX, M_ADD, body, len);
    free(body);
    expect_error_then_close(&r, FL_EPROTO, NULL, 0);
    raw_close(&r);
    /* On CONNECT: TELL is defined for INVOKE only. */
    r = raw_open(fx);
    raw_hello(&r);
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.endpoint = str_of(EP_ID);
    m.gateway = str_of(CALC_NAME);
    send_frame(&r, FL__K_CONNECT, FL__F_TELL, 92, &m, NULL, 0);
    expect_error_then_close(&r, FL_EPROTO, NULL, 0);
    raw_close(&r);
    step_end(fx, mark);
}

/* Metadata that does not parse: a str16 running past its field. */
static void test_metadata_that_does_not_parse_is_a_protocol_error(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = step_begin(fx);
    raw_t r = raw_session(fx);
    size_t len, n;
    uint8_t *body = pack_num(POISON, "bad meta", &len);
    fl__frame_meta_t m = invoke_meta(EP_ID, CALC_INDEX, M_ADD);
    uint8_t *buf = frame_bytes(FL__K_INVOKE, 0, 95, &m, body, len, &n);
    /* The endpoint's str16 length: 200 instead of 4. */
    buf[FL__FRAME_HDR] = 0;
    buf[FL__FRAME_HDR + 1] = 200;
    raw_send(&r, buf, n);
    free(buf);
    free(body);
    expect_error_then_close(&r, FL_EPROTO, NULL, 0);
    raw_close(&r);
    step_end(fx, mark);
}

/*
 * The last case: the good client stops (all its answers were right), the
 * endpoint terminates, so every request the server ever dispatched to it
 * has run, and none of them was a poisoned one.
 */
static void test_after_the_session_no_poisoned_request_ran(void **state)
{
    fixture_t *fx = *state;
    assert_true(fx->good.running);
    atomic_store(&fx->good.stop, true);
    pthread_join(fx->good.thread, NULL);
    fx->good.running = false;
    if (fx->good.failures != 0)
        fail_msg("the good client got %llu wrong answers; first: %s",
                 (unsigned long long)fx->good.failures, fx->good.first_failure);
    assert_true(fx->good.done >= GOOD_PER_STEP);
    fl_future_t *t = fl_rpc_endpoint_close(fx->ep);
    assert_non_null(t);
    assert_fl_ok(fl_future_wait(t, WAIT_MS));
    fl_future_release(t);
    assert_int_equal(0, atomic_load(&poison_hits));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_endpoint_address_and_good_client),
        FL_TEST(test_garbage_http_request_is_a_protocol_error),
        FL_TEST(test_garbage_bytes_are_a_protocol_error),
        FL_TEST(test_truncated_header_then_close),
        FL_TEST(test_truncated_body_then_close),
        FL_TEST(test_truncated_frame_then_half_close),
        FL_TEST(test_four_gib_body_length_is_refused),
        FL_TEST(test_frame_of_exactly_the_maximum_is_served),
        FL_TEST(test_frame_one_byte_over_the_maximum_is_refused),
        FL_TEST(test_reply_over_the_callers_maximum_is_emsgsize),
        FL_TEST(test_wrong_version_in_hello_fails_the_handshake),
        FL_TEST(test_invoke_before_hello_fails_the_handshake),
        FL_TEST(test_connect_before_hello_fails_the_handshake),
        FL_TEST(test_connect_to_an_unknown_endpoint_fails_that_request),
        FL_TEST(test_connect_with_an_unsupported_gateway_fails_that_request),
        FL_TEST(test_invoke_to_an_unknown_endpoint_is_unreachable),
        FL_TEST(test_invoke_of_an_unknown_method_is_enomethod),
        FL_TEST(test_invoke_of_an_unknown_service_is_enomethod),
        FL_TEST(test_invoke_whose_body_does_not_decode_is_edecode),
        FL_TEST(test_invoke_nested_too_deep_is_edecode),
        FL_TEST(test_burst_of_good_and_bad_asks_is_answered_by_corr),
        FL_TEST(test_ping_is_answered_with_pong),
        FL_TEST(test_reply_matching_no_call_is_a_protocol_error),
        FL_TEST(test_error_matching_no_call_is_a_protocol_error),
        FL_TEST(test_unknown_flag_bits_are_a_protocol_error),
        FL_TEST(test_metadata_that_does_not_parse_is_a_protocol_error),
        FL_TEST(test_after_the_session_no_poisoned_request_ran),
    };
    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
