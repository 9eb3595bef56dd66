/*
 * src/actor/future.h - the futures' internal calls (future.c): callbacks
 * with a drop function, and a timeout timer owned by the future.
 *
 * Included by the actor layer and by rpc.
 */
#ifndef FL_ACTOR_FUTURE_H
#define FL_ACTOR_FUTURE_H

#include <fling/actor.h>
#include <fling/future.h>

#include "actor/timer.h"

/* Copy the outcome of src (complete) into dst, moving src's value (dst
 * then owns it). Any thread; not blocking. */
void fl__future_forward(fl_future_t *src, fl_future_t *dst);

/* fl_future_on_complete with a drop function, called with arg instead of
 * cb if the future is freed while still pending. */
int fl__future_on_complete_ex(fl_future_t *f, fl_future_cb cb, fl_free_cb drop,
                              void *arg);
/*
 * A pending future like fl_future_alloc's, with room for one timeout timer
 * in its own block (fl__timer_new_future_in): an ask's, whose timer then
 * costs no allocation of its own; then `room` bytes for the caller
 * (fl__future_room; at most UINT16_MAX), which live as long as the
 * future. NULL when out of memory. Any thread.
 */
fl_future_t *fl__future_alloc_timed(size_t room);
/* The caller's room of f, a future of fl__future_alloc_timed: aligned for
 * any pointer or 64-bit field. */
void *fl__future_room(fl_future_t *f);
/* The timer room of f (fl__future_alloc_timed), or NULL. The memory goes
 * with f's block: a timer in it ends by releasing its reference to f. */
fl__timer_t *fl__future_timer_slot(fl_future_t *f);
/* fl_future_retain on a future NOT YET SHARED with another thread: a
 * plain load and store. Not the locked add: it would wait for every store
 * before it (the new future's and timer's fields) to leave the store
 * buffer, and an ask takes two such references. Returns f. */
fl_future_t *fl__future_retain_unshared(fl_future_t *f);
/* Attach a timeout timer (owned by the future from FL_OK on). */
int fl__future_attach_timer(fl_future_t *f, fl_system_t *sys, fl__timer_t *t);
/* fl__future_attach_timer on a pending f NOT YET SHARED with another
 * thread: no lock. t is owned by f from here; arm it once f is shared. */
void fl__future_set_timer_unshared(fl_future_t *f, fl_system_t *sys,
                                   fl__timer_t *t);

/*
 * A namer says what a future is the result of (an RPC call: the method and
 * the endpoint), for the failures the runtime itself gives it: its timeout
 * and a dead letter. The layer that makes the call sets it; the runtime
 * calls say only when one of those failures is about to win, so a call
 * that succeeds formats nothing.
 *
 * say writes the whole failure text of err (FL_ETIMEDOUT after timeout_ms,
 * FL_EUNREACHABLE) into buf (cap bytes, terminated). release lets go of
 * ctx: called once, when the future completes (any way) or is freed
 * pending. Both any thread, no lock held; neither blocks.
 */
typedef struct fl__namer {
    void (*say)(void *ctx, const void *aux, uint64_t word, int err,
                int64_t timeout_ms, char *buf, size_t cap);
    void (*release)(void *ctx);
} fl__namer_t;

/* Give f a namer with its ctx (CONSUMED: released by the future), aux and
 * word (borrowed, must stay valid as long as ctx is held). f is pending
 * and NOT YET SHARED with another thread: no lock is taken, so that a
 * call that succeeds pays only these stores. */
void fl__future_set_namer(fl_future_t *f, const fl__namer_t *namer, void *ctx,
                          const void *aux, uint64_t word);

/*
 * The runtime's own failure of f with err (FL_ETIMEDOUT after timeout_ms,
 * or FL_EUNREACHABLE): its namer's text if it has one, else fmt's.
 * fl_future_fail's result. Any thread; not blocking.
 */
int fl__future_fail_runtime(fl_future_t *f, int err, int64_t timeout_ms,
                            const char *fmt, ...) FL_PRINTF(4, 5);

/* fl__future_on_complete_ex on a pending f NOT YET SHARED with another
 * thread and with no callback yet: no lock, cannot fail. */
void fl__future_on_complete_unshared(fl_future_t *f, fl_future_cb cb,
                                     fl_free_cb drop, void *arg);

/* A callback an ask registers on its future before sending (fl__ask_named):
 * as fl__future_on_complete_ex's; and the future to use, when the caller
 * made it (f, of fl__future_alloc_timed, pending and not yet shared,
 * CONSUMED also when the ask is refused; NULL: made by the ask). */
typedef struct fl__ask_then {
    fl_future_cb cb;
    fl_free_cb drop;
    void *arg;
    fl_future_t *f;
} fl__ask_then_t;

/* fl_ask whose future has a namer (fl__future_set_namer; namer may be
 * NULL): ctx is CONSUMED, also when the ask is refused. then (may be
 * NULL) is registered on the future before the message goes, without the
 * future's lock: on FL_OK the future owns it (cb runs at the completion,
 * possibly before this returns, or drop if it is freed pending); on a
 * refusal neither runs and then->arg is the caller's still. (tell.c) */
int fl__ask_named(fl_system_t *sys, fl_actor_ref_t to, fl_msg_t *msg,
                  int64_t timeout_ms, const fl__namer_t *namer, void *ctx,
                  const void *aux, uint64_t word, const fl__ask_then_t *then,
                  fl_future_t **out);

#endif /* FL_ACTOR_FUTURE_H */
