/*
 * preamble_test.c - a peer that does not speak fling is refused at its
 * first wrong byte (docs/wire-protocol.md, "HELLO first"): the magic and
 * the version are checked as their bytes arrive, so a short HTTP request
 * is not held until the handshake deadline. A well-behaved client is
 * served on another connection throughout (wire_client.h's fixture).
 */
#include "wire_raw.h"

#define SERVER_NAME "preamble-server"
#define EP_ID "calc"
/* What "at once" means here, also under sanitizers and load: far below
 * the handshake deadline. */
#define PROMPT_MS 2000
/* Calls the good client must complete during each case. */
#define GOOD_PER_CASE 10

static int setup(void **state)
{
    return raw_fixture_setup(state, SERVER_NAME, 0, EP_ID);
}

/*
 * Sends the n bytes of `bytes` on a fresh raw connection, then expects
 * ERROR `code` with exactly `message`, then the close, within PROMPT_MS of
 * the send, while the good client keeps being served.
 */
static void expect_refused(fixture_t *fx, const void *bytes, size_t n, int code,
                           const char *message)
{
    uint64_t mark = good_done(&fx->good);
    raw_t r = raw_of(raw_connect(fx->port, 0), FL__FRAME_DEFAULT_MAX,
                     "preamble", FL__FRAME_DEFAULT_MAX, SERVER_NAME, EP_ID);
    uint64_t t0 = fl_clock_now_ns();
    raw_send(&r, bytes, n);
    char msg[FL__ERRMSG_MAX + 1];
    expect_error_then_close(&r, code, msg, sizeof msg);
    fl_test_assert_elapsed("the refusal", fl_test_ms_since(t0), 0, PROMPT_MS);
    assert_string_equal(message, msg);
    raw_close(&r);
    good_wait(&fx->good, mark + GOOD_PER_CASE, WAIT_MS);
}

static void test_an_18_byte_http_request_is_refused_at_once(void **state)
{
    static const char get[] = "GET / HTTP/1.1\r\n\r\n";
    assert_int_equal(18, sizeof get - 1);
    expect_refused(*state, get, sizeof get - 1, FL_EPROTO,
                   "bad magic 0x47455420 (want 0x464c4e47)");
}

static void test_one_wrong_byte_is_refused_at_once(void **state)
{
    expect_refused(*state, "\x00", 1, FL_EPROTO,
                   "bad magic 0x00 (want 0x464c4e47)");
}

static void test_a_wrong_fourth_byte_of_the_magic_is_refused(void **state)
{
    expect_refused(*state, "FLNX", 4, FL_EPROTO,
                   "bad magic 0x464c4e58 (want 0x464c4e47)");
}

static void test_another_version_is_refused_at_its_byte(void **state)
{
    expect_refused(*state, "FLNG\x02", 5, FL_EHANDSHAKE,
                   "Version mismatch between source (2) and target (1) rpc "
                   "component. Please verify that all components have the "
                   "same version.");
}

/* The right bytes so far are no reason to refuse: a HELLO sent in pieces
 * still makes a session. */
static void test_a_hello_sent_byte_by_byte_is_accepted(void **state)
{
    fixture_t *fx = *state;
    raw_t r = raw_of(raw_connect(fx->port, 0), FL__FRAME_DEFAULT_MAX,
                     "preamble", FL__FRAME_DEFAULT_MAX, SERVER_NAME, EP_ID);
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.max_frame = r.max_frame;
    m.service_name = str_of(r.name);
    size_t n;
    uint8_t *hello = frame_bytes(FL__K_HELLO, 0, 0, &m, NULL, 0, &n);
    for (size_t i = 0; i < n; i++)
        raw_send(&r, hello + i, 1);
    free(hello);
    raw_attach(&r, 1, CALC_NAME, CALC_INDEX);
    expect_usable(&r, 2, 41);
    raw_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_18_byte_http_request_is_refused_at_once),
        cmocka_unit_test(test_one_wrong_byte_is_refused_at_once),
        cmocka_unit_test(test_a_wrong_fourth_byte_of_the_magic_is_refused),
        cmocka_unit_test(test_another_version_is_refused_at_its_byte),
        cmocka_unit_test(test_a_hello_sent_byte_by_byte_is_accepted),
    };
    return cmocka_run_group_tests(tests, setup, raw_fixture_teardown);
}
