/*
 * rpc_fixture.h - the test endpoint shared by the RPC unit tests.
 *
 * Every test endpoint implements fltest.TestGateway (test_gateways.proto)
 * with the handlers of test_endpoint.h and hands them a tep_t: the switches a
 * test sets before it starts or closes the endpoint (on_start's return,
 * on_stop's future, latches to wait on) and what the hooks and handlers
 * observed. Plus helpers for services, endpoints, gateways, calls and futures
 * that fail the test on any unexpected code, and ep_fx_t: the service, endpoint
 * and gateway most cases begin and end with.
 *
 * Each case runs once per transport, local and TCP (rpc_transport.h says
 * how): svc_new makes the serving service, gw_to connects from the
 * caller's service (cli_of) to the endpoint's address. Everything a case
 * does on the endpoint side (hooks, main thread, self gateway,
 * termination) stays on the serving service; endpoints that make calls
 * stand on the caller's. Expected texts that name an address are computed
 * for the transport (tep_address, tran_hostname).
 *
 * Header-only (static inline) because every tests/unit/rpc/<name>_test.c is
 * its own program built from that one file.
 */
#ifndef RPC_FIXTURE_H
#define RPC_FIXTURE_H

#include "fl_test.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_transport.h"
#include "test_endpoint.h"
#include "test_gateways.pb-c.h"

/* ---- services, endpoints, gateways --------------------------------------- */

/* A serving service for the transport (svc_listen) with 2 workers. */
static inline fl_rpc_service_t *svc_new(int64_t default_timeout_ms)
{
    fl_rpc_service_opts_t o = {0};
    o.workers = 2;
    o.default_timeout_ms = default_timeout_ms;
    svc_listen(&o);
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(&o, &svc));
    assert_non_null(svc);
    return svc;
}

/* Shuts svc down (which must succeed), frees it, then ends its caller's
 * service (cli_of) if it has one. */
static inline void svc_end(fl_rpc_service_t *svc)
{
    fl_test_service_end(svc);
    cli_end(svc);
}

/* Frees svc (shutting it down if needed, whatever its result), then ends
 * its caller's service if it has one. */
static inline void svc_free(fl_rpc_service_t *svc)
{
    fl_rpc_service_free(svc);
    cli_end(svc);
}

/* Shuts down svc's caller's service (cli_of, also when that is svc), then
 * svc; returns svc's shutdown result. For cases on calls and connects after
 * the shutdown: over TCP the caller's service is the one that refuses
 * them. */
static inline int svc_shutdown(fl_rpc_service_t *svc)
{
    fl_rpc_service_t *cli = cli_of(svc);
    if (cli != svc)
        assert_fl_ok(fl_rpc_service_shutdown(cli));
    return fl_rpc_service_shutdown(svc);
}

/* Ends a service whose endpoints may have failed: an endpoint that
 * terminated (with a failure) before the close is no longer the service's,
 * so whether shutdown reports it is not asserted here. */
static inline void svc_end_any(fl_rpc_service_t *svc)
{
    (void)fl_rpc_service_shutdown(svc);
    svc_free(svc);
}

static inline fl_rpc_endpoint_opts_t tep_opts(const char *id, tep_t *st,
                                              const fl_fencing_token_t *tok)
{
    fl_rpc_endpoint_opts_t o = {0};
    o.id = id;
    o.services = tep_services();
    o.nservices = 1;
    o.state = st;
    o.on_start = tep_on_start;
    o.on_stop = tep_on_stop;
    o.fencing_token = tok;
    return o;
}

/* Creates (not starts) a test endpoint. */
static inline fl_rpc_endpoint_t *tep_create(fl_rpc_service_t *svc,
                                            const char *id, tep_t *st,
                                            const fl_fencing_token_t *tok)
{
    fl_rpc_endpoint_opts_t o = tep_opts(id, st, tok);
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(svc, &o, &ep));
    assert_non_null(ep);
    return ep;
}

/* Starts ep and waits until its on_start has run. */
static inline void tep_start(fl_rpc_endpoint_t *ep, tep_t *st)
{
    fl_test_latch_t *l = fl_test_latch_alloc(1);
    st->started = l;
    assert_fl_ok(fl_rpc_endpoint_start(ep));
    wait_latch(l);
    st->started = NULL;
    fl_test_latch_free(l);
}

static inline fl_rpc_endpoint_t *
tep_create_started(fl_rpc_service_t *svc, const char *id, tep_t *st,
                   const fl_fencing_token_t *tok)
{
    fl_rpc_endpoint_t *ep = tep_create(svc, id, st, tok);
    tep_start(ep, st);
    return ep;
}

/* Closes ep and asserts it terminated successfully; returns the
 * termination future (the caller releases it, and frees ep). */
static inline fl_future_t *tep_close(fl_rpc_endpoint_t *ep)
{
    fl_future_t *t = fl_rpc_endpoint_close(ep);
    assert_fl_ok(future_code(t));
    return t;
}

/* Closes ep, asserts it terminated successfully, frees the handle. */
static inline void tep_end(fl_rpc_endpoint_t *ep)
{
    fl_future_release(tep_close(ep));
    fl_rpc_endpoint_free(ep);
}

/* Makes st's on_stop answer with a pending future and count down
 * st->stopping (both set here); returns the test's reference to that
 * future, which the test completes. */
static inline fl_future_t *tep_pending_stop(tep_t *st)
{
    fl_future_t *p = fl_future_alloc();
    st->stop_future = fl_future_retain(p); /* the endpoint takes this one */
    st->stopping = fl_test_latch_alloc(1);
    return p;
}

/* A TestGateway to ep (an endpoint of svc) from cli_of(svc), stamped with
 * tok (NULL: unfenced); the caller frees it. */
static inline fl_rpc_gateway_t *gw_to(fl_rpc_service_t *svc,
                                      fl_rpc_endpoint_t *ep,
                                      const fl_fencing_token_t *tok)
{
    return gw_connect(cli_of(svc), fl_rpc_endpoint_address(ep), TG, tok);
}

/* ---- the one-endpoint fixture -------------------------------------------- */

/* What ep_fx_open does besides creating the endpoint. */
enum {
    FX_START = 1, /* start it (its on_start has run when open returns) */
    FX_GW = 2     /* connect an unfenced TestGateway to it (fx->gw) */
};

/* A fresh service with one test endpoint and, optionally, a gateway to it.
 * The endpoint keeps &st, so a fixture lives in the test's frame and is
 * passed by pointer. */
typedef struct ep_fx {
    fl_rpc_service_t *svc;
    tep_t st;
    fl_rpc_endpoint_t *ep; /* NULL until ep_fx_open */
    fl_rpc_gateway_t *gw;  /* NULL without FX_GW */
} ep_fx_t;

/* A new service (svc_new(0)) and a zeroed st, no endpoint yet: the test
 * may set st's switches, then calls ep_fx_open. */
static inline void ep_fx_init(ep_fx_t *fx)
{
    fx->svc = svc_new(0);
    tep_init(&fx->st);
    fx->ep = NULL;
    fx->gw = NULL;
}

/* Creates the test endpoint `id` (NULL: a generated id) with state &fx->st,
 * then starts it and connects fx->gw as flags (FX_*) say. */
static inline void ep_fx_open(ep_fx_t *fx, const char *id, unsigned flags)
{
    fx->ep = tep_create(fx->svc, id, &fx->st, NULL);
    if (flags & FX_START)
        tep_start(fx->ep, &fx->st);
    if (flags & FX_GW)
        fx->gw = gw_to(fx->svc, fx->ep, NULL);
}

/* ep_fx_init, then ep_fx_open(fx, id, flags). */
static inline void ep_fx_begin(ep_fx_t *fx, const char *id, unsigned flags)
{
    ep_fx_init(fx);
    ep_fx_open(fx, id, flags);
}

/* Frees fx->gw (if any), ends the endpoint with tep_end and the service
 * with svc_end. */
static inline void ep_fx_end(ep_fx_t *fx)
{
    if (fx->gw)
        fl_rpc_gateway_free(fx->gw);
    tep_end(fx->ep);
    svc_end(fx->svc);
}

/* ep_fx_end without closing the endpoint (the test has closed it, or leaves
 * that to the service's shutdown in svc_end): it is only freed. */
static inline void ep_fx_end_closed(ep_fx_t *fx)
{
    if (fx->gw)
        fl_rpc_gateway_free(fx->gw);
    fl_rpc_endpoint_free(fx->ep);
    svc_end(fx->svc);
}

/* ---- calls --------------------------------------------------------------- */

/* What a stub's closure saw: the reply or not, the last error and message,
 * once (done counted down). */
typedef struct seen {
    fl_test_latch_t *done;
    bool got_reply;
    int err;
    char msg[FL_FUTURE_MESSAGE_MAX];
} seen_t;

static inline void seen_closure(const Fltest__EchoReply *r, void *data)
{
    seen_t *s = data;
    s->got_reply = r != NULL;
    s->err = fl_rpc_last_error();
    snprintf(s->msg, sizeof s->msg, "%s", fl_rpc_last_message());
    fl_test_latch_count_down(s->done);
}

static inline Fltest__EchoRequest echo_req(const char *text, int64_t n)
{
    Fltest__EchoRequest r = FLTEST__ECHO_REQUEST__INIT;
    r.text = (char *)text;
    r.n = n;
    return r;
}

static inline fl_future_t *call_echo(fl_rpc_gateway_t *gw, const char *text,
                                     int64_t n)
{
    Fltest__EchoRequest req = echo_req(text, n);
    return call_async_req(gw, M_ECHO, &req.base, 0);
}

/* Makes a call and returns its result code (the reply, if any, is freed
 * with the future). */
static inline int call_code(fl_rpc_gateway_t *gw, unsigned m,
                            const ProtobufCMessage *req)
{
    fl_future_t *f = call_async_req(gw, m, req, 0);
    int rc = future_code(f);
    fl_future_release(f);
    return rc;
}

static inline int echo_code(fl_rpc_gateway_t *gw)
{
    Fltest__EchoRequest req = echo_req("ping", 1);
    return call_code(gw, M_ECHO, &req.base);
}

/* Takes the EchoReply of a call future that must succeed and checks its
 * text and n (what failed is named in a failure message). */
static inline void expect_reply_of(const char *what, fl_future_t *f,
                                   const char *text, int64_t n)
{
    int rc = future_code(f);
    if (rc != FL_OK)
        fail_msg("%s failed: %s (%s)", what, fl_err_name(rc),
                 fl_future_message(f));
    Fltest__EchoReply *r = fl_future_take_value(f);
    assert_non_null(r);
    assert_string_equal(text, r->text);
    assert_int_equal(n, r->n);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* Echo through gw must succeed with the same text and n. */
static inline void expect_echo(fl_rpc_gateway_t *gw, const char *text,
                               int64_t n)
{
    fl_future_t *f = call_echo(gw, text, n);
    expect_reply_of("Echo", f, text, n);
    fl_future_release(f);
}

/* f must fail with FL_ETIMEDOUT, and [min_ms, 5000) ms after t0 (a
 * fl_clock_now_ns() taken before the call). */
static inline void expect_timed_out(fl_future_t *f, uint64_t t0,
                                    uint64_t min_ms)
{
    assert_fl(FL_ETIMEDOUT, future_code(f));
    uint64_t el = ms_since(t0);
    if (el < min_ms || el >= 5000)
        fail_msg("timed out after %llu ms, want [%llu, 5000)",
                 (unsigned long long)el, (unsigned long long)min_ms);
}

/* Probe through gw; returns the PROBE_* bits, checks the id. */
static inline int probe_bits(fl_rpc_gateway_t *gw, const char *id)
{
    Fltest__Empty req = FLTEST__EMPTY__INIT;
    fl_future_t *f = call_async_req(gw, M_PROBE, &req.base, 0);
    int rc = future_code(f);
    if (rc != FL_OK)
        fail_msg("Probe failed: %s (%s)", fl_err_name(rc),
                 fl_future_message(f));
    Fltest__EchoReply *r = fl_future_take_value(f);
    assert_non_null(r);
    if (id)
        assert_string_equal(id, r->text);
    int bits = (int)r->n;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    fl_future_release(f);
    return bits;
}

/* Sends a Count tell through the stub (closure NULL). */
static inline void tell_count(fl_rpc_gateway_t *gw, int sender, int64_t seq)
{
    Fltest__CountRequest req = FLTEST__COUNT_REQUEST__INIT;
    req.sender = sender;
    req.seq = seq;
    fltest__test_gateway__count(fl_rpc_gateway_service(gw), &req, NULL, NULL);
}

/* Answers the call Block parked with text/n (from the calling thread). */
static inline void tep_release_parked(tep_t *st, const char *text, int64_t n)
{
    assert_non_null(st->parked_call);
    Fltest__EchoReply r = FLTEST__ECHO_REPLY__INIT;
    r.text = (char *)text;
    r.n = n;
    void *call = st->parked_call;
    st->parked_call = NULL;
    st->parked_closure(&r, call);
}

/*
 * The last Block call through gw timed out at its caller. Its handler
 * parked it (st->blocked counted down) unless the call had not started
 * by its deadline: then the endpoint dropped it (on a loaded machine). An
 * Echo through the same gateway (its own WAIT_MS timeout) comes back after
 * the Block was handled either way; a parked call is then answered `text`
 * (which is discarded).
 */
static inline void settle_timed_out_block(fl_rpc_gateway_t *gw, tep_t *st,
                                          const char *text)
{
    Fltest__EchoRequest req = echo_req("after the timeout", 1);
    fl_future_t *f = call_async_req(gw, M_ECHO, &req.base, WAIT_MS);
    expect_reply_of("Echo", f, "after the timeout", 1);
    fl_future_release(f);
    if (fl_test_latch_count(st->blocked) == 0)
        tep_release_parked(st, text, 0);
}

/* A counting fl_free_cb for an atomic_int. */
static inline void count_free(void *p)
{
    atomic_fetch_add((atomic_int *)p, 1);
}

/* A run_async task that holds the main thread until `gate` opens. */
typedef struct hold {
    fl_test_latch_t *entered;
    fl_test_latch_t *gate;
} hold_t;

static inline void hold_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    hold_t *h = arg;
    fl_test_latch_count_down(h->entered);
    (void)fl_test_latch_wait(h->gate, WAIT_MS);
}

#endif /* RPC_FIXTURE_H */
