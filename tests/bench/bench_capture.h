/*
 * tests/bench/bench_capture.h - a benchmark runner for smoke tests: the
 * test is the runner (bench.h) of the benchmark code it links, and this
 * header gives it emit() into a buffer, fail(), note() to stderr and
 * last_note (unless BENCH_CAPTURE_OWN_NOTE: the test then defines note()
 * itself), and take() to read the figures back in order. Include it once,
 * in the test's one .c file, after bench.h.
 */
#ifndef BENCH_CAPTURE_H
#define BENCH_CAPTURE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_test.h"

#ifndef BENCH_CAPTURE_OUT
#define BENCH_CAPTURE_OUT 8192
#endif

/* The lines emit() printed, "<bench>.<metric> <value> <unit>\n" each. */
static char out[BENCH_CAPTURE_OUT];
static size_t out_len;

#ifndef BENCH_CAPTURE_OWN_NOTE
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
#endif

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

/* Forgets what was emitted. */
static inline void reset_out(void)
{
    out_len = 0;
    out[0] = '\0';
}

/* Takes the next emitted line from *p (start at out), which must be
 * "<name> <number> <unit>" with the number as emit() writes it with
 * `decimals` decimals, and returns the number. */
static inline double take(const char **p, const char *name, const char *unit,
                          int decimals)
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
    char *end = NULL;
    double v = strtod(num, &end);
    assert_true(end != num && *end == '\0');
    char again[32];
    snprintf(again, sizeof again, "%.*f", decimals, v);
    assert_string_equal(num, again);
    return v;
}

#endif /* BENCH_CAPTURE_H */
