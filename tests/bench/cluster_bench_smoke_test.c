/*
 * cluster_bench_smoke_test.c - one small run of cluster.deploy (p=1, one
 * run) and of the kill case of cluster.failover (p=2, one run), through
 * the benchmarks' own code (bench/cluster_deploy_bench.c,
 * cluster_failover_bench.c), with this file as their runner: note() to
 * stderr, emit() into a buffer. Asserts that each ran and printed its
 * figures in order, well-formed, in the order of the events they time;
 * never how fast.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_test.h"

/* The lines emit() printed, "<bench>.<metric> <value> <unit>\n" each. */
static char out[8192];
static size_t out_len;

void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fling_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void emit(const bench_ctx_t *ctx, const char *metric, double value,
          int decimals, const char *unit)
{
    int n = snprintf(out + out_len, sizeof out - out_len, "%s.%s %.*f %s\n",
                     ctx->name, metric, decimals, value, unit);
    assert_true(n > 0 && (size_t)n < sizeof out - out_len);
    out_len += (size_t)n;
}

/* (fail): cmocka's fail() is a macro. */
int(fail)(const bench_ctx_t *ctx, const char *what, int err)
{
    note("%s: %s: %s", ctx->name, what, fl_strerror(err));
    return err;
}

/* Takes the next emitted line, which must be "<name> <number> <unit>",
 * and returns the number. */
static double take(const char **p, const char *name, const char *unit)
{
    const char *nl = strchr(*p, '\n');
    assert_non_null(nl);
    char line[256], got_name[128], got_unit[16], num[32];
    size_t n = (size_t)(nl - *p);
    assert_true(n < sizeof line);
    memcpy(line, *p, n);
    line[n] = '\0';
    *p = nl + 1;
    assert_int_equal(3,
                     sscanf(line, "%127s %31s %15s", got_name, num, got_unit));
    assert_string_equal(name, got_name);
    assert_string_equal(unit, got_unit);
    /* One decimal (a time, a spread) or an integer (a count), as emit()
     * writes it. */
    char *end = NULL;
    double v = strtod(num, &end);
    assert_true(end != num && *end == '\0');
    bool count = strcmp(unit, "restarts") == 0;
    char again[32];
    snprintf(again, sizeof again, "%.*f", count ? 0 : 1, v);
    assert_string_equal(num, again);
    return v;
}

static void test_deploy_p1(void **state)
{
    (void)state;
    out_len = 0;
    out[0] = '\0';
    bench_ctx_t ctx = {.name = "cluster.deploy"};
    static const unsigned pars[] = {1};
    assert_fl_ok(cluster_deploy_run(&ctx, pars, 1, 1));
    const char *p = out;
    double all = take(&p, "cluster.deploy.p1_all_running_ms", "ms");
    /* One run: no spread. */
    assert_true(take(&p, "cluster.deploy.p1_all_running_spread_pct", "%") == 0);
    double received = take(&p, "cluster.deploy.p1_received_ms", "ms");
    double requested = take(&p, "cluster.deploy.p1_slots_requested_ms", "ms");
    double deploying = take(&p, "cluster.deploy.p1_deploying_ms", "ms");
    double first = take(&p, "cluster.deploy.p1_first_running_ms", "ms");
    assert_string_equal("", p);
    /* The events in their order; the clock is CLOCK_REALTIME, so a step
     * of it could break this, never a slow machine. */
    assert_true(0 <= received && received <= requested);
    assert_true(requested <= deploying && deploying <= first);
    assert_true(first == all && all > 0);
}

static void test_failover_kill_p2(void **state)
{
    (void)state;
    out_len = 0;
    out[0] = '\0';
    bench_ctx_t ctx = {.name = "cluster.failover"};
    assert_fl_ok(cluster_failover_run(&ctx, 2, 1, false, false));
    const char *p = out;
    double running = take(&p, "cluster.failover.kill_running_ms", "ms");
    assert_true(take(&p, "cluster.failover.kill_running_spread_pct", "%") == 0);
    double detect = take(&p, "cluster.failover.kill_detect_ms", "ms");
    double restarting = take(&p, "cluster.failover.kill_restarting_ms", "ms");
    double redeploy = take(&p, "cluster.failover.kill_redeploy_ms", "ms");
    double restarts = take(&p, "cluster.failover.kill_restarts", "restarts");
    assert_string_equal("", p);
    assert_true(0 < detect && detect <= restarting);
    /* A restart waits its fixed delay, 1000 ms. */
    assert_true(restarting + 1000 <= running);
    assert_true(0 < redeploy && redeploy < running);
    /* redeploy = running - the last restart's record - 1000, the first
     * one's when there was one, each figure rounded to 0.1. */
    double d = redeploy - (running - restarting - 1000.0);
    assert_true(d < 0.2);
    assert_true(restarts >= 1 && restarts <= 10);
    if (restarts == 1)
        assert_true(-0.2 < d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_deploy_p1),
        FL_TEST(test_failover_kill_p2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
