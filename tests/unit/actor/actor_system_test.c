/*
 * actor_system_test.c - the actor system itself: its lifecycle and options,
 * its statistics, teardown with work still queued, and an actor acting on
 * itself or its system.
 */
#include "actor_fixture.h"

/* ---- system lifecycle -----------------------------------------------------
 */

static void
test_system_with_default_options_runs_one_worker_per_online_core(void **state)
{
    (void)state;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    fl_system_t *sys = NULL;
    assert_fl_ok(fl_system_alloc(NULL, &sys));
    assert_non_null(sys);
    assert_int_equal(cores, fl_system_workers(sys));
    end_system(sys);

    fl_system_opts_t o = {0};
    assert_fl_ok(fl_system_alloc(&o, &sys));
    assert_int_equal(cores, fl_system_workers(sys));
    end_system(sys);
}

static void test_system_runs_the_requested_number_of_workers(void **state)
{
    (void)state;
    fl_system_opts_t o = {0};
    o.workers = 3;
    o.batch = 1;
    o.spin_us = FL_SPIN_NONE;
    fl_system_t *sys = NULL;
    assert_fl_ok(fl_system_alloc(&o, &sys));
    assert_int_equal(3, fl_system_workers(sys));

    /* And it works with those options. */
    probe_t p;
    spawn_probe_told(sys, &p, 10);
    end_system(sys);
    fl_test_latch_free(p.got);
}

static void test_system_alloc_rejects_invalid_options(void **state)
{
    (void)state;
    fl_system_opts_t o = {0};
    assert_fl(FL_EINVAL, fl_system_alloc(NULL, NULL));
    assert_fl(FL_EINVAL, fl_system_alloc(&o, NULL));
    fl_system_t *sys = NULL;
    o.workers = 257;
    assert_fl(FL_EINVAL, fl_system_alloc(&o, &sys));
    o.workers = 1;
    o.max_actors = 16777216u + 1u;
    assert_fl(FL_EINVAL, fl_system_alloc(&o, &sys));
}

static void test_system_shutdown_twice_returns_ok_both_times(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    assert_fl_ok(fl_system_shutdown(sys));
    assert_fl_ok(fl_system_shutdown(sys));
    assert_fl_ok(fl_system_close(sys));
    fl_system_free(sys);
}

static void test_system_close_is_idempotent_and_refuses_new_work(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    probe_init(&p, sys);
    fl_actor_ref_t a = spawn_probe(sys, &p, NULL);
    assert_fl_ok(fl_system_close(sys));
    assert_fl_ok(fl_system_close(sys));
    fl_actor_ref_t b;
    assert_fl(FL_ECLOSED, fl_actor_spawn(sys, noop_receive, NULL, NULL, &b));
    assert_fl(FL_ECLOSED, fl_tell(sys, a, fl_test_msg_int(1, 1)));
    assert_fl(FL_ECLOSED,
              fl_timer_send(sys, a, fl_test_msg_int(1, 2), 10, 0, NULL));
    assert_fl(FL_ECLOSED, fl_timer_start(sys, noop_timer, NULL, 10, 0, NULL));
    assert_fl_ok(fl_system_shutdown(sys));
    assert_int_equal(1, atomic_load(&p.stopped));
    assert_int_equal(0, atomic_load(&p.received));
    fl_system_free(sys);
}

static void test_system_free_shuts_down_a_running_system(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    probe_init(&p, sys);
    p.got = fl_test_latch_alloc(1);
    fl_actor_ref_t a = spawn_probe(sys, &p, "free-me");
    assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(1, 1)));
    fl_test_latch_await(p.got);
    fl_system_free(sys);
    assert_int_equal(1, atomic_load(&p.started));
    assert_int_equal(1, atomic_load(&p.stopped));
    fl_test_latch_free(p.got);
    fl_system_free(NULL);
}

static void test_null_arguments_are_rejected_with_einval(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    fl_actor_ref_t a, none = {0};
    fl_future_t *f = (fl_future_t *)&f; /* must be set to NULL */
    fl_system_stats_t st;
    atomic_int freed = 0;
    assert_fl_ok(fl_actor_spawn(sys, noop_receive, NULL, NULL, &a));

    assert_fl(FL_EINVAL, fl_system_close(NULL));
    assert_fl(FL_EINVAL, fl_system_shutdown(NULL));
    assert_fl(FL_EINVAL, fl_system_stats(NULL, &st));
    assert_fl(FL_EINVAL, fl_system_stats(sys, NULL));
    assert_int_equal(0, fl_system_workers(NULL));

    assert_fl(FL_EINVAL, fl_actor_spawn(NULL, noop_receive, NULL, NULL, &a));
    assert_fl(FL_EINVAL, fl_actor_spawn(sys, NULL, NULL, NULL, &a));
    assert_fl(FL_EINVAL, fl_actor_spawn(sys, noop_receive, NULL, NULL, NULL));
    assert_fl(FL_EINVAL, fl_actor_stop(NULL, a));
    assert_fl(FL_EINVAL, fl_actor_lookup(NULL, "x", &a));
    assert_fl(FL_EINVAL, fl_actor_lookup(sys, NULL, &a));
    assert_fl(FL_EINVAL, fl_actor_lookup(sys, "x", NULL));
    assert_fl(FL_EINVAL, fl_actor_termination(NULL, a, &f));
    assert_null(f);
    assert_fl(FL_EINVAL, fl_actor_termination(sys, a, NULL));

    /* tell and ask consume the message even when rejected (LSan checks). */
    assert_fl(FL_EINVAL, fl_tell(NULL, a, fl_test_msg_int(1, 1)));
    assert_fl(FL_EINVAL, fl_tell(sys, a, NULL));
    f = (fl_future_t *)&f;
    assert_fl(FL_EINVAL, fl_ask(NULL, a, fl_test_msg_int(1, 1), 100, &f));
    assert_null(f);
    assert_fl(FL_EINVAL, fl_ask(sys, a, NULL, 100, &f));
    assert_null(f);
    assert_fl(FL_EINVAL, fl_ask(sys, a, fl_test_msg_int(1, 1), 100, NULL));
    f = (fl_future_t *)&f;
    assert_fl(FL_EINVAL, fl_ask(sys, a, fl_test_msg_int(1, 1), 0, &f));
    assert_null(f);
    f = (fl_future_t *)&f;
    assert_fl(FL_EINVAL, fl_ask(sys, a, fl_test_msg_int(1, 1), -5, &f));
    assert_null(f);

    /* exec consumes arg even when rejected. */
    assert_fl(FL_EINVAL, fl_actor_exec(sys, a, NULL, &freed, count_free));
    assert_int_equal(1, atomic_load(&freed));
    assert_fl(FL_EINVAL, fl_actor_exec(NULL, a, noop_exec, &freed, count_free));
    assert_int_equal(2, atomic_load(&freed));

    assert_fl(FL_EINVAL, fl_timer_send(sys, a, NULL, 10, 0, NULL));
    assert_fl(FL_EINVAL,
              fl_timer_send(NULL, a, fl_test_msg_int(1, 1), 10, 0, NULL));

    assert_null(fl_msg_data(NULL));
    fl_msg_free(NULL);
    assert_fl(FL_EUNREACHABLE, fl_tell(sys, none, fl_test_msg_int(1, 1)));
    end_system(sys);
}

static void
test_after_shutdown_calls_taking_the_system_return_eclosed(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    probe_init(&p, sys);
    fl_actor_ref_t a = spawn_probe(sys, &p, "closed");
    fl_future_t *pending = fl_future_alloc();
    assert_fl_ok(fl_system_shutdown(sys));
    assert_int_equal(1, atomic_load(&p.stopped));

    fl_actor_ref_t b;
    fl_future_t *f = (fl_future_t *)&f;
    atomic_int freed = 0;
    fl_timer_id_t id = 0;
    assert_fl(FL_ECLOSED, fl_actor_spawn(sys, noop_receive, NULL, NULL, &b));
    assert_fl(FL_ECLOSED, fl_tell(sys, a, fl_test_msg_int(1, 1)));
    assert_fl(FL_ECLOSED, fl_ask(sys, a, fl_test_msg_int(1, 1), 100, &f));
    assert_null(f);
    assert_fl(FL_ECLOSED, fl_actor_stop(sys, a));
    assert_fl(FL_ECLOSED, fl_actor_lookup(sys, "closed", &b));
    f = (fl_future_t *)&f;
    assert_fl(FL_ECLOSED, fl_actor_termination(sys, a, &f));
    assert_null(f);
    assert_fl(FL_ECLOSED, fl_actor_exec(sys, a, noop_exec, &freed, count_free));
    assert_int_equal(1, atomic_load(&freed));
    assert_fl(FL_ECLOSED,
              fl_timer_send(sys, a, fl_test_msg_int(1, 1), 10, 0, &id));
    assert_fl(FL_ECLOSED, fl_timer_start(sys, noop_timer, NULL, 10, 0, &id));
    assert_fl(FL_ECLOSED, fl_timer_cancel(sys, 1));
    assert_fl(FL_ECLOSED, fl_future_set_timeout(sys, pending, 10));
    assert_fl_ok(fl_system_close(sys));
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_future_release(pending);
}

/* on_complete_in "returns an error as fl_actor_exec", and after shutdown
 * every function taking the system returns FL_ECLOSED. */
static void
test_on_complete_in_after_shutdown_returns_eclosed_and_frees_arg(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    fl_actor_ref_t a = spawn_noop(sys);
    assert_fl_ok(fl_system_shutdown(sys));
    tracked_t t = {0};
    fl_future_t *pending = fl_future_alloc();
    int rc = fl_future_on_complete_in(pending, sys, a, tracked_future_cb, &t,
                                      tracked_free);
    int freed_at_once = atomic_load(&t.freed);
    /* Release first: checked after the teardown so a failure leaks nothing
     * of the test's own. */
    fl_future_release(pending);
    fl_system_free(sys);
    assert_fl(FL_ECLOSED, rc);
    assert_int_equal(1, freed_at_once);
    assert_int_equal(0, atomic_load(&t.ran));
}

/* A pending future nobody completes is freed when its last reference goes,
 * on_complete_in registration or not (LSan checks). */
static void
test_on_complete_in_on_a_future_that_never_completes_leaks_nothing(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    fl_actor_ref_t a = spawn_noop(sys);
    tracked_t t = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_on_complete_in(f, sys, a, tracked_future_cb, &t,
                                          tracked_free));
    fl_future_release(f);
    end_system(sys);
    assert_int_equal(0, atomic_load(&t.ran));
}

/* ---- statistics ---------------------------------------------------------- */

static void test_stats_count_live_and_spawned_actors(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    fl_system_stats_t st;
    assert_fl_ok(fl_system_stats(sys, &st));
    assert_int_equal(0, st.actors_live);
    assert_int_equal(0, st.actors_spawned);
    assert_int_equal(0, st.dead_letters);
    assert_int_equal(0, st.timers_pending);
    fl_actor_ref_t a[3];
    for (int i = 0; i < 3; i++)
        assert_fl_ok(fl_actor_spawn(sys, noop_receive, NULL, NULL, &a[i]));
    assert_fl_ok(fl_system_stats(sys, &st));
    assert_int_equal(3, st.actors_live);
    assert_int_equal(3, st.actors_spawned);
    stop_and_wait(sys, a[1]);
    assert_fl_ok(fl_system_stats(sys, &st));
    assert_int_equal(2, st.actors_live);
    assert_int_equal(3, st.actors_spawned);
    end_system(sys);
}

static void test_stats_count_dead_letters(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    fl_actor_ref_t a = spawn_stopped_noop(sys);
    fl_system_stats_t before, after;
    assert_fl_ok(fl_system_stats(sys, &before));
    for (int i = 0; i < 3; i++)
        assert_fl(FL_EUNREACHABLE, fl_tell(sys, a, fl_test_msg_int(1, i)));
    assert_fl_ok(fl_system_stats(sys, &after));
    assert_int_equal(before.dead_letters + 3, after.dead_letters);
    end_system(sys);
}

/* Two threads arm and cancel timers while the main thread reads the
 * statistics: each has at most one armed, and none is left. (Under TSan:
 * the pending count is read under the lock that guards the heap.) */
#define ARMERS 2
#define ARMS 20000

static void never_cb(fl_system_t *sys, void *arg)
{
    (void)sys;
    (void)arg;
}

typedef struct armer {
    fl_system_t *sys;
    _Atomic int done, failed;
} armer_t;

static void *arm_and_cancel(void *p)
{
    armer_t *a = p;
    for (int i = 0; i < ARMS; i++) {
        fl_timer_id_t id;
        if (fl_timer_start(a->sys, never_cb, NULL, 3600000, 0, &id) != FL_OK ||
            fl_timer_cancel(a->sys, id) != FL_OK)
            atomic_store(&a->failed, 1);
    }
    atomic_store(&a->done, 1);
    return NULL;
}

static void test_stats_count_timers_armed_on_other_threads(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    armer_t a[ARMERS];
    pthread_t th[ARMERS];
    for (int i = 0; i < ARMERS; i++) {
        a[i] = (armer_t){.sys = sys};
        assert_int_equal(0,
                         pthread_create(&th[i], NULL, arm_and_cancel, &a[i]));
    }
    for (int i = 0; i < ARMERS; i++) {
        while (!atomic_load(&a[i].done)) {
            fl_system_stats_t st;
            assert_fl_ok(fl_system_stats(sys, &st));
            assert_true(st.timers_pending <= ARMERS);
        }
        pthread_join(th[i], NULL);
        assert_int_equal(0, atomic_load(&a[i].failed));
    }
    fl_system_stats_t st;
    assert_fl_ok(fl_system_stats(sys, &st));
    assert_int_equal(0, st.timers_pending);
    end_system(sys);
}

/* ---- teardown with work queued --------------------------------------------
 */

typedef struct slow {
    atomic_int handled;
    atomic_int asks_handled;
    atomic_int stopped;
} slow_t;

static void slow_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                         fl_msg_t *msg)
{
    (void)sys;
    (void)self;
    slow_t *s = st;
    if (fl_msg_is_ask(msg))
        atomic_fetch_add(&s->asks_handled, 1);
    atomic_fetch_add(&s->handled, 1);
    uint64_t t0 = fl_clock_now_ns();
    while (fl_clock_now_ns() - t0 < 2000) {
    }
}

static void slow_stop(fl_system_t *sys, fl_actor_ref_t self, void *st)
{
    (void)sys;
    (void)self;
    atomic_fetch_add(&((slow_t *)st)->stopped, 1);
}

#define QUEUED_TELLS (100000 / SCALE)
#define QUEUED_ASKS 10

static void
test_shutdown_with_100000_queued_messages_stops_and_frees_everything(
    void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    slow_t s = {0};
    fl_actor_opts_t o = {0};
    o.on_stop = slow_stop;
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, slow_receive, &s, &o, &a));
    for (int i = 0; i < QUEUED_TELLS; i++)
        assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(1, i)));
    fl_future_t *asks[QUEUED_ASKS];
    for (int i = 0; i < QUEUED_ASKS; i++)
        assert_fl_ok(
            fl_ask(sys, a, fl_test_msg_int(1, i), FL_INFINITE, &asks[i]));
    assert_fl_ok(fl_system_shutdown(sys));
    assert_int_equal(1, atomic_load(&s.stopped));
    int handled_asks = atomic_load(&s.asks_handled);
    int unreachable = 0, noreply = 0;
    for (int i = 0; i < QUEUED_ASKS; i++) {
        assert_true(fl_future_done(asks[i]));
        int err = fl_future_error(asks[i]);
        if (err == FL_EUNREACHABLE)
            unreachable++;
        else if (err == FL_ENOREPLY)
            noreply++;
        else
            fail_msg("queued ask %d ended with %s", i, fl_err_name(err));
        fl_future_release(asks[i]);
    }
    /* Asks the actor handled (without replying) got FL_ENOREPLY; all the
     * ones still queued at shutdown FL_EUNREACHABLE. */
    assert_int_equal(handled_asks, noreply);
    assert_int_equal(QUEUED_ASKS - handled_asks, unreachable);
    print_message("handled %d of %d messages before shutdown\n",
                  atomic_load(&s.handled), QUEUED_TELLS + QUEUED_ASKS);
    fl_system_free(sys);
}

static void
test_close_turns_queued_messages_into_dead_letters_and_fails_queued_asks(
    void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t *p = calloc(1, sizeof *p);
    fl_actor_ref_t a = spawn_blocked_probe(sys, p, 0);
    for (int i = 1; i <= QUEUED_TELLS; i++)
        assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(1, i)));
    fl_future_t *asks[QUEUED_ASKS];
    for (int i = 0; i < QUEUED_ASKS; i++)
        assert_fl_ok(
            fl_ask(sys, a, fl_test_msg_int(1, i), FL_INFINITE, &asks[i]));
    assert_fl_ok(fl_system_close(sys));
    fl_test_latch_count_down(p->block);
    for (int i = 0; i < QUEUED_ASKS; i++) {
        assert_fl(FL_EUNREACHABLE, fl_future_wait(asks[i], WAIT_MS));
        fl_future_release(asks[i]);
    }
    assert_fl_ok(fl_system_shutdown(sys));
    /* Only the message being handled at close was delivered. */
    assert_int_equal(1, atomic_load(&p->received));
    assert_int_equal(1, atomic_load(&p->stopped));
    assert_false(atomic_load(&p->msg_after_stop));
    fl_system_free(sys);
    probe_free_latches(p);
    free(p);
}

/* ---- an actor acting on itself or its system ------------------------------
 */

typedef struct self_stop {
    atomic_int handled;
    atomic_int stop_rc;
    atomic_int stopped;
} self_stop_t;

static void self_stop_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                              fl_msg_t *msg)
{
    (void)msg;
    self_stop_t *s = st;
    atomic_fetch_add(&s->handled, 1);
    atomic_store(&s->stop_rc, fl_actor_stop(sys, self));
}

static void self_stop_hook(fl_system_t *sys, fl_actor_ref_t self, void *st)
{
    (void)sys;
    (void)self;
    atomic_fetch_add(&((self_stop_t *)st)->stopped, 1);
}

static void
test_actor_stopping_itself_from_receive_handles_no_further_message(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    self_stop_t s = {.stop_rc = -1};
    fl_actor_opts_t o = {0};
    o.on_stop = self_stop_hook;
    o.name = "self-stopper";
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, self_stop_receive, &s, &o, &a));
    fl_future_t *term = NULL;
    assert_fl_ok(fl_actor_termination(sys, a, &term));
    for (int i = 0; i < 20; i++) {
        int rc = fl_tell(sys, a, fl_test_msg_int(1, i));
        if (rc != FL_OK && rc != FL_EUNREACHABLE)
            fail_msg("tell %d: %s", i, fl_err_name(rc));
    }
    assert_fl_ok(fl_future_wait(term, WAIT_MS));
    assert_int_equal(1, atomic_load(&s.handled));
    assert_fl_ok(atomic_load(&s.stop_rc));
    assert_int_equal(1, atomic_load(&s.stopped));
    fl_actor_ref_t found;
    assert_fl(FL_ENOENT, fl_actor_lookup(sys, "self-stopper", &found));
    fl_future_release(term);
    end_system(sys);
    assert_int_equal(1, atomic_load(&s.stopped));
}

/* An actor's call on its own system (fl_system_shutdown or close). */
typedef struct sys_call {
    int (*call)(fl_system_t *sys);
    atomic_int rc;
    fl_test_latch_t *latch;
} sys_call_t;

/* Makes c->call on the system from the actor, keeps its result in c->rc. */
static void sys_call_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                             fl_msg_t *msg)
{
    (void)self;
    (void)msg;
    sys_call_t *c = st;
    atomic_store(&c->rc, c->call(sys));
    fl_test_latch_count_down(c->latch);
}

static void test_shutdown_from_an_actor_returns_edeadlk(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    sys_call_t c = {
        .call = fl_system_shutdown, .rc = -1, .latch = fl_test_latch_alloc(1)};
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, sys_call_receive, &c, NULL, &a));
    assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(1, 0)));
    fl_test_latch_await(c.latch);
    assert_fl(FL_EDEADLK, atomic_load(&c.rc));
    /* The system still works. */
    assert_true(fl_actor_alive(sys, a));
    end_system(sys);
    fl_test_latch_free(c.latch);
}

static void
test_close_from_an_actor_returns_ok_and_stops_the_actors(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    sys_call_t c = {
        .call = fl_system_close, .rc = -1, .latch = fl_test_latch_alloc(1)};
    probe_t p;
    probe_init(&p, sys);
    p.stop_latch = fl_test_latch_alloc(1);
    fl_actor_ref_t a;
    spawn_probe(sys, &p, NULL);
    assert_fl_ok(fl_actor_spawn(sys, sys_call_receive, &c, NULL, &a));
    assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(1, 0)));
    fl_test_latch_await(c.latch);
    assert_fl_ok(atomic_load(&c.rc));
    fl_test_latch_await(p.stop_latch);
    fl_actor_ref_t b;
    assert_fl(FL_ECLOSED, fl_actor_spawn(sys, noop_receive, NULL, NULL, &b));
    end_system(sys);
    assert_int_equal(1, atomic_load(&p.stopped));
    fl_test_latch_free(c.latch);
    fl_test_latch_free(p.stop_latch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(
            test_system_with_default_options_runs_one_worker_per_online_core),
        FL_TEST(test_system_runs_the_requested_number_of_workers),
        FL_TEST(test_system_alloc_rejects_invalid_options),
        FL_TEST(test_system_shutdown_twice_returns_ok_both_times),
        FL_TEST(test_system_close_is_idempotent_and_refuses_new_work),
        FL_TEST(test_system_free_shuts_down_a_running_system),
        FL_TEST(test_null_arguments_are_rejected_with_einval),
        FL_TEST(test_after_shutdown_calls_taking_the_system_return_eclosed),
        FL_TEST(
            test_on_complete_in_after_shutdown_returns_eclosed_and_frees_arg),
        FL_TEST(
            test_on_complete_in_on_a_future_that_never_completes_leaks_nothing),
        FL_TEST(test_stats_count_live_and_spawned_actors),
        FL_TEST(test_stats_count_dead_letters),
        FL_TEST(
            test_shutdown_with_100000_queued_messages_stops_and_frees_everything),
        FL_TEST(
            test_close_turns_queued_messages_into_dead_letters_and_fails_queued_asks),
        FL_TEST(
            test_actor_stopping_itself_from_receive_handles_no_further_message),
        FL_TEST(test_stats_count_timers_armed_on_other_threads),
        FL_TEST(test_shutdown_from_an_actor_returns_edeadlk),
        FL_TEST(test_close_from_an_actor_returns_ok_and_stops_the_actors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
