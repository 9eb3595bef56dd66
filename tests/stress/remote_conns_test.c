/*
 * remote_conns_test.c - many remote connections, many calls in flight on
 * each (issue 4, "Tests": "200 concurrent connections with 64 calls in
 * flight each, all answered").
 *
 * One server service listens on 127.0.0.1, port 0, with the calc endpoint
 * of tests/unit/remote/wire_client.h (CalcGateway.Add replies v + 1 and
 * the same text).
 * The wire protocol keeps one connection per pair of services, so NCONN
 * connections are NCONN client services; they share one actor system
 * (opts.system) so the process runs NCONN I/O threads, not NCONN worker
 * pools. Every client connects, the test checks that NCONN TCP connections
 * to the server's port are established at once, then each client puts
 * INFLIGHT fl_rpc_call futures in flight before any is waited for; every
 * reply must carry its own request's value and text. ROUNDS rounds.
 */
#include "unit/remote/wire_client.h"

#define NCONN 200
#define INFLIGHT 64
#define ROUNDS 2
#define NCALLS ((size_t)NCONN * INFLIGHT)

/* The whole case must finish well inside fl_test's watchdog (60 s, tripled
 * under sanitizers); this bounds every wait. */
#ifdef FL_SANITIZE
#define DEADLINE_MS 150000
#else
#define DEADLINE_MS 50000
#endif

#define NS_PER_MS 1000000ull

/* Milliseconds left until deadline_ns (at least 0). */
static int64_t ms_left(uint64_t deadline_ns)
{
    uint64_t now = fl_clock_now_ns();
    return now >= deadline_ns ? 0 : (int64_t)((deadline_ns - now) / NS_PER_MS);
}

/*
 * Counts the ESTABLISHED IPv4 TCP sockets of this network namespace whose
 * local port is `port` (the server's accepted connections) and whose
 * remote port is `port` (the clients' connections), from /proc/net/tcp.
 */
static void count_established(int port, int *server_side, int *client_side)
{
    *server_side = 0;
    *client_side = 0;
    FILE *f = fopen("/proc/net/tcp", "r");
    assert_non_null(f);
    char line[512];
    if (fgets(line, sizeof line, f) == NULL) { /* the column titles */
        fclose(f);
        fail_msg("/proc/net/tcp is empty");
    }
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned lport, rport, st;
        if (sscanf(line, " %*d: %*8x:%x %*8x:%x %x", &lport, &rport, &st) != 3)
            continue;
        if (st != 1) /* TCP_ESTABLISHED */
            continue;
        if ((int)lport == port)
            (*server_side)++;
        if ((int)rport == port)
            (*client_side)++;
    }
    fclose(f);
}

/* The value and text of call k of client c in round r. */
static int64_t call_value(int r, int c, int k)
{
    return ((int64_t)r * NCONN + c) * INFLIGHT * 7 + k * 7 + 3;
}

static void call_text(int r, int c, int k, char *buf, size_t n)
{
    snprintf(buf, n, "round %d client %d call %d", r, c, k);
}

static void test_many_connections_with_many_calls_in_flight(void **st)
{
    (void)st;
    uint64_t t0 = fl_clock_now_ns();
    uint64_t deadline = t0 + (uint64_t)DEADLINE_MS * NS_PER_MS;

    /* The server. */
    fl_rpc_service_t *server = NULL;
    int rc = server_alloc("conns-server", 0, 0, &server);
    if (rc != FL_OK)
        fail_msg("server: %s (%s)", fl_err_name(rc), fl_rpc_last_message());
    int port = fl_rpc_service_port(server);
    assert_true(port > 0 && port <= 65535);
    calc_t calc = {0};
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl_ok(calc_start(server, "calc", &calc, calc_services(), 2, &ep));
    const char *address = fl_rpc_endpoint_address(ep);

    /* NCONN client services on one shared system, all connecting at once. */
    fl_system_t *sys = fl_test_system(2);
    fl_rpc_service_t **clients = calloc(NCONN, sizeof *clients);
    fl_rpc_gateway_t **gws = calloc(NCONN, sizeof *gws);
    fl_future_t **fs = calloc(NCALLS, sizeof *fs);
    assert_non_null(clients);
    assert_non_null(gws);
    assert_non_null(fs);
    for (int c = 0; c < NCONN; c++) {
        char name[32];
        snprintf(name, sizeof name, "conns-client-%d", c);
        fl_rpc_service_opts_t co = {0};
        co.system = sys;
        co.name = name;
        co.default_timeout_ms = DEADLINE_MS;
        rc = fl_rpc_service_alloc(&co, &clients[c]);
        if (rc != FL_OK)
            fail_msg("client %d: fl_rpc_service_alloc: %s (%s)", c,
                     fl_err_name(rc), fl_rpc_last_message());
    }
    for (int c = 0; c < NCONN; c++) {
        rc = fl_rpc_connect(clients[c], address,
                            &flhostile__calc_gateway__descriptor, NULL, &fs[c]);
        if (rc != FL_OK)
            fail_msg("client %d: fl_rpc_connect: %s", c, fl_err_name(rc));
    }
    for (int c = 0; c < NCONN; c++) {
        rc = fl_future_wait(fs[c], ms_left(deadline));
        if (rc != FL_OK)
            fail_msg("client %d: connect %s: %s (%s)", c, address,
                     fl_err_name(rc),
                     fl_future_done(fs[c]) ? fl_future_message(fs[c])
                                           : "not completed in time");
        gws[c] = fl_future_take_value(fs[c]);
        assert_non_null(gws[c]);
        fl_future_release(fs[c]);
        fs[c] = NULL;
    }
    uint64_t t_connected = fl_clock_now_ns();

    /* One connection per pair of services: NCONN of them, all open now. */
    int server_side, client_side;
    count_established(port, &server_side, &client_side);
    assert_int_equal(NCONN, server_side);
    assert_int_equal(NCONN, client_side);

    for (int r = 0; r < ROUNDS; r++) {
        /* Every client puts INFLIGHT calls in flight before any is waited
         * for. */
        for (int k = 0; k < INFLIGHT; k++) {
            for (int c = 0; c < NCONN; c++) {
                char text[64];
                call_text(r, c, k, text, sizeof text);
                Flhostile__Num req = FLHOSTILE__NUM__INIT;
                req.v = call_value(r, c, k);
                req.text = text;
                fl_future_t **f = &fs[(size_t)c * INFLIGHT + (size_t)k];
                rc = fl_rpc_call(gws[c], M_ADD, &req.base, DEADLINE_MS, f);
                if (rc != FL_OK)
                    fail_msg("round %d client %d call %d: fl_rpc_call: %s", r,
                             c, k, fl_err_name(rc));
            }
        }
        /* Every reply must be its own request's. */
        for (int c = 0; c < NCONN; c++) {
            for (int k = 0; k < INFLIGHT; k++) {
                fl_future_t *f = fs[(size_t)c * INFLIGHT + (size_t)k];
                rc = fl_future_wait(f, ms_left(deadline));
                if (rc != FL_OK)
                    fail_msg("round %d client %d call %d: %s (%s)", r, c, k,
                             fl_err_name(rc),
                             fl_future_done(f) ? fl_future_message(f)
                                               : "not answered in time");
                const Flhostile__Num *reply = fl_future_value(f);
                assert_non_null(reply);
                char text[64];
                call_text(r, c, k, text, sizeof text);
                if (reply->v != call_value(r, c, k) + 1 ||
                    strcmp(reply->text, text) != 0)
                    fail_msg("round %d client %d call %d: want %lld \"%s\", "
                             "got %lld \"%s\"",
                             r, c, k, (long long)call_value(r, c, k) + 1, text,
                             (long long)reply->v, reply->text);
                fl_future_release(f);
                fs[(size_t)c * INFLIGHT + (size_t)k] = NULL;
            }
        }
    }
    uint64_t t_calls = fl_clock_now_ns();
    assert_int_equal((long)ROUNDS * (long)NCALLS, atomic_load(&calc.adds));

    /* Teardown: gateways, clients, their system, then the server. */
    for (int c = 0; c < NCONN; c++)
        fl_rpc_gateway_free(gws[c]);
    for (int c = 0; c < NCONN; c++) {
        assert_fl_ok(fl_rpc_service_shutdown(clients[c]));
        fl_rpc_service_free(clients[c]);
    }
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    assert_fl_ok(calc_end(ep));
    assert_fl_ok(service_end(server));
    free(fs);
    free(gws);
    free(clients);
    uint64_t t_end = fl_clock_now_ns();
    print_message("%d connections: connected in %llu ms; %d x %zu calls in "
                  "%llu ms; teardown %llu ms\n",
                  NCONN, (unsigned long long)((t_connected - t0) / NS_PER_MS),
                  ROUNDS, NCALLS,
                  (unsigned long long)((t_calls - t_connected) / NS_PER_MS),
                  (unsigned long long)((t_end - t_calls) / NS_PER_MS));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_many_connections_with_many_calls_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
