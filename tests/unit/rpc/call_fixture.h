/*
 * call_fixture.h - what call_test.c and call_answer_test.c share: the
 * closure that records what a stub call saw, Fail requests, a blocking
 * call that must succeed, and a task that calls from an endpoint's main
 * thread.
 *
 * Header-only (static inline) because each program is built from one file.
 */
#ifndef CALL_FIXTURE_H
#define CALL_FIXTURE_H

#include "rpc_fixture.h"

/* ---- helpers ------------------------------------------------------------- */

/* What a stub closure saw. */
typedef struct closure_ctx {
    atomic_int runs;
    bool got_reply;
    char text[128];
    int64_t n;
    int code;
    char message[256];
    fl_rpc_endpoint_t *caller; /* optional: the endpoint that called */
    bool on_caller;            /* fl_rpc_in_main_thread(caller) */
    fl_test_latch_t *done;
} closure_ctx_t;

static inline void echo_closure(const Fltest__EchoReply *reply, void *data)
{
    closure_ctx_t *c = data;
    c->got_reply = reply != NULL;
    if (reply) {
        snprintf(c->text, sizeof c->text, "%s", reply->text);
        c->n = reply->n;
    }
    c->code = fl_rpc_last_error();
    const char *m = fl_rpc_last_message();
    snprintf(c->message, sizeof c->message, "%s", m ? m : "(null)");
    if (c->caller)
        c->on_caller = fl_rpc_in_main_thread(c->caller);
    atomic_fetch_add(&c->runs, 1);
    fl_test_latch_count_down(c->done);
}

static inline Fltest__FailRequest fail_req(int code, const char *message)
{
    Fltest__FailRequest r = FLTEST__FAIL_REQUEST__INIT;
    r.code = code;
    r.message = (char *)message;
    return r;
}

/* A blocking call of method m with EchoRequest(text, n) through gw must
 * succeed with the same text and n (and, if type is not NULL, a reply of
 * that type). */
static inline void expect_sync_reply(fl_rpc_gateway_t *gw, unsigned m,
                                     const char *text, int64_t n,
                                     const ProtobufCMessageDescriptor *type)
{
    Fltest__EchoRequest req = echo_req(text, n);
    ProtobufCMessage *reply = NULL;
    assert_fl_ok(fl_rpc_call_sync(gw, m, &req.base, 0, &reply));
    assert_non_null(reply);
    if (type)
        assert_ptr_equal(type, reply->descriptor);
    Fltest__EchoReply *r = (Fltest__EchoReply *)reply;
    assert_string_equal(text, r->text);
    assert_int_equal(n, r->n);
    protobuf_c_message_free_unpacked(reply, NULL);
}

/* A run_async task making a stub call with a closure through gw. */
typedef struct call_from {
    fl_rpc_gateway_t *gw;
    closure_ctx_t *c;
} call_from_t;

static inline void call_from_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    call_from_t *cf = arg;
    Fltest__EchoRequest req = echo_req("from an endpoint", 91);
    fltest__test_gateway__echo(fl_rpc_gateway_service(cf->gw), &req,
                               echo_closure, cf->c);
}

#endif /* CALL_FIXTURE_H */
