/*
 * cluster_opts_test.c - the cluster utilities' options from a
 * configuration (fling/cluster.h): the registration's four durations and
 * its jitter, the heartbeat's interval, timeout and threshold; Flink's
 * defaults from an empty config; a config that does not validate gives
 * no options.
 */
#include "fl_test.h"

#include <fling/cluster.h>

#include <string.h>

static fl_config_t *config_of(const char *yaml)
{
    fl_config_t *cfg = fl_config_alloc();
    assert_non_null(cfg);
    char err[512] = "";
    if (fl_config_load_string(cfg, yaml, strlen(yaml), "test", err,
                              sizeof err) != FL_OK)
        fail_msg("load: %s", err);
    return cfg;
}

static void test_defaults_are_flinks(void **state)
{
    (void)state;
    fl_config_t *cfg = config_of("");
    fl_registration_opts_t r;
    memset(&r, 0xff, sizeof r);
    assert_fl_ok(fl_cluster_registration_opts(cfg, &r, NULL, 0));
    assert_int_equal(100, r.initial_timeout_ms);
    assert_int_equal(30000, r.max_timeout_ms);
    assert_int_equal(10000, r.error_delay_ms);
    assert_int_equal(30000, r.refused_delay_ms);
    assert_true(r.jitter == FL_REGISTRATION_JITTER);
    assert_null(r.random);

    fl_heartbeat_opts_t h = {.id = "me", .role = FL_HEARTBEAT_SENDER};
    assert_fl_ok(fl_cluster_heartbeat_opts(cfg, &h, NULL, 0));
    assert_int_equal(FL_HEARTBEAT_DEFAULT_INTERVAL_MS, h.interval_ms);
    assert_int_equal(FL_HEARTBEAT_DEFAULT_TIMEOUT_MS, h.timeout_ms);
    assert_int_equal(FL_HEARTBEAT_DEFAULT_FAILURE_THRESHOLD,
                     h.failure_threshold);
    /* What the config does not know is left as the caller set it. */
    assert_string_equal("me", h.id);
    assert_int_equal(FL_HEARTBEAT_SENDER, h.role);
    fl_config_free(cfg);
}

static void test_the_files_values_reach_the_options(void **state)
{
    (void)state;
    fl_config_t *cfg = config_of("cluster:\n"
                                 "  registration:\n"
                                 "    initial-timeout: 50 ms\n"
                                 "    max-timeout: 2 s\n"
                                 "    error-delay: 0 ms\n"
                                 "    refused-registration-delay: 1 min\n"
                                 "    jitter: false\n"
                                 "heartbeat.interval: 1 s\n"
                                 "heartbeat.timeout: 5 s\n"
                                 "heartbeat.rpc-failure-threshold: -1\n");
    fl_registration_opts_t r;
    assert_fl_ok(fl_cluster_registration_opts(cfg, &r, NULL, 0));
    assert_int_equal(50, r.initial_timeout_ms);
    assert_int_equal(2000, r.max_timeout_ms);
    assert_int_equal(0, r.error_delay_ms);
    assert_int_equal(60000, r.refused_delay_ms);
    assert_true(r.jitter == 0.0);
    fl_heartbeat_opts_t h = {0};
    assert_fl_ok(fl_cluster_heartbeat_opts(cfg, &h, NULL, 0));
    assert_int_equal(1000, h.interval_ms);
    assert_int_equal(5000, h.timeout_ms);
    assert_int_equal(-1, h.failure_threshold);
    fl_config_free(cfg);
}

static void test_a_config_that_does_not_validate_gives_none(void **state)
{
    (void)state;
    fl_config_t *cfg = config_of("heartbeat.interval: 60 s\n");
    fl_heartbeat_opts_t h = {.interval_ms = 7, .timeout_ms = 8};
    char why[512];
    assert_fl(FL_EINVAL, fl_cluster_heartbeat_opts(cfg, &h, why, sizeof why));
    assert_string_equal(
        "heartbeat.interval (60000 ms) is longer than heartbeat.timeout "
        "(50000 ms): every target would time out between two heartbeats; "
        "make the interval at most the timeout.",
        why);
    assert_int_equal(7, h.interval_ms); /* untouched */
    assert_int_equal(8, h.timeout_ms);
    fl_registration_opts_t r = {.initial_timeout_ms = 9};
    assert_fl(FL_EINVAL,
              fl_cluster_registration_opts(cfg, &r, why, sizeof why));
    assert_int_equal(9, r.initial_timeout_ms);
    assert_fl(FL_EINVAL,
              fl_cluster_registration_opts(NULL, &r, why, sizeof why));
    assert_string_equal("fl_cluster_registration_opts: cfg and o are needed",
                        why);
    fl_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_defaults_are_flinks),
        FL_TEST(test_the_files_values_reach_the_options),
        FL_TEST(test_a_config_that_does_not_validate_gives_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
