/*
 * log_ratelimit_test.c - rate-limited log lines (FL_LOG_RATELIMITED,
 * fl__log_limited, fl__ratelimit_take in src/common/log.c): at most
 * FL__LOG_BURST lines per window and call site, then one line saying how
 * many were suppressed (the record's count and its field "suppressed").
 */
#include "fl_test.h"

#include "common/internal.h"

#include <stdio.h>
#include <string.h>

#define MAX_LINES 64

/* What the log handler captured. */
typedef struct captured {
    unsigned n;
    char line[MAX_LINES][160];
} captured_t;

/* The message, and " suppressed=K" for a record that carries a count
 * (also its last field). */
static void capture(void *arg, const fl_log_record_t *rec)
{
    captured_t *c = arg;
    if (c->n < MAX_LINES) {
        char *line = c->line[c->n];
        int k = snprintf(line, sizeof c->line[0], "%s", rec->message);
        if (rec->suppressed != 0) {
            assert_true(rec->nfields >= 1);
            const fl_log_field_t *f = &rec->fields[rec->nfields - 1];
            assert_string_equal("suppressed", f->key);
            char want[24];
            snprintf(want, sizeof want, "%u", (unsigned)rec->suppressed);
            assert_string_equal(want, f->value);
            snprintf(line + k, sizeof c->line[0] - (size_t)k, " suppressed=%u",
                     (unsigned)rec->suppressed);
        }
    }
    c->n++;
}

/* The rate limits' clock, moved by the test. */
static uint64_t fake_now;

static uint64_t fake_clock(void)
{
    return fake_now;
}

/* fl__log_limited with the clock at now. */
#define LIMITED_AT(rl, now, ...)                                               \
    do {                                                                       \
        fake_now = (now);                                                      \
        fl__log_limited((rl), FL_LOGC_COMMON, FL_LOG_WARN, FL_NOKV,            \
                        __VA_ARGS__);                                          \
    } while (0)

static int setup(void **state)
{
    static captured_t c;
    memset(&c, 0, sizeof c);
    fl_log_set_level(FL_LOG_WARN);
    fl_log_set_handler(capture, &c);
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fl_log_set_handler(NULL, NULL);
    return 0;
}

/* One call site, as a rejected peer's. */
static void reject(int i)
{
    FL_LOG_RATELIMITED(FL_LOG_WARN, "peer %d rejected", i);
}

static void test_a_flood_of_319_lines_logs_the_burst_only(void **state)
{
    captured_t *c = *state;
    for (int i = 0; i < 319; i++)
        reject(i);
    /* 319 calls within far less than a window (a second). */
    assert_int_equal(FL__LOG_BURST, c->n);
    for (unsigned i = 0; i < FL__LOG_BURST; i++) {
        char want[64];
        snprintf(want, sizeof want, "peer %u rejected", i);
        assert_string_equal(want, c->line[i]);
    }
}

static void test_the_next_window_says_how_many_were_suppressed(void **state)
{
    captured_t *c = *state;
    fl__ratelimit_t rl;
    memset(&rl, 0, sizeof rl);
    const uint64_t t0 = 5 * FL__LOG_WINDOW_NS;
    fl__log_set_clock(fake_clock);
    for (int i = 0; i < 319; i++)
        LIMITED_AT(&rl, t0 + (uint64_t)i, "line %d", i);
    assert_int_equal(FL__LOG_BURST, c->n);
    /* Still the same window: nothing. */
    LIMITED_AT(&rl, t0 + FL__LOG_WINDOW_NS - 1, "late");
    assert_int_equal(FL__LOG_BURST, c->n);
    /* The next window: the line, with the count of the dropped ones. */
    LIMITED_AT(&rl, t0 + FL__LOG_WINDOW_NS, "next");
    assert_int_equal(FL__LOG_BURST + 1, c->n);
    assert_string_equal("next suppressed=310", c->line[FL__LOG_BURST]);
    /* Said once: the line after it has no count. */
    LIMITED_AT(&rl, t0 + FL__LOG_WINDOW_NS + 1, "again");
    assert_string_equal("again", c->line[FL__LOG_BURST + 1]);
    fl__log_set_clock(NULL);
}

static void test_a_count_is_carried_over_quiet_windows(void **state)
{
    (void)state;
    fl__ratelimit_t rl;
    memset(&rl, 0, sizeof rl);
    uint32_t s = 99;
    for (unsigned i = 0; i < FL__LOG_BURST; i++) {
        assert_true(fl__ratelimit_take(&rl, 1000, &s));
        assert_int_equal(0, s);
    }
    assert_false(fl__ratelimit_take(&rl, 1001, &s));
    assert_false(fl__ratelimit_take(&rl, 1002, &s));
    /* Windows later (none logged meanwhile): the two are still owed. */
    assert_true(fl__ratelimit_take(&rl, 1000 + 7 * FL__LOG_WINDOW_NS, &s));
    assert_int_equal(2, s);
    assert_true(fl__ratelimit_take(&rl, 1001 + 7 * FL__LOG_WINDOW_NS, &s));
    assert_int_equal(0, s);
}

static void test_sites_are_limited_apart(void **state)
{
    captured_t *c = *state;
    for (int i = 0; i < 50; i++) {
        FL_LOG_RATELIMITED(FL_LOG_WARN, "site a %d", i);
        FL_LOG_RATELIMITED(FL_LOG_WARN, "site b %d", i);
    }
    assert_int_equal(2 * FL__LOG_BURST, c->n);
    assert_string_equal("site a 9", c->line[2 * FL__LOG_BURST - 2]);
    assert_string_equal("site b 9", c->line[2 * FL__LOG_BURST - 1]);
}

/* A site of its own for the level case. */
static void quiet_site(int i)
{
    FL_LOG_RATELIMITED(FL_LOG_WARN, "quiet %d", i);
}

static void test_a_level_below_the_threshold_costs_no_budget(void **state)
{
    captured_t *c = *state;
    fl_log_set_level(FL_LOG_ERROR);
    for (int i = 0; i < 50; i++)
        quiet_site(i);
    assert_int_equal(0, c->n);
    fl_log_set_level(FL_LOG_WARN);
    quiet_site(50);
    assert_int_equal(1, c->n);
    assert_string_equal("quiet 50", c->line[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_flood_of_319_lines_logs_the_burst_only, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_the_next_window_says_how_many_were_suppressed, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_count_is_carried_over_quiet_windows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sites_are_limited_apart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_level_below_the_threshold_costs_no_budget, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
