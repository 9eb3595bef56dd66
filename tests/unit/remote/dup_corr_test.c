/*
 * dup_corr_test.c - a server executes an ask at most once per correlation
 * id in flight (docs/wire-protocol.md, "Correlation ids"): a second INVOKE
 * with the id of one whose answer is not queued yet is a protocol error
 * (ERROR FL_EPROTO "duplicate correlation id N", then the server closes),
 * and the handler runs once. A well-behaved client keeps being served on
 * its own connection meanwhile (wire_client.h's fixture).
 */
#include "wire_raw.h"

#define SERVER_NAME "dup-server"
#define SLOW_ID "slow"
/* Calls the good client must complete while a case runs. */
#define GOOD_PER_CASE 20

/* The slow endpoint: its Add defers the call and leaves it unanswered
 * until the case answers it, so that the call stays in flight. */
typedef struct slow {
    atomic_int runs;      /* Add handlers run */
    fl_test_latch_t *ran; /* counted down by each run */
    fl_rpc_call_t *held;  /* the first run's call */
    Flhostile__Num_Closure closure;
} slow_t;

static void slow_add(Flhostile__CalcGateway_Service *svc,
                     const Flhostile__Num *in, Flhostile__Num_Closure closure,
                     void *closure_data)
{
    (void)svc;
    (void)in;
    slow_t *st = fl_rpc_call_state(closure_data);
    if (atomic_fetch_add(&st->runs, 1) == 0) {
        st->closure = closure;
        st->held = fl_rpc_defer(closure_data);
    } else {
        Flhostile__Num r = FLHOSTILE__NUM__INIT;
        closure(&r, closure_data);
    }
    fl_test_latch_count_down(st->ran);
}

static void slow_depth(Flhostile__CalcGateway_Service *svc,
                       const Flhostile__Chain *in,
                       Flhostile__Num_Closure closure, void *closure_data)
{
    (void)svc;
    (void)in;
    fl_rpc_fail(closure_data, FL_EINVAL, "not here");
}

typedef struct dup_fx {
    fixture_t fx;
    slow_t slow;
    fl_rpc_endpoint_t *ep;
} dup_fx_t;

static int setup(void **state)
{
    dup_fx_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return -1;
    *state = d;
    if (fixture_start(&d->fx, SERVER_NAME, 0, 0, "calc", calc_services(), 2) !=
        0)
        return -1;
    static Flhostile__CalcGateway_Service calc =
        FLHOSTILE__CALC_GATEWAY__INIT(slow_);
    static ProtobufCService *const services[1] = {&calc.base};
    d->slow.ran = fl_test_latch_alloc(1);
    fl_rpc_endpoint_opts_t eo = {0};
    eo.id = SLOW_ID;
    eo.services = services;
    eo.nservices = 1;
    eo.state = &d->slow;
    int rc = fl_rpc_endpoint_create(d->fx.server, &eo, &d->ep);
    if (rc == FL_OK)
        rc = fl_rpc_endpoint_start(d->ep);
    if (rc != FL_OK) {
        print_error("slow endpoint: %s\n", fl_err_name(rc));
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    dup_fx_t *d = *state;
    raw_fd_close_all();
    if (d == NULL)
        return 0;
    if (d->slow.held != NULL) {
        Flhostile__Num r = FLHOSTILE__NUM__INIT;
        d->slow.closure(&r, d->slow.held);
    }
    good_stop(&d->fx.good);
    (void)calc_end(d->ep);
    fixture_end(&d->fx);
    fl_test_latch_free(d->slow.ran);
    free(d);
    return 0;
}

/* A raw connection to the slow endpoint, past HELLO and CONNECT (corr 1). */
static raw_t slow_raw(dup_fx_t *d)
{
    raw_t r = raw_of(raw_connect(d->fx.port, 0), FL__FRAME_DEFAULT_MAX,
                     "dup-client", FL__FRAME_DEFAULT_MAX, SERVER_NAME, SLOW_ID);
    raw_hello(&r);
    raw_attach(&r, 1, CALC_NAME, CALC_INDEX);
    return r;
}

/* Ask 7 is in flight (its handler ran and deferred it); the same ask
 * again is refused as a duplicate and the connection closes; the handler
 * ran once, and the good client went on being served. */
static void test_a_duplicate_ask_in_flight_is_refused_and_closes(void **state)
{
    dup_fx_t *d = *state;
    raw_t r = slow_raw(d);
    uint64_t good0 = good_done(&d->fx.good);
    send_num(&r, 7, CALC_INDEX, M_ADD, 5, "dup");
    fl_test_latch_await(d->slow.ran);
    send_num(&r, 7, CALC_INDEX, M_ADD, 5, "dup");
    char msg[FL__ERRMSG_MAX + 1];
    expect_error_then_close(&r, FL_EPROTO, msg, sizeof msg);
    assert_string_equal("duplicate correlation id 7", msg);
    raw_close(&r);
    good_wait(&d->fx.good, good0 + GOOD_PER_CASE, WAIT_MS);
    assert_int_equal(1, atomic_load(&d->slow.runs));
    /* Answered now, the call's answer has no connection to go to. */
    Flhostile__Num reply = FLHOSTILE__NUM__INIT;
    fl_rpc_call_t *held = d->slow.held;
    d->slow.held = NULL;
    d->slow.closure(&reply, held);
    assert_int_equal(1, atomic_load(&d->slow.runs));
}

/* Once its answer is queued an id is no longer in flight: a client that
 * reuses it (against the rule, but harmlessly) is served again. */
static void test_an_answered_id_may_come_again(void **state)
{
    dup_fx_t *d = *state;
    raw_t r = raw_of(raw_connect(d->fx.port, 0), FL__FRAME_DEFAULT_MAX,
                     "dup-client", FL__FRAME_DEFAULT_MAX, SERVER_NAME, "calc");
    raw_hello(&r);
    raw_attach(&r, 1, CALC_NAME, CALC_INDEX);
    expect_usable(&r, 9, 41);
    expect_usable(&r, 9, 42);
    raw_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_a_duplicate_ask_in_flight_is_refused_and_closes),
        FL_TEST(test_an_answered_id_may_come_again),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
