/*
 * config_file_test.c - the configuration (fling/config.h) from files and
 * -D overrides: each error message, nothing applied on error, the
 * printout that loads back, validation across keys, out of memory, and
 * the guide's table of keys.
 */
#include "config_fixture.h"

static char last_log[512];

static void capture_log(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
    int n = snprintf(last_log, sizeof last_log, "%d %s %s", (int)rec->level,
                     rec->component_name, rec->message);
    for (size_t i = 0; i < rec->nfields && n > 0 && (size_t)n < sizeof last_log;
         i++)
        n += snprintf(last_log + n, sizeof last_log - (size_t)n, " %s=%s",
                      rec->fields[i].key, rec->fields[i].value);
}

static void test_a_loaded_file_is_logged_at_info(void **state)
{
    (void)state;
    char path[64];
    write_temp(path, "heartbeat:\n  interval: 2 s\n  timeout: 8 s\n");
    fl_log_level_t was = fl_log_get_level();
    fl_log_set_level(FL_LOG_INFO);
    fl_log_set_handler(capture_log, NULL);
    last_log[0] = '\0';
    fl_config_t *cfg = new_config();
    assert_fl_ok(fl_config_load_file(cfg, path, NULL, 0));
    fl_log_set_handler(NULL, NULL);
    fl_log_set_level(was);
    char expect[256];
    snprintf(expect, sizeof expect,
             "%d cluster Loaded the configuration file=%s keys=2",
             (int)FL_LOG_INFO, path);
    assert_string_equal(expect, last_log);
    fl_config_free(cfg);
    unlink(path);
}

static void test_empty_documents_set_nothing(void **state)
{
    (void)state;
    static const char *const docs[] = {"", "# only a comment\n", "---\n",
                                       "{}\n"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        fl_config_t *cfg = new_config();
        assert_fl_ok(fl_config_load_string(cfg, docs[i], strlen(docs[i]), NULL,
                                           NULL, 0));
        assert_int_equal(FL_CONFIG_DEFAULT,
                         source_of(cfg, FL_CONFIG_HEARTBEAT_INTERVAL));
        fl_config_free(cfg);
    }
}

/* Loads yaml into a fresh config, expects code and exactly msg, and that
 * nothing was applied. */
static void expect_load_refused(const char *yaml, int code, const char *msg)
{
    fl_config_t *cfg = new_config();
    char *before = print_to_string(cfg);
    char err[ERRCAP] = "";
    assert_fl(code, fl_config_load_string(cfg, yaml, strlen(yaml), "conf.yaml",
                                          err, sizeof err));
    assert_string_equal(msg, err);
    char *after = print_to_string(cfg);
    assert_string_equal(before, after);
    free(before);
    free(after);
    fl_config_free(cfg);
}

static void test_file_errors_say_where_and_apply_nothing(void **state)
{
    (void)state;
    expect_load_refused("heartbeat.interval: 1 s\nheartbeat.intervall: 2 s\n",
                        FL_EINVAL,
                        "Unknown configuration key 'heartbeat.intervall' "
                        "(conf.yaml:2); did you mean 'heartbeat.interval'?");
    expect_load_refused("jobmanager:\n  rpc:\n    adress: x\n", FL_EINVAL,
                        "Unknown configuration key 'jobmanager.rpc.adress' "
                        "(conf.yaml:3); did you mean "
                        "'jobmanager.rpc.address'?");
    expect_load_refused("heartbeat.timeout: 1 s\nheartbeat.interval: 10 "
                        "parsecs\n",
                        FL_EINVAL,
                        "Bad value '10 parsecs' for 'heartbeat.interval' "
                        "(conf.yaml:2): expected duration > 0, " DURATION_FORM
                        ".");
    expect_load_refused(
        "heartbeat:\n  interval: 1 s\nheartbeat.interval: 2 s\n", FL_EINVAL,
        "Configuration key 'heartbeat.interval' is set twice, "
        "at conf.yaml:2 and at conf.yaml:3; keep one of them.");
    expect_load_refused("heartbeat.interval: 1 s\nheartbeat.timeout: 2 s: 3\n",
                        FL_EINVAL,
                        "Configuration file 'conf.yaml' is not valid YAML at "
                        "line 2, column 23: mapping values are not allowed in "
                        "this context.");
    expect_load_refused("heartbeat.interval:\n", FL_EINVAL,
                        "Configuration key 'heartbeat.interval' (conf.yaml:1) "
                        "has no value; give it one or remove the line.");
    expect_load_refused("high-availability.zookeeper.quorum: [a, b]\n",
                        FL_EINVAL,
                        "Configuration file 'conf.yaml' has a list at line 1, "
                        "column 37; fling's configuration is a map of keys to "
                        "single values.");
    expect_load_refused("just a string\n", FL_EINVAL,
                        "Configuration file 'conf.yaml' has a single value at "
                        "the top at line 1, column 1; fling's configuration is "
                        "a map of keys to single values.");
    expect_load_refused(
        "heartbeat.interval: 1 s\n---\nheartbeat.timeout: 2 s\n", FL_EINVAL,
        "Configuration file 'conf.yaml' has a second document "
        "at line 2, column 1; fling's configuration is a map "
        "of keys to single values.");
}

static void test_missing_file_names_the_path(void **state)
{
    (void)state;
    fl_config_t *cfg = new_config();
    char err[ERRCAP] = "";
    assert_fl(FL_ENOENT, fl_config_load_file(cfg, "/nonexistent/fling.yaml",
                                             err, sizeof err));
    assert_string_equal("Cannot read configuration file "
                        "'/nonexistent/fling.yaml': No such file or directory.",
                        err);
    assert_fl(FL_ESYSTEM, fl_config_load_file(cfg, "/tmp", err, sizeof err));
    assert_string_equal("Cannot read configuration file '/tmp': Is a "
                        "directory.",
                        err);
    fl_config_free(cfg);
}

static void test_strings_print_back_exactly(void **state)
{
    (void)state;
    /* Quotes, a backslash, a tab, a newline, NEL, U+2028, U+FEFF, a
     * C1 control and plain UTF-8. */
    static const char text[] = "a\"b\\c\td\ne\xc2\x85"
                               "f\xe2\x80\xa8"
                               "g\xef\xbb\xbfh\xc2\x9fi \xc3\xa9\xe6\x97\xa5";
    fl_config_t *cfg = new_config();
    assert_fl_ok(fl_config_set(cfg, FL_CONFIG_HA_CLUSTER_ID, text, NULL, 0));
    char *out = print_to_string(cfg);
    assert_non_null(strstr(out,
                           "high-availability.cluster-id: "
                           "\"a\\\"b\\\\c\\u0009d\\u000ae\\u0085f"
                           "\\u2028g\\ufeffh\\u009fi \xc3\xa9\xe6\x97\xa5\"  "
                           "# override\n"));
    fl_config_t *back = new_config();
    char err[ERRCAP] = "";
    assert_fl_ok(fl_config_load_string(back, out, strlen(out), "print", err,
                                       sizeof err));
    assert_string_equal(text, string_of(back, FL_CONFIG_HA_CLUSTER_ID));
    free(out);
    fl_config_free(back);
    fl_config_free(cfg);
    expect_set_refused(FL_CONFIG_HA_CLUSTER_ID, "bad\xff",
                       "Bad value for 'high-availability.cluster-id' (-D): it "
                       "is not valid UTF-8; write the text in UTF-8.");
    expect_set_refused(FL_CONFIG_HA_CLUSTER_ID, "\xc0\xaf",
                       "Bad value for 'high-availability.cluster-id' (-D): it "
                       "is not valid UTF-8; write the text in UTF-8.");
}

/* ---- overrides
 * ------------------------------------------------------------------ */

static void test_file_then_overrides_then_print(void **state)
{
    (void)state;
    char path[64];
    write_temp(path, "heartbeat:\n  interval: 2 s\n  timeout: 8 s\n"
                     "jobmanager.rpc.address: jm\n");
    fl_config_t *cfg = new_config();
    char err[ERRCAP] = "";
    assert_fl_ok(fl_config_load_file(cfg, path, err, sizeof err));
    char *argv[] = {"prog",
                    "-D",
                    "heartbeat.timeout=20 s",
                    "input.txt",
                    "-Dpekko.framesize=64 kb",
                    "--",
                    "-Dnot=an option",
                    NULL};
    int argc = 7;
    assert_fl_ok(fl_config_apply_args(cfg, &argc, argv, err, sizeof err));
    assert_int_equal(4, argc);
    assert_string_equal("prog", argv[0]);
    assert_string_equal("input.txt", argv[1]);
    assert_string_equal("--", argv[2]);
    assert_string_equal("-Dnot=an option", argv[3]);
    assert_null(argv[4]);
    assert_int_equal(20000, duration(cfg, FL_CONFIG_HEARTBEAT_TIMEOUT));
    assert_int_equal(FL_CONFIG_OVERRIDE,
                     source_of(cfg, FL_CONFIG_HEARTBEAT_TIMEOUT));

    char *out = print_to_string(cfg);
    char expect[8192];
    snprintf(expect, sizeof expect,
             "jobmanager.rpc.address: \"jm\"  # file %s:4\n"
             "jobmanager.rpc.port: 6123  # default\n"
             "taskmanager.numberOfTaskSlots: 1  # default\n"
             "taskmanager.registration.timeout: 5 min  # default\n"
             "taskmanager.host: \"localhost\"  # default\n"
             "taskmanager.rpc.port: \"0\"  # default\n"
             "taskmanager.resource-id: \"\"  # default\n"
             "task.cancellation.interval: 30 s  # default\n"
             "task.cancellation.timeout: 3 min  # default\n"
             "heartbeat.interval: 2 s  # file %s:2\n"
             "heartbeat.timeout: 20 s  # override\n"
             "heartbeat.rpc-failure-threshold: 2  # default\n"
             "cluster.registration.jitter: true  # default\n"
             "cluster.registration.initial-timeout: 100 ms  # default\n"
             "cluster.registration.max-timeout: 30 s  # default\n"
             "cluster.registration.error-delay: 10 s  # default\n"
             "cluster.registration.refused-registration-delay: 30 s  # "
             "default\n"
             "high-availability.type: \"NONE\"  # default\n"
             "high-availability.cluster-id: \"/default\"  # default\n"
             "high-availability.zookeeper.quorum: \"\"  # default\n"
             "high-availability.zookeeper.path.root: \"/flink\"  # default\n"
             "high-availability.zookeeper.client.session-timeout: 1 min  # "
             "default\n"
             "high-availability.zookeeper.client.connection-timeout: 15 s  # "
             "default\n"
             "pekko.framesize: 64 kb  # override\n"
             "pekko.ask.timeout: 10 s  # default\n"
             "security.ssl.internal.enabled: false  # default\n"
             "security.ssl.internal.certificate: \"\"  # default\n"
             "security.ssl.internal.key: \"\"  # default\n"
             "security.ssl.internal.truststore: \"\"  # default\n"
             "security.ssl.internal.handshake-timeout: 10 s  # default\n"
             "security.ssl.protocol: \"TLSv1.3\"  # default\n"
             "security.ssl.algorithms: \"\"  # default\n"
             "security.ssl.verify-hostname: true  # default\n"
             "slot.request.timeout: 5 min  # default\n"
             "restart-strategy.fixed-delay.attempts: 1  # default\n"
             "restart-strategy.fixed-delay.delay: 1 s  # default\n"
             "jobstore.max-capacity: 1000  # default\n"
             "jobstore.expiration-time: 1 h  # default\n"
             "high-availability.storageDir: \"\"  # default\n",
             path, path);
    assert_string_equal(expect, out);

    /* The printout reads back to the same values. */
    fl_config_t *back = new_config();
    assert_fl_ok(fl_config_load_string(back, out, strlen(out), "print", err,
                                       sizeof err));
    for (size_t i = 0; i < fl_config_key_count(); i++)
        assert_int_equal(FL_CONFIG_FILE,
                         source_of(back, fl_config_key_at(i)->name));
    char *again = print_to_string(back);
    assert_int_equal(0, strncmp(again,
                                "jobmanager.rpc.address: \"jm\"  # file "
                                "print:1\n",
                                strlen("jobmanager.rpc.address: \"jm\"  # file "
                                       "print:1\n")));
    assert_int_equal(20000, duration(back, FL_CONFIG_HEARTBEAT_TIMEOUT));
    assert_string_equal("jm",
                        string_of(back, FL_CONFIG_JOBMANAGER_RPC_ADDRESS));
    free(again);
    fl_config_free(back);
    free(out);
    fl_config_free(cfg);
    unlink(path);
}

static void test_bad_overrides_apply_nothing(void **state)
{
    (void)state;
    fl_config_t *cfg = new_config();
    char err[ERRCAP] = "";
    char *argv[] = {"prog", "-Dheartbeat.interval=1 s", "-D",
                    "heartbeat.timout=2 s", NULL};
    int argc = 4;
    assert_fl(FL_EINVAL,
              fl_config_apply_args(cfg, &argc, argv, err, sizeof err));
    assert_string_equal("Unknown configuration key 'heartbeat.timout' (-D); "
                        "did you mean 'heartbeat.timeout'?",
                        err);
    assert_int_equal(4, argc);
    assert_string_equal("-Dheartbeat.interval=1 s", argv[1]);
    assert_int_equal(FL_CONFIG_DEFAULT,
                     source_of(cfg, FL_CONFIG_HEARTBEAT_INTERVAL));

    char *last[] = {"prog", "-Dheartbeat.interval=1 s", "-D", NULL};
    argc = 3;
    assert_fl(FL_EINVAL,
              fl_config_apply_args(cfg, &argc, last, err, sizeof err));
    assert_string_equal("Option -D at the end of the command line has no "
                        "key=value; write -D heartbeat.interval=10s.",
                        err);
    assert_int_equal(3, argc);

    const char *kv[] = {"heartbeat.interval=1 s", "heartbeat.timeout"};
    assert_fl(FL_EINVAL,
              fl_config_apply_overrides(cfg, kv, 2, err, sizeof err));
    assert_string_equal("Override 'heartbeat.timeout' is not of the form "
                        "key=value; write it as -D heartbeat.interval=10s.",
                        err);
    assert_int_equal(10000, duration(cfg, FL_CONFIG_HEARTBEAT_INTERVAL));

    /* A later override of the same key wins. */
    const char *twice[] = {"heartbeat.interval=1 s", "heartbeat.interval=3 s"};
    assert_fl_ok(fl_config_apply_overrides(cfg, twice, 2, err, sizeof err));
    assert_int_equal(3000, duration(cfg, FL_CONFIG_HEARTBEAT_INTERVAL));
    fl_config_free(cfg);
}

/* ---- validation
 * -------------------------------------------------------------------- */

static void test_validate_checks_rules_across_keys(void **state)
{
    (void)state;
    fl_config_t *cfg = new_config();
    char err[ERRCAP] = "";
    assert_fl_ok(fl_config_set(cfg, FL_CONFIG_HEARTBEAT_INTERVAL, "60 s", err,
                               sizeof err));
    assert_fl(FL_EINVAL, fl_config_validate(cfg, err, sizeof err));
    assert_string_equal("heartbeat.interval (60000 ms) is longer than "
                        "heartbeat.timeout (50000 ms): every target would time "
                        "out between two heartbeats; make the interval at most "
                        "the timeout.",
                        err);
    assert_fl_ok(fl_config_set(cfg, FL_CONFIG_HEARTBEAT_TIMEOUT, "60 s", err,
                               sizeof err));
    assert_fl_ok(fl_config_validate(cfg, err, sizeof err));
    assert_fl_ok(
        fl_config_set(cfg, FL_CONFIG_HA_TYPE, "zookeeper", err, sizeof err));
    assert_fl(FL_EINVAL, fl_config_validate(cfg, err, sizeof err));
    assert_string_equal("high-availability.type is zookeeper but "
                        "high-availability.zookeeper.quorum is empty; name the "
                        "ZooKeeper servers as host:port,host:port.",
                        err);
    assert_fl_ok(
        fl_config_set(cfg, FL_CONFIG_HA_ZK_QUORUM, "zk:2181", err, sizeof err));
    assert_fl_ok(fl_config_validate(cfg, err, sizeof err));
    fl_config_free(cfg);
}

/* ---- out of memory
 * ------------------------------------------------------------------ */

/* Fails the n-th allocation from the start of each call, for every n
 * until the call succeeds: each failure is FL_ENOMEM, said, and leaves the
 * config as it was. */
static void test_out_of_memory_applies_nothing(void **state)
{
    (void)state;
    static const char yaml[] = "heartbeat:\n  interval: 2 s\n"
                               "jobmanager.rpc.address: jm\n"
                               "high-availability.type: zookeeper\n";
    static const char *const kv[] = {"heartbeat.timeout=9 s",
                                     "high-availability.cluster-id=/c1"};
    for (int call = 0; call < 2; call++) {
        fl_config_t *cfg = new_config();
        char *before = print_to_string(cfg);
        int rc = FL_ENOMEM;
        uint64_t n;
        for (n = 1; n < 1000 && rc == FL_ENOMEM; n++) {
            char err[ERRCAP] = "";
            fl__alloc_fail_after(n, false);
            rc = call == 0
                     ? fl_config_load_string(cfg, yaml, strlen(yaml), "c.yaml",
                                             err, sizeof err)
                     : fl_config_apply_overrides(cfg, kv, 2, err, sizeof err);
            fl__alloc_fail_after(0, false);
            if (rc == FL_ENOMEM) {
                assert_string_equal(
                    "Out of memory while loading the configuration.", err);
                char *after = print_to_string(cfg);
                assert_string_equal(before, after);
                free(after);
            }
        }
        assert_fl_ok(rc);
        assert_true(n > 3); /* some allocations did fail */
        free(before);
        fl_config_free(cfg);
    }
    /* fl_config_alloc itself. */
    fl__alloc_fail_after(5, false);
    assert_null(fl_config_alloc());
    fl__alloc_fail_after(0, false);
}

/* ---- the guide's table
 * ---------------------------------------------------------------- */

/* The table of docs/guide.md, "Configuration", as the key table makes it. */
static void append_row(char *buf, size_t cap, const fl_config_key_t *k)
{
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "| `%s` | %s | %s | %s | %s |\n", k->name,
             fl_config_type_name(k->type), k->def[0] ? k->def : "(none)",
             k->form, k->doc);
}

static void test_guide_lists_every_key_as_the_code_does(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s", __FILE__);
    /* tests/unit/cluster/config_test.c -> the repository root. */
    char *root = dirname(dirname(dirname(dirname(path))));
    char guide[4096];
    snprintf(guide, sizeof guide, "%s/docs/guide.md", root);
    FILE *f = fopen(guide, "r");
    assert_non_null(f);
    static char text[1 << 18];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    const char *begin_mark = "<!-- config-keys: begin -->\n";
    const char *b = strstr(text, begin_mark);
    assert_non_null(b);
    b += strlen(begin_mark);
    char *e = strstr(b, "<!-- config-keys: end -->");
    assert_non_null(e);
    *e = '\0';
    static char expect[1 << 14];
    snprintf(expect, sizeof expect,
             "| Key | Type | Default | Form | Meaning |\n"
             "|---|---|---|---|---|\n");
    for (size_t i = 0; i < fl_config_key_count(); i++)
        append_row(expect, sizeof expect, fl_config_key_at(i));
    assert_string_equal(expect, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_a_loaded_file_is_logged_at_info),
        FL_TEST(test_empty_documents_set_nothing),
        FL_TEST(test_file_errors_say_where_and_apply_nothing),
        FL_TEST(test_missing_file_names_the_path),
        FL_TEST(test_strings_print_back_exactly),
        FL_TEST(test_file_then_overrides_then_print),
        FL_TEST(test_bad_overrides_apply_nothing),
        FL_TEST(test_validate_checks_rules_across_keys),
        FL_TEST(test_out_of_memory_applies_nothing),
        FL_TEST(test_guide_lists_every_key_as_the_code_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
