/*
 * client_reply_test.c - REPLY bodies a fling server never sends
 * (undecodable, nested deeper than the limit, late after the call timed
 * out), timeouts failing in deadline order, and a write to a closed peer
 * on the I/O thread (SIGPIPE), against the raw server of client_fixture.h.
 */
#include "client_fixture.h"

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
        const char *why; /* the end of the message, after the type */
    } bad[] = {
        {"a truncated field key",
         {0xff, 0xff, 0xff},
         3,
         ": truncated field key in flhostile.Num"},
        /* v (1) as length-delimited (an int64 is a varint). */
        {"a field of the wrong wire type", {0x0a, 0x00}, 2, "."},
    };
    char msg[512], want[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Flhostile__Num req = FLHOSTILE__NUM__INIT;
        req.v = (int64_t)i;
        req.text = "bad";
        fl_future_t *f = fl_test_call(s.gw, M_ADD, &req.base, WAIT_MS);
        uint64_t corr = rawsrv_invoke(&s, M_ADD, (int64_t)i, "bad");
        rawsrv_reply(&s, corr, bad[i].body, bad[i].len);
        expect_decode_failure(&s, f, "flhostile.CalcGateway.Add",
                              "flhostile.Num", msg, sizeof msg);
        snprintf(want, sizeof want,
                 "Could not decode the reply of flhostile.CalcGateway.Add "
                 "from fling.tcp://127.0.0.1:%d/calc: flhostile.Num%s",
                 s.port, bad[i].why);
        assert_string_equal(want, msg);
        fl_future_release(f);
        /* The same connection still serves the gateway. */
        rawsrv_expect_add(&s, 100 + (int64_t)i, "good");
    }
    rawsrv_stop(&s);
}

/* What a closure-style call's closure saw: its reply and the thread's
 * last status, where it ran. */
typedef struct seen {
    fl_test_latch_t *done;
    bool got_reply;
    int code;
    char msg[FL_FUTURE_MESSAGE_MAX];
} seen_t;

static void note_closure(const ProtobufCMessage *reply, void *data)
{
    seen_t *s = data;
    s->got_reply = reply != NULL;
    s->code = fl_rpc_last_error();
    snprintf(s->msg, sizeof s->msg, "%s", fl_rpc_last_message());
    fl_test_latch_count_down(s->done);
}

/* A closure-style call (the generated stub's way) to method m whose REPLY
 * body cannot be decoded: its closure gets NULL, and the last status
 * there is FL_EDECODE with want (the reply is unpacked on the caller's
 * side for closures, in call.c, not by the transport). */
static void expect_closure_undecoded(rawsrv_t *s, unsigned m, int64_t v,
                                     const uint8_t *body, size_t len,
                                     const char *want)
{
    seen_t seen = {.done = fl_test_latch_alloc(1)};
    assert_non_null(seen.done);
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = v;
    req.text = "closure";
    ProtobufCService *svc = fl_rpc_gateway_service(s->gw);
    svc->invoke(svc, m, &req.base, note_closure, &seen);
    uint64_t corr = rawsrv_invoke(s, m, v, "closure");
    rawsrv_reply(s, corr, body, len);
    fl_test_latch_await(seen.done);
    fl_test_latch_free(seen.done);
    assert_false(seen.got_reply);
    assert_fl(FL_EDECODE, seen.code);
    assert_string_equal(want, seen.msg);
}

static void test_closure_call_with_an_undecodable_reply_names_it(void **state)
{
    (void)state;
    rawsrv_t s;
    rawsrv_start(&s, CALC);
    char want[512];
    static const uint8_t truncated[] = {0xff, 0xff, 0xff};
    snprintf(want, sizeof want,
             "Could not decode the reply of flhostile.CalcGateway.Add from "
             "fling.tcp://127.0.0.1:%d/calc: flhostile.Num: truncated field "
             "key in flhostile.Num",
             s.port);
    expect_closure_undecoded(&s, M_ADD, 1, truncated, sizeof truncated, want);
    rawsrv_expect_add(&s, 2, "after");
    rawsrv_stop(&s);

    /* Too deep: refused by the check before unpacking. */
    rawsrv_start(&s, NEST);
    size_t len;
    uint8_t *body = deep_chain(FL__PB_MAX_DEPTH + 1, &len);
    snprintf(want, sizeof want,
             "Could not decode the reply of flhostile.NestGateway.Nest from "
             "fling.tcp://127.0.0.1:%d/calc: flhostile.Chain: message nested "
             "deeper than %u levels (flhostile.Chain)",
             s.port, FL__PB_MAX_DEPTH);
    expect_closure_undecoded(&s, M_NEST, FL__PB_MAX_DEPTH + 1, body, len, want);
    free(body);
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
    char msg[512], want[64];
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
        expect_decode_failure(&s, f, "flhostile.NestGateway.Nest",
                              "flhostile.Chain", msg, sizeof msg);
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
    char want[256];
    rawsrv_timeout_msg(&s, "flhostile.CalcGateway.Add", SHORT_MS,
                       "request sent", want, sizeof want);
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
        char want[256];
        rawsrv_timeout_msg(&s, "flhostile.CalcGateway.Add", timeouts[i],
                           "request sent", want, sizeof want);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_undecodable_reply_fails_the_call_with_edecode),
        FL_TEST(test_closure_call_with_an_undecodable_reply_names_it),
        FL_TEST(test_too_deeply_nested_reply_fails_the_call_with_edecode),
        FL_TEST(test_late_replies_after_a_timeout_are_dropped),
        FL_TEST(test_timeouts_fail_in_deadline_order_each_on_time),
        FL_TEST(test_a_broken_pipe_on_the_io_thread_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
