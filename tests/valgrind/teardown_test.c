/*
 * teardown_test - run under valgrind by ctest (label "valgrind"): a system
 * torn down with work of every kind still in flight must free everything
 * and touch no freed memory. Each case also checks what the teardown did to
 * that work (exact codes), so it fails without valgrind too.
 */
#include "fl_test.h"

#include <stdatomic.h>
#include <string.h>

static _Atomic int stops;

static void slow(fl_system_t *sys, fl_actor_ref_t self, void *state,
                 fl_msg_t *msg)
{
    fl_test_latch_t *gate = state;
    /* The first message holds the actor until the test opens the gate. */
    if (fl_msg_type(msg) == 1)
        fl_test_latch_wait(gate, 10000);
}

static void count_stop(fl_system_t *sys, fl_actor_ref_t self, void *state)
{
    atomic_fetch_add(&stops, 1);
}

static void never_called(fl_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    fail_msg("continuation ran on a stopped actor");
}

static void free_counter(void *p)
{
    atomic_fetch_add((_Atomic int *)p, 1);
}

/* Messages, asks, exec and continuations still queued when the system shuts
 * down: every ask fails with FL_EUNREACHABLE, every exec argument is freed,
 * the stop hook runs once. */
static void test_shutdown_with_queued_work_frees_everything(void **unused)
{
    atomic_store(&stops, 0);
    fl_system_t *sys = fl_test_system(2);
    fl_test_latch_t *gate = fl_test_latch_alloc(1);
    fl_actor_opts_t o = {.name = "slow", .on_stop = count_stop};
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, slow, gate, &o, &a));
    assert_fl_ok(fl_tell(sys, a, fl_msg_alloc(1, 0)));
    for (int i = 0; i < 1000; i++)
        assert_fl_ok(fl_tell(sys, a, fl_msg_alloc(2, 100)));
    fl_future_t *asks[10];
    for (int i = 0; i < 10; i++)
        assert_fl_ok(fl_ask(sys, a, fl_msg_alloc(3, 8), FL_INFINITE, &asks[i]));
    _Atomic int freed = 0;
    fl_future_t *pending = fl_future_alloc();
    assert_fl_ok(fl_future_on_complete_in(pending, sys, a, never_called,
                                          (void *)&freed, free_counter));
    fl_future_t *term;
    assert_fl_ok(fl_actor_termination(sys, a, &term));
    fl_timer_id_t tid;
    assert_fl_ok(fl_timer_send(sys, a, fl_msg_alloc(4, 64), 60000, 0, &tid));
    fl_future_t *timeout = fl_future_alloc();
    assert_fl_ok(fl_future_set_timeout(sys, timeout, 60000));

    assert_fl_ok(fl_system_close(sys));
    fl_test_latch_count_down(gate);
    assert_fl_ok(fl_system_shutdown(sys));

    assert_int_equal(atomic_load(&stops), 1);
    for (int i = 0; i < 10; i++) {
        assert_true(fl_future_done(asks[i]));
        assert_fl(FL_EUNREACHABLE, fl_future_error(asks[i]));
        fl_future_release(asks[i]);
    }
    assert_fl_ok(fl_future_error(term));
    assert_fl(FL_ECLOSED, fl_future_error(timeout));
    /* The continuation's future never completed: completing it now finds
     * the system closed and frees the argument instead of running it. */
    assert_fl_ok(fl_future_complete(pending, NULL, NULL));
    assert_int_equal(atomic_load(&freed), 1);
    fl_future_release(pending);
    fl_future_release(term);
    fl_future_release(timeout);
    fl_system_free(sys);
    fl_test_latch_free(gate);
}

/* Many actors, some stopped and respawned into reused slots, all freed. */
static void test_slot_reuse_and_shutdown_free_everything(void **unused)
{
    fl_system_t *sys = fl_test_system(2);
    fl_actor_ref_t refs[2000];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 2000; i++)
            assert_fl_ok(fl_actor_spawn(sys, slow, NULL, NULL, &refs[i]));
        for (int i = 0; i < 2000; i++)
            assert_fl_ok(fl_tell(sys, refs[i], fl_msg_alloc(2, 200)));
        fl_future_t *last = NULL;
        for (int i = 0; i < 2000; i++) {
            assert_fl_ok(fl_actor_stop(sys, refs[i]));
            if (i == 1999)
                assert_fl_ok(fl_actor_termination(sys, refs[i], &last));
        }
        assert_fl_ok(fl_future_wait(last, 10000));
        fl_future_release(last);
    }
    fl_system_stats_t st;
    assert_fl_ok(fl_system_stats(sys, &st));
    assert_int_equal(st.actors_spawned, 6000);
    fl_system_free(sys); /* shutdown inside free */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_shutdown_with_queued_work_frees_everything),
        FL_TEST(test_slot_reuse_and_shutdown_free_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
