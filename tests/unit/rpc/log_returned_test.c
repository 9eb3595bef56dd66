/*
 * log_returned_test.c - an error the library returns is not printed a
 * second time: fl_rpc_service_alloc with every port of its range taken
 * returns FL_EADDRINUSE with its message (fl_rpc_last_message) and logs
 * nothing at info or above; at debug the same text is one line of
 * component rpc. The same in both runs (the service made here listens
 * whatever the transport).
 */
#include "rpc_fixture.h"

#include "log_capture.h"

static void test_a_taken_port_range_is_returned_not_printed(void **state)
{
    (void)state;
    fl_log_set_handler(cap_handler, NULL);
    fl_log_set_level(FL_LOG_INFO);
    cap_clear();
    /* A service on a free port, and another asked for that port only. */
    fl_rpc_service_opts_t o = {0};
    o.workers = 1;
    o.bind_host = "127.0.0.1";
    o.port = "0";
    fl_rpc_service_t *busy = NULL;
    assert_fl_ok(fl_rpc_service_alloc(&o, &busy));
    char port[16];
    snprintf(port, sizeof port, "%d", fl_rpc_service_port(busy));
    o.port = port;
    cap_clear(); /* the first one's "listening" line (info) */
    fl_rpc_service_t *svc = NULL;
    assert_fl(FL_EADDRINUSE, fl_rpc_service_alloc(&o, &svc));
    assert_null(svc);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", fl_rpc_last_message());
    assert_true(strstr(msg, port) != NULL);
    cap_rec_t r[4];
    assert_int_equal(0, cap_select(FL_LOG_INFO, NULL, r, 4));

    /* At debug it is there, once, with the returned text. */
    assert_fl_ok(fl_log_set_trace("rpc"));
    assert_fl(FL_EADDRINUSE, fl_rpc_service_alloc(&o, &svc));
    assert_int_equal(0, cap_select(FL_LOG_INFO, NULL, r, 4));
    assert_int_equal(1, cap_select(FL_LOG_DEBUG, "rpc", r, 4));
    char want[600];
    snprintf(want, sizeof want, "could not create the service: %s", msg);
    assert_string_equal(want, r[0].message);

    assert_fl_ok(fl_log_set_trace(""));
    fl_log_set_level(FL_LOG_WARN);
    fl_log_set_handler(NULL, NULL);
    fl_test_service_end(busy);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_a_taken_port_range_is_returned_not_printed),
    };
    return FX_RUN(argc, argv, tests);
}
