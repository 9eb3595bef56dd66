/*
 * log_env_test.c - FLING_LOG and FLING_TRACE (src/common/log.c): read at
 * the first log, not before and not again; fl__log_reset (the testing
 * hook) makes the next log read them anew. main sets the environment
 * before any fling call. A FLING_TRACE naming no component is said once.
 */
#include "fl_test.h"

#include "common/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int records;
static char last[512]; /* "component: message | k=v" of the last record */

static void count(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
    records++;
    int k = snprintf(last, sizeof last, "%s: %s |", rec->component_name,
                     rec->message);
    for (size_t i = 0; i < rec->nfields; i++)
        k += snprintf(last + k, sizeof last - (size_t)k, " %s=%s",
                      rec->fields[i].key, rec->fields[i].value);
}

/* Must run first: nothing has logged yet. */
static void test_the_first_log_reads_the_environment(void **state)
{
    (void)state;
    /* Nothing read yet: every check passes into the slow path. */
    for (unsigned c = 0; c < FL_LOG_COMPONENT_MAX; c++)
        assert_int_equal(FL__LOG_UNREAD, atomic_load(&fl__log_max[c]));
    fl_log_set_handler(count, NULL);
    /* A debug line of app: the environment (FLING_TRACE=remote,rpc,
     * FLING_LOG=error) leaves it off. */
    fl_log(FL_LOG_DEBUG, "not shown");
    assert_int_equal(0, records);
    assert_int_equal(FL_LOG_DEBUG, atomic_load(&fl__log_max[FL_LOGC_REMOTE]));
    assert_int_equal(FL_LOG_DEBUG, atomic_load(&fl__log_max[FL_LOGC_RPC]));
    assert_int_equal(FL_LOG_ERROR, atomic_load(&fl__log_max[FL_LOGC_ACTOR]));
    assert_int_equal(FL_LOG_ERROR, atomic_load(&fl__log_max[FL_LOGC_APP]));
    assert_int_equal(FL_LOG_ERROR, fl_log_get_level());
    fl_log_kv(FL_LOGC_RPC, FL_LOG_DEBUG, NULL, 0, "shown");
    fl_log(FL_LOG_WARN, "not shown");
    fl_log(FL_LOG_ERROR, "shown");
    assert_int_equal(2, records);
    fl_log_set_handler(NULL, NULL);
}

static void test_the_environment_is_read_once(void **state)
{
    (void)state;
    setenv("FLING_TRACE", "actor", 1);
    setenv("FLING_LOG", "debug", 1);
    assert_false(fl_log_enabled(FL_LOGC_ACTOR, FL_LOG_DEBUG));
    assert_int_equal(FL_LOG_ERROR, fl_log_get_level());
    /* The testing hook: the next log reads it again. */
    fl__log_reset();
    assert_true(fl_log_enabled(FL_LOGC_SCHED, FL_LOG_DEBUG));
    assert_int_equal(FL_LOG_DEBUG, fl_log_get_level());
    setenv("FLING_LOG", "info", 1);
    fl__log_reset();
    assert_true(fl_log_enabled(FL_LOGC_ACTOR, FL_LOG_DEBUG));
    assert_false(fl_log_enabled(FL_LOGC_RPC, FL_LOG_DEBUG));
    assert_true(fl_log_enabled(FL_LOGC_RPC, FL_LOG_INFO));
}

static void test_a_bad_environment_means_the_defaults(void **state)
{
    (void)state;
    setenv("FLING_TRACE", "rpc,nonsense", 1);
    setenv("FLING_LOG", "loud", 1);
    fl__log_reset();
    fl_log_set_handler(count, NULL);
    records = 0;
    assert_int_equal(FL_LOG_WARN, fl_log_get_level());
    assert_false(fl_log_enabled(FL_LOGC_RPC, FL_LOG_INFO));
    assert_true(fl_log_enabled(FL_LOGC_RPC, FL_LOG_WARN));
    /* The first read says so, once. */
    assert_int_equal(1, records);
    assert_string_equal("common: FLING_TRACE ignored: it names no component "
                        "(common, sched, actor, remote, rpc, app, all) | "
                        "FLING_TRACE=rpc,nonsense",
                        last);
    fl_log(FL_LOG_WARN, "next");
    assert_int_equal(2, records);
    assert_string_equal("app: next |", last);
    fl_log_set_handler(NULL, NULL);
}

static void test_the_api_overrides_the_environment(void **state)
{
    (void)state;
    setenv("FLING_TRACE", "all", 1);
    unsetenv("FLING_LOG");
    fl__log_reset();
    /* Setting the level reads the environment first, then overrides
     * the level only; the trace stays. */
    fl_log_set_level(FL_LOG_ERROR);
    assert_true(fl_log_enabled(FL_LOGC_APP, FL_LOG_DEBUG));
    assert_fl_ok(fl_log_set_trace(""));
    assert_false(fl_log_enabled(FL_LOGC_APP, FL_LOG_WARN));
    assert_true(fl_log_enabled(FL_LOGC_APP, FL_LOG_ERROR));
}

int main(void)
{
    setenv("FLING_TRACE", "remote,rpc", 1);
    setenv("FLING_LOG", "error", 1);
    const struct CMUnitTest tests[] = {
        FL_TEST(test_the_first_log_reads_the_environment),
        FL_TEST(test_the_environment_is_read_once),
        FL_TEST(test_a_bad_environment_means_the_defaults),
        FL_TEST(test_the_api_overrides_the_environment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
