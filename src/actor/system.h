/*
 * src/actor/system.h - the actor system (struct fl_system: configuration,
 * actor slots, names, lifecycle, the scheduler and the timers it embeds),
 * the runtime's thread-locals, and the turn record of a worker's turn.
 *
 * Included by the actor layer; remote and rpc include it for the
 * thread-locals they use (fl__in_turn, fl__tls_flush, fl__tls_no_block).
 */
#ifndef FL_ACTOR_SYSTEM_H
#define FL_ACTOR_SYSTEM_H

#include <pthread.h>

#include <fling/actor.h>

#include "actor/actor_slot.h"
#include "actor/flow.h"
#include "actor/msg.h"
#include "actor/timer.h"
#include "common/internal.h"
#include "sched/sched.h"

typedef struct fl__name {
    char *name; /* borrowed from the actor's ext */
    uint64_t id;
    struct fl__name *next;
} fl__name_t;

struct fl_system {
    /* Read-mostly configuration. */
    unsigned batch;
    uint32_t max_actors;
    uint32_t mailbox_bound; /* the default of its actors */

    /* Actor slots: chunk table sized for max_actors; chunks allocated on
     * demand and published with release stores (take_slot in spawn.c). */
    _Atomic(fl__actor_t *) *chunks;
    void **chunk_mem; /* what was allocated (chunks are aligned in it) */
    uint32_t nchunks;

    /* Lifecycle: written by closers and by threads outside the runtime. */
    FL_ALIGNED(FL_CACHE_LINE) _Atomic bool closed;
    _Atomic uint64_t inflight; /* external threads inside tell/spawn */
    bool shut_down;            /* under lock: a shutdown has begun */
    bool shutdown_done;        /* under lock: ...and finished */

    /* Under lock: slots, names, termination, live count. */
    FL_ALIGNED(FL_CACHE_LINE) pthread_mutex_t lock;
    pthread_cond_t idle_cv; /* signalled when live reaches 0 */
    uint32_t high_water;    /* slots ever used */
    uint32_t free_head;     /* LIFO of reusable slots */
    uint64_t live;
    fl__name_t **names;
    size_t nnames, namecap;

    /* Counters: any thread, relaxed (statistics only). */
    _Atomic uint64_t spawned;
    _Atomic uint64_t dead_letters;

    /* The workers (its hot fields on lines of their own). */
    fl__sched_t sched;

    fl__timers_t timers;

    fl__flow_t flow;
};

/*
 * Thread-local identity of the calling thread. fl__tls_sys is the system
 * whose runtime thread this is (a worker, the timer thread, a claimed
 * turn), else NULL; fl__tls_actor the actor whose message runs now, else
 * 0. Written by their own thread only.
 */
extern _Thread_local fl_system_t *fl__tls_sys;
extern _Thread_local uint64_t fl__tls_actor;
/* Set on threads that must never block waiting (a service's I/O thread):
 * fl_future_wait refuses there with FL_EDEADLK like on a worker. */
extern _Thread_local bool fl__tls_no_block;

/*
 * The turn record of a worker thread: whether it runs a turn now, and the
 * sends its callback coalesced (deliver.c). Written by its own thread
 * only. Sends made in one callback to one target are chained here and
 * pushed with a single exchange when the target changes, after a batch,
 * and when the callback returns.
 */
typedef struct fl__turn {
    bool in_turn;
    uint32_t out_w;   /* the chain's weight (flow.h); apart from out_n, so
                         that gcc does not add the two as one vector */
    fl_system_t *sys; /* the worker's system, while in_turn */
    fl__actor_t *out_to;
    fl_msg_t *out_first, *out_last;
    unsigned out_n;
} fl__turn_t;

extern _Thread_local fl__turn_t fl__tls_turn;

/* True while the calling thread runs a worker's turn. Any thread. */
static inline bool fl__in_turn(void)
{
    return fl__tls_turn.in_turn;
}

/*
 * Output a callback defers to a message boundary. Code running in a
 * worker's turn (fl__in_turn()) may hold output back to write what
 * several messages produce with one system call (remote/conn_write.c: the
 * frames answers queue on a connection): it sets fl__tls_flush, and the worker
 * calls it after every message with `more` true while the actor has
 * another message already queued in this turn, false otherwise (the last
 * message of a turn, or an empty mailbox). The function clears
 * fl__tls_flush once it holds nothing back. Worker threads only.
 */
extern _Thread_local void (*fl__tls_flush)(bool more);

/* Push the sends t coalesced (deliver.c); t->out_to is not NULL. Only
 * out_to, out_n and out_w say whether a chain is held: out_first and
 * out_last are stale once it is pushed. Returns FL_OK. */
int fl__turn_push_out(fl__turn_t *t);

/* Slot lookup; NULL if the slot was never allocated. Any thread. */
static inline fl__actor_t *fl__slot(fl_system_t *sys, uint32_t slot)
{
    if (slot >= sys->max_actors)
        return NULL;
    /* Pairs with the release store of the chunk in take_slot (spawn.c). */
    fl__actor_t *c = atomic_load_explicit(&sys->chunks[slot >> FL__CHUNK_SHIFT],
                                          memory_order_acquire);
    return c ? &c[slot & (FL__CHUNK_SIZE - 1)] : NULL;
}

/* The live actor m is for (m->target), or NULL: gone, or stopping and m
 * is not a control message. Any thread. */
static inline fl__actor_t *fl__target_of(fl_system_t *sys, const fl_msg_t *m,
                                         bool control)
{
    uint64_t id = m->target;
    fl__actor_t *a = fl__slot(sys, FL__REF_SLOT(id));
    if (a == NULL)
        return NULL;
    /* Pairs with the release store of gstate in spawn. */
    uint64_t gs = atomic_load_explicit(&a->gstate, memory_order_acquire);
    return fl__ref_live(gs, id) && (FL__STATE(gs) == FL__A_LIVE || control)
               ? a
               : NULL;
}

/*
 * Threads outside this system's runtime are counted while they touch it
 * (fl__sys_enter returns true for them), so shutdown can wait for them
 * before freeing mailboxes; fl__sys_leave(sys, external) counts them out.
 */
static inline bool fl__sys_enter(fl_system_t *sys)
{
    if (fl__tls_sys == sys)
        return false;
    /* seq_cst pairs with the seq_cst store of closed in fl_system_close:
     * either the closer's shutdown sees us counted, or we see closed. */
    atomic_fetch_add_explicit(&sys->inflight, 1, memory_order_seq_cst);
    return true;
}

static inline void fl__sys_leave(fl_system_t *sys, bool external)
{
    /* Release pairs with the acquire load of inflight in
     * fl_system_shutdown: our accesses to the system come before its
     * teardown. */
    if (external)
        atomic_fetch_sub_explicit(&sys->inflight, 1, memory_order_release);
}

static inline bool fl__sys_closed(fl_system_t *sys)
{
    /* seq_cst pairs with the inflight increment in fl__sys_enter() and the
     * store in fl_system_close(). */
    return atomic_load_explicit(&sys->closed, memory_order_seq_cst);
}

#endif /* FL_ACTOR_SYSTEM_H */
