/*
 * claim_test.c - a turn taken over from the scheduler by a thread outside
 * the runtime (fl__tell_claim / fl__claim_run, actor/claim.h): the tell
 * that makes an idle actor runnable hands it to the caller instead of a
 * worker; while claimed nobody runs it and further tells only queue; the
 * claim runs one batch on the calling thread as a worker would (fl_self,
 * fl_system_current, blocking waits refused) and hands what remains to the
 * workers, or stops past a time budget; dead refs, closed systems and
 * runtime threads claim nothing;
 * shutdown waits for a held claim. A budgeted turn reads the clock less
 * often while messages are fast, and once more at its end. The claiming
 * thread's own tells are claim_held_test.c's.
 *
 * The shared recorder and fixture are claim_fixture.h's.
 */
#include "claim_fixture.h"

/* ---- cases --------------------------------------------------------------- */

/* A tell from the test thread to an idle actor claims it; later tells
 * (plain or claiming) only queue; nothing runs until the claim does, then
 * every queued message runs in order on the test thread as the actor. The
 * turn emptied the mailbox on this thread, so the next tell claims again. */
static void test_claim_runs_the_turn_on_the_calling_thread(void **state)
{
    (void)state;
    fx_t fx;
    fx_start(&fx, 0);
    fl_system_t *sys = fx.sys;
    fl__claim_t c;
    int base = claim_idle(sys, fx.aref, &fx.a, &c);
    assert_ptr_equal(sys, c.sys);
    assert_fl_ok(fl_tell(sys, fx.aref, fl_test_msg_int(T_REC, 0)));
    fl__claim_t c2 = {(fl_system_t *)&c2, (fl__actor_t *)&c2};
    assert_fl_ok(fl__tell_claim(sys, fx.aref, fl_test_msg_int(T_REC, 1), &c2));
    assert_null(c2.a);
    assert_null(c2.sys);
    workers_ran(sys, fx.bref, &fx.b);
    assert_int_equal(base, rec_count(&fx.a));

    assert_false(fl__claim_run(&c, 0));
    assert_null(c.a);
    assert_null(c.sys);
    assert_int_equal(base + 3, rec_count(&fx.a));
    expect_run(&fx.a, base, 1, WARM, fx.aref, sys, true);
    expect_run(&fx.a, base + 1, 2, 0, fx.aref, sys, true);
    /* The turn's context is gone again. */
    assert_int_equal(0, fl_self().id);
    assert_null(fl_system_current());
    assert_false(fl__claim_run(&c, 0)); /* a cleared claim: no-op */
    assert_int_equal(base + 3, rec_count(&fx.a));

    assert_fl_ok(fl__tell_claim(sys, fx.aref, fl_test_msg_int(T_REC, 2), &c));
    assert_non_null(c.a);
    assert_false(fl__claim_run(&c, 0));
    assert_int_equal(base + 4, rec_count(&fx.a));
    expect_run(&fx.a, base + 3, 1, 2, fx.aref, sys, true);
    fx_end(&fx);
}

/* More messages than the batch queued under a claim: the claim runs the
 * first BATCH on the test thread, the workers the rest, all in order. */
static void test_claim_runs_one_batch_then_hands_over_to_workers(void **state)
{
    (void)state;
    enum { QUEUED = 3 * BATCH };
    fx_t fx;
    fx_start(&fx, BATCH);
    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    for (int i = 0; i < QUEUED; i++)
        assert_fl_ok(fl_tell(fx.sys, fx.aref, fl_test_msg_int(T_REC, i)));
    workers_ran(fx.sys, fx.bref, &fx.b);
    assert_int_equal(base, rec_count(&fx.a));

    assert_false(fl__claim_run(&c, 0));
    assert_null(c.a);
    rec_wait(&fx.a, base + 1 + QUEUED);
    expect_run(&fx.a, base, 1, WARM, fx.aref, fx.sys, true);
    expect_run(&fx.a, base + 1, BATCH - 1, 0, fx.aref, fx.sys, true);
    expect_run(&fx.a, base + BATCH, QUEUED - (BATCH - 1), BATCH - 1, fx.aref,
               fx.sys, false);
    fl_system_free(fx.sys);
    fx.sys = NULL;
    assert_int_equal(base + 1 + QUEUED, rec_count(&fx.a));
    fx_end(&fx);
}

/* A budget ends the turn at the first message that ends past it: of five
 * messages of SLOW_NS (1.5 ms) under a 1 ms budget, 1 to 4 run on the test
 * thread (the clock decides how many; the fourth ends past 1 ms at the
 * latest), the rest on the workers, all in order, and the run reports the
 * cut. */
static void test_claim_budget_cuts_the_turn(void **state)
{
    (void)state;
    enum { SLOW = 5 };
    fx_t fx;
    fx_start(&fx, 0);
    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    for (int i = 0; i < SLOW; i++)
        assert_fl_ok(fl_tell(fx.sys, fx.aref, fl_test_msg_int(T_SLOW, i)));
    assert_true(fl__claim_run(&c, 1000000u));
    assert_null(c.a);
    rec_wait(&fx.a, base + 1 + SLOW);
    int here = 0;
    while (here < 1 + SLOW &&
           pthread_equal(rec_at(&fx.a, base + here).thread, pthread_self()))
        here++;
    assert_in_range(here, 2, SLOW); /* WARM and 1 to 4 slow ones */
    expect_run(&fx.a, base, 1, WARM, fx.aref, fx.sys, true);
    expect_run(&fx.a, base + 1, here - 1, 0, fx.aref, fx.sys, true);
    expect_run(&fx.a, base + here, 1 + SLOW - here, here - 1, fx.aref, fx.sys,
               false);
    fx_end(&fx);
}

/* A stopped actor: FL_EUNREACHABLE, a dead letter, no claim. A NULL
 * message: FL_EINVAL. A closed system: FL_ECLOSED, no claim. */
static void test_claim_refuses_dead_refs_and_closed_systems(void **state)
{
    (void)state;
    fx_t fx;
    fx_start(&fx, 0);
    fl_future_t *t = NULL;
    assert_fl_ok(fl_actor_termination(fx.sys, fx.aref, &t));
    assert_fl_ok(fl_actor_stop(fx.sys, fx.aref));
    fl_test_future_ok(t, "termination");
    fl_future_release(t);
    fl_system_stats_t before, after;
    assert_fl_ok(fl_system_stats(fx.sys, &before));
    fl__claim_t c = {fx.sys, (fl__actor_t *)&c};
    assert_fl(FL_EUNREACHABLE,
              fl__tell_claim(fx.sys, fx.aref, fl_test_msg_int(T_REC, 1), &c));
    assert_null(c.a);
    assert_fl_ok(fl_system_stats(fx.sys, &after));
    assert_int_equal(before.dead_letters + 1, after.dead_letters);
    assert_fl(FL_EINVAL, fl__tell_claim(fx.sys, fx.aref, NULL, &c));
    assert_null(c.a);

    assert_fl_ok(fl_system_close(fx.sys));
    c.a = (fl__actor_t *)&c;
    assert_fl(FL_ECLOSED,
              fl__tell_claim(fx.sys, fx.bref, fl_test_msg_int(T_REC, 2), &c));
    assert_null(c.a);
    assert_int_equal(0, rec_count(&fx.a) + rec_count(&fx.b));
    fx_end(&fx);
}

/* On a runtime thread fl__tell_claim is fl_tell: from a worker's turn and
 * from a claimed turn alike, the forward to an idle actor claims nothing
 * and a worker runs it. */
static void test_claim_inside_a_turn_is_a_plain_tell(void **state)
{
    (void)state;
    fx_t fx;
    fx_start(&fx, 0);
    fx.a.fwd = fx.bref;
    /* From a worker. */
    assert_fl_ok(fl_tell(fx.sys, fx.aref, fl_test_msg_int(T_FWD, 10)));
    rec_wait(&fx.a, 1);
    rec_wait(&fx.b, 1);
    entry_t e = rec_at(&fx.a, 0);
    assert_fl_ok(e.fwd_rc);
    assert_false(e.fwd_claimed);
    assert_false(pthread_equal(e.thread, pthread_self()));
    expect_run(&fx.b, 0, 1, 10, fx.bref, fx.sys, false);
    /* From a claimed turn on this thread. */
    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    int bbase = rec_count(&fx.b);
    assert_fl_ok(fl_tell(fx.sys, fx.aref, fl_test_msg_int(T_FWD, 11)));
    assert_false(fl__claim_run(&c, 0));
    expect_run(&fx.a, base + 1, 1, 11, fx.aref, fx.sys, true);
    e = rec_at(&fx.a, base + 1);
    assert_fl_ok(e.fwd_rc);
    assert_false(e.fwd_claimed);
    rec_wait(&fx.b, bbase + 1);
    expect_run(&fx.b, bbase, 1, 11, fx.bref, fx.sys, false);
    fx_end(&fx);
}

/* fl_system_shutdown on a thread of its own; done counts down after. */
typedef struct shutter {
    fl_system_t *sys;
    int rc; /* read after the join */
    fl_test_latch_t *done;
} shutter_t;

static void *shutter_main(void *p)
{
    shutter_t *s = p;
    s->rc = fl_system_shutdown(s->sys);
    fl_test_latch_count_down(s->done);
    return NULL;
}

/* Shutdown waits for a held claim: the claimed actor (asked to stop) can
 * only stop in the claim's turn, so shutdown, though it has closed the
 * system (b stopped), cannot return before the claim runs; the turn stops
 * the actor on this thread, its WARM a dead letter, and shutdown returns
 * FL_OK. */
static void test_shutdown_waits_for_a_held_claim(void **state)
{
    (void)state;
    fx_t fx;
    fx_start(&fx, 0);
    fx.b.stopped = fl_test_latch_alloc(1);
    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    assert_fl_ok(fl_actor_stop(fx.sys, fx.aref));
    fl_system_stats_t before, after;
    assert_fl_ok(fl_system_stats(fx.sys, &before));
    shutter_t s = {.sys = fx.sys, .rc = -1, .done = fl_test_latch_alloc(1)};
    pthread_t th;
    assert_int_equal(0, pthread_create(&th, NULL, shutter_main, &s));
    fl_test_latch_await(fx.b.stopped);
    fl__claim_t late;
    assert_fl(FL_ECLOSED, fl__tell_claim(fx.sys, fx.aref,
                                         fl_test_msg_int(T_REC, 1), &late));
    assert_null(late.a);
    assert_int_equal(1, fl_test_latch_count(s.done));
    assert_true(fl_actor_alive(fx.sys, fx.aref));
    assert_int_equal(0, atomic_load(&fx.a.stops));

    assert_false(fl__claim_run(&c, 0));
    assert_int_equal(1, atomic_load(&fx.a.stops));
    assert_true(pthread_equal(fx.a.stop_thread, pthread_self()));
    fl_test_latch_await(s.done);
    assert_int_equal(0, pthread_join(th, NULL));
    assert_fl_ok(s.rc);
    assert_int_equal(base, rec_count(&fx.a));
    assert_fl_ok(fl_system_stats(fx.sys, &after));
    assert_int_equal(before.dead_letters + 1, after.dead_letters);
    fl_test_latch_free(s.done);
    fl_test_latch_free(fx.b.stopped);
    fx_end(&fx);
}

/* ---- how often a budgeted turn reads the clock --------------------------- */

/* A budget case runs its turn up to ATTEMPTS times, on a fresh system each
 * time, until one was quiet: its fast messages took under QUIET_NS (a
 * quarter of the budget) from just before fl__claim_run, so the clock
 * reads fall where the stride schedule puts them. What any turn must do
 * is checked on every attempt. */
#define ATTEMPTS 10
#define QUIET_NS (BUDGET_NS / 4)

/* A claimed turn under BUDGET_NS: the claiming WARM, fast - 1 T_REC, then
 * nslow messages of slow_type; values WARM, 0, 1, ... */
typedef struct budget_turn {
    int base;    /* the WARM's entry */
    int here;    /* messages run on this thread (a prefix of the turn) */
    bool cut;    /* what fl__claim_run returned */
    uint64_t t0; /* the clock just before fl__claim_run */
    uint64_t t1; /* and just after */
} budget_turn_t;

/* Runs the turn, waits until every message ran and checks they ran in
 * order, a prefix on this thread and the rest on the workers. */
static budget_turn_t budget_turn(fx_t *fx, int fast, uint32_t slow_type,
                                 int nslow)
{
    budget_turn_t t;
    fl__claim_t c;
    int total = fast + nslow;
    t.base = claim_idle(fx->sys, fx->aref, &fx->a, &c);
    for (int i = 0; i < total - 1; i++)
        assert_fl_ok(
            fl_tell(fx->sys, fx->aref,
                    fl_test_msg_int(i < fast - 1 ? T_REC : slow_type, i)));
    t.t0 = fl_clock_now_ns();
    t.cut = fl__claim_run(&c, BUDGET_NS);
    t.t1 = fl_clock_now_ns();
    assert_null(c.a);
    rec_wait(&fx->a, t.base + total);
    t.here = 0;
    while (
        t.here < total &&
        pthread_equal(rec_at(&fx->a, t.base + t.here).thread, pthread_self()))
        t.here++;
    expect_run(&fx->a, t.base, 1, WARM, fx->aref, fx->sys, true);
    expect_run(&fx->a, t.base + 1, t.here - 1, 0, fx->aref, fx->sys, true);
    expect_run(&fx->a, t.base + t.here, total - t.here, t.here - 1, fx->aref,
               fx->sys, false);
    return t;
}

/* When message k of the turn (1: the WARM) began, in ns after t->t0. */
static uint64_t began_at(fx_t *fx, const budget_turn_t *t, int k)
{
    return rec_at(&fx->a, t->base + k - 1).began - t->t0;
}

/* A turn whose only overrun is its last message, after fast ones: three
 * fast messages (the clock read after the first and the third, then due
 * again four messages later) and one of 1.5 ms, under 1 ms. The read at
 * the end of the turn reports the cut: fl__claim_run returns true. All
 * four ran here whenever the fourth began inside the budget (a cut before
 * it would have needed the budget spent). */
static void test_claim_budget_sees_a_slow_last_message(void **state)
{
    (void)state;
    for (int attempt = 1;; attempt++) {
        fx_t fx;
        fx_start(&fx, 0);
        budget_turn_t t = budget_turn(&fx, 3, T_LONG, 1);
        uint64_t b4 = began_at(&fx, &t, 4);
        fx_end(&fx);
        assert_true(t.cut);
        if (b4 < BUDGET_NS)
            assert_int_equal(4, t.here);
        if (b4 < QUIET_NS)
            return;
        if (attempt == ATTEMPTS)
            fail_msg("no quiet turn in %d attempts", ATTEMPTS);
    }
}

/* Twenty fast messages then twenty of 300 us, under 1 ms. The fourth slow
 * one (24) ends past the budget at the latest and the next clock read is
 * at most 7 messages later, so at most 31 run here, and 21 or more
 * whenever the 21st began inside the budget (a cut before it would have
 * needed the budget spent); the rest run on the workers, in order;
 * fl__claim_run returns true. In a quiet turn the clock is read after
 * messages 1, 3, 7, 15 (strides 1, 2, 4, 8: the pace fits what is left),
 * 23 (three slow ones: 8 more no longer fit), then after every message:
 * the cut is at 23 or 24. */
static void
test_claim_budget_reads_the_clock_less_often_while_fast(void **state)
{
    (void)state;
    enum { FAST = 20, SLOW = 20 };
    for (int attempt = 1;; attempt++) {
        fx_t fx;
        fx_start(&fx, 0);
        budget_turn_t t = budget_turn(&fx, FAST, T_SLOW, SLOW);
        uint64_t b21 = began_at(&fx, &t, FAST + 1);
        fx_end(&fx);
        assert_true(t.cut);
        assert_in_range(t.here, 1, FAST + 4 + 7);
        if (b21 < BUDGET_NS)
            assert_in_range(t.here, FAST + 1, FAST + 4 + 7);
        if (b21 < QUIET_NS) {
            assert_in_range(t.here, 23, 24);
            return;
        }
        if (attempt == ATTEMPTS)
            fail_msg("no quiet turn in %d attempts", ATTEMPTS);
    }
}

/* Ten fast messages under 1 ms: when the whole run took less than the
 * budget, no read (the one at the end of the turn included) can be past
 * it: all ten run here and fl__claim_run returns false. */
static void test_claim_budget_not_reached_by_fast_messages(void **state)
{
    (void)state;
    for (int attempt = 1;; attempt++) {
        fx_t fx;
        fx_start(&fx, 0);
        budget_turn_t t = budget_turn(&fx, 10, T_REC, 0);
        fx_end(&fx);
        if (t.t1 - t.t0 < BUDGET_NS) {
            assert_false(t.cut);
            assert_int_equal(10, t.here);
            return;
        }
        if (attempt == ATTEMPTS)
            fail_msg("no turn inside the budget in %d attempts", ATTEMPTS);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_claim_runs_the_turn_on_the_calling_thread),
        FL_TEST(test_claim_runs_one_batch_then_hands_over_to_workers),
        FL_TEST(test_claim_budget_cuts_the_turn),
        FL_TEST(test_claim_refuses_dead_refs_and_closed_systems),
        FL_TEST(test_claim_inside_a_turn_is_a_plain_tell),
        FL_TEST(test_shutdown_waits_for_a_held_claim),
        FL_TEST(test_claim_budget_sees_a_slow_last_message),
        FL_TEST(test_claim_budget_reads_the_clock_less_often_while_fast),
        FL_TEST(test_claim_budget_not_reached_by_fast_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
