/*
 * timeout_progress_test.c - what a remote call's timeout says about how
 * far its request got (src/remote/pending.c, fl__pending_progress): sent,
 * partly sent, queued behind other bytes, or held back while the
 * connection was being made; and the lane counters it reads, which must
 * balance once everything queued was written.
 */
#include "client_fixture.h"

#include "remote/conn.h"
#include "rpc/gateway.h"

#include <errno.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* ---- the text, from the counters ---------------------------------------- */

/* The progress text of a request of len bytes ending at end on lane, with
 * the connection in state and its lanes' done counters at done. */
static const char *progress(int state, int lane, uint64_t end, uint32_t len,
                            uint64_t done0, uint64_t done1, char *buf,
                            size_t cap)
{
    fl__pending_t p;
    memset(&p, 0, sizeof p);
    p.lane = (uint8_t)lane;
    p.end = end;
    p.len = len;
    uint64_t done[2] = {done0, done1};
    fl__pending_progress(&p, state, done, "host:6123", buf, cap);
    return buf;
}

static void test_progress_says_how_far_the_request_got(void **state)
{
    (void)state;
    char b[256];
    /* Written whole: its lane wrote up to its end, or past it. */
    assert_string_equal("request sent", progress(C_OPEN, FL__LANE_SMALL, 1000,
                                                 100, 1000, 0, b, sizeof b));
    assert_string_equal("request sent", progress(C_OPEN, FL__LANE_SMALL, 1000,
                                                 100, 5000, 0, b, sizeof b));
    /* Partly: the lane wrote into it. */
    assert_string_equal(
        "request partly sent: 40 of 100 bytes written",
        progress(C_OPEN, FL__LANE_SMALL, 1000, 100, 940, 0, b, sizeof b));
    /* Not at all: the bytes ahead of it in its lane, or none. */
    assert_string_equal(
        "request not sent: first in its queue",
        progress(C_OPEN, FL__LANE_SMALL, 1000, 100, 900, 0, b, sizeof b));
    assert_string_equal(
        "request not sent: still queued behind 650 bytes",
        progress(C_OPEN, FL__LANE_SMALL, 1000, 100, 250, 0, b, sizeof b));
    /* The big lane counts on its own counter, not the small one's. */
    assert_string_equal(
        "request not sent: still queued behind 3000 bytes",
        progress(C_OPEN, FL__LANE_BIG, 9000, 5000, 9000, 1000, b, sizeof b));
    assert_string_equal("request partly sent: 2000000 of 8000000 bytes "
                        "written",
                        progress(C_OPEN, FL__LANE_BIG, 8000000, 8000000, 0,
                                 2000000, b, sizeof b));
    /* The counters run modulo 2^64 (a HELLO put at the head lowers done
     * below zero): only differences count. */
    assert_string_equal("request not sent: still queued behind 90 bytes",
                        progress(C_OPEN, FL__LANE_SMALL, 10, 20,
                                 UINT64_MAX - 99, 0, b, sizeof b));
    assert_string_equal("request sent", progress(C_OPEN, FL__LANE_SMALL, 10, 20,
                                                 10, 0, b, sizeof b));
    /* No socket yet: the connection is named. */
    static const int making[] = {C_IDLE, C_RESOLVING, C_CONNECTING};
    for (size_t i = 0; i < sizeof making / sizeof making[0]; i++)
        assert_string_equal(
            "request not sent: the connection to host:6123 "
            "was still being established",
            progress(making[i], FL__LANE_SMALL, 1000, 100, 0, 0, b, sizeof b));
    assert_string_equal(
        "request not sent: the connection to host:6123 was "
        "closing",
        progress(C_CLOSING, FL__LANE_SMALL, 1000, 100, 0, 0, b, sizeof b));
}

/* ---- the counters, on a real connection --------------------------------- */

/* The gateway's connection, its lock held while fn looks at it. */
static void lanes_of(fl_rpc_gateway_t *gw, uint64_t enq[2], uint64_t done[2],
                     size_t *queued, int *cstate)
{
    fl__conn_t *c = gw->conn;
    fl__conn_lock(c);
    memcpy(enq, c->enq, sizeof c->enq);
    memcpy(done, c->done, sizeof c->done);
    *queued = c->queued;
    *cstate = c->state;
    fl__conn_unlock(c);
}

/* Once every frame queued was written (the raw server read the client's
 * HELLO, CONNECT and calls), each lane wrote what it queued: the HELLO put
 * in front of the CONNECT queued while connecting counts once. */
static void test_lane_counters_balance_once_all_is_written(void **state)
{
    (void)state;
    rawsrv_t s;
    rawsrv_start(&s, CALC);
    for (int i = 0; i < 3; i++)
        rawsrv_expect_add(&s, i, "balance");
    uint64_t enq[2], done[2];
    size_t queued;
    int cstate;
    lanes_of(s.gw, enq, done, &queued, &cstate);
    assert_int_equal(C_OPEN, cstate);
    assert_int_equal(0, queued);
    assert_true(enq[FL__LANE_SMALL] > 0);
    assert_int_equal(enq[FL__LANE_SMALL], done[FL__LANE_SMALL]);
    assert_int_equal(enq[FL__LANE_BIG], done[FL__LANE_BIG]);
    rawsrv_stop(&s);
}

/* ---- a call whose connection is being made ------------------------------ */

/* Waits (bounded) until the gateway's connection has no socket: the
 * client saw its peer close. */
static void await_idle(fl_rpc_gateway_t *gw)
{
    uint64_t t0 = fl_clock_now_ns();
    for (;;) {
        uint64_t enq[2], done[2];
        size_t queued;
        int cstate;
        lanes_of(gw, enq, done, &queued, &cstate);
        if (cstate == C_IDLE)
            return;
        if (fl_test_ms_since(t0) > (uint64_t)PROMPT_MS)
            fail_msg("the connection is still in state %d", cstate);
        usleep(1000);
    }
}

/*
 * The raw server closes the connection, and its listener takes no more
 * (a backlog of 0, which one connection the test makes fills): the
 * client's next call dials, and its SYN gets no answer (the kernel drops
 * it), so the connection is still being made when the call times out,
 * and the message says so.
 */
static void test_a_call_timing_out_while_connecting_says_not_sent(void **state)
{
    (void)state;
    rawsrv_t s;
    rawsrv_start(&s, CALC);
    raw_close(&s.r);
    await_idle(s.gw);
    assert_int_equal(0, listen(s.lfd, 0)); /* again: a smaller backlog */
    int filler = raw_connect(s.port, 0);   /* its one place */

    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = 1;
    req.text = "unsent";
    uint64_t t0 = fl_clock_now_ns();
    fl_future_t *f = fl_test_call(s.gw, M_ADD, &req.base, SHORT_MS);
    assert_fl(FL_ETIMEDOUT, fl_test_future_code(f));
    fl_test_assert_elapsed("the call timing out", fl_test_ms_since(t0),
                           SHORT_MS, SHORT_MS + PROMPT_MS);
    char how[128], want[512];
    snprintf(how, sizeof how,
             "request not sent: the connection to 127.0.0.1:%d was still "
             "being established",
             s.port);
    rawsrv_timeout_msg(&s, "flhostile.CalcGateway.Add", SHORT_MS, how, want,
                       sizeof want);
    assert_string_equal(want, fl_future_message(f));
    fl_future_release(f);

    raw_fd_close(filler);
    raw_fd_close(s.lfd);
    fl_rpc_gateway_free(s.gw);
    fl_rpc_service_free(s.svc);
}

/* ---- a request the socket took part of ----------------------------------- */

/* Reads and drops what fd receives until the peer closes it. */
static void *discard_until_eof(void *p)
{
    int fd = *(int *)p;
    char buf[65536];
    while (recv(fd, buf, sizeof buf, 0) > 0)
        ;
    return NULL;
}

/*
 * The raw server stops reading while the client calls N times with 30 KB
 * each: the first requests fill the socket, the rest wait in the
 * connection's queue, and one write of many of them is in flight, of
 * which the socket took a part (libuv holds the rest). When the calls
 * time out, each says how far it got against what the socket took
 * (unread at the server plus in the client's send queue, W bytes): the
 * requests before W "sent", the one across it "partly sent", the next
 * "first in its queue" or "queued behind" the bytes before it.
 */
static void test_what_the_socket_took_counts_as_written(void **state)
{
    (void)state;
    rawsrv_t s;
    rawsrv_start(&s, CALC);
    /* Long enough for the calls to be made and the socket to fill before
     * the first times out, also under the sanitizers. */
    enum { N = 300, TEXT = 30000, SETTLE_MS = 1000 };
    char *text = malloc(TEXT + 1);
    assert_non_null(text);
    memset(text, 'x', TEXT);
    text[TEXT] = '\0';
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = 1;
    req.text = text;
    fl_future_t *f[N];
    for (int i = 0; i < N; i++)
        f[i] = fl_test_call(s.gw, M_ADD, &req.base, SETTLE_MS);
    free(text);
    for (int i = 0; i < N; i++)
        assert_fl(FL_ETIMEDOUT, fl_test_future_code(f[i]));

    /* Nothing moves while the server reads nothing. */
    int unread = 0, outq = 0, cfd = -1;
    assert_int_equal(0, ioctl(s.r.fd, FIONREAD, &unread));
    assert_int_equal(0, uv_fileno((uv_handle_t *)&s.gw->conn->tcp, &cfd));
    assert_int_equal(0, ioctl(cfd, SIOCOUTQ, &outq));
    uint64_t w = (uint64_t)unread + (uint64_t)outq;

    /* A request's size: from the last two, queued behind the others. */
    unsigned long long b1 = 0, b2 = 0;
    const char *q = "request not sent: still queued behind ";
    const char *m1 = strstr(fl_future_message(f[N - 2]), q);
    const char *m2 = strstr(fl_future_message(f[N - 1]), q);
    assert_non_null(m1);
    assert_non_null(m2);
    b1 = strtoull(m1 + strlen(q), NULL, 10);
    b2 = strtoull(m2 + strlen(q), NULL, 10);
    uint64_t len = b2 - b1;
    assert_true(len > TEXT && len < TEXT + 100);
    unsigned sent = 0;
    for (int i = 0; i < N; i++) {
        uint64_t start = (uint64_t)i * len;
        char how[128], want[512];
        if (w >= start + len) {
            snprintf(how, sizeof how, "request sent");
            sent++;
        } else if (w > start) {
            snprintf(how, sizeof how,
                     "request partly sent: %llu of %llu bytes written",
                     (unsigned long long)(w - start), (unsigned long long)len);
        } else if (w == start) {
            snprintf(how, sizeof how, "request not sent: first in its queue");
        } else {
            snprintf(how, sizeof how,
                     "request not sent: still queued behind %llu bytes",
                     (unsigned long long)(start - w));
        }
        rawsrv_timeout_msg(&s, "flhostile.CalcGateway.Add", SETTLE_MS, how,
                           want, sizeof want);
        assert_string_equal(want, fl_future_message(f[i]));
        fl_future_release(f[i]);
    }
    print_message("%u of %d requests in the socket (%llu bytes)\n", sent, N,
                  (unsigned long long)w);
    assert_true(sent > 0 && sent < N);

    /* The rest goes out (requests are not taken back), then BYE. */
    pthread_t reader;
    assert_int_equal(0,
                     pthread_create(&reader, NULL, discard_until_eof, &s.r.fd));
    fl_rpc_gateway_free(s.gw);
    fl_rpc_service_free(s.svc);
    pthread_join(reader, NULL);
    raw_close(&s.r);
    raw_fd_close(s.lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_progress_says_how_far_the_request_got),
        FL_TEST(test_lane_counters_balance_once_all_is_written),
        FL_TEST(test_a_call_timing_out_while_connecting_says_not_sent),
        FL_TEST(test_what_the_socket_took_counts_as_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
