/*
 * log_format_test.c - the default sink's line (fl_log_format and the
 * stderr sink, src/common/log_format.c): "<UTC time with microseconds>
 * <LEVEL padded to 5> [t<thread>] <component>: <message> k=v ...", values
 * quoted when they need it. Fixed records give exact lines; lines of the
 * real sink are read back from stderr (dup2 onto a temporary file), their
 * time and thread parsed and checked, the rest asserted exactly.
 */
#include "fl_test.h"

#include "common/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* 2026-12-05T00:12:03.123456Z */
#define T0_NS (1796429523ll * 1000000000ll + 123456789ll)

static fl_log_record_t rec_of(fl_log_level_t level, const char *comp,
                              const char *msg, const fl_log_field_t *f,
                              size_t n)
{
    fl_log_record_t r = {0};
    r.level = level;
    r.component = FL_LOGC_REMOTE;
    r.component_name = comp;
    r.message = msg;
    r.fields = f;
    r.nfields = n;
    r.time_ns = T0_NS;
    r.thread_id = 4711;
    return r;
}

static void test_the_line_of_a_record(void **state)
{
    (void)state;
    const fl_log_field_t f[] = {{"peer", "127.0.0.1:6123"},
                                {"reason", "connection reset"}};
    fl_log_record_t r = rec_of(FL_LOG_WARN, "remote", "connection lost", f, 2);
    char buf[256];
    const char *want = "2026-12-05T00:12:03.123456Z WARN  [t4711] remote: "
                       "connection lost peer=127.0.0.1:6123 "
                       "reason=\"connection reset\"";
    assert_int_equal(strlen(want), fl_log_format(&r, buf, sizeof buf));
    assert_string_equal(want, buf);
}

static void test_levels_are_padded_to_five(void **state)
{
    (void)state;
    static const struct {
        fl_log_level_t l;
        const char *name;
    } levels[] = {{FL_LOG_ERROR, "ERROR"},
                  {FL_LOG_WARN, "WARN "},
                  {FL_LOG_INFO, "INFO "},
                  {FL_LOG_DEBUG, "DEBUG"}};
    for (size_t i = 0; i < 4; i++) {
        fl_log_record_t r = rec_of(levels[i].l, "rpc", "m", NULL, 0);
        char buf[128], want[128];
        fl_log_format(&r, buf, sizeof buf);
        snprintf(want, sizeof want,
                 "2026-12-05T00:12:03.123456Z %s [t4711] rpc: m",
                 levels[i].name);
        assert_string_equal(want, buf);
    }
}

static void test_values_are_quoted_and_escaped_when_needed(void **state)
{
    (void)state;
    const fl_log_field_t f[] = {
        {"a", ""},           {"b", "x=y"},
        {"c", "say \"hi\""}, {"d", "back\\sl"},
        {"e", "l1\nl2"},     {"f", "tab\there"},
        {"g", "\x01"},       {"h", "plain-value_1.2:3/4"}};
    fl_log_record_t r = rec_of(FL_LOG_INFO, "rpc", "q", f, 8);
    char buf[512];
    fl_log_format(&r, buf, sizeof buf);
    assert_string_equal("2026-12-05T00:12:03.123456Z INFO  [t4711] rpc: q "
                        "a=\"\" b=\"x=y\" c=\"say \\\"hi\\\"\" "
                        "d=\"back\\\\sl\" e=\"l1\\nl2\" f=\"tab\\there\" "
                        "g=\"\\x01\" h=plain-value_1.2:3/4",
                        buf);
}

/* Text from a peer (a service name in a HELLO, an ERROR's message) may
 * reach the message: its control characters are escaped, so it cannot
 * forge a line of its own; quotes and spaces stay as they are. */
static void test_control_characters_in_the_message_are_escaped(void **state)
{
    (void)state;
    fl_log_record_t r = rec_of(FL_LOG_DEBUG, "remote",
                               "service x\n2026-12-05T00:00:00.000000Z ERROR "
                               "[t1] rpc: \"forged\"\t\x1b[0m",
                               NULL, 0);
    char buf[512];
    fl_log_format(&r, buf, sizeof buf);
    assert_string_equal("2026-12-05T00:12:03.123456Z DEBUG [t4711] remote: "
                        "service x\\n2026-12-05T00:00:00.000000Z ERROR [t1] "
                        "rpc: \"forged\"\\t\\x1b[0m",
                        buf);
}

static void test_a_short_buffer_truncates_and_says_the_length(void **state)
{
    (void)state;
    fl_log_record_t r = rec_of(FL_LOG_ERROR, "actor", "0123456789", NULL, 0);
    char buf[20];
    const char *whole =
        "2026-12-05T00:12:03.123456Z ERROR [t4711] actor: 0123456789";
    assert_int_equal(strlen(whole), fl_log_format(&r, buf, sizeof buf));
    assert_int_equal(19, strlen(buf));
    assert_int_equal(0, strncmp(whole, buf, 19));
    /* The epoch, and a time before it, print as 1970. */
    r.time_ns = 0;
    char full[128];
    fl_log_format(&r, full, sizeof full);
    assert_string_equal(
        "1970-01-01T00:00:00.000000Z ERROR [t4711] actor: 0123456789", full);
}

/* ---- the real sink, read back from stderr ------------------------------- */

/* stderr goes to a temporary file until stderr_end, which returns what was
 * written (the caller frees it). */
static int saved_fd = -1;
static FILE *tmp;

static void stderr_begin(void)
{
    fflush(stderr);
    tmp = tmpfile();
    assert_non_null(tmp);
    saved_fd = dup(STDERR_FILENO);
    assert_true(saved_fd >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
}

static char *stderr_end(void)
{
    fflush(stderr);
    assert_true(dup2(saved_fd, STDERR_FILENO) >= 0);
    close(saved_fd);
    long n = ftell(tmp);
    assert_true(n >= 0);
    char *s = calloc(1, (size_t)n + 1);
    assert_non_null(s);
    rewind(tmp);
    assert_int_equal((size_t)n, fread(s, 1, (size_t)n, tmp));
    fclose(tmp);
    return s;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Checks that line begins with a time within [lo_ns, hi_ns] (to the
 * microsecond) and " <level> [t<this thread>] "; returns the rest. */
static const char *check_head(const char *line, int64_t lo_ns, int64_t hi_ns,
                              const char *level)
{
    struct tm tm = {0};
    long usec = -1;
    int end = -1;
    if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%6ldZ %n", &tm.tm_year,
               &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
               &usec, &end) != 7 ||
        end != 28)
        fail_msg("no timestamp at the start of \"%s\"", line);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t t_us = (int64_t)timegm(&tm) * 1000000 + usec;
    if (t_us < lo_ns / 1000 || t_us > hi_ns / 1000)
        fail_msg("time of \"%s\" is not between %lld and %lld us", line,
                 (long long)(lo_ns / 1000), (long long)(hi_ns / 1000));
    char want[64];
    snprintf(want, sizeof want, "%s [t%ld] ", level, (long)syscall(SYS_gettid));
    const char *rest = line + end;
    if (strncmp(rest, want, strlen(want)) != 0)
        fail_msg("\"%s\" does not go on with \"%s\"", line, want);
    return rest + strlen(want);
}

static void test_the_default_sink_writes_one_line_per_record(void **state)
{
    (void)state;
    fl_log_set_handler(NULL, NULL);
    fl_log_set_level(FL_LOG_INFO);
    int64_t lo = wall_ns();
    stderr_begin();
    fl_log(FL_LOG_WARN, "first %d", 1);
    const fl_log_field_t f[] = {{"endpoint", "greeter"},
                                {"peer", "127.0.0.1:6123"},
                                {"reason", "connection reset"}};
    fl_log_kv(FL_LOGC_REMOTE, FL_LOG_INFO, f, 3, "connection lost");
    fl_log(FL_LOG_DEBUG, "not shown");
    FL_LOG_KV(FL_LOG_ERROR, FL_KV(FL_FU64("corr", 42)), "from the library");
    char *out = stderr_end();
    int64_t hi = wall_ns();
    fl_log_set_level(FL_LOG_WARN);

    static const struct {
        const char *level, *rest;
    } want[] = {
        {"WARN ", "app: first 1"},
        {"INFO ", "remote: connection lost endpoint=greeter "
                  "peer=127.0.0.1:6123 reason=\"connection reset\""},
        {"ERROR", "common: from the library corr=42"},
    };
    char *save = NULL;
    char *line = strtok_r(out, "\n", &save);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        if (line == NULL)
            fail_msg("line %zu missing", i + 1);
        assert_string_equal(want[i].rest,
                            check_head(line, lo, hi, want[i].level));
        line = strtok_r(NULL, "\n", &save);
    }
    if (line != NULL)
        fail_msg("one line too many: \"%s\"", line);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_the_line_of_a_record),
        FL_TEST(test_levels_are_padded_to_five),
        FL_TEST(test_values_are_quoted_and_escaped_when_needed),
        FL_TEST(test_control_characters_in_the_message_are_escaped),
        FL_TEST(test_a_short_buffer_truncates_and_says_the_length),
        FL_TEST(test_the_default_sink_writes_one_line_per_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
