/*
 * deadline_drop_test.c - a call carries its caller's deadline to the
 * endpoint (docs/wire-protocol.md, flag DEADLINE; in-process, the
 * invocation's header), and an endpoint drops a call whose deadline passed
 * before its handler started: the handler runs none of the expired calls,
 * the service counts them, and a call with a long timeout queued behind
 * them still runs. Over TCP and through a local gateway.
 *
 * The endpoint's Add blocks on a gate for one call (GATE), on a worker
 * (the server runs no turns on its I/O thread), so that the other calls
 * wait in its mailbox until their callers have timed out.
 */
#include "wire_client.h"

#include "rpc/service.h"

#define GATE (-1)
#define LATE_V 1000 /* the call with the long timeout */
#define NSHORT 50
#define SHORT_MS 200
/* A deadline from the coarse clock passes up to this late, on each side. */
#define COARSE_MS 10

typedef struct gated {
    atomic_int runs;      /* Add calls other than GATE and LATE_V */
    atomic_int late_runs; /* Add(LATE_V) calls */
    fl_test_latch_t *entered, *release;
} gated_t;

static void gated_add(Flhostile__CalcGateway_Service *svc,
                      const Flhostile__Num *in, Flhostile__Num_Closure closure,
                      void *closure_data)
{
    (void)svc;
    gated_t *st = fl_rpc_call_state(closure_data);
    if (in->v == GATE) {
        fl_test_latch_count_down(st->entered);
        (void)fl_test_latch_wait(st->release, WAIT_MS);
    } else if (in->v == LATE_V) {
        atomic_fetch_add(&st->late_runs, 1);
    } else {
        atomic_fetch_add(&st->runs, 1);
    }
    Flhostile__Num r = FLHOSTILE__NUM__INIT;
    r.v = in->v + 1;
    closure(&r, closure_data);
}

static void gated_depth(Flhostile__CalcGateway_Service *svc,
                        const Flhostile__Chain *in,
                        Flhostile__Num_Closure closure, void *closure_data)
{
    (void)svc;
    (void)in;
    (void)closure;
    fl_rpc_fail(closure_data, FL_EINVAL, "not here");
}

typedef struct drop_fx {
    fl_rpc_service_t *server, *client;
    fl_rpc_endpoint_t *ep;
    gated_t st;
} drop_fx_t;

static void drop_start(drop_fx_t *d)
{
    memset(d, 0, sizeof *d);
    fl_rpc_service_opts_t so = {0};
    so.workers = 2;
    so.bind_host = "127.0.0.1";
    so.port = "0";
    so.name = "drop-server";
    so.no_io_turns = true; /* the gate blocks a worker, not the I/O thread */
    assert_fl_ok(fl_rpc_service_alloc(&so, &d->server));
    fl_rpc_service_opts_t co = {0};
    co.workers = 2;
    co.name = "drop-client";
    assert_fl_ok(fl_rpc_service_alloc(&co, &d->client));
    static Flhostile__CalcGateway_Service calc =
        FLHOSTILE__CALC_GATEWAY__INIT(gated_);
    static ProtobufCService *const services[1] = {&calc.base};
    d->st.entered = fl_test_latch_alloc(1);
    d->st.release = fl_test_latch_alloc(1);
    fl_rpc_endpoint_opts_t eo = {0};
    eo.id = "calc";
    eo.services = services;
    eo.nservices = 1;
    eo.state = &d->st;
    assert_fl_ok(fl_rpc_endpoint_create(d->server, &eo, &d->ep));
    assert_fl_ok(fl_rpc_endpoint_start(d->ep));
}

static void drop_end(drop_fx_t *d)
{
    fl_test_latch_count_down(d->st.release);
    assert_fl_ok(calc_end(d->ep));
    assert_fl_ok(service_end(d->client));
    assert_fl_ok(service_end(d->server));
    fl_test_latch_free(d->st.entered);
    fl_test_latch_free(d->st.release);
}

static fl_future_t *add(fl_rpc_gateway_t *gw, int64_t v, int64_t timeout_ms)
{
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = v;
    req.text = "x";
    return fl_test_call(gw, M_ADD, &req.base, timeout_ms);
}

/* The gate holds the endpoint; NSHORT calls of SHORT_MS and one of
 * WAIT_MS queue behind it. Once every short call has timed out at its
 * caller and its deadline has surely passed at the endpoint too (its
 * sending + SHORT_MS + the coarse clock's slack on both sides), the gate
 * opens: none of the short calls runs, all NSHORT are counted, and the
 * long one runs and answers. */
static void expired_calls_are_dropped(drop_fx_t *d, fl_rpc_gateway_t *gw)
{
    uint64_t dropped0 = atomic_load(&d->server->st_expired);
    fl_future_t *gate = add(gw, GATE, WAIT_MS);
    fl_test_latch_await(d->st.entered);
    fl_future_t *shorts[NSHORT];
    for (int i = 0; i < NSHORT; i++)
        shorts[i] = add(gw, i, SHORT_MS);
    uint64_t sent = fl_clock_now_ns();
    fl_future_t *late = add(gw, LATE_V, WAIT_MS);
    for (int i = 0; i < NSHORT; i++) {
        assert_fl(FL_ETIMEDOUT, fl_test_future_code(shorts[i]));
        fl_future_release(shorts[i]);
    }
    uint64_t passed = sent + (SHORT_MS + 2 * COARSE_MS + 5) * 1000000ull;
    while (fl_clock_now_ns() < passed)
        usleep(1000);
    fl_test_latch_count_down(d->st.release);
    fl_test_future_ok(gate, "the gate call");
    fl_test_future_ok(late, "the call with the long timeout");
    const Flhostile__Num *r = fl_future_value(late);
    assert_int_equal(LATE_V + 1, r->v);
    fl_future_release(gate);
    fl_future_release(late);
    assert_int_equal(0, atomic_load(&d->st.runs));
    assert_int_equal(1, atomic_load(&d->st.late_runs));
    assert_int_equal(NSHORT, atomic_load(&d->server->st_expired) - dropped0);
}

static void test_remote_calls_past_their_deadline_are_dropped(void **state)
{
    (void)state;
    drop_fx_t d;
    drop_start(&d);
    fl_rpc_gateway_t *gw = NULL;
    assert_fl_ok(gw_connect(d.client, fl_rpc_endpoint_address(d.ep),
                            &flhostile__calc_gateway__descriptor, &gw));
    expired_calls_are_dropped(&d, gw);
    fl_rpc_gateway_free(gw);
    drop_end(&d);
}

static void test_local_calls_past_their_deadline_are_dropped(void **state)
{
    (void)state;
    drop_fx_t d;
    drop_start(&d);
    fl_rpc_gateway_t *gw = NULL;
    assert_fl_ok(gw_connect(d.server, "fling://local/calc",
                            &flhostile__calc_gateway__descriptor, &gw));
    expired_calls_are_dropped(&d, gw);
    fl_rpc_gateway_free(gw);
    drop_end(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_remote_calls_past_their_deadline_are_dropped),
        FL_TEST(test_local_calls_past_their_deadline_are_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
