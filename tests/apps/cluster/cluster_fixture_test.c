/*
 * cluster_fixture_test.c - the fixture of the cluster tests
 * (cluster_fixture.h) itself: a child's log burst does not block it while
 * the test waits on something else; a child leads a process group of its
 * own.
 */
#include "cluster_fixture.h"

/* A child writes 512 KiB to stderr, which the test does not read, then a
 * line to stdout: with 64 KiB pipes it would block on stderr and the line
 * would never come. */
static void test_log_burst_does_not_block_a_child(void **state)
{
    (void)state;
    static cf_proc_t p;
    const char *args[] = {
        "-c", "head -c 524288 /dev/zero | tr '\\0' x >&2; echo written", NULL};
    cf_spawn(&p, "burst", "/bin/sh", args);
    char line[64];
    assert_true(cf_next_line(&p, &p.out, line, sizeof line));
    assert_string_equal("written", line);
    assert_int_equal(CF_PIPE_BYTES, fcntl(p.err.fd, F_GETPIPE_SZ));
    int ws = cf_wait_exit(&p);
    assert_true(WIFEXITED(ws));
    assert_int_equal(0, WEXITSTATUS(ws));
}

/* A child leads a process group of its own, so that stopping it cannot
 * get it SIGHUP when the test's group becomes orphaned. */
static void test_child_has_its_own_group(void **state)
{
    (void)state;
    static cf_proc_t p;
    const char *args[] = {"-c", "echo started; exec sleep 60", NULL};
    cf_spawn(&p, "group", "/bin/sh", args);
    char line[64];
    assert_true(cf_next_line(&p, &p.out, line, sizeof line));
    assert_string_equal("started", line);
    assert_int_equal(p.pid, getpgid(p.pid));
    assert_true(getpgid(p.pid) != getpgrp());
    cf_kill9(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_log_burst_does_not_block_a_child),
        CF_TEST(test_child_has_its_own_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
