/*
 * client_read_test.c - a thread blocked in a remote blocking call reads
 * its own answer when the answer heads the stream, and leaves every other
 * frame to the I/O thread, against the raw server of client_fixture.h.
 */
#include "client_fixture.h"

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
        FL_TEST(test_a_blocking_call_reads_its_own_answer),
        FL_TEST(test_frames_after_the_answer_go_to_the_io_thread),
        FL_TEST(test_an_answer_behind_another_frame_waits_its_turn),
        FL_TEST(test_an_answer_read_in_halves_is_put_together),
        FL_TEST(test_the_stream_end_found_by_the_caller_fails_its_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
