/*
 * service_fixture.h - what the service_*_test.c programs share: a task
 * that runs a service call on an endpoint's main thread, and the
 * scheduled executor's recording tasks (runs, their times, a sentinel
 * that proves no further run came).
 *
 * Header-only (static inline) because each program is built from one file.
 */
#ifndef SERVICE_FIXTURE_H
#define SERVICE_FIXTURE_H

#include "rpc_fixture.h"

#include <time.h>

/* A run_async task that runs fn(svc) on the main thread and records rc. */
typedef struct on_main {
    int (*fn)(fl_rpc_service_t *svc);
    atomic_int rc;
    fl_test_latch_t *done;
} on_main_t;

static inline void on_main_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)state;
    on_main_t *m = arg;
    atomic_store(&m->rc, m->fn(fl_rpc_endpoint_service(ep)));
    fl_test_latch_count_down(m->done);
}
/* What the scheduled executor's tasks saw. */
#define MAX_RUNS 64

typedef struct sched_ctx {
    atomic_int runs;
    uint64_t start_ns[MAX_RUNS];
    uint64_t end_ns[MAX_RUNS];
    int64_t work_ms;             /* time each run takes */
    int cancel_at;               /* the run that cancels itself; 0 none */
    _Atomic fl_rpc_task_id_t id; /* published after scheduling */
    atomic_int cancel_rc;
    atomic_int cancelled;
    fl_test_latch_t *done; /* counted down by every run */
} sched_ctx_t;

static inline void sched_ctx_init(sched_ctx_t *c, uint64_t runs_to_wait)
{
    memset(c, 0, sizeof *c);
    atomic_init(&c->cancel_rc, -1);
    c->done = fl_test_latch_alloc(runs_to_wait);
}

static inline void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static inline void sched_task(fl_rpc_service_t *svc, void *arg)
{
    sched_ctx_t *c = arg;
    int n = atomic_load(&c->runs);
    if (n < MAX_RUNS)
        c->start_ns[n] = fl_clock_now_ns();
    if (c->work_ms > 0)
        sleep_ms(c->work_ms); /* simulated work, not for ordering */
    if (n < MAX_RUNS)
        c->end_ns[n] = fl_clock_now_ns();
    if (c->cancel_at > 0 && n + 1 >= c->cancel_at &&
        !atomic_load(&c->cancelled)) {
        fl_rpc_task_id_t id = atomic_load(&c->id);
        if (id != 0) {
            atomic_store(&c->cancel_rc, fl_rpc_cancel(svc, id));
            atomic_store(&c->cancelled, 1);
        }
    }
    atomic_fetch_add(&c->runs, 1);
    fl_test_latch_count_down(c->done);
}

/* A one-shot task recording how many runs a sched_ctx had by then. */
typedef struct sentinel {
    sched_ctx_t *watched;
    atomic_int seen;
    fl_test_latch_t *done;
} sentinel_t;

static inline void sentinel_task(fl_rpc_service_t *svc, void *arg)
{
    (void)svc;
    sentinel_t *s = arg;
    atomic_store(&s->seen, atomic_load(&s->watched->runs));
    fl_test_latch_count_down(s->done);
}

/* Asserts that c has no runs after now: one sentinel right away (it runs
 * on the timer thread after any run in progress) and one `later_ms` later
 * must see the same count. Returns that count. */
static inline int assert_no_more_runs(fl_rpc_service_t *svc, sched_ctx_t *c,
                                      int64_t later_ms)
{
    fl_test_latch_t *l = fl_test_latch_alloc(2);
    sentinel_t s1 = {.watched = c, .done = l};
    sentinel_t s2 = {.watched = c, .done = l};
    assert_fl_ok(fl_rpc_schedule(svc, sentinel_task, &s1, 0, NULL));
    assert_fl_ok(fl_rpc_schedule(svc, sentinel_task, &s2, later_ms, NULL));
    wait_latch(l);
    fl_test_latch_free(l);
    assert_int_equal(atomic_load(&s1.seen), atomic_load(&s2.seen));
    return atomic_load(&s1.seen);
}

static inline void noop_task(fl_rpc_service_t *svc, void *arg)
{
    (void)svc;
    (void)arg;
}

#endif /* SERVICE_FIXTURE_H */
