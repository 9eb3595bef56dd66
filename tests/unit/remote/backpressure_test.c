/*
 * backpressure_test.c - slow and stalled peers (issue 4: "a slow or stalled
 * peer does not block other connections; memory for queued outbound frames
 * is bounded per connection, with a clear error when exceeded";
 * docs/wire-protocol.md, "The outbound queue").
 *
 * Server side: a server with a small max_queued_bytes and an endpoint whose
 * Fill method answers a small request with a large reply. A raw client
 * (wire_raw.h) with a small SO_RCVBUF asks for Fill after Fill and never
 * reads, so the kernel's buffers fill and then the server's queue for that
 * connection. Round by round, a well-behaved fling client keeps getting
 * correct answers from the same endpoint; then the server logs that the
 * queue is full (naming the bytes queued and the limit) and closes that
 * connection: the raw client, reading at last, gets what had been written,
 * in order, and then the end of the stream.
 *
 * Client side: a client service with a small max_queued_bytes connects to
 * a raw server that completes the handshake and then reads nothing. Calls
 * with large requests are made until one fails at once with FL_ELIMIT,
 * naming the bytes queued and the limit; the earlier calls are still
 * pending; when the raw server closes, every one of them fails at once with
 * FL_EUNREACHABLE. Between two calls the same client calls another,
 * healthy server: it is not blocked by the stalled connection.
 *
 * Pacing: a burst of calls (or of replies) made faster than the I/O thread
 * writes fills a small queue before the kernel's buffers are full. So each
 * round waits for round trips through the same I/O thread (the good
 * client's calls to the server, the healthy calls of the client) before
 * the next Fill or call: what the queue holds then is what the stalled
 * peer did not take.
 *
 * The overflow is observed through fling's log sink (fl_log_set_handler):
 * the line the server writes when it refuses an answer is the event the
 * test waits for; every wait is bounded.
 */
#include "wire_raw.h"

/* Case 1, the server side. */
#define SERVER_NAME "bp-server"
#define SERVER_QUEUED (256u * 1024u) /* the server's max_queued_bytes */
#define EP_ID "bulk"
#define BULK_NAME "flhostile.BulkGateway"
#define BULK_INDEX 1u          /* after CalcGateway */
#define M_FILL 0u              /* BulkGateway.Fill */
#define FILL_BYTES (60 * 1024) /* each Fill reply: one frame, whole */
#define MAX_FILLS 2048         /* the server must close before this many */
#define GOOD_PER_ROUND 3       /* good calls that must complete per round */
#define GOOD_AFTER 20          /* and after the stalled connection closed */

/* Case 2, the client side. */
#define CLIENT_NAME "bp-client"
#define CLIENT_QUEUED (64u * 1024u) /* the client's max_queued_bytes */
#define CALL_TEXT (16 * 1024)       /* the text of each Add request */
#define MAX_CALLS 1024              /* one must fail before this many */
#define HEALTHY_PER_CALL 2          /* healthy calls before each call */
/* Longer than the whole case may run (fl_test's watchdog): a pending call
 * can only fail because its connection did. */
#define CALL_TIMEOUT_MS (3600 * 1000)
#define SINK_ID "sink"

/* The maximum frame both raw peers announce and their names. */
#define RAW_MAX (1024u * 1024u)
#define STALLED_CLIENT "stalled-client"
#define STALLED_SERVER "stalled-server"

/* SO_RCVBUF of the sockets that stop reading: the kernel's part of the
 * backlog stays small. */
#define RAW_RCVBUF 4096

/* ---- what the handlers and the log sink saw ------------------------------ */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Under mu. */
    uint64_t fills;          /* Fill calls answered */
    unsigned overflows;      /* "outbound queue ... is full" lines logged */
    char overflow_line[512]; /* the first of them */
} seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void seen_reset(void)
{
    pthread_mutex_lock(&seen.mu);
    seen.fills = 0;
    seen.overflows = 0;
    seen.overflow_line[0] = '\0';
    pthread_mutex_unlock(&seen.mu);
}

/* The log sink: writes every line as the default sink does and notes the
 * server's "outbound queue ... is full" lines, as "component: message".
 * Any thread. */
static void log_sink(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
    char line[2048];
    fl_log_format(rec, line, sizeof line);
    fprintf(stderr, "%s\n", line);
    const char *msg = rec->message;
    static const char overflow[] = "outbound queue to ";
    if (strncmp(msg, overflow, sizeof overflow - 1) != 0)
        return;
    pthread_mutex_lock(&seen.mu);
    if (seen.overflows++ == 0)
        snprintf(seen.overflow_line, sizeof seen.overflow_line, "%s: %s",
                 rec->component_name, msg);
    pthread_cond_broadcast(&seen.cv);
    pthread_mutex_unlock(&seen.mu);
}

/* Fill: replies the same v and a text of v bytes (v within FILL_BYTES). */
static void bulk_fill(Flhostile__BulkGateway_Service *svc,
                      const Flhostile__Num *in, Flhostile__Num_Closure closure,
                      void *closure_data)
{
    (void)svc;
    size_t n = in->v > 0 && in->v <= FILL_BYTES ? (size_t)in->v : 0;
    char *text = malloc(n + 1);
    if (text == NULL) {
        fl_rpc_fail(closure_data, FL_ENOMEM, "no memory for the reply");
    } else {
        memset(text, 'f', n);
        text[n] = '\0';
        Flhostile__Num r = FLHOSTILE__NUM__INIT;
        r.v = in->v;
        r.text = text;
        /* Packed at once, then sent from here or from the I/O thread. */
        closure(&r, closure_data);
        free(text);
    }
    pthread_mutex_lock(&seen.mu);
    seen.fills++;
    pthread_cond_broadcast(&seen.cv);
    pthread_mutex_unlock(&seen.mu);
}

/* The endpoint's services: CalcGateway (index 0, for the good client) and
 * BulkGateway (index 1). */
static ProtobufCService *const *bulk_services(void)
{
    static Flhostile__CalcGateway_Service calc =
        FLHOSTILE__CALC_GATEWAY__INIT(calc_);
    static Flhostile__BulkGateway_Service bulk =
        FLHOSTILE__BULK_GATEWAY__INIT(bulk_);
    static ProtobufCService *const services[2] = {&calc.base, &bulk.base};
    return services;
}

/* Waits (at most WAIT_MS) until `fills` Fill calls were answered or the
 * server logged an overflow. */
static void wait_fills_or_overflow(uint64_t fills)
{
    struct timespec ts = fl_test_deadline(WAIT_MS);
    pthread_mutex_lock(&seen.mu);
    int rc = 0;
    while (seen.fills < fills && seen.overflows == 0 && rc == 0)
        rc = pthread_cond_timedwait(&seen.cv, &seen.mu, &ts);
    uint64_t got = seen.fills;
    bool overflow = seen.overflows != 0;
    pthread_mutex_unlock(&seen.mu);
    if (!overflow && got < fills)
        fail_msg("the server answered %llu of %llu Fill calls within %d ms "
                 "and logged no overflow",
                 (unsigned long long)got, (unsigned long long)fills, WAIT_MS);
}

/* Whether the server has logged an overflow. */
static bool overflow_seen(void)
{
    pthread_mutex_lock(&seen.mu);
    bool overflow = seen.overflows != 0;
    pthread_mutex_unlock(&seen.mu);
    return overflow;
}

/*
 * Checks an overflow message, "outbound queue to <peer> is full: Q bytes
 * queued, a frame of N bytes would exceed the limit of L bytes" followed
 * by `tail`: the peer, N and L as given, Q + N over L and Q within it.
 */
static void check_overflow_message(const char *msg, const char *peer,
                                   size_t frame, size_t limit, const char *tail)
{
    char got_peer[64];
    size_t q = 0, n = 0, l = 0;
    int end = -1;
    if (sscanf(msg,
               "outbound queue to %63s is full: %zu bytes queued, a frame of "
               "%zu bytes would exceed the limit of %zu bytes%n",
               got_peer, &q, &n, &l, &end) != 4 ||
        end < 0 || strcmp(msg + end, tail) != 0)
        fail_msg("unexpected overflow message: \"%s\"", msg);
    assert_string_equal(peer, got_peer);
    assert_int_equal(frame, n);
    assert_int_equal(limit, l);
    if (q + n <= l || q > l)
        fail_msg("%zu bytes queued and a frame of %zu do not overflow the "
                 "limit of %zu: \"%s\"",
                 q, n, l, msg);
}

/* ---- what a failed case leaves behind ------------------------------------ */

static struct {
    fixture_t *fx;             /* case 1 */
    fl_rpc_service_t *client;  /* case 2 */
    fl_rpc_gateway_t *gws[2];  /* case 2: stalled, healthy */
    fl_rpc_service_t *healthy; /* case 2 */
    fl_rpc_endpoint_t *healthy_ep;
    calc_t healthy_calc;
    fl_future_t *calls[MAX_CALLS + 1]; /* + the connect */
} left;

/* Ends everything a case made (each case ends with this; the group
 * teardown runs it again for a case that failed half-way). */
static void left_end(void)
{
    raw_fd_close_all();
    if (left.fx != NULL) {
        fixture_end(left.fx);
        free(left.fx);
        left.fx = NULL;
    }
    for (size_t i = 0; i < MAX_CALLS + 1; i++) {
        fl_future_release(left.calls[i]);
        left.calls[i] = NULL;
    }
    for (size_t i = 0; i < 2; i++) {
        fl_rpc_gateway_free(left.gws[i]);
        left.gws[i] = NULL;
    }
    (void)service_end(left.client);
    left.client = NULL;
    (void)calc_end(left.healthy_ep);
    left.healthy_ep = NULL;
    (void)service_end(left.healthy);
    left.healthy = NULL;
}

static int group_teardown(void **state)
{
    (void)state;
    left_end();
    return 0;
}

/* ---- case 1: a client that does not read its replies --------------------- */

/* Sends Fill(FILL_BYTES) with corr. */
static void send_fill(raw_t *r, uint64_t corr)
{
    send_num(r, corr, BULK_INDEX, M_FILL, FILL_BYTES, "");
}

/*
 * Reads what the server wrote before it closed the connection, to the end
 * of the stream: whole REPLY frames of Fill with corrs first, first + 1,
 * ... (below end), then possibly the start of one more (the write the
 * close cut). Returns the number of whole replies.
 */
static uint64_t drain_fill_replies(raw_t *r, uint64_t first, uint64_t end,
                                   const Flhostile__Num *want)
{
    size_t body_len = flhostile__num__get_packed_size(want);
    uint8_t *body = malloc(body_len);
    assert_non_null(body);
    uint64_t replies = 0, last = first - 1;
    for (;;) {
        uint8_t hdr[FL__FRAME_HDR];
        if (raw_recv_upto(r, hdr, sizeof hdr) < sizeof hdr)
            break;
        fl__frame_hdr_t h;
        char why[256] = "";
        int rc = fl__frame_decode_hdr(hdr, sizeof hdr, r->max_frame, &h, why,
                                      sizeof why);
        if (rc != FL_OK)
            fail_msg("reply %llu: bad header: %s (%s)",
                     (unsigned long long)replies, fl_err_name(rc), why);
        if (h.kind != FL__K_REPLY || h.meta_len != 0 ||
            h.body_len != body_len || h.corr != last + 1 || h.corr >= end)
            fail_msg("reply %llu: want a REPLY of %zu bytes with corr %llu "
                     "(below %llu), got %s corr %llu (meta %u, body %u)",
                     (unsigned long long)replies, body_len,
                     (unsigned long long)last + 1, (unsigned long long)end,
                     kind_name(h.kind), (unsigned long long)h.corr,
                     (unsigned)h.meta_len, (unsigned)h.body_len);
        if (raw_recv_upto(r, body, body_len) < body_len)
            break;
        Flhostile__Num *got = flhostile__num__unpack(NULL, body_len, body);
        assert_non_null(got);
        assert_int_equal(want->v, got->v);
        assert_string_equal(want->text, got->text);
        flhostile__num__free_unpacked(got, NULL);
        last = h.corr;
        replies++;
    }
    free(body);
    return replies;
}

static void test_server_closes_a_client_that_does_not_read(void **state)
{
    (void)state;
    seen_reset();
    left.fx = calloc(1, sizeof *left.fx);
    assert_non_null(left.fx);
    fixture_t *fx = left.fx;
    if (fixture_start(fx, SERVER_NAME, 0, SERVER_QUEUED, EP_ID, bulk_services(),
                      2) != 0)
        fail_msg("could not set up the server and the good client");

    raw_t r = raw_of(raw_connect(fx->port, RAW_RCVBUF), RAW_MAX, STALLED_CLIENT,
                     FL__FRAME_DEFAULT_MAX, SERVER_NAME, EP_ID);
    raw_hello(&r);
    raw_attach(&r, 1, BULK_NAME, BULK_INDEX);

    /* Fill after Fill, never reading, until the server reports the
     * overflow. Each round waits until the endpoint has answered the Fill,
     * then until the good client has completed GOOD_PER_ROUND more calls:
     * their requests went through the server's I/O thread after the one
     * that read the Fill, so the reply has been handed to the connection
     * (written, queued or refused: the answer may go out from the I/O
     * thread once the handler has returned), and nothing is sent to a
     * server that has decided to close. */
    const uint64_t first = 2;
    uint64_t sent = 0;
    while (!overflow_seen()) {
        if (sent >= MAX_FILLS)
            fail_msg("%d Fill replies of %d bytes are unread and the server "
                     "has not closed the connection",
                     MAX_FILLS, FILL_BYTES);
        send_fill(&r, first + sent);
        sent++;
        wait_fills_or_overflow(sent);
        good_wait(&fx->good, good_done(&fx->good) + GOOD_PER_ROUND, WAIT_MS);
    }

    /* The clear error: the line the server logged. */
    pthread_mutex_lock(&seen.mu);
    char line[sizeof seen.overflow_line];
    memcpy(line, seen.overflow_line, sizeof line);
    pthread_mutex_unlock(&seen.mu);
    static const char prefix[] = "remote: ";
    assert_int_equal(0, strncmp(line, prefix, sizeof prefix - 1));
    char peer[64];
    snprintf(peer, sizeof peer, "127.0.0.1:%d", raw_local_port(r.fd));
    /* Every Fill is answered Num(FILL_BYTES, FILL_BYTES bytes of 'f'). */
    Flhostile__Num reply = FLHOSTILE__NUM__INIT;
    reply.v = FILL_BYTES;
    reply.text = malloc(FILL_BYTES + 1);
    assert_non_null(reply.text);
    memset(reply.text, 'f', FILL_BYTES);
    reply.text[FILL_BYTES] = '\0';
    size_t reply_frame =
        FL__FRAME_HDR + flhostile__num__get_packed_size(&reply);
    check_overflow_message(line + sizeof prefix - 1, peer, reply_frame,
                           SERVER_QUEUED, "; closing the connection");

    /* The connection is closed: what was written before comes out, then
     * the end of the stream, and not every reply made it. */
    uint64_t replies = drain_fill_replies(&r, first, first + sent, &reply);
    if (replies >= sent)
        fail_msg("all %llu replies arrived: none was dropped",
                 (unsigned long long)sent);
    raw_close(&r);
    print_message("the server closed the connection after %llu Fill calls "
                  "(%llu replies were written)\n",
                  (unsigned long long)sent, (unsigned long long)replies);

    /* The server serves on: the good client, and a client that reads. */
    good_wait(&fx->good, good_done(&fx->good) + GOOD_AFTER, WAIT_MS);
    raw_t ok = raw_of(raw_connect(fx->port, 0), RAW_MAX, "reading-client",
                      FL__FRAME_DEFAULT_MAX, SERVER_NAME, EP_ID);
    raw_hello(&ok);
    raw_attach(&ok, 1, BULK_NAME, BULK_INDEX);
    send_num(&ok, 2, BULK_INDEX, M_FILL, FILL_BYTES, "");
    expect_num_reply(&ok, 2, FILL_BYTES, reply.text);
    raw_close(&ok);
    free(reply.text);

    good_stop(&fx->good);
    good_wait(&fx->good, 0, 0); /* stopped: only the check of its answers */
    left_end();
}

/* ---- case 2: a server that does not read its requests -------------------- */

/* The packed size of Add(v, text) as an INVOKE frame to endpoint id, an
 * ask with a timeout (it carries its deadline). */
static size_t add_frame_size(const char *id, const Flhostile__Num *req)
{
    fl__frame_meta_t m = invoke_meta(id, CALC_INDEX, M_ADD);
    return FL__FRAME_HDR +
           fl__frame_meta_size(FL__K_INVOKE, FL__F_DEADLINE, &m) +
           flhostile__num__get_packed_size(req);
}

/* Accepts the client's connection on lfd and plays the server's part of
 * the handshake: HELLO both ways, CONNECT to SINK_ID's CalcGateway
 * answered CONNECTED 0. */
static raw_t accept_handshake(int lfd)
{
    int fd = accept(lfd, NULL, NULL); /* bounded by lfd's SO_RCVTIMEO */
    if (fd < 0)
        fail_msg("accept: %s", strerror(errno));
    raw_fd_adopt(fd);
    raw_t s =
        raw_of(fd, RAW_MAX, STALLED_SERVER, RAW_MAX, CLIENT_NAME, SINK_ID);
    raw_hello(&s);
    frame_t f;
    char d[1200], endpoint[FL__ID_MAX + 1], gateway[FL__NAME_MAX + 1];
    next_frame_or_fail(&s, &f, "CONNECT", 1);
    if (f.h.kind != FL__K_CONNECT)
        fail_msg("want CONNECT, got %s", describe(&f, d, sizeof d));
    assert_string_equal(SINK_ID,
                        str_copy(f.m.endpoint, endpoint, sizeof endpoint));
    assert_string_equal(CALC_NAME,
                        str_copy(f.m.gateway, gateway, sizeof gateway));
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.service_index = CALC_INDEX;
    send_frame(&s, FL__K_CONNECTED, 0, f.h.corr, &m, NULL, 0);
    frame_clear(&f);
    return s;
}

/* The client's call through its other connection: Add(v) answered v + 1
 * by the healthy server. */
static void expect_healthy(fl_rpc_gateway_t *gw, int64_t v)
{
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = v;
    req.text = "healthy";
    ProtobufCMessage *out = NULL;
    int rc = fl_rpc_call_sync(gw, M_ADD, &req.base, WAIT_MS, &out);
    if (rc != FL_OK)
        fail_msg("the healthy server's Add(%lld): %s (%s)", (long long)v,
                 fl_err_name(rc), fl_rpc_last_message());
    const Flhostile__Num *r = (const Flhostile__Num *)out;
    assert_int_equal(v + 1, r->v);
    assert_string_equal("healthy", r->text);
    protobuf_c_message_free_unpacked(out, NULL);
}

static void test_full_client_queue_fails_the_call_with_elimit(void **state)
{
    (void)state;
    seen_reset();
    /* The raw server: its accepted socket inherits the small SO_RCVBUF. */
    int port;
    int lfd = raw_listen(RAW_RCVBUF, &port);

    fl_rpc_service_opts_t co = {0};
    co.workers = 2;
    co.name = CLIENT_NAME;
    co.max_frame_size = RAW_MAX;
    co.max_queued_bytes = CLIENT_QUEUED;
    assert_fl_ok(fl_rpc_service_alloc(&co, &left.client));
    char address[64];
    snprintf(address, sizeof address, "fling.tcp://127.0.0.1:%d/" SINK_ID,
             port);
    fl_future_t *cf = NULL;
    assert_fl_ok(fl_rpc_connect(
        left.client, address, &flhostile__calc_gateway__descriptor, NULL, &cf));
    left.calls[MAX_CALLS] = cf;
    raw_t srv = accept_handshake(lfd);
    assert_fl_ok(fl_future_wait(cf, WAIT_MS));
    left.gws[0] = fl_future_take_value(cf);
    fl_rpc_gateway_t *gw = left.gws[0];

    /* A healthy server the same client also calls. */
    assert_fl_ok(server_alloc("healthy-server", 0, 0, &left.healthy));
    assert_fl_ok(calc_start(left.healthy, "calc", &left.healthy_calc,
                            calc_services(), 2, &left.healthy_ep));
    assert_fl_ok(
        gw_connect(left.client, fl_rpc_endpoint_address(left.healthy_ep),
                   &flhostile__calc_gateway__descriptor, &left.gws[1]));

    /* Calls until one is refused; before each, healthy calls through the
     * same I/O thread, which has then written what the kernel would
     * take. */
    char *text = malloc(CALL_TEXT + 1);
    assert_non_null(text);
    memset(text, 'q', CALL_TEXT);
    text[CALL_TEXT] = '\0';
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.text = text;
    size_t k = 0;
    for (;; k++) {
        if (k == MAX_CALLS)
            fail_msg("%d calls of %zu bytes are queued to a server that "
                     "reads nothing, and none failed with FL_ELIMIT",
                     MAX_CALLS, add_frame_size(SINK_ID, &req));
        for (int h = 0; h < HEALTHY_PER_CALL; h++)
            expect_healthy(left.gws[1], (int64_t)(k * HEALTHY_PER_CALL) + h);
        req.v = (int64_t)k;
        assert_fl_ok(
            fl_rpc_call(gw, M_ADD, &req.base, CALL_TIMEOUT_MS, &left.calls[k]));
        if (fl_future_done(left.calls[k]))
            break; /* failed at once */
    }

    /* The clear error. */
    fl_future_t *full = left.calls[k];
    if (fl_future_error(full) != FL_ELIMIT)
        fail_msg("call %zu: want FL_ELIMIT, got %s (%s)", k,
                 fl_err_name(fl_future_error(full)), fl_future_message(full));
    char peer[64];
    snprintf(peer, sizeof peer, "127.0.0.1:%d", port);
    check_overflow_message(fl_future_message(full), peer,
                           add_frame_size(SINK_ID, &req), CLIENT_QUEUED, "");
    free(text);
    print_message("call %zu failed at once: %s\n", k, fl_future_message(full));

    /* The calls before it are still waiting for their answers, and the
     * client still reaches the healthy server. */
    if (k == 0)
        fail_msg("the first call failed: nothing was queued before it");
    for (size_t i = 0; i < k; i++)
        if (fl_future_done(left.calls[i]))
            fail_msg("call %zu of %zu: want pending, got %s (%s)", i, k,
                     fl_err_name(fl_future_error(left.calls[i])),
                     fl_future_message(left.calls[i]));
    expect_healthy(left.gws[1], -1);

    /* The raw server goes away: every pending call fails at once with
     * FL_EUNREACHABLE (not at its timeout, an hour away). */
    raw_close(&srv);
    raw_fd_close(lfd);
    char lost[160];
    snprintf(lost, sizeof lost,
             "recipient unreachable: connection to %s lost: ", peer);
    for (size_t i = 0; i < k; i++) {
        fl_future_t *f = left.calls[i];
        (void)fl_future_wait(f, WAIT_MS);
        if (!fl_future_done(f))
            fail_msg("call %zu of %zu still pending %d ms after the server "
                     "closed",
                     i, k, WAIT_MS);
        if (fl_future_error(f) != FL_EUNREACHABLE ||
            strncmp(fl_future_message(f), lost, strlen(lost)) != 0)
            fail_msg("call %zu: want FL_EUNREACHABLE \"%s...\", got %s "
                     "\"%s\"",
                     i, lost, fl_err_name(fl_future_error(f)),
                     fl_future_message(f));
    }
    left_end();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_server_closes_a_client_that_does_not_read),
        FL_TEST(test_full_client_queue_fails_the_call_with_elimit),
    };
    return raw_run_logged("tests", tests, sizeof tests / sizeof *tests,
                          log_sink, &seen.cv, group_teardown);
}
