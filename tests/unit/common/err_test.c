/*
 * err_test.c - the error table (fl_strerror, fl_err_name) and logging
 * (levels, the pluggable sink).
 */
#include "fl_test.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The table as the header defines it, to compare the library against. */
typedef struct err_row {
    int code;
    const char *name;
    const char *msg;
} err_row_t;

static const err_row_t rows[] = {
#define ROW(name, msg) {FL_##name, "FL_" #name, msg},
    FL_ERRNO_MAP(ROW)
#undef ROW
};

#define NROWS (sizeof rows / sizeof rows[0])

/* ---- error table --------------------------------------------------------- */

static void test_error_codes_are_numbered_from_zero_in_table_order(void **state)
{
    (void)state;
    assert_int_equal(0, FL_OK);
    for (size_t i = 0; i < NROWS; i++)
        assert_int_equal((int)i, rows[i].code);
    assert_int_equal((int)NROWS, FL__ERR_COUNT);
    assert_true(FL__ERR_COUNT < FL_EUSER);
}

static void test_strerror_returns_the_table_message_for_every_code(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        const char *m = fl_strerror(rows[i].code);
        assert_non_null(m);
        assert_string_equal(rows[i].msg, m);
    }
}

static void
test_err_name_returns_the_fl_prefixed_symbol_for_every_code(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        const char *n = fl_err_name(rows[i].code);
        assert_non_null(n);
        assert_int_equal(0, strncmp(n, "FL_", 3));
        assert_string_equal(rows[i].name, n);
    }
}

static void test_strerror_messages_are_distinct_and_non_empty(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        assert_true(strlen(fl_strerror(rows[i].code)) > 0);
        for (size_t j = i + 1; j < NROWS; j++)
            if (strcmp(fl_strerror(rows[i].code), fl_strerror(rows[j].code)) ==
                0)
                fail_msg("%s and %s share the message \"%s\"", rows[i].name,
                         rows[j].name, fl_strerror(rows[i].code));
    }
}

static void test_err_names_are_distinct(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++)
        for (size_t j = i + 1; j < NROWS; j++)
            if (strcmp(fl_err_name(rows[i].code), fl_err_name(rows[j].code)) ==
                0)
                fail_msg("codes %d and %d share the name %s", rows[i].code,
                         rows[j].code, fl_err_name(rows[i].code));
}

static void test_well_known_codes_have_their_documented_text(void **state)
{
    (void)state;
    assert_string_equal("FL_ETIMEDOUT", fl_err_name(FL_ETIMEDOUT));
    assert_string_equal("timed out", fl_strerror(FL_ETIMEDOUT));
    assert_string_equal("FL_OK", fl_err_name(FL_OK));
    assert_string_equal("success", fl_strerror(FL_OK));
    assert_string_equal("FL_EINTERNAL", fl_err_name(FL_EINTERNAL));
}

static void test_user_codes_are_application_errors(void **state)
{
    (void)state;
    const int codes[] = {FL_EUSER, FL_EUSER + 1, FL_EUSER + 12345, INT_MAX};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_string_equal("application error", fl_strerror(codes[i]));
        assert_string_equal("FL_EUSER", fl_err_name(codes[i]));
    }
}

static void test_unknown_codes_are_unknown_errors(void **state)
{
    (void)state;
    const int codes[] = {
        -1, -1000, INT_MIN, FL__ERR_COUNT, FL__ERR_COUNT + 1, FL_EUSER - 1};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *m = fl_strerror(codes[i]);
        const char *n = fl_err_name(codes[i]);
        assert_non_null(m);
        assert_non_null(n);
        assert_string_equal("unknown error", m);
        assert_string_equal("FL_EUNKNOWN", n);
    }
}

/* ---- logging ----------------------------------------------------------- */

/* The test sink: every case here runs on one thread and logs synchronously. */
typedef struct log_rec {
    int calls;
    fl_log_level_t level;
    void *arg;
    char msg[512];
} log_rec_t;

static void record_sink(void *arg, const fl_log_record_t *rec)
{
    log_rec_t *r = arg;
    r->calls++;
    r->level = rec->level;
    r->arg = arg;
    snprintf(r->msg, sizeof r->msg, "%s", rec->message);
}

/* Must run first: nothing has set the level yet (main clears FLING_LOG
 * before any fling call, so the default is what is read). */
static void test_log_level_defaults_to_warn_without_fling_log_env(void **state)
{
    (void)state;
    assert_int_equal(FL_LOG_WARN, fl_log_get_level());
}

static void test_log_set_level_is_returned_by_get_level(void **state)
{
    (void)state;
    fl_log_level_t saved = fl_log_get_level();
    const fl_log_level_t all[] = {FL_LOG_ERROR, FL_LOG_WARN, FL_LOG_INFO,
                                  FL_LOG_DEBUG};
    for (size_t i = 0; i < 4; i++) {
        fl_log_set_level(all[i]);
        assert_int_equal(all[i], fl_log_get_level());
    }
    fl_log_set_level(saved);
}

static void
test_log_handler_receives_the_formatted_message_at_its_level(void **state)
{
    (void)state;
    fl_log_level_t saved = fl_log_get_level();
    log_rec_t r = {0};
    fl_log_set_level(FL_LOG_DEBUG);
    fl_log_set_handler(record_sink, &r);

    fl_log(FL_LOG_INFO, "hello %s %d", "world", 42);
    assert_int_equal(1, r.calls);
    assert_int_equal(FL_LOG_INFO, r.level);
    assert_ptr_equal(&r, r.arg);
    if (strstr(r.msg, "hello world 42") == NULL)
        fail_msg("sink got \"%s\", expected it to carry \"hello world 42\"",
                 r.msg);

    fl_log(FL_LOG_ERROR, "code %s", fl_err_name(FL_ENOMEM));
    assert_int_equal(2, r.calls);
    assert_int_equal(FL_LOG_ERROR, r.level);
    if (strstr(r.msg, "code FL_ENOMEM") == NULL)
        fail_msg("sink got \"%s\", expected it to carry \"code FL_ENOMEM\"",
                 r.msg);

    fl_log(FL_LOG_DEBUG, "%s", "d");
    assert_int_equal(3, r.calls);
    assert_int_equal(FL_LOG_DEBUG, r.level);

    fl_log_set_handler(NULL, NULL);
    fl_log_set_level(saved);
}

static void
test_log_levels_more_verbose_than_the_setting_are_filtered(void **state)
{
    (void)state;
    fl_log_level_t saved = fl_log_get_level();
    log_rec_t r = {0};
    fl_log_set_handler(record_sink, &r);

    fl_log_set_level(FL_LOG_WARN);
    fl_log(FL_LOG_DEBUG, "debug %d", 1);
    fl_log(FL_LOG_INFO, "info %d", 1);
    assert_int_equal(0, r.calls);
    fl_log(FL_LOG_WARN, "warn %d", 1);
    assert_int_equal(1, r.calls);
    assert_int_equal(FL_LOG_WARN, r.level);
    fl_log(FL_LOG_ERROR, "error %d", 1);
    assert_int_equal(2, r.calls);
    assert_int_equal(FL_LOG_ERROR, r.level);

    fl_log_set_level(FL_LOG_ERROR);
    fl_log(FL_LOG_WARN, "warn %d", 2);
    assert_int_equal(2, r.calls);
    fl_log(FL_LOG_ERROR, "error %d", 2);
    assert_int_equal(3, r.calls);

    fl_log_set_level(FL_LOG_INFO);
    fl_log(FL_LOG_DEBUG, "debug %d", 3);
    assert_int_equal(3, r.calls);
    fl_log(FL_LOG_INFO, "info %d", 3);
    assert_int_equal(4, r.calls);
    assert_int_equal(FL_LOG_INFO, r.level);

    fl_log_set_handler(NULL, NULL);
    fl_log_set_level(saved);
}

static void test_log_handler_null_restores_the_default_sink(void **state)
{
    (void)state;
    fl_log_level_t saved = fl_log_get_level();
    log_rec_t r = {0};
    fl_log_set_level(FL_LOG_ERROR);
    fl_log_set_handler(record_sink, &r);
    fl_log(FL_LOG_ERROR, "to the test sink");
    assert_int_equal(1, r.calls);

    fl_log_set_handler(NULL, NULL);
    /* Goes to stderr now, no longer to the test sink. */
    fl_log(FL_LOG_ERROR, "err_test: this line on stderr is expected");
    assert_int_equal(1, r.calls);
    fl_log_set_level(saved);
}

static void test_log_replacing_the_handler_switches_sinks(void **state)
{
    (void)state;
    fl_log_level_t saved = fl_log_get_level();
    log_rec_t a = {0}, b = {0};
    fl_log_set_level(FL_LOG_WARN);
    fl_log_set_handler(record_sink, &a);
    fl_log(FL_LOG_WARN, "one");
    fl_log_set_handler(record_sink, &b);
    fl_log(FL_LOG_WARN, "two");
    assert_int_equal(1, a.calls);
    assert_int_equal(1, b.calls);
    assert_ptr_equal(&b, b.arg);
    if (strstr(b.msg, "two") == NULL)
        fail_msg("second sink got \"%s\"", b.msg);
    fl_log_set_handler(NULL, NULL);
    fl_log_set_level(saved);
}

static void test_clock_now_ns_is_monotonic(void **state)
{
    (void)state;
    uint64_t prev = fl_clock_now_ns();
    assert_true(prev > 0);
    for (int i = 0; i < 1000; i++) {
        uint64_t now = fl_clock_now_ns();
        assert_true(now >= prev);
        prev = now;
    }
}

int main(void)
{
    /* The default level is part of what is tested: no inherited override. */
    unsetenv("FLING_LOG");
    const struct CMUnitTest tests[] = {
        FL_TEST(test_log_level_defaults_to_warn_without_fling_log_env),
        FL_TEST(test_error_codes_are_numbered_from_zero_in_table_order),
        FL_TEST(test_strerror_returns_the_table_message_for_every_code),
        FL_TEST(test_err_name_returns_the_fl_prefixed_symbol_for_every_code),
        FL_TEST(test_strerror_messages_are_distinct_and_non_empty),
        FL_TEST(test_err_names_are_distinct),
        FL_TEST(test_well_known_codes_have_their_documented_text),
        FL_TEST(test_user_codes_are_application_errors),
        FL_TEST(test_unknown_codes_are_unknown_errors),
        FL_TEST(test_log_set_level_is_returned_by_get_level),
        FL_TEST(test_log_handler_receives_the_formatted_message_at_its_level),
        FL_TEST(test_log_levels_more_verbose_than_the_setting_are_filtered),
        FL_TEST(test_log_handler_null_restores_the_default_sink),
        FL_TEST(test_log_replacing_the_handler_switches_sinks),
        FL_TEST(test_clock_now_ns_is_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
