/*
 * actor_fixture.h - what the actor_*_test.c programs share: stopping and
 * awaiting actors, the probe actor that records its hooks and messages, a
 * tracked free/exec/callback that counts its runs, no-op actors, the
 * checks that a stale reference is unreachable, and the responder actor
 * that answers asks as each message type says.
 *
 * Header-only (static inline) because each program is built from one file.
 */
#ifndef ACTOR_FIXTURE_H
#define ACTOR_FIXTURE_H

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

static inline int msg_get_int(fl_msg_t *m)
{
    if (fl_msg_size(m) < sizeof(int))
        return -1;
    return *(int *)fl_msg_data(m);
}

/* Waits until the latch has counted down to `left`. */
static inline void wait_latch_count(fl_test_latch_t *l, uint64_t left)
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
static inline fl_future_t *termination_of(fl_system_t *sys, fl_actor_ref_t ref)
{
    fl_future_t *t = NULL;
    assert_fl_ok(fl_actor_termination(sys, ref, &t));
    assert_non_null(t);
    return t;
}

/* Waits for a termination future, asserts it succeeded, releases it. */
static inline void wait_terminated(fl_future_t *t)
{
    assert_fl_ok(fl_future_wait(t, WAIT_MS));
    assert_null(fl_future_value(t));
    fl_future_release(t);
}

/* Stops a live actor and waits until it has terminated. */
static inline void stop_and_wait(fl_system_t *sys, fl_actor_ref_t ref)
{
    fl_future_t *t = termination_of(sys, ref);
    assert_fl_ok(fl_actor_stop(sys, ref));
    wait_terminated(t);
}

static inline void end_system(fl_system_t *sys)
{
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
}

/* A counting arg_free. */
static inline void count_free(void *p)
{
    atomic_fetch_add((atomic_int *)p, 1);
}

/* An arg that records whether its function ran or it was freed instead. */
typedef struct tracked {
    atomic_int ran;
    atomic_int freed;
    fl_test_latch_t *freed_latch; /* optional, counted down on free */
} tracked_t;

static inline void tracked_free(void *arg)
{
    tracked_t *t = arg;
    atomic_fetch_add(&t->freed, 1);
    if (t->freed_latch)
        fl_test_latch_count_down(t->freed_latch);
}

static inline void tracked_exec(fl_system_t *sys, fl_actor_ref_t self, void *st,
                                void *arg)
{
    (void)sys;
    (void)self;
    (void)st;
    atomic_fetch_add(&((tracked_t *)arg)->ran, 1);
}

static inline void tracked_future_cb(fl_future_t *f, void *arg)
{
    (void)f;
    atomic_fetch_add(&((tracked_t *)arg)->ran, 1);
}

/* Termination of a ref that names no live actor "fails at once": either the
 * call returns FL_EUNREACHABLE or it gives an already failed future. */
static inline void assert_termination_unreachable(fl_system_t *sys,
                                                  fl_actor_ref_t ref)
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

static inline void probe_init(probe_t *p, fl_system_t *sys)
{
    memset(p, 0, sizeof *p);
    p->sys = sys;
    p->main_thread = pthread_self();
}

static inline void probe_start(fl_system_t *sys, fl_actor_ref_t self, void *st)
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

static inline void probe_stop(fl_system_t *sys, fl_actor_ref_t self, void *st)
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

static inline void probe_receive(fl_system_t *sys, fl_actor_ref_t self,
                                 void *st, fl_msg_t *msg)
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

static inline fl_actor_ref_t spawn_probe(fl_system_t *sys, probe_t *p,
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
static inline fl_actor_ref_t spawn_probe_told(fl_system_t *sys, probe_t *p,
                                              int n)
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
static inline fl_actor_ref_t spawn_blocked_probe(fl_system_t *sys, probe_t *p,
                                                 int v)
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
static inline fl_actor_ref_t spawn_stopped_probe(fl_system_t *sys, probe_t *p)
{
    probe_init(p, sys);
    fl_actor_ref_t a = spawn_probe(sys, p, NULL);
    stop_and_wait(sys, a);
    return a;
}

/* Frees the latches a test gave p (those it left NULL are skipped). */
static inline void probe_free_latches(probe_t *p)
{
    fl_test_latch_free(p->got);
    fl_test_latch_free(p->stop_latch);
    fl_test_latch_free(p->block);
    fl_test_latch_free(p->blocked);
}

static inline void noop_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                                fl_msg_t *msg)
{
    (void)sys;
    (void)self;
    (void)st;
    (void)msg;
}

static inline void noop_exec(fl_system_t *sys, fl_actor_ref_t self, void *st,
                             void *arg)
{
    (void)sys;
    (void)self;
    (void)st;
    (void)arg;
}

static inline void noop_timer(fl_system_t *sys, void *arg)
{
    (void)sys;
    (void)arg;
}

/* Spawns an actor (no state, no options) that ignores its messages. */
static inline fl_actor_ref_t spawn_noop(fl_system_t *sys)
{
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, noop_receive, NULL, NULL, &a));
    return a;
}

/* Spawns a noop actor and stops it: returns its ref, now stale. */
static inline fl_actor_ref_t spawn_stopped_noop(fl_system_t *sys)
{
    fl_actor_ref_t a = spawn_noop(sys);
    stop_and_wait(sys, a);
    return a;
}

/* Asks ref, which names no live actor, with timeout_ms: the call succeeds
 * and gives a future already failed with FL_EUNREACHABLE. */
static inline void assert_ask_unreachable(fl_system_t *sys, fl_actor_ref_t ref,
                                          int64_t timeout_ms)
{
    fl_future_t *f = NULL;
    assert_fl_ok(fl_ask(sys, ref, fl_test_msg_int(1, 1), timeout_ms, &f));
    assert_true(fl_future_done(f));
    assert_fl(FL_EUNREACHABLE, fl_future_error(f));
    fl_future_release(f);
}

/* ---- the responder: an actor that answers asks ---------------------- */

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

static inline void responder_receive(fl_system_t *sys, fl_actor_ref_t self,
                                     void *st, fl_msg_t *msg)
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
static inline fl_actor_ref_t spawn_responder(fl_system_t *sys, responder_t *r,
                                             uint64_t handled)
{
    if (handled > 0)
        r->handled = fl_test_latch_alloc(handled);
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, responder_receive, r, NULL, &a));
    return a;
}

/* Ends the system, then frees r's latches. */
static inline void end_responder_system(fl_system_t *sys, responder_t *r)
{
    end_system(sys);
    fl_test_latch_free(r->handled);
    fl_test_latch_free(r->go);
}

/* Waits until r has handled its T_TAKE request; returns the reply future
 * it took. */
static inline fl_future_t *wait_taken(responder_t *r)
{
    fl_test_latch_await(r->handled);
    fl_future_t *taken = atomic_load(&r->taken);
    assert_non_null(taken);
    return taken;
}

#endif /* ACTOR_FIXTURE_H */
