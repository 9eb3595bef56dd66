/*
 * fling/rpc.h - Flink-style RPC: services, endpoints, gateways defined as
 * protobuf services (protoc-c), main-thread execution and fencing.
 *
 * The model (Flink's RpcService / RpcEndpoint / RpcGateway):
 *
 * - An RPC service runs endpoints on an actor system.
 * - An endpoint implements one or more protobuf `service`s by filling the
 *   structs protoc-c generates, and runs every call, run_async, call_async,
 *   scheduled task and lifecycle hook on its own "main thread": serially,
 *   never concurrently, FIFO per sender. Its state needs no locks.
 * - A gateway is a ProtobufCService whose invoke turns a call into a
 *   message to the endpoint. Callers use the generated stubs: closure NULL
 *   = tell, closure given = ask; fl_rpc_call() returns a future and
 *   fl_rpc_call_sync() blocks.
 * - A fenced endpoint has a fixed 128-bit fencing token (its leader
 *   session id) and accepts only calls stamped with an equal token: a
 *   different token, or none (an unfenced gateway), fails the call with
 *   FL_EFENCING. Its own tasks and self gateway calls always pass.
 *
 * Endpoint life (Flink's RpcEndpoint state machine, contract 2.2):
 *   created (not started) --start--> started --stop--> not started
 *   started --close--> on_stop runs --its future completes--> terminated
 *   not started --close--> terminated (on_stop does not run)
 * Calls to an endpoint that is not started fail with FL_ENOTSTARTED (tells
 * are dropped and logged); once terminated, queued and new calls fail at once
 * with FL_EUNREACHABLE.
 *
 * Local calls copy: the request is packed into the invocation message when
 * the call is made and unpacked on the endpoint's thread (the reply
 * likewise), so the caller may free or reuse its request as soon as the call
 * returns, and the handler's reply may live on its stack. The same bytes
 * travel over TCP for remote calls.
 */
#ifndef FLING_RPC_H
#define FLING_RPC_H

#include <stdbool.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "actor.h"
#include "common.h"
#include "future.h"
#include "tls.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fl_rpc_service fl_rpc_service_t;
typedef struct fl_rpc_endpoint fl_rpc_endpoint_t;
typedef struct fl_rpc_gateway fl_rpc_gateway_t;
typedef struct fl_rpc_call fl_rpc_call_t;

/* A fencing token: a 128-bit leader session id. */
typedef struct fl_fencing_token {
    uint8_t bytes[16];
} fl_fencing_token_t;

/* Default ask timeout of a service (Flink's pekko.ask.timeout). */
#define FL_RPC_DEFAULT_TIMEOUT_MS 10000

/* ---- the service ----------------------------------------------------------
 */

/* The TLS options (fl_rpc_tls_opts_t): <fling/tls.h>. */
typedef struct fl_rpc_service_opts {
    /* Run on this actor system (borrowed; must outlive the service). NULL:
     * the service creates and owns one with `workers` threads. */
    fl_system_t *system;
    unsigned workers;
    /* Timeout of asks and blocking calls that give none; 0 = 10,000 ms. */
    int64_t default_timeout_ms;

    /* ---- remoting (docs/wire-protocol.md) ----
     * Every service can connect to remote endpoints ("fling.tcp://..."):
     * its I/O thread starts with the first remote connect. A service with
     * a bind_host also listens, and its endpoints are reachable from other
     * processes under "fling.tcp://<external_host>:<port>/<id>". */

    /* Host name or IP address to listen on ("127.0.0.1", "0.0.0.0",
     * "::1"). NULL: a local-only service (endpoint addresses are
     * "fling://local/<id>"). */
    const char *bind_host;
    /* Ports to try, in the order written: "0" (any free port), "6123",
     * "50100-50200", "6123,6124" or a comma-separated mix. NULL = "0". */
    const char *port;
    /* Host written into endpoint addresses, for NAT and containers. NULL:
     * bind_host, or the machine's host name when bind_host is a wildcard
     * ("0.0.0.0", "::"). */
    const char *external_host;
    /* Largest frame this service accepts, in bytes, header included
     * (Flink's pekko.framesize); announced to peers, which check what they
     * send against it. 0 = 10 MiB; at least 1024. */
    uint32_t max_frame_size;
    /* Bytes of outbound frames that may wait in one connection's queue
     * (a slow or stalled peer). 0 = 64 MiB. A call that would exceed it
     * fails with FL_ELIMIT; a reply that would exceed it closes that
     * connection (its peer is not reading). */
    size_t max_queued_bytes;
    /* The service's name, sent in the handshake (HELLO). NULL = "fling".
     * Copied; at most 1,024 bytes. */
    const char *name;
    /* false (default): a call from the network to an idle endpoint runs
     * on the service's I/O thread, in the read that brought it, instead of
     * waking a worker (the endpoint's calls stay serialized, as always).
     * Such a turn ends after the first call that ends 1 ms or more after
     * it began (the workers take the calls left), and an endpoint whose
     * turns end so twice in a row goes to the workers for good: a slow
     * handler holds up the service's other connections at most twice, for
     * about 1 ms plus one call each. A call whose body is over 64 KiB
     * always goes to the workers. true: every call goes to the workers
     * (handlers that may block or run long). */
    bool no_io_turns;
    /* Time the peer has to say HELLO on a connection, in ms (Pekko's
     * handshake-timeout, Erlang's net_setuptime). An accepted connection
     * without it in time is closed; an outbound attempt (resolving,
     * connecting, then again from the connect to the peer's HELLO) that
     * takes longer fails, and a connect through it fails with
     * FL_ECONNECT "...: handshake timed out: no HELLO within N ms".
     * With TLS the TLS handshake comes first, within the same time: if
     * it is not done in time the connect fails with FL_ETLS "... TLS
     * handshake with <host:port> timed out after N ms"; if it is, but
     * HELLO is late, with FL_ECONNECT as above.
     * 0 = 5,000 ms; negative: FL_EINVAL. */
    int64_t handshake_timeout_ms;
    /* Accepted connections whose HELLO has not come yet, at most: when
     * one more is accepted, the oldest of them is closed (ERROR
     * FL_EHANDSHAKE), so that silent peers cannot hold the listener's
     * memory while a client that says HELLO at once still gets through.
     * 0 = 512. */
    unsigned max_handshaking;
    /* Bytes of calls received on one connection that their endpoints have
     * not finished yet (queued, or running), frames counted whole. Over
     * it the service stops reading that connection, so TCP pushes back
     * on the peer, until they drain to half of it (docs/wire-protocol.md,
     * "Flow control"); a call that leaves its endpoint's mailbox over its
     * bound (fl_system_opts_t.mailbox_bound) stops it too, until that
     * mailbox drains to half its bound. 0 = 32 MiB. Keep it at least a few
     * times max_frame_size. */
    size_t max_inbound_bytes;
    /* Mutual TLS on every connection (fl_rpc_tls_opts_t; borrowed, copied
     * by fl_rpc_service_alloc). NULL: plaintext TCP ("fling.tcp://"). */
    const fl_rpc_tls_opts_t *tls;
} fl_rpc_service_opts_t;

/*
 * fl_rpc_service_alloc creates an RPC service: local-only when
 * opts->bind_host is NULL, otherwise listening on the first free port of
 * opts->port (BLOCKS only to bind). opts may be NULL. The caller owns *out:
 * end it with fl_rpc_service_shutdown() and fl_rpc_service_free(). Errors:
 * FL_EINVAL (bad option, e.g. a malformed port range), FL_EADDRINUSE (every
 * port of the range is taken), FL_ECONNECT (bind_host does not resolve or
 * cannot be bound), FL_ENOMEM, FL_ESYSTEM; on failure
 * fl_rpc_last_message() on the calling thread says why, naming the host
 * and range. Any thread.
 */
FL_EXTERN int fl_rpc_service_alloc(const fl_rpc_service_opts_t *opts,
                                   fl_rpc_service_t **out);

/*
 * fl_rpc_service_close refuses new endpoints (FL_ECLOSED), closes every
 * endpoint and returns a future (caller owns a reference) that completes once
 * every endpoint has terminated: successfully if all did, otherwise failed
 * with the code and message of the first endpoint whose termination failed.
 * Idempotent (each call returns a reference to the same future). Does not
 * block. NULL for a NULL service or out of memory.
 */
FL_EXTERN fl_future_t *fl_rpc_service_close(fl_rpc_service_t *svc);

/*
 * fl_rpc_service_shutdown closes the service, BLOCKS until every endpoint
 * has terminated, then shuts down the actor system if the service owns it.
 * Returns the close future's result (FL_OK, or the first termination
 * failure). FL_EDEADLK on a runtime thread. Idempotent.
 */
FL_EXTERN int fl_rpc_service_shutdown(fl_rpc_service_t *svc);

/* fl_rpc_service_free shuts down if needed and frees. NULL is a no-op. */
FL_EXTERN void fl_rpc_service_free(fl_rpc_service_t *svc);

/* The actor system the service runs on (borrowed). */
FL_EXTERN fl_system_t *fl_rpc_service_system(fl_rpc_service_t *svc);

/* Host the service is reachable under (its external host): "" for a
 * local-only service. */
FL_EXTERN const char *fl_rpc_service_address(const fl_rpc_service_t *svc);

/* Bound port (the one chosen from the range): -1 for a local-only
 * service. */
FL_EXTERN int fl_rpc_service_port(const fl_rpc_service_t *svc);

/* The default timeout in ms. */
FL_EXTERN int64_t fl_rpc_service_timeout(const fl_rpc_service_t *svc);

/*
 * fl_rpc_service_lookup finds a live (not yet terminated) endpoint by id.
 * *out is borrowed: valid until the endpoint terminates and its creator
 * freed it. FL_ENOENT, FL_EINVAL. Any thread.
 */
FL_EXTERN int fl_rpc_service_lookup(fl_rpc_service_t *svc, const char *id,
                                    fl_rpc_endpoint_t **out);

/* ---- the service's scheduled executor
 * ----------------------------------------- */

/* A task of the scheduled executor; runs on the service's timer thread and
 * must not block (post longer work to an endpoint with fl_rpc_run_async). */
typedef void (*fl_rpc_sched_cb)(fl_rpc_service_t *svc, void *arg);

typedef uint64_t fl_rpc_task_id_t;

/*
 * Schedule fn(svc, arg) once after delay_ms (fl_rpc_schedule), at a fixed
 * rate (deadline n = initial + n * period) or with a fixed delay between the
 * end of one run and the start of the next. arg stays the caller's. Returns
 * FL_OK (*out, may be NULL, gets an id for fl_rpc_cancel), FL_EINVAL
 * (negative delay, period <= 0, NULL fn), FL_ECLOSED, FL_ENOMEM; on
 * failure fl_rpc_last_message() says why. Any thread.
 */
FL_EXTERN int fl_rpc_schedule(fl_rpc_service_t *svc, fl_rpc_sched_cb fn,
                              void *arg, int64_t delay_ms,
                              fl_rpc_task_id_t *out);
FL_EXTERN int fl_rpc_schedule_at_fixed_rate(fl_rpc_service_t *svc,
                                            fl_rpc_sched_cb fn, void *arg,
                                            int64_t initial_ms,
                                            int64_t period_ms,
                                            fl_rpc_task_id_t *out);
FL_EXTERN int fl_rpc_schedule_with_fixed_delay(fl_rpc_service_t *svc,
                                               fl_rpc_sched_cb fn, void *arg,
                                               int64_t initial_ms,
                                               int64_t delay_ms,
                                               fl_rpc_task_id_t *out);

/*
 * fl_rpc_cancel cancels a scheduled task: FL_OK means it will not start
 * again (a run in progress finishes). FL_ENOENT for an unknown, finished or
 * already cancelled task. Any thread, also from the task itself.
 */
FL_EXTERN int fl_rpc_cancel(fl_rpc_service_t *svc, fl_rpc_task_id_t id);

/* ---- endpoints
 * --------------------------------------------------------------- */

/*
 * on_start: runs on the main thread when the endpoint starts. Return FL_OK,
 * or an error code: the endpoint then terminates and its termination future
 * fails with that code and "Could not start RpcEndpoint <id>: <why>", where
 * <why> is the message given to fl_rpc_start_fail, or the code's own text.
 */
typedef int (*fl_rpc_start_cb)(fl_rpc_endpoint_t *ep, void *state);

/*
 * fl_rpc_start_fail lets on_start say why it fails, the C way: it records
 * the formatted message and returns err, so on_start does
 *   return fl_rpc_start_fail(ep, FL_EUSER + 1, "cannot open %s", path);
 * and the termination future fails with err and "Could not start
 * RpcEndpoint <id>: cannot open /x". The message is used only if on_start
 * then returns an error (the last one given wins). ONLY VALID on ep's main
 * thread while its on_start runs: anywhere else it records nothing and
 * returns FL_ESTATE; FL_EINVAL for a NULL ep or err FL_OK. Never blocks.
 */
FL_EXTERN int fl_rpc_start_fail(fl_rpc_endpoint_t *ep, int err, const char *fmt,
                                ...) FL_PRINTF(3, 4);

/*
 * on_stop: runs on the main thread, once, when a started endpoint is closed.
 * Return NULL when stopping is done, or a future (the endpoint takes the
 * caller's reference) that completes when it is: until then the endpoint
 * keeps serving calls. Its result becomes the termination result.
 */
typedef fl_future_t *(*fl_rpc_stop_cb)(fl_rpc_endpoint_t *ep, void *state);

typedef struct fl_rpc_endpoint_opts {
    /* Unique among the service's live endpoints (FL_EEXIST otherwise;
     * reusable once the old one has terminated). Copied; at most 200
     * bytes of [A-Za-z0-9_.-]. NULL: "endpoint_<n>". */
    const char *id;
    /* The implementations: pointers to filled protoc-c service structs
     * (e.g. &impl.base with impl = HELLO__HELLO_GATEWAY__INIT(my_)).
     * Borrowed: they must outlive the endpoint. At least one. */
    ProtobufCService *const *services;
    size_t nservices;
    /* Handed to hooks, tasks and fl_rpc_call_state(). */
    void *state;
    fl_rpc_start_cb on_start;
    fl_rpc_stop_cb on_stop;
    /* NULL: unfenced. Otherwise the endpoint's fixed fencing token. */
    const fl_fencing_token_t *fencing_token;
} fl_rpc_endpoint_opts_t;

/*
 * fl_rpc_endpoint_create registers an endpoint with the service (Flink's
 * startServer): it exists and can be connected to, but rejects calls until
 * fl_rpc_endpoint_start(). The caller owns *out and releases it with
 * fl_rpc_endpoint_free() (the endpoint itself lives on until it has
 * terminated). Errors: FL_EINVAL (no services, a service without a
 * descriptor, bad id), FL_EEXIST (id taken by a live endpoint), FL_ECLOSED,
 * FL_ENOMEM; a refusal sets fl_rpc_last_message() ("Refusals" under
 * calling). Any thread.
 */
FL_EXTERN int fl_rpc_endpoint_create(fl_rpc_service_t *svc,
                                     const fl_rpc_endpoint_opts_t *opts,
                                     fl_rpc_endpoint_t **out);

/*
 * fl_rpc_endpoint_start starts the endpoint: on_start then runs on its main
 * thread. Idempotent while started. Does not block. FL_OK, FL_EUNREACHABLE
 * once terminated, FL_ECLOSED after the system closed, FL_ENOMEM, FL_EINVAL;
 * a refusal sets fl_rpc_last_message() ("Refusals" under calling).
 */
FL_EXTERN int fl_rpc_endpoint_start(fl_rpc_endpoint_t *ep);

/*
 * fl_rpc_endpoint_stop returns a started endpoint to "not started": calls
 * are rejected again; a later start runs on_start again. No-op when not
 * started. Does not block. FL_OK, FL_EUNREACHABLE, FL_ECLOSED, FL_ENOMEM,
 * FL_EINVAL; a refusal sets fl_rpc_last_message() (as start).
 */
FL_EXTERN int fl_rpc_endpoint_stop(fl_rpc_endpoint_t *ep);

/*
 * fl_rpc_endpoint_close terminates the endpoint (Flink's closeAsync) and
 * returns its termination future (caller owns a reference): on_stop runs
 * once (only if it was started), the endpoint serves until on_stop's future
 * completes, then stops; the future completes after the id is free, with
 * on_stop's result (or the start failure). Safe to call repeatedly. NULL
 * for NULL or out of memory. Any thread.
 */
FL_EXTERN fl_future_t *fl_rpc_endpoint_close(fl_rpc_endpoint_t *ep);

/* The termination future (caller owns a reference); NULL for NULL. */
FL_EXTERN fl_future_t *fl_rpc_endpoint_termination(fl_rpc_endpoint_t *ep);

/* Releases the creator's handle. NULL is a no-op. Any thread. */
FL_EXTERN void fl_rpc_endpoint_free(fl_rpc_endpoint_t *ep);

/* The endpoint's id and address: "fling.tcp://<host>:<port>/<id>" on a
 * listening service, "fling://local/<id>" on a local-only one. */
FL_EXTERN const char *fl_rpc_endpoint_id(const fl_rpc_endpoint_t *ep);
FL_EXTERN const char *fl_rpc_endpoint_address(const fl_rpc_endpoint_t *ep);
FL_EXTERN void *fl_rpc_endpoint_state(const fl_rpc_endpoint_t *ep);
FL_EXTERN fl_rpc_service_t *fl_rpc_endpoint_service(fl_rpc_endpoint_t *ep);

/*
 * fl_rpc_endpoint_fencing_token copies the endpoint's token into *out;
 * FL_ENOENT for an unfenced endpoint.
 */
FL_EXTERN int fl_rpc_endpoint_fencing_token(const fl_rpc_endpoint_t *ep,
                                            fl_fencing_token_t *out);

/*
 * fl_rpc_endpoint_is_running: true between on_start and the return of
 * on_stop. Main thread only (false elsewhere).
 */
FL_EXTERN bool fl_rpc_endpoint_is_running(const fl_rpc_endpoint_t *ep);

/*
 * fl_rpc_in_main_thread: true when the caller runs on ep's main thread
 * (Flink's validateRunsInMainThread as a query).
 */
FL_EXTERN bool fl_rpc_in_main_thread(const fl_rpc_endpoint_t *ep);

/*
 * Debug assertion that the caller is on ep's main thread: logs the file and
 * line and aborts otherwise (NDEBUG: no-op). Flink's validateRunsInMainThread.
 */
FL_EXTERN void fl__rpc_assert_main_thread(const fl_rpc_endpoint_t *ep,
                                          const char *file, int line);
#ifdef NDEBUG
#define FL_RPC_ASSERT_MAIN_THREAD(ep) ((void)(ep))
#else
#define FL_RPC_ASSERT_MAIN_THREAD(ep)                                          \
    fl__rpc_assert_main_thread((ep), __FILE__, __LINE__)
#endif

/* ---- the main thread -------------------------------------------------------
 */

/* A task on an endpoint's main thread. */
typedef void (*fl_rpc_run_cb)(fl_rpc_endpoint_t *ep, void *state, void *arg);

/*
 * A callable on the main thread: return FL_OK and set *out (*out_free may
 * stay NULL) to complete the call_async future, or an error code to fail it.
 */
typedef int (*fl_rpc_callable_cb)(fl_rpc_endpoint_t *ep, void *state, void *arg,
                                  void **out, fl_free_cb *out_free);

/*
 * fl_rpc_run_async queues fn to the main thread. ALWAYS consumes arg: if fn
 * will not run (not started: dropped and logged; terminated) arg_free(arg)
 * is called. Passes fencing. FL_OK, FL_EUNREACHABLE, FL_ECLOSED, FL_EINVAL,
 * FL_ENOMEM; on failure fl_rpc_last_message() says why. Any thread.
 */
FL_EXTERN int fl_rpc_run_async(fl_rpc_endpoint_t *ep, fl_rpc_run_cb fn,
                               void *arg, fl_free_cb arg_free);

/*
 * fl_rpc_call_async runs fn on the main thread and gives a future (caller
 * owns a reference) of its result; it fails with FL_ETIMEDOUT unless done
 * within timeout_ms (> 0), with FL_ENOTSTARTED before start, with
 * FL_EUNREACHABLE once terminated. arg: as fl_rpc_run_async. FL_EINVAL,
 * FL_ENOMEM, FL_ECLOSED leave *out NULL, and fl_rpc_last_message() says
 * why. Any thread.
 */
FL_EXTERN int fl_rpc_call_async(fl_rpc_endpoint_t *ep, fl_rpc_callable_cb fn,
                                void *arg, fl_free_cb arg_free,
                                int64_t timeout_ms, fl_future_t **out);

/*
 * fl_rpc_on_complete is the main-thread executor: cb(f, arg) runs on ep's
 * main thread once f completes (whatever the endpoint's state). If the
 * endpoint has terminated by then, cb does not run and arg_free(arg) is
 * called. Returns as fl_future_on_complete_in.
 */
FL_EXTERN int fl_rpc_on_complete(fl_rpc_endpoint_t *ep, fl_future_t *f,
                                 fl_future_cb cb, void *arg,
                                 fl_free_cb arg_free);

/* ---- scheduled tasks on the main thread ----------------------------------
 *
 * A task scheduled on an endpoint runs fn(ep, state, arg) on its main
 * thread like a run_async: serialized with the calls, fencing passed, no
 * locks needed. It runs once after a delay (fl_rpc_schedule_run_async), at
 * a fixed rate or with a fixed delay, and may give a handle
 * (fl_rpc_scheduled_t, Flink's ScheduledFuture) to cancel it and ask
 * whether it is done or cancelled. Between runs a task waits on one timer
 * of the actor system; no thread is made for it.
 *
 * Fixed rate: run n is due at initial + n * period (from the schedule
 * call), whatever the runs before it took. Runs never overlap. A run that
 * ends after the next deadline has passed is followed at once by ONE run
 * (queued behind what the main thread already has), standing for the last
 * deadline passed; the deadlines in between are skipped, never made up in
 * a burst. Later runs keep to the deadlines.
 * Fixed delay: the next run is due `delay` after the previous one ENDS.
 *
 * A run that comes due while the endpoint is not started (created and not
 * yet started, or stopped) is dropped and logged, as a run_async is, and
 * that ENDS the task, periodic or not: schedule periodic tasks once the
 * endpoint is started (e.g. in on_start), and again after a restart. While
 * on_stop's future is pending the endpoint still serves, and runs go on.
 * When the endpoint terminates, its tasks end at once (their timers are
 * cancelled when its termination future completes).
 *
 * arg: ALWAYS consumed. A one-shot task owns arg once it ran; if it never
 * runs arg_free(arg) is called instead. A periodic task's arg is shared by
 * its runs and arg_free(arg) is called once, when the task ends (cancelled,
 * dropped, or its endpoint terminated), after its last run. arg_free may
 * run on any thread (the main thread, the canceller's, the timer thread).
 *
 * The handle: is_done is true once no run will start any more: a one-shot
 * task has run (is_cancelled stays false), or the task was cancelled or
 * ended without its course (is_cancelled true: fl_rpc_scheduled_cancel,
 * the endpoint not started when a run came due, or terminated). A periodic
 * task is only ever done by being cancelled.
 */

typedef struct fl_rpc_scheduled fl_rpc_scheduled_t;

/*
 * fl_rpc_schedule_run_async queues fn to the main thread after at least
 * delay_ms (0: as fl_rpc_run_async). out: NULL for no handle, otherwise
 * *out gets one on FL_OK (caller owns it; release with
 * fl_rpc_scheduled_free) and NULL on failure. Returns FL_OK,
 * FL_EUNREACHABLE at once on a terminated endpoint whatever the delay,
 * FL_ECLOSED, FL_ENOMEM, FL_EINVAL (NULL ep or fn, negative delay); on
 * failure arg_free(arg) has been called and fl_rpc_last_message() says
 * why. Any thread; never blocks.
 */
FL_EXTERN int fl_rpc_schedule_run_async(fl_rpc_endpoint_t *ep, fl_rpc_run_cb fn,
                                        void *arg, fl_free_cb arg_free,
                                        int64_t delay_ms,
                                        fl_rpc_scheduled_t **out);

/*
 * fl_rpc_schedule_run_at_fixed_rate runs fn on the main thread first after
 * initial_ms (>= 0), then every period_ms (> 0) at a fixed rate (see
 * above). fl_rpc_schedule_run_with_fixed_delay runs it first after
 * initial_ms, then delay_ms (> 0) after each run ends. out, returns and
 * arg: as fl_rpc_schedule_run_async (FL_EINVAL also for a period or delay
 * <= 0). Without a handle the task runs until its endpoint ends it. Any
 * thread; never blocks.
 */
FL_EXTERN int fl_rpc_schedule_run_at_fixed_rate(
    fl_rpc_endpoint_t *ep, fl_rpc_run_cb fn, void *arg, fl_free_cb arg_free,
    int64_t initial_ms, int64_t period_ms, fl_rpc_scheduled_t **out);
FL_EXTERN int fl_rpc_schedule_run_with_fixed_delay(
    fl_rpc_endpoint_t *ep, fl_rpc_run_cb fn, void *arg, fl_free_cb arg_free,
    int64_t initial_ms, int64_t delay_ms, fl_rpc_scheduled_t **out);

/*
 * fl_rpc_scheduled_cancel cancels the task: true if that prevented any
 * further run (the handle then says done and cancelled), false if there was
 * none left to prevent (the task is done, already cancelled, or it is a
 * one-shot whose run is under way). A run in progress finishes; then
 * arg_free runs (periodic tasks). Any thread, also from the task itself
 * (a periodic task then does not run again); never blocks. NULL: false.
 */
FL_EXTERN bool fl_rpc_scheduled_cancel(fl_rpc_scheduled_t *h);

/* Whether the task is done (no run will start any more) and whether it was
 * cancelled (see above). Any thread; NULL: false. */
FL_EXTERN bool fl_rpc_scheduled_is_done(const fl_rpc_scheduled_t *h);
FL_EXTERN bool fl_rpc_scheduled_is_cancelled(const fl_rpc_scheduled_t *h);

/*
 * fl_rpc_scheduled_free releases the caller's handle. It does NOT cancel
 * the task. The handle may outlive the endpoint, the service and its
 * system, and every call on it stays valid (cancel then returns false).
 * NULL is a no-op. Any thread.
 */
FL_EXTERN void fl_rpc_scheduled_free(fl_rpc_scheduled_t *h);

/* ---- gateways
 * ----------------------------------------------------------------- */

/*
 * fl_rpc_self_gateway gives a gateway to one of ep's own services (the self
 * gateway: its calls always pass fencing). Caller owns *out (release with
 * fl_rpc_gateway_free). FL_ENOTSUP if ep does not implement desc (the
 * message names the services it implements), FL_EINVAL, FL_ENOMEM; a
 * refusal sets fl_rpc_last_message() ("Refusals" under calling).
 */
FL_EXTERN int fl_rpc_self_gateway(fl_rpc_endpoint_t *ep,
                                  const ProtobufCServiceDescriptor *desc,
                                  fl_rpc_gateway_t **out);

/*
 * fl_rpc_connect gives a future (caller owns a reference) of a gateway to
 * the endpoint at address implementing desc; the future's value is an
 * fl_rpc_gateway_t * owned by the future (fl_future_take_value() to keep it,
 * then fl_rpc_gateway_free). token NULL = unfenced gateway; otherwise every
 * call is stamped with *token (copied). Connecting checks that the endpoint
 * exists and implements desc: it fails with FL_ECONNECT "Could not connect
 * to rpc endpoint under address <a>: <why>", where why says what the
 * service has instead of an unknown id (in-process: its ids, the first 8
 * sorted; from another process: their number only) or what is wrong with a
 * malformed address and what to write; or with FL_EHANDSHAKE ("The rpc
 * endpoint does not support the gateway <name>"). Connecting to a created
 * but not started endpoint succeeds. Tokens are not checked when
 * connecting. Refused arguments (FL_EINVAL for a NULL svc, address, desc
 * or out; FL_ECLOSED for a closed service; FL_ENOMEM) leave *out NULL and
 * say why in fl_rpc_last_message(). Any thread; never blocks.
 *
 * The endpoint id may be a pattern ("fling://local/resourcemanager_*",
 * "fling.tcp://host:6123/resourcemanager_*"): a * matches any run of
 * characters, anywhere in the id (ids never hold one); "*" alone is
 * refused. It connects to the NEWEST live endpoint whose id matches and
 * that implements desc, the one created last, started or not (a new
 * leader's); matches of other services are passed over (all of them:
 * FL_EHANDSHAKE); the gateway is bound
 * to it: fl_rpc_gateway_address gives its concrete address, and once it
 * terminates calls fail with FL_EUNREACHABLE (never reaching a successor):
 * connect again with the pattern. No match: FL_ECONNECT as for an id.
 *
 * Remote addresses ("fling.tcp://host:port/id"): the service opens (or
 * reuses) its one connection to host:port and runs the handshake of
 * docs/wire-protocol.md. An unresolvable host or a refused connection fails
 * promptly with FL_ECONNECT naming the address and the reason, never after
 * a timeout; a protocol version mismatch fails with FL_EHANDSHAKE. Calls
 * through a remote gateway behave as local ones, plus: a request larger than
 * the peer's maximum frame (its max_frame_size) fails at once with
 * FL_EMSGSIZE naming the method, both sizes and the peer; a reply larger
 * than ours fails the call with FL_EMSGSIZE naming the method, both sizes
 * and the endpoint that refused to send it (which logs it); a call that
 * times out fails with FL_ETIMEDOUT naming the method, the address, the
 * timeout and how far its request got ("request sent", "request not sent:
 * still queued behind N bytes", ...); when the connection is lost every call
 * pending on it fails at once with FL_EUNREACHABLE, and the next call
 * reconnects (failed attempts back off from 50 ms to 5 s; a call while backing
 * off fails at once with FL_EUNREACHABLE); a full outbound queue fails the call
 * with FL_ELIMIT. Closures of remote calls made outside any actor run on the
 * service's I/O thread and must not block.
 */
FL_EXTERN int fl_rpc_connect(fl_rpc_service_t *svc, const char *address,
                             const ProtobufCServiceDescriptor *desc,
                             const fl_fencing_token_t *token,
                             fl_future_t **out);

/* Releases a gateway. NULL is a no-op. */
FL_EXTERN void fl_rpc_gateway_free(fl_rpc_gateway_t *gw);

/*
 * fl_rpc_gateway_service is the ProtobufCService to pass to the generated
 * client stubs (borrowed, lives as long as the gateway).
 */
FL_EXTERN ProtobufCService *fl_rpc_gateway_service(fl_rpc_gateway_t *gw);

/* The gateway's endpoint address (for a pattern, the concrete address of
 * the endpoint it resolved to) and host ("localhost" when local). */
FL_EXTERN const char *fl_rpc_gateway_address(const fl_rpc_gateway_t *gw);
FL_EXTERN const char *fl_rpc_gateway_hostname(const fl_rpc_gateway_t *gw);

/*
 * fl_rpc_gateway_fencing_token copies the token the gateway stamps on its
 * calls (for a self gateway: the endpoint's token). FL_ENOTSUP for an
 * unfenced gateway and for the self gateway of an unfenced endpoint: there
 * is none to report.
 */
FL_EXTERN int fl_rpc_gateway_fencing_token(const fl_rpc_gateway_t *gw,
                                           fl_fencing_token_t *out);

/* Sets the timeout of calls through gw that give none (> 0). FL_OK, or
 * FL_EINVAL setting fl_rpc_last_message() ("Refusals" under calling). */
FL_EXTERN int fl_rpc_gateway_set_timeout(fl_rpc_gateway_t *gw,
                                         int64_t timeout_ms);

/* ---- calling
 * ------------------------------------------------------------------ */

/*
 * The four call styles (contract 2.5):
 *
 *   tell      generated stub, closure NULL: fire and forget; errors are not
 *             reported (fl_rpc_last_error() on the calling thread tells
 *             whether it could be queued).
 *   closure   generated stub with a closure: closure(reply, data) runs once,
 *             with the reply (borrowed, freed after the closure) or NULL on
 *             failure, when fl_rpc_last_error() and fl_rpc_last_message()
 *             give the code and message. It runs on the caller's actor or
 *             endpoint thread if the call was made from one, otherwise on
 *             the thread that completes the call. EXCEPTION: if the calling
 *             actor or endpoint has stopped when the answer arrives, the
 *             closure is not run (running it elsewhere could touch state
 *             that is gone); this is logged. Free closure data that must
 *             not leak in the caller's stop hook instead.
 *   future    fl_rpc_call(): a future of the reply.
 *   blocking  fl_rpc_call_sync(): waits for the reply.
 *
 * The timeout of one call (Flink's @RpcTimeout): the timeout_ms argument
 * of fl_rpc_call/fl_rpc_call_sync, or fl_rpc_next_timeout() before a stub
 * call; otherwise the gateway's, otherwise the service's default.
 */

/*
 * fl_rpc_next_timeout sets the timeout of the next stub call made on this
 * thread (> 0); it applies to that one call only.
 */
FL_EXTERN void fl_rpc_next_timeout(int64_t timeout_ms);

/*
 * fl_rpc_method_index returns the index of a method by its name in the
 * .proto ("SayHello"), or -1; then fl_rpc_last_error() is FL_EINVAL and
 * fl_rpc_last_message() names the methods that exist ("no method SayHi:
 * hello.Greeter has 2 methods (SayHello, SayGoodbye)").
 */
FL_EXTERN int fl_rpc_method_index(const ProtobufCServiceDescriptor *desc,
                                  const char *name);

/*
 * fl_rpc_call calls method `method` (its index in the service) with req
 * (borrowed: packed before the call returns) and gives a future of the reply
 * (caller owns a reference). The future's value is the unpacked reply, a
 * ProtobufCMessage * owned by the future (fl_future_take_value() it and free
 * it with protobuf_c_message_free_unpacked(reply, NULL)). It fails with the
 * handler's code and message, FL_ENOTSTARTED, FL_EFENCING, FL_EUNREACHABLE,
 * FL_ETIMEDOUT, FL_ENOMETHOD, FL_EDECODE or FL_ENOREPLY. timeout_ms 0 = the
 * gateway's. FL_EINVAL (bad method index, req NULL or of the wrong type,
 * gw or out NULL, negative timeout), FL_ENOMEM, FL_ECLOSED leave *out NULL
 * and set fl_rpc_last_message() ("Refusals" below). A local call's timeout
 * fails it with "Invocation of <package.Service.Method> on <endpoint
 * address> timed out after <N> ms"; a call the endpoint can no longer take
 * (terminated) with FL_EUNREACHABLE "recipient unreachable: rpc endpoint
 * '<id>' has terminated (<package.Service.Method> not delivered)". Any
 * thread; never blocks.
 */
FL_EXTERN int fl_rpc_call(fl_rpc_gateway_t *gw, unsigned method,
                          const ProtobufCMessage *req, int64_t timeout_ms,
                          fl_future_t **out);

/*
 * fl_rpc_call_sync makes the call and BLOCKS until the reply or the timeout.
 * On FL_OK *reply is the caller's (free with
 * protobuf_c_message_free_unpacked(*reply, NULL)); otherwise *reply is NULL
 * and the return is the failure code (FL_ETIMEDOUT after the timeout).
 * Refused with FL_EDEADLK on a runtime thread, e.g. an endpoint's own main
 * thread, instead of deadlocking. Either way fl_rpc_last_error() and
 * fl_rpc_last_message() on the calling thread give the outcome and the
 * failure's message (a handler's own, for a handler error).
 */
FL_EXTERN int fl_rpc_call_sync(fl_rpc_gateway_t *gw, unsigned method,
                               const ProtobufCMessage *req, int64_t timeout_ms,
                               ProtobufCMessage **reply);

/*
 * The outcome of the last stub call, closure or fl_rpc_call_sync on this
 * thread.
 *
 * Refusals: when one of these functions refuses its arguments or its
 * state, it sets fl_rpc_last_error() to the code it returns and
 * fl_rpc_last_message() to why, naming the argument and what was expected
 * (e.g. "method index 7 out of range: hello.Greeter has 2 methods
 * (SayHello, SayGoodbye)"): fl_rpc_call, fl_rpc_call_sync, the generated
 * stubs, fl_rpc_method_index, fl_rpc_gateway_set_timeout,
 * fl_rpc_self_gateway, fl_rpc_endpoint_create, fl_rpc_endpoint_start,
 * fl_rpc_endpoint_stop, fl_rpc_start_fail and fl_rpc_service_alloc.
 * When they succeed, fl_rpc_call and those that make no call leave both
 * alone (a stub call and fl_rpc_call_sync set the outcome). A tell (stub call
 * without closure) to a terminated endpoint sets FL_EUNREACHABLE and "recipient
 * unreachable: rpc endpoint '<id>' has terminated (<method> not
 * delivered)".
 */
FL_EXTERN int fl_rpc_last_error(void);
FL_EXTERN const char *fl_rpc_last_message(void);

/* ---- handling calls (endpoint side)
 * ------------------------------------------- */

/*
 * A handler is the generated service struct's function pointer. It runs on
 * the endpoint's main thread with closure/closure_data from fling:
 *
 *   reply now     closure(&reply, closure_data) — fling packs the reply at
 *                 once, so it may live on the handler's stack;
 *   fail          fl_rpc_fail(closure_data, code, "fmt", ...): the caller
 *                 gets exactly that code and message;
 *   reply later   fl_rpc_call_t *c = fl_rpc_defer(closure_data), then from
 *                 any thread closure(&reply, c) or fl_rpc_fail(c, ...);
 *   from a future fl_rpc_reply_future(closure_data, f): the call takes f's
 *                 outcome when it completes (its value a ProtobufCMessage *).
 *
 * Each call is answered exactly once; a handler that returns having done
 * none of these fails the call with FL_ENOREPLY. For tells the answer is
 * discarded (a failure is logged).
 */

/* The endpoint and state a call is handled by. */
FL_EXTERN fl_rpc_endpoint_t *fl_rpc_call_endpoint(const void *closure_data);
FL_EXTERN void *fl_rpc_call_state(const void *closure_data);
/* True for a tell (nobody waits for the answer). */
FL_EXTERN bool fl_rpc_call_is_tell(const void *closure_data);

/*
 * fl_rpc_defer keeps the call open past the handler's return and returns a
 * NEW handle to answer it with later, from any thread (closure_data itself
 * is invalid once the handler returns). The handle is CONSUMED by its first
 * answer (its closure, fl_rpc_fail or fl_rpc_reply_future): using it again
 * afterwards is undefined, like using freed memory. If several paths may
 * race to answer (a result and a timeout), let them race to complete a
 * future instead — completion is exactly-once — and hand that future to
 * fl_rpc_reply_future. The handle keeps the endpoint's memory alive until
 * answered. Returns NULL if closure_data is not an open call (or out of
 * memory).
 */
FL_EXTERN fl_rpc_call_t *fl_rpc_defer(void *closure_data);

/*
 * fl_rpc_fail answers the call with an error (err != FL_OK) and a formatted
 * message (NULL fmt: fl_strerror(err)). FL_EALREADY if it was answered
 * during the handler (a deferred handle is consumed by its first answer,
 * see fl_rpc_defer), FL_EINVAL. Any thread (deferred calls).
 */
FL_EXTERN int fl_rpc_fail(void *closure_data, int err, const char *fmt, ...)
    FL_PRINTF(3, 4);

/*
 * fl_rpc_reply_future answers the call with f's outcome once f completes: a
 * successful f's value must be a ProtobufCMessage * of the method's output
 * type. ALWAYS takes the caller's reference to f. Returns FL_OK (the call
 * will be answered: with f's outcome, or with FL_ENOMEM if f could not be
 * watched), FL_EALREADY (already answered), FL_ENOMEM (the call could not be
 * deferred and was failed with FL_ENOMEM), FL_EINVAL.
 */
FL_EXTERN int fl_rpc_reply_future(void *closure_data, fl_future_t *f);

#ifdef __cplusplus
}
#endif

#endif /* FLING_RPC_H */
