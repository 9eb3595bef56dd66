/*
 * schedule_fixture.h - what the tests of tasks scheduled on an endpoint's
 * main thread share (endpoint_schedule_test.c, endpoint_cancel_test.c):
 * the ticker, a task's arg that records its runs; sentinels, one-shot
 * runs that tell "no later than" without a bound on the machine's speed;
 * timing checks; a barrier through the main thread; the periodic kind by
 * number.
 *
 * Header-only (static inline): each tests/unit/rpc/<name>_test.c is its
 * own program.
 */
#ifndef SCHEDULE_FIXTURE_H
#define SCHEDULE_FIXTURE_H

#include "rpc_fixture.h"

#include <pthread.h>
#include <time.h>

/* A delay no test waits for. */
#define NEVER_MS 3600000

#define MAX_RUNS 64

/* ---- the ticker: a task's arg, recording its runs ------------------------ */

typedef struct ticker {
    fl_rpc_endpoint_t *ep;
    atomic_int runs;
    atomic_int freed;
    atomic_int off_main; /* runs not on the endpoint's main thread */
    atomic_int inside;   /* a run is in progress (the overlap check) */
    atomic_int overlaps;
    int64_t slow_ms[MAX_RUNS]; /* how long run k takes (set beforehand) */
    uint64_t start_ns[MAX_RUNS], end_ns[MAX_RUNS]; /* main thread writes */
    fl_test_latch_t *ran;   /* counted down by each run */
    fl_test_latch_t *ended; /* counted down by arg_free */
    /* The task cancels itself in run cancel_at (-1: never), through the
     * handle the test stores in self, and records what cancel said. */
    int cancel_at;
    _Atomic(fl_rpc_scheduled_t *) self;
    atomic_int self_cancel;  /* -1 not yet, else the bool returned */
    atomic_int cancelled_in; /* the run that cancelled */
    /* Optional: run 0 counts `entered` down, then waits for `gate`. */
    fl_test_latch_t *entered, *gate;
    /* Optional: also counts into the endpoint's serial check. */
    bool serial;
    /* Optional: run k also sleeps until until_ns[k] (when not 0). */
    uint64_t until_ns[MAX_RUNS];
    /* Optional: a run k whose sentinel_ms[k] > 0 queues sentinel_arm,
     * which schedules a one-shot ticker_run of `sentinel` sentinel_ms[k]
     * later. Queued from inside the run, it runs after the run's message,
     * so after the task armed its next run: a run due no later than the
     * sentinel comes before it (the timers fire in deadline order into
     * the mailbox), whatever the load. */
    struct ticker *sentinel;
    int64_t sentinel_ms[MAX_RUNS];
    int sentinel_of; /* main thread: the run whose sentinel is queued */
} ticker_t;

static inline void ticker_init(ticker_t *k, fl_rpc_endpoint_t *ep,
                               uint64_t runs)
{
    memset(k, 0, sizeof *k);
    k->ep = ep;
    k->ran = fl_test_latch_alloc(runs);
    k->ended = fl_test_latch_alloc(1);
    k->cancel_at = -1;
    atomic_init(&k->self, NULL);
    atomic_init(&k->self_cancel, -1);
}

static inline void ticker_fini(ticker_t *k)
{
    fl_test_latch_free(k->ran);
    fl_test_latch_free(k->ended);
}

static inline void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static inline void ticker_run(fl_rpc_endpoint_t *ep, void *state, void *arg);

/* Schedules the sentinel of the ticker's last run (see ticker_t). A
 * refusal shows as the sentinel's `ran` latch not reached. */
static inline void sentinel_arm(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)state;
    ticker_t *k = arg;
    (void)fl_rpc_schedule_run_async(ep, ticker_run, k->sentinel, NULL,
                                    k->sentinel_ms[k->sentinel_of], NULL);
}

/* Sleeps until the clock reads at least until_ns. */
static inline void sleep_until_ns(uint64_t until_ns)
{
    for (uint64_t now = fl_clock_now_ns(); now < until_ns;
         now = fl_clock_now_ns())
        sleep_ms((int64_t)((until_ns - now + NS_PER_MS - 1) / NS_PER_MS));
}

static inline void ticker_run(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    ticker_t *k = arg;
    if (atomic_exchange(&k->inside, 1) != 0)
        atomic_fetch_add(&k->overlaps, 1);
    if (k->serial)
        serial_enter(state);
    if (!fl_rpc_in_main_thread(ep) || ep != k->ep)
        atomic_fetch_add(&k->off_main, 1);
    int n = atomic_load(&k->runs);
    if (n < MAX_RUNS) {
        k->start_ns[n] = fl_clock_now_ns();
        if (k->slow_ms[n] > 0)
            sleep_ms(k->slow_ms[n]);
        if (k->until_ns[n] != 0)
            sleep_until_ns(k->until_ns[n]);
    }
    if (n == 0 && k->entered != NULL) {
        fl_test_latch_count_down(k->entered);
        (void)fl_test_latch_wait(k->gate, WAIT_MS);
    }
    fl_rpc_scheduled_t *self = atomic_load(&k->self);
    if (n >= k->cancel_at && k->cancel_at >= 0 && self != NULL &&
        atomic_load(&k->self_cancel) < 0) {
        atomic_store(&k->cancelled_in, n);
        atomic_store(&k->self_cancel, fl_rpc_scheduled_cancel(self));
    }
    if (n < MAX_RUNS)
        k->end_ns[n] = fl_clock_now_ns();
    if (n < MAX_RUNS && k->sentinel != NULL && k->sentinel_ms[n] > 0) {
        k->sentinel_of = n;
        (void)fl_rpc_run_async(ep, sentinel_arm, k, NULL);
    }
    if (k->serial)
        serial_leave(state);
    atomic_store(&k->inside, 0);
    atomic_fetch_add(&k->runs, 1);
    fl_test_latch_count_down(k->ran);
}

static inline void ticker_free(void *arg)
{
    ticker_t *k = arg;
    atomic_fetch_add(&k->freed, 1);
    fl_test_latch_count_down(k->ended);
}

/* Waits until the task ended (arg_free ran) and checks it ran `runs`
 * times, freed once, never overlapped and always on the main thread. */
static inline void ticker_expect_ended(ticker_t *k, int runs)
{
    wait_latch(k->ended);
    assert_int_equal(1, atomic_load(&k->freed));
    assert_int_equal(runs, atomic_load(&k->runs));
    assert_int_equal(0, atomic_load(&k->overlaps));
    assert_int_equal(0, atomic_load(&k->off_main));
}

/* ms from a to b (b >= a expected; negative if not). */
static inline int64_t ms_between(uint64_t a, uint64_t b)
{
    return b >= a ? (int64_t)((b - a) / NS_PER_MS)
                  : -(int64_t)((a - b) / NS_PER_MS) - 1;
}

/* Fails unless lo <= v < hi. */
static inline void expect_in(const char *what, int64_t v, int64_t lo,
                             int64_t hi)
{
    if (v < lo || v >= hi)
        fail_msg("%s: %lld ms, want [%lld, %lld)", what, (long long)v,
                 (long long)lo, (long long)hi);
}

/* Fails unless run `run` of k started before run `s` of `sentinel` (both
 * ran on the main thread, so their start times are in the order they
 * ran). */
static inline void expect_before(const char *what, const ticker_t *k, int run,
                                 const ticker_t *sentinel, int s)
{
    if (k->start_ns[run] >= sentinel->start_ns[s])
        fail_msg(
            "%s: run %d started %lld ms after the sentinel", what, run,
            (long long)ms_between(sentinel->start_ns[s], k->start_ns[run]));
}

/* A barrier through the main thread: everything queued to ep from this
 * thread before it has run when it returns. */
static inline void main_barrier(fl_rpc_endpoint_t *ep)
{
    ticker_t k;
    ticker_init(&k, ep, 1);
    assert_fl_ok(fl_rpc_run_async(ep, ticker_run, &k, ticker_free));
    wait_latch(k.ran);
    ticker_fini(&k);
}

/* kind 1: fl_rpc_schedule_run_at_fixed_rate, 2: _with_fixed_delay; the
 * cases that hold for both periodic kinds loop over them. */
static inline int schedule_kind(int kind, fl_rpc_endpoint_t *ep,
                                fl_rpc_run_cb fn, void *arg,
                                fl_free_cb arg_free, int64_t initial_ms,
                                int64_t period_ms, fl_rpc_scheduled_t **out)
{
    if (kind == 1)
        return fl_rpc_schedule_run_at_fixed_rate(ep, fn, arg, arg_free,
                                                 initial_ms, period_ms, out);
    return fl_rpc_schedule_run_with_fixed_delay(ep, fn, arg, arg_free,
                                                initial_ms, period_ms, out);
}

#endif /* SCHEDULE_FIXTURE_H */
