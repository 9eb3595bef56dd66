/*
 * future_race_test.c - races: completion, failure, cancel and timeouts
 * racing each other, registration racing completion, and a wait timing
 * out as the future completes.
 */
#include "future_fixture.h"

/* ---- races --------------------------------------------------------------- */

#define RACE_N 10000
#define RACE_THREADS 4
/* The fifth thread arms the 1 ms timeouts while the others race. */
#define RACE_TIMEOUT_KIND RACE_THREADS

typedef struct race_slot {
    fl_future_t *f;
    atomic_int cb_calls;
    atomic_int hook_calls;
    atomic_int winners; /* bit k: thread k's call returned FL_OK */
    atomic_int wins;    /* FL_OK returns, all threads */
} race_slot_t;

typedef struct race {
    fl_system_t *sys;
    race_slot_t *slots;
    size_t n;
    atomic_int timeout_errors;
    pthread_barrier_t start;
    atomic_int values_freed;
    fl_test_latch_t *callbacks;
} race_t;

typedef struct race_thread {
    race_t *race;
    int kind;
    pthread_t tid;
} race_thread_t;

static void race_value_free(void *p)
{
    atomic_int *c = *(atomic_int **)p;
    atomic_fetch_add(c, 1);
    free(p);
}

static void race_cb(fl_future_t *f, void *arg)
{
    (void)f;
    race_slot_t *s = arg;
    atomic_fetch_add(&s->cb_calls, 1);
}

static void race_done_cb(fl_future_t *f, void *arg)
{
    (void)f;
    fl_test_latch_count_down(arg);
}

static void race_hook(fl_future_t *f, void *arg)
{
    (void)f;
    race_slot_t *s = arg;
    atomic_fetch_add(&s->hook_calls, 1);
}

static void *race_main(void *arg)
{
    race_thread_t *t = arg;
    race_t *r = t->race;
    pthread_barrier_wait(&r->start);
    if (t->kind == RACE_TIMEOUT_KIND) {
        for (size_t i = 0; i < r->n; i++) {
            int rc = fl_future_set_timeout(r->sys, r->slots[i].f, 1);
            if (rc != FL_OK && rc != FL_EALREADY)
                atomic_fetch_add(&r->timeout_errors, 1);
        }
        return NULL;
    }
    /* Each thread starts at its own offset, so every future sees the
     * calls arrive in a different order and at different times. */
    size_t offset = (size_t)t->kind * r->n / RACE_THREADS;
    for (size_t j = 0; j < r->n; j++) {
        size_t i = (j + offset) % r->n;
        race_slot_t *s = &r->slots[i];
        int rc;
        switch (t->kind) {
        case 0: {
            atomic_int **v = malloc(sizeof *v);
            *v = &r->values_freed;
            rc = fl_future_complete(s->f, v, race_value_free);
            break;
        }
        case 1:
            rc = fl_future_fail(s->f, FL_EUSER + 1, "fail %zu", i);
            break;
        case 2:
            rc = fl_future_cancel(s->f);
            break;
        default:
            rc = fl_future_fail(s->f, FL_EUSER + 3, NULL);
            break;
        }
        if (rc == FL_OK) {
            atomic_fetch_or(&s->winners, 1 << t->kind);
            atomic_fetch_add(&s->wins, 1);
        } else if (rc != FL_EALREADY) {
            atomic_fetch_or(&s->winners, 1 << 8); /* unexpected code */
        }
    }
    return NULL;
}

static void
test_racing_complete_fail_cancel_and_timeout_have_one_winner(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    race_t r = {0};
    r.sys = sys;
    r.n = RACE_N;
    r.slots = calloc(r.n, sizeof *r.slots);
    assert_non_null(r.slots);
    r.callbacks = fl_test_latch_alloc(r.n);
    pthread_barrier_init(&r.start, NULL, RACE_THREADS + 1);

    for (size_t i = 0; i < r.n; i++) {
        race_slot_t *s = &r.slots[i];
        s->f = fl_future_alloc();
        assert_non_null(s->f);
        assert_fl_ok(fl_future_on_complete(s->f, race_cb, s));
        assert_fl_ok(fl_future_on_complete(s->f, race_done_cb, r.callbacks));
        assert_fl_ok(fl_future_set_cancel_hook(s->f, race_hook, s));
    }
    race_thread_t th[RACE_THREADS + 1];
    for (int k = 0; k <= RACE_THREADS; k++) {
        th[k].race = &r;
        th[k].kind = k;
        assert_int_equal(0,
                         pthread_create(&th[k].tid, NULL, race_main, &th[k]));
    }
    for (int k = 0; k <= RACE_THREADS; k++)
        assert_int_equal(0, pthread_join(th[k].tid, NULL));
    assert_int_equal(0, atomic_load(&r.timeout_errors));
    assert_int_equal(0, fl_test_latch_wait(r.callbacks, WAIT_MS));
    /* Joins the timer thread: every callback that will run has run. */
    assert_fl_ok(fl_system_shutdown(sys));

    size_t by[RACE_THREADS + 1] = {0};
    for (size_t i = 0; i < r.n; i++) {
        race_slot_t *s = &r.slots[i];
        int w = atomic_load(&s->winners);
        int wins = atomic_load(&s->wins);
        int err = fl_future_error(s->f);
        if (w & (1 << 8))
            fail_msg("future %zu: a losing call returned neither FL_OK nor "
                     "FL_EALREADY",
                     i);
        if (atomic_load(&s->cb_calls) != 1)
            fail_msg("future %zu: callback ran %d times", i,
                     atomic_load(&s->cb_calls));
        if (wins > 1)
            fail_msg("future %zu: %d calls returned FL_OK (mask %#x)", i, wins,
                     w);
        int expect_hook = 0;
        if (wins == 0) {
            if (err != FL_ETIMEDOUT)
                fail_msg("future %zu: no call won but error is %s", i,
                         fl_err_name(err));
            by[RACE_THREADS]++;
        } else if (w == 1) {
            assert_fl_ok(err);
            by[0]++;
        } else if (w == 2) {
            assert_fl(FL_EUSER + 1, err);
            by[1]++;
        } else if (w == 4) {
            assert_fl(FL_ECANCELED, err);
            expect_hook = 1;
            by[2]++;
        } else if (w == 8) {
            assert_fl(FL_EUSER + 3, err);
            by[3]++;
        } else {
            fail_msg("future %zu: winner mask %#x", i, w);
        }
        if (atomic_load(&s->hook_calls) != expect_hook)
            fail_msg("future %zu: cancel hook ran %d times, expected %d", i,
                     atomic_load(&s->hook_calls), expect_hook);
    }
    print_message("race winners: complete %zu, fail %zu, cancel %zu, fail2 "
                  "%zu, timeout %zu\n",
                  by[0], by[1], by[2], by[3], by[4]);
    fl_system_free(sys);
    for (size_t i = 0; i < r.n; i++)
        fl_future_release(r.slots[i].f);
    /* Every value given to complete was freed exactly once, winner or not. */
    assert_int_equal(r.n, (size_t)atomic_load(&r.values_freed));
    pthread_barrier_destroy(&r.start);
    fl_test_latch_free(r.callbacks);
    free(r.slots);
}

/* Registration racing completion: each callback still runs exactly once. */
typedef struct reg_race {
    fl_future_t **fs;
    atomic_int *calls; /* two per future */
    size_t n;
    pthread_barrier_t start;
} reg_race_t;

static void reg_cb(fl_future_t *f, void *arg)
{
    (void)f;
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void *reg_register(void *arg)
{
    reg_race_t *r = arg;
    pthread_barrier_wait(&r->start);
    for (size_t i = 0; i < r->n; i++) {
        if (fl_future_on_complete(r->fs[i], reg_cb, &r->calls[2 * i]) !=
                FL_OK ||
            fl_future_on_complete(r->fs[i], reg_cb, &r->calls[2 * i + 1]) !=
                FL_OK)
            atomic_fetch_add(&r->calls[2 * i], 100);
    }
    return NULL;
}

static void *reg_complete(void *arg)
{
    reg_race_t *r = arg;
    pthread_barrier_wait(&r->start);
    for (size_t i = 0; i < r->n; i++)
        if (fl_future_complete(r->fs[i], NULL, NULL) != FL_OK)
            atomic_fetch_add(&r->calls[2 * i + 1], 100);
    return NULL;
}

static void
test_callback_registration_racing_completion_runs_each_once(void **state)
{
    (void)state;
    reg_race_t r = {0};
    r.n = 20000 / SCALE;
    r.fs = calloc(r.n, sizeof *r.fs);
    r.calls = calloc(2 * r.n, sizeof *r.calls);
    assert_non_null(r.fs);
    assert_non_null(r.calls);
    for (size_t i = 0; i < r.n; i++)
        r.fs[i] = fl_future_alloc();
    pthread_barrier_init(&r.start, NULL, 2);
    pthread_t a, b;
    assert_int_equal(0, pthread_create(&a, NULL, reg_register, &r));
    assert_int_equal(0, pthread_create(&b, NULL, reg_complete, &r));
    assert_int_equal(0, pthread_join(a, NULL));
    assert_int_equal(0, pthread_join(b, NULL));
    for (size_t i = 0; i < 2 * r.n; i++)
        if (atomic_load(&r.calls[i]) != 1)
            fail_msg("future %zu callback %zu: %d runs", i / 2, i % 2,
                     atomic_load(&r.calls[i]));
    for (size_t i = 0; i < r.n; i++)
        fl_future_release(r.fs[i]);
    pthread_barrier_destroy(&r.start);
    free(r.fs);
    free(r.calls);
}

/* A wait timing out just as another thread completes the future. */
#define WR_ROUNDS 2000

typedef struct wait_race {
    /* Round i (from 1) starts when go becomes i (-1: stop) and ends when
     * done does. Both sides spin on them rather than sleep (a wake-up
     * alone can take longer than the window aimed at). The round's fields
     * are written before the release store of go, the result before the
     * one of done. */
    atomic_int go, done;
    fl_future_t *f;
    uint64_t at_ns; /* when to complete (fl_clock_now_ns) */
    int code;       /* FL_OK: complete with v; else fail with it */
    val_t *v;
    int rc;           /* the completion's result */
    uint64_t done_ns; /* when the completion returned */
} wait_race_t;

/* Spins until *a reaches v (or -1, returned as such). */
static int spin_until(atomic_int *a, int v)
{
    int got;
    unsigned spins = 0;
    while ((got = atomic_load_explicit(a, memory_order_acquire)) != v &&
           got != -1)
        if (++spins % 1024 == 0)
            sched_yield(); /* the other side may need this CPU */
    return got;
}

static void *wait_race_completer(void *p)
{
    wait_race_t *r = p;
    for (int i = 1; spin_until(&r->go, i) == i; i++) {
        while (fl_clock_now_ns() < r->at_ns)
            ;
        r->rc = r->code == FL_OK ? fl_future_complete(r->f, r->v, val_free)
                                 : fl_future_fail(r->f, r->code, NULL);
        r->done_ns = fl_clock_now_ns();
        atomic_store_explicit(&r->done, i, memory_order_release);
    }
    return NULL;
}

/* Overwrites the stack below the caller: a waiter the completion still
 * touched after its wait returned would read garbage. */
static __attribute__((noinline)) void scribble_stack(void)
{
    unsigned char junk[8192];
    memset(junk, 0xa5, sizeof junk);
    __asm__ __volatile__("" : : "r"(junk) : "memory");
}

/* Round i's timeout: mostly 0, every fourth 1 ms, every fourth 100 ms (a
 * timeout the completion comes well within). */
static int wait_race_timeout(int i)
{
    static const int timeout_ms[4] = {1, 0, 100, 0};
    return timeout_ms[i % 4];
}

/* When round i completes, in ns after its wait began: with a timeout of
 * 0 or 1 ms in the 100 us after the timeout, where the wait gives up
 * (after its ~30 us spin, the timeout and the kernel's timer slack); with
 * 100 ms from 20 to 50 us, where the wait ends its spin and registers to
 * sleep. */
static uint64_t wait_race_delay(int i, int timeout_ms)
{
    uint64_t sweep = (uint64_t)i * 7919u;
    if (timeout_ms == 100)
        return 20000u + sweep % 30000u;
    return (uint64_t)timeout_ms * 1000000u + sweep % 100000u;
}

/* Rounds of a wait against a completion (or a failure with a code) on
 * another thread at about the same moment (wait_race_delay): so the
 * completion sometimes takes the waiter off the list just as the wait
 * gives up (on a quiet machine a few rounds per run, more under the
 * sanitizers), or comes just as the wait registers. Every wait returns
 * FL_ETIMEDOUT or exactly the completion's result (code, and value on
 * success), and FL_ETIMEDOUT only if the completion returned after the
 * wait's timeout had passed (else the future was no longer pending when
 * the wait gave up); either way the completion succeeds and the future
 * holds its result; some waits see the result. A completion touching a
 * returned waiter's stack is a sanitizer report, and without sanitizers
 * reads the garbage written there after each wait. The round state is on
 * the heap and the counter static, for a completer left running by a
 * failed case. */
static void test_wait_timing_out_as_the_future_completes(void **state)
{
    (void)state;
    static atomic_int freed;
    atomic_store(&freed, 0);
    wait_race_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    atomic_init(&r->go, 0);
    atomic_init(&r->done, 0);
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, wait_race_completer, r));
    int timeouts = 0, results = 0, oks = 0;
    for (int i = 1; i <= WR_ROUNDS; i++) {
        int timeout_ms = wait_race_timeout(i);
        r->f = fl_future_alloc();
        assert_non_null(r->f);
        r->code = i % 2 == 0 ? FL_OK : FL_EUSER + 1 + i % 5;
        r->v = r->code == FL_OK ? val_new(&freed, i) : NULL;
        r->rc = -1;
        uint64_t began = fl_clock_now_ns();
        r->at_ns = began + wait_race_delay(i, timeout_ms);
        atomic_store_explicit(&r->go, i, memory_order_release);
        int rc = fl_future_wait(r->f, timeout_ms);
        scribble_stack();
        spin_until(&r->done, i);
        if (r->rc != FL_OK)
            fail_msg("round %d: the completion returned %s", i,
                     fl_err_name(r->rc));
        if (fl_future_error(r->f) != r->code)
            fail_msg("round %d: the future holds %s, want %s", i,
                     fl_err_name(fl_future_error(r->f)), fl_err_name(r->code));
        if (rc == FL_ETIMEDOUT) {
            uint64_t after = r->done_ns - began;
            if (after < (uint64_t)timeout_ms * 1000000u)
                fail_msg("round %d: the wait (timeout %d ms) timed out, but "
                         "the completion returned %llu ns after it began",
                         i, timeout_ms, (unsigned long long)after);
            timeouts++;
        } else if (rc == r->code) {
            results++;
        } else {
            fail_msg("round %d (timeout %d ms): wait returned %s, want "
                     "FL_ETIMEDOUT or %s",
                     i, timeout_ms, fl_err_name(rc), fl_err_name(r->code));
        }
        if (r->code == FL_OK) {
            assert_ptr_equal(r->v, fl_future_value(r->f));
            oks++;
        }
        fl_future_release(r->f);
    }
    atomic_store_explicit(&r->go, -1, memory_order_release);
    assert_int_equal(0, pthread_join(t, NULL));
    print_message("wait race: %d timed out, %d saw the result\n", timeouts,
                  results);
    assert_int_equal(oks, atomic_load(&freed));
    /* The 100 ms rounds see the result; how many rounds time out is up
     * to the machine (with one CPU free, the completer's busy wait runs
     * before the waiter's give-up and every wait sees the result). */
    if (results == 0)
        fail_msg("no wait saw the result: %d timed out", timeouts);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_racing_complete_fail_cancel_and_timeout_have_one_winner),
        FL_TEST(test_callback_registration_racing_completion_runs_each_once),
        FL_TEST(test_wait_timing_out_as_the_future_completes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
