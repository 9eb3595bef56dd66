/*
 * peer_calls.h - the test process's side of the remote_*_test.c programs:
 * its own service and endpoints (whose RemoteGateway handlers are the
 * peer's own, remote_fixture.h), the calls to the peer that fail the test,
 * the fixture (a peer, the test's service and endpoints) and CallBack, the
 * peer calling the test process. The waits, connects and calls that fail
 * the test are fl_test.h's; the peer process is peer_process.h's.
 *
 * Header-only (static inline) because each program is built from one file.
 */
#ifndef PEER_CALLS_H
#define PEER_CALLS_H

#include "peer_process.h"

/* ---- the test process's own service and endpoints ------------------------ */

/* The test endpoints' RemoteGateway: the methods the peer calls back, with
 * the peer's handlers; the others stay NULL (FL_ENOMETHOD). */
static Flremote__RemoteGateway_Service back_impl = {
    .base = FLREMOTE__REMOTE_GATEWAY__BASE_INIT,
    .echo = rg_echo,
    .fail = rg_fail,
    .block = rg_block,
    .count = rg_count,
    .size = rg_size,
};
static ProtobufCService *const back_services[1] = {&back_impl.base};

/* A listening service of the test process on 127.0.0.1, port 0. */
static inline fl_rpc_service_t *test_service(uint32_t max_frame)
{
    fl_rpc_service_opts_t o = {0};
    o.workers = 2;
    o.default_timeout_ms = LONG_MS;
    o.bind_host = "127.0.0.1";
    o.port = "0";
    o.max_frame_size = max_frame;
    o.name = "remote_test";
    fl_rpc_service_t *svc = NULL;
    int rc = fl_rpc_service_alloc(&o, &svc);
    if (rc != FL_OK)
        fail_msg("fl_rpc_service_alloc: %s (%s)", fl_err_name(rc),
                 fl_rpc_last_message());
    assert_non_null(svc);
    assert_true(fl_rpc_service_port(svc) > 0);
    return svc;
}

/* Creates a test endpoint on svc with state b (and starts it if start). */
static inline fl_rpc_endpoint_t *back_endpoint(fl_rpc_service_t *svc,
                                               const char *id, rg_store_t *b,
                                               const fl_fencing_token_t *tok,
                                               bool start)
{
    fl_rpc_endpoint_opts_t o = {0};
    o.id = id;
    o.services = back_services;
    o.nservices = 1;
    o.state = b;
    o.on_start = rg_on_start;
    o.fencing_token = tok;
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(svc, &o, &ep));
    if (start)
        assert_fl_ok(fl_rpc_endpoint_start(ep));
    return ep;
}

/* ---- calls --------------------------------------------------------------- */

static inline Flremote__EchoRequest echo_req(const char *text, int64_t n)
{
    Flremote__EchoRequest r = FLREMOTE__ECHO_REQUEST__INIT;
    r.text = (char *)text;
    r.n = n;
    return r;
}

static inline Flremote__FailRequest fail_req(int code, const char *message)
{
    Flremote__FailRequest r = FLREMOTE__FAIL_REQUEST__INIT;
    r.code = code;
    r.message = (char *)message;
    return r;
}

/* A successful EchoReply future: checks the descriptor, text and n. */
static inline void expect_echo_reply(fl_future_t *f, const char *text,
                                     int64_t n)
{
    fl_test_future_ok(f, "call failed");
    ProtobufCMessage *m = fl_future_take_value(f);
    assert_non_null(m);
    assert_ptr_equal(&flremote__echo_reply__descriptor, m->descriptor);
    Flremote__EchoReply *r = (Flremote__EchoReply *)m;
    assert_string_equal(text, r->text);
    assert_int_equal(n, r->n);
    protobuf_c_message_free_unpacked(m, NULL);
}

static inline void expect_echo(fl_rpc_gateway_t *gw, const char *text,
                               int64_t n)
{
    Flremote__EchoRequest req = echo_req(text, n);
    fl_future_t *f = fl_test_call(gw, M_ECHO, &req.base, 0);
    expect_echo_reply(f, text, n);
    fl_future_release(f);
}

static inline int echo_code(fl_rpc_gateway_t *gw)
{
    Flremote__EchoRequest req = echo_req("ping", 1);
    return fl_test_call_code(gw, M_ECHO, &req.base, 0, NULL, 0);
}

/* A Size call that must succeed with a text of exactly size bytes. */
static inline void expect_size_reply(fl_rpc_gateway_t *gw, int64_t size)
{
    Flremote__SizeRequest req = FLREMOTE__SIZE_REQUEST__INIT;
    req.size = size;
    fl_future_t *f = fl_test_call(gw, M_SIZE, &req.base, 0);
    assert_fl_ok(fl_test_future_code(f));
    Flremote__EchoReply *r = fl_future_value(f);
    assert_non_null(r);
    assert_int_equal(size, r->n);
    assert_int_equal(size, strlen(r->text));
    fl_future_release(f);
}

/* A CountReply call (WaitCount, WaitParked, Release) that must succeed. */
static inline int64_t count_call(fl_rpc_gateway_t *gw, unsigned m,
                                 const ProtobufCMessage *req)
{
    fl_future_t *f = fl_test_call(gw, m, req, 0);
    fl_test_future_ok(f, "method %u failed", m);
    Flremote__CountReply *r = fl_future_value(f);
    assert_non_null(r);
    int64_t count = r->count;
    fl_future_release(f);
    return count;
}

/* The peer's count once it has reached n (WaitCount). */
static inline int64_t peer_wait_count(fl_rpc_gateway_t *gw, int64_t n)
{
    Flremote__CountRequest req = FLREMOTE__COUNT_REQUEST__INIT;
    req.n = n;
    return count_call(gw, M_WAIT_COUNT, &req.base);
}

/* Returns once the peer has at least `want` calls parked under tag. */
static inline void peer_wait_parked(fl_rpc_gateway_t *gw, int64_t tag,
                                    int64_t want)
{
    Flremote__TagRequest req = FLREMOTE__TAG_REQUEST__INIT;
    req.tag = tag;
    req.want = want;
    int64_t have = count_call(gw, M_WAIT_PARKED, &req.base);
    if (have < want)
        fail_msg("peer has %" PRId64 " calls parked under %" PRId64
                 ", want %" PRId64,
                 have, tag, want);
}

/* Answers the peer's calls parked under tag; returns how many. */
static inline int64_t peer_release(fl_rpc_gateway_t *gw, int64_t tag)
{
    Flremote__TagRequest req = FLREMOTE__TAG_REQUEST__INIT;
    req.tag = tag;
    return count_call(gw, M_RELEASE, &req.base);
}

/* Sends a Count tell through the stub (closure NULL); it must be queued. */
static inline void tell_count(fl_rpc_gateway_t *gw, int64_t n)
{
    Flremote__CountRequest req = FLREMOTE__COUNT_REQUEST__INIT;
    req.n = n;
    rg_stub_call(fl_rpc_gateway_service(gw), M_COUNT, &req.base, NULL);
    assert_fl_ok(fl_rpc_last_error());
}

/* Waits (bounded) for the closure that records into c. */
static inline void closure_wait(rg_seen_t *c)
{
    if (!rg_seen_wait(c, WAIT_MS))
        fail_msg("the closure did not run in %d ms", WAIT_MS);
}

/* A stub call of m through gw whose closure records into c (initialised
 * here; the caller ends it with rg_seen_fini); returns once it ran. */
static inline void closure_call(rg_seen_t *c, fl_rpc_gateway_t *gw, unsigned m,
                                const ProtobufCMessage *req)
{
    rg_seen_init(c, NULL);
    assert_true(rg_stub_call(fl_rpc_gateway_service(gw), (int)m, req, c));
    closure_wait(c);
}

/* A stub call's code; *got_reply (may be NULL): whether a reply came. */
static inline int closure_code(fl_rpc_gateway_t *gw, unsigned m,
                               const ProtobufCMessage *req, bool *got_reply)
{
    rg_seen_t c;
    closure_call(&c, gw, m, req);
    if (got_reply)
        *got_reply = c.got_reply;
    int code = c.code;
    rg_seen_fini(&c);
    return code;
}

/* A future and a blocking Echo through gw must both fail with code. */
static inline void expect_calls_fail(fl_rpc_gateway_t *gw, int code)
{
    assert_fl(code, echo_code(gw));
    Flremote__EchoRequest req = echo_req("blocking", 2);
    assert_fl(code, fl_test_call_sync_code(gw, M_ECHO, &req.base, 0));
}

/* A connect expected to fail with want: its message must name `names`
 * (unless NULL); with `what`, the failure must come within PROMPT_MS. */
static inline void expect_connect_error(fl_rpc_service_t *svc,
                                        const char *address, int want,
                                        const char *names, const char *what)
{
    char msg[512];
    uint64_t t0 = fl_clock_now_ns();
    assert_fl(want, fl_test_connect_error(svc, address, RG, msg, sizeof msg));
    uint64_t el = fl_test_ms_since(t0);
    if (names && !strstr(msg, names))
        fail_msg("message \"%s\" does not name %s", msg, names);
    if (what)
        fl_test_assert_elapsed(what, el, 0, PROMPT_MS);
}

/* ---- the fixture: a peer, the test's service and endpoints ----------------
 */

typedef struct fixture {
    peer_t peer;
    fl_rpc_service_t *svc;          /* the test process's service (listening) */
    rg_store_t back;                /* state of the three test endpoints */
    fl_rpc_endpoint_t *back_ep;     /* "back": unfenced, started */
    fl_rpc_endpoint_t *backf_ep;    /* "backf": fenced (TEST_TOKEN), started */
    fl_rpc_endpoint_t *backidle_ep; /* "backidle": created, not started */
    fl_rpc_gateway_t *plain;        /* to the peer's "plain" */
} fixture_t;

/* max frame sizes: 0 = the default (10 MiB). */
static inline void fx_begin_with(fixture_t *fx, uint32_t peer_max,
                                 uint32_t test_max)
{
    memset(fx, 0, sizeof *fx);
    peer_spawn(&fx->peer, "0", peer_max);
    fx->svc = test_service(test_max);
    rg_store_init(&fx->back);
    fl_fencing_token_t t = fl_test_token(TEST_TOKEN_BYTE);
    fx->back_ep = back_endpoint(fx->svc, "back", &fx->back, NULL, true);
    fx->backf_ep = back_endpoint(fx->svc, "backf", &fx->back, &t, true);
    fx->backidle_ep =
        back_endpoint(fx->svc, "backidle", &fx->back, NULL, false);
    int64_t started = rg_store_wait(&fx->back, &fx->back.started, 2, WAIT_MS);
    if (started < 2)
        fail_msg("%" PRId64 " of the 2 test endpoints started in %d ms",
                 started, WAIT_MS);
    fx->plain = fl_test_connect(fx->svc, fx->peer.plain, RG, NULL);
}

static inline void fx_begin(fixture_t *fx)
{
    fx_begin_with(fx, 0, 0);
}

static inline void fx_end(fixture_t *fx)
{
    (void)rg_store_release(&fx->back, true, 0);
    fl_rpc_gateway_free(fx->plain);
    peer_stop(&fx->peer);
    fl_test_endpoint_end(fx->back_ep);
    fl_test_endpoint_end(fx->backf_ep);
    fl_test_endpoint_end(fx->backidle_ep);
    fl_test_service_end(fx->svc);
    rg_store_fini(&fx->back);
}

/* ---- CallBack: the peer calls the test process ----------------------------
 */

typedef struct cb_args {
    const char *address; /* NULL: the test endpoint "back" */
    const fl_fencing_token_t *token;
    Flremote__Style style;
    int method;
    const char *text;
    int64_t n;
    int code;
    int64_t timeout_ms;
    int64_t text_size;
} cb_args_t;

/* Has the peer make the call a describes; returns what it saw (the caller
 * frees it with cb_free). */
static inline Flremote__CallBackReply *call_back(fixture_t *fx,
                                                 const cb_args_t *a)
{
    Flremote__CallBackRequest req = FLREMOTE__CALL_BACK_REQUEST__INIT;
    req.address = (char *)(a->address ? a->address
                                      : fl_rpc_endpoint_address(fx->back_ep));
    if (a->token) {
        req.token.data = (uint8_t *)a->token->bytes;
        req.token.len = sizeof a->token->bytes;
    }
    req.style = a->style;
    req.method = a->method;
    req.text = (char *)(a->text ? a->text : "");
    req.n = a->n;
    req.code = a->code;
    req.timeout_ms = a->timeout_ms;
    req.text_size = a->text_size;
    fl_future_t *f = fl_test_call(fx->plain, M_CALL_BACK, &req.base, 0);
    fl_test_future_ok(f, "CallBack failed");
    Flremote__CallBackReply *r = fl_future_take_value(f);
    assert_non_null(r);
    fl_future_release(f);
    return r;
}

static inline void cb_free(Flremote__CallBackReply *r)
{
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* call_back whose report must show a connect that succeeded and a call
 * that ended with want. */
static inline Flremote__CallBackReply *
call_back_expect(fixture_t *fx, const cb_args_t *a, int want)
{
    Flremote__CallBackReply *r = call_back(fx, a);
    assert_fl_ok(r->connect_code);
    if (r->code != want)
        fail_msg("the peer's call (style %d): %s (%s), want %s", (int)a->style,
                 fl_err_name(r->code), r->message, fl_err_name(want));
    return r;
}

/* A call through gw that must fail at once with FL_EMSGSIZE and want, in
 * each style: its future, fl_rpc_call_sync's last message. */
static inline void expect_call_too_big(fl_rpc_gateway_t *gw, unsigned m,
                                       const ProtobufCMessage *req,
                                       const char *want)
{
    char msg[FL_FUTURE_MESSAGE_MAX];
    uint64_t t0 = fl_clock_now_ns();
    assert_fl(FL_EMSGSIZE, fl_test_call_code(gw, m, req, 0, msg, sizeof msg));
    fl_test_assert_elapsed("an oversized call", fl_test_ms_since(t0), 0,
                           PROMPT_MS);
    assert_string_equal(want, msg);
    assert_fl(FL_EMSGSIZE, fl_test_call_sync_code(gw, m, req, 0));
    assert_string_equal(want, fl_rpc_last_message());
}

/* The peer's future call of method (Size: a reply of size bytes; Echo: a
 * request with a text of size bytes) to "back" must fail at once with
 * FL_EMSGSIZE and want. */
static inline void expect_call_back_too_big(fixture_t *fx, int method,
                                            int64_t size, const char *want)
{
    cb_args_t a = {.style = FLREMOTE__STYLE__STYLE_FUTURE, .method = method};
    if (method == M_SIZE)
        a.n = size;
    else
        a.text_size = size;
    Flremote__CallBackReply *r = call_back_expect(fx, &a, FL_EMSGSIZE);
    assert_string_equal(want, r->message);
    fl_test_assert_elapsed("the peer's oversized call", (uint64_t)r->elapsed_ms,
                           0, PROMPT_MS);
    cb_free(r);
}

#endif /* PEER_CALLS_H */
