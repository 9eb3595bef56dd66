/*
 * src/actor/flow.h - flow control: a mailbox bound per actor, the actors
 * held back ("muted") for sending to a mailbox over its bound, and the
 * threads and callbacks that wait for a mailbox to drain
 * (docs/guide.md, "Flow control"; the design: docs/RATIONALE.md).
 *
 * Owns fl__flow_t (embedded in the system) and fl__drain_wait_t. Included
 * by the actor layer; remote and rpc use fl__actor_over_bound and the
 * drain waits to stop reading a connection whose calls go to a mailbox
 * over its bound.
 *
 * The rules, each applied by the thread running the actor named:
 * - A push adds its weight to the target's `queued`; a turn's end
 *   subtracts the weight of the messages it took (actor_slot.h; the
 *   sampled count below).
 * - An actor that sent, in a message, to another actor of its system
 *   whose mailbox was over its bound is muted at the end of that message:
 *   it is not scheduled, its mailbox keeps filling, until the target has
 *   drained to half its bound (its low mark). It is not muted when its own
 *   mailbox is above its own low mark: an actor others wait on keeps
 *   running.
 * - At the end of each turn, an actor whose mailbox is at its low mark or
 *   below wakes every actor, thread and callback waiting on it.
 * No cycle of muted actors can form: the last actor of a would-be cycle
 * to be muted would have to be at or below its low mark, and its own
 * turn's end, just before, woke the actor muted on it.
 */
#ifndef FL_ACTOR_FLOW_H
#define FL_ACTOR_FLOW_H

#include <pthread.h>

#include "actor/actor_slot.h"
#include "common/internal.h"

#define FL__FLOW_STRIPES 64u

/* A callback waiting for a mailbox to drain (fl__drain_wait_arm). */
typedef struct fl__drain_wait {
    struct fl__drain_wait *next; /* under the stripe's lock */
    void (*fn)(void *arg);
    void *arg;
    struct fl__actor *on;
    bool armed;
} fl__drain_wait_t;

/* The locks flow control takes, striped by the slot of the mailbox. */
typedef struct fl__flow_stripe {
    pthread_mutex_t mu;
    pthread_cond_t cv;     /* threads in fl_tell_bounded */
    fl__drain_wait_t *cbs; /* armed callbacks of this stripe's actors */
} fl__flow_stripe_t;

typedef struct fl__flow {
    fl__flow_stripe_t s[FL__FLOW_STRIPES];
    _Atomic uint64_t mutes, tells_full; /* statistics, relaxed */
} fl__flow_t;

void fl__flow_init(fl__flow_t *f);
void fl__flow_fini(fl__flow_t *f);

/* The actor the calling thread's current message sent to over its bound
 * (a mute candidate), or NULL. Set by fl__flow_pushed (deliver.h); read
 * and cleared by the turn (turn.c). */
extern _Thread_local struct fl__actor *fl__tls_mute_on;

static inline uint32_t fl__flow_low(uint32_t bound)
{
    return bound / 2;
}

/*
 * Sampled count. An atomic add on the senders' line costs about 2 ns, a
 * sixth of a hop between two actors on one core; so a mailbox with a bound
 * of 2 * FL__FLOW_EXACT or more counts 1/k of its messages, each with
 * weight k (k = bound / FL__FLOW_EXACT, a power of two up to
 * FL__FLOW_K_MAX), drawn from a Weyl sequence per thread (deliver.h): the
 * count is off by a few weights per sending thread. Under that bound every
 * message counts. The weight travels in the message (msg.h) so that the
 * turn counts out what the push counted in.
 */
#define FL__FLOW_EXACT 1024u
#define FL__FLOW_K_MAX 8u

extern _Thread_local uint32_t fl__tls_rng; /* the draw (deliver.h) */

static inline uint32_t fl__flow_k(uint32_t bound)
{
    uint32_t k = bound / FL__FLOW_EXACT;
    if (k <= 1)
        return 1;
    return k >= FL__FLOW_K_MAX ? FL__FLOW_K_MAX : 1u << (31 - __builtin_clz(k));
}

/* Wake every actor, thread and callback waiting on r. Any thread. */
void fl__flow_wake(struct fl_system *sys, fl__actor_t *r);

/*
 * Mute s (whose message just sent to r over its bound) on r. True: s is
 * muted and must not be scheduled (r's drain will); false: not muted (s
 * is over its own low mark, or r drained), the caller schedules s as
 * usual. The thread running s, at the end of a message, s not marked
 * empty.
 */
bool fl__flow_mute(struct fl_system *sys, fl__actor_t *s, fl__actor_t *r);

/*
 * Wait on the calling thread, outside the runtime, until a's mailbox
 * holds fewer than its bound, the system closes, or deadline_ns
 * (fl_clock_now_ns; 0 = none) passes. FL_OK (room, or closed: the send
 * that follows says which) or FL_ETIMEDOUT. BLOCKS.
 */
int fl__flow_wait_room(struct fl_system *sys, fl__actor_t *a,
                       uint64_t deadline_ns);

/* Wake every thread waiting in fl__flow_wait_room (the system closes). */
void fl__flow_wake_threads(struct fl_system *sys);

/*
 * True when the live actor id names holds more messages than its bound:
 * actors sending to it are held back. Any thread; racy by nature.
 */
bool fl__actor_over_bound(struct fl_system *sys, uint64_t id);

/*
 * Arm w to call fn(arg) once the mailbox of the actor id names has drained
 * to half its bound (or its actor has stopped and the rest became dead
 * letters). FL_OK: armed (fn may have run already); FL_EALREADY: the
 * mailbox is not over its bound, nothing armed; FL_EUNREACHABLE: no such
 * live actor. fn runs once, on the thread running the actor, under a lock:
 * it must not block nor call into flow control (a kick of another thread).
 * w (zeroed before its first use) must stay valid until fn has run or
 * fl__drain_wait_cancel returned. Any thread; not blocking.
 */
int fl__drain_wait_arm(struct fl_system *sys, uint64_t id, fl__drain_wait_t *w,
                       void (*fn)(void *), void *arg);

/* Disarm w. When it returns, fn is not running and will not run (it may
 * have run before). Any thread but fn's; not blocking. */
void fl__drain_wait_cancel(struct fl_system *sys, fl__drain_wait_t *w);

/*
 * The end of a's turn, which took messages of total weight `popped`:
 * count them out and,
 * at or below the low mark, wake what waits on a (fl__flow_wake). The
 * thread running a.
 */
static inline void fl__flow_turn_end(struct fl_system *sys, fl__actor_t *a,
                                     uint32_t popped)
{
    if (popped == 0)
        return;
    /* seq_cst: the subtraction comes before the loads of mutes and waits,
     * as a muter's store comes before its load of queued (flow.c). */
    uint32_t q =
        atomic_fetch_sub_explicit(&a->queued, popped, memory_order_seq_cst) -
        popped;
    if (q <= fl__flow_low(
                 atomic_load_explicit(&a->bound, memory_order_relaxed)) &&
        (atomic_load_explicit(&a->mutes, memory_order_seq_cst) != FL__NO_SLOT ||
         atomic_load_explicit(&a->waits, memory_order_seq_cst) != 0))
        fl__flow_wake(sys, a);
}

#endif /* FL_ACTOR_FLOW_H */
