/*
 * fling/heartbeat.h - heartbeats between cluster components (Flink's
 * HeartbeatManager, contract 3.3).
 *
 * A heartbeat manager belongs to one component (an endpoint) and watches
 * its targets, the components it keeps company with. It is a SENDER (it
 * requests a heartbeat from every target each interval) or a RECEIVER (it
 * answers each request with a heartbeat of its own). Both sides time a
 * target out when they hear nothing from it for the timeout.
 *
 * The manager does not know the .proto: for each target the user gives a
 * send function that carries a heartbeat message (fl_heartbeat_msg_t) to
 * that target through the user's gateway and returns the call's future;
 * the user's RPC handlers hand what arrives to fl_heartbeat_receive_request
 * (on the receiver) and fl_heartbeat_receive_response (on the sender).
 *
 * THREADS: every callback runs on the owning endpoint's main thread, and
 * every function below except fl_heartbeat_manager_alloc and
 * fl_heartbeat_manager_free must be called there (else FL_ESTATE). The
 * manager's timers are two periodic tasks of the endpoint (the sender's
 * rounds and the timeout check), whatever the number of targets: the
 * targets wait on one list ordered by deadline. The check runs 20 times
 * per timeout, so a target times out at most 5% of the timeout late. A
 * heartbeat handled after its target's deadline times the target out
 * first (on_timeout runs within the receive call), as the check would
 * have: after a stall (a paused process) the outcome does not depend on
 * which of the two the main thread takes first.
 *
 * Better than Flink: the timeout says who timed out, when it was last
 * heard from and how long the timeout is; and the two sides exchange their
 * interval and timeout with their first heartbeats, so a pair that cannot
 * work (the receiver's timeout shorter than the sender's interval) is
 * refused on both sides with one clear message instead of flapping.
 */
#ifndef FLING_HEARTBEAT_H
#define FLING_HEARTBEAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "future.h"
#include "rpc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Flink's defaults: heartbeat.interval, heartbeat.timeout and
 * heartbeat.rpc-failure-threshold. */
#define FL_HEARTBEAT_DEFAULT_INTERVAL_MS 10000
#define FL_HEARTBEAT_DEFAULT_TIMEOUT_MS 50000
#define FL_HEARTBEAT_DEFAULT_FAILURE_THRESHOLD 2

typedef struct fl_heartbeat_manager fl_heartbeat_manager_t;

typedef enum fl_heartbeat_role {
    /* Answers requests; never sends on its own. */
    FL_HEARTBEAT_RECEIVER = 0,
    /* Requests a heartbeat from every target each interval. */
    FL_HEARTBEAT_SENDER = 1
} fl_heartbeat_role_t;

/* The interval and timeout a side announces to its peer. */
typedef struct fl_heartbeat_timing {
    int64_t interval_ms;
    int64_t timeout_ms;
} fl_heartbeat_timing_t;

/*
 * A heartbeat on its way: what a send function must carry to the target,
 * and what the user's handler hands back to the manager on the other side.
 * Everything is borrowed for the duration of the call it is passed to.
 */
typedef struct fl_heartbeat_msg {
    /* The sending component's id (its manager's id). */
    const char *origin;
    /* The id the target was monitored under (for the send function). */
    const char *target;
    /* The payload (retrieve callback), or NULL with len 0: none. */
    const void *payload;
    size_t payload_len;
    /* The sender of this message's interval and timeout, or NULL. Set on
     * a side's first heartbeats to a target, until the target was heard
     * from after one of them left; carry it when set. */
    const fl_heartbeat_timing_t *timing;
} fl_heartbeat_msg_t;

/*
 * Sends msg (borrowed: copy or pack it before returning) to the target
 * through the user's gateway: a heartbeat request from a sender, a
 * heartbeat response from a receiver. Returns the call's future (the
 * manager takes the reference), whose outcome counts towards the
 * unreachable threshold (fails with FL_EUNREACHABLE) or resets it
 * (succeeds); NULL if nothing could be sent (counted as neither). Runs on
 * the main thread.
 */
typedef fl_future_t *(*fl_heartbeat_send_cb)(void *send_arg,
                                             const fl_heartbeat_msg_t *msg);

/* What happened to a target, for the event callbacks (borrowed). */
typedef struct fl_heartbeat_event {
    /* The target's id. */
    const char *target;
    /* FL_ETIMEDOUT (timeout), FL_EUNREACHABLE (unreachable threshold),
     * FL_EINVAL (incompatible interval and timeout). */
    int err;
    /* One or two sentences for the log and the user (see the guide). */
    const char *message;
    /* fl_heartbeat_last_from at the time: wall clock ms, 0 never heard. */
    int64_t last_heartbeat_ms;
    /* How long nothing was heard: since the last heartbeat, or since it
     * was monitored when never heard from. */
    int64_t silent_ms;
    /* This manager's timeout. */
    int64_t timeout_ms;
} fl_heartbeat_event_t;

typedef void (*fl_heartbeat_event_cb)(void *arg,
                                      const fl_heartbeat_event_t *ev);

/*
 * Gives the payload to send to target: set *data (borrowed until the send
 * function returns) and *len, or leave them (NULL, 0) for none.
 */
typedef void (*fl_heartbeat_retrieve_cb)(void *arg, const char *target,
                                         const void **data, size_t *len);

/* A payload that came with a heartbeat from origin (borrowed). */
typedef void (*fl_heartbeat_report_cb)(void *arg, const char *origin,
                                       const void *data, size_t len);

typedef struct fl_heartbeat_opts {
    /* This component's id, sent as the origin of its heartbeats (copied;
     * at most 200 bytes). NULL: the endpoint's address. */
    const char *id;
    fl_heartbeat_role_t role;
    /* 0: the defaults above. interval_ms > 0 and interval_ms <=
     * timeout_ms, else FL_EINVAL. A receiver's interval is announced to
     * its senders only. */
    int64_t interval_ms;
    int64_t timeout_ms;
    /* Failures with FL_EUNREACHABLE in a row that make a target
     * unreachable: > 0, or -1 to never; 0: the default (2). */
    int failure_threshold;

    /* Callbacks, all optional, with arg; on the main thread. */
    /* The target was silent for the timeout: once per target. It stays
     * monitored (a late heartbeat still sets its last heartbeat, and a
     * receiver still answers it) but a sender no longer asks it:
     * unmonitor it, and monitor it again if it comes back. */
    fl_heartbeat_event_cb on_timeout;
    /* failure_threshold heartbeat calls in a row failed with
     * FL_EUNREACHABLE: once per target; its timer stops. */
    fl_heartbeat_event_cb on_unreachable;
    /* The target announced an interval or timeout that cannot work with
     * ours: once per target; it is no longer heartbeated. */
    fl_heartbeat_event_cb on_incompatible;
    fl_heartbeat_retrieve_cb retrieve_payload;
    fl_heartbeat_report_cb report_payload;
    void *arg;
} fl_heartbeat_opts_t;

/*
 * fl_heartbeat_manager_alloc makes a manager owned by ep, which must be
 * STARTED (the manager's periodic tasks end when the endpoint stops, so
 * make it in on_start or later). A sender's first round is one interval
 * from now. The caller owns *out: release it with
 * fl_heartbeat_manager_free. Returns FL_OK; FL_EINVAL for a bad option
 * (NULL ep or out, interval <= 0, interval > timeout, threshold 0 or
 * below -1, an id over 200 bytes), FL_ENOMEM, or the code of
 * fl_rpc_schedule_run_at_fixed_rate (FL_EUNREACHABLE, FL_ECLOSED); on
 * failure, why is written to err_buf (err_len bytes; NULL: not said), e.g.
 * "heartbeat interval 200 ms is longer than the heartbeat timeout 100 ms;
 * the interval must be at most the timeout". Any thread; never blocks.
 */
FL_EXTERN int fl_heartbeat_manager_alloc(fl_rpc_endpoint_t *ep,
                                         const fl_heartbeat_opts_t *opts,
                                         fl_heartbeat_manager_t **out,
                                         char *err_buf, size_t err_len);

/*
 * fl_heartbeat_manager_stop stops the manager (Flink's stop): its tasks
 * are cancelled, every target is forgotten (their send_arg_free runs), no
 * callback runs any more and later calls are ignored (FL_ECLOSED). Main
 * thread. Idempotent.
 */
FL_EXTERN int fl_heartbeat_manager_stop(fl_heartbeat_manager_t *m);

/*
 * fl_heartbeat_manager_free stops the manager if needed and releases it.
 * Main thread, or any thread once the endpoint has terminated (then it
 * only releases). NULL is a no-op.
 */
FL_EXTERN void fl_heartbeat_manager_free(fl_heartbeat_manager_t *m);

/*
 * fl_heartbeat_monitor starts watching target id: its timeout runs from
 * now, and a sender requests heartbeats from it each round. send and
 * send_arg reach it; send_arg_free(send_arg) runs (if not NULL) when the
 * target is unmonitored, the manager stopped, or the call fails (ALWAYS
 * consumed). FL_OK; FL_EEXIST if id is already monitored (the first stays,
 * as in Flink); FL_EINVAL (NULL id or send, id over 200 bytes); FL_ENOMEM;
 * FL_ECLOSED after stop; FL_ESTATE off the main thread. Main thread.
 */
FL_EXTERN int fl_heartbeat_monitor(fl_heartbeat_manager_t *m, const char *id,
                                   fl_heartbeat_send_cb send, void *send_arg,
                                   fl_free_cb send_arg_free);

/*
 * fl_heartbeat_unmonitor stops watching id: no callback for it runs any
 * more, and outcomes of its calls still in flight are ignored. FL_OK,
 * FL_ENOENT (not monitored), FL_ECLOSED, FL_ESTATE. Main thread.
 */
FL_EXTERN int fl_heartbeat_unmonitor(fl_heartbeat_manager_t *m, const char *id);

/*
 * fl_heartbeat_last_from: -1 if id is not monitored, 0 if monitored but
 * never heard from, else the wall-clock time (ms since the epoch) of its
 * last heartbeat. Main thread (-1 elsewhere and after stop).
 */
FL_EXTERN int64_t fl_heartbeat_last_from(const fl_heartbeat_manager_t *m,
                                         const char *id);

/*
 * fl_heartbeat_receive_request hands a heartbeat request to a receiver
 * (Flink's requestHeartbeat): ignored unless msg->origin is monitored.
 * Otherwise its timeout restarts (past its deadline, it times out
 * instead: on_timeout, see above), its payload is reported, and a
 * response carrying the payload retrieved for it goes out through its send
 * function. If msg->timing shows the sender's interval longer than our
 * timeout, the target is refused instead (on_incompatible, once) and the
 * response still goes out with our timing, so the sender refuses too.
 * Returns FL_OK (also when ignored), FL_EINVAL for an incompatible timing
 * (why in err_buf: the handler may fail the call with it), FL_ECLOSED,
 * FL_ESTATE off the main thread. Main thread.
 */
FL_EXTERN int fl_heartbeat_receive_request(fl_heartbeat_manager_t *m,
                                           const fl_heartbeat_msg_t *msg,
                                           char *err_buf, size_t err_len);

/*
 * fl_heartbeat_receive_response hands a heartbeat response to a sender
 * (Flink's receiveHeartbeat): restarts msg->origin's timeout if it is
 * monitored (past its deadline, it times out instead, as above) and reports the
 * payload (even for an origin not monitored, as Flink). If msg->timing shows
 * the receiver's timeout shorter than our interval, the target is refused
 * (on_incompatible, once). Returns as fl_heartbeat_receive_request. Main
 * thread.
 */
FL_EXTERN int fl_heartbeat_receive_response(fl_heartbeat_manager_t *m,
                                            const fl_heartbeat_msg_t *msg,
                                            char *err_buf, size_t err_len);

/* The manager's id, interval and timeout (as validated). Any thread. */
FL_EXTERN const char *fl_heartbeat_manager_id(const fl_heartbeat_manager_t *m);
FL_EXTERN fl_heartbeat_timing_t
fl_heartbeat_manager_timing(const fl_heartbeat_manager_t *m);

#ifdef __cplusplus
}
#endif

#endif /* FLING_HEARTBEAT_H */
