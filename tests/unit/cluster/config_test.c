/*
 * config_test.c - the configuration (fling/config.h): defaults, getters,
 * every type and form of value, ranges, nested and flat keys.
 * config_file_test.c has files, overrides, the printout and the guide.
 */
#include "config_fixture.h"

static void test_defaults_are_flinks(void **state)
{
    (void)state;
    fl_config_t *cfg = new_config();
    assert_string_equal("localhost",
                        string_of(cfg, FL_CONFIG_JOBMANAGER_RPC_ADDRESS));
    assert_int_equal(6123, int_of(cfg, FL_CONFIG_JOBMANAGER_RPC_PORT));
    assert_int_equal(1, int_of(cfg, FL_CONFIG_TASKMANAGER_SLOTS));
    assert_int_equal(300000,
                     duration(cfg, FL_CONFIG_TASKMANAGER_REGISTRATION_TIMEOUT));
    assert_int_equal(10000, duration(cfg, FL_CONFIG_HEARTBEAT_INTERVAL));
    assert_int_equal(50000, duration(cfg, FL_CONFIG_HEARTBEAT_TIMEOUT));
    assert_int_equal(2, int_of(cfg, FL_CONFIG_HEARTBEAT_RPC_FAILURE_THRESHOLD));
    bool jitter = false;
    assert_fl_ok(
        fl_config_get_bool(cfg, FL_CONFIG_REGISTRATION_JITTER, &jitter));
    assert_true(jitter);
    assert_int_equal(100,
                     duration(cfg, FL_CONFIG_REGISTRATION_INITIAL_TIMEOUT));
    assert_int_equal(30000, duration(cfg, FL_CONFIG_REGISTRATION_MAX_TIMEOUT));
    assert_int_equal(10000, duration(cfg, FL_CONFIG_REGISTRATION_ERROR_DELAY));
    assert_int_equal(30000,
                     duration(cfg, FL_CONFIG_REGISTRATION_REFUSED_DELAY));
    assert_string_equal("NONE", string_of(cfg, FL_CONFIG_HA_TYPE));
    assert_string_equal("/default", string_of(cfg, FL_CONFIG_HA_CLUSTER_ID));
    assert_string_equal("", string_of(cfg, FL_CONFIG_HA_ZK_QUORUM));
    assert_string_equal("/flink", string_of(cfg, FL_CONFIG_HA_ZK_ROOT));
    assert_int_equal(60000, duration(cfg, FL_CONFIG_HA_ZK_SESSION_TIMEOUT));
    assert_int_equal(15000, duration(cfg, FL_CONFIG_HA_ZK_CONNECTION_TIMEOUT));
    uint64_t frame = 0;
    assert_fl_ok(fl_config_get_size(cfg, FL_CONFIG_RPC_FRAMESIZE, &frame));
    assert_int_equal(10485760, frame);
    assert_int_equal(10000, duration(cfg, FL_CONFIG_RPC_ASK_TIMEOUT));
    assert_string_equal("localhost",
                        string_of(cfg, FL_CONFIG_TASKMANAGER_HOST));
    assert_string_equal("0", string_of(cfg, FL_CONFIG_TASKMANAGER_RPC_PORT));
    assert_string_equal("", string_of(cfg, FL_CONFIG_TASKMANAGER_RESOURCE_ID));
    assert_int_equal(300000, duration(cfg, FL_CONFIG_SLOT_REQUEST_TIMEOUT));
    assert_int_equal(1, int_of(cfg, FL_CONFIG_RESTART_ATTEMPTS));
    assert_int_equal(1000, duration(cfg, FL_CONFIG_RESTART_DELAY));
    assert_int_equal(30000,
                     duration(cfg, FL_CONFIG_TASK_CANCELLATION_INTERVAL));
    assert_int_equal(180000,
                     duration(cfg, FL_CONFIG_TASK_CANCELLATION_TIMEOUT));
    assert_int_equal(1000, int_of(cfg, FL_CONFIG_JOBSTORE_MAX_CAPACITY));
    assert_int_equal(3600000,
                     duration(cfg, FL_CONFIG_JOBSTORE_EXPIRATION_TIME));
    assert_string_equal("", string_of(cfg, FL_CONFIG_HA_STORAGE_DIR));
    /* The security.ssl.* keys' defaults: cluster_tls_opts_test. */
    assert_int_equal(39, fl_config_key_count());
    assert_null(fl_config_key_at(39));
    for (size_t i = 0; i < fl_config_key_count(); i++)
        assert_int_equal(FL_CONFIG_DEFAULT,
                         source_of(cfg, fl_config_key_at(i)->name));
    assert_fl_ok(fl_config_validate(cfg, NULL, 0));
    fl_config_free(cfg);
    fl_config_free(NULL);
}

static void test_getters_refuse_unknown_keys_and_other_types(void **state)
{
    (void)state;
    fl_config_t *cfg = new_config();
    int64_t v = 7;
    assert_fl(FL_ENOENT, fl_config_get_int(cfg, "no.such.key", &v));
    assert_fl(FL_EINVAL,
              fl_config_get_int(cfg, FL_CONFIG_HEARTBEAT_INTERVAL, &v));
    assert_int_equal(7, v);
    const char *s = "x";
    assert_fl(FL_EINVAL,
              fl_config_get_string(cfg, FL_CONFIG_RPC_FRAMESIZE, &s));
    assert_fl(FL_ENOENT, fl_config_get_source(cfg, "nope", NULL, NULL));
    assert_string_equal("duration", fl_config_type_name(FL_CONFIG_DURATION));
    assert_string_equal("size", fl_config_type_name(FL_CONFIG_SIZE));
    assert_string_equal("unknown", fl_config_type_name((fl_config_type_t)9));
    fl_config_free(cfg);
}

/* fl_config_get_text gives each value as a file writes it, truncated to
 * the buffer. */
static void test_get_text_writes_values_as_a_file_does(void **state)
{
    (void)state;
    fl_config_t *cfg = new_config();
    char buf[64], err[256];
    assert_fl(FL_OK, fl_config_get_text(cfg, FL_CONFIG_HEARTBEAT_TIMEOUT, buf,
                                        sizeof buf));
    assert_string_equal("50 s", buf);
    assert_fl(FL_OK, fl_config_set(cfg, FL_CONFIG_RPC_FRAMESIZE, "1536", err,
                                   sizeof err));
    assert_fl(FL_OK, fl_config_get_text(cfg, FL_CONFIG_RPC_FRAMESIZE, buf,
                                        sizeof buf));
    assert_string_equal("1536 b", buf);
    assert_fl(FL_OK, fl_config_get_text(cfg, FL_CONFIG_HA_CLUSTER_ID, buf, 4));
    assert_string_equal("/de", buf);
    assert_fl(FL_OK, fl_config_get_text(cfg, FL_CONFIG_TASKMANAGER_RPC_PORT,
                                        buf, sizeof buf));
    assert_string_equal("0", buf);
    assert_fl(FL_ENOENT, fl_config_get_text(cfg, "no.such.key", buf, 8));
    assert_fl(FL_EINVAL,
              fl_config_get_text(cfg, FL_CONFIG_HEARTBEAT_TIMEOUT, buf, 0));
    fl_config_free(cfg);
}

/* ---- typed values ----------------------------------------------------------
 */

static void test_durations_take_flinks_forms(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } cases[] = {
        {"10 s", 10000},       {"500 ms", 500},     {"5 min", 300000},
        {"1 h", 3600000},      {"2 d", 172800000},  {"250", 250},
        {"10s", 10000},        {"3 MIN", 180000},   {" 7 s ", 7000},
        {"1 minute", 60000},   {"2 seconds", 2000}, {"1m", 60000},
        {"4 hours", 14400000}, {"1 day", 86400000}, {"0 ms", 0},
    };
    fl_config_t *cfg = new_config();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[ERRCAP] = "";
        assert_fl_ok(fl_config_set(cfg, FL_CONFIG_REGISTRATION_ERROR_DELAY,
                                   cases[i].text, err, sizeof err));
        assert_string_equal("", err);
        assert_int_equal(cases[i].ms,
                         duration(cfg, FL_CONFIG_REGISTRATION_ERROR_DELAY));
    }
    assert_int_equal(FL_CONFIG_OVERRIDE,
                     source_of(cfg, FL_CONFIG_REGISTRATION_ERROR_DELAY));
    fl_config_free(cfg);
}

static void test_bad_durations_name_key_value_and_form(void **state)
{
    (void)state;
    static const char *const bad[] = {"10 parsecs",
                                      "-1 s",
                                      "1.5 s",
                                      "",
                                      "s",
                                      "99999999999999999999",
                                      "9223372036854775807 d",
                                      "10 ns"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char msg[ERRCAP];
        snprintf(msg, sizeof msg,
                 "Bad value '%s' for 'heartbeat.interval' (-D): expected "
                 "duration > 0, " DURATION_FORM ".",
                 bad[i]);
        expect_set_refused(FL_CONFIG_HEARTBEAT_INTERVAL, bad[i], msg);
    }
}

static void test_duration_ranges_are_checked_per_key(void **state)
{
    (void)state;
    expect_set_refused(FL_CONFIG_REGISTRATION_INITIAL_TIMEOUT, "0 ms",
                       "Bad value '0 ms' for "
                       "'cluster.registration.initial-timeout' (-D): expected "
                       "duration > 0.");
    expect_set_refused(FL_CONFIG_REGISTRATION_MAX_TIMEOUT, "0",
                       "Bad value '0' for 'cluster.registration.max-timeout' "
                       "(-D): expected duration > 0.");
    expect_set_refused(FL_CONFIG_HEARTBEAT_INTERVAL, "0 s",
                       "Bad value '0 s' for 'heartbeat.interval' (-D): "
                       "expected duration > 0.");
    /* The delays may be 0. */
    fl_config_t *cfg = new_config();
    assert_fl_ok(
        fl_config_set(cfg, FL_CONFIG_REGISTRATION_REFUSED_DELAY, "0", NULL, 0));
    assert_int_equal(0, duration(cfg, FL_CONFIG_REGISTRATION_REFUSED_DELAY));
    fl_config_free(cfg);
}

/* The watchdog's keys stop at a day, which they take; a longer one, up
 * to the largest number of ms, is refused with the range. */
static void test_cancellation_keys_stop_at_a_day(void **state)
{
    (void)state;
    fl_config_t *cfg = new_config();
    assert_fl_ok(fl_config_set(cfg, FL_CONFIG_TASK_CANCELLATION_INTERVAL,
                               "24 h", NULL, 0));
    assert_int_equal(86400000,
                     duration(cfg, FL_CONFIG_TASK_CANCELLATION_INTERVAL));
    assert_fl_ok(fl_config_set(cfg, FL_CONFIG_TASK_CANCELLATION_TIMEOUT, "1 d",
                               NULL, 0));
    assert_int_equal(86400000,
                     duration(cfg, FL_CONFIG_TASK_CANCELLATION_TIMEOUT));
    fl_config_free(cfg);
    expect_set_refused(FL_CONFIG_TASK_CANCELLATION_INTERVAL,
                       "9223372036854775807 ms",
                       "Bad value '9223372036854775807 ms' for "
                       "'task.cancellation.interval' (-D): expected duration "
                       "1 ms..24 h.");
    expect_set_refused(FL_CONFIG_TASK_CANCELLATION_INTERVAL, "0 ms",
                       "Bad value '0 ms' for 'task.cancellation.interval' "
                       "(-D): expected duration 1 ms..24 h.");
    expect_set_refused(FL_CONFIG_TASK_CANCELLATION_TIMEOUT, "86400001",
                       "Bad value '86400001' for 'task.cancellation.timeout' "
                       "(-D): expected duration 0 ms..24 h.");
}

static void test_sizes_take_flinks_forms(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t bytes;
    } cases[] = {
        {"10 mb", 10485760},
        {"64 kb", 65536},
        {"10485760b", 10485760},
        {"100", 100},
        {"1 g", 1073741824},
        {"2 TB", 2199023255552ull},
        {"7 bytes", 7},
        {"3 mebibytes", 3145728},
        {"1k", 1024},
    };
    fl_config_t *cfg = new_config();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 0;
        assert_fl_ok(fl_config_set(cfg, FL_CONFIG_RPC_FRAMESIZE, cases[i].text,
                                   NULL, 0));
        assert_fl_ok(fl_config_get_size(cfg, FL_CONFIG_RPC_FRAMESIZE, &v));
        assert_int_equal(cases[i].bytes, v);
    }
    fl_config_free(cfg);
    expect_set_refused(FL_CONFIG_RPC_FRAMESIZE, "10 xb",
                       "Bad value '10 xb' for 'pekko.framesize' (-D): "
                       "expected size > 0, " SIZE_FORM ".");
    expect_set_refused(FL_CONFIG_RPC_FRAMESIZE, "0 kb",
                       "Bad value '0 kb' for 'pekko.framesize' (-D): "
                       "expected size > 0.");
}

static void test_ints_bools_and_choices(void **state)
{
    (void)state;
    fl_config_t *cfg = new_config();
    assert_fl_ok(
        fl_config_set(cfg, FL_CONFIG_JOBMANAGER_RPC_PORT, " 6124 ", NULL, 0));
    assert_int_equal(6124, int_of(cfg, FL_CONFIG_JOBMANAGER_RPC_PORT));
    assert_fl_ok(fl_config_set(cfg, FL_CONFIG_HEARTBEAT_RPC_FAILURE_THRESHOLD,
                               "-1", NULL, 0));
    assert_int_equal(-1,
                     int_of(cfg, FL_CONFIG_HEARTBEAT_RPC_FAILURE_THRESHOLD));
    bool b = true;
    assert_fl_ok(
        fl_config_set(cfg, FL_CONFIG_REGISTRATION_JITTER, "FALSE", NULL, 0));
    assert_fl_ok(fl_config_get_bool(cfg, FL_CONFIG_REGISTRATION_JITTER, &b));
    assert_false(b);
    assert_fl_ok(
        fl_config_set(cfg, FL_CONFIG_REGISTRATION_JITTER, "true", NULL, 0));
    assert_fl_ok(fl_config_get_bool(cfg, FL_CONFIG_REGISTRATION_JITTER, &b));
    assert_true(b);
    /* A choice is kept as the table spells it. */
    assert_fl_ok(fl_config_set(cfg, FL_CONFIG_HA_TYPE, "ZooKeeper", NULL, 0));
    assert_string_equal("zookeeper", string_of(cfg, FL_CONFIG_HA_TYPE));
    fl_config_free(cfg);

    expect_set_refused(FL_CONFIG_JOBMANAGER_RPC_PORT, "70000",
                       "Bad value '70000' for 'jobmanager.rpc.port' (-D): "
                       "expected int 0..65535.");
    expect_set_refused(FL_CONFIG_JOBMANAGER_RPC_PORT, "61x",
                       "Bad value '61x' for 'jobmanager.rpc.port' (-D): "
                       "expected int 0..65535, an integer.");
    expect_set_refused(FL_CONFIG_HEARTBEAT_RPC_FAILURE_THRESHOLD, "0",
                       "Bad value '0' for 'heartbeat.rpc-failure-threshold' "
                       "(-D): expected -1 or int >= 1.");
    expect_set_refused(FL_CONFIG_TASKMANAGER_SLOTS, "0",
                       "Bad value '0' for 'taskmanager.numberOfTaskSlots' "
                       "(-D): expected int >= 1.");
    expect_set_refused(FL_CONFIG_REGISTRATION_JITTER, "yes",
                       "Bad value 'yes' for 'cluster.registration.jitter' "
                       "(-D): expected true or false.");
    expect_set_refused(FL_CONFIG_HA_TYPE, "etcd",
                       "Bad value 'etcd' for 'high-availability.type' (-D): "
                       "expected NONE or zookeeper.");
}

/* ---- the file
 * ---------------------------------------------------------------- */

static void test_nested_and_flat_keys_mix(void **state)
{
    (void)state;
    static const char yaml[] =
        "# a Flink-style config.yaml\n"
        "jobmanager:\n"
        "  rpc:\n"
        "    address: jm.example.com\n"
        "    port: 7000\n"
        "heartbeat.interval: 2 s\n"
        "heartbeat:\n"
        "  timeout: 8 s\n"
        "high-availability:\n"
        "  type: zookeeper\n"
        "  zookeeper.quorum: \"zk1:2181,zk2:2181\"\n"
        "pekko: {framesize: 10485760b, ask.timeout: 3 s}\n";
    fl_config_t *cfg = new_config();
    char err[ERRCAP] = "";
    assert_fl_ok(fl_config_load_string(cfg, yaml, strlen(yaml), "conf.yaml",
                                       err, sizeof err));
    assert_string_equal("", err);
    assert_string_equal("jm.example.com",
                        string_of(cfg, FL_CONFIG_JOBMANAGER_RPC_ADDRESS));
    assert_int_equal(7000, int_of(cfg, FL_CONFIG_JOBMANAGER_RPC_PORT));
    assert_int_equal(2000, duration(cfg, FL_CONFIG_HEARTBEAT_INTERVAL));
    assert_int_equal(8000, duration(cfg, FL_CONFIG_HEARTBEAT_TIMEOUT));
    assert_string_equal("zookeeper", string_of(cfg, FL_CONFIG_HA_TYPE));
    assert_string_equal("zk1:2181,zk2:2181",
                        string_of(cfg, FL_CONFIG_HA_ZK_QUORUM));
    assert_int_equal(3000, duration(cfg, FL_CONFIG_RPC_ASK_TIMEOUT));
    fl_config_source_t src;
    const char *origin = NULL;
    assert_fl_ok(fl_config_get_source(cfg, FL_CONFIG_JOBMANAGER_RPC_PORT, &src,
                                      &origin));
    assert_int_equal(FL_CONFIG_FILE, src);
    assert_string_equal("conf.yaml:5", origin);
    assert_fl_ok(
        fl_config_get_source(cfg, FL_CONFIG_RPC_ASK_TIMEOUT, &src, &origin));
    assert_string_equal("conf.yaml:12", origin);
    assert_int_equal(FL_CONFIG_DEFAULT,
                     source_of(cfg, FL_CONFIG_TASKMANAGER_SLOTS));
    assert_fl_ok(fl_config_validate(cfg, err, sizeof err));
    fl_config_free(cfg);
}

/* The last record logged, as "level component message k=v ...". */
int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_defaults_are_flinks),
        FL_TEST(test_getters_refuse_unknown_keys_and_other_types),
        FL_TEST(test_get_text_writes_values_as_a_file_does),
        FL_TEST(test_durations_take_flinks_forms),
        FL_TEST(test_bad_durations_name_key_value_and_form),
        FL_TEST(test_duration_ranges_are_checked_per_key),
        FL_TEST(test_cancellation_keys_stop_at_a_day),
        FL_TEST(test_sizes_take_flinks_forms),
        FL_TEST(test_ints_bools_and_choices),
        FL_TEST(test_nested_and_flat_keys_mix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
