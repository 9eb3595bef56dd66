/*
 * src/rpc/call.h - calls on the caller's side (call.c): through a
 * gateway's ProtobufCService, or fl_rpc_call / fl_rpc_call_sync, and the
 * thread's last-call status (fl_rpc_last_error).
 */
#ifndef FL_RPC_CALL_H
#define FL_RPC_CALL_H

#include <fling/rpc.h>

/* The gateways' ProtobufCService invoke: a tell without a closure, else an
 * ask whose closure runs once (on the calling actor's main thread when the
 * caller is an actor). Any thread; never blocks. */
void fl__rpc_gw_invoke(ProtobufCService *service, unsigned method,
                       const ProtobufCMessage *input, ProtobufCClosure closure,
                       void *closure_data);

/* Set this thread's fl_rpc_last_error and fl_rpc_last_message: msg, or
 * err's own text when msg is NULL or empty. */
void fl__rpc_set_last(int err, const char *msg);

/*
 * fl__rpc_refuse sets this thread's last error to err with a formatted
 * message (what was wrong and what was expected) and returns err. Every
 * public RPC function that refuses its arguments (FL_EINVAL and the like)
 * says why through it, so fl_rpc_last_message() names the argument.
 */
int fl__rpc_refuse(int err, const char *fmt, ...) FL_PRINTF(2, 3);

/*
 * fl__rpc_method_name writes the full name of method m of service d,
 * "package.Service.Method" (d->name, then the method's name), into buf
 * (truncated to cap, always terminated) and returns buf. An index out of
 * range is written as "package.Service#m".
 */
const char *fl__rpc_method_name(const ProtobufCServiceDescriptor *d, unsigned m,
                                char *buf, size_t cap);

/* The refusal of fl__rpc_check_request when its quick test fails (out of
 * line: the messages' buffers stay off the call's fast path). */
int fl__rpc_refuse_request(const ProtobufCServiceDescriptor *d, unsigned m,
                           const ProtobufCMessage *req);

/*
 * fl__rpc_check_request: FL_OK when m is a method of d and req (not NULL)
 * is of its input type; otherwise FL_EINVAL through fl__rpc_refuse, naming
 * the index and the methods that exist, or the method, the type given and
 * the type it takes. Every transport's call ops check with it. Any thread.
 */
static inline int fl__rpc_check_request(const ProtobufCServiceDescriptor *d,
                                        unsigned m, const ProtobufCMessage *req)
{
    if (m < d->n_methods && req != NULL &&
        req->descriptor == d->methods[m].input)
        return FL_OK;
    return fl__rpc_refuse_request(d, m, req);
}

/* fl__rpc_say_methods writes "hello.Greeter has 2 methods (SayHello,
 * SayGoodbye)" for d into buf (truncated to cap, terminated); returns buf. */
const char *fl__rpc_say_methods(const ProtobufCServiceDescriptor *d, char *buf,
                                size_t cap);

/* Frees an unpacked protobuf message (an fl_free_cb). */
void fl__rpc_free_message_cb(void *msg);

#endif /* FL_RPC_CALL_H */
