/*
 * remote_bench_smoke_test.c - small runs of rpc.remote_call and
 * rpc.remote_pipelined, over TCP and over mutual TLS (the _tls benchmarks),
 * through the benchmarks' own code (bench/remote_bench.cmake), with this
 * file as their runner: note() to stderr and a buffer, emit() into a
 * buffer, and, run again with --serve, their server process. Asserts that
 * each ran and printed its figures, well-formed and in order; never how
 * fast. And the test certificates' life: made by scripts/test-certs.sh
 * into a scratch folder removed at exit, $FLING_BENCH_CERTS used as given,
 * a clear error without openssl.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_CAPTURE_OUT 4096
#include "bench_capture.h"

/* call_run runs the sequential benchmark under name and checks its three
 * figures. */
static void call_run(const char *name, bool tls)
{
    char key[128];
    reset_out();
    bench_ctx_t ctx = {.name = name};
    assert_fl_ok(remote_call_run(&ctx, tls, 20, 200));
    const char *p = out;
    snprintf(key, sizeof key, "%s.p50_us", name);
    double p50 = take(&p, key, "us", 1);
    snprintf(key, sizeof key, "%s.p99_us", name);
    double p99 = take(&p, key, "us", 1);
    snprintf(key, sizeof key, "%s.rate", name);
    double rate = take(&p, key, "calls/s", 0);
    assert_string_equal("", p);
    assert_true(0 < p50 && p50 <= p99);
    assert_true(rate > 0);
}

/* pipelined_run runs the pipelined benchmark under name and checks its
 * figure. */
static void pipelined_run(const char *name, bool tls)
{
    char key[128];
    reset_out();
    bench_ctx_t ctx = {.name = name};
    assert_fl_ok(remote_pipelined_run(&ctx, tls, REMOTE_DEPTH, 2000));
    const char *p = out;
    snprintf(key, sizeof key, "%s.rate", name);
    assert_true(take(&p, key, "calls/s", 0) > 0);
    assert_string_equal("", p);
}

static void test_remote_call(void **state)
{
    (void)state;
    call_run("rpc.remote_call", false);
}

static void test_remote_call_tls(void **state)
{
    (void)state;
    call_run("rpc.remote_call_tls", true);
}

static void test_remote_pipelined(void **state)
{
    (void)state;
    pipelined_run("rpc.remote_pipelined", false);
}

static void test_remote_pipelined_tls(void **state)
{
    (void)state;
    pipelined_run("rpc.remote_pipelined_tls", true);
}

/* Without openssl in PATH the certificates cannot be made: FL_ENOENT and
 * a note that says what to install. */
static void test_certs_without_openssl(void **state)
{
    (void)state;
    char empty[] = "/tmp/fling-no-openssl.XXXXXX";
    assert_non_null(mkdtemp(empty));
    const char *path = getenv("PATH");
    char *saved = strdup(path != NULL ? path : "");
    assert_non_null(saved);
    setenv("PATH", empty, 1);
    bench_ctx_t ctx = {.name = "rpc.remote_call_tls"};
    int rc = bench_certs_make(&ctx, empty);
    setenv("PATH", saved, 1);
    free(saved);
    assert_fl(FL_ENOENT, rc);
    char want[1024];
    snprintf(want, sizeof want,
             "rpc.remote_call_tls: openssl is not in PATH: the TLS "
             "benchmarks make their certificates with %s, which needs it; "
             "install the Debian package openssl (scripts/deps.sh test)",
             FLING_TEST_CERTS_SCRIPT);
    assert_string_equal(want, last_note);
    /* Nothing was written. */
    assert_int_equal(0, rmdir(empty));
}

/* $FLING_BENCH_CERTS (scripts/bench.sh's set) is used as given. */
static void test_certs_given(void **state)
{
    (void)state;
    bench_ctx_t ctx = {.name = "rpc.remote_call_tls"};
    setenv("FLING_BENCH_CERTS", "/given/certs", 1);
    const char *dir = bench_certs(&ctx);
    unsetenv("FLING_BENCH_CERTS");
    assert_non_null(dir);
    assert_string_equal("/given/certs", dir);
}

/* exists: path names a regular file. */
static bool exists(const char *dir, const char *file)
{
    char path[BENCH_PATH_MAX + 32];
    struct stat st;
    int n = snprintf(path, sizeof path, "%s/%s", dir, file);
    return n > 0 && (size_t)n < sizeof path && stat(path, &st) == 0 &&
           S_ISREG(st.st_mode);
}

/* A process that made the certificates removes them when it exits; the
 * folder is there while it runs. */
static void test_certs_scratch_removed_at_exit(void **state)
{
    (void)state;
    int to_parent[2], to_child[2];
    assert_int_equal(0, pipe(to_parent));
    assert_int_equal(0, pipe(to_child));
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(to_parent[0]);
        close(to_child[1]);
        unsetenv("FLING_BENCH_CERTS");
        bench_ctx_t ctx = {.name = "rpc.remote_call_tls"};
        const char *dir = bench_certs(&ctx);
        if (dir == NULL)
            _exit(3);
        /* Once per process: a second call gives the same folder. */
        const char *again = bench_certs(&ctx);
        if (again == NULL || strcmp(again, dir) != 0)
            _exit(4);
        size_t n = strlen(dir) + 1;
        if (write(to_parent[1], dir, n) != (ssize_t)n)
            _exit(5);
        char c;
        if (read(to_child[0], &c, 1) != 1)
            _exit(6);
        exit(0); /* runs the atexit handler */
    }
    close(to_parent[1]);
    close(to_child[0]);
    char dir[BENCH_PATH_MAX];
    size_t len = 0;
    ssize_t k;
    while (len < sizeof dir &&
           (k = read(to_parent[0], dir + len, sizeof dir - len)) > 0) {
        len += (size_t)k;
        if (dir[len - 1] == '\0')
            break;
    }
    close(to_parent[0]);
    assert_true(len > 0 && dir[len - 1] == '\0');
    const char *files[] = {"ca.crt", "server.crt", "server.key", "client.crt",
                           "client.key"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (!exists(dir, files[i]))
            fail_msg("%s/%s is missing", dir, files[i]);
    assert_int_equal(1, write(to_child[1], "x", 1));
    close(to_child[1]);
    int status;
    assert_int_equal(pid, waitpid(pid, &status, 0));
    assert_true(WIFEXITED(status));
    assert_int_equal(0, WEXITSTATUS(status));
    struct stat st;
    assert_int_equal(-1, stat(dir, &st));
    assert_int_equal(ENOENT, errno);
}

/* serve: this program run as the benchmarks' server process,
 * `--serve [--workers N] [--tls DIR]` (bench/rpc_remote_bench.c). */
static int serve(int argc, char **argv)
{
    bench_ctx_t ctx = {.name = "rpc.server"};
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--workers") == 0)
            ctx.workers = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--tls") == 0)
            ctx.certs = argv[i + 1];
    }
    return serve_main(&ctx) == FL_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--serve") == 0)
        return serve(argc, argv);
    const struct CMUnitTest tests[] = {
        FL_TEST(test_certs_without_openssl),
        FL_TEST(test_certs_given),
        FL_TEST(test_certs_scratch_removed_at_exit),
        FL_TEST(test_remote_call),
        FL_TEST(test_remote_pipelined),
        FL_TEST(test_remote_call_tls),
        FL_TEST(test_remote_pipelined_tls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
