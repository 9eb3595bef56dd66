/*
 * src/actor/actor_slot.h - actor slots and delivery: fl__actor_t (the
 * slot, its mailbox, its generation and state), references, dead letters,
 * and the calls that put a message into a mailbox or stop an actor.
 *
 * Included by the actor layer (actor/) only; the layers above reach actors
 * through the public API, actor/msg.h and actor/claim.h.
 */
#ifndef FL_ACTOR_ACTOR_SLOT_H
#define FL_ACTOR_ACTOR_SLOT_H

#include <fling/actor.h>
#include <fling/future.h>

#include "actor/mailbox.h"
#include "actor/msg.h"
#include "common/internal.h"

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

typedef struct fl__term {
    fl_future_t *f;
    struct fl__term *next;
} fl__term_t;

/* Rarely used parts of an actor, allocated only when needed. */
typedef struct fl__actor_ext {
    fl_hook_cb on_start;
    fl_hook_cb on_stop;
    char *name;          /* owned; registered in sys->names */
    fl__term_t *waiters; /* termination futures (under sys->lock) */
} fl__actor_ext_t;

/*
 * An actor slot: two cache lines (128 bytes). Line 0 is what senders touch:
 * the mailbox head and the count of queued messages (written by every
 * push), the generation and state (read by every send), the bound and
 * the actors flow control holds back on this one. Line 1 is what the
 * thread running the actor touches: the mailbox tail, the receive
 * callback and state, and its own link when it is held back. Slots are
 * type-stable (never freed while the system lives) and keep their mailbox
 * across incarnations: a sender holding a stale pointer still writes into
 * valid memory, and the consumer drops messages addressed to an older
 * generation as dead letters.
 *
 * Flow control (actor/flow.h): `queued` counts the messages pushed and not
 * yet counted out by a turn of the consumer (sum of pushes minus the pops
 * of ended turns); over `bound` the mailbox is over its bound and actors
 * that send to it are held back ("muted") at the end of their message.
 */
typedef struct fl__actor {
    /* Line 0: senders. */
    FL_ALIGNED(FL_CACHE_LINE) fl__mpscq_head_t head;
    _Atomic uint32_t queued;        /* see above */
    _Atomic uint32_t bound;         /* mailbox bound; set at spawn */
    _Atomic uint32_t k;             /* its sampling factor (flow.h) */
    _Atomic uint32_t k_upto;        /* a push weighs k at a draw up to this */
    _Atomic uint64_t gstate;        /* generation and state (above) */
    _Atomic(fl__actor_ext_t *) ext; /* hooks, name, waiters; may be NULL */
    _Atomic uint32_t mutes;         /* first actor held back on this one
                                       (slot, FL__NO_SLOT: none); list
                                       under its flow lock */
    _Atomic uint32_t waits;         /* threads and callbacks waiting for this
                                       mailbox to drain (flow.c) */
    uint32_t slot;                  /* index, constant */
    uint32_t next_free;             /* free-list link (under sys->lock) */

    /* Line 1: the thread running the actor. */
    FL_ALIGNED(FL_CACHE_LINE) fl__qnode_t *tail; /* the mailbox's tail */
    fl__qnode_t stub;                            /* the mailbox's first stub */
    fl_receive_cb receive; /* published by the gstate store */
    void *state;
    uint32_t started_gen; /* consumer only: the generation whose start
                             hook has run */
    uint32_t muted_on;    /* the slot this actor is held back on, or
                             FL__NO_SLOT (under that slot's flow lock) */
    uint32_t mute_next;   /* next in that slot's list (same lock) */
} FL_ALIGNED(FL_CACHE_LINE) fl__actor_t;

_Static_assert(sizeof(fl__actor_t) == 2 * FL_CACHE_LINE,
               "an actor slot is two cache lines");

#define FL__CHUNK_SHIFT 12u
#define FL__CHUNK_SIZE (1u << FL__CHUNK_SHIFT)
#define FL__CHUNK_BYTES ((size_t)FL__CHUNK_SIZE * sizeof(fl__actor_t))
#define FL__MAX_ACTORS (1u << 24)
#define FL__NO_SLOT UINT32_MAX

/* True when gs (a slot's gstate) is the live incarnation reference id
 * names. */
static inline bool fl__ref_live(uint64_t gs, uint64_t id)
{
    return FL__GEN(gs) == FL__REF_GEN(id) && FL__STATE(gs) != FL__A_FREE;
}

/* Delivery itself (fl__deliver, fl__push) is inline: actor/deliver.h. */

/* Dead-letter m: fail its ask, free its exec argument, count it, free it.
 * Any thread; not blocking. (deliver.c) */
void fl__dead_letter(fl_system_t *sys, fl_msg_t *m, const char *why);
/* The same without freeing m (it is a mailbox's stub). */
void fl__dead_letter_contents(fl_system_t *sys, fl_msg_t *m, const char *why);

/* Request the stop of a live actor; FL_OK, FL_EUNREACHABLE or FL_ENOMEM.
 * Any thread; not blocking. (spawn.c) */
int fl__actor_request_stop(fl_system_t *sys, uint64_t id);
/*
 * Stop a (its state gs, a stop requested) on the thread running its turn:
 * run its stop hook, free its slot for the next incarnation, complete its
 * termination futures. Takes sys->lock. (spawn.c)
 */
void fl__actor_finish_stop(fl_system_t *sys, fl__actor_t *a, uint64_t gs);

/*
 * A worker's loop (the scheduler's loop callback, sched/sched.h; ctx is
 * the system): runs a turn of each actor the scheduler gives it until it
 * stops. Returns at shutdown; blocks as long as the handlers run and
 * while the worker is idle. (turn.c)
 */
struct fl__worker;
void fl__actor_loop(struct fl__worker *w, void *ctx);

#endif /* FL_ACTOR_ACTOR_SLOT_H */
