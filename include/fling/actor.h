/*
 * fling/actor.h - the actor system: worker threads, actors, mailboxes,
 * tell/ask, running code on an actor's thread, and timers.
 *
 * Threads. A system runs N worker threads that execute actors and one timer
 * thread. An actor runs on at most one worker at a time and processes its
 * mailbox in order (FIFO per sender); its receive callback, its start and
 * stop hooks and every function posted to it with fl_actor_exec() or
 * fl_future_on_complete_in() run serially, never concurrently, so the
 * actor's state needs no locks.
 *
 * References. An actor is named by an fl_actor_ref_t, an id (slot and
 * generation), never a pointer: a reference to a stopped actor is detected
 * and the message becomes a dead letter (FL_EUNREACHABLE), never a
 * use-after-free.
 *
 * Messages. A message is allocated with fl_msg_alloc() and carries a
 * user type and a payload of fixed size. fl_tell(), fl_ask() and
 * fl_timer_send() ALWAYS consume the message, success or not. The receive
 * callback borrows the message; the runtime frees it after the callback
 * returns.
 *
 * Teardown. fl_system_close() refuses new work and stops every actor;
 * fl_system_shutdown() closes and waits (joins every thread);
 * fl_system_free() releases the memory. After shutdown every function taking
 * the system returns FL_ECLOSED; calling any function with a freed system is
 * undefined, as with free().
 */
#ifndef FLING_ACTOR_H
#define FLING_ACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fl_system fl_system_t;
typedef struct fl_msg fl_msg_t;

/* A reference to an actor. id 0 is "no actor". Copy it freely. */
typedef struct fl_actor_ref {
    uint64_t id;
} fl_actor_ref_t;

/* A timer id; 0 is never a valid timer. */
typedef uint64_t fl_timer_id_t;

/*
 * The receive callback: handles one message on the actor's thread. state is
 * the pointer given to fl_actor_spawn; msg is borrowed and freed by the
 * runtime after the return (reply to an ask with fl_reply() or take its
 * future with fl_msg_take_reply()).
 */
typedef void (*fl_receive_cb)(fl_system_t *sys, fl_actor_ref_t self,
                              void *state, fl_msg_t *msg);

/* A start or stop hook; runs on the actor's thread. */
typedef void (*fl_hook_cb)(fl_system_t *sys, fl_actor_ref_t self, void *state);

/* A function run on an actor's thread by fl_actor_exec(). */
typedef void (*fl_exec_cb)(fl_system_t *sys, fl_actor_ref_t self, void *state,
                           void *arg);

/* A callback run on the timer thread by fl_timer_start(). */
typedef void (*fl_timer_cb)(fl_system_t *sys, void *arg);

/* Options of a system; zero-initialise and set what you need. */
typedef struct fl_system_opts {
    /* Worker threads; 0 = online cores. At most 256. */
    unsigned workers;
    /* Messages an actor handles per scheduling turn; 0 = 64. */
    unsigned batch;
    /* Microseconds an idle worker polls for work before it parks;
     * 0 = 50, FL_SPIN_NONE = park at once. */
    unsigned spin_us;
    /* Maximum live actors; 0 = 16,777,216 (the limit). */
    uint32_t max_actors;
    /* Flow control: the messages an actor's mailbox may hold before the
     * actors sending to it are held back (docs/guide.md, "Flow
     * control"); 0 = FL_MAILBOX_DEFAULT, FL_MAILBOX_UNBOUNDED = none. An
     * actor's own mailbox_bound overrides it. */
    uint32_t mailbox_bound;
} fl_system_opts_t;

#define FL_SPIN_NONE ((unsigned)-1)
/* The default mailbox bound, and the bound that turns flow control off. */
#define FL_MAILBOX_DEFAULT 8192u
#define FL_MAILBOX_UNBOUNDED UINT32_MAX

/* Options of an actor; zero-initialise and set what you need. */
typedef struct fl_actor_opts {
    /* Unique name among live actors, copied (at most 255 bytes); NULL =
     * anonymous. */
    const char *name;
    /* Runs on the actor's thread before any message. */
    fl_hook_cb on_start;
    /* Runs on the actor's thread after the last message it handles,
     * exactly once; the start hook always runs first, even when the stop
     * was requested before the actor ever ran. */
    fl_hook_cb on_stop;
    /* This actor's mailbox bound (see fl_system_opts_t); 0 = the
     * system's. */
    uint32_t mailbox_bound;
} fl_actor_opts_t;

/* Counters of a system, for tests and monitoring. */
typedef struct fl_system_stats {
    uint64_t actors_live;    /* actors spawned and not yet stopped */
    uint64_t actors_spawned; /* since the system started */
    uint64_t dead_letters;   /* messages that found no live recipient */
    uint64_t timers_pending; /* timers armed and not yet fired/cancelled */
    uint64_t mutes;          /* times flow control held an actor back */
    uint64_t tells_full;     /* fl_tell_bounded calls that found a mailbox
                                at its bound (refused or waited) */
} fl_system_stats_t;

/* ---- system ----------------------------------------------------------- */

/*
 * fl_system_alloc creates a system and starts its worker and timer threads.
 * opts may be NULL (defaults). On FL_OK *out is the system; the caller owns
 * it and ends it with fl_system_shutdown() and fl_system_free(). Errors:
 * FL_EINVAL (out NULL, workers > 256, max_actors too large), FL_ENOMEM,
 * FL_ESYSTEM (a thread could not be started). Any thread.
 */
FL_EXTERN int fl_system_alloc(const fl_system_opts_t *opts, fl_system_t **out);

/*
 * fl_system_close refuses new spawns, tells and timers (FL_ECLOSED) and asks
 * every actor to stop; stop hooks still run and queued messages become dead
 * letters (asks fail with FL_EUNREACHABLE). Does not block. Idempotent:
 * returns FL_OK every time; FL_EINVAL for NULL. Any thread, also from inside
 * an actor.
 */
FL_EXTERN int fl_system_close(fl_system_t *sys);

/*
 * fl_system_shutdown closes the system and BLOCKS until every actor has
 * stopped, pending timers are dropped (never fired) and every thread has
 * been joined. Idempotent (FL_OK again). FL_EDEADLK when called on one of
 * this system's own threads; FL_EINVAL for NULL.
 */
FL_EXTERN int fl_system_shutdown(fl_system_t *sys);

/*
 * fl_system_free shuts the system down if needed and frees it. NULL is a
 * no-op. Must not be called on the system's own threads (it then only
 * closes the system and leaks it, logging an error).
 */
FL_EXTERN void fl_system_free(fl_system_t *sys);

/* fl_system_workers returns the number of worker threads (0 for NULL). */
FL_EXTERN unsigned fl_system_workers(const fl_system_t *sys);

/* fl_system_stats fills *out; FL_EINVAL for NULL arguments. Any thread. */
FL_EXTERN int fl_system_stats(fl_system_t *sys, fl_system_stats_t *out);

/*
 * fl_system_current returns the system whose worker or timer thread is the
 * calling thread, or whose actor the calling thread is running a turn of
 * (an RPC service's I/O thread running an endpoint's calls), or NULL on
 * any other thread.
 */
FL_EXTERN fl_system_t *fl_system_current(void);

/* ---- actors ----------------------------------------------------------- */

/*
 * fl_actor_spawn creates an actor running receive with state. The state
 * stays the caller's: fling never frees it (free it in on_stop). opts may be
 * NULL. On FL_OK *out names the actor; the start hook is queued before
 * anything that can be sent to *out, so it runs first. Errors: FL_EINVAL
 * (receive or out NULL, name too long), FL_EEXIST (name taken by a live
 * actor), FL_ELIMIT (max_actors live), FL_ENOMEM, FL_ECLOSED. Any thread.
 */
FL_EXTERN int fl_actor_spawn(fl_system_t *sys, fl_receive_cb receive,
                             void *state, const fl_actor_opts_t *opts,
                             fl_actor_ref_t *out);

/*
 * fl_actor_stop asks an actor to stop: it finishes the message it is
 * handling, runs its stop hook, and every message still queued becomes a
 * dead letter. Does not block. Returns FL_OK if the actor was live (also if
 * a stop was already requested), FL_EUNREACHABLE if ref names no live actor
 * (already stopped, never existed), FL_ECLOSED after shutdown, FL_EINVAL for
 * NULL. An actor may stop itself. Any thread.
 */
FL_EXTERN int fl_actor_stop(fl_system_t *sys, fl_actor_ref_t ref);

/*
 * fl_actor_alive returns true if ref names an actor that has been spawned
 * and has not finished stopping. Any thread; racy by nature.
 */
FL_EXTERN bool fl_actor_alive(fl_system_t *sys, fl_actor_ref_t ref);

/*
 * fl_actor_lookup finds a live actor by name. FL_ENOENT if none,
 * FL_EINVAL for NULL arguments, FL_ECLOSED after shutdown. Any thread.
 */
FL_EXTERN int fl_actor_lookup(fl_system_t *sys, const char *name,
                              fl_actor_ref_t *out);

/*
 * fl_actor_termination gives a future (caller owns a reference) that
 * completes with a NULL value once the actor has stopped: its stop hook has
 * returned and its name is free. Fails at once with FL_EUNREACHABLE if ref
 * names no live actor. FL_EINVAL/FL_ENOMEM/FL_ECLOSED leave *out NULL. Any
 * thread.
 */
FL_EXTERN int fl_actor_termination(fl_system_t *sys, fl_actor_ref_t ref,
                                   fl_future_t **out);

/*
 * fl_self returns the actor whose code is running on the calling thread
 * (receive, hooks, exec, continuations), or id 0 elsewhere.
 */
FL_EXTERN fl_actor_ref_t fl_self(void);

/* ---- messages --------------------------------------------------------- */

/*
 * fl_msg_alloc returns a message of the given user type with size bytes of
 * zeroed payload (16-byte aligned), or NULL when out of memory or size is
 * larger than 1 GiB. The caller owns it until it gives it to fl_tell,
 * fl_ask, fl_reply, fl_timer_send or fl_msg_free. Any thread.
 */
FL_EXTERN fl_msg_t *fl_msg_alloc(uint32_t type, size_t size);

/* fl_msg_free frees a message the caller owns; NULL is a no-op. */
FL_EXTERN void fl_msg_free(fl_msg_t *msg);

/*
 * fl_msg_free_cb is fl_msg_free with the fl_free_cb signature, for
 * completing a future with a message: fl_future_complete(f, reply,
 * fl_msg_free_cb).
 */
FL_EXTERN void fl_msg_free_cb(void *msg);

/* fl_msg_data returns the payload (NULL for a NULL message). */
FL_EXTERN void *fl_msg_data(fl_msg_t *msg);

/* fl_msg_size returns the payload size in bytes. */
FL_EXTERN size_t fl_msg_size(const fl_msg_t *msg);

/* fl_msg_type returns the user type given at allocation. */
FL_EXTERN uint32_t fl_msg_type(const fl_msg_t *msg);

/*
 * fl_msg_sender returns the actor that sent msg (id 0 when it was sent from
 * outside any actor).
 */
FL_EXTERN fl_actor_ref_t fl_msg_sender(const fl_msg_t *msg);

/* fl_msg_is_ask returns true while msg carries an unanswered ask. */
FL_EXTERN bool fl_msg_is_ask(const fl_msg_t *msg);

/*
 * fl_tell sends msg to an actor, fire and forget. ALWAYS consumes msg.
 * Returns FL_OK once queued, FL_EUNREACHABLE (dead letter: the actor is
 * stopped or never existed), FL_ECLOSED (system shut down), FL_EINVAL (NULL
 * sys or msg). Messages from one sender arrive in the order sent. Any
 * thread; never blocks.
 */
FL_EXTERN int fl_tell(fl_system_t *sys, fl_actor_ref_t to, fl_msg_t *msg);

/*
 * fl_tell_bounded is fl_tell for threads outside the runtime that respects
 * the recipient's mailbox bound (docs/guide.md, "Flow control"). When the
 * mailbox holds its bound or more: with timeout_ms 0 it returns FL_EFULL at
 * once; with timeout_ms > 0 or FL_INFINITE it BLOCKS until the mailbox has
 * drained to half its bound, then sends, or returns FL_ETIMEDOUT. msg is
 * consumed unless it returns FL_EFULL, FL_ETIMEDOUT or FL_EDEADLK (a wait
 * asked on a runtime thread: a worker, the timer thread, an I/O thread):
 * then the caller still owns it, to send again or free. Other returns as
 * fl_tell (msg consumed); FL_EINVAL also for a negative timeout_ms other
 * than FL_INFINITE. Actors need not use it: fl_tell from an actor holds
 * the sender back by itself. Any thread.
 */
FL_EXTERN int fl_tell_bounded(fl_system_t *sys, fl_actor_ref_t to,
                              fl_msg_t *msg, int64_t timeout_ms);

/*
 * fl_actor_queued sets *out to the messages queued for ref's actor: sent
 * and not yet handled, approximately: the messages of a turn are counted
 * out when the turn ends, and a mailbox bound of 2048 or more counts a
 * sample of the messages (off by a few times 8 per sending thread; docs/
 * guide.md, "Flow control"). FL_EUNREACHABLE if ref names no live actor,
 * FL_EINVAL for NULL arguments. Any thread; racy by nature.
 */
FL_EXTERN int fl_actor_queued(fl_system_t *sys, fl_actor_ref_t ref,
                              uint32_t *out);

/*
 * fl_ask sends msg and gives a future of the reply (caller owns a
 * reference). ALWAYS consumes msg. timeout_ms > 0 or FL_INFINITE. On FL_OK
 * *out is a future that completes with the reply message (an fl_msg_t *
 * owned by the future; fl_future_take_value() to keep it) or fails: with
 * FL_EUNREACHABLE at once if the recipient is not live (or later if it stops
 * before answering: "recipient unreachable: actor <id> has stopped..."),
 * FL_ETIMEDOUT after the timeout ("Ask to actor <id> timed out after <N>
 * ms", the id as 16 hex digits), the responder's code
 * and message from fl_reply_error(), FL_ENOREPLY if the responder dropped
 * the request without answering. FL_EINVAL (bad arguments), FL_ENOMEM and
 * FL_ECLOSED leave *out NULL. Any thread; never blocks.
 */
FL_EXTERN int fl_ask(fl_system_t *sys, fl_actor_ref_t to, fl_msg_t *msg,
                     int64_t timeout_ms, fl_future_t **out);

/*
 * fl_reply answers the ask carried by request with reply. ALWAYS consumes
 * reply. FL_EINVAL if request carries no (more) ask, FL_EALREADY if the
 * asker's future was already complete (timed out, cancelled). Call it in the
 * receive callback, before it returns.
 */
FL_EXTERN int fl_reply(fl_msg_t *request, fl_msg_t *reply);

/*
 * fl_reply_error fails the ask carried by request with err (not FL_OK) and
 * a formatted message (NULL fmt: fl_strerror(err)). Same returns as
 * fl_reply.
 */
FL_EXTERN int fl_reply_error(fl_msg_t *request, int err, const char *fmt, ...)
    FL_PRINTF(3, 4);

/*
 * fl_msg_take_reply detaches the asker's future from request so the answer
 * can be given later, from any thread, with fl_future_complete(f, reply,
 * fl_msg_free_cb) or fl_future_fail. Caller owns the returned
 * reference. NULL if request carries no ask.
 */
FL_EXTERN fl_future_t *fl_msg_take_reply(fl_msg_t *request);

/* ---- running code on an actor's thread -------------------------------- */

/*
 * fl_actor_exec queues fn(arg) to run on the actor's thread, in mailbox
 * order with its messages. ALWAYS consumes arg: if fn cannot run (the actor
 * stops first, or the call fails) arg_free(arg) is called instead (if
 * arg_free is not NULL). Returns FL_OK, FL_EUNREACHABLE, FL_ECLOSED,
 * FL_EINVAL, FL_ENOMEM. Any thread; never blocks.
 */
FL_EXTERN int fl_actor_exec(fl_system_t *sys, fl_actor_ref_t ref, fl_exec_cb fn,
                            void *arg, fl_free_cb arg_free);

/*
 * fl_future_on_complete_in runs cb(f, arg) on the actor's thread once f
 * completes (the actor's "main thread executor"). If the actor has stopped
 * by then, cb does not run and arg_free(arg) is called instead; so is it if
 * f is freed without ever completing. Returns FL_OK, or an error as
 * fl_actor_exec (then arg is freed at once). The system must not be freed
 * while such a continuation is pending (complete or release f first). Any
 * thread.
 */
FL_EXTERN int fl_future_on_complete_in(fl_future_t *f, fl_system_t *sys,
                                       fl_actor_ref_t ref, fl_future_cb cb,
                                       void *arg, fl_free_cb arg_free);

/* ---- timers ----------------------------------------------------------- */

/* Timers (and the timeouts of asks and futures) never fire early. One due
 * in 1 s or more is timed from the coarse clock, a quarter of the precise
 * clock's cost, and may fire up to 10 ms (1% of its delay; a periodic
 * timer keeps that offset) late; a shorter one fires as soon as the timer
 * thread wakes. */

/*
 * fl_timer_send delivers msg to an actor's mailbox after delay_ms, and then
 * every period_ms (a copy of the payload each time) if period_ms > 0: fixed
 * rate, each deadline = previous deadline + period. Timers fire in deadline
 * order, FIFO for equal deadlines. ALWAYS consumes msg. A delivery to an
 * actor that has stopped is a dead letter (a periodic timer then cancels
 * itself). Returns FL_OK (*out, may be NULL, gets the id), FL_EINVAL
 * (negative delay or period, NULL msg), FL_ECLOSED, FL_ENOMEM. Any thread.
 */
FL_EXTERN int fl_timer_send(fl_system_t *sys, fl_actor_ref_t to, fl_msg_t *msg,
                            int64_t delay_ms, int64_t period_ms,
                            fl_timer_id_t *out);

/*
 * fl_timer_start runs cb(sys, arg) on the timer thread after delay_ms, then
 * every period_ms if period_ms > 0 (fixed rate). cb must not block. arg
 * stays the caller's. Returns as fl_timer_send.
 */
FL_EXTERN int fl_timer_start(fl_system_t *sys, fl_timer_cb cb, void *arg,
                             int64_t delay_ms, int64_t period_ms,
                             fl_timer_id_t *out);

/*
 * fl_timer_cancel cancels a timer. FL_OK means it will never fire again (a
 * message timer's pending delivery is freed, never queued; a callback timer
 * running right now on the timer thread finishes that run). FL_ENOENT if
 * the id is unknown, already fired (one-shot) or already cancelled;
 * FL_ECLOSED after shutdown. Any thread, also a timer callback.
 */
FL_EXTERN int fl_timer_cancel(fl_system_t *sys, fl_timer_id_t id);

#ifdef __cplusplus
}
#endif

#endif /* FLING_ACTOR_H */
