/*
 * gate_fixture.h - the "slow" endpoint of the flow control tests
 * (inbound_test.c, remote_bound_test.c): CalcGateway.Add behind a gate.
 * Its handler waits until the gate opens (or admits it), then records the
 * v of each call in the order handled, and the most messages its
 * endpoint's mailbox held (fl_actor_queued) at the start of a call, and
 * counts a latch down.
 *
 * Header-only (static inline), like wire_client.h, whose calc endpoint it
 * builds on. gate_* helpers belong to the test's thread.
 */
#ifndef GATE_FIXTURE_H
#define GATE_FIXTURE_H

#include "wire_client.h"

#include "rpc/endpoint.h"

/* The slow endpoint's state (calc first: calc_on_start takes it). */
typedef struct slow {
    calc_t calc;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;         /* under mu: the gate */
    size_t admitted;   /* under mu: calls let through the shut gate */
    size_t passed;     /* under mu: calls past the gate */
    size_t waiting;    /* under mu: calls waiting at the gate */
    int64_t *seen;     /* under mu: the v of each handled call, cap of them */
    size_t cap;        /* fixed by gate_init */
    size_t nseen;      /* under mu: calls handled (also past cap) */
    uint32_t max_held; /* under mu: the most the mailbox held */
    fl_test_latch_t *all; /* counted down per call */
} slow_t;

/* Add behind the gate: records v in order, replies v + 1 and the text. */
static inline void slow_add(Flhostile__CalcGateway_Service *svc,
                            const Flhostile__Num *in,
                            Flhostile__Num_Closure closure, void *closure_data)
{
    (void)svc;
    slow_t *s = fl_rpc_call_state(closure_data);
    uint32_t held = 0;
    fl_rpc_endpoint_t *ep = fl_rpc_call_endpoint(closure_data);
    (void)fl_actor_queued(fl_system_current(), ep->actor, &held);
    pthread_mutex_lock(&s->mu);
    if (held > s->max_held)
        s->max_held = held;
    s->waiting++;
    pthread_cond_broadcast(&s->cv);
    while (!s->open && s->passed >= s->admitted)
        pthread_cond_wait(&s->cv, &s->mu);
    s->waiting--;
    s->passed++;
    if (s->nseen < s->cap)
        s->seen[s->nseen] = in->v;
    s->nseen++;
    pthread_mutex_unlock(&s->mu);
    fl_test_latch_count_down(s->all);
    Flhostile__Num r = FLHOSTILE__NUM__INIT;
    r.v = in->v + 1;
    r.text = in->text;
    closure(&r, closure_data);
}

static inline void slow_depth(Flhostile__CalcGateway_Service *svc,
                              const Flhostile__Chain *in,
                              Flhostile__Num_Closure closure,
                              void *closure_data)
{
    calc_depth(svc, in, closure, closure_data);
}

/* The slow endpoint's one service (static: it outlives the endpoint). */
static inline ProtobufCService *const *slow_services(void)
{
    static Flhostile__CalcGateway_Service calc =
        FLHOSTILE__CALC_GATEWAY__INIT(slow_);
    static ProtobufCService *const services[1] = {&calc.base};
    return services;
}

/* Readies s (any content) for cap calls, the gate shut; gate_fini undoes
 * it. */
static inline void gate_init(slow_t *s, size_t cap)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    fl_test_cond_init(&s->cv);
    s->seen = calloc(cap, sizeof *s->seen);
    assert_non_null(s->seen);
    s->cap = cap;
    s->all = fl_test_latch_alloc(cap);
}

static inline void gate_fini(slow_t *s)
{
    fl_test_latch_free(s->all);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->seen);
    s->seen = NULL;
}

/* Opens the gate: every call waiting and to come goes through. */
static inline void gate_open(slow_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->open = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Lets n more calls through the shut gate. */
static inline void gate_admit(slow_t *s, size_t n)
{
    pthread_mutex_lock(&s->mu);
    s->admitted += n;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Waits (WAIT_MS) until n calls have passed the gate and one waits at
 * it. */
static inline void gate_wait_stuck(slow_t *s, size_t n)
{
    struct timespec ts = fl_test_deadline(WAIT_MS);
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while ((s->passed < n || s->waiting == 0) && rc == 0)
        rc = pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    size_t passed = s->passed, waiting = s->waiting;
    pthread_mutex_unlock(&s->mu);
    if (passed < n || waiting == 0)
        fail_msg("%zu calls past the gate and %zu waiting within %d ms, "
                 "want %zu and one",
                 passed, waiting, WAIT_MS, n);
}

/* The calls handled so far. */
static inline size_t gate_seen(slow_t *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->nseen;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Fails unless exactly n calls were handled, carrying 0 .. n - 1 in that
 * order. */
static inline void gate_expect_in_order(slow_t *s, size_t n)
{
    pthread_mutex_lock(&s->mu);
    size_t seen = s->nseen;
    int64_t bad = -1;
    size_t at = 0;
    for (size_t i = 0; i < seen && i < s->cap && bad < 0; i++)
        if (s->seen[i] != (int64_t)i) {
            bad = s->seen[i];
            at = i;
        }
    pthread_mutex_unlock(&s->mu);
    assert_int_equal(n, seen);
    if (bad >= 0)
        fail_msg("call %lld handled as number %zu, want in order",
                 (long long)bad, at);
}

#endif /* GATE_FIXTURE_H */
