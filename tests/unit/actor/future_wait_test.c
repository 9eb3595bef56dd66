/*
 * future_wait_test.c - blocking waits: results, timeouts, many waiters,
 * and EDEADLK at once on a runtime thread.
 */
#include "future_fixture.h"

/* ---- wait ---------------------------------------------------------------- */

/* fl_future_wait(f, ms) on a future nobody completes: FL_ETIMEDOUT, not
 * before ms, and f still pending. */
static void expect_wait_times_out(fl_future_t *f, int64_t ms)
{
    uint64_t t0 = fl_clock_now_ns();
    assert_fl(FL_ETIMEDOUT, fl_future_wait(f, ms));
    uint64_t elapsed = fl_clock_now_ns() - t0;
    if (elapsed < (uint64_t)ms * 1000000ull)
        fail_msg("wait returned after %llu ns, before its %lld ms timeout",
                 (unsigned long long)elapsed, (long long)ms);
    assert_pending(f);
}

static void
test_wait_timeout_returns_etimedout_and_leaves_the_future_pending(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    expect_wait_times_out(f, 30);
    assert_false(fl_future_done(f));
    assert_fl(FL_ETIMEDOUT, fl_future_wait(f, 0));
    assert_false(fl_future_done(f));
    fl_future_release(f);
}

static void test_wait_returns_the_result_of_a_complete_future(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    assert_fl_ok(fl_future_wait(f, FL_INFINITE));
    assert_fl_ok(fl_future_wait(f, 0));
    fl_future_release(f);

    f = fl_future_alloc();
    assert_fl_ok(fl_future_fail(f, FL_EUSER + 11, NULL));
    assert_fl(FL_EUSER + 11, fl_future_wait(f, 10));
    assert_fl(FL_EUSER + 11, fl_future_wait(f, FL_INFINITE));
    fl_future_release(f);
}

static void test_wait_wakes_when_another_thread_completes(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, complete_thread, f));
    assert_fl_ok(fl_future_wait(f, FL_INFINITE));
    assert_fl_ok(join_rc(t));
    fl_future_release(f);
}

static void test_wait_rejects_null_and_negative_timeouts(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    assert_fl(FL_EINVAL, fl_future_wait(NULL, FL_INFINITE));
    assert_fl(FL_EINVAL, fl_future_wait(f, -2));
    assert_fl(FL_EINVAL, fl_future_wait(f, -1000));
    assert_pending(f);
    fl_future_release(f);
}

/* A wait that timed out leaves nothing of itself on the future: the
 * future, still pending, completes normally afterwards (its completion
 * would wake a waiter that is gone if the wait had stayed registered), and
 * the next waits return FL_OK at once with the value visible. */
static void test_wait_that_timed_out_leaves_the_future_usable(void **state)
{
    (void)state;
    atomic_int freed = 0;
    fl_future_t *f = fl_future_alloc();
    expect_wait_times_out(f, 20);

    val_t *v = val_new(&freed, 17);
    assert_fl_ok(fl_future_complete(f, v, val_free));
    assert_fl_ok(fl_future_error(f));
    assert_ptr_equal(v, fl_future_value(f));
    /* "At once": far below the 5 s the waits would allow. */
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_future_wait(f, 5000));
    assert_fl_ok(fl_future_wait(f, FL_INFINITE));
    fl_test_assert_elapsed("two waits on a complete future",
                           fl_test_ms_since(t0), 0, 1000);
    assert_ptr_equal(v, fl_future_value(f));
    assert_int_equal(0, atomic_load(&freed));
    fl_future_release(f);
    assert_int_equal(1, atomic_load(&freed));
}

/* The scheduler state of thread tid of this process ('R', 'S', ...), or 0
 * when /proc cannot say. */
static char thread_state(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    /* "tid (comm) S ...": comm may hold spaces and parentheses. */
    char *p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' ? p[2] : 0;
}

#define WAITERS 8

/* WAITERS threads blocked in fl_future_wait on one future. */
typedef struct crowd {
    fl_future_t *f;
    atomic_int announced;      /* threads about to call fl_future_wait */
    fl_test_latch_t *returned; /* counted down by each returning wait */
    struct crowd_member {
        struct crowd *crowd;
        pthread_t thread;
        _Atomic pid_t tid; /* set before announcing */
        int rc;            /* read after the join */
        void *value;       /* fl_future_value after the wait */
    } m[WAITERS];
} crowd_t;

static void *crowd_main(void *p)
{
    struct crowd_member *m = p;
    crowd_t *c = m->crowd;
    atomic_store(&m->tid, (pid_t)syscall(SYS_gettid));
    atomic_fetch_add(&c->announced, 1);
    m->rc = fl_future_wait(c->f, FL_INFINITE);
    m->value = fl_future_value(c->f);
    fl_test_latch_count_down(c->returned);
    return NULL;
}

/* Eight threads wait (FL_INFINITE) on one pending future; none returns
 * while it is pending; one completion wakes them all, each with FL_OK and
 * the value. The completion comes once every waiter is seen asleep in the
 * kernel ('S' in /proc: past fl_future_wait's short spin, on its condition
 * variable), so the test covers the sleeping path, not the spin; the
 * assertions hold whatever the waiters were doing (without /proc it waits
 * 50 ms instead, which only makes the sleeping path likely). The crowd is
 * on the heap: if a waiter is never woken the case fails and leaves it to
 * the threads still blocked. */
static void test_one_completion_wakes_every_blocked_waiter(void **state)
{
    (void)state;
    static atomic_int freed; /* static, like the crowd on the heap */
    atomic_store(&freed, 0);
    crowd_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->f = fl_future_alloc();
    assert_non_null(c->f);
    c->returned = fl_test_latch_alloc(WAITERS);
    for (int i = 0; i < WAITERS; i++) {
        c->m[i].crowd = c;
        c->m[i].rc = -1;
        assert_int_equal(
            0, pthread_create(&c->m[i].thread, NULL, crowd_main, &c->m[i]));
    }
    uint64_t t0 = fl_clock_now_ns();
    const struct timespec tick = {0, 200000}; /* 200 us between polls */
    while (atomic_load(&c->announced) < WAITERS) {
        if (fl_test_ms_since(t0) > WAIT_MS)
            fail_msg("%d of %d waiters started", atomic_load(&c->announced),
                     WAITERS);
        nanosleep(&tick, NULL);
    }
    bool asleep[WAITERS] = {false};
    int nasleep = 0;
    while (nasleep < WAITERS) {
        for (int i = 0; i < WAITERS; i++) {
            if (asleep[i])
                continue;
            char st = thread_state(atomic_load(&c->m[i].tid));
            if (st == 0) { /* no /proc */
                const struct timespec grace = {0, 50000000};
                nanosleep(&grace, NULL);
                nasleep = WAITERS;
                break;
            }
            if (st == 'S') {
                asleep[i] = true;
                nasleep++;
            }
        }
        if (nasleep < WAITERS && fl_test_ms_since(t0) > WAIT_MS)
            fail_msg("only %d of %d waiters went to sleep", nasleep, WAITERS);
        if (nasleep < WAITERS)
            nanosleep(&tick, NULL);
    }
    assert_int_equal(WAITERS, fl_test_latch_count(c->returned));
    assert_pending(c->f);

    val_t *v = val_new(&freed, 8);
    assert_fl_ok(fl_future_complete(c->f, v, val_free));
    if (fl_test_latch_wait(c->returned, WAIT_MS) != 0)
        fail_msg("%d of %d waiters still blocked after the completion",
                 (int)fl_test_latch_count(c->returned), WAITERS);
    for (int i = 0; i < WAITERS; i++) {
        assert_int_equal(0, pthread_join(c->m[i].thread, NULL));
        if (c->m[i].rc != FL_OK)
            fail_msg("waiter %d: %s", i, fl_err_name(c->m[i].rc));
        assert_ptr_equal(v, c->m[i].value);
    }
    assert_int_equal(0, atomic_load(&freed));
    fl_future_release(c->f);
    assert_int_equal(1, atomic_load(&freed));
    fl_test_latch_free(c->returned);
    free(c);
}

/* Waits attempted on runtime threads report their code here. */
typedef struct deadlk {
    fl_future_t *pending;
    atomic_int rc;
    atomic_llong elapsed_ns;
    fl_test_latch_t *latch;
} deadlk_t;

static void deadlk_try(deadlk_t *d)
{
    uint64_t t0 = fl_clock_now_ns();
    /* A bounded wait, so a broken implementation fails instead of hanging. */
    int rc = fl_future_wait(d->pending, 2000);
    atomic_store(&d->elapsed_ns, (long long)(fl_clock_now_ns() - t0));
    atomic_store(&d->rc, rc);
    fl_test_latch_count_down(d->latch);
}

static void deadlk_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                           fl_msg_t *msg)
{
    (void)sys;
    (void)self;
    (void)msg;
    deadlk_try(st);
}

static void deadlk_exec(fl_system_t *sys, fl_actor_ref_t self, void *st,
                        void *arg)
{
    (void)sys;
    (void)self;
    (void)st;
    deadlk_try(arg);
}

static void deadlk_timer(fl_system_t *sys, void *arg)
{
    (void)sys;
    deadlk_try(arg);
}

static void assert_deadlk_reported(deadlk_t *d)
{
    assert_int_equal(0, fl_test_latch_wait(d->latch, WAIT_MS));
    assert_fl(FL_EDEADLK, atomic_load(&d->rc));
    /* "without waiting" */
    if (atomic_load(&d->elapsed_ns) >= 1000 * 1000000ll)
        fail_msg("FL_EDEADLK came after %lld ns of waiting",
                 (long long)atomic_load(&d->elapsed_ns));
    assert_pending(d->pending);
}

static void
test_wait_in_a_receive_callback_returns_edeadlk_at_once(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    deadlk_t d = {.pending = fl_future_alloc(),
                  .rc = -1,
                  .latch = fl_test_latch_alloc(1)};
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, deadlk_receive, &d, NULL, &a));
    assert_fl_ok(fl_tell(sys, a, fl_msg_alloc(1, 0)));
    assert_deadlk_reported(&d);
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_future_release(d.pending);
    fl_test_latch_free(d.latch);
}

static void
test_wait_in_an_actor_exec_function_returns_edeadlk_at_once(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    deadlk_t d = {.pending = fl_future_alloc(),
                  .rc = -1,
                  .latch = fl_test_latch_alloc(1)};
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, deadlk_receive, NULL, NULL, &a));
    assert_fl_ok(fl_actor_exec(sys, a, deadlk_exec, &d, NULL));
    assert_deadlk_reported(&d);
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_future_release(d.pending);
    fl_test_latch_free(d.latch);
}

static void test_wait_in_a_timer_callback_returns_edeadlk_at_once(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    deadlk_t d = {.pending = fl_future_alloc(),
                  .rc = -1,
                  .latch = fl_test_latch_alloc(1)};
    assert_fl_ok(fl_timer_start(sys, deadlk_timer, &d, 0, 0, NULL));
    assert_deadlk_reported(&d);
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_future_release(d.pending);
    fl_test_latch_free(d.latch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(
            test_wait_timeout_returns_etimedout_and_leaves_the_future_pending),
        FL_TEST(test_wait_returns_the_result_of_a_complete_future),
        FL_TEST(test_wait_wakes_when_another_thread_completes),
        FL_TEST(test_wait_rejects_null_and_negative_timeouts),
        FL_TEST(test_wait_that_timed_out_leaves_the_future_usable),
        FL_TEST(test_one_completion_wakes_every_blocked_waiter),
        FL_TEST(test_wait_in_a_receive_callback_returns_edeadlk_at_once),
        FL_TEST(test_wait_in_an_actor_exec_function_returns_edeadlk_at_once),
        FL_TEST(test_wait_in_a_timer_callback_returns_edeadlk_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
