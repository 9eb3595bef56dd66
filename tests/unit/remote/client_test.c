/*
 * client_test.c - the calling side of the transport against peers that
 * misbehave in ways a fling server never does: a server of another
 * protocol version, one that accepts and then closes, and the calling
 * side's own guards (blocking on the I/O thread, calls after shutdown,
 * tells while backing off). The fake servers are plain sockets in a
 * thread. REPLY bodies a fling server never sends are client_reply_test.c's.
 */
#include "client_fixture.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_version_mismatch_fails_the_handshake),
        FL_TEST(test_closed_before_hello_fails_connect_and_backs_off),
        FL_TEST(test_blocking_on_the_io_thread_is_refused),
        FL_TEST(test_calls_after_shutdown_are_refused),
        FL_TEST(test_server_shutdown_fails_calls_fast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
