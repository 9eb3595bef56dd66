/*
 * claim_held_test.c - the claiming thread's own tells while it holds the
 * claim (fl__tell_held, actor/claim.h): they join the claimed turn or go
 * to the workers, and need a claim that holds something.
 *
 * The shared recorder and fixture are claim_fixture.h's.
 */
#include "claim_fixture.h"

/* ---- tells from the claiming thread (fl__tell_held) ---------------------- */

/* A T_REC message carrying an ask's future (*f, which the caller holds
 * too): a message freed unsent fails it with FL_ENOREPLY. */
static fl_msg_t *msg_with_reply(int v, fl_future_t **f)
{
    fl_msg_t *m = fl_test_msg_int(T_REC, v);
    *f = fl_future_alloc();
    assert_non_null(*f);
    m->reply = fl_future_retain(*f);
    return m;
}

/* Threads outside the runtime counted in with sys (a held claim is one). */
static uint64_t inflight(fl_system_t *sys)
{
    return atomic_load(&sys->inflight);
}

/* Tells from the test thread to the actor it holds a claim on
 * (fl__tell_held) only queue: nothing runs, the claim is unchanged and
 * the system counts the thread in once, for the claim. The claim's turn
 * runs them on this thread, in order, after the claiming message, and
 * the count ends with it. */
static void test_tell_held_to_the_claimed_actor_joins_its_turn(void **state)
{
    (void)state;
    enum { HELD = 5 };
    fx_t fx;
    fx_start(&fx, 0);
    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    fl__actor_t *claimed = c.a;
    assert_int_equal(1, inflight(fx.sys));
    for (int i = 0; i < HELD; i++)
        assert_fl_ok(fl__tell_held(&c, fx.aref, fl_test_msg_int(T_REC, i)));
    assert_ptr_equal(fx.sys, c.sys);
    assert_ptr_equal(claimed, c.a);
    assert_int_equal(1, inflight(fx.sys));
    workers_ran(fx.sys, fx.bref, &fx.b);
    assert_int_equal(base, rec_count(&fx.a));

    assert_false(fl__claim_run(&c, 0));
    assert_int_equal(0, inflight(fx.sys));
    assert_int_equal(base + 1 + HELD, rec_count(&fx.a));
    expect_run(&fx.a, base, 1, WARM, fx.aref, fx.sys, true);
    expect_run(&fx.a, base + 1, HELD, 0, fx.aref, fx.sys, true);
    fx_end(&fx);
}

/* fl__tell_held to another actor of the system delivers as fl_tell: a
 * worker runs the messages, in order, while the claim is still held; the
 * claimed actor gets none of them and the count stays the claim's. */
static void test_tell_held_to_another_actor_goes_to_the_workers(void **state)
{
    (void)state;
    enum { HELD = 3 };
    fx_t fx;
    fx_start(&fx, 0);
    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    for (int i = 0; i < HELD; i++)
        assert_fl_ok(
            fl__tell_held(&c, fx.bref, fl_test_msg_int(T_REC, 10 + i)));
    assert_int_equal(1, inflight(fx.sys));
    rec_wait(&fx.b, HELD);
    expect_run(&fx.b, 0, HELD, 10, fx.bref, fx.sys, false);
    assert_int_equal(base, rec_count(&fx.a));
    assert_non_null(c.a);

    assert_false(fl__claim_run(&c, 0));
    assert_int_equal(0, inflight(fx.sys));
    assert_int_equal(base + 1, rec_count(&fx.a));
    expect_run(&fx.a, base, 1, WARM, fx.aref, fx.sys, true);
    assert_int_equal(HELD, rec_count(&fx.b));
    fx_end(&fx);
}

/* fl__tell_held needs a claim that holds an actor, on a thread outside the
 * runtime: a NULL claim, a zeroed one, one naming a system but no actor
 * and one whose turn has run (fl__claim_run cleared it) are FL_EINVAL,
 * the message freed at once (its ask fails with FL_ENOREPLY); from a
 * worker's turn and from a claimed turn it is FL_EINVAL whatever the
 * claim. Nothing is delivered and the count is untouched. */
static void test_tell_held_without_a_held_claim_is_einval(void **state)
{
    (void)state;
    fx_t fx;
    fx_start(&fx, 0);
    fl_future_t *f;
    fl__claim_t zero = {NULL, NULL};
    fl__claim_t no_actor = {fx.sys, NULL};
    const fl__claim_t *bad[] = {NULL, &zero, &no_actor};
    for (int i = 0; i < 3; i++) {
        assert_fl(FL_EINVAL,
                  fl__tell_held(bad[i], fx.bref, msg_with_reply(i, &f)));
        assert_fl(FL_ENOREPLY, fl_future_error(f));
        fl_future_release(f);
    }
    assert_int_equal(0, inflight(fx.sys));

    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    assert_false(fl__claim_run(&c, 0));
    assert_null(c.a);
    assert_fl(FL_EINVAL, fl__tell_held(&c, fx.bref, msg_with_reply(3, &f)));
    assert_fl(FL_ENOREPLY, fl_future_error(f));
    fl_future_release(f);
    assert_int_equal(0, inflight(fx.sys));

    /* On runtime threads, with a claim that looks held. */
    fl__claim_t looks_held = {fx.sys,
                              fl__slot(fx.sys, FL__REF_SLOT(fx.aref.id))};
    assert_non_null(looks_held.a);
    fx.a.fwd = fx.bref;
    fx.a.held = &looks_held;
    assert_fl_ok(fl_tell(fx.sys, fx.aref, fl_test_msg_int(T_HELD, 20)));
    rec_wait(&fx.a, base + 2);
    expect_run(&fx.a, base + 1, 1, 20, fx.aref, fx.sys, false);
    assert_fl(FL_EINVAL, rec_at(&fx.a, base + 1).fwd_rc);
    base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    assert_fl_ok(fl_tell(fx.sys, fx.aref, fl_test_msg_int(T_HELD, 21)));
    assert_false(fl__claim_run(&c, 0));
    expect_run(&fx.a, base + 1, 1, 21, fx.aref, fx.sys, true);
    assert_fl(FL_EINVAL, rec_at(&fx.a, base + 1).fwd_rc);
    assert_int_equal(0, inflight(fx.sys));
    /* Nothing reached b: what it records first is this. */
    workers_ran(fx.sys, fx.bref, &fx.b);
    assert_int_equal(1, rec_count(&fx.b));
    expect_run(&fx.b, 0, 1, 0, fx.bref, fx.sys, false);
    fx_end(&fx);
}

/* Once the system is closed fl__tell_held is FL_ECLOSED, to the claimed
 * actor and to another, and leaves the claim's count alone; the claim's
 * turn still runs (it stops the claimed actor, as the close asked: its
 * WARM is a dead letter), ends the count, and shutdown returns. */
static void test_tell_held_after_close_is_eclosed(void **state)
{
    (void)state;
    fx_t fx;
    fx_start(&fx, 0);
    fl__claim_t c;
    int base = claim_idle(fx.sys, fx.aref, &fx.a, &c);
    assert_fl_ok(fl_system_close(fx.sys));
    assert_fl(FL_ECLOSED,
              fl__tell_held(&c, fx.aref, fl_test_msg_int(T_REC, 1)));
    assert_fl(FL_ECLOSED,
              fl__tell_held(&c, fx.bref, fl_test_msg_int(T_REC, 2)));
    assert_int_equal(1, inflight(fx.sys));
    assert_non_null(c.a);

    assert_false(fl__claim_run(&c, 0));
    assert_int_equal(0, inflight(fx.sys));
    assert_int_equal(1, atomic_load(&fx.a.stops));
    assert_true(pthread_equal(fx.a.stop_thread, pthread_self()));
    assert_fl_ok(fl_system_shutdown(fx.sys));
    assert_int_equal(base, rec_count(&fx.a));
    assert_int_equal(0, rec_count(&fx.b));
    fx_end(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_tell_held_to_the_claimed_actor_joins_its_turn),
        FL_TEST(test_tell_held_to_another_actor_goes_to_the_workers),
        FL_TEST(test_tell_held_without_a_held_claim_is_einval),
        FL_TEST(test_tell_held_after_close_is_eclosed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
