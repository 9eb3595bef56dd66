/*
 * src/rpc/answer.h - a call being handled, on the endpoint's side: the
 * closure_data a handler gets, and where its answer goes. answer.c owns
 * the record and every way to answer it (reply, fail, defer, a future).
 */
#ifndef FL_RPC_ANSWER_H
#define FL_RPC_ANSWER_H

#include <fling/rpc.h>

#include <stdatomic.h>
#include <stdbool.h>

#include "rpc/tran.h"

#define CALL_MAGIC 0x666c7263u /* "flrc" */

/*
 * A call being handled; closure_data of the handler. It lives on the
 * dispatcher's stack while the handler runs (no allocation per call);
 * fl_rpc_defer moves it to the heap, and the stack copy then forwards to
 * the heap one (`moved`). A heap call is held by the dispatcher until the
 * handler returns and by the deferred holder until it is answered.
 */
struct fl_rpc_call {
    uint32_t magic;
    bool heap;
    _Atomic bool answered;
    _Atomic int refs;          /* heap calls only */
    struct fl_rpc_call *moved; /* stack call: its heap copy */
    fl_rpc_endpoint_t *ep;
    /* Where the answer goes (tran.h): the sink of the transport the call
     * came by, and its target there (the local asker's future, or the
     * connection and the correlation id); to is NULL for a tell. */
    const fl__rpc_sink_t *sink;
    void *to;
    uint64_t corr;
    const ProtobufCMessageDescriptor *output;
    const char *method;
    uint64_t recv_ns; /* as invoke_hdr_t's, for its debug line */
};

/*
 * Claim the right to answer c; false if it was answered already. A stack
 * call is only touched by the main thread that dispatched it: no RMW, and
 * relaxed (its loads and stores pair with each other on that one thread).
 * A heap call races its holders: the CAS (acq_rel) pairs with the other
 * claimants' CAS and with the acquire loads of fl_rpc_defer and
 * fl_rpc_reply_future. Any thread.
 */
static inline bool fl__rpc_call_claim(fl_rpc_call_t *c)
{
    if (!c->heap) {
        if (atomic_load_explicit(&c->answered, memory_order_relaxed))
            return false;
        atomic_store_explicit(&c->answered, true, memory_order_relaxed);
        return true;
    }
    bool expected = false;
    return atomic_compare_exchange_strong_explicit(&c->answered, &expected,
                                                   true, memory_order_acq_rel,
                                                   memory_order_acquire);
}

/* The closure fling hands to handlers (a ProtobufCClosure): answers the
 * call of `data` with reply, once. Any thread; reply is borrowed. */
void fl__rpc_reply_closure(const ProtobufCMessage *reply, void *data);

/* The closure of a tell's handler (dispatch.c's lean path): as
 * fl__rpc_reply_closure, with the common answer (a reply to a tell's own
 * stack call) made in a store. Any thread; reply is borrowed. */
void fl__rpc_tell_closure(const ProtobufCMessage *reply, void *data);

/* Fail c (claimed by the caller) with err and msg: to its asker, or a log
 * line for a tell. Any thread. */
void fl__rpc_call_fail(fl_rpc_call_t *c, int err, const char *msg);

/* Drop a reference to the heap call c (the last one frees it). */
void fl__rpc_call_release(fl_rpc_call_t *c);

#endif /* FL_RPC_ANSWER_H */
