/*
 * flood_bench_smoke_test.c - a small run of actor.flood through the
 * benchmark's own code (bench/flood_bench.c), with this file as its runner
 * (note, emit and fail into buffers). Asserts that it ran and printed its
 * figures, well-formed and in order; never how fast, nor how much memory.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_test.h"

/* The lines emit() printed, "<bench>.<metric> <value> <unit>\n" each. */
static char out[2048];
static size_t out_len;
/* The last note, without the "fling_bench: " prefix. */
static char last_note[1024];

void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_note, sizeof last_note, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fling_bench: %s\n", last_note);
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

/* The value of line `at` of the output, which must be "<key> <value>
 * <unit>" with the value printed to `decimals` decimals. */
static double figure(int at, const char *key, int decimals, const char *unit)
{
    const char *p = out;
    for (int i = 0; i < at; i++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    char got_key[64], num[32], got_unit[16];
    assert_int_equal(3, sscanf(p, "%63s %31s %15s", got_key, num, got_unit));
    assert_string_equal(key, got_key);
    assert_string_equal(unit, got_unit);
    double v = strtod(num, NULL);
    char again[32];
    snprintf(again, sizeof again, "%.*f", decimals, v);
    assert_string_equal(again, num);
    return v;
}

static void test_flood_small(void **state)
{
    (void)state;
    bench_ctx_t ctx = {.name = "actor.flood", .workers = 2};
    assert_fl_ok(flood_run(&ctx, 2, 20000));
    assert_true(figure(0, "actor.flood.peak_rss_mib", 1, "MiB") >= 0);
    assert_true(figure(1, "actor.flood.rate", 0, "msgs/s") > 0);
    assert_true(figure(2, "actor.flood.unbounded_rate", 0, "msgs/s") > 0);
    assert_true(figure(3, "actor.flood.unbounded_peak_rss_mib", 1, "MiB") >= 0);
    /* Four lines, nothing else. */
    int lines = 0;
    for (const char *p = out; *p != '\0'; p++)
        lines += *p == '\n';
    assert_int_equal(4, lines);
}

static void test_flood_refuses_no_senders(void **state)
{
    (void)state;
    out_len = 0;
    out[0] = '\0';
    bench_ctx_t ctx = {.name = "actor.flood"};
    assert_fl(FL_EINVAL, flood_run(&ctx, 0, 1));
    assert_string_equal("actor.flood: flood_run: invalid argument", last_note);
    assert_fl(FL_EINVAL, flood_run(&ctx, 1, 0));
    assert_string_equal("", out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_flood_small),
        FL_TEST(test_flood_refuses_no_senders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
