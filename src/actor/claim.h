/*
 * src/actor/claim.h - the claim API: a turn taken over from the scheduler
 * by a thread outside the runtime (a service's I/O thread runs an idle
 * endpoint's calls itself, without waking a worker).
 *
 * Owns fl__claim_t. Included by the actor layer and by remote and rpc.
 * Implemented in tell.c (the claiming tells) and turn.c (the claimed turn).
 */
#ifndef FL_ACTOR_CLAIM_H
#define FL_ACTOR_CLAIM_H

#include <fling/actor.h>

#include "common/internal.h"

/*
 * fl__tell_claim delivers msg like fl_tell (CONSUMES it; same results);
 * when msg made the actor runnable, the actor is not scheduled but handed
 * to the caller in *claim (claim->a != NULL), and the caller MUST pass it
 * to fl__claim_run soon: nobody else runs the actor meanwhile, and the
 * system's shutdown waits for it. Called on a runtime thread (a worker,
 * the timer thread, a turn) it is fl_tell and claims nothing. Not
 * blocking.
 *
 * fl__claim_run runs one turn of the claimed actor on the calling thread,
 * up to the system's batch of messages, as a worker would (fl_self(),
 * fl_system_current() and the refusal of blocking waits included); with a
 * budget_ns other than 0 it also stops at the first message boundary at
 * least budget_ns after it started where it reads the clock: after every
 * message while messages are slow, less often (at most every 8) while
 * they are fast enough for that many to fit in what is left of the budget
 * (turn.c, budget_stride). Then it schedules the actor on the workers if
 * messages remain, and ends the claim. Returns true when the budget cut
 * the turn short (or its last message ended past it). No-op
 * (false) when claim->a is NULL. Blocks as long as the handlers run.
 */
typedef struct fl__claim {
    fl_system_t *sys;
    struct fl__actor *a;
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

#endif /* FL_ACTOR_CLAIM_H */
