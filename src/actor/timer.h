/*
 * src/actor/timer.h - the system's timers: fl__timer_t (message, callback
 * and future-timeout timers), the heap and id table (fl__timers_t, which
 * the system embeds), and the calls the rest of the runtime makes on them.
 *
 * Included by the actor layer and by rpc (fl__timer_cancel_id). The design
 * is in timer.c.
 */
#ifndef FL_ACTOR_TIMER_H
#define FL_ACTOR_TIMER_H

#include <pthread.h>

#include <fling/actor.h>
#include <fling/future.h>

#include "common/internal.h"

enum fl__timer_kind { FL__T_MSG, FL__T_CB, FL__T_FUTURE };
enum fl__timer_st {
    FL__TS_NEW,      /* created, not armed */
    FL__TS_HEAP,     /* armed */
    FL__TS_FIRING,   /* its callback is running on the timer thread */
    FL__TS_CANCELED, /* cancelled before it was armed */
    FL__TS_FIRED     /* a future timeout fired; the canceller frees it */
};

typedef struct fl__timer {
    uint64_t deadline; /* ns, monotonic */
    uint64_t seq;      /* FIFO among equal deadlines */
    uint64_t period;   /* ns; 0 = one-shot */
    uint64_t id;       /* public id (0 for internal timers) */
    size_t heap_idx;
    uint8_t kind, st;
    bool cancel_req; /* cancelled while firing */
    bool in_future;  /* in its future's block (fl__timer_new_future_in) */
    union {
        struct {
            fl_msg_t *msg;
            uint64_t to;
        } m;
        struct {
            fl_timer_cb cb;
            void *arg;
        } c;
        struct {
            fl_future_t *f;
            int64_t ms;  /* the timeout, for the failure message */
            uint64_t to; /* an ask's recipient, for the message; 0: none */
        } fut;
    } u;
    struct fl__timer *hnext; /* id hash chain */
} fl__timer_t;

/* Everything here is under hlk (the timer thread and every arming or
 * cancelling thread), but running (under mu) and thread/started (the
 * owner's). mu and cv are the thread's sleep (timer.c). */
typedef struct fl__timers {
    _Atomic bool hlk; /* spin lock of the heap and the ids */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started, stop;
    bool running; /* the thread has started (under mu) */
    fl__timer_t **heap;
    size_t len, cap;
    uint64_t seq, next_id;
    uint64_t sleep_until; /* deadline the thread sleeps to; UINT64_MAX = none */
    fl__timer_t **ids;    /* hash table of public timers by id */
    size_t nids, idcap;
} fl__timers_t;

/* Start sys's timer thread; returns once it runs. FL_OK or FL_ESYSTEM.
 * Blocks for the thread's start only. */
int fl__timers_start(fl_system_t *sys);
/* Stop the thread and join it; drop every timer (future timeouts fail
 * with FL_ECLOSED). BLOCKS until the timer thread has returned. */
void fl__timers_shutdown(fl_system_t *sys);
/* Timers armed and not yet fired or cancelled. Any thread. */
uint64_t fl__timers_pending(fl_system_t *sys);

/* Timers of this many ms or more are timed from the coarse clock. */
#define FL__TIMER_COARSE_MS 1000

/*
 * The deadline of a timer due ms (>= 0) from now, never earlier: from the
 * precise clock (fl_clock_now_ns); from FL__TIMER_COARSE_MS on, when the
 * kernel's tick is at most 4 ms, from the coarse clock plus
 * FL__COARSE_SLACK_NS, so at most that much later (1% of such a delay).
 * Saturates. Any thread.
 */
uint64_t fl__timer_deadline_after(int64_t ms);

/* A timeout timer for f (one reference taken), not armed; NULL when out
 * of memory. to: the actor an ask went to, named when it fires (0: f is
 * no ask). */
fl__timer_t *fl__timer_new_future(fl_future_t *f, int64_t ms, uint64_t to);
/* fl__timer_new_future in the timer room of f (fl__future_timer_slot,
 * not NULL), which f is NOT YET SHARED: used once, by the ask that made
 * f. Never NULL. */
fl__timer_t *fl__timer_new_future_in(fl_future_t *f, int64_t ms, uint64_t to);
/* Free t, never armed, and its reference to the future. */
void fl__timer_discard(fl__timer_t *t);
/* Arm t (CONSUMED) on sys's timer thread. FL_OK, or FL_ECLOSED / FL_ENOMEM
 * after failing t's future. Any thread; not blocking. */
int fl__timer_arm(fl_system_t *sys, fl__timer_t *t);
/* Cancel an internal timer (called exactly once; see timer.c). */
void fl__timer_cancel_internal(fl_system_t *sys, fl__timer_t *t);
/* fl_timer_cancel that also says whether the callback is running now (it
 * then finishes that run; otherwise, on FL_OK, it never runs again). */
int fl__timer_cancel_id(fl_system_t *sys, fl_timer_id_t id, bool *firing);

#endif /* FL_ACTOR_TIMER_H */
