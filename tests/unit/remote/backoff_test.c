/*
 * backoff_test.c - the backoff between failed connection attempts
 * (src/remote/dial.c, docs/wire-protocol.md "Backoff"): doubling from 50 ms
 * to 5 s, and a random jitter of +-20% (gRPC's connection backoff) that is
 * never above the maximum, so that clients started together do not retry
 * in the same windows.
 */
#include "fl_test.h"

#include "hostile_gateways.pb-c.h"
#include "remote/conn.h"
#include "rpc/service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_the_backoff_doubles_from_50_ms_to_5_s(void **state)
{
    (void)state;
    static const int want[] = {50,   100,  200,  400,  800,
                               1600, 3200, 5000, 5000, 5000};
    int b = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        b = fl__backoff_next(b);
        assert_int_equal(want[i], b);
    }
}

static void test_the_jitter_spreads_evenly_over_20_percent(void **state)
{
    (void)state;
    /* rnd picks one of the 2 * spread + 1 values, in order; at the
     * maximum, down to 80% and never above it. */
    static const struct {
        int backoff;
        uint32_t rnd;
        int want;
    } rows[] = {{50, 0, 40},     {50, 1, 41},        {50, 10, 50},
                {50, 20, 60},    {50, 21, 40},       {100, 0, 80},
                {100, 40, 120},  {3200, 0, 2560},    {3200, 1280, 3840},
                {5000, 0, 4000}, {5000, 1000, 5000}, {5000, 2000, 5000}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_int_equal(rows[i].want,
                         fl__backoff_jitter(rows[i].backoff, rows[i].rnd));
    for (uint32_t r = 0; r < 5000; r++) {
        int w = fl__backoff_jitter(5000, r * 2654435761u);
        assert_in_range(w, 4000, 5000);
        w = fl__backoff_jitter(50, r * 2654435761u);
        assert_in_range(w, 40, 60);
    }
}

/* A port of 127.0.0.1 that refuses connections (bound, then let go). */
static int refused_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(0, bind(fd, (struct sockaddr *)&sa, sizeof sa));
    socklen_t len = sizeof sa;
    assert_int_equal(0, getsockname(fd, (struct sockaddr *)&sa, &len));
    close(fd);
    return ntohs(sa.sin_port);
}

#define NCONN 6

static void test_connections_failing_together_retry_apart(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(NULL, &svc));
    int ports[NCONN];
    for (int i = 0; i < NCONN; i++) {
        ports[i] = refused_port();
        char addr[64], msg[256];
        snprintf(addr, sizeof addr, "fling.tcp://127.0.0.1:%d/x", ports[i]);
        int rc = fl_test_connect_error(
            svc, addr, &flhostile__calc_gateway__descriptor, msg, sizeof msg);
        assert_fl(FL_ECONNECT, rc);
    }
    /* Each connection's first failure: a backoff of 50 ms, and a wait of
     * 40 to 60 ms drawn for it alone. */
    int waits[NCONN], distinct = 0;
    for (int i = 0; i < NCONN; i++) {
        char name[32];
        snprintf(name, sizeof name, "127.0.0.1:%d", ports[i]);
        fl__conn_t *c = NULL;
        pthread_mutex_lock(&svc->net->mu);
        HASH_FIND_STR(svc->net->peers, name, c);
        pthread_mutex_unlock(&svc->net->mu);
        assert_non_null(c);
        fl__conn_lock(c);
        assert_int_equal(50, c->backoff_ms);
        waits[i] = c->retry_wait_ms;
        fl__conn_unlock(c);
        assert_in_range(waits[i], 40, 60);
        bool seen = false;
        for (int k = 0; k < i; k++)
            seen = seen || waits[k] == waits[i];
        distinct += !seen;
        print_message("connection %d: next attempt after %d ms\n", i, waits[i]);
    }
    /* Six draws of 21 values all alike: about 1 in 4 million. */
    assert_true(distinct > 1);
    fl_test_service_end(svc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_backoff_doubles_from_50_ms_to_5_s),
        cmocka_unit_test(test_the_jitter_spreads_evenly_over_20_percent),
        cmocka_unit_test(test_connections_failing_together_retry_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
