/*
 * log_session_test.c - at debug, a server shows its connections and calls
 * (src/remote/listen.c, conn_read.c, conn.c; src/rpc/calllog.c,
 * tcp_server.c): with FLING_TRACE's switch on for rpc and remote
 * (fl_log_set_trace), a caller connecting, making two calls and a tell,
 * then shutting down gives, in order, the server's lines: accepted,
 * handshake, gateway connect, each call received and answered (with its
 * code and duration), the tell, and the close. The local run shows that
 * local calls write no such lines.
 */
#include "rpc_fixture.h"

#include "log_capture.h"

static int setup(void **state)
{
    fl_log_set_level(FL_LOG_WARN);
    assert_fl_ok(fl_log_set_trace("rpc,remote"));
    fl_log_set_handler(cap_handler, NULL);
    cap_clear();
    return fl_test_arm(state);
}

static int teardown(void **state)
{
    fl_log_set_handler(NULL, NULL);
    assert_fl_ok(fl_log_set_trace(""));
    return fl_test_disarm(state);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* Checks that a duration_ms field is a number with three decimals, and
 * replaces its value in fields by "D". */
static void mask_duration(char *fields)
{
    char *d = strstr(fields, "duration_ms=");
    if (d == NULL)
        return;
    char *v = d + strlen("duration_ms=");
    size_t n = strspn(v, "0123456789");
    if (n == 0 || v[n] != '.' || strspn(v + n + 1, "0123456789") != 3 ||
        (v[n + 4] != '\0' && v[n + 4] != ' '))
        fail_msg("duration_ms is not in ms with 3 decimals: \"%s\"", fields);
    memmove(v + 1, v + n + 4, strlen(v + n + 4) + 1);
    v[0] = 'D';
}

static void tell_echo(fl_rpc_gateway_t *gw)
{
    Fltest__EchoRequest req = echo_req("t", 1);
    fltest__test_gateway__echo(fl_rpc_gateway_service(gw), &req, NULL, NULL);
}

static void test_a_debug_session_of_a_server(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_t *ep = tep_create_started(svc, "sess", &st, NULL);
    fl_rpc_gateway_t *gw = gw_to(svc, ep, NULL);
    assert_fl_ok(echo_code(gw));
    assert_fl_ok(echo_code(gw));
    tell_echo(gw);
    if (!fx_remote) {
        assert_fl_ok(echo_code(gw)); /* after the tell */
        cap_rec_t r[4];
        assert_int_equal(0, cap_select(FL_LOG_DEBUG, NULL, r, 4));
        fl_rpc_gateway_free(gw);
        tep_end(ep);
        svc_end(svc);
        return;
    }
    cap_rec_t got;
    cap_wait("rpc", "tell received", &got);
    char peer[64];
    cap_field(&got, "peer", peer, sizeof peer);
    fl_rpc_gateway_free(gw);
    cli_end(svc); /* the caller shuts down: its connection closes */
    char closed[128];
    snprintf(closed, sizeof closed, "connection from %s closed", peer);
    cap_wait("remote", closed, &got);

    /* The server's lines: those about the caller's connection. */
    static cap_rec_t all[CAP_MAX];
    int n = cap_select(FL_LOG_DEBUG, NULL, all, CAP_MAX);
    char pf[80];
    snprintf(pf, sizeof pf, "peer=%s", peer);
    char lines[16][sizeof all[0].component + sizeof all[0].message +
                   sizeof all[0].fields + 8];
    int k = 0;
    for (int i = 0; i < n && i < CAP_MAX; i++) {
        if (strstr(all[i].fields, pf) == NULL)
            continue;
        mask_duration(all[i].fields);
        if (k < 16)
            snprintf(lines[k], sizeof lines[k], "%s: %s | %s", all[i].component,
                     all[i].message, all[i].fields);
        k++;
    }
    char want[16][800];
    int w = 0;
    snprintf(want[w++], sizeof want[0],
             "remote: connection from %s accepted | peer=%s", peer, peer);
    if (fx_tls)
        snprintf(want[w++], sizeof want[0],
                 "remote: TLS handshake with %s done | peer=%s", peer, peer);
    snprintf(want[w++], sizeof want[0],
             "remote: handshake with %s done: service fling, protocol "
             "version 1 | peer=%s service=fling version=1",
             peer, peer);
    snprintf(want[w++], sizeof want[0],
             "rpc: gateway connect received | endpoint=sess "
             "gateway=fltest.TestGateway corr=1 peer=%s code=FL_OK",
             peer);
    for (int c = 2; c <= 3; c++) {
        snprintf(want[w++], sizeof want[0],
                 "rpc: call received | endpoint=sess "
                 "method=fltest.TestGateway.Echo corr=%d peer=%s",
                 c, peer);
        snprintf(want[w++], sizeof want[0],
                 "rpc: call answered | endpoint=sess corr=%d peer=%s "
                 "code=FL_OK duration_ms=D",
                 c, peer);
    }
    snprintf(want[w++], sizeof want[0],
             "rpc: tell received | endpoint=sess "
             "method=fltest.TestGateway.Echo peer=%s",
             peer);
    snprintf(want[w++], sizeof want[0], "remote: %s said BYE | peer=%s", peer,
             peer);
    snprintf(want[w++], sizeof want[0],
             "remote: connection from %s closed | peer=%s reason=the peer "
             "closed the connection",
             peer, peer);
    bool same = w == k;
    for (int i = 0; same && i < w; i++)
        same = strcmp(want[i], lines[i]) == 0;
    if (!same) {
        for (int i = 0; i < k && i < 16; i++)
            print_message("got  %d: %s\n", i, lines[i]);
        for (int i = 0; i < w; i++)
            print_message("want %d: %s\n", i, want[i]);
        fail_msg("the server's debug lines differ (%d, want %d)", k, w);
    }
    tep_end(ep);
    fl_test_service_end(svc);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_a_debug_session_of_a_server),
    };
    return FX_RUN(argc, argv, tests);
}
