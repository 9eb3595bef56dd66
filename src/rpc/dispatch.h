/*
 * src/rpc/dispatch.h - what an endpoint's main thread receives: the
 * message types of its mailbox and the invocation a call sends. dispatch.c
 * handles them (Flink's PekkoRpcActor).
 */
#ifndef FL_RPC_DISPATCH_H
#define FL_RPC_DISPATCH_H

#include <fling/rpc.h>

#include <stddef.h>
#include <string.h>

#include "actor/msg.h"
#include "rpc/fencing.h"
#include "rpc/tran.h"

/* Message types on an endpoint's mailbox. */
enum {
    RPC_INVOKE = 0x52500001u,
    RPC_START,
    RPC_STOP,
    RPC_TERMINATE,
    RPC_REPLY,      /* a packed reply travelling back to the caller */
    RPC_REPLY_FLAT, /* a flat copy of the reply struct (flat.h) */
    RPC_TELL        /* a lean local tell: tell_hdr_t */
};

/* Header of an RPC_INVOKE payload; the request follows at
 * fl__rpc_invoke_body: packed, or when `flat` is set (local calls only) a
 * flat copy of the request's struct (flat.h), len bytes. A local call's
 * header stops before the wire's own fields (FL__RPC_LOCAL_HDR bytes), so
 * that a small call fits a 128-byte message block with its header; read
 * them only when `wire` is set. */
typedef struct invoke_hdr {
    /* A call from the wire (FL__MF_SETTLE): the wire's (tcp_server.c),
     * first in the payload as the runtime wants it; unused otherwise. */
    fl__settle_fn settle;
    /* When the caller stops waiting for the answer (fl__clock_coarse_ns
     * time, slack included; 0: never): a call still queued then is
     * dropped before its handler starts (handle_invoke). */
    uint64_t deadline_ns;
    uint32_t service;
    uint32_t method;
    uint32_t len;
    uint8_t fence; /* FENCE_* (fencing.h) */
    uint8_t wire;  /* the request came over the network: check it first */
    uint8_t sink;  /* where the answer goes: an fl__rpc_sinks index */
    uint8_t flat;  /* the body is a flat copy of the request (flat.h) */
    fl_fencing_token_t token;

    /* The wire's own fields: absent from a local call's header. */
    /* When the call expects an answer, to (the connection, one reference)
     * and corr say where the answer goes; handle_invoke takes them (to =
     * NULL). A local ask's future is the message's. */
    void *to;
    uint64_t corr;
    /* The connection whose inbound budget holds its frame's bytes (one
     * reference), and how many, until wire_settle reports it done
     * (fl__conn_inbound_done); NULL once reported. */
    struct fl__conn *in_conn;
    size_t in_bytes;
    /* When it was received (fl_clock_now_ns), if the debug lines of calls
     * were on then; else 0 (calllog.h). */
    uint64_t recv_ns;
} invoke_hdr_t;

/* The bytes of a local call's header: up to the wire's own fields. */
#define FL__RPC_LOCAL_HDR offsetof(invoke_hdr_t, to)

/* The body follows the header with no padding: 8-aligned, as any struct
 * protobuf-c generates needs (the payload is 16-aligned). */
_Static_assert(sizeof(invoke_hdr_t) % 8 == 0 && FL__RPC_LOCAL_HDR % 8 == 0,
               "the body of an invocation must stay aligned for its struct");

/* The bytes of h's header: FL__RPC_LOCAL_HDR, or all of it from the wire.
 * The payload holds at least FL__RPC_LOCAL_HDR bytes. */
static inline size_t fl__rpc_invoke_hdr_size(const invoke_hdr_t *h)
{
    return h->wire ? sizeof *h : FL__RPC_LOCAL_HDR;
}

/*
 * Header of an RPC_TELL payload: a local tell (call.c) of a request whose
 * struct copies as it is (FL__FLAT_PLAIN) in at most FL__RPC_TELL_MAX
 * bytes. The fencing token follows it when fence is FENCE_TOKEN; then the
 * request's fields, its struct without the ProtobufCMessage base (the
 * receiver has the method's descriptor, and the base of a plain request
 * holds nothing else): FL__RPC_TELL_FIELDS bytes, a multiple of 8. A
 * request with one 8-byte field makes a 64-byte message, one cache line
 * from the sender's core to the receiver's, where an RPC_INVOKE takes two.
 */
typedef struct tell_hdr {
    uint16_t service;
    uint16_t method;
    uint8_t fence; /* FENCE_* (fencing.h) */
    uint8_t pad[3];
} tell_hdr_t;

/* The largest request struct an RPC_TELL carries, base included. */
#define FL__RPC_TELL_MAX 64

/* The bytes of a request's fields in an RPC_TELL: size is the struct's. */
#define FL__RPC_TELL_FIELDS(size) ((size) - sizeof(ProtobufCMessage))

/* The bytes of an RPC_TELL's header with the token, when fenced with one. */
static inline size_t fl__rpc_tell_pre(uint8_t fence)
{
    return sizeof(tell_hdr_t) +
           (fence == FENCE_TOKEN ? sizeof(fl_fencing_token_t) : 0);
}

/*
 * Copy the n bytes of a request's fields (a multiple of 8, at most
 * FL__RPC_TELL_FIELDS(FL__RPC_TELL_MAX)) from src to dst in 8-byte words:
 * no call, two instructions a word and a test, where a jump table costs
 * more than a small request's words; and no wide load over the narrow
 * stores that just wrote src (a load that spans two stores is not
 * forwarded from them).
 */
static inline void fl__rpc_tell_copy(void *dst, const void *src, size_t n)
{
    _Static_assert(FL__RPC_TELL_FIELDS(FL__RPC_TELL_MAX) == 5 * 8,
                   "five words at most");
    char *d = dst;
    const char *s = src;
    for (size_t i = 0; i < 5; i++) {
        if (n == 8 * i)
            return;
        memcpy(d + 8 * i, s + 8 * i, 8);
    }
}

/* The request's bytes (or flat struct) after h's header. */
static inline void *fl__rpc_invoke_body(invoke_hdr_t *h)
{
    return (char *)h + fl__rpc_invoke_hdr_size(h);
}

/*
 * The deadline of a call whose caller waits ms more (invoke_hdr_t's
 * deadline_ns): from the coarse clock, with its slack, so that it passes
 * no earlier than the caller's own, saturated. Any thread.
 */
static inline uint64_t fl__rpc_deadline_of(int64_t ms)
{
    return fl__add_sat(fl__clock_coarse_ns() + FL__COARSE_SLACK_NS,
                       fl__ms_to_ns(ms));
}

/*
 * The receive function of every endpoint's actor (its state is the
 * fl_rpc_endpoint_t): calls, control messages and nothing else, in mailbox
 * order. Runs on the endpoint's main thread; consumes nothing (the runtime
 * frees msg). The contract's ordering and state checks are made here.
 */
void fl__rpc_ep_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                        fl_msg_t *msg);

#endif /* FL_RPC_DISPATCH_H */
