/*
 * idle_memory_test.c - what an idle connection holds (issue 14, item 7):
 * its read buffer stays small until a read fills it (conn_read.c,
 * READ_FIRST), so both ends of a connection that only did its handshake
 * hold less than PER_CONN_MAX bytes, counted through fl_replace_allocator
 * (tests/fl_alloc.h); a 64 KiB read buffer on each end would be over 128
 * KiB.
 *
 * NCONN client services (one system) each connect to a warm-up server
 * first (so that their transports exist before the count), then, counted,
 * to the server under test; the gateways are freed at once (the
 * connections stay, idle). Both ends are in this process. A call on each
 * connection afterwards still works.
 */
#include "fl_alloc.h"
#include "wire_client.h"

#define NCONN 20
#define PER_CONN_MAX (32 * 1024)

/* A gateway of svc to ep's CalcGateway, connected (fails the test). */
static fl_rpc_gateway_t *connect_to(fl_rpc_service_t *svc,
                                    fl_rpc_endpoint_t *ep)
{
    fl_rpc_gateway_t *gw = NULL;
    assert_fl_ok(gw_connect(svc, fl_rpc_endpoint_address(ep),
                            &flhostile__calc_gateway__descriptor, &gw));
    return gw;
}

static void test_an_idle_connection_holds_a_small_read_buffer(void **unused)
{
    (void)unused;
    fl_rpc_service_t *srv[2] = {NULL, NULL};
    fl_rpc_endpoint_t *ep[2] = {NULL, NULL};
    calc_t calc[2] = {{0}, {0}};
    for (int s = 0; s < 2; s++) {
        assert_fl_ok(server_alloc("idle-server", 0, 0, &srv[s]));
        assert_fl_ok(
            calc_start(srv[s], "calc", &calc[s], calc_services(), 2, &ep[s]));
    }
    fl_system_t *sys = fl_test_system(2);
    fl_rpc_service_t *cli[NCONN];
    for (int i = 0; i < NCONN; i++) {
        fl_rpc_service_opts_t co = {0};
        co.system = sys;
        co.name = "idle-client";
        assert_fl_ok(fl_rpc_service_alloc(&co, &cli[i]));
        fl_rpc_gateway_free(connect_to(cli[i], ep[0]));
    }
    int64_t before = fl_alloc_live();
    for (int i = 0; i < NCONN; i++)
        fl_rpc_gateway_free(connect_to(cli[i], ep[1]));
    int64_t per = (fl_alloc_live() - before) / NCONN;
    print_message("an idle connection holds %lld bytes (both ends)\n",
                  (long long)per);
    if (per > PER_CONN_MAX)
        fail_msg("an idle connection holds %lld bytes (both ends), want at "
                 "most %d",
                 (long long)per, PER_CONN_MAX);

    /* The connections still serve calls. */
    for (int i = 0; i < NCONN; i++) {
        fl_rpc_gateway_t *gw = connect_to(cli[i], ep[1]);
        Flhostile__Num req = FLHOSTILE__NUM__INIT;
        req.v = i;
        req.text = "idle";
        ProtobufCMessage *out = NULL;
        assert_fl_ok(fl_rpc_call_sync(gw, M_ADD, &req.base, WAIT_MS, &out));
        assert_int_equal(i + 1, ((Flhostile__Num *)out)->v);
        protobuf_c_message_free_unpacked(out, NULL);
        fl_rpc_gateway_free(gw);
    }

    for (int i = 0; i < NCONN; i++)
        assert_fl_ok(service_end(cli[i]));
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    for (int s = 0; s < 2; s++) {
        assert_fl_ok(calc_end(ep[s]));
        assert_fl_ok(service_end(srv[s]));
    }
}

int main(void)
{
    if (fl_alloc_install() != FL_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        FL_TEST(test_an_idle_connection_holds_a_small_read_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
