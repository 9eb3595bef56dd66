/*
 * inbound_test.c - the budget of inbound calls per connection
 * (docs/wire-protocol.md, "Flow control"; src/remote/inbound.c).
 *
 * A server serves a "slow" endpoint whose handler waits behind a gate. A
 * raw client floods it with tells: 1,000 of about 16 KiB (16 MiB) against a
 * budget of 1 MiB, or 20 of about 1 KiB in one write against 8 KiB (the
 * server stops inside one read, and the frames read but not handled must
 * be handled when it resumes). While the gate is shut the server stops
 * reading that connection: the bytes of calls it holds stay within the
 * budget plus one frame (fl__net_stats' inbound_peak), the flood's sender
 * is held up by TCP, and a good client on another connection is served.
 * Once the gate opens every tell is handled, in the order sent.
 *
 * The server runs without I/O turns: a handler that waits must not run on
 * the I/O thread.
 */
#include "gate_fixture.h"
#include "wire_raw.h"

#include "rpc/service.h"

#define EP_SLOW "slow"
#define CLIENT_MAX_FRAME FL__FRAME_DEFAULT_MAX

/* The flood: ntells tells Add(i) with a text of text_len bytes, each
 * sent as it is made, or all in one write. Own thread: records, never
 * asserts. */
typedef struct flood {
    int fd;
    size_t ntells, text_len;
    bool one_write;
    _Atomic size_t sent; /* tells written whole */
    size_t frame;        /* bytes of one tell */
    char failure[256];
} flood_t;

static bool send_all(int fd, const uint8_t *b, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t rc = send(fd, b + off, n - off, MSG_NOSIGNAL);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return false;
        off += (size_t)rc;
    }
    return true;
}

static void *flood_main(void *arg)
{
    flood_t *f = arg;
    char *text = malloc(f->text_len + 1);
    uint8_t *all = NULL;
    size_t all_len = 0;
    if (text == NULL) {
        snprintf(f->failure, sizeof f->failure, "out of memory");
        return NULL;
    }
    memset(text, 't', f->text_len);
    text[f->text_len] = '\0';
    raw_t r = raw_of(f->fd, CLIENT_MAX_FRAME, "flood", FL__FRAME_DEFAULT_MAX,
                     "inbound-server", EP_SLOW);
    for (size_t i = 0; i < f->ntells; i++) {
        size_t n;
        uint8_t *b = num_frame(&r, FL__F_TELL, 0, CALC_INDEX, M_ADD, (int64_t)i,
                               text, &n, NULL);
        f->frame = n;
        if (f->one_write) {
            uint8_t *more = realloc(all, all_len + n);
            if (more == NULL) {
                free(b);
                snprintf(f->failure, sizeof f->failure, "out of memory");
                break;
            }
            memcpy(more + all_len, b, n);
            all = more;
            all_len += n;
            free(b);
            continue;
        }
        bool ok = send_all(f->fd, b, n);
        free(b);
        if (!ok) {
            snprintf(f->failure, sizeof f->failure, "tell %zu: send: %s", i,
                     strerror(errno));
            break;
        }
        atomic_store(&f->sent, i + 1);
    }
    if (f->one_write && f->failure[0] == '\0') {
        if (send_all(f->fd, all, all_len))
            atomic_store(&f->sent, f->ntells);
        else
            snprintf(f->failure, sizeof f->failure, "the one write failed");
    }
    free(all);
    free(text);
    return NULL;
}

static fl__net_stats_t server_stats(fl_rpc_service_t *svc)
{
    fl__net_stats_t st;
    fl__net_stats(svc->net, &st);
    return st;
}

/* Fails unless the peak of calls held is within budget + one frame. */
static void check_peak(fl_rpc_service_t *server, size_t budget, size_t frame)
{
    fl__net_stats_t st = server_stats(server);
    if (st.inbound_peak > budget + frame)
        fail_msg("the server held %llu bytes of calls, more than the budget "
                 "%zu + one frame of %zu",
                 (unsigned long long)st.inbound_peak, budget, frame);
}

/*
 * The case: a server with max_inbound_bytes `budget`, the slow endpoint
 * and a good client; the flood of ntells tells of text_len bytes (one
 * write or not). Checks the pause, the budget, the good client, then
 * opens the gate and checks that every tell is handled in order.
 */
static void run_flood(size_t budget, size_t ntells, size_t text_len,
                      bool one_write)
{
    /* No I/O turns: the slow handler must wait on a worker. */
    fl_rpc_service_opts_t so = {.workers = 2,
                                .bind_host = "127.0.0.1",
                                .name = "inbound-server",
                                .no_io_turns = true,
                                .max_inbound_bytes = budget};
    fl_rpc_service_t *server = NULL;
    assert_fl_ok(fl_rpc_service_alloc(&so, &server));
    int port = fl_rpc_service_port(server);

    static slow_t slow;
    gate_init(&slow, ntells);
    fl_rpc_endpoint_t *slow_ep = NULL, *calc_ep = NULL;
    assert_fl_ok(
        calc_start(server, EP_SLOW, &slow.calc, slow_services(), 1, &slow_ep));
    calc_t calc = {0};
    assert_fl_ok(
        calc_start(server, "calc", &calc, calc_services(), 2, &calc_ep));
    fl_rpc_service_opts_t co = {0};
    co.workers = 1;
    fl_rpc_service_t *client = NULL;
    assert_fl_ok(fl_rpc_service_alloc(&co, &client));
    good_t good = {0};
    good_init(&good);
    assert_fl_ok(gw_connect(client, fl_rpc_endpoint_address(calc_ep),
                            &flhostile__calc_gateway__descriptor, &good.gw));
    assert_int_equal(0, good_start(&good));

    /* The flood, on a raw connection with a small send buffer. */
    flood_t fl = {.fd = raw_connect(port, 0),
                  .ntells = ntells,
                  .text_len = text_len,
                  .one_write = one_write};
    int sndbuf = 64 << 10;
    assert_int_equal(
        0, setsockopt(fl.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf));
    raw_t r = raw_of(fl.fd, CLIENT_MAX_FRAME, "flood", FL__FRAME_DEFAULT_MAX,
                     "inbound-server", EP_SLOW);
    raw_hello(&r);
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, flood_main, &fl));

    /* The server stops reading the flood. */
    uint64_t t0 = fl_clock_now_ns();
    while (server_stats(server).inbound_pauses == 0) {
        if (fl_test_ms_since(t0) > WAIT_MS)
            fail_msg("the server never stopped reading the flood (frames in "
                     "%llu, sent %zu, %s)",
                     (unsigned long long)server_stats(server).frames_in,
                     atomic_load(&fl.sent), fl.failure);
        usleep(1000);
    }
    /* A good client is served meanwhile, and the flood stays held. */
    uint64_t mark = good_done(&good);
    good_wait(&good, mark + 50, WAIT_MS);
    fl__net_stats_t st = server_stats(server);
    size_t sent = atomic_load(&fl.sent);
    size_t seen = gate_seen(&slow);
    print_message("while the gate is shut: %zu of %zu tells sent, peak held "
                  "%llu bytes (budget %zu + one frame of %zu), %llu "
                  "pauses\n",
                  sent, ntells, (unsigned long long)st.inbound_peak, budget,
                  fl.frame, (unsigned long long)st.inbound_pauses);
    assert_int_equal(0, seen);
    if (!one_write && sent >= ntells)
        fail_msg("the flood sent all %zu tells while the endpoint held them: "
                 "nothing pushed back",
                 ntells);
    check_peak(server, budget, fl.frame);

    /* The gate opens: every tell is handled, in order. */
    gate_open(&slow);
    fl_test_latch_await(slow.all);
    pthread_join(t, NULL);
    if (fl.failure[0] != '\0')
        fail_msg("the flood: %s", fl.failure);
    gate_expect_in_order(&slow, ntells);
    check_peak(server, budget, fl.frame);
    expect_usable(&r, 7, 41);

    raw_close(&r);
    good_fini(&good);
    assert_fl_ok(service_end(client));
    assert_fl_ok(calc_end(calc_ep));
    assert_fl_ok(calc_end(slow_ep));
    assert_fl_ok(service_end(server));
    gate_fini(&slow);
}

static void
test_a_flood_of_tells_is_held_to_the_budget_and_all_handled(void **state)
{
    (void)state;
    run_flood((size_t)1 << 20, 1000, 16000, false);
}

static void
test_frames_read_past_the_budget_are_handled_after_the_drain(void **state)
{
    (void)state;
    run_flood((size_t)8 << 10, 20, 1000, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_a_flood_of_tells_is_held_to_the_budget_and_all_handled),
        FL_TEST(test_frames_read_past_the_budget_are_handled_after_the_drain),
    };
    return cmocka_run_group_tests_name("inbound budget", tests, NULL, NULL);
}
