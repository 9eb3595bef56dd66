/*
 * handshake_test.c - the handshake's deadline and the cap on connections
 * in their handshake (src/remote/handshake.c; docs/wire-protocol.md,
 * "Handshake deadline"): silent peers beyond max_handshaking drop the
 * oldest silent one, a silent peer is dropped after handshake_timeout_ms,
 * and a client whose server never says HELLO fails naming the address and
 * the handshake. Each server case keeps a good client served meanwhile
 * (wire_client.h's fixture).
 */
#include "wire_raw.h"

#include <poll.h>

#define SERVER_NAME "handshake-server"
#define EP_ID "calc"
#define GOOD_CALLS 20
/* How late a deadline may fire, also under sanitizers and load. */
#define LATE_MS 2000

#define CAP 64u
#define SILENT 1000

/* A server with these handshake options, its endpoint and a good client;
 * *state gets the fixture. */
static int start(void **state, int64_t timeout_ms, unsigned cap)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    fl_rpc_service_opts_t so = server_opts(SERVER_NAME, 0, 0);
    so.handshake_timeout_ms = timeout_ms;
    so.max_handshaking = cap;
    *state = fx;
    return fixture_start_opts(fx, &so, EP_ID, calc_services(), 2);
}

static int setup_cap(void **state)
{
    return start(state, 30000, CAP);
}

static int setup_short(void **state)
{
    return start(state, 300, 0);
}

/* A silent raw peer on its own socket (not raw_fds': there are many),
 * reading with a timeout. */
static raw_t silent_peer(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        fail_msg("socket: %s", strerror(errno));
    struct timeval tv = {IO_TIMEOUT_MS / 1000, 0};
    assert_int_equal(0,
                     setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    struct sockaddr_in sa = loopback(port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        fail_msg("connect %d: %s", port, strerror(errno));
    return raw_of(fd, FL__FRAME_DEFAULT_MAX, "silent", FL__FRAME_DEFAULT_MAX,
                  SERVER_NAME, EP_ID);
}

/* Reads the server's HELLO from r. */
static void expect_hello(raw_t *r)
{
    frame_t f;
    if (read_frame(r, &f) == RD_CLOSED)
        fail_msg("the server closed the connection instead of HELLO");
    check_peer_hello(r, &f);
    r->hello_seen = true;
    frame_clear(&f);
}

static void test_silent_peers_beyond_the_cap_drop_the_oldest(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = good_done(&fx->good);
    raw_t *r = calloc(SILENT, sizeof *r);
    assert_non_null(r);
    for (int i = 0; i < SILENT; i++)
        r[i] = silent_peer(fx->port);
    /* The last is accepted once its HELLO comes: all are, in order. */
    expect_hello(&r[SILENT - 1]);
    /* The oldest SILENT - CAP were dropped, each with the reason. */
    char msg[FL__ERRMSG_MAX + 1];
    for (int i = 0; i < SILENT - (int)CAP; i++) {
        expect_error_then_close(&r[i], FL_EHANDSHAKE, msg, sizeof msg);
        assert_string_equal("too many connections in their handshake (limit "
                            "64): the oldest is dropped",
                            msg);
    }
    /* The newest CAP are held: HELLO, and nothing more yet. */
    for (int i = SILENT - (int)CAP; i < SILENT; i++) {
        if (i != SILENT - 1)
            expect_hello(&r[i]);
        struct pollfd p = {r[i].fd, POLLIN, 0};
        assert_int_equal(0, poll(&p, 1, 0));
    }
    /* Served meanwhile: the good client, and a new session (whose HELLO
     * comes at once, so only a silent peer makes room for it). */
    good_wait(&fx->good, mark + GOOD_CALLS, WAIT_MS);
    raw_t s = raw_of(raw_connect(fx->port, 0), FL__FRAME_DEFAULT_MAX, "new",
                     FL__FRAME_DEFAULT_MAX, SERVER_NAME, EP_ID);
    raw_hello(&s);
    raw_attach(&s, 1, CALC_NAME, CALC_INDEX);
    expect_usable(&s, 2, 41);
    raw_close(&s);
    for (int i = 0; i < SILENT; i++)
        close(r[i].fd);
    free(r);
}

static void test_a_silent_peer_is_dropped_after_the_deadline(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = good_done(&fx->good);
    uint64_t t0 = fl_clock_now_ns();
    raw_t r = raw_of(raw_connect(fx->port, 0), FL__FRAME_DEFAULT_MAX, "silent",
                     FL__FRAME_DEFAULT_MAX, SERVER_NAME, EP_ID);
    char msg[FL__ERRMSG_MAX + 1];
    expect_error_then_close(&r, FL_EHANDSHAKE, msg, sizeof msg);
    fl_test_assert_elapsed("the handshake deadline", fl_test_ms_since(t0), 300,
                           300 + LATE_MS);
    assert_string_equal("no HELLO within 300 ms", msg);
    raw_close(&r);
    good_wait(&fx->good, mark + GOOD_CALLS, WAIT_MS);
}

/*
 * The client's side: a server that accepts and never says HELLO. A client
 * service with these timeouts connects; it must fail with code after
 * 300 ms, with "Could not connect to rpc endpoint under address <a>: "
 * and `reason`.
 */
static void expect_client_failure(int64_t handshake_ms, int64_t timeout_ms,
                                  int code, const char *reason)
{
    int port = 0;
    int lfd = raw_listen(0, &port);
    fl_rpc_service_opts_t co = {0};
    co.workers = 1;
    co.handshake_timeout_ms = handshake_ms;
    co.default_timeout_ms = timeout_ms;
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(&co, &svc));
    char addr[64], want[256], msg[256];
    snprintf(addr, sizeof addr, "fling.tcp://127.0.0.1:%d/calc", port);
    uint64_t t0 = fl_clock_now_ns();
    int rc = fl_test_connect_error(
        svc, addr, &flhostile__calc_gateway__descriptor, msg, sizeof msg);
    fl_test_assert_elapsed("the client's failure", fl_test_ms_since(t0), 300,
                           300 + LATE_MS);
    assert_fl(code, rc);
    snprintf(want, sizeof want,
             "Could not connect to rpc endpoint under address %s: %s", addr,
             reason);
    assert_string_equal(want, msg);
    fl_test_service_end(svc);
    raw_fd_close(lfd);
}

static void test_the_client_names_the_address_and_the_handshake(void **state)
{
    (void)state;
    expect_client_failure(300, 0, FL_ECONNECT,
                          "handshake timed out: no HELLO within 300 ms");
}

/* The connect's own timeout first: the same words about where. */
static void test_a_shorter_connect_timeout_names_the_address(void **state)
{
    (void)state;
    expect_client_failure(5000, 300, FL_ETIMEDOUT,
                          "timed out after 300 ms (no handshake yet)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_silent_peers_beyond_the_cap_drop_the_oldest, setup_cap,
            raw_fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_silent_peer_is_dropped_after_the_deadline, setup_short,
            raw_fixture_teardown),
        cmocka_unit_test(test_the_client_names_the_address_and_the_handshake),
        cmocka_unit_test(test_a_shorter_connect_timeout_names_the_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
