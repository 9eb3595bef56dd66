/*
 * src/actor/msg.h - messages: the header in front of every fl_msg_t, its
 * kinds, what a message may owe (an ask's future, a settle function), and
 * the message allocator built on the block pool (common/pool.h).
 *
 * Included by the actor layer and by the layers above it (remote, rpc),
 * which build and send messages.
 */
#ifndef FL_ACTOR_MSG_H
#define FL_ACTOR_MSG_H

#include <fling/actor.h>
#include <fling/future.h>

#include "actor/mailbox.h"
#include "common/internal.h"
#include "common/pool.h"

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

/* The high half of flags is the message's weight in its mailbox's count
 * (flow control, actor/flow.h): set by the push, counted out by the turn
 * that takes the message. */
#define FL__MF_WEIGHT_SHIFT 16u

static inline uint32_t fl__msg_weight(const fl_msg_t *m)
{
    return m->flags >> FL__MF_WEIGHT_SHIFT;
}

/* Run m's settle function if it has one (any thread). The test is
 * inline: few messages carry one (RPC calls), and every message handled
 * or freed asks. */
void fl__msg_settle_run(fl_msg_t *m, int err, const char *why);

static inline void fl__msg_settle(fl_msg_t *m, int err, const char *why)
{
    if (fl__unlikely(m->flags & FL__MF_SETTLE))
        fl__msg_settle_run(m, err, why);
}

/*
 * A zeroed message of `kind` with `size` payload bytes, or NULL (out of
 * memory, or size over 1 GiB). Caller owns it: send it, or free it with
 * fl_msg_free (or fl__msg_release_mem when it owes nothing). Any thread.
 */
fl_msg_t *fl__msg_alloc_kind(uint16_t kind, uint32_t type, size_t size);
/* A copy of m (not of one that owes: its FL__MF_SETTLE is not copied).
 * Caller owns it; NULL when out of memory. */
fl_msg_t *fl__msg_clone(const fl_msg_t *m);
/* The slow path of fl__msg_release_mem: a large message, or a cache that
 * declined the block. */
void fl__msg_release_slow(fl_msg_t *m);

/* Frees any thread's message memory (no dead-letter handling).
 * (fl_msg_free settles what a message owes: its ask, its exec argument.)
 * Inline: every message handled ends here; the common case is a block
 * back into the calling thread's cache, without a call. */
static inline void fl__msg_release_mem(fl_msg_t *m)
{
    if (fl__likely(m->cls != FL__POOL_DIRECT) &&
        fl__likely(fl__pool_class_put(m, m->cls)))
        return;
    fl__msg_release_slow(m);
}

static inline void *fl__msg_payload(fl_msg_t *m)
{
    return (void *)(m + 1);
}

#endif /* FL_ACTOR_MSG_H */
