/*
 * hostile_test.c - a fling RPC server against a hostile client
 * (docs/wire-protocol.md; issue 4, "Tests").
 *
 * One in-process RPC service listens on 127.0.0.1, port 0, with one
 * endpoint ("calc") implementing flhostile.CalcGateway and
 * flhostile.SideGateway. For the whole session a well-behaved fling client
 * (a second RPC service in the same process, connected with fl_rpc_connect
 * to the endpoint's address) makes calls in a loop on its own thread and
 * checks every reply. Each case is one hostile step on its own raw socket
 * (plain POSIX, blocking, with SO_RCVTIMEO/SO_SNDTIMEO so nothing hangs),
 * and asserts exactly what the protocol document says comes back:
 *
 * - framing errors (garbage, a 4 GiB body, unknown flag bits, broken
 *   metadata, a REPLY or ERROR whose corr matches nothing): ERROR with the
 *   code (FL_EPROTO, FL_EMSGSIZE), then the server closes the connection;
 * - handshake errors (a wrong version in HELLO, another frame first): ERROR
 *   FL_EHANDSHAKE, then close;
 * - per-request errors (CONNECT to an unknown endpoint or with an
 *   unsupported gateway; INVOKE to an unknown endpoint, method or service,
 *   with a body that does not decode or nests too deep): ERROR with the
 *   code and the request's corr, and the connection stays usable (the next
 *   INVOKE is answered with a REPLY).
 *
 * After every step the good client must have completed GOOD_PER_STEP more
 * calls, all correct, a fresh raw connection must still get through the
 * handshake and a call, and no request marked POISON (sent only inside
 * frames the server must reject) may have reached the handler. The cases
 * share the server and the good client (one hostile session) and run in
 * order; the last one stops the good client and terminates the endpoint,
 * then checks again that no poisoned request ever ran.
 *
 * The endpoint and the good client are wire_client.h's, the raw client
 * wire_raw.h's; each step is written with STEP(name, start)
 * (hostile_fixture.h), which gives it its raw connection and the checks
 * around it.
 */
#include "hostile_fixture.h"

/* ---- cases ------------------------------------------------------------------
 */

STEP(endpoint_address_and_good_client, RAW_NONE)
{
    char want[128];
    snprintf(want, sizeof want, "fling.tcp://127.0.0.1:%d/" EP_ID, fx->port);
    assert_string_equal(want, fl_rpc_endpoint_address(fx->ep));
}

STEP(garbage_http_request_is_a_protocol_error, RAW_OPEN)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "User-Agent: hostile\r\n\r\n";
    raw_send(r, req, sizeof req - 1);
    expect_error_then_close(r, FL_EPROTO, NULL, 0);
}

STEP(garbage_bytes_are_a_protocol_error, RAW_OPEN)
{
    uint8_t junk[256];
    uint32_t x = 0x9e3779b9u;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1664525u + 1013904223u;
        junk[i] = (uint8_t)(x >> 24);
    }
    junk[0] = 0x00; /* not 'F': the magic is wrong from the first byte */
    raw_send(r, junk, sizeof junk);
    expect_error_then_close(r, FL_EPROTO, NULL, 0);
}

/* A frame cut inside its header, then a full close: nothing can come back;
 * the server must drop the connection (and the half frame) and serve on. */
STEP(truncated_header_then_close, RAW_SESSION)
{
    size_t n;
    uint8_t *buf =
        num_frame(r, 0, 7, CALC_INDEX, M_ADD, POISON, "truncated", &n, NULL);
    raw_send(r, buf, FL__FRAME_HDR / 2);
    raw_close(r);
    free(buf);
}

/* A frame cut inside its body, then a full close. */
STEP(truncated_body_then_close, RAW_SESSION)
{
    size_t n, len;
    uint8_t *buf = num_frame(r, 0, 7, CALC_INDEX, M_ADD, POISON,
                             "truncated body", &n, &len);
    raw_send(r, buf, n - len / 2);
    raw_close(r);
    free(buf);
}

/*
 * A frame cut inside its body, then a half close (our side stops sending,
 * still reads): the server must close the connection. The document leaves
 * open whether it still sends ERROR FL_EPROTO first ("when it still can"),
 * so one ERROR is allowed, and if it comes it must be FL_EPROTO.
 */
STEP(truncated_frame_then_half_close, RAW_SESSION)
{
    size_t n;
    uint8_t *buf =
        num_frame(r, 0, 7, CALC_INDEX, M_ADD, POISON, "half closed", &n, NULL);
    raw_send(r, buf, n - 3);
    free(buf);
    assert_int_equal(0, shutdown(r->fd, SHUT_WR));
    frame_t f;
    char d[1200];
    if (next_frame(r, &f) == RD_FRAME) {
        if (f.h.kind != FL__K_ERROR || f.m.code != FL_EPROTO)
            fail_msg("want the connection closed (or ERROR FL_EPROTO), got "
                     "%s",
                     describe(&f, d, sizeof d));
        frame_clear(&f);
        expect_closed(r);
    }
}

/* A header announcing a body of 4 GiB - 1 bytes (the largest body_len):
 * refused from the header alone, before the server allocates for it. */
STEP(four_gib_body_length_is_refused, RAW_SESSION)
{
    fl__frame_meta_t m = invoke_meta(EP_ID, CALC_INDEX, M_ADD);
    uint8_t meta[64];
    size_t meta_len =
        fl__frame_encode_meta(FL__K_INVOKE, 0, &m, meta, sizeof meta);
    assert_true(meta_len > 0);
    fl__frame_hdr_t h = {FL__PROTO_VERSION,  FL__K_INVOKE, 0, 5,
                         (uint32_t)meta_len, UINT32_MAX};
    uint8_t hdr[FL__FRAME_HDR];
    fl__frame_encode_hdr(hdr, &h);
    raw_send(r, hdr, sizeof hdr);
    expect_error_then_close(r, FL_EMSGSIZE, NULL, 0);
}

/* The text of an Add(1, text) whose INVOKE frame to "calc" is exactly
 * `total` bytes; caller frees. */
static char *text_for_frame_size(size_t total)
{
    fl__frame_meta_t m = invoke_meta(EP_ID, CALC_INDEX, M_ADD);
    size_t meta_len = fl__frame_meta_size(FL__K_INVOKE, 0, &m);
    size_t body = total - FL__FRAME_HDR - meta_len;
    /* Num: v=1 is 2 bytes; text is a tag, a 3-byte length, the bytes. */
    size_t n = body - 2 - 1 - 3;
    char *text = malloc(n + 1);
    assert_non_null(text);
    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + i % 26);
    text[n] = '\0';
    return text;
}

/* A frame of exactly the server's maximum is accepted and answered. */
STEP(frame_of_exactly_the_maximum_is_served, RAW_SESSION)
{
    char *text = text_for_frame_size(SERVER_MAX);
    size_t n;
    uint8_t *buf = num_frame(r, 0, 3, CALC_INDEX, M_ADD, 1, text, &n, NULL);
    assert_int_equal(SERVER_MAX, n);
    raw_send(r, buf, n);
    free(buf);
    expect_num_reply(r, 3, 2, text);
    expect_usable(r, 4, 10);
    free(text);
}

/* One byte more than the server's maximum: refused from the header. */
STEP(frame_one_byte_over_the_maximum_is_refused, RAW_SESSION)
{
    char *text = text_for_frame_size(SERVER_MAX + 1);
    size_t n;
    uint8_t *buf = num_frame(r, 0, 3, CALC_INDEX, M_ADD, 1, text, &n, NULL);
    assert_int_equal(SERVER_MAX + 1, n);
    raw_send(r, buf, FL__FRAME_HDR); /* the header decides */
    expect_error_then_close(r, FL_EMSGSIZE, NULL, 0);
    free(buf);
    free(text);
}

/* A reply larger than the maximum the caller announced: ERROR FL_EMSGSIZE
 * naming that maximum, instead of the reply; the connection stays usable. */
STEP(reply_over_the_callers_maximum_is_emsgsize, RAW_OPEN)
{
    r->max_frame = 1024; /* the smallest a HELLO may announce */
    raw_hello(r);
    raw_attach(r, 1, CALC_NAME, CALC_INDEX);
    char *text = malloc(2001);
    assert_non_null(text);
    memset(text, 'r', 2000);
    text[2000] = '\0';
    unsigned since = warned_count();
    send_num(r, 2, CALC_INDEX, M_ADD, 1, text);
    /* The reply the server would have sent: Num(2, text), in a REPLY. */
    Flhostile__Num reply = FLHOSTILE__NUM__INIT;
    reply.v = 2;
    reply.text = text;
    unsigned long long frame =
        FL__FRAME_HDR + protobuf_c_message_get_packed_size(&reply.base);
    free(text);
    char msg[FL__ERRMSG_MAX + 1], want[FL__ERRMSG_MAX + 1], peer[64];
    expect_error(r, FL_EMSGSIZE, 2, msg, sizeof msg);
    snprintf(want, sizeof want,
             "Reply of flhostile.CalcGateway.Add is %llu bytes, over the "
             "caller's 1024-byte frame limit (its max_frame_size): rpc "
             "endpoint fling.tcp://127.0.0.1:%d/" EP_ID " refused to send it",
             frame, fx->port);
    assert_string_equal(want, msg);
    snprintf(want, sizeof want,
             "endpoint " EP_ID ": reply of flhostile.CalcGateway.Add to "
             "%s refused: %llu bytes, over the caller's 1024-byte frame limit "
             "(its max_frame_size)",
             peer_of(r, peer, sizeof peer), frame);
    char kv[256];
    snprintf(kv, sizeof kv,
             "endpoint=" EP_ID " method=flhostile.CalcGateway.Add corr=2 "
             "peer=%s",
             peer);
    expect_warned_kv(since, want, kv);
    expect_usable(r, 3, 20);
}

STEP(wrong_version_in_hello_fails_the_handshake, RAW_OPEN)
{
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.max_frame = CLIENT_MAX;
    m.service_name = str_of(CLIENT_NAME);
    size_t n;
    uint8_t *buf = frame_bytes(FL__K_HELLO, 0, 0, &m, NULL, 0, &n);
    buf[4] = 2; /* version */
    raw_send(r, buf, n);
    free(buf);
    char msg[FL__ERRMSG_MAX + 1];
    expect_error_then_close(r, FL_EHANDSHAKE, msg, sizeof msg);
    assert_string_equal("Version mismatch between source (2) and target (1) "
                        "rpc component. Please verify that all components "
                        "have the same version.",
                        msg);
}

/* A valid INVOKE before HELLO: refused, and never dispatched. */
STEP(invoke_before_hello_fails_the_handshake, RAW_OPEN)
{
    send_num(r, 9, CALC_INDEX, M_ADD, POISON, "before hello");
    expect_error_then_close(r, FL_EHANDSHAKE, NULL, 0);
}

/* A valid CONNECT before HELLO. */
STEP(connect_before_hello_fails_the_handshake, RAW_OPEN)
{
    send_connect(r, 9, EP_ID, CALC_NAME);
    expect_error_then_close(r, FL_EHANDSHAKE, NULL, 0);
}

STEP(connect_to_an_unknown_endpoint_fails_that_request, RAW_OPEN)
{
    raw_hello(r);
    send_connect(r, 11, "nobody", CALC_NAME);
    char msg[FL__ERRMSG_MAX + 1], want[300];
    expect_error(r, FL_ECONNECT, 11, msg, sizeof msg);
    /* The server's spelling of the address; the number of its endpoints,
     * never their ids. */
    snprintf(want, sizeof want,
             "Could not connect to rpc endpoint under address "
             "fling.tcp://127.0.0.1:%d/nobody: the service has no endpoint "
             "'nobody'; it has 1 endpoint, none matching 'nobody*' (ids are "
             "not disclosed to remote callers)",
             fx->port);
    assert_string_equal(want, msg);
    /* The connection stays usable. */
    raw_attach(r, 12, CALC_NAME, CALC_INDEX);
    expect_usable(r, 13, 100);
}

/* A CONNECT naming a pattern: CONNECTED with flag RESOLVED and the id it
 * resolved to; one naming the id: no RESOLVED, the metadata as before. A
 * pattern of * alone is refused by the server too (a client other than
 * fling's may send one), leaving the connection usable. */
STEP(connect_with_a_pattern_names_the_resolved_id, RAW_OPEN)
{
    raw_hello(r);
    send_connect(r, 31, "ca*", CALC_NAME);
    frame_t f;
    next_frame_or_fail(r, &f, "CONNECTED", 31);
    assert_int_equal(FL__K_CONNECTED, f.h.kind);
    assert_int_equal(FL__F_INSTANCE | FL__F_RESOLVED, f.h.flags);
    assert_int_equal(4 + 8 + 2 + strlen(EP_ID), f.h.meta_len);
    assert_int_equal(CALC_INDEX, f.m.service_index);
    assert_int_equal(strlen(EP_ID), f.m.endpoint.len);
    assert_memory_equal(EP_ID, f.m.endpoint.p, strlen(EP_ID));
    frame_clear(&f);

    send_connect(r, 32, EP_ID, CALC_NAME);
    next_frame_or_fail(r, &f, "CONNECTED", 32);
    assert_int_equal(FL__F_INSTANCE, f.h.flags);
    assert_int_equal(4 + 8, f.h.meta_len);
    frame_clear(&f);

    send_connect(r, 33, "*", CALC_NAME);
    char msg[FL__ERRMSG_MAX + 1], want[300];
    expect_error(r, FL_ECONNECT, 33, msg, sizeof msg);
    snprintf(want, sizeof want,
             "Could not connect to rpc endpoint under address "
             "fling.tcp://127.0.0.1:%d/*: the pattern '*' would match any "
             "endpoint; name a part of the id, as in resourcemanager_*",
             fx->port);
    assert_string_equal(want, msg);
    expect_usable(r, 34, 100);
}

STEP(connect_with_an_unsupported_gateway_fails_that_request, RAW_OPEN)
{
    raw_hello(r);
    send_connect(r, 21, EP_ID, "flhostile.NoSuchGateway");
    char msg[FL__ERRMSG_MAX + 1];
    expect_error(r, FL_EHANDSHAKE, 21, msg, sizeof msg);
    assert_string_equal("The rpc endpoint does not support the gateway "
                        "flhostile.NoSuchGateway.",
                        msg);
    /* The connection stays usable, for either service of the endpoint. */
    raw_attach(r, 22, SIDE_NAME, SIDE_INDEX);
    send_num(r, 23, SIDE_INDEX, M_NEG, 5, "side");
    expect_num_reply(r, 23, -5, "side");
    raw_attach(r, 24, CALC_NAME, CALC_INDEX);
    expect_usable(r, 25, 200);
}

STEP(invoke_to_an_unknown_endpoint_is_unreachable, RAW_SESSION)
{
    size_t len;
    uint8_t *body = pack_num(1, "to nobody", &len);
    send_invoke(r, 0, 31, "nobody", CALC_INDEX, M_ADD, body, len);
    expect_error(r, FL_EUNREACHABLE, 31, NULL, 0);
    expect_usable(r, 32, 300);
    /* A tell to nobody: nothing comes back, the next ask's REPLY is the
     * next frame. */
    send_invoke(r, FL__F_TELL, 0, "nobody", CALC_INDEX, M_ADD, body, len);
    expect_usable(r, 33, 301);
    free(body);
}

STEP(invoke_of_an_unknown_method_is_enomethod, RAW_SESSION)
{
    expect_enomethod(r, 41, CALC_INDEX, 2, "method 2"); /* Calc has 2 */
    expect_usable(r, 42, 400);
    expect_enomethod(r, 43, SIDE_INDEX, 1, "method 1"); /* Side has 1 */
    expect_enomethod(r, 44, CALC_INDEX, UINT32_MAX, "method max");
    expect_usable(r, 45, 401);
}

STEP(invoke_of_an_unknown_service_is_enomethod, RAW_SESSION)
{
    expect_enomethod(r, 51, 2, M_ADD, "service 2"); /* calc has 2 */
    expect_usable(r, 52, 500);
    expect_enomethod(r, 53, UINT32_MAX, M_ADD, "service max");
    expect_usable(r, 54, 501);
}

STEP(invoke_whose_body_does_not_decode_is_edecode, RAW_SESSION)
{
    /* text (field 2) announcing 16 bytes, carrying 1. */
    static const uint8_t short_string[] = {0x12, 0x10, 'x'};
    expect_edecode_then_usable(fx, r, 61, short_string, sizeof short_string,
                               ": length past the end in flhostile.Num", 600);
    /* v (field 1) as a varint that never ends. */
    static const uint8_t endless_varint[] = {0x08, 0xff, 0xff, 0xff};
    expect_edecode_then_usable(fx, r, 63, endless_varint, sizeof endless_varint,
                               ": truncated varint in flhostile.Num", 601);
}

/* The nesting bound: MAX_DEPTH levels are served, one more is FL_EDECODE
 * for that call only. */
STEP(invoke_nested_too_deep_is_edecode, RAW_SESSION)
{
    size_t len;
    uint8_t *body = pack_chain(MAX_DEPTH, &len);
    send_depth(r, 71, body, len);
    expect_num_reply(r, 71, MAX_DEPTH, "");
    /* The same depth built by hand: the builder is right. */
    body = deep_chain(MAX_DEPTH, &len);
    send_depth(r, 70, body, len);
    expect_num_reply(r, 70, MAX_DEPTH, "");
    body = pack_chain(MAX_DEPTH + 1, &len);
    unsigned since = warned_count();
    send_depth(r, 72, body, len);
    char want[FL__ERRMSG_MAX + 1];
    expect_undecoded(
        r, 72, since, "Depth",
        undecoded(fx, "Depth", "flhostile.Chain",
                  ": message nested deeper than 64 levels (flhostile.Chain)",
                  want, sizeof want));
    /* Deep enough to exhaust a thread's stack if it were unpacked. */
    body = deep_chain(100000, &len);
    assert_true(FL__FRAME_HDR + 14 + len <= SERVER_MAX);
    send_depth(r, 73, body, len);
    expect_error(r, FL_EDECODE, 73, NULL, 0);
    expect_usable(r, 74, 700);
}

/* Asks and failing asks in one burst: every answer carries its own corr. */
STEP(burst_of_good_and_bad_asks_is_answered_by_corr, RAW_SESSION)
{
    enum { BURST = 16, FIRST = 100 };
    uint8_t *all = NULL;
    size_t all_len = 0;
    for (uint64_t c = FIRST; c < FIRST + BURST; c++) {
        char text[32];
        snprintf(text, sizeof text, "burst-%llu", (unsigned long long)c);
        size_t n;
        /* Odd corrs name a method CalcGateway does not have. */
        uint8_t *buf = num_frame(r, 0, c, CALC_INDEX, (c & 1) ? 7 : M_ADD,
                                 (int64_t)c * 10, text, &n, NULL);
        all = realloc(all, all_len + n);
        assert_non_null(all);
        memcpy(all + all_len, buf, n);
        all_len += n;
        free(buf);
    }
    raw_send(r, all, all_len); /* one write: many calls in flight */
    free(all);
    bool seen[BURST] = {false};
    for (int i = 0; i < BURST; i++) {
        frame_t f;
        char d[1200];
        if (next_frame(r, &f) == RD_CLOSED)
            fail_msg("the server closed the connection after %d answers", i);
        uint64_t c = f.h.corr;
        if (c < FIRST || c >= FIRST + BURST || seen[c - FIRST])
            fail_msg("answer %d: unexpected %s", i, describe(&f, d, sizeof d));
        seen[c - FIRST] = true;
        if (c & 1) {
            if (f.h.kind != FL__K_ERROR || f.m.code != FL_ENOMETHOD)
                fail_msg("corr %llu: want ERROR FL_ENOMETHOD, got %s",
                         (unsigned long long)c, describe(&f, d, sizeof d));
        } else {
            char text[32];
            snprintf(text, sizeof text, "burst-%llu", (unsigned long long)c);
            check_num_reply(&f, c, (int64_t)c * 10 + 1, text);
        }
        frame_clear(&f);
    }
    expect_usable(r, 200, 800);
}

STEP(ping_is_answered_with_pong, RAW_SESSION)
{
    send_frame(r, FL__K_PING, 0, 0, NULL, NULL, 0);
    frame_t f;
    char d[1200];
    if (next_frame(r, &f) == RD_CLOSED)
        fail_msg("want PONG, the server closed the connection");
    if (f.h.kind != FL__K_PONG)
        fail_msg("want PONG, got %s", describe(&f, d, sizeof d));
    frame_clear(&f);
    expect_usable(r, 81, 810);
}

STEP(reply_matching_no_call_is_a_protocol_error, RAW_SESSION)
{
    size_t len;
    uint8_t *body = pack_num(1, "stray", &len);
    send_frame(r, FL__K_REPLY, 0, 0x5151, NULL, body, len);
    free(body);
    expect_error_then_close(r, FL_EPROTO, NULL, 0);
}

STEP(error_matching_no_call_is_a_protocol_error, RAW_SESSION)
{
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.code = FL_EUSER;
    m.message = str_of("stray error");
    send_frame(r, FL__K_ERROR, 0, 0x5252, &m, NULL, 0);
    expect_error_then_close(r, FL_EPROTO, NULL, 0);
}

STEP(unknown_flag_bits_are_a_protocol_error, RAW_SESSION)
{
    /* On INVOKE: bit 15 is not defined. */
    size_t n;
    uint8_t *buf = num_frame(r, 0x8000, 91, CALC_INDEX, M_ADD, POISON,
                             "flag 15", &n, NULL);
    raw_send(r, buf, n);
    free(buf);
    expect_error_then_close(r, FL_EPROTO, NULL, 0);
    raw_close(r);
    /* On CONNECT: TELL is defined for INVOKE only. */
    *r = raw_open(fx);
    raw_hello(r);
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.endpoint = str_of(EP_ID);
    m.gateway = str_of(CALC_NAME);
    send_frame(r, FL__K_CONNECT, FL__F_TELL, 92, &m, NULL, 0);
    expect_error_then_close(r, FL_EPROTO, NULL, 0);
}

/* Metadata that does not parse: a str16 running past its field. */
STEP(metadata_that_does_not_parse_is_a_protocol_error, RAW_SESSION)
{
    size_t n;
    uint8_t *buf =
        num_frame(r, 0, 95, CALC_INDEX, M_ADD, POISON, "bad meta", &n, NULL);
    /* The endpoint's str16 length: 200 instead of 4. */
    buf[FL__FRAME_HDR] = 0;
    buf[FL__FRAME_HDR + 1] = 200;
    raw_send(r, buf, n);
    free(buf);
    expect_error_then_close(r, FL_EPROTO, NULL, 0);
}

/*
 * The last case: the good client stops (all its answers were right), the
 * endpoint terminates, so every request the server ever dispatched to it
 * has run, and none of them was a poisoned one.
 */
static void test_after_the_session_no_poisoned_request_ran(void **state)
{
    raw_session_end(*state, GOOD_PER_STEP);
}

int main(void)
{
    fl_log_set_handler(log_sink, NULL);
    const struct CMUnitTest tests[] = {
        FL_TEST(test_endpoint_address_and_good_client),
        FL_TEST(test_garbage_http_request_is_a_protocol_error),
        FL_TEST(test_garbage_bytes_are_a_protocol_error),
        FL_TEST(test_truncated_header_then_close),
        FL_TEST(test_truncated_body_then_close),
        FL_TEST(test_truncated_frame_then_half_close),
        FL_TEST(test_four_gib_body_length_is_refused),
        FL_TEST(test_frame_of_exactly_the_maximum_is_served),
        FL_TEST(test_frame_one_byte_over_the_maximum_is_refused),
        FL_TEST(test_reply_over_the_callers_maximum_is_emsgsize),
        FL_TEST(test_wrong_version_in_hello_fails_the_handshake),
        FL_TEST(test_invoke_before_hello_fails_the_handshake),
        FL_TEST(test_connect_before_hello_fails_the_handshake),
        FL_TEST(test_connect_to_an_unknown_endpoint_fails_that_request),
        FL_TEST(test_connect_with_a_pattern_names_the_resolved_id),
        FL_TEST(test_connect_with_an_unsupported_gateway_fails_that_request),
        FL_TEST(test_invoke_to_an_unknown_endpoint_is_unreachable),
        FL_TEST(test_invoke_of_an_unknown_method_is_enomethod),
        FL_TEST(test_invoke_of_an_unknown_service_is_enomethod),
        FL_TEST(test_invoke_whose_body_does_not_decode_is_edecode),
        FL_TEST(test_invoke_nested_too_deep_is_edecode),
        FL_TEST(test_burst_of_good_and_bad_asks_is_answered_by_corr),
        FL_TEST(test_ping_is_answered_with_pong),
        FL_TEST(test_reply_matching_no_call_is_a_protocol_error),
        FL_TEST(test_error_matching_no_call_is_a_protocol_error),
        FL_TEST(test_unknown_flag_bits_are_a_protocol_error),
        FL_TEST(test_metadata_that_does_not_parse_is_a_protocol_error),
        FL_TEST(test_after_the_session_no_poisoned_request_ran),
    };
    int failed =
        cmocka_run_group_tests(tests, fixture_setup, raw_fixture_teardown);
    fl_log_set_handler(NULL, NULL);
    return failed;
}
