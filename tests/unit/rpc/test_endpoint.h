/*
 * test_endpoint.h - the test endpoint of the RPC unit tests: its state
 * (tep_t: the switches a test sets before it starts or closes the
 * endpoint, and what the hooks and handlers observed), the serial-execution
 * check, its hooks, and the fltest.TestGateway handlers (tg_*,
 * test_gateways.proto). Included by rpc_fixture.h, which builds services,
 * endpoints, gateways and calls on it.
 *
 * Header-only (static inline): each tests/unit/rpc/<name>_test.c is its
 * own program built from that one file.
 */
#ifndef TEST_ENDPOINT_H
#define TEST_ENDPOINT_H

#include "fl_test.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_transport.h"
#include "test_gateways.pb-c.h"

/* How long a test waits for anything that should happen. */
#define WAIT_MS 20000

#define NS_PER_MS 1000000ull

/* TestGateway method indices: the order of the .proto. */
enum {
    M_ECHO = 0,
    M_FAIL = 1,
    M_LATER = 2,
    M_BLOCK = 3,
    M_COUNT = 4,
    M_FORGET = 5,
    M_FROM_FUTURE = 6,
    M_PROBE = 7,
    M_TWICE = 8,
    M_COUNT_OF_METHODS = 9
};

#define TG (&fltest__test_gateway__descriptor)
#define OTHER (&fltest__other_gateway__descriptor)

/* What Probe saw, in the reply's n (and in tep_t.probe_bits). */
#define PROBE_RUNNING 1 /* fl_rpc_endpoint_is_running(ep) */
#define PROBE_MAIN 2    /* fl_rpc_in_main_thread(ep) */
#define PROBE_STATE 4   /* call state == endpoint state == the tep_t */
#define PROBE_TELL 8    /* fl_rpc_call_is_tell() */

/* FromFuture with this code answers with a future the test completes. */
#define FROM_FUTURE_PENDING (-1)

/* Senders whose Count tells are checked for FIFO order. */
#define TEP_SENDERS 8

typedef struct tep {
    /* Set by the test before the endpoint starts or is closed. */
    int start_rc;                /* on_start returns it */
    fl_future_t *stop_future;    /* on_stop returns it (the endpoint takes
                                    this reference); NULL: done at once */
    fl_test_latch_t *started;    /* optional: on_start counts down */
    fl_test_latch_t *stopping;   /* optional: on_stop counts down */
    fl_test_latch_t *counted;    /* optional: Count counts down */
    fl_test_latch_t *blocked;    /* optional: Block counts down */
    fl_test_latch_t *probed;     /* optional: Probe counts down */
    fl_test_latch_t *twice_done; /* optional: Twice counts down at its end */

    /* What the hooks saw. */
    atomic_int starts;
    atomic_int stops;
    atomic_int start_running, start_main;
    atomic_int stop_running, stop_main;

    /* Count tells handled, and the serial-execution check: `inside` is set
     * while a handler or task runs (finding it set on entry is an overlap);
     * serial_count is deliberately NOT atomic, only the main thread touches
     * it, so lost updates or TSan reports reveal concurrent entry. */
    atomic_int counts;
    atomic_int inside;
    atomic_int overlaps;
    atomic_int order_errors;
    long serial_count;
    int64_t next_seq[TEP_SENDERS];

    /* The call Block parked (written before `blocked` counts down). */
    void *parked_call;
    Fltest__EchoReply_Closure parked_closure;

    /* The pending future FromFuture(code FROM_FUTURE_PENDING) answered
     * with (a reference for the test; written before `blocked` counts
     * down). */
    fl_future_t *parked_future;

    /* The last Probe's bits (also for tells). */
    atomic_int probe_bits;

    /* What Twice got back: fl_rpc_fail(FL_OK) before answering, fl_rpc_fail
     * after answering, and whether fl_rpc_defer then gave NULL. */
    atomic_int twice_fail_ok_rc;
    atomic_int twice_again_rc;
    atomic_int twice_defer_null;
    atomic_int twice_request_intact; /* request unchanged after answering */
} tep_t;

static inline void tep_init(tep_t *st)
{
    memset(st, 0, sizeof *st);
}

/* The generic helpers live in fl_test.h; these are their short names. */
#define wait_latch fl_test_latch_await
#define ms_since fl_test_ms_since
#define future_code fl_test_future_code
#define token_of fl_test_token
#define gw_connect fl_test_connect
#define gw_connect_error fl_test_connect_error
#define call_async_req fl_test_call

/* ---- the serial-execution check ------------------------------------------ */

static inline void serial_enter(tep_t *st)
{
    if (atomic_exchange(&st->inside, 1) != 0)
        atomic_fetch_add(&st->overlaps, 1);
    st->serial_count++;
}

static inline void serial_leave(tep_t *st)
{
    atomic_store(&st->inside, 0);
}

/* Checks that sender's messages arrive numbered 0, 1, 2, ... */
static inline void serial_check_order(tep_t *st, int sender, int64_t seq)
{
    if (sender < 0 || sender >= TEP_SENDERS) {
        atomic_fetch_add(&st->order_errors, 1);
        return;
    }
    if (st->next_seq[sender] != seq)
        atomic_fetch_add(&st->order_errors, 1);
    st->next_seq[sender] = seq + 1;
}

/* ---- hooks --------------------------------------------------------------- */

static inline int tep_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    tep_t *st = state;
    atomic_store(&st->start_running, fl_rpc_endpoint_is_running(ep));
    atomic_store(&st->start_main, fl_rpc_in_main_thread(ep));
    atomic_fetch_add(&st->starts, 1);
    if (st->started)
        fl_test_latch_count_down(st->started);
    return st->start_rc;
}

static inline fl_future_t *tep_on_stop(fl_rpc_endpoint_t *ep, void *state)
{
    tep_t *st = state;
    atomic_store(&st->stop_running, fl_rpc_endpoint_is_running(ep));
    atomic_store(&st->stop_main, fl_rpc_in_main_thread(ep));
    atomic_fetch_add(&st->stops, 1);
    fl_future_t *f = st->stop_future;
    st->stop_future = NULL;
    if (st->stopping)
        fl_test_latch_count_down(st->stopping);
    return f;
}

/* ---- TestGateway handlers ------------------------------------------------ */

static inline void tg_echo(Fltest__TestGateway_Service *svc,
                           const Fltest__EchoRequest *in,
                           Fltest__EchoReply_Closure closure,
                           void *closure_data)
{
    (void)svc;
    /* The reply lives on this stack: fling packs it at once. */
    Fltest__EchoReply r = FLTEST__ECHO_REPLY__INIT;
    r.text = in->text;
    r.n = in->n;
    closure(&r, closure_data);
}

static inline void tg_fail(Fltest__TestGateway_Service *svc,
                           const Fltest__FailRequest *in,
                           Fltest__EchoReply_Closure closure,
                           void *closure_data)
{
    (void)svc;
    (void)closure;
    if (in->message[0] == '\0')
        fl_rpc_fail(closure_data, in->code, NULL);
    else
        fl_rpc_fail(closure_data, in->code, "%s", in->message);
}

typedef struct later_job {
    Fltest__EchoReply_Closure closure;
    fl_rpc_call_t *call;
    char *text;
    int64_t n;
} later_job_t;

/* Answers a Later call on the service's timer thread. */
static inline void later_fire(fl_rpc_service_t *svc, void *arg)
{
    (void)svc;
    later_job_t *j = arg;
    Fltest__EchoReply r = FLTEST__ECHO_REPLY__INIT;
    r.text = j->text;
    r.n = j->n;
    j->closure(&r, j->call);
    free(j->text);
    free(j);
}

static inline void tg_later(Fltest__TestGateway_Service *svc,
                            const Fltest__EchoRequest *in,
                            Fltest__EchoReply_Closure closure,
                            void *closure_data)
{
    (void)svc;
    fl_rpc_endpoint_t *ep = fl_rpc_call_endpoint(closure_data);
    later_job_t *j = calloc(1, sizeof *j);
    char *text = strdup(in->text);
    fl_rpc_call_t *call = fl_rpc_defer(closure_data);
    if (!j || !text || !call) {
        free(j);
        free(text);
        fl_rpc_fail(closure_data, FL_ENOMEM, "Later: no memory or no call");
        return;
    }
    j->closure = closure;
    j->call = call;
    j->text = text;
    j->n = in->n;
    int rc =
        fl_rpc_schedule(fl_rpc_endpoint_service(ep), later_fire, j, 1, NULL);
    if (rc != FL_OK) {
        fl_rpc_fail(call, rc, "Later: fl_rpc_schedule failed");
        free(j->text);
        free(j);
    }
}

static inline void tg_block(Fltest__TestGateway_Service *svc,
                            const Fltest__EchoRequest *in,
                            Fltest__EchoReply_Closure closure,
                            void *closure_data)
{
    (void)svc;
    (void)in;
    tep_t *st = fl_rpc_call_state(closure_data);
    st->parked_closure = closure;
    st->parked_call = fl_rpc_defer(closure_data);
    if (st->blocked)
        fl_test_latch_count_down(st->blocked);
}

static inline void tg_count(Fltest__TestGateway_Service *svc,
                            const Fltest__CountRequest *in,
                            Fltest__Empty_Closure closure, void *closure_data)
{
    (void)svc;
    tep_t *st = fl_rpc_call_state(closure_data);
    serial_enter(st);
    serial_check_order(st, in->sender, in->seq);
    serial_leave(st);
    atomic_fetch_add(&st->counts, 1);
    Fltest__Empty e = FLTEST__EMPTY__INIT;
    closure(&e, closure_data);
    if (st->counted)
        fl_test_latch_count_down(st->counted);
}

static inline void tg_forget(Fltest__TestGateway_Service *svc,
                             const Fltest__EchoRequest *in,
                             Fltest__EchoReply_Closure closure,
                             void *closure_data)
{
    (void)svc;
    (void)in;
    (void)closure;
    (void)closure_data;
}

/* value_free of a heap EchoReply (protobuf-c's default allocator is
 * malloc/free). */
static inline void echo_reply_free(void *p)
{
    protobuf_c_message_free_unpacked(p, NULL);
}

static inline void tg_from_future(Fltest__TestGateway_Service *svc,
                                  const Fltest__FailRequest *in,
                                  Fltest__EchoReply_Closure closure,
                                  void *closure_data)
{
    (void)svc;
    (void)closure;
    fl_future_t *f = fl_future_alloc();
    if (!f) {
        fl_rpc_fail(closure_data, FL_ENOMEM, NULL);
        return;
    }
    if (in->code == FROM_FUTURE_PENDING) {
        tep_t *st = fl_rpc_call_state(closure_data);
        st->parked_future = fl_future_retain(f);
        int rc = fl_rpc_reply_future(closure_data, f);
        if (rc != FL_OK)
            fl_rpc_fail(closure_data, FL_EINTERNAL, "fl_rpc_reply_future: %s",
                        fl_err_name(rc));
        if (st->blocked)
            fl_test_latch_count_down(st->blocked);
        return;
    }
    if (in->code != FL_OK) {
        fl_future_fail(f, in->code, "%s", in->message);
    } else {
        Fltest__EchoReply *r = malloc(sizeof *r);
        char *text = strdup(in->message);
        if (!r || !text) {
            free(r);
            free(text);
            fl_future_release(f);
            fl_rpc_fail(closure_data, FL_ENOMEM, NULL);
            return;
        }
        fltest__echo_reply__init(r);
        r->text = text;
        r->n = 7;
        fl_future_complete(f, r, echo_reply_free);
    }
    int rc = fl_rpc_reply_future(closure_data, f);
    if (rc != FL_OK)
        fl_rpc_fail(closure_data, FL_EINTERNAL, "fl_rpc_reply_future: %s",
                    fl_err_name(rc));
}

static inline void tg_probe(Fltest__TestGateway_Service *svc,
                            const Fltest__Empty *in,
                            Fltest__EchoReply_Closure closure,
                            void *closure_data)
{
    (void)svc;
    (void)in;
    fl_rpc_endpoint_t *ep = fl_rpc_call_endpoint(closure_data);
    tep_t *st = fl_rpc_call_state(closure_data);
    int bits = 0;
    if (fl_rpc_endpoint_is_running(ep))
        bits |= PROBE_RUNNING;
    if (fl_rpc_in_main_thread(ep))
        bits |= PROBE_MAIN;
    if (st != NULL && fl_rpc_endpoint_state(ep) == st)
        bits |= PROBE_STATE;
    if (fl_rpc_call_is_tell(closure_data))
        bits |= PROBE_TELL;
    Fltest__EchoReply r = FLTEST__ECHO_REPLY__INIT;
    r.text = (char *)fl_rpc_endpoint_id(ep);
    r.n = bits;
    if (st != NULL)
        atomic_store(&st->probe_bits, bits);
    closure(&r, closure_data);
    if (st != NULL && st->probed)
        fl_test_latch_count_down(st->probed);
}

/* FNV-1a of a string, with its length mixed in. */
static inline uint64_t text_checksum(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        h = (h ^ (unsigned char)s[n]) * 1099511628211ull;
    return h ^ n;
}

/* A heap string of n bytes (a repeating pattern keyed by seed). */
static inline char *big_text(size_t n, unsigned seed)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('a' + (i * 7 + seed) % 26);
    s[n] = '\0';
    return s;
}

static inline void tg_twice(Fltest__TestGateway_Service *svc,
                            const Fltest__EchoRequest *in,
                            Fltest__EchoReply_Closure closure,
                            void *closure_data)
{
    (void)svc;
    tep_t *st = fl_rpc_call_state(closure_data);
    atomic_store(&st->twice_fail_ok_rc, fl_rpc_fail(closure_data, FL_OK, NULL));
    uint64_t sum = text_checksum(in->text);
    Fltest__EchoReply r = FLTEST__ECHO_REPLY__INIT;
    r.text = in->text;
    r.n = in->n;
    closure(&r, closure_data);
    /* The request is borrowed until the handler returns, also after the
     * answer (whose delivery may run a caller's closure on this thread). */
    atomic_store(&st->twice_request_intact, text_checksum(in->text) == sum);
    atomic_store(&st->twice_again_rc,
                 fl_rpc_fail(closure_data, FL_EUSER, "answered twice"));
    atomic_store(&st->twice_defer_null, fl_rpc_defer(closure_data) == NULL);
    if (st->twice_done)
        fl_test_latch_count_down(st->twice_done);
}

/* The services array of every test endpoint (static: it must outlive the
 * endpoints). */
static inline ProtobufCService *const *tep_services(void)
{
    static Fltest__TestGateway_Service impl = FLTEST__TEST_GATEWAY__INIT(tg_);
    static ProtobufCService *const services[1] = {&impl.base};
    return services;
}

#endif /* TEST_ENDPOINT_H */
