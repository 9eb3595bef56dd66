/*
 * src/actor/internal.h - the structures behind actor.h and future.h.
 * Private to the library (and its tests).
 */
#ifndef FL_ACTOR_INTERNAL_H
#define FL_ACTOR_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>

#include <fling/actor.h>
#include <fling/future.h>

#include "common/internal.h"
#include "common/pool.h"
#include "sched/mpscq.h"
#include "sched/runq.h"

/* ---- messages ---------------------------------------------------------- */

enum fl__msg_kind {
    FL__MSG_USER = 0, /* a user message (tell or ask) */
    FL__MSG_START,    /* run the start hook */
    FL__MSG_STOP,     /* wake the actor so it sees its stop request */
    FL__MSG_EXEC      /* run a function on the actor's thread */
};

/* Payload of an FL__MSG_EXEC message. */
typedef struct fl__exec {
    fl_exec_cb fn;
    void *arg;
    fl_free_cb arg_free;
} fl__exec_t;

/* The header in front of every message; the payload follows, 16-aligned. */
struct fl_msg {
    fl__qnode_t node;   /* mailbox link; first so casts stay trivial */
    uint64_t target;    /* id the sender addressed (slot and generation) */
    uint64_t sender;    /* id of the sending actor, 0 from outside */
    fl_future_t *reply; /* the asker's future (one reference) or NULL */
    uint32_t type;      /* user type */
    uint32_t size;      /* payload bytes */
    uint16_t kind;      /* enum fl__msg_kind */
    uint16_t cls;       /* block pool class, or FL__POOL_DIRECT */
    uint32_t flags;     /* FL__MF_* */
} FL_ALIGNED(16);

/*
 * A message that owes an answer by other means than an ask's future (an
 * RPC call from the wire owes one to its connection) has FL__MF_SETTLE set
 * and its payload starts with an fl__settle_fn. The runtime calls it
 * wherever it fails an unanswered ask: a dead letter (FL_EUNREACHABLE and
 * the reason), a receive callback that returned without taking the debt
 * (FL_ENOREPLY), a message freed unsent (FL_ECLOSED from a closed system,
 * else FL_ENOREPLY; `why` may be NULL). The function answers what is still
 * owed and marks it paid in the payload: it may be called more than once
 * for one message, and must not block.
 */
#define FL__MF_SETTLE 1u
typedef void (*fl__settle_fn)(fl_msg_t *m, int err, const char *why);

/* Run m's settle function if it has one (any thread). */
void fl__msg_settle(fl_msg_t *m, int err, const char *why);

fl_msg_t *fl__msg_alloc_kind(uint16_t kind, uint32_t type, size_t size);
/* A copy of m (not of one that owes: its FL__MF_SETTLE is not copied). */
fl_msg_t *fl__msg_clone(const fl_msg_t *m);
/* Frees any thread's message memory (no dead-letter handling). */
/* (fl_msg_free settles what a message owes: its ask, its exec argument.) */
void fl__msg_release_mem(fl_msg_t *m);

static inline void *fl__msg_payload(fl_msg_t *m)
{
    return (void *)(m + 1);
}

/* ---- actors -------------------------------------------------------------- */

/*
 * gstate: generation in the high 32 bits, state in the low bits. A reference
 * is valid while its generation equals the slot's and the state is not FREE.
 * The generation only changes (under sys->lock) when an actor finishes
 * stopping, so a CAS on gstate both checks the reference and changes state.
 */
enum fl__actor_state {
    FL__A_FREE = 0,   /* slot unused (or its actor has stopped) */
    FL__A_LIVE = 1,   /* running */
    FL__A_STOPREQ = 2 /* stop requested; stops at the next message boundary */
};
#define FL__GEN(gs) ((uint32_t)((gs) >> 32))
#define FL__STATE(gs) ((uint32_t)((gs)&3u))
#define FL__GS(gen, st) (((uint64_t)(gen) << 32) | (uint64_t)(st))
#define FL__REF_SLOT(id) ((uint32_t)((id)&0xffffffffu))
#define FL__REF_GEN(id) ((uint32_t)((id) >> 32))
#define FL__REF(gen, slot) (((uint64_t)(gen) << 32) | (uint64_t)(slot))

/* Rarely used parts of an actor, allocated only when needed. */
typedef struct fl__actor_ext {
    fl_hook_cb on_start;
    fl_hook_cb on_stop;
    char *name;               /* owned; registered in sys->names */
    struct fl__term *waiters; /* termination futures (under sys->lock) */
} fl__actor_ext_t;

typedef struct fl__term {
    fl_future_t *f;
    struct fl__term *next;
} fl__term_t;

/*
 * An actor slot: three cache lines (192 bytes). Line 0 is the mailbox head
 * (written by every sender), line 1 the mailbox tail (written by the worker
 * running the actor), line 2 what both sides only read on the hot path.
 * Slots are type-stable (never freed while the system lives) and keep their
 * mailbox across incarnations: a sender holding a stale pointer still writes
 * into valid memory, and the consumer drops messages addressed to an older
 * generation as dead letters.
 */
typedef struct fl__actor {
    fl__mpscq_t mq;          /* lines 0 and 1 */
    fl__qnode_t stub;        /* the mailbox's first stub */
    _Atomic uint64_t gstate; /* generation and state (above) */
    fl_receive_cb receive;   /* published by the gstate store */
    void *state;
    _Atomic(fl__actor_ext_t *) ext; /* hooks, name, waiters; may be NULL */
    uint32_t slot;                  /* index, constant */
    uint32_t next_free;             /* free-list link (under sys->lock) */
    uint32_t started_gen;           /* consumer only: the generation whose
                                       start hook has run */
} FL_ALIGNED(FL_CACHE_LINE) fl__actor_t;

_Static_assert(sizeof(fl__actor_t) == 3 * FL_CACHE_LINE,
               "an actor slot is three cache lines");

#define FL__CHUNK_SHIFT 12u
#define FL__CHUNK_SIZE (1u << FL__CHUNK_SHIFT)
#define FL__MAX_ACTORS (1u << 24)
#define FL__NO_SLOT UINT32_MAX

/* ---- scheduler ----------------------------------------------------------- */

typedef struct fl__worker {
    fl__runq_t rq; /* stealable FIFO */
    fl_system_t *sys;
    fl__actor_t *next; /* run next; owner only, not stealable */
    /* Sends coalesced during the running callback (see fl__deliver). */
    fl__actor_t *out_to;
    fl_msg_t *out_first, *out_last;
    unsigned out_n;
    bool in_turn;
    pthread_t thread;
    sem_t wake; /* posted to unpark this worker */
    unsigned index;
    uint32_t tick;
    uint64_t rng;
    bool sleeping; /* under sys->sleep_lock */
} fl__worker_t;

/* ---- timers -------------------------------------------------------------- */

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
            int64_t ms; /* the timeout, for the failure message */
        } fut;
    } u;
    struct fl__timer *hnext; /* id hash chain */
} fl__timer_t;

typedef struct fl__timers {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started, stop;
    fl__timer_t **heap;
    size_t len, cap;
    uint64_t seq, next_id;
    uint64_t sleep_until; /* deadline the thread sleeps to; UINT64_MAX = none */
    fl__timer_t **ids;    /* hash table of public timers by id */
    size_t nids, idcap;
} fl__timers_t;

/* ---- the system ---------------------------------------------------------- */

typedef struct fl__name {
    char *name; /* borrowed from the actor's ext */
    uint64_t id;
    struct fl__name *next;
} fl__name_t;

struct fl_system {
    /* Read-mostly configuration. */
    unsigned nworkers;
    unsigned nstarted; /* worker threads running (joined at stop) */
    unsigned batch;
    uint64_t spin_ns;
    uint32_t max_actors;
    fl__worker_t **workers;

    /* Actor slots: chunk table sized for max_actors; chunks allocated on
     * demand and published with release stores. */
    _Atomic(fl__actor_t *) *chunks;
    void **chunk_mem; /* what was allocated (chunks are aligned in it) */
    uint32_t nchunks;

    /* Lifecycle. */
    FL_ALIGNED(FL_CACHE_LINE) _Atomic bool closed;
    _Atomic bool stopping;     /* workers exit once idle */
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

    /* Counters. */
    _Atomic uint64_t spawned;
    _Atomic uint64_t dead_letters;

    /* Scheduler: the queue for threads outside the runtime, and parking. */
    FL_ALIGNED(FL_CACHE_LINE) pthread_mutex_t inject_lock;
    fl__actor_t **inject; /* ring buffer */
    size_t inject_head, inject_len, inject_cap;
    _Atomic size_t inject_count; /* lock-free emptiness check */

    FL_ALIGNED(FL_CACHE_LINE) _Atomic int nspinning;
    _Atomic int nsleeping;
    pthread_mutex_t sleep_lock;

    fl__timers_t timers;
};

/* ---- cross-module internals ---------------------------------------------- */

/* Thread-local identity of the calling thread. */
extern _Thread_local fl__worker_t *fl__tls_worker;
extern _Thread_local fl_system_t *fl__tls_sys;
/* Set on threads that must never block waiting (a service's I/O thread):
 * fl_future_wait refuses there with FL_EDEADLK like on a worker. */
extern _Thread_local bool fl__tls_no_block;
extern _Thread_local uint64_t fl__tls_actor;

/* Slot lookup; NULL if the slot was never allocated. Any thread. */
static inline fl__actor_t *fl__slot(fl_system_t *sys, uint32_t slot)
{
    if (slot >= sys->max_actors)
        return NULL;
    fl__actor_t *c = atomic_load_explicit(&sys->chunks[slot >> FL__CHUNK_SHIFT],
                                          memory_order_acquire);
    return c ? &c[slot & (FL__CHUNK_SIZE - 1)] : NULL;
}

/*
 * Deliver m to the actor it names (m->target). CONSUMES m. control = true
 * lets control messages (exec, stop) reach actors that have a stop
 * request pending and bypasses the closed check (used by the timer thread
 * and stop). Returns FL_OK or FL_EUNREACHABLE (m was dead-lettered).
 */
int fl__deliver(fl_system_t *sys, fl_msg_t *m, bool control);
/* The same, but an undeliverable m is left to the caller (FL_EUNREACHABLE)
 * to dead-letter once it holds no lock. */
int fl__deliver_or_keep(fl_system_t *sys, fl_msg_t *m, bool control);

/*
 * A turn taken over from the scheduler by a thread outside the runtime
 * (a service's I/O thread runs an idle endpoint's calls itself, without
 * waking a worker). fl__tell_claim delivers msg like fl_tell (CONSUMES it;
 * same results); when msg made the actor runnable, the actor is not
 * scheduled but handed to the caller in *claim (claim->a != NULL), and
 * the caller MUST pass it to fl__claim_run soon: nobody else runs the
 * actor meanwhile, and the system's shutdown waits for it. Called on a
 * runtime thread (a worker, the timer thread, a turn) it is fl_tell and
 * claims nothing. Not blocking.
 *
 * fl__claim_run runs one turn of the claimed actor on the calling thread,
 * up to the system's batch of messages, as a worker would (fl_self(),
 * fl_system_current() and the refusal of blocking waits included); with a
 * budget_ns other than 0 it also stops at the first message boundary at
 * least budget_ns after it started where it reads the clock: after every
 * message while messages are slow, less often (at most every 8) while
 * they are fast enough for that many to fit in what is left of the budget
 * (actor.c, budget_stride). Then it schedules the actor on the workers if
 * messages remain, and ends the claim. Returns true when the budget cut
 * the turn short (or its last message ended past it). No-op
 * (false) when claim->a is NULL. Blocks as long as the handlers run.
 */
typedef struct fl__claim {
    fl_system_t *sys;
    fl__actor_t *a;
} fl__claim_t;
int fl__tell_claim(fl_system_t *sys, fl_actor_ref_t to, fl_msg_t *msg,
                   fl__claim_t *claim);
bool fl__claim_run(fl__claim_t *claim, uint64_t budget_ns);

/*
 * fl__tell_held is fl_tell (CONSUMES msg; same results) from the thread
 * that holds `held`, a claim from fl__tell_claim not yet run: that claim
 * already counts the thread in with held->sys, so the tell skips the
 * count fl_tell takes (two atomic operations). Its target may be the
 * claimed actor itself (the message then waits for fl__claim_run) or any
 * other actor of held->sys. FL_EINVAL (msg freed) when held holds nothing
 * or the caller is a runtime thread. Not blocking.
 */
int fl__tell_held(const fl__claim_t *held, fl_actor_ref_t to, fl_msg_t *msg);

/* Push the sends this worker coalesced (no-op when there are none). */
void fl__flush_sends(fl__worker_t *w);

/*
 * Output a callback defers to a message boundary. Code running in a
 * worker's turn (fl__tls_worker->in_turn) may hold output back to write
 * what several messages produce with one system call (net.c: the frames
 * answers queue on a connection): it sets fl__tls_flush, and the worker
 * calls it after every message with `more` true while the actor has
 * another message already queued in this turn, false otherwise (the last
 * message of a turn, or an empty mailbox). The function clears
 * fl__tls_flush once it holds nothing back. Worker threads only.
 */
extern _Thread_local void (*fl__tls_flush)(bool more);

/* Dead-letter m: fail its ask, free its exec argument, count it, free it. */
void fl__dead_letter(fl_system_t *sys, fl_msg_t *m, const char *why);
/* The same without freeing m (it is a mailbox's stub). */
void fl__dead_letter_contents(fl_system_t *sys, fl_msg_t *m, const char *why);
/* Request the stop of a live actor; FL_OK, FL_EUNREACHABLE or FL_ENOMEM. */
int fl__actor_request_stop(fl_system_t *sys, uint64_t id);
/* Timers armed and not yet fired or cancelled. */
uint64_t fl__timers_pending(fl_system_t *sys);

/* Scheduler (sched.c). */
void fl__sched_schedule(fl_system_t *sys, fl__actor_t *a);
int fl__sched_start(fl_system_t *sys);
void fl__sched_stop(fl_system_t *sys);
void fl__sched_free(fl_system_t *sys);
/* Runs one turn of an actor (actor.c); true = reschedule it. */
bool fl__actor_run(fl_system_t *sys, fl__actor_t *a);

/* Timers (timer.c). */
int fl__timers_start(fl_system_t *sys);
/* Stop the thread; drop every timer (future timeouts fail with
 * FL_ECLOSED). */
void fl__timers_stop(fl_system_t *sys);
fl__timer_t *fl__timer_new_future(fl_future_t *f, int64_t ms);
int fl__timer_arm(fl_system_t *sys, fl__timer_t *t);
void fl__timer_cancel_internal(fl_system_t *sys, fl__timer_t *t);
/* fl_timer_cancel that also says whether the callback is running now (it
 * then finishes that run; otherwise, on FL_OK, it never runs again). */
int fl__timer_cancel_id(fl_system_t *sys, fl_timer_id_t id, bool *firing);

/* Futures (future.c): a callback with a drop function, called with arg
 * instead of cb if the future is freed while still pending. */
int fl__future_on_complete_ex(fl_future_t *f, fl_future_cb cb, fl_free_cb drop,
                              void *arg);
/* Attach a timeout timer (owned by the future). */
int fl__future_attach_timer(fl_future_t *f, fl_system_t *sys, fl__timer_t *t);

#endif /* FL_ACTOR_INTERNAL_H */
