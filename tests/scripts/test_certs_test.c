/*
 * test_certs_test.c - scripts/test-certs.sh makes the certificates the TLS
 * tests rely on: a chain that verifies, hostile certificates that fail with
 * OpenSSL's own reasons, SANs and EKUs, key modes, reruns and its errors.
 *
 * Runs the script (TEST_CERTS_SCRIPT, set by CMake) into a scratch folder
 * once for the group, then checks it with the openssl command line.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fl_test.h"

#define OUT_CAP 8192

static char g_dir[64];

static const char *const NAMES[] = {"ca",          "server",   "client",
                                    "node",        "other-ca", "other-client",
                                    "self-signed", "expired"};
#define N_NAMES (sizeof NAMES / sizeof NAMES[0])

/* Runs `sh -c cmd` with stderr joined to stdout into out (NUL-terminated,
 * truncated to OUT_CAP - 1); returns its exit status, or -1. Blocks. */
__attribute__((format(printf, 2, 3))) static int run(char *out, const char *fmt,
                                                     ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[1100];
    snprintf(full, sizeof full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, OUT_CAP - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The script's output for a complete run into dir. */
static void expected_listing(char *buf, size_t cap, const char *dir)
{
    size_t off = 0;
    for (size_t i = 0; i < N_NAMES; i++)
        off += (size_t)snprintf(buf + off, cap - off,
                                "wrote %s/%s.key\nwrote %s/%s.crt\n", dir,
                                NAMES[i], dir, NAMES[i]);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/fl_test_certs.XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    char out[OUT_CAP], want[OUT_CAP];
    int rc = run(out, "bash %s %s", TEST_CERTS_SCRIPT, g_dir);
    expected_listing(want, sizeof want, g_dir);
    if (rc != 0 || strcmp(out, want) != 0) {
        fprintf(stderr, "test-certs.sh exited %d:\n%s", rc, out);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char out[OUT_CAP];
    return run(out, "rm -rf %s", g_dir);
}

/* The CA's own chain verifies for the server and the client. */
static void test_good_chain_verifies(void **state)
{
    (void)state;
    char out[OUT_CAP], want[256];
    const char *ok[] = {"server", "client", "node"};
    for (size_t i = 0; i < 3; i++) {
        int rc = run(out, "cd %s && openssl verify -CAfile ca.crt %s.crt",
                     g_dir, ok[i]);
        snprintf(want, sizeof want, "%s.crt: OK\n", ok[i]);
        assert_string_equal(out, want);
        assert_int_equal(rc, 0);
    }
}

/* Each hostile certificate fails against the CA with OpenSSL's reason. */
static void test_hostile_certs_fail(void **state)
{
    (void)state;
    static const struct {
        const char *name, *subject, *error;
    } cases[] = {
        {"other-client", "O = fling test, CN = fling other-CA client",
         "error 20 at 0 depth lookup: unable to get local issuer certificate"},
        {"self-signed", "O = fling test, CN = fling self-signed client",
         "error 18 at 0 depth lookup: self-signed certificate"},
        {"expired", "O = fling test, CN = fling expired client",
         "error 10 at 0 depth lookup: certificate has expired"},
    };
    char out[OUT_CAP], want[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run(out, "cd %s && openssl verify -CAfile ca.crt %s.crt",
                     g_dir, cases[i].name);
        snprintf(want, sizeof want,
                 "%s\n%s\nerror %s.crt: verification failed\n",
                 cases[i].subject, cases[i].error, cases[i].name);
        assert_string_equal(out, want);
        assert_int_equal(rc, 2);
    }
    /* The other CA's client is good under its own CA: only the CA differs. */
    int rc = run(
        out, "cd %s && openssl verify -CAfile other-ca.crt other-client.crt",
        g_dir);
    assert_string_equal(out, "other-client.crt: OK\n");
    assert_int_equal(rc, 0);
}

/* Leaves: SAN localhost and 127.0.0.1; EKU serverAuth, clientAuth or both
 * (node). */
static void test_sans_and_ekus(void **state)
{
    (void)state;
    static const struct {
        const char *name, *eku;
    } cases[] = {
        {"server", "TLS Web Server Authentication"},
        {"client", "TLS Web Client Authentication"},
        {"node", "TLS Web Server Authentication, TLS Web Client "
                 "Authentication"},
        {"other-client", "TLS Web Client Authentication"},
        {"self-signed", "TLS Web Client Authentication"},
        {"expired", "TLS Web Client Authentication"},
    };
    char out[OUT_CAP], want[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run(out,
                     "openssl x509 -in %s/%s.crt -noout "
                     "-ext subjectAltName,extendedKeyUsage",
                     g_dir, cases[i].name);
        snprintf(want, sizeof want,
                 "X509v3 Extended Key Usage: \n    %s\n"
                 "X509v3 Subject Alternative Name: \n"
                 "    DNS:localhost, IP Address:127.0.0.1\n",
                 cases[i].eku);
        assert_string_equal(out, want);
        assert_int_equal(rc, 0);
    }
    /* The CAs are CAs, the leaves are not. */
    int rc = run(out, "openssl x509 -in %s/ca.crt -noout -ext basicConstraints",
                 g_dir);
    assert_string_equal(out,
                        "X509v3 Basic Constraints: critical\n    CA:TRUE\n");
    assert_int_equal(rc, 0);
    rc = run(out, "openssl x509 -in %s/server.crt -noout -ext basicConstraints",
             g_dir);
    assert_string_equal(out,
                        "X509v3 Basic Constraints: critical\n    CA:FALSE\n");
    assert_int_equal(rc, 0);
}

/* node.crt serves both roles (a service accepts and dials with one
 * certificate); server.crt and client.crt one each. */
static void test_node_serves_both_purposes(void **state)
{
    (void)state;
    static const struct {
        const char *name, *purpose, *subject;
        bool ok;
    } cases[] = {
        {"node", "sslserver", NULL, true},
        {"node", "sslclient", NULL, true},
        {"server", "sslserver", NULL, true},
        {"server", "sslclient", "O = fling test, CN = localhost", false},
        {"client", "sslclient", NULL, true},
        {"client", "sslserver", "O = fling test, CN = fling test client",
         false},
    };
    char out[OUT_CAP], want[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run(out,
                     "cd %s && openssl verify -CAfile ca.crt -purpose %s "
                     "%s.crt",
                     g_dir, cases[i].purpose, cases[i].name);
        if (cases[i].ok)
            snprintf(want, sizeof want, "%s.crt: OK\n", cases[i].name);
        else
            snprintf(want, sizeof want,
                     "%s\nerror 26 at 0 depth lookup: unsuitable "
                     "certificate purpose\nerror %s.crt: verification "
                     "failed\n",
                     cases[i].subject, cases[i].name);
        assert_string_equal(out, want);
        assert_int_equal(rc, cases[i].ok ? 0 : 2);
    }
}

/* Keys 0600 EC P-256, certs 0644 and valid for the test run (29 days). */
static void test_modes_keys_and_validity(void **state)
{
    (void)state;
    char path[256], out[OUT_CAP];
    for (size_t i = 0; i < N_NAMES; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s.key", g_dir, NAMES[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        snprintf(path, sizeof path, "%s/%s.crt", g_dir, NAMES[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);

        int rc = run(out,
                     "openssl pkey -in %s/%s.key -noout -text | "
                     "grep -E '^(Private-Key|ASN1 OID|NIST CURVE)'",
                     g_dir, NAMES[i]);
        assert_string_equal(out, "Private-Key: (256 bit)\n"
                                 "ASN1 OID: prime256v1\n"
                                 "NIST CURVE: P-256\n");
        assert_int_equal(rc, 0);
        if (strcmp(NAMES[i], "expired") == 0)
            continue;
        rc = run(out, "openssl x509 -in %s/%s.crt -noout -checkend %d", g_dir,
                 NAMES[i], 29 * 86400);
        assert_string_equal(out, "Certificate will not expire\n");
        assert_int_equal(rc, 0);
    }
}

/* A second run re-creates the whole set: a new CA that the new leaves
 * verify against, no scratch folder left, other files kept. */
static void test_rerun_recreates_a_consistent_set(void **state)
{
    (void)state;
    char out[OUT_CAP], want[OUT_CAP], old_ca[OUT_CAP], new_ca[OUT_CAP];
    assert_int_equal(run(old_ca, "cat %s/ca.crt", g_dir), 0);
    assert_int_equal(run(out, "echo mine > %s/keep.txt", g_dir), 0);

    int rc = run(out, "bash %s %s", TEST_CERTS_SCRIPT, g_dir);
    expected_listing(want, sizeof want, g_dir);
    assert_string_equal(out, want);
    assert_int_equal(rc, 0);

    assert_int_equal(run(new_ca, "cat %s/ca.crt", g_dir), 0);
    assert_string_not_equal(old_ca, new_ca);
    rc = run(out,
             "cd %s && openssl verify -CAfile ca.crt server.crt client.crt "
             "node.crt",
             g_dir);
    assert_string_equal(out, "server.crt: OK\nclient.crt: OK\nnode.crt: OK\n");
    assert_int_equal(rc, 0);
    rc = run(out, "cd %s && ls -A | sort | tr '\\n' ' '", g_dir);
    assert_string_equal(out,
                        "ca.crt ca.key client.crt client.key expired.crt "
                        "expired.key keep.txt node.crt node.key other-ca.crt "
                        "other-ca.key "
                        "other-client.crt other-client.key self-signed.crt "
                        "self-signed.key server.crt server.key ");
    assert_int_equal(rc, 0);
    assert_int_equal(run(out, "rm %s/keep.txt", g_dir), 0);
}

/* Usage, a missing openssl and an OUTDIR it cannot make: exit 2, a reason. */
static void test_errors_say_why(void **state)
{
    (void)state;
    char out[OUT_CAP], want[512];
    int rc = run(out, "bash %s", TEST_CERTS_SCRIPT);
    assert_string_equal(out, "test-certs.sh: usage: test-certs.sh OUTDIR\n");
    assert_int_equal(rc, 2);

    rc = run(out, "PATH=/nonexistent %s %s %s/none", BASH_PATH,
             TEST_CERTS_SCRIPT, g_dir);
    assert_string_equal(out,
                        "test-certs.sh: openssl not found in PATH; install "
                        "the Debian package openssl (scripts/deps.sh test)\n");
    assert_int_equal(rc, 2);

    /* A regular file where the folder should be (root can write anywhere). */
    rc = run(out, "bash %s %s/ca.crt/sub", TEST_CERTS_SCRIPT, g_dir);
    snprintf(want, sizeof want,
             "test-certs.sh: cannot create OUTDIR '%s/ca.crt/sub'; give a "
             "folder you can write\n",
             g_dir);
    assert_string_equal(out, want);
    assert_int_equal(rc, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_good_chain_verifies),
        FL_TEST(test_hostile_certs_fail),
        FL_TEST(test_sans_and_ekus),
        FL_TEST(test_node_serves_both_purposes),
        FL_TEST(test_modes_keys_and_validity),
        FL_TEST(test_rerun_recreates_a_consistent_set),
        FL_TEST(test_errors_say_why),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
