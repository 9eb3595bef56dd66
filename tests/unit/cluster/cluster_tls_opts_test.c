/*
 * cluster_tls_opts_test.c - the security.ssl.* keys and the RPC service's
 * TLS options they make (fling/cluster.h, fl_cluster_tls_*): every key's
 * default and value, the refusals of fl_config_validate and of each key
 * (exact messages), the scheme of the addresses, the service's refusals
 * said as the keys, and security.ssl.protocol TLSv1.2 against a raw TLS
 * 1.2 peer (tls_raw.h).
 */
#include "fl_test.h"

#include <fling/cluster.h>

#include <stdio.h>
#include <string.h>

#include "common/internal.h"
#include "unit/remote/tls_raw.h"

static fl_config_t *config_of(const char *yaml)
{
    fl_config_t *cfg = fl_config_alloc();
    assert_non_null(cfg);
    char err[512] = "";
    if (fl_config_load_string(cfg, yaml, strlen(yaml), "test.yaml", err,
                              sizeof err) != FL_OK)
        fail_msg("load: %s", err);
    return cfg;
}

/* cfg with key set to value as an override ("-D"), or the test fails. */
static void set(fl_config_t *cfg, const char *key, const char *value)
{
    char err[512] = "";
    if (fl_config_set(cfg, key, value, err, sizeof err) != FL_OK)
        fail_msg("set %s=%s: %s", key, value, err);
}

static const char *string_of(const fl_config_t *cfg, const char *key)
{
    const char *s = NULL;
    assert_fl_ok(fl_config_get_string(cfg, key, &s));
    return s;
}

static void test_defaults_are_plaintext(void **state)
{
    (void)state;
    fl_config_t *cfg = config_of("");
    fl_cluster_tls_t t;
    memset(&t, 0xff, sizeof t);
    char why[512] = "";
    assert_fl_ok(fl_cluster_tls_init(&t, cfg, why, sizeof why));
    assert_string_equal("", why);
    assert_false(t.enabled);
    assert_string_equal("", t.opts.cert_file);
    assert_string_equal("", t.opts.key_file);
    assert_string_equal("", t.opts.ca_file);
    assert_int_equal(FL_TLS_1_3, t.opts.min_version);
    assert_null(t.opts.ciphers);
    assert_null(t.opts.ciphersuites);
    assert_false(t.opts.skip_hostname_check);
    assert_int_equal(10000, t.handshake_timeout_ms); /* Flink's 10 s */
    /* Off: the service's options are left as they were. */
    fl_rpc_service_opts_t o = {.handshake_timeout_ms = 77};
    fl_cluster_tls_apply(&t, &o);
    assert_null(o.tls);
    assert_int_equal(77, o.handshake_timeout_ms);
    assert_string_equal("fling.tcp://", fl_cluster_rpc_scheme(cfg));
    char addr[128];
    assert_fl_ok(fl_cluster_jobmanager_address(cfg, "resourcemanager_*", addr,
                                               sizeof addr, why, sizeof why));
    assert_string_equal("fling.tcp://localhost:6123/resourcemanager_*", addr);
    /* The printout's defaults, as the guide lists them. */
    char text[64];
    const char *keys[] = {FL_CONFIG_SSL_INTERNAL_ENABLED,
                          FL_CONFIG_SSL_INTERNAL_HANDSHAKE_TIMEOUT,
                          FL_CONFIG_SSL_PROTOCOL, FL_CONFIG_SSL_ALGORITHMS,
                          FL_CONFIG_SSL_VERIFY_HOSTNAME};
    const char *texts[] = {"false", "10 s", "TLSv1.3", "", "true"};
    for (size_t i = 0; i < 5; i++) {
        assert_fl_ok(fl_config_get_text(cfg, keys[i], text, sizeof text));
        assert_string_equal(texts[i], text);
    }
    fl_cluster_tls_fini(&t);
    fl_cluster_tls_fini(&t); /* zeroed: again is harmless */
    fl_cluster_tls_fini(NULL);
    fl_config_free(cfg);
}

static void test_every_key_reaches_the_options(void **state)
{
    (void)state;
    fl_config_t *cfg =
        config_of("security:\n"
                  "  ssl:\n"
                  "    internal:\n"
                  "      enabled: true\n"
                  "      certificate: /etc/fling/node.crt\n"
                  "      key: /etc/fling/node.key\n"
                  "      truststore: /etc/fling/ca.crt\n"
                  "      handshake-timeout: 3 s\n"
                  "    protocol: tlsv1.2\n"
                  "    algorithms: \"TLS_AES_256_GCM_SHA384, "
                  "ECDHE-RSA-AES256-GCM-SHA384 ,TLS_CHACHA20_POLY1305_SHA256,"
                  "ECDHE-ECDSA-AES128-GCM-SHA256\"\n"
                  "    verify-hostname: false\n");
    fl_cluster_tls_t t;
    char why[512] = "";
    assert_fl_ok(fl_cluster_tls_init(&t, cfg, why, sizeof why));
    assert_true(t.enabled);
    assert_string_equal("/etc/fling/node.crt", t.opts.cert_file);
    assert_string_equal("/etc/fling/node.key", t.opts.key_file);
    assert_string_equal("/etc/fling/ca.crt", t.opts.ca_file);
    /* The file names are cfg's own strings. */
    assert_ptr_equal(string_of(cfg, FL_CONFIG_SSL_INTERNAL_CERTIFICATE),
                     t.opts.cert_file);
    assert_ptr_equal(string_of(cfg, FL_CONFIG_SSL_INTERNAL_TRUSTSTORE),
                     t.opts.ca_file);
    assert_int_equal(FL_TLS_1_2, t.opts.min_version);
    /* Stored in the table's spelling, whatever the file's case. */
    assert_string_equal("TLSv1.2", string_of(cfg, FL_CONFIG_SSL_PROTOCOL));
    assert_string_equal("TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
                        t.opts.ciphersuites);
    assert_string_equal(
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256",
        t.opts.ciphers);
    assert_true(t.opts.skip_hostname_check);
    assert_int_equal(3000, t.handshake_timeout_ms);
    fl_rpc_service_opts_t o = {.handshake_timeout_ms = 77};
    fl_cluster_tls_apply(&t, &o);
    assert_ptr_equal(&t.opts, o.tls);
    assert_int_equal(3000, o.handshake_timeout_ms);
    assert_string_equal("fling.ssl://", fl_cluster_rpc_scheme(cfg));
    char addr[128];
    assert_fl_ok(fl_cluster_jobmanager_address(cfg, "resourcemanager_*", addr,
                                               sizeof addr, why, sizeof why));
    assert_string_equal("fling.ssl://localhost:6123/resourcemanager_*", addr);
    fl_cluster_tls_fini(&t);
    assert_null(t.opts.ciphers);
    fl_config_free(cfg);
}

static void test_one_kind_of_name_leaves_the_other_list_default(void **state)
{
    (void)state;
    fl_config_t *cfg = config_of("security.ssl.algorithms: "
                                 "TLS_AES_128_GCM_SHA256\n");
    fl_cluster_tls_t t;
    assert_fl_ok(fl_cluster_tls_init(&t, cfg, NULL, 0));
    assert_string_equal("TLS_AES_128_GCM_SHA256", t.opts.ciphersuites);
    assert_null(t.opts.ciphers);
    fl_cluster_tls_fini(&t);
    /* TLS 1.2 ciphers only: with TLSv1.2 allowed. */
    set(cfg, FL_CONFIG_SSL_PROTOCOL, "TLSv1.2");
    set(cfg, FL_CONFIG_SSL_ALGORITHMS, " ECDHE-RSA-AES128-GCM-SHA256 ");
    assert_fl_ok(fl_cluster_tls_init(&t, cfg, NULL, 0));
    assert_null(t.opts.ciphersuites);
    assert_string_equal("ECDHE-RSA-AES128-GCM-SHA256", t.opts.ciphers);
    fl_cluster_tls_fini(&t);
    /* Blanks only: OpenSSL's defaults. */
    set(cfg, FL_CONFIG_SSL_ALGORITHMS, "  ");
    assert_fl_ok(fl_cluster_tls_init(&t, cfg, NULL, 0));
    assert_null(t.opts.ciphersuites);
    assert_null(t.opts.ciphers);
    fl_cluster_tls_fini(&t);
    fl_config_free(cfg);
}

/* fl_cluster_tls_init's refusal of cfg, which fl_config_validate gives
 * too; t comes back zeroed. */
static void expect_refused(fl_config_t *cfg, const char *expected)
{
    char why[1024] = "";
    fl_cluster_tls_t t;
    memset(&t, 0xff, sizeof t);
    assert_fl(FL_EINVAL, fl_cluster_tls_init(&t, cfg, why, sizeof why));
    assert_string_equal(expected, why);
    assert_false(t.enabled);
    assert_null(t.lists_);
    fl_cluster_tls_fini(&t);
    why[0] = '\0';
    assert_fl(FL_EINVAL, fl_config_validate(cfg, why, sizeof why));
    assert_string_equal(expected, why);
}

static void test_enabled_without_a_file_names_the_missing_key(void **state)
{
    (void)state;
    fl_config_t *cfg = config_of("security.ssl.internal.enabled: true\n");
    expect_refused(cfg, "security.ssl.internal.enabled is true (test.yaml:1) "
                        "but security.ssl.internal.certificate is not set; "
                        "set it to the PEM file of this process's certificate "
                        "and its chain, or turn TLS off.");
    set(cfg, FL_CONFIG_SSL_INTERNAL_ENABLED, "true");
    set(cfg, FL_CONFIG_SSL_INTERNAL_CERTIFICATE, "node.crt");
    expect_refused(cfg, "security.ssl.internal.enabled is true (-D) but "
                        "security.ssl.internal.key is not set; set it to the "
                        "PEM file of the certificate's private key, or turn "
                        "TLS off.");
    set(cfg, FL_CONFIG_SSL_INTERNAL_KEY, "node.key");
    expect_refused(cfg, "security.ssl.internal.enabled is true (-D) but "
                        "security.ssl.internal.truststore is not set; set it "
                        "to the PEM file of the CA certificates to trust, or "
                        "turn TLS off.");
    set(cfg, FL_CONFIG_SSL_INTERNAL_TRUSTSTORE, "ca.crt");
    char why[512] = "";
    assert_fl_ok(fl_config_validate(cfg, why, sizeof why));
    /* Off, the files are not needed. */
    set(cfg, FL_CONFIG_SSL_INTERNAL_ENABLED, "false");
    set(cfg, FL_CONFIG_SSL_INTERNAL_CERTIFICATE, "");
    assert_fl_ok(fl_config_validate(cfg, why, sizeof why));
    fl_config_free(cfg);
}

static void test_bad_algorithms_are_refused(void **state)
{
    (void)state;
    fl_config_t *cfg = config_of("");
    set(cfg, FL_CONFIG_SSL_ALGORITHMS, "TLS_AES_128_GCM_SHA256,,X");
    expect_refused(cfg,
                   "Bad value 'TLS_AES_128_GCM_SHA256,,X' for "
                   "'security.ssl.algorithms' (-D): a name is missing between "
                   "two commas; write the names separated by commas, e.g. "
                   "TLS_AES_256_GCM_SHA384,ECDHE-RSA-AES256-GCM-SHA384.");
    set(cfg, FL_CONFIG_SSL_ALGORITHMS, "TLS_AES_128_GCM_SHA256,");
    expect_refused(cfg,
                   "Bad value 'TLS_AES_128_GCM_SHA256,' for "
                   "'security.ssl.algorithms' (-D): a name is missing between "
                   "two commas; write the names separated by commas, e.g. "
                   "TLS_AES_256_GCM_SHA384,ECDHE-RSA-AES256-GCM-SHA384.");
    /* OpenSSL's own list syntax is not taken: one name at a time. */
    set(cfg, FL_CONFIG_SSL_ALGORITHMS, "TLS_AES_128_GCM_SHA256, HIGH:!aNULL");
    expect_refused(cfg,
                   "Bad value 'TLS_AES_128_GCM_SHA256, HIGH:!aNULL' for "
                   "'security.ssl.algorithms' (-D): 'HIGH:!aNULL' is not a "
                   "cipher suite name (letters, digits, '_' and '-'); write "
                   "the names separated by commas, e.g. "
                   "TLS_AES_256_GCM_SHA384,ECDHE-RSA-AES256-GCM-SHA384.");
    /* TLS 1.3 only, and not one TLS 1.3 suite named. */
    set(cfg, FL_CONFIG_SSL_ALGORITHMS, "ECDHE-RSA-AES128-GCM-SHA256");
    expect_refused(cfg, "security.ssl.algorithms (-D) names no TLS 1.3 suite "
                        "but security.ssl.protocol is TLSv1.3 (default), which "
                        "uses TLS 1.3 suites only; add one such as "
                        "TLS_AES_256_GCM_SHA384, or set "
                        "security.ssl.protocol to TLSv1.2.");
    fl_config_free(cfg);
}

/* fl_config_set's refusal of key=value, cfg untouched. */
static void expect_set_refused(const char *key, const char *value,
                               const char *expected)
{
    fl_config_t *cfg = config_of("");
    char before[64], after[64], err[512] = "";
    assert_fl_ok(fl_config_get_text(cfg, key, before, sizeof before));
    assert_fl(FL_EINVAL, fl_config_set(cfg, key, value, err, sizeof err));
    assert_string_equal(expected, err);
    assert_fl_ok(fl_config_get_text(cfg, key, after, sizeof after));
    assert_string_equal(before, after);
    fl_config_free(cfg);
}

static void test_bad_values_of_one_key_are_refused_when_set(void **state)
{
    (void)state;
    expect_set_refused(FL_CONFIG_SSL_PROTOCOL, "TLSv1.1",
                       "Bad value 'TLSv1.1' for 'security.ssl.protocol' (-D): "
                       "expected TLSv1.3 or TLSv1.2.");
    expect_set_refused(FL_CONFIG_SSL_PROTOCOL, "SSLv3",
                       "Bad value 'SSLv3' for 'security.ssl.protocol' (-D): "
                       "expected TLSv1.3 or TLSv1.2.");
    expect_set_refused(FL_CONFIG_SSL_INTERNAL_ENABLED, "yes",
                       "Bad value 'yes' for 'security.ssl.internal.enabled' "
                       "(-D): expected true or false.");
    expect_set_refused(FL_CONFIG_SSL_VERIFY_HOSTNAME, "off",
                       "Bad value 'off' for 'security.ssl.verify-hostname' "
                       "(-D): expected true or false.");
    expect_set_refused(FL_CONFIG_SSL_INTERNAL_HANDSHAKE_TIMEOUT, "0 ms",
                       "Bad value '0 ms' for "
                       "'security.ssl.internal.handshake-timeout' (-D): "
                       "expected duration 1 ms..24 h.");
    expect_set_refused(FL_CONFIG_SSL_INTERNAL_HANDSHAKE_TIMEOUT, "25 h",
                       "Bad value '25 h' for "
                       "'security.ssl.internal.handshake-timeout' (-D): "
                       "expected duration 1 ms..24 h.");
}

static void test_null_arguments_are_refused(void **state)
{
    (void)state;
    fl_config_t *cfg = config_of("");
    fl_cluster_tls_t t;
    char why[256] = "";
    assert_fl(FL_EINVAL, fl_cluster_tls_init(NULL, cfg, why, sizeof why));
    assert_string_equal("fl_cluster_tls_init: t and cfg are needed", why);
    assert_fl(FL_EINVAL, fl_cluster_tls_init(&t, NULL, NULL, 0));
    /* No settings: the service's options are left as they were. */
    fl_rpc_service_opts_t o = {.handshake_timeout_ms = 77};
    fl_cluster_tls_apply(NULL, &o);
    assert_null(o.tls);
    assert_int_equal(77, o.handshake_timeout_ms);
    fl_config_free(cfg);
}

static void test_out_of_memory_is_said(void **state)
{
    (void)state;
    fl_config_t *cfg = config_of("security.ssl.algorithms: "
                                 "TLS_AES_128_GCM_SHA256\n");
    fl_cluster_tls_t t;
    char why[256] = "";
    fl__alloc_fail_after(1, false);
    int rc = fl_cluster_tls_init(&t, cfg, why, sizeof why);
    fl__alloc_fail_after(0, false);
    assert_fl(FL_ENOMEM, rc);
    assert_string_equal("Out of memory while reading the TLS settings.", why);
    assert_null(t.lists_);
    assert_null(t.opts.ciphersuites);
    fl_cluster_tls_fini(&t);
    fl_config_free(cfg);
}

/* What fl_rpc_service_alloc says of the TLS settings of yaml (the
 * test certificates' folder in place of @), as the programs say it:
 * through fl_cluster_tls_message. */
static int service_of(const char *yaml, fl_rpc_service_t **svc, char *msg,
                      size_t cap)
{
    char text[2048];
    size_t n = 0;
    for (const char *p = yaml; *p != '\0' && n + 1 < sizeof text; p++) {
        if (*p != '@') {
            text[n++] = *p;
            continue;
        }
        int w = snprintf(text + n, sizeof text - n, "%s", FL_TEST_CERTS);
        n += (size_t)w;
    }
    text[n] = '\0';
    fl_config_t *cfg = config_of(text);
    fl_cluster_tls_t t;
    char why[512] = "";
    assert_fl_ok(fl_cluster_tls_init(&t, cfg, why, sizeof why));
    fl_rpc_service_opts_t o = {.bind_host = "127.0.0.1",
                               .port = "0",
                               .workers = 1,
                               .max_frame_size = 1u << 20,
                               .name = "tls-opts"};
    fl_cluster_tls_apply(&t, &o);
    *svc = NULL;
    int rc = fl_rpc_service_alloc(&o, svc);
    msg[0] = '\0';
    if (rc != FL_OK)
        fl_cluster_tls_message(fl_rpc_last_message(), msg, cap);
    fl_cluster_tls_fini(&t);
    fl_config_free(cfg);
    return rc;
}

#define TLS_ON                                                                 \
    "security.ssl.internal.enabled: true\n"                                    \
    "security.ssl.internal.certificate: @/server.crt\n"                        \
    "security.ssl.internal.truststore: @/ca.crt\n"

static void expect_service_refused(const char *yaml, const char *want)
{
    fl_rpc_service_t *svc = NULL;
    char msg[1024], expected[1024];
    assert_fl(FL_EINVAL, service_of(yaml, &svc, msg, sizeof msg));
    assert_null(svc);
    /* The certificates' folder in place of @. */
    size_t n = 0;
    for (const char *p = want; *p != '\0' && n + 1 < sizeof expected; p++) {
        if (*p != '@') {
            expected[n++] = *p;
            continue;
        }
        n += (size_t)snprintf(expected + n, sizeof expected - n, "%s",
                              FL_TEST_CERTS);
    }
    expected[n] = '\0';
    assert_string_equal(expected, msg);
}

/* The service's real refusals, said with the keys a user wrote. */
static void test_service_refusals_name_the_keys(void **state)
{
    (void)state;
    expect_service_refused(
        TLS_ON "security.ssl.internal.key: @/client.key\n",
        "security.ssl.internal.key @/client.key does not match "
        "security.ssl.internal.certificate @/server.crt");
    expect_service_refused(
        "security.ssl.internal.enabled: true\n"
        "security.ssl.internal.certificate: @/server.crt\n"
        "security.ssl.internal.key: @/server.key\n"
        "security.ssl.internal.truststore: @/no-such-ca.crt\n",
        "security.ssl.internal.truststore @/no-such-ca.crt: cannot read it: "
        "No such file or directory");
    /* A name OpenSSL does not know, as the user wrote it (it would drop
     * it without a word). */
    expect_service_refused(
        TLS_ON "security.ssl.internal.key: @/server.key\n"
               "security.ssl.algorithms: TLS_AES_128_GCM_SHA256, TLS_TYPO\n",
        "security.ssl.algorithms: 'TLS_TYPO' is no TLS 1.3 suite this "
        "OpenSSL offers (e.g. TLS_AES_128_GCM_SHA256)");
    expect_service_refused(
        TLS_ON "security.ssl.internal.key: @/server.key\n"
               "security.ssl.protocol: TLSv1.2\n"
               "security.ssl.algorithms: ECDHE-ECDSA-AES128-GCM-SHA256,"
               "ECDHE-TYPO\n",
        "security.ssl.algorithms: 'ECDHE-TYPO' is no TLS 1.2 cipher this "
        "OpenSSL offers (e.g. ECDHE-ECDSA-AES128-GCM-SHA256)");
    /* Known names pass. */
    fl_rpc_service_t *svc = NULL;
    char msg[1024];
    assert_fl_ok(service_of(TLS_ON
                            "security.ssl.internal.key: @/server.key\n"
                            "security.ssl.protocol: TLSv1.2\n"
                            "security.ssl.algorithms: TLS_AES_128_GCM_SHA256,"
                            "ECDHE-ECDSA-AES128-GCM-SHA256\n",
                            &svc, msg, sizeof msg));
    assert_string_equal("", msg);
    fl_rpc_service_free(svc);
}

/* A raw client of TLS 1.2 at most (client.crt) connects to svc: true
 * with the HELLO exchange done, else false with OpenSSL's reason. */
static bool tls12_client_gets_in(fl_rpc_service_t *svc, char *why, size_t cap)
{
    raw_t r = raw_of(raw_connect(fl_rpc_service_port(svc), 0), 1u << 20,
                     "raw-12", 1u << 20, "tls-opts", "");
    tls_raw_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->ctx = tls_raw_ctx("client");
    assert_int_equal(1, SSL_CTX_set_max_proto_version(t->ctx, TLS1_2_VERSION));
    t->ssl = SSL_new(t->ctx);
    assert_non_null(t->ssl);
    assert_int_equal(1, SSL_set_fd(t->ssl, r.fd));
    r.io = &TLS_RAW_IO;
    r.io_arg = t;
    ERR_clear_error();
    bool in = SSL_connect(t->ssl) == 1;
    if (in) {
        assert_int_equal(TLS1_2_VERSION, SSL_version(t->ssl));
        raw_hello(&r);
        why[0] = '\0';
    } else {
        tls_raw_reason(why, cap);
    }
    raw_close(&r);
    return in;
}

/* security.ssl.protocol TLSv1.2 lets a TLS 1.2 peer in; the default,
 * TLSv1.3, refuses it. */
static void test_protocol_tls12_admits_a_tls12_peer(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = NULL;
    char msg[1024], why[256];
    assert_fl_ok(service_of(TLS_ON "security.ssl.internal.key: @/server.key\n"
                                   "security.ssl.protocol: TLSv1.2\n",
                            &svc, msg, sizeof msg));
    assert_true(tls12_client_gets_in(svc, why, sizeof why));
    assert_string_equal("", why);
    fl_rpc_service_free(svc);
    assert_fl_ok(service_of(TLS_ON "security.ssl.internal.key: @/server.key\n",
                            &svc, msg, sizeof msg));
    assert_false(tls12_client_gets_in(svc, why, sizeof why));
    assert_string_equal("tlsv1 alert protocol version", why);
    fl_rpc_service_free(svc);
}

/* fl_cluster_tls_init checks the TLS keys only: a heartbeat rule is the
 * whole config's (fl_config_validate). */
static void test_only_the_tls_rules_are_checked(void **state)
{
    (void)state;
    fl_config_t *cfg = config_of("heartbeat.interval: 5 s\n"
                                 "heartbeat.timeout: 1 s\n"
                                 "security.ssl.algorithms: "
                                 "TLS_AES_128_GCM_SHA256\n");
    fl_cluster_tls_t t;
    char why[512] = "";
    assert_fl_ok(fl_cluster_tls_init(&t, cfg, why, sizeof why));
    assert_string_equal("", why);
    assert_string_equal("TLS_AES_128_GCM_SHA256", t.opts.ciphersuites);
    fl_cluster_tls_fini(&t);
    assert_fl(FL_EINVAL, fl_config_validate(cfg, why, sizeof why));
    assert_string_equal(
        "heartbeat.interval (5000 ms) is longer than heartbeat.timeout (1000 "
        "ms): every target would time out between two heartbeats; make the "
        "interval at most the timeout.",
        why);
    fl_config_free(cfg);
}

/* Any text: the option names replaced, cut to fit, terminated. */
static void test_messages_name_the_keys(void **state)
{
    (void)state;
    char buf[512];
    assert_string_equal(
        "no option here",
        fl_cluster_tls_message("no option here", buf, sizeof buf));
    assert_string_equal("", fl_cluster_tls_message(NULL, buf, sizeof buf));
    char small[12];
    assert_string_equal(
        "security.ss",
        fl_cluster_tls_message("tls.cert_file x", small, sizeof small));
    assert_string_equal("ab", fl_cluster_tls_message("abcdef", small, 3));
    assert_string_equal("", fl_cluster_tls_message("abc", NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_defaults_are_plaintext),
        FL_TEST(test_every_key_reaches_the_options),
        FL_TEST(test_one_kind_of_name_leaves_the_other_list_default),
        FL_TEST(test_enabled_without_a_file_names_the_missing_key),
        FL_TEST(test_bad_algorithms_are_refused),
        FL_TEST(test_bad_values_of_one_key_are_refused_when_set),
        FL_TEST(test_null_arguments_are_refused),
        FL_TEST(test_out_of_memory_is_said),
        FL_TEST(test_messages_name_the_keys),
        FL_TEST(test_service_refusals_name_the_keys),
        FL_TEST(test_protocol_tls12_admits_a_tls12_peer),
        FL_TEST(test_only_the_tls_rules_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
