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

#include "bench_capture.h"

static void test_flood_small(void **state)
{
    (void)state;
    bench_ctx_t ctx = {.name = "actor.flood", .workers = 2};
    reset_out();
    assert_fl_ok(flood_run(&ctx, 2, 20000));
    const char *p = out;
    assert_true(take(&p, "actor.flood.peak_rss_mib", "MiB", 1) >= 0);
    assert_true(take(&p, "actor.flood.rate", "msgs/s", 0) > 0);
    assert_true(take(&p, "actor.flood.unbounded_rate", "msgs/s", 0) > 0);
    assert_true(take(&p, "actor.flood.unbounded_peak_rss_mib", "MiB", 1) >= 0);
    /* Four lines, nothing else. */
    assert_string_equal("", p);
}

static void test_flood_refuses_no_senders(void **state)
{
    (void)state;
    reset_out();
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
