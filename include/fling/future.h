/*
 * fling/future.h - one-shot futures (a promise and its future in one object).
 *
 * A future is PENDING until it is completed with a value or failed with an
 * error code and a message; that happens EXACTLY ONCE, whichever of
 * completion, failure, timeout or cancellation comes first. Later attempts
 * return FL_EALREADY and change nothing.
 *
 * Futures are reference counted: fl_future_alloc() and every function that
 * hands out a future give the caller one reference, released with
 * fl_future_release(). The value belongs to the future and is freed with the
 * value_free function given at completion when the last reference goes,
 * unless someone took it with fl_future_take_value().
 *
 * Callbacks run exactly once, with no fling lock held: immediately on the
 * registering thread if the future is already complete, otherwise on the
 * thread that completes it (a worker, the timer thread, or any user thread).
 * Keep them short; to run on an actor's thread use fl_future_on_complete_in
 * (declared in actor.h).
 */
#ifndef FLING_FUTURE_H
#define FLING_FUTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fl_future fl_future_t;
typedef struct fl_system fl_system_t;

/* Frees a value or an argument handed to fling. */
typedef void (*fl_free_cb)(void *p);

/* Called once when a future completes (successfully or not). */
typedef void (*fl_future_cb)(fl_future_t *f, void *arg);

/*
 * Maps the value of a successful future (then). Return FL_OK and set *out
 * (and *out_free, may stay NULL) to complete the derived future, or return
 * an error code to fail it (its message is then fl_strerror(code)).
 * value is borrowed.
 */
typedef int (*fl_then_cb)(void *arg, void *value, void **out,
                          fl_free_cb *out_free);

/*
 * Maps the value of a successful future to another future (compose / flat
 * map). Return a future the caller of the callback gives up one reference
 * to, or NULL to fail the derived future with FL_ENOMEM. value is borrowed.
 */
typedef fl_future_t *(*fl_compose_cb)(void *arg, void *value);

/*
 * fl_future_alloc returns a new pending future with one reference, or NULL
 * when out of memory. Caller owns the reference. Any thread.
 */
FL_EXTERN fl_future_t *fl_future_alloc(void);

/*
 * fl_future_retain adds a reference (NULL is ignored); returns f. Any
 * thread.
 */
FL_EXTERN fl_future_t *fl_future_retain(fl_future_t *f);

/*
 * fl_future_release drops a reference (NULL is ignored). The last one frees
 * the future and its value. A pending future whose last reference goes is
 * freed without running its callbacks; producers and timers hold their own
 * references, so that only happens when nobody can complete it. Any thread.
 */
FL_EXTERN void fl_future_release(fl_future_t *f);

/*
 * fl_future_complete completes f with value. ALWAYS consumes value: if f was
 * already complete it returns FL_EALREADY and calls value_free(value) (when
 * value_free is not NULL). Returns FL_EINVAL if f is NULL. Runs the
 * callbacks on the calling thread. Any thread.
 */
FL_EXTERN int fl_future_complete(fl_future_t *f, void *value,
                                 fl_free_cb value_free);

/* Size of the longest failure message a future keeps, its NUL included. */
#define FL_FUTURE_MESSAGE_MAX 1024

/*
 * fl_future_fail fails f with err (must not be FL_OK: FL_EINVAL) and a
 * message formatted from fmt (NULL: fl_strerror(err)); the message is copied
 * and truncated to FL_FUTURE_MESSAGE_MAX - 1 bytes. FL_EALREADY if f was
 * complete. Runs the callbacks on the calling thread. Any thread.
 */
FL_EXTERN int fl_future_fail(fl_future_t *f, int err, const char *fmt, ...)
    FL_PRINTF(3, 4);

/* fl_future_failv is fl_future_fail with a va_list. */
FL_EXTERN int fl_future_failv(fl_future_t *f, int err, const char *fmt,
                              va_list ap) FL_PRINTF(3, 0);

/*
 * fl_future_cancel fails a pending f with FL_ECANCELED and then runs the
 * cancel hook, if one is set. FL_EALREADY if f was complete. Any thread.
 */
FL_EXTERN int fl_future_cancel(fl_future_t *f);

/*
 * fl_future_set_cancel_hook installs a function the producer wants run when
 * f is cancelled (to abandon the work); arg belongs to the caller. Returns
 * FL_EALREADY if f is already complete (the hook will never run). Any
 * thread.
 */
FL_EXTERN int fl_future_set_cancel_hook(fl_future_t *f, fl_future_cb hook,
                                        void *arg);

/* fl_future_done returns true once f is complete. Any thread; never blocks. */
FL_EXTERN bool fl_future_done(const fl_future_t *f);

/*
 * fl_future_error returns FL_OK if f succeeded, its error code if it
 * failed, FL_EPENDING while pending, FL_EINVAL for NULL. Any thread.
 */
FL_EXTERN int fl_future_error(const fl_future_t *f);

/*
 * fl_future_message returns the failure message of a failed future (valid as
 * long as the caller holds its reference), "" otherwise. Any thread.
 */
FL_EXTERN const char *fl_future_message(const fl_future_t *f);

/*
 * fl_future_value returns the value of a successful future, borrowed (valid
 * while the caller holds its reference and nobody took it); NULL otherwise.
 * Any thread.
 */
FL_EXTERN void *fl_future_value(const fl_future_t *f);

/*
 * fl_future_take_value moves the value out of a successful future: the
 * caller owns it from then on (free it as the producer documents; for ask
 * replies with fl_msg_free()). Returns NULL if f is not successful or the
 * value was already taken. Any thread.
 */
FL_EXTERN void *fl_future_take_value(fl_future_t *f);

/*
 * fl_future_on_complete registers cb to run once f completes (at once, on
 * this thread, if it already has). Several callbacks run in registration
 * order. Returns FL_ENOMEM (cb will not run) or FL_OK. Any thread.
 */
FL_EXTERN int fl_future_on_complete(fl_future_t *f, fl_future_cb cb, void *arg);

/*
 * fl_future_then returns a new future (caller owns a reference) that
 * completes with fn's result once f succeeds, or fails with f's error and
 * message if f fails (fn is then not called). fn runs on the thread that
 * completes f. NULL when out of memory.
 */
FL_EXTERN fl_future_t *fl_future_then(fl_future_t *f, fl_then_cb fn, void *arg);

/*
 * fl_future_compose returns a new future (caller owns a reference) that
 * takes the outcome (value or error) of the future fn returns once f
 * succeeds; fails with f's error if f fails. The value is moved from the
 * inner future to the new one. NULL when out of memory.
 */
FL_EXTERN fl_future_t *fl_future_compose(fl_future_t *f, fl_compose_cb fn,
                                         void *arg);

/*
 * fl_future_all returns a new future (caller owns a reference) that succeeds
 * with a NULL value once all n futures succeed, or fails with the error and
 * message of the first one to fail, at once. n == 0 gives a completed
 * future. The inputs are borrowed (fl_future_all takes its own references).
 * NULL when out of memory or when fs is NULL with n > 0.
 */
FL_EXTERN fl_future_t *fl_future_all(fl_future_t *const *fs, size_t n);

/*
 * fl_future_set_timeout fails f with FL_ETIMEDOUT ("timed out after N ms")
 * unless it completes within timeout_ms, measured by sys's timer thread.
 * Returns FL_EINVAL for timeout_ms <= 0 or NULL arguments, FL_ECLOSED if sys
 * is closed (a timeout armed before the system shuts down fails f with
 * FL_ECLOSED then, so nobody waits for a timer that will never fire),
 * FL_EALREADY if f is already complete, FL_EEXIST if f already has a
 * timeout, FL_ENOMEM. If the system closes while arming, f is failed with
 * FL_ECLOSED and that is returned. The timer is cancelled when f completes.
 * Any thread.
 */
FL_EXTERN int fl_future_set_timeout(fl_system_t *sys, fl_future_t *f,
                                    int64_t timeout_ms);

/*
 * fl_future_wait BLOCKS the calling thread until f completes or timeout_ms
 * passes (FL_INFINITE: no limit). Returns f's result (FL_OK or its error
 * code) if it completed, FL_ETIMEDOUT if the wait ran out (f stays pending;
 * use fl_future_done to tell this apart from a future that itself failed
 * with FL_ETIMEDOUT), FL_EDEADLK without waiting when called on a fling
 * worker or timer thread, FL_EINVAL for NULL or a negative timeout other
 * than FL_INFINITE. timeout_ms 0 polls: the result, or FL_ETIMEDOUT at
 * once. A wait first polls f for up to 30 us (yielding the core between
 * polls), then sleeps. Threads outside the runtime only.
 */
FL_EXTERN int fl_future_wait(fl_future_t *f, int64_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* FLING_FUTURE_H */
