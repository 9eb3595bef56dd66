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

/* fl_future_on_complete with a drop function, called with arg instead of
 * cb if the future is freed while still pending. */
int fl__future_on_complete_ex(fl_future_t *f, fl_future_cb cb, fl_free_cb drop,
                              void *arg);
/* Attach a timeout timer (owned by the future from FL_OK on). */
int fl__future_attach_timer(fl_future_t *f, fl_system_t *sys, fl__timer_t *t);

#endif /* FL_ACTOR_FUTURE_H */
