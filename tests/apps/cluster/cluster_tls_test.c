/*
 * cluster_tls_test - a cluster with mutual TLS on (security.ssl.internal.*,
 * docs/guide.md "Turning TLS on"): a JobManager and two TaskManagers with
 * a certificate of the test CA register over fling.ssl://, and a job that
 * `fling run` submits with the same settings FINISHES with its exact
 * output. A TaskManager without TLS, and one whose certificate another CA
 * signed, are refused: the JobManager logs why, the TaskManager's
 * registration attempts say why and it ends at its registration timeout;
 * the cluster keeps serving. A client without TLS is refused with a
 * message that says so, and a JobManager with TLS on but a certificate
 * missing does not start.
 *
 * Certificates: the test set (FL_TEST_CERTS, scripts/test-certs.sh). The
 * cluster's processes use node.*, signed by ca with both EKUs (serverAuth,
 * clientAuth): a process of the cluster accepts and dials with one
 * certificate. The refused TaskManager of another CA uses other-client.*
 * (it only dials).
 */
#include "../client/fling_spawn.h"
#include "cluster_procs.h"
#include "small_job.h"

#ifndef FLING_CLIENT
#error "FLING_CLIENT must name the fling program"
#endif

/* The -D values of TLS on with FL_TEST_CERTS/<cert>.crt and .key,
 * trusting FL_TEST_CERTS/ca.crt, into keys[0..3] (each in bufs); keys[4]
 * is NULL. */
static void tls_keys(const char *cert, char bufs[4][512], const char *keys[5])
{
    const char *dir = FL_TEST_CERTS;
    snprintf(bufs[0], 512, "security.ssl.internal.enabled=true");
    snprintf(bufs[1], 512, "security.ssl.internal.certificate=%s/%s.crt", dir,
             cert);
    snprintf(bufs[2], 512, "security.ssl.internal.key=%s/%s.key", dir, cert);
    snprintf(bufs[3], 512, "security.ssl.internal.truststore=%s/ca.crt", dir);
    for (int i = 0; i < 4; i++)
        keys[i] = bufs[i];
    keys[4] = NULL;
}

/* Writes dir/tls.yaml, the node's TLS settings (FL_TEST_CERTS/node.*) as
 * a file says them; returns its path (the caller frees it). */
static char *write_tls_conf(const char *dir)
{
    char text[2048];
    int n = snprintf(text, sizeof text,
                     "security:\n"
                     "  ssl:\n"
                     "    internal:\n"
                     "      enabled: true\n"
                     "      certificate: %s/node.crt\n"
                     "      key: %s/node.key\n"
                     "      truststore: %s/ca.crt\n"
                     "    protocol: TLSv1.3\n"
                     "    verify-hostname: true\n",
                     FL_TEST_CERTS, FL_TEST_CERTS, FL_TEST_CERTS);
    char *path = path_in(dir, "tls.yaml");
    write_file(path, text, (size_t)n);
    return path;
}

/* Starts a JobManager on 127.0.0.1 (any port) with the configuration
 * file conf and checks its first lines, fling.ssl:// both; returns its
 * port. */
static int start_tls_jm(cf_proc_t *jm, const char *conf)
{
    const char *args[] = {"-c",    conf,
                          "-D",    "jobmanager.rpc.address=127.0.0.1",
                          "-D",    "jobmanager.rpc.port=0",
                          CF_FAST, NULL};
    cf_spawn(jm, "jm", JM_PATH, args);
    char addr[256], want[64];
    int port = expect_jm_started(jm, addr, sizeof addr);
    snprintf(want, sizeof want, "fling.ssl://127.0.0.1:%d", port);
    assert_string_equal(want, addr);
    return port;
}

/*
 * Reads p's stderr up to the next line of component comp whose message
 * starts with prefix; returns the message (after "<comp>: ") in line.
 * Fails at EOF or after CF_WAIT_MS.
 */
static void next_comp_line(cf_proc_t *p, const char *comp, const char *prefix,
                           char *line, size_t cap)
{
    char raw[4096], tag[64];
    snprintf(tag, sizeof tag, "] %s: ", comp);
    while (cf_next_line(p, &p->err, raw, sizeof raw)) {
        const char *m = strstr(raw, tag);
        if (m != NULL && strncmp(raw, "20", 2) == 0 &&
            strncmp(m + strlen(tag), prefix, strlen(prefix)) == 0) {
            snprintf(line, cap, "%s", m + strlen(tag));
            return;
        }
    }
    fail_msg("%s: stderr ended before a %s line '%s...'", p->name, comp,
             prefix);
}

/* The JobManager's reason for a plaintext peer (tm3). */
#define PLAINTEXT_REASON                                                       \
    "the peer speaks plaintext fling, not TLS (told to connect with "          \
    "fling.ssl://)"

/*
 * Reads the JobManager's log lines of refused handshakes up to the next
 * one for reason, each "TLS handshake with 127.0.0.1:<port> failed:
 * <why> peer=127.0.0.1:<port>" (the port the peer's outgoing one), why
 * reason or, before it, skip (NULL: none).
 */
static void expect_jm_refusal(cf_proc_t *jm, const char *reason,
                              const char *skip)
{
    static const char head[] = "TLS handshake with 127.0.0.1:";
    for (;;) {
        char line[2048];
        next_comp_line(jm, "remote", head, line, sizeof line);
        int port = atoi(line + strlen(head));
        assert_true(port > 0 && port < 65536);
        char want[2048], other[2048] = "";
        snprintf(want, sizeof want, "%s%d failed: %s peer=127.0.0.1:%d", head,
                 port, reason, port);
        if (skip != NULL)
            snprintf(other, sizeof other, "%s%d failed: %s peer=127.0.0.1:%d",
                     head, port, skip, port);
        if (strcmp(line, want) == 0)
            return;
        if (skip == NULL || strcmp(line, other) != 0)
            assert_string_equal(want, line);
    }
}

/*
 * Asserts the TaskManager's first registration attempt line (component
 * cluster, its fields after the message) and that it then ends, not
 * registered, at its taskmanager.registration.timeout (ms) with the
 * reason on its stderr's last line.
 */
static void expect_tm_refused(cf_proc_t *tm, const char *id, const char *rm,
                              const char *why, int timeout_ms)
{
    char line[2048], want[2048];
    next_comp_line(tm, "cluster", "Registration at ", line, sizeof line);
    snprintf(want, sizeof want,
             "Registration at %s (resourcemanager) attempt 1 could not "
             "connect: %s; attempt 2 starts in 1000 ms target=\"%s "
             "(resourcemanager)\" attempt=1 next_in_ms=1000",
             rm, why, rm);
    assert_string_equal(want, line);
    int ws = cf_wait_exit(tm);
    assert_true(WIFEXITED(ws));
    assert_int_equal(1, WEXITSTATUS(ws));
    last_stderr_line(tm, line, sizeof line);
    snprintf(want, sizeof want,
             "fling-taskmanager: TaskManager %s could not register at the "
             "ResourceManager %s within %d ms "
             "(taskmanager.registration.timeout); check that the JobManager "
             "runs and is reachable",
             id, rm, timeout_ms);
    assert_string_equal(want, line);
}

/* The keys of a refused TaskManager: a registration timeout of 6 s (its
 * first attempt comes well before, even under a sanitizer), and a
 * second between attempts (so few that the JobManager's rate-limited
 * log keeps every refusal). */
#define REFUSED_TM_KEYS                                                        \
    "taskmanager.registration.timeout=6 s",                                    \
        "cluster.registration.error-delay=1 s"

static void test_a_tls_cluster_runs_a_job_and_refuses_others(void **state)
{
    (void)state;
    static cf_proc_t jm, tm1, tm2, tm3, tm4;
    char *dir = scratch();
    char *conf = write_tls_conf(dir);
    char bufs[4][512];
    const char *node[5];
    tls_keys("node", bufs, node);

    int port = start_tls_jm(&jm, conf);
    /* Registered over fling.ssl://, the TaskManagers' scheme. */
    start_tm_keys(&tm1, &jm, "tm1", port, node);
    start_tm_keys(&tm2, &jm, "tm2", port, node);

    /* A TaskManager without TLS: the JobManager's port wants TLS. */
    char rm[128], why[512];
    snprintf(rm, sizeof rm, "fling.tcp://127.0.0.1:%d/resourcemanager_*", port);
    const char *plain[] = {REFUSED_TM_KEYS, NULL};
    start_tm_only_keys(&tm3, "tm3", port, plain);
    snprintf(why, sizeof why,
             "Could not connect to rpc endpoint under address %s: "
             "127.0.0.1:%d requires TLS: connect with fling.ssl:// and a "
             "client certificate",
             rm, port);
    expect_tm_refused(&tm3, "tm3", rm, why, 6000);
    expect_jm_refusal(&jm, PLAINTEXT_REASON, NULL);

    /* A TaskManager whose certificate another CA signed (it trusts ca). */
    char obufs[4][512];
    const char *other[7];
    tls_keys("other-client", obufs, other);
    const char *refused[] = {REFUSED_TM_KEYS};
    other[4] = refused[0];
    other[5] = refused[1];
    other[6] = NULL;
    start_tm_only_keys(&tm4, "tm4", port, other);
    expect_jm_refusal(&jm,
                      "certificate verify failed: unable to get local issuer "
                      "certificate",
                      PLAINTEXT_REASON);
    snprintf(rm, sizeof rm, "fling.ssl://127.0.0.1:%d/resourcemanager_*", port);
    snprintf(why, sizeof why,
             "Could not connect to rpc endpoint under address %s: TLS "
             "handshake with 127.0.0.1:%d failed: the peer refused the "
             "handshake: tlsv1 alert unknown ca",
             rm, port);
    expect_tm_refused(&tm4, "tm4", rm, why, 6000);

    /* The cluster still serves: a job submitted over TLS finishes. */
    char *job = small_job_write(dir);
    char *out = path_in(dir, "out");
    char hp[64];
    snprintf(hp, sizeof hp, "127.0.0.1:%d", port);
    const char *run[] = {"run", "-m",       hp,  "-c", conf,
                         job,   "--output", out, NULL};
    result_t r = run_fling(run);
    assert_string_equal("", r.err);
    assert_int_equal(0, r.status);
    static const char sub[] = "Job has been submitted with JobID ";
    assert_memory_equal(sub, r.out, sizeof sub - 1);
    char id[33], tail[256];
    memcpy(id, r.out + sizeof sub - 1, 32);
    id[32] = '\0';
    snprintf(tail, sizeof tail,
             "Job small (%s) switched to FINISHED.\n"
             "Job with JobID %s has finished.\n",
             id, id);
    size_t ol = strlen(r.out), tl = strlen(tail);
    assert_true(ol > tl);
    assert_string_equal(tail, r.out + ol - tl);
    result_free(&r);
    small_job_assert_output(out);

    /* A client without TLS is told so. */
    const char *list[] = {"list", "-m", hp, NULL};
    r = run_fling(list);
    char want[1024];
    snprintf(want, sizeof want,
             "fling list: cannot reach the JobManager at %s: Could not "
             "connect to rpc endpoint under address "
             "fling.tcp://%s/jobmanager: %s requires TLS: connect with "
             "fling.ssl:// and a client certificate. Check that the "
             "client's security.ssl.* settings match the JobManager's "
             "(docs/guide.md, \"Turning TLS on\").\n",
             hp, hp, hp);
    assert_string_equal(want, r.err);
    assert_string_equal("", r.out);
    assert_int_equal(1, r.status);
    result_free(&r);

    cf_stop(&tm1, SIGTERM, 0);
    cf_stop(&tm2, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
    free(out);
    free(job);
    free(conf);
    rm_scratch(dir);
}

static void test_a_jobmanager_without_its_files_does_not_start(void **state)
{
    (void)state;
    static cf_proc_t jm1, jm2;
    /* TLS on, no certificate named: refused before anything starts. */
    const char *none[] = {"-D", "security.ssl.internal.enabled=true", NULL};
    cf_spawn(&jm1, "jm1", JM_PATH, none);
    int ws = cf_wait_exit(&jm1);
    assert_true(WIFEXITED(ws));
    assert_int_equal(1, WEXITSTATUS(ws));
    char line[1024];
    last_stderr_line(&jm1, line, sizeof line);
    assert_string_equal(
        "fling-jobmanager: security.ssl.internal.enabled is true (-D) but "
        "security.ssl.internal.certificate is not set; set it to the PEM "
        "file of this process's certificate and its chain, or turn TLS off.",
        line);

    /* A certificate file that is not there: named by its key. */
    const char *missing[] = {"-D",
                             "jobmanager.rpc.address=127.0.0.1",
                             "-D",
                             "jobmanager.rpc.port=0",
                             "-D",
                             "security.ssl.internal.enabled=true",
                             "-D",
                             "security.ssl.internal.certificate=/nonexistent/"
                             "node.crt",
                             "-D",
                             "security.ssl.internal.key=/nonexistent/node.key",
                             "-D",
                             "security.ssl.internal.truststore=/nonexistent/"
                             "ca.crt",
                             NULL};
    cf_spawn(&jm2, "jm2", JM_PATH, missing);
    ws = cf_wait_exit(&jm2);
    assert_true(WIFEXITED(ws));
    assert_int_equal(1, WEXITSTATUS(ws));
    last_stderr_line(&jm2, line, sizeof line);
    assert_string_equal(
        "fling-jobmanager: could not start its RPC service: "
        "security.ssl.internal.certificate /nonexistent/node.crt: cannot "
        "read it: No such file or directory",
        line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_a_tls_cluster_runs_a_job_and_refuses_others),
        CF_TEST(test_a_jobmanager_without_its_files_does_not_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
