/*
 * sched_test.c - the scheduler's policies (src/sched/sched.h): a chain
 * running through a worker's next slot lets outside work in, and when an
 * idle worker takes an actor queued on a busy one (fl__steal_due: the
 * rule by a clock the test moves, then in real threads).
 *
 * Stealing: a long turn spawns
 * actors: each new actor's start is queued on the turn's worker, the last
 * one in its next slot (never taken by another worker), the others on its
 * run queue. The turn then waits until the queued ones have started. A
 * lone queued actor stays with its worker for FL__STEAL_BACKLOG_NS, then the
 * idle worker takes it; two queued are taken while the turn goes on. An
 * actor never taken fails the case at its time limit.
 *
 * Parking: an idle worker beside a busy one parks patiently (looks by
 * itself every FL__STEAL_LOOK_NS), and the busy worker's pushes wake no
 * one; measured by the process's CPU time while one actor runs. Its
 * looks keep time by the monotonic clock: the test moves the wall clock
 * (clock_gettime below) and a lone queued actor is still taken.
 */
#include "actor_fixture.h"

#include "sched/sched.h"

#include <dlfcn.h>
#include <time.h>

/* This program's clock_gettime, in front of the C library's (the runtime
 * is linked into it): CLOCK_REALTIME reads return wall_step_s seconds
 * more, as if the wall clock were stepped back after each read. */
static _Atomic int wall_step_s;

int clock_gettime(clockid_t id, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    if (real == NULL)
        real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT,
                                                            "clock_gettime");
    int rc = real(id, ts);
    if (rc == 0 && id == CLOCK_REALTIME)
        ts->tv_sec += atomic_load_explicit(&wall_step_s, memory_order_relaxed);
    return rc;
}

#define MAX_QUEUED 2

/* ---- fairness ------------------------------------------------------------ */

/* Two actors that answer each other forever: the chain runs through the
 * worker's next slot, and only the fairness look lets anything else in. */
typedef struct volley {
    fl_actor_ref_t other;
    _Atomic int *stop;
} volley_t;

static void volley_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                           fl_msg_t *msg)
{
    volley_t *v = state;
    if (atomic_load(v->stop))
        return;
    fl_msg_t *m = fl_msg_alloc(1, 0);
    if (m != NULL)
        (void)fl_tell(sys, v->other, m);
}

static void flag_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                         fl_msg_t *msg)
{
    atomic_store((_Atomic int *)state, 1);
}

static void test_an_endless_chain_lets_a_tell_from_outside_in(void **st)
{
    (void)st;
    fl_system_opts_t so = {0};
    so.workers = 1;
    fl_system_t *sys = NULL;
    assert_fl_ok(fl_system_alloc(&so, &sys));
    _Atomic int stop = 0, reached = 0;
    volley_t va = {.stop = &stop}, vb = {.stop = &stop};
    fl_actor_ref_t a, b, c;
    assert_fl_ok(fl_actor_spawn(sys, volley_receive, &va, NULL, &a));
    assert_fl_ok(fl_actor_spawn(sys, volley_receive, &vb, NULL, &b));
    va.other = b;
    vb.other = a;
    assert_fl_ok(fl_actor_spawn(sys, flag_receive, &reached, NULL, &c));
    fl_msg_t *serve = fl_msg_alloc(1, 0);
    assert_non_null(serve);
    assert_fl_ok(fl_tell(sys, a, serve));
    /* The volley runs on the only worker; the tell to c goes through the
     * inject queue, which the worker looks at every 61 turns. */
    fl_msg_t *m = fl_msg_alloc(1, 0);
    assert_non_null(m);
    assert_fl_ok(fl_tell(sys, c, m));
    uint64_t t0 = fl_clock_now_ns();
    while (!atomic_load(&reached)) {
        if (fl_clock_now_ns() - t0 > (uint64_t)WAIT_MS * 1000000u)
            fail_msg("a tell from outside never ran beside an endless chain");
        sched_yield();
    }
    atomic_store(&stop, 1);
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
}

/* ---- stealing ------------------------------------------------------------ */

typedef struct started {
    _Atomic uint64_t ns; /* when its start hook ran; 0: not yet */
    pthread_t thread;    /* where (written before ns) */
} started_t;

typedef struct blocker {
    unsigned nqueued;
    started_t q[MAX_QUEUED + 1]; /* the last: the next slot's */
    uint64_t spawned_ns;         /* taken before the first spawn: no queued
                                    actor was runnable (or watched) earlier */
    pthread_t thread;
    _Atomic unsigned *in_turn; /* blockers in their turns (a barrier) */
    unsigned nblockers;
    _Atomic int outcome; /* 1: all queued ones started during the turn;
                            -1: a spawn failed; -2: timed out; -3: the
                            other blockers never came */
} blocker_t;

static void on_start(fl_system_t *sys, fl_actor_ref_t self, void *state)
{
    started_t *s = state;
    s->thread = pthread_self();
    atomic_store(&s->ns, fl_clock_now_ns());
}

static void idle_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                         fl_msg_t *msg)
{
}

static void blocker_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                            fl_msg_t *msg)
{
    blocker_t *b = state;
    b->thread = pthread_self();
    /* All the blockers hold their workers before any queues an actor, so
     * that the idle worker sees every lone actor from the start. */
    atomic_fetch_add(b->in_turn, 1);
    uint64_t t0 = fl_clock_now_ns();
    while (atomic_load(b->in_turn) < b->nblockers) {
        if (fl_clock_now_ns() - t0 > (uint64_t)WAIT_MS * 1000000u) {
            atomic_store(&b->outcome, -3);
            return;
        }
        sched_yield();
    }
    fl_actor_opts_t o = {.on_start = on_start};
    b->spawned_ns = fl_clock_now_ns();
    for (unsigned i = 0; i <= b->nqueued; i++) {
        fl_actor_ref_t r;
        if (fl_actor_spawn(sys, idle_receive, &b->q[i], &o, &r) != FL_OK) {
            atomic_store(&b->outcome, -1);
            return;
        }
    }
    uint64_t until = fl_clock_now_ns() + (uint64_t)WAIT_MS * 1000000u;
    for (;;) {
        unsigned ran = 0;
        for (unsigned i = 0; i < b->nqueued; i++)
            ran += atomic_load(&b->q[i].ns) != 0;
        if (ran == b->nqueued) {
            atomic_store(&b->outcome, 1);
            return;
        }
        if (fl_clock_now_ns() > until) {
            atomic_store(&b->outcome, -2);
            return;
        }
        sched_yield();
    }
}

/* Long turns at once, blockers[i] with nqueued actors queued behind it,
 * on nblockers + 1 workers (one idle to take them). */
static void run_blockers(blocker_t *blockers, unsigned nblockers,
                         unsigned nqueued)
{
    fl_system_opts_t so = {0};
    so.workers = nblockers + 1;
    fl_system_t *sys = NULL;
    assert_fl_ok(fl_system_alloc(&so, &sys));
    static _Atomic unsigned in_turn;
    atomic_store(&in_turn, 0);
    for (unsigned k = 0; k < nblockers; k++) {
        blocker_t *b = &blockers[k];
        memset(b, 0, sizeof *b);
        b->nqueued = nqueued;
        b->in_turn = &in_turn;
        b->nblockers = nblockers;
        fl_actor_ref_t blocker;
        assert_fl_ok(fl_actor_spawn(sys, blocker_receive, b, NULL, &blocker));
        fl_msg_t *go = fl_msg_alloc(1, 0);
        assert_non_null(go);
        assert_fl_ok(fl_tell(sys, blocker, go));
    }
    uint64_t t0 = fl_clock_now_ns();
    for (unsigned k = 0; k < nblockers; k++)
        while (atomic_load(&blockers[k].outcome) == 0) {
            if (fl_clock_now_ns() - t0 > 2 * (uint64_t)WAIT_MS * 1000000u)
                fail_msg("blocking turn %u never ended", k);
            sched_yield();
        }
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    for (unsigned k = 0; k < nblockers; k++) {
        blocker_t *b = &blockers[k];
        assert_int_equal(1, atomic_load(&b->outcome));
        /* The next slot's actor waited for the turn's end, on its
         * worker. */
        assert_int_not_equal(0, atomic_load(&b->q[nqueued].ns));
        for (unsigned i = 0; i < nqueued; i++)
            assert_false(pthread_equal(b->thread, b->q[i].thread));
    }
}

/* One long turn with nqueued actors queued behind it, on two workers. */
static void run_case(blocker_t *b, unsigned nqueued)
{
    run_blockers(b, 1, nqueued);
}

static void test_a_lone_queued_actor_is_taken_after_the_steal_delay(void **st)
{
    (void)st;
    blocker_t b;
    run_case(&b, 1);
    /* Not before FL__STEAL_BACKLOG_NS: its worker might have run it itself
     * a moment later, on the core that holds its messages. */
    uint64_t waited = atomic_load(&b.q[0].ns) - b.spawned_ns;
    if (waited < FL__STEAL_BACKLOG_NS)
        fail_msg("a lone queued actor was taken after %llu ns, before the "
                 "%u ns steal delay",
                 (unsigned long long)waited, FL__STEAL_BACKLOG_NS);
}

/* A wall clock stepped back by 2 s during every park (a timeout on it
 * would wait 2 s more): the lone actor is still taken after the steal
 * delay, not after the step. */
static void test_a_wall_clock_step_does_not_hold_a_queued_actor(void **st)
{
    (void)st;
    blocker_t b;
    atomic_store(&wall_step_s, 2);
    run_case(&b, 1);
    uint64_t waited = atomic_load(&b.q[0].ns) - b.spawned_ns;
    if (waited >= 1000000000u)
        fail_msg("a lone queued actor was taken after %llu ns, with the wall "
                 "clock 2 s behind each park",
                 (unsigned long long)waited);
}

/* The wall clock back in place, whether the test passed or not. */
static int wall_clock_back(void **st)
{
    atomic_store(&wall_step_s, 0);
    return fl_test_disarm(st);
}

static void test_two_queued_actors_are_taken_during_a_long_turn(void **st)
{
    (void)st;
    blocker_t b;
    run_case(&b, 2);
    /* Both started on the other worker while the turn went on (run_case);
     * the first in the order queued. */
    assert_true(atomic_load(&b.q[0].ns) <= atomic_load(&b.q[1].ns));
}

/* An idle worker watches each busy worker's lone actor on its own clock:
 * two of them at once are both taken (a single watch, moved from one to
 * the other at each look, would never come due). Three workers. */
static void test_lone_actors_of_two_busy_workers_are_both_taken(void **st)
{
    (void)st;
    blocker_t b[2];
    run_blockers(b, 2, 1);
    for (unsigned k = 0; k < 2; k++) {
        uint64_t waited = atomic_load(&b[k].q[0].ns) - b[k].spawned_ns;
        if (waited < FL__STEAL_BACKLOG_NS)
            fail_msg("lone actor %u was taken after %llu ns, before the "
                     "%u ns steal delay",
                     k, (unsigned long long)waited, FL__STEAL_BACKLOG_NS);
    }
}

/* ---- parking beside a busy worker ------------------------------------------
 */

/* An actor that tells itself until `until` (ns): every turn ends with a
 * message left, so its worker pushes it on its run queue after each one. */
typedef struct self_teller {
    uint64_t until;
    fl_test_latch_t *done;
} self_teller_t;

static void self_tell_receive(fl_system_t *sys, fl_actor_ref_t self,
                              void *state, fl_msg_t *msg)
{
    self_teller_t *t = state;
    fl_msg_t *m;
    if (fl_clock_now_ns() >= t->until || (m = fl_msg_alloc(1, 0)) == NULL ||
        fl_tell(sys, self, m) != FL_OK)
        fl_test_latch_count_down(t->done);
}

/* Fails the test if the process used more than 1.5 cores (CPU time over
 * wall time) while one actor ran on one of `workers` workers for
 * BUSY_MS. */
#define BUSY_MS 300u
static void assert_cores_beside_one_actor(unsigned workers)
{
    fl_system_opts_t so = {0};
    so.workers = workers;
    fl_system_t *sys = NULL;
    assert_fl_ok(fl_system_alloc(&so, &sys));
    self_teller_t t = {.done = fl_test_latch_alloc(1)};
    assert_non_null(t.done);
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, self_tell_receive, &t, NULL, &a));
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    uint64_t t0 = fl_clock_now_ns();
    t.until = t0 + BUSY_MS * 1000000ull;
    fl_msg_t *go = fl_msg_alloc(1, 0);
    assert_non_null(go);
    assert_fl_ok(fl_tell(sys, a, go));
    assert_int_equal(0, fl_test_latch_wait(t.done, WAIT_MS));
    uint64_t wall = fl_clock_now_ns() - t0;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_test_latch_free(t.done);
    double cpu = (double)(c1.tv_sec - c0.tv_sec) * 1e9 +
                 (double)(c1.tv_nsec - c0.tv_nsec);
    double cores = cpu / (double)wall;
    print_message("one busy actor on %u workers: %.2f cores\n", workers, cores);
    if (cores > 1.5)
        fail_msg("one busy actor on %u workers used %.2f cores (at most 1.5)",
                 workers, cores);
}

/* One busy worker: the idle one parks patiently, not woken by each push
 * (a wake-up per push kept it spinning: about two cores). */
static void test_an_idle_worker_beside_a_busy_one_sleeps(void **st)
{
    (void)st;
    assert_cores_beside_one_actor(2);
}

/* Three idle workers: one parks patiently, the others until woken, and a
 * push wakes none of them while the patient one looks. */
static void test_one_idle_worker_of_many_looks_at_a_time(void **st)
{
    (void)st;
    assert_cores_beside_one_actor(4);
}

/* ---- the stealing rule, by the clock -------------------------------------
 */

#define T0 1000000u /* any time but 0 */
#define LOOK 1000u  /* a look every microsecond */

/* Looks of a thief at a victim's queue (fl__steal_due), every `every` ns
 * from t0 to t1, the victim popping every `pop` ns since T0 (0: stuck)
 * with n queued: the time of the first look that found them due, or 0. */
static uint64_t first_due(fl__steal_watch_t *l, uint64_t t0, uint64_t t1,
                          uint64_t every, uint64_t pop, uint64_t n)
{
    for (uint64_t t = t0; t < t1; t += every) {
        uint64_t h = pop != 0 ? (t - T0) / pop : 0;
        if (fl__steal_due(l, t, h, n))
            return t;
    }
    return 0;
}

static void test_a_stuck_queue_is_due_by_its_length(void **st)
{
    (void)st;
    /* One queued behind a turn that does not end: FL__STEAL_BACKLOG_NS. */
    fl__steal_watch_t l = {0};
    assert_int_equal(
        T0 + FL__STEAL_BACKLOG_NS,
        first_due(&l, T0, T0 + 10 * FL__STEAL_BACKLOG_NS, LOOK, 0, 1));
    /* Two: half of it; eight: an eighth. */
    l = (fl__steal_watch_t){0};
    assert_int_equal(
        T0 + FL__STEAL_BACKLOG_NS / 2,
        first_due(&l, T0, T0 + 10 * FL__STEAL_BACKLOG_NS, LOOK, 0, 2));
    l = (fl__steal_watch_t){0};
    assert_int_equal(
        T0 + FL__STEAL_BACKLOG_NS / 8,
        first_due(&l, T0, T0 + 10 * FL__STEAL_BACKLOG_NS, LOOK, 0, 8));
}

static void test_a_few_short_turns_stay_until_the_imbalance_persists(void **st)
{
    (void)st;
    /* Four queued, a pop every 15 us (a fan-in's senders): a backlog of
     * 60 us, not due; the queue never found empty, due once it has held
     * actors for FL__STEAL_PERSIST_NS. */
    fl__steal_watch_t l = {0};
    assert_int_equal(
        T0 + FL__STEAL_PERSIST_NS,
        first_due(&l, T0, T0 + 2 * FL__STEAL_PERSIST_NS, LOOK, 15000, 4));
    /* Found empty now and then (the caller clears busy_since): never. */
    l = (fl__steal_watch_t){0};
    for (uint64_t t = T0; t < T0 + 4 * FL__STEAL_PERSIST_NS;
         t += FL__STEAL_PERSIST_NS / 2) {
        assert_int_equal(
            0, first_due(&l, t, t + FL__STEAL_PERSIST_NS / 2, LOOK, 15000, 4));
        l.busy_since = 0;
    }
    /* Looked at, then not for longer than FL__STEAL_GAP_NS (the thief
     * ran a turn of its own): the persistence starts anew. */
    l = (fl__steal_watch_t){0};
    uint64_t t1 = T0 + FL__STEAL_PERSIST_NS - LOOK;
    assert_int_equal(0, first_due(&l, T0, t1, LOOK, 15000, 4));
    uint64_t t2 = t1 + FL__STEAL_GAP_NS + LOOK;
    assert_int_equal(
        t2 + FL__STEAL_PERSIST_NS,
        first_due(&l, t2, t2 + 2 * FL__STEAL_PERSIST_NS, LOOK, 15000, 4));
    /* Many queued, the same pops: at once. */
    l = (fl__steal_watch_t){0};
    uint64_t due =
        first_due(&l, T0, T0 + FL__STEAL_PERSIST_NS, LOOK, 15000, 1000);
    assert_true(due != 0 && due <= T0 + FL__STEAL_BACKLOG_NS / 1000 + LOOK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_an_endless_chain_lets_a_tell_from_outside_in),
        FL_TEST(test_a_lone_queued_actor_is_taken_after_the_steal_delay),
        cmocka_unit_test_setup_teardown(
            test_a_wall_clock_step_does_not_hold_a_queued_actor, fl_test_arm,
            wall_clock_back),
        FL_TEST(test_two_queued_actors_are_taken_during_a_long_turn),
        FL_TEST(test_lone_actors_of_two_busy_workers_are_both_taken),
        FL_TEST(test_a_stuck_queue_is_due_by_its_length),
        FL_TEST(test_a_few_short_turns_stay_until_the_imbalance_persists),
        FL_TEST(test_an_idle_worker_beside_a_busy_one_sleeps),
        FL_TEST(test_one_idle_worker_of_many_looks_at_a_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
