/*
 * flow_fixture.h - what the flow_*_test.c programs share: a system with a
 * mailbox bound, the sink (an actor that can be held in a gate, the test
 * opening it, and checks each sender's sequence), the flooder (an actor
 * that sends numbered messages to the sink, k per message), and waits on
 * the flow statistics.
 *
 * Header-only (static inline) because each program is built from one file.
 */
#ifndef FLOW_FIXTURE_H
#define FLOW_FIXTURE_H

#include "actor_fixture.h"

#include <time.h>

enum flow_msg {
    FLOW_GATE = 100, /* to a sink: hold here until the gate opens */
    FLOW_SEQ,        /* to a sink: flow_seq_t */
    FLOW_INT,        /* to a sink or a flooder: an int, recorded */
    FLOW_GO,         /* to a flooder: start sending */
    FLOW_CONT        /* to a flooder, from itself: send the next k */
};

#define FLOW_MAX_SENDERS 8
#define FLOW_MAX_INTS 16

/* A system of `workers` workers whose mailboxes hold `bound` messages
 * (0: FL_MAILBOX_DEFAULT); fails the test on error. */
/* A bound under which a mailbox counts every message exactly (flow.h,
 * "Sampled count": bounds from 2048 count a sample). Tests that assert a
 * count give their actors such a bound. */
#define FLOW_EXACT_BOUND 1024u

static inline fl_system_t *flow_system(unsigned workers, uint32_t bound)
{
    fl_system_opts_t o = {0};
    o.workers = workers;
    o.mailbox_bound = bound;
    fl_system_t *sys = NULL;
    assert_fl_ok(fl_system_alloc(&o, &sys));
    return sys;
}

static inline fl_system_stats_t flow_stats(fl_system_t *sys)
{
    fl_system_stats_t st;
    assert_fl_ok(fl_system_stats(sys, &st));
    return st;
}

static inline uint32_t flow_queued(fl_system_t *sys, fl_actor_ref_t ref)
{
    uint32_t q = 0;
    assert_fl_ok(fl_actor_queued(sys, ref, &q));
    return q;
}

/* Polls cond every 100 us until it holds; fails the test with the message
 * (printf arguments) after WAIT_MS. The runtime gives no event for "an
 * actor is muted": its statistics are the event. */
#define FLOW_WAIT_FOR(cond, ...)                                               \
    do {                                                                       \
        uint64_t flow_t0_ = fl_clock_now_ns();                                 \
        while (!(cond)) {                                                      \
            if (fl_test_ms_since(flow_t0_) > WAIT_MS)                          \
                fail_msg(__VA_ARGS__);                                         \
            nanosleep(&(struct timespec){0, 100000}, NULL);                    \
        }                                                                      \
    } while (0)

/* ---- the sink ------------------------------------------------------------ */

typedef struct flow_seq {
    uint32_t sender, seq;
} flow_seq_t;

typedef struct sink {
    fl_system_t *sys;
    fl_test_latch_t *gate;    /* FLOW_GATE holds until counted down */
    fl_test_latch_t *entered; /* counted down when held in the gate */
    fl_test_latch_t *done;    /* counted down at the `expect`th FLOW_SEQ */
    fl_test_latch_t *got_int; /* counted down per FLOW_INT (may be NULL) */
    uint64_t expect;
    atomic_int gate_timeouts;
    atomic_int order_errors;
    char error[160];        /* the first order error, before order_errors */
    atomic_uint max_queued; /* its own fl_actor_queued at each FLOW_SEQ */
    atomic_int nints;
    bool exact; /* its bound counts every message (flow.h: under 2048) */
    /* The sink's thread only (read once the test has synchronised). */
    uint64_t seqs;
    uint32_t next[FLOW_MAX_SENDERS];
    int ints[FLOW_MAX_INTS];
} sink_t;

static inline void sink_seq(sink_t *s, fl_actor_ref_t self, fl_msg_t *msg)
{
    uint32_t q = 0;
    if (fl_actor_queued(s->sys, self, &q) == FL_OK) {
        unsigned m = atomic_load(&s->max_queued);
        while (q > m && !atomic_compare_exchange_weak(&s->max_queued, &m, q)) {
        }
    }
    flow_seq_t d;
    memcpy(&d, fl_msg_data(msg), sizeof d);
    if (d.sender >= FLOW_MAX_SENDERS || d.seq != s->next[d.sender]) {
        if (atomic_load(&s->order_errors) == 0)
            snprintf(s->error, sizeof s->error,
                     "sender %u: got %u, expected %u", d.sender, d.seq,
                     d.sender < FLOW_MAX_SENDERS ? s->next[d.sender] : 0);
        atomic_fetch_add(&s->order_errors, 1);
        return;
    }
    s->next[d.sender] = d.seq + 1;
    if (++s->seqs == s->expect && s->done != NULL)
        fl_test_latch_count_down(s->done);
}

static inline void sink_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                                fl_msg_t *msg)
{
    (void)sys;
    sink_t *s = st;
    switch (fl_msg_type(msg)) {
    case FLOW_GATE:
        fl_test_latch_count_down(s->entered);
        /* Longer than the test's own waits, which fail first. */
        if (fl_test_latch_wait(s->gate, 2 * WAIT_MS) != 0)
            atomic_fetch_add(&s->gate_timeouts, 1);
        break;
    case FLOW_SEQ:
        sink_seq(s, self, msg);
        break;
    default: {
        int n = atomic_load(&s->nints);
        if (n < FLOW_MAX_INTS)
            s->ints[n] = msg_get_int(msg);
        atomic_store(&s->nints, n + 1);
        if (s->got_int != NULL)
            fl_test_latch_count_down(s->got_int);
    }
    }
}

/* Spawns a sink on s (initialised here) whose mailbox holds `bound`
 * messages (0: the system's), expecting `expect` FLOW_SEQ messages. */
static inline fl_actor_ref_t sink_spawn(fl_system_t *sys, sink_t *s,
                                        uint32_t bound, uint64_t expect)
{
    memset(s, 0, sizeof *s);
    s->sys = sys;
    s->gate = fl_test_latch_alloc(1);
    s->entered = fl_test_latch_alloc(1);
    s->done = fl_test_latch_alloc(1);
    s->expect = expect;
    s->exact = bound != 0 && bound < 2 * FLOW_EXACT_BOUND;
    fl_actor_opts_t o = {0};
    o.mailbox_bound = bound;
    fl_actor_ref_t ref;
    assert_fl_ok(fl_actor_spawn(sys, sink_receive, s, &o, &ref));
    return ref;
}

/* Holds the sink in its gate and waits until it is held: its mailbox
 * then counts the gate message until the gate opens: 1 when its count is
 * exact, else the message's weight, 0 or up to 8 (a sampled count). */
static inline void sink_hold(fl_system_t *sys, fl_actor_ref_t ref, sink_t *s)
{
    assert_fl_ok(fl_tell(sys, ref, fl_msg_alloc(FLOW_GATE, 0)));
    fl_test_latch_await(s->entered);
    if (s->exact)
        assert_int_equal(1, flow_queued(sys, ref));
    else
        assert_in_range(flow_queued(sys, ref), 0, 8);
}

static inline void sink_open(sink_t *s)
{
    fl_test_latch_count_down(s->gate);
}

/* Asserts every sender's sequence ran 0..n-1 with nothing lost or
 * repeated: call after s->done was reached. */
static inline void sink_assert_seqs(sink_t *s, unsigned nsenders, uint32_t n)
{
    if (atomic_load(&s->order_errors) != 0)
        fail_msg("%d order error(s), the first: %s",
                 atomic_load(&s->order_errors), s->error);
    assert_int_equal(0, atomic_load(&s->gate_timeouts));
    for (unsigned i = 0; i < nsenders; i++)
        assert_int_equal(n, s->next[i]);
    assert_int_equal((uint64_t)nsenders * n, s->seqs);
}

static inline void sink_free(sink_t *s)
{
    fl_test_latch_free(s->gate);
    fl_test_latch_free(s->entered);
    fl_test_latch_free(s->done);
    fl_test_latch_free(s->got_int);
}

/* ---- the flooder --------------------------------------------------------- */

typedef struct flooder {
    fl_system_t *sys;
    fl_actor_ref_t to;
    uint32_t id, k, n;
    fl_test_latch_t *got_int; /* counted down per FLOW_INT (may be NULL) */
    atomic_int ints;
    atomic_int errors;
    uint32_t sent; /* the flooder's thread only */
} flooder_t;

static inline void flooder_receive(fl_system_t *sys, fl_actor_ref_t self,
                                   void *st, fl_msg_t *msg)
{
    flooder_t *f = st;
    if (fl_msg_type(msg) == FLOW_INT) {
        atomic_fetch_add(&f->ints, 1);
        if (f->got_int != NULL)
            fl_test_latch_count_down(f->got_int);
        return;
    }
    for (uint32_t i = 0; i < f->k && f->sent < f->n; i++, f->sent++) {
        fl_msg_t *m = fl_msg_alloc(FLOW_SEQ, sizeof(flow_seq_t));
        flow_seq_t d = {f->id, f->sent};
        if (m == NULL) {
            atomic_fetch_add(&f->errors, 1);
            return;
        }
        memcpy(fl_msg_data(m), &d, sizeof d);
        if (fl_tell(sys, f->to, m) != FL_OK)
            atomic_fetch_add(&f->errors, 1);
    }
    if (f->sent < f->n &&
        fl_tell(sys, self, fl_msg_alloc(FLOW_CONT, 0)) != FL_OK)
        atomic_fetch_add(&f->errors, 1);
}

/* Spawns a flooder on f (initialised here) that, once told FLOW_GO, sends
 * n numbered messages to `to`, k per message it handles. */
static inline fl_actor_ref_t flooder_spawn(fl_system_t *sys, flooder_t *f,
                                           fl_actor_ref_t to, uint32_t id,
                                           uint32_t k, uint32_t n)
{
    memset(f, 0, sizeof *f);
    f->sys = sys;
    f->to = to;
    f->id = id;
    f->k = k;
    f->n = n;
    fl_actor_ref_t ref;
    assert_fl_ok(fl_actor_spawn(sys, flooder_receive, f, NULL, &ref));
    return ref;
}

#endif /* FLOW_FIXTURE_H */
