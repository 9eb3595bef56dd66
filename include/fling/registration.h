/*
 * fling/registration.h - retrying registration and registered connections
 * (Flink's RetryingRegistration and RegisteredRpcConnection, contract 3.1
 * and 3.2).
 *
 * A registration belongs to an endpoint, its owner (the caller: a
 * TaskManager registering at a ResourceManager). It connects to the target
 * address (fenced with the target's token where one is given), then calls
 * the registration function the user supplies, which asks the target and
 * gives a future of a response: success, rejection (permanent) or failure
 * (temporary). Until one of success or rejection it retries:
 *
 *   connect fails                  -> again after the error delay
 *   the attempt times out          -> again at once, timeout doubled
 *                                     (initial, 2x, 4x ... up to max)
 *   the attempt fails otherwise    -> connects again after the error
 *                                     delay, through a new gateway
 *   a failure answer               -> again after the refused delay
 *   a rejection answer             -> ends, no retry
 *
 * After a delay the next attempt starts again with the initial timeout.
 * Timeouts and failure answers retry through the gateway already
 * connected; an error connects anew, as Flink does: a target that
 * restarted at the same address is a new endpoint, which the old gateway
 * never reaches (its calls fail with FL_EUNREACHABLE).
 * Better than Flink: every delay is spread by a random jitter (+-20% by
 * default) so that many callers that lost the same target do not come back
 * in one burst, and each retry is logged (component "cluster") with the
 * target, the attempt number, why it failed and when the next one starts.
 *
 * Only those delays are jittered. The first attempt starts at once: each
 * caller learns of its target at its own moment, and a wait there would
 * only delay every registration. The attempt timeouts are not jittered: a
 * timeout bounds how long an attempt may wait for its answer, and a
 * jittered one would give up before the configured timeout or wait past
 * max_timeout_ms; callers that time out together retry together at most
 * until the timeout has doubled up to the maximum, and then only if the
 * target stays silent, which a burst of requests does not worsen.
 *
 * EVERY callback of this layer (the registration function, the connection's
 * callbacks) runs on the owner's main thread, and every timer is one of the
 * owner's scheduled tasks: the owner must be started while the
 * registration runs. If the owner stops or terminates first, the result
 * fails with FL_EUNREACHABLE.
 */
#ifndef FLING_REGISTRATION_H
#define FLING_REGISTRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "future.h"
#include "rpc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- options ------------------------------------------------------------ */

/* Flink's defaults (cluster.registration.*). */
#define FL_REGISTRATION_INITIAL_TIMEOUT_MS 100
#define FL_REGISTRATION_MAX_TIMEOUT_MS 30000
#define FL_REGISTRATION_ERROR_DELAY_MS 10000
#define FL_REGISTRATION_REFUSED_DELAY_MS 30000
/* Ours: each delay is multiplied by a factor drawn from [1 - j, 1 + j]. */
#define FL_REGISTRATION_JITTER 0.2

/* A random source: 64 uniformly random bits per call. */
typedef uint64_t (*fl_random_cb)(void *arg);

typedef struct fl_registration_opts {
    /* Timeout of the first attempt, > 0 (cluster.registration.initial-
     * timeout). */
    int64_t initial_timeout_ms;
    /* Largest attempt timeout, > 0 (cluster.registration.max-timeout). */
    int64_t max_timeout_ms;
    /* Pause after a connect failure or a failed attempt, >= 0
     * (cluster.registration.error-delay). */
    int64_t error_delay_ms;
    /* Pause after a failure answer, >= 0 (cluster.registration.refused-
     * registration-delay). */
    int64_t refused_delay_ms;
    /* Jitter of the delays, 0 <= jitter <= 1 (cluster.registration.jitter);
     * 0 turns it off. */
    double jitter;
    /* Random source of the jitter; NULL: an internal one, seeded from the
     * clock. Tests inject a deterministic one. Called on the owner's main
     * thread only. */
    fl_random_cb random;
    void *random_arg;
} fl_registration_opts_t;

/* fl_registration_opts_default fills o with the defaults above. */
FL_EXTERN void fl_registration_opts_default(fl_registration_opts_t *o);

/*
 * fl_registration_opts_validate checks o: FL_OK, or FL_EINVAL with why
 * (why_len bytes, may be NULL) naming the field, its key and the value,
 * e.g. "initial_timeout_ms (cluster.registration.initial-timeout) must be
 * > 0 ms, got 0 ms". Any thread.
 */
FL_EXTERN int fl_registration_opts_validate(const fl_registration_opts_t *o,
                                            char *why, size_t why_len);

/*
 * fl_registration_jitter returns delay_ms spread by o's jitter, drawing one
 * number from o's random source (o->random must not be NULL): delay_ms * f
 * with f uniform in [1 - jitter, 1 + jitter], rounded down; 0 stays 0.
 */
FL_EXTERN int64_t fl_registration_jitter(const fl_registration_opts_t *o,
                                         int64_t delay_ms);

/* ---- responses ---------------------------------------------------------- */

typedef enum fl_registration_outcome {
    FL_REGISTRATION_SUCCESS = 0, /* registered: the result's outcome */
    FL_REGISTRATION_REJECTION,   /* refused for good: ends, no retry */
    FL_REGISTRATION_FAILURE      /* refused for now: retry after a delay */
} fl_registration_outcome_t;

#define FL_REGISTRATION_REASON_MAX 256

/* A response to one attempt, and the result of a registration. */
typedef struct fl_registration_response {
    fl_registration_outcome_t outcome;
    /* What the target answered (its reply, a registration id ...), owned
     * by the response and freed with payload_free (may be NULL). */
    void *payload;
    fl_free_cb payload_free;
    /* A failure's reason (truncated), "" otherwise. */
    char reason[FL_REGISTRATION_REASON_MAX];
    /* In the result of a success: the gateway to the target, owned by the
     * response (set it to NULL to keep it, then fl_rpc_gateway_free it).
     * NULL otherwise. */
    fl_rpc_gateway_t *gateway;
} fl_registration_response_t;

/*
 * fl_registration_response_alloc makes a response for a registration
 * function to complete its future with (value_free:
 * fl_registration_response_free). ALWAYS consumes payload (freed with
 * payload_free if allocation fails). reason: a printf format (NULL: "").
 * NULL when out of memory. Any thread.
 */
FL_EXTERN fl_registration_response_t *
fl_registration_response_alloc(fl_registration_outcome_t outcome, void *payload,
                               fl_free_cb payload_free, const char *reason, ...)
    FL_PRINTF(4, 5);

/* Frees r, its payload and its gateway. NULL is a no-op. */
FL_EXTERN void fl_registration_response_free(void *r);

/* ---- registration ------------------------------------------------------- */

typedef struct fl_registration fl_registration_t;

/*
 * The registration function: ask the target through gw (borrowed, valid
 * until the returned future completes) to register, giving the call
 * timeout_ms (the attempt's timeout; e.g. fl_rpc_call(gw, m, req,
 * timeout_ms, ...)) and token (the target's, NULL for unfenced). Return
 * FL_OK with *out a future (the caller takes its reference) of an
 * fl_registration_response_t * (value_free fl_registration_response_free),
 * or failing with FL_ETIMEDOUT (a timeout: next attempt at once) or any
 * other code (an error: next attempt connects again after the error
 * delay). Returning FL_EUNREACHABLE or FL_ECLOSED (gw refused the call:
 * its endpoint or connection is gone) is such an error too; returning any
 * other error code ends the registration: its result fails with that code.
 * Runs on the owner's main thread. The registration also fails the attempt
 * with FL_ETIMEDOUT if the future is not complete after timeout_ms.
 */
typedef int (*fl_registration_invoke_cb)(fl_rpc_gateway_t *gw,
                                         const fl_fencing_token_t *token,
                                         int64_t timeout_ms, void *arg,
                                         fl_future_t **out);

/* What to register where; copied by the functions that take it. */
typedef struct fl_registration_spec {
    /* The target's name for the logs ("resourcemanager"); NULL: none. */
    const char *target_name;
    /* The target endpoint's address (fl_rpc_connect's). */
    const char *address;
    /* The gateway's service (the target implements it). */
    const ProtobufCServiceDescriptor *desc;
    /* The target's fencing token (its leader session); NULL: unfenced. */
    const fl_fencing_token_t *token;
    fl_registration_invoke_cb invoke;
    /* invoke's arg, borrowed: it must outlive the registration. */
    void *arg;
    /* NULL: the defaults. Validated (fl_registration_opts_validate). */
    const fl_registration_opts_t *opts;
} fl_registration_spec_t;

/*
 * fl_registration_alloc makes a registration of owner (borrowed, must
 * outlive it: free the registration in owner's on_stop at the latest) at
 * spec's target; it starts with fl_registration_start. Returns FL_OK (the
 * caller owns *out: fl_registration_free), FL_EINVAL with why (NULL owner,
 * address, desc or invoke; bad options, as fl_registration_opts_validate
 * says) or FL_ENOMEM. Any thread; never blocks.
 */
FL_EXTERN int fl_registration_alloc(fl_rpc_endpoint_t *owner,
                                    const fl_registration_spec_t *spec,
                                    fl_registration_t **out, char *why,
                                    size_t why_len);

/*
 * fl_registration_start starts the first attempt on the owner's main
 * thread (Flink's startRegistration). FL_OK; FL_ESTATE if already started;
 * or what fl_rpc_run_async refuses with (the result then fails with that
 * code). Any thread; never blocks.
 */
FL_EXTERN int fl_registration_start(fl_registration_t *reg);

/*
 * fl_registration_future is the result, always the same future (borrowed,
 * valid until fl_registration_free; retain it to keep it longer). It
 * completes with an fl_registration_response_t * whose outcome is SUCCESS
 * (its gateway set) or REJECTION, or fails: FL_ECANCELED ("Registration at
 * <target> was cancelled"), FL_EUNREACHABLE (the owner stopped running
 * it), the code of a registration function or connect that refused, or
 * the code of the owner refusing a step ("Registration at <target>
 * stopped: could not wait for the answer on its owner endpoint 'tm':
 * out of memory").
 * fl_future_cancel on it cancels the registration as
 * fl_registration_cancel does (the message is then the future's own).
 */
FL_EXTERN fl_future_t *fl_registration_future(const fl_registration_t *reg);

/*
 * fl_registration_cancel stops every further attempt and fails the result
 * with FL_ECANCELED (if still pending); an answer that comes later is
 * ignored. Idempotent. Any thread; never blocks.
 */
FL_EXTERN void fl_registration_cancel(fl_registration_t *reg);

/* True once cancelled. Any thread. */
FL_EXTERN bool fl_registration_is_cancelled(const fl_registration_t *reg);

/* fl_registration_free cancels and releases the caller's handle. NULL is a
 * no-op. Any thread. */
FL_EXTERN void fl_registration_free(fl_registration_t *reg);

/* ---- registered connection ---------------------------------------------- */

typedef struct fl_registered_connection fl_registered_connection_t;

/* The outcomes, on the owner's main thread. resp is borrowed for the call
 * (on success the connection keeps it: fl_registered_connection_gateway).
 * on_failure gets the code and message of a registration that failed for
 * another reason than its cancellation (which is only logged). Any of the
 * three may be NULL. */
typedef struct fl_registered_connection_cbs {
    void (*on_success)(fl_registered_connection_t *c,
                       const fl_registration_response_t *resp, void *arg);
    void (*on_rejection)(fl_registered_connection_t *c,
                         const fl_registration_response_t *resp, void *arg);
    void (*on_failure)(fl_registered_connection_t *c, int err,
                       const char *message, void *arg);
} fl_registered_connection_cbs_t;

/*
 * fl_registered_connection_alloc makes a connection of owner to spec's
 * target (spec as fl_registration_alloc, validated the same); cbs is
 * copied, arg is the callbacks' (borrowed). Returns FL_OK (caller owns *out:
 * fl_registered_connection_free), FL_EINVAL with why, FL_ENOMEM. Any
 * thread.
 */
FL_EXTERN int fl_registered_connection_alloc(
    fl_rpc_endpoint_t *owner, const fl_registration_spec_t *spec,
    const fl_registered_connection_cbs_t *cbs, void *arg,
    fl_registered_connection_t **out, char *why, size_t why_len);

/*
 * fl_registered_connection_start starts registering, once: FL_OK, FL_ESTATE
 * if already started, FL_ECLOSED once closed, or what fl_registration_alloc
 * and fl_registration_start refuse with (FL_ENOMEM ...). A refusal reaches
 * no callback and leaves c unstarted: start may be called again. Any
 * thread; never blocks.
 */
FL_EXTERN int fl_registered_connection_start(fl_registered_connection_t *c);

/*
 * fl_registered_connection_try_reconnect cancels the pending registration
 * and starts a fresh one: FL_OK; FL_ESTATE before the first success;
 * FL_ECLOSED once closed; or a refusal as fl_registered_connection_start's,
 * which leaves the pending registration as it was. The gateway of the last
 * success stays the connection's until the next success replaces it. Any
 * thread.
 */
FL_EXTERN int
fl_registered_connection_try_reconnect(fl_registered_connection_t *c);

/* fl_registered_connection_close cancels the pending registration; no
 * callback runs afterwards. Idempotent. Any thread. */
FL_EXTERN void fl_registered_connection_close(fl_registered_connection_t *c);

/* Closes and releases the handle. NULL is a no-op. Any thread. */
FL_EXTERN void fl_registered_connection_free(fl_registered_connection_t *c);

/* The target's address and token (false: unfenced; *out untouched). */
FL_EXTERN const char *
fl_registered_connection_address(const fl_registered_connection_t *c);
FL_EXTERN bool
fl_registered_connection_token(const fl_registered_connection_t *c,
                               fl_fencing_token_t *out);

/*
 * The gateway of the last success (borrowed: valid until the next success,
 * the next call on the owner's main thread after it, or the free), NULL
 * before the first. Owner's main thread (where the callbacks run).
 */
FL_EXTERN fl_rpc_gateway_t *
fl_registered_connection_gateway(const fl_registered_connection_t *c);

/* Connected: a registration has succeeded and the connection is not
 * closed. Closed: fl_registered_connection_close was called. Any thread. */
FL_EXTERN bool
fl_registered_connection_is_connected(const fl_registered_connection_t *c);
FL_EXTERN bool
fl_registered_connection_is_closed(const fl_registered_connection_t *c);

#ifdef __cplusplus
}
#endif

#endif /* FLING_REGISTRATION_H */
