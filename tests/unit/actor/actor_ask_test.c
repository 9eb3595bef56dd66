/*
 * actor_ask_test.c - ask and reply: replies, errors, taken replies,
 * dropped asks, timeouts, late replies, and the sender a receiver sees.
 */
#include "actor_fixture.h"

/* ---- ask and reply ------------------------------------------------------- */

static void test_ask_completes_with_the_reply_message(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    responder_t r = {.rc1 = -1};
    fl_actor_ref_t a = spawn_responder(sys, &r, 2);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_ask(sys, a, fl_test_msg_int(T_REPLY, 41), 5000, &f));
    assert_non_null(f);
    assert_fl_ok(fl_future_wait(f, WAIT_MS));
    /* The reply can wake us before the receive callback has returned. */
    wait_latch_count(r.handled, 1);
    fl_msg_t *reply = fl_future_value(f);
    assert_non_null(reply);
    assert_int_equal(2, fl_msg_type(reply));
    assert_int_equal(sizeof(int), fl_msg_size(reply));
    assert_int_equal(42, msg_get_int(reply));
    assert_fl_ok(atomic_load(&r.rc1));
    assert_true(atomic_load(&r.is_ask_before));
    assert_false(atomic_load(&r.is_ask_after));
    fl_future_release(f);

    /* Taking the reply moves it to the caller. */
    assert_fl_ok(fl_ask(sys, a, fl_test_msg_int(T_REPLY, 9), FL_INFINITE, &f));
    assert_fl_ok(fl_future_wait(f, WAIT_MS));
    fl_msg_t *taken = fl_future_take_value(f);
    assert_non_null(taken);
    assert_null(fl_future_take_value(f));
    fl_future_release(f);
    assert_int_equal(10, msg_get_int(taken));
    fl_msg_free(taken);
    end_responder_system(sys, &r);
}

static void
test_reply_error_fails_the_ask_with_its_code_and_message(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    responder_t r = {.rc1 = -1};
    fl_actor_ref_t a = spawn_responder(sys, &r, 1);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_ask(sys, a, fl_test_msg_int(T_REPLY_ERROR, 3), 5000, &f));
    assert_fl(FL_EUSER + 7, fl_future_wait(f, WAIT_MS));
    fl_test_latch_await(r.handled);
    assert_fl(FL_EUSER + 7, fl_future_error(f));
    assert_string_equal("nope 3", fl_future_message(f));
    assert_null(fl_future_value(f));
    assert_fl_ok(atomic_load(&r.rc1));
    assert_false(atomic_load(&r.is_ask_after));
    fl_future_release(f);
    end_responder_system(sys, &r);
}

static void test_second_reply_to_the_same_request_returns_einval(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    responder_t r = {.rc1 = -1, .rc2 = -1};
    fl_actor_ref_t a = spawn_responder(sys, &r, 1);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_ask(sys, a, fl_test_msg_int(T_REPLY_TWICE, 0), 5000, &f));
    fl_test_latch_await(r.handled);
    assert_fl_ok(atomic_load(&r.rc1));
    assert_fl(FL_EINVAL, atomic_load(&r.rc2));
    assert_fl_ok(fl_future_wait(f, WAIT_MS));
    assert_int_equal(1, msg_get_int(fl_future_value(f)));
    fl_future_release(f);
    end_responder_system(sys, &r);
}

static void test_reply_to_a_tell_returns_einval(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    responder_t r = {.rc1 = -1, .rc2 = -1};
    fl_actor_ref_t a = spawn_responder(sys, &r, 1);
    assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(T_PLAIN, 0)));
    fl_test_latch_await(r.handled);
    assert_false(atomic_load(&r.is_ask_before));
    assert_true(atomic_load(&r.take_null));
    assert_fl(FL_EINVAL, atomic_load(&r.rc1));
    assert_fl(FL_EINVAL, atomic_load(&r.rc2));
    end_responder_system(sys, &r);
}

/* A T_TAKE ask without a timeout on a fresh 2-worker system, whose
 * responder has taken the reply future: the test answers it itself. */
typedef struct taken_ask {
    fl_system_t *sys;
    responder_t r;
    fl_future_t *f;     /* the ask */
    fl_future_t *taken; /* the reply future the responder took */
} taken_ask_t;

/* Starts t (see taken_ask_t); end it with taken_ask_end. */
static void taken_ask_start(taken_ask_t *t)
{
    *t = (taken_ask_t){.sys = fl_test_system(2)};
    fl_actor_ref_t a = spawn_responder(t->sys, &t->r, 1);
    assert_fl_ok(
        fl_ask(t->sys, a, fl_test_msg_int(T_TAKE, 0), FL_INFINITE, &t->f));
    t->taken = wait_taken(&t->r);
}

/* Releases both futures, ends the system and frees the responder's latch. */
static void taken_ask_end(taken_ask_t *t)
{
    fl_future_release(t->taken);
    fl_future_release(t->f);
    end_responder_system(t->sys, &t->r);
}

static void
test_taken_reply_can_be_answered_later_from_another_thread(void **state)
{
    (void)state;
    taken_ask_t t;
    taken_ask_start(&t);
    assert_true(atomic_load(&t.r.is_ask_before));
    assert_false(atomic_load(&t.r.is_ask_after));
    /* The receive callback has returned and the request is freed; the ask
     * is still pending until we answer it here, on the test thread. */
    assert_false(fl_future_done(t.f));
    assert_fl_ok(fl_future_complete(t.taken, fl_test_msg_int(3, 77),
                                    (fl_free_cb)fl_msg_free));
    assert_fl_ok(fl_future_wait(t.f, WAIT_MS));
    assert_int_equal(77, msg_get_int(fl_future_value(t.f)));
    assert_int_equal(3, fl_msg_type(fl_future_value(t.f)));
    taken_ask_end(&t);
}

static void test_taken_reply_can_be_failed_later(void **state)
{
    (void)state;
    taken_ask_t t;
    taken_ask_start(&t);
    assert_fl_ok(fl_future_fail(t.taken, FL_EUSER + 2, "later %s", "no"));
    assert_fl(FL_EUSER + 2, fl_future_wait(t.f, WAIT_MS));
    assert_string_equal("later no", fl_future_message(t.f));
    taken_ask_end(&t);
}

static void test_ask_dropped_without_a_reply_fails_with_enoreply(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    responder_t r = {0};
    fl_actor_ref_t a = spawn_responder(sys, &r, 0);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_ask(sys, a, fl_test_msg_int(T_DROP, 0), FL_INFINITE, &f));
    assert_fl(FL_ENOREPLY, fl_future_wait(f, WAIT_MS));
    assert_fl(FL_ENOREPLY, fl_future_error(f));
    fl_future_release(f);
    end_system(sys);
}

static void test_ask_times_out_with_etimedout_when_nobody_answers(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    responder_t r = {0};
    fl_actor_ref_t a = spawn_responder(sys, &r, 1);
    fl_future_t *f = NULL;
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_ask(sys, a, fl_test_msg_int(T_TAKE, 0), 50, &f));
    assert_fl(FL_ETIMEDOUT, fl_future_wait(f, WAIT_MS));
    uint64_t elapsed = fl_clock_now_ns() - t0;
    assert_true(fl_future_done(f));
    assert_fl(FL_ETIMEDOUT, fl_future_error(f));
    if (elapsed < 50 * 1000000ull)
        fail_msg("ask timed out after %llu ns, before its 50 ms timeout",
                 (unsigned long long)elapsed);
    /* The failure names the recipient and the timeout. */
    char want[96];
    snprintf(want, sizeof want, "Ask to actor %016llx timed out after 50 ms",
             (unsigned long long)a.id);
    assert_string_equal(want, fl_future_message(f));
    /* The responder took the reply; answering now is too late. */
    fl_future_t *taken = wait_taken(&r);
    assert_fl(FL_EALREADY, fl_future_complete(taken, fl_test_msg_int(2, 0),
                                              (fl_free_cb)fl_msg_free));
    assert_fl(FL_ETIMEDOUT, fl_future_error(f));
    fl_future_release(taken);
    fl_future_release(f);
    end_responder_system(sys, &r);
}

static void test_reply_after_the_ask_timed_out_returns_ealready(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    responder_t r = {.rc1 = -1};
    r.go = fl_test_latch_alloc(1);
    fl_actor_ref_t a = spawn_responder(sys, &r, 1);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_ask(sys, a, fl_test_msg_int(T_WAIT_THEN_REPLY, 0), 20, &f));
    assert_fl(FL_ETIMEDOUT, fl_future_wait(f, WAIT_MS));
    fl_test_latch_count_down(r.go);
    fl_test_latch_await(r.handled);
    assert_fl(FL_EALREADY, atomic_load(&r.rc1));
    assert_fl(FL_ETIMEDOUT, fl_future_error(f));
    fl_future_release(f);
    end_responder_system(sys, &r);
}

static void
test_ask_fails_with_eunreachable_when_the_actor_stops_before_answering(
    void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    fl_actor_ref_t a = spawn_blocked_probe(sys, &p, 0);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_ask(sys, a, fl_test_msg_int(1, 1), FL_INFINITE, &f));
    assert_false(fl_future_done(f));
    fl_future_t *term = termination_of(sys, a);
    assert_fl_ok(fl_actor_stop(sys, a));
    fl_test_latch_count_down(p.block);
    assert_fl(FL_EUNREACHABLE, fl_future_wait(f, WAIT_MS));
    wait_terminated(term);
    assert_int_equal(1, atomic_load(&p.received));
    fl_future_release(f);
    end_system(sys);
    probe_free_latches(&p);
}

/* ---- senders ------------------------------------------------------------- */

typedef struct relay {
    fl_actor_ref_t target;
} relay_t;

static void relay_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                          fl_msg_t *msg)
{
    (void)self;
    (void)msg;
    relay_t *r = st;
    fl_tell(sys, r->target, fl_test_msg_int(T_SENDER, 0));
}

static void
test_msg_sender_is_the_sending_actor_or_zero_from_outside(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    responder_t r = {0};
    fl_actor_ref_t b = spawn_responder(sys, &r, 1);
    atomic_store(&r.sender, 12345);
    assert_fl_ok(fl_tell(sys, b, fl_test_msg_int(T_SENDER, 0)));
    fl_test_latch_await(r.handled);
    assert_int_equal(0, atomic_load(&r.sender));
    fl_test_latch_free(r.handled);

    r.handled = fl_test_latch_alloc(1);
    relay_t rel = {.target = b};
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, relay_receive, &rel, NULL, &a));
    assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(1, 0)));
    fl_test_latch_await(r.handled);
    assert_int_equal(a.id, atomic_load(&r.sender));
    end_responder_system(sys, &r);
}

/* Asks in flight, each armed earlier than the deadline the timer thread
 * sleeps to (a far timeout armed first): each wakes it, and they time out
 * in deadline order (the reverse of arming), none before its deadline,
 * each with its message; the far one stays pending alone. */
enum { INFLIGHT_N = 16, INFLIGHT_BASE_MS = 40, INFLIGHT_STEP_MS = 10 };

typedef struct inflight {
    atomic_int n;
    int order[INFLIGHT_N];
    uint64_t at[INFLIGHT_N];
    fl_test_latch_t *done;
} inflight_t;

typedef struct inflight_arg {
    inflight_t *log;
    int i;
} inflight_arg_t;

static void inflight_done(fl_future_t *f, void *arg)
{
    (void)f;
    inflight_arg_t *a = arg;
    int k = atomic_fetch_add(&a->log->n, 1);
    if (k < INFLIGHT_N) {
        a->log->order[k] = a->i;
        a->log->at[k] = fl_clock_now_ns();
    }
    fl_test_latch_count_down(a->log->done);
}

static void test_asks_in_flight_time_out_in_deadline_order(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    fl_actor_ref_t a = spawn_blocked_probe(sys, &p, 0);
    fl_future_t *far = fl_future_alloc();
    assert_fl_ok(fl_future_set_timeout(sys, far, 600000));
    inflight_t log = {.done = fl_test_latch_alloc(INFLIGHT_N)};
    inflight_arg_t args[INFLIGHT_N];
    fl_future_t *f[INFLIGHT_N];
    uint64_t lo[INFLIGHT_N];
    for (int i = 0; i < INFLIGHT_N; i++) {
        int ms = INFLIGHT_BASE_MS + INFLIGHT_STEP_MS * (INFLIGHT_N - 1 - i);
        args[i] = (inflight_arg_t){.log = &log, .i = i};
        lo[i] = fl_clock_now_ns() + (uint64_t)ms * 1000000ull;
        assert_fl_ok(fl_ask(sys, a, fl_test_msg_int(1, i + 1), ms, &f[i]));
        assert_fl_ok(fl_future_on_complete(f[i], inflight_done, &args[i]));
    }
    fl_test_latch_await(log.done);
    assert_int_equal(INFLIGHT_N, atomic_load(&log.n));
    for (int k = 0; k < INFLIGHT_N; k++) {
        int i = log.order[k];
        assert_int_equal(INFLIGHT_N - 1 - k, i);
        if (log.at[k] < lo[i])
            fail_msg("ask %d timed out before its deadline", i);
        int ms = INFLIGHT_BASE_MS + INFLIGHT_STEP_MS * (INFLIGHT_N - 1 - i);
        char want[96];
        snprintf(want, sizeof want,
                 "Ask to actor %016llx timed out after %d ms",
                 (unsigned long long)a.id, ms);
        assert_fl(FL_ETIMEDOUT, fl_future_error(f[i]));
        assert_string_equal(want, fl_future_message(f[i]));
        fl_future_release(f[i]);
    }
    fl_system_stats_t st;
    assert_fl_ok(fl_system_stats(sys, &st));
    assert_int_equal(1, st.timers_pending);
    assert_false(fl_future_done(far));
    fl_test_latch_count_down(p.block);
    end_system(sys);
    assert_fl(FL_ECLOSED, fl_future_error(far));
    fl_future_release(far);
    fl_test_latch_free(log.done);
    probe_free_latches(&p);
}

/* An answered ask's timer (in its future's block) leaves the heap at the
 * answer, and lets go of the future: nothing stays armed for the 10
 * minutes of the timeout (and nothing leaks: ASan, valgrind). */
static void test_answered_asks_leave_no_timer_armed(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    responder_t r = {.rc1 = -1};
    fl_actor_ref_t a = spawn_responder(sys, &r, 64);
    for (int i = 0; i < 64; i++) {
        fl_future_t *f = NULL;
        assert_fl_ok(fl_ask(sys, a, fl_test_msg_int(T_REPLY, i), 600000, &f));
        assert_fl_ok(fl_future_wait(f, WAIT_MS));
        assert_int_equal(i + 1, msg_get_int(fl_future_value(f)));
        fl_future_release(f);
    }
    fl_system_stats_t st;
    assert_fl_ok(fl_system_stats(sys, &st));
    assert_int_equal(0, st.timers_pending);
    end_responder_system(sys, &r);
}

/* An ask's future has its timeout already: a second one is refused and
 * the first still fails the ask at its deadline, with its message. */
static void test_a_second_timeout_on_an_asks_future_is_refused(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    fl_actor_ref_t a = spawn_blocked_probe(sys, &p, 0);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_ask(sys, a, fl_test_msg_int(1, 1), 50, &f));
    assert_fl(FL_EEXIST, fl_future_set_timeout(sys, f, 600000));
    assert_fl(FL_ETIMEDOUT, fl_future_wait(f, WAIT_MS));
    char want[96];
    snprintf(want, sizeof want, "Ask to actor %016llx timed out after 50 ms",
             (unsigned long long)a.id);
    assert_string_equal(want, fl_future_message(f));
    fl_future_release(f);
    fl_test_latch_count_down(p.block);
    end_system(sys);
    probe_free_latches(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_ask_completes_with_the_reply_message),
        FL_TEST(test_reply_error_fails_the_ask_with_its_code_and_message),
        FL_TEST(test_second_reply_to_the_same_request_returns_einval),
        FL_TEST(test_reply_to_a_tell_returns_einval),
        FL_TEST(test_taken_reply_can_be_answered_later_from_another_thread),
        FL_TEST(test_taken_reply_can_be_failed_later),
        FL_TEST(test_ask_dropped_without_a_reply_fails_with_enoreply),
        FL_TEST(test_ask_times_out_with_etimedout_when_nobody_answers),
        FL_TEST(test_reply_after_the_ask_timed_out_returns_ealready),
        FL_TEST(test_asks_in_flight_time_out_in_deadline_order),
        FL_TEST(test_answered_asks_leave_no_timer_armed),
        FL_TEST(test_a_second_timeout_on_an_asks_future_is_refused),
        FL_TEST(
            test_ask_fails_with_eunreachable_when_the_actor_stops_before_answering),
        FL_TEST(test_msg_sender_is_the_sending_actor_or_zero_from_outside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
