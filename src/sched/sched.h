/*
 * src/sched/sched.h - the work-stealing scheduler: workers, their run
 * queues, the inject queue for threads outside the runtime, and parking.
 *
 * Owns fl__sched_t (embedded by its user, the actor system) and
 * fl__worker_t. It knows an actor only as an opaque `struct fl__actor *`
 * and runs it through the callback its user gives fl__sched_start. Included
 * by the actor layer (actor/) and by sched/; includes nothing above
 * common/.
 */
#ifndef FL_SCHED_SCHED_H
#define FL_SCHED_SCHED_H

#include <pthread.h>
#include <semaphore.h>

#include "common/internal.h"
#include "common/prof.h"
#include "sched/runq.h"

struct fl__actor; /* the actor layer's; opaque here */

typedef struct fl__worker fl__worker_t;

/*
 * A worker's loop, the scheduler's user's: it takes actors with
 * fl__sched_take until that returns NULL, runs a turn of each and gives
 * back with fl__sched_requeue the ones that have more to do. The user
 * owns the loop so that its turn is inlined into it: one call less and
 * one function's entry and exit less per turn. ctx is fl__sched_start's.
 */
typedef void (*fl__sched_loop_cb)(fl__worker_t *w, void *ctx);
/*
 * Called on every worker thread: with `enter` true before its first turn,
 * false after its last (the user's thread-locals).
 */
typedef void (*fl__sched_thread_cb)(void *ctx, bool enter);

typedef struct fl__sched fl__sched_t;

/* A thief's watch of a victim's queue (steal in sched.c): the queue's
 * head when the window began, and when (ns; 0: none); since when every
 * look found the queue holding actors (0: the last found it empty), and
 * the last look. */
typedef struct fl__steal_watch {
    uint64_t head, since, busy_since, last;
} fl__steal_watch_t;

struct fl__worker {
    fl__runq_t rq; /* stealable FIFO; its own lines */
    /* Constant once the thread runs. */
    fl__sched_t *sched;
    pthread_t thread;
    sem_t wake; /* posted to unpark this worker */
    unsigned index;
    /* Written by the owning worker only. */
    struct fl__actor *next; /* run next; not stealable */
    uint32_t tick;          /* turns left to the next fairness look (sched.c) */
    uint64_t rng;
    /* Per worker, this one's watch of that worker's queue (steal in
     * sched.c); nworkers entries. */
    fl__steal_watch_t *watch;
    /* Under sched->sleep_lock: parked, and whether patiently (it looks
     * again by itself after FL__STEAL_LOOK_NS; see idle in sched.c). */
    bool sleeping, patient;
    /* Written by the owning worker only: back from a patient park by
     * itself, to look once without spinning first; how long the next
     * patient park lasts (idle in sched.c). */
    bool looked;
    uint64_t look_ns;
};

struct fl__sched {
    /* Constant once started. */
    unsigned nworkers;
    unsigned nstarted; /* worker threads running (joined at shutdown) */
    uint64_t spin_ns;
    fl__worker_t **workers;
    fl__sched_loop_cb loop;
    fl__sched_thread_cb thread;
    void *ctx;

    /* Set once by fl__sched_shutdown: workers exit once idle. */
    _Atomic bool stopping;

    /* The queue for threads outside the runtime (under inject_lock). */
    FL_ALIGNED(FL_CACHE_LINE) pthread_mutex_t inject_lock;
    struct fl__actor **inject; /* ring buffer */
    size_t inject_head, inject_len, inject_cap;
    _Atomic size_t inject_count; /* lock-free emptiness check */

    /* Parking: written by every worker that searches, parks or wakes. */
    FL_ALIGNED(FL_CACHE_LINE) _Atomic int nspinning;
    _Atomic int nsleeping; /* parked until woken */
    _Atomic int npatient;  /* parked for FL__STEAL_LOOK_NS at most */
    pthread_mutex_t sleep_lock;
    pthread_cond_t ready_cv; /* a worker has started (under sleep_lock) */
    unsigned nready;         /* workers started (under sleep_lock) */
};

/*
 * An idle worker takes (steals) actors queued on another worker only once
 * their backlog there, how many are queued times how long that worker has
 * been taking per pop, reaches FL__STEAL_BACKLOG_NS: until then it will
 * run them itself soon, on the core whose cache holds their messages. A
 * lone actor is taken once its worker has not popped for that long (stuck
 * in a long turn); many, or a stuck queue, at once; a few actors that
 * each take a short turn and talk to each other (a fan-in's senders and
 * their consumer) stay together. Taking whatever was queued moved them
 * between the cores after every batch, and each of their messages crossed
 * between them (docs/RATIONALE.md, "Locality before balance").
 */
#define FL__STEAL_BACKLOG_NS 200000u
/* How long a thief's window on one queue's pops lasts before it starts
 * anew. */
#define FL__STEAL_WINDOW_NS 1000000u
/* How long a queue may hold actors at every look of an idle worker before
 * it takes one whatever the backlog: a few actors with turns too short to
 * come due would otherwise keep a core idle for good. Looks further apart
 * than FL__STEAL_GAP_NS (the thief ran a turn of its own, or parked)
 * start that time anew: what it did not see may have been empty. */
#define FL__STEAL_PERSIST_NS 2000000u
#define FL__STEAL_GAP_NS 500000u
/* How long an idle worker parks at a time while another one runs turns
 * (a "patient" park, see idle in sched.c): it looks at the queues by
 * itself, and a push to a busy worker's queue does not wake it. Every
 * FL__STEAL_LOOK_NS while actors are queued: well under FL__STEAL_GAP_NS,
 * so that its looks keep a watch going, and under FL__STEAL_BACKLOG_NS.
 * While every queue is found empty the time doubles up to
 * FL__STEAL_LOOK_MAX_NS: an actor queued behind a turn that does not end
 * waits up to that much more before the thief's watch of it begins. */
#define FL__STEAL_LOOK_NS 100000u
#define FL__STEAL_LOOK_MAX_NS 400000u

/*
 * Whether the n (>= 1) actors queued at head h of a victim's queue may be
 * taken at time now, by the thief whose watch of that queue is l (one per
 * victim: one watch moved from victim to victim at each look would never
 * come due). They are taken once the queue's backlog, n times the time the
 * victim has taken per pop since the watch's window began (the time since
 * then, while the head has not moved), reaches FL__STEAL_BACKLOG_NS; or
 * once the thief has found the queue holding actors at every look for
 * FL__STEAL_PERSIST_NS, its looks no further apart than FL__STEAL_GAP_NS
 * (the caller clears busy_since when it finds the queue empty). The window
 * starts anew every FL__STEAL_WINDOW_NS, so that the rate follows the victim's
 * turns as they change. The thief's thread.
 */
static inline bool fl__steal_due(fl__steal_watch_t *l, uint64_t now, uint64_t h,
                                 uint64_t n)
{
    if (l->busy_since == 0 || now - l->last > FL__STEAL_GAP_NS)
        l->busy_since = now;
    else if (now - l->busy_since >= FL__STEAL_PERSIST_NS)
        return true;
    l->last = now;
    if (l->since == 0 || now - l->since >= FL__STEAL_WINDOW_NS) {
        l->head = h;
        l->since = now;
        return false;
    }
    /* Time per pop, the turn under way counted as one: n * elapsed /
     * (pops + 1) >= the backlog bound. */
    return n * (now - l->since) >= FL__STEAL_BACKLOG_NS * (h - l->head + 1);
}

/* The worker the calling thread is, or NULL (any scheduler's). */
extern _Thread_local fl__worker_t *fl__tls_worker;

/*
 * Starts s with nworkers threads (s zeroed by the caller) that poll for
 * spin_ns before parking; each runs loop(w, ctx) and calls
 * thread(ctx, true/false) when it starts and ends. Returns once every
 * worker runs (so that what a thread's start touches is not counted
 * later, by a caller measuring its memory): FL_OK, FL_ENOMEM or
 * FL_ESYSTEM; on failure call fl__sched_shutdown, then fl__sched_fini.
 * Blocks for the threads' start only.
 */
int fl__sched_start(fl__sched_t *s, unsigned nworkers, uint64_t spin_ns,
                    fl__sched_loop_cb loop, fl__sched_thread_cb thread,
                    void *ctx);

/* fl__sched_take but for its fast path (sched.c). */
struct fl__actor *fl__sched_take_slow(fl__worker_t *w);

/*
 * The next actor worker w runs: its next slot, else (and every 61st turn
 * first) the inject queue, its run queue, a steal; when there is none it
 * spins, then parks until there is. Returns NULL once the scheduler is
 * stopping: the loop returns. w's own thread; blocks while idle.
 */
static inline struct fl__actor *fl__sched_take(fl__worker_t *w)
{
    struct fl__actor *a = w->next;
    if (fl__likely(a != NULL && w->tick > 1)) {
        w->tick--;
        w->next = NULL;
        FL_PROF(from_next);
        FL_PROF(turns);
        return a;
    }
    return fl__sched_take_slow(w);
}

/* Give back a, whose turn on w ended with more to do: it goes behind the
 * others on w's run queue. w's own thread; not blocking. */
void fl__sched_requeue(fl__worker_t *w, struct fl__actor *a);
/* fl__sched_schedule but for its fast path (sched.c). */
void fl__sched_schedule_slow(fl__sched_t *s, struct fl__actor *a);

/*
 * Makes a runnable: on the calling worker's next slot if the caller is one
 * of s's workers, else on the inject queue; wakes a parked worker when no
 * one is searching (sched.c, "Parking"). a must not be queued already. Any
 * thread; not blocking. Inline: a message chain (a ping-pong, a ring) schedules
 * once per hop, into an empty next slot, which takes no call.
 */
static inline void fl__sched_schedule(fl__sched_t *s, struct fl__actor *a)
{
    fl__worker_t *w = fl__tls_worker;
    if (fl__likely(w != NULL && w->sched == s && w->next == NULL)) {
        FL_PROF(sched_next);
        w->next = a;
        return;
    }
    fl__sched_schedule_slow(s, a);
}
/*
 * Tells the workers to exit once idle and joins them. BLOCKS until every
 * worker thread has returned. Not from a worker of s. Idempotent.
 */
void fl__sched_shutdown(fl__sched_t *s);
/* Frees what fl__sched_start allocated (after fl__sched_shutdown). */
void fl__sched_fini(fl__sched_t *s);

/* True once fl__sched_shutdown has begun. Any thread. */
static inline bool fl__sched_stopping(fl__sched_t *s)
{
    /* Pairs with the seq_cst store in fl__sched_shutdown. */
    return atomic_load_explicit(&s->stopping, memory_order_acquire);
}

#endif /* FL_SCHED_SCHED_H */
