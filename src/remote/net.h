/*
 * src/remote/net.h - the TCP transport of an RPC service
 * (docs/wire-protocol.md): one libuv loop on one I/O thread, a listener,
 * and connections that carry frames. It knows frames, not endpoints: what
 * an incoming CONNECT or INVOKE means is the RPC layer's business (hooks),
 * and answers to our own requests complete futures.
 *
 * Threads: fl__net_* and fl__conn_* may be called from any thread unless
 * noted; hooks run on the I/O thread and must not block.
 */
#ifndef FL_REMOTE_NET_H
#define FL_REMOTE_NET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fling/actor.h>
#include <fling/future.h>

#include "remote/frame.h"

typedef struct fl__net fl__net_t;
typedef struct fl__conn fl__conn_t;

/* An outbound frame: one allocation, header + metadata + body. */
typedef struct fl__obuf {
    struct fl__obuf *next;
    size_t len;
    size_t off; /* bytes already written (a partial direct write) */
    uint8_t data[];
} fl__obuf_t;

typedef struct fl__net_hooks {
    void *arg;
    /* A CONNECT arrived (corr to echo): answer it with fl__conn_answer_*. */
    void (*on_connect)(void *arg, fl__conn_t *c, uint64_t corr,
                       const fl__frame_meta_t *m);
    /* An INVOKE arrived; m and body are borrowed for the call. */
    void (*on_invoke)(void *arg, fl__conn_t *c, const fl__frame_hdr_t *h,
                      const fl__frame_meta_t *m, const uint8_t *body);
    /* The frames of a read were dispatched (also after every
     * FL__NET_RUN_FRAMES of a long read): run what they made ready. The
     * frames it queues are written right after. May be NULL. Unlike the
     * other hooks it may take as long as the work it runs. */
    void (*on_frames)(void *arg);
    /* Writes the name of method idx of the call descriptor arg (an
     * fl__req_call_t's) into buf, e.g. "package.Service.Method", for the
     * messages of requests that fail. NULL: "method #idx". Any thread. */
    void (*name_call)(const void *arg, unsigned idx, char *buf, size_t cap);
} fl__net_hooks_t;

/* A long read runs on_frames and writes after this many frames: the
 * peer's next work overlaps the rest of the read. */
#define FL__NET_RUN_FRAMES 32u

/* True on an I/O thread of a service (any). */
bool fl__net_on_io_thread(void);

typedef struct fl__net_opts {
    const char *bind_host; /* NULL: no listener (outbound connections only) */
    const char *port;      /* NULL = "0" */
    uint32_t
        max_frame; /* 0 = FL__FRAME_DEFAULT_MAX; else >= FL__FRAME_MIN_MAX */
    size_t max_queued; /* 0 = 64 MiB */
    const char *name;  /* announced in HELLO; NULL = "fling" */
    /* The peer's HELLO is due within this (ms; 0: the default); accepted
     * connections still waiting for it, at most (0: the default). */
    int64_t handshake_timeout_ms;
    unsigned max_handshaking;
    /* Announced in HELLO (flag INCARNATION): the service's random id of
     * this life; 0: none announced. */
    uint64_t incarnation;
    size_t max_inbound; /* 0 = FL__NET_DEFAULT_INBOUND (inbound.c) */
    fl__net_hooks_t hooks;
    /* TLS on every connection, accepted and dialed (borrowed: must
     * outlive the net); NULL: plaintext. */
    struct fl__tls_ctx *tls;
} fl__net_opts_t;

/* The type of the fl_msg_t that answers complete requests with: the RPC
 * layer tells wire bytes (depth-checked before unpacking) by it. */
#define FL__MSG_ANSWER 0x52500010u

/* Default bound of the bytes queued on one connection. */
#define FL__NET_DEFAULT_QUEUED ((size_t)64 << 20)

/* Default budget of the bytes of calls received on one connection and not
 * yet finished (fl__conn_inbound_keep). */
#define FL__NET_DEFAULT_INBOUND ((size_t)32 << 20)

/* Backoff between failed connection attempts. */
#define FL__NET_BACKOFF_MIN_MS 50
#define FL__NET_BACKOFF_MAX_MS 5000
/* The random spread of each wait around the backoff, in percent. */
#define FL__NET_BACKOFF_JITTER_PCT 20
/* Defaults of fl__net_opts_t's handshake_timeout_ms and
 * max_handshaking. */
#define FL__NET_HANDSHAKE_TIMEOUT_MS 5000
#define FL__NET_MAX_HANDSHAKING 512u

/*
 * fl__net_start binds (if o->bind_host) and starts the I/O thread. Returns
 * FL_OK, FL_EINVAL (bad port range or option), FL_EADDRINUSE (every port
 * taken), FL_ECONNECT (the host does not resolve or cannot be bound),
 * FL_ENOMEM, FL_ESYSTEM; `why` names the host and range. Blocks to bind.
 */
int fl__net_start(const fl__net_opts_t *o, fl__net_t **out, char *why,
                  size_t why_len);

/* The bound port, or -1 without a listener. */
int fl__net_port(const fl__net_t *n);

/* Our maximum frame size. */
uint32_t fl__net_max_frame(const fl__net_t *n);

/*
 * fl__net_shutdown says BYE on every connection, closes them (every
 * pending request fails with FL_ECLOSED) and joins the I/O thread. BLOCKS
 * (at most about a second to flush). Idempotent. Not on the I/O thread.
 */
void fl__net_shutdown(fl__net_t *n);

/* Shuts down if needed and frees. Connections still referenced stay valid
 * (closed) until their last release. */
void fl__net_free(fl__net_t *n);

/*
 * fl__net_peer gives the outbound connection to host:port (one per peer,
 * made on first use, connected lazily by the first request, reconnected
 * after a loss). Caller owns a reference. FL_ECLOSED after shutdown,
 * FL_ENOMEM.
 */
int fl__net_peer(fl__net_t *n, const char *host, uint16_t port,
                 fl__conn_t **out);

void fl__conn_retain(fl__conn_t *c);
void fl__conn_release(fl__conn_t *c);

/*
 * fl__conn_retain_io takes a reference to c on c's I/O thread (a hook
 * called with c, such as on_invoke) from a reserve the connection takes in
 * blocks, so that a reference per received call costs no atomic operation.
 * Let go of it with fl__conn_release or fl__conn_release_turn, from any
 * thread.
 */
void fl__conn_retain_io(fl__conn_t *c);

/*
 * fl__conn_release_turn lets go of a reference to c like fl__conn_release;
 * on a worker that holds c's frames back to the end of its message (a
 * REPLY just sent), the reference is dropped together with that hold, one
 * atomic operation for the whole turn. Any thread; never blocks.
 */
void fl__conn_release_turn(fl__conn_t *c);

/* "host:port" of the peer (outbound) or its IP:port (accepted). */
const char *fl__conn_peer_name(const fl__conn_t *c);

/* True once the service's transport has stopped (calls fail ECLOSED). */
bool fl__conn_closed(const fl__conn_t *c);

/* The peer's maximum frame size: from its HELLO, ours until then. */
uint32_t fl__conn_peer_max(const fl__conn_t *c);

/* The incarnation the peer announced in the HELLO of c's current
 * connection; 0 while there is none (connecting, closed, or a peer that
 * announces none). Any thread. */
uint64_t fl__conn_peer_incarnation(const fl__conn_t *c);

/*
 * fl__obuf_frame allocates a frame of kind/flags with metadata m (NULL for
 * the kinds that carry none: REPLY, PING, PONG, BYE) and room
 * for body_len bytes of body; *body points at that room (the caller fills
 * it). corr is 0 (requests get theirs from fl__conn_request). NULL if out
 * of memory or the metadata breaks its limits.
 */
fl__obuf_t *fl__obuf_frame(uint8_t kind, uint16_t flags, uint64_t corr,
                           const fl__frame_meta_t *m, size_t body_len,
                           uint8_t **body);

/* fl__obuf_frame for a caller that has computed the metadata's size:
 * meta = fl__frame_meta_size(kind, flags, m), non-zero when m != NULL. */
fl__obuf_t *fl__obuf_frame_sized(uint8_t kind, uint16_t flags, uint64_t corr,
                                 const fl__frame_meta_t *m, size_t meta,
                                 size_t body_len, uint8_t **body);

/* Frees a frame from fl__obuf_frame that was not queued (b may be NULL). */
void fl__obuf_free(fl__obuf_t *b);

/* What a request's future means when the connection fails. */
typedef enum fl__req_kind {
    FL__REQ_CONNECT = 1, /* fails with FL_ECONNECT naming `what` */
    FL__REQ_INVOKE = 2   /* fails with FL_EUNREACHABLE */
} fl__req_kind_t;

typedef struct fl__req_call fl__req_call_t;

/*
 * Turns a REPLY body (borrowed) into the value its future completes with,
 * on the I/O thread (or a caller reading its own answer): FL_OK with
 * *value and *value_free, or an error code the future fails with and `why`
 * its message. call says what the request was (its method, its address).
 */
typedef int (*fl__decode_fn)(const fl__req_call_t *call, const uint8_t *body,
                             size_t len, void **value, fl_free_cb *value_free,
                             char *why, size_t why_len);

/*
 * What a call request is for, kept in its record (no allocation per call)
 * for its answer and for the messages of its failures: arg is the layer
 * above's descriptor of the call's service and idx the method's index in
 * it (named by the net's name_call hook); arg must outlive the request
 * (the RPC layer passes a static protobuf-c service descriptor). address
 * is the address the call was sent to, from fl__conn_intern (valid as
 * long as the connection), or NULL: the peer's "host:port" names it.
 */
struct fl__req_call {
    fl__decode_fn decode; /* NULL: the answer is an fl_msg_t */
    const void *arg;
    const char *address;
    uint32_t idx;
};

/*
 * fl__conn_intern gives a copy of s that lives as long as c (until its
 * last reference): one per distinct string, at most FL__CONN_INTERN_MAX
 * of them per connection; NULL past that or when out of memory (callers
 * then do without). For the addresses of fl__req_call_t, interned when a
 * gateway is made, not per call. Any thread; takes c->mu.
 */
const char *fl__conn_intern(fl__conn_t *c, const char *s);

#define FL__CONN_INTERN_MAX 256u

/*
 * fl__conn_request sends frame fb (consumed) as a request: gives it a fresh
 * correlation id and keeps a reference to f until the answer, which
 * completes f with call->decode(call, body) for a REPLY when call and its
 * decode are not NULL, else with an fl_msg_t * (the REPLY body, or for
 * CONNECTED an fl__connected_t); or fails it with the ERROR's code and
 * message, or with FL_ECONNECT/FL_EUNREACHABLE when the connection fails.
 * An answer that arrives after f was completed (timed out) is dropped
 * undecoded. timeout_ms (FL_INFINITE: none) bounds the wait: past it the
 * I/O thread fails f with FL_ETIMEDOUT: "Invocation of <method> on
 * <address> timed out after N ms (<how far the request got>)" for a call
 * (call, copied, names it), "timed out after N ms" for a CONNECT; a late
 * answer is dropped. `what` (copied, CONNECT only) names the address in
 * connect errors. Returns FL_OK, or an error with f already failed (so
 * the caller only has to hand f on): FL_EUNREACHABLE/FL_ECONNECT (backing
 * off after a failed attempt), FL_ELIMIT (queue full), FL_ECLOSED,
 * FL_ENOMEM.
 */
int fl__conn_request(fl__conn_t *c, fl__obuf_t *fb, fl_future_t *f,
                     fl__req_kind_t kind, const char *what,
                     const fl__req_call_t *call, int64_t timeout_ms);

/*
 * fl__conn_send queues a frame that expects no answer (a tell, a REPLY, an
 * ERROR, CONNECTED); who writes it: src/remote/conn_write.c. Consumes fb.
 * FL_OK, FL_ELIMIT (queue full: a request is refused, an answer closes the
 * connection since its peer is not reading), FL_ECLOSED (connection gone:
 * dropped), FL_ENOMEM.
 */
int fl__conn_send(fl__conn_t *c, fl__obuf_t *fb);

/*
 * fl__conn_await waits for f, the future of a call this thread made on c
 * with fl__conn_request, and returns fl_future_wait's result. For up to
 * fl__net_await_spin_ns (30 us) it polls c's socket itself: when it finds f's
 * answer at the head of the stream, with nothing buffered before it, it settles
 * f on this thread and leaves what follows to the I/O thread, which saves the
 * I/O thread's wake-up on a blocking call's path. Then it waits on f with
 * fl_future_wait (which polls the future a little more, then sleeps). Any
 * thread but an I/O thread or a worker (the caller checks, as
 * fl_future_wait does); blocks.
 */
int fl__conn_await(fl__conn_t *c, fl_future_t *f);

/* How long fl__conn_await polls (30 us; tests make it longer). */
extern _Atomic uint64_t fl__net_await_spin_ns;

/* Answer a request with ERROR code/message (cut at FL__ERRMSG_MAX). With
 * no memory for the frame: FL_ENOMEM, and the connection closes
 * (fl__conn_answer_lost), so the peer's call fails instead of waiting. */
int fl__conn_answer_error(fl__conn_t *c, uint64_t corr, int code,
                          const char *msg);

/* What a CONNECTED said: the payload of the fl_msg_t a CONNECT request's
 * future completes with. has_instance is false for a peer that sent no
 * instance (flag FL__F_INSTANCE); its gateways then name the endpoint by
 * id alone. resolved is the id a CONNECT's pattern resolved to (flag
 * FL__F_RESOLVED), else "". */
typedef struct fl__connected {
    uint32_t service_index;
    bool has_instance;
    uint64_t instance;
    char resolved[FL__ID_MAX + 1];
} fl__connected_t;

/* Answer a CONNECT with CONNECTED: the service's index among the
 * endpoint's, the endpoint's instance id (an id no successor under the
 * same endpoint id shares; docs/wire-protocol.md), and, when the CONNECT
 * named a pattern, the id it resolved to (resolved; else NULL). Any
 * thread. Out of memory: as fl__conn_answer_error. */
int fl__conn_answer_connected(fl__conn_t *c, uint64_t corr, uint32_t index,
                              uint64_t instance, const char *resolved);

/*
 * The budget of inbound calls (inbound.c; docs/wire-protocol.md, "Flow
 * control"). fl__conn_inbound_keep, called by on_invoke, says that the
 * INVOKE at hand is kept past the hook (its call is queued): its frame's
 * bytes count as held on c, and c holds one more reference, until
 * fl__conn_inbound_done(c, n) with the n it returned. While c holds more
 * than the net's max_inbound, c is not read (TCP pushes back on the peer);
 * reading resumes once it holds half of that or less. keep: I/O thread,
 * inside on_invoke only. done: any thread, never blocks; it lets go of the
 * reference (c may be freed by it).
 */
size_t fl__conn_inbound_keep(fl__conn_t *c);
void fl__conn_inbound_done(fl__conn_t *c, size_t n);

/*
 * fl__conn_inbound_over_bound, called by on_invoke after it handed the
 * call at hand to actor `id` of sys: when that mailbox is now over its
 * bound (fl__actor_over_bound), c is not read (as over the budget above)
 * until the mailbox has drained to half its bound, and, if the budget
 * stopped c too, its calls have drained to half of that. Nothing when c waits
 * for a mailbox already (no look at this one), when the mailbox is within its
 * bound or its actor is gone. I/O thread, inside on_invoke only; the wait ends
 * at the latest when c closes (the net stopping closes every connection).
 */
void fl__conn_inbound_over_bound(fl__conn_t *c, fl_system_t *sys, uint64_t id);

/* Frames and bytes moved, for tests and stats. */
typedef struct fl__net_stats {
    uint64_t conns_accepted, conns_opened, conns_failed;
    uint64_t frames_in, frames_out, writes;
    uint64_t proto_errors;
    /* Reads by threads waiting for an answer (fl__conn_await) that found
     * bytes or the stream's end, and the answers they settled. */
    uint64_t caller_reads, caller_answers;
    /* The inbound budget: times a connection stopped being read for it,
     * and the most bytes of calls one connection held (inbound.c). */
    uint64_t inbound_pauses, inbound_peak;
    /* Times a connection stopped being read for a mailbox over its bound
     * (fl__conn_inbound_over_bound), and times a finished call kicked the
     * I/O thread to read its connection again (fl__conn_inbound_done):
     * only a connection stopped for the budget, its calls down to half of
     * it (a drain wait kicks one stopped for a mailbox). */
    uint64_t mailbox_pauses, inbound_kicks;
    /* Wake-ups of the I/O thread's deadline timer, and the connections
     * it looked at (wake.c): neither grows while nothing is due, however
     * many idle connections there are. */
    uint64_t wakes, wake_visits;
} fl__net_stats_t;

void fl__net_stats(fl__net_t *n, fl__net_stats_t *out);

#endif /* FL_REMOTE_NET_H */
