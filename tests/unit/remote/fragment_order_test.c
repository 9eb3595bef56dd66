/*
 * fragment_order_test.c - large frames go out in fragments between small
 * ones (docs/wire-protocol.md, Fragments; issue 14 item 11), seen from a
 * fling client:
 *
 * - a small call made right after an 8 MiB one on the same connection
 *   reaches the server (a raw one, played by the test) before the large
 *   one's last fragment, and its reply completes it while the large one is
 *   still being written;
 * - large requests and replies, up to the maximum frame, cross intact
 *   (checksums) both ways, many at once, also through blocking calls (whose
 *   caller leaves a fragmented reply to the I/O thread);
 * - tells to one endpoint run in the order sent when large and small ones
 *   mix.
 */
#include "client_fixture.h"

#include <netinet/in.h>
#include <sys/socket.h>

#define LARGE (8u * 1024u * 1024u)
#define SERVER_MAX (2u * 1024u * 1024u)
#define IN_FLIGHT 24
#define BLOCKING 6
#define TELLS 300
#define TELL_LARGE_EVERY 7
#define TELL_LARGE (200u * 1024u)

/* ---- a recording endpoint ------------------------------------------------ */

/* calc_t first: calc_start's state, whose on_start counts down. */
typedef struct rec {
    calc_t calc;
    pthread_mutex_t mu;
    int64_t log[TELLS + 8]; /* the v of each Add, in the order run */
    size_t n;
} rec_t;

/* Add: records v, replies v + 1 and the same text. */
static void rec_add(Flhostile__CalcGateway_Service *svc,
                    const Flhostile__Num *in, Flhostile__Num_Closure closure,
                    void *closure_data)
{
    rec_t *st = (rec_t *)fl_rpc_call_state(closure_data);
    pthread_mutex_lock(&st->mu);
    if (st->n < sizeof st->log / sizeof st->log[0])
        st->log[st->n++] = in->v;
    pthread_mutex_unlock(&st->mu);
    calc_add(svc, in, closure, closure_data);
}

static void rec_depth(Flhostile__CalcGateway_Service *svc,
                      const Flhostile__Chain *in,
                      Flhostile__Num_Closure closure, void *closure_data)
{
    calc_depth(svc, in, closure, closure_data);
}

static ProtobufCService *const *rec_services(void)
{
    static Flhostile__CalcGateway_Service calc =
        FLHOSTILE__CALC_GATEWAY__INIT(rec_);
    static ProtobufCService *const services[1] = {&calc.base};
    return services;
}

/* A fling server with endpoint "rec" and a client's gateway to it. */
typedef struct pair {
    fl_rpc_service_t *server, *client;
    fl_rpc_endpoint_t *ep;
    fl_rpc_gateway_t *gw;
    rec_t rec;
} pair_t;

static void pair_start(pair_t *p)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->rec.mu, NULL);
    assert_fl_ok(server_alloc("frag-server", SERVER_MAX, 0, &p->server));
    assert_fl_ok(
        calc_start(p->server, "rec", &p->rec.calc, rec_services(), 1, &p->ep));
    fl_rpc_service_opts_t so = {0};
    so.max_frame_size = SERVER_MAX;
    so.name = "frag-client";
    assert_fl_ok(fl_rpc_service_alloc(&so, &p->client));
    char addr[96];
    snprintf(addr, sizeof addr, "fling.tcp://127.0.0.1:%d/rec",
             fl_rpc_service_port(p->server));
    assert_fl_ok(gw_connect(p->client, addr, CALC, &p->gw));
}

static void pair_stop(pair_t *p)
{
    fl_rpc_gateway_free(p->gw);
    assert_fl_ok(service_end(p->client));
    assert_fl_ok(calc_end(p->ep));
    assert_fl_ok(service_end(p->server));
    pthread_mutex_destroy(&p->rec.mu);
}

/* ---- helpers ------------------------------------------------------------- */

/* A text of n pseudo-random letters from seed; caller frees. */
static char *text_rand(size_t n, uint64_t seed)
{
    char *t = malloc(n + 1);
    assert_non_null(t);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        t[i] = (char)('a' + x % 26);
    }
    t[n] = '\0';
    return t;
}

/* FNV-1a of s. */
static uint64_t checksum(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s != '\0'; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* The Add reply in f (done) is Num(v + 1) carrying a text of len bytes
 * whose checksum is sum. */
static void check_add(fl_future_t *f, int64_t v, size_t len, uint64_t sum)
{
    fl_test_future_ok(f, "Add(%lld)", (long long)v);
    const Flhostile__Num *r = fl_future_value(f);
    assert_non_null(r);
    assert_int_equal(v + 1, r->v);
    assert_int_equal(len, strlen(r->text));
    assert_true(checksum(r->text) == sum);
}

/* ---- (a) a small call overtakes a large one ------------------------------ */

/* A second gateway of s's client, to endpoint "other" of the raw server
 * (CONNECT corr s->next_corr, answered CONNECTED). */
static fl_rpc_gateway_t *rawsrv_other(rawsrv_t *s)
{
    char addr[96];
    snprintf(addr, sizeof addr, "fling.tcp://127.0.0.1:%d/other", s->port);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_connect(s->svc, addr, CALC, NULL, &f));
    frame_t c;
    char ep[FL__ID_MAX + 1];
    next_frame_or_fail(&s->r, &c, "CONNECT", s->next_corr);
    assert_int_equal(FL__K_CONNECT, c.h.kind);
    assert_int_equal(s->next_corr, c.h.corr);
    assert_string_equal("other", str_copy(c.m.endpoint, ep, sizeof ep));
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    send_frame(&s->r, FL__K_CONNECTED, 0, c.h.corr, &m, NULL, 0);
    frame_clear(&c);
    s->next_corr++;
    fl_test_future_ok(f, "connect %s", addr);
    fl_rpc_gateway_t *gw = fl_future_take_value(f);
    assert_non_null(gw);
    fl_future_release(f);
    return gw;
}

/*
 * The small call goes to another endpoint of the same connection: calls
 * to one endpoint keep their order (test_tells_to_one_endpoint_...).
 * The raw server reads with a small receive buffer, so that the client's
 * kernel cannot take the whole 8 MiB request (its send buffer is at most
 * 4 MiB here) before the server reads: the small call is made while most
 * of the large one is still queued. The server answers the small call as
 * soon as it reads it; that answer completes the small call while the
 * large one has neither been read whole nor answered.
 */
static void test_a_small_call_overtakes_a_large_one(void **state)
{
    (void)state;
    rawsrv_t s;
    rawsrv_start(&s, CALC);
    fl_rpc_gateway_t *other = rawsrv_other(&s);
    int small_buf = 16 * 1024;
    assert_int_equal(0, setsockopt(s.r.fd, SOL_SOCKET, SO_RCVBUF, &small_buf,
                                   sizeof small_buf));
    char *big = text_rand(LARGE, 1);
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = 1;
    req.text = big;
    fl_future_t *large = fl_test_call(s.gw, M_ADD, &req.base, WAIT_MS);
    req.v = 2;
    req.text = "small";
    fl_future_t *small = fl_test_call(other, M_ADD, &req.base, WAIT_MS);

    s.r.keep_fragments = true;
    unsigned fragments = 0, before_small = 0;
    bool small_seen = false, large_whole = false;
    uint64_t large_corr = 0;
    while (!small_seen || !large_whole) {
        frame_t f;
        char d[1200];
        next_frame_or_fail(&s.r, &f, "FRAGMENT or INVOKE", 4);
        if (f.h.kind == FL__K_INVOKE) {
            assert_false(small_seen);
            assert_int_equal(4, f.h.corr);
            small_seen = true;
            before_small = fragments;
            /* Answered at once: the small call completes while the large
             * one is still on its way. */
            rawsrv_reply_num(&s, f.h.corr, 3, "small");
            assert_fl_ok(fl_future_wait(small, WAIT_MS));
            assert_false(fl_future_done(large));
        } else if (f.h.kind == FL__K_FRAGMENT) {
            assert_false(large_whole);
            fragments++;
            fl__rx_frame_t fr = {.h = f.h, .body = f.meta + f.h.meta_len};
            uint8_t *whole = NULL;
            size_t len = 0;
            char why[256];
            int rc = fl__frag_put(&s.r.frag, &fr, s.r.max_frame, &whole, &len,
                                  why, sizeof why);
            if (rc == FL_OK) {
                large_whole = true;
                fl__frame_hdr_t h;
                assert_fl_ok(fl__frame_decode_hdr(whole, len, s.r.max_frame, &h,
                                                  why, sizeof why));
                assert_int_equal(FL__K_INVOKE, h.kind);
                assert_true(len > LARGE);
                large_corr = h.corr;
                fl__free(whole);
            } else {
                assert_fl(FL_EPENDING, rc);
            }
        } else {
            fail_msg("want FRAGMENT or INVOKE, got %s",
                     describe(&f, d, sizeof d));
        }
        frame_clear(&f);
    }
    /* The small INVOKE came before the large one's last fragment. */
    assert_true(before_small < fragments);
    assert_int_equal(3, large_corr);
    fl_test_future_ok(small, "the small call");
    assert_false(fl_future_done(large));
    rawsrv_reply_num(&s, large_corr, 2, "large");
    fl_test_future_ok(large, "the large call");
    fl_future_release(small);
    fl_future_release(large);
    s.r.keep_fragments = false;
    free(big);
    fl_rpc_gateway_free(other);
    rawsrv_stop(&s);
}

/* ---- (b) large frames cross intact --------------------------------------- */

/* The text of call i: sizes from a few bytes to the whole maximum frame. */
static size_t text_len_of(unsigned i)
{
    /* Call 0's INVOKE is exactly the maximum frame: header 24, metadata
     * 2 + 3 ("rec") + 4 + 4 + 8 (instance) + 4 (deadline), then the Num:
     * v 0 (not packed), text (tag, a length of 3 bytes, the text). */
    size_t top = SERVER_MAX - FL__FRAME_HDR - 25 - 4;
    static const size_t fixed[] = {1, 65000, 65536, 65537, 70000, 1000000};
    if (i == 0)
        return top;
    if (i <= sizeof fixed / sizeof fixed[0])
        return fixed[i - 1];
    return (size_t)((i * 2654435761u) % top) + 1;
}

static void test_large_requests_and_replies_cross_intact(void **state)
{
    (void)state;
    pair_t p;
    pair_start(&p);
    fl_future_t *f[IN_FLIGHT];
    uint64_t sum[IN_FLIGHT];
    size_t len[IN_FLIGHT];
    for (unsigned i = 0; i < IN_FLIGHT; i++) {
        len[i] = text_len_of(i);
        char *t = text_rand(len[i], i + 10);
        sum[i] = checksum(t);
        Flhostile__Num req = FLHOSTILE__NUM__INIT;
        req.v = i;
        req.text = t;
        f[i] = fl_test_call(p.gw, M_ADD, &req.base, WAIT_MS);
        free(t);
    }
    for (unsigned i = 0; i < IN_FLIGHT; i++) {
        check_add(f[i], i, len[i], sum[i]);
        fl_future_release(f[i]);
    }
    /* Blocking calls: the caller may read its own answer, and leaves a
     * fragmented one to the I/O thread. */
    for (unsigned i = 0; i < BLOCKING; i++) {
        size_t n = text_len_of(i);
        char *t = text_rand(n, i + 100);
        Flhostile__Num req = FLHOSTILE__NUM__INIT;
        req.v = 0; /* not packed: text_len_of(0) fills the maximum */
        req.text = t;
        ProtobufCMessage *reply = NULL;
        assert_fl_ok(fl_rpc_call_sync(p.gw, M_ADD, &req.base, WAIT_MS, &reply));
        const Flhostile__Num *r = (const Flhostile__Num *)reply;
        assert_int_equal(1, r->v);
        assert_string_equal(t, r->text);
        protobuf_c_message_free_unpacked(reply, NULL);
        free(t);
    }
    pair_stop(&p);
}

/* ---- (d) tells to one endpoint keep their order -------------------------- */

static void test_tells_to_one_endpoint_keep_their_order(void **state)
{
    (void)state;
    pair_t p;
    pair_start(&p);
    ProtobufCService *svc = fl_rpc_gateway_service(p.gw);
    char *big = text_rand(TELL_LARGE, 7);
    for (unsigned i = 0; i < TELLS; i++) {
        Flhostile__Num req = FLHOSTILE__NUM__INIT;
        req.v = i;
        req.text = i % TELL_LARGE_EVERY == 0 ? big : "small";
        flhostile__calc_gateway__add(svc, &req, NULL, NULL);
        assert_fl_ok(fl_rpc_last_error());
    }
    /* An ask behind them: answered once every tell has run. */
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = TELLS;
    req.text = "last";
    fl_future_t *f = fl_test_call(p.gw, M_ADD, &req.base, WAIT_MS);
    fl_test_future_ok(f, "the ask behind the tells");
    fl_future_release(f);
    pthread_mutex_lock(&p.rec.mu);
    size_t n = p.rec.n;
    pthread_mutex_unlock(&p.rec.mu);
    assert_int_equal(TELLS + 1, n);
    for (size_t i = 0; i < n; i++)
        if (p.rec.log[i] != (int64_t)i)
            fail_msg("call %zu ran as number %zu (v %lld)",
                     (size_t)p.rec.log[i], i, (long long)p.rec.log[i]);
    free(big);
    pair_stop(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_a_small_call_overtakes_a_large_one),
        FL_TEST(test_large_requests_and_replies_cross_intact),
        FL_TEST(test_tells_to_one_endpoint_keep_their_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
