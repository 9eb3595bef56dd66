/*
 * lean_tell_test.c - a local tell of a small plain request travels as an
 * RPC_TELL (src/rpc/dispatch.h): the request's fields without protobuf-c's
 * base, which the endpoint rebuilds from the method's descriptor. Every
 * size arrives whole (0 to 5 words; 6 take an RPC_INVOKE), tells of the
 * two formats keep their order, a fenced tell carries its token before
 * the fields, and a forged RPC_TELL is refused without harm.
 */
#include "fl_test.h"

#include "../rpc/log_capture.h"
#include "rpc/dispatch.h"
#include "rpc/endpoint.h"
#include "rpc/gateway.h"

#include "tell_words.pb-c.h"

#include <stdio.h>
#include <string.h>

#define MAX_WORDS 6
#define ORDER_TELLS 2000

/* What the handlers saw, in the order they ran (the endpoint's thread
 * writes; the test reads after `told` reaches 0). */
typedef struct seen_tell {
    unsigned method;
    const ProtobufCMessageDescriptor *desc;
    size_t n_unknown;
    const void *unknown;
    uint8_t bytes[24 + 8 * MAX_WORDS];
} seen_tell_t;

static seen_tell_t seen[ORDER_TELLS];
static unsigned nseen;
static fl_test_latch_t *told;

static void record(unsigned method, const ProtobufCMessage *in, size_t size)
{
    if (nseen < ORDER_TELLS) {
        seen_tell_t *s = &seen[nseen];
        s->method = method;
        s->desc = in->descriptor;
        s->n_unknown = in->n_unknown_fields;
        s->unknown = in->unknown_fields;
        memcpy(s->bytes, in, size);
    }
    nseen++;
    fl_test_latch_count_down(told);
}

#define HANDLER(k)                                                             \
    static void h_t##k(Fltell__TellGateway_Service *svc,                       \
                       const Fltell__W##k *in, Fltell__W0_Closure closure,     \
                       void *call)                                             \
    {                                                                          \
        (void)svc;                                                             \
        record(k, &in->base, sizeof *in);                                      \
        Fltell__W0 out = FLTELL__W0__INIT;                                     \
        closure(&out, call);                                                   \
    }
HANDLER(0)
HANDLER(1)
HANDLER(2)
HANDLER(3)
HANDLER(4)
HANDLER(5)
HANDLER(6)

static void h_say(Fltell__TellGateway_Service *svc, const Fltell__Text *in,
                  Fltell__W0_Closure closure, void *call)
{
    (void)svc;
    record(7, &in->base, sizeof *in);
    Fltell__W0 out = FLTELL__W0__INIT;
    closure(&out, call);
}

static Fltell__TellGateway_Service impl = FLTELL__TELL_GATEWAY__INIT(h_);

/* The requests, method k's of k words. */
static const ProtobufCMessageDescriptor *const words_desc[MAX_WORDS + 1] = {
    &fltell__w0__descriptor, &fltell__w1__descriptor, &fltell__w2__descriptor,
    &fltell__w3__descriptor, &fltell__w4__descriptor, &fltell__w5__descriptor,
    &fltell__w6__descriptor};

typedef struct tell_fx {
    fl_rpc_service_t *svc;
    fl_rpc_endpoint_t *ep;
    fl_rpc_gateway_t *gw;
} tell_fx_t;

/* An endpoint "words" implementing TellGateway, fenced with tok (NULL:
 * not), and a gateway to it stamped with tok. */
static void fx_open(tell_fx_t *fx, const fl_fencing_token_t *tok)
{
    nseen = 0;
    memset(seen, 0, sizeof seen);
    fl_rpc_service_opts_t o = {0};
    assert_fl_ok(fl_rpc_service_alloc(&o, &fx->svc));
    ProtobufCService *const services[] = {&impl.base};
    fl_rpc_endpoint_opts_t eo = {.id = "words",
                                 .services = services,
                                 .nservices = 1,
                                 .fencing_token = tok};
    assert_fl_ok(fl_rpc_endpoint_create(fx->svc, &eo, &fx->ep));
    assert_fl_ok(fl_rpc_endpoint_start(fx->ep));
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_connect(fx->svc, fl_rpc_endpoint_address(fx->ep),
                                &fltell__tell_gateway__descriptor, tok, &f));
    assert_fl_ok(fl_future_wait(f, FL_TEST_WAIT_MS));
    fx->gw = fl_future_take_value(f);
    fl_future_release(f);
    assert_non_null(fx->gw);
}

static void fx_close(tell_fx_t *fx)
{
    fl_rpc_gateway_free(fx->gw);
    fl_test_service_end(fx->svc);
    fl_rpc_endpoint_free(fx->ep);
}

/* A request of k words whose fields are all set, each byte from seed. */
static void fill(ProtobufCMessage *m, unsigned k, uint8_t seed)
{
    protobuf_c_message_init(words_desc[k], m);
    uint8_t *f = (uint8_t *)(m + 1);
    for (size_t i = 0; i < 8 * k; i++)
        f[i] = (uint8_t)(seed + 7 * i + 1);
}

/* Tell method k with m through gw's stubs (the generated client calls
 * the service's invoke with a NULL closure). */
static void tell(fl_rpc_gateway_t *gw, unsigned k, const ProtobufCMessage *m)
{
    ProtobufCService *stub = fl_rpc_gateway_service(gw);
    stub->invoke(stub, k, m, NULL, NULL);
    assert_fl_ok(fl_rpc_last_error());
}

/* The i-th handler run was method k with m, rebuilt whole. */
static void assert_seen(unsigned i, unsigned k, const ProtobufCMessage *m)
{
    const seen_tell_t *s = &seen[i];
    assert_int_equal(k, s->method);
    assert_ptr_equal(words_desc[k], s->desc);
    assert_int_equal(0, s->n_unknown);
    assert_null(s->unknown);
    assert_memory_equal(m + 1, s->bytes + sizeof *m, 8 * k);
}

static void tell_every_size(tell_fx_t *fx)
{
    union {
        ProtobufCMessage base;
        uint8_t bytes[24 + 8 * MAX_WORDS];
    } req[MAX_WORDS + 1];
    told = fl_test_latch_alloc(MAX_WORDS + 1);
    for (unsigned k = 0; k <= MAX_WORDS; k++) {
        fill(&req[k].base, k, (uint8_t)(16 * k));
        tell(fx->gw, k, &req[k].base);
        /* The sender's request is its own again at once. */
        memset(&req[k].base + 1, 0xEE, 8 * k);
        fill(&req[k].base, k, (uint8_t)(16 * k));
    }
    fl_test_latch_await(told);
    fl_test_latch_free(told);
    told = NULL;
    assert_int_equal(MAX_WORDS + 1, nseen);
    for (unsigned k = 0; k <= MAX_WORDS; k++)
        assert_seen(k, k, &req[k].base);
}

/* Requests of up to 5 words take the lean path, 6 the full one; each
 * arrives as it was sent. */
static void test_every_size_arrives_whole(void **state)
{
    (void)state;
    tell_fx_t fx;
    fx_open(&fx, NULL);
    const fl__rpc_tell_service_t *t = &fx.ep->tells[0];
    assert_ptr_equal(t->methods, fx.gw->tells);
    assert_int_equal(MAX_WORDS + 2, fx.gw->ntells);
    assert_int_equal(MAX_WORDS + 2, t->n);
    assert_int_equal(UINT32_MAX, t->methods[MAX_WORDS + 1].fields);
    for (unsigned k = 0; k <= MAX_WORDS; k++) {
        assert_ptr_equal(words_desc[k], t->methods[k].in);
        assert_ptr_equal(k < MAX_WORDS ? words_desc[k] : NULL,
                         t->methods[k].tell_in);
        assert_int_equal(k < MAX_WORDS ? 8 * k : UINT32_MAX,
                         t->methods[k].fields);
    }
    tell_every_size(&fx);
    fx_close(&fx);
}

/* A fenced gateway's tells carry its token between the header and the
 * fields (5 words and the token: the largest RPC_TELL). */
static void test_a_fenced_tell_carries_its_token(void **state)
{
    (void)state;
    fl_fencing_token_t tok;
    for (size_t i = 0; i < sizeof tok.bytes; i++)
        tok.bytes[i] = (uint8_t)(0xC0 + i);
    tell_fx_t fx;
    fx_open(&fx, &tok);
    assert_int_equal(FENCE_TOKEN, fx.gw->tell_hdr.fence);
    tell_every_size(&fx);
    fx_close(&fx);
}

/* One thread's tells run in the order sent, RPC_TELL and RPC_INVOKE
 * alike (one mailbox). */
static void test_tells_of_both_formats_keep_their_order(void **state)
{
    (void)state;
    tell_fx_t fx;
    fx_open(&fx, NULL);
    told = fl_test_latch_alloc(ORDER_TELLS);
    Fltell__W1 w1 = FLTELL__W1__INIT;
    Fltell__W6 w6 = FLTELL__W6__INIT;
    for (unsigned i = 0; i < ORDER_TELLS; i++) {
        if (i % 2 == 0) {
            w1.a = i;
            tell(fx.gw, 1, &w1.base);
        } else {
            w6.a = i;
            w6.f = ~(uint64_t)i;
            tell(fx.gw, 6, &w6.base);
        }
    }
    fl_test_latch_await(told);
    fl_test_latch_free(told);
    told = NULL;
    assert_int_equal(ORDER_TELLS, nseen);
    for (unsigned i = 0; i < ORDER_TELLS; i++) {
        const seen_tell_t *s = &seen[i];
        uint64_t a;
        memcpy(&a, s->bytes + 24, sizeof a);
        if (a != i || s->method != (i % 2 == 0 ? 1u : 6u))
            fail_msg("tell %u ran as method %u with a = %llu", i, s->method,
                     (unsigned long long)a);
    }
    fx_close(&fx);
}

/* ---- forged RPC_TELLs ------------------------------------------------------
 */

/* An RPC_TELL to fx's endpoint with header h and `fields` bytes after it
 * (zeros), told straight to its actor. */
static void forge(tell_fx_t *fx, tell_hdr_t h, size_t fields)
{
    fl_msg_t *m = fl_msg_alloc(RPC_TELL, sizeof h + fields);
    assert_non_null(m);
    memcpy(fl_msg_data(m), &h, sizeof h);
    assert_fl_ok(fl_tell(fl_rpc_service_system(fx->svc), fx->ep->actor, m));
}

/* A valid tell of 1 word after the forged ones: once it has run, so have
 * they (one mailbox). */
static void settle(tell_fx_t *fx, uint64_t a)
{
    told = fl_test_latch_alloc(1);
    Fltell__W1 w1 = FLTELL__W1__INIT;
    w1.a = a;
    tell(fx->gw, 1, &w1.base);
    fl_test_latch_await(told);
    fl_test_latch_free(told);
    told = NULL;
}

/* The warn lines captured since the last cap_clear: exactly `want`. */
static void expect_lines(const char *const *want, int n)
{
    cap_rec_t r[4];
    int got = cap_select(FL_LOG_WARN, NULL, r, 4);
    assert_int_equal(n, got);
    for (int i = 0; i < n; i++)
        assert_string_equal(want[i], r[i].message);
}

static void test_a_forged_tell_is_refused_without_harm(void **state)
{
    (void)state;
    fl_log_set_level(FL_LOG_WARN);
    fl__log_set_clock(cap_clock);
    fl_log_set_handler(cap_handler, NULL);
    tell_fx_t fx;
    fx_open(&fx, NULL);

    /* Too short for a header, fields of another size than the method's,
     * a method whose request is not plain (a string: its fields would be
     * a pointer from nowhere), a token cut short: dropped, as the same
     * RPC_INVOKE would be, no line. */
    cap_clear();
    fl_msg_t *m = fl_msg_alloc(RPC_TELL, 4);
    assert_non_null(m);
    assert_fl_ok(fl_tell(fl_rpc_service_system(fx.svc), fx.ep->actor, m));
    forge(&fx, (tell_hdr_t){.service = 0, .method = 1}, 16);
    forge(&fx, (tell_hdr_t){.service = 0, .method = 2}, 8);
    forge(&fx, (tell_hdr_t){.service = 0, .method = 6}, 48);
    forge(&fx, (tell_hdr_t){.service = 0, .method = 7}, 8);
    /* A token announced, cut short before it ends. */
    forge(&fx, (tell_hdr_t){.service = 0, .method = 1, .fence = FENCE_TOKEN},
          4);
    settle(&fx, 1);
    expect_lines(NULL, 0);

    /* No such service, no such method: the lines of any tell. */
    cap_advance(100);
    cap_clear();
    forge(&fx, (tell_hdr_t){.service = 3, .method = 1}, 8);
    settle(&fx, 2);
    cap_advance(100);
    forge(&fx, (tell_hdr_t){.service = 0, .method = 9}, 8);
    settle(&fx, 3);
    const char *const lines[] = {
        "tell of ?#1 to rpc endpoint 'words' dropped: the endpoint has no "
        "such method",
        "tell of fltell.TellGateway#9 to rpc endpoint 'words' dropped: the "
        "endpoint has no such method"};
    expect_lines(lines, 2);

    /* Asked, not told: answered, FL_EDECODE. */
    m = fl_msg_alloc(RPC_TELL, sizeof(tell_hdr_t) + 8);
    assert_non_null(m);
    memcpy(fl_msg_data(m), &(tell_hdr_t){.service = 0, .method = 1},
           sizeof(tell_hdr_t));
    fl_future_t *f = NULL;
    assert_fl_ok(fl_ask(fl_rpc_service_system(fx.svc), fx.ep->actor, m,
                        FL_TEST_WAIT_MS, &f));
    assert_fl(FL_EDECODE, fl_future_wait(f, FL_TEST_WAIT_MS));
    assert_string_equal("malformed invocation", fl_future_message(f));
    fl_future_release(f);

    /* Only the valid tells ran, in order. */
    assert_int_equal(3, nseen);
    for (unsigned i = 0; i < 3; i++) {
        uint64_t a;
        memcpy(&a, seen[i].bytes + 24, sizeof a);
        assert_int_equal(1, seen[i].method);
        assert_int_equal(i + 1, a);
    }
    fx_close(&fx);
    fl_log_set_handler(NULL, NULL);
    fl__log_set_clock(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_every_size_arrives_whole),
        FL_TEST(test_a_fenced_tell_carries_its_token),
        FL_TEST(test_tells_of_both_formats_keep_their_order),
        FL_TEST(test_a_forged_tell_is_refused_without_harm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
