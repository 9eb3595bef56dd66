/*
 * cluster_opts_test.c - the cluster utilities' options from a
 * configuration (fling/cluster.h): the registration's four durations and
 * its jitter, the heartbeat's interval, timeout and threshold, the
 * high-availability options and the JobManager's address; Flink's
 * defaults from an empty config; a config that does not validate gives
 * no options, and a bad value names its key, its value and its origin.
 */
#include "fl_test.h"

#include <fling/cluster.h>

#include <stdio.h>
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

/* cfg with key set to value as an override ("-D"), or the test fails. */
static void set(fl_config_t *cfg, const char *key, const char *value)
{
    char err[512] = "";
    if (fl_config_set(cfg, key, value, err, sizeof err) != FL_OK)
        fail_msg("set %s=%s: %s", key, value, err);
}

static void test_ha_defaults_are_standalone(void **state)
{
    (void)state;
    fl_config_t *cfg = config_of("");
    fl_ha_opts_t o;
    memset(&o, 0xff, sizeof o);
    assert_fl_ok(fl_cluster_ha_opts(cfg, &o, NULL, 0));
    assert_int_equal(FL_HA_NONE, o.mode);
    assert_null(o.standalone_address);
    assert_string_equal("", o.zk_quorum);
    assert_string_equal("/flink", o.zk_root);
    /* Flink's "/default" without its '/': the leader code takes a name. */
    assert_string_equal("default", o.cluster_id);
    assert_int_equal(FL_HA_ZK_DEFAULT_SESSION_TIMEOUT_MS,
                     o.zk_session_timeout_ms);
    fl_config_free(cfg);
}

static void test_ha_zookeeper_from_the_file(void **state)
{
    (void)state;
    fl_config_t *cfg =
        config_of("high-availability:\n"
                  "  type: ZooKeeper\n"
                  "  cluster-id: prod-1\n"
                  "  zookeeper:\n"
                  "    quorum: zk1:2181,10.0.0.2:2182,[::1]:2183\n"
                  "    path.root: /fling/ha\n"
                  "    client.session-timeout: 4 s\n");
    fl_ha_opts_t o = {0};
    char why[512] = "";
    assert_fl_ok(fl_cluster_ha_opts(cfg, &o, why, sizeof why));
    assert_string_equal("", why);
    assert_int_equal(FL_HA_ZOOKEEPER, o.mode);
    assert_null(o.standalone_address);
    assert_string_equal("zk1:2181,10.0.0.2:2182,[::1]:2183", o.zk_quorum);
    assert_string_equal("/fling/ha", o.zk_root);
    assert_string_equal("prod-1", o.cluster_id);
    assert_int_equal(4000, o.zk_session_timeout_ms);
    /* The strings are cfg's own. */
    const char *quorum = NULL;
    assert_fl_ok(fl_config_get_string(cfg, FL_CONFIG_HA_ZK_QUORUM, &quorum));
    assert_ptr_equal(quorum, o.zk_quorum);
    fl_config_free(cfg);
}

static void test_ha_zookeeper_without_a_quorum_names_the_key(void **state)
{
    (void)state;
    fl_config_t *cfg = config_of("high-availability.type: zookeeper\n");
    fl_ha_opts_t o = {.mode = FL_HA_NONE, .zk_root = "/kept"};
    char why[512];
    assert_fl(FL_EINVAL, fl_cluster_ha_opts(cfg, &o, why, sizeof why));
    assert_string_equal("high-availability.type is zookeeper but "
                        "high-availability.zookeeper.quorum is empty; name "
                        "the ZooKeeper servers as host:port,host:port.",
                        why);
    assert_int_equal(FL_HA_NONE, o.mode); /* untouched */
    assert_string_equal("/kept", o.zk_root);
    assert_fl(FL_EINVAL, fl_cluster_ha_opts(NULL, &o, why, sizeof why));
    assert_string_equal("fl_cluster_ha_opts: cfg and o are needed", why);
    assert_fl(FL_EINVAL, fl_cluster_ha_opts(cfg, NULL, NULL, 0));
    fl_config_free(cfg);
}

/* The reason fl_cluster_ha_opts gives for zookeeper mode with key=value
 * set by -D. */
static const char *ha_refusal(const char *key, const char *value, char *why,
                              size_t why_len)
{
    fl_config_t *cfg = config_of("high-availability.type: zookeeper\n"
                                 "high-availability.zookeeper.quorum: "
                                 "zk1:2181\n");
    set(cfg, key, value);
    fl_ha_opts_t o = {.zk_quorum = "kept"};
    why[0] = '\0';
    assert_fl(FL_EINVAL, fl_cluster_ha_opts(cfg, &o, why, why_len));
    assert_string_equal("kept", o.zk_quorum);
    fl_config_free(cfg);
    return why;
}

static void test_ha_bad_quorums_are_named(void **state)
{
    (void)state;
    char why[512];
    const char *q = FL_CONFIG_HA_ZK_QUORUM;
    assert_string_equal(
        "Bad value 'zk1' for 'high-availability.zookeeper.quorum' (-D): "
        "server 'zk1' is not host:port; write each server as host:port, "
        "e.g. zk1:2181.",
        ha_refusal(q, "zk1", why, sizeof why));
    assert_string_equal(
        "Bad value ':2181' for 'high-availability.zookeeper.quorum' (-D): "
        "server ':2181' is not host:port; write each server as host:port, "
        "e.g. zk1:2181.",
        ha_refusal(q, ":2181", why, sizeof why));
    assert_string_equal(
        "Bad value 'zk1:2181,,zk2:2181' for "
        "'high-availability.zookeeper.quorum' (-D): a server is missing "
        "between two commas; write host:port,host:port.",
        ha_refusal(q, "zk1:2181,,zk2:2181", why, sizeof why));
    assert_string_equal(
        "Bad value 'zk1:2181,' for 'high-availability.zookeeper.quorum' "
        "(-D): a server is missing between two commas; write "
        "host:port,host:port.",
        ha_refusal(q, "zk1:2181,", why, sizeof why));
    assert_string_equal(
        "Bad value 'zk1:2181, zk2:2181' for "
        "'high-availability.zookeeper.quorum' (-D): server ' zk2:2181' has "
        "a blank; write the servers without blanks, as host:port,host:port.",
        ha_refusal(q, "zk1:2181, zk2:2181", why, sizeof why));
    assert_string_equal(
        "Bad value 'zk1:2181/app' for 'high-availability.zookeeper.quorum' "
        "(-D): server 'zk1:2181/app' has a path; set the folder with "
        "high-availability.zookeeper.path.root instead.",
        ha_refusal(q, "zk1:2181/app", why, sizeof why));
    const char *ports[] = {"zk1:0", "zk1:65536", "zk1:21x",
                           "zk1:", "zk1:99999999999999999999"};
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        char want[512];
        snprintf(want, sizeof want,
                 "Bad value '%s' for 'high-availability.zookeeper.quorum' "
                 "(-D): server '%s' has port '%s'; a port is 1..65535, e.g. "
                 "zk1:2181.",
                 ports[i], ports[i], strchr(ports[i], ':') + 1);
        assert_string_equal(want, ha_refusal(q, ports[i], why, sizeof why));
    }
}

static void test_ha_bad_root_id_and_timeout_are_named(void **state)
{
    (void)state;
    char why[512];
    const char *roots[] = {"flink", "/", "/flink/", "/a//b"};
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        char want[512];
        snprintf(want, sizeof want,
                 "Bad value '%s' for 'high-availability.zookeeper.path.root' "
                 "(-D): %s; write e.g. /flink.",
                 roots[i],
                 i < 3 ? "a root is a ZooKeeper path that starts with '/' "
                         "and does not end with one"
                       : "a ZooKeeper path has no empty part between two "
                         "'/'");
        assert_string_equal(
            want, ha_refusal(FL_CONFIG_HA_ZK_ROOT, roots[i], why, sizeof why));
    }
    const char *ids[] = {"a/b", "/", "//x", "..", "prod 1"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char want[512];
        snprintf(want, sizeof want,
                 "Bad value '%s' for 'high-availability.cluster-id' (-D): a "
                 "cluster id is a name of letters, digits, '_', '-' and '.' "
                 "(one leading '/' is allowed); write e.g. /prod.",
                 ids[i]);
        assert_string_equal(
            want, ha_refusal(FL_CONFIG_HA_CLUSTER_ID, ids[i], why, sizeof why));
    }
    assert_string_equal(
        "Bad value '2592000000 ms' for "
        "'high-availability.zookeeper.client.session-timeout' (-D): "
        "ZooKeeper takes at most 2147483647 ms; give a shorter timeout, e.g. "
        "1 min.",
        ha_refusal(FL_CONFIG_HA_ZK_SESSION_TIMEOUT, "30 d", why, sizeof why));
    /* The origin of a file's value is its path and line. */
    fl_config_t *cfg = config_of("high-availability.type: zookeeper\n"
                                 "high-availability.zookeeper.quorum: zk1\n");
    fl_ha_opts_t o;
    assert_fl(FL_EINVAL, fl_cluster_ha_opts(cfg, &o, why, sizeof why));
    assert_string_equal(
        "Bad value 'zk1' for 'high-availability.zookeeper.quorum' (test:2): "
        "server 'zk1' is not host:port; write each server as host:port, "
        "e.g. zk1:2181.",
        why);
    fl_config_free(cfg);
}

static void test_ha_standalone_ignores_the_zookeeper_keys(void **state)
{
    (void)state;
    fl_config_t *cfg = config_of("high-availability.zookeeper.quorum: zk1\n"
                                 "high-availability.zookeeper.path.root: x\n"
                                 "high-availability.cluster-id: a/b\n");
    fl_ha_opts_t o;
    assert_fl_ok(fl_cluster_ha_opts(cfg, &o, NULL, 0));
    assert_int_equal(FL_HA_NONE, o.mode);
    assert_string_equal("a/b", o.cluster_id);
    fl_config_free(cfg);
}

static void test_jobmanager_address(void **state)
{
    (void)state;
    fl_config_t *cfg = config_of("");
    char buf[128], why[512] = "";
    assert_fl_ok(fl_cluster_jobmanager_address(cfg, "resourcemanager", buf,
                                               sizeof buf, why, sizeof why));
    assert_string_equal("fling.tcp://localhost:6123/resourcemanager", buf);
    assert_string_equal("", why);
    set(cfg, FL_CONFIG_JOBMANAGER_RPC_ADDRESS, "10.0.0.1");
    set(cfg, FL_CONFIG_JOBMANAGER_RPC_PORT, "7000");
    assert_fl_ok(fl_cluster_jobmanager_address(cfg, "resourcemanager_*", buf,
                                               sizeof buf, why, sizeof why));
    assert_string_equal("fling.tcp://10.0.0.1:7000/resourcemanager_*", buf);
    set(cfg, FL_CONFIG_JOBMANAGER_RPC_ADDRESS, "::1");
    assert_fl_ok(fl_cluster_jobmanager_address(cfg, "rm", buf, sizeof buf, why,
                                               sizeof why));
    assert_string_equal("fling.tcp://[::1]:7000/rm", buf);
    set(cfg, FL_CONFIG_JOBMANAGER_RPC_ADDRESS, "[fe80::1]");
    assert_fl_ok(fl_cluster_jobmanager_address(cfg, "rm", buf, sizeof buf, why,
                                               sizeof why));
    assert_string_equal("fling.tcp://[fe80::1]:7000/rm", buf);

    /* A buffer of exactly the length and its NUL is enough; one less is
     * refused and buf is untouched. */
    size_t need = strlen("fling.tcp://[fe80::1]:7000/rm") + 1;
    char small[64];
    memset(small, 'x', sizeof small);
    assert_fl_ok(
        fl_cluster_jobmanager_address(cfg, "rm", small, need, why, sizeof why));
    assert_string_equal("fling.tcp://[fe80::1]:7000/rm", small);
    memset(small, 'x', sizeof small);
    assert_fl(FL_EINVAL, fl_cluster_jobmanager_address(
                             cfg, "rm", small, need - 1, why, sizeof why));
    assert_string_equal("fl_cluster_jobmanager_address: the address of 'rm' "
                        "needs 30 bytes and buf has 29; give a larger buf",
                        why);
    assert_int_equal('x', small[0]);
    fl_config_free(cfg);
}

static void test_jobmanager_address_refusals(void **state)
{
    (void)state;
    fl_config_t *cfg = config_of("jobmanager.rpc.port: 0\n");
    char buf[128] = "kept", why[512];
    assert_fl(FL_EINVAL, fl_cluster_jobmanager_address(
                             cfg, "rm", buf, sizeof buf, why, sizeof why));
    assert_string_equal(
        "Bad value '0' for 'jobmanager.rpc.port' (test:1): port 0 lets the "
        "JobManager listen on any port, so no address of it can be known "
        "beforehand; set the port it listens on, e.g. 6123.",
        why);
    set(cfg, FL_CONFIG_JOBMANAGER_RPC_PORT, "6123");
    const char *hosts[] = {"", "jm host", "jm/x", "[::1", "[zz::1]"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        set(cfg, FL_CONFIG_JOBMANAGER_RPC_ADDRESS, hosts[i]);
        char want[512];
        snprintf(want, sizeof want,
                 "Bad value '%s' for 'jobmanager.rpc.address' (-D): expected "
                 "the JobManager's host name or IP address ([A-Za-z0-9._-], "
                 "or an IPv6 address); write e.g. jm.example.com or "
                 "10.0.0.1.",
                 hosts[i]);
        assert_fl(FL_EINVAL, fl_cluster_jobmanager_address(
                                 cfg, "rm", buf, sizeof buf, why, sizeof why));
        assert_string_equal(want, why);
    }
    set(cfg, FL_CONFIG_JOBMANAGER_RPC_ADDRESS, "jm");
    char long_id[202];
    memset(long_id, 'a', 201);
    long_id[201] = '\0';
    const char *ids[] = {"", "a b", "a/b", long_id};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char want[512];
        snprintf(want, sizeof want,
                 "fl_cluster_jobmanager_address: endpoint id '%s' is not an "
                 "id; ids are 1..200 bytes of [A-Za-z0-9_.-] ('*' for a "
                 "pattern)",
                 ids[i]);
        assert_fl(FL_EINVAL,
                  fl_cluster_jobmanager_address(cfg, ids[i], buf, sizeof buf,
                                                why, sizeof why));
        assert_string_equal(want, why);
    }
    assert_string_equal("kept", buf);
    assert_fl(FL_EINVAL, fl_cluster_jobmanager_address(
                             NULL, "rm", buf, sizeof buf, why, sizeof why));
    assert_string_equal("fl_cluster_jobmanager_address: cfg, endpoint_id and "
                        "buf are needed",
                        why);
    fl_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_defaults_are_flinks),
        FL_TEST(test_the_files_values_reach_the_options),
        FL_TEST(test_a_config_that_does_not_validate_gives_none),
        FL_TEST(test_ha_defaults_are_standalone),
        FL_TEST(test_ha_zookeeper_from_the_file),
        FL_TEST(test_ha_zookeeper_without_a_quorum_names_the_key),
        FL_TEST(test_ha_bad_quorums_are_named),
        FL_TEST(test_ha_bad_root_id_and_timeout_are_named),
        FL_TEST(test_ha_standalone_ignores_the_zookeeper_keys),
        FL_TEST(test_jobmanager_address),
        FL_TEST(test_jobmanager_address_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
