/*
 * actor_test.c - the actor system: lifecycle, spawn and stop, names, stale
 * references, serial execution, tell/ask/reply, exec, on_complete_in,
 * senders, statistics and teardown with work still queued.
 */
#include "fl_test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef FL_SANITIZE
#define SCALE 10
#else
#define SCALE 1
#endif

#define WAIT_MS 20000
#define LOG_MAX 4096

/* ---- helpers ------------------------------------------------------------- */

static int msg_get_int(fl_msg_t *m)
{
    if (fl_msg_size(m) < sizeof(int))
        return -1;
    return *(int *)fl_msg_data(m);
}

/* Waits until the latch has counted down to `left`. */
static void wait_latch_count(fl_test_latch_t *l, uint64_t left)
{
    uint64_t t0 = fl_clock_now_ns();
    while (fl_test_latch_count(l) > left) {
        if (fl_clock_now_ns() - t0 > (uint64_t)WAIT_MS * 1000000u)
            fail_msg("latch stuck at %llu, waiting for %llu",
                     (unsigned long long)fl_test_latch_count(l),
                     (unsigned long long)left);
        sched_yield();
    }
}

/* The termination future of a live actor. Take it BEFORE the actor can have
 * stopped: afterwards it fails at once with FL_EUNREACHABLE. */
static fl_future_t *termination_of(fl_system_t *sys, fl_actor_ref_t ref)
{
    fl_future_t *t = NULL;
    assert_fl_ok(fl_actor_termination(sys, ref, &t));
    assert_non_null(t);
    return t;
}

/* Waits for a termination future, asserts it succeeded, releases it. */
static void wait_terminated(fl_future_t *t)
{
    assert_fl_ok(fl_future_wait(t, WAIT_MS));
    assert_null(fl_future_value(t));
    fl_future_release(t);
}

/* Stops a live actor and waits until it has terminated. */
static void stop_and_wait(fl_system_t *sys, fl_actor_ref_t ref)
{
    fl_future_t *t = termination_of(sys, ref);
    assert_fl_ok(fl_actor_stop(sys, ref));
    wait_terminated(t);
}

static void end_system(fl_system_t *sys)
{
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
}

/* A counting arg_free. */
static void count_free(void *p)
{
    atomic_fetch_add((atomic_int *)p, 1);
}

/* An arg that records whether its function ran or it was freed instead. */
typedef struct tracked {
    atomic_int ran;
    atomic_int freed;
    fl_test_latch_t *freed_latch; /* optional, counted down on free */
} tracked_t;

static void tracked_free(void *arg)
{
    tracked_t *t = arg;
    atomic_fetch_add(&t->freed, 1);
    if (t->freed_latch)
        fl_test_latch_count_down(t->freed_latch);
}

static void tracked_exec(fl_system_t *sys, fl_actor_ref_t self, void *st,
                         void *arg)
{
    (void)sys;
    (void)self;
    (void)st;
    atomic_fetch_add(&((tracked_t *)arg)->ran, 1);
}

static void tracked_future_cb(fl_future_t *f, void *arg)
{
    (void)f;
    atomic_fetch_add(&((tracked_t *)arg)->ran, 1);
}

/* Termination of a ref that names no live actor "fails at once": either the
 * call returns FL_EUNREACHABLE or it gives an already failed future. */
static void assert_termination_unreachable(fl_system_t *sys, fl_actor_ref_t ref)
{
    fl_future_t *f = NULL;
    int rc = fl_actor_termination(sys, ref, &f);
    if (rc == FL_OK) {
        assert_non_null(f);
        assert_true(fl_future_done(f));
        assert_fl(FL_EUNREACHABLE, fl_future_error(f));
        fl_future_release(f);
    } else {
        assert_fl(FL_EUNREACHABLE, rc);
        if (f != NULL) {
            assert_true(fl_future_done(f));
            assert_fl(FL_EUNREACHABLE, fl_future_error(f));
            fl_future_release(f);
        }
    }
}

/* A general-purpose actor state. */
typedef struct probe {
    fl_system_t *sys;
    atomic_int received;
    atomic_int started;
    atomic_int stopped;
    atomic_bool has_start;
    atomic_bool msg_before_start;
    atomic_bool msg_after_stop;
    atomic_bool start_on_runtime; /* fl_system_current() == sys */
    atomic_bool start_on_main;
    atomic_bool stop_on_runtime;
    atomic_bool stop_on_main;
    atomic_bool self_param_mismatch; /* receive's self != fl_self() */
    atomic_uint_least64_t start_self;
    atomic_uint_least64_t stop_self;
    atomic_uint_least64_t recv_self;
    atomic_uintptr_t state_seen;
    pthread_t main_thread;
    int log[LOG_MAX];            /* payloads in arrival order */
    fl_test_latch_t *got;        /* counted down per message */
    fl_test_latch_t *stop_latch; /* counted down in the stop hook */
    fl_test_latch_t *block;      /* the first message waits for it */
    fl_test_latch_t *blocked;    /* counted down when blocking */
    atomic_int blocks;
} probe_t;

static void probe_init(probe_t *p, fl_system_t *sys)
{
    memset(p, 0, sizeof *p);
    p->sys = sys;
    p->main_thread = pthread_self();
}

static void probe_start(fl_system_t *sys, fl_actor_ref_t self, void *st)
{
    probe_t *p = st;
    atomic_store(&p->start_self, fl_self().id);
    atomic_store(&p->start_on_runtime,
                 fl_system_current() == sys && sys == p->sys);
    atomic_store(&p->start_on_main,
                 pthread_equal(pthread_self(), p->main_thread) != 0);
    if (self.id != fl_self().id)
        atomic_store(&p->self_param_mismatch, true);
    atomic_fetch_add(&p->started, 1);
}

static void probe_stop(fl_system_t *sys, fl_actor_ref_t self, void *st)
{
    probe_t *p = st;
    atomic_store(&p->stop_self, fl_self().id);
    atomic_store(&p->stop_on_runtime,
                 fl_system_current() == sys && sys == p->sys);
    atomic_store(&p->stop_on_main,
                 pthread_equal(pthread_self(), p->main_thread) != 0);
    if (self.id != fl_self().id)
        atomic_store(&p->self_param_mismatch, true);
    atomic_fetch_add(&p->stopped, 1);
    if (p->stop_latch)
        fl_test_latch_count_down(p->stop_latch);
}

static void probe_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                          fl_msg_t *msg)
{
    (void)sys;
    probe_t *p = st;
    atomic_store(&p->state_seen, (uintptr_t)st);
    atomic_store(&p->recv_self, self.id);
    if (self.id != fl_self().id)
        atomic_store(&p->self_param_mismatch, true);
    if (atomic_load(&p->has_start) && atomic_load(&p->started) == 0)
        atomic_store(&p->msg_before_start, true);
    if (atomic_load(&p->stopped) != 0)
        atomic_store(&p->msg_after_stop, true);
    if (p->block && atomic_fetch_add(&p->blocks, 1) == 0) {
        fl_test_latch_count_down(p->blocked);
        fl_test_latch_wait(p->block, WAIT_MS);
    }
    int n = atomic_fetch_add(&p->received, 1);
    if (n < LOG_MAX)
        p->log[n] = msg_get_int(msg);
    if (p->got)
        fl_test_latch_count_down(p->got);
}

static fl_actor_ref_t spawn_probe(fl_system_t *sys, probe_t *p,
                                  const char *name)
{
    fl_actor_opts_t o = {0};
    o.name = name;
    o.on_start = probe_start;
    o.on_stop = probe_stop;
    atomic_store(&p->has_start, true);
    fl_actor_ref_t ref = {0};
    assert_fl_ok(fl_actor_spawn(sys, probe_receive, p, &o, &ref));
    assert_true(ref.id != 0);
    return ref;
}

/* Spawns an unnamed probe on p (initialised here), tells it the payloads
 * 0..n-1 and waits until all n have arrived (p->got counts them). */
static fl_actor_ref_t spawn_probe_told(fl_system_t *sys, probe_t *p, int n)
{
    probe_init(p, sys);
    p->got = fl_test_latch_alloc((uint64_t)n);
    fl_actor_ref_t a = spawn_probe(sys, p, NULL);
    for (int i = 0; i < n; i++)
        assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(1, i)));
    fl_test_latch_await(p->got);
    return a;
}

/* Spawns an unnamed probe on p (initialised here) that blocks in its first
 * message: tells it payload v and waits until it is blocked. Release it with
 * fl_test_latch_count_down(p->block). */
static fl_actor_ref_t spawn_blocked_probe(fl_system_t *sys, probe_t *p, int v)
{
    probe_init(p, sys);
    p->block = fl_test_latch_alloc(1);
    p->blocked = fl_test_latch_alloc(1);
    fl_actor_ref_t a = spawn_probe(sys, p, NULL);
    assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(1, v)));
    fl_test_latch_await(p->blocked);
    return a;
}

/* Spawns an unnamed probe on p (initialised here) and stops it: returns its
 * ref, now stale. */
static fl_actor_ref_t spawn_stopped_probe(fl_system_t *sys, probe_t *p)
{
    probe_init(p, sys);
    fl_actor_ref_t a = spawn_probe(sys, p, NULL);
    stop_and_wait(sys, a);
    return a;
}

/* Frees the latches a test gave p (those it left NULL are skipped). */
static void probe_free_latches(probe_t *p)
{
    fl_test_latch_free(p->got);
    fl_test_latch_free(p->stop_latch);
    fl_test_latch_free(p->block);
    fl_test_latch_free(p->blocked);
}

static void noop_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                         fl_msg_t *msg)
{
    (void)sys;
    (void)self;
    (void)st;
    (void)msg;
}

static void noop_exec(fl_system_t *sys, fl_actor_ref_t self, void *st,
                      void *arg)
{
    (void)sys;
    (void)self;
    (void)st;
    (void)arg;
}

static void noop_timer(fl_system_t *sys, void *arg)
{
    (void)sys;
    (void)arg;
}

/* Spawns an actor (no state, no options) that ignores its messages. */
static fl_actor_ref_t spawn_noop(fl_system_t *sys)
{
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, noop_receive, NULL, NULL, &a));
    return a;
}

/* Spawns a noop actor and stops it: returns its ref, now stale. */
static fl_actor_ref_t spawn_stopped_noop(fl_system_t *sys)
{
    fl_actor_ref_t a = spawn_noop(sys);
    stop_and_wait(sys, a);
    return a;
}

/* Asks ref, which names no live actor, with timeout_ms: the call succeeds
 * and gives a future already failed with FL_EUNREACHABLE. */
static void assert_ask_unreachable(fl_system_t *sys, fl_actor_ref_t ref,
                                   int64_t timeout_ms)
{
    fl_future_t *f = NULL;
    assert_fl_ok(fl_ask(sys, ref, fl_test_msg_int(1, 1), timeout_ms, &f));
    assert_true(fl_future_done(f));
    assert_fl(FL_EUNREACHABLE, fl_future_error(f));
    fl_future_release(f);
}

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

/* ---- spawn, hooks, self -------------------------------------------------- */

static void
test_self_and_current_system_are_empty_outside_the_runtime(void **state)
{
    (void)state;
    assert_int_equal(0, fl_self().id);
    assert_null(fl_system_current());
    fl_system_t *sys = fl_test_system(1);
    assert_int_equal(0, fl_self().id);
    assert_null(fl_system_current());
    end_system(sys);
}

static void test_spawn_passes_the_state_to_receive(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    probe_init(&p, sys);
    p.got = fl_test_latch_alloc(1);
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, probe_receive, &p, NULL, &a));
    assert_true(a.id != 0);
    assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(1, 5)));
    fl_test_latch_await(p.got);
    assert_ptr_equal(&p, (void *)atomic_load(&p.state_seen));
    assert_int_equal(a.id, atomic_load(&p.recv_self));
    assert_false(atomic_load(&p.self_param_mismatch));
    assert_int_equal(5, p.log[0]);
    end_system(sys);
    fl_test_latch_free(p.got);
}

static void
test_start_hook_runs_first_on_the_actors_thread_with_self_equal_to_ref(
    void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    for (int round = 0; round < 50; round++) {
        probe_t p;
        probe_init(&p, sys);
        p.got = fl_test_latch_alloc(1);
        fl_actor_ref_t a = spawn_probe(sys, &p, NULL);
        /* Sent at once: the start hook must still come first. */
        assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(1, round)));
        fl_test_latch_await(p.got);
        assert_int_equal(1, atomic_load(&p.started));
        assert_false(atomic_load(&p.msg_before_start));
        assert_int_equal(a.id, atomic_load(&p.start_self));
        assert_true(atomic_load(&p.start_on_runtime));
        assert_false(atomic_load(&p.start_on_main));
        assert_false(atomic_load(&p.self_param_mismatch));
        stop_and_wait(sys, a);
        fl_test_latch_free(p.got);
    }
    end_system(sys);
}

static void
test_stop_hook_runs_once_on_the_actors_thread_after_the_last_message(
    void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    fl_actor_ref_t a = spawn_probe_told(sys, &p, 3);
    assert_int_equal(0, atomic_load(&p.stopped));
    stop_and_wait(sys, a);
    assert_int_equal(1, atomic_load(&p.stopped));
    assert_int_equal(a.id, atomic_load(&p.stop_self));
    assert_true(atomic_load(&p.stop_on_runtime));
    assert_false(atomic_load(&p.stop_on_main));
    assert_false(atomic_load(&p.msg_after_stop));
    assert_false(fl_actor_alive(sys, a));
    end_system(sys);
    /* Shutdown does not run it again. */
    assert_int_equal(1, atomic_load(&p.stopped));
    fl_test_latch_free(p.got);
}

static void test_alive_is_true_until_the_actor_has_stopped(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    probe_init(&p, sys);
    fl_actor_ref_t a = spawn_probe(sys, &p, NULL);
    assert_true(fl_actor_alive(sys, a));
    stop_and_wait(sys, a);
    assert_false(fl_actor_alive(sys, a));
    fl_actor_ref_t never = {0};
    assert_false(fl_actor_alive(sys, never));
    end_system(sys);
}

static void test_spawn_beyond_max_actors_returns_elimit(void **state)
{
    (void)state;
    fl_system_opts_t o = {0};
    o.workers = 1;
    o.max_actors = 2;
    fl_system_t *sys = NULL;
    assert_fl_ok(fl_system_alloc(&o, &sys));
    fl_actor_ref_t a, b, c;
    assert_fl_ok(fl_actor_spawn(sys, noop_receive, NULL, NULL, &a));
    assert_fl_ok(fl_actor_spawn(sys, noop_receive, NULL, NULL, &b));
    assert_fl(FL_ELIMIT, fl_actor_spawn(sys, noop_receive, NULL, NULL, &c));
    /* The limit counts live actors: a slot frees up once one stops. */
    stop_and_wait(sys, a);
    assert_fl_ok(fl_actor_spawn(sys, noop_receive, NULL, NULL, &c));
    assert_true(c.id != a.id);
    end_system(sys);
}

/* ---- names ------------------------------------------------------------- */

static void test_lookup_finds_a_live_named_actor(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    probe_init(&p, sys);
    char name[32];
    snprintf(name, sizeof name, "svc-%d", 1);
    fl_actor_ref_t a = spawn_probe(sys, &p, name);
    name[0] = 'X'; /* the name was copied */
    fl_actor_ref_t found = {0};
    assert_fl_ok(fl_actor_lookup(sys, "svc-1", &found));
    assert_int_equal(a.id, found.id);
    end_system(sys);
}

static void test_lookup_of_an_unknown_name_returns_enoent(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    fl_actor_ref_t found;
    assert_fl(FL_ENOENT, fl_actor_lookup(sys, "nobody", &found));
    end_system(sys);
}

static void test_spawning_a_duplicate_live_name_returns_eexist(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    probe_init(&p, sys);
    fl_actor_ref_t a = spawn_probe(sys, &p, "dup");
    fl_actor_opts_t o = {0};
    o.name = "dup";
    fl_actor_ref_t b;
    assert_fl(FL_EEXIST, fl_actor_spawn(sys, noop_receive, NULL, &o, &b));
    fl_actor_ref_t found;
    assert_fl_ok(fl_actor_lookup(sys, "dup", &found));
    assert_int_equal(a.id, found.id);
    end_system(sys);
}

static void test_name_is_reusable_after_the_actor_terminated(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    probe_init(&p, sys);
    fl_actor_ref_t a = spawn_probe(sys, &p, "reuse");
    stop_and_wait(sys, a);
    fl_actor_ref_t found;
    assert_fl(FL_ENOENT, fl_actor_lookup(sys, "reuse", &found));

    fl_actor_opts_t o = {0};
    o.name = "reuse";
    fl_actor_ref_t b;
    assert_fl_ok(fl_actor_spawn(sys, noop_receive, NULL, &o, &b));
    assert_true(b.id != a.id);
    assert_fl_ok(fl_actor_lookup(sys, "reuse", &found));
    assert_int_equal(b.id, found.id);
    end_system(sys);
}

static void
test_name_of_255_bytes_is_accepted_and_256_bytes_rejected(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    char name[300];
    memset(name, 'n', 256);
    name[256] = '\0';
    fl_actor_opts_t o = {0};
    o.name = name;
    fl_actor_ref_t a;
    assert_fl(FL_EINVAL, fl_actor_spawn(sys, noop_receive, NULL, &o, &a));
    name[255] = '\0';
    assert_fl_ok(fl_actor_spawn(sys, noop_receive, NULL, &o, &a));
    fl_actor_ref_t found;
    assert_fl_ok(fl_actor_lookup(sys, name, &found));
    assert_int_equal(a.id, found.id);
    end_system(sys);
}

/* ---- stale references, stop ------------------------------------------------
 */

static void test_tell_to_a_stopped_actor_returns_eunreachable(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    fl_actor_ref_t a = spawn_stopped_probe(sys, &p);
    assert_fl(FL_EUNREACHABLE, fl_tell(sys, a, fl_test_msg_int(1, 1)));
    /* A new actor possibly reusing the slot is not reached by the old ref. */
    probe_t q;
    probe_init(&q, sys);
    fl_actor_ref_t b = spawn_probe(sys, &q, NULL);
    assert_true(a.id != b.id);
    assert_fl(FL_EUNREACHABLE, fl_tell(sys, a, fl_test_msg_int(1, 2)));
    end_system(sys);
    assert_int_equal(0, atomic_load(&p.received));
    assert_int_equal(0, atomic_load(&q.received));
}

static void
test_ask_to_a_stopped_actor_fails_at_once_with_eunreachable(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    fl_actor_ref_t a = spawn_stopped_probe(sys, &p);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_ask(sys, a, fl_test_msg_int(1, 1), FL_INFINITE, &f));
    assert_non_null(f);
    assert_true(fl_future_done(f));
    assert_fl(FL_EUNREACHABLE, fl_future_error(f));
    fl_future_release(f);

    assert_ask_unreachable(sys, a, 1000);
    end_system(sys);
}

static void test_reference_that_never_existed_is_unreachable(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    fl_actor_ref_t refs[] = {{0}, {0x7fffffffffffull}, {UINT64_MAX}};
    for (size_t i = 0; i < 3; i++) {
        assert_fl(FL_EUNREACHABLE,
                  fl_tell(sys, refs[i], fl_test_msg_int(1, 1)));
        assert_fl(FL_EUNREACHABLE, fl_actor_stop(sys, refs[i]));
        assert_false(fl_actor_alive(sys, refs[i]));
        assert_ask_unreachable(sys, refs[i], 1000);
        assert_termination_unreachable(sys, refs[i]);
    }
    end_system(sys);
}

static void test_termination_of_a_stopped_actor_fails_at_once_with_eunreachable(
    void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    fl_actor_ref_t a = spawn_stopped_noop(sys);
    assert_termination_unreachable(sys, a);
    end_system(sys);
}

static void
test_stop_twice_returns_ok_then_eunreachable_after_termination(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    fl_actor_ref_t a = spawn_blocked_probe(sys, &p, 1);
    /* The actor is busy: both requests find it live. */
    fl_future_t *term = termination_of(sys, a);
    assert_fl_ok(fl_actor_stop(sys, a));
    assert_fl_ok(fl_actor_stop(sys, a));
    fl_test_latch_count_down(p.block);
    wait_terminated(term);
    assert_fl(FL_EUNREACHABLE, fl_actor_stop(sys, a));
    assert_int_equal(1, atomic_load(&p.stopped));
    end_system(sys);
    assert_int_equal(1, atomic_load(&p.stopped));
    probe_free_latches(&p);
}

/* ---- serial execution and ordering ------------------------------------- */

#define CONC_THREADS 4
#define CONC_PER_THREAD (20000 / SCALE)

typedef struct conc {
    atomic_bool in_actor;
    atomic_int overlaps;
    atomic_int handled;
    atomic_int order_errors;
    int next[CONC_THREADS]; /* actor-only: next expected sequence */
    int total;
    fl_test_latch_t *done;
    fl_system_t *sys;
    fl_actor_ref_t ref;
    pthread_barrier_t start;
    atomic_int send_errors;
} conc_t;

static void conc_enter(conc_t *c)
{
    if (atomic_exchange(&c->in_actor, true))
        atomic_fetch_add(&c->overlaps, 1);
    /* Widen the window a little. */
    for (volatile int i = 0; i < 50; i++) {
    }
}

static void conc_leave(conc_t *c)
{
    atomic_store(&c->in_actor, false);
    if (atomic_fetch_add(&c->handled, 1) + 1 == c->total)
        fl_test_latch_count_down(c->done);
}

static void conc_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                         fl_msg_t *msg)
{
    (void)sys;
    (void)self;
    conc_t *c = st;
    conc_enter(c);
    int *d = fl_msg_data(msg);
    if (d[1] != c->next[d[0]])
        atomic_fetch_add(&c->order_errors, 1);
    c->next[d[0]] = d[1] + 1;
    conc_leave(c);
}

static void conc_exec(fl_system_t *sys, fl_actor_ref_t self, void *st,
                      void *arg)
{
    (void)sys;
    (void)self;
    (void)arg;
    conc_t *c = st;
    conc_enter(c);
    conc_leave(c);
}

typedef struct conc_thread {
    conc_t *c;
    int id;
    pthread_t tid;
} conc_thread_t;

static void *conc_sender(void *arg)
{
    conc_thread_t *t = arg;
    conc_t *c = t->c;
    pthread_barrier_wait(&c->start);
    for (int i = 0; i < CONC_PER_THREAD; i++) {
        fl_msg_t *m = fl_msg_alloc(1, 2 * sizeof(int));
        int *d = fl_msg_data(m);
        d[0] = t->id;
        d[1] = i;
        if (fl_tell(c->sys, c->ref, m) != FL_OK)
            atomic_fetch_add(&c->send_errors, 1);
        if (i % 10 == 0 &&
            fl_actor_exec(c->sys, c->ref, conc_exec, NULL, NULL) != FL_OK)
            atomic_fetch_add(&c->send_errors, 1);
    }
    return NULL;
}

static void test_actor_never_runs_concurrently_with_itself(void **state)
{
    (void)state;
    conc_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->sys = fl_test_system(2);
    c->total = CONC_THREADS * (CONC_PER_THREAD + (CONC_PER_THREAD + 9) / 10);
    c->done = fl_test_latch_alloc(1);
    pthread_barrier_init(&c->start, NULL, CONC_THREADS);
    assert_fl_ok(fl_actor_spawn(c->sys, conc_receive, c, NULL, &c->ref));
    conc_thread_t th[CONC_THREADS];
    for (int i = 0; i < CONC_THREADS; i++) {
        th[i].c = c;
        th[i].id = i;
        assert_int_equal(0,
                         pthread_create(&th[i].tid, NULL, conc_sender, &th[i]));
    }
    for (int i = 0; i < CONC_THREADS; i++)
        assert_int_equal(0, pthread_join(th[i].tid, NULL));
    assert_int_equal(0, atomic_load(&c->send_errors));
    fl_test_latch_await(c->done);
    assert_int_equal(0, atomic_load(&c->overlaps));
    assert_int_equal(0, atomic_load(&c->order_errors));
    assert_int_equal(c->total, atomic_load(&c->handled));
    for (int i = 0; i < CONC_THREADS; i++)
        assert_int_equal(CONC_PER_THREAD, c->next[i]);
    end_system(c->sys);
    pthread_barrier_destroy(&c->start);
    fl_test_latch_free(c->done);
    free(c);
}

static void test_messages_from_one_sender_arrive_in_the_order_sent(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t *p = calloc(1, sizeof *p);
    spawn_probe_told(sys, p, LOG_MAX);
    for (int i = 0; i < LOG_MAX; i++)
        if (p->log[i] != i)
            fail_msg("message %d arrived at position %d", p->log[i], i);
    end_system(sys);
    fl_test_latch_free(p->got);
    free(p);
}

/* ---- ask and reply ------------------------------------------------------- */

enum {
    T_REPLY = 10,      /* reply with payload + 1 */
    T_REPLY_ERROR,     /* fl_reply_error(EUSER + 7, "nope %d", payload) */
    T_REPLY_TWICE,     /* reply, then reply again */
    T_DROP,            /* return without answering */
    T_TAKE,            /* take the reply future for later */
    T_PLAIN,           /* a tell: try to reply to it */
    T_WAIT_THEN_REPLY, /* wait for the go latch, then reply */
    T_SENDER,          /* record fl_msg_sender */
};

typedef struct responder {
    atomic_int rc1;
    atomic_int rc2;
    atomic_bool is_ask_before;
    atomic_bool is_ask_after;
    atomic_bool take_null;
    _Atomic(fl_future_t *) taken;
    atomic_uint_least64_t sender;
    fl_test_latch_t *handled; /* counted down after each message */
    fl_test_latch_t *go;      /* T_WAIT_THEN_REPLY waits for it */
} responder_t;

static void responder_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                              fl_msg_t *msg)
{
    (void)sys;
    (void)self;
    responder_t *r = st;
    int x = msg_get_int(msg);
    atomic_store(&r->is_ask_before, fl_msg_is_ask(msg));
    atomic_store(&r->sender, fl_msg_sender(msg).id);
    switch (fl_msg_type(msg)) {
    case T_REPLY:
        atomic_store(&r->rc1, fl_reply(msg, fl_test_msg_int(2, x + 1)));
        break;
    case T_REPLY_ERROR:
        atomic_store(&r->rc1, fl_reply_error(msg, FL_EUSER + 7, "nope %d", x));
        break;
    case T_REPLY_TWICE:
        atomic_store(&r->rc1, fl_reply(msg, fl_test_msg_int(2, 1)));
        atomic_store(&r->rc2, fl_reply(msg, fl_test_msg_int(2, 2)));
        break;
    case T_TAKE: {
        fl_future_t *f = fl_msg_take_reply(msg);
        atomic_store(&r->taken, f);
        break;
    }
    case T_PLAIN:
        atomic_store(&r->take_null, fl_msg_take_reply(msg) == NULL);
        atomic_store(&r->rc1, fl_reply(msg, fl_test_msg_int(2, 0)));
        atomic_store(&r->rc2, fl_reply_error(msg, FL_EUSER, NULL));
        break;
    case T_WAIT_THEN_REPLY:
        fl_test_latch_wait(r->go, WAIT_MS);
        atomic_store(&r->rc1, fl_reply(msg, fl_test_msg_int(2, x)));
        break;
    default:
        break;
    }
    atomic_store(&r->is_ask_after, fl_msg_is_ask(msg));
    if (r->handled)
        fl_test_latch_count_down(r->handled);
}

/* Spawns an actor running responder_receive on r; handled > 0 gives r a
 * `handled` latch of that count. */
static fl_actor_ref_t spawn_responder(fl_system_t *sys, responder_t *r,
                                      uint64_t handled)
{
    if (handled > 0)
        r->handled = fl_test_latch_alloc(handled);
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, responder_receive, r, NULL, &a));
    return a;
}

/* Ends the system, then frees r's latches. */
static void end_responder_system(fl_system_t *sys, responder_t *r)
{
    end_system(sys);
    fl_test_latch_free(r->handled);
    fl_test_latch_free(r->go);
}

/* Waits until r has handled its T_TAKE request; returns the reply future
 * it took. */
static fl_future_t *wait_taken(responder_t *r)
{
    fl_test_latch_await(r->handled);
    fl_future_t *taken = atomic_load(&r->taken);
    assert_non_null(taken);
    return taken;
}

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

/* ---- exec and on_complete_in --------------------------------------------- */

typedef struct exec_log {
    probe_t *p; /* shares the probe's log */
    fl_actor_ref_t ref;
    int value;
    atomic_int *ran;
    atomic_int *freed;
    atomic_bool *wrong_thread;
} exec_log_t;

static void exec_log_free(void *arg)
{
    atomic_fetch_add(((exec_log_t *)arg)->freed, 1);
}

static void exec_append(fl_system_t *sys, fl_actor_ref_t self, void *st,
                        void *arg)
{
    exec_log_t *e = arg;
    probe_t *p = st;
    if (fl_self().id != e->ref.id || self.id != e->ref.id || p != e->p ||
        fl_system_current() != sys)
        atomic_store(e->wrong_thread, true);
    int n = atomic_fetch_add(&p->received, 1);
    if (n < LOG_MAX)
        p->log[n] = e->value;
    atomic_fetch_add(e->ran, 1);
    if (p->got)
        fl_test_latch_count_down(p->got);
}

static void test_exec_runs_on_the_actors_thread_in_mailbox_order(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    probe_init(&p, sys);
    enum { N = 200 };
    p.got = fl_test_latch_alloc(N);
    atomic_int ran = 0, freed = 0;
    atomic_bool wrong = false;
    exec_log_t args[N];
    fl_actor_ref_t a = spawn_probe(sys, &p, NULL);
    for (int i = 0; i < N; i++) {
        if (i % 2 == 0) {
            assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(1, i)));
        } else {
            args[i] = (exec_log_t){.p = &p,
                                   .ref = a,
                                   .value = i,
                                   .ran = &ran,
                                   .freed = &freed,
                                   .wrong_thread = &wrong};
            assert_fl_ok(
                fl_actor_exec(sys, a, exec_append, &args[i], exec_log_free));
        }
    }
    fl_test_latch_await(p.got);
    for (int i = 0; i < N; i++)
        if (p.log[i] != i)
            fail_msg("position %d holds %d: exec out of mailbox order", i,
                     p.log[i]);
    assert_int_equal(N / 2, atomic_load(&ran));
    assert_false(atomic_load(&wrong));
    end_system(sys);
    /* fn ran, so arg_free was never needed. */
    assert_int_equal(0, atomic_load(&freed));
    fl_test_latch_free(p.got);
}

static void
test_exec_on_a_stopped_actor_returns_eunreachable_and_frees_arg(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    atomic_int freed = 0;
    fl_actor_ref_t a = spawn_stopped_noop(sys);
    assert_fl(FL_EUNREACHABLE,
              fl_actor_exec(sys, a, noop_exec, &freed, count_free));
    assert_int_equal(1, atomic_load(&freed));
    /* A NULL arg_free is fine. */
    assert_fl(FL_EUNREACHABLE, fl_actor_exec(sys, a, noop_exec, &freed, NULL));
    end_system(sys);
}

static void
test_exec_queued_behind_a_stop_frees_arg_instead_of_running(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    tracked_t t = {.freed_latch = fl_test_latch_alloc(1)};
    fl_actor_ref_t a = spawn_blocked_probe(sys, &p, 0);
    assert_fl_ok(fl_actor_exec(sys, a, tracked_exec, &t, tracked_free));
    fl_future_t *term = termination_of(sys, a);
    assert_fl_ok(fl_actor_stop(sys, a));
    fl_test_latch_count_down(p.block);
    fl_test_latch_await(t.freed_latch);
    wait_terminated(term);
    end_system(sys);
    assert_int_equal(0, atomic_load(&t.ran));
    assert_int_equal(1, atomic_load(&t.freed));
    assert_int_equal(1, atomic_load(&p.stopped));
    probe_free_latches(&p);
    fl_test_latch_free(t.freed_latch);
}

typedef struct in_actor {
    fl_system_t *sys;
    fl_actor_ref_t ref;
    atomic_int ran;
    atomic_bool on_actor; /* fl_self() == ref and current == sys */
    atomic_bool saw_done;
    atomic_int err_seen;
    atomic_int freed;
    fl_test_latch_t *latch;
} in_actor_t;

static void in_actor_free(void *arg)
{
    atomic_fetch_add(&((in_actor_t *)arg)->freed, 1);
}

static void in_actor_cb(fl_future_t *f, void *arg)
{
    in_actor_t *x = arg;
    atomic_store(&x->on_actor,
                 fl_self().id == x->ref.id && fl_system_current() == x->sys);
    atomic_store(&x->saw_done, fl_future_done(f));
    atomic_store(&x->err_seen, fl_future_error(f));
    atomic_fetch_add(&x->ran, 1);
    fl_test_latch_count_down(x->latch);
}

static void
test_on_complete_in_runs_the_callback_on_the_actors_thread(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    in_actor_t x = {.sys = sys, .latch = fl_test_latch_alloc(1)};
    x.ref = spawn_noop(sys);
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_on_complete_in(f, sys, x.ref, in_actor_cb, &x,
                                          in_actor_free));
    assert_int_equal(0, atomic_load(&x.ran));
    assert_fl_ok(fl_future_fail(f, FL_EUSER + 1, NULL));
    fl_test_latch_await(x.latch);
    assert_int_equal(1, atomic_load(&x.ran));
    assert_true(atomic_load(&x.on_actor));
    assert_true(atomic_load(&x.saw_done));
    assert_fl(FL_EUSER + 1, atomic_load(&x.err_seen));
    end_system(sys);
    assert_int_equal(1, atomic_load(&x.ran));
    /* cb ran, so arg_free was not called instead. */
    assert_int_equal(0, atomic_load(&x.freed));
    fl_future_release(f);
    fl_test_latch_free(x.latch);
}

static void
test_on_complete_in_of_a_complete_future_runs_on_the_actors_thread(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    in_actor_t x = {.sys = sys, .latch = fl_test_latch_alloc(1)};
    x.ref = spawn_noop(sys);
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    assert_fl_ok(
        fl_future_on_complete_in(f, sys, x.ref, in_actor_cb, &x, NULL));
    fl_test_latch_await(x.latch);
    assert_true(atomic_load(&x.on_actor));
    assert_fl_ok(atomic_load(&x.err_seen));
    end_system(sys);
    assert_int_equal(1, atomic_load(&x.ran));
    fl_future_release(f);
    fl_test_latch_free(x.latch);
}

/* Waits until t's arg has been freed, ends the system and checks that t was
 * freed once and never ran; then releases f and frees t's latch. */
static void end_freed_not_run(fl_system_t *sys, tracked_t *t, fl_future_t *f)
{
    fl_test_latch_await(t->freed_latch);
    end_system(sys);
    assert_int_equal(1, atomic_load(&t->freed));
    assert_int_equal(0, atomic_load(&t->ran));
    fl_future_release(f);
    fl_test_latch_free(t->freed_latch);
}

static void
test_on_complete_in_frees_arg_when_the_actor_stopped_first(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    tracked_t t = {.freed_latch = fl_test_latch_alloc(1)};
    fl_actor_ref_t a = spawn_noop(sys);
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_on_complete_in(f, sys, a, tracked_future_cb, &t,
                                          tracked_free));
    stop_and_wait(sys, a);
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    end_freed_not_run(sys, &t, f);
}

static void
test_on_complete_in_for_a_stopped_actor_frees_arg_and_never_runs(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    tracked_t t = {.freed_latch = fl_test_latch_alloc(1)};
    fl_actor_ref_t a = spawn_stopped_noop(sys);
    fl_future_t *f = fl_future_alloc();
    int rc = fl_future_on_complete_in(f, sys, a, tracked_future_cb, &t,
                                      tracked_free);
    /* Either refused at once (arg freed at once) or accepted and freed when
     * f completes: never run. */
    if (rc == FL_OK) {
        assert_fl_ok(fl_future_complete(f, NULL, NULL));
    } else {
        assert_fl(FL_EUNREACHABLE, rc);
        assert_int_equal(1, atomic_load(&t.freed));
    }
    end_freed_not_run(sys, &t, f);
}

/* An actor asks another from its receive callback and continues on its own
 * thread when the reply comes: the pattern on_complete_in exists for. */
typedef struct asker {
    fl_system_t *sys;
    fl_actor_ref_t self;
    fl_actor_ref_t responder;
    atomic_int ask_rc;
    atomic_int reply_value;
    atomic_int reply_err;
    atomic_bool continued_on_self;
    atomic_bool overlapped; /* continuation ran during a receive */
    atomic_bool in_receive;
    fl_test_latch_t *done;
} asker_t;

static void asker_continue(fl_future_t *f, void *arg)
{
    asker_t *a = arg;
    if (atomic_load(&a->in_receive))
        atomic_store(&a->overlapped, true);
    atomic_store(&a->continued_on_self,
                 fl_self().id == a->self.id && fl_system_current() == a->sys);
    atomic_store(&a->reply_err, fl_future_error(f));
    fl_msg_t *reply = fl_future_value(f);
    atomic_store(&a->reply_value, reply ? msg_get_int(reply) : -1);
    fl_future_release(f); /* the reference fl_ask gave the receive callback */
    fl_test_latch_count_down(a->done);
}

static void asker_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                          fl_msg_t *msg)
{
    (void)msg;
    asker_t *a = st;
    atomic_store(&a->in_receive, true);
    fl_future_t *f = NULL;
    fl_msg_t *req = fl_msg_alloc(T_REPLY, sizeof(int));
    *(int *)fl_msg_data(req) = 99;
    int rc = fl_ask(sys, a->responder, req, 5000, &f);
    atomic_store(&a->ask_rc, rc);
    if (rc == FL_OK && fl_future_on_complete_in(f, sys, self, asker_continue, a,
                                                NULL) != FL_OK)
        atomic_store(&a->ask_rc, FL_EINTERNAL);
    atomic_store(&a->in_receive, false);
}

static void
test_ask_from_an_actor_continues_on_its_own_thread_with_on_complete_in(
    void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    responder_t r = {.rc1 = -1};
    asker_t a = {.sys = sys, .ask_rc = -1, .done = fl_test_latch_alloc(1)};
    a.responder = spawn_responder(sys, &r, 0);
    assert_fl_ok(fl_actor_spawn(sys, asker_receive, &a, NULL, &a.self));
    assert_fl_ok(fl_tell(sys, a.self, fl_test_msg_int(1, 0)));
    fl_test_latch_await(a.done);
    assert_fl_ok(atomic_load(&a.ask_rc));
    assert_fl_ok(atomic_load(&a.reply_err));
    assert_int_equal(100, atomic_load(&a.reply_value));
    assert_true(atomic_load(&a.continued_on_self));
    assert_false(atomic_load(&a.overlapped));
    /* The request carried the asking actor as its sender. */
    assert_int_equal(a.self.id, atomic_load(&r.sender));
    end_system(sys);
    fl_test_latch_free(a.done);
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

/* ---- messages ------------------------------------------------------------ */

static void
test_msg_alloc_gives_a_zeroed_aligned_payload_of_the_given_type(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, 7, 16, 100, 4096, 65537};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        fl_msg_t *m = fl_msg_alloc((uint32_t)(1000 + i), sizes[i]);
        assert_non_null(m);
        assert_int_equal(1000 + i, fl_msg_type(m));
        assert_int_equal(sizes[i], fl_msg_size(m));
        assert_int_equal(0, fl_msg_sender(m).id);
        assert_false(fl_msg_is_ask(m));
        unsigned char *d = fl_msg_data(m);
        if (sizes[i] > 0) {
            assert_non_null(d);
            assert_int_equal(0, (uintptr_t)d % 16);
            for (size_t j = 0; j < sizes[i]; j++)
                if (d[j] != 0)
                    fail_msg("byte %zu of a %zu-byte payload is %u", j,
                             sizes[i], d[j]);
            memset(d, 0xab, sizes[i]);
        }
        fl_msg_free(m);
    }
}

static void test_msg_alloc_larger_than_1_gib_returns_null(void **state)
{
    (void)state;
    assert_null(fl_msg_alloc(1, ((size_t)1 << 30) + 1));
    assert_null(fl_msg_alloc(1, SIZE_MAX));
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
        FL_TEST(test_self_and_current_system_are_empty_outside_the_runtime),
        FL_TEST(test_spawn_passes_the_state_to_receive),
        FL_TEST(
            test_start_hook_runs_first_on_the_actors_thread_with_self_equal_to_ref),
        FL_TEST(
            test_stop_hook_runs_once_on_the_actors_thread_after_the_last_message),
        FL_TEST(test_alive_is_true_until_the_actor_has_stopped),
        FL_TEST(test_spawn_beyond_max_actors_returns_elimit),
        FL_TEST(test_lookup_finds_a_live_named_actor),
        FL_TEST(test_lookup_of_an_unknown_name_returns_enoent),
        FL_TEST(test_spawning_a_duplicate_live_name_returns_eexist),
        FL_TEST(test_name_is_reusable_after_the_actor_terminated),
        FL_TEST(test_name_of_255_bytes_is_accepted_and_256_bytes_rejected),
        FL_TEST(test_tell_to_a_stopped_actor_returns_eunreachable),
        FL_TEST(test_ask_to_a_stopped_actor_fails_at_once_with_eunreachable),
        FL_TEST(test_reference_that_never_existed_is_unreachable),
        FL_TEST(
            test_termination_of_a_stopped_actor_fails_at_once_with_eunreachable),
        FL_TEST(test_stop_twice_returns_ok_then_eunreachable_after_termination),
        FL_TEST(test_actor_never_runs_concurrently_with_itself),
        FL_TEST(test_messages_from_one_sender_arrive_in_the_order_sent),
        FL_TEST(test_ask_completes_with_the_reply_message),
        FL_TEST(test_reply_error_fails_the_ask_with_its_code_and_message),
        FL_TEST(test_second_reply_to_the_same_request_returns_einval),
        FL_TEST(test_reply_to_a_tell_returns_einval),
        FL_TEST(test_taken_reply_can_be_answered_later_from_another_thread),
        FL_TEST(test_taken_reply_can_be_failed_later),
        FL_TEST(test_ask_dropped_without_a_reply_fails_with_enoreply),
        FL_TEST(test_ask_times_out_with_etimedout_when_nobody_answers),
        FL_TEST(test_reply_after_the_ask_timed_out_returns_ealready),
        FL_TEST(
            test_ask_fails_with_eunreachable_when_the_actor_stops_before_answering),
        FL_TEST(test_exec_runs_on_the_actors_thread_in_mailbox_order),
        FL_TEST(
            test_exec_on_a_stopped_actor_returns_eunreachable_and_frees_arg),
        FL_TEST(test_exec_queued_behind_a_stop_frees_arg_instead_of_running),
        FL_TEST(test_on_complete_in_runs_the_callback_on_the_actors_thread),
        FL_TEST(
            test_on_complete_in_of_a_complete_future_runs_on_the_actors_thread),
        FL_TEST(test_on_complete_in_frees_arg_when_the_actor_stopped_first),
        FL_TEST(
            test_on_complete_in_for_a_stopped_actor_frees_arg_and_never_runs),
        FL_TEST(
            test_ask_from_an_actor_continues_on_its_own_thread_with_on_complete_in),
        FL_TEST(test_msg_sender_is_the_sending_actor_or_zero_from_outside),
        FL_TEST(test_stats_count_live_and_spawned_actors),
        FL_TEST(test_stats_count_dead_letters),
        FL_TEST(
            test_shutdown_with_100000_queued_messages_stops_and_frees_everything),
        FL_TEST(
            test_close_turns_queued_messages_into_dead_letters_and_fails_queued_asks),
        FL_TEST(
            test_actor_stopping_itself_from_receive_handles_no_further_message),
        FL_TEST(test_shutdown_from_an_actor_returns_edeadlk),
        FL_TEST(test_close_from_an_actor_returns_ok_and_stops_the_actors),
        FL_TEST(
            test_msg_alloc_gives_a_zeroed_aligned_payload_of_the_given_type),
        FL_TEST(test_msg_alloc_larger_than_1_gib_returns_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
