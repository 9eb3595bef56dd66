/*
 * flow_test.c - flow control between actors (docs/guide.md, "Flow
 * control"): an actor that sends over a mailbox's bound is muted at the
 * end of that message and resumes when the mailbox drains; per-sender
 * order and exactly-once delivery hold under muting; two actors flooding
 * each other finish; FL_MAILBOX_UNBOUNDED turns it off; an actor's bound
 * overrides the system's. A receiver is made slow by holding it in a gate
 * that the test opens.
 */
#include "flow_fixture.h"

/* ---- order and exactly-once under muting ------------------------------- */

#define ORDER_SENDERS 4
#define ORDER_K 16
#define ORDER_N (20000 / SCALE)
#define ORDER_BOUND 64
/* How far over its bound the sink's mailbox may get: a sender is muted at
 * the end of the message whose send went over, so each sender adds at
 * most one message's worth (ORDER_K) past the moment the bound is
 * crossed. */
#define ORDER_ALLOWANCE (ORDER_BOUND + ORDER_SENDERS * ORDER_K)

static void test_per_sender_order_and_exactly_once_under_muting(void **state)
{
    (void)state;
    fl_system_t *sys = flow_system(2, FLOW_EXACT_BOUND);
    sink_t *s = calloc(1, sizeof *s);
    flooder_t *f = calloc(ORDER_SENDERS, sizeof *f);
    assert_non_null(s);
    assert_non_null(f);
    fl_actor_ref_t to =
        sink_spawn(sys, s, ORDER_BOUND, (uint64_t)ORDER_SENDERS * ORDER_N);
    sink_hold(sys, to, s);
    assert_int_equal(0, flow_stats(sys).mutes);
    fl_actor_ref_t refs[ORDER_SENDERS];
    for (uint32_t i = 0; i < ORDER_SENDERS; i++)
        refs[i] = flooder_spawn(sys, &f[i], to, i, ORDER_K, ORDER_N);
    for (uint32_t i = 0; i < ORDER_SENDERS; i++)
        assert_fl_ok(fl_tell(sys, refs[i], fl_msg_alloc(FLOW_GO, 0)));

    /* Held: every sender ends up muted, the mailbox within its
     * allowance. */
    FLOW_WAIT_FOR(flow_stats(sys).mutes >= ORDER_SENDERS ||
                      flow_queued(sys, to) > ORDER_ALLOWANCE,
                  "senders not muted: %llu mutes, %u queued",
                  (unsigned long long)flow_stats(sys).mutes,
                  flow_queued(sys, to));
    uint32_t q = flow_queued(sys, to);
    if (q <= ORDER_BOUND || q > ORDER_ALLOWANCE)
        fail_msg("held sink has %u queued, want (%u, %u]", q, ORDER_BOUND,
                 ORDER_ALLOWANCE);
    assert_int_equal(ORDER_SENDERS, flow_stats(sys).mutes);

    sink_open(s);
    fl_test_latch_await(s->done);
    sink_assert_seqs(s, ORDER_SENDERS, ORDER_N);
    unsigned max = atomic_load(&s->max_queued);
    if (max > ORDER_ALLOWANCE)
        fail_msg("the sink saw %u queued, over its allowance %u", max,
                 ORDER_ALLOWANCE);
    assert_true(flow_stats(sys).mutes >= ORDER_SENDERS);
    end_system(sys);
    for (uint32_t i = 0; i < ORDER_SENDERS; i++)
        assert_int_equal(0, atomic_load(&f[i].errors));
    sink_free(s);
    free(s);
    free(f);
}

/* ---- two actors flooding each other ------------------------------------ */

/* Each peer, for each of the first `sending` messages it handles, sends k
 * to the other; it is done when it has handled `expect`. */
#define PEER_SENDING (5000 / SCALE)
#define PEER_BOUND 64

typedef struct peer {
    fl_actor_ref_t other;
    uint32_t k;
    uint64_t handled, sending, expect; /* the peer's thread */
    fl_test_latch_t *done;
    atomic_int errors;
} peer_t;

static void peer_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                         fl_msg_t *msg)
{
    (void)self;
    (void)msg;
    peer_t *p = st;
    if (p->sending > 0) {
        p->sending--;
        for (uint32_t i = 0; i < p->k; i++)
            if (fl_tell(sys, p->other, fl_msg_alloc(FLOW_INT, 0)) != FL_OK)
                atomic_fetch_add(&p->errors, 1);
    }
    if (++p->handled == p->expect)
        fl_test_latch_count_down(p->done);
}

/* Runs the mutual flood on `workers` workers, a sending ka per message to
 * b, b kb per message to a, both with bound PEER_BOUND; returns the
 * mutes. */
static uint64_t run_mutual_flood(unsigned workers, uint32_t ka, uint32_t kb)
{
    fl_system_t *sys = flow_system(workers, PEER_BOUND);
    fl_test_latch_t *done = fl_test_latch_alloc(2);
    /* b sends for each message a sends it; a handles the kick too. */
    uint64_t b_gets = (uint64_t)ka * PEER_SENDING;
    peer_t a = {.k = ka,
                .sending = PEER_SENDING,
                .expect = 1 + (uint64_t)kb * b_gets,
                .done = done};
    peer_t b = {.k = kb, .sending = b_gets, .expect = b_gets, .done = done};
    fl_actor_ref_t ra, rb;
    assert_fl_ok(fl_actor_spawn(sys, peer_receive, &a, NULL, &ra));
    assert_fl_ok(fl_actor_spawn(sys, peer_receive, &b, NULL, &rb));
    a.other = rb;
    b.other = ra;
    assert_fl_ok(fl_tell(sys, ra, fl_msg_alloc(FLOW_GO, 0)));
    if (fl_test_latch_wait(done, WAIT_MS) != 0)
        fail_msg("mutual flood (%u, %u) on %u worker(s) stuck: %u and %u "
                 "queued, %llu mutes",
                 ka, kb, workers, flow_queued(sys, ra), flow_queued(sys, rb),
                 (unsigned long long)flow_stats(sys).mutes);
    uint64_t mutes = flow_stats(sys).mutes;
    end_system(sys);
    /* Nothing more arrived: exactly what was sent. */
    assert_int_equal(a.expect, a.handled);
    assert_int_equal(b.expect, b.handled);
    assert_int_equal(0, atomic_load(&a.errors));
    assert_int_equal(0, atomic_load(&b.errors));
    fl_test_latch_free(done);
    return mutes;
}

/* Both over their bounds at once: neither is muted while others wait on
 * it, so both go on. */
static void test_two_actors_flooding_each_other_finish(void **state)
{
    (void)state;
    (void)run_mutual_flood(2, 4, 4);
    (void)run_mutual_flood(1, 4, 4);
}

/* a floods b four times faster than b floods a: a is muted on b, and b's
 * drain wakes it. On one worker the schedule is fixed and a mute
 * certain. */
static void test_flooding_actor_muted_by_its_peer_resumes(void **state)
{
    (void)state;
    assert_true(run_mutual_flood(1, 4, 1) > 0);
    (void)run_mutual_flood(2, 4, 1);
}

/* ---- a muted sender's other work -------------------------------------- */

#define RESUME_BOUND 16
#define RESUME_SENT 32

static void test_muted_sender_resumes_when_the_receiver_drains(void **state)
{
    (void)state;
    fl_system_t *sys = flow_system(2, FLOW_EXACT_BOUND);
    sink_t *s = calloc(1, sizeof *s), *w = calloc(1, sizeof *w);
    flooder_t *f = calloc(1, sizeof *f);
    assert_true(s != NULL && w != NULL && f != NULL);
    fl_actor_ref_t to = sink_spawn(sys, s, RESUME_BOUND, RESUME_SENT);
    sink_hold(sys, to, s);
    /* One message sends all RESUME_SENT: over the bound. */
    fl_actor_ref_t sender =
        flooder_spawn(sys, f, to, 0, RESUME_SENT, RESUME_SENT);
    f->got_int = fl_test_latch_alloc(1);
    assert_fl_ok(fl_tell(sys, sender, fl_msg_alloc(FLOW_GO, 0)));
    FLOW_WAIT_FOR(flow_stats(sys).mutes >= 1, "sender not muted");
    assert_int_equal(1, flow_stats(sys).mutes);
    assert_int_equal(1 + RESUME_SENT, flow_queued(sys, to));
    assert_int_equal(0, flow_queued(sys, sender));

    /* Muted: a message from outside waits in its mailbox. A witness told
     * after it, on the inject queue behind it, is handled by the free
     * worker; the sender is not. */
    assert_fl_ok(fl_tell(sys, sender, fl_test_msg_int(FLOW_INT, 7)));
    fl_actor_ref_t wref = sink_spawn(sys, w, 0, 0);
    w->got_int = fl_test_latch_alloc(1);
    assert_fl_ok(fl_tell(sys, wref, fl_test_msg_int(FLOW_INT, 8)));
    fl_test_latch_await(w->got_int);
    assert_int_equal(8, w->ints[0]);
    assert_int_equal(0, atomic_load(&f->ints));
    assert_int_equal(1, flow_queued(sys, sender));

    /* The drain wakes it. */
    sink_open(s);
    fl_test_latch_await(f->got_int);
    assert_int_equal(1, atomic_load(&f->ints));
    fl_test_latch_await(s->done);
    sink_assert_seqs(s, 1, RESUME_SENT);
    assert_int_equal(1, flow_stats(sys).mutes);
    end_system(sys);
    assert_int_equal(0, atomic_load(&f->errors));
    fl_test_latch_free(f->got_int);
    sink_free(s);
    sink_free(w);
    free(s);
    free(w);
    free(f);
}

/* A receiver that stops with its mailbox over the bound: what is left
 * becomes dead letters (more than one turn's batch of them), and that
 * drain wakes the sender too. */
#define STOPPING_SENT 200

static void test_sender_muted_on_a_stopping_actor_resumes(void **state)
{
    (void)state;
    fl_system_t *sys = flow_system(2, FLOW_EXACT_BOUND);
    sink_t *s = calloc(1, sizeof *s);
    flooder_t *f = calloc(1, sizeof *f);
    assert_true(s != NULL && f != NULL);
    fl_actor_ref_t to = sink_spawn(sys, s, RESUME_BOUND, STOPPING_SENT);
    sink_hold(sys, to, s);
    fl_actor_ref_t sender =
        flooder_spawn(sys, f, to, 0, STOPPING_SENT, STOPPING_SENT);
    f->got_int = fl_test_latch_alloc(1);
    assert_fl_ok(fl_tell(sys, sender, fl_msg_alloc(FLOW_GO, 0)));
    FLOW_WAIT_FOR(flow_stats(sys).mutes >= 1, "sender not muted");
    assert_fl_ok(fl_tell(sys, sender, fl_test_msg_int(FLOW_INT, 7)));
    fl_future_t *t = termination_of(sys, to);
    assert_fl_ok(fl_actor_stop(sys, to));
    sink_open(s);
    wait_terminated(t);
    fl_test_latch_await(f->got_int);
    assert_int_equal(1, atomic_load(&f->ints));
    assert_int_equal(0, s->seqs);
    FLOW_WAIT_FOR(flow_stats(sys).dead_letters == STOPPING_SENT,
                  "%llu dead letters, want %d",
                  (unsigned long long)flow_stats(sys).dead_letters,
                  STOPPING_SENT);
    assert_int_equal(1, flow_stats(sys).mutes);
    end_system(sys);
    assert_int_equal(0, atomic_load(&f->errors));
    fl_test_latch_free(f->got_int);
    sink_free(s);
    free(s);
    free(f);
}

/* ---- FL_MAILBOX_UNBOUNDED ---------------------------------------------- */

#define UNB_SENDERS 4
#define UNB_K 16
/* Past FL_MAILBOX_DEFAULT in all. */
#define UNB_N 2500u

/* Floods a held sink (bound sink_bound) of a system of bound sys_bound:
 * every message queues, nobody is muted, and a bounded tell finds room. */
static void flood_unbounded(uint32_t sys_bound, uint32_t sink_bound)
{
    fl_system_t *sys = flow_system(2, sys_bound);
    sink_t *s = calloc(1, sizeof *s);
    flooder_t *f = calloc(UNB_SENDERS, sizeof *f);
    assert_true(s != NULL && f != NULL);
    const uint32_t total = UNB_SENDERS * UNB_N;
    fl_actor_ref_t to = sink_spawn(sys, s, sink_bound, total);
    s->got_int = fl_test_latch_alloc(1);
    sink_hold(sys, to, s);
    for (uint32_t i = 0; i < UNB_SENDERS; i++)
        assert_fl_ok(fl_tell(sys,
                             flooder_spawn(sys, &f[i], to, i, UNB_K, UNB_N),
                             fl_msg_alloc(FLOW_GO, 0)));
    /* An unbounded mailbox's count is sampled (flow.h): right to within
     * a few weights of 8 per sending thread. */
    FLOW_WAIT_FOR(
        flow_queued(sys, to) >= 1 + total - 64 || flow_stats(sys).mutes > 0,
        "flood not queued: %u of %u", flow_queued(sys, to), 1 + total);
    assert_int_equal(0, flow_stats(sys).mutes);
    assert_in_range(flow_queued(sys, to), 1 + total - 64, 1 + total + 64);
    assert_fl_ok(fl_tell_bounded(sys, to, fl_test_msg_int(FLOW_INT, 5), 0));
    assert_int_equal(0, flow_stats(sys).tells_full);
    sink_open(s);
    fl_test_latch_await(s->done);
    fl_test_latch_await(s->got_int);
    sink_assert_seqs(s, UNB_SENDERS, UNB_N);
    assert_int_equal(5, s->ints[0]);
    assert_int_equal(0, flow_stats(sys).mutes);
    end_system(sys);
    for (uint32_t i = 0; i < UNB_SENDERS; i++)
        assert_int_equal(0, atomic_load(&f[i].errors));
    sink_free(s);
    free(s);
    free(f);
}

static void test_unbounded_system_never_mutes(void **state)
{
    (void)state;
    flood_unbounded(FL_MAILBOX_UNBOUNDED, 0);
}

static void test_unbounded_actor_never_mutes(void **state)
{
    (void)state;
    flood_unbounded(16, FL_MAILBOX_UNBOUNDED);
}

/* ---- an actor's bound overrides the system's ---------------------------- */

#define SYS_BOUND 32

/* Holds a sink of bound sink_bound and has flooder 0 send `first` in one
 * message, then flooder 1 send `second` (0: none). Returns the mutes
 * after each: the flooder that ran is told an int, which it handles
 * unless it is muted. */
static void bound_case(uint32_t sink_bound, uint32_t first, uint32_t second,
                       uint64_t mutes_after_first, uint64_t mutes_after_second)
{
    fl_system_t *sys = flow_system(2, SYS_BOUND);
    sink_t *s = calloc(1, sizeof *s);
    flooder_t *f = calloc(2, sizeof *f);
    assert_true(s != NULL && f != NULL);
    fl_actor_ref_t to = sink_spawn(sys, s, sink_bound, first + second);
    sink_hold(sys, to, s);
    uint32_t sent[2] = {first, second};
    uint64_t mutes[2] = {mutes_after_first, mutes_after_second};
    for (uint32_t i = 0; i < 2 && sent[i] > 0; i++) {
        fl_actor_ref_t r = flooder_spawn(sys, &f[i], to, i, sent[i], sent[i]);
        f[i].got_int = fl_test_latch_alloc(1);
        assert_fl_ok(fl_tell(sys, r, fl_msg_alloc(FLOW_GO, 0)));
        if (mutes[i] > (i == 0 ? 0 : mutes[0])) {
            FLOW_WAIT_FOR(flow_stats(sys).mutes >= mutes[i],
                          "flooder %u not muted", i);
        } else {
            /* Not muted: it handles the next message while the sink is
             * held. */
            assert_fl_ok(fl_tell(sys, r, fl_test_msg_int(FLOW_INT, 1)));
            fl_test_latch_await(f[i].got_int);
        }
        assert_int_equal(mutes[i], flow_stats(sys).mutes);
    }
    assert_int_equal(1 + first + second, flow_queued(sys, to));
    sink_open(s);
    fl_test_latch_await(s->done);
    assert_int_equal(first, s->next[0]);
    assert_int_equal(second, s->next[1]);
    assert_int_equal(0, atomic_load(&s->order_errors));
    end_system(sys);
    for (uint32_t i = 0; i < 2; i++) {
        assert_int_equal(0, atomic_load(&f[i].errors));
        fl_test_latch_free(f[i].got_int);
    }
    sink_free(s);
    free(s);
    free(f);
}

static void test_actor_bound_overrides_the_system_bound(void **state)
{
    (void)state;
    /* Bound 8 in a system of 32: the gate and 7 fill it (not over), one
     * more is over. */
    bound_case(8, 7, 1, 0, 1);
    /* Bound 64 in a system of 32: the gate and 40 are within it; 24 more
     * go over. */
    bound_case(64, 40, 24, 0, 1);
    /* The system's 32 for an actor without its own: 31 fill it, one more
     * is over. */
    bound_case(0, 31, 1, 0, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_per_sender_order_and_exactly_once_under_muting),
        FL_TEST(test_two_actors_flooding_each_other_finish),
        FL_TEST(test_flooding_actor_muted_by_its_peer_resumes),
        FL_TEST(test_muted_sender_resumes_when_the_receiver_drains),
        FL_TEST(test_sender_muted_on_a_stopping_actor_resumes),
        FL_TEST(test_unbounded_system_never_mutes),
        FL_TEST(test_unbounded_actor_never_mutes),
        FL_TEST(test_actor_bound_overrides_the_system_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
