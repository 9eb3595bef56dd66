/*
 * spawn_stress_test.c - actor churn: 100,000 actors spawned, each sent a
 * message and stopped; everything terminates, the live count returns to 0,
 * nothing leaks.
 */
#include "fl_test.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef FL_SANITIZE
#define SCALE 10
#else
#define SCALE 1
#endif

#define N_ACTORS (100000 / SCALE)
#define N_NAMED (10000 / SCALE)
#define WAIT_MS 300000

/* Shared by every actor of a case. */
typedef struct churn {
    atomic_uint_least64_t started;
    atomic_uint_least64_t received;
    atomic_uint_least64_t stopped;
    atomic_uint_least64_t stop_errors;
    atomic_uint_least64_t mismatches; /* message payload != own index */
    fl_test_latch_t *stops;           /* counted down per stop hook */
    bool stop_self;                   /* receive stops its own actor */
} churn_t;

typedef struct cell {
    churn_t *churn;
    uint64_t index;
} cell_t;

static void churn_start(fl_system_t *sys, fl_actor_ref_t self, void *st)
{
    (void)sys;
    (void)self;
    atomic_fetch_add(&((cell_t *)st)->churn->started, 1);
}

static void churn_stop(fl_system_t *sys, fl_actor_ref_t self, void *st)
{
    (void)sys;
    (void)self;
    churn_t *c = ((cell_t *)st)->churn;
    atomic_fetch_add(&c->stopped, 1);
    fl_test_latch_count_down(c->stops);
}

static void churn_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                          fl_msg_t *msg)
{
    cell_t *cell = st;
    churn_t *c = cell->churn;
    if (*(uint64_t *)fl_msg_data(msg) != cell->index)
        atomic_fetch_add(&c->mismatches, 1);
    atomic_fetch_add(&c->received, 1);
    if (c->stop_self && fl_actor_stop(sys, self) != FL_OK)
        atomic_fetch_add(&c->stop_errors, 1);
}

static fl_msg_t *index_msg(uint64_t i)
{
    fl_msg_t *m = fl_msg_alloc(1, sizeof(uint64_t));
    assert_non_null(m);
    *(uint64_t *)fl_msg_data(m) = i;
    return m;
}

static fl_system_stats_t stats(fl_system_t *sys)
{
    fl_system_stats_t st;
    assert_fl_ok(fl_system_stats(sys, &st));
    return st;
}

/* Waits for every termination future and releases them. */
static void wait_all_terminated(fl_future_t **terms, size_t n)
{
    fl_future_t *all = fl_future_all(terms, n);
    assert_non_null(all);
    int rc = fl_future_wait(all, WAIT_MS);
    if (rc != FL_OK)
        fail_msg("waiting for %zu terminations: %s (%s)", n, fl_err_name(rc),
                 fl_future_done(all) ? fl_future_message(all)
                                     : "still pending");
    fl_future_release(all);
    for (size_t i = 0; i < n; i++) {
        assert_true(fl_future_done(terms[i]));
        assert_fl_ok(fl_future_error(terms[i]));
        fl_future_release(terms[i]);
    }
}

static void
test_100000_actors_spawned_told_and_stopped_all_terminate(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(0);
    churn_t c = {0};
    c.stops = fl_test_latch_alloc(N_ACTORS);
    cell_t *cells = calloc(N_ACTORS, sizeof *cells);
    fl_future_t **terms = calloc(N_ACTORS, sizeof *terms);
    assert_non_null(cells);
    assert_non_null(terms);
    fl_actor_opts_t o = {0};
    o.on_start = churn_start;
    o.on_stop = churn_stop;
    uint64_t dead_before = stats(sys).dead_letters;

    uint64_t t0 = fl_clock_now_ns();
    for (size_t i = 0; i < N_ACTORS; i++) {
        cells[i] = (cell_t){.churn = &c, .index = i};
        fl_actor_ref_t a;
        assert_fl_ok(fl_actor_spawn(sys, churn_receive, &cells[i], &o, &a));
        assert_fl_ok(fl_actor_termination(sys, a, &terms[i]));
        assert_fl_ok(fl_tell(sys, a, index_msg(i)));
        assert_fl_ok(fl_actor_stop(sys, a));
    }
    if (fl_test_latch_wait(c.stops, WAIT_MS) != 0)
        fail_msg("%llu of %d stop hooks ran",
                 (unsigned long long)atomic_load(&c.stopped), N_ACTORS);
    wait_all_terminated(terms, N_ACTORS);
    double secs = (double)(fl_clock_now_ns() - t0) / 1e9;
    print_message("%d actors spawned, told, stopped in %.2f s\n", N_ACTORS,
                  secs);

    fl_system_stats_t st = stats(sys);
    assert_int_equal(0, st.actors_live);
    assert_int_equal(N_ACTORS, st.actors_spawned);
    assert_int_equal(N_ACTORS, atomic_load(&c.started));
    assert_int_equal(N_ACTORS, atomic_load(&c.stopped));
    assert_int_equal(0, atomic_load(&c.mismatches));

    /* Each message was either handled before the stop or became a dead
     * letter. Counted once the workers are joined: a message found behind
     * the stop is dead-lettered after the termination completes. */
    assert_fl_ok(fl_system_shutdown(sys));
    assert_int_equal(N_ACTORS, atomic_load(&c.stopped));
    uint64_t received = atomic_load(&c.received);
    uint64_t dead = stats(sys).dead_letters - dead_before;
    print_message("%llu handled, %llu dead letters\n",
                  (unsigned long long)received, (unsigned long long)dead);
    assert_int_equal(N_ACTORS, received + dead);
    fl_system_free(sys);
    fl_test_latch_free(c.stops);
    free(terms);
    free(cells);
}

static void test_100000_actors_stopping_themselves_all_terminate(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(0);
    churn_t c = {.stop_self = true};
    c.stops = fl_test_latch_alloc(N_ACTORS);
    cell_t *cells = calloc(N_ACTORS, sizeof *cells);
    fl_future_t **terms = calloc(N_ACTORS, sizeof *terms);
    assert_non_null(cells);
    assert_non_null(terms);
    fl_actor_opts_t o = {0};
    o.on_stop = churn_stop;

    for (size_t i = 0; i < N_ACTORS; i++) {
        cells[i] = (cell_t){.churn = &c, .index = i};
        fl_actor_ref_t a;
        assert_fl_ok(fl_actor_spawn(sys, churn_receive, &cells[i], &o, &a));
        assert_fl_ok(fl_actor_termination(sys, a, &terms[i]));
        assert_fl_ok(fl_tell(sys, a, index_msg(i)));
    }
    if (fl_test_latch_wait(c.stops, WAIT_MS) != 0)
        fail_msg("%llu of %d stop hooks ran",
                 (unsigned long long)atomic_load(&c.stopped), N_ACTORS);
    wait_all_terminated(terms, N_ACTORS);

    fl_system_stats_t st = stats(sys);
    assert_int_equal(0, st.actors_live);
    assert_int_equal(N_ACTORS, st.actors_spawned);
    assert_int_equal(N_ACTORS, atomic_load(&c.received));
    assert_int_equal(N_ACTORS, atomic_load(&c.stopped));
    assert_int_equal(0, atomic_load(&c.stop_errors));
    assert_int_equal(0, atomic_load(&c.mismatches));
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_test_latch_free(c.stops);
    free(terms);
    free(cells);
}

static void test_named_actors_churn_and_their_names_are_reused(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(0);
    churn_t c = {0};
    c.stops = fl_test_latch_alloc(2 * N_NAMED);
    cell_t *cells = calloc(N_NAMED, sizeof *cells);
    fl_actor_ref_t *refs = calloc(N_NAMED, sizeof *refs);
    fl_future_t **terms = calloc(N_NAMED, sizeof *terms);
    assert_non_null(cells);
    assert_non_null(refs);
    assert_non_null(terms);
    fl_actor_opts_t o = {0};
    o.on_stop = churn_stop;
    char name[32];

    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < N_NAMED; i++) {
            cells[i] = (cell_t){.churn = &c, .index = i};
            snprintf(name, sizeof name, "churn-%zu", i);
            o.name = name;
            assert_fl_ok(
                fl_actor_spawn(sys, churn_receive, &cells[i], &o, &refs[i]));
        }
        for (size_t i = 0; i < N_NAMED; i++) {
            fl_actor_ref_t found;
            snprintf(name, sizeof name, "churn-%zu", i);
            assert_fl_ok(fl_actor_lookup(sys, name, &found));
            assert_int_equal(refs[i].id, found.id);
            assert_fl_ok(fl_actor_termination(sys, refs[i], &terms[i]));
            assert_fl_ok(fl_tell(sys, found, index_msg(i)));
            assert_fl_ok(fl_actor_stop(sys, found));
        }
        wait_all_terminated(terms, N_NAMED);
        assert_int_equal(0, stats(sys).actors_live);
    }
    assert_int_equal(0, fl_test_latch_wait(c.stops, WAIT_MS));
    assert_int_equal(2 * N_NAMED, atomic_load(&c.stopped));
    assert_int_equal(2 * N_NAMED, stats(sys).actors_spawned);
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_test_latch_free(c.stops);
    free(terms);
    free(refs);
    free(cells);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_100000_actors_spawned_told_and_stopped_all_terminate),
        FL_TEST(test_100000_actors_stopping_themselves_all_terminate),
        FL_TEST(test_named_actors_churn_and_their_names_are_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
