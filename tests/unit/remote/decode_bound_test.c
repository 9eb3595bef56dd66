/*
 * decode_bound_test.c - the bound on what one unpack may allocate
 * (docs/wire-protocol.md, "Decoding"; src/rpc/arena.h): 8 x the packed
 * bytes + 1 MiB, on the serving side (a request) and the calling side (a
 * reply).
 *
 * A request of unknown fields (2 bytes each on the wire, about 36 bytes
 * each decoded by protobuf-c) is refused with FL_EDECODE naming the bound,
 * and the server's allocations while it decodes (counted through
 * fl_replace_allocator) stay within the bound plus the frame's copies; the
 * connection stays usable and a good client is served on another one
 * meanwhile. A request as large but dense (a 4 MiB string) is served. A
 * reply of unknown fields fails the call with FL_EDECODE naming the bound.
 */
#include "alloc_count.h"
#include "client_fixture.h"

#define SERVER_MAX (16u << 20)
#define CLIENT_MAX (16u << 20)
#define EP_ID "calc"
#define BIG (4u << 20)

/* ---- the bodies ---------------------------------------------------------- */

/* ---- the server's side --------------------------------------------------- */

/* The server, its endpoint and the good client, for the whole group. */
static fixture_t server_fx;

static int server_setup(void **state)
{
    *state = &server_fx;
    return fixture_start(&server_fx, "decode-server", SERVER_MAX, 0, EP_ID,
                         calc_services(), 2);
}

static int server_teardown(void **state)
{
    (void)state;
    raw_fd_close_all();
    fixture_end(&server_fx);
    return 0;
}

static raw_t raw_open(fixture_t *fx)
{
    raw_t r = raw_of(raw_connect(fx->port, 0), CLIENT_MAX, "decode-client",
                     SERVER_MAX, "decode-server", EP_ID);
    raw_hello(&r);
    raw_attach(&r, 1, CALC_NAME, CALC_INDEX);
    return r;
}

static void
test_unknown_fields_request_is_refused_within_the_bound(void **state)
{
    fixture_t *fx = *state;
    uint64_t mark = good_done(&fx->good);
    raw_t r = raw_open(fx);
    uint8_t *body = unknown_fields(BIG);
    assert_non_null(body);
    size_t base = (size_t)fl_alloc_peak_reset();
    send_invoke(&r, 0, 2, EP_ID, CALC_INDEX, M_ADD, body, BIG);
    char msg[FL__ERRMSG_MAX + 1];
    expect_error(&r, FL_EDECODE, 2, msg, sizeof msg);
    size_t grew = (size_t)fl_alloc_peak() - base;
    free(body);
    char want[512];
    snprintf(want, sizeof want,
             "Could not decode the request of flhostile.CalcGateway.Add to "
             "fling.tcp://127.0.0.1:%d/" EP_ID ": flhostile.Num: the decoded "
             "size exceeded the bound of 34603008 bytes (8 x the "
             "4194304-byte body + 1024 KiB)",
             fx->port);
    assert_string_equal(want, msg);
    /* The bound, the read buffer and the call's copy of the body, and 1 MiB
     * for everything else the process does meanwhile. Unbounded, the
     * decode alone takes about 150 MiB. */
    size_t allowed =
        (size_t)8 * BIG + (1u << 20) + 2 * (size_t)BIG + (1u << 20);
    if (grew > allowed)
        fail_msg("the server grew by %zu bytes decoding a %u-byte frame, "
                 "more than %zu",
                 grew, BIG, allowed);
    print_message("server growth for a %u-byte unknown-field frame: %zu bytes "
                  "(%.1fx)\n",
                  BIG, grew, (double)grew / BIG);
    expect_usable(&r, 3, 41);
    good_wait(&fx->good, mark + 20, WAIT_MS);
    raw_close(&r);
}

static void test_dense_request_as_large_is_served(void **state)
{
    fixture_t *fx = *state;
    raw_t r = raw_open(fx);
    char *text = malloc(BIG + 1);
    assert_non_null(text);
    memset(text, 'x', BIG);
    text[BIG] = '\0';
    send_num(&r, 2, CALC_INDEX, M_ADD, 7, text);
    expect_num_reply(&r, 2, 8, text);
    free(text);
    raw_close(&r);
}

/* ---- the caller's side --------------------------------------------------- */

static void
test_unknown_fields_reply_fails_the_call_naming_the_bound(void **state)
{
    (void)state;
    rawsrv_t s;
    rawsrv_start(&s, CALC);
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = 5;
    req.text = "big";
    fl_future_t *f = fl_test_call(s.gw, M_ADD, &req.base, WAIT_MS);
    uint64_t corr = rawsrv_invoke(&s, M_ADD, 5, "big");
    uint8_t *body = unknown_fields(1u << 20);
    assert_non_null(body);
    rawsrv_reply(&s, corr, body, 1u << 20);
    free(body);
    char msg[FL__ERRMSG_MAX + 1];
    expect_decode_failure(&s, f, "flhostile.CalcGateway.Add", "flhostile.Num",
                          msg, sizeof msg);
    char want[512];
    snprintf(want, sizeof want,
             "Could not decode the reply of flhostile.CalcGateway.Add from "
             "fling.tcp://127.0.0.1:%d/calc: flhostile.Num: the decoded size "
             "exceeded the bound of 9437184 bytes (8 x the 1048576-byte body "
             "+ 1024 KiB)",
             s.port);
    assert_string_equal(want, msg);
    fl_future_release(f);
    rawsrv_expect_add(&s, 6, "after");
    rawsrv_stop(&s);
}

int main(void)
{
    if (fl_alloc_install() != FL_OK)
        return 1;
    const struct CMUnitTest server[] = {
        FL_TEST(test_unknown_fields_request_is_refused_within_the_bound),
        FL_TEST(test_dense_request_as_large_is_served),
    };
    const struct CMUnitTest caller[] = {
        FL_TEST(test_unknown_fields_reply_fails_the_call_naming_the_bound),
    };
    int failed = cmocka_run_group_tests_name("decode bound, server", server,
                                             server_setup, server_teardown);
    failed +=
        cmocka_run_group_tests_name("decode bound, caller", caller, NULL, NULL);
    return failed;
}
