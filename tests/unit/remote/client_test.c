/*
 * client_test - the calling side of the transport against peers that
 * misbehave in ways a fling server never does: a server of another protocol
 * version, one that accepts and then closes, and the calling side's own
 * guards (blocking on the I/O thread, calls after shutdown, tells while
 * backing off), and REPLY bodies a fling server never sends (undecodable,
 * nested deeper than the limit, late after the call timed out). The fake
 * servers are plain sockets, in a thread or played by the test's own thread
 * (fl_rpc_connect and fl_rpc_call never block).
 */
#include "wire_client.h"

#include "remote/net.h"
#include "remote/pbdepth.h"
#include "rpc/service.h"

#define CALC (&flhostile__calc_gateway__descriptor)

/* A call's own timeout that runs out, and how late it may fire. */
#define SHORT_MS 200
#define PROMPT_MS 5000

/* ---- a fake server: accepts one connection and runs a script ------------- */

typedef enum { SAY_VERSION_2, CLOSE_AT_ONCE } script_t;

typedef struct fake {
    int lfd;
    int port;
    script_t script;
    pthread_t thread;
    atomic_int accepted;
} fake_t;

static void *fake_main(void *p)
{
    fake_t *f = p;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    atomic_fetch_add(&f->accepted, 1);
    if (f->script == SAY_VERSION_2) {
        /* A HELLO in version 2: header byte 4 is the version. */
        uint8_t frame[64];
        fl__frame_hdr_t h = {.kind = FL__K_HELLO, .meta_len = 6};
        fl__frame_encode_hdr(frame, &h);
        frame[4] = 2;
        uint8_t meta[6] = {0, 0, 0x10, 0, 0, 0}; /* 4096, "" */
        memcpy(frame + FL__FRAME_HDR, meta, sizeof meta);
        ssize_t w = write(fd, frame, FL__FRAME_HDR + sizeof meta);
        (void)w;
        /* Read until the client closes. */
        char buf[512];
        while (read(fd, buf, sizeof buf) > 0)
            ;
    }
    close(fd);
    return NULL;
}

static void fake_start(fake_t *f, script_t script)
{
    memset(f, 0, sizeof *f);
    f->script = script;
    f->lfd = raw_listen(0, &f->port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(fake_t *f)
{
    shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    raw_fd_close(f->lfd);
}

static fl_rpc_service_t *client_service(void)
{
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(NULL, &svc));
    return svc;
}

/* Connect a CalcGateway and wait: the code, and the failure's message. */
static int connect_code(fl_rpc_service_t *svc, const char *address, char *msg,
                        size_t cap)
{
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_connect(svc, address, CALC, NULL, &f));
    int rc = fl_future_wait(f, WAIT_MS);
    assert_true(fl_future_done(f));
    snprintf(msg, cap, "%s", rc == FL_OK ? "" : fl_future_message(f));
    fl_future_release(f);
    return rc;
}

/* ---- cases ----------------------------------------------------------------
 */

/* A server of another protocol version: connecting fails with
 * FL_EHANDSHAKE naming both versions, promptly. */
static void test_version_mismatch_fails_the_handshake(void **state)
{
    (void)state;
    fake_t fk;
    fake_start(&fk, SAY_VERSION_2);
    fl_rpc_service_t *svc = client_service();
    char addr[96], msg[300];
    snprintf(addr, sizeof addr, "fling.tcp://127.0.0.1:%d/calc", fk.port);
    uint64_t t0 = fl_clock_now_ns();
    assert_fl(FL_EHANDSHAKE, connect_code(svc, addr, msg, sizeof msg));
    assert_true(fl_clock_now_ns() - t0 < 5000000000ull);
    assert_non_null(strstr(msg, "Version mismatch between source (2) and "
                                "target (1)"));
    fl_rpc_service_free(svc);
    fake_stop(&fk);
}

/* A server that accepts and closes before HELLO: FL_ECONNECT naming the
 * address; a second attempt within the backoff fails at once, naming the
 * wait, without a new connection. */
static void test_closed_before_hello_fails_connect_and_backs_off(void **state)
{
    (void)state;
    fake_t fk;
    fake_start(&fk, CLOSE_AT_ONCE);
    fl_rpc_service_t *svc = client_service();
    char addr[96], msg[300];
    snprintf(addr, sizeof addr, "fling.tcp://127.0.0.1:%d/calc", fk.port);
    assert_fl(FL_ECONNECT, connect_code(svc, addr, msg, sizeof msg));
    assert_non_null(strstr(msg, addr));
    /* Within the 50 ms backoff: refused without trying. The attempt may
     * already have been allowed again on a slow machine, so only check
     * the message when it says so. */
    int rc = connect_code(svc, addr, msg, sizeof msg);
    assert_fl(FL_ECONNECT, rc);
    if (strstr(msg, "next attempt in") != NULL)
        assert_int_equal(atomic_load(&fk.accepted), 1);
    fl_rpc_service_free(svc);
    fake_stop(&fk);
}

/* ---- a real server for the guards ---------------------------------------- */

/* The calc endpoint of wire_client.h, with a Depth that fails. */
static void cl_add(Flhostile__CalcGateway_Service *s, const Flhostile__Num *in,
                   Flhostile__Num_Closure closure, void *data)
{
    calc_add(s, in, closure, data);
}

static void cl_depth(Flhostile__CalcGateway_Service *s,
                     const Flhostile__Chain *in, Flhostile__Num_Closure closure,
                     void *data)
{
    (void)s;
    (void)in;
    (void)closure;
    fl_rpc_fail(data, FL_ENOTSUP, "not here");
}

static Flhostile__CalcGateway_Service cl_impl =
    FLHOSTILE__CALC_GATEWAY__INIT(cl_);

typedef struct server {
    fl_rpc_service_t *svc;
    fl_rpc_endpoint_t *ep;
    calc_t st;
} server_t;

static void server_start(server_t *s)
{
    static ProtobufCService *const services[] = {&cl_impl.base};
    memset(s, 0, sizeof *s);
    assert_fl_ok(server_alloc("client-test", 0, 0, &s->svc));
    assert_fl_ok(calc_start(s->svc, "calc", &s->st, services, 1, &s->ep));
}

static void server_stop(server_t *s)
{
    assert_fl_ok(calc_end(s->ep));
    assert_fl_ok(service_end(s->svc));
}

/* What a closure on the I/O thread saw when it tried to block. */
typedef struct io_probe {
    fl_rpc_gateway_t *gw;
    pthread_t caller;
    atomic_bool on_caller; /* ran at once on the calling thread instead */
    atomic_int sync_rc;
    atomic_int wait_rc;
    fl_test_latch_t *done;
} io_probe_t;

static io_probe_t probe;

static void blocking_closure(const Flhostile__Num *reply, void *data)
{
    (void)data;
    assert_non_null(reply); /* the first call succeeded */
    if (pthread_equal(pthread_self(), probe.caller)) {
        /* The reply beat the closure's registration: it runs here, on the
         * caller's thread, which may block. Not the case under test. */
        atomic_store(&probe.on_caller, true);
        fl_test_latch_count_down(probe.done);
        return;
    }
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    ProtobufCMessage *out = NULL;
    atomic_store(&probe.sync_rc,
                 fl_rpc_call_sync(probe.gw, 0, &req.base, 1000, &out));
    fl_future_t *f = fl_future_alloc();
    atomic_store(&probe.wait_rc, fl_future_wait(f, 10));
    fl_future_release(f);
    fl_test_latch_count_down(probe.done);
}

/* A closure of a remote call made outside any actor runs on the I/O
 * thread; blocking there is refused with FL_EDEADLK instead of stalling
 * every connection of the service. */
static void test_blocking_on_the_io_thread_is_refused(void **state)
{
    (void)state;
    server_t s;
    server_start(&s);
    fl_rpc_service_t *svc = client_service();
    assert_fl_ok(
        gw_connect(svc, fl_rpc_endpoint_address(s.ep), CALC, &probe.gw));
    probe.caller = pthread_self();
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = 1;
    /* Until the closure runs on the I/O thread (almost always the first
     * time; a reply may come back before the closure is registered). */
    int attempts = 0;
    do {
        fl_test_latch_free(probe.done);
        probe.done = fl_test_latch_alloc(1);
        atomic_store(&probe.on_caller, false);
        atomic_store(&probe.sync_rc, -1);
        atomic_store(&probe.wait_rc, -1);
        flhostile__calc_gateway__add(fl_rpc_gateway_service(probe.gw), &req,
                                     blocking_closure, NULL);
        assert_fl_ok(fl_rpc_last_error());
        assert_int_equal(fl_test_latch_wait(probe.done, WAIT_MS), 0);
    } while (atomic_load(&probe.on_caller) && ++attempts < 1000);
    assert_false(atomic_load(&probe.on_caller));
    assert_fl(FL_EDEADLK, atomic_load(&probe.sync_rc));
    assert_fl(FL_EDEADLK, atomic_load(&probe.wait_rc));
    /* The gateway still works from a plain thread. */
    ProtobufCMessage *out = NULL;
    assert_fl_ok(fl_rpc_call_sync(probe.gw, 0, &req.base, WAIT_MS, &out));
    assert_int_equal(((Flhostile__Num *)out)->v, 2);
    protobuf_c_message_free_unpacked(out, NULL);
    fl_test_latch_free(probe.done);
    fl_rpc_gateway_free(probe.gw);
    fl_rpc_service_free(svc);
    server_stop(&s);
}

/* After the calling service shut down, a remote gateway refuses calls with
 * FL_ECLOSED and leaves *out NULL, as documented; a stub call reports it
 * through fl_rpc_last_error. */
static void test_calls_after_shutdown_are_refused(void **state)
{
    (void)state;
    server_t s;
    server_start(&s);
    fl_rpc_service_t *svc = client_service();
    fl_rpc_gateway_t *gw = NULL;
    assert_fl_ok(gw_connect(svc, fl_rpc_endpoint_address(s.ep), CALC, &gw));
    assert_fl_ok(fl_rpc_service_shutdown(svc));
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    fl_future_t *f = (fl_future_t *)&req; /* must be reset to NULL */
    assert_fl(FL_ECLOSED, fl_rpc_call(gw, 0, &req.base, 0, &f));
    assert_null(f);
    flhostile__calc_gateway__add(fl_rpc_gateway_service(gw), &req, NULL, NULL);
    assert_fl(FL_ECLOSED, fl_rpc_last_error());
    fl_rpc_gateway_free(gw);
    fl_rpc_service_free(svc);
    server_stop(&s);
}

/* A handler's failure crosses with its code and message; the server's
 * own service shutting down makes a connected client's next call fail with
 * FL_EUNREACHABLE (not a timeout), and the connection is re-made once a
 * server listens there again. */
static void test_server_shutdown_fails_calls_fast(void **state)
{
    (void)state;
    server_t s;
    server_start(&s);
    fl_rpc_service_t *svc = client_service();
    fl_rpc_gateway_t *gw = NULL;
    assert_fl_ok(gw_connect(svc, fl_rpc_endpoint_address(s.ep), CALC, &gw));
    Flhostile__Chain chain = FLHOSTILE__CHAIN__INIT;
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_call(gw, 1, &chain.base, WAIT_MS, &f));
    assert_fl(FL_ENOTSUP, fl_future_wait(f, WAIT_MS));
    assert_string_equal(fl_future_message(f), "not here");
    fl_future_release(f);
    server_stop(&s);
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_rpc_call(gw, 0, &req.base, WAIT_MS, &f));
    int rc = fl_future_wait(f, WAIT_MS);
    assert_true(fl_future_done(f));
    /* The connection is gone (lost or refused on reconnecting). */
    assert_fl(FL_EUNREACHABLE, rc);
    assert_true(fl_clock_now_ns() - t0 < 5000000000ull);
    fl_future_release(f);
    fl_rpc_gateway_free(gw);
    fl_rpc_service_free(svc);
}

/* ---- a raw server played by the test's thread ---------------------------- */

/*
 * NestGateway.Nest(Num) returns (Chain): a method whose reply is recursive.
 * hostile_gateways.proto has Chain only as a request (CalcGateway.Depth),
 * so the service is declared here from the generated message descriptors;
 * only the raw server below serves it.
 */
static const ProtobufCMethodDescriptor nest_methods[1] = {
    {"Nest", &flhostile__num__descriptor, &flhostile__chain__descriptor}};
static const unsigned nest_methods_by_name[1] = {0};
static const ProtobufCServiceDescriptor nest_descriptor = {
    PROTOBUF_C__SERVICE_DESCRIPTOR_MAGIC,
    "flhostile.NestGateway",
    "NestGateway",
    "Flhostile__NestGateway",
    "flhostile",
    1,
    nest_methods,
    nest_methods_by_name};
#define NEST (&nest_descriptor)
#define M_NEST 0u

/* A client service (name "fling", default maximum frame) and its gateway to
 * endpoint "calc" of a raw listening socket whose side the test plays. */
typedef struct rawsrv {
    int lfd;
    int port;
    raw_t r;
    fl_rpc_service_t *svc;
    bool own_svc; /* rawsrv_stop frees svc */
    fl_rpc_gateway_t *gw;
    uint64_t next_corr; /* of the client's next request */
} rawsrv_t;

/* Connects a desc gateway of client service svc to a raw server: HELLO both
 * ways, CONNECT (corr 1, endpoint "calc", desc's name) answered with
 * CONNECTED index 0. */
static void rawsrv_start_on(rawsrv_t *s, const ProtobufCServiceDescriptor *desc,
                            fl_rpc_service_t *svc)
{
    memset(s, 0, sizeof *s);
    s->lfd = raw_listen(0, &s->port);
    s->svc = svc;
    char addr[96];
    snprintf(addr, sizeof addr, "fling.tcp://127.0.0.1:%d/calc", s->port);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_connect(s->svc, addr, desc, NULL, &f));
    int fd = accept(s->lfd, NULL, NULL); /* bounded by SO_RCVTIMEO */
    if (fd < 0)
        fail_msg("accept: %s", strerror(errno));
    raw_fd_adopt(fd);
    s->r = raw_of(fd, FL__FRAME_DEFAULT_MAX, "raw-server",
                  FL__FRAME_DEFAULT_MAX, "fling", "calc");
    raw_hello(&s->r);
    frame_t c;
    char d[1200], ep[FL__ID_MAX + 1], gw[FL__NAME_MAX + 1];
    next_frame_or_fail(&s->r, &c, "CONNECT", 1);
    if (c.h.kind != FL__K_CONNECT || c.h.corr != 1)
        fail_msg("want CONNECT corr 1, got %s", describe(&c, d, sizeof d));
    assert_string_equal("calc", str_copy(c.m.endpoint, ep, sizeof ep));
    assert_string_equal(desc->name, str_copy(c.m.gateway, gw, sizeof gw));
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.service_index = 0;
    send_frame(&s->r, FL__K_CONNECTED, 0, c.h.corr, &m, NULL, 0);
    frame_clear(&c);
    fl_test_future_ok(f, "connect %s", addr);
    s->gw = fl_future_take_value(f);
    assert_non_null(s->gw);
    fl_future_release(f);
    s->next_corr = 2;
}

/* rawsrv_start_on a client service of its own. */
static void rawsrv_start(rawsrv_t *s, const ProtobufCServiceDescriptor *desc)
{
    rawsrv_start_on(s, desc, client_service());
    s->own_svc = true;
}

/* Reads the INVOKE of the client's next call: an ask of method on "calc"
 * (service index 0) carrying Num(v, text). Returns its corr. */
static uint64_t rawsrv_invoke(rawsrv_t *s, uint32_t method, int64_t v,
                              const char *text)
{
    frame_t f;
    char d[1200], ep[FL__ID_MAX + 1];
    next_frame_or_fail(&s->r, &f, "INVOKE", s->next_corr);
    if (f.h.kind != FL__K_INVOKE || f.h.corr != s->next_corr ||
        f.h.flags != 0 || f.m.service_index != 0 || f.m.method_index != method)
        fail_msg("want INVOKE corr %llu of method %u, got %s (flags %u, "
                 "service %u, method %u)",
                 (unsigned long long)s->next_corr, (unsigned)method,
                 describe(&f, d, sizeof d), (unsigned)f.h.flags,
                 (unsigned)f.m.service_index, (unsigned)f.m.method_index);
    assert_string_equal("calc", str_copy(f.m.endpoint, ep, sizeof ep));
    Flhostile__Num *n = flhostile__num__unpack(NULL, f.h.body_len, f.body);
    assert_non_null(n);
    assert_int_equal(v, n->v);
    assert_string_equal(text, n->text);
    flhostile__num__free_unpacked(n, NULL);
    frame_clear(&f);
    return s->next_corr++;
}

static void rawsrv_reply(rawsrv_t *s, uint64_t corr, const void *body,
                         size_t len)
{
    send_frame(&s->r, FL__K_REPLY, 0, corr, NULL, body, len);
}

static void rawsrv_reply_num(rawsrv_t *s, uint64_t corr, int64_t v,
                             const char *text)
{
    size_t len;
    uint8_t *body = pack_num(v, text, &len);
    rawsrv_reply(s, corr, body, len);
    free(body);
}

/* The client's Add(v, text) over the gateway, answered by the raw server
 * with Num(v + 1, text): the call succeeds with that value. */
static void rawsrv_expect_add(rawsrv_t *s, int64_t v, const char *text)
{
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = v;
    req.text = (char *)text;
    fl_future_t *f = fl_test_call(s->gw, M_ADD, &req.base, WAIT_MS);
    uint64_t corr = rawsrv_invoke(s, M_ADD, v, text);
    rawsrv_reply_num(s, corr, v + 1, text);
    fl_test_future_ok(f, "Add(%lld)", (long long)v);
    const Flhostile__Num *r = fl_future_value(f);
    assert_non_null(r);
    assert_ptr_equal(&flhostile__num__descriptor, r->base.descriptor);
    assert_int_equal(v + 1, r->v);
    assert_string_equal(text, r->text);
    fl_future_release(f);
}

/* Reads what the client sends until its connection closes: nothing but BYE
 * (no ERROR: the client found no protocol error); closes the raw sockets. */
static void rawsrv_drain(rawsrv_t *s)
{
    frame_t f;
    char d[1200];
    while (next_frame(&s->r, &f) == RD_FRAME) {
        if (f.h.kind != FL__K_BYE)
            fail_msg("want BYE or the connection closed, got %s",
                     describe(&f, d, sizeof d));
        frame_clear(&f);
    }
    raw_close(&s->r);
    raw_fd_close(s->lfd);
}

/* Frees the gateway and the client service (if s has its own), then
 * rawsrv_drain. */
static void rawsrv_stop(rawsrv_t *s)
{
    fl_rpc_gateway_free(s->gw);
    if (s->own_svc)
        fl_rpc_service_free(s->svc);
    rawsrv_drain(s);
}

/* A call's future must fail with FL_EDECODE and a message naming the reply
 * type; msg gets the message. */
static void expect_decode_failure(fl_future_t *f, const char *type, char *msg,
                                  size_t cap)
{
    assert_fl(FL_EDECODE, fl_test_future_code(f));
    snprintf(msg, cap, "%s", fl_future_message(f));
    char want[160];
    snprintf(want, sizeof want, "Could not decode the %s reply", type);
    if (strncmp(msg, want, strlen(want)) != 0)
        fail_msg("want a message starting \"%s\", got \"%s\"", want, msg);
    assert_null(fl_future_value(f));
}

/* A packed Chain nested n levels deep (the outermost counts as 1; the
 * innermost has no fields), built from the inside out without recursion.
 * Caller frees. */
static uint8_t *deep_chain(size_t n, size_t *len)
{
    size_t cap = n * 6 + 1, pos = cap;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    for (size_t i = 1; i < n; i++) {
        /* next = 1, length-delimited: key 0x0a, then the varint length. */
        uint8_t v[10];
        size_t vn = 0;
        for (uint64_t l = cap - pos; vn == 0 || l != 0; l >>= 7)
            v[vn++] = (uint8_t)((l & 0x7f) | (l >> 7 ? 0x80 : 0));
        pos -= vn;
        memcpy(buf + pos, v, vn);
        buf[--pos] = 0x0a;
    }
    *len = cap - pos;
    memmove(buf, buf + pos, *len);
    return buf;
}

/* ---- cases: replies a fling server never sends ---------------------------
 */

/* A REPLY whose body is not a Num fails that call with FL_EDECODE, naming
 * the type (a broken wire format or a well-formed body with a field of the
 * wrong wire type: both caught by protobuf-c); the connection keeps
 * serving the gateway's next call. */
static void test_undecodable_reply_fails_the_call_with_edecode(void **state)
{
    (void)state;
    rawsrv_t s;
    rawsrv_start(&s, CALC);
    static const struct {
        const char *what;
        uint8_t body[4];
        size_t len;
        const char *message; /* the whole of it */
    } bad[] = {
        {"a truncated field key",
         {0xff, 0xff, 0xff},
         3,
         "Could not decode the flhostile.Num reply: truncated field key in "
         "flhostile.Num"},
        /* v (1) as length-delimited (an int64 is a varint). */
        {"a field of the wrong wire type",
         {0x0a, 0x00},
         2,
         "Could not decode the flhostile.Num reply."},
    };
    char msg[300];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Flhostile__Num req = FLHOSTILE__NUM__INIT;
        req.v = (int64_t)i;
        req.text = "bad";
        fl_future_t *f = fl_test_call(s.gw, M_ADD, &req.base, WAIT_MS);
        uint64_t corr = rawsrv_invoke(&s, M_ADD, (int64_t)i, "bad");
        rawsrv_reply(&s, corr, bad[i].body, bad[i].len);
        expect_decode_failure(f, "flhostile.Num", msg, sizeof msg);
        assert_string_equal(bad[i].message, msg);
        fl_future_release(f);
        /* The same connection still serves the gateway. */
        rawsrv_expect_add(&s, 100 + (int64_t)i, "good");
    }
    rawsrv_stop(&s);
}

/* A REPLY nested deeper than FL__PB_MAX_DEPTH fails that call with
 * FL_EDECODE before protobuf-c unpacks it (100,000 levels would exhaust
 * its stack); exactly the limit is unpacked, and the connection keeps
 * serving. */
static void
test_too_deeply_nested_reply_fails_the_call_with_edecode(void **state)
{
    (void)state;
    rawsrv_t s;
    rawsrv_start(&s, NEST);
    static const size_t too_deep[] = {FL__PB_MAX_DEPTH + 1, 100000};
    char msg[300], want[64];
    snprintf(want, sizeof want, "nested deeper than %u levels",
             FL__PB_MAX_DEPTH);
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.text = "nest";
    for (size_t i = 0; i < sizeof too_deep / sizeof too_deep[0]; i++) {
        req.v = (int64_t)too_deep[i];
        fl_future_t *f = fl_test_call(s.gw, M_NEST, &req.base, WAIT_MS);
        uint64_t corr = rawsrv_invoke(&s, M_NEST, req.v, "nest");
        size_t len;
        uint8_t *body = deep_chain(too_deep[i], &len);
        rawsrv_reply(&s, corr, body, len);
        free(body);
        expect_decode_failure(f, "flhostile.Chain", msg, sizeof msg);
        if (strstr(msg, want) == NULL)
            fail_msg("depth %zu: want \"%s\" in \"%s\"", too_deep[i], want,
                     msg);
        fl_future_release(f);
    }
    /* Exactly the limit: unpacked, every level's v intact. */
    Flhostile__Chain links[FL__PB_MAX_DEPTH];
    for (unsigned i = 0; i < FL__PB_MAX_DEPTH; i++) {
        flhostile__chain__init(&links[i]);
        links[i].v = (int64_t)i + 1;
        links[i].next = i + 1 < FL__PB_MAX_DEPTH ? &links[i + 1] : NULL;
    }
    size_t len = flhostile__chain__get_packed_size(&links[0]);
    uint8_t *body = malloc(len);
    assert_non_null(body);
    assert_int_equal(len, flhostile__chain__pack(&links[0], body));
    req.v = FL__PB_MAX_DEPTH;
    fl_future_t *f = fl_test_call(s.gw, M_NEST, &req.base, WAIT_MS);
    uint64_t corr = rawsrv_invoke(&s, M_NEST, req.v, "nest");
    rawsrv_reply(&s, corr, body, len);
    free(body);
    fl_test_future_ok(f, "a reply nested %u levels", FL__PB_MAX_DEPTH);
    const Flhostile__Chain *c = fl_future_value(f);
    assert_non_null(c);
    assert_ptr_equal(&flhostile__chain__descriptor, c->base.descriptor);
    int64_t levels = 0;
    for (; c != NULL; c = c->next)
        assert_int_equal(++levels, c->v);
    assert_int_equal(FL__PB_MAX_DEPTH, levels);
    fl_future_release(f);
    rawsrv_stop(&s);
}

/* Replies that arrive after their calls timed out (one a Num, one not even
 * decodable) are matched and dropped: no protocol error, the futures keep
 * their FL_ETIMEDOUT, and the next call on the connection succeeds. */
static void test_late_replies_after_a_timeout_are_dropped(void **state)
{
    (void)state;
    rawsrv_t s;
    rawsrv_start(&s, CALC);
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.text = "late";
    uint64_t t0 = fl_clock_now_ns();
    req.v = 1;
    fl_future_t *f1 = fl_test_call(s.gw, M_ADD, &req.base, SHORT_MS);
    req.v = 2;
    fl_future_t *f2 = fl_test_call(s.gw, M_ADD, &req.base, SHORT_MS);
    /* Both are in flight on the connection... */
    uint64_t c1 = rawsrv_invoke(&s, M_ADD, 1, "late");
    uint64_t c2 = rawsrv_invoke(&s, M_ADD, 2, "late");
    /* ...and time out unanswered. */
    assert_fl(FL_ETIMEDOUT, fl_test_future_code(f1));
    assert_fl(FL_ETIMEDOUT, fl_test_future_code(f2));
    fl_test_assert_elapsed("calls timing out", fl_test_ms_since(t0), SHORT_MS,
                           SHORT_MS + PROMPT_MS);
    char want[64];
    snprintf(want, sizeof want, "timed out after %d ms", SHORT_MS);
    assert_string_equal(want, fl_future_message(f1));
    assert_string_equal(want, fl_future_message(f2));
    /* The late answers. */
    rawsrv_reply_num(&s, c1, 2, "late");
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};
    rawsrv_reply(&s, c2, garbage, sizeof garbage);
    /* The connection reads its frames in order: once the next call's reply
     * is in, the late ones have been handled. */
    rawsrv_expect_add(&s, 41, "after");
    assert_fl(FL_ETIMEDOUT, fl_future_error(f1));
    assert_fl(FL_ETIMEDOUT, fl_future_error(f2));
    assert_string_equal(want, fl_future_message(f1));
    assert_string_equal(want, fl_future_message(f2));
    assert_null(fl_future_value(f1));
    fl_future_release(f1);
    fl_future_release(f2);
    rawsrv_stop(&s);
}

/* When a call ended, for the deadline order case. */
typedef struct ended {
    _Atomic uint64_t at_ns;
    fl_test_latch_t *all; /* counted down once at_ns is set */
} ended_t;

static void note_end(fl_future_t *f, void *arg)
{
    (void)f;
    ended_t *e = arg;
    atomic_store(&e->at_ns, fl_clock_now_ns());
    fl_test_latch_count_down(e->all);
}

/* Timeouts are kept per connection: deadlines made out of order (a far
 * one, a near one, a middle one) each fail on time, in deadline order. */
static void test_timeouts_fail_in_deadline_order_each_on_time(void **state)
{
    (void)state;
    static const int timeouts[] = {600, 50, 300};
    enum { N = sizeof timeouts / sizeof timeouts[0] };
    rawsrv_t s;
    rawsrv_start(&s, CALC);
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.text = "deadline";
    fl_future_t *f[N];
    ended_t ended[N];
    fl_test_latch_t *all = fl_test_latch_alloc(N);
    assert_non_null(all);
    uint64_t t0 = fl_clock_now_ns();
    for (int i = 0; i < N; i++) {
        atomic_init(&ended[i].at_ns, 0);
        ended[i].all = all;
        req.v = i;
        f[i] = fl_test_call(s.gw, M_ADD, &req.base, timeouts[i]);
        assert_fl_ok(fl_future_on_complete(f[i], note_end, &ended[i]));
    }
    for (int i = 0; i < N; i++)
        (void)rawsrv_invoke(&s, M_ADD, i, "deadline");
    for (int i = 0; i < N; i++) {
        assert_fl(FL_ETIMEDOUT, fl_test_future_code(f[i]));
        char want[64];
        snprintf(want, sizeof want, "timed out after %d ms", timeouts[i]);
        assert_string_equal(want, fl_future_message(f[i]));
    }
    assert_int_equal(0, fl_test_latch_wait(all, WAIT_MS));
    fl_test_latch_free(all);
    for (int i = 0; i < N; i++) {
        uint64_t at = atomic_load(&ended[i].at_ns);
        int64_t ms = (int64_t)((at - t0) / 1000000u);
        if (ms < timeouts[i] || ms >= timeouts[i] + PROMPT_MS)
            fail_msg("the %d ms call ended after %lld ms", timeouts[i],
                     (long long)ms);
    }
    assert_true(atomic_load(&ended[1].at_ns) <= atomic_load(&ended[2].at_ns));
    assert_true(atomic_load(&ended[2].at_ns) <= atomic_load(&ended[0].at_ns));
    for (int i = 0; i < N; i++)
        fl_future_release(f[i]);
    /* The connection still serves. */
    rawsrv_expect_add(&s, 7, "after");
    rawsrv_stop(&s);
}

/* ---- cases: the I/O thread and SIGPIPE ----------------------------------- */

/* What a write to a socket whose peer is gone did on the I/O thread. */
typedef struct piped {
    atomic_bool on_io;
    atomic_int err; /* the write's errno; -1: it did not fail */
    fl_test_latch_t *done;
} piped_t;

static void write_to_a_closed_peer(fl_future_t *f, void *arg)
{
    (void)f;
    piped_t *p = arg;
    atomic_store(&p->on_io, fl__net_on_io_thread());
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
        close(sv[1]);
        ssize_t w = write(sv[0], "x", 1);
        atomic_store(&p->err, w < 0 ? errno : -1);
        close(sv[0]);
    }
    fl_test_latch_count_down(p->done);
}

/* libuv writes with writev: on the I/O thread, a write to a peer that is
 * gone must fail with EPIPE, not raise SIGPIPE, whose default action ends
 * the process (played by a completion callback, which runs there). */
static void test_a_broken_pipe_on_the_io_thread_is_an_error(void **state)
{
    (void)state;
    rawsrv_t s;
    rawsrv_start(&s, CALC);
    piped_t p;
    atomic_init(&p.on_io, false);
    atomic_init(&p.err, 0);
    p.done = fl_test_latch_alloc(1);
    assert_non_null(p.done);
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = 3;
    req.text = "pipe";
    fl_future_t *f = fl_test_call(s.gw, M_ADD, &req.base, WAIT_MS);
    assert_fl_ok(fl_future_on_complete(f, write_to_a_closed_peer, &p));
    uint64_t corr = rawsrv_invoke(&s, M_ADD, 3, "pipe");
    rawsrv_reply_num(&s, corr, 4, "pipe");
    fl_test_future_ok(f, "Add(3)");
    fl_future_release(f);
    assert_int_equal(0, fl_test_latch_wait(p.done, WAIT_MS));
    fl_test_latch_free(p.done);
    assert_true(atomic_load(&p.on_io));
    assert_int_equal(EPIPE, atomic_load(&p.err));
    rawsrv_expect_add(&s, 9, "after");
    rawsrv_stop(&s);
}

/* ---- cases: a blocking call reads its own answer --------------------------
 *
 * A thread blocked in fl_rpc_call_sync polls its connection's socket and
 * takes its answer itself when the answer heads the stream; anything else
 * it reads is the I/O thread's. To tell the two readers apart, the cases
 * hold the client service's I/O thread: a call on a second connection of
 * the same service runs, on completion, a callback that waits for the case
 * to let go. Meanwhile only the calling thread can read the first
 * connection. The calling thread polls for the whole case (the spin is made
 * long), so nothing depends on how quickly the raw server answers.
 */

typedef struct held {
    fl_rpc_service_t *svc;
    rawsrv_t s1;       /* the connection under test */
    rawsrv_t s2;       /* the connection whose answer holds the I/O thread */
    fl_future_t *hold; /* s2's call */
    fl_test_latch_t *entered, *release;
    uint64_t spin_was;
} held_t;

static void hold_io(fl_future_t *f, void *arg)
{
    (void)f;
    held_t *h = arg;
    fl_test_latch_count_down(h->entered);
    (void)fl_test_latch_wait(h->release, WAIT_MS);
}

static fl__net_stats_t held_stats(const held_t *h)
{
    fl__net_stats_t st;
    fl__net_stats(h->svc->net, &st);
    return st;
}

/* Two raw servers on one client service; the I/O thread held in the
 * completion callback of s2's Add(1, "hold"). */
static void held_start(held_t *h)
{
    memset(h, 0, sizeof *h);
    h->spin_was =
        atomic_exchange(&fl__net_await_spin_ns, (uint64_t)WAIT_MS * 1000000u);
    h->svc = client_service();
    rawsrv_start_on(&h->s1, CALC, h->svc);
    rawsrv_start_on(&h->s2, CALC, h->svc);
    h->entered = fl_test_latch_alloc(1);
    h->release = fl_test_latch_alloc(1);
    assert_non_null(h->entered);
    assert_non_null(h->release);
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = 1;
    req.text = "hold";
    h->hold = fl_test_call(h->s2.gw, M_ADD, &req.base, WAIT_MS);
    assert_fl_ok(fl_future_on_complete(h->hold, hold_io, h));
    uint64_t corr = rawsrv_invoke(&h->s2, M_ADD, 1, "hold");
    rawsrv_reply_num(&h->s2, corr, 2, "hold");
    assert_int_equal(0, fl_test_latch_wait(h->entered, WAIT_MS));
}

/* Lets the I/O thread go on; s2's call has its answer. */
static void held_release(held_t *h)
{
    fl_test_latch_count_down(h->release);
    fl_test_future_ok(h->hold, "the holding call");
    const Flhostile__Num *r = fl_future_value(h->hold);
    assert_int_equal(2, r->v);
}

/* Frees both gateways and the service, then drains the raw servers (s1
 * only if s1_open). */
static void held_stop(held_t *h, bool s1_open)
{
    fl_future_release(h->hold);
    fl_rpc_gateway_free(h->s1.gw);
    fl_rpc_gateway_free(h->s2.gw);
    fl_rpc_service_free(h->svc);
    if (s1_open) {
        rawsrv_drain(&h->s1);
    } else {
        raw_fd_close(h->s1.lfd);
    }
    rawsrv_drain(&h->s2);
    fl_test_latch_free(h->entered);
    fl_test_latch_free(h->release);
    atomic_store(&fl__net_await_spin_ns, h->spin_was);
}

/* Waits until threads blocked in calls on h's service read n times. */
static void held_wait_caller_reads(const held_t *h, uint64_t n)
{
    uint64_t t0 = fl_clock_now_ns();
    while (held_stats(h).caller_reads < n) {
        if (fl_test_ms_since(t0) > WAIT_MS)
            fail_msg("no read by the calling thread after %d ms", WAIT_MS);
        sched_yield();
    }
}

/* A thread blocked in fl_rpc_call_sync(gw, Add(v, text)). */
typedef struct caller {
    fl_rpc_gateway_t *gw;
    int64_t v;
    const char *text;
    pthread_t thread;
    fl_test_latch_t *done;
    int rc;
    char msg[FL__ERRMSG_MAX + 1];
    ProtobufCMessage *reply;
} caller_t;

static void *caller_main(void *p)
{
    caller_t *c = p;
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = c->v;
    req.text = (char *)c->text;
    c->rc = fl_rpc_call_sync(c->gw, M_ADD, &req.base, WAIT_MS, &c->reply);
    snprintf(c->msg, sizeof c->msg, "%s",
             c->rc == FL_OK ? "" : fl_rpc_last_message());
    fl_test_latch_count_down(c->done);
    return NULL;
}

static void caller_start(caller_t *c, fl_rpc_gateway_t *gw, int64_t v,
                         const char *text)
{
    memset(c, 0, sizeof *c);
    c->gw = gw;
    c->v = v;
    c->text = text;
    c->done = fl_test_latch_alloc(1);
    assert_non_null(c->done);
    assert_int_equal(0, pthread_create(&c->thread, NULL, caller_main, c));
}

/* Waits for the caller's call to return; its code. */
static int caller_join(caller_t *c)
{
    assert_int_equal(0, fl_test_latch_wait(c->done, WAIT_MS));
    assert_int_equal(0, pthread_join(c->thread, NULL));
    fl_test_latch_free(c->done);
    return c->rc;
}

/* The caller's reply is Num(v, text); frees it. */
static void caller_expect(caller_t *c, int64_t v, const char *text)
{
    const Flhostile__Num *r = (const Flhostile__Num *)c->reply;
    assert_non_null(r);
    assert_ptr_equal(&flhostile__num__descriptor, r->base.descriptor);
    assert_int_equal(v, r->v);
    assert_string_equal(text, r->text);
    protobuf_c_message_free_unpacked(c->reply, NULL);
}

/* held_start, then a caller blocked in Add(5, text) on s1, whose INVOKE the
 * raw server has read: its corr. */
static uint64_t held_call(held_t *h, caller_t *c, const char *text)
{
    held_start(h);
    caller_start(c, h->s1.gw, 5, text);
    return rawsrv_invoke(&h->s1, M_ADD, 5, text);
}

/* One send of a REPLY Num(v, text) for corr and a PING ping, in that order
 * or the other (ping_first). */
static void send_reply_and_ping(rawsrv_t *s, uint64_t corr, int64_t v,
                                const char *text, uint64_t ping,
                                bool ping_first)
{
    size_t blen, rlen, plen;
    uint8_t *body = pack_num(v, text, &blen);
    uint8_t *r = frame_bytes(FL__K_REPLY, 0, corr, NULL, body, blen, &rlen);
    uint8_t *p = frame_bytes(FL__K_PING, 0, ping, NULL, NULL, 0, &plen);
    uint8_t *both = malloc(rlen + plen);
    assert_non_null(both);
    memcpy(both, ping_first ? p : r, ping_first ? plen : rlen);
    memcpy(both + (ping_first ? plen : rlen), ping_first ? r : p,
           ping_first ? rlen : plen);
    raw_send(&s->r, both, rlen + plen);
    free(both);
    free(p);
    free(r);
    free(body);
}

/* The next frame from the client is PONG corr. */
static void expect_pong(rawsrv_t *s, uint64_t corr)
{
    frame_t f;
    char d[1200];
    next_frame_or_fail(&s->r, &f, "PONG", corr);
    if (f.h.kind != FL__K_PONG || f.h.corr != corr)
        fail_msg("want PONG corr %llu, got %s", (unsigned long long)corr,
                 describe(&f, d, sizeof d));
    frame_clear(&f);
}

/* With the I/O thread held, a blocking call still gets its answer: the
 * calling thread read it. */
static void test_a_blocking_call_reads_its_own_answer(void **state)
{
    (void)state;
    held_t h;
    caller_t c;
    uint64_t corr = held_call(&h, &c, "own");
    rawsrv_reply_num(&h.s1, corr, 6, "own");
    assert_fl_ok(caller_join(&c));
    caller_expect(&c, 6, "own");
    assert_int_equal(1, held_stats(&h).caller_answers);
    held_release(&h);
    /* The next call, with the I/O thread free, succeeds too. */
    rawsrv_expect_add(&h.s1, 8, "free");
    held_stop(&h, true);
}

/* What follows the caller's answer in the same read (a PING) is left to
 * the I/O thread, which handles it once free: the PONG comes then. */
static void test_frames_after_the_answer_go_to_the_io_thread(void **state)
{
    (void)state;
    held_t h;
    caller_t c;
    uint64_t corr = held_call(&h, &c, "first");
    send_reply_and_ping(&h.s1, corr, 6, "first", 77, false);
    assert_fl_ok(caller_join(&c));
    caller_expect(&c, 6, "first");
    assert_int_equal(1, held_stats(&h).caller_answers);
    held_release(&h);
    expect_pong(&h.s1, 77);
    rawsrv_expect_add(&h.s1, 8, "after");
    held_stop(&h, true);
}

/* An answer behind another frame is not taken out of order: the calling
 * thread leaves both, and its call ends once the I/O thread has handled
 * the PING before it. */
static void test_an_answer_behind_another_frame_waits_its_turn(void **state)
{
    (void)state;
    held_t h;
    caller_t c;
    uint64_t corr = held_call(&h, &c, "second");
    send_reply_and_ping(&h.s1, corr, 6, "second", 78, true);
    held_wait_caller_reads(&h, 1);
    /* Read and left: the call cannot end while the I/O thread is held. */
    assert_int_equal(1, fl_test_latch_count(c.done));
    assert_int_equal(0, held_stats(&h).caller_answers);
    held_release(&h);
    assert_fl_ok(caller_join(&c));
    caller_expect(&c, 6, "second");
    expect_pong(&h.s1, 78);
    assert_int_equal(0, held_stats(&h).caller_answers);
    held_stop(&h, true);
}

/* The calling thread reads the first half of its answer: it leaves it, and
 * the I/O thread puts the answer together with the second half. */
static void test_an_answer_read_in_halves_is_put_together(void **state)
{
    (void)state;
    held_t h;
    caller_t c;
    uint64_t corr = held_call(&h, &c, "halves");
    size_t blen, len;
    uint8_t *body = pack_num(6, "halves", &blen);
    uint8_t *r = frame_bytes(FL__K_REPLY, 0, corr, NULL, body, blen, &len);
    raw_send(&h.s1.r, r, len / 2);
    held_wait_caller_reads(&h, 1);
    raw_send(&h.s1.r, r + len / 2, len - len / 2);
    free(r);
    free(body);
    assert_int_equal(1, fl_test_latch_count(c.done));
    held_release(&h);
    assert_fl_ok(caller_join(&c));
    caller_expect(&c, 6, "halves");
    assert_int_equal(0, held_stats(&h).caller_answers);
    held_stop(&h, true);
}

/* The server closes while the calling thread polls: the thread finds the
 * stream's end and leaves it to the I/O thread, which fails the call as
 * for any lost connection. */
static void test_the_stream_end_found_by_the_caller_fails_its_call(void **state)
{
    (void)state;
    held_t h;
    caller_t c;
    (void)held_call(&h, &c, "end");
    raw_close(&h.s1.r);
    held_wait_caller_reads(&h, 1);
    assert_int_equal(1, fl_test_latch_count(c.done));
    held_release(&h);
    assert_fl(FL_EUNREACHABLE, caller_join(&c));
    char want[160];
    snprintf(want, sizeof want,
             "recipient unreachable: connection to 127.0.0.1:%d lost: the "
             "peer closed the connection",
             h.s1.port);
    assert_string_equal(want, c.msg);
    assert_null(c.reply);
    assert_int_equal(0, held_stats(&h).caller_answers);
    held_stop(&h, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_version_mismatch_fails_the_handshake),
        FL_TEST(test_closed_before_hello_fails_connect_and_backs_off),
        FL_TEST(test_blocking_on_the_io_thread_is_refused),
        FL_TEST(test_calls_after_shutdown_are_refused),
        FL_TEST(test_server_shutdown_fails_calls_fast),
        FL_TEST(test_undecodable_reply_fails_the_call_with_edecode),
        FL_TEST(test_too_deeply_nested_reply_fails_the_call_with_edecode),
        FL_TEST(test_late_replies_after_a_timeout_are_dropped),
        FL_TEST(test_timeouts_fail_in_deadline_order_each_on_time),
        FL_TEST(test_a_broken_pipe_on_the_io_thread_is_an_error),
        FL_TEST(test_a_blocking_call_reads_its_own_answer),
        FL_TEST(test_frames_after_the_answer_go_to_the_io_thread),
        FL_TEST(test_an_answer_behind_another_frame_waits_its_turn),
        FL_TEST(test_an_answer_read_in_halves_is_put_together),
        FL_TEST(test_the_stream_end_found_by_the_caller_fails_its_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
