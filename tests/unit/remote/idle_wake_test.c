/*
 * idle_wake_test.c - the I/O thread's deadline timer costs nothing per
 * idle connection: with 1,000 idle connections (handshake done, nothing
 * pending) it neither wakes nor looks at any of them; a request's deadline
 * among them wakes it for that one connection (src/remote/wake.c); and
 * the default HELLO deadline still closes a silent connection among them
 * (src/remote/handshake.c).
 */
#include "client_fixture.h"

#include <sys/resource.h>

#define NIDLE 1000
/* How long the idle connections are watched. */
#define WATCH_MS 400

static fl__net_stats_t stats_of(fl_rpc_service_t *svc)
{
    fl__net_stats_t st;
    fl__net_stats(svc->net, &st);
    return st;
}

/* A listening service with the default options. */
static fl_rpc_service_t *listening(void)
{
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(server_alloc("fling", 0, 0, &svc));
    return svc;
}

/* Enough descriptors for both ends of NIDLE connections and the rest. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    assert_int_equal(0, getrlimit(RLIMIT_NOFILE, &rl));
    if (rl.rlim_cur < 2 * NIDLE + 100) {
        rl.rlim_cur = rl.rlim_max;
        assert_int_equal(0, setrlimit(RLIMIT_NOFILE, &rl));
    }
    if (rl.rlim_cur < 2 * NIDLE + 100)
        fail_msg("this case needs %d file descriptors; the hard limit is "
                 "%llu (raise it: ulimit -Hn)",
                 2 * NIDLE + 100, (unsigned long long)rl.rlim_max);
}

/* A plain socket to 127.0.0.1:port past both HELLOs (not tracked as a
 * raw socket: there are too many). */
static int idle_conn(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {IO_TIMEOUT_MS / 1000, 0};
    assert_int_equal(0,
                     setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    struct sockaddr_in sa = loopback(port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        fail_msg("connect: %s", strerror(errno));
    raw_t r = raw_of(fd, FL__FRAME_DEFAULT_MAX, "idle", FL__FRAME_DEFAULT_MAX,
                     "fling", "calc");
    raw_hello(&r);
    return fd;
}

/* 1,000 idle connections: over WATCH_MS the timer does not fire and no
 * connection is looked at. Then a call with a 300 ms timeout from the
 * same service to a raw server that never answers: it times out, and the
 * timer looks at a connection or two, not at the 1,000. */
static void test_idle_connections_cost_no_wakeups(void **state)
{
    (void)state;
    raise_fd_limit();
    fl_rpc_service_t *svc = listening();
    int port = fl_rpc_service_port(svc);
    static int fds[NIDLE];
    for (int i = 0; i < NIDLE; i++)
        fds[i] = idle_conn(port);
    /* Every HELLO handled: each connection is off the timer's heap. */
    uint64_t t0 = fl_clock_now_ns();
    while (stats_of(svc).frames_in < NIDLE &&
           fl_test_ms_since(t0) < (uint64_t)WAIT_MS)
        usleep(1000);
    fl__net_stats_t a = stats_of(svc);
    assert_int_equal(NIDLE, a.conns_accepted);
    assert_int_equal(NIDLE, a.frames_in);
    usleep(WATCH_MS * 1000);
    fl__net_stats_t b = stats_of(svc);
    assert_int_equal(a.wakes, b.wakes);
    assert_int_equal(a.wake_visits, b.wake_visits);

    rawsrv_t s;
    rawsrv_start_on(&s, CALC, svc);
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.text = "lost";
    fl_future_t *f = fl_test_call(s.gw, M_ADD, &req.base, 300);
    assert_fl(FL_ETIMEDOUT, fl_test_future_code(f));
    char want[256];
    assert_string_equal(rawsrv_timeout_msg(&s, "flhostile.CalcGateway.Add", 300,
                                           "request sent", want, sizeof want),
                        fl_future_message(f));
    fl_future_release(f);
    fl__net_stats_t c = stats_of(svc);
    print_message("%d idle connections: %llu wake-ups, %llu visits in %d ms; "
                  "a timed-out call: %llu wake-ups, %llu visits\n",
                  NIDLE, (unsigned long long)(b.wakes - a.wakes),
                  (unsigned long long)(b.wake_visits - a.wake_visits), WATCH_MS,
                  (unsigned long long)(c.wakes - b.wakes),
                  (unsigned long long)(c.wake_visits - b.wake_visits));
    assert_true(c.wakes > b.wakes);
    if (c.wake_visits - b.wake_visits > 4)
        fail_msg("a call's timeout made the timer look at %llu connections",
                 (unsigned long long)(c.wake_visits - b.wake_visits));
    for (int i = 0; i < NIDLE; i++)
        close(fds[i]);
    raw_close(&s.r);
    raw_fd_close(s.lfd);
    fl_rpc_gateway_free(s.gw);
    fl_test_service_end(svc);
}

/* A connection that never says HELLO is refused once its handshake
 * deadline passes (the default, 5 s): ERROR FL_EHANDSHAKE "no HELLO
 * within 5000 ms", then the server closes it. */
static void
test_a_silent_connection_is_closed_at_its_hello_deadline(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = listening();
    raw_t r =
        raw_of(raw_connect(fl_rpc_service_port(svc), 0), FL__FRAME_DEFAULT_MAX,
               "silent", FL__FRAME_DEFAULT_MAX, "fling", "calc");
    uint64_t t0 = fl_clock_now_ns();
    frame_t f;
    assert_int_equal(RD_FRAME, read_frame(&r, &f)); /* its HELLO */
    check_peer_hello(&r, &f);
    frame_clear(&f);
    r.hello_seen = true;
    char msg[FL__ERRMSG_MAX + 1];
    expect_error_then_close(&r, FL_EHANDSHAKE, msg, sizeof msg);
    assert_string_equal("no HELLO within 5000 ms", msg);
    fl_test_assert_elapsed("the HELLO deadline", fl_test_ms_since(t0), 4990,
                           IO_TIMEOUT_MS + 2000);
    raw_close(&r);
    fl_test_service_end(svc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_idle_connections_cost_no_wakeups),
        FL_TEST(test_a_silent_connection_is_closed_at_its_hello_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
